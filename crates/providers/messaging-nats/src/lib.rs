//! The NATS backend of [`trellis_messaging::Messaging`], configured with the same keys as
//! wasmCloud's `messaging-nats` provider so existing link config carries over.
//!
//! # Outages
//!
//! [`NatsMessaging::connect`] never fails because NATS is down: the client keeps
//! reconnecting in the background for as long as the value lives, and existing
//! subscriptions resume by themselves once it is back. While it is not connected:
//!
//! - [`publish`](Messaging::publish) and [`request`](Messaging::request) fail at once with
//!   [`Error::Backend`] ("NATS at ... is unreachable"). async-nats would otherwise queue
//!   them and send them after the reconnect (or block once its queue is full), which a
//!   guest could not tell from success. A message published in the instant between the
//!   connection dropping and the client noticing is lost, as core NATS is at-most-once
//!   anyway.
//! - [`subscribe`](Messaging::subscribe) succeeds: the subscription is registered with the
//!   client and becomes active when the connection is (re)established, so a host that
//!   starts before NATS does not need a retry loop for its link subscriptions.
//! - [`health`](Messaging::health) is an error.

use async_nats::connection::State;
use async_nats::header::{HeaderMap, HeaderName, HeaderValue};
use async_nats::{ConnectOptions, RequestErrorKind, ServerAddr, StatusCode, SubscribeErrorKind};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use std::collections::BTreeMap;
use std::future::Future;
use std::num::NonZeroUsize;
use std::time::Duration;
use trellis_messaging::{Error, HealthError, Message, Messaging, Subscription, subject};
use trellis_nats_connect::{redact, wait_for_connection};

pub use trellis_nats_connect::JwtAuth;

/// Where NATS is looked for when `cluster_uris` is not given.
pub const DEFAULT_CLUSTER_URI: &str = "nats://127.0.0.1:4222";

/// How long [`NatsMessaging::connect`] waits for the first connection before returning a
/// client that is still trying, so that a host starting next to a running NATS can use it
/// at once.
const INITIAL_CONNECT_WAIT: Duration = Duration::from_secs(2);

/// Bound on handing a command to the client; it only waits when async-nats's command queue
/// is full, which means the connection is stuck.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// Bound on the round trip to the server in [`Messaging::health`].
const HEALTH_FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// Link config of the NATS messaging backend.
#[derive(Clone, PartialEq, Eq)]
pub struct NatsMessagingConfig {
    /// Servers to connect to, from `cluster_uris`.
    pub cluster_uris: Vec<String>,
    /// Decentralised-auth credentials, from `client_jwt` and `client_seed`. The JWT is a
    /// bearer token and the seed a secret: `Debug` shows neither.
    pub credentials: Option<JwtAuth>,
    /// Keys that were given but mean nothing to this backend (lower-cased), for the host to
    /// warn about.
    pub ignored: Vec<String>,
}

impl std::fmt::Debug for NatsMessagingConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsMessagingConfig")
            .field("cluster_uris", &self.cluster_uris)
            .field("credentials", &self.credentials)
            .field("ignored", &self.ignored)
            .finish()
    }
}

/// Why a link config cannot configure the NATS backend.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The same key appears more than once, differing only in case.
    #[error("config key `{0}` is given more than once (keys are case-insensitive)")]
    DuplicateKey(String),
    /// A server address does not parse.
    #[error("invalid NATS server address `{uri}` in cluster_uris")]
    InvalidUri {
        /// The address as given, any password hidden.
        uri: String,
        /// What is wrong with it.
        #[source]
        source: std::io::Error,
    },
    /// Only one of `client_jwt` and `client_seed` was given.
    #[error("client_jwt and client_seed must be given together, but {missing} is missing")]
    IncompleteCredentials {
        /// The key that is missing.
        missing: &'static str,
    },
    /// The JWT or seed has characters neither can have.
    #[error("invalid NATS credentials: {key} contains characters {what} cannot have")]
    UnexpectedCharacters {
        /// `client_jwt` or `client_seed`.
        key: &'static str,
        /// `a JWT` or `an nkey seed`.
        what: &'static str,
    },
    /// The JWT or seed is malformed.
    #[error("invalid NATS credentials")]
    InvalidCredentials(#[source] std::io::Error),
}

