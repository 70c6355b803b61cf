//! Conversations across models (DESIGN.md §10): storage, and sending.
//!
//! Every model call of a conversation goes through the one request path
//! ([`Core::call`]) under the app's own gateway key ([`APP_KEY`]), with
//! `source = chat`, `run_id` = the conversation and `step` = `answer` or
//! `title`, so routes, failover, balances, budgets and receipts are those
//! of any client. An answer streams into its message as it arrives: the
//! text is written every [`FLUSH`] off the request path, so a stop, a crash
//! or a kill leaves the partial answer marked incomplete, never complete.
//! Texts live here, receipts in the ledger; a message names its receipt.

mod attachments;
pub mod io;
mod search;
mod send;
pub mod store;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;
use serde::Serialize;
use tokio::sync::watch;

pub use attachments::AttachmentError;
pub use send::{choice, path_to, Event, MessageView, Turn, TITLE_MODEL};
pub use store::{
    Attachment, Conversation, ConversationPatch, ListQuery, Message, MessageStatus, Params, Role,
    StoreError,
};

use crate::keys::{self, GatewayKey, NewKey};
use crate::ledger::db;
use crate::ledger::money::format_micro;
use crate::ledger::Receipt;
use crate::request::Core;

/// The gateway key the app's own calls present. Its budgets are set like
/// any key's; revoking it turns the app's model calls off.
pub const APP_KEY: &str = "app";

/// How often a streaming answer's text is written to the database.
pub const FLUSH: Duration = Duration::from_millis(200);

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Invalid(String),
    #[error(
        "The app's own gateway key `{APP_KEY}` is revoked, so the app makes no model calls. \
         Restart Switchyard to make a new one."
    )]
    NoAppKey,
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<rusqlite::Error> for ChatError {
    fn from(e: rusqlite::Error) -> ChatError {
        ChatError::Store(StoreError::Db(e))
    }
}

/// The chat feature of a running gateway.
pub struct Chat {
    core: Arc<Core>,
    conn: Arc<Mutex<Connection>>,
    /// Where attachments are kept, one file per content hash.
    files: PathBuf,
    /// Answers streaming now, by message id: set to stop one.
    live: Mutex<HashMap<String, watch::Sender<bool>>>,
}

/// A receipt's facts as a message shows them under the answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReceiptFacts {
    pub request_id: String,
    pub status: String,
    pub answered_model: Option<String>,
    pub route: String,
    pub channel: Option<String>,
    pub brand: Option<String>,
    pub bucket: Option<String>,
    pub currency: Option<String>,
    pub cost_micros: i64,
    pub cost: String,
    pub input_tokens: u64,
    pub cached_input_tokens: u64,
    pub cache_write_tokens: u64,
    pub output_tokens: u64,
    pub reasoning_tokens: u64,
    pub usage_estimated: bool,
    pub priced: bool,
    pub ttft_ms: Option<i64>,
    pub latency_ms: Option<i64>,
    /// Output (and reasoning) tokens a second after the first token.
    pub tokens_per_s: Option<f64>,
    pub walk: String,
    pub fallback_count: i64,
    pub retry_count: i64,
}

impl ReceiptFacts {
    pub fn of(r: &Receipt) -> ReceiptFacts {
        let out = r.usage.output + r.usage.reasoning;
        // Over a window shorter than this, a rate says more about how the
        // chunks were framed than about the model.
        const MIN_WINDOW_MS: i64 = 50;
        let tokens_per_s = match (r.ttft_ms, r.latency_ms) {
            (Some(t), Some(l)) if l - t >= MIN_WINDOW_MS && out > 0 => {
                Some((out as f64 * 1000.0 / (l - t) as f64 * 10.0).round() / 10.0)
            }
            _ => None,
        };
        ReceiptFacts {
            request_id: r.id.clone(),
            status: r.status.clone(),
            answered_model: r.upstream_model.clone(),
            route: r.route.clone(),
            channel: r.channel.clone(),
            brand: r.brand.clone(),
            bucket: r.bucket.clone(),
            currency: r.currency.clone(),
            cost_micros: r.cost,
            cost: format_micro(r.cost),
            input_tokens: r.usage.input,
            cached_input_tokens: r.usage.cached_input,
            cache_write_tokens: r.usage.cache_write,
            output_tokens: r.usage.output,
            reasoning_tokens: r.usage.reasoning,
            usage_estimated: r.usage_estimated,
            priced: r.price.is_some(),
            ttft_ms: r.ttft_ms,
            latency_ms: r.latency_ms,
            tokens_per_s,
            walk: r.walk.clone(),
            fallback_count: r.fallback_count,
            retry_count: r.retry_count,
        }
    }
}

