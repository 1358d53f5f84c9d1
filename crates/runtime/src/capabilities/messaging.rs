//! `wasmcloud:messaging/consumer@0.2.0` on a [`trellis_messaging::Messaging`] backend. The
//! `handler` export is invoked from [`crate::MessageComponent`].

use super::Linked;
use super::bindings::wasmcloud::messaging::{consumer, types};
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;
use trellis_messaging::{Limits, Message, Messaging, subject};
use wasmtime::component::{HasData, Linker};

/// What the messaging bindings see of an instance: its link and the host's bounds.
pub(crate) struct MessagingView<'a> {
    /// The component's messaging link, if it has one.
    pub(crate) linked: Option<&'a Linked<dyn Messaging>>,
    /// The link name the instance chose for this capability (`default` unless it chose).
    pub(crate) link_name: &'a str,
    /// The host's messaging bounds.
    pub(crate) limits: &'a Limits,
    /// Where its operations are reported.
    pub(crate) observing: super::Observing<'a>,
}

/// Adds `wasmcloud:messaging/{types,consumer}` to `linker`; `view` picks out what these
/// bindings need from the store's data, so they never name the store's type.
pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> MessagingView<'_>,
) -> wasmtime::Result<()> {
    types::add_to_linker::<T, HasMessaging>(linker, view)?;
    consumer::add_to_linker::<T, HasMessaging>(linker, view)?;
    Ok(())
}

/// Tells the generated `add_to_linker` functions that the host traits are implemented by a
/// [`MessagingView`] borrowed from the store.
struct HasMessaging;

impl HasData for HasMessaging {
    type Data<'a> = MessagingView<'a>;
}

impl MessagingView<'_> {
    fn messaging(&self) -> Result<Arc<dyn Messaging>, String> {
        match self.linked {
            Some(linked) => linked.ready().cloned(),
            None => Err(super::no_link("messaging", self.link_name)),
        }
    }

    fn check_body(&self, len: usize) -> Result<(), String> {
        let max = self.limits.max_body_bytes;
        if len > max {
            return Err(format!(
                "message body is {len} bytes, over the limit of {max} bytes (host flag --max-message-size)"
            ));
        }
        Ok(())
    }
}

impl types::Host for MessagingView<'_> {}

impl consumer::Host for MessagingView<'_> {
    async fn request(
        &mut self,
        subject: String,
        body: Vec<u8>,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<types::BrokerMessage, String>> {
        // Refused before the backend sees it: size, subject, then whether there is a backend.
        let checked = self.check_body(body.len()).and_then(|()| {
            subject::validate(&subject, false).map_err(|e| e.to_string())?;
            self.messaging()
        });
        let backend = match checked {
            Ok(b) => b,
            Err(e) => return Ok(Err(e)),
        };
        let max = self.limits.max_request_timeout;
        let timeout = Duration::from_millis(u64::from(timeout_ms)).min(max);
        let request = backend.request(&subject, Bytes::from(body), timeout);
        let result = self
            .observing
            .traced(self.linked, "messaging", "request", request)
            .await
            .map(|reply| types::BrokerMessage {
                subject: reply.subject,
                body: reply.body.to_vec(),
                reply_to: reply.reply_to,
            })
            .map_err(|e| e.to_string());
        Ok(result)
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
        let publish = backend.publish(Message {
            reply_to: msg.reply_to,
            ..Message::new(msg.subject, msg.body)
        });
        let result = self
            .observing
            .traced(self.linked, "messaging", "publish", publish)
            .await
            .map_err(|e| e.to_string());
        Ok(result)
    }
}
