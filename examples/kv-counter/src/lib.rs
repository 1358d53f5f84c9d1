//! Counts HTTP requests in a key-value bucket. Every request opens the bucket named by the
//! `bucket` config key (or `default`), adds one to the key `counter` with
//! `wasi:keyvalue/atomics.increment` and answers `200 Counter: <n>`.
//!
//! When the key-value link fails the answer is `500 key-value error: <error>`, and when the
//! config cannot be read `500 config error: <error>`, so whoever runs it sees what is wrong.
//!
//! `app.yaml` beside this crate deploys it with Trellis's built-in durable store; README.md
//! says how to build and run it, and how to count elsewhere.

use wasi::exports::http::incoming_handler::Guest;
use wasi::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

mod bindings {
    // Only the key-value and config imports are generated here; the HTTP types come from the
    // `wasi` crate.
    wit_bindgen::generate!({
        path: ["../../wit/keyvalue", "../../wit/config", "wit"],
        world: "trellis-example:kv-counter/kv-counter",
        generate_all,
    });
}

use bindings::wasi::config::runtime as config;
use bindings::wasi::keyvalue::{atomics, store};

/// The bucket used when the link's config sets no `bucket`.
const DEFAULT_BUCKET: &str = "default";
/// The key the count is kept under.
const COUNTER_KEY: &str = "counter";

struct KvCounter;

impl Guest for KvCounter {
    fn handle(_request: IncomingRequest, response_out: ResponseOutparam) {
        let (status, body) = match count() {
            Ok(n) => (200, format!("Counter: {n}\n")),
            Err(message) => (500, format!("{message}\n")),
        };
        respond(response_out, status, body.as_bytes());
    }
}

wasi::http::proxy::export!(KvCounter);

/// Adds one to the counter and returns its new value.
fn count() -> Result<u64, String> {
    let bucket_name = match config::get("bucket") {
        Ok(Some(name)) => name,
        Ok(None) => DEFAULT_BUCKET.to_string(),
        Err(e) => return Err(format!("config error: {}", config_error(e))),
    };
    let bucket = store::open(&bucket_name).map_err(kv_error)?;
    atomics::increment(&bucket, COUNTER_KEY, 1).map_err(kv_error)
}

fn kv_error(error: store::Error) -> String {
    let text = match error {
        store::Error::NoSuchStore => "no-such-store".to_string(),
        store::Error::AccessDenied => "access-denied".to_string(),
        store::Error::Other(message) => format!("other: {message}"),
    };
    format!("key-value error: {text}")
}

fn config_error(error: config::ConfigError) -> String {
    match error {
        config::ConfigError::Upstream(message) => format!("upstream: {message}"),
        config::ConfigError::Io(message) => format!("io: {message}"),
    }
}

fn respond(response_out: ResponseOutparam, status: u16, body: &[u8]) {
    let headers = Fields::from_list(&[("content-type".to_string(), b"text/plain".to_vec())])
        .expect("content-type is a valid, allowed header");
    let response = OutgoingResponse::new(headers);
    let _ = response.set_status_code(status);
    let Ok(outgoing) = response.body() else {
        return;
    };
    ResponseOutparam::set(response_out, Ok(response));

    // Once the response is sent the host owns the connection; if the client has gone away the
    // writes fail and there is no one left to tell, so failures just end the handler.
    if let Ok(stream) = outgoing.write() {
        // `blocking_write_and_flush` takes at most 4096 bytes per call.
        for chunk in body.chunks(4096) {
            if stream.blocking_write_and_flush(chunk).is_err() {
                break;
            }
        }
        // The stream is a child of the body and must be dropped before the body finishes.
        drop(stream);
    }
    let _ = OutgoingBody::finish(outgoing, None);
}
