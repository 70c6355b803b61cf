//! Conversations in and out: Markdown and JSON exports carrying each
//! answer's receipt facts, and the import of a ChatGPT `conversations.json`
//! export with its branches.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde_json::{json, Value};

use super::send::path_to;
use super::store::{self, Conversation, Message, MessageStatus, NewConversation, NewMessage, Role};
use super::{new_id, now_ms, Chat, ChatError, MessageView, ReceiptFacts};

/// The path in view as Markdown: each answer headed by its model and
/// followed by what its receipt says (route, bucket, tokens, cost).
pub fn markdown(c: &Conversation, all: &[MessageView]) -> String {
    let messages: Vec<Message> = all.iter().map(|v| v.message.clone()).collect();
    let facts: HashMap<&str, &ReceiptFacts> = all
        .iter()
        .filter_map(|v| v.receipt.as_ref().map(|r| (v.message.id.as_str(), r)))
        .collect();
    let path = c
        .current_leaf
        .as_deref()
        .map(|l| path_to(&messages, l))
        .unwrap_or_default();
    let mut out = String::new();
    let title = if c.title.is_empty() {
        "Untitled"
    } else {
        &c.title
    };
    let _ = writeln!(out, "# {title}\n");
    if !c.system.is_empty() {
        let _ = writeln!(out, "> System: {}\n", c.system.replace('\n', "\n> "));
    }
    for m in &path {
        match m.role {
            Role::User => {
                let _ = writeln!(out, "## You\n\n{}\n", m.content);
                for a in &m.attachments {
                    let _ = writeln!(
                        out,
                        "*Attached: {} ({}, {} bytes)*\n",
                        a.name, a.mime, a.size
                    );
                }
            }
            Role::Assistant => {
                let model = m.model.as_deref().unwrap_or("assistant");
                let _ = writeln!(out, "## {model}\n\n{}\n", m.content);
                if m.status != MessageStatus::Complete {
                    let why = m.error.as_deref().unwrap_or("incomplete");
                    let _ = writeln!(out, "*This answer is {}: {why}*\n", status_word(m.status));
                }
                if let Some(r) = facts.get(m.id.as_str()) {
                    let _ = writeln!(out, "<sub>{}</sub>\n", facts_line(r));
                }
            }
        }
    }
    out
}

fn status_word(s: MessageStatus) -> &'static str {
    match s {
        MessageStatus::Complete => "complete",
        MessageStatus::Streaming => "still streaming",
        MessageStatus::Incomplete => "incomplete",
        MessageStatus::Error => "an error",
    }
}

/// One line of receipt facts: "up-a via only · Credit · 12 in / 3 out
/// tokens · 0.000123 USD · receipt req_…".
fn facts_line(r: &ReceiptFacts) -> String {
    let mut parts = Vec::new();
    let model = r.answered_model.as_deref().unwrap_or(&r.route);
    parts.push(match &r.channel {
        Some(ch) => format!("{model} via {ch}"),
        None => model.to_string(),
    });
    if let Some(b) = &r.bucket {
        parts.push(b.clone());
    }
    let estimated = if r.usage_estimated {
        " (estimated)"
    } else {
        ""
    };
    parts.push(format!(
        "{} in / {} out tokens{estimated}",
        r.input_tokens + r.cached_input_tokens + r.cache_write_tokens,
        r.output_tokens + r.reasoning_tokens
    ));
    match (&r.currency, r.priced) {
        (Some(cur), true) => parts.push(format!("{} {cur}", r.cost)),
        _ if r.channel.is_some() => parts.push("unpriced".into()),
        _ => {}
    }
    if r.fallback_count > 0 || r.retry_count > 0 {
        parts.push(r.walk.clone());
    }
    parts.push(format!("receipt {}", r.request_id));
    parts.join(" · ")
}

/// The whole conversation, every branch, as JSON.
pub fn json(c: &Conversation, all: &[MessageView]) -> Value {
    json!({
        "format": "switchyard.conversation.v1",
        "id": c.id,
        "title": c.title,
        "system": c.system,
        "params": c.params,
        "current_leaf": c.current_leaf,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
        "messages": all,
    })
}

/// The text of a ChatGPT export message's `content`.
fn chatgpt_text(content: &Value) -> Option<String> {
    match content.get("content_type").and_then(Value::as_str) {
        Some("text") | Some("multimodal_text") | None => {}
        // Code runs, browsing results, … are not conversation text.
        Some(_) => return None,
    }
    let parts = content.get("parts")?.as_array()?;
    let text: Vec<&str> = parts.iter().filter_map(Value::as_str).collect();
    let text = text.join("\n");
    (!text.trim().is_empty()).then_some(text)
}

