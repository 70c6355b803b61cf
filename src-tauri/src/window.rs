//! The main window: the UI that the gateway itself serves, on its own
//! loopback origin. It keeps two promises: the admin token reaches the page
//! only through an initialization script (never in a URL the webview keeps
//! in its history), and the window never leaves the gateway's origin —
//! links elsewhere open in the system browser.

use std::net::SocketAddr;

use tauri::webview::{NewWindowResponse, Url};
use tauri::{AppHandle, Manager, WebviewUrl, WebviewWindowBuilder, Window, WindowEvent};

pub const MAIN: &str = "main";

pub fn create(app: &AppHandle, gateway: SocketAddr, admin_token: &str) -> anyhow::Result<()> {
    let url = Url::parse(&format!("http://{gateway}/"))?;
    let origin = url.origin();
    let script = admin_script(&origin.ascii_serialization(), admin_token);
    let new_window_origin = origin.clone();
    WebviewWindowBuilder::new(app, MAIN, WebviewUrl::External(url))
        .title("Switchyard")
        .inner_size(1200.0, 800.0)
        .min_inner_size(900.0, 600.0)
        .initialization_script(script)
        .on_navigation(move |to| follow(&origin, to))
        .on_new_window(move |to, _features| {
            // `target="_blank"` and `window.open`: never a second app window.
            if navigation(&new_window_origin, &to) != Navigation::Stay {
                follow(&new_window_origin, &to);
            }
            NewWindowResponse::Deny
        })
        .build()?;
    Ok(())
}

/// Brings the window back (tray, a second launch).
pub fn show(app: &AppHandle) {
    if let Some(w) = app.get_webview_window(MAIN) {
        let _ = w.unminimize();
        let _ = w.show();
        let _ = w.set_focus();
    }
}

pub fn hide(app: &AppHandle) {
    if let Some(w) = app.get_webview_window(MAIN) {
        let _ = w.hide();
    }
}

/// Closing the window hides it: the gateway goes on serving other tools.
pub fn on_event(window: &Window, event: &WindowEvent) {
    if let WindowEvent::CloseRequested { api, .. } = event {
        if window.label() == MAIN {
            api.prevent_close();
            let _ = window.hide();
        }
    }
}

/// `window.__SWITCHYARD_ADMIN__`, set before the page's own scripts run,
/// and only on the gateway's origin.
fn admin_script(origin: &str, token: &str) -> String {
    let js = |s: &str| serde_json::Value::from(s).to_string();
    format!(
        "if (window.location.origin === {}) {{ window.__SWITCHYARD_ADMIN__ = {}; }}",
        js(origin),
        js(token)
    )
}

#[derive(Debug, PartialEq, Eq)]
enum Navigation {
    /// The gateway's own pages (and blank frames).
    Stay,
    /// Somewhere else on the web: the system browser.
    External,
    /// Anything else (`file:`, `javascript:`, custom schemes): nowhere.
    Block,
}

fn navigation(gateway: &url::Origin, to: &Url) -> Navigation {
    if to.origin() == *gateway {
        return Navigation::Stay;
    }
    match to.scheme() {
        "about" if matches!(to.path(), "blank" | "srcdoc") => Navigation::Stay,
        "http" | "https" | "mailto" => Navigation::External,
        _ => Navigation::Block,
    }
}

/// Whether the window may go to `to`; opens it in the system browser
/// instead when it is elsewhere on the web.
fn follow(gateway: &url::Origin, to: &Url) -> bool {
    match navigation(gateway, to) {
        Navigation::Stay => true,
        Navigation::External => {
            if let Err(e) = open::that_detached(to.as_str()) {
                tracing::warn!("cannot open {} in the system browser: {e}", to.scheme());
            }
            false
        }
        Navigation::Block => {
            tracing::warn!("blocked navigation to a {}: URL", to.scheme());
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> url::Origin {
        Url::parse("http://127.0.0.1:4141/").expect("url").origin()
    }

    fn nav(to: &str) -> Navigation {
        navigation(&origin(), &Url::parse(to).expect("url"))
    }

    #[test]
    fn the_gateway_origin_stays_in_the_window() {
        assert_eq!(
            nav("http://127.0.0.1:4141/receipts?x=1#y"),
            Navigation::Stay
        );
        assert_eq!(nav("about:blank"), Navigation::Stay);
    }

    #[test]
    fn other_origins_go_to_the_system_browser() {
        assert_eq!(nav("https://platform.openai.com/"), Navigation::External);
        assert_eq!(nav("http://127.0.0.1:4142/"), Navigation::External);
        assert_eq!(nav("http://localhost:4141/"), Navigation::External);
        assert_eq!(nav("mailto:someone@example.com"), Navigation::External);
    }

    #[test]
    fn local_and_script_urls_are_blocked() {
        assert_eq!(nav("file:///etc/passwd"), Navigation::Block);
        assert_eq!(nav("javascript:alert(1)"), Navigation::Block);
        assert_eq!(nav("data:text/html,hi"), Navigation::Block);
    }

    #[test]
    fn the_admin_script_is_json_escaped_and_bound_to_the_origin() {
        let s = admin_script("http://127.0.0.1:4141", "sya-a\"b</script>\\");
        assert_eq!(
            s,
            r#"if (window.location.origin === "http://127.0.0.1:4141") { window.__SWITCHYARD_ADMIN__ = "sya-a\"b</script>\\"; }"#
        );
    }
}
