//! A guest that drives `wasmcloud:messaging/consumer` from HTTP routes, so integration tests
//! can publish and make requests as a component would.
//!
//! | route                                          | behaviour                                  |
//! |------------------------------------------------|--------------------------------------------|
//! | `POST /publish?subject=S[&reply_to=R]`         | publishes the request body to S (reply-to R); 204 |
//! | `POST /request?subject=S[&timeout_ms=N]`       | requests S with the body, waiting up to N ms (default 1000); 200 with the reply's body and header `x-reply-subject` = the reply's subject |
//! | anything else                                  | 404 `no such route`                        |
//!
//! Query parameters are percent-decoded. A messaging error (including a request timeout)
//! answers 500 `messaging error: <error>`; a missing or malformed parameter answers 400.

use http_util::{Response, missing_param, path_and_query, query_param, read_body, respond};
use wasi::exports::http::incoming_handler::Guest;
use wasi::http::types::{IncomingRequest, Method, ResponseOutparam};

mod bindings {
    // Only the messaging import is generated here; the HTTP types come from the `wasi` crate.
    wit_bindgen::generate!({
        path: ["../../wit/messaging", "wit"],
        world: "trellis-test:msg-client/msg-client",
        generate_all,
    });
}

use bindings::wasmcloud::messaging::consumer;
use bindings::wasmcloud::messaging::types::BrokerMessage;

/// How long `/request` waits for a reply when the query does not say.
const DEFAULT_TIMEOUT_MS: u32 = 1000;

struct MsgClient;

impl Guest for MsgClient {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let response = route(&request).unwrap_or_else(|response| response);
        respond(response_out, response);
    }
}

wasi::http::proxy::export!(MsgClient);

fn route(request: &IncomingRequest) -> Result<Response, Response> {
    let (path, query) = path_and_query(request);
    let subject = || query_param(&query, "subject").ok_or_else(|| missing_param("subject"));

    match (request.method(), path.as_str()) {
        (Method::Post, "/publish") => {
            let message = BrokerMessage {
                subject: subject()?,
                body: read_body(request).map_err(|e| Response::new(400, e))?,
                reply_to: query_param(&query, "reply_to"),
            };
            consumer::publish(&message).map_err(messaging_error)?;
            Ok(Response::no_content())
        }
        (Method::Post, "/request") => {
            let subject = subject()?;
            let timeout_ms = match query_param(&query, "timeout_ms") {
                None => DEFAULT_TIMEOUT_MS,
                Some(ms) => ms.parse::<u32>().map_err(|_| {
                    Response::new(400, format!("timeout_ms must be a u32, got {ms:?}"))
                })?,
            };
            let body = read_body(request).map_err(|e| Response::new(400, e))?;
            let reply = consumer::request(&subject, &body, timeout_ms).map_err(messaging_error)?;
            Ok(Response::new(200, reply.body).with_header("x-reply-subject", reply.subject))
        }
        _ => Ok(Response::new(404, "no such route")),
    }
}

fn messaging_error(error: String) -> Response {
    Response::new(500, format!("messaging error: {error}"))
}
