//! Routes, channels and targets as the running gateway holds them, and
//! resolution of a requested model to its ordered targets.
//!
//! The config is compiled once into a [`Gateway`]: one pooled HTTP client
//! per channel, each channel's secret resolved, routes indexed by model.
//! A requested model resolves to an explicit route, or else to every
//! channel whose `models` globs match it, in config order. The circuit
//! breakers live here too, one per (channel, upstream model).

mod circuit;
mod execute;
mod failure;
pub mod health;
mod stream;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::config::{
    Bucket, BucketsConfig, ChannelType, Config, PriceOverride, SecretRef, Timeouts, TimeoutsConfig,
};
use crate::ledger::catalog::Catalog;
use crate::ledger::pricing::effective_price;
use crate::providers::{self, Provider};
use crate::record::AppliedPrice;
use crate::secrets::status::{Rejection, StatusWriter};
use crate::secrets::{self, ResolvedSecret, SecretStore};

pub use circuit::{Admission, Circuit, CircuitState};
pub use execute::{execute, Answer, AttemptStarted, CallKind, Dispatch};
pub use health::HealthBook;
pub use stream::{pump, Encoder, StreamOut, StreamStart};

/// A reqwest error as the log shows it: the message and its causes, never
/// the URL (logs keep no upstream URLs, whatever a base URL holds).
pub(crate) fn describe_http_error(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut out = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// What a channel answered when asked for its model list.
#[derive(Debug, Clone)]
pub struct Probe {
    /// The HTTP status, if it answered at all.
    pub status: Option<u16>,
    pub latency: Duration,
    /// The model ids it lists, on success.
    pub models: Option<Vec<String>>,
    /// Why it failed, in words (never the secret or the URL).
    pub error: Option<String>,
}

/// The provider's own words for a refused model list, trimmed.
fn probe_message(status: u16, body: &[u8]) -> String {
    let text = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .or_else(|| v.pointer("/message"))
                .and_then(|m| m.as_str())
                .map(String::from)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string());
    let text: String = text.chars().take(300).collect();
    let hint = match status {
        401 | 403 => " (the provider rejected the key)",
        300..=399 => " (a redirect, not followed: is base_url right?)",
        404 => " (is base_url right?)",
        _ => "",
    };
    if text.is_empty() {
        format!("HTTP {status}{hint}")
    } else {
        format!("HTTP {status}{hint}: {text}")
    }
}

/// One upstream account, ready to call.
pub struct Channel {
    pub id: String,
    pub kind: ChannelType,
    pub brand: String,
    pub base_url: String,
    pub bucket: Bucket,
    pub secret_ref: SecretRef,
    pub price_multiplier: Option<f64>,
    timeouts: TimeoutsConfig,
    pub(crate) http: reqwest::Client,
    pub(crate) provider: Arc<dyn Provider>,
    secret: RwLock<ResolvedSecret>,
    /// The provider answered 401/403 with the current secret.
    key_rejected: AtomicBool,
}

