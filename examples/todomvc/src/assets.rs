//! The front end's files, embedded at build time from `../assets` (built from `../web` by
//! `scripts/todomvc-assets build` and committed, so building the component needs no Node).
//!
//! Each file carries an `etag` computed from its bytes at compile time and `cache-control:
//! no-cache`: browsers keep the files but ask each time, and get `304 Not Modified` until the
//! component is rebuilt with new ones.

use crate::http::{Reply, Request};
use wasi::http::types::Method;

struct Asset {
    path: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
    hash: u64,
}

macro_rules! asset {
    ($path:literal, $file:literal, $content_type:literal) => {{
        const BYTES: &[u8] = include_bytes!(concat!("../assets/", $file));
        Asset {
            path: $path,
            content_type: $content_type,
            bytes: BYTES,
            hash: fnv1a(BYTES),
        }
    }};
}

const ASSETS: [Asset; 4] = [
    asset!("/", "index.html", "text/html; charset=utf-8"),
    asset!("/index.html", "index.html", "text/html; charset=utf-8"),
    asset!("/app.js", "app.js", "text/javascript; charset=utf-8"),
    asset!("/app.css", "app.css", "text/css; charset=utf-8"),
];

/// The page loads only its own files; the TodoMVC styles draw the checkboxes with `data:`
/// images.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// FNV-1a, 64 bits: not a cryptographic hash, just a cheap fingerprint that changes when a
/// file does, computed by the compiler.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

/// Serves the file at the request's path, `404` for any other path.
pub fn serve(request: &Request) -> Reply {
    let Some(asset) = ASSETS.iter().find(|asset| asset.path == request.path) else {
        return not_found(&request.path);
    };
    if !matches!(request.method, Method::Get | Method::Head) {
        return Reply::method_not_allowed(request, "GET, HEAD");
    }
    let etag = format!("\"{:016x}\"", asset.hash);
    let unchanged = request.header("if-none-match").is_some_and(|tags| {
        tags.split(',')
            .map(|tag| tag.trim().trim_start_matches("W/"))
            .any(|tag| tag == etag || tag == "*")
    });
    let reply = if unchanged {
        Reply::new(304, asset.content_type, Vec::new())
    } else {
        Reply::new(200, asset.content_type, asset.bytes.to_vec())
    };
    let reply = reply
        .with_header("etag", &etag)
        .with_header("cache-control", "no-cache");
    if asset.content_type.starts_with("text/html") {
        reply.with_header("content-security-policy", CONTENT_SECURITY_POLICY)
    } else {
        reply
    }
}

/// `404` in plain text: what a browser shows for a path that is not part of the app.
pub fn not_found(path: &str) -> Reply {
    Reply::new(
        404,
        "text/plain; charset=utf-8",
        format!("Not found: {path}\nTodoMVC is at /, its API at /api/todos\n").into_bytes(),
    )
}
