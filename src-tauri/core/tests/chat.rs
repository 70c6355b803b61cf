//! The chat API (`/api/chat`): conversations whose answers take the one
//! request path, so every answer has its receipt (`source = chat`), and
//! fallbacks, refusals, stops and compares read as they happened.

use std::time::Duration;

use serde_json::{json, Value};
use switchyard::config::Bucket;

use crate::helpers::*;
use crate::mock::*;

impl TestApp {
    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut req = self
            .http
            .request(method, self.url(path))
            .bearer_auth(&self.admin_token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.expect("gateway reachable")
    }

    pub async fn api_json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let resp = self.api(method, path, body).await;
        let status = resp.status();
        let v: Value = resp.json().await.expect("json");
        assert!(status.is_success(), "{path}: {status} {v}");
        v
    }

    pub async fn new_conversation(&self) -> String {
        let c = self
            .api_json(
                reqwest::Method::POST,
                "/api/chat/conversations",
                Some(json!({})),
            )
            .await;
        c["id"].as_str().expect("id").to_string()
    }

    /// Sends and reads the whole event stream, up to `end`.
    pub async fn chat_events(&self, path: &str, body: Value) -> Vec<(String, Value)> {
        let resp = self.api(reqwest::Method::POST, path, Some(body)).await;
        assert_eq!(resp.status(), 200, "{path}");
        assert_eq!(header(&resp, "content-type"), "text/event-stream");
        let text = tokio::time::timeout(Duration::from_secs(20), resp.text())
            .await
            .expect("the stream ends")
            .expect("body");
        parse_events(&text)
    }
}

pub fn parse_events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .map(|block| {
            let mut name = String::new();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = n.to_string();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            (
                name,
                serde_json::from_str(&data).expect("event data is JSON"),
            )
        })
        .collect()
}

fn done_events(events: &[(String, Value)]) -> Vec<&Value> {
    events
        .iter()
        .filter(|(n, _)| n == "done")
        .map(|(_, v)| v)
        .collect()
}

/// Three routes over three mocks: `alpha`, `beta` and `gamma`.
fn three_models(a: &MockUpstream, b: &MockUpstream, c: &MockUpstream) -> String {
    let mut out = String::new();
    for (name, mock) in [("alpha", a), ("beta", b), ("gamma", c)] {
        out.push_str(&format!(
            r#"
[[channels]]
id = "{name}-ch"
type = "openai-compatible"
base_url = "{}"
bucket = "credit"
secret = "none"

[[routes]]
model = "{name}"
targets = [{{ channel = "{name}-ch", model = "up-{name}" }}]
"#,
            mock.url()
        ));
    }
    out
}

