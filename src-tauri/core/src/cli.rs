//! The command line shared by `switchyard` and `switchyard-desktop`
//! (DESIGN.md §3). This is the binary's edge: errors become `anyhow`
//! messages here and a non-zero exit code.
#![allow(clippy::print_stdout)]

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};

use crate::app::{self, AppOptions, Paths};
use crate::config::{Bucket, Config, SecretRef};
use crate::keys::{self, NewKey};
use crate::ledger::db;
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
    },
    /// List keys (never their secrets)
    List,
    /// Revoke a key; tools using it are refused from then on
    Revoke { name: String },
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
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SWITCHYARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn serve(paths: &Paths, listen: Option<&str>) -> anyhow::Result<()> {
    init_tracing();
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
        } => {
            let (key, plaintext) = keys::create(
                &conn,
                &NewKey {
                    name,
                    models,
                    buckets,
                    project,
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
            println!("{plaintext}");
        }
        KeyCommand::List => {
            let keys = keys::list(&conn)?;
            if keys.is_empty() {
                println!("No gateway keys yet. Create one with `switchyard key create NAME`.");
                return Ok(());
            }
            let rows: Vec<[String; 6]> = keys
                .iter()
                .map(|k| {
                    [
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
                    ]
                })
                .collect();
            print_table(
                &["NAME", "KEY", "MODELS", "BUCKETS", "PROJECT", "STATUS"],
                &rows,
            );
        }
        KeyCommand::Revoke { name } => {
            keys::revoke(&conn, &name)?;
            println!("Revoked `{name}`; requests with it are refused from now on.");
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
            println!("Stored the secret for `{channel}` in the OS keyring.");
            if let Some(c) = config.channel(&channel) {
                if c.secret != SecretRef::Keyring {
                    println!(
                        "Note: channel `{channel}` is configured to read its secret elsewhere; set `secret = \"keyring\"` to use this one."
                    );
                }
            }
        }
        SecretCommand::Delete { channel } => {
            known(&channel)?;
            if store.delete(&channel)? {
                println!("Removed the secret for `{channel}` from the OS keyring.");
            } else {
                println!("No secret was stored for `{channel}`.");
            }
        }
        SecretCommand::Status => {
            let mut rows = Vec::new();
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
                            Err(e) => format!("unavailable: {e}"),
                        },
                    ),
                };
                rows.push([id.clone(), source, status]);
            }
            if rows.is_empty() {
                println!("No channels in {}.", paths.config.display());
            } else {
                print_table(&["CHANNEL", "SOURCE", "SECRET"], &rows);
            }
        }
    }
    Ok(())
}

fn config_check(paths: &Paths) -> anyhow::Result<()> {
    let config = Config::load(&paths.config)?;
    println!(
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
        println!("{}", out.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
