//! The chat tables: conversations, their messages as a tree, attachments,
//! full-text search, and the chat settings. Every SQL statement about them
//! is here, behind functions that take and return the types below.
//!
//! Invariants: a message's parent is in the same conversation; a
//! conversation's `current_leaf` is one of its messages (or none); the
//! search index holds each conversation's title and each finished
//! message's text, and loses them with the conversation. Receipts are the
//! ledger's: a message only names its receipt.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};

use super::search;

/// Migration 5 (`ledger::db::MIGRATIONS`): the chat tables.
pub(crate) const SCHEMA: &str = "
    CREATE TABLE chat_conversations (
        n              INTEGER PRIMARY KEY,
        id             TEXT NOT NULL UNIQUE,
        title          TEXT NOT NULL DEFAULT '',
        system         TEXT NOT NULL DEFAULT '',
        params         TEXT NOT NULL DEFAULT '{}',
        model          TEXT,
        compare_models TEXT NOT NULL DEFAULT '[]',
        pinned         INTEGER NOT NULL DEFAULT 0,
        folder         TEXT,
        current_leaf   TEXT,
        created_at     INTEGER NOT NULL,
        updated_at     INTEGER NOT NULL
    );
    CREATE INDEX chat_conversations_order ON chat_conversations (pinned DESC, updated_at DESC, n DESC);

    CREATE TABLE chat_messages (
        n               INTEGER PRIMARY KEY,
        id              TEXT NOT NULL UNIQUE,
        conversation    INTEGER NOT NULL REFERENCES chat_conversations (n) ON DELETE CASCADE,
        parent_id       TEXT,
        role            TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
        content         TEXT NOT NULL DEFAULT '',
        reasoning       TEXT NOT NULL DEFAULT '',
        model           TEXT,
        status          TEXT NOT NULL CHECK (status IN ('complete', 'streaming', 'incomplete', 'error')),
        error           TEXT,
        error_code      TEXT,
        compare_group   TEXT,
        receipt_id      TEXT,
        created_at      INTEGER NOT NULL
    );
    CREATE INDEX chat_messages_conversation ON chat_messages (conversation, n);
    CREATE INDEX chat_messages_streaming ON chat_messages (status) WHERE status = 'streaming';

    CREATE TABLE chat_attachments (
        id         TEXT PRIMARY KEY,
        sha256     TEXT NOT NULL,
        name       TEXT NOT NULL,
        mime       TEXT NOT NULL,
        size       INTEGER NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX chat_attachments_sha ON chat_attachments (sha256);
    CREATE TABLE chat_message_attachments (
        message    INTEGER NOT NULL REFERENCES chat_messages (n) ON DELETE CASCADE,
        attachment TEXT NOT NULL REFERENCES chat_attachments (id),
        position   INTEGER NOT NULL,
        PRIMARY KEY (message, attachment)
    ) WITHOUT ROWID;
    CREATE INDEX chat_message_attachments_by_attachment ON chat_message_attachments (attachment);

    -- Titles (rowid = -conversation n) and message texts (rowid = message n),
    -- CJK characters spaced apart so each is a token (chat::search).
    CREATE VIRTUAL TABLE chat_fts USING fts5 (text, content = '', contentless_delete = 1,
        tokenize = 'unicode61 remove_diacritics 2');

    CREATE TABLE chat_settings (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
}

pub type Result<T> = std::result::Result<T, StoreError>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// `low`, `medium` or `high`, for models that reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<String>,
}

