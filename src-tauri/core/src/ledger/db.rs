//! The SQLite database file: opening it the same way everywhere (WAL, busy
//! timeout, foreign keys) and bringing its schema up to date with versioned
//! migrations tracked in `PRAGMA user_version`.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension};

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
    // 2: receipts, the append-only money ledger, cached balances, an hourly
    // spend rollup for fast offline reports, and key budgets.
    "CREATE TABLE receipts (
        id                    TEXT PRIMARY KEY,
        started_at            INTEGER NOT NULL,
        ended_at              INTEGER,
        key_id                INTEGER,
        key_name              TEXT,
        project               TEXT,
        source                TEXT NOT NULL DEFAULT 'api',
        run_id                TEXT,
        requested_model       TEXT NOT NULL,
        route                 TEXT NOT NULL,
        channel               TEXT,
        brand                 TEXT,
        upstream_model        TEXT,
        bucket                TEXT,
        cross_bucket_fallback INTEGER NOT NULL DEFAULT 0,
        attempts              TEXT NOT NULL DEFAULT '[]',
        walk                  TEXT NOT NULL DEFAULT '',
        retry_count           INTEGER NOT NULL DEFAULT 0,
        fallback_count        INTEGER NOT NULL DEFAULT 0,
        stream                INTEGER NOT NULL DEFAULT 0,
        input_tokens          INTEGER NOT NULL DEFAULT 0,
        cached_input_tokens   INTEGER NOT NULL DEFAULT 0,
        cache_write_tokens    INTEGER NOT NULL DEFAULT 0,
        output_tokens         INTEGER NOT NULL DEFAULT 0,
        reasoning_tokens      INTEGER NOT NULL DEFAULT 0,
        usage_estimated       INTEGER NOT NULL DEFAULT 0,
        price_input           INTEGER,
        price_cached_input    INTEGER,
        price_cache_write     INTEGER,
        price_output          INTEGER,
        price_reasoning       INTEGER,
        price_source          TEXT,
        currency              TEXT,
        cost                  INTEGER NOT NULL DEFAULT 0,
        ttft_ms               INTEGER,
        latency_ms            INTEGER,
        status                TEXT NOT NULL CHECK (status IN
                                ('pending','ok','error','client_cancelled','upstream_cut','interrupted')),
        error                 TEXT
    );
    CREATE INDEX receipts_started ON receipts (started_at);
    CREATE INDEX receipts_status ON receipts (status) WHERE status = 'pending';
    CREATE INDEX receipts_key_started ON receipts (key_id, started_at);

    CREATE TABLE ledger_entries (
        id            INTEGER PRIMARY KEY,
        at            INTEGER NOT NULL,
        bucket        TEXT NOT NULL CHECK (bucket IN ('credit','wallet')),
        kind          TEXT NOT NULL CHECK (kind IN ('topup','charge','refund','adjustment')),
        amount        INTEGER NOT NULL,
        balance_after INTEGER NOT NULL,
        currency      TEXT NOT NULL,
        receipt_id    TEXT REFERENCES receipts (id),
        note          TEXT
    );
    CREATE INDEX ledger_entries_bucket ON ledger_entries (bucket, id);
    CREATE UNIQUE INDEX ledger_entries_one_charge ON ledger_entries (receipt_id) WHERE kind = 'charge';
    CREATE TRIGGER ledger_entries_append_only_u BEFORE UPDATE ON ledger_entries
        BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END;
    CREATE TRIGGER ledger_entries_append_only_d BEFORE DELETE ON ledger_entries
        BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END;

    CREATE TABLE balances (
        bucket   TEXT PRIMARY KEY,
        balance  INTEGER NOT NULL,
        currency TEXT NOT NULL,
        entries  INTEGER NOT NULL
    );

    CREATE TABLE spend_hourly (
        hour            INTEGER NOT NULL,
        requested_model TEXT NOT NULL,
        channel         TEXT NOT NULL,
        brand           TEXT NOT NULL,
        key_name        TEXT NOT NULL,
        project         TEXT NOT NULL,
        bucket          TEXT NOT NULL,
        source          TEXT NOT NULL,
        currency        TEXT NOT NULL,
        requests        INTEGER NOT NULL,
        errors          INTEGER NOT NULL,
        fallbacks       INTEGER NOT NULL,
        unpriced        INTEGER NOT NULL,
        input_tokens    INTEGER NOT NULL,
        output_tokens   INTEGER NOT NULL,
        cost            INTEGER NOT NULL,
        PRIMARY KEY (hour, requested_model, channel, brand, key_name, project, bucket, source, currency)
    ) WITHOUT ROWID;

    ALTER TABLE gateway_keys ADD COLUMN daily_budget TEXT NOT NULL DEFAULT '{}';
    ALTER TABLE gateway_keys ADD COLUMN monthly_budget TEXT NOT NULL DEFAULT '{}';",
    // 3: the providers' verdict on each channel's secret (secrets::status);
    // a row with `rejected_at` set means the secret was answered 401/403.
    "CREATE TABLE channel_status (
        channel     TEXT PRIMARY KEY,
        rejected_at INTEGER,
        status      INTEGER
    );",
    // 4: what a request was for within its run (a conversation's answer or
    // its title, a research step), beside `source` and `run_id`.
    "ALTER TABLE receipts ADD COLUMN step TEXT;
    CREATE INDEX receipts_run ON receipts (run_id) WHERE run_id IS NOT NULL;",
    // 5: conversations, their messages as a tree, attachments, search.
    crate::chat::store::SCHEMA,
    // 6: a request refused before routing (bad JSON, unknown model or
    // endpoint, a wrong key) leaves a `refused` receipt. SQLite cannot
    // change a CHECK constraint in place: the table is rebuilt with the same
    // columns, in the same order, and its indexes made again.
    "CREATE TABLE receipts_new (
        id                    TEXT PRIMARY KEY,
        started_at            INTEGER NOT NULL,
        ended_at              INTEGER,
        key_id                INTEGER,
        key_name              TEXT,
        project               TEXT,
        source                TEXT NOT NULL DEFAULT 'api',
        run_id                TEXT,
        requested_model       TEXT NOT NULL,
        route                 TEXT NOT NULL,
        channel               TEXT,
        brand                 TEXT,
        upstream_model        TEXT,
        bucket                TEXT,
        cross_bucket_fallback INTEGER NOT NULL DEFAULT 0,
        attempts              TEXT NOT NULL DEFAULT '[]',
        walk                  TEXT NOT NULL DEFAULT '',
        retry_count           INTEGER NOT NULL DEFAULT 0,
        fallback_count        INTEGER NOT NULL DEFAULT 0,
        stream                INTEGER NOT NULL DEFAULT 0,
        input_tokens          INTEGER NOT NULL DEFAULT 0,
        cached_input_tokens   INTEGER NOT NULL DEFAULT 0,
        cache_write_tokens    INTEGER NOT NULL DEFAULT 0,
        output_tokens         INTEGER NOT NULL DEFAULT 0,
        reasoning_tokens      INTEGER NOT NULL DEFAULT 0,
        usage_estimated       INTEGER NOT NULL DEFAULT 0,
        price_input           INTEGER,
        price_cached_input    INTEGER,
        price_cache_write     INTEGER,
        price_output          INTEGER,
        price_reasoning       INTEGER,
        price_source          TEXT,
        currency              TEXT,
        cost                  INTEGER NOT NULL DEFAULT 0,
        ttft_ms               INTEGER,
        latency_ms            INTEGER,
        status                TEXT NOT NULL CHECK (status IN
                                ('pending','ok','error','client_cancelled','upstream_cut','interrupted','refused')),
        error                 TEXT,
        step                  TEXT
    );
    INSERT INTO receipts_new SELECT * FROM receipts;
    DROP TABLE receipts;
    ALTER TABLE receipts_new RENAME TO receipts;
    CREATE INDEX receipts_started ON receipts (started_at);
    CREATE INDEX receipts_status ON receipts (status) WHERE status = 'pending';
    CREATE INDEX receipts_key_started ON receipts (key_id, started_at);
    CREATE INDEX receipts_run ON receipts (run_id) WHERE run_id IS NOT NULL;",
    // 7: Responses API answers kept for `previous_response_id` (`store`),
    // each with the conversation it continues, visible to its own key only.
    "CREATE TABLE responses (
        id         TEXT PRIMARY KEY,
        created_at INTEGER NOT NULL,
        key_id     INTEGER,
        history    TEXT NOT NULL,
        response   TEXT NOT NULL
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
    if version == MIGRATIONS.len() {
        return Ok(());
    }
    // A migration may rebuild a table others refer to (SQLite's way of
    // changing a constraint): references are checked once it is done, not
    // while the old table is dropped. The pragma only takes effect outside
    // a transaction.
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        let broken: Option<String> = tx
            .query_row("PRAGMA foreign_key_check", [], |r| r.get(0))
            .optional()?;
        if let Some(table) = broken {
            return Err(DbError::Sqlite(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY),
                Some(format!(
                    "migration {} left a broken reference in {table}",
                    i + 1
                )),
            )));
        }
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
    }
    conn.pragma_update(None, "foreign_keys", "ON")?;
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
    fn rebuilding_receipts_keeps_rows_charges_and_references() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("v5.db");
        {
            let mut conn = Connection::open(&path).expect("open");
            conn.pragma_update(None, "foreign_keys", "ON").expect("fk");
            let tx = conn.transaction().expect("tx");
            for sql in &MIGRATIONS[..5] {
                tx.execute_batch(sql).expect("old schema");
            }
            tx.pragma_update(None, "user_version", 5).expect("version");
            tx.execute(
                "INSERT INTO receipts (id, started_at, requested_model, route, status, step, cost)
                 VALUES ('req_a', 1, 'm', 'm', 'ok', 'title', 42)",
                [],
            )
            .expect("receipt");
            tx.execute(
                "INSERT INTO ledger_entries (at, bucket, kind, amount, balance_after, currency, receipt_id)
                 VALUES (1, 'credit', 'charge', -42, -42, 'USD', 'req_a')",
                [],
            )
            .expect("charge");
            tx.commit().expect("commit");
        }
        let conn = open(&path).expect("migrates");
        let (step, cost): (String, i64) = conn
            .query_row(
                "SELECT step, cost FROM receipts WHERE id = 'req_a'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("kept");
        assert_eq!((step.as_str(), cost), ("title", 42));
        conn.execute(
            "INSERT INTO receipts (id, started_at, requested_model, route, status)
             VALUES ('req_b', 2, '', '', 'refused')",
            [],
        )
        .expect("a refused receipt is allowed now");
        let err = conn
            .execute(
                "INSERT INTO receipts (id, started_at, requested_model, route, status)
                 VALUES ('req_c', 2, '', '', 'bogus')",
                [],
            )
            .expect_err("the constraint still holds");
        assert!(err.to_string().contains("CHECK"), "{err}");
        let fk: bool = conn
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .expect("pragma");
        assert!(fk, "foreign keys are on again");
        conn.execute(
            "INSERT INTO ledger_entries (at, bucket, kind, amount, balance_after, currency, receipt_id)
             VALUES (1, 'credit', 'charge', -1, -43, 'USD', 'req_missing')",
            [],
        )
        .expect_err("ledger entries still refer to receipts");
        let indexes: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'receipts'
                 AND name LIKE 'receipts_%'",
                [],
                |r| r.get(0),
            )
            .expect("indexes");
        assert_eq!(indexes, 4);
    }

    #[test]
    fn migrates_a_version_1_database_keeping_its_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("v1.db");
        {
            let mut conn = Connection::open(&path).expect("open");
            let tx = conn.transaction().expect("tx");
            tx.execute_batch(MIGRATIONS[0]).expect("v1 schema");
            tx.pragma_update(None, "user_version", 1).expect("version");
            tx.execute(
                "INSERT INTO gateway_keys (name, prefix, hash, created_at) VALUES ('old', 'sy-abc', 'h', 1)",
                [],
            )
            .expect("row");
            tx.commit().expect("commit");
        }
        let conn = open(&path).expect("migrates");
        let (name, budget): (String, String) = conn
            .query_row("SELECT name, daily_budget FROM gateway_keys", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .expect("kept");
        assert_eq!((name.as_str(), budget.as_str()), ("old", "{}"));
        let n: i64 = conn
            .query_row("SELECT count(*) FROM receipts", [], |r| r.get(0))
            .expect("receipts table");
        assert_eq!(n, 0);
    }

    #[test]
    fn ledger_entries_are_append_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = open(&dir.path().join("a.db")).expect("open");
        conn.execute(
            "INSERT INTO ledger_entries (at, bucket, kind, amount, balance_after, currency) VALUES (1, 'credit', 'topup', 5, 5, 'USD')",
            [],
        )
        .expect("insert");
        assert!(conn
            .execute("UPDATE ledger_entries SET amount = 6", [])
            .is_err());
        assert!(conn.execute("DELETE FROM ledger_entries", []).is_err());
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
