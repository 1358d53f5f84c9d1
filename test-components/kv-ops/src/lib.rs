//! A guest with one HTTP route per `wasi:keyvalue@0.2.0-draft` operation, so integration tests
//! can drive a key-value link from outside.
//!
//! Every route takes the bucket from `?bucket=` (default `default`) and opens it first. With
//! `?link=NAME` it first sends `wasi:keyvalue/{store,atomics,batch}` through the link named
//! NAME (`wasmcloud:bus/lattice@2.0.0`; a refusal answers 500 `link error: <message>`);
//! `?link1=NAME` does the same through `wasmcloud:bus/lattice@1.0.0`, which cannot refuse;
//! `?link-after-open=NAME` does that after opening the bucket, as wasmCloud's
//! keyvalue-messaging example does (the calls then go through NAME all the same). Query
//! parameters are percent-decoded. A `wasi:keyvalue` error answers 500 with
//! `kv error: no-such-store`, `kv error: access-denied` or `kv error: other: <message>`; a
//! missing or malformed parameter answers 400.
//!
//! | route                                 | behaviour                                               |
//! |---------------------------------------|---------------------------------------------------------|
//! | `GET /get?key=K`                      | 200 with the value's bytes, or 404 `not found`          |
//! | `PUT` or `POST /set?key=K`            | stores the request body under K; 204                    |
//! | `DELETE` or `POST /delete?key=K`      | deletes K; 204                                          |
//! | `GET /exists?key=K`                   | 200 `true` or `false`                                   |
//! | `POST /incr?key=K&by=N`               | `atomics.increment` by N (default 1); 200 new value     |
//! | `GET /keys?cursor=C`                  | one page of keys, one per line; `x-cursor` header holds the next cursor, if any |
//! | `POST /set-many`                      | body lines `key=value` (split at the first `=`); 204    |
//! | `GET /get-many?keys=a,b,c`            | 200, one line per key: `key=value` or `key=<missing>`   |
//! | `POST /delete-many?keys=a,b`          | 204                                                     |
//! | `GET /open`                           | 200 `ok` when the bucket opens                          |
//! | anything else                         | 404 `no such route`                                     |

use http_util::{Response, missing_param, path_and_query, query_param, read_body, respond};
use wasi::exports::http::incoming_handler::Guest;
use wasi::http::types::{IncomingRequest, Method, ResponseOutparam};

mod bindings {
    // Only the key-value imports are generated here; the HTTP types come from the `wasi` crate.
    wit_bindgen::generate!({
        path: ["../../wit/keyvalue", "../../wit/bus-1.0.0", "../../wit/bus", "wit"],
        world: "trellis-test:kv-ops/kv-ops",
        // The interfaces live in another package; generate them rather than map them.
        generate_all,
    });
}

use bindings::wasi::keyvalue::{atomics, batch, store};

struct KvOps;

impl Guest for KvOps {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        respond(response_out, route(&request));
    }
}

wasi::http::proxy::export!(KvOps);

fn route(request: &IncomingRequest) -> Response {
    let (path, query) = path_and_query(request);
    let method = request.method();
    let known = matches!(
        (&method, path.as_str()),
        (
            Method::Get,
            "/get" | "/exists" | "/keys" | "/get-many" | "/open"
        ) | (Method::Put | Method::Post, "/set")
            | (Method::Delete | Method::Post, "/delete")
            | (Method::Post, "/incr" | "/set-many" | "/delete-many")
    );
    if !known {
        return Response::new(404, "no such route");
    }

    if let Err(response) = choose_link(&query) {
        return response;
    }
    let bucket_name = query_param(&query, "bucket").unwrap_or_else(|| "default".to_string());
    let bucket = match store::open(&bucket_name) {
        Ok(bucket) => bucket,
        Err(e) => return kv_error(e),
    };
    if let Some(name) = query_param(&query, "link-after-open") {
        use bindings::wasmcloud::bus1_0_0::lattice;
        let targets: Vec<_> = ["store", "atomics", "batch"]
            .iter()
            .map(|i| lattice::CallTargetInterface::new("wasi", "keyvalue", i))
            .collect();
        lattice::set_link_name(&name, targets);
    }
    let key = || query_param(&query, "key").ok_or_else(|| missing_param("key"));

    let result = match path.as_str() {
        "/open" => Ok(Response::new(200, "ok")),
        "/get" => key().and_then(|key| match bucket.get(&key) {
            Ok(Some(value)) => Ok(Response::new(200, value)),
            Ok(None) => Ok(Response::new(404, "not found")),
            Err(e) => Err(kv_error(e)),
        }),
        "/set" => key().and_then(|key| {
            let body = read_body(request).map_err(|e| Response::new(400, e))?;
            bucket.set(&key, &body).map_err(kv_error)?;
            Ok(Response::no_content())
        }),
        "/delete" => key().and_then(|key| {
            bucket.delete(&key).map_err(kv_error)?;
            Ok(Response::no_content())
        }),
        "/exists" => key().and_then(|key| {
            let exists = bucket.exists(&key).map_err(kv_error)?;
            Ok(Response::new(200, exists.to_string()))
        }),
        "/incr" => key().and_then(|key| {
            let delta = match query_param(&query, "by") {
                None => 1,
                Some(by) => by
                    .parse::<u64>()
                    .map_err(|_| Response::new(400, format!("by must be a u64, got {by:?}")))?,
            };
            let value = atomics::increment(&bucket, &key, delta).map_err(kv_error)?;
            Ok(Response::new(200, value.to_string()))
        }),
        "/keys" => list_keys(&bucket, &query),
        "/set-many" => set_many(request, &bucket),
        "/get-many" => get_many(&bucket, &query),
        "/delete-many" => key_list(&query).and_then(|keys| {
            batch::delete_many(&bucket, &keys).map_err(kv_error)?;
            Ok(Response::no_content())
        }),
        _ => unreachable!("every known route is handled"),
    };
    result.unwrap_or_else(|response| response)
}