impl Channel {
    pub fn secret(&self) -> ResolvedSecret {
        self.secret
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_secret(&self, secret: ResolvedSecret) {
        *self.secret.write().unwrap_or_else(|p| p.into_inner()) = secret;
        self.key_rejected.store(false, Ordering::Relaxed);
    }

    /// The channel's provider accepts requests in `format` as they are.
    pub fn provider_speaks(&self, format: crate::providers::NativeFormat) -> bool {
        self.provider.native_format() == Some(format)
    }

    pub fn key_rejected(&self) -> bool {
        self.key_rejected.load(Ordering::Relaxed)
    }

    /// Returns whether the secret was not already marked rejected.
    pub(crate) fn mark_key_rejected(&self) -> bool {
        !self.key_rejected.swap(true, Ordering::Relaxed)
    }

    /// Returns whether the secret had been marked rejected.
    fn clear_key_rejected(&self) -> bool {
        self.key_rejected.swap(false, Ordering::Relaxed)
    }
}

/// One (channel, upstream model) pair of a route.
#[derive(Clone)]
pub struct Target {
    pub channel: Arc<Channel>,
    pub model: String,
    /// Unit prices in the channel's bucket currency; `None`: unpriced.
    pub price: Option<AppliedPrice>,
    /// The catalog marks the model as one that reasons before answering.
    pub reasoning_model: bool,
}

impl Target {
    fn new(
        channel: &Arc<Channel>,
        model: &str,
        price_override: Option<&PriceOverride>,
        buckets: &BucketsConfig,
    ) -> Target {
        let catalog = Catalog::bundled();
        let bucket = channel.bucket;
        Target {
            price: effective_price(
                catalog,
                model,
                channel.price_multiplier,
                buckets.usd_rate(bucket),
                buckets.currency(bucket),
                price_override,
            ),
            reasoning_model: catalog.lookup(model).is_some_and(|e| e.reasoning_model),
            channel: Arc::clone(channel),
            model: model.to_string(),
        }
    }
}

/// The first-token timeout for reasoning models when none is configured:
/// they think before they speak.
pub const REASONING_FIRST_TOKEN: Duration = Duration::from_secs(60);

/// A public model name and the targets that can serve it, primary first.
pub struct Route {
    pub model: String,
    pub targets: Vec<Target>,
    pub cross_bucket: bool,
    timeouts: TimeoutsConfig,
    /// Synthesised from channel `models` globs rather than written out.
    pub passthrough: bool,
}

impl Route {
    /// The bucket that pays when the primary serves.
    pub fn bucket(&self) -> Option<Bucket> {
        self.targets.first().map(|t| t.channel.bucket)
    }
}

/// How long a passthrough channel's model list is trusted.
const MODEL_LIST_TTL: Duration = Duration::from_secs(60);

pub struct Gateway {
    pub config: Arc<Config>,
    channels: Vec<Arc<Channel>>,
    routes: HashMap<String, Arc<Route>>,
    passthrough: Vec<(Arc<Channel>, GlobSet)>,
    /// Shared with the gateway this one replaces on a config reload, so a
    /// tripped breaker stays tripped across edits.
    circuits: Arc<Mutex<HashMap<(String, String), Circuit>>>,
    defaults: Timeouts,
    model_lists: Mutex<HashMap<String, (Instant, Vec<String>)>>,
    /// Where providers' verdicts on channel secrets are recorded.
    secret_status: Option<StatusWriter>,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("channel `{0}`: type `{1}` is not supported by this build")]
    Unsupported(String, &'static str),
    #[error("channel `{0}`: cannot build its HTTP client: {1}")]
    Http(String, String),
    #[error("channel `{0}`: invalid model glob: {1}")]
    Glob(String, String),
}

impl Gateway {
    /// Compiles a validated config. Resolving secrets may block (keyring).
    pub fn build(config: Config, store: &dyn SecretStore) -> Result<Gateway, BuildError> {
        let defaults = config.timeouts.over(Timeouts::default());
        let mut channels = Vec::new();
        let mut by_id = HashMap::new();
        let mut passthrough = Vec::new();
        for c in &config.channels {
            let id = c.id.get_ref().clone();
            let kind = *c.kind.get_ref();
            let provider = providers::for_type(kind)
                .ok_or_else(|| BuildError::Unsupported(id.clone(), kind.as_str()))?;
            let t = c.timeouts.over(defaults);
            let http = reqwest::Client::builder()
                .connect_timeout(t.connect)
                .pool_idle_timeout(Duration::from_secs(90))
                .tcp_nodelay(true)
                // See `Failure::Redirected`.
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("switchyard/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| BuildError::Http(id.clone(), e.to_string()))?;
            let secret = secrets::resolve(store, &id, &c.secret);
            if let ResolvedSecret::Missing(why) | ResolvedSecret::Unavailable(why) = &secret {
                tracing::warn!(channel = %id, "{why}");
            }
            let channel = Arc::new(Channel {
                id: id.clone(),
                kind,
                brand: c.brand().to_string(),
                base_url: c.base_url().to_string(),
                bucket: c.bucket,
                secret_ref: c.secret.clone(),
                price_multiplier: c.price_multiplier,
                timeouts: c.timeouts,
                http,
                provider,
                secret: RwLock::new(secret),
                key_rejected: AtomicBool::new(false),
            });
            if !c.models.is_empty() {
                let mut b = GlobSetBuilder::new();
                for g in &c.models {
                    b.add(Glob::new(g).map_err(|e| BuildError::Glob(id.clone(), e.to_string()))?);
                }
                let set = b
                    .build()
                    .map_err(|e| BuildError::Glob(id.clone(), e.to_string()))?;
                passthrough.push((Arc::clone(&channel), set));
            }
            by_id.insert(id, Arc::clone(&channel));
            channels.push(channel);
        }
        let mut routes = HashMap::new();
        for r in &config.routes {
            // Validation guarantees every target's channel exists.
            let targets = r
                .targets
                .get_ref()
                .iter()
                .filter_map(|t| {
                    by_id
                        .get(t.channel.get_ref())
                        .map(|ch| Target::new(ch, &t.model, t.price.as_ref(), &config.buckets))
                })
                .collect();
            routes.insert(
                r.model.get_ref().clone(),
                Arc::new(Route {
                    model: r.model.get_ref().clone(),
                    targets,
                    cross_bucket: r.cross_bucket,
                    timeouts: r.timeouts,
                    passthrough: false,
                }),
            );
        }
        Ok(Gateway {
            config: Arc::new(config),
            channels,
            routes,
            passthrough,
            circuits: Arc::new(Mutex::new(HashMap::new())),
            defaults,
            model_lists: Mutex::new(HashMap::new()),
            secret_status: None,
        })
    }

    /// Records providers' verdicts on channel secrets through `writer`,
    /// starting from the rejections on record.
    pub fn track_secret_status(
        &mut self,
        writer: StatusWriter,
        rejected: &std::collections::BTreeMap<String, Rejection>,
    ) {
        for channel in &self.channels {
            if rejected.contains_key(&channel.id) {
                channel.mark_key_rejected();
            }
        }
        self.secret_status = Some(writer);
    }

    /// Takes over what the running gateway `old` has learned: circuit
    /// breakers, and the rejected state of channels whose secret source is
    /// unchanged. Used when an edited config replaces it.
    pub fn inherit(&mut self, old: &Gateway) {
        self.circuits = Arc::clone(&old.circuits);
        self.secret_status = old.secret_status.clone();
        for channel in &self.channels {
            if let Some(prev) = old.channel(&channel.id) {
                if prev.secret_ref == channel.secret_ref && prev.key_rejected() {
                    channel.mark_key_rejected();
                }
            }
        }
    }

    /// Every explicit route, in config order.
    pub fn routes(&self) -> impl Iterator<Item = &Arc<Route>> {
        self.config
            .routes
            .iter()
            .filter_map(|r| self.routes.get(r.model.get_ref()))
    }

    /// When the circuit of a target may be probed again, if it is open.
    pub fn circuit_retry_in(&self, channel: &str, model: &str, now: Instant) -> Option<Duration> {
        let map = self.circuits.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&(channel.to_string(), model.to_string()))
            .and_then(Circuit::retry_at)
            .map(|at| at.saturating_duration_since(now))
    }

