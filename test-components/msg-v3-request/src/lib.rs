//! A guest for `wasmcloud:messaging@0.3.0` in the shape wasmCloud's host runtime declares
//! (`request(client, topic, message, options)`, `message.topic() -> option<topic>`). A message
//! whose data is `N TIMEOUT_MS TOPIC` makes it request `TOPIC` with the data `ask`, expecting
//! `N` replies within `TIMEOUT_MS` (either may be `-` to leave it unset), and reply with
//! `<count>: <reply data, sorted, comma-separated>`, or `error: <error>`. Each reply's
//! topic must be known (`message.topic` answers `some`); otherwise it answers
//! `error: a reply without a topic`.

mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "trellis-test:msg-v3-request/msg-v3-request",
        generate_all,
    });
}

use bindings::exports::wasmcloud::messaging::incoming_handler::Guest;
use bindings::wasmcloud::messaging::request_reply::{RequestOptions, reply, request};
use bindings::wasmcloud::messaging::types::{Client, Error, Message};

struct Gatherer;

impl Guest for Gatherer {
    fn handle(msg: Message) -> Result<(), Error> {
        let answer = gather(&String::from_utf8_lossy(&msg.data()));
        reply(&msg, Message::new(answer.as_bytes()))
    }
}

fn gather(command: &str) -> String {
    let parts: Vec<&str> = command.split_whitespace().collect();
    let [replies, timeout, topic] = parts[..] else {
        return "error: expected `N TIMEOUT_MS TOPIC`".into();
    };
    let options = RequestOptions::new();
    if let Ok(n) = replies.parse() {
        options.set_expected_replies(n);
    }
    if let Ok(ms) = timeout.parse() {
        options.set_timeout_ms(ms);
    }
    let client = match Client::connect("") {
        Ok(c) => c,
        Err(e) => return describe(&e),
    };
    match request(&client, topic, &Message::new(b"ask"), Some(options)) {
        Ok(replies) => {
            if replies.iter().any(|r| r.topic().is_none()) {
                return "error: a reply without a topic".into();
            }
            let mut bodies: Vec<String> = replies
                .iter()
                .map(|r| String::from_utf8_lossy(&r.data()).into_owned())
                .collect();
            bodies.sort();
            format!("{}: {}", bodies.len(), bodies.join(","))
        }
        Err(e) => describe(&e),
    }
}

fn describe(e: &Error) -> String {
    match e {
        Error::Timeout => "error: timeout".into(),
        Error::Connection(e) => format!("error: connection: {e}"),
        Error::PermissionDenied(e) => format!("error: permission denied: {e}"),
        Error::Other(e) => format!("error: {e}"),
    }
}

bindings::export!(Gatherer with_types_in bindings);
