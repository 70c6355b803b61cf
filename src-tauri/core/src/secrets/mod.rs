//! Provider secrets and the admin token: where they live and how they are
//! read.
//!
//! Secrets live in the OS keyring (service `switchyard`, account = channel
//! id), or in an environment variable the user named, and nowhere else. The
//! management API's admin token lives there too, under an account no
//! channel id can spell. In memory they are [`SecretString`]s, whose `Debug`
//! prints a placeholder. Store calls block (D-Bus, Keychain), so async code
//! runs them on `spawn_blocking`. [`status`] keeps the providers' verdict on
//! each channel's secret.

pub mod status;

use std::collections::HashMap;
use std::sync::Mutex;

use secrecy::{ExposeSecret, SecretString};

use crate::config::SecretRef;

pub const KEYRING_SERVICE: &str = "switchyard";

/// The keyring account holding the admin token. Channel ids are only
/// `[A-Za-z0-9._-]`, so the `:` keeps it apart from every channel.
pub const ADMIN_TOKEN_ACCOUNT: &str = "switchyard:admin-token";

/// Admin tokens start with this; gateway keys with `sy-`.
pub const ADMIN_TOKEN_PREFIX: &str = "sya-";

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "the OS keyring is not available ({detail}). On Linux, Switchyard needs a Secret Service \
         provider such as GNOME Keyring or KWallet running and unlocked"
    )]
    Unavailable { detail: String },
    #[error("the OS keyring refused access to the secret for channel `{channel}`: {detail}")]
    Denied { channel: String, detail: String },
}

/// Where provider secrets are kept.
pub trait SecretStore: Send + Sync {
    fn get(&self, channel: &str) -> Result<Option<SecretString>, SecretError>;
    fn set(&self, channel: &str, secret: &str) -> Result<(), SecretError>;
    /// Returns whether a secret was there to delete.
    fn delete(&self, channel: &str) -> Result<bool, SecretError>;
}

/// The operating system's keyring.
pub struct KeyringStore {
    service: String,
}

impl KeyringStore {
    pub fn new() -> Self {
        Self::with_service(KEYRING_SERVICE)
    }

    /// A store under another service name (tests use their own).
    pub fn with_service(service: &str) -> Self {
        KeyringStore {
            service: service.to_string(),
        }
    }

    fn entry(&self, channel: &str) -> Result<keyring::Entry, SecretError> {
        keyring::Entry::new(&self.service, channel).map_err(|e| map_err(channel, e))
    }
}

impl Default for KeyringStore {
    fn default() -> Self {
        Self::new()
    }
}

fn map_err(channel: &str, e: keyring::Error) -> SecretError {
    match e {
        keyring::Error::NoStorageAccess(inner) => SecretError::Unavailable {
            detail: inner.to_string(),
        },
        keyring::Error::PlatformFailure(inner) => SecretError::Unavailable {
            detail: inner.to_string(),
        },
        other => SecretError::Denied {
            channel: channel.to_string(),
            detail: other.to_string(),
        },
    }
}

impl SecretStore for KeyringStore {
    fn get(&self, channel: &str) -> Result<Option<SecretString>, SecretError> {
        match self.entry(channel)?.get_password() {
            Ok(s) => Ok(Some(SecretString::from(s))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(map_err(channel, e)),
        }
    }

    fn set(&self, channel: &str, secret: &str) -> Result<(), SecretError> {
        self.entry(channel)?
            .set_password(secret)
            .map_err(|e| map_err(channel, e))
    }

    fn delete(&self, channel: &str) -> Result<bool, SecretError> {
        match self.entry(channel)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(keyring::Error::NoEntry) => Ok(false),
            Err(e) => Err(map_err(channel, e)),
        }
    }
}

/// A process-local store for tests and embedding.
#[derive(Default)]
pub struct MemoryStore {
    secrets: Mutex<HashMap<String, String>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
}

impl SecretStore for MemoryStore {
    fn get(&self, channel: &str) -> Result<Option<SecretString>, SecretError> {
        let map = self.secrets.lock().unwrap_or_else(|p| p.into_inner());
        Ok(map.get(channel).map(|s| SecretString::from(s.clone())))
    }

    fn set(&self, channel: &str, secret: &str) -> Result<(), SecretError> {
        let mut map = self.secrets.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(channel.to_string(), secret.to_string());
        Ok(())
    }

    fn delete(&self, channel: &str) -> Result<bool, SecretError> {
        let mut map = self.secrets.lock().unwrap_or_else(|p| p.into_inner());
        Ok(map.remove(channel).is_some())
    }
}

/// A channel's secret as the gateway resolved it at start.
#[derive(Debug, Clone)]
pub enum ResolvedSecret {
    /// Send this secret.
    Present(SecretString),
    /// The channel needs none (`secret = "none"`).
    NotNeeded,
    /// Nothing stored yet: what the user should do.
    Missing(String),
    /// The store could not be read: why.
    Unavailable(String),
}

