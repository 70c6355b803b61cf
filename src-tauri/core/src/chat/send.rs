//! Sending: a user message and one answer per model (2–6 models: a
//! compare), regenerating an answer, editing a prompt. Each answer is its
//! own request on the one request path, with its own receipt, streamed into
//! its own message and reported as [`Event`]s.

use std::sync::Arc;

use serde::Serialize;
use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, watch};

use super::store::{self, Finish, Message, MessageStatus, NewMessage, Role};
use super::{new_id, now_ms, Chat, ChatError, ReceiptFacts, FLUSH};
use crate::ledger::Receipt;
use crate::record::{RequestRecord, RequestStatus, Source};
use crate::request::{new_request_id, Accepted, AttemptStarted, Call, CallKind, Caller};
use crate::routing::{self, Answer, Encoder, StreamOut};

/// Most models one send may ask at once.
pub const MAX_COMPARE: usize = 6;

/// What a client of the chat API is told while answers are made.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The user message stored.
    User {
        message: MessageView,
    },
    /// An answer begun (one per model, in order).
    Start {
        message: MessageView,
    },
    /// A target is being tried for an answer.
    Attempt {
        message_id: String,
        #[serde(flatten)]
        attempt: AttemptStarted,
    },
    Delta {
        message_id: String,
        text: String,
    },
    Reasoning {
        message_id: String,
        text: String,
    },
    /// An answer finished, however it ended.
    Done {
        message: MessageView,
        /// `balance_empty`, `budget_exceeded`, … when it was refused.
        error_code: Option<String>,
        /// The bucket that could not pay, for `balance_empty`.
        error_bucket: Option<String>,
    },
    /// Every answer of this send has finished.
    End {
        conversation_id: String,
    },
}

impl Event {
    pub fn name(&self) -> &'static str {
        match self {
            Event::User { .. } => "user",
            Event::Start { .. } => "start",
            Event::Attempt { .. } => "attempt",
            Event::Delta { .. } => "delta",
            Event::Reasoning { .. } => "reasoning",
            Event::Done { .. } => "done",
            Event::End { .. } => "end",
        }
    }
}

/// A message as the API shows it: with its receipt's facts.
#[derive(Debug, Clone, Serialize)]
pub struct MessageView {
    #[serde(flatten)]
    pub message: Message,
    pub receipt: Option<ReceiptFacts>,
}

/// What to answer: a new user message, or another answer to one.
pub struct Turn {
    pub conversation_id: String,
    /// The user message the answers answer (stored already, or `new_user`).
    pub prompt_id: String,
    pub new_user: Option<NewUser>,
    pub models: Vec<String>,
}

pub struct NewUser {
    pub parent_id: Option<String>,
    pub content: String,
    pub attachments: Vec<String>,
}

