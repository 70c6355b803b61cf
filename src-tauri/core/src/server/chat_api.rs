//! The chat API under `/api/chat` (admin token): conversations, sending
//! with answers streamed as server-sent events, stop, regenerate, edit,
//! attachments, the pre-send estimate and the models the app may call.
//! Handlers only translate HTTP; the feature is [`crate::chat`].

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_stream::wrappers::UnboundedReceiverStream;

use super::admin::authorize;
use super::api::{body, internal, query};
use super::{AppState, GatewayError};
use crate::chat::store::{self, ListQuery};
use crate::chat::{choice, io, new_id, now_ms, path_to, Chat, MessageView, TITLE_MODEL};
use crate::chat::{ChatError, ConversationPatch, Event, Params};
use crate::ledger::money::format_micro;
use crate::ledger::receipts;
use crate::record::{UnitPrices, Usage};

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/api/chat/conversations",
            get(list_conversations).post(create_conversation),
        )
        .route(
            "/api/chat/conversations/{id}",
            get(get_conversation)
                .patch(patch_conversation)
                .delete(delete_conversation),
        )
        .route("/api/chat/conversations/{id}/messages", post(send))
        .route("/api/chat/messages/{id}/regenerate", post(regenerate))
        .route("/api/chat/messages/{id}/edit", post(edit))
        .route("/api/chat/messages/{id}/stop", post(stop))
        .route("/api/chat/conversations/{id}/export", get(export))
        .route("/api/chat/import", post(import))
        .route("/api/chat/folders", get(folders))
        .route("/api/chat/attachments", post(attach))
        .route("/api/chat/estimate", post(estimate))
        .route("/api/chat/models", get(models))
        .route("/api/chat/settings", get(settings).put(put_settings))
}

impl From<ChatError> for GatewayError {
    fn from(e: ChatError) -> GatewayError {
        match e {
            ChatError::Store(store::StoreError::NotFound(m)) => GatewayError::NotFound(m),
            ChatError::Store(store::StoreError::Invalid(m)) | ChatError::Invalid(m) => {
                GatewayError::BadRequest(m)
            }
            e @ ChatError::NoAppKey => GatewayError::Conflict(e.to_string()),
            e => internal(e),
        }
    }
}

/// A conversation's cost per bucket, from its receipts.
fn totals(rows: Vec<(String, String, i64)>) -> Vec<Value> {
    rows.into_iter()
        .filter(|(_, _, cost)| *cost != 0)
        .map(|(bucket, currency, cost)| {
            json!({"bucket": bucket, "currency": currency, "cost_micros": cost, "cost": format_micro(cost)})
        })
        .collect()
}

