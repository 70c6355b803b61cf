//! Gateway keys: the local `sy-…` API keys that tools present on the
//! loopback port.
//!
//! A key's plaintext exists once, when it is created and shown; only its
//! SHA-256 hash is stored. Presented keys are compared against every stored
//! hash in constant time. A key is scoped to model globs and buckets and
//! belongs to an optional project label.

mod cache;

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use globset::{Glob, GlobSet, GlobSetBuilder};
use rand::Rng;
use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};

use crate::config::Bucket;
use crate::ledger::money::parse_amount;

pub use cache::KeyCache;

const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// 43 base62 characters carry 256 bits of randomness.
const KEY_CHARS: usize = 43;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("a key named `{0}` already exists; pick another name or revoke it first")]
    Exists(String),
    #[error("no active key named `{0}` (see `switchyard key list`)")]
    NotFound(String),
    #[error("key name `{0}` must be 1-64 characters of letters, digits, `-`, `_` or `.`")]
    BadName(String),
    #[error("`{0}` is not a valid model glob: {1}")]
    BadGlob(String, String),
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
}

/// A stored gateway key (never its plaintext).
#[derive(Debug, Clone)]
pub struct GatewayKey {
    pub id: i64,
    pub name: String,
    /// The first characters of the key, to recognise it in lists.
    pub prefix: String,
    hash: [u8; 32],
    /// Model globs the key may call; empty means every model.
    pub models: Vec<String>,
    /// Buckets the key may spend from; empty means both.
    pub buckets: Vec<Bucket>,
    pub project: Option<String>,
    /// Most it may spend per local day, per bucket, in micro-units of that
    /// bucket's currency.
    pub daily_budget: BTreeMap<Bucket, i64>,
    /// Most it may spend per calendar month, likewise.
    pub monthly_budget: BTreeMap<Bucket, i64>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    matcher: GlobSet,
}

impl GatewayKey {
    pub fn allows_model(&self, model: &str) -> bool {
        self.models.is_empty() || self.matcher.is_match(model)
    }

    pub fn allows_bucket(&self, bucket: Bucket) -> bool {
        self.buckets.is_empty() || self.buckets.contains(&bucket)
    }

    pub fn models_display(&self) -> String {
        if self.models.is_empty() {
            "all models".into()
        } else {
            self.models.join(", ")
        }
    }

