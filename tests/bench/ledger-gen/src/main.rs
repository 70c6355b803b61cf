//! Fills a data directory with N receipts spread over D days, written
//! through the gateway's own ledger writer (receipts, charges, rollup), so
//! that `switchyard spend` can be timed against a realistic ledger.
//!
//! Usage: switchyard-bench-ledger DATA_DIR [RECEIPTS] [DAYS]
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use switchyard::config::{Bucket, BucketsConfig};
use switchyard::ledger::Ledger;
use switchyard::record::{
    AppliedPrice, AttemptOutcome, AttemptRecord, PriceSource, Recorder, RequestRecord,
    RequestStatus, ServedBy, UnitPrices, Usage,
};

const MODELS: [&str; 8] = [
    "gpt-5.5",
    "gpt-5-mini",
    "gpt-4.1",
    "claude-sonnet-4-5",
    "claude-haiku-4-5",
    "gemini-2.5-pro",
    "gemini-2.5-flash",
    "deepseek-chat",
];
const CHANNELS: [(&str, &str, Bucket); 4] = [
    ("openai", "OpenAI", Bucket::Credit),
    ("anthropic", "Anthropic", Bucket::Credit),
    ("relay", "Relay", Bucket::Wallet),
    ("deepseek", "DeepSeek", Bucket::Wallet),
];
const KEYS: [&str; 5] = ["vscode", "scripts", "cli", "notebook", "agent"];

/// A small deterministic generator (xorshift), so runs are repeatable.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let Some(dir) = args.get(1).map(PathBuf::from) else {
        eprintln!("usage: switchyard-bench-ledger DATA_DIR [RECEIPTS] [DAYS]");
        return ExitCode::FAILURE;
    };
    let n: usize = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let days: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(30);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("cannot create {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    let ledger = match Ledger::open(&dir.join("switchyard.db"), BucketsConfig::default()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot open the ledger: {e}");
            return ExitCode::FAILURE;
        }
    };
    let now = SystemTime::now();
    let span_ms = days * 86_400_000;
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let started = Instant::now();
    for i in 0..n {
        let model = MODELS[rng.below(MODELS.len() as u64) as usize];
        let (channel, brand, bucket) = CHANNELS[rng.below(CHANNELS.len() as u64) as usize];
        let key = KEYS[rng.below(KEYS.len() as u64) as usize];
        let ago = Duration::from_millis(rng.below(span_ms));
        let mut rec = RequestRecord::new(format!("req_bench_{i:08}"), model.into(), i % 3 == 0);
        rec.started_at = now - ago;
        rec.key_id = Some(1 + rng.below(KEYS.len() as u64) as i64);
        rec.key = Some(key.into());
        rec.project = Some(if key == "vscode" { "work" } else { "home" }.into());
        let fell_back = rng.below(20) == 0;
        let failed = rng.below(50) == 0;
        let attempt = |index: usize, outcome: AttemptOutcome| AttemptRecord {
            channel: channel.into(),
            upstream_model: model.into(),
            bucket,
            target_index: index,
            outcome,
            started: Duration::ZERO,
            duration: Duration::from_millis(300),
        };
        if fell_back {
            rec.attempts.push(attempt(
                0,
                AttemptOutcome::Http {
                    status: 503,
                    class: "server_error",
                },
            ));
        }
        rec.attempts.push(attempt(
            usize::from(fell_back),
            if failed {
                AttemptOutcome::Http {
                    status: 500,
                    class: "server_error",
                }
            } else {
                AttemptOutcome::Ok { status: 200 }
            },
        ));
        if failed {
            rec.status = RequestStatus::Error;
        } else {
            rec.status = RequestStatus::Ok;
            rec.served_by = Some(ServedBy {
                channel: channel.into(),
                brand: brand.into(),
                upstream_model: model.into(),
                bucket,
                target_index: usize::from(fell_back),
                cross_bucket: false,
                price: Some(AppliedPrice {
                    unit: UnitPrices {
                        input: 1_250_000,
                        cached_input: 125_000,
                        cache_write: 1_250_000,
                        output: 10_000_000,
                        reasoning: 10_000_000,
                    },
                    currency: if bucket == Bucket::Credit {
                        "USD"
                    } else {
                        "CNY"
                    }
                    .into(),
                    source: PriceSource::Catalog,
                }),
            });
            rec.usage = Some(Usage {
                input: 200 + rng.below(4000),
                cached_input: rng.below(2000),
                cache_write: 0,
                output: 50 + rng.below(1500),
                reasoning: rng.below(500),
            });
        }
        rec.latency = Duration::from_millis(400 + rng.below(3000));
        ledger.begin(&rec);
        ledger.record(&std::sync::Arc::new(rec));
        if i % 100_000 == 99_999 {
            ledger.flush();
            println!(
                "{} receipts written ({:.1}s)",
                i + 1,
                started.elapsed().as_secs_f64()
            );
        }
    }
    ledger.flush();
    println!(
        "Wrote {n} receipts over {days} days to {} in {:.1}s",
        dir.display(),
        started.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}