/// Resolves a channel's secret reference. Blocking.
pub fn resolve(store: &dyn SecretStore, channel: &str, secret: &SecretRef) -> ResolvedSecret {
    match secret {
        SecretRef::None => ResolvedSecret::NotNeeded,
        SecretRef::Env(var) => match std::env::var(var) {
            Ok(v) if !v.is_empty() => ResolvedSecret::Present(SecretString::from(v)),
            _ => ResolvedSecret::Missing(format!(
                "environment variable {var} is not set (channel `{channel}` reads its secret from it)"
            )),
        },
        SecretRef::Keyring => match store.get(channel) {
            Ok(Some(s)) => ResolvedSecret::Present(s),
            Ok(None) => ResolvedSecret::Missing(format!(
                "no secret stored for channel `{channel}`; run `switchyard secret set {channel}`"
            )),
            Err(e @ SecretError::Unavailable { .. }) => ResolvedSecret::Unavailable(format!(
                "{e}; or set `secret = \"env:VARIABLE\"` for channel `{channel}`"
            )),
            Err(e) => ResolvedSecret::Unavailable(e.to_string()),
        },
    }
}

/// Where this run's admin token came from.
#[derive(Debug)]
pub enum AdminTokenSource {
    /// Read from the store: the same token as the last run.
    Stored,
    /// Made now and stored for the next runs.
    Created,
    /// The store could not be used (why): the token lasts for this run only.
    Ephemeral(String),
}

/// The management API's admin token: read from `store`, or made (256
/// random bits) and stored on first use. When the store cannot be used the
/// gateway still starts, with a token valid until it stops. Blocking.
pub fn admin_token(store: &dyn SecretStore) -> (SecretString, AdminTokenSource) {
    match store.get(ADMIN_TOKEN_ACCOUNT) {
        Ok(Some(t)) if t.expose_secret().starts_with(ADMIN_TOKEN_PREFIX) => {
            return (t, AdminTokenSource::Stored)
        }
        Ok(_) => {}
        Err(e) => {
            let token = SecretString::from(crate::keys::random_token(ADMIN_TOKEN_PREFIX));
            return (token, AdminTokenSource::Ephemeral(e.to_string()));
        }
    }
    let token = crate::keys::random_token(ADMIN_TOKEN_PREFIX);
    let source = match store.set(ADMIN_TOKEN_ACCOUNT, &token) {
        Ok(()) => AdminTokenSource::Created,
        Err(e) => AdminTokenSource::Ephemeral(e.to_string()),
    };
    (SecretString::from(token), source)
}

