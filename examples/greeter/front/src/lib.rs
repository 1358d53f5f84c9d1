//! The front half of the greeter example: an HTTP component that does not greet anyone
//! itself. For every request it takes `name` from the query string (`/?name=Ada`), calls
//! `greet` on whichever component the manifest links it to (`back` in `app.yaml`), and answers
//! `200 OK` with the greeting and a newline.
//!
//! To the code, `greet` is an ordinary function call; the host routes it to the other
//! component, on this host or, in a lattice, on another one.

use wasi::exports::http::incoming_handler::Guest;
use wasi::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

mod bindings {
    // Generates the `greet` import. The HTTP types come from the `wasi` crate. wasi:config's
    // WIT must be found too, because `back`'s world in the same WIT file imports it.
    wit_bindgen::generate!({
        path: ["../../../wit/config", "../wit"],
        world: "example:greeter/front",
    });
}

use bindings::example::greeter::greet::greet;

struct Front;

impl Guest for Front {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let name = name_from_query(&request.path_with_query().unwrap_or_default());
        // The call into the other component.
        let greeting = greet(&name);
        respond(response_out, format!("{greeting}\n").as_bytes());
    }
}

wasi::http::proxy::export!(Front);

/// The `name` query parameter of a request target such as `/?name=Ada`, or `""`.
fn name_from_query(path_with_query: &str) -> String {
    let query = path_with_query
        .split_once('?')
        .map_or("", |(_, query)| query);
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("name="))
        .map(percent_decode)
        .unwrap_or_default()
}

/// Decodes `%XX` escapes and `+` (a space), so `?name=Ada%20Lovelace` greets `Ada Lovelace`.
fn percent_decode(input: &str) -> String {
    let mut bytes = Vec::with_capacity(input.len());
    let mut rest = input.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        let escaped = tail
            .get(..2)
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (byte, escaped) {
            (b'%', Some(decoded)) => {
                bytes.push(decoded);
                rest = &tail[2..];
            }
            (b'+', _) => {
                bytes.push(b' ');
                rest = tail;
            }
            _ => {
                bytes.push(byte);
                rest = tail;
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn respond(response_out: ResponseOutparam, body: &[u8]) {
    let headers = Fields::from_list(&[("content-type".to_string(), b"text/plain".to_vec())])
        .expect("content-type is a valid, allowed header");
    let response = OutgoingResponse::new(headers);
    let _ = response.set_status_code(200);
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
