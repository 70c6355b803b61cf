//! The bundled price catalog (`catalog/prices.toml`): list prices in USD
//! per 1M tokens, context windows, and which models reason before they
//! answer. Looked up by upstream model id, tolerant of dated snapshots
//! (`gpt-4o-2024-08-06`) and vendor prefixes (`openai/gpt-4o`).

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;

const BUNDLED: &str = include_str!("../../catalog/prices.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogEntry {
    pub provider: String,
    pub input: f64,
    pub cached_input: Option<f64>,
    pub cache_write: Option<f64>,
    pub output: f64,
    pub reasoning: Option<f64>,
    pub context_window: Option<u64>,
    #[serde(default)]
    pub reasoning_model: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    pub version: String,
    pub currency: String,
    pub models: HashMap<String, CatalogEntry>,
}

impl Catalog {
    /// The catalog shipped in the binary.
    pub fn bundled() -> &'static Catalog {
        static CATALOG: OnceLock<Catalog> = OnceLock::new();
        CATALOG.get_or_init(|| {
            // The bundled file is checked by a unit test; a build that
            // cannot parse it must not ship.
            toml::from_str(BUNDLED).unwrap_or_else(|e| panic!("bundled catalog: {e}"))
        })
    }

    /// The entry for an upstream model id, if the catalog knows it.
    pub fn lookup(&self, model: &str) -> Option<&CatalogEntry> {
        let base = model.rsplit('/').next().unwrap_or(model);
        if let Some(e) = self.models.get(base) {
            return Some(e);
        }
        // Dated snapshots and suffixes: the longest catalog id that the
        // model id starts with, followed by `-`, `@` or `:`.
        self.models
            .iter()
            .filter(|(id, _)| {
                base.len() > id.len()
                    && base.starts_with(id.as_str())
                    && matches!(base.as_bytes()[id.len()], b'-' | b'@' | b':')
                    && looks_like_version(&base[id.len() + 1..])
            })
            .max_by_key(|(id, _)| id.len())
            .map(|(_, e)| e)
    }
}

/// A date or version suffix such as `2024-08-06`, `20250929`, `latest`, `001`.
fn looks_like_version(suffix: &str) -> bool {
    suffix == "latest"
        || suffix == "preview"
        || suffix.starts_with("preview")
        || suffix.chars().next().is_some_and(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_catalog_parses_and_covers_each_provider() {
        let c = Catalog::bundled();
        assert_eq!(c.currency, "USD");
        for p in ["openai", "anthropic", "gemini", "deepseek"] {
            assert!(c.models.values().any(|e| e.provider == p), "{p}");
        }
        for e in c.models.values() {
            assert!(e.input >= 0.0 && e.output >= 0.0);
        }
    }

    #[test]
    fn lookup_handles_snapshots_and_prefixes_but_not_other_models() {
        let c = Catalog::bundled();
        assert!(c
            .lookup("gpt-4o-2024-08-06")
            .is_some_and(|e| e.input == 2.5));
        assert!(c
            .lookup("openai/gpt-4o-mini")
            .is_some_and(|e| e.input == 0.15));
        assert!(c
            .lookup("claude-sonnet-4-5-20250929")
            .is_some_and(|e| e.cache_write == Some(3.75)));
        // gpt-4o-mini must not resolve to gpt-4o.
        assert!(c.lookup("gpt-4o-mini").is_some_and(|e| e.input == 0.15));
        assert!(c.lookup("gpt-4o-turbo-experimental").is_none());
        assert!(c.lookup("llama3.2").is_none());
        assert!(c.lookup("o3").is_some_and(|e| e.reasoning_model));
    }
}