const KEY_URIS: &str = "cluster_uris";
const KEY_JWT: &str = "client_jwt";
const KEY_SEED: &str = "client_seed";
/// Read by the host per link with `SubscriptionSpec::parse_list`, so neither used here nor
/// worth a warning.
const KEY_SUBSCRIPTIONS: &str = "subscriptions";

impl NatsMessagingConfig {
    /// Reads link config. Keys match case-insensitively; unknown keys are listed in
    /// [`ignored`](Self::ignored) rather than refused, since wasmCloud's provider accepts
    /// more (TLS, inbox prefix, ...) than this backend supports.
    pub fn from_config(config: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let mut values: BTreeMap<String, &str> = BTreeMap::new();
        for (key, value) in config {
            let key = key.to_ascii_lowercase();
            if values.insert(key.clone(), value.as_str()).is_some() {
                return Err(ConfigError::DuplicateKey(key));
            }
        }

        let mut cluster_uris: Vec<String> = values
            .remove(KEY_URIS)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|uri| !uri.is_empty())
            .map(str::to_owned)
            .collect();
        if cluster_uris.is_empty() {
            cluster_uris.push(DEFAULT_CLUSTER_URI.to_owned());
        }
        for uri in &cluster_uris {
            uri.parse::<ServerAddr>()
                .map_err(|source| ConfigError::InvalidUri {
                    uri: redact(uri),
                    source,
                })?;
        }

        let jwt = values
            .remove(KEY_JWT)
            .map(str::trim)
            .filter(|v| !v.is_empty());
        let seed = values
            .remove(KEY_SEED)
            .map(str::trim)
            .filter(|v| !v.is_empty());
        let credentials = match (jwt, seed) {
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError::IncompleteCredentials { missing: KEY_SEED });
            }
            (None, Some(_)) => return Err(ConfigError::IncompleteCredentials { missing: KEY_JWT }),
            (Some(jwt), Some(seed)) => {
                let credentials = JwtAuth {
                    jwt: jwt.to_owned(),
                    seed: seed.to_owned(),
                };
                // Parse now so that a bad seed is a config error, not a client that never
                // authenticates.
                with_credentials(ConnectOptions::new(), &credentials)?;
                Some(credentials)
            }
        };

        values.remove(KEY_SUBSCRIPTIONS);
        Ok(Self {
            cluster_uris,
            credentials,
            ignored: values.into_keys().collect(),
        })
    }
}

impl Default for NatsMessagingConfig {
    fn default() -> Self {
        Self {
            cluster_uris: vec![DEFAULT_CLUSTER_URI.to_owned()],
            credentials: None,
            ignored: Vec::new(),
        }
    }
}

/// `options` authenticating with `credentials`.
fn with_credentials(
    options: ConnectOptions,
    credentials: &JwtAuth,
) -> Result<ConnectOptions, ConfigError> {
    // async-nats takes a JWT with a signing callback or a creds file; building the
    // creds text lets async-nats parse the seed, with the errors this crate has always
    // reported. Its parser only accepts these characters, and refusing others up front
    // also keeps a value from smuggling in extra lines.
    let plain = |s: &str| {
        s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '='))
    };
    if !plain(&credentials.jwt) {
        return Err(ConfigError::UnexpectedCharacters {
            key: KEY_JWT,
            what: "a JWT",
        });
    }
    if !plain(&credentials.seed) {
        return Err(ConfigError::UnexpectedCharacters {
            key: KEY_SEED,
            what: "an nkey seed",
        });
    }
    let creds = format!(
        "-----BEGIN NATS USER JWT-----\n{}\n------END NATS USER JWT------\n\n\
         -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
        credentials.jwt, credentials.seed
    );
    options
        .credentials(&creds)
        .map_err(ConfigError::InvalidCredentials)
}