/// Removes every occurrence of `secret` from upstream text (error bodies
/// sometimes echo the key they were sent) before it is logged or relayed.
pub fn scrub(text: &[u8], secret: Option<&SecretString>) -> bytes::Bytes {
    let Some(secret) = secret
        .map(|s| s.expose_secret().as_bytes())
        .filter(|s| s.len() >= 4)
    else {
        return bytes::Bytes::copy_from_slice(text);
    };
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i..].starts_with(secret) {
            out.extend_from_slice(b"[redacted]");
            i += secret.len();
        } else {
            out.push(text[i]);
            i += 1;
        }
    }
    bytes::Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_every_copy_of_the_secret() {
        let s = SecretString::from("sk-abc123");
        let out = scrub(b"bad key sk-abc123 (sk-abc123)", Some(&s));
        assert_eq!(&out[..], b"bad key [redacted] ([redacted])");
        assert_eq!(&scrub(b"x", None)[..], b"x");
    }

    #[test]
    fn memory_store_round_trip_and_debug_hides_value() {
        let s = MemoryStore::new();
        assert!(s.get("openai").expect("get").is_none());
        s.set("openai", "sk-test-visible").expect("set");
        let got = s.get("openai").expect("get").expect("present");
        assert_eq!(got.expose_secret(), "sk-test-visible");
        assert!(!format!("{got:?}").contains("sk-test-visible"));
        assert!(s.delete("openai").expect("delete"));
        assert!(!s.delete("openai").expect("delete twice"));
    }

    #[test]
    fn missing_keyring_secret_says_what_to_run() {
        let s = MemoryStore::new();
        match resolve(&s, "relay", &SecretRef::Keyring) {
            ResolvedSecret::Missing(msg) => assert!(msg.contains("switchyard secret set relay")),
            other => panic!("expected Missing, got {other:?}"),
        }
        assert!(matches!(
            resolve(&s, "ollama", &SecretRef::None),
            ResolvedSecret::NotNeeded
        ));
    }

    #[test]
    fn admin_token_is_made_once_then_read_back_under_its_own_account() {
        let s = MemoryStore::new();
        let (first, source) = admin_token(&s);
        assert!(matches!(source, AdminTokenSource::Created), "{source:?}");
        let t = first.expose_secret();
        assert!(t.starts_with("sya-") && t.len() >= 4 + 43, "{t}");
        let clash = format!(
            "[[channels]]\nid = \"{ADMIN_TOKEN_ACCOUNT}\"\ntype = \"openai\"\nbucket = \"credit\"\n"
        );
        assert!(
            crate::config::Config::parse(&clash, std::path::Path::new("t.toml")).is_err(),
            "no channel id can name the admin token's account"
        );
        let (again, source) = admin_token(&s);
        assert!(matches!(source, AdminTokenSource::Stored), "{source:?}");
        assert_eq!(again.expose_secret(), t);
    }

    /// A store whose backend is not there, like a Linux session without a
    /// Secret Service.
    struct NoKeyring;

    impl SecretStore for NoKeyring {
        fn get(&self, _: &str) -> Result<Option<SecretString>, SecretError> {
            Err(SecretError::Unavailable {
                detail: "no D-Bus session".into(),
            })
        }
        fn set(&self, _: &str, _: &str) -> Result<(), SecretError> {
            Err(SecretError::Unavailable {
                detail: "no D-Bus session".into(),
            })
        }
        fn delete(&self, _: &str) -> Result<bool, SecretError> {
            Ok(false)
        }
    }

    #[test]
    fn admin_token_without_a_keyring_lasts_for_this_run_and_says_why() {
        let (t, source) = admin_token(&NoKeyring);
        assert!(t.expose_secret().starts_with("sya-"));
        match source {
            AdminTokenSource::Ephemeral(why) => assert!(why.contains("no D-Bus session"), "{why}"),
            other => panic!("expected Ephemeral, got {other:?}"),
        }
    }

    /// A keyring store under a service of its own, emptied when dropped
    /// so the user's real entries are never touched.
    struct TestKeyring {
        store: KeyringStore,
        accounts: Vec<&'static str>,
    }

    impl Drop for TestKeyring {
        fn drop(&mut self) {
            for a in &self.accounts {
                let _ = self.store.delete(a);
            }
        }
    }

    /// The real OS keyring under a throwaway service name, or `None` (with a
    /// `SKIPPED:` line) when this machine has no Secret Service. Where one
    /// is expected (inside `dbus-run-session` with gnome-keyring), set
    /// `SWITCHYARD_REQUIRE_KEYRING=1` to make its absence a failure.
    fn real_keyring(accounts: Vec<&'static str>) -> Option<TestKeyring> {
        let service = format!("switchyard-test-{}", crate::keys::random_token(""));
        let store = KeyringStore::with_service(&service);
        match store.get("probe") {
            Ok(None) => Some(TestKeyring { store, accounts }),
            Ok(Some(_)) => panic!("a fresh test service `{service}` already holds a secret"),
            Err(SecretError::Unavailable { detail }) => {
                assert!(
                    std::env::var_os("SWITCHYARD_REQUIRE_KEYRING").is_none(),
                    "SWITCHYARD_REQUIRE_KEYRING is set but there is no Secret Service: {detail}"
                );
                // Straight to the process's stderr: the test harness
                // captures `eprintln!` of passing tests, and a skip must show.
                use std::io::Write;
                let _ = writeln!(std::io::stderr(), "SKIPPED: no Secret Service ({detail})");
                None
            }
            Err(e) => panic!("the Secret Service is there but refused a read: {e}"),
        }
    }

    #[test]
    fn keyring_store_round_trips_a_secret_in_the_real_secret_service() {
        let Some(k) = real_keyring(vec!["openai", "other"]) else {
            return;
        };
        let s = &k.store;
        s.set("openai", "sk-keyring-roundtrip-1").expect("set");
        let got = s.get("openai").expect("get").expect("present");
        assert_eq!(got.expose_secret(), "sk-keyring-roundtrip-1");
        s.set("openai", "sk-keyring-roundtrip-2")
            .expect("overwrite");
        let got = s.get("openai").expect("get").expect("present");
        assert_eq!(got.expose_secret(), "sk-keyring-roundtrip-2");
        assert!(
            s.get("other").expect("get other").is_none(),
            "accounts are separate"
        );
        assert!(s.delete("openai").expect("delete"));
        assert!(s.get("openai").expect("get after delete").is_none());
        assert!(!s.delete("openai").expect("delete twice"));
        match resolve(s, "openai", &SecretRef::Keyring) {
            ResolvedSecret::Missing(msg) => assert!(msg.contains("switchyard secret set openai")),
            other => panic!("expected Missing, got {other:?}"),
        }
    }

    #[test]
    fn admin_token_persists_in_the_real_secret_service() {
        let Some(k) = real_keyring(vec![ADMIN_TOKEN_ACCOUNT]) else {
            return;
        };
        let (first, source) = admin_token(&k.store);
        assert!(matches!(source, AdminTokenSource::Created), "{source:?}");
        let (again, source) = admin_token(&k.store);
        assert!(matches!(source, AdminTokenSource::Stored), "{source:?}");
        assert_eq!(first.expose_secret(), again.expose_secret());
    }
}