impl Params {
    pub fn check(&self) -> std::result::Result<(), String> {
        if let Some(t) = self.temperature {
            if !(0.0..=2.0).contains(&t) {
                return Err("`temperature` must be between 0 and 2.".into());
            }
        }
        if self.max_tokens == Some(0) {
            return Err("`max_tokens` must be at least 1.".into());
        }
        if let Some(e) = &self.reasoning_effort {
            if !matches!(e.as_str(), "low" | "medium" | "high") {
                return Err("`reasoning_effort` must be low, medium or high.".into());
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Conversation {
    pub id: String,
    pub title: String,
    pub system: String,
    pub params: Params,
    pub model: Option<String>,
    pub compare_models: Vec<String>,
    pub pinned: bool,
    pub folder: Option<String>,
    pub current_leaf: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Models its answers asked for, most recent first.
    pub models: Vec<String>,
    pub message_count: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// Where an answer stands. `streaming` is only ever seen while the gateway
/// that writes it runs; a start finds none (they become `incomplete`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MessageStatus {
    Complete,
    Streaming,
    Incomplete,
    Error,
}

impl MessageStatus {
    fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Complete => "complete",
            MessageStatus::Streaming => "streaming",
            MessageStatus::Incomplete => "incomplete",
            MessageStatus::Error => "error",
        }
    }

    fn parse(s: &str) -> MessageStatus {
        match s {
            "complete" => MessageStatus::Complete,
            "streaming" => MessageStatus::Streaming,
            "error" => MessageStatus::Error,
            _ => MessageStatus::Incomplete,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Attachment {
    pub id: String,
    pub name: String,
    pub mime: String,
    pub size: i64,
    #[serde(skip)]
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Message {
    pub id: String,
    pub parent_id: Option<String>,
    pub role: Role,
    pub content: String,
    pub reasoning: String,
    pub model: Option<String>,
    pub status: MessageStatus,
    pub error: Option<String>,
    pub error_code: Option<String>,
    pub compare_group: Option<String>,
    pub receipt_id: Option<String>,
    pub created_at: i64,
    pub attachments: Vec<Attachment>,
}

/// A new message to store.
pub struct NewMessage<'a> {
    pub id: &'a str,
    pub parent_id: Option<&'a str>,
    pub role: Role,
    pub content: &'a str,
    pub model: Option<&'a str>,
    pub status: MessageStatus,
    pub compare_group: Option<&'a str>,
    pub attachments: &'a [String],
    pub created_at: i64,
}

/// What a conversation's settings may be changed to; `None` leaves one as it is.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConversationPatch {
    pub title: Option<String>,
    pub pinned: Option<bool>,
    /// `null` takes it out of its folder.
    #[serde(default, deserialize_with = "some_or_null")]
    #[schema(value_type = Option<String>)]
    pub folder: Option<Option<String>>,
    pub system: Option<String>,
    pub params: Option<Params>,
    pub model: Option<String>,
    pub compare_models: Option<Vec<String>>,
    /// The message whose path from the root is in view.
    pub current_leaf: Option<String>,
}

/// Tells a field sent as `null` (`Some(None)`) from one left out (`None`).
fn some_or_null<'de, D, T>(d: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A page of conversations, and where the next one starts.
pub struct Page {
    pub items: Vec<(Conversation, Option<String>)>,
    pub next: Option<String>,
}

pub struct ListQuery<'a> {
    pub q: Option<&'a str>,
    pub model: Option<&'a str>,
    pub folder: Option<&'a str>,
    /// Only these conversations (e.g. those a bucket paid for).
    pub only: Option<&'a [String]>,
    pub limit: usize,
    pub cursor: Option<&'a str>,
}

const CONVERSATION_COLUMNS: &str =
    "c.n, c.id, c.title, c.system, c.params, c.model, c.compare_models, c.pinned,
     c.folder, c.current_leaf, c.created_at, c.updated_at,
     (SELECT count(*) FROM chat_messages m WHERE m.conversation = c.n),
     (SELECT json_group_array(model) FROM (SELECT model, max(n) AS last FROM chat_messages m
        WHERE m.conversation = c.n AND model IS NOT NULL GROUP BY model ORDER BY last DESC))";

fn conversation_from_row(row: &Row<'_>) -> rusqlite::Result<(i64, Conversation)> {
    let params: String = row.get(4)?;
    let compare: String = row.get(6)?;
    let models: String = row.get(13)?;
    Ok((
        row.get(0)?,
        Conversation {
            id: row.get(1)?,
            title: row.get(2)?,
            system: row.get(3)?,
            params: serde_json::from_str(&params).unwrap_or_default(),
            model: row.get(5)?,
            compare_models: serde_json::from_str(&compare).unwrap_or_default(),
            pinned: row.get(7)?,
            folder: row.get(8)?,
            current_leaf: row.get(9)?,
            created_at: row.get(10)?,
            updated_at: row.get(11)?,
            message_count: row.get(12)?,
            models: serde_json::from_str(&models).unwrap_or_default(),
        },
    ))
}

fn conversation_n(conn: &Connection, id: &str) -> Result<i64> {
    conn.query_row(
        "SELECT n FROM chat_conversations WHERE id = ?1",
        [id],
        |r| r.get(0),
    )
    .optional()?
    .ok_or_else(|| StoreError::NotFound(format!("No conversation `{id}`.")))
}

/// A conversation to start.
pub struct NewConversation<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub system: &'a str,
    pub params: &'a Params,
    pub model: Option<&'a str>,
    pub folder: Option<&'a str>,
    pub now: i64,
}

pub fn create_conversation(conn: &Connection, c: &NewConversation<'_>) -> Result<Conversation> {
    conn.execute(
        "INSERT INTO chat_conversations (id, title, system, params, model, folder, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
        params![
            c.id,
            c.title,
            c.system,
            serde_json::to_string(c.params).unwrap_or_else(|_| "{}".into()),
            c.model,
            c.folder,
            c.now
        ],
    )?;
    let n = conn.last_insert_rowid();
    search::index(conn, -n, c.title)?;
    conversation(conn, c.id)
}

pub fn conversation(conn: &Connection, id: &str) -> Result<Conversation> {
    conn.query_row(
        &format!("SELECT {CONVERSATION_COLUMNS} FROM chat_conversations c WHERE c.id = ?1"),
        [id],
        conversation_from_row,
    )
    .optional()?
    .map(|(_, c)| c)
    .ok_or_else(|| StoreError::NotFound(format!("No conversation `{id}`.")))
}

/// Conversations, pinned first, most recently updated next; or, with a
/// query, those whose title or messages match it, best match first, each
/// with a snippet of the text that matched.
pub fn list(conn: &Connection, q: &ListQuery<'_>) -> Result<Page> {
    let limit = q.limit.clamp(1, 200);
    let only = q
        .only
        .map(|ids| serde_json::to_string(ids).unwrap_or_default());
    if let Some(text) = q.q.map(str::trim).filter(|t| !t.is_empty()) {
        return search_list(conn, text, q, only.as_deref(), limit);
    }
    // Keyset paging over (pinned, updated_at, n).
    let cursor = match q.cursor {
        Some(c) => Some(parse_cursor(c)?),
        None => None,
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {CONVERSATION_COLUMNS} FROM chat_conversations c
         WHERE (?1 IS NULL OR EXISTS (SELECT 1 FROM chat_messages m WHERE m.conversation = c.n AND m.model = ?1))
           AND (?2 IS NULL OR c.folder = ?2)
           AND (?3 IS NULL OR c.id IN (SELECT value FROM json_each(?3)))
           AND (?4 IS NULL OR (c.pinned, c.updated_at, c.n) < (?4, ?5, ?6))
         ORDER BY c.pinned DESC, c.updated_at DESC, c.n DESC
         LIMIT ?7"
    ))?;
    let (cp, cu, cn) = cursor.map_or((None, None, None), |(p, u, n)| (Some(p), Some(u), Some(n)));
    let rows = stmt.query_map(
        params![q.model, q.folder, only, cp, cu, cn, limit as i64 + 1],
        conversation_from_row,
    )?;
    let mut items: Vec<(i64, Conversation)> = rows.collect::<rusqlite::Result<_>>()?;
    let next = if items.len() > limit {
        items.truncate(limit);
        items
            .last()
            .map(|(n, c)| format!("{}.{}.{}", i64::from(c.pinned), c.updated_at, n))
    } else {
        None
    };
    Ok(Page {
        items: items.into_iter().map(|(_, c)| (c, None)).collect(),
        next,
    })
}

fn parse_cursor(c: &str) -> Result<(i64, i64, i64)> {
    let bad = || StoreError::Invalid(format!("`cursor` `{c}` is not one this API gave out."));
    let mut parts = c.split('.').map(|p| p.parse::<i64>().map_err(|_| bad()));
    let (Some(p), Some(u), Some(n), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    Ok((p?, u?, n?))
}

/// Conversations matching `text`: those whose title matches first, newest
/// first, then those with a matching message, by their newest matching
/// message. Both walk the index in rowid order, so a common word costs as
/// many rows as the page needs, not every row it matches.
fn search_list(
    conn: &Connection,
    text: &str,
    q: &ListQuery<'_>,
    only: Option<&str>,
    limit: usize,
) -> Result<Page> {
    let Some(expr) = search::query(text) else {
        return Ok(Page {
            items: Vec::new(),
            next: None,
        });
    };
    let bad_cursor =
        |c: &str| StoreError::Invalid(format!("`cursor` `{c}` is not one this API gave out."));
    let offset: usize = match q.cursor {
        Some(c) => c
            .strip_prefix('s')
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| bad_cursor(c))?,
        None => 0,
    };
    let wanted = offset + limit + 1;
    let mut keep = conn.prepare_cached(
        "SELECT 1 FROM chat_conversations c WHERE c.n = ?1
           AND (?2 IS NULL OR EXISTS (SELECT 1 FROM chat_messages m WHERE m.conversation = c.n AND m.model = ?2))
           AND (?3 IS NULL OR c.folder = ?3)
           AND (?4 IS NULL OR c.id IN (SELECT value FROM json_each(?4)))",
    )?;
    // (conversation n, the matching message's n, or None for the title)
    let mut found: Vec<(i64, Option<i64>)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut consider =
        |conv: i64, msg: Option<i64>, found: &mut Vec<(i64, Option<i64>)>| -> Result<()> {
            if seen.insert(conv) && keep.exists(params![conv, q.model, q.folder, only])? {
                found.push((conv, msg));
            }
            Ok(())
        };
    {
        let mut titles = conn.prepare_cached(
            "SELECT -rowid FROM chat_fts WHERE chat_fts MATCH ?1 AND rowid < 0 ORDER BY rowid",
        )?;
        let mut rows = titles.query([&expr])?;
        while found.len() < wanted {
            let Some(row) = rows.next()? else { break };
            consider(row.get(0)?, None, &mut found)?;
        }
    }
    {
        let mut messages = conn.prepare_cached(
            "SELECT f.rowid, m.conversation FROM chat_fts f JOIN chat_messages m ON m.n = f.rowid
             WHERE chat_fts MATCH ?1 AND f.rowid > 0 ORDER BY f.rowid DESC",
        )?;
        let mut rows = messages.query([&expr])?;
        while found.len() < wanted {
            let Some(row) = rows.next()? else { break };
            consider(row.get(1)?, Some(row.get(0)?), &mut found)?;
        }
    }
    let more = found.len() > offset + limit;
    let mut items = Vec::new();
    for (conv, msg) in found.into_iter().skip(offset).take(limit) {
        let (_, c) = conn.query_row(
            &format!("SELECT {CONVERSATION_COLUMNS} FROM chat_conversations c WHERE c.n = ?1"),
            [conv],
            conversation_from_row,
        )?;
        let matched = match msg {
            Some(m) => conn
                .query_row("SELECT content FROM chat_messages WHERE n = ?1", [m], |r| {
                    r.get::<_, String>(0)
                })
                .optional()?
                .unwrap_or_default(),
            None => c.title.clone(),
        };
        let snippet = search::snippet(&matched, text);
        items.push((c, Some(snippet)));
    }
    Ok(Page {
        items,
        next: more.then(|| format!("s{}", offset + limit)),
    })
}

pub fn update_conversation(
    conn: &Connection,
    id: &str,
    patch: &ConversationPatch,
    now: i64,
) -> Result<Conversation> {
    let n = conversation_n(conn, id)?;
    if let Some(params) = &patch.params {
        params.check().map_err(StoreError::Invalid)?;
    }
    if let Some(leaf) = &patch.current_leaf {
        let owner: Option<i64> = conn
            .query_row(
                "SELECT conversation FROM chat_messages WHERE id = ?1",
                [leaf],
                |r| r.get(0),
            )
            .optional()?;
        if owner != Some(n) {
            return Err(StoreError::Invalid(format!(
                "`current_leaf`: message `{leaf}` is not in conversation `{id}`."
            )));
        }
    }
    if let Some(models) = &patch.compare_models {
        if models.len() > 6 {
            return Err(StoreError::Invalid(
                "`compare_models` holds at most 6 models.".into(),
            ));
        }
    }
    let tx = conn.unchecked_transaction()?;
    if let Some(title) = &patch.title {
        tx.execute(
            "UPDATE chat_conversations SET title = ?2 WHERE n = ?1",
            params![n, title.trim()],
        )?;
        search::index(&tx, -n, title.trim())?;
    }
    if let Some(p) = patch.pinned {
        tx.execute(
            "UPDATE chat_conversations SET pinned = ?2 WHERE n = ?1",
            params![n, p],
        )?;
    }
    if let Some(folder) = &patch.folder {
        let folder = folder.as_deref().map(str::trim).filter(|f| !f.is_empty());
        tx.execute(
            "UPDATE chat_conversations SET folder = ?2 WHERE n = ?1",
            params![n, folder],
        )?;
    }
    if let Some(s) = &patch.system {
        tx.execute(
            "UPDATE chat_conversations SET system = ?2 WHERE n = ?1",
            params![n, s],
        )?;
    }
    if let Some(p) = &patch.params {
        tx.execute(
            "UPDATE chat_conversations SET params = ?2 WHERE n = ?1",
            params![n, serde_json::to_string(p).unwrap_or_else(|_| "{}".into())],
        )?;
    }
    if let Some(m) = &patch.model {
        tx.execute(
            "UPDATE chat_conversations SET model = ?2 WHERE n = ?1",
            params![n, m],
        )?;
    }
    if let Some(m) = &patch.compare_models {
        tx.execute(
            "UPDATE chat_conversations SET compare_models = ?2 WHERE n = ?1",
            params![n, serde_json::to_string(m).unwrap_or_else(|_| "[]".into())],
        )?;
    }
    if let Some(leaf) = &patch.current_leaf {
        tx.execute(
            "UPDATE chat_conversations SET current_leaf = ?2 WHERE n = ?1",
            params![n, leaf],
        )?;
    }
    tx.execute(
        "UPDATE chat_conversations SET updated_at = max(updated_at, ?2) WHERE n = ?1",
        params![n, now],
    )?;
    tx.commit()?;
    conversation(conn, id)
}

/// Deletes a conversation, its messages, their search entries, and the
/// attachments no other message uses. Returns the attachments' hashes
/// whose files are no longer needed.
pub fn delete_conversation(conn: &Connection, id: &str) -> Result<Vec<String>> {
    let n = conversation_n(conn, id)?;
    let tx = conn.unchecked_transaction()?;
    let messages: Vec<i64> = tx
        .prepare("SELECT n FROM chat_messages WHERE conversation = ?1")?
        .query_map([n], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let attachments: Vec<String> = tx
        .prepare(
            "SELECT DISTINCT a.attachment FROM chat_message_attachments a
             JOIN chat_messages m ON m.n = a.message WHERE m.conversation = ?1",
        )?
        .query_map([n], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for m in &messages {
        search::unindex(&tx, *m)?;
    }
    search::unindex(&tx, -n)?;
    tx.execute("DELETE FROM chat_conversations WHERE n = ?1", [n])?;
    let mut gone = Vec::new();
    for a in attachments {
        let used: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM chat_message_attachments WHERE attachment = ?1)",
            [&a],
            |r| r.get(0),
        )?;
        if !used {
            let sha: Option<String> = tx
                .query_row(
                    "DELETE FROM chat_attachments WHERE id = ?1 RETURNING sha256",
                    [&a],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(sha) = sha {
                let still: bool = tx.query_row(
                    "SELECT EXISTS (SELECT 1 FROM chat_attachments WHERE sha256 = ?1)",
                    [&sha],
                    |r| r.get(0),
                )?;
                if !still {
                    gone.push(sha);
                }
            }
        }
    }
    tx.commit()?;
    Ok(gone)
}

/// Every folder in use, sorted.
pub fn folders(conn: &Connection) -> Result<Vec<String>> {
    Ok(conn
        .prepare(
            "SELECT DISTINCT folder FROM chat_conversations WHERE folder IS NOT NULL ORDER BY folder",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?)
}

const MESSAGE_COLUMNS: &str =
    "m.n, m.id, m.parent_id, m.role, m.content, m.reasoning, m.model, m.status,
     m.error, m.error_code, m.compare_group, m.receipt_id, m.created_at";

fn message_from_row(row: &Row<'_>) -> rusqlite::Result<(i64, Message)> {
    message_at(row, 0)
}

/// A message whose columns ([`MESSAGE_COLUMNS`]) start at index `at`.
fn message_at(row: &Row<'_>, at: usize) -> rusqlite::Result<(i64, Message)> {
    let role: String = row.get(at + 3)?;
    let status: String = row.get(at + 7)?;
    Ok((
        row.get(at)?,
        Message {
            id: row.get(at + 1)?,
            parent_id: row.get(at + 2)?,
            role: if role == "user" {
                Role::User
            } else {
                Role::Assistant
            },
            content: row.get(at + 4)?,
            reasoning: row.get(at + 5)?,
            model: row.get(at + 6)?,
            status: MessageStatus::parse(&status),
            error: row.get(at + 8)?,
            error_code: row.get(at + 9)?,
            compare_group: row.get(at + 10)?,
            receipt_id: row.get(at + 11)?,
            created_at: row.get(at + 12)?,
            attachments: Vec::new(),
        },
    ))
}

/// Every message of a conversation, in the order they were made.
pub fn messages(conn: &Connection, conversation_id: &str) -> Result<Vec<Message>> {
    let n = conversation_n(conn, conversation_id)?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM chat_messages m WHERE m.conversation = ?1 ORDER BY m.n"
    ))?;
    let mut out: Vec<(i64, Message)> = stmt
        .query_map([n], message_from_row)?
        .collect::<rusqlite::Result<_>>()?;
    let mut att = conn.prepare_cached(
        "SELECT ma.message, a.id, a.name, a.mime, a.size, a.sha256
         FROM chat_message_attachments ma JOIN chat_attachments a ON a.id = ma.attachment
         JOIN chat_messages m ON m.n = ma.message
         WHERE m.conversation = ?1 ORDER BY ma.message, ma.position",
    )?;
    let rows = att.query_map([n], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            Attachment {
                id: r.get(1)?,
                name: r.get(2)?,
                mime: r.get(3)?,
                size: r.get(4)?,
                sha256: r.get(5)?,
            },
        ))
    })?;
    let mut by_message: std::collections::HashMap<i64, Vec<Attachment>> = Default::default();
    for row in rows {
        let (m, a) = row?;
        by_message.entry(m).or_default().push(a);
    }
    for (n, m) in &mut out {
        if let Some(a) = by_message.remove(n) {
            m.attachments = a;
        }
    }
    Ok(out.into_iter().map(|(_, m)| m).collect())
}