#[tokio::test]
async fn a_sent_message_streams_its_answer_and_the_answer_links_to_its_chat_receipt() {
    let mock = MockUpstream::start().await;
    let app = spawn_app(&one_target(&mock, "")).await;
    let conv = app.new_conversation().await;
    let events = app
        .chat_events(
            &format!("/api/chat/conversations/{conv}/messages"),
            json!({"content": "Say hello", "models": ["gpt-test"]}),
        )
        .await;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"user"));
    assert_eq!(names.last(), Some(&"end"));
    assert!(names.contains(&"attempt") && names.contains(&"start"));
    let text: String = events
        .iter()
        .filter(|(n, _)| n == "delta")
        .map(|(_, v)| v["text"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(text, ANSWER);
    let done = done_events(&events);
    assert_eq!(done.len(), 1);
    let msg = &done[0]["message"];
    assert_eq!(msg["status"], "complete");
    assert_eq!(msg["content"], ANSWER);
    let facts = &msg["receipt"];
    assert_eq!(facts["channel"], "only");
    assert_eq!(facts["answered_model"], "up-a");
    assert_eq!(facts["bucket"], "credit");
    assert_eq!(facts["status"], "ok");

    // The request went upstream with the conversation as its messages.
    assert_eq!(
        mock.bodies()[0]["messages"],
        json!([{"role": "user", "content": "Say hello"}])
    );
    let rec = app.only_record().await;
    assert_eq!(rec.source.as_str(), "chat");
    assert_eq!(rec.run_id.as_deref(), Some(conv.as_str()));
    assert_eq!(rec.step.as_deref(), Some("answer"));
    assert_eq!(rec.key.as_deref(), Some("app"));
    assert_eq!(facts["request_id"], rec.request_id.as_str());

    // Reopened, the conversation has both messages, the answer's receipt
    // as the ledger keeps it, and a title from the prompt.
    app.flush().await;
    let c = app
        .api_json(
            reqwest::Method::GET,
            &format!("/api/chat/conversations/{conv}"),
            None,
        )
        .await;
    let messages = c["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[1]["parent_id"], messages[0]["id"]);
    assert_eq!(
        messages[1]["receipt"]["request_id"],
        rec.request_id.as_str()
    );
    assert_eq!(messages[1]["receipt"]["status"], "ok");
    assert_eq!(c["current_leaf"], messages[1]["id"]);
    assert_eq!(c["title"], "Say hello");
    let stored: (String, String) = app
        .db()
        .query_row(
            "SELECT source, step FROM receipts WHERE id = ?1",
            [&rec.request_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("receipt");
    assert_eq!(stored, ("chat".into(), "answer".into()));
}

#[tokio::test]
async fn a_fallback_shows_on_the_answer_in_words() {
    let (primary, backup) = (MockUpstream::start().await, MockUpstream::start().await);
    primary.set_default(status(503));
    let app = spawn_app(&two_targets(&primary, &backup, "")).await;
    let conv = app.new_conversation().await;
    let events = app
        .chat_events(
            &format!("/api/chat/conversations/{conv}/messages"),
            json!({"content": "hi", "models": ["gpt-test"]}),
        )
        .await;
    let attempts: Vec<&str> = events
        .iter()
        .filter(|(n, _)| n == "attempt")
        .map(|(_, v)| v["channel"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(attempts.first(), Some(&"primary"));
    assert_eq!(attempts.last(), Some(&"backup"));
    let facts = &done_events(&events)[0]["message"]["receipt"];
    assert_eq!(facts["channel"], "backup");
    assert_eq!(facts["fallback_count"], 1);
    let walk = facts["walk"].as_str().expect("walk");
    assert!(
        walk.starts_with("primary primary/up-a → 503") && walk.contains("backup backup/up-b → ok"),
        "{walk}"
    );
}

#[tokio::test]
async fn compare_of_three_models_with_one_failing_finishes_the_others_and_shows_the_chain() {
    let (a, b, c) = (
        MockUpstream::start().await,
        MockUpstream::start().await,
        MockUpstream::start().await,
    );
    b.set_default(status(500));
    let app = spawn_app(&three_models(&a, &b, &c)).await;
    let conv = app.new_conversation().await;
    let events = app
        .chat_events(
            &format!("/api/chat/conversations/{conv}/messages"),
            json!({"content": "Compare", "models": ["alpha", "beta", "gamma"]}),
        )
        .await;
    let starts: Vec<&Value> = events
        .iter()
        .filter(|(n, _)| n == "start")
        .map(|(_, v)| &v["message"])
        .collect();
    assert_eq!(starts.len(), 3);
    let group = starts[0]["compare_group"]
        .as_str()
        .expect("a compare group");
    assert!(starts.iter().all(|s| s["compare_group"] == group));
    let done = done_events(&events);
    assert_eq!(done.len(), 3);
    let by_model = |m: &str| {
        done.iter()
            .map(|d| &d["message"])
            .find(|msg| msg["model"] == m)
            .expect("an answer per model")
    };
    assert_eq!(by_model("alpha")["status"], "complete");
    assert_eq!(by_model("gamma")["status"], "complete");
    let failed = by_model("beta");
    assert_eq!(failed["status"], "error");
    let error = failed["error"].as_str().expect("error");
    assert!(
        error.contains("primary beta-ch/up-beta → 500 ×3"),
        "{error}"
    );
    assert_eq!(failed["receipt"]["status"], "error");
    // Three requests, three receipts, all of this conversation.
    let recs = app.records(3).await;
    assert!(recs
        .iter()
        .all(|r| r.run_id.as_deref() == Some(conv.as_str())));
}

#[tokio::test]
async fn an_empty_bucket_refuses_the_answer_before_any_upstream_call_and_says_which() {
    let (official, relay) = (MockUpstream::start().await, MockUpstream::start().await);
    let app = spawn_app(&priced_config(&official, &relay, "")).await;
    let conv = app.new_conversation().await;
    let events = app
        .chat_events(
            &format!("/api/chat/conversations/{conv}/messages"),
            json!({"content": "hi", "models": ["gpt-4o"]}),
        )
        .await;
    let done = done_events(&events)[0];
    assert_eq!(done["error_code"], "balance_empty");
    assert_eq!(done["error_bucket"], "credit");
    assert_eq!(done["message"]["status"], "error");
    assert_eq!(official.hits(), 0, "nothing went upstream");
}

#[tokio::test]
async fn stopping_mid_stream_keeps_the_partial_answer_incomplete_and_the_receipt_cancelled() {
    let mock = MockUpstream::start().await;
    mock.set_default(Reply::StallAfter(2));
    let app = spawn_app(&one_target(&mock, "")).await;
    let conv = app.new_conversation().await;
    let resp = app
        .api(
            reqwest::Method::POST,
            &format!("/api/chat/conversations/{conv}/messages"),
            Some(json!({"content": "hi", "models": ["gpt-test"]})),
        )
        .await;
    let mut stream = resp.bytes_stream();
    let mut seen = String::new();
    let mut answer_id = None;
    use futures_util::StreamExt;
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("events come")
    {
        seen.push_str(&String::from_utf8_lossy(&chunk.expect("chunk")));
        let events = parse_events(seen.rsplit_once("\n\n").map_or("", |(a, _)| a));
        if answer_id.is_none() {
            answer_id = events
                .iter()
                .find(|(n, _)| n == "start")
                .map(|(_, v)| v["message"]["id"].as_str().unwrap_or_default().to_string());
        }
        let deltas = events.iter().filter(|(n, _)| n == "delta").count();
        if deltas >= 2 {
            break;
        }
    }
    let id = answer_id.expect("an answer started");
    let stop = app
        .api(
            reqwest::Method::POST,
            &format!("/api/chat/messages/{id}/stop"),
            None,
        )
        .await;
    assert_eq!(stop.status(), 204);
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("the stream ends after the stop")
    {
        seen.push_str(&String::from_utf8_lossy(&chunk.expect("chunk")));
    }
    let events = parse_events(&seen);
    let msg = &done_events(&events)[0]["message"];
    assert_eq!(msg["status"], "incomplete");
    assert_eq!(msg["content"], "Hello from");
    assert_eq!(msg["error_code"], "stopped");
    let rec = app.only_record().await;
    assert_eq!(rec.status.as_str(), "client_cancelled");
    // Stopping what is not streaming says so.
    let again = app
        .api(
            reqwest::Method::POST,
            &format!("/api/chat/messages/{id}/stop"),
            None,
        )
        .await;
    assert_eq!(again.status(), 409);
}

#[tokio::test]
async fn regenerate_and_edit_add_siblings_and_the_path_in_view_is_what_is_sent() {
    let mock = MockUpstream::start().await;
    let app = spawn_app(&one_target(&mock, "")).await;
    let conv = app.new_conversation().await;
    let first = app
        .chat_events(
            &format!("/api/chat/conversations/{conv}/messages"),
            json!({"content": "one", "models": ["gpt-test"]}),
        )
        .await;
    let a1 = done_events(&first)[0]["message"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let u1 = first[0].1["message"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let regen = app
        .chat_events(&format!("/api/chat/messages/{a1}/regenerate"), json!({}))
        .await;
    let a2 = &done_events(&regen)[0]["message"];
    assert_eq!(
        a2["parent_id"],
        u1.as_str(),
        "a sibling of the first answer"
    );
    assert!(regen.iter().all(|(n, _)| n != "user"));

    let edited = app
        .chat_events(
            &format!("/api/chat/messages/{u1}/edit"),
            json!({"content": "uno"}),
        )
        .await;
    let u2 = &edited[0].1["message"];
    assert_eq!(
        u2["parent_id"],
        Value::Null,
        "a sibling of the first prompt"
    );
    assert_eq!(u2["content"], "uno");
    assert_eq!(
        mock.bodies().last().expect("body")["messages"],
        json!([{"role": "user", "content": "uno"}])
    );

    // Back on the first branch, a follow-up carries that branch's history.
    app.api_json(
        reqwest::Method::PATCH,
        &format!("/api/chat/conversations/{conv}"),
        Some(json!({"current_leaf": a1})),
    )
    .await;
    app.chat_events(
        &format!("/api/chat/conversations/{conv}/messages"),
        json!({"content": "two", "models": ["gpt-test"]}),
    )
    .await;
    assert_eq!(
        mock.bodies().last().expect("body")["messages"],
        json!([
            {"role": "user", "content": "one"},
            {"role": "assistant", "content": ANSWER},
            {"role": "user", "content": "two"},
        ])
    );
    let c = app
        .api_json(
            reqwest::Method::GET,
            &format!("/api/chat/conversations/{conv}"),
            None,
        )
        .await;
    assert_eq!(c["messages"].as_array().map(Vec::len), Some(7));
}

#[tokio::test]
async fn search_finds_latin_and_cjk_text_and_deleting_keeps_the_receipts() {
    let mock = MockUpstream::start().await;
    let app = spawn_app(&one_target(&mock, "")).await;
    let latin = app.new_conversation().await;
    app.chat_events(
        &format!("/api/chat/conversations/{latin}/messages"),
        json!({"content": "Plan a trip to Lisbon", "models": ["gpt-test"]}),
    )
    .await;
    let cjk = app.new_conversation().await;
    app.chat_events(
        &format!("/api/chat/conversations/{cjk}/messages"),
        json!({"content": "请解释一下量子计算", "models": ["gpt-test"]}),
    )
    .await;
    let find = |q: &'static str| {
        let app = &app;
        async move {
            app.api_json(
                reqwest::Method::GET,
                &format!("/api/chat/conversations?q={}", urlencode(q)),
                None,
            )
            .await["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|i| {
                    (
                        i["id"].as_str().unwrap_or_default().to_string(),
                        i["snippet"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    let hits = find("lisbon").await;
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].0, latin);
    assert!(hits[0].1.contains("\u{1}Lisbon\u{2}"), "{:?}", hits[0].1);
    let hits = find("量子").await;
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].0, cjk);
    // An answer's text is found too.
    assert_eq!(find("upstream").await.len(), 2);

    app.flush().await;
    let before: i64 = app
        .db()
        .query_row(
            "SELECT count(*) FROM receipts WHERE run_id = ?1",
            [&latin],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(before, 1);
    let del = app
        .api(
            reqwest::Method::DELETE,
            &format!("/api/chat/conversations/{latin}"),
            None,
        )
        .await;
    assert_eq!(del.status(), 204);
    assert!(find("lisbon").await.is_empty());
    let gone = app
        .api(
            reqwest::Method::GET,
            &format!("/api/chat/conversations/{latin}"),
            None,
        )
        .await;
    assert_eq!(gone.status(), 404);
    let after: i64 = app
        .db()
        .query_row(
            "SELECT count(*) FROM receipts WHERE run_id = ?1",
            [&latin],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(after, 1, "receipts outlive the conversation");
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn the_estimate_names_the_paying_bucket_and_a_cost_range() {
    let (official, relay) = (MockUpstream::start().await, MockUpstream::start().await);
    let app = spawn_app(&priced_config(&official, &relay, "")).await;
    let e = app
        .api_json(
            reqwest::Method::POST,
            "/api/chat/estimate",
            Some(json!({"content": "x".repeat(4000), "models": ["gpt-4o", "cheap"]})),
        )
        .await;
    let list = e["estimates"].as_array().expect("estimates");
    assert_eq!(list[0]["bucket"], "credit");
    assert_eq!(list[0]["currency"], "USD");
    assert_eq!(list[0]["prompt_tokens"], 1000);
    assert!(list[0]["cost_min_micros"].as_i64() < list[0]["cost_max_micros"].as_i64());
    assert_eq!(list[1]["bucket"], "wallet");
    assert_eq!(list[1]["currency"], "CNY");
    let unknown = app
        .api(
            reqwest::Method::POST,
            "/api/chat/estimate",
            Some(json!({"content": "x", "models": ["nope"]})),
        )
        .await;
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn bad_chat_input_gets_a_clear_error() {
    let mock = MockUpstream::start().await;
    let app = spawn_app(&one_target(&mock, "")).await;
    let conv = app.new_conversation().await;
    for (body, needle) in [
        (json!({"content": "hi", "models": []}), "1 to 6"),
        (
            json!({"content": "hi", "models": ["a", "b", "c", "d", "e", "f", "g"]}),
            "1 to 6",
        ),
        (
            json!({"content": "hi", "models": ["gpt-test", "gpt-test"]}),
            "twice",
        ),
        (json!({"content": "  ", "models": ["gpt-test"]}), "empty"),
        (
            json!({"content": "hi", "models": ["gpt-test"], "parent_id": "msg_nope"}),
            "not in conversation",
        ),
    ] {
        let resp = app
            .api(
                reqwest::Method::POST,
                &format!("/api/chat/conversations/{conv}/messages"),
                Some(body.clone()),
            )
            .await;
        assert_eq!(resp.status(), 400, "{body}");
        let v: Value = resp.json().await.expect("json");
        let m = v["error"]["message"].as_str().unwrap_or_default();
        assert!(m.contains(needle), "{body}: {m}");
    }
    let missing = app
        .api(
            reqwest::Method::POST,
            "/api/chat/conversations/conv_nope/messages",
            Some(json!({"content": "hi", "models": ["gpt-test"]})),
        )
        .await;
    assert_eq!(missing.status(), 404);
    assert_eq!(mock.hits(), 0);
}

#[tokio::test]
async fn a_revoked_app_key_turns_the_apps_model_calls_off_with_a_clear_refusal() {
    let (official, relay) = (MockUpstream::start().await, MockUpstream::start().await);
    let app = spawn_app(&priced_config(&official, &relay, "")).await;
    app.topup(Bucket::Credit, 10_000_000).await;
    // A revoked app key turns the app's calls off, with a clear refusal.
    switchyard::keys::revoke(&app.db(), "app").expect("revoke");
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let conv = app.new_conversation().await;
    let resp = app
        .api(
            reqwest::Method::POST,
            &format!("/api/chat/conversations/{conv}/messages"),
            Some(json!({"content": "hi", "models": ["gpt-4o"]})),
        )
        .await;
    assert_eq!(resp.status(), 409);
    let v: Value = resp.json().await.expect("json");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .contains("`app`"));
    assert_eq!(official.hits(), 0);
}

// Multi-threaded: this test blocks on processes while the mock serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hard_kill_mid_answer_leaves_the_partial_answer_incomplete_and_its_receipt_interrupted() {
    use futures_util::StreamExt;
    let mock = MockUpstream::start().await;
    mock.set_default(Reply::StallAfter(2));
    let mut served = crate::ledger::ServeProcess::start_with(&one_target(&mock, ""));
    let http = reqwest::Client::new();
    let api = |addr: &str, token: &str, method: reqwest::Method, path: &str| {
        http.request(method, format!("http://{addr}{path}"))
            .bearer_auth(token.to_string())
    };
    let conv: Value = api(
        &served.addr,
        &served.admin_token,
        reqwest::Method::POST,
        "/api/chat/conversations",
    )
    .json(&json!({}))
    .send()
    .await
    .expect("create")
    .json()
    .await
    .expect("json");
    let conv = conv["id"].as_str().expect("id").to_string();
    let resp = api(
        &served.addr,
        &served.admin_token,
        reqwest::Method::POST,
        &format!("/api/chat/conversations/{conv}/messages"),
    )
    .json(&json!({"content": "hi", "models": ["gpt-test"]}))
    .send()
    .await
    .expect("send");
    let mut stream = resp.bytes_stream();
    let mut seen = String::new();
    while parse_events(seen.rsplit_once("\n\n").map_or("", |(a, _)| a))
        .iter()
        .filter(|(n, _)| n == "delta")
        .count()
        < 2
    {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("deltas come")
            .expect("not ended")
            .expect("chunk");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    // The partial text reaches the database within a flush.
    let db_path = served.db_path();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let conn = switchyard::ledger::db::open(&db_path).expect("db");
        let content: String = conn
            .query_row(
                "SELECT content FROM chat_messages WHERE role = 'assistant'",
                [],
                |r| r.get(0),
            )
            .expect("answer row");
        // The request is on record too: its `pending` receipt, which the
        // ledger commits within its batch window (a kill inside those few
        // milliseconds can lose it: README, Money).
        let pending: i64 = conn
            .query_row(
                "SELECT count(*) FROM receipts WHERE status = 'pending'",
                [],
                |r| r.get(0),
            )
            .expect("count");
        if content == "Hello from" && pending == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "partial answer stored ({content:?}) and its receipt pending ({pending})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    served.child.0.kill().expect("kill -9");
    served.child.0.wait().expect("reaped");
    drop(stream);

    let (_child, addr, token) = crate::ledger::ServeProcess::serve(served.dir.path());
    let c: Value = api(
        &addr,
        &token,
        reqwest::Method::GET,
        &format!("/api/chat/conversations/{conv}"),
    )
    .send()
    .await
    .expect("get")
    .json()
    .await
    .expect("json");
    let answer = &c["messages"][1];
    assert_eq!(answer["status"], "incomplete");
    assert_eq!(answer["content"], "Hello from");
    assert_eq!(answer["error_code"], "interrupted");
    let receipts = switchyard::ledger::receipts::recent(
        &switchyard::ledger::db::open(&served.db_path()).expect("db"),
        10,
    )
    .expect("receipts");
    assert_eq!(
        answer["receipt"]["status"], "interrupted",
        "answer {answer}; receipts {receipts:?}"
    );
    assert_eq!(c["messages"][0]["content"], "hi");
}

#[tokio::test]
async fn export_and_chatgpt_import_keep_texts_branches_and_receipt_facts() {
    let mock = MockUpstream::start().await;
    let app = spawn_app(&one_target(&mock, "")).await;
    let conv = app.new_conversation().await;
    app.chat_events(
        &format!("/api/chat/conversations/{conv}/messages"),
        json!({"content": "What is *Markdown*?", "models": ["gpt-test"]}),
    )
    .await;
    app.flush().await;
    let md = app
        .api(
            reqwest::Method::GET,
            &format!("/api/chat/conversations/{conv}/export"),
            None,
        )
        .await;
    assert_eq!(header(&md, "content-type"), "text/markdown; charset=utf-8");
    let rec = app.only_record().await;
    let md = md.text().await.expect("text");
    assert!(md.starts_with("# What is *Markdown*?\n"), "{md}");
    assert!(md.contains("## You\n\nWhat is *Markdown*?"), "{md}");
    assert!(md.contains(&format!("## gpt-test\n\n{ANSWER}")), "{md}");
    assert!(
        md.contains(&format!(
            "<sub>up-a via only · credit · 12 in / 3 out tokens · unpriced · receipt {}</sub>",
            rec.request_id
        )),
        "{md}"
    );
    let js: Value = app
        .api(
            reqwest::Method::GET,
            &format!("/api/chat/conversations/{conv}/export?format=json"),
            None,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        js["messages"][1]["receipt"]["request_id"],
        rec.request_id.as_str()
    );
    let bad = app
        .api(
            reqwest::Method::GET,
            &format!("/api/chat/conversations/{conv}/export?format=pdf"),
            None,
        )
        .await;
    assert_eq!(bad.status(), 400);

    // A ChatGPT export: a root, a system message, a prompt with two
    // answers (a regenerated branch), the second in view.
    let export = json!([{
        "title": "Imported chat",
        "create_time": 1_700_000_000.0,
        "update_time": 1_700_000_100.0,
        "current_node": "a2",
        "mapping": {
            "root": {"id": "root", "message": null, "parent": null, "children": ["sys"]},
            "sys": {"id": "sys", "parent": "root", "children": ["u1"],
                    "message": {"author": {"role": "system"}, "content": {"content_type": "text", "parts": [""]}}},
            "u1": {"id": "u1", "parent": "sys", "children": ["a1", "a2"],
                   "message": {"author": {"role": "user"}, "content": {"content_type": "text", "parts": ["Hola"]}, "create_time": 1_700_000_001.0}},
            "a1": {"id": "a1", "parent": "u1", "children": [],
                   "message": {"author": {"role": "assistant"}, "content": {"content_type": "text", "parts": ["Hi"]}, "metadata": {"model_slug": "gpt-4o"}}},
            "a2": {"id": "a2", "parent": "u1", "children": [],
                   "message": {"author": {"role": "assistant"}, "content": {"content_type": "text", "parts": ["Hello there"]}, "metadata": {"model_slug": "gpt-4o"}}}
        }
    }]);
    let r = app
        .api(reqwest::Method::POST, "/api/chat/import", Some(export))
        .await;
    assert_eq!(r.status(), 201);
    let r: Value = r.json().await.expect("json");
    assert_eq!(r["imported"], 1);
    let id = r["conversations"][0].as_str().expect("id");
    let c = app
        .api_json(
            reqwest::Method::GET,
            &format!("/api/chat/conversations/{id}"),
            None,
        )
        .await;
    assert_eq!(c["title"], "Imported chat");
    assert_eq!(c["folder"], "Imported");
    let msgs = c["messages"].as_array().expect("messages");
    assert_eq!(msgs.len(), 3);
    let prompt = &msgs[0];
    assert_eq!(prompt["content"], "Hola");
    assert_eq!(prompt["parent_id"], Value::Null);
    assert!(msgs[1..]
        .iter()
        .all(|m| m["parent_id"] == prompt["id"] && m["model"] == "gpt-4o"));
    let leaf = msgs
        .iter()
        .find(|m| m["id"] == c["current_leaf"])
        .expect("leaf");
    assert_eq!(leaf["content"], "Hello there");
    let bad = app
        .api(
            reqwest::Method::POST,
            "/api/chat/import",
            Some(json!({"not": "a list"})),
        )
        .await;
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn the_app_keys_budget_set_like_any_keys_stops_chat_once_spent() {
    let (official, relay) = (MockUpstream::start().await, MockUpstream::start().await);
    let app = spawn_app(&priced_config(&official, &relay, "")).await;
    app.topup(Bucket::Credit, 10_000_000).await;
    let set = app
        .api_json(
            reqwest::Method::PUT,
            "/api/keys/app/budgets",
            Some(json!({"daily_budget": {"credit": "0.00005"}})),
        )
        .await;
    assert_eq!(set["daily_budget"]["credit"], "0.00005");
    // The running gateway picks the budget up within a second.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let conv = app.new_conversation().await;
    let send = |text: &'static str| {
        let app = &app;
        let conv = conv.clone();
        async move {
            app.chat_events(
                &format!("/api/chat/conversations/{conv}/messages"),
                json!({"content": text, "models": ["gpt-4o"]}),
            )
            .await
        }
    };
    let first = send("one").await;
    let first = done_events(&first)[0];
    assert_eq!(first["message"]["status"], "complete");
    // 12 input tokens at 2.50 USD/1M and 3 output at 10 USD/1M.
    assert_eq!(first["message"]["receipt"]["cost_micros"], 60);
    let second = send("two").await;
    let second = done_events(&second)[0];
    assert_eq!(second["error_code"], "budget_exceeded");
    assert_eq!(second["message"]["status"], "error");
    assert!(second["message"]["error"]
        .as_str()
        .unwrap_or_default()
        .contains("`app`"));
    assert_eq!(official.hits(), 1, "the refused answer never went upstream");
    let missing = app
        .api(
            reqwest::Method::PUT,
            "/api/keys/nobody/budgets",
            Some(json!({"daily_budget": "1"})),
        )
        .await;
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn a_chosen_title_model_titles_the_conversation_on_a_receipt_of_its_own() {
    let mock = MockUpstream::start().await;
    let app = spawn_app(&one_target(&mock, "")).await;
    let set = app
        .api_json(
            reqwest::Method::PUT,
            "/api/chat/settings",
            Some(json!({"title_model": "gpt-test"})),
        )
        .await;
    assert_eq!(set["title_model"], "gpt-test");
    let unknown = app
        .api(
            reqwest::Method::PUT,
            "/api/chat/settings",
            Some(json!({"title_model": "nope"})),
        )
        .await;
    assert_eq!(unknown.status(), 404);
    let conv = app.new_conversation().await;
    app.chat_events(
        &format!("/api/chat/conversations/{conv}/messages"),
        json!({"content": "Tell me about trains", "models": ["gpt-test"]}),
    )
    .await;
    let recs = app.records(2).await;
    let steps: Vec<_> = recs.iter().map(|r| r.step.as_deref()).collect();
    assert_eq!(steps, vec![Some("answer"), Some("title")]);
    assert!(recs
        .iter()
        .all(|r| r.run_id.as_deref() == Some(conv.as_str())));
    let title_call = &mock.bodies()[1];
    assert_eq!(title_call["max_tokens"], 24);
    let c = app
        .api_json(
            reqwest::Method::GET,
            &format!("/api/chat/conversations/{conv}"),
            None,
        )
        .await;
    assert_eq!(c["title"], ANSWER);
    // Titles off again: back to the first words.
    app.api_json(
        reqwest::Method::PUT,
        "/api/chat/settings",
        Some(json!({"title_model": null})),
    )
    .await;
    let other = app.new_conversation().await;
    app.chat_events(
        &format!("/api/chat/conversations/{other}/messages"),
        json!({"content": "Second one", "models": ["gpt-test"]}),
    )
    .await;
    let c = app
        .api_json(
            reqwest::Method::GET,
            &format!("/api/chat/conversations/{other}"),
            None,
        )
        .await;
    assert_eq!(c["title"], "Second one");
    assert_eq!(mock.hits(), 3);
}

/// A one-page PDF whose only text is `text`, with a correct xref table.
fn tiny_pdf(text: &str) -> Vec<u8> {
    let stream = format!("BT /F1 12 Tf 72 720 Td ({text}) Tj ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_string(),
        format!("<< /Length {} >>\nstream\n{stream}\nendstream", stream.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_string(),
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for off in offsets {
        out.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

#[tokio::test]
async fn attachments_reach_the_model_as_image_parts_and_file_text() {
    let mock = MockUpstream::start().await;
    let app = spawn_app(&one_target(&mock, "")).await;
    let upload = |name: &'static str, mime: &'static str, bytes: Vec<u8>| {
        let app = &app;
        async move {
            let resp = app
                .http
                .post(app.url("/api/chat/attachments"))
                .bearer_auth(&app.admin_token)
                .header("content-type", mime)
                .header("x-filename", name)
                .body(bytes)
                .send()
                .await
                .expect("upload");
            let status = resp.status();
            (status, resp.json::<Value>().await.expect("json"))
        }
    };
    let png = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0];
    let (s, image) = upload("dot.png", "image/png", png.clone()).await;
    assert_eq!(s, 201, "{image}");
    let (_, notes) = upload(
        "notes.md",
        "text/markdown",
        b"# Notes\nremember the milk".to_vec(),
    )
    .await;
    let (_, paper) = upload(
        "paper.pdf",
        "application/pdf",
        tiny_pdf("Quarterly results rose"),
    )
    .await;
    assert_eq!(paper["mime"], "application/pdf");
    let (refused, why) = upload("archive.zip", "application/zip", b"PK".to_vec()).await;
    assert_eq!(refused, 400);
    assert!(why["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .contains("cannot be attached"));
    let (empty, _) = upload("empty.txt", "text/plain", Vec::new()).await;
    assert_eq!(empty, 400);

    let conv = app.new_conversation().await;
    let events = app
        .chat_events(
            &format!("/api/chat/conversations/{conv}/messages"),
            json!({
                "content": "What is in these?",
                "models": ["gpt-test"],
                "attachments": [image["id"], notes["id"], paper["id"]],
            }),
        )
        .await;
    let user = &events[0].1["message"];
    let names: Vec<&str> = user["attachments"]
        .as_array()
        .expect("attachments")
        .iter()
        .map(|a| a["name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(names, vec!["dot.png", "notes.md", "paper.pdf"]);
    let content = &mock.bodies()[0]["messages"][0]["content"];
    let text = content[0]["text"].as_str().expect("text part");
    assert!(text.starts_with("What is in these?"), "{text}");
    assert!(
        text.contains("Attached file `notes.md`:\n```\n# Notes\nremember the milk\n```"),
        "{text}"
    );
    assert!(text.contains("Attached file `paper.pdf`"), "{text}");
    assert!(text.contains("Quarterly results rose"), "{text}");
    use base64::Engine as _;
    assert_eq!(
        content[1]["image_url"]["url"],
        format!(
            "data:image/png;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(&png)
        )
    );
    // An unknown attachment id is refused before anything is sent.
    let resp = app
        .api(
            reqwest::Method::POST,
            &format!("/api/chat/conversations/{conv}/messages"),
            Some(json!({"content": "x", "models": ["gpt-test"], "attachments": ["att_nope"]})),
        )
        .await;
    assert_eq!(resp.status(), 400);
    assert_eq!(mock.hits(), 1);
}

#[tokio::test]
async fn a_refusal_by_the_provider_reads_as_its_own_message() {
    let mock = MockUpstream::start().await;
    mock.set_default(Reply::Status {
        status: 400,
        body: openai_error(
            "This prompt breaks the rules.",
            "invalid_request_error",
            Some("content_policy_violation"),
        ),
        headers: Vec::new(),
    });
    let app = spawn_app(&one_target(&mock, "")).await;
    let conv = app.new_conversation().await;
    let events = app
        .chat_events(
            &format!("/api/chat/conversations/{conv}/messages"),
            json!({"content": "hi", "models": ["gpt-test"]}),
        )
        .await;
    let msg = &done_events(&events)[0]["message"];
    assert_eq!(msg["status"], "error");
    assert_eq!(
        msg["error"],
        "The provider refused the request (400): This prompt breaks the rules."
    );
    assert_eq!(mock.hits(), 1, "a request's own fault is not retried");
}

#[tokio::test]
async fn the_same_model_over_two_routes_compares_side_by_side_each_paid_from_its_own_bucket() {
    let (official, relay) = (MockUpstream::start().await, MockUpstream::start().await);
    let app = spawn_app(&priced_config(&official, &relay, "")).await;
    app.topup(Bucket::Credit, 10_000_000).await;
    app.topup(Bucket::Wallet, 10_000_000).await;
    let models = app
        .api_json(reqwest::Method::GET, "/api/chat/models", None)
        .await;
    let listed: Vec<(&str, &str, bool)> = models["models"]
        .as_array()
        .expect("models")
        .iter()
        .map(|m| {
            (
                m["model"].as_str().unwrap_or_default(),
                m["bucket"].as_str().unwrap_or_default(),
                m["pinned"].as_bool().unwrap_or_default(),
            )
        })
        .collect();
    assert!(
        listed.contains(&("fallback", "credit", false)),
        "{listed:?}"
    );
    assert!(
        listed.contains(&("fallback@official", "credit", true)),
        "{listed:?}"
    );
    assert!(
        listed.contains(&("fallback@relay", "wallet", true)),
        "{listed:?}"
    );
    assert!(
        !listed.iter().any(|(m, _, _)| m.starts_with("gpt-4o@")),
        "single-target routes are listed once"
    );

    // The Credit target fails: pinned, it does not fail over to Wallet.
    official.set_default(status(503));
    let conv = app.new_conversation().await;
    let events = app
        .chat_events(
            &format!("/api/chat/conversations/{conv}/messages"),
            json!({"content": "hi", "models": ["fallback@official", "fallback@relay"]}),
        )
        .await;
    let done = done_events(&events);
    let by = |m: &str| {
        done.iter()
            .map(|d| &d["message"])
            .find(|msg| msg["model"] == m)
            .expect("an answer per choice")
    };
    let credit = by("fallback@official");
    assert_eq!(credit["status"], "error");
    let walk = credit["receipt"]["walk"].as_str().unwrap_or_default();
    assert!(
        !walk.contains("relay"),
        "a pinned target never fails over: {walk}"
    );
    let wallet = by("fallback@relay");
    assert_eq!(wallet["status"], "complete");
    assert_eq!(wallet["receipt"]["bucket"], "wallet");
    assert_eq!(wallet["receipt"]["currency"], "CNY");
    assert_eq!(
        wallet["receipt"]["walk"],
        "backup relay/gpt-4o → ok (200); paid from Wallet"
    );
    // Upstream saw the route's own model name, not the choice.
    assert_eq!(relay.bodies()[0]["model"], "gpt-4o");
    let e = app
        .api_json(
            reqwest::Method::POST,
            "/api/chat/estimate",
            Some(json!({"content": "hi", "models": ["fallback@relay"]})),
        )
        .await;
    assert_eq!(e["estimates"][0]["bucket"], "wallet");
}
