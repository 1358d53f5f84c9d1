//! Answers messages with an echo. The component exports `wasmcloud:messaging/handler`, so the
//! messaging capability delivers it every message on its link's subscriptions, and imports
//! `wasmcloud:messaging/consumer` to publish the replies.
//!
//! For each message it logs the subject and body through `wasi:logging`. A message with a
//! `reply-to` subject (a request) gets a reply there with the body `echo: <original body>`; any
//! other message is only logged.
//!
//! README.md beside this crate says how to build it and which manifest subscribes it to
//! `trellis.echo`, on NATS or on Trellis's in-process broker.

mod bindings {
    wit_bindgen::generate!({
        path: ["../../wit/messaging", "../../wit/logging", "wit"],
        world: "trellis-example:messaging-echo/messaging-echo",
        generate_all,
    });
}

use bindings::exports::wasmcloud::messaging::handler::Guest;
use bindings::wasi::logging::logging::{Level, log};
use bindings::wasmcloud::messaging::consumer;
use bindings::wasmcloud::messaging::types::BrokerMessage;

/// The logging context, which the host prints beside each line.
const LOG_CONTEXT: &str = "messaging-echo";

struct Echo;

impl Guest for Echo {
    fn handle_message(msg: BrokerMessage) -> Result<(), String> {
        let body = String::from_utf8_lossy(&msg.body);
        let Some(reply_to) = msg.reply_to else {
            log(
                Level::Info,
                LOG_CONTEXT,
                &format!("received on {}: {body}", msg.subject),
            );
            return Ok(());
        };
        log(
            Level::Info,
            LOG_CONTEXT,
            &format!("received on {} (reply to {reply_to}): {body}", msg.subject),
        );

        let mut reply = b"echo: ".to_vec();
        reply.extend_from_slice(&msg.body);
        consumer::publish(&BrokerMessage {
            subject: reply_to.clone(),
            body: reply,
            reply_to: None,
        })
        .map_err(|e| {
            let message = format!("publishing the reply to {reply_to} failed: {e}");
            log(Level::Error, LOG_CONTEXT, &message);
            message
        })
    }
}

bindings::export!(Echo with_types_in bindings);