fn summary(c: &store::Conversation, totals: Vec<Value>, snippet: Option<String>) -> Value {
    let mut v = json!({
        "id": c.id, "title": c.title, "pinned": c.pinned, "folder": c.folder,
        "models": c.models, "created_at": c.created_at, "updated_at": c.updated_at,
        "message_count": c.message_count, "totals": totals,
    });
    if let Some(s) = snippet {
        v["snippet"] = json!(s);
    }
    v
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct ListParams {
    /// Full-text search over titles and messages (Latin and CJK).
    q: Option<String>,
    /// Only conversations with answers from this model.
    model: Option<String>,
    /// Only conversations that `credit` or `wallet` paid for.
    bucket: Option<String>,
    folder: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/chat/conversations",
    tag = "Chat",
    summary = "Conversations, pinned first then most recent; or those matching `q`, best first",
    params(ListParams),
    responses(
        (status = 200, description = "`{items, next}`; search results carry a `snippet` with hits between U+0001 and U+0002", body = serde_json::Value),
        super::openapi::BadInput,
    )
)]
async fn list_conversations(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    q: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<Value>, GatewayError> {
    authorize(&state, &headers)?;
    let q = query(q)?;
    if let Some(b) = q.bucket.as_deref() {
        if !matches!(b, "credit" | "wallet") {
            return Err(GatewayError::BadRequest(format!(
                "`bucket` must be credit or wallet, not `{b}`."
            )));
        }
    }
    let chat = &state.chat;
    let page = chat
        .db(move |conn| {
            let only = match q.bucket.as_deref() {
                Some(b) => Some(receipts::runs_paid_from(conn, "chat", b)?),
                None => None,
            };
            let page = store::list(
                conn,
                &ListQuery {
                    q: q.q.as_deref(),
                    model: q.model.as_deref(),
                    folder: q.folder.as_deref(),
                    only: only.as_deref(),
                    limit: q.limit.unwrap_or(50),
                    cursor: q.cursor.as_deref(),
                },
            )?;
            let mut items = Vec::new();
            for (c, snippet) in page.items {
                let t = totals(receipts::run_totals(conn, &c.id)?);
                items.push(summary(&c, t, snippet));
            }
            Ok(json!({"items": items, "next": page.next}))
        })
        .await?;
    Ok(Json(page))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewConversation {
    title: Option<String>,
    system: Option<String>,
    params: Option<Params>,
    model: Option<String>,
    folder: Option<String>,
}

/// A conversation with every message of its tree, each answer with its
/// receipt's facts, and its totals per bucket.
async fn load(
    chat: &Arc<Chat>,
    id: String,
) -> Result<(store::Conversation, Vec<MessageView>, Vec<Value>), GatewayError> {
    let (c, messages, t) = chat
        .db(move |conn| {
            let c = store::conversation(conn, &id)?;
            let m = store::messages(conn, &id)?;
            let t = totals(receipts::run_totals(conn, &id)?);
            Ok((c, m, t))
        })
        .await?;
    let ids: Vec<String> = messages
        .iter()
        .filter_map(|m| m.receipt_id.clone())
        .collect();
    let mut facts = chat.receipt_facts(ids).await?;
    let views: Vec<MessageView> = messages
        .into_iter()
        .map(|m| {
            let receipt = m.receipt_id.as_ref().and_then(|r| facts.remove(r));
            MessageView {
                message: m,
                receipt,
            }
        })
        .collect();
    Ok((c, views, t))
}

/// A whole conversation as the API shows it.
async fn full(chat: &Arc<Chat>, id: String) -> Result<Value, GatewayError> {
    let (c, views, t) = load(chat, id).await?;
    let mut v = summary(&c, t, None);
    v["system"] = json!(c.system);
    v["params"] = json!(c.params);
    v["model"] = json!(c.model);
    v["compare_models"] = json!(c.compare_models);
    v["current_leaf"] = json!(c.current_leaf);
    v["messages"] = json!(views);
    Ok(v)
}

#[utoipa::path(
    post,
    path = "/api/chat/conversations",
    tag = "Chat",
    summary = "Starts a conversation",
    request_body = NewConversation,
    responses(
        (status = 201, description = "The conversation", body = serde_json::Value),
        super::openapi::BadInput,
    )
)]
async fn create_conversation(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    b: Result<Json<NewConversation>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), GatewayError> {
    authorize(&state, &headers)?;
    let b = body(b)?;
    let params = b.params.unwrap_or_default();
    params.check().map_err(GatewayError::BadRequest)?;
    let chat = &state.chat;
    let id = new_id("conv");
    let conv = id.clone();
    chat.db(move |conn| {
        store::create_conversation(
            conn,
            &store::NewConversation {
                id: &conv,
                title: b.title.as_deref().unwrap_or("").trim(),
                system: b.system.as_deref().unwrap_or(""),
                params: &params,
                model: b.model.as_deref(),
                folder: b.folder.as_deref().map(str::trim).filter(|f| !f.is_empty()),
                now: now_ms(),
            },
        )?;
        Ok(())
    })
    .await?;
    Ok((StatusCode::CREATED, Json(full(chat, id).await?)))
}

