//! The providers' verdict on each channel's secret.
//!
//! A channel whose provider answered 401/403 is *rejected* until it answers
//! a request successfully again or the user stores or deletes the secret
//! (`switchyard secret set/delete`). The verdict lives in the
//! `channel_status` table, so that `switchyard secret status` — another
//! process — can show it. The running gateway hands changes to a dedicated
//! writer thread: a request never waits on SQLite for this.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc;

use rusqlite::{params, Connection};

use crate::ledger::db::{self, DbError};

/// A provider refused a channel's secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejection {
    /// The HTTP status it answered (401 or 403).
    pub status: u16,
    /// When, in Unix milliseconds.
    pub at_ms: i64,
}

/// Every channel whose secret is currently rejected.
pub fn rejections(conn: &Connection) -> rusqlite::Result<BTreeMap<String, Rejection>> {
    let mut stmt = conn.prepare(
        "SELECT channel, status, rejected_at FROM channel_status WHERE rejected_at IS NOT NULL",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            Rejection {
                status: r.get::<_, Option<u16>>(1)?.unwrap_or(0),
                at_ms: r.get(2)?,
            },
        ))
    })?;
    rows.collect()
}

pub fn mark_rejected(conn: &Connection, channel: &str, r: Rejection) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO channel_status (channel, rejected_at, status) VALUES (?1, ?2, ?3)
         ON CONFLICT (channel) DO UPDATE SET rejected_at = excluded.rejected_at,
                                             status = excluded.status",
        params![channel, r.at_ms, r.status],
    )?;
    Ok(())
}

/// Forgets a channel's rejection; returns whether there was one.
pub fn clear(conn: &Connection, channel: &str) -> rusqlite::Result<bool> {
    Ok(conn.execute("DELETE FROM channel_status WHERE channel = ?1", [channel])? > 0)
}

enum Change {
    Rejected(String, Rejection),
    Accepted(String),
}

/// The running gateway's handle on the `channel_status` table.
#[derive(Clone)]
pub struct StatusWriter {
    tx: mpsc::Sender<Change>,
}

impl StatusWriter {
    /// Opens the database at `path`, reads the rejections on record and
    /// starts the writer thread, which ends when the writer is dropped.
    /// Blocking.
    pub fn open(path: &Path) -> Result<(StatusWriter, BTreeMap<String, Rejection>), DbError> {
        let conn = db::open(path)?;
        let current = rejections(&conn)?;
        let (tx, rx) = mpsc::channel::<Change>();
        let spawned = std::thread::Builder::new()
            .name("switchyard-channel-status".into())
            .spawn(move || {
                for change in rx {
                    let (channel, result) = match &change {
                        Change::Rejected(c, r) => (c, mark_rejected(&conn, c, *r)),
                        Change::Accepted(c) => (c, clear(&conn, c).map(drop)),
                    };
                    if let Err(e) = result {
                        tracing::warn!(channel = %channel, error = %e, "could not record a channel's secret status");
                    }
                }
            });
        if let Err(e) = spawned {
            // Dropping the receiver makes every later send a no-op: the
            // status is advisory, the gateway serves without it.
            tracing::warn!(error = %e, "could not start the channel status writer");
        }
        Ok((StatusWriter { tx }, current))
    }

    /// Records that the provider answered `status` to `channel`'s secret.
    pub fn rejected(&self, channel: &str, status: u16) {
        let r = Rejection {
            status,
            at_ms: chrono::Utc::now().timestamp_millis(),
        };
        let _ = self.tx.send(Change::Rejected(channel.to_string(), r));
    }

    /// Records that `channel`'s secret works (again).
    pub fn accepted(&self, channel: &str) {
        let _ = self.tx.send(Change::Accepted(channel.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn wait_for(path: &Path, want: impl Fn(&BTreeMap<String, Rejection>) -> bool) {
        let conn = db::open(path).expect("db");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let now = rejections(&conn).expect("read");
            if want(&now) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "status never became as expected: {now:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn writer_records_a_rejection_and_clears_it_when_the_secret_works_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.db");
        let (w, current) = StatusWriter::open(&path).expect("open");
        assert!(current.is_empty());
        w.rejected("openai", 401);
        wait_for(&path, |m| m.get("openai").is_some_and(|r| r.status == 401));
        w.accepted("openai");
        wait_for(&path, |m| m.is_empty());
    }

    #[test]
    fn rejections_survive_a_restart_and_clear_reports_what_it_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.db");
        let conn = db::open(&path).expect("db");
        mark_rejected(
            &conn,
            "relay",
            Rejection {
                status: 403,
                at_ms: 7,
            },
        )
        .expect("mark");
        let (_w, current) = StatusWriter::open(&path).expect("reopen");
        assert_eq!(
            current.get("relay"),
            Some(&Rejection {
                status: 403,
                at_ms: 7
            })
        );
        assert!(clear(&conn, "relay").expect("clear"));
        assert!(!clear(&conn, "relay").expect("clear twice"));
    }
}