/// A NATS connection serving [`Messaging`]. See the [crate docs](crate) for what happens
/// while NATS is unreachable.
#[derive(Debug, Clone)]
pub struct NatsMessaging {
    /// `Err` only if async-nats refused options that [`NatsMessagingConfig::from_config`]
    /// accepted; every call then reports it.
    client: Result<async_nats::Client, String>,
    /// For error messages.
    uris: String,
}

impl NatsMessaging {
    /// Starts a client for `config`. Returns once connected, or after a short wait with a
    /// client that keeps trying in the background.
    pub async fn connect(config: &NatsMessagingConfig) -> Self {
        let uris = config
            .cluster_uris
            .iter()
            .map(|uri| redact(uri))
            .collect::<Vec<_>>()
            .join(",");
        let client = match Self::start(config).await {
            Ok(client) => Ok(client),
            Err(e) => {
                tracing::error!(uris, error = %e, "cannot start a NATS client");
                Err(format!("cannot start a NATS client for {uris}: {e}"))
            }
        };
        if let Ok(client) = &client {
            wait_for_connection(client, INITIAL_CONNECT_WAIT, &uris).await;
        }
        Self { client, uris }
    }

    async fn start(config: &NatsMessagingConfig) -> Result<async_nats::Client, async_nats::Error> {
        let addrs = config
            .cluster_uris
            .iter()
            .map(|uri| {
                uri.parse::<ServerAddr>()
                    .map_err(|source| ConfigError::InvalidUri {
                        uri: redact(uri),
                        source,
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut options = ConnectOptions::new()
            .name("trellis")
            .retry_on_initial_connect()
            .max_reconnects(None)
            // Fast enough that a restarted server is picked up within seconds, slow enough
            // not to hammer one that is down.
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis(250 * u64::try_from(attempts).unwrap_or(u64::MAX).min(8))
            })
            // A silently dead connection (no RST) is noticed after a few missed pings.
            .ping_interval(Duration::from_secs(20));
        if let Some(credentials) = &config.credentials {
            options = with_credentials(options, credentials)?;
        }
        Ok(options.connect(addrs).await?)
    }

    fn unreachable(&self, state: &State) -> Error {
        Error::Backend(format!(
            "NATS at {} is unreachable (connection {state}); the client keeps reconnecting in the background",
            self.uris
        ))
    }

    /// The client, if it is connected now.
    fn connected(&self) -> Result<&async_nats::Client, Error> {
        let client = self
            .client
            .as_ref()
            .map_err(|e| Error::Backend(e.clone()))?;
        match client.connection_state() {
            State::Connected => Ok(client),
            state => Err(self.unreachable(&state)),
        }
    }

    async fn bounded<T>(&self, what: &str, fut: impl Future<Output = T>) -> Result<T, Error> {
        tokio::time::timeout(COMMAND_TIMEOUT, fut).await.map_err(|_| {
            Error::Backend(format!(
                "{what} did not complete within {COMMAND_TIMEOUT:?}: NATS at {} is not keeping up or unreachable",
                self.uris
            ))
        })
    }
}

fn from_nats(message: async_nats::Message) -> Message {
    let headers = message
        .headers
        .iter()
        .flat_map(|headers| headers.iter())
        .flat_map(|(name, values)| {
            values
                .iter()
                .map(move |value| (name.to_string(), value.as_str().to_owned()))
        })
        .collect();
    Message {
        subject: message.subject.to_string(),
        body: message.payload,
        reply_to: message.reply.map(|r| r.to_string()),
        headers,
    }
}

/// The headers as async-nats carries them, `None` when there are none. The names and values
/// were checked by [`Message::validate`]; parsing again keeps a mistake from panicking.
fn to_nats_headers(headers: &[(String, String)]) -> Result<Option<HeaderMap>, Error> {
    if headers.is_empty() {
        return Ok(None);
    }
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let invalid = |reason| Error::InvalidHeader {
            name: name.clone(),
            reason,
        };
        let n: HeaderName = name
            .parse()
            .map_err(|_| invalid("not a NATS header name"))?;
        let v: HeaderValue = value
            .parse()
            .map_err(|_| invalid("not a NATS header value"))?;
        map.append(n, v);
    }
    Ok(Some(map))
}

impl NatsMessaging {
    /// A request through async-nats's own request mechanism: one reply.
    async fn request_one(
        &self,
        subject: &str,
        body: Bytes,
        headers: Option<HeaderMap>,
        timeout: Duration,
    ) -> Result<Message, Error> {
        let client = self.connected()?;
        let mut request = async_nats::Request::new()
            .payload(body)
            .timeout(Some(timeout));
        if let Some(headers) = headers {
            request = request.headers(headers);
        }
        let timed_out = || Error::TimedOut {
            subject: subject.to_owned(),
            timeout,
        };
        // async-nats applies `timeout` to the wait for the reply; this outer bound also
        // covers handing the request to a stuck connection.
        let result = tokio::time::timeout(
            timeout.saturating_add(COMMAND_TIMEOUT),
            client.send_request(subject.to_owned(), request),
        )
        .await
        .map_err(|_| timed_out())?;
        match result {
            Ok(reply) => Ok(from_nats(reply)),
            Err(e) => Err(match e.kind() {
                RequestErrorKind::TimedOut => timed_out(),
                RequestErrorKind::NoResponders => Error::NoResponders {
                    subject: subject.to_owned(),
                },
                RequestErrorKind::InvalidSubject => Error::InvalidSubject {
                    subject: subject.to_owned(),
                    reason: e.to_string(),
                },
                RequestErrorKind::MaxPayloadExceeded | RequestErrorKind::Other => {
                    Error::Backend(format!("request on `{subject}` failed: {e}"))
                }
            }),
        }
    }