    pub fn buckets_display(&self) -> String {
        if self.buckets.is_empty() {
            "credit, wallet".into()
        } else {
            self.buckets
                .iter()
                .map(|b| b.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        }
    }

    pub(crate) fn hash(&self) -> &[u8; 32] {
        &self.hash
    }
}

/// What a new key may do.
#[derive(Debug, Clone, Default)]
pub struct NewKey {
    pub name: String,
    pub models: Vec<String>,
    pub buckets: Vec<Bucket>,
    pub project: Option<String>,
    pub daily_budget: BTreeMap<Bucket, i64>,
    pub monthly_budget: BTreeMap<Bucket, i64>,
}

fn budget_json(b: &BTreeMap<Bucket, i64>) -> String {
    let m: BTreeMap<&str, i64> = b.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    serde_json::to_string(&m).unwrap_or_else(|_| "{}".into())
}

fn budget_from_json(s: &str) -> BTreeMap<Bucket, i64> {
    let m: BTreeMap<String, i64> = serde_json::from_str(s).unwrap_or_default();
    m.into_iter()
        .filter_map(|(k, v)| k.parse().ok().map(|b| (b, v)))
        .collect()
}

/// Budgets as the CLI and the management API take them: `5` (each
/// bucket) or `wallet=30`, repeatable; amounts must be positive.
pub fn parse_budgets(values: &[String]) -> Result<BTreeMap<Bucket, i64>, String> {
    let mut out = BTreeMap::new();
    for v in values {
        match v.split_once('=') {
            Some((b, amount)) => {
                let bucket: Bucket = b.parse()?;
                out.insert(bucket, parse_amount(amount).map_err(|e| e.to_string())?);
            }
            None => {
                let amount = parse_amount(v).map_err(|e| e.to_string())?;
                for b in Bucket::ALL {
                    out.insert(b, amount);
                }
            }
        }
    }
    if out.values().any(|v| *v <= 0) {
        return Err("budgets must be greater than zero".into());
    }
    Ok(out)
}

/// A fresh key: `sy-` followed by 43 base62 characters.
pub fn generate() -> String {
    random_token("sy-")
}

/// `prefix` followed by 43 base62 characters (256 random bits) from the
/// OS-seeded thread RNG.
pub fn random_token(prefix: &str) -> String {
    let mut rng = rand::thread_rng();
    let mut key = String::with_capacity(prefix.len() + KEY_CHARS);
    key.push_str(prefix);
    for _ in 0..KEY_CHARS {
        key.push(ALPHABET[rng.gen_range(0..ALPHABET.len())] as char);
    }
    key
}

pub fn hash_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

fn matcher(globs: &[String]) -> Result<GlobSet, KeyError> {
    let mut b = GlobSetBuilder::new();
    for g in globs {
        b.add(Glob::new(g).map_err(|e| KeyError::BadGlob(g.clone(), e.to_string()))?);
    }
    b.build()
        .map_err(|e| KeyError::BadGlob(globs.join(","), e.to_string()))
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Creates a key; returns it with its plaintext, which is never stored.
pub fn create(conn: &Connection, new: &NewKey) -> Result<(GatewayKey, String), KeyError> {
    if !valid_name(&new.name) {
        return Err(KeyError::BadName(new.name.clone()));
    }
    let matcher = matcher(&new.models)?;
    let exists: Option<i64> = conn
        .query_row(
            "SELECT id FROM gateway_keys WHERE name = ?1",
            [&new.name],
            |r| r.get(0),
        )
        .optional()?;
    if exists.is_some() {
        return Err(KeyError::Exists(new.name.clone()));
    }
    let plaintext = generate();
    let hash = hash_key(&plaintext);
    let prefix: String = plaintext.chars().take(7).collect();
    let created_at = now_secs();
    let models = serde_json::to_string(&new.models).unwrap_or_else(|_| "[]".into());
    let buckets: Vec<&str> = new.buckets.iter().map(|b| b.as_str()).collect();
    let buckets_json = serde_json::to_string(&buckets).unwrap_or_else(|_| "[]".into());
    conn.execute(
        "INSERT INTO gateway_keys (name, prefix, hash, models, buckets, project, created_at,
            daily_budget, monthly_budget)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            new.name,
            prefix,
            hex(&hash),
            models,
            buckets_json,
            new.project,
            created_at,
            budget_json(&new.daily_budget),
            budget_json(&new.monthly_budget),
        ],
    )?;
    let key = GatewayKey {
        id: conn.last_insert_rowid(),
        name: new.name.clone(),
        prefix,
        hash,
        models: new.models.clone(),
        buckets: new.buckets.clone(),
        project: new.project.clone(),
        daily_budget: new.daily_budget.clone(),
        monthly_budget: new.monthly_budget.clone(),
        created_at,
        revoked_at: None,
        matcher,
    };
    Ok((key, plaintext))
}

/// Every key, revoked ones included, oldest first.
pub fn list(conn: &Connection) -> rusqlite::Result<Vec<GatewayKey>> {
    let mut stmt = conn.prepare(
        "SELECT id, name, prefix, hash, models, buckets, project, created_at, revoked_at,
                daily_budget, monthly_budget
         FROM gateway_keys ORDER BY id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, String>(5)?,
            r.get::<_, Option<String>>(6)?,
            r.get::<_, i64>(7)?,
            r.get::<_, Option<i64>>(8)?,
            r.get::<_, String>(9)?,
            r.get::<_, String>(10)?,
        ))
    })?;
    let mut keys = Vec::new();
    for row in rows {
        let (
            id,
            name,
            prefix,
            hash_hex,
            models,
            buckets,
            project,
            created_at,
            revoked_at,
            daily,
            monthly,
        ) = row?;
        let models: Vec<String> = serde_json::from_str(&models).unwrap_or_default();
        let buckets: Vec<String> = serde_json::from_str(&buckets).unwrap_or_default();
        let Some(hash) = unhex(&hash_hex) else {
            tracing::warn!(key = %name, "skipping gateway key with a corrupt hash");
            continue;
        };
        // Globs were validated on creation; a key whose globs no longer
        // parse is skipped rather than widened to every model.
        let Ok(matcher) = matcher(&models) else {
            tracing::warn!(key = %name, "skipping gateway key with invalid model globs");
            continue;
        };
        keys.push(GatewayKey {
            id,
            name,
            prefix,
            hash,
            models,
            buckets: buckets.iter().filter_map(|b| b.parse().ok()).collect(),
            project,
            daily_budget: budget_from_json(&daily),
            monthly_budget: budget_from_json(&monthly),
            created_at,
            revoked_at,
            matcher,
        });
    }
    Ok(keys)
}