#[utoipa::path(
    get,
    path = "/api/chat/conversations/{id}",
    tag = "Chat",
    summary = "A conversation with every message of its tree and each answer's receipt facts",
    params(("id" = String, Path, description = "conversation id")),
    responses(
        (status = 200, description = "The conversation", body = serde_json::Value),
        super::openapi::NotFound,
    )
)]
async fn get_conversation(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, GatewayError> {
    authorize(&state, &headers)?;
    Ok(Json(full(&state.chat, id).await?))
}

#[utoipa::path(
    patch,
    path = "/api/chat/conversations/{id}",
    tag = "Chat",
    summary = "Renames, pins, files, or changes a conversation's settings or the branch in view",
    params(("id" = String, Path, description = "conversation id")),
    request_body = ConversationPatch,
    responses(
        (status = 200, description = "The conversation", body = serde_json::Value),
        super::openapi::BadInput,
        super::openapi::NotFound,
    )
)]
async fn patch_conversation(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    b: Result<Json<ConversationPatch>, JsonRejection>,
) -> Result<Json<Value>, GatewayError> {
    authorize(&state, &headers)?;
    let patch = body(b)?;
    let chat = &state.chat;
    let conv = id.clone();
    chat.db(move |conn| {
        store::update_conversation(conn, &conv, &patch, now_ms())?;
        Ok(())
    })
    .await?;
    Ok(Json(full(chat, id).await?))
}

#[utoipa::path(
    delete,
    path = "/api/chat/conversations/{id}",
    tag = "Chat",
    summary = "Deletes a conversation's texts and attachments; its receipts and charges stay",
    params(("id" = String, Path, description = "conversation id")),
    responses(
        (status = 204, description = "Deleted"),
        super::openapi::NotFound,
    )
)]
async fn delete_conversation(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, GatewayError> {
    authorize(&state, &headers)?;
    state.chat.delete(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The events of a send as `text/event-stream`.
fn events(rx: tokio::sync::mpsc::UnboundedReceiver<Event>) -> Response {
    let stream = UnboundedReceiverStream::new(rx).map(|ev| {
        let data = serde_json::to_string(&ev).unwrap_or_else(|_| "{}".into());
        Ok::<_, Infallible>(Bytes::from(format!(
            "event: {}\ndata: {data}\n\n",
            ev.name()
        )))
    });
    let mut resp = Response::new(Body::from_stream(stream));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SendBody {
    content: String,
    /// The message to answer under; left out: the current leaf; `null`: a new root.
    #[serde(default, deserialize_with = "some_or_null")]
    #[schema(value_type = Option<String>)]
    parent_id: Option<Option<String>>,
    /// 1 model, or 2 to 6 to compare.
    models: Vec<String>,
    #[serde(default)]
    attachments: Vec<String>,
}

fn some_or_null<'de, D>(d: D) -> Result<Option<Option<String>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Option::<String>::deserialize(d).map(Some)
}

#[utoipa::path(
    post,
    path = "/api/chat/conversations/{id}/messages",
    tag = "Chat",
    summary = "Sends a message; the answers stream as server-sent events",
    description = "Events: `user` (the stored prompt), `start` (an answer begun, one per model), \
                   `attempt` (a target being tried), `delta` / `reasoning` (text to append), \
                   `done` (an answer finished, with its receipt facts, `error_code` and \
                   `error_bucket` when refused), `end`. Each answer is its own request and receipt.",
    params(("id" = String, Path, description = "conversation id")),
    request_body = SendBody,
    responses(
        (status = 200, description = "text/event-stream of the events above", content_type = "text/event-stream", body = String),
        super::openapi::BadInput,
        super::openapi::NotFound,
    )
)]
async fn send(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    b: Result<Json<SendBody>, JsonRejection>,
) -> Result<Response, GatewayError> {
    authorize(&state, &headers)?;
    let b = body(b)?;
    let rx = state
        .chat
        .send(&id, b.parent_id, b.content, b.attachments, b.models)
        .await?;
    Ok(events(rx))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RegenerateBody {
    /// Another model to answer with; left out: the same one.
    model: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/chat/messages/{id}/regenerate",
    tag = "Chat",
    summary = "Another answer to the same prompt, as a sibling; streams like a send",
    params(("id" = String, Path, description = "an answer's message id")),
    request_body = RegenerateBody,
    responses(
        (status = 200, description = "text/event-stream", content_type = "text/event-stream", body = String),
        super::openapi::BadInput,
        super::openapi::NotFound,
    )
)]
async fn regenerate(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    b: Option<Json<RegenerateBody>>,
) -> Result<Response, GatewayError> {
    authorize(&state, &headers)?;
    let b = b.map(|Json(b)| b).unwrap_or_default();
    let rx = state.chat.regenerate(&id, b.model).await?;
    Ok(events(rx))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct EditBody {
    content: String,
    models: Option<Vec<String>>,
}

#[utoipa::path(
    post,
    path = "/api/chat/messages/{id}/edit",
    tag = "Chat",
    summary = "The prompt with new text as a new branch, answered; streams like a send",
    params(("id" = String, Path, description = "a prompt's message id")),
    request_body = EditBody,
    responses(
        (status = 200, description = "text/event-stream", content_type = "text/event-stream", body = String),
        super::openapi::BadInput,
        super::openapi::NotFound,
    )
)]
async fn edit(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    b: Result<Json<EditBody>, JsonRejection>,
) -> Result<Response, GatewayError> {
    authorize(&state, &headers)?;
    let b = body(b)?;
    let rx = state.chat.edit(&id, b.content, b.models).await?;
    Ok(events(rx))
}

