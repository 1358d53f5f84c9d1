//! The messaging capability: what a backend must do to serve `wasmcloud:messaging` 0.2.0,
//! independent of wasmtime.
//!
//! Components import `consumer` to [`Messaging::publish`] and [`Messaging::request`]; a
//! component that exports `handler` receives the messages of the subscriptions its link
//! config names, which the host opens with [`Messaging::subscribe`]. Subjects follow NATS
//! rules in every backend: tokens separated by `.`, `*` matches one token, `>` matches the
//! rest, and a queue group delivers each message to one member only.
//!
//! Backends: [`memory::InProcess`] here (embedded mode, no broker), and NATS in
//! `trellis-messaging-nats`. [`Error`] is what a component sees; [`Messaging::health`]
//! answers the host with a [`HealthError`], which keeps what failed underneath as its source.

pub mod memory;
pub mod subject;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use std::time::Duration;

/// A message to or from a broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Where it was published.
    pub subject: String,
    /// Its payload.
    pub body: Bytes,
    /// Where an answer should go, for requests.
    pub reply_to: Option<String>,
}

/// Why a messaging call failed; the guest sees the text (the WIT error is a string).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A request got no reply in time.
    #[error("request on `{subject}` timed out after {timeout:?}")]
    TimedOut {
        /// The subject.
        subject: String,
        /// How long it waited.
        timeout: Duration,
    },
    /// Nobody subscribes to the subject a request went to.
    #[error("no responders on `{subject}`")]
    NoResponders {
        /// The subject.
        subject: String,
    },
    /// The subject is not valid (empty, contains spaces, empty tokens, or wildcards where
    /// they are not allowed).
    #[error("invalid subject `{subject}`: {reason}")]
    InvalidSubject {
        /// The subject.
        subject: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The backend is unavailable or failed.
    #[error("{0}")]
    Backend(String),
}

/// Why [`Messaging::health`] found a backend unable to serve calls now. The host shows it in
/// the provider's status and in `health_check_failed` events, with its causes.
pub type HealthError = trellis_provider::HealthError<Error>;

/// A stream of messages from one subscription; dropping it unsubscribes.
pub type Subscription = BoxStream<'static, Message>;

/// A messaging backend.
#[async_trait]
pub trait Messaging: Send + Sync + 'static {
    /// Publishes one message. `reply_to` is passed through.
    async fn publish(&self, message: Message) -> Result<(), Error>;

    /// Publishes `body` to `subject` with a fresh reply subject and waits up to `timeout`
    /// for the first reply.
    async fn request(
        &self,
        subject: &str,
        body: Bytes,
        timeout: Duration,
    ) -> Result<Message, Error>;

    /// Subscribes to `subject` (wildcards allowed), optionally as a member of `queue`.
    async fn subscribe(&self, subject: &str, queue: Option<&str>) -> Result<Subscription, Error>;

    /// `Ok` when the backend can serve calls now, else why not. Must not hang longer than a
    /// few seconds.
    async fn health(&self) -> Result<(), HealthError>;
}

/// Bounds on what a guest may send, enforced by the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest message body a component may publish, in bytes.
    pub max_body_bytes: usize,
    /// Longest request timeout a component may ask for.
    pub max_request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            // NATS's default max_payload.
            max_body_bytes: 1024 * 1024,
            max_request_timeout: Duration::from_secs(30),
        }
    }
}

/// One subscription a component asked for in its link config: `subject` or
/// `subject|queue`, comma-separated, as wasmCloud's NATS messaging provider reads
/// `subscriptions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionSpec {
    /// The subject, wildcards allowed.
    pub subject: String,
    /// The queue group, if any.
    pub queue: Option<String>,
}

impl SubscriptionSpec {
    /// Parses a `subscriptions` config value. Empty entries are skipped; an invalid subject
    /// is an error naming it.
    pub fn parse_list(value: &str) -> Result<Vec<Self>, Error> {
        let mut out = Vec::new();
        for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (subject, queue) = match entry.split_once('|') {
                Some((s, q)) => (
                    s.trim(),
                    Some(q.trim().to_owned()).filter(|q| !q.is_empty()),
                ),
                None => (entry, None),
            };
            subject::validate(subject, true)?;
            out.push(Self {
                subject: subject.to_owned(),
                queue,
            });
        }
        Ok(out)
    }
}