/// One message and the conversation it is in.
pub fn message(conn: &Connection, id: &str) -> Result<(String, Message)> {
    let (conv, (n, mut msg)) = conn
        .query_row(
            &format!(
                "SELECT c.id, {MESSAGE_COLUMNS} FROM chat_messages m
                 JOIN chat_conversations c ON c.n = m.conversation WHERE m.id = ?1"
            ),
            [id],
            |r| Ok((r.get::<_, String>(0)?, message_at(r, 1)?)),
        )
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("No message `{id}`.")))?;
    msg.attachments = conn
        .prepare_cached(
            "SELECT a.id, a.name, a.mime, a.size, a.sha256
             FROM chat_message_attachments ma JOIN chat_attachments a ON a.id = ma.attachment
             WHERE ma.message = ?1 ORDER BY ma.position",
        )?
        .query_map([n], attachment_from_row)?
        .collect::<rusqlite::Result<_>>()?;
    Ok((conv, msg))
}

fn attachment_from_row(r: &Row<'_>) -> rusqlite::Result<Attachment> {
    Ok(Attachment {
        id: r.get(0)?,
        name: r.get(1)?,
        mime: r.get(2)?,
        size: r.get(3)?,
        sha256: r.get(4)?,
    })
}

/// Stores a new message under `conversation_id` (its parent must be there
/// too), makes it the conversation's current leaf, and indexes its text
/// when it is already final.
pub fn add_message(conn: &Connection, conversation_id: &str, m: &NewMessage<'_>) -> Result<()> {
    let n = conversation_n(conn, conversation_id)?;
    if let Some(parent) = m.parent_id {
        let owner: Option<i64> = conn
            .query_row(
                "SELECT conversation FROM chat_messages WHERE id = ?1",
                [parent],
                |r| r.get(0),
            )
            .optional()?;
        if owner != Some(n) {
            return Err(StoreError::Invalid(format!(
                "`parent_id`: message `{parent}` is not in conversation `{conversation_id}`."
            )));
        }
    }
    let tx = conn.unchecked_transaction()?;
    tx.execute(
        "INSERT INTO chat_messages (id, conversation, parent_id, role, content, model, status,
             compare_group, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            m.id,
            n,
            m.parent_id,
            m.role.as_str(),
            m.content,
            m.model,
            m.status.as_str(),
            m.compare_group,
            m.created_at
        ],
    )?;
    let mn = tx.last_insert_rowid();
    for (i, a) in m.attachments.iter().enumerate() {
        let known: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM chat_attachments WHERE id = ?1)",
            [a],
            |r| r.get(0),
        )?;
        if !known {
            return Err(StoreError::Invalid(format!(
                "No attachment `{a}`: upload it with POST /api/chat/attachments first."
            )));
        }
        tx.execute(
            "INSERT OR IGNORE INTO chat_message_attachments (message, attachment, position) VALUES (?1, ?2, ?3)",
            params![mn, a, i as i64],
        )?;
    }
    if m.status != MessageStatus::Streaming {
        search::index(&tx, mn, m.content)?;
    }
    tx.execute(
        "UPDATE chat_conversations SET current_leaf = ?2, updated_at = max(updated_at, ?3) WHERE n = ?1",
        params![n, m.id, m.created_at],
    )?;
    tx.commit()?;
    Ok(())
}

