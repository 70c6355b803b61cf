//! Edits of the config file made from the management API: add, change and
//! remove channels and routes.
//!
//! The file is edited as a document ([`toml_edit`]), so the user's comments,
//! ordering and layout stay as they were; only the edited table changes.
//! An edit is checked exactly as `switchyard config check` checks a file,
//! and refused with the same message, before anything is written.

use std::path::Path;

use toml_edit::{Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table, Value};

use super::{Config, ConfigError};

/// Why an edit was not made.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// The file on disk cannot be read or parsed as TOML at all.
    #[error(transparent)]
    File(#[from] ConfigError),
    #[error("{path} is not valid TOML, so it cannot be edited from the app: {message}")]
    Syntax { path: String, message: String },
    /// What the user asked for makes no sense (unknown id, duplicate, …).
    #[error("{0}")]
    Refused(String),
    /// What the user wants to add exists already.
    #[error("{0}")]
    Exists(String),
    /// The object to edit does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The result would not pass `config check`.
    #[error("{0}")]
    Invalid(String),
}

/// A channel as the API describes it; `None` leaves a key out.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelSpec {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub brand: Option<String>,
    pub base_url: Option<String>,
    pub bucket: String,
    /// `keyring` (the default), `none`, or `env:VAR`.
    pub secret: Option<String>,
    #[serde(default)]
    pub models: Vec<String>,
    pub price_multiplier: Option<f64>,
}

/// Changes to a channel. A field that is absent is left alone; `null`
/// removes an optional key.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelPatch {
    #[serde(default, deserialize_with = "some")]
    pub brand: Option<Option<String>>,
    #[serde(default, deserialize_with = "some")]
    pub base_url: Option<Option<String>>,
    pub bucket: Option<String>,
    #[serde(default, deserialize_with = "some")]
    pub secret: Option<Option<String>>,
    pub models: Option<Vec<String>>,
    #[serde(default, deserialize_with = "some")]
    pub price_multiplier: Option<Option<f64>>,
}

/// Tells "present and null" (`Some(None)`) from "absent" (`None`).
fn some<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    serde::Deserialize::deserialize(d).map(Some)
}

/// One target of a route: the channel and the model it is asked for there.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    pub channel: String,
    pub model: String,
}

/// A route's targets (primary first) and its cross-bucket rule.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    pub targets: Vec<TargetSpec>,
    pub cross_bucket: Option<bool>,
}

/// The config file, open for editing.
pub struct ConfigDoc {
    doc: DocumentMut,
    path: std::path::PathBuf,
}

