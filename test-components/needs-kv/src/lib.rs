//! A guest that imports `wasi:keyvalue/store@0.2.0-draft`. The host must refuse to start it
//! when no link provides that interface; if it ever runs, `GET` anything opens the `default`
//! bucket and reads the key `hello`.

use wasi::exports::http::incoming_handler::Guest;
use wasi::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

mod bindings {
    wit_bindgen::generate!({
        world: "trellis-test:needs-kv/needs-kv",
        generate_all,
    });
}

use bindings::wasi::keyvalue::store;

struct NeedsKv;

impl Guest for NeedsKv {
    fn handle(_request: IncomingRequest, response_out: ResponseOutparam) {
        // Calling the import is what keeps it in the component: an unused import is dropped
        // at link time and the host would have nothing to refuse.
        let (status, body) = match store::open("default").and_then(|bucket| bucket.get("hello")) {
            Ok(Some(value)) => (200, value),
            Ok(None) => (404, b"missing".to_vec()),
            Err(e) => (500, format!("keyvalue error: {e:?}").into_bytes()),
        };
        respond(response_out, status, &body);
    }
}

wasi::http::proxy::export!(NeedsKv);

fn respond(response_out: ResponseOutparam, status: u16, body: &[u8]) {
    let response = OutgoingResponse::new(Fields::new());
    let _ = response.set_status_code(status);
    let Ok(outgoing) = response.body() else {
        return;
    };
    ResponseOutparam::set(response_out, Ok(response));
    if let Ok(stream) = outgoing.write() {
        for chunk in body.chunks(4096) {
            if stream.blocking_write_and_flush(chunk).is_err() {
                break;
            }
        }
        drop(stream);
    }
    let _ = OutgoingBody::finish(outgoing, None);
}
