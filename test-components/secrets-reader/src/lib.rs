//! A guest that shows what the host gave it: its secrets (`wasmcloud:secrets@0.1.0-draft`,
//! as wasmCloud v1's password checker uses them) and its config (`wasi:config`).
//!
//! | route                  | behaviour                                                         |
//! |------------------------|-------------------------------------------------------------------|
//! | `GET /secret?name=N`   | `store.get(N)` then `reveal`: 200 with the value; `x-kind: string` or `bytes`; 404 `not-found`; 500 `upstream: …` / `io: …` |
//! | `GET /config`          | 200, every `wasi:config` pair as `key=value`, one per line         |
//! | anything else          | 404 `no such route`                                               |

use http_util::{Response, missing_param, path_and_query, query_param, respond};
use wasi::exports::http::incoming_handler::Guest;
use wasi::http::types::{IncomingRequest, ResponseOutparam};

mod bindings {
    wit_bindgen::generate!({
        path: ["../../wit/secrets", "../../wit/config", "wit"],
        world: "trellis-test:secrets-reader/secrets-reader",
        generate_all,
    });
}

use bindings::wasi::config::runtime;
use bindings::wasmcloud::secrets::{reveal, store};

struct SecretsReader;

impl Guest for SecretsReader {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        respond(response_out, route(&request));
    }
}

wasi::http::proxy::export!(SecretsReader);

fn route(request: &IncomingRequest) -> Response {
    let (path, query) = path_and_query(request);
    match path.as_str() {
        "/secret" => {
            let Some(name) = query_param(&query, "name") else {
                return missing_param("name");
            };
            match store::get(&name) {
                Ok(secret) => match reveal::reveal(&secret) {
                    store::SecretValue::String(s) => {
                        Response::new(200, s).with_header("x-kind", "string")
                    }
                    store::SecretValue::Bytes(b) => {
                        Response::new(200, b).with_header("x-kind", "bytes")
                    }
                },
                Err(store::SecretsError::NotFound) => Response::new(404, "not-found"),
                Err(store::SecretsError::Upstream(e)) => Response::new(500, format!("upstream: {e}")),
                Err(store::SecretsError::Io(e)) => Response::new(500, format!("io: {e}")),
            }
        }
        "/config" => match runtime::get_all() {
            Ok(pairs) => {
                let lines: Vec<String> = pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
                Response::new(200, lines.join("\n"))
            }
            Err(e) => Response::new(500, format!("config error: {e:?}")),
        },
        _ => Response::new(404, "no such route"),
    }
}