impl ConfigDoc {
    /// Reads the file at `path` (a missing file is an empty config).
    pub fn open(path: &Path) -> Result<ConfigDoc, EditError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                }
                .into())
            }
        };
        ConfigDoc::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<ConfigDoc, EditError> {
        let doc = text.parse::<DocumentMut>().map_err(|e| EditError::Syntax {
            path: path.display().to_string(),
            message: e.message().to_string(),
        })?;
        Ok(ConfigDoc {
            doc,
            path: path.to_path_buf(),
        })
    }

    pub fn text(&self) -> String {
        self.doc.to_string()
    }

    /// The edited document as a checked config, or the message `config
    /// check` would print for it.
    pub fn check(&self) -> Result<Config, EditError> {
        Config::parse(&self.text(), &self.path).map_err(|e| EditError::Invalid(e.to_string()))
    }

    /// Checks the edited document, then replaces the file with it
    /// (write to a temporary file beside it, then rename).
    pub fn save(&self) -> Result<Config, EditError> {
        let config = self.check()?;
        let write = || -> std::io::Result<()> {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut tmp = self.path.clone().into_os_string();
            tmp.push(".edit");
            let tmp = std::path::PathBuf::from(tmp);
            std::fs::write(&tmp, self.text())?;
            if let Ok(meta) = std::fs::metadata(&self.path) {
                std::fs::set_permissions(&tmp, meta.permissions())?;
            }
            std::fs::rename(&tmp, &self.path)
        };
        write().map_err(|source| ConfigError::Write {
            path: self.path.clone(),
            source,
        })?;
        Ok(config)
    }

    /// The `[[name]]` tables, created empty if the file has none.
    fn tables(&mut self, name: &str) -> Result<&mut ArrayOfTables, EditError> {
        if !self.doc.contains_key(name) {
            self.doc
                .insert(name, Item::ArrayOfTables(ArrayOfTables::new()));
        }
        self.doc[name].as_array_of_tables_mut().ok_or_else(|| {
            EditError::Refused(format!(
                "`{name}` in {} is not written as [[{name}]] tables; edit it by hand",
                self.path.display()
            ))
        })
    }

    /// Appends a `[[name]]` table at the end of the file: after any
    /// comments that end it (a starter config is nothing but comments).
    fn push(&mut self, name: &str, mut t: Table) -> Result<(), EditError> {
        let trailing = self.doc.trailing().as_str().unwrap_or_default().to_string();
        if !trailing.trim().is_empty() {
            let sep = if trailing.ends_with("\n\n") { "" } else { "\n" };
            t.decor_mut().set_prefix(format!("{trailing}{sep}"));
            self.doc.set_trailing("");
        } else if !self.doc.to_string().is_empty() {
            t.decor_mut().set_prefix("\n");
        }
        self.tables(name)?.push(t);
        Ok(())
    }

    fn position(
        &mut self,
        array: &str,
        key: &str,
        value: &str,
    ) -> Result<Option<usize>, EditError> {
        Ok(self
            .tables(array)?
            .iter()
            .position(|t| t.get(key).and_then(Item::as_str) == Some(value)))
    }

    pub fn add_channel(&mut self, spec: &ChannelSpec) -> Result<(), EditError> {
        let id = spec.id.trim();
        if self.position("channels", "id", id)?.is_some() {
            return Err(EditError::Exists(format!(
                "a channel with id `{id}` already exists"
            )));
        }
        let mut t = Table::new();
        t.insert("id", toml_edit::value(id));
        t.insert("type", toml_edit::value(spec.kind.trim()));
        if let Some(b) = spec.brand.as_deref().filter(|b| !b.trim().is_empty()) {
            t.insert("brand", toml_edit::value(b.trim()));
        }
        if let Some(u) = spec.base_url.as_deref().filter(|u| !u.trim().is_empty()) {
            t.insert("base_url", toml_edit::value(u.trim()));
        }
        t.insert("bucket", toml_edit::value(spec.bucket.trim()));
        if let Some(s) = spec.secret.as_deref().filter(|s| !s.trim().is_empty()) {
            t.insert("secret", toml_edit::value(s.trim()));
        }
        if !spec.models.is_empty() {
            t.insert("models", Item::Value(Value::Array(strings(&spec.models))));
        }
        if let Some(m) = spec.price_multiplier {
            t.insert("price_multiplier", toml_edit::value(m));
        }
        self.push("channels", t)
    }

    pub fn edit_channel(&mut self, id: &str, patch: &ChannelPatch) -> Result<(), EditError> {
        let i = self
            .position("channels", "id", id)?
            .ok_or_else(|| no_channel(id))?;
        let t = self
            .tables("channels")?
            .get_mut(i)
            .ok_or_else(|| no_channel(id))?;
        set_opt(t, "brand", patch.brand.as_ref().map(|v| v.as_deref()));
        set_opt(t, "base_url", patch.base_url.as_ref().map(|v| v.as_deref()));
        set_opt(t, "secret", patch.secret.as_ref().map(|v| v.as_deref()));
        if let Some(b) = &patch.bucket {
            t.insert("bucket", toml_edit::value(b.trim()));
        }
        if let Some(models) = &patch.models {
            if models.is_empty() {
                t.remove("models");
            } else {
                t.insert("models", Item::Value(Value::Array(strings(models))));
            }
        }
        match patch.price_multiplier {
            None => {}
            Some(None) => {
                t.remove("price_multiplier");
            }
            Some(Some(m)) => {
                t.insert("price_multiplier", toml_edit::value(m));
            }
        }
        Ok(())
    }

    /// Removes a channel; refused while a route still sends to it.
    pub fn remove_channel(&mut self, id: &str) -> Result<(), EditError> {
        let i = self
            .position("channels", "id", id)?
            .ok_or_else(|| no_channel(id))?;
        let users: Vec<String> = self
            .tables("routes")?
            .iter()
            .filter(|r| route_targets(r).iter().any(|t| t.channel == id))
            .filter_map(|r| r.get("model").and_then(Item::as_str).map(String::from))
            .collect();
        if !users.is_empty() {
            return Err(EditError::Refused(format!(
                "channel `{id}` is a target of route{} {}; remove it from {} first",
                if users.len() == 1 { "" } else { "s" },
                users
                    .iter()
                    .map(|u| format!("`{u}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                if users.len() == 1 {
                    "that route"
                } else {
                    "those routes"
                },
            )));
        }
        self.tables("channels")?.remove(i);
        Ok(())
    }

    /// Creates the route `model`; refused if it exists.
    pub fn add_route(&mut self, model: &str, spec: &RouteSpec) -> Result<(), EditError> {
        let model = model.trim();
        if model.is_empty() {
            return Err(EditError::Refused("a route needs a model name".into()));
        }
        if self.position("routes", "model", model)?.is_some() {
            return Err(EditError::Exists(format!(
                "a route for model `{model}` already exists; edit it instead"
            )));
        }
        let mut t = Table::new();
        t.insert("model", toml_edit::value(model));
        t.insert(
            "targets",
            Item::Value(Value::Array(targets(&spec.targets, &[]))),
        );
        if let Some(cb) = spec.cross_bucket {
            t.insert("cross_bucket", toml_edit::value(cb));
        }
        self.push("routes", t)
    }

    /// Replaces the targets (and order) of route `model`. A target that
    /// stays keeps its price override.
    pub fn edit_route(&mut self, model: &str, spec: &RouteSpec) -> Result<(), EditError> {
        let i = self
            .position("routes", "model", model)?
            .ok_or_else(|| no_route(model))?;
        let t = self
            .tables("routes")?
            .get_mut(i)
            .ok_or_else(|| no_route(model))?;
        let before = existing_targets(t);
        let keep_decor = t
            .get("targets")
            .and_then(Item::as_value)
            .map(|v| v.decor().clone());
        let mut value = Value::Array(targets(&spec.targets, &before));
        if let Some(d) = keep_decor {
            *value.decor_mut() = d;
        }
        t.insert("targets", Item::Value(value));
        if let Some(cb) = spec.cross_bucket {
            t.insert("cross_bucket", toml_edit::value(cb));
        }
        Ok(())
    }

    pub fn remove_route(&mut self, model: &str) -> Result<(), EditError> {
        let i = self
            .position("routes", "model", model)?
            .ok_or_else(|| no_route(model))?;
        self.tables("routes")?.remove(i);
        Ok(())
    }
}

