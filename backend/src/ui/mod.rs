//! The web UI: static assets embedded in the binary (`include_str!`, so the
//! binary serves them offline and building it needs no JavaScript toolchain),
//! served on the query listener at `/` and `/ui/{file}`. The pages are plain
//! ES modules that read the JSON API; navigation lives in the URL's hash, so
//! the server only ever serves these files.
//!
//! Caching: every answer carries a strong `ETag` (a hash of the file computed
//! at compile time) and `Cache-Control: no-cache`, so a browser revalidates
//! with `If-None-Match` and gets a bodyless 304 until the binary changes.

use axum::Router;
use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderMap, StatusCode, header};

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
    etag: &'static str,
}

macro_rules! asset {
    ($name:literal, $content_type:expr) => {
        Asset {
            name: $name,
            content_type: $content_type,
            body: include_str!(concat!("assets/", $name)),
            etag: {
                const HASH: [u8; 18] = etag(include_str!(concat!("assets/", $name)).as_bytes());
                match std::str::from_utf8(&HASH) {
                    Ok(text) => text,
                    Err(_) => panic!("etag is ASCII"),
                }
            },
        }
    };
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

static ASSETS: &[Asset] = &[
    asset!("index.html", HTML),
    asset!("style.css", CSS),
    asset!("favicon.svg", SVG),
    asset!("api.js", JS),
    asset!("router.js", JS),
    asset!("app.js", JS),
    asset!("signin.js", JS),
    asset!("search.js", JS),
    asset!("trace.js", JS),
    asset!("waterfall.js", JS),
    asset!("rates.js", JS),
    asset!("graph.js", JS),
    asset!("dagre.min.js", JS),
];

/// `"` + 16 hex digits of FNV-1a + `"`: a strong validator for one file.
const fn etag(bytes: &[u8]) -> [u8; 18] {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    let digits = b"0123456789abcdef";
    let mut out = [b'"'; 18];
    let mut k = 0;
    while k < 16 {
        out[1 + k] = digits[((hash >> (60 - 4 * k)) & 0xf) as usize];
        k += 1;
    }
    out
}

/// `GET /` (the page shell) and `GET /ui/{file}` (everything it loads).
pub fn router() -> Router {
    Router::new()
        .route("/", get(index))
        .route("/ui/{file}", get(file))
}

async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

async fn file(Path(name): Path<String>, headers: HeaderMap) -> Response {
    serve(&name, &headers)
}

fn serve(name: &str, headers: &HeaderMap) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        return (StatusCode::NOT_FOUND, "no such UI file\n").into_response();
    };
    let cache = [
        (header::ETAG, asset.etag),
        (header::CACHE_CONTROL, "no-cache"),
    ];
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == asset.etag));
    if fresh {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    (
        cache,
        [
            (header::CONTENT_TYPE, asset.content_type),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        asset.body,
    )
        .into_response()
}

#[cfg(test)]
mod tests;
