//! Answering the control interface and the app API on NATS, for a host that implements
//! [`ControlHandler`] (as [`crate::wrpc::serve`] answers calls for a
//! [`crate::wrpc::WrpcHandler`]).
//!
//! Requests addressed to this host (`host.get.{id}`, `label.put.{id}`, …), pings and
//! auctions arrive on subscriptions of its own; lattice-wide requests (links, config,
//! claims) and the app API arrive through queue groups shared by every host, so exactly one
//! host answers each. Every request is parsed into a [`CtlRequest`] or [`AppRequest`] here;
//! one that cannot be parsed gets `success: false` with what was wrong, never silence.
//! The handler sees only typed requests and knows nothing of NATS.

use crate::AbortOnDrop;
use crate::Lattice;
use crate::signing::{Refusal, Verifier};
use bytes::Bytes;
use futures::StreamExt as _;
use futures::future::BoxFuture;
use std::sync::Arc;
use trellis_control::wadm::{self, AppRequest};
use trellis_control::{CtlRequest, CtlResponse, HostId, HostSubjects};

/// The queue group hosts share for lattice-wide control requests.
const CONTROL_GROUP: &str = "trellis-ctl";
/// The queue group hosts share for the app API.
const APP_API_GROUP: &str = "trellis-wadm-api";

/// What answers control and app requests for one host, whatever transport they came on
/// (NATS, the embedded admin endpoint, or the reconciler in the same process).
pub trait ControlHandler: Send + Sync + 'static {
    /// The host this handler answers for.
    fn host_id(&self) -> &HostId;
    /// Answers one control request with the JSON reply envelope; `None` means stay silent
    /// (an auction this host cannot take).
    fn control(&self, request: CtlRequest) -> BoxFuture<'static, Option<Bytes>>;
    /// Answers one app API request with wadm's reply JSON.
    fn app(&self, request: AppRequest) -> BoxFuture<'static, Bytes>;
    /// Called once the reply to a `host.stop` for this host is on its way: the host stops.
    fn stop(&self);
}

/// Parses and answers one control request (`operation` is the subject after
/// `wasmbus.ctl.v1.{lattice}.`), then stops the host if that is what was asked. For
/// transports that need no flushing before the host stops (in process, local HTTP, whose
/// server drains in-flight replies).
pub async fn answer(
    handler: &dyn ControlHandler,
    operation: &str,
    payload: &[u8],
) -> Option<Bytes> {
    let (reply, stop) = answer_without_stopping(handler, operation, payload).await;
    if stop {
        handler.stop();
    }
    reply
}

/// Parses and answers one request; the flag says the host should stop once the reply is
/// sent.
async fn answer_without_stopping(
    handler: &dyn ControlHandler,
    operation: &str,
    payload: &[u8],
) -> (Option<Bytes>, bool) {
    tracing::debug!(%operation, "control request");
    match CtlRequest::parse(operation, payload) {
        Ok(request) => {
            let stop =
                matches!(&request, CtlRequest::StopHost(s) if &s.host_id == handler.host_id());
            (handler.control(request).await, stop)
        }
        Err(e) => (
            Some(envelope(&CtlResponse::<()>::error(e.to_string()))),
            false,
        ),
    }
}

/// Why `message` must not be answered: in strict mode, unless a trusted key signed it.
fn refused(verifier: Option<&Verifier>, message: &async_nats::Message) -> Option<Refusal> {
    verifier?
        .check(
            message.subject.as_str(),
            message.headers.as_ref(),
            &message.payload,
        )
        .err()
}

/// A reply envelope as JSON.
pub fn envelope<T: serde::Serialize>(response: &CtlResponse<T>) -> Bytes {
    // Inventories, links and string maps: serialising them cannot fail.
    serde_json::to_vec(response).unwrap_or_default().into()
}

/// Why serving could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot subscribe to {subject}")]
pub struct ServeError {
    /// What could not be subscribed to.
    pub subject: String,
    /// NATS's reason.
    #[source]
    pub source: async_nats::SubscribeError,
}

/// Serving a host's control interface and app API on the lattice; stops when dropped.
pub struct Serving {
    _tasks: Vec<AbortOnDrop>,
}