fn no_channel(id: &str) -> EditError {
    EditError::NotFound(format!("no channel with id `{id}` in the config"))
}

fn no_route(model: &str) -> EditError {
    EditError::NotFound(format!("no route for model `{model}` in the config"))
}

fn set_opt(t: &mut Table, key: &str, v: Option<Option<&str>>) {
    match v {
        None => {}
        Some(None) => {
            t.remove(key);
        }
        Some(Some(s)) if s.trim().is_empty() => {
            t.remove(key);
        }
        Some(Some(s)) => {
            t.insert(key, toml_edit::value(s.trim()));
        }
    }
}

fn strings(items: &[String]) -> Array {
    let mut a = Array::new();
    for s in items {
        a.push(s.trim());
    }
    a
}

/// The targets of a route table as written: (channel, model, whole entry).
fn existing_targets(route: &Table) -> Vec<(TargetSpec, InlineTable)> {
    let Some(arr) = route.get("targets").and_then(Item::as_array) else {
        return Vec::new();
    };
    arr.iter()
        .filter_map(|v| {
            let t = v.as_inline_table()?;
            let spec = TargetSpec {
                channel: t.get("channel")?.as_str()?.to_string(),
                model: t.get("model")?.as_str()?.to_string(),
            };
            Some((spec, t.clone()))
        })
        .collect()
}