fn ms(v: Option<&Value>) -> Option<i64> {
    v.and_then(Value::as_f64).map(|s| (s * 1000.0) as i64)
}

impl Chat {
    /// Imports a ChatGPT `conversations.json` (an array of conversations
    /// with a `mapping` tree). Returns the new conversations' ids.
    pub async fn import_chatgpt(&self, export: Value) -> Result<Vec<String>, ChatError> {
        let Some(list) = export.as_array() else {
            return Err(ChatError::Invalid(
                "Expected ChatGPT's conversations.json: a JSON array of conversations.".into(),
            ));
        };
        let list = list.clone();
        self.db(move |conn| {
            // Each message is its own transaction in the store; a failure
            // part-way keeps the conversations imported before it.

            let mut ids = Vec::new();
            for (i, conv) in list.iter().enumerate() {
                let Some(mapping) = conv.get("mapping").and_then(Value::as_object) else {
                    return Err(ChatError::Invalid(format!(
                        "Conversation {} has no `mapping`; is this ChatGPT's conversations.json?",
                        i + 1
                    )));
                };
                let id = new_id("conv");
                let created = ms(conv.get("create_time")).unwrap_or_else(now_ms);
                let title = conv.get("title").and_then(Value::as_str).unwrap_or("");
                store::create_conversation(
                    conn,
                    &NewConversation {
                        id: &id,
                        title,
                        system: "",
                        params: &Default::default(),
                        model: None,
                        folder: Some("Imported"),
                        now: created,
                    },
                )?;
                // Parents before children: walk down from the roots.
                let mut order = Vec::new();
                let mut stack: Vec<&str> = mapping
                    .iter()
                    .filter(|(_, n)| {
                        n.get("parent")
                            .and_then(Value::as_str)
                            .is_none_or(|p| !mapping.contains_key(p))
                    })
                    .map(|(k, _)| k.as_str())
                    .collect();
                while let Some(node) = stack.pop() {
                    order.push(node);
                    if let Some(children) = mapping[node].get("children").and_then(Value::as_array)
                    {
                        for c in children.iter().rev().filter_map(Value::as_str) {
                            if mapping.contains_key(c) && !order.contains(&c) {
                                stack.push(c);
                            }
                        }
                    }
                }
                // Nodes that are not messages of the conversation (the
                // root, system and tool messages) pass their place on.
                let mut mapped: HashMap<&str, Option<String>> = HashMap::new();
                for node in order {
                    let n = &mapping[node];
                    let parent = n
                        .get("parent")
                        .and_then(Value::as_str)
                        .and_then(|p| mapped.get(p).cloned())
                        .flatten();
                    let msg = n.get("message").filter(|m| !m.is_null());
                    let role = msg
                        .and_then(|m| m.pointer("/author/role"))
                        .and_then(Value::as_str);
                    let text = msg.and_then(|m| m.get("content")).and_then(chatgpt_text);
                    let role = match role {
                        Some("user") => Role::User,
                        Some("assistant") => Role::Assistant,
                        _ => {
                            mapped.insert(node, parent);
                            continue;
                        }
                    };
                    let Some(text) = text else {
                        mapped.insert(node, parent);
                        continue;
                    };
                    let mid = new_id("msg");
                    let model = msg
                        .and_then(|m| m.pointer("/metadata/model_slug"))
                        .and_then(Value::as_str);
                    store::add_message(
                        conn,
                        &id,
                        &NewMessage {
                            id: &mid,
                            parent_id: parent.as_deref(),
                            role,
                            content: &text,
                            model: if role == Role::Assistant { model } else { None },
                            status: MessageStatus::Complete,
                            compare_group: None,
                            attachments: &[],
                            created_at: ms(msg.and_then(|m| m.get("create_time")))
                                .unwrap_or(created),
                        },
                    )?;
                    mapped.insert(node, Some(mid));
                }
                let leaf = conv
                    .get("current_node")
                    .and_then(Value::as_str)
                    .and_then(|c| mapped.get(c).cloned())
                    .flatten();
                if let Some(leaf) = leaf {
                    store::update_conversation(
                        conn,
                        &id,
                        &store::ConversationPatch {
                            current_leaf: Some(leaf),
                            ..Default::default()
                        },
                        ms(conv.get("update_time")).unwrap_or(created),
                    )?;
                }
                ids.push(id);
            }
            Ok(ids)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chatgpt_text_keeps_only_conversation_text() {
        assert_eq!(
            chatgpt_text(&json!({"content_type": "text", "parts": ["a", "b"]})).as_deref(),
            Some("a\nb")
        );
        assert_eq!(
            chatgpt_text(&json!({"content_type": "code", "text": "x"})),
            None
        );
        assert_eq!(
            chatgpt_text(&json!({"content_type": "text", "parts": [""]})),
            None
        );
    }
}
