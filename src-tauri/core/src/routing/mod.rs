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
pub mod record;
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
use crate::ledger::pricing::{effective_price, AppliedPrice};
use crate::providers::{self, Provider};
use crate::secrets::status::{Rejection, StatusWriter};
use crate::secrets::{self, ResolvedSecret, SecretStore};

pub use circuit::{Admission, Circuit, CircuitState};
pub use execute::{execute, Answer, Call, CallKind};
pub use record::{
    AttemptOutcome, AttemptRecord, LogRecorder, RecordGuard, Recorder, RequestRecord,
    RequestStatus, ServedBy,
};
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

    /// The channel's provider accepts Anthropic Messages requests as they are.
    pub fn provider_speaks_messages(&self) -> bool {
        self.provider.speaks_messages()
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
    circuits: Mutex<HashMap<(String, String), Circuit>>,
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
            circuits: Mutex::new(HashMap::new()),
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

    async fn upstream_models(&self, channel: &Arc<Channel>) -> Vec<String> {
        {
            let lists = self.model_lists.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, list)) = lists.get(&channel.id) {
                if at.elapsed() < MODEL_LIST_TTL {
                    return list.clone();
                }
            }
        }
        let secret = match channel.secret() {
            ResolvedSecret::Present(s) => Some(s),
            _ => None,
        };
        let req = channel
            .provider
            .models_request(&channel.http, &channel.base_url, secret.as_ref())
            .timeout(Duration::from_secs(5));
        let list = match req.send().await {
            Ok(resp) if resp.status().is_success() => resp
                .json::<serde_json::Value>()
                .await
                .map(|v| channel.provider.model_ids(&v))
                .unwrap_or_default(),
            Ok(resp) => {
                tracing::debug!(channel = %channel.id, status = %resp.status(), "model list refused");
                Vec::new()
            }
            Err(e) => {
                tracing::debug!(channel = %channel.id, error = %describe_http_error(e), "model list unavailable");
                Vec::new()
            }
        };
        let mut lists = self.model_lists.lock().unwrap_or_else(|p| p.into_inner());
        lists.insert(channel.id.clone(), (Instant::now(), list.clone()));
        list
    }
}
