//! The tray icon: whether the gateway is serving and on which port, what
//! each bucket has spent today — in its own currency, never added across
//! buckets — and Open / Pause / Quit. It is refreshed every few seconds, so
//! a pause from the UI or a request from another tool shows up here too.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use switchyard::config::Bucket;
use switchyard::ledger::money::format_micro;
use tauri::image::Image;
use tauri::menu::{Menu, MenuEvent, MenuItem, PredefinedMenuItem};
use tauri::tray::{MouseButton, MouseButtonState, TrayIcon, TrayIconBuilder, TrayIconEvent};
use tauri::{AppHandle, Manager};

use crate::shell::{self, Shell};
use crate::window;

const REFRESH: Duration = Duration::from_secs(3);

struct Tray {
    icon: TrayIcon,
    status: MenuItem<tauri::Wry>,
    spend: Vec<MenuItem<tauri::Wry>>,
    toggle: MenuItem<tauri::Wry>,
    shown: Mutex<Option<View>>,
}

/// What the tray says; compared with what it said to avoid redrawing.
#[derive(Debug, Clone, PartialEq, Eq)]
struct View {
    paused: bool,
    status: String,
    spend: Vec<String>,
    toggle: &'static str,
}

fn view(addr: SocketAddr, paused: bool, spend: &[(Bucket, i64, &str)]) -> View {
    View {
        paused,
        status: if paused {
            "Gateway paused".to_owned()
        } else {
            format!("Gateway running on {addr}")
        },
        spend: spend
            .iter()
            .map(|(bucket, micro, currency)| {
                format!(
                    "{} today: {} {currency}",
                    bucket.title(),
                    format_micro(*micro)
                )
            })
            .collect(),
        toggle: if paused {
            "Resume gateway"
        } else {
            "Pause gateway"
        },
    }
}

fn running_icon() -> Image<'static> {
    tauri::include_image!("../icons/32x32.png")
}

fn paused_icon() -> Image<'static> {
    tauri::include_image!("../icons/tray-paused.png")
}

pub fn create(app: &AppHandle) -> tauri::Result<()> {
    let none = None::<&str>;
    let status = MenuItem::with_id(app, "status", "Gateway starting…", false, none)?;
    let spend = Bucket::ALL
        .iter()
        .map(|b| MenuItem::with_id(app, format!("spend-{}", b.as_str()), "", false, none))
        .collect::<tauri::Result<Vec<_>>>()?;
    let open = MenuItem::with_id(app, "open", "Open Switchyard", true, none)?;
    let toggle = MenuItem::with_id(app, "toggle", "Pause gateway", true, none)?;
    let quit = MenuItem::with_id(app, "quit", "Quit", true, none)?;
    let separator = PredefinedMenuItem::separator(app)?;
    let separator2 = PredefinedMenuItem::separator(app)?;

    let mut items: Vec<&dyn tauri::menu::IsMenuItem<tauri::Wry>> = vec![&status];
    items.extend(
        spend
            .iter()
            .map(|i| i as &dyn tauri::menu::IsMenuItem<tauri::Wry>),
    );
    items.extend([
        &separator as &dyn tauri::menu::IsMenuItem<tauri::Wry>,
        &open,
        &toggle,
        &separator2,
        &quit,
    ]);
    let menu = Menu::with_items(app, &items)?;

    let icon = TrayIconBuilder::with_id("switchyard")
        .icon(running_icon())
        .tooltip("Switchyard")
        .menu(&menu)
        .show_menu_on_left_click(false)
        .on_menu_event(on_menu)
        .on_tray_icon_event(|tray, event| {
            if let TrayIconEvent::Click {
                button: MouseButton::Left,
                button_state: MouseButtonState::Up,
                ..
            } = event
            {
                window::show(tray.app_handle());
            }
        })
        .build(app)?;

    app.manage(Tray {
        icon,
        status,
        spend,
        toggle,
        shown: Mutex::new(None),
    });
    refresh(app);
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let mut tick = tokio::time::interval(REFRESH);
        loop {
            tick.tick().await;
            // Menu events run on the main thread too, so one refresh never
            // waits on another.
            let handle = app.clone();
            if app.run_on_main_thread(move || refresh(&handle)).is_err() {
                return; // the event loop is gone
            }
        }
    });
    Ok(())
}

fn on_menu(app: &AppHandle, event: MenuEvent) {
    match event.id().as_ref() {
        "open" => window::show(app),
        "toggle" => {
            let state = &app.state::<Shell>().state;
            state.set_paused(!state.paused());
            refresh(app);
        }
        "quit" => shell::quit(app, 0),
        _ => {}
    }
}

/// Reads the gateway's state and redraws what changed. On the main thread.
fn refresh(app: &AppHandle) {
    let (Some(shell), Some(tray)) = (app.try_state::<Shell>(), app.try_state::<Tray>()) else {
        return;
    };
    let ledger = &shell.state.core.ledger;
    let spend: Vec<(Bucket, i64, &str)> = Bucket::ALL
        .iter()
        .map(|&b| (b, ledger.today_spend(b), ledger.currency(b)))
        .collect();
    let next = view(shell.addr, shell.state.paused(), &spend);

    let mut shown = tray.shown.lock().unwrap_or_else(|p| p.into_inner());
    let before = shown.as_ref();
    let result = (|| -> tauri::Result<()> {
        if before.map(|v| &v.status) != Some(&next.status) {
            tray.status.set_text(&next.status)?;
            tray.icon
                .set_tooltip(Some(format!("Switchyard — {}", next.status)))?;
        }
        for (i, (item, text)) in tray.spend.iter().zip(&next.spend).enumerate() {
            if before.and_then(|v| v.spend.get(i)) != Some(text) {
                item.set_text(text)?;
            }
        }
        if before.map(|v| v.paused) != Some(next.paused) {
            tray.toggle.set_text(next.toggle)?;
            tray.icon.set_icon(Some(if next.paused {
                paused_icon()
            } else {
                running_icon()
            }))?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => *shown = Some(next),
        Err(e) => tracing::warn!("cannot update the tray: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_gateway_shows_its_port_and_each_bucket_in_its_own_currency() {
        let addr: SocketAddr = "127.0.0.1:4141".parse().expect("addr");
        let v = view(
            addr,
            false,
            &[
                (Bucket::Credit, 1_230_000, "USD"),
                (Bucket::Wallet, 4_000_000, "CNY"),
            ],
        );
        assert_eq!(v.status, "Gateway running on 127.0.0.1:4141");
        assert_eq!(
            v.spend,
            ["Credit today: 1.23 USD", "Wallet today: 4.00 CNY"]
        );
        assert_eq!(v.toggle, "Pause gateway");
    }

    #[test]
    fn paused_gateway_offers_resume() {
        let addr: SocketAddr = "127.0.0.1:4141".parse().expect("addr");
        let v = view(addr, true, &[(Bucket::Credit, 0, "USD")]);
        assert_eq!(v.status, "Gateway paused");
        assert_eq!(v.spend, ["Credit today: 0.00 USD"]);
        assert_eq!(v.toggle, "Resume gateway");
    }
}