pub fn now_ms() -> i64 {
    crate::ledger::receipts::unix_ms(std::time::SystemTime::now())
}

pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// Readies the database at `db_path` for chat before the gateway loads its
/// keys: the app's gateway key exists (its plaintext is never kept: the app
/// presents the key in-process), and answers a dead process left streaming
/// are marked incomplete. Blocking.
pub fn prepare(db_path: &Path) -> Result<(), ChatError> {
    let conn = db::open(db_path).map_err(|e| ChatError::Internal(e.to_string()))?;
    let recovered = store::recover_streaming(&conn)?;
    if recovered > 0 {
        tracing::warn!(
            "{recovered} chat answer(s) were streaming when Switchyard last stopped; they are \
             kept, marked incomplete"
        );
    }
    ensure_app_key(&conn)
}

fn ensure_app_key(conn: &Connection) -> Result<(), ChatError> {
    let exists = keys::list(conn)?.iter().any(|k| k.name == APP_KEY);
    if !exists {
        keys::create(
            conn,
            &NewKey {
                name: APP_KEY.into(),
                ..Default::default()
            },
        )
        .map_err(|e| ChatError::Internal(e.to_string()))?;
        tracing::info!("created the gateway key `{APP_KEY}` for the app's own model calls");
    }
    Ok(())
}

impl Chat {
    /// Opens the chat tables in the gateway's database ([`prepare`]d
    /// first). Blocking.
    pub fn open(core: Arc<Core>, data_dir: &Path) -> Result<Arc<Chat>, ChatError> {
        let conn = db::open(&crate::app::db_path(data_dir))
            .map_err(|e| ChatError::Internal(e.to_string()))?;
        Ok(Arc::new(Chat {
            core,
            conn: Arc::new(Mutex::new(conn)),
            files: data_dir.join("attachments"),
            live: Mutex::new(HashMap::new()),
        }))
    }

    /// Runs `f` on a blocking thread with the chat connection.
    pub async fn db<T, F>(&self, f: F) -> Result<T, ChatError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, ChatError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let conn = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&conn)
        })
        .await
        .map_err(|e| ChatError::Internal(e.to_string()))?
    }

    /// The app's own key, as the key cache has it now (budgets included).
    fn app_key(&self) -> Result<Arc<GatewayKey>, ChatError> {
        self.core
            .keys
            .active()
            .iter()
            .find(|k| k.name == APP_KEY)
            .cloned()
            .ok_or(ChatError::NoAppKey)
    }

    pub fn core(&self) -> &Arc<Core> {
        &self.core
    }

    /// Stops a streaming answer. Returns whether one was streaming.
    pub fn stop(&self, message_id: &str) -> bool {
        let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        match live.get(message_id) {
            Some(tx) => {
                let _ = tx.send(true);
                true
            }
            None => false,
        }
    }

    /// Deletes a conversation with its texts and attachments; its receipts
    /// and charges stay.
    pub async fn delete(&self, id: &str) -> Result<(), ChatError> {
        let id = id.to_string();
        let gone = self
            .db(move |conn| Ok(store::delete_conversation(conn, &id)?))
            .await?;
        self.forget_files(&gone);
        Ok(())
    }

    /// Receipts of `ids`, as message footers show them.
    pub async fn receipt_facts(
        &self,
        ids: Vec<String>,
    ) -> Result<HashMap<String, ReceiptFacts>, ChatError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        self.db(move |conn| {
            Ok(crate::ledger::receipts::by_ids(conn, &ids)?
                .iter()
                .map(|r| (r.id.clone(), ReceiptFacts::of(r)))
                .collect())
        })
        .await
    }
}
