//! The command line shared by `switchyard` and `switchyard-desktop`
//! (DESIGN.md §3). This is the binary's edge: errors become `anyhow`
//! messages here and a non-zero exit code.

/// `println!` for command output: when stdout is closed early (`| head`),
/// the command stops quietly instead of panicking on the broken pipe.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if writeln!(std::io::stdout().lock(), $($arg)*).is_err() {
            std::process::exit(0);
        }
    }};
}

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use chrono::Datelike;
use clap::{Args, Parser, Subcommand};

use std::collections::BTreeMap;

use crate::app::{self, AppOptions, Paths};
use crate::config::{Bucket, Config, SecretRef};
use crate::keys::{self, NewKey};
use crate::ledger::catalog::Catalog;
use crate::ledger::money::{format_amount, format_micro, parse_amount};
use crate::ledger::pricing::effective_price;
use crate::ledger::spend::{self, Dim};
use crate::ledger::{db, receipts, store};
use crate::secrets::status as secret_status;
use crate::secrets::{KeyringStore, SecretStore};

#[derive(Debug, Parser)]
#[command(
    name = "switchyard",
    version,
    about = "Personal multi-model AI gateway: keys in the OS keyring, Credit/Wallet ledger, OpenAI-compatible loopback port"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Config file [default: the platform config dir's switchyard/switchyard.toml]
    #[arg(long, global = true, env = "SWITCHYARD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory for the ledger database [default: the platform data dir's switchyard/]
    #[arg(long, global = true, env = "SWITCHYARD_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway on the loopback port (writes a starter config on first run)
    Serve {
        /// Listen here instead of the config's server.listen (e.g. 127.0.0.1:0 for any free port)
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Gateway keys for local tools
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Provider secrets in the OS keyring
    Secret {
        #[command(subcommand)]
        command: SecretCommand,
    },
    /// Config file checks
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Add money to a bucket's balance
    Topup {
        /// credit or wallet
        bucket: Bucket,
        /// In the bucket's currency, e.g. 20 or 12.50
        #[arg(allow_negative_numbers = true)]
        amount: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// Where the money went, per bucket, offline
    Spend {
        /// How far back: 90m, 24h, 7d, 2w [default: 7d]
        #[arg(long, conflicts_with_all = ["from", "to"])]
        since: Option<String>,
        /// First day, YYYY-MM-DD (local)
        #[arg(long)]
        from: Option<String>,
        /// Last day, YYYY-MM-DD (local, inclusive) [default: today]
        #[arg(long)]
        to: Option<String>,
        /// model, channel, brand, key, project, bucket, day or source
        #[arg(long, default_value = "model")]
        by: Dim,
        /// Print CSV instead of a table
        #[arg(long)]
        csv: bool,
    },
    /// Recent receipts with the route each request walked
    Receipts {
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print JSON
        #[arg(long)]
        json: bool,
        /// One receipt, in full
        #[arg(long)]
        id: Option<String>,
        /// Only receipts with this status: ok, error, pending,
        /// client_cancelled, upstream_cut, interrupted or refused
        #[arg(long, value_parser = receipt_status)]
        status: Option<String>,
    },
    /// The effective price of every route target
    Prices,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create a key; it is printed once, alone on the last line of stdout
    Create {
        /// A name for the tool that will use it, e.g. vscode-continue
        name: String,
        /// Model globs the key may call (repeatable); default: every model
        #[arg(long = "models", value_name = "GLOB")]
        models: Vec<String>,
        /// Buckets the key may spend from; default: both
        #[arg(long, value_delimiter = ',', value_name = "credit,wallet")]
        buckets: Vec<Bucket>,
        /// Project label the key's spend is reported under
        #[arg(long, value_name = "P")]
        project: Option<String>,
        /// Daily spending limit: AMOUNT for each bucket (in its currency), or BUCKET=AMOUNT (repeatable)
        #[arg(long, value_name = "AMOUNT|BUCKET=AMOUNT")]
        daily_budget: Vec<String>,
        /// Monthly spending limit, as --daily-budget
        #[arg(long, value_name = "AMOUNT|BUCKET=AMOUNT")]
        monthly_budget: Vec<String>,
    },
    /// List keys (never their secrets)
    List,
    /// Revoke a key; tools using it are refused from then on
    Revoke { name: String },
    /// Set a key's budgets (replacing its old ones; none given: no limits),
    /// e.g. the app's own key: `key budget app --daily-budget credit=2`
    Budget {
        name: String,
        /// Daily spending limit: AMOUNT for each bucket (in its currency), or BUCKET=AMOUNT (repeatable)
        #[arg(long, value_name = "AMOUNT|BUCKET=AMOUNT")]
        daily_budget: Vec<String>,
        /// Monthly spending limit, as --daily-budget
        #[arg(long, value_name = "AMOUNT|BUCKET=AMOUNT")]
        monthly_budget: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Store a channel's secret in the OS keyring, read from stdin
    Set { channel: String },
    /// Which channels have a secret (never prints one)
    Status,
    /// Remove a channel's secret from the OS keyring
    Delete { channel: String },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the config file and say what it defines
    Check,
}

/// Entry point of the `switchyard` binary.
pub fn main() -> ExitCode {
    finish(run(Cli::parse()))
}

/// Entry point of a binary for which no subcommand means `serve`.
pub fn main_defaulting_to_serve() -> ExitCode {
    let mut cli = Cli::parse();
    cli.command.get_or_insert(Command::Serve { listen: None });
    finish(run(cli))
}

fn finish(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let paths = Paths::resolve(cli.global.config, cli.global.data_dir)?;
    let Some(command) = cli.command else {
        let mut cmd = <Cli as clap::CommandFactory>::command();
        cmd.print_help()?;
        return Ok(());
    };
    match command {
        Command::Serve { listen } => serve(&paths, listen.as_deref()),
        Command::Key { command } => key(&paths, command),
        Command::Secret { command } => secret(&paths, command),
        Command::Config {
            command: ConfigCommand::Check,
        } => config_check(&paths),
        Command::Topup {
            bucket,
            amount,
            note,
        } => topup(&paths, bucket, &amount, note.as_deref()),
        Command::Spend {
            since,
            from,
            to,
            by,
            csv,
        } => spend_report(
            &paths,
            since.as_deref(),
            from.as_deref(),
            to.as_deref(),
            by,
            csv,
        ),
        Command::Receipts {
            limit,
            json,
            id,
            status,
        } => receipts_cmd(&paths, limit, json, id.as_deref(), status),
        Command::Prices => prices(&paths),
    }
}

/// "credit: today 0.12 of 5.00 · month 3.40 USD" for each bucket the key
/// spent from or has a budget in.
fn key_spend_text(
    conn: &rusqlite::Connection,
    config: &Config,
    key: &keys::GatewayKey,
) -> anyhow::Result<String> {
    let today = chrono::Local::now().date_naive();
    let day_start = store::local_midnight_ms(today);
    let month_start = store::local_midnight_ms(today.with_day(1).unwrap_or(today));
    let mut parts = Vec::new();
    for b in Bucket::ALL {
        let (day, month): (i64, i64) = conn.query_row(
            "SELECT COALESCE(SUM(CASE WHEN started_at >= ?2 THEN cost END), 0), COALESCE(SUM(cost), 0)
             FROM receipts WHERE key_id = ?1 AND bucket = ?3 AND started_at >= ?4",
            rusqlite::params![key.id, day_start, b.as_str(), month_start.min(day_start)],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let daily = key.daily_budget.get(&b);
        let monthly = key.monthly_budget.get(&b);
        if day == 0 && month == 0 && daily.is_none() && monthly.is_none() {
            continue;
        }
        let of = |limit: Option<&i64>| {
            limit
                .map(|v| format!(" of {}", format_micro(*v)))
                .unwrap_or_default()
        };
        parts.push(format!(
            "{}: today {}{} · month {}{} {}",
            b.as_str(),
            format_micro(day),
            of(daily),
            format_micro(month),
            of(monthly),
            config.buckets.currency(b)
        ));
    }
    Ok(if parts.is_empty() {
        "-".into()
    } else {
        parts.join("; ")
    })
}

/// The config when there is one; defaults otherwise (commands that only
/// read the ledger work before the first `serve`).
fn config_or_default(paths: &Paths) -> anyhow::Result<Config> {
    if paths.config.exists() {
        Ok(Config::load(&paths.config)?)
    } else {
        Ok(Config::default())
    }
}

fn topup(paths: &Paths, bucket: Bucket, amount: &str, note: Option<&str>) -> anyhow::Result<()> {
    let amount = parse_amount(amount)?;
    if amount <= 0 {
        bail!("a top-up must be a positive amount");
    }
    let config = config_or_default(paths)?;
    let mut conn = db::open(&paths.db())?;
    let after = store::topup(&mut conn, &config.buckets, bucket, amount, note)?;
    let currency = config.buckets.currency(bucket);
    out!(
        "Topped up {} by {}; balance now {}.",
        bucket.title(),
        format_amount(amount, currency),
        format_amount(after, currency)
    );
    Ok(())
}

fn spend_report(
    paths: &Paths,
    since: Option<&str>,
    from: Option<&str>,
    to: Option<&str>,
    by: Dim,
    csv: bool,
) -> anyhow::Result<()> {
    let (from_ms, to_ms) =
        spend::range(chrono::Local::now(), since, from, to).map_err(anyhow::Error::msg)?;
    let conn = db::open(&paths.db())?;
    let mut rows = spend::spend(&conn, from_ms, to_ms, by)?;
    // Unpriced rows take their bucket's currency, when the config says it.
    if let Ok(config) = Config::load(&paths.config) {
        rows = spend::adopt_bucket_currency(rows, &config.buckets);
    }
    let pct = |n: i64, d: i64| {
        if d == 0 {
            "-".to_string()
        } else {
            format!("{:.1}%", n as f64 * 100.0 / d as f64)
        }
    };
    let bucket_name = |b: &str| {
        if b.is_empty() {
            "(none)".to_string()
        } else {
            b.to_string()
        }
    };
    if csv {
        out!(
            "{},bucket,currency,requests,input_tokens,output_tokens,cost,fallbacks,errors,unpriced",
            by.title().to_lowercase()
        );
        for r in &rows {
            out!(
                "{},{},{},{},{},{},{},{},{},{}",
                csv_field(&r.group),
                r.bucket,
                r.currency,
                r.requests,
                r.input_tokens,
                r.output_tokens,
                format_micro(r.cost),
                r.fallbacks,
                r.errors,
                r.unpriced
            );
        }
        return Ok(());
    }
    let fmt_time = |ms: i64| {
        chrono::TimeZone::timestamp_millis_opt(&chrono::Local, ms)
            .single()
            .map_or_else(String::new, |t| t.format("%Y-%m-%d %H:%M").to_string())
    };
    out!(
        "Spend from {} to {} (local time), by {}",
        fmt_time(from_ms),
        fmt_time(to_ms),
        by.title().to_lowercase()
    );
    let balances = store_balances(&conn)?;
    out!("Balances: {}", balances.join(" · "));
    out!();
    if rows.is_empty() {
        out!("No requests in this period.");
        return Ok(());
    }
    let table: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            [
                if r.group.is_empty() {
                    "-".into()
                } else {
                    r.group.clone()
                },
                bucket_name(&r.bucket),
                r.requests.to_string(),
                r.input_tokens.to_string(),
                r.output_tokens.to_string(),
                if r.currency.is_empty() {
                    if r.unpriced > 0 {
                        "unpriced".into()
                    } else {
                        "-".into()
                    }
                } else {
                    format_amount(r.cost, &r.currency)
                        + if r.unpriced > 0 { " + unpriced" } else { "" }
                },
                pct(r.fallbacks, r.requests),
                pct(r.errors, r.requests),
            ]
        })
        .collect();
    print_table(
        &[
            by.title(),
            "BUCKET",
            "REQUESTS",
            "INPUT TOK",
            "OUTPUT TOK",
            "COST",
            "FALLBACK",
            "ERRORS",
        ],
        &table,
    );
    out!();
    for t in spend::totals(&rows) {
        let cost = if t.currency.is_empty() {
            "nothing charged".to_string()
        } else {
            format_amount(t.cost, &t.currency)
        };
        out!(
            "{}: {} over {} request(s); fallback rate {}, error rate {}{}",
            if t.bucket.is_empty() {
                "Not charged to a bucket".to_string()
            } else {
                format!("Total {}", t.bucket)
            },
            cost,
            t.requests,
            pct(t.fallbacks, t.requests),
            pct(t.errors, t.requests),
            if t.unpriced > 0 {
                format!("; {} unpriced (cost unknown)", t.unpriced)
            } else {
                String::new()
            }
        );
    }
    Ok(())
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn store_balances(conn: &rusqlite::Connection) -> anyhow::Result<Vec<String>> {
    let mut stmt =
        conn.prepare("SELECT bucket, balance, currency FROM balances ORDER BY bucket")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (b, v, c) = row?;
        let title = b
            .parse::<Bucket>()
            .map_or(b.clone(), |b| b.title().to_string());
        out.push(format!("{title} {}", format_amount(v, &c)));
    }
    if out.is_empty() {
        out.push("no money movements yet".into());
    }
    Ok(out)
}

const RECEIPT_STATUSES: [&str; 7] = [
    "ok",
    "error",
    "pending",
    "client_cancelled",
    "upstream_cut",
    "interrupted",
    "refused",
];

fn receipt_status(s: &str) -> Result<String, String> {
    if RECEIPT_STATUSES.contains(&s) {
        Ok(s.to_string())
    } else {
        Err(format!("must be one of {}", RECEIPT_STATUSES.join(", ")))
    }
}

fn receipts_cmd(
    paths: &Paths,
    limit: usize,
    json: bool,
    id: Option<&str>,
    status: Option<String>,
) -> anyhow::Result<()> {
    let conn = db::open(&paths.db())?;
    if let Some(id) = id {
        let Some(r) = receipts::by_id(&conn, id)? else {
            bail!("no receipt with id `{id}`");
        };
        if json {
            out!("{}", serde_json::to_string_pretty(&r)?);
            return Ok(());
        }
        print_receipt(&r);
        return Ok(());
    }
    let filter = receipts::ReceiptFilter {
        status: status.clone(),
        ..Default::default()
    };
    let list = receipts::page(&conn, &filter, limit)?;
    if json {
        out!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    if list.is_empty() {
        match status {
            Some(s) => out!("No {} receipts.", s.replace('_', " ")),
            None => out!("No receipts yet."),
        }
        return Ok(());
    }
    let rows: Vec<[String; 6]> = list
        .iter()
        .map(|r| {
            [
                fmt_ms(r.started_at),
                r.requested_model.clone(),
                r.status.clone(),
                format!(
                    "{}/{}",
                    r.usage.input + r.usage.cached_input + r.usage.cache_write,
                    r.usage.output + r.usage.reasoning
                ) + if r.usage_estimated { "~" } else { "" },
                cost_text(r),
                if r.status == "refused" {
                    r.error.clone().unwrap_or_default()
                } else {
                    r.walk.clone()
                },
            ]
        })
        .collect();
    print_table(
        &[
            "TIME",
            "MODEL",
            "STATUS",
            "TOKENS IN/OUT",
            "COST",
            "ROUTE OR REASON",
        ],
        &rows,
    );
    Ok(())
}

fn fmt_ms(ms: i64) -> String {
    chrono::TimeZone::timestamp_millis_opt(&chrono::Local, ms)
        .single()
        .map_or_else(String::new, |t| t.format("%Y-%m-%d %H:%M:%S").to_string())
}

fn cost_text(r: &receipts::Receipt) -> String {
    match (&r.currency, r.unpriced()) {
        (_, true) => "unpriced".into(),
        (Some(c), _) => format_amount(r.cost, c),
        (None, _) => "-".into(),
    }
}

fn print_receipt(r: &receipts::Receipt) {
    let line = |k: &str, v: String| out!("{k:<14} {v}");
    line("Receipt", r.id.clone());
    line("Started", fmt_ms(r.started_at));
    line(
        "Status",
        r.status.clone()
            + &r.error
                .as_ref()
                .map(|e| format!(" — {e}"))
                .unwrap_or_default(),
    );
    line(
        "Key",
        format!(
            "{} (project {})",
            r.key_name.as_deref().unwrap_or("-"),
            r.project.as_deref().unwrap_or("-")
        ),
    );
    let mut caused_by = r.source.clone();
    if let Some(run) = &r.run_id {
        caused_by.push_str(&format!(" · run {run}"));
    }
    if let Some(step) = &r.step {
        caused_by.push_str(&format!(" · step {step}"));
    }
    line("Source", caused_by);
    line(
        "Model",
        format!("{} via route {}", r.requested_model, r.route),
    );
    line(
        "Answered by",
        format!(
            "{} on {} ({})",
            r.upstream_model.as_deref().unwrap_or("-"),
            r.channel.as_deref().unwrap_or("-"),
            r.brand.as_deref().unwrap_or("-")
        ),
    );
    line("Route walked", r.walk.clone());
    let u = r.usage;
    line(
        "Tokens",
        format!(
            "input {} · cached {} · cache write {} · output {} · reasoning {}{}",
            u.input,
            u.cached_input,
            u.cache_write,
            u.output,
            u.reasoning,
            if r.usage_estimated {
                " (estimated)"
            } else {
                ""
            }
        ),
    );
    if let (Some(p), Some(c)) = (r.price, &r.currency) {
        line(
            "Prices / 1M",
            format!(
                "input {} · cached {} · cache write {} · output {} · reasoning {} {c} ({})",
                format_micro(p.input),
                format_micro(p.cached_input),
                format_micro(p.cache_write),
                format_micro(p.output),
                format_micro(p.reasoning),
                r.price_source.as_deref().unwrap_or("-")
            ),
        );
    }
    line("Cost", cost_text(r));
    line(
        "Paid from",
        match r.bucket.as_deref().and_then(|b| b.parse::<Bucket>().ok()) {
            Some(b) if r.cross_bucket_fallback => {
                format!("{} (cross-bucket fallback allowed by the route)", b.title())
            }
            Some(b) => format!(
                "{} (the bucket of channel {})",
                b.title(),
                r.channel.as_deref().unwrap_or("-")
            ),
            None => "nothing charged".into(),
        },
    );
    line(
        "Timing",
        format!(
            "first token {} · total {}",
            r.ttft_ms.map_or("-".into(), |v| format!("{v} ms")),
            r.latency_ms.map_or("-".into(), |v| format!("{v} ms"))
        ),
    );
}

fn prices(paths: &Paths) -> anyhow::Result<()> {
    let config = Config::load(&paths.config)?;
    let catalog = Catalog::bundled();
    let mut rows: Vec<[String; 8]> = Vec::new();
    for route in &config.routes {
        for (i, t) in route.targets.get_ref().iter().enumerate() {
            let Some(ch) = config.channel(t.channel.get_ref()) else {
                continue;
            };
            let bucket = ch.bucket;
            let currency = config.buckets.currency(bucket);
            let p = effective_price(
                catalog,
                &t.model,
                ch.price_multiplier,
                config.buckets.usd_rate(bucket),
                currency,
                t.price.as_ref(),
            );
            let (input, cached, output, source) = match &p {
                Some(p) => (
                    format_micro(p.unit.input),
                    format_micro(p.unit.cached_input),
                    format_micro(p.unit.output),
                    match p.source {
                        crate::ledger::pricing::PriceSource::Catalog => format!(
                            "catalog {}{}",
                            catalog.version,
                            ch.price_multiplier
                                .map(|m| format!(" ×{m}"))
                                .unwrap_or_default()
                        ),
                        crate::ledger::pricing::PriceSource::Override => "route override".into(),
                    },
                ),
                None => (
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "UNPRICED: receipts will say so".into(),
                ),
            };
            rows.push([
                route.model.get_ref().clone(),
                format!(
                    "{} {}/{}",
                    if i == 0 { "primary" } else { "backup" },
                    ch.id.get_ref(),
                    t.model
                ),
                bucket.as_str().into(),
                input,
                cached,
                output,
                currency.into(),
                source,
            ]);
        }
    }
    if rows.is_empty() {
        out!("No routes in {}.", paths.config.display());
        return Ok(());
    }
    out!(
        "Prices per 1M tokens, in each target's bucket currency (catalog {}).",
        catalog.version
    );
    print_table(
        &[
            "ROUTE", "TARGET", "BUCKET", "INPUT", "CACHED", "OUTPUT", "CURRENCY", "SOURCE",
        ],
        &rows,
    );
    Ok(())
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SWITCHYARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not in log files.
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// The config a gateway starts with: the file (a commented starter one is
/// written first if there is none, and the user told so), with `--listen`
/// applied.
pub fn serve_config(paths: &Paths, listen: Option<&str>) -> anyhow::Result<Config> {
    let (mut config, created) = Config::load_or_create(&paths.config)?;
    if let Some(addr) = listen {
        config
            .set_listen(addr)
            .map_err(|e| anyhow::anyhow!("--listen: {e}"))?;
    }
    if created {
        eprintln!(
            "Wrote a starter config to {} — add your channels and routes there.",
            paths.config.display()
        );
    }
    Ok(config)
}

fn serve(paths: &Paths, listen: Option<&str>) -> anyhow::Result<()> {
    init_tracing();
    let config = serve_config(paths, listen)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let server = app::start(AppOptions {
            config,
            data_dir: paths.data_dir.clone(),
            secrets: Arc::new(KeyringStore::new()),
            recorders: Vec::new(),
        })
        .await?;
        eprintln!(
            "Switchyard is listening on http://{}/v1 (config {}, data {})",
            server.addr,
            paths.config.display(),
            paths.data_dir.display()
        );
        let mut ui = server.addr;
        if ui.ip().is_unspecified() {
            ui.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        eprintln!(
            "Admin link (the management API under /api; the desktop UI will open it): http://{ui}/#token={}",
            secrecy::ExposeSecret::expose_secret(&server.admin_token)
        );
        let mut server = server;
        let stop = server.take_shutdown();
        let waiter = tokio::spawn(server.wait());
        shutdown_signal().await;
        eprintln!("Shutting down: finishing requests in flight…");
        if let Some(stop) = stop {
            let _ = stop.send(());
        }
        waiter.await.context("server task")??;
        anyhow::Ok(())
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

fn key(paths: &Paths, command: KeyCommand) -> anyhow::Result<()> {
    let conn = db::open(&paths.db())?;
    match command {
        KeyCommand::Create {
            name,
            models,
            buckets,
            project,
            daily_budget,
            monthly_budget,
        } => {
            let (key, plaintext) = keys::create(
                &conn,
                &NewKey {
                    name,
                    models,
                    buckets,
                    project,
                    daily_budget: keys::parse_budgets(&daily_budget).map_err(anyhow::Error::msg)?,
                    monthly_budget: keys::parse_budgets(&monthly_budget)
                        .map_err(anyhow::Error::msg)?,
                },
            )?;
            eprintln!(
                "Created gateway key `{}` (models: {}; buckets: {}{}).",
                key.name,
                key.models_display(),
                key.buckets_display(),
                key.project
                    .as_deref()
                    .map(|p| format!("; project: {p}"))
                    .unwrap_or_default()
            );
            eprintln!("It is shown only this once — copy it now:");
            out!("{plaintext}");
        }
        KeyCommand::List => {
            let keys = keys::list(&conn)?;
            if keys.is_empty() {
                out!("No gateway keys yet. Create one with `switchyard key create NAME`.");
                return Ok(());
            }
            let config = config_or_default(paths)?;
            let mut rows: Vec<[String; 7]> = Vec::new();
            for k in &keys {
                rows.push([
                    k.name.clone(),
                    format!("{}…", k.prefix),
                    k.models_display(),
                    k.buckets_display(),
                    k.project.clone().unwrap_or_else(|| "-".into()),
                    if k.revoked_at.is_some() {
                        "revoked".into()
                    } else {
                        "active".into()
                    },
                    key_spend_text(&conn, &config, k)?,
                ]);
            }
            print_table(
                &[
                    "NAME",
                    "KEY",
                    "MODELS",
                    "BUCKETS",
                    "PROJECT",
                    "STATUS",
                    "SPEND (BUDGET)",
                ],
                &rows,
            );
        }
        KeyCommand::Revoke { name } => {
            keys::revoke(&conn, &name)?;
            out!("Revoked `{name}`; requests with it are refused from now on.");
        }
        KeyCommand::Budget {
            name,
            daily_budget,
            monthly_budget,
        } => {
            let daily = keys::parse_budgets(&daily_budget).map_err(anyhow::Error::msg)?;
            let monthly = keys::parse_budgets(&monthly_budget).map_err(anyhow::Error::msg)?;
            keys::set_budgets(&conn, &name, &daily, &monthly)?;
            if daily.is_empty() && monthly.is_empty() {
                out!("`{name}` has no budget now.");
            } else {
                out!("Budgets of `{name}` set; a running gateway applies them within a second.");
            }
        }
    }
    Ok(())
}

fn read_secret(channel: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    let secret = if stdin.is_terminal() {
        rpassword::prompt_password(format!("Secret for channel `{channel}` (input hidden): "))
            .context("reading the secret from the terminal")?
    } else {
        let mut s = String::new();
        stdin
            .lock()
            .read_to_string(&mut s)
            .context("reading the secret from stdin")?;
        s
    };
    let secret = secret.trim().to_string();
    if secret.is_empty() {
        bail!("no secret given on stdin; nothing stored");
    }
    Ok(secret)
}

fn secret(paths: &Paths, command: SecretCommand) -> anyhow::Result<()> {
    let config = Config::load(&paths.config)?;
    let store = KeyringStore::new();
    let known = |id: &str| -> anyhow::Result<()> {
        if config.channel(id).is_none() {
            let ids: Vec<&str> = config
                .channels
                .iter()
                .map(|c| c.id.get_ref().as_str())
                .collect();
            bail!(
                "no channel `{id}` in {} (channels: {})",
                paths.config.display(),
                if ids.is_empty() {
                    "none".into()
                } else {
                    ids.join(", ")
                }
            );
        }
        Ok(())
    };
    match command {
        SecretCommand::Set { channel } => {
            known(&channel)?;
            let secret = read_secret(&channel)?;
            store.set(&channel, &secret)?;
            forget_rejection(paths, &channel)?;
            out!(
                "Stored the secret for `{channel}` in the OS keyring; a running gateway uses it \
                 once restarted."
            );
            if let Some(c) = config.channel(&channel) {
                if c.secret != SecretRef::Keyring {
                    out!(
                        "Note: channel `{channel}` is configured to read its secret elsewhere; set `secret = \"keyring\"` to use this one."
                    );
                }
            }
        }
        SecretCommand::Delete { channel } => {
            known(&channel)?;
            let removed = store.delete(&channel)?;
            forget_rejection(paths, &channel)?;
            if removed {
                out!("Removed the secret for `{channel}` from the OS keyring.");
            } else {
                out!("No secret was stored for `{channel}`.");
            }
        }
        SecretCommand::Status => {
            let rejected = if paths.db().exists() {
                secret_status::rejections(&db::open(&paths.db())?)?
            } else {
                BTreeMap::new()
            };
            let mut rows = Vec::new();
            let mut refused = Vec::new();
            for c in &config.channels {
                let id = c.id.get_ref();
                let (source, status) = match &c.secret {
                    SecretRef::None => ("none".to_string(), "not needed".to_string()),
                    SecretRef::Env(var) => (
                        format!("env:{var}"),
                        if std::env::var(var).is_ok_and(|v| !v.is_empty()) {
                            "set".into()
                        } else {
                            "missing".into()
                        },
                    ),
                    SecretRef::Keyring => (
                        "keyring".to_string(),
                        match store.get(id) {
                            Ok(Some(_)) => "set".into(),
                            Ok(None) => "missing".into(),
                            Err(e) => format!("unavailable ({e})"),
                        },
                    ),
                };
                // A provider's refusal outranks "set": the secret is there
                // but does not work.
                let status = match rejected.get(id) {
                    Some(r) => {
                        refused.push(id.as_str());
                        format!("rejected ({} at {})", r.status, fmt_ms(r.at_ms))
                    }
                    None => status,
                };
                rows.push([id.clone(), source, status]);
            }
            if rows.is_empty() {
                out!("No channels in {}.", paths.config.display());
            } else {
                print_table(&["CHANNEL", "SOURCE", "SECRET"], &rows);
            }
            if !refused.is_empty() {
                out!();
                out!(
                    "The provider refused the secret of {}. Store a working one with \
                     `switchyard secret set CHANNEL` (or fix the environment variable), then \
                     restart the gateway.",
                    refused.join(", ")
                );
            }
        }
    }
    Ok(())
}

/// `secret set` and `secret delete` start the channel's record afresh.
fn forget_rejection(paths: &Paths, channel: &str) -> anyhow::Result<()> {
    if paths.db().exists() {
        secret_status::clear(&db::open(&paths.db())?, channel)?;
    }
    Ok(())
}

fn config_check(paths: &Paths) -> anyhow::Result<()> {
    let config = Config::load(&paths.config)?;
    out!(
        "{} is valid: {} channel(s), {} route(s), listening on {}.",
        paths.config.display(),
        config.channels.len(),
        config.routes.len(),
        config.server.listen.get_ref()
    );
    Ok(())
}

fn print_table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) {
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == N {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        out!("{}", out.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
