//! Delivering messages to components that export `wasmcloud:messaging/handler@0.2.0` or
//! `incoming-handler@0.3.0`: a fresh instance per message, under the same limits as an HTTP
//! request, from a [`MessageComponent`] prepared once ([`crate::Runtime::prepare_messaging`]).
//!
//! A component exporting both receives messages through `incoming-handler`, which also sees
//! the message's headers (its metadata and content type).

use crate::capabilities::bindings::exports::wasmcloud::messaging::handler::BrokerMessage;
use crate::capabilities::bindings::{Capabilities as CapabilitiesWorld, CapabilitiesPre};
use crate::capabilities::messaging_v3::bindings::MessagingThreePre;
use crate::capabilities::messaging_v3::{describe, push_received};
use crate::invoke::{GuestFailure, InvokeError, spawn_with_deadline};
use crate::state::{InstanceBounds, InstanceContext, InstanceState};
use trellis_control::ComponentId;
use trellis_messaging::Message;

/// Why handling a message failed.
#[derive(Debug, thiserror::Error)]
pub enum HandleMessageError {
    /// The instance failed: trapped, ran out of time, or could not be created.
    #[error(transparent)]
    Invoke(#[from] InvokeError),
    /// The guest's handler returned an error.
    #[error("component `{id}` could not handle the message: {message}")]
    Rejected {
        /// Component id.
        id: ComponentId,
        /// The guest's error text.
        message: String,
    },
}

/// The export a component receives messages through.
#[derive(Clone)]
pub(crate) enum HandlerPre {
    /// `wasmcloud:messaging/handler@0.2.0`.
    V2(CapabilitiesPre<InstanceState>),
    /// `wasmcloud:messaging/incoming-handler@0.3.0`.
    V3(MessagingThreePre<InstanceState>),
}

/// A component prepared once to receive messages; cheap to clone and share.
#[derive(Clone)]
pub struct MessageComponent {
    pre: HandlerPre,
    context: InstanceContext,
    bounds: InstanceBounds,
}

impl MessageComponent {
    pub(crate) fn new(pre: HandlerPre, context: InstanceContext, bounds: InstanceBounds) -> Self {
        Self {
            pre,
            context,
            bounds,
        }
    }

    /// The id of the component this serves.
    pub fn id(&self) -> &ComponentId {
        &self.context.component_id
    }

    /// Delivers one message to a fresh instance and waits for the handler to return.
    pub async fn handle(&self, message: Message) -> Result<(), HandleMessageError> {
        let id = self.context.component_id.clone();
        let limit = self.bounds.max_execution_time;
        let outcome = match &self.pre {
            HandlerPre::V2(pre) => {
                let mut store = self.bounds.new_store(pre.engine(), self.context.clone());
                let pre = pre.clone();
                let msg = BrokerMessage {
                    subject: message.subject,
                    body: message.body.to_vec(),
                    reply_to: message.reply_to,
                };
                let run = async move {
                    let guest: CapabilitiesWorld = pre
                        .instantiate_async(&mut store)
                        .await
                        .map_err(GuestFailure::Instantiate)?;
                    guest
                        .wasmcloud_messaging_handler()
                        .call_handle_message(&mut store, &msg)
                        .await
                        .map_err(GuestFailure::Call)
                };
                spawn_with_deadline(id.clone(), limit, run).await
            }
            HandlerPre::V3(pre) => {
                let mut store = self.bounds.new_store(pre.engine(), self.context.clone());
                let pre = pre.clone();
                let run = async move {
                    let guest = pre
                        .instantiate_async(&mut store)
                        .await
                        .map_err(GuestFailure::Instantiate)?;
                    let msg = push_received(&mut store.data_mut().table, message)
                        .map_err(GuestFailure::Call)?;
                    guest
                        .wasmcloud_messaging_incoming_handler()
                        .call_handle(&mut store, msg)
                        .await
                        .map(|r| r.map_err(|e| describe(&e)))
                        .map_err(GuestFailure::Call)
                };
                spawn_with_deadline(id.clone(), limit, run).await
            }
        };
        match outcome {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(message))) => Err(HandleMessageError::Rejected { id, message }),
            Ok(Err(e)) => Err(e.into()),
            Err(join) => Err(InvokeError::host_task_failed(id, join).into()),
        }
    }
}