    /// The provider answered 401/403 to `channel`'s secret.
    pub(crate) fn secret_rejected(&self, channel: &Channel, status: u16) {
        if channel.mark_key_rejected() {
            if let Some(w) = &self.secret_status {
                w.rejected(&channel.id, status);
            }
        }
    }

    /// The provider served a request with `channel`'s secret.
    pub(crate) fn secret_accepted(&self, channel: &Channel) {
        if channel.clear_key_rejected() {
            if let Some(w) = &self.secret_status {
                w.accepted(&channel.id);
            }
        }
    }

    pub fn channels(&self) -> &[Arc<Channel>] {
        &self.channels
    }

    pub fn channel(&self, id: &str) -> Option<&Arc<Channel>> {
        self.channels.iter().find(|c| c.id == id)
    }

    /// The route serving `model`: explicit, or synthesised from channel globs.
    pub fn resolve(&self, model: &str) -> Option<Arc<Route>> {
        if let Some(r) = self.routes.get(model) {
            return Some(Arc::clone(r));
        }
        let targets: Vec<Target> = self
            .passthrough
            .iter()
            .filter(|(_, globs)| globs.is_match(model))
            .map(|(ch, _)| Target::new(ch, model, None, &self.config.buckets))
            .collect();
        if targets.is_empty() {
            return None;
        }
        Some(Arc::new(Route {
            model: model.to_string(),
            targets,
            cross_bucket: false,
            timeouts: TimeoutsConfig::default(),
            passthrough: true,
        }))
    }

    /// Effective timeouts for `target` within `route`.
    pub fn timeouts(&self, route: &Route, target: &Target) -> Timeouts {
        route
            .timeouts
            .over(target.channel.timeouts.over(self.defaults))
    }

    /// The total deadline of a request on `route`.
    pub fn total_timeout(&self, route: &Route) -> Duration {
        match route.targets.first() {
            Some(t) => self.timeouts(route, t).total,
            None => route.timeouts.over(self.defaults).total,
        }
    }

    pub(crate) fn admit(&self, target: &Target, now: Instant) -> Admission {
        let mut map = self.circuits.lock().unwrap_or_else(|p| p.into_inner());
        map.entry((target.channel.id.clone(), target.model.clone()))
            .or_default()
            .admit(now)
    }