/// Starts answering, for `handler`, the control interface and the app API of `lattice`
/// on its control connection; returns once subscribed. On an in-process lattice there is
/// nothing to subscribe to (the admin endpoint answers through [`answer`]) and this returns
/// at once.
pub async fn serve(
    lattice: &Lattice,
    handler: Arc<dyn ControlHandler>,
    verifier: Option<Arc<Verifier>>,
) -> Result<Option<Serving>, ServeError> {
    let Some(nats) = lattice.connections() else {
        return Ok(None);
    };
    let client = nats.ctl.clone();
    let name = lattice.name().to_owned();
    let subjects = HostSubjects::new(&name, handler.host_id());
    let subscribe_error = |subject: &str| {
        let subject = subject.to_owned();
        move |source| ServeError { subject, source }
    };
    let mut subscriptions = Vec::new();
    for subject in &subjects.own {
        subscriptions.push(
            client
                .subscribe(subject.clone())
                .await
                .map_err(subscribe_error(subject))?,
        );
    }
    for subject in &subjects.shared {
        subscriptions.push(
            client
                .queue_subscribe(subject.clone(), CONTROL_GROUP.into())
                .await
                .map_err(subscribe_error(subject))?,
        );
    }
    let mut control = futures::stream::select_all(subscriptions);
    let control_task = {
        let (client, handler, name) = (client.clone(), handler.clone(), name.clone());
        let verifier = verifier.clone();
        tokio::spawn(async move {
            while let Some(message) = control.next().await {
                let Some(reply_to) = message.reply.clone() else {
                    continue;
                };
                let Some(operation) = HostSubjects::operation(&name, &message.subject) else {
                    continue;
                };
                let operation = operation.to_owned();
                if let Some(refusal) = refused(verifier.as_deref(), &message) {
                    tracing::warn!(%operation, reason = %refusal, "control request refused");
                    let reply = envelope(&CtlResponse::<()>::error(refusal.to_string()));
                    if let Err(e) = client.publish(reply_to, reply).await {
                        tracing::warn!(%operation, error = %e, "cannot reply to a control request");
                    }
                    continue;
                }
                let (client, handler) = (client.clone(), handler.clone());
                tokio::spawn(async move {
                    let (reply, stop) =
                        answer_without_stopping(&*handler, &operation, &message.payload).await;
                    // A host that stays silent (an auction it cannot take) sends nothing.
                    let Some(reply) = reply else { return };
                    if let Err(e) = client.publish(reply_to, reply).await {
                        tracing::warn!(%operation, error = %e, "cannot reply to a control request");
                    }
                    if stop {
                        // The reply must reach NATS before the process exits.
                        let _ = client.flush().await;
                        handler.stop();
                    }
                });
            }
        })
    };
    let api_subject = wadm::api_subscription(&name);
    let mut api = client
        .queue_subscribe(api_subject.clone(), APP_API_GROUP.into())
        .await
        .map_err(subscribe_error(&api_subject))?;
    let api_task = tokio::spawn(async move {
        while let Some(message) = api.next().await {
            let Some(reply_to) = message.reply.clone() else {
                continue;
            };
            let Some(operation) = wadm::api_operation(&name, &message.subject) else {
                continue;
            };
            if let Some(refusal) = refused(verifier.as_deref(), &message) {
                tracing::warn!(%operation, reason = %refusal, "app API request refused");
                let reply = serde_json::json!({"result": "error", "message": refusal.to_string()});
                if let Err(e) = client.publish(reply_to, reply.to_string().into()).await {
                    tracing::warn!(%operation, error = %e, "cannot answer an app API request");
                }
                continue;
            }
            let request = AppRequest::parse(operation, &message.payload);
            let (client, handler) = (client.clone(), handler.clone());
            tokio::spawn(async move {
                let operation = request.operation();
                let reply = handler.app(request).await;
                if let Err(e) = client.publish(reply_to, reply).await {
                    tracing::warn!(%operation, error = %e, "cannot answer an app API request");
                }
            });
        }
    });
    // Requests sent right after this returns must find the subscriptions in place.
    if let Err(e) = nats.ctl.flush().await {
        tracing::warn!(error = %e, "cannot flush the control subscriptions");
    }
    Ok(Some(Serving {
        _tasks: vec![AbortOnDrop(control_task), AbortOnDrop(api_task)],
    }))
}
