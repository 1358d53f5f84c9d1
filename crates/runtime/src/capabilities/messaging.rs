//! `wasmcloud:messaging/consumer@0.2.0` on a [`trellis_messaging::Messaging`] backend. The
//! `handler` export is invoked from [`crate::MessageComponent`].

use super::bindings::wasmcloud::messaging::{consumer, types};
use crate::state::InstanceState;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;
use trellis_messaging::{Message, Messaging, subject};

impl InstanceState {
    fn messaging(&self) -> Result<Arc<dyn Messaging>, String> {
        match &self.context.capabilities.messaging {
            Some(linked) => linked.ready().cloned(),
            None => Err("no messaging capability is linked to this component".into()),
        }
    }

    fn check_body(&self, len: usize) -> Result<(), String> {
        let max = self.capability_limits.messaging.max_body_bytes;
        if len > max {
            return Err(format!(
                "message body is {len} bytes, over the limit of {max} bytes (host flag --max-message-size)"
            ));
        }
        Ok(())
    }
}

impl types::Host for InstanceState {}

impl consumer::Host for InstanceState {
    async fn request(
        &mut self,
        subject: String,
        body: Vec<u8>,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<types::BrokerMessage, String>> {
        // Everything that reads `self` happens before the first await: the future must be
        // `Send`, and the store's state is not `Sync`.
        let checked = self.check_body(body.len()).and_then(|()| {
            subject::validate(&subject, false).map_err(|e| e.to_string())?;
            self.messaging()
        });
        let backend = match checked {
            Ok(b) => b,
            Err(e) => return Ok(Err(e)),
        };
        let max = self.capability_limits.messaging.max_request_timeout;
        let timeout = Duration::from_millis(u64::from(timeout_ms)).min(max);
        Ok(backend
            .request(&subject, Bytes::from(body), timeout)
            .await
            .map(|reply| types::BrokerMessage {
                subject: reply.subject,
                body: reply.body.to_vec(),
                reply_to: reply.reply_to,
            })
            .map_err(|e| e.to_string()))
    }

    async fn publish(&mut self, msg: types::BrokerMessage) -> wasmtime::Result<Result<(), String>> {
        let checked = self.check_body(msg.body.len()).and_then(|()| {
            subject::validate(&msg.subject, false).map_err(|e| e.to_string())?;
            if let Some(reply_to) = &msg.reply_to {
                subject::validate(reply_to, false).map_err(|e| e.to_string())?;
            }
            self.messaging()
        });
        let backend = match checked {
            Ok(b) => b,
            Err(e) => return Ok(Err(e)),
        };
        Ok(backend
            .publish(Message {
                subject: msg.subject,
                body: Bytes::from(msg.body),
                reply_to: msg.reply_to,
            })
            .await
            .map_err(|e| e.to_string()))
    }
}