    pub(crate) fn circuit_success(&self, target: &Target) {
        let mut map = self.circuits.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = map.get_mut(&(target.channel.id.clone(), target.model.clone())) {
            c.record_success();
        }
    }

    pub(crate) fn circuit_failure(&self, target: &Target, now: Instant) {
        let mut map = self.circuits.lock().unwrap_or_else(|p| p.into_inner());
        map.entry((target.channel.id.clone(), target.model.clone()))
            .or_default()
            .record_failure(now);
    }

    /// The circuit state of a target, for health views.
    pub fn circuit_state(&self, channel: &str, model: &str) -> CircuitState {
        let map = self.circuits.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&(channel.to_string(), model.to_string()))
            .map_or(CircuitState::Closed, |c| c.state())
    }

    /// Every model name a caller can ask for: explicit routes, plus the
    /// models each passthrough channel lists upstream that match its globs
    /// (cached for a minute; a channel that cannot be listed is left out).
    pub async fn model_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.routes.keys().cloned().collect();
        for (channel, globs) in &self.passthrough {
            for m in self.upstream_models(channel).await {
                if globs.is_match(&m) && !self.routes.contains_key(&m) {
                    names.push(m);
                }
            }
        }
        names.sort();
        names.dedup();
        names
    }

    /// Asks `channel` for its model list: the "test connection" of the
    /// app, and how passthrough channels learn their models. A 401/403
    /// marks the secret rejected; a success clears that.
    pub async fn probe(&self, channel: &Arc<Channel>, timeout: Duration) -> Probe {
        let started = Instant::now();
        let secret = match channel.secret() {
            ResolvedSecret::Present(s) => Some(s),
            ResolvedSecret::NotNeeded => None,
            ResolvedSecret::Missing(why) | ResolvedSecret::Unavailable(why) => {
                return Probe {
                    status: None,
                    latency: started.elapsed(),
                    models: None,
                    error: Some(why),
                }
            }
        };
        let req = channel
            .provider
            .models_request(&channel.http, &channel.base_url, secret.as_ref())
            .timeout(timeout);
        let (status, body) = match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                (status, resp.bytes().await)
            }
            Err(e) => {
                return Probe {
                    status: None,
                    latency: started.elapsed(),
                    models: None,
                    error: Some(describe_http_error(e)),
                }
            }
        };
        let latency = started.elapsed();
        let body = secrets::scrub(&body.unwrap_or_default(), secret.as_ref());
        if (200..300).contains(&status) {
            if secret.is_some() {
                self.secret_accepted(channel);
            }
            return match serde_json::from_slice::<serde_json::Value>(&body) {
                Ok(v) => Probe {
                    status: Some(status),
                    latency,
                    models: Some(channel.provider.model_ids(&v)),
                    error: None,
                },
                Err(_) => Probe {
                    status: Some(status),
                    latency,
                    models: None,
                    error: Some("the model list is not JSON; is base_url right?".into()),
                },
            };
        }
        if matches!(status, 401 | 403) && secret.is_some() {
            self.secret_rejected(channel, status);
        }
        Probe {
            status: Some(status),
            latency,
            models: None,
            error: Some(probe_message(status, &body)),
        }
    }

    /// Stores a new secret for `channel` in the running gateway; a
    /// rejection on record for the old one is forgotten.
    pub fn replace_secret(&self, channel: &Channel, secret: ResolvedSecret) {
        let was_rejected = channel.clear_key_rejected();
        channel.set_secret(secret);
        if was_rejected {
            if let Some(w) = &self.secret_status {
                w.accepted(&channel.id);
            }
        }
    }

    async fn upstream_models(&self, channel: &Arc<Channel>) -> Vec<String> {
        {
            let lists = self.model_lists.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, list)) = lists.get(&channel.id) {
                if at.elapsed() < MODEL_LIST_TTL {
                    return list.clone();
                }
            }
        }
        let list = match self.probe(channel, Duration::from_secs(5)).await {
            Probe {
                models: Some(m), ..
            } => m,
            p => {
                tracing::debug!(channel = %channel.id, status = ?p.status, error = ?p.error, "model list unavailable");
                Vec::new()
            }
        };
        let mut lists = self.model_lists.lock().unwrap_or_else(|p| p.into_inner());
        lists.insert(channel.id.clone(), (Instant::now(), list.clone()));
        list
    }
}
