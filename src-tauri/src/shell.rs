//! The desktop app's life: start the gateway in this process, open the
//! window and the tray on it, and stop it. The invariant: however the app is
//! asked to quit (the tray's Quit, SIGTERM/SIGINT, the session ending), the
//! gateway is shut down gracefully first — requests in flight finish and the
//! ledger is flushed — and only then does the process exit.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use secrecy::ExposeSecret;
use switchyard::app::{self, AppError, AppOptions, Paths, Server};
use switchyard::cli::Global;
use switchyard::secrets::KeyringStore;
use switchyard::server::AppState;
use tauri::{AppHandle, Manager, RunEvent};

use crate::{tray, window};

/// The running gateway, as the window and the tray see it.
pub struct Shell {
    /// Taken when quitting: shutting down consumes it.
    server: Mutex<Option<Server>>,
    pub state: Arc<AppState>,
    /// Where the window and the tray reach the gateway (loopback even when
    /// it listens on every address).
    pub addr: SocketAddr,
    quitting: AtomicBool,
    stopped: AtomicBool,
}

pub fn run(global: Global, listen: Option<String>) -> ExitCode {
    init_tracing();
    // A dashboard needs no GPU compositing, and without it WebKitGTK keeps
    // no GL stack in its processes: about 70 MB less, and none of the blank
    // windows some GPU drivers cause. Set to 0 to turn compositing back on.
    // (Still one thread here, so changing the environment is sound.)
    #[cfg(target_os = "linux")]
    if std::env::var_os("WEBKIT_DISABLE_COMPOSITING_MODE").is_none() {
        std::env::set_var("WEBKIT_DISABLE_COMPOSITING_MODE", "1");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // One runtime for the gateway and Tauri's own tasks.
    tauri::async_runtime::set(runtime.handle().clone());

    let built = tauri::Builder::default()
        // First: a second launch hands over to the running app and exits
        // before it touches the port.
        .plugin(tauri_plugin_single_instance::init(|app, _argv, _cwd| {
            window::show(app)
        }))
        .setup(move |app| {
            if let Err(e) = open(app.handle(), &global, listen.as_deref()) {
                startup_failed(&e);
                app.handle().exit(1);
            }
            Ok(())
        })
        .on_window_event(window::on_event)
        .build(tauri::generate_context!());
    let app = match built {
        Ok(app) => app,
        Err(e) => {
            eprintln!("error: cannot open the Switchyard window: {e}");
            return ExitCode::FAILURE;
        }
    };

    let code = app.run_return(|app, event| {
        if let RunEvent::ExitRequested { code, api, .. } = event {
            let Some(shell) = app.try_state::<Shell>() else {
                return; // the gateway never started
            };
            if shell.stopped.load(Ordering::SeqCst) {
                return;
            }
            api.prevent_exit();
            // No code: the last window closed. The gateway stays in the tray.
            if let Some(code) = code {
                quit(app, code);
            }
        }
    });
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// Starts the gateway, then the window and the tray on it.
fn open(app: &AppHandle, global: &Global, listen: Option<&str>) -> anyhow::Result<()> {
    let server = start_gateway(global, listen)?;
    let addr = reachable(server.addr);
    let token = server.admin_token.expose_secret().to_owned();
    app.manage(Shell {
        state: Arc::clone(&server.state),
        server: Mutex::new(Some(server)),
        addr,
        quitting: AtomicBool::new(false),
        stopped: AtomicBool::new(false),
    });
    window::create(app, addr, &token).context("opening the window")?;
    if let Err(e) = tray::create(app) {
        // Some desktops have no tray; the window still works.
        tracing::warn!("no tray icon: {e}");
    }
    spawn_signal_handler(app.clone());
    Ok(())
}

fn start_gateway(global: &Global, listen: Option<&str>) -> anyhow::Result<Server> {
    let paths = Paths::resolve(global.config.clone(), global.data_dir.clone())?;
    let config = switchyard::cli::serve_config(&paths, listen)?;
    let server = tauri::async_runtime::block_on(app::start(AppOptions {
        config,
        data_dir: paths.data_dir.clone(),
        secrets: Arc::new(KeyringStore::new()),
        recorders: Vec::new(),
    }))
    .map_err(|e| match e {
        AppError::Bind { addr, source } if source.kind() == std::io::ErrorKind::AddrInUse => {
            anyhow::anyhow!(
                "cannot listen on {addr}: the port is in use — is Switchyard (or `switchyard serve`) \
                 already running? Otherwise change server.listen in {}",
                paths.config.display()
            )
        }
        e => e.into(),
    })?;
    eprintln!(
        "Switchyard is listening on http://{}/v1 (config {}, data {})",
        server.addr,
        paths.config.display(),
        paths.data_dir.display()
    );
    Ok(server)
}

/// The loopback address of a gateway bound to `addr`.
fn reachable(mut addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(_) if addr.ip().is_unspecified() => addr.set_ip(Ipv4Addr::LOCALHOST.into()),
        SocketAddr::V6(_) if addr.ip().is_unspecified() => addr.set_ip(Ipv6Addr::LOCALHOST.into()),
        _ => {}
    }
    addr
}

/// Stops the gateway gracefully, then exits with `code`. A second request
/// while requests are still draining exits at once.
pub fn quit(app: &AppHandle, code: i32) {
    let Some(shell) = app.try_state::<Shell>() else {
        app.exit(code);
        return;
    };
    if shell.quitting.swap(true, Ordering::SeqCst) {
        if !shell.stopped.load(Ordering::SeqCst) {
            eprintln!("Asked again: exiting without waiting for requests in flight.");
            std::process::exit(code);
        }
        return;
    }
    window::hide(app);
    let server = shell
        .server
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        if let Some(server) = server {
            eprintln!("Shutting down: finishing requests in flight…");
            if let Err(e) = server.shutdown().await {
                tracing::error!("the gateway did not stop cleanly: {e}");
            }
        }
        app.state::<Shell>().stopped.store(true, Ordering::SeqCst);
        app.exit(code);
    });
}

