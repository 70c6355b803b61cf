//! Typed TOML configuration (DESIGN.md §4).
//!
//! Owns parsing, defaults and validation. The invariant it keeps: a `Config`
//! that left [`Config::load`] or [`Config::parse`] is internally consistent —
//! every route target names an existing channel, every channel type is one
//! this build can serve, and the listen address is loopback unless the user
//! said `allow_remote = true`. Every error names the file, line, column and
//! key so the user can fix it without guessing.

mod timeouts;

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

pub mod edit;

pub use timeouts::{Timeouts, TimeoutsConfig};

/// The starter config written on first `serve`; every line is commented so it
/// documents the format and changes nothing until the user edits it.
pub const STARTER_CONFIG: &str = include_str!("starter.toml");

/// Default body limit: large enough for a few images as data URLs.
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// Default time a client has to send request headers, and again its body.
pub const DEFAULT_CLIENT_TIMEOUT_S: f64 = 30.0;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write config {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", render_located(.path, *.line, *.column, .key, .message))]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        key: String,
        message: String,
    },
}

fn render_located(path: &Path, line: usize, column: usize, key: &str, message: &str) -> String {
    if key.is_empty() {
        format!("{}:{line}:{column}: {message}", path.display())
    } else {
        format!("{}:{line}:{column}: {key}: {message}", path.display())
    }
}

/// Who pays for a request: official/direct routes or routed/discounted ones.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize, PartialOrd, Ord,
)]
#[serde(rename_all = "lowercase")]
pub enum Bucket {
    Credit,
    Wallet,
}

impl Bucket {
    pub const ALL: [Bucket; 2] = [Bucket::Credit, Bucket::Wallet];

    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Credit => "credit",
            Bucket::Wallet => "wallet",
        }
    }

    /// The name a person reads ("paid from Credit").
    pub fn title(self) -> &'static str {
        match self {
            Bucket::Credit => "Credit",
            Bucket::Wallet => "Wallet",
        }
    }
}

impl fmt::Display for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Bucket {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "credit" => Ok(Bucket::Credit),
            "wallet" => Ok(Bucket::Wallet),
            other => Err(format!(
                "unknown bucket `{other}` (expected `credit` or `wallet`)"
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum ChannelType {
    #[serde(rename = "openai")]
    OpenAi,
    #[serde(rename = "openai-compatible")]
    OpenAiCompatible,
    #[serde(rename = "anthropic")]
    Anthropic,
    #[serde(rename = "gemini")]
    Gemini,
}

impl ChannelType {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelType::OpenAi => "openai",
            ChannelType::OpenAiCompatible => "openai-compatible",
            ChannelType::Anthropic => "anthropic",
            ChannelType::Gemini => "gemini",
        }
    }

    fn default_base_url(self) -> Option<&'static str> {
        match self {
            ChannelType::OpenAi => Some("https://api.openai.com/v1"),
            ChannelType::Anthropic => Some("https://api.anthropic.com"),
            ChannelType::Gemini => Some("https://generativelanguage.googleapis.com/v1beta"),
            ChannelType::OpenAiCompatible => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnEmpty {
    /// Refuse with 402 before calling upstream.
    #[default]
    Block,
    /// Go negative and warn.
    Allow,
}

/// Where a channel's secret comes from. Never the secret itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    Keyring,
    Env(String),
    None,
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        match raw.as_str() {
            "keyring" => Ok(SecretRef::Keyring),
            "none" => Ok(SecretRef::None),
            s => match s.strip_prefix("env:") {
                Some(var) if !var.is_empty() => Ok(SecretRef::Env(var.to_string())),
                _ => Err(serde::de::Error::custom(format!(
                    "expected `keyring`, `env:VARIABLE` or `none`, found `{s}` \
                     (the secret itself never goes in the config: use `switchyard secret set CHANNEL`)"
                ))),
            },
        }
    }
}

/// Unit prices per 1M tokens in the paying bucket's currency.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PriceOverride {
    pub input: Option<f64>,
    pub cached_input: Option<f64>,
    pub cache_write: Option<f64>,
    pub output: Option<f64>,
    pub reasoning: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "default_listen")]
    pub listen: Spanned<String>,
    #[serde(default)]
    pub allow_remote: bool,
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Browser origins allowed to call the port cross-origin.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Longest a client may take to send a request's headers, and again its
    /// body, before the connection is closed (slow clients cannot hold it).
    #[serde(default = "default_client_timeout")]
    pub client_timeout_s: f64,
}