    /// A request that collects several replies: on a fresh inbox of its own, subscribed before
    /// the request goes out so that no early reply is missed, and unsubscribed when dropped.
    async fn gather(
        &self,
        message: Message,
        headers: Option<HeaderMap>,
        timeout: Duration,
        max_replies: NonZeroUsize,
    ) -> Result<Vec<Message>, Error> {
        let client = self.connected()?;
        let subject = message.subject;
        let inbox = client.new_inbox();
        let mut replies = self
            .bounded("subscribe", client.subscribe(inbox.clone()))
            .await?
            .map_err(|e| Error::Backend(format!("subscribe to a reply inbox failed: {e}")))?;
        let sent = match headers {
            Some(headers) => {
                self.bounded(
                    "publish",
                    client.publish_with_reply_and_headers(
                        subject.clone(),
                        inbox,
                        headers,
                        message.body,
                    ),
                )
                .await?
            }
            None => {
                self.bounded(
                    "publish",
                    client.publish_with_reply(subject.clone(), inbox, message.body),
                )
                .await?
            }
        };
        sent.map_err(|e| Error::Backend(format!("request on `{subject}` failed: {e}")))?;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut got = Vec::new();
        while got.len() < max_replies.get() {
            match tokio::time::timeout_at(deadline, replies.next()).await {
                // The server tells a client that announced header support that nobody
                // subscribes, with a status message on the reply subject.
                Ok(Some(reply)) if reply.status == Some(StatusCode::NO_RESPONDERS) => {
                    if got.is_empty() {
                        return Err(Error::NoResponders { subject });
                    }
                    break;
                }
                Ok(Some(reply)) => got.push(from_nats(reply)),
                Ok(None) => {
                    return Err(Error::Backend(format!(
                        "the reply inbox of a request on `{subject}` closed: NATS at {} disconnected",
                        self.uris
                    )));
                }
                Err(_) => break,
            }
        }
        if got.is_empty() {
            return Err(Error::TimedOut { subject, timeout });
        }
        Ok(got)
    }
}

#[async_trait]
impl Messaging for NatsMessaging {
    async fn publish(&self, message: Message) -> Result<(), Error> {
        message.validate()?;
        let client = self.connected()?;
        let headers = to_nats_headers(&message.headers)?;
        let Message {
            subject,
            body,
            reply_to,
            ..
        } = message;
        let result = match (reply_to, headers) {
            (Some(reply_to), Some(headers)) => {
                self.bounded(
                    "publish",
                    client.publish_with_reply_and_headers(subject.clone(), reply_to, headers, body),
                )
                .await?
            }
            (Some(reply_to), None) => {
                self.bounded(
                    "publish",
                    client.publish_with_reply(subject.clone(), reply_to, body),
                )
                .await?
            }
            (None, Some(headers)) => {
                self.bounded(
                    "publish",
                    client.publish_with_headers(subject.clone(), headers, body),
                )
                .await?
            }
            (None, None) => {
                self.bounded("publish", client.publish(subject.clone(), body))
                    .await?
            }
        };
        result.map_err(|e| Error::Backend(format!("publish to `{subject}` failed: {e}")))
    }