/// Revokes the active key called `name`.
pub fn revoke(conn: &Connection, name: &str) -> Result<(), KeyError> {
    let n = conn.execute(
        "UPDATE gateway_keys SET revoked_at = ?1 WHERE name = ?2 AND revoked_at IS NULL",
        params![now_secs(), name],
    )?;
    if n == 0 {
        return Err(KeyError::NotFound(name.to_string()));
    }
    Ok(())
}

/// Replaces the budgets of the active key called `name` (empty: none).
/// A running gateway applies them within a second.
pub fn set_budgets(
    conn: &Connection,
    name: &str,
    daily: &BTreeMap<Bucket, i64>,
    monthly: &BTreeMap<Bucket, i64>,
) -> Result<(), KeyError> {
    let n = conn.execute(
        "UPDATE gateway_keys SET daily_budget = ?1, monthly_budget = ?2
         WHERE name = ?3 AND revoked_at IS NULL",
        params![budget_json(daily), budget_json(monthly), name],
    )?;
    if n == 0 {
        return Err(KeyError::NotFound(name.to_string()));
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if s.len() != 64 {
        return None;
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::db;

    fn conn() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = db::open(&dir.path().join("k.db")).expect("db");
        (dir, c)
    }

    #[test]
    fn generated_keys_are_long_random_base62() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        assert_eq!(a.len(), 3 + KEY_CHARS);
        assert!(a[3..].bytes().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn only_the_hash_is_stored() {
        let (_d, c) = conn();
        let (_, plain) = create(
            &c,
            &NewKey {
                name: "vscode".into(),
                ..Default::default()
            },
        )
        .expect("create");
        let stored: String = c
            .query_row(
                "SELECT hash || prefix || models FROM gateway_keys",
                [],
                |r| r.get(0),
            )
            .expect("row");
        assert!(!stored.contains(&plain));
        assert!(stored.contains(&hex(&hash_key(&plain))));
    }

    #[test]
    fn scope_globs_and_buckets() {
        let (_d, c) = conn();
        let (k, _) = create(
            &c,
            &NewKey {
                name: "scripts".into(),
                models: vec!["gpt-*".into()],
                buckets: vec![Bucket::Wallet],
                project: Some("home".into()),
                daily_budget: BTreeMap::from([(Bucket::Wallet, 5_000_000)]),
                ..Default::default()
            },
        )
        .expect("create");
        assert!(k.allows_model("gpt-5.5"));
        assert!(!k.allows_model("claude-sonnet-4.5"));
        assert!(k.allows_bucket(Bucket::Wallet));
        assert!(!k.allows_bucket(Bucket::Credit));
        let listed = list(&c).expect("list");
        assert_eq!(listed[0].buckets, vec![Bucket::Wallet]);
        assert_eq!(
            listed[0].daily_budget.get(&Bucket::Wallet),
            Some(&5_000_000)
        );
        assert!(listed[0].monthly_budget.is_empty());
        assert!(listed[0].allows_model("gpt-4o") && !listed[0].allows_model("o3"));
    }

    #[test]
    fn duplicate_names_bad_names_and_double_revoke_are_refused() {
        let (_d, c) = conn();
        let new = NewKey {
            name: "a".into(),
            ..Default::default()
        };
        create(&c, &new).expect("first");
        assert!(matches!(create(&c, &new), Err(KeyError::Exists(_))));
        let bad = NewKey {
            name: "has space".into(),
            ..Default::default()
        };
        assert!(matches!(create(&c, &bad), Err(KeyError::BadName(_))));
        revoke(&c, "a").expect("revoke");
        assert!(matches!(revoke(&c, "a"), Err(KeyError::NotFound(_))));
        assert!(list(&c).expect("list")[0].revoked_at.is_some());
    }
}