/// SIGTERM and SIGINT quit the way the tray's Quit does.
fn spawn_signal_handler(app: AppHandle) {
    tauri::async_runtime::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                tracing::warn!("cannot listen for SIGTERM/SIGINT");
                return;
            };
            loop {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
                quit(&app, 0);
            }
        }
        #[cfg(not(unix))]
        {
            if tokio::signal::ctrl_c().await.is_ok() {
                quit(&app, 0);
            }
        }
    });
}

/// Says why the app cannot start: on stderr, and in a dialog for a person
/// who launched it from a menu.
fn startup_failed(e: &anyhow::Error) {
    eprintln!("error: {e:#}");
    #[cfg(target_os = "linux")]
    {
        use gtk::prelude::{DialogExt, GtkWindowExt, MessageDialogExt};
        let dialog = gtk::MessageDialog::new(
            None::<&gtk::Window>,
            gtk::DialogFlags::MODAL,
            gtk::MessageType::Error,
            gtk::ButtonsType::Close,
            "Switchyard cannot start",
        );
        dialog.set_title("Switchyard cannot start");
        dialog.set_secondary_text(Some(&format!("{e:#}")));
        dialog.run();
        dialog.close();
    }
}

fn init_tracing() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("SWITCHYARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gateway_on_every_address_is_reached_on_loopback() {
        let any: SocketAddr = "0.0.0.0:4141".parse().expect("addr");
        assert_eq!(reachable(any).to_string(), "127.0.0.1:4141");
        let any6: SocketAddr = "[::]:4141".parse().expect("addr");
        assert_eq!(reachable(any6).to_string(), "[::1]:4141");
        let lo: SocketAddr = "127.0.0.1:9".parse().expect("addr");
        assert_eq!(reachable(lo), lo);
    }
}