    async fn request(
        &self,
        subject: &str,
        body: Bytes,
        timeout: Duration,
    ) -> Result<Message, Error> {
        subject::validate(subject, false)?;
        self.request_one(subject, body, None, timeout).await
    }

    async fn request_many(
        &self,
        message: Message,
        timeout: Duration,
        max_replies: NonZeroUsize,
    ) -> Result<Vec<Message>, Error> {
        let message = Message {
            reply_to: None,
            ..message
        };
        message.validate()?;
        let headers = to_nats_headers(&message.headers)?;
        if max_replies.get() == 1 {
            // The client's own request: one reply, and "no responders" straight from the server.
            return self
                .request_one(&message.subject, message.body, headers, timeout)
                .await
                .map(|reply| vec![reply]);
        }
        self.gather(message, headers, timeout, max_replies).await
    }
    async fn subscribe(&self, subject: &str, queue: Option<&str>) -> Result<Subscription, Error> {
        subject::validate(subject, true)?;
        // Not `connected()`: a subscription made while disconnected starts working when
        // the client reconnects (see the crate docs).
        let client = self
            .client
            .as_ref()
            .map_err(|e| Error::Backend(e.clone()))?;
        let result = match queue {
            Some(queue) => {
                self.bounded(
                    "subscribe",
                    client.queue_subscribe(subject.to_owned(), queue.to_owned()),
                )
                .await?
            }
            None => {
                self.bounded("subscribe", client.subscribe(subject.to_owned()))
                    .await?
            }
        };
        let subscriber = result.map_err(|e| match e.kind() {
            SubscribeErrorKind::InvalidSubject | SubscribeErrorKind::InvalidQueueName => {
                Error::InvalidSubject {
                    subject: subject.to_owned(),
                    reason: e.to_string(),
                }
            }
            _ => Error::Backend(format!("subscribe to `{subject}` failed: {e}")),
        })?;
        // Dropping the async-nats subscriber unsubscribes on the server.
        Ok(subscriber.map(from_nats).boxed())
    }

