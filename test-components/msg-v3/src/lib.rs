//! A guest for `wasmcloud:messaging@0.3.0` with the signatures wasmCloud's component SDK and
//! examples use. It acts on the last token of the topic a message arrives on:
//!
//! | topic ends in | behaviour                                                           |
//! |---------------|---------------------------------------------------------------------|
//! | `upper`       | replies with the data upper-cased, the same content type, and the metadata plus `x-topic` = the topic |
//! | `forward`     | sends the data, content type and metadata to `<topic without its last token>.out.forwarded` with `producer.send`, then replies `forwarded` |
//! | `self`        | replies with what `reply` said when asked to answer a message the guest made itself |
//! | `again`       | replies with what `request` said when asked to send a message the guest made (it has no topic) |
//! | `disconnect`  | replies with what `send` said through a client after `disconnect` |
//! | `fail`        | returns `error::other("refused on purpose")`                       |
//! | anything else | returns `error::other("unknown action")`                           |

mod bindings {
    wit_bindgen::generate!({
        path: ["../../wit/messaging-0.3.0", "wit"],
        world: "trellis-test:msg-v3/msg-v3",
        generate_all,
    });
}

use bindings::exports::wasmcloud::messaging::incoming_handler::Guest;
use bindings::wasmcloud::messaging::producer;
use bindings::wasmcloud::messaging::request_reply::{reply, request};
use bindings::wasmcloud::messaging::types::{Client, Error, Message};

struct MsgV3;

impl Guest for MsgV3 {
    fn handle(msg: Message) -> Result<(), Error> {
        let topic = msg.topic();
        let (prefix, action) = topic.rsplit_once('.').unwrap_or(("", topic.as_str()));
        match action {
            "upper" => {
                let answer = Message::new(&msg.data().to_ascii_uppercase());
                if let Some(content_type) = msg.content_type() {
                    answer.set_content_type(&content_type);
                }
                answer.set_metadata(&msg.metadata().unwrap_or_default());
                answer.add_metadata("x-topic", &topic);
                reply(&msg, answer)
            }
            "forward" => {
                let out = Message::new(&msg.data());
                if let Some(content_type) = msg.content_type() {
                    out.set_content_type(&content_type);
                }
                if let Some(metadata) = msg.metadata() {
                    out.set_metadata(&metadata);
                }
                let client = Client::connect("")?;
                producer::send(&client, &format!("{prefix}.out.forwarded"), out)?;
                reply(&msg, Message::new(b"forwarded"))
            }
            "self" => {
                let mine = Message::new(b"mine");
                let said = describe(reply(&mine, Message::new(b"answer")));
                reply(&msg, Message::new(said.as_bytes()))
            }
            "again" => {
                let client = Client::connect("")?;
                let said = describe(request(&client, &Message::new(b"q"), None).map(|_| ()));
                reply(&msg, Message::new(said.as_bytes()))
            }
            "disconnect" => {
                let client = Client::connect("")?;
                client.disconnect()?;
                let said = describe(producer::send(&client, &topic, Message::new(b"x")));
                reply(&msg, Message::new(said.as_bytes()))
            }
            "fail" => Err(Error::Other("refused on purpose".into())),
            _ => Err(Error::Other("unknown action".into())),
        }
    }
}

/// What a call said, as text the tests can match.
fn describe(result: Result<(), Error>) -> String {
    match result {
        Ok(()) => "ok".into(),
        Err(Error::Timeout) => "error: timeout".into(),
        Err(Error::Connection(e)) => format!("error: connection: {e}"),
        Err(Error::PermissionDenied(e)) => format!("error: permission denied: {e}"),
        Err(Error::Other(e)) => format!("error: {e}"),
    }
}

bindings::export!(MsgV3 with_types_in bindings);
