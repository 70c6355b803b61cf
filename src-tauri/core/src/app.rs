//! Starting and stopping the gateway: where its files live, compiling the
//! config, the admin token, binding the loopback port, and shutting down
//! gracefully.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use arc_swap::ArcSwap;
use secrecy::SecretString;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::chat::{Chat, ChatError};
use crate::config::Config;
use crate::keys::KeyCache;
use crate::ledger::db::DbError;
use crate::ledger::Ledger;
use crate::record::{LogRecorder, Recorder, Recorders};
use crate::request::Core;
use crate::routing::{BuildError, Gateway, HealthBook};
use crate::secrets::status::StatusWriter;
use crate::secrets::{self, AdminTokenSource, SecretStore};
use crate::server::{conn, router, AdminToken, AppState};

pub const CONFIG_FILE: &str = "switchyard.toml";
pub const DB_FILE: &str = "switchyard.db";

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(
        "cannot find this platform's config/data directories (is $HOME set?); pass --config and --data-dir"
    )]
    NoHome,
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error("server.listen: {0}")]
    Listen(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("chat: {0}")]
    Chat(#[from] ChatError),
    #[error("internal task failed: {0}")]
    Join(String),
}

/// Where the config file and the data directory are.
#[derive(Debug, Clone)]
pub struct Paths {
    pub config: PathBuf,
    pub data_dir: PathBuf,
}

impl Paths {
    /// The given paths, or the platform's defaults
    /// (`~/.config/switchyard/switchyard.toml`, `~/.local/share/switchyard` on Linux).
    pub fn resolve(config: Option<PathBuf>, data_dir: Option<PathBuf>) -> Result<Paths, AppError> {
        let dirs = directories::ProjectDirs::from("", "", "switchyard");
        let config = match config {
            Some(c) => c,
            None => dirs
                .as_ref()
                .ok_or(AppError::NoHome)?
                .config_dir()
                .join(CONFIG_FILE),
        };
        let data_dir = match data_dir {
            Some(d) => d,
            None => dirs
                .as_ref()
                .ok_or(AppError::NoHome)?
                .data_dir()
                .to_path_buf(),
        };
        Ok(Paths { config, data_dir })
    }

    pub fn db(&self) -> PathBuf {
        db_path(&self.data_dir)
    }
}

pub fn db_path(data_dir: &Path) -> PathBuf {
    data_dir.join(DB_FILE)
}

/// Everything a running gateway needs.
pub struct AppOptions {
    pub config: Config,
    pub data_dir: PathBuf,
    pub secrets: Arc<dyn SecretStore>,
    /// Receive every finished request record, besides the log line.
    pub recorders: Vec<Arc<dyn Recorder>>,
}

/// A running gateway.
pub struct Server {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    /// Opens the management API (`/api`); shown to the user at start.
    pub admin_token: SecretString,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Server {
    /// Stops accepting, lets in-flight requests finish, and returns.
    pub async fn shutdown(mut self) -> Result<(), AppError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.wait().await
    }

    /// Runs until the server stops.
    pub async fn wait(self) -> Result<(), AppError> {
        self.task.await.map_err(|e| AppError::Join(e.to_string()))
    }

    /// A handle that stops the server when sent to (or dropped).
    pub fn take_shutdown(&mut self) -> Option<oneshot::Sender<()>> {
        self.shutdown.take()
    }
}

/// Binds the port, opens the database, compiles the config, reads (or
/// makes) the admin token, and serves.
pub async fn start(opts: AppOptions) -> Result<Server, AppError> {
    let addr = opts.config.listen_addr().map_err(AppError::Listen)?;
    if opts.config.server.allow_remote && !addr.ip().is_loopback() {
        tracing::warn!(
            %addr,
            "LISTENING BEYOND LOOPBACK (allow_remote = true): anyone who can reach this address \
             and holds a gateway key can spend your balances"
        );
    }
    // Bound first: the guard checks `Host` against the real port.
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| AppError::Bind { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| AppError::Bind { addr, source })?;

    let db = crate::app::db_path(&opts.data_dir);
    let ledger_db = db.clone();
    let buckets = opts.config.buckets.clone();
    let ledger = tokio::task::spawn_blocking(move || Ledger::open(&ledger_db, buckets))
        .await
        .map_err(|e| AppError::Join(e.to_string()))??;
    let status_db = db.clone();
    // The app's own key exists before the key cache first loads.
    let keys = tokio::task::spawn_blocking(move || {
        crate::chat::prepare(&db)?;
        Ok::<_, AppError>(KeyCache::open(db)?)
    })
    .await
    .map_err(|e| AppError::Join(e.to_string()))??;
    keys.spawn_poller();

    // Keyring reads block: channel secrets and the admin token.
    let store = Arc::clone(&opts.secrets);
    let config = opts.config;
    let (gateway, (admin_token, admin_source)) =
        tokio::task::spawn_blocking(move || -> Result<_, AppError> {
            let mut gateway = Gateway::build(config, store.as_ref())?;
            let (writer, rejected) = StatusWriter::open(&status_db)?;
            gateway.track_secret_status(writer, &rejected);
            Ok((gateway, secrets::admin_token(store.as_ref())))
        })
        .await
        .map_err(|e| AppError::Join(e.to_string()))??;
    match admin_source {
        AdminTokenSource::Stored => {}
        AdminTokenSource::Created => {
            tracing::info!("created the admin token for /api; it is kept in the OS keyring")
        }
        AdminTokenSource::Ephemeral(why) => tracing::warn!(
            "the admin token for /api cannot be kept in the OS keyring ({why}); this one works \
             until the gateway stops"
        ),
    }

    let health = Arc::new(HealthBook::new());
    let mut recorders: Vec<Arc<dyn Recorder>> = vec![
        Arc::clone(&ledger) as Arc<dyn Recorder>,
        Arc::clone(&health) as Arc<dyn Recorder>,
        Arc::new(LogRecorder),
    ];
    recorders.extend(opts.recorders);
    let core = Arc::new(Core {
        gateway: ArcSwap::from_pointee(gateway),
        keys,
        ledger,
        recorder: Arc::new(Recorders(recorders)),
    });
    let chat_core = Arc::clone(&core);
    let chat_dir = opts.data_dir.clone();
    let chat = tokio::task::spawn_blocking(move || Chat::open(chat_core, &chat_dir))
        .await
        .map_err(|e| AppError::Join(e.to_string()))??;
    let state = Arc::new(AppState {
        core,
        chat,
        listen: addr,
        admin: AdminToken::new(&admin_token),
        data_dir: opts.data_dir,
        secrets: opts.secrets,
        paused: AtomicBool::new(false),
        health,
        edits: tokio::sync::Mutex::new(()),
    });

    let (tx, rx) = oneshot::channel::<()>();
    let app = router(Arc::clone(&state));
    let client_timeout = state.gateway().config.server.client_timeout();
    let ledger = Arc::clone(&state.core.ledger);
    let task = tokio::spawn(async move {
        conn::serve(listener, app, client_timeout, async move {
            let _ = rx.await;
        })
        .await;
        // Every request has finished: commit the last receipts.
        let _ = tokio::task::spawn_blocking(move || ledger.flush()).await;
    });
    Ok(Server {
        addr,
        state,
        admin_token,
        shutdown: Some(tx),
        task,
    })
}
