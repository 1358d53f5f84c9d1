//! The messaging capability: what a backend must do to serve `wasmcloud:messaging` 0.2.0,
//! independent of wasmtime.
//!
//! Components import `consumer` (0.2.0) or `producer` and `request-reply` (0.3.0) to
//! [`Messaging::publish`], [`Messaging::request`] and [`Messaging::request_many`]; a
//! component that exports `handler` (0.2.0) or `incoming-handler` (0.3.0) receives the
//! messages of the subscriptions its link config names, which the host opens with
//! [`Messaging::subscribe`]. Messages carry headers ([`Message::headers`], 0.3.0's
//! metadata), which NATS transmits and the in-process broker passes along as they are. Subjects follow NATS
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
use std::num::NonZeroUsize;
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
    /// Headers, in order; a name may repeat. Empty for most messages.
    pub headers: Vec<(String, String)>,
}

impl Message {
    /// A message with no reply subject and no headers.
    pub fn new(subject: impl Into<String>, body: impl Into<Bytes>) -> Self {
        Self {
            subject: subject.into(),
            body: body.into(),
            reply_to: None,
            headers: Vec::new(),
        }
    }

    /// Checks that this message can be published: its subject and reply subject are concrete
    /// (no wildcards) and its headers follow [`validate_header`].
    pub fn validate(&self) -> Result<(), Error> {
        subject::validate(&self.subject, false)?;
        if let Some(reply_to) = &self.reply_to {
            subject::validate(reply_to, false)?;
        }
        for (name, value) in &self.headers {
            validate_header(name, value)?;
        }
        Ok(())
    }

    /// The bytes this message takes on the wire beyond its subjects: body and headers, as
    /// NATS counts them against its maximum payload (near enough: the header framing adds a
    /// few bytes per header).
    pub fn payload_len(&self) -> usize {
        self.body.len()
            + self
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.len() + 4)
                .sum::<usize>()
    }
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
    /// A header name or value cannot travel in a NATS message.
    #[error("invalid header `{name}`: {reason}")]
    InvalidHeader {
        /// The header's name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The backend is unavailable or failed.
    #[error("{0}")]
    Backend(String),
}

/// Checks a header against NATS rules, which every backend keeps so that a component sees the
/// same headers accepted embedded and on a broker: a name is non-empty printable ASCII without
/// spaces or `:`, and a value has no line breaks.
pub fn validate_header(name: &str, value: &str) -> Result<(), Error> {
    let invalid = |reason| {
        Err(Error::InvalidHeader {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return invalid("the name is empty");
    }
    if name.contains(|c: char| !c.is_ascii_graphic() || c == ':') {
        return invalid("a name may only hold printable ASCII without spaces or `:`");
    }
    if value.contains(['\r', '\n']) {
        return invalid("a value may not contain line breaks");
    }
    Ok(())
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

    /// Publishes `message` (its headers included, its `reply_to` replaced by a fresh reply
    /// subject) and collects replies until `max_replies` have arrived or `timeout` has
    /// passed. Returns at least one reply: none within `timeout` is [`Error::TimedOut`], and
    /// nobody subscribed to the subject is [`Error::NoResponders`].
    async fn request_many(
        &self,
        message: Message,
        timeout: Duration,
        max_replies: NonZeroUsize,
    ) -> Result<Vec<Message>, Error>;

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
    /// Longest request timeout a component may ask for; also how long a 0.3.0 request
    /// without a timeout waits.
    pub max_request_timeout: Duration,
    /// Most replies one 0.3.0 request may collect (`set-expected-replies`).
    pub max_request_replies: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            // NATS's default max_payload.
            max_body_bytes: 1024 * 1024,
            max_request_timeout: Duration::from_secs(30),
            max_request_replies: 64,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_follow_nats_rules() {
        validate_header("content-type", "text/plain; charset=utf-8").expect("valid");
        validate_header("X-Trace", "").expect("an empty value is fine");
        for (name, value) in [
            ("", "v"),
            ("a b", "v"),
            ("a:b", "v"),
            ("é", "v"),
            ("k", "a\r\nb: c"),
        ] {
            assert!(
                matches!(
                    validate_header(name, value),
                    Err(Error::InvalidHeader { .. })
                ),
                "{name:?}: {value:?}"
            );
        }
        let mut m = Message::new("a.b", "x");
        m.headers.push(("bad name".into(), "v".into()));
        assert!(m.validate().is_err());
        assert_eq!(Message::new("a", "xy").payload_len(), 2);
    }
}
