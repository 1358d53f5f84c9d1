//! A guest whose HTTP routes each trigger one behaviour the host has to handle: well-behaved
//! answers, runaway loops, unbounded memory growth, stack overflow, traps, slow handlers,
//! request bodies, and the `wasi:logging` and `wasi:config` imports.
//!
//! | route               | behaviour                                                |
//! |---------------------|----------------------------------------------------------|
//! | `GET /`             | 200 `hello from behaviours`                              |
//! | `GET /loop`         | spins forever, never responds                            |
//! | `GET /grow`         | leaks memory 1 MiB at a time until the host refuses more |
//! | `GET /alloc?mib=N`  | allocates and touches N MiB, then 200 `allocated N MiB`  |
//! | `GET /count`        | 200 with a counter kept in guest memory, after adding one |
//! | `GET /recurse`      | recurses until the wasm call stack is exhausted          |
//! | `GET /recurse?depth=N` | recurses N calls deep, then 200 `recursion ended at depth N` |
//! | `GET /trap`         | panics, which traps                                      |
//! | `GET /sleep?ms=N`   | sleeps N ms, then 200 `slept N`                          |
//! | `GET /exclusive?ms=N` | sleeps N ms, then 200 `alone` or `overlapped` (another request ran in this instance meanwhile), and the `/count` counter |
//! | `POST /echo`        | reads the whole body, 200 `{len} bytes`                  |
//! | `GET /log?msg=X`    | logs X at info level, context `behaviours`; 200 `logged` |
//! | `GET /config?key=K` | 200 with the value of K, or 404 `missing`                |
//! | `GET /config-all`   | 200 with every `k=v`, sorted, one per line               |
//! | anything else       | 404                                                      |
//!
//! It also exports `trellis-test:behaviours/geometry`, whose record comes from the types-only
//! interface `shapes`: the component imports `shapes`, which has nothing to link.
//!
//! Any route also takes `announce=X`: the guest logs `X` at info level (context
//! `behaviours`) as soon as it starts handling the request, so a test can wait until a
//! request has reached the guest before doing what it tests.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use wasi::exports::http::incoming_handler::Guest;
use wasi::http::types::{
    Fields, IncomingBody, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};
use wasi::io::streams::StreamError;

mod bindings {
    // Only the two imports are generated here; the HTTP types come from the `wasi` crate.
    wit_bindgen::generate!({
        path: ["../../wit/logging", "../../wit/logging-draft", "../../wit/config", "wit"],
        world: "trellis-test:behaviours/behaviours",
        // Both interfaces live in other packages; generate them rather than map them.
        generate_all,
    });
}

use bindings::wasi::config::runtime as config;
use bindings::wasi::logging::logging;
use bindings::wasi::logging0_1_0_draft::logging as logging_draft;

struct Behaviours;

impl Guest for Behaviours {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let path_with_query = request.path_with_query().unwrap_or_default();
        let (path, query) = path_with_query
            .split_once('?')
            .unwrap_or((path_with_query.as_str(), ""));