/// The text of an answer so far, while it streams.
pub fn set_partial(conn: &Connection, id: &str, content: &str, reasoning: &str) -> Result<()> {
    conn.prepare_cached(
        "UPDATE chat_messages SET content = ?2, reasoning = ?3 WHERE id = ?1 AND status = 'streaming'",
    )?
    .execute(params![id, content, reasoning])?;
    Ok(())
}

/// How an answer ended.
pub struct Finish<'a> {
    pub content: &'a str,
    pub reasoning: &'a str,
    pub status: MessageStatus,
    pub error: Option<&'a str>,
    pub error_code: Option<&'a str>,
    pub receipt_id: Option<&'a str>,
}

pub fn finish_message(conn: &Connection, id: &str, f: &Finish<'_>, now: i64) -> Result<()> {
    let tx = conn.unchecked_transaction()?;
    let n: Option<(i64, i64)> = tx
        .query_row(
            "UPDATE chat_messages SET content = ?2, reasoning = ?3, status = ?4, error = ?5,
                 error_code = ?6, receipt_id = coalesce(?7, receipt_id)
             WHERE id = ?1 RETURNING n, conversation",
            params![
                id,
                f.content,
                f.reasoning,
                f.status.as_str(),
                f.error,
                f.error_code,
                f.receipt_id
            ],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((mn, conv)) = n else {
        return Err(StoreError::NotFound(format!("No message `{id}`.")));
    };
    search::index(&tx, mn, f.content)?;
    tx.execute(
        "UPDATE chat_conversations SET updated_at = max(updated_at, ?2) WHERE n = ?1",
        params![conv, now],
    )?;
    tx.commit()?;
    Ok(())
}

/// The answer links to its receipt as soon as the request has one.
pub fn set_receipt(conn: &Connection, id: &str, receipt_id: &str) -> Result<()> {
    conn.execute(
        "UPDATE chat_messages SET receipt_id = ?2 WHERE id = ?1",
        params![id, receipt_id],
    )?;
    Ok(())
}

/// Answers left `streaming` by a process that died: their text is what
/// was stored, and they are marked incomplete. Returns how many.
pub fn recover_streaming(conn: &Connection) -> Result<usize> {
    let rows: Vec<(i64, String)> = conn
        .prepare("SELECT n, content FROM chat_messages WHERE status = 'streaming'")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let tx = conn.unchecked_transaction()?;
    for (n, content) in &rows {
        tx.execute(
            "UPDATE chat_messages SET status = 'incomplete', error_code = 'interrupted',
                 error = 'Switchyard stopped while this answer was streaming; the text above is what had arrived.'
             WHERE n = ?1",
            [n],
        )?;
        search::index(&tx, *n, content)?;
    }
    tx.commit()?;
    Ok(rows.len())
}

pub fn add_attachment(conn: &Connection, a: &Attachment, now: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO chat_attachments (id, sha256, name, mime, size, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![a.id, a.sha256, a.name, a.mime, a.size, now],
    )?;
    Ok(())
}

pub fn attachment(conn: &Connection, id: &str) -> Result<Attachment> {
    conn.query_row(
        "SELECT id, name, mime, size, sha256 FROM chat_attachments WHERE id = ?1",
        [id],
        attachment_from_row,
    )
    .optional()?
    .ok_or_else(|| StoreError::NotFound(format!("No attachment `{id}`.")))
}

pub fn setting(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row(
            "SELECT value FROM chat_settings WHERE key = ?1",
            [key],
            |r| r.get(0),
        )
        .optional()?)
}

