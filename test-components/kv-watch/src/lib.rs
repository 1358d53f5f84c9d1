//! A guest that exports `wasi:keyvalue/watcher@0.2.0-draft` and records what it hears of, so
//! integration tests can see which changes were delivered, in which order, and that the
//! bucket it is handed works.
//!
//! For every change it appends one line to the key `watch-log` of the bucket it is handed:
//! `set KEY=VALUE get=NOW` for `on-set`, `del KEY get=NOW` for `on-delete`, where `NOW` is
//! what `get` of the key on that bucket answers (`<none>` for a missing key, `<error: …>`).
//! A value of `trap` makes `on-set` panic instead; `sleep:N` makes it wait N milliseconds
//! before recording.
//!
//! | route                          | behaviour                                          |
//! |--------------------------------|----------------------------------------------------|
//! | `PUT /set?key=K`               | stores the body under K in bucket `default`; 204   |
//! | `DELETE /delete?key=K`         | deletes K; 204                                     |
//! | `GET /log`                     | 200 with `watch-log` (empty when missing)          |

use http_util::{Response, missing_param, path_and_query, query_param, read_body, respond};
use wasi::exports::http::incoming_handler::Guest as HttpGuest;
use wasi::http::types::{IncomingRequest, Method, ResponseOutparam};

mod bindings {
    wit_bindgen::generate!({
        path: ["../../wit/keyvalue", "wit"],
        world: "trellis-test:kv-watch/kv-watch",
        generate_all,
    });
}

use bindings::exports::wasi::keyvalue::watcher::Guest as WatcherGuest;
use bindings::wasi::keyvalue::store::{self, Bucket};

const LOG: &str = "watch-log";

struct KvWatch;

impl WatcherGuest for KvWatch {
    fn on_set(bucket: Bucket, key: String, value: Vec<u8>) {
        if value == b"trap" {
            panic!("trapping on purpose for key {key}");
        }
        if let Some(ms) = std::str::from_utf8(&value)
            .ok()
            .and_then(|v| v.strip_prefix("sleep:"))
            .and_then(|ms| ms.parse::<u64>().ok())
        {
            wasi::clocks::monotonic_clock::subscribe_duration(ms * 1_000_000).block();
        }
        let line = format!(
            "set {key}={} get={}",
            String::from_utf8_lossy(&value),
            now(&bucket, &key)
        );
        append(&bucket, &line);
    }

    fn on_delete(bucket: Bucket, key: String) {
        let line = format!("del {key} get={}", now(&bucket, &key));
        append(&bucket, &line);
    }
}

/// What the bucket says `key` holds now.
fn now(bucket: &Bucket, key: &str) -> String {
    match bucket.get(key) {
        Ok(Some(value)) => String::from_utf8_lossy(&value).into_owned(),
        Ok(None) => "<none>".to_owned(),
        Err(e) => format!("<error: {e:?}>"),
    }
}

fn append(bucket: &Bucket, line: &str) {
    let mut log = bucket.get(LOG).ok().flatten().unwrap_or_default();
    log.extend_from_slice(line.as_bytes());
    log.push(b'\n');
    if let Err(e) = bucket.set(LOG, &log) {
        panic!("cannot record `{line}`: {e:?}");
    }
}

bindings::export!(KvWatch with_types_in bindings);

impl HttpGuest for KvWatch {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        respond(response_out, route(&request));
    }
}

wasi::http::proxy::export!(KvWatch);

fn route(request: &IncomingRequest) -> Response {
    let (path, query) = path_and_query(request);
    let bucket = match store::open("default") {
        Ok(bucket) => bucket,
        Err(e) => return Response::new(500, format!("kv error: {e:?}")),
    };
    let key = || query_param(&query, "key").ok_or_else(|| missing_param("key"));
    let result = match (request.method(), path.as_str()) {
        (Method::Put, "/set") => key().and_then(|key| {
            let body = read_body(request).map_err(|e| Response::new(400, e))?;
            bucket
                .set(&key, &body)
                .map_err(|e| Response::new(500, format!("kv error: {e:?}")))?;
            Ok(Response::no_content())
        }),
        (Method::Delete, "/delete") => key().and_then(|key| {
            bucket
                .delete(&key)
                .map_err(|e| Response::new(500, format!("kv error: {e:?}")))?;
            Ok(Response::no_content())
        }),
        (Method::Get, "/log") => match bucket.get(LOG) {
            Ok(log) => Ok(Response::new(200, log.unwrap_or_default())),
            Err(e) => Err(Response::new(500, format!("kv error: {e:?}"))),
        },
        _ => Err(Response::new(404, "no such route")),
    };
    result.unwrap_or_else(|response| response)
}