    async fn health(&self) -> Result<(), HealthError> {
        let client = self.connected()?;
        match tokio::time::timeout(HEALTH_FLUSH_TIMEOUT, client.flush()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(HealthError::caused_by(
                format!("NATS at {} failed a flush", self.uris),
                e,
            )),
            Err(_) => Err(HealthError::unhealthy(format!(
                "NATS at {} did not answer a flush within {HEALTH_FLUSH_TIMEOUT:?}",
                self.uris
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<NatsMessagingConfig, ConfigError> {
        NatsMessagingConfig::from_config(
            &pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    // A user JWT/seed pair in the format `nsc` produces (from async-nats's own tests).
    const SEED: &str = "SUAIO3FHUX5PNV2LQIIP7TZ3N4L7TX3W53MQGEIVYFIGA635OZCKEYHFLM";
    const JWT: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.eyJqdGkiOiJMN1dBT1hJU0tPSUZNM1QyNEhMQ09ENzJRT1czQkNVWEdETjRKVU1SSUtHTlQ3RzdZVFRRIiwiaWF0IjoxNjUxNzkwOTgyLCJpc3MiOiJBRFRRUzdaQ0ZWSk5XNTcyNkdPWVhXNVRTQ1pGTklRU0hLMlpHWVVCQ0Q1RDc3T1ROTE9PS1pPWiIsIm5hbWUiOiJUZXN0VXNlciIsInN1YiI6IlVBRkhHNkZVRDJVVTRTREZWQUZVTDVMREZPMlhNNFdZTTc2VU5YVFBKWUpLN0VFTVlSQkhUMlZFIiwibmF0cyI6eyJwdWIiOnt9LCJzdWIiOnt9LCJzdWJzIjotMSwiZGF0YSI6LTEsInBheWxvYWQiOi0xLCJ0eXBlIjoidXNlciIsInZlcnNpb24iOjJ9fQ.bp2-Jsy33l4ayF7Ku1MNdJby4WiMKUrG-rSVYGBusAtV3xP4EdCa-zhSNUaBVIL3uYPPCQYCEoM1pCUdOnoJBg";

    #[test]
    fn defaults() {
        let c = config(&[]).expect("empty config");
        assert_eq!(c.cluster_uris, vec![DEFAULT_CLUSTER_URI.to_owned()]);
        assert_eq!(c.credentials, None);
        assert!(c.ignored.is_empty());
        assert_eq!(c, NatsMessagingConfig::default());
    }

    #[test]
    fn cluster_uris_are_comma_separated_and_case_insensitive() {
        let c = config(&[("CLUSTER_URIS", " nats://a:4222 , nats://b:4223,,")]).expect("config");
        assert_eq!(c.cluster_uris, vec!["nats://a:4222", "nats://b:4223"]);
        let c = config(&[("cluster_uris", "")]).expect("config");
        assert_eq!(c.cluster_uris, vec![DEFAULT_CLUSTER_URI]);
    }

    #[test]
    fn bad_uri_is_an_error() {
        assert!(matches!(
            config(&[("cluster_uris", "http://example.com")]),
            Err(ConfigError::InvalidUri { .. })
        ));
        let err = config(&[("cluster_uris", "http://u:secret@example.com")]).expect_err("http");
        assert!(!err.to_string().contains("secret"), "{err}");
    }

    #[test]
    fn duplicate_keys_differing_in_case() {
        assert!(matches!(
            config(&[("cluster_uris", "a"), ("Cluster_Uris", "b")]),
            Err(ConfigError::DuplicateKey(key)) if key == "cluster_uris"
        ));
    }

    #[test]
    fn credentials_need_both_halves() {
        assert!(matches!(
            config(&[("client_jwt", JWT)]),
            Err(ConfigError::IncompleteCredentials {
                missing: "client_seed"
            })
        ));
        assert!(matches!(
            config(&[("Client_Seed", SEED)]),
            Err(ConfigError::IncompleteCredentials {
                missing: "client_jwt"
            })
        ));
        let c = config(&[("client_jwt", JWT), ("CLIENT_SEED", SEED)]).expect("credentials");
        assert_eq!(
            c.credentials,
            Some(JwtAuth {
                jwt: JWT.into(),
                seed: SEED.into()
            })
        );
        assert!(!format!("{c:?}").contains(SEED), "seed leaked into Debug");
    }

    #[test]
    fn malformed_credentials_are_refused() {
        assert!(matches!(
            config(&[("client_jwt", JWT), ("client_seed", "not-a-seed")]),
            Err(ConfigError::InvalidCredentials(_))
        ));
        assert!(matches!(
            config(&[("client_jwt", "a\n-----BEGIN"), ("client_seed", SEED)]),
            Err(ConfigError::UnexpectedCharacters {
                key: "client_jwt",
                ..
            })
        ));
    }

    #[test]
    fn unknown_keys_are_listed_and_subscriptions_is_not() {
        let c = config(&[
            ("subscriptions", "a.b,c|q"),
            ("TLS_CA_FILE", "/x"),
            ("custom_inbox_prefix", "x"),
        ])
        .expect("config");
        assert_eq!(c.ignored, vec!["custom_inbox_prefix", "tls_ca_file"]);
    }
}
