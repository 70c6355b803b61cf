//! Provider secrets: where they live and how they are read.
//!
//! Secrets live in the OS keyring (service `switchyard`, account = channel
//! id), or in an environment variable the user named, and nowhere else. In
//! memory they are [`SecretString`]s, whose `Debug` prints a placeholder.
//! Store calls block (D-Bus, Keychain), so async code runs them on
//! `spawn_blocking`.

use std::collections::HashMap;
use std::sync::Mutex;

use secrecy::SecretString;

use crate::config::SecretRef;

pub const KEYRING_SERVICE: &str = "switchyard";

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "the OS keyring is not available ({detail}). On Linux, Switchyard needs a Secret Service \
         provider such as GNOME Keyring or KWallet running and unlocked; alternatively set \
         `secret = \"env:VARIABLE\"` for this channel"
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
            Err(e) => ResolvedSecret::Unavailable(e.to_string()),
        },
    }
}

/// Removes every occurrence of `secret` from upstream text (error bodies
/// sometimes echo the key they were sent) before it is logged or relayed.
pub fn scrub(text: &[u8], secret: Option<&SecretString>) -> bytes::Bytes {
    use secrecy::ExposeSecret;
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
    use secrecy::ExposeSecret;

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
}