        if let Some(announce) = query_param(query, "announce") {
            logging::log(logging::Level::Info, "behaviours", &announce);
        }
        let (status, body) = match (request.method(), path) {
            (Method::Get, "/") => (200, "hello from behaviours".to_string()),
            (Method::Get, "/loop") => spin_forever(),
            (Method::Get, "/count") => {
                let n = REQUESTS_SEEN.fetch_add(1, Ordering::Relaxed) + 1;
                (200, n.to_string())
            }
            (Method::Get, "/grow") => grow_forever(),
            (Method::Get, "/alloc") => alloc(query),
            (Method::Get, "/recurse") => {
                let limit = query_param(query, "depth")
                    .and_then(|depth| depth.parse().ok())
                    .unwrap_or(u64::MAX);
                RECURSION_LIMIT.store(black_box(limit), Ordering::Relaxed);
                black_box(recurse(0));
                (200, format!("recursion ended at depth {limit}"))
            }
            (Method::Get, "/trap") => panic!("trap requested"),
            (Method::Get, "/sleep") => sleep(query),
            (Method::Get, "/exclusive") => exclusive(query),
            (Method::Post, "/echo") => echo(&request),
            (Method::Get, "/log") => {
                let message = query_param(query, "msg").unwrap_or_default();
                logging::log(logging::Level::Info, "behaviours", &message);
                (200, "logged".to_string())
            }
            (Method::Get, "/log-draft") => {
                // Through `wasi:logging/logging@0.1.0-draft`, as wasmCloud v1 components log.
                let message = query_param(query, "msg").unwrap_or_default();
                logging_draft::log(logging_draft::Level::Warn, "behaviours", &message);
                (200, "logged".to_string())
            }
            (Method::Get, "/config") => config_get(query),
            (Method::Get, "/config-all") => config_get_all(),
            _ => (404, "not found".to_string()),
        };
        respond(response_out, status, body.as_bytes());
    }
}

wasi::http::proxy::export!(Behaviours);

use bindings::exports::trellis_test::behaviours::geometry;
use bindings::trellis_test::behaviours::shapes::Point;

impl geometry::Guest for Behaviours {
    fn distance_squared(a: Point, b: Point) -> i32 {
        let (dx, dy) = (a.x - b.x, a.y - b.y);
        dx * dx + dy * dy
    }
}

bindings::export!(Behaviours with_types_in bindings);

/// Burns CPU until the host interrupts the instance. `black_box` keeps the optimiser from
/// proving the loop has no effect and deleting it.
fn spin_forever() -> ! {
    let mut counter: u64 = 0;
    loop {
        counter = black_box(counter.wrapping_add(1));
    }
}

/// Keeps every chunk alive and writes to each of its pages, so the memory is really used.
/// Ends with a trap when the host refuses to grow linear memory and the allocator aborts.
fn grow_forever() -> ! {
    const CHUNK: usize = 1 << 20;
    const PAGE: usize = 64 * 1024;
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut chunk = vec![0u8; CHUNK];
        for offset in (0..CHUNK).step_by(PAGE) {
            chunk[offset] = black_box(1);
        }
        hoard.push(black_box(chunk));
        black_box(&hoard);
    }
}

/// Allocates `?mib=N` MiB at once and writes to each of its pages, so the memory is really
/// used; a host that refuses to grow linear memory makes the allocator abort, which traps.
fn alloc(query: &str) -> (u16, String) {
    const PAGE: usize = 64 * 1024;
    let Some(mib) = query_param(query, "mib").and_then(|mib| mib.parse::<usize>().ok()) else {
        return (400, "expected ?mib=<mebibytes>".to_string());
    };
    let mut block = vec![0u8; mib << 20];
    for offset in (0..block.len()).step_by(PAGE) {
        block[offset] = black_box(1);
    }
    black_box(&block);
    (200, format!("allocated {mib} MiB"))
}

/// The depth at which [`recurse`] stops: `?depth=N`, or never. It is set at run time to a
/// value the optimiser cannot see, so the recursion is not provably unconditional.
static RECURSION_LIMIT: AtomicU64 = AtomicU64::new(0);

/// Requests this instance has handled through `/count`: 1 in a fresh instance.
static REQUESTS_SEEN: AtomicU64 = AtomicU64::new(0);

/// Recurses until the wasm call stack is exhausted. The result of the inner call goes through
/// two different operations after it returns, so the call is not in tail position and LLVM's
/// tail-recursion (and accumulator) elimination cannot turn it into a loop. Nothing in the
/// frame lives in linear memory, so it is the engine's call stack that overflows (a
/// stack-overflow trap) rather than Rust's shadow stack, which would show up as an
/// out-of-bounds memory access instead.
fn recurse(depth: u64) -> u64 {
    if depth == RECURSION_LIMIT.load(Ordering::Relaxed) {
        return depth;
    }
    recurse(depth + 1)
        .wrapping_mul(depth | 1)
        .wrapping_add(depth)
}

