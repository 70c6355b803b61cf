//! The web UI at `/`: the files of `ui/dist`, embedded in the binary in
//! release builds (read from disk in debug builds, so a rebuilt UI shows
//! without recompiling). Paths that are not files get `index.html`, so the
//! UI's own routes survive a reload.
//!
//! Every page carries a Content-Security-Policy that allows scripts,
//! styles and connections from this origin only: even if model output or a
//! provider's error message slipped through the UI's escaping, no inline
//! script or foreign resource could run.

use axum::body::Body;
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

#[derive(rust_embed::RustEmbed)]
#[folder = "../../ui/dist"]
#[allow_missing = true]
struct Assets;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; font-src 'self' data:; connect-src 'self'; \
                   object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Is `path` one the UI answers (not the APIs)?
pub(super) fn is_ui_path(method: &Method, path: &str) -> bool {
    (method == Method::GET || method == Method::HEAD)
        && !(super::refusals::is_model_api(path) || path == "/api" || path.starts_with("/api/"))
}

pub(super) fn serve(uri: &Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    let (name, file) = match Assets::get(path).filter(|_| !path.is_empty()) {
        Some(f) => (path, f),
        None => match Assets::get("index.html") {
            Some(f) => ("index.html", f),
            None => return not_built(),
        },
    };
    let mut resp = Response::new(Body::from(file.data.into_owned()));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(name)),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // Vite names assets by content hash; the page itself must stay fresh.
    let cache = if name.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    resp
}

fn not_built() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "This Switchyard was built without its web UI. Build it with \
         `npm --prefix ui ci && npm --prefix ui run build`, then rebuild Switchyard. \
         The APIs under /v1 and /api work without it.\n",
    )
        .into_response()
}
