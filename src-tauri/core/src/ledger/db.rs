//! The SQLite database file: opening it the same way everywhere (WAL, busy
//! timeout, foreign keys) and bringing its schema up to date with versioned
//! migrations tracked in `PRAGMA user_version`.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

/// Schema migrations, applied in order; index + 1 is the version it leads to.
/// Never edit one that has shipped: add a new one.
const MIGRATIONS: &[&str] = &[
    // 1: gateway keys, stored hashed.
    "CREATE TABLE gateway_keys (
        id          INTEGER PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        prefix      TEXT NOT NULL,
        hash        TEXT NOT NULL UNIQUE,
        models      TEXT NOT NULL DEFAULT '[]',
        buckets     TEXT NOT NULL DEFAULT '[]',
        project     TEXT,
        created_at  INTEGER NOT NULL,
        revoked_at  INTEGER
    );",
];

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot create data directory {path}: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(
        "the database at {path} has schema version {found}, newer than this build knows ({known}); \
         update Switchyard"
    )]
    TooNew {
        path: String,
        found: usize,
        known: usize,
    },
}

/// Opens (creating if needed) the database and migrates it.
pub fn open(path: &Path) -> Result<Connection, DbError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| DbError::CreateDir {
            path: dir.display().to_string(),
            source,
        })?;
    }
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    migrate(&mut conn, &path.display().to_string())?;
    Ok(conn)
}

fn migrate(conn: &mut Connection, path: &str) -> Result<(), DbError> {
    let version: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > MIGRATIONS.len() {
        return Err(DbError::TooNew {
            path: path.to_string(),
            found: version,
            known: MIGRATIONS.len(),
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_database_reaches_latest_version_and_reopens() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested/switchyard.db");
        let conn = open(&path).expect("open");
        let v: usize = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("version");
        assert_eq!(v, MIGRATIONS.len());
        drop(conn);
        open(&path).expect("reopen is a no-op migration");
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.db");
        let conn = open(&path).expect("open");
        conn.pragma_update(None, "user_version", 999).expect("set");
        drop(conn);
        let err = open(&path).expect_err("too new").to_string();
        assert!(err.contains("newer than this build"), "{err}");
    }
}