fn route_targets(route: &Table) -> Vec<TargetSpec> {
    existing_targets(route)
        .into_iter()
        .map(|(s, _)| s)
        .collect()
}

/// The `targets = [...]` array, one target a line. A target that was there
/// before keeps its entry as written (price override, comments).
fn targets(specs: &[TargetSpec], before: &[(TargetSpec, InlineTable)]) -> Array {
    let mut a = Array::new();
    for spec in specs {
        let entry = before
            .iter()
            .find(|(s, _)| s == spec)
            .map(|(_, t)| t.clone())
            .unwrap_or_else(|| {
                let mut t = InlineTable::new();
                t.insert("channel", spec.channel.trim().into());
                t.insert("model", spec.model.trim().into());
                t
            });
        let mut v = Value::InlineTable(entry);
        v.decor_mut().set_prefix("\n  ");
        v.decor_mut().set_suffix("");
        a.push_formatted(v);
    }
    a.set_trailing_comma(!specs.is_empty());
    a.set_trailing(if specs.is_empty() { "" } else { "\n" });
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"# my gateway
[buckets.wallet]
currency = "CNY"   # paid in yuan

# the official one
[[channels]]
id = "openai"
type = "openai"
bucket = "credit"

[[channels]]
id = "relay"   # cheap
type = "openai-compatible"
base_url = "https://relay.example/v1"
bucket = "wallet"

[[routes]]
model = "gpt-5.5"
targets = [
  { channel = "openai", model = "gpt-5.5" },
  { channel = "relay", model = "gpt-5.5", price = { input = 3.0, output = 12.0 } },  # backup
]
"#;

    fn doc() -> ConfigDoc {
        ConfigDoc::parse(FILE, Path::new("switchyard.toml")).expect("parses")
    }

    fn spec(pairs: &[(&str, &str)]) -> RouteSpec {
        RouteSpec {
            targets: pairs
                .iter()
                .map(|(c, m)| TargetSpec {
                    channel: c.to_string(),
                    model: m.to_string(),
                })
                .collect(),
            cross_bucket: None,
        }
    }

    #[test]
    fn reordering_targets_keeps_comments_and_price_overrides() {
        let mut d = doc();
        d.edit_route(
            "gpt-5.5",
            &spec(&[("relay", "gpt-5.5"), ("openai", "gpt-5.5")]),
        )
        .expect("edits");
        let text = d.text();
        assert!(text.starts_with("# my gateway\n"), "{text}");
        assert!(
            text.contains("currency = \"CNY\"   # paid in yuan"),
            "{text}"
        );
        assert!(text.contains("# the official one"), "{text}");
        assert!(text.contains("id = \"relay\"   # cheap"), "{text}");
        let relay = text.find("channel = \"relay\"").expect("relay");
        let openai = text.rfind("channel = \"openai\"").expect("openai");
        assert!(relay < openai, "relay is now primary:\n{text}");
        assert!(
            text.contains("price = { input = 3.0, output = 12.0 }"),
            "{text}"
        );
        let config = d.check().expect("still valid");
        assert_eq!(
            config.routes[0].targets.get_ref()[0].channel.get_ref(),
            "relay"
        );
        assert!(config.routes[0].targets.get_ref()[0].price.is_some());
    }

    #[test]
    fn adds_and_removes_channels_and_routes() {
        let mut d = doc();
        d.add_channel(&ChannelSpec {
            id: "ollama".into(),
            kind: "openai-compatible".into(),
            base_url: Some("http://127.0.0.1:11434/v1".into()),
            bucket: "wallet".into(),
            secret: Some("none".into()),
            models: vec!["*".into()],
            ..ChannelSpec::default()
        })
        .expect("adds");
        d.add_route("llama3", &spec(&[("ollama", "llama3")]))
            .expect("adds route");
        let config = d.check().expect("valid");
        assert_eq!(config.channels.len(), 3);
        assert_eq!(config.routes.len(), 2);
        assert!(matches!(
            d.add_channel(&ChannelSpec {
                id: "ollama".into(),
                ..ChannelSpec::default()
            }),
            Err(EditError::Exists(_))
        ));
        let err = d.remove_channel("ollama").expect_err("still routed");
        assert!(err.to_string().contains("`llama3`"), "{err}");
        d.remove_route("llama3").expect("removes route");
        d.remove_channel("ollama").expect("removes channel");
        assert_eq!(d.text(), FILE, "back to the file as it was");
    }

    #[test]
    fn invalid_edits_get_config_check_messages() {
        let mut d = doc();
        d.edit_route("gpt-5.5", &spec(&[("nope", "gpt-5.5")]))
            .expect("edits the document");
        let err = d.check().expect_err("unknown channel");
        assert!(err.to_string().starts_with("switchyard.toml:"), "{err}");
        assert!(err.to_string().contains("nope"), "{err}");

        let mut d = doc();
        d.edit_channel(
            "relay",
            &ChannelPatch {
                bucket: Some("savings".into()),
                ..ChannelPatch::default()
            },
        )
        .expect("edits the document");
        let err = d.check().expect_err("unknown bucket");
        assert!(err.to_string().contains("bucket"), "{err}");
        assert!(matches!(
            d.edit_channel("ghost", &ChannelPatch::default()),
            Err(EditError::NotFound(_))
        ));
    }

    #[test]
    fn patch_null_removes_optional_keys() {
        let mut d = doc();
        let patch: ChannelPatch =
            serde_json::from_str(r#"{"brand": "Relay Co", "price_multiplier": 0.5}"#)
                .expect("patch");
        d.edit_channel("relay", &patch).expect("edits");
        let c = d.check().expect("valid");
        let relay = c.channel("relay").expect("relay");
        assert_eq!(relay.brand.as_deref(), Some("Relay Co"));
        assert_eq!(relay.price_multiplier, Some(0.5));
        let patch: ChannelPatch =
            serde_json::from_str(r#"{"brand": null, "price_multiplier": null}"#).expect("patch");
        d.edit_channel("relay", &patch).expect("edits");
        let c = d.check().expect("valid");
        let relay = c.channel("relay").expect("relay");
        assert_eq!(
            (relay.brand.as_deref(), relay.price_multiplier),
            (None, None)
        );
        // Without a base_url an openai-compatible channel is refused, as by `config check`.
        let patch: ChannelPatch = serde_json::from_str(r#"{"base_url": null}"#).expect("patch");
        d.edit_channel("relay", &patch).expect("edits");
        let err = d.check().expect_err("needs a base_url");
        assert!(err.to_string().contains("base_url"), "{err}");
    }

    #[test]
    fn an_empty_file_gets_its_first_tables() {
        let mut d = ConfigDoc::parse("# nothing yet\n", Path::new("s.toml")).expect("parses");
        d.add_channel(&ChannelSpec {
            id: "openai".into(),
            kind: "openai".into(),
            bucket: "credit".into(),
            ..ChannelSpec::default()
        })
        .expect("adds");
        let c = d.check().expect("valid");
        assert_eq!(c.channels.len(), 1);
        assert!(d.text().starts_with("# nothing yet\n"), "{}", d.text());
    }
}