/// `?link=NAME` (bus 2.0.0) or `?link1=NAME` (bus 1.0.0): the link the key-value calls use.
fn choose_link(query: &str) -> Result<(), Response> {
    const INTERFACES: [&str; 3] = ["store", "atomics", "batch"];
    if let Some(name) = query_param(query, "link") {
        use bindings::wasmcloud::bus2_0_0::lattice;
        let targets: Vec<_> = INTERFACES
            .iter()
            .map(|i| lattice::CallTargetInterface::new("wasi", "keyvalue", i))
            .collect();
        lattice::set_link_name(&name, targets)
            .map_err(|e| Response::new(500, format!("link error: {e}")))?;
    }
    if let Some(name) = query_param(query, "link1") {
        use bindings::wasmcloud::bus1_0_0::lattice;
        let targets: Vec<_> = INTERFACES
            .iter()
            .map(|i| lattice::CallTargetInterface::new("wasi", "keyvalue", i))
            .collect();
        lattice::set_link_name(&name, targets);
    }
    Ok(())
}

fn list_keys(bucket: &store::Bucket, query: &str) -> Result<Response, Response> {
    let cursor =
        match query_param(query, "cursor") {
            None => None,
            Some(cursor) => Some(cursor.parse::<u64>().map_err(|_| {
                Response::new(400, format!("cursor must be a u64, got {cursor:?}"))
            })?),
        };
    let page = bucket.list_keys(cursor).map_err(kv_error)?;
    let response = Response::new(200, page.keys.join("\n"));
    Ok(match page.cursor {
        Some(next) => response.with_header("x-cursor", next.to_string()),
        None => response,
    })
}

/// Body lines `key=value`, split at the first `=`; blank lines are skipped. Values are bytes,
/// so they may hold anything but a newline.
fn set_many(request: &IncomingRequest, bucket: &store::Bucket) -> Result<Response, Response> {
    let body = read_body(request).map_err(|e| Response::new(400, e))?;
    let mut entries = Vec::new();
    for line in body.split(|&byte| byte == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let Some(eq) = line.iter().position(|&byte| byte == b'=') else {
            let line = String::from_utf8_lossy(line);
            return Err(Response::new(
                400,
                format!("expected key=value, got {line:?}"),
            ));
        };
        let key = String::from_utf8(line[..eq].to_vec())
            .map_err(|_| Response::new(400, "keys must be UTF-8"))?;
        entries.push((key, line[eq + 1..].to_vec()));
    }
    batch::set_many(bucket, &entries).map_err(kv_error)?;
    Ok(Response::no_content())
}

fn get_many(bucket: &store::Bucket, query: &str) -> Result<Response, Response> {
    let keys = key_list(query)?;
    let values = batch::get_many(bucket, &keys).map_err(kv_error)?;
    let mut body = Vec::new();
    for (index, key) in keys.iter().enumerate() {
        if index > 0 {
            body.push(b'\n');
        }
        body.extend_from_slice(key.as_bytes());
        body.push(b'=');
        match values.get(index) {
            Some(Some((_, value))) => body.extend_from_slice(value),
            _ => body.extend_from_slice(b"<missing>"),
        }
    }
    Ok(Response::new(200, body))
}

/// `?keys=a,b,c` as a list; an empty value is an empty list.
fn key_list(query: &str) -> Result<Vec<String>, Response> {
    let keys = query_param(query, "keys").ok_or_else(|| missing_param("keys"))?;
    Ok(keys
        .split(',')
        .filter(|key| !key.is_empty())
        .map(str::to_string)
        .collect())
}

fn kv_error(error: store::Error) -> Response {
    let text = match error {
        store::Error::NoSuchStore => "no-such-store".to_string(),
        store::Error::AccessDenied => "access-denied".to_string(),
        store::Error::Other(message) => format!("other: {message}"),
    };
    Response::new(500, format!("kv error: {text}"))
}