pub fn set_setting(conn: &Connection, key: &str, value: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO chat_settings (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

pub fn clear_setting(conn: &Connection, key: &str) -> Result<()> {
    conn.execute("DELETE FROM chat_settings WHERE key = ?1", [key])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = crate::ledger::db::open(&dir.path().join("c.db")).expect("open");
        (dir, conn)
    }

    fn new_conv(conn: &Connection, id: &str, title: &str, now: i64) {
        create_conversation(
            conn,
            &NewConversation {
                id,
                title,
                system: "",
                params: &Params::default(),
                model: None,
                folder: None,
                now,
            },
        )
        .expect("create");
    }

    fn add(conn: &Connection, conv: &str, id: &str, parent: Option<&str>, role: Role, text: &str) {
        add_message(
            conn,
            conv,
            &NewMessage {
                id,
                parent_id: parent,
                role,
                content: text,
                model: (role == Role::Assistant).then_some("gpt-test"),
                status: MessageStatus::Complete,
                compare_group: None,
                attachments: &[],
                created_at: 10,
            },
        )
        .expect("add");
    }

    #[test]
    fn messages_form_a_tree_and_the_newest_is_the_current_leaf() {
        let (_d, conn) = db();
        new_conv(&conn, "c1", "", 1);
        add(&conn, "c1", "u1", None, Role::User, "hi");
        add(&conn, "c1", "a1", Some("u1"), Role::Assistant, "hello");
        add(&conn, "c1", "a2", Some("u1"), Role::Assistant, "hey");
        let c = conversation(&conn, "c1").expect("conv");
        assert_eq!(c.current_leaf.as_deref(), Some("a2"));
        assert_eq!(c.message_count, 3);
        assert_eq!(c.models, vec!["gpt-test"]);
        let ms = messages(&conn, "c1").expect("messages");
        let parents: Vec<_> = ms.iter().map(|m| m.parent_id.as_deref()).collect();
        assert_eq!(parents, vec![None, Some("u1"), Some("u1")]);
    }

    #[test]
    fn a_parent_from_another_conversation_is_refused() {
        let (_d, conn) = db();
        new_conv(&conn, "c1", "", 1);
        new_conv(&conn, "c2", "", 1);
        add(&conn, "c1", "u1", None, Role::User, "hi");
        let err = add_message(
            &conn,
            "c2",
            &NewMessage {
                id: "u2",
                parent_id: Some("u1"),
                role: Role::User,
                content: "x",
                model: None,
                status: MessageStatus::Complete,
                compare_group: None,
                attachments: &[],
                created_at: 1,
            },
        )
        .expect_err("refused");
        assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    }

    #[test]
    fn streaming_answers_left_by_a_dead_process_become_incomplete_with_their_text() {
        let (_d, conn) = db();
        new_conv(&conn, "c1", "", 1);
        add(&conn, "c1", "u1", None, Role::User, "hi");
        add_message(
            &conn,
            "c1",
            &NewMessage {
                id: "a1",
                parent_id: Some("u1"),
                role: Role::Assistant,
                content: "",
                model: Some("m"),
                status: MessageStatus::Streaming,
                compare_group: None,
                attachments: &[],
                created_at: 2,
            },
        )
        .expect("add");
        set_partial(&conn, "a1", "half an ans", "").expect("partial");
        assert_eq!(recover_streaming(&conn).expect("recover"), 1);
        let (_, m) = message(&conn, "a1").expect("message");
        assert_eq!(m.status, MessageStatus::Incomplete);
        assert_eq!(m.content, "half an ans");
        assert_eq!(m.error_code.as_deref(), Some("interrupted"));
    }

    #[test]
    fn search_finds_latin_and_cjk_words_and_snippets_mark_the_hit() {
        let (_d, conn) = db();
        new_conv(&conn, "c1", "Trip planning", 1);
        add(
            &conn,
            "c1",
            "u1",
            None,
            Role::User,
            "What is the capital of France?",
        );
        new_conv(&conn, "c2", "", 2);
        add(&conn, "c2", "u2", None, Role::User, "我想学习中文语法");
        new_conv(&conn, "c3", "", 3);
        add(
            &conn,
            "c3",
            "u3",
            None,
            Role::User,
            "東京の天気はどうですか",
        );
        let find = |q: &str| -> Vec<(String, String)> {
            list(
                &conn,
                &ListQuery {
                    q: Some(q),
                    model: None,
                    folder: None,
                    only: None,
                    limit: 10,
                    cursor: None,
                },
            )
            .expect("search")
            .items
            .into_iter()
            .map(|(c, s)| (c.id, s.unwrap_or_default()))
            .collect()
        };
        let hits = find("capital");
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].0, "c1");
        assert!(hits[0].1.contains("\u{1}capital\u{2}"), "{:?}", hits[0].1);
        assert_eq!(find("planning")[0].0, "c1");
        assert_eq!(find("中文")[0].0, "c2");
        assert!(find("中文")[0].1.contains("\u{1}中文\u{2}"));
        assert_eq!(find("天気")[0].0, "c3");
        assert!(
            find("文中").is_empty(),
            "characters out of order are not the word"
        );
        assert!(find("nothing-like-this").is_empty());
    }

    #[test]
    fn deleting_a_conversation_takes_its_texts_and_search_entries() {
        let (_d, conn) = db();
        new_conv(&conn, "c1", "Secret plans", 1);
        add(&conn, "c1", "u1", None, Role::User, "unique-word-xyz");
        delete_conversation(&conn, "c1").expect("delete");
        assert!(matches!(
            conversation(&conn, "c1"),
            Err(StoreError::NotFound(_))
        ));
        let n: i64 = conn
            .query_row("SELECT count(*) FROM chat_messages", [], |r| r.get(0))
            .expect("count");
        assert_eq!(n, 0);
        let hits: i64 = conn
            .query_row(
                "SELECT count(*) FROM chat_fts WHERE chat_fts MATCH 'unique OR secret'",
                [],
                |r| r.get(0),
            )
            .expect("fts");
        assert_eq!(hits, 0);
    }

    #[test]
    fn pages_follow_pinned_then_recent_order_without_gaps() {
        let (_d, conn) = db();
        for i in 0..7 {
            new_conv(&conn, &format!("c{i}"), "", i);
        }
        update_conversation(
            &conn,
            "c2",
            &ConversationPatch {
                pinned: Some(true),
                ..Default::default()
            },
            0,
        )
        .expect("pin");
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = list(
                &conn,
                &ListQuery {
                    q: None,
                    model: None,
                    folder: None,
                    only: None,
                    limit: 3,
                    cursor: cursor.as_deref(),
                },
            )
            .expect("page");
            seen.extend(page.items.into_iter().map(|(c, _)| c.id));
            match page.next {
                Some(n) => cursor = Some(n),
                None => break,
            }
        }
        assert_eq!(seen, vec!["c2", "c6", "c5", "c4", "c3", "c1", "c0"]);
    }
}