#[utoipa::path(
    post,
    path = "/api/chat/messages/{id}/stop",
    tag = "Chat",
    summary = "Stops a streaming answer: it is kept, marked incomplete; its receipt says client_cancelled",
    params(("id" = String, Path, description = "an answer's message id")),
    responses(
        (status = 204, description = "Stopping"),
        (status = 409, description = "That answer is not streaming", body = crate::request::ErrorBody),
    )
)]
async fn stop(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, GatewayError> {
    authorize(&state, &headers)?;
    if state.chat.stop(&id) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(GatewayError::Conflict(format!(
            "Message `{id}` is not streaming now."
        )))
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct ExportParams {
    /// `markdown` (the path in view, default) or `json` (every branch).
    format: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/chat/conversations/{id}/export",
    tag = "Chat",
    summary = "A conversation as a Markdown or JSON file, with each answer's receipt facts",
    params(("id" = String, Path, description = "conversation id"), ExportParams),
    responses(
        (status = 200, description = "The file (text/markdown or application/json)", body = String),
        super::openapi::BadInput,
        super::openapi::NotFound,
    )
)]
async fn export(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    q: Result<Query<ExportParams>, QueryRejection>,
) -> Result<Response, GatewayError> {
    authorize(&state, &headers)?;
    let format = query(q)?.format.unwrap_or_else(|| "markdown".into());
    let (c, views, _) = load(&state.chat, id).await?;
    let (body, mime, ext) = match format.as_str() {
        "markdown" | "md" => (
            io::markdown(&c, &views),
            "text/markdown; charset=utf-8",
            "md",
        ),
        "json" => (io::json(&c, &views).to_string(), "application/json", "json"),
        other => {
            return Err(GatewayError::BadRequest(format!(
                "`format` must be markdown or json, not `{other}`."
            )))
        }
    };
    let mut resp = Response::new(Body::from(body));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    let name: String = c
        .title
        .chars()
        .map(|ch| if ch.is_alphanumeric() { ch } else { '-' })
        .take(60)
        .collect();
    let name = if name.trim_matches('-').is_empty() {
        c.id.clone()
    } else {
        name
    };
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}.{ext}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

#[utoipa::path(
    post,
    path = "/api/chat/import",
    tag = "Chat",
    summary = "Imports a ChatGPT `conversations.json` export, branches kept (into the folder Imported)",
    request_body(content = serde_json::Value, description = "ChatGPT's conversations.json"),
    responses(
        (status = 201, description = "`{imported, conversations}`", body = serde_json::Value),
        super::openapi::BadInput,
    )
)]
async fn import(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    b: Result<Json<Value>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), GatewayError> {
    authorize(&state, &headers)?;
    let ids = state.chat.import_chatgpt(body(b)?).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"imported": ids.len(), "conversations": ids})),
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn percent_encoded_file_names_are_decoded() {
        assert_eq!(super::percent_decode("%E6%8A%A5%E5%91%8A.pdf"), "报告.pdf");
        assert_eq!(super::percent_decode("plain 100%.txt"), "plain 100%.txt");
    }
}

