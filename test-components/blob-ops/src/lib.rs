//! A guest with one HTTP route per `wasi:blobstore@0.2.0-draft` operation, so integration tests
//! can drive a blobstore link from outside.
//!
//! Operations take their names from percent-decoded query parameters: `c` the container, `o`
//! the object, `c2` and `o2` the destination of a copy or move. A blobstore error answers 500
//! with `blob error: <text>`; a missing or malformed parameter answers 400.
//!
//! | route                              | behaviour                                                  |
//! |------------------------------------|------------------------------------------------------------|
//! | `PUT /container?c=`                | `create-container`; 201                                    |
//! | `GET /container?c=`                | `get-container` + `info`; 200 `name=<n> created_at=<t>`   |
//! | `GET /container-exists?c=`         | 200 `true` or `false`                                      |
//! | `DELETE /container?c=`             | `delete-container`; 204                                    |
//! | `PUT /object?c=&o=`                | writes the request body through an `outgoing-value`; 204   |
//! | `GET /object?c=&o=[&start=&end=]`  | `get-data` + `incoming-value-consume-sync`; 200 the bytes  |
//! | `GET /object-async?c=&o=[&start=&end=]` | the same through `incoming-value-consume-async`, reading the stream to its end |
//! | `GET /info?c=&o=`                  | 200 `name=<o> container=<c> size=<n> created_at=<t>`       |
//! | `GET /has?c=&o=`                   | 200 `true` or `false`                                      |
//! | `DELETE /object?c=&o=`             | `delete-object`; 204                                       |
//! | `GET /list?c=`                     | every object name, one per line, read two at a time        |
//! | `POST /clear?c=`                   | `clear`; 204                                               |
//! | `POST /copy?c=&o=&c2=&o2=`         | `copy-object`; 204                                         |
//! | `POST /move?c=&o=&c2=&o2=`         | `move-object`; 204                                         |
//! | `POST /delete-objects?c=&o=a,b`    | `delete-objects`; 204                                      |
//! | anything else                      | 404 `no such route`                                        |
//!
//! `start` and `end` are inclusive byte offsets. Without `end` the guest asks `object-info`
//! for the size and reads to the last byte; an empty object then answers an empty body without
//! calling `get-data`, whose inclusive range cannot express "nothing".

use http_util::{
    Response, WRITE_CHUNK, missing_param, path_and_query, query_param, read_body, read_to_end,
    respond,
};
use wasi::exports::http::incoming_handler::Guest;
use wasi::http::types::{IncomingRequest, Method, ResponseOutparam};

mod bindings {
    // Only the blobstore imports are generated here; the HTTP types come from the `wasi`
    // crate, and so do the wasi:io streams the blobstore hands out.
    wit_bindgen::generate!({
        // In dependency order: wasi:blobstore refers to wasi:io@0.2.1.
        path: ["../../wit/io", "../../wit/blobstore", "wit"],
        world: "trellis-test:blob-ops/blob-ops",
        with: {
            // `::` because the generated `wasi` module would shadow the crate.
            "wasi:io/streams@0.2.1": ::wasi::io::streams,
        },
        generate_all,
    });
}

use bindings::wasi::blobstore::blobstore;
use bindings::wasi::blobstore::container::Container;
use bindings::wasi::blobstore::types::{IncomingValue, ObjectId, OutgoingValue};

/// How many names `GET /list` asks for per `read-stream-object-names` call: small, so a test
/// with a handful of objects exercises several batches.
const LIST_BATCH: u64 = 2;

struct BlobOps;

impl Guest for BlobOps {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let response = route(&request).unwrap_or_else(|response| response);
        respond(response_out, response);
    }
}

wasi::http::proxy::export!(BlobOps);

/// The `Err` side is a finished error response, so handlers can use `?` throughout.
type Outcome = Result<Response, Response>;

