//! Chat search benchmark: fills a database with CONVERSATIONS conversations
//! of MESSAGES messages each (English, Chinese and Japanese text) through the
//! chat store, then times `chat::store::list` with a query — the search the
//! Chat view runs — beside a reference on the same data in the same run: a
//! plain `LIKE '%word%'` scan of the message texts (what search without an
//! index costs).
//!
//!   switchyard-bench-chat-search DIR [CONVERSATIONS] [MESSAGES]
//!
//! Prints one line per query: median and max of 20 runs, hits, and the
//! reference's median.

#![allow(clippy::print_stdout)] // a benchmark reports on stdout

use std::path::PathBuf;
use std::time::{Duration, Instant};

use switchyard::chat::store::{self, ListQuery, MessageStatus, NewConversation, NewMessage, Role};
use switchyard::ledger::db;

const WORDS: [&str; 24] = [
    "route", "budget", "latency", "channel", "receipt", "wallet", "credit", "stream", "model",
    "prompt", "token", "answer", "Lisbon", "weather", "recipe", "garden", "invoice", "python",
    "rust", "kernel", "travel", "museum", "piano", "orbit",
];
const CJK: [&str; 12] = [
    "量子计算",
    "天气预报",
    "机器学习",
    "旅行计划",
    "东京",
    "数据库",
    "翻译",
    "経済",
    "天気",
    "料理",
    "図書館",
    "音楽",
];

/// A small deterministic generator, so every run searches the same data.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as usize
    }
}

fn text(rng: &mut Lcg, words: usize) -> String {
    let mut out = String::new();
    for i in 0..words {
        if i > 0 {
            out.push(' ');
        }
        if rng.next().is_multiple_of(7) {
            out.push_str(CJK[rng.next() % CJK.len()]);
        } else {
            out.push_str(WORDS[rng.next() % WORDS.len()]);
        }
    }
    out
}

fn stats(mut times: Vec<Duration>) -> (f64, f64) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (
        ms(times[times.len() / 2]),
        ms(*times.last().unwrap_or(&Duration::ZERO)),
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().ok_or("usage: DIR [CONVERSATIONS] [MESSAGES]")?);
    let conversations: usize = args.next().map_or(Ok(10_000), |s| s.parse())?;
    let messages: usize = args.next().map_or(Ok(20), |s| s.parse())?;
    let path = dir.join("switchyard.db");
    let conn = db::open(&path)?;
    let have: i64 = conn.query_row("SELECT count(*) FROM chat_messages", [], |r| r.get(0))?;
    if have == 0 {
        // Speed of filling is not what is measured.
        conn.pragma_update(None, "synchronous", "OFF")?;
        let started = Instant::now();
        let mut rng = Lcg(42);
        let params = store::Params::default();
        for c in 0..conversations {
            let id = format!("conv_{c:06}");
            let mut title = text(&mut rng, 4);
            // One conversation in the middle has a word no other has.
            if c == conversations / 2 {
                title.push_str(" zeppelin");
            }
            store::create_conversation(
                &conn,
                &NewConversation {
                    id: &id,
                    title: &title,
                    system: "",
                    params: &params,
                    model: None,
                    folder: None,
                    now: c as i64,
                },
            )?;
            let mut parent: Option<String> = None;
            for m in 0..messages {
                let mid = format!("msg_{c:06}_{m:03}");
                let role = if m.is_multiple_of(2) {
                    Role::User
                } else {
                    Role::Assistant
                };
                let mut body = text(&mut rng, if role == Role::User { 12 } else { 40 });
                if c == conversations / 3 && m == 1 {
                    body.push_str(" ゼロ知識証明");
                }
                store::add_message(
                    &conn,
                    &id,
                    &NewMessage {
                        id: &mid,
                        parent_id: parent.as_deref(),
                        role,
                        content: &body,
                        model: (role == Role::Assistant).then_some("gpt-5.5"),
                        status: MessageStatus::Complete,
                        compare_group: None,
                        attachments: &[],
                        created_at: c as i64,
                    },
                )?;
                parent = Some(mid);
            }
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        println!(
            "filled {conversations} conversations × {messages} messages in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    let total: i64 = conn.query_row("SELECT count(*) FROM chat_messages", [], |r| r.get(0))?;
    println!(
        "database {:.1} MB, {total} messages",
        std::fs::metadata(&path)?.len() as f64 / 1e6
    );
    println!("| query | search median | search max | conversations found | LIKE scan median |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for q in [
        "lisbon",
        "量子计算",
        "天気",
        "route budget",
        "orbit piano",
        "zeppelin",
        "ゼロ知識",
        "nowhere-at-all",
    ] {
        let mut times = Vec::new();
        let mut hits = 0;
        for _ in 0..20 {
            let t = Instant::now();
            let page = store::list(
                &conn,
                &ListQuery {
                    q: Some(q),
                    model: None,
                    folder: None,
                    only: None,
                    limit: 50,
                    cursor: None,
                },
            )?;
            times.push(t.elapsed());
            hits = page.items.len();
        }
        let (median, max) = stats(times);
        let first = q.split_whitespace().next().unwrap_or(q);
        let mut like = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            let _: i64 = conn
                .prepare_cached(
                    "SELECT count(DISTINCT conversation) FROM chat_messages
                     WHERE content LIKE '%' || ?1 || '%'",
                )?
                .query_row([first], |r| r.get(0))?;
            like.push(t.elapsed());
        }
        let (like_median, _) = stats(like);
        println!("| `{q}` | {median:.1} ms | {max:.1} ms | {hits} | {like_median:.1} ms |");
    }
    Ok(())
}