#[utoipa::path(
    get,
    path = "/api/chat/folders",
    tag = "Chat",
    summary = "The folders conversations are filed in",
    responses((status = 200, description = "`{folders}`", body = serde_json::Value))
)]
async fn folders(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, GatewayError> {
    authorize(&state, &headers)?;
    let f = state.chat.db(|conn| Ok(store::folders(conn)?)).await?;
    Ok(Json(json!({"folders": f})))
}

#[utoipa::path(
    post,
    path = "/api/chat/attachments",
    tag = "Chat",
    summary = "Uploads a file to attach to a message (the raw bytes; `x-filename` names it)",
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 201, description = "`{id, name, mime, size}`", body = crate::chat::Attachment),
        super::openapi::BadInput,
    )
)]
async fn attach(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<(StatusCode, Json<Value>), GatewayError> {
    authorize(&state, &headers)?;
    // Sent percent-encoded when it is not ASCII.
    let name = headers
        .get("x-filename")
        .and_then(|v| v.to_str().ok())
        .map(percent_decode)
        .unwrap_or_else(|| "attachment".into());
    let mime = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let a = state.chat.attach(&name, &mime, bytes).await?;
    Ok((StatusCode::CREATED, Json(json!(a))))
}

/// `%XX` escapes decoded as UTF-8 (invalid sequences kept as they are).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_string())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct EstimateBody {
    conversation_id: Option<String>,
    #[serde(default, deserialize_with = "some_or_null")]
    #[schema(value_type = Option<String>)]
    parent_id: Option<Option<String>>,
    content: String,
    models: Vec<String>,
    max_tokens: Option<u64>,
}

/// Output assumed when neither the request nor the conversation caps it.
const DEFAULT_OUTPUT_MAX: u64 = 1_000;
const DEFAULT_OUTPUT_MIN: u64 = 50;

#[utoipa::path(
    post,
    path = "/api/chat/estimate",
    tag = "Chat",
    summary = "What sending would likely cost per model, and which bucket pays",
    description = "Prompt tokens are estimated at about four characters a token over the path \
                   sent (system prompt and history included); output as a range up to \
                   `max_tokens` (the conversation's, or 1,000).",
    request_body = EstimateBody,
    responses(
        (status = 200, description = "`{estimates: [...]}`", body = serde_json::Value),
        super::openapi::BadInput,
    )
)]
async fn estimate(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    b: Result<Json<EstimateBody>, JsonRejection>,
) -> Result<Json<Value>, GatewayError> {
    authorize(&state, &headers)?;
    let b = body(b)?;
    let chat = &state.chat;
    let mut chars = b.content.chars().count();
    let mut max_tokens = b.max_tokens;
    if let Some(conv) = b.conversation_id.clone() {
        let parent = b.parent_id.clone();
        let (c, path) = chat
            .db(move |conn| {
                let c = store::conversation(conn, &conv)?;
                let leaf = parent.unwrap_or(c.current_leaf.clone());
                let all = store::messages(conn, &conv)?;
                let path = leaf.map(|l| path_to(&all, &l)).unwrap_or_default();
                Ok((c, path))
            })
            .await?;
        chars += c.system.chars().count();
        chars += path
            .iter()
            .map(|m| m.content.chars().count())
            .sum::<usize>();
        max_tokens = max_tokens.or(c.params.max_tokens);
    }
    let prompt = Usage::estimate(chars, 0);
    let out_max = max_tokens.unwrap_or(DEFAULT_OUTPUT_MAX);
    let out_min = DEFAULT_OUTPUT_MIN.min(out_max);
    let gateway = state.gateway();
    let mut estimates = Vec::new();
    for model in &b.models {
        let (name, pin) = choice(&gateway, model);
        let route = gateway
            .resolve(&name)
            .ok_or_else(|| GatewayError::UnknownModel(model.clone()))?;
        let primary = match &pin {
            Some(ch) => route.targets.iter().find(|t| &t.channel.id == ch),
            None => route.targets.first(),
        };
        let Some(primary) = primary else {
            continue;
        };
        let bucket = primary.channel.bucket;
        let cost = |price: &UnitPrices, out: u64| {
            price.cost(&Usage {
                output: out,
                ..prompt
            })
        };
        let mut e = json!({
            "model": model,
            "bucket": bucket.as_str(),
            "currency": state.core.ledger.currency(bucket),
            "priced": primary.price.is_some(),
            "prompt_tokens": prompt.input,
            "output_tokens_min": out_min,
            "output_tokens_max": out_max,
        });
        if let Some(p) = &primary.price {
            let (lo, hi) = (cost(&p.unit, out_min), cost(&p.unit, out_max));
            e["input_cost_micros"] = json!(cost(&p.unit, 0));
            e["cost_min_micros"] = json!(lo);
            e["cost_max_micros"] = json!(hi);
            e["cost_min"] = json!(format_micro(lo));
            e["cost_max"] = json!(format_micro(hi));
        }
        estimates.push(e);
    }
    Ok(Json(json!({"estimates": estimates})))
}