/// Requests inside `/exclusive` in this instance right now.
static IN_FLIGHT: AtomicU64 = AtomicU64::new(0);

fn exclusive(query: &str) -> (u16, String) {
    let before = IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
    let n = REQUESTS_SEEN.fetch_add(1, Ordering::Relaxed) + 1;
    let (status, _) = sleep(query);
    let after = IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    let alone = if before == 0 && after == 1 {
        "alone"
    } else {
        "overlapped"
    };
    (status, format!("{alone} {n}"))
}

fn sleep(query: &str) -> (u16, String) {
    let Some(ms) = query_param(query, "ms").and_then(|ms| ms.parse::<u64>().ok()) else {
        return (400, "expected ?ms=<milliseconds>".to_string());
    };
    wasi::clocks::monotonic_clock::subscribe_duration(ms.saturating_mul(1_000_000)).block();
    (200, format!("slept {ms}"))
}

fn echo(request: &IncomingRequest) -> (u16, String) {
    let Ok(body) = request.consume() else {
        return (500, "request body already consumed".to_string());
    };
    let len = {
        let Ok(stream) = body.stream() else {
            return (500, "request body stream unavailable".to_string());
        };
        let mut len: u64 = 0;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => len += chunk.len() as u64,
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => {
                    return (
                        500,
                        format!("reading the request body failed: {}", e.to_debug_string()),
                    );
                }
            }
        }
        // The stream is a child of the body and has to be dropped before the body finishes.
        len
    };
    drop(IncomingBody::finish(body));
    (200, format!("{len} bytes"))
}

fn config_get(query: &str) -> (u16, String) {
    let Some(key) = query_param(query, "key") else {
        return (400, "expected ?key=<key>".to_string());
    };
    match config::get(&key) {
        Ok(Some(value)) => (200, value),
        Ok(None) => (404, "missing".to_string()),
        Err(e) => (500, format!("config error: {e:?}")),
    }
}

fn config_get_all() -> (u16, String) {
    match config::get_all() {
        Ok(mut entries) => {
            entries.sort();
            let body = entries
                .iter()
                .map(|(key, value)| format!("{key}={value}\n"))
                .collect();
            (200, body)
        }
        Err(e) => (500, format!("config error: {e:?}")),
    }
}

/// The percent-decoded value of the first `name=value` pair in a query string.
fn query_param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| percent_decode(value))
}

/// Decodes `%XX` escapes and `+` (a space in form encoding). Malformed escapes are kept as
/// they are; invalid UTF-8 is replaced rather than refused, since this is only a test guest.
fn percent_decode(input: &str) -> String {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i + 1..i + 3) {
            Some(&[high, low]) => hex_digit(high).zip(hex_digit(low)).map(|(h, l)| h << 4 | l),
            _ => None,
        };
        match (bytes[i], escaped) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_digit(byte: u8) -> Option<u8> {
    char::from(byte).to_digit(16).map(|digit| digit as u8)
}

fn respond(response_out: ResponseOutparam, status: u16, body: &[u8]) {
    let headers = Fields::from_list(&[(
        "content-type".to_string(),
        b"text/plain; charset=utf-8".to_vec(),
    )])
    .expect("content-type is a valid, allowed header");
    let response = OutgoingResponse::new(headers);
    let _ = response.set_status_code(status);
    let Ok(outgoing) = response.body() else {
        return;
    };
    ResponseOutparam::set(response_out, Ok(response));
    if let Ok(stream) = outgoing.write() {
        // `blocking_write_and_flush` takes at most 4096 bytes per call.
        for chunk in body.chunks(4096) {
            if stream.blocking_write_and_flush(chunk).is_err() {
                break;
            }
        }
        drop(stream);
    }
    let _ = OutgoingBody::finish(outgoing, None);
}