/// Pieces of an answer as the stream relay hands them over.
enum Piece {
    Text(String),
    Reasoning(String),
    Done,
    Error { message: String, code: &'static str },
}

/// Reads the canonical (OpenAI chat) chunks of a stream into [`Piece`]s.
struct ChatEncoder;

impl Encoder for ChatEncoder {
    type Out = Vec<Piece>;
    fn encode(&mut self, item: &StreamOut<'_>) -> Vec<Piece> {
        match item {
            StreamOut::Chunk(json) => {
                let Ok(v) = serde_json::from_str::<Value>(json) else {
                    return Vec::new();
                };
                let mut out = Vec::new();
                if let Some(delta) = v.pointer("/choices/0/delta") {
                    for field in ["reasoning_content", "reasoning"] {
                        if let Some(t) = delta.get(field).and_then(Value::as_str) {
                            if !t.is_empty() {
                                out.push(Piece::Reasoning(t.to_string()));
                            }
                        }
                    }
                    if let Some(t) = delta.get("content").and_then(Value::as_str) {
                        if !t.is_empty() {
                            out.push(Piece::Text(t.to_string()));
                        }
                    }
                }
                out
            }
            StreamOut::Done => vec![Piece::Done],
            StreamOut::Error { message, code } => vec![Piece::Error {
                message: message.to_string(),
                code,
            }],
        }
    }
}

/// The text of a whole OpenAI chat answer.
fn whole_text(body: &[u8]) -> (String, String) {
    let v: Value = serde_json::from_slice(body).unwrap_or_default();
    let msg = v.pointer("/choices/0/message");
    let text = msg
        .and_then(|m| m.get("content"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let reasoning = msg
        .and_then(|m| m.get("reasoning_content").or_else(|| m.get("reasoning")))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    (text, reasoning)
}

impl Chat {
    /// Stores the user message (if new) and an empty answer per model,
    /// then makes the answers, each in its own task; the events come on
    /// the returned receiver, ending with [`Event::End`]. The answers go on
    /// if the receiver is dropped: a closed browser tab stops nothing.
    pub async fn answer(
        self: &Arc<Self>,
        turn: Turn,
    ) -> Result<mpsc::UnboundedReceiver<Event>, ChatError> {
        if turn.models.is_empty() || turn.models.len() > MAX_COMPARE {
            return Err(ChatError::Invalid(format!(
                "`models` must name 1 to {MAX_COMPARE} models."
            )));
        }
        let mut seen = std::collections::HashSet::new();
        for m in &turn.models {
            if m.trim().is_empty() {
                return Err(ChatError::Invalid("A model name is empty.".into()));
            }
            if !seen.insert(m) {
                return Err(ChatError::Invalid(format!(
                    "Model `{m}` is asked twice; a compare asks each model (or route) once."
                )));
            }
        }
        let key = self.app_key()?;
        let (tx, rx) = mpsc::unbounded_channel();
        let now = now_ms();
        let group = (turn.models.len() > 1).then(|| new_id("cmp"));
        let answers: Vec<(String, String, String)> = turn
            .models
            .iter()
            .map(|m| (new_id("msg"), m.clone(), new_request_id()))
            .collect();
        let conv = turn.conversation_id.clone();
        let prompt = turn.prompt_id.clone();
        let rows = answers.clone();
        let new_user = turn.new_user;
        let (user, started, conversation, path) = self
            .db(move |conn| {
                let mut user = None;
                if let Some(u) = &new_user {
                    store::add_message(
                        conn,
                        &conv,
                        &NewMessage {
                            id: &prompt,
                            parent_id: u.parent_id.as_deref(),
                            role: Role::User,
                            content: &u.content,
                            model: None,
                            status: MessageStatus::Complete,
                            compare_group: None,
                            attachments: &u.attachments,
                            created_at: now,
                        },
                    )?;
                    user = Some(store::message(conn, &prompt)?.1);
                }
                let mut started = Vec::new();
                for (id, model, request_id) in &rows {
                    store::add_message(
                        conn,
                        &conv,
                        &NewMessage {
                            id,
                            parent_id: Some(&prompt),
                            role: Role::Assistant,
                            content: "",
                            model: Some(model),
                            status: MessageStatus::Streaming,
                            compare_group: group.as_deref(),
                            attachments: &[],
                            created_at: now,
                        },
                    )?;
                    // Linked before the call: a crash leaves the answer
                    // pointing at its `interrupted` receipt.
                    store::set_receipt(conn, id, request_id)?;
                    started.push(store::message(conn, id)?.1);
                }
                // The set's first answer is the one in view; the others
                // are its siblings until one is chosen to continue with.
                if let Some((first, _, _)) = rows.first() {
                    store::update_conversation(
                        conn,
                        &conv,
                        &store::ConversationPatch {
                            current_leaf: Some(first.clone()),
                            ..Default::default()
                        },
                        now,
                    )?;
                }
                let conversation = store::conversation(conn, &conv)?;
                let path = path_to(&store::messages(conn, &conv)?, &prompt);
                Ok((user, started, conversation, path))
            })
            .await?;
        if let Some(u) = user {
            let _ = tx.send(Event::User {
                message: MessageView {
                    message: u,
                    receipt: None,
                },
            });
        }
        let body = self.request_body(&conversation, &path).await?;
        let mut tasks = Vec::new();
        for (message, (id, model, request_id)) in started.into_iter().zip(answers) {
            let _ = tx.send(Event::Start {
                message: MessageView {
                    message,
                    receipt: None,
                },
            });
            let (stop_tx, stop_rx) = watch::channel(false);
            self.live
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id.clone(), stop_tx);
            let (route, pin) = choice(&self.core.gateway(), &model);
            let mut body = body.clone();
            body.insert("model".into(), json!(route));
            let caller = Caller {
                key: Arc::clone(&key),
                source: Source::Chat,
                run_id: Some(conversation.id.clone()),
                step: Some("answer".into()),
            };
            let this = Arc::clone(self);
            let tx = tx.clone();
            tasks.push(tokio::spawn(async move {
                let request = Request {
                    message_id: id.clone(),
                    request_id,
                    caller,
                    body,
                    pin,
                };
                this.stream_answer(request, stop_rx, &tx).await;
                this.live
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
            }));
        }
        let this = Arc::clone(self);
        let conversation_id = conversation.id.clone();
        let first_turn = conversation.title.is_empty();
        tokio::spawn(async move {
            for t in tasks {
                let _ = t.await;
            }
            if first_turn {
                this.title(&conversation_id).await;
            }
            let _ = tx.send(Event::End { conversation_id });
        });
        Ok(rx)
    }

    /// A new user message under `parent_id` (default: the conversation's
    /// current leaf), answered by each of `models`.
    pub async fn send(
        self: &Arc<Self>,
        conversation_id: &str,
        parent_id: Option<Option<String>>,
        content: String,
        attachments: Vec<String>,
        models: Vec<String>,
    ) -> Result<mpsc::UnboundedReceiver<Event>, ChatError> {
        if content.trim().is_empty() && attachments.is_empty() {
            return Err(ChatError::Invalid(
                "`content` is empty: write a message or attach a file.".into(),
            ));
        }
        let conv = conversation_id.to_string();
        let current = self
            .db(move |conn| Ok(store::conversation(conn, &conv)?.current_leaf))
            .await?;
        self.answer(Turn {
            conversation_id: conversation_id.to_string(),
            prompt_id: new_id("msg"),
            new_user: Some(NewUser {
                parent_id: parent_id.unwrap_or(current),
                content,
                attachments,
            }),
            models,
        })
        .await
    }

    /// Another answer to the prompt `answer_id` answered, by `model` (default:
    /// the same model): a sibling of that answer.
    pub async fn regenerate(
        self: &Arc<Self>,
        answer_id: &str,
        model: Option<String>,
    ) -> Result<mpsc::UnboundedReceiver<Event>, ChatError> {
        let id = answer_id.to_string();
        let (conversation_id, m) = self.db(move |conn| Ok(store::message(conn, &id)?)).await?;
        if m.role != Role::Assistant {
            return Err(ChatError::Invalid(format!(
                "Message `{answer_id}` is a prompt; regenerate an answer, or edit the prompt."
            )));
        }
        let prompt_id = m.parent_id.clone().ok_or_else(|| {
            ChatError::Invalid(format!("Answer `{answer_id}` answers no prompt."))
        })?;
        let model = model
            .or(m.model)
            .ok_or_else(|| ChatError::Invalid("Name the `model` to answer with.".into()))?;
        self.answer(Turn {
            conversation_id,
            prompt_id,
            new_user: None,
            models: vec![model],
        })
        .await
    }

    /// The prompt `prompt_id` with new text, as a sibling of it (the old
    /// branch stays), answered by `models` (default: the model of the
    /// newest answer to the old prompt).
    pub async fn edit(
        self: &Arc<Self>,
        prompt_id: &str,
        content: String,
        models: Option<Vec<String>>,
    ) -> Result<mpsc::UnboundedReceiver<Event>, ChatError> {
        let id = prompt_id.to_string();
        let (conversation_id, m, all) = self
            .db(move |conn| {
                let (c, m) = store::message(conn, &id)?;
                let all = store::messages(conn, &c)?;
                Ok((c, m, all))
            })
            .await?;
        if m.role != Role::User {
            return Err(ChatError::Invalid(format!(
                "Message `{prompt_id}` is an answer; edit a prompt, or regenerate the answer."
            )));
        }
        if content.trim().is_empty() {
            return Err(ChatError::Invalid("`content` is empty.".into()));
        }
        let models = match models {
            Some(m) => m,
            None => all
                .iter()
                .rev()
                .find(|a| a.parent_id.as_deref() == Some(prompt_id) && a.model.is_some())
                .and_then(|a| a.model.clone())
                .map(|m| vec![m])
                .ok_or_else(|| ChatError::Invalid("Name the `models` to answer with.".into()))?,
        };
        self.answer(Turn {
            conversation_id,
            prompt_id: new_id("msg"),
            new_user: Some(NewUser {
                parent_id: m.parent_id,
                content,
                attachments: m.attachments.into_iter().map(|a| a.id).collect(),
            }),
            models,
        })
        .await
    }

    /// The canonical request for an answer to the path ending at the prompt.
    async fn request_body(
        &self,
        conversation: &store::Conversation,
        path: &[Message],
    ) -> Result<Map<String, Value>, ChatError> {
        let mut messages = Vec::new();
        if !conversation.system.trim().is_empty() {
            messages.push(json!({"role": "system", "content": conversation.system}));
        }
        for m in path {
            match m.role {
                Role::User => {
                    let content = self.user_content(m).await?;
                    messages.push(json!({"role": "user", "content": content}));
                }
                // An answer that failed or has no text is not context.
                Role::Assistant if m.content.is_empty() || m.status == MessageStatus::Error => {}
                Role::Assistant => {
                    messages.push(json!({"role": "assistant", "content": m.content}));
                }
            }
        }
        let mut body = Map::new();
        body.insert("messages".into(), Value::Array(messages));
        body.insert("stream".into(), json!(true));
        let p = &conversation.params;
        if let Some(t) = p.temperature {
            body.insert("temperature".into(), json!(t));
        }
        if let Some(n) = p.max_tokens {
            body.insert("max_tokens".into(), json!(n));
        }
        if let Some(e) = &p.reasoning_effort {
            body.insert("reasoning_effort".into(), json!(e));
        }
        Ok(body)
    }

    /// Makes one answer and keeps its message up to date.
    async fn stream_answer(
        &self,
        request: Request,
        mut stop: watch::Receiver<bool>,
        tx: &mpsc::UnboundedSender<Event>,
    ) {
        let Request {
            message_id,
            request_id,
            caller,
            body,
            pin,
        } = request;
        let (progress_tx, mut progress) = mpsc::unbounded_channel();
        let mut call = Box::pin(self.core.call(Call {
            request_id: request_id.clone(),
            kind: CallKind::Chat,
            caller,
            body,
            native: None,
            stream: true,
            wants_usage: false,
            progress: Some(progress_tx),
            pin,
        }));
        let result = loop {
            tokio::select! {
                r = &mut call => break Some(r),
                Some(a) = progress.recv() => {
                    let _ = tx.send(Event::Attempt { message_id: message_id.clone(), attempt: a });
                }
                _ = stopped(&mut stop) => break None,
            }
        };
        let mut text = String::new();
        let mut reasoning = String::new();
        let (status, error, code, record) = match result {
            // Stopped before any answer came: dropping the call records it
            // as cancelled by the client.
            None => {
                drop(call);
                (
                    MessageStatus::Incomplete,
                    Some("Stopped before the answer began.".to_string()),
                    Some("stopped".to_string()),
                    None,
                )
            }
            Some(Err(refused)) => {
                let code = refused.error.code().map(str::to_string);
                (
                    MessageStatus::Error,
                    Some(refused.error.describe()),
                    code,
                    refused.record.map(Arc::new),
                )
            }
            Some(Ok(Accepted {
                answer: Answer::Whole(reply),
                guard,
                ..
            })) => {
                (text, reasoning) = whole_text(&reply.body);
                let rec = guard.finish(RequestStatus::Ok, None);
                (MessageStatus::Complete, None, None, Some(rec))
            }
            Some(Ok(Accepted {
                answer: Answer::Stream(start),
                guard,
                ..
            })) => {
                let (ptx, mut prx) = mpsc::channel::<Vec<Piece>>(64);
                let pump = tokio::spawn(routing::pump(start, guard, ptx, ChatEncoder));
                let mut tick = tokio::time::interval(FLUSH);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut dirty = false;
                let mut cut: Option<(String, &'static str)> = None;
                let mut closed = false;
                loop {
                    tokio::select! {
                        pieces = prx.recv() => {
                            let Some(pieces) = pieces else { break };
                            for p in pieces {
                                match p {
                                    Piece::Text(t) => {
                                        text.push_str(&t);
                                        let _ = tx.send(Event::Delta { message_id: message_id.clone(), text: t });
                                    }
                                    Piece::Reasoning(t) => {
                                        reasoning.push_str(&t);
                                        let _ = tx.send(Event::Reasoning { message_id: message_id.clone(), text: t });
                                    }
                                    Piece::Done => {}
                                    Piece::Error { message, code } => cut = Some((message, code)),
                                }
                                dirty = true;
                            }
                        }
                        _ = tick.tick() => {
                            if dirty {
                                dirty = false;
                                self.save_partial(&message_id, &text, &reasoning).await;
                            }
                        }
                        _ = stopped(&mut stop), if !closed => {
                            // Closing the relay's channel ends the upstream
                            // call; the relay records `client_cancelled`.
                            closed = true;
                            prx.close();
                        }
                    }
                }
                let rec = match pump.await {
                    Ok(rec) => rec,
                    Err(e) => {
                        tracing::error!(error = %e, "chat stream relay failed");
                        Arc::new(RequestRecord::new(request_id.clone(), String::new(), true))
                    }
                };
                match (rec.status, cut) {
                    (RequestStatus::Ok, _) => (MessageStatus::Complete, None, None, Some(rec)),
                    (RequestStatus::ClientCancelled, _) => (
                        MessageStatus::Incomplete,
                        Some("Stopped; the text above is what had arrived.".into()),
                        Some("stopped".into()),
                        Some(rec),
                    ),
                    (_, cut) => {
                        let (message, code) = cut.unwrap_or_else(|| {
                            (
                                rec.error
                                    .clone()
                                    .unwrap_or_else(|| "The answer broke off.".into()),
                                "upstream_cut",
                            )
                        });
                        (
                            MessageStatus::Incomplete,
                            Some(message),
                            Some(code.to_string()),
                            Some(rec),
                        )
                    }
                }
            }
        };
        let facts = record
            .as_deref()
            .map(|r| ReceiptFacts::of(&Receipt::from_record(r)));
        let error_bucket = match code.as_deref() {
            Some("balance_empty") => record.as_deref().and_then(|r| {
                r.attempts
                    .iter()
                    .find(|a| {
                        matches!(
                            a.outcome,
                            crate::record::AttemptOutcome::Skipped {
                                reason: "bucket_empty"
                            }
                        )
                    })
                    .map(|a| a.bucket.as_str().to_string())
            }),
            _ => None,
        };
        let id = message_id.clone();
        let stored = self
            .db(move |conn| {
                store::finish_message(
                    conn,
                    &id,
                    &Finish {
                        content: &text,
                        reasoning: &reasoning,
                        status,
                        error: error.as_deref(),
                        error_code: code.as_deref(),
                        receipt_id: None,
                    },
                    now_ms(),
                )?;
                Ok(store::message(conn, &id)?.1)
            })
            .await;
        match stored {
            Ok(message) => {
                let error_code = message.error_code.clone();
                let _ = tx.send(Event::Done {
                    message: MessageView {
                        message,
                        receipt: facts,
                    },
                    error_code,
                    error_bucket,
                });
            }
            Err(e) => {
                tracing::error!(message = %message_id, error = %e, "could not store a chat answer")
            }
        }
    }

    async fn save_partial(&self, id: &str, text: &str, reasoning: &str) {
        let (id, text, reasoning) = (id.to_string(), text.to_string(), reasoning.to_string());
        if let Err(e) = self
            .db(move |conn| Ok(store::set_partial(conn, &id, &text, &reasoning)?))
            .await
        {
            tracing::warn!(error = %e, "could not store a streaming chat answer");
        }
    }

    /// Titles a conversation after its first answer: by the title model
    /// the user chose (its call is a receipt of its own, `step = title`), or
    /// from the first words of the prompt when titles are off.
    async fn title(self: &Arc<Self>, conversation_id: &str) {
        let conv = conversation_id.to_string();
        let Ok((model, messages)) = self
            .db(move |conn| {
                Ok((
                    store::setting(conn, TITLE_MODEL)?,
                    store::messages(conn, &conv)?,
                ))
            })
            .await
        else {
            return;
        };
        let Some(prompt) = messages.iter().find(|m| m.role == Role::User) else {
            return;
        };
        let answer = messages
            .iter()
            .find(|m| m.role == Role::Assistant && m.status == MessageStatus::Complete);
        let mut title = None;
        if let (Some(model), Some(answer), Ok(key)) = (model, answer, self.app_key()) {
            title = self
                .generate_title(
                    conversation_id,
                    &model,
                    &prompt.content,
                    &answer.content,
                    key,
                )
                .await;
        }
        let title = title.unwrap_or_else(|| first_words(&prompt.content));
        let conv = conversation_id.to_string();
        let _ = self
            .db(move |conn| {
                let now = now_ms();
                let current = store::conversation(conn, &conv)?;
                if current.title.is_empty() {
                    store::update_conversation(
                        conn,
                        &conv,
                        &store::ConversationPatch {
                            title: Some(title),
                            ..Default::default()
                        },
                        now,
                    )?;
                }
                Ok(())
            })
            .await;
    }

    async fn generate_title(
        &self,
        conversation_id: &str,
        model: &str,
        prompt: &str,
        answer: &str,
        key: Arc<crate::keys::GatewayKey>,
    ) -> Option<String> {
        let clip = |s: &str, n: usize| s.chars().take(n).collect::<String>();
        let body = json!({
            "model": model,
            "max_tokens": 24,
            "messages": [
                {"role": "system", "content": "You write titles for chat conversations. Reply with \
                    a title of at most six words, in the language of the conversation, and nothing else."},
                {"role": "user", "content": format!(
                    "User: {}\n\nAssistant: {}", clip(prompt, 1500), clip(answer, 1500)
                )},
            ],
        });
        let Value::Object(body) = body else {
            return None;
        };
        let accepted = self
            .core
            .call(Call {
                request_id: new_request_id(),
                kind: CallKind::Chat,
                caller: Caller {
                    key,
                    source: Source::Chat,
                    run_id: Some(conversation_id.to_string()),
                    step: Some("title".into()),
                },
                body,
                native: None,
                stream: false,
                wants_usage: false,
                progress: None,
                pin: None,
            })
            .await;
        match accepted {
            Ok(Accepted {
                answer: Answer::Whole(reply),
                guard,
                ..
            }) => {
                guard.finish(RequestStatus::Ok, None);
                let (text, _) = whole_text(&reply.body);
                let t = text.trim().trim_matches(|c| c == '"' || c == '\'').trim();
                (!t.is_empty()).then(|| clip(t, 80))
            }
            Ok(Accepted { guard, .. }) => {
                guard.finish(RequestStatus::Error, Some("a title cannot stream".into()));
                None
            }
            Err(refused) => {
                tracing::info!(error = %refused.error, "no title for a conversation");
                None
            }
        }
    }
}

/// Resolves once the answer is asked to stop.
async fn stopped(rx: &mut watch::Receiver<bool>) {
    if rx.wait_for(|s| *s).await.is_err() {
        // The sender is gone: nobody can ask any more.
        std::future::pending::<()>().await;
    }
}

/// One answer's request.
struct Request {
    message_id: String,
    request_id: String,
    caller: Caller,
    body: Map<String, Value>,
    pin: Option<String>,
}

/// What a model choice names: a route, or `route@channel` — one target of
/// a route, alone (the same model over two routes, side by side). A name
/// that is a route itself is always the route.
pub fn choice(gateway: &crate::routing::Gateway, name: &str) -> (String, Option<String>) {
    if gateway.resolve(name).is_none() {
        if let Some((route, channel)) = name.rsplit_once('@') {
            if gateway
                .resolve(route)
                .is_some_and(|r| r.targets.iter().any(|t| t.channel.id == channel))
            {
                return (route.to_string(), Some(channel.to_string()));
            }
        }
    }
    (name.to_string(), None)
}

/// The chat setting naming the model that writes titles (absent: off).
pub const TITLE_MODEL: &str = "title_model";

/// A title from the prompt itself: its first words, on one line.
fn first_words(prompt: &str) -> String {
    let line: String = prompt.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out: String = line.chars().take(60).collect();
    if line.chars().count() > 60 {
        out.push('…');
    }
    if out.is_empty() {
        "Untitled".into()
    } else {
        out
    }
}

/// The messages from the root down to `leaf`, in order.
pub fn path_to(all: &[Message], leaf: &str) -> Vec<Message> {
    let by_id: std::collections::HashMap<&str, &Message> =
        all.iter().map(|m| (m.id.as_str(), m)).collect();
    let mut out = Vec::new();
    let mut at = by_id.get(leaf).copied();
    while let Some(m) = at {
        out.push(m.clone());
        at = m.parent_id.as_deref().and_then(|p| by_id.get(p).copied());
        if out.len() > all.len() {
            break;
        }
    }
    out.reverse();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_words_make_a_one_line_title() {
        assert_eq!(
            first_words("  What is\n the capital of France? "),
            "What is the capital of France?"
        );
        assert_eq!(first_words(""), "Untitled");
        assert!(first_words(&"word ".repeat(40)).ends_with('…'));
    }

    #[test]
    fn chat_encoder_reads_text_and_reasoning_deltas() {
        let mut e = ChatEncoder;
        let pieces = e.encode(&StreamOut::Chunk(
            r#"{"choices":[{"index":0,"delta":{"reasoning_content":"think","content":"Hi"}}]}"#,
        ));
        assert!(
            matches!(&pieces[..], [Piece::Reasoning(r), Piece::Text(t)] if r == "think" && t == "Hi")
        );
        assert!(e.encode(&StreamOut::Chunk("not json")).is_empty());
    }
}