fn route(request: &IncomingRequest) -> Outcome {
    let (path, query) = path_and_query(request);
    let param = |name: &str| query_param(&query, name).ok_or_else(|| missing_param(name));

    match (request.method(), path.as_str()) {
        (Method::Put, "/container") => {
            blobstore::create_container(&param("c")?).map_err(blob_error)?;
            Ok(Response::new(201, Vec::new()))
        }
        (Method::Get, "/container") => {
            let container = blobstore::get_container(&param("c")?).map_err(blob_error)?;
            let info = container.info().map_err(blob_error)?;
            Ok(Response::new(
                200,
                format!("name={} created_at={}", info.name, info.created_at),
            ))
        }
        (Method::Get, "/container-exists") => {
            let exists = blobstore::container_exists(&param("c")?).map_err(blob_error)?;
            Ok(Response::new(200, exists.to_string()))
        }
        (Method::Delete, "/container") => {
            blobstore::delete_container(&param("c")?).map_err(blob_error)?;
            Ok(Response::no_content())
        }
        (Method::Put, "/object") => {
            let container = open(&param("c")?)?;
            let body = read_body(request).map_err(|e| Response::new(400, e))?;
            write_object(&container, &param("o")?, &body)?;
            Ok(Response::no_content())
        }
        (Method::Get, "/object") => read_object(&query, Consume::Sync),
        (Method::Get, "/object-async") => read_object(&query, Consume::Async),
        (Method::Get, "/info") => {
            let container = open(&param("c")?)?;
            let info = container.object_info(&param("o")?).map_err(blob_error)?;
            Ok(Response::new(
                200,
                format!(
                    "name={} container={} size={} created_at={}",
                    info.name, info.container, info.size, info.created_at
                ),
            ))
        }
        (Method::Get, "/has") => {
            let container = open(&param("c")?)?;
            let has = container.has_object(&param("o")?).map_err(blob_error)?;
            Ok(Response::new(200, has.to_string()))
        }
        (Method::Delete, "/object") => {
            let container = open(&param("c")?)?;
            container.delete_object(&param("o")?).map_err(blob_error)?;
            Ok(Response::no_content())
        }
        (Method::Get, "/list") => {
            let container = open(&param("c")?)?;
            let names = list_objects(&container)?;
            Ok(Response::new(200, names.join("\n")))
        }
        (Method::Post, "/clear") => {
            open(&param("c")?)?.clear().map_err(blob_error)?;
            Ok(Response::no_content())
        }
        (Method::Post, route @ ("/copy" | "/move")) => {
            let src = ObjectId {
                container: param("c")?,
                object: param("o")?,
            };
            let dest = ObjectId {
                container: param("c2")?,
                object: param("o2")?,
            };
            if route == "/copy" {
                blobstore::copy_object(&src, &dest).map_err(blob_error)?;
            } else {
                blobstore::move_object(&src, &dest).map_err(blob_error)?;
            }
            Ok(Response::no_content())
        }
        (Method::Post, "/delete-objects") => {
            let container = open(&param("c")?)?;
            let names: Vec<String> = param("o")?
                .split(',')
                .filter(|name| !name.is_empty())
                .map(str::to_string)
                .collect();
            container.delete_objects(&names).map_err(blob_error)?;
            Ok(Response::no_content())
        }
        _ => Ok(Response::new(404, "no such route")),
    }
}

fn open(name: &str) -> Result<Container, Response> {
    blobstore::get_container(name).map_err(blob_error)
}

/// Writes `body` the way a streaming guest does: through the `outgoing-value`'s output stream
/// in chunks `blocking-write-and-flush` accepts, then `write-data`, then `finish`.
fn write_object(container: &Container, name: &str, body: &[u8]) -> Result<(), Response> {
    let value = OutgoingValue::new_outgoing_value();
    {
        let stream = value
            .outgoing_value_write_body()
            .map_err(|()| blob_error("outgoing-value-write-body failed".to_string()))?;
        for chunk in body.chunks(WRITE_CHUNK) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| blob_error(format!("writing the value: {}", stream_error(e))))?;
        }
        // The stream is a child of the value; drop it before the value is used.
        drop(stream);
    }
    container.write_data(name, &value).map_err(blob_error)?;
    OutgoingValue::finish(value).map_err(blob_error)?;
    Ok(())
}

#[derive(Clone, Copy)]
enum Consume {
    Sync,
    Async,
}

fn read_object(query: &str, consume: Consume) -> Outcome {
    let param = |name: &str| query_param(query, name).ok_or_else(|| missing_param(name));
    let offset = |name: &str| -> Result<Option<u64>, Response> {
        query_param(query, name)
            .map(|value| {
                value
                    .parse::<u64>()
                    .map_err(|_| Response::new(400, format!("{name} must be a u64, got {value:?}")))
            })
            .transpose()
    };

    let container = open(&param("c")?)?;
    let name = param("o")?;
    let start = offset("start")?.unwrap_or(0);
    let end = match offset("end")? {
        Some(end) => end,
        None => {
            let size = container.object_info(&name).map_err(blob_error)?.size;
            if size == 0 {
                return Ok(Response::new(200, Vec::new()));
            }
            size - 1
        }
    };

    let value = container.get_data(&name, start, end).map_err(blob_error)?;
    let bytes = match consume {
        Consume::Sync => IncomingValue::incoming_value_consume_sync(value).map_err(blob_error)?,
        Consume::Async => {
            let stream = IncomingValue::incoming_value_consume_async(value).map_err(blob_error)?;
            let bytes = read_to_end(&stream)
                .map_err(|e| blob_error(format!("reading the value stream: {e}")))?;
            drop(stream);
            bytes
        }
    };
    Ok(Response::new(200, bytes))
}

/// Every name, asking for [`LIST_BATCH`] at a time until the stream says it has ended.
fn list_objects(container: &Container) -> Result<Vec<String>, Response> {
    /// Guards against a host that never sets the end flag: the test fails instead of hanging.
    const MAX_CALLS: usize = 100_000;

    let stream = container.list_objects().map_err(blob_error)?;
    let mut names = Vec::new();
    for _ in 0..MAX_CALLS {
        let (batch, ended) = stream
            .read_stream_object_names(LIST_BATCH)
            .map_err(blob_error)?;
        names.extend(batch);
        if ended {
            return Ok(names);
        }
    }
    Err(blob_error(format!(
        "read-stream-object-names never reported the end after {MAX_CALLS} calls"
    )))
}

fn blob_error(error: String) -> Response {
    Response::new(500, format!("blob error: {error}"))
}

/// The host's message for a failed stream operation.
fn stream_error(e: wasi::io::streams::StreamError) -> String {
    match e {
        wasi::io::streams::StreamError::LastOperationFailed(error) => error.to_debug_string(),
        wasi::io::streams::StreamError::Closed => "the stream is closed".to_string(),
    }
}