#[utoipa::path(
    get,
    path = "/api/chat/models",
    tag = "Chat",
    summary = "Every model the app may call, with its primary target's bucket and price per 1M tokens",
    description = "A route with backups is listed once more per target as `route@channel` \
                   (`pinned: true`): that target alone, without failover, paid from its own \
                   bucket — to compare the same model over two routes.",
    responses((status = 200, description = "`{models: [...]}`", body = serde_json::Value))
)]
async fn models(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, GatewayError> {
    authorize(&state, &headers)?;
    let gateway = state.gateway();
    let entry = |name: String, t: &crate::routing::Target, targets: usize, pinned: bool| {
        let bucket = t.channel.bucket;
        json!({
            "model": name,
            "bucket": bucket.as_str(),
            "currency": state.core.ledger.currency(bucket),
            "channel": t.channel.id,
            "brand": t.channel.brand,
            "priced": t.price.is_some(),
            "input_per_m": t.price.as_ref().map(|p| format_micro(p.unit.input)),
            "output_per_m": t.price.as_ref().map(|p| format_micro(p.unit.output)),
            "reasoning": t.reasoning_model,
            "route_targets": targets,
            "pinned": pinned,
        })
    };
    let mut out = Vec::new();
    for name in gateway.model_names().await {
        let Some(route) = gateway.resolve(&name) else {
            continue;
        };
        let Some(primary) = route.targets.first() else {
            continue;
        };
        out.push(entry(name.clone(), primary, route.targets.len(), false));
        // Each target of a route with backups, alone: the same model over
        // two routes (e.g. Credit and Wallet) side by side.
        if route.targets.len() > 1 {
            for t in &route.targets {
                out.push(entry(format!("{name}@{}", t.channel.id), t, 1, true));
            }
        }
    }
    Ok(Json(json!({"models": out})))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// The model that titles new conversations; `null`: titles from the first words.
    title_model: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/chat/settings",
    tag = "Chat",
    summary = "Chat settings",
    responses((status = 200, description = "`{title_model}`", body = serde_json::Value))
)]
async fn settings(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, GatewayError> {
    authorize(&state, &headers)?;
    let t = state
        .chat
        .db(|conn| Ok(store::setting(conn, TITLE_MODEL)?))
        .await?;
    Ok(Json(json!({"title_model": t})))
}

#[utoipa::path(
    put,
    path = "/api/chat/settings",
    tag = "Chat",
    summary = "Chooses the title model, or turns generated titles off",
    request_body = Settings,
    responses(
        (status = 200, description = "`{title_model}`", body = serde_json::Value),
        super::openapi::BadInput,
    )
)]
async fn put_settings(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    b: Result<Json<Settings>, JsonRejection>,
) -> Result<Json<Value>, GatewayError> {
    authorize(&state, &headers)?;
    let b = body(b)?;
    let model = b
        .title_model
        .map(|m| m.trim().to_string())
        .filter(|m| !m.is_empty());
    if let Some(m) = &model {
        if state.gateway().resolve(m).is_none() {
            return Err(GatewayError::UnknownModel(m.clone()));
        }
    }
    let value = model.clone();
    state
        .chat
        .db(move |conn| {
            match &value {
                Some(m) => store::set_setting(conn, TITLE_MODEL, m)?,
                None => store::clear_setting(conn, TITLE_MODEL)?,
            }
            Ok(())
        })
        .await?;
    Ok(Json(json!({"title_model": model})))
}
