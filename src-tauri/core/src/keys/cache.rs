//! The in-memory set of active gateway keys the server authenticates
//! against, kept in step with the database so that `switchyard key create`
//! and `key revoke` take effect on a running server without a restart.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rusqlite::Connection;
use subtle::ConstantTimeEq;

use super::{hash_key, list, GatewayKey};
use crate::ledger::db;

/// How often a running server re-reads keys (so revocations apply).
const POLL: Duration = Duration::from_secs(1);

pub struct KeyCache {
    keys: RwLock<Arc<Vec<Arc<GatewayKey>>>>,
    conn: Mutex<Connection>,
    last_data_version: Mutex<i64>,
}

impl KeyCache {
    /// Opens its own connection to the database at `path` and loads keys.
    pub fn open(path: PathBuf) -> Result<Arc<KeyCache>, db::DbError> {
        let conn = db::open(&path)?;
        let cache = Arc::new(KeyCache {
            keys: RwLock::new(Arc::new(Vec::new())),
            conn: Mutex::new(conn),
            last_data_version: Mutex::new(-1),
        });
        cache.reload()?;
        Ok(cache)
    }

    /// Re-reads active keys when the database changed since the last read.
    /// Checking costs one `PRAGMA data_version` on an open connection, so a
    /// miss can afford it: a key made by the CLI a moment ago works at once.
    fn reload(&self) -> Result<(), db::DbError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let version: i64 = conn.pragma_query_value(None, "data_version", |r| r.get(0))?;
        let mut last = self
            .last_data_version
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if *last != version {
            let active: Vec<Arc<GatewayKey>> = list(&conn)?
                .into_iter()
                .filter(|k| k.revoked_at.is_none())
                .map(Arc::new)
                .collect();
            *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(active);
            *last = version;
        }
        Ok(())
    }

    async fn reload_async(self: &Arc<Self>) {
        let this = Arc::clone(self);
        let res = tokio::task::spawn_blocking(move || this.reload()).await;
        match res {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "could not reload gateway keys"),
            Err(e) => tracing::warn!(error = %e, "gateway key reload task failed"),
        }
    }

    /// Keeps the cache fresh until the runtime shuts down.
    pub fn spawn_poller(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(POLL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(this) = weak.upgrade() else { break };
                this.reload_async().await;
            }
        });
    }

    /// Compares the presented key against every active key's hash in
    /// constant time (no early exit on a match or a mismatching byte).
    fn find(&self, hash: &[u8; 32]) -> Option<Arc<GatewayKey>> {
        let keys = Arc::clone(&self.keys.read().unwrap_or_else(|p| p.into_inner()));
        let mut found = None;
        for k in keys.iter() {
            if bool::from(k.hash().ct_eq(hash)) {
                found = Some(Arc::clone(k));
            }
        }
        found
    }

    /// The active key matching `presented`, if any.
    pub async fn authenticate(self: &Arc<Self>, presented: &str) -> Option<Arc<GatewayKey>> {
        let hash = hash_key(presented);
        if let Some(k) = self.find(&hash) {
            return Some(k);
        }
        // Perhaps a key created a moment ago by the CLI: look again.
        self.reload_async().await;
        self.find(&hash)
    }

    /// Active keys, for `/v1/models` and the management views.
    pub fn active(&self) -> Arc<Vec<Arc<GatewayKey>>> {
        Arc::clone(&self.keys.read().unwrap_or_else(|p| p.into_inner()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{create, revoke, NewKey};

    #[tokio::test]
    async fn new_and_revoked_keys_take_effect_without_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.db");
        let writer = db::open(&path).expect("db");
        let cache = KeyCache::open(path).expect("cache");
        assert!(cache.authenticate("sy-nothing").await.is_none());

        let (_, plain) = create(
            &writer,
            &NewKey {
                name: "ide".into(),
                ..Default::default()
            },
        )
        .expect("create");
        let k = cache
            .authenticate(&plain)
            .await
            .expect("new key found on miss");
        assert_eq!(k.name, "ide");

        revoke(&writer, "ide").expect("revoke");
        cache.reload_async().await;
        assert!(cache.authenticate(&plain).await.is_none());
    }
}