fn default_listen() -> Spanned<String> {
    Spanned::new(0..0, "127.0.0.1:4141".to_string())
}
fn default_max_body() -> usize {
    DEFAULT_MAX_BODY_BYTES
}
fn default_client_timeout() -> f64 {
    DEFAULT_CLIENT_TIMEOUT_S
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            allow_remote: false,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            allowed_origins: Vec::new(),
            client_timeout_s: DEFAULT_CLIENT_TIMEOUT_S,
        }
    }
}

impl ServerConfig {
    pub fn client_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.client_timeout_s)
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct BucketConfig {
    pub currency: Option<String>,
    #[serde(default)]
    pub on_empty: OnEmpty,
    /// Units of this bucket's currency per US dollar.
    pub usd_rate: Option<f64>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct BucketsConfig {
    #[serde(default)]
    pub credit: BucketConfig,
    #[serde(default)]
    pub wallet: BucketConfig,
}

impl BucketsConfig {
    pub fn get(&self, bucket: Bucket) -> &BucketConfig {
        match bucket {
            Bucket::Credit => &self.credit,
            Bucket::Wallet => &self.wallet,
        }
    }

    pub fn currency(&self, bucket: Bucket) -> &str {
        match (bucket, self.get(bucket).currency.as_deref()) {
            (_, Some(c)) => c,
            (Bucket::Credit, None) => "USD",
            (Bucket::Wallet, None) => "CNY",
        }
    }

    /// Currency units per USD; 1 for USD buckets, 7.1 for the default CNY wallet.
    pub fn usd_rate(&self, bucket: Bucket) -> f64 {
        match (self.get(bucket).usd_rate, self.currency(bucket)) {
            (Some(r), _) => r,
            (None, "USD") => 1.0,
            (None, "CNY") => 7.1,
            (None, _) => 1.0,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    pub id: Spanned<String>,
    #[serde(rename = "type")]
    pub kind: Spanned<ChannelType>,
    pub brand: Option<String>,
    pub base_url: Option<String>,
    pub bucket: Bucket,
    #[serde(default = "default_secret")]
    pub secret: SecretRef,
    /// Upstream models exposed under their own names (globs).
    #[serde(default)]
    pub models: Vec<String>,
    pub price_multiplier: Option<f64>,
    #[serde(default)]
    pub timeouts: TimeoutsConfig,
}

fn default_secret() -> SecretRef {
    SecretRef::Keyring
}

impl ChannelConfig {
    pub fn brand(&self) -> &str {
        self.brand.as_deref().unwrap_or(self.id.get_ref())
    }

    pub fn base_url(&self) -> &str {
        self.base_url
            .as_deref()
            .or(self.kind.get_ref().default_base_url())
            .unwrap_or_default()
            .trim_end_matches('/')
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    pub channel: Spanned<String>,
    pub model: String,
    pub price: Option<PriceOverride>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub model: Spanned<String>,
    pub targets: Spanned<Vec<TargetConfig>>,
    #[serde(default)]
    pub cross_bucket: bool,
    #[serde(default)]
    pub timeouts: TimeoutsConfig,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub buckets: BucketsConfig,
    /// Defaults for every channel and route.
    #[serde(default)]
    pub timeouts: TimeoutsConfig,
    #[serde(default)]
    pub channels: Vec<ChannelConfig>,
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// Where this config was read from; used in error messages.
    #[serde(skip)]
    pub path: PathBuf,
}

impl Config {
    /// Reads and validates the config at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Reads the config at `path`, first writing the commented starter config
    /// there if no file exists yet. Returns whether it was created.
    pub fn load_or_create(path: &Path) -> Result<(Config, bool), ConfigError> {
        let created = if path.exists() {
            false
        } else {
            let write = |p: &Path| -> std::io::Result<()> {
                if let Some(dir) = p.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                std::fs::write(p, STARTER_CONFIG)
            };
            write(path).map_err(|source| ConfigError::Write {
                path: path.to_path_buf(),
                source,
            })?;
            true
        };
        Ok((Config::load(path)?, created))
    }

    /// Parses and validates config text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let de = toml::Deserializer::new(text);
        let mut config: Config = serde_path_to_error::deserialize(de).map_err(|err| {
            let key = err.path().to_string();
            let inner = err.into_inner();
            let (line, column) = inner
                .span()
                .map(|s| line_col(text, s.start))
                .unwrap_or((1, 1));
            ConfigError::Invalid {
                path: path.to_path_buf(),
                line,
                column,
                key: if key == "." { String::new() } else { key },
                message: inner.message().trim().to_string(),
            }
        })?;
        config.path = path.to_path_buf();
        config.validate(text)?;
        Ok(config)
    }

    pub fn channel(&self, id: &str) -> Option<&ChannelConfig> {
        self.channels.iter().find(|c| c.id.get_ref() == id)
    }

    /// Replaces the listen address, under the same loopback rule as the file.
    pub fn set_listen(&mut self, addr: &str) -> Result<(), String> {
        let parsed = parse_listen(addr)?;
        if !parsed.ip().is_loopback() && !self.server.allow_remote {
            return Err(format!(
                "{parsed} is not a loopback address; set `allow_remote = true` in [server] to allow it"
            ));
        }
        self.server.listen = Spanned::new(0..0, addr.to_string());
        Ok(())
    }

    /// The socket address to listen on (validated loopback unless allowed).
    pub fn listen_addr(&self) -> Result<SocketAddr, String> {
        parse_listen(self.server.listen.get_ref())
    }

    fn validate(&self, text: &str) -> Result<(), ConfigError> {
        let fail = |span: std::ops::Range<usize>, key: String, message: String| {
            let (line, column) = line_col(text, span.start);
            Err(ConfigError::Invalid {
                path: self.path.clone(),
                line,
                column,
                key,
                message,
            })
        };

        match self.listen_addr() {
            Err(msg) => return fail(self.server.listen.span(), "server.listen".into(), msg),
            Ok(addr) if !addr.ip().is_loopback() && !self.server.allow_remote => {
                return fail(
                    self.server.listen.span(),
                    "server.listen".into(),
                    format!(
                        "{addr} is not a loopback address; anyone who can reach it could spend \
                         your balances. Use 127.0.0.1, or set `allow_remote = true` in [server] \
                         if you really mean it"
                    ),
                );
            }
            Ok(_) => {}
        }
        if self.server.max_body_bytes < 1024 {
            return fail(
                0..0,
                "server.max_body_bytes".into(),
                "must be at least 1024 bytes".into(),
            );
        }
        let t = self.server.client_timeout_s;
        if !(t.is_finite() && (0.1..=3600.0).contains(&t)) {
            return fail(
                0..0,
                "server.client_timeout_s".into(),
                "must be a number of seconds between 0.1 and 3600".into(),
            );
        }
        for (i, origin) in self.server.allowed_origins.iter().enumerate() {
            if let Err(msg) = check_origin(origin) {
                return fail(0..0, format!("server.allowed_origins[{i}]"), msg);
            }
        }

        for bucket in Bucket::ALL {
            let b = self.buckets.get(bucket);
            if let Some(c) = &b.currency {
                if c.len() != 3 || !c.chars().all(|ch| ch.is_ascii_uppercase()) {
                    return fail(
                        0..0,
                        format!("buckets.{bucket}.currency"),
                        format!("`{c}` is not a three-letter ISO currency code like USD or CNY"),
                    );
                }
            }
            if let Some(rate) = b.usd_rate {
                if !(rate.is_finite() && rate > 0.0) {
                    return fail(
                        0..0,
                        format!("buckets.{bucket}.usd_rate"),
                        "must be a positive number".into(),
                    );
                }
            }
        }
        if let Err((key, msg)) = self.timeouts.validate() {
            return fail(0..0, format!("timeouts.{key}"), msg);
        }

        let mut seen = HashSet::new();
        for (i, ch) in self.channels.iter().enumerate() {
            let id = ch.id.get_ref();
            if !valid_id(id) {
                return fail(
                    ch.id.span(),
                    format!("channels[{i}].id"),
                    format!("`{id}` must be 1-64 characters of letters, digits, `-`, `_` or `.`"),
                );
            }
            if !seen.insert(id.as_str()) {
                return fail(
                    ch.id.span(),
                    format!("channels[{i}].id"),
                    format!("duplicate channel id `{id}`"),
                );
            }
            let kind = *ch.kind.get_ref();
            if !kind_supported(kind) {
                let supported: Vec<&str> = [
                    ChannelType::OpenAi,
                    ChannelType::OpenAiCompatible,
                    ChannelType::Anthropic,
                    ChannelType::Gemini,
                ]
                .into_iter()
                .filter(|k| kind_supported(*k))
                .map(ChannelType::as_str)
                .collect();
                return fail(
                    ch.kind.span(),
                    format!("channels[{i}].type"),
                    format!(
                        "channel type `{}` is not yet supported by this build; supported: {}",
                        kind.as_str(),
                        supported.join(", ")
                    ),
                );
            }
            match &ch.base_url {
                None if kind == ChannelType::OpenAiCompatible => {
                    return fail(
                        ch.id.span(),
                        format!("channels[{i}].base_url"),
                        "an openai-compatible channel needs a base_url, e.g. \"http://127.0.0.1:11434/v1\"".into(),
                    );
                }
                Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => {
                    return fail(
                        ch.id.span(),
                        format!("channels[{i}].base_url"),
                        format!("`{url}` must start with http:// or https://"),
                    );
                }
                Some(url) if url.contains('?') => {
                    return fail(
                        ch.id.span(),
                        format!("channels[{i}].base_url"),
                        "must not carry a query string (secrets belong in the keyring)".into(),
                    );
                }
                Some(url) if has_userinfo(url) => {
                    return fail(
                        ch.id.span(),
                        format!("channels[{i}].base_url"),
                        "must not carry a user name or password (secrets belong in the keyring)"
                            .into(),
                    );
                }
                _ => {}
            }
            if let Some(m) = ch.price_multiplier {
                if !(m.is_finite() && m >= 0.0) {
                    return fail(
                        ch.id.span(),
                        format!("channels[{i}].price_multiplier"),
                        "must be a number ≥ 0".into(),
                    );
                }
            }
            for (j, glob) in ch.models.iter().enumerate() {
                if let Err(e) = globset::Glob::new(glob) {
                    return fail(
                        ch.id.span(),
                        format!("channels[{i}].models[{j}]"),
                        format!("`{glob}` is not a valid glob: {e}"),
                    );
                }
            }
            if let Err((key, msg)) = ch.timeouts.validate() {
                return fail(ch.id.span(), format!("channels[{i}].timeouts.{key}"), msg);
            }
        }

        let mut models = HashSet::new();
        for (i, route) in self.routes.iter().enumerate() {
            let model = route.model.get_ref();
            if model.trim().is_empty() {
                return fail(
                    route.model.span(),
                    format!("routes[{i}].model"),
                    "must not be empty".into(),
                );
            }
            if !models.insert(model.as_str()) {
                return fail(
                    route.model.span(),
                    format!("routes[{i}].model"),
                    format!("a route for `{model}` is already defined"),
                );
            }
            if route.targets.get_ref().is_empty() {
                return fail(
                    route.targets.span(),
                    format!("routes[{i}].targets"),
                    "a route needs at least one target".into(),
                );
            }
            for (j, t) in route.targets.get_ref().iter().enumerate() {
                if self.channel(t.channel.get_ref()).is_none() {
                    let known: Vec<&str> = self
                        .channels
                        .iter()
                        .map(|c| c.id.get_ref().as_str())
                        .collect();
                    return fail(
                        t.channel.span(),
                        format!("routes[{i}].targets[{j}].channel"),
                        format!(
                            "no channel with id `{}` (channels: {})",
                            t.channel.get_ref(),
                            if known.is_empty() {
                                "none defined".to_string()
                            } else {
                                known.join(", ")
                            }
                        ),
                    );
                }
                if t.model.trim().is_empty() {
                    return fail(
                        t.channel.span(),
                        format!("routes[{i}].targets[{j}].model"),
                        "must name the upstream model id".into(),
                    );
                }
                if let Some(p) = &t.price {
                    let all = [
                        p.input,
                        p.cached_input,
                        p.cache_write,
                        p.output,
                        p.reasoning,
                    ];
                    if all.iter().flatten().any(|v| !(v.is_finite() && *v >= 0.0)) {
                        return fail(
                            t.channel.span(),
                            format!("routes[{i}].targets[{j}].price"),
                            "prices must be numbers ≥ 0 (per 1M tokens, bucket currency)".into(),
                        );
                    }
                }
            }
            if let Err((key, msg)) = route.timeouts.validate() {
                return fail(
                    route.model.span(),
                    format!("routes[{i}].timeouts.{key}"),
                    msg,
                );
            }
        }
        Ok(())
    }
}

/// Channel types this build can call: those with a provider module.
fn kind_supported(kind: ChannelType) -> bool {
    crate::providers::for_type(kind).is_some()
}

/// `https://user:pass@host/…`: credentials in the authority part.
fn has_userinfo(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    authority.contains('@')
}

/// A browser origin is `scheme://host[:port]`, exactly as browsers send it.
fn check_origin(origin: &str) -> Result<(), String> {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return Err(format!(
            "`{origin}` is not an origin like \"http://localhost:5173\" (scheme://host[:port])"
        ));
    };
    let scheme_ok = !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok || rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
        return Err(format!(
            "`{origin}` is not an origin like \"http://localhost:5173\" (scheme://host[:port], \
             no path or trailing slash)"
        ));
    }
    Ok(())
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Some(port) = s.strip_prefix("localhost:") {
        if let Ok(port) = port.parse::<u16>() {
            return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
        }
    }
    Err(format!(
        "`{s}` is not an address like 127.0.0.1:4141 (IP and port)"
    ))
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..text.floor_char_boundary(offset)];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("switchyard.toml"))
    }

    #[test]
    fn starter_config_parses_and_is_all_comments() {
        let cfg = parse(STARTER_CONFIG).expect("starter config must be valid");
        assert!(cfg.channels.is_empty());
        assert_eq!(cfg.server.listen.get_ref(), "127.0.0.1:4141");
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let err = parse("[server]\nlisten = \"127.0.0.1:1\"\nlistne = 3\n")
            .expect_err("unknown key must fail")
            .to_string();
        assert!(
            err.starts_with("switchyard.toml:3:1: server.listne: "),
            "{err}"
        );
        assert!(err.contains("unknown field `listne`"), "{err}");
    }

    #[test]
    fn wrong_type_names_nested_key() {
        let text = "[[channels]]\nid = \"a\"\ntype = \"openai\"\nbucket = \"credit\"\n\
                    [channels.timeouts]\nidle_s = \"x\"\n";
        let err = parse(text).expect_err("bad type").to_string();
        assert!(err.contains(":6:"), "{err}");
        assert!(err.contains("channels[0].timeouts.idle_s"), "{err}");
    }

    #[test]
    fn route_to_unknown_channel_is_refused_with_location() {
        let text = r#"
[[channels]]
id = "openai"
type = "openai"
bucket = "credit"

[[routes]]
model = "gpt-5.5"
targets = [{ channel = "openai", model = "gpt-5.5" }, { channel = "relay", model = "gpt-5.5" }]
"#;
        let err = parse(text).expect_err("unknown channel").to_string();
        assert!(
            err.contains("switchyard.toml:9:") && err.contains("routes[0].targets[1].channel"),
            "{err}"
        );
        assert!(
            err.contains("no channel with id `relay` (channels: openai)"),
            "{err}"
        );
    }

    #[test]
    fn non_loopback_listen_needs_allow_remote() {
        let err = parse("[server]\nlisten = \"0.0.0.0:4141\"\n")
            .expect_err("remote refused")
            .to_string();
        assert!(err.contains("switchyard.toml:2:10: server.listen"), "{err}");
        assert!(err.contains("allow_remote"), "{err}");
        parse("[server]\nlisten = \"0.0.0.0:4141\"\nallow_remote = true\n").expect("allowed");
    }

    #[test]
    fn channel_types_with_a_provider_are_accepted_and_others_refused_clearly() {
        for (name, kind) in [
            ("openai", ChannelType::OpenAi),
            ("openai-compatible", ChannelType::OpenAiCompatible),
            ("anthropic", ChannelType::Anthropic),
            ("gemini", ChannelType::Gemini),
        ] {
            let text = format!(
                "[[channels]]\nid = \"c\"\ntype = \"{name}\"\nbucket = \"credit\"\nbase_url = \"http://127.0.0.1:9\"\n"
            );
            match parse(&text) {
                Ok(_) => assert!(crate::providers::for_type(kind).is_some(), "{name}"),
                Err(e) => {
                    let err = e.to_string();
                    assert!(crate::providers::for_type(kind).is_none(), "{name}: {err}");
                    assert!(err.contains("channels[0].type"), "{err}");
                    assert!(err.contains("not yet supported"), "{err}");
                }
            }
        }
        let claude =
            parse("[[channels]]\nid = \"claude\"\ntype = \"anthropic\"\nbucket = \"credit\"\n")
                .expect("anthropic channels are supported");
        assert_eq!(claude.channels[0].base_url(), "https://api.anthropic.com");
    }

    #[test]
    fn secret_in_config_is_refused() {
        let err = parse(
            "[[channels]]\nid = \"o\"\ntype = \"openai\"\nbucket = \"credit\"\nsecret = \"sk-live-123\"\n",
        )
        .expect_err("literal secret")
        .to_string();
        assert!(err.contains("channels[0].secret"), "{err}");
        assert!(err.contains("switchyard secret set"), "{err}");
    }

    #[test]
    fn compatible_channel_needs_base_url_and_duplicates_are_refused() {
        let err =
            parse("[[channels]]\nid = \"r\"\ntype = \"openai-compatible\"\nbucket = \"wallet\"\n")
                .expect_err("base_url")
                .to_string();
        assert!(err.contains("base_url"), "{err}");
        let dup = "[[channels]]\nid = \"a\"\ntype = \"openai\"\nbucket = \"credit\"\n\
                   [[channels]]\nid = \"a\"\ntype = \"openai\"\nbucket = \"credit\"\n";
        let err = parse(dup).expect_err("dup").to_string();
        assert!(
            err.contains("switchyard.toml:6:") && err.contains("duplicate channel id"),
            "{err}"
        );
    }

    #[test]
    fn bucket_defaults_follow_design() {
        let cfg = parse("").expect("empty config is valid");
        assert_eq!(cfg.buckets.currency(Bucket::Credit), "USD");
        assert_eq!(cfg.buckets.currency(Bucket::Wallet), "CNY");
        assert_eq!(cfg.buckets.get(Bucket::Credit).on_empty, OnEmpty::Block);
        assert!((cfg.buckets.usd_rate(Bucket::Wallet) - 7.1).abs() < 1e-9);
    }

    #[test]
    fn base_url_with_credentials_is_refused() {
        let err = parse(
            "[[channels]]\nid = \"r\"\ntype = \"openai-compatible\"\nbucket = \"wallet\"\n\
             base_url = \"https://user:sk-123@relay.example/v1\"\n",
        )
        .expect_err("credentials in the URL")
        .to_string();
        assert!(err.contains("channels[0].base_url"), "{err}");
        assert!(
            !err.contains("sk-123"),
            "the message does not repeat them: {err}"
        );
        assert!(!has_userinfo("https://relay.example/v1/models@latest"));
    }

    #[test]
    fn allowed_origins_and_client_timeout_are_checked() {
        let cfg = parse(
            "[server]\nallowed_origins = [\"http://localhost:5173\", \"tauri://localhost\"]\n\
             client_timeout_s = 2.5\n",
        )
        .expect("valid");
        assert_eq!(
            cfg.server.client_timeout(),
            std::time::Duration::from_millis(2500)
        );
        assert_eq!(
            parse("").expect("defaults").server.client_timeout(),
            std::time::Duration::from_secs(30)
        );
        let err = parse("[server]\nallowed_origins = [\"http://localhost:5173/\"]\n")
            .expect_err("trailing slash")
            .to_string();
        assert!(err.contains("server.allowed_origins[0]"), "{err}");
        let err = parse("[server]\nclient_timeout_s = 0\n")
            .expect_err("zero")
            .to_string();
        assert!(err.contains("server.client_timeout_s"), "{err}");
    }

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("é\nx", 3), (2, 1));
    }
}
