//! The smallest Trellis component: it exports `wasi:http/incoming-handler` and answers every
//! request with `200 OK`, `content-type: text/plain` and a one-line greeting.
//!
//! `app.yaml` beside this crate deploys it behind the HTTP server capability on
//! `127.0.0.1:8000`; README.md says how to build and run it.

use wasi::exports::http::incoming_handler::Guest;
use wasi::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

const GREETING: &[u8] = b"Hello from Trellis!\n";

struct HttpHello;

impl Guest for HttpHello {
    fn handle(_request: IncomingRequest, response_out: ResponseOutparam) {
        let headers = Fields::from_list(&[("content-type".to_string(), b"text/plain".to_vec())])
            .expect("content-type is a valid, allowed header");
        let response = OutgoingResponse::new(headers);
        // 200 is the default status; setting it keeps the intent visible.
        let _ = response.set_status_code(200);
        let Ok(body) = response.body() else {
            return;
        };
        ResponseOutparam::set(response_out, Ok(response));

        // Once the response is sent the host owns the connection; if the client has gone away
        // the writes fail and there is no one left to tell, so failures just end the handler.
        if let Ok(stream) = body.write() {
            let _ = stream.blocking_write_and_flush(GREETING);
            // The stream is a child of the body and must be dropped before the body finishes.
            drop(stream);
        }
        let _ = OutgoingBody::finish(body, None);
    }
}

wasi::http::proxy::export!(HttpHello);
