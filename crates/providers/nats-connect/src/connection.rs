//! [`Connection`]: a client that connects in the background and answers "not connected" at
//! once rather than queueing.

use crate::ConnectConfig;
use async_nats::connection::State;
use async_nats::jetstream;
use std::error::Error as _;
use std::sync::Arc;
use std::time::Duration;

/// How long [`Connection::connect`] waits for the first connection before returning anyway.
const INITIAL_WAIT: Duration = Duration::from_secs(1);

/// Why the client could not even be set up. [`ConnectConfig::from_keys`] rules both out for
/// the configs it produces.
#[derive(Debug, thiserror::Error)]
enum SetupError {
    #[error(
        "the nkey seed (`client_seed`) is not valid; give the seed that belongs to `client_jwt`"
    )]
    Seed(#[source] nkeys::error::Error),
    #[error("cannot set up a NATS client; check `cluster_uri` and `tls_ca_file`")]
    Client(#[source] async_nats::ConnectError),
}

/// Why a call cannot reach NATS now; the message is what the backend's caller should see.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NotConnected {
    /// The client is not connected now and keeps trying.
    #[error("nats at {uri} is unreachable ({why}); calls will succeed again when it is back")]
    Unreachable {
        /// The servers, any password hidden.
        uri: String,
        /// What happened: `not connected yet`, `disconnected`, or a failed call's error.
        why: String,
    },
    /// The client could not be set up, so no call will ever work: fix the config.
    #[error("nats at {uri} cannot be used: {reason}")]
    Unusable {
        /// The servers, any password hidden.
        uri: String,
        /// Why, with its causes.
        reason: String,
    },
}

/// A NATS client and its JetStream context for one backend; cheap to share behind an `Arc`.
pub struct Connection {
    /// The client and its JetStream context, or why none could be made.
    client: Result<(async_nats::Client, jetstream::Context), String>,
    /// The servers, for messages (any password hidden).
    uri: String,
}

impl Connection {
    /// Starts the client (named `name` on the server) and returns as soon as it is
    /// connected, or after at most a second (or the request timeout, if shorter) if NATS
    /// does not answer; see the [crate docs](crate).
    ///
    /// Never fails: if the client cannot even be set up, every [`Connection::jetstream`]
    /// reports why.
    pub async fn connect(config: &ConnectConfig, name: &str) -> Connection {
        let uri = config.redacted_uri();
        match start(config, name, &uri).await {
            Ok((client, jetstream)) => {
                wait_for_connection(&client, config.request_timeout.min(INITIAL_WAIT), &uri).await;
                Connection {
                    client: Ok((client, jetstream)),
                    uri,
                }
            }
            Err(e) => {
                // Calls report a string, so the causes go into it.
                let mut reason = e.to_string();
                let mut cause = e.source();
                while let Some(c) = cause {
                    reason = format!("{reason}: {c}");
                    cause = c.source();
                }
                tracing::error!(%uri, client = name, error = %reason, "nats client cannot work");
                Connection {
                    client: Err(reason),
                    uri,
                }
            }
        }
    }

    /// The servers, for messages (any password hidden).
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The JetStream context, if the client is connected now; else what a call should report.
    pub fn jetstream(&self) -> Result<&jetstream::Context, NotConnected> {
        let (client, jetstream) =
            self.client
                .as_ref()
                .map_err(|reason| NotConnected::Unusable {
                    uri: self.uri.clone(),
                    reason: reason.clone(),
                })?;
        match client.connection_state() {
            State::Connected => Ok(jetstream),
            State::Pending => Err(self.unreachable("not connected yet")),
            State::Disconnected => Err(self.unreachable("disconnected")),
        }
    }

    /// Whether the client is connected now.
    pub fn is_connected(&self) -> bool {
        self.jetstream().is_ok()
    }

    /// The error for a call that failed because NATS is unreachable, `why` saying how.
    pub fn unreachable(&self, why: impl std::fmt::Display) -> NotConnected {
        NotConnected::Unreachable {
            uri: self.uri.clone(),
            why: why.to_string(),
        }
    }
}

async fn start(
    config: &ConnectConfig,
    name: &str,
    uri: &str,
) -> Result<(async_nats::Client, jetstream::Context), SetupError> {
    let mut options = match &config.auth {
        Some(auth) => {
            let key_pair =
                Arc::new(nkeys::KeyPair::from_seed(&auth.seed).map_err(SetupError::Seed)?);
            async_nats::ConnectOptions::with_jwt(auth.jwt.clone(), move |nonce| {
                let key_pair = key_pair.clone();
                async move { key_pair.sign(&nonce).map_err(async_nats::AuthError::new) }
            })
        }
        None => async_nats::ConnectOptions::new(),
    };
    options = options
        .name(name)
        .retry_on_initial_connect()
        .connection_timeout(config.request_timeout)
        .request_timeout(Some(config.request_timeout))
        .max_reconnects(None);
    if let Some(ca) = &config.tls_ca_file {
        options = options.add_root_certificates(ca.clone());
    }
    let log_uri = uri.to_owned();
    options = options.event_callback(move |event| {
        let uri = log_uri.clone();
        async move {
            match event {
                async_nats::Event::Connected => tracing::info!(%uri, "connected to nats"),
                async_nats::Event::Disconnected => {
                    tracing::warn!(%uri, "lost the connection to nats; reconnecting")
                }
                other => tracing::debug!(%uri, event = %other, "nats event"),
            }
        }
    });
    let client = options
        .connect(config.servers())
        .await
        .map_err(SetupError::Client)?;
    let mut jetstream = match &config.js_domain {
        Some(domain) => jetstream::with_domain(client.clone(), domain),
        None => jetstream::new(client.clone()),
    };
    jetstream.set_timeout(config.request_timeout);
    Ok((client, jetstream))
}

/// Waits up to `within` for a client made with `retry_on_initial_connect` to connect, and
/// says whether it did; if not, logs that it keeps trying. `uri` names the servers in the
/// log (any password hidden).
///
/// This gives a server that is up the moment it takes to accept the client, so that the
/// first calls do not fail for nothing, while a server that is down costs at most `within`.
pub async fn wait_for_connection(client: &async_nats::Client, within: Duration, uri: &str) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while client.connection_state() != State::Connected && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let connected = client.connection_state() == State::Connected;
    if !connected {
        tracing::warn!(%uri, "nats is not reachable yet; will keep connecting in the background");
    }
    connected
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::time::Instant;

    /// A port nothing listens on (bound, then released).
    fn closed_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port()
    }

    #[tokio::test]
    async fn returns_soon_when_nats_is_down_and_says_so() {
        let config = ConnectConfig {
            cluster_uri: format!("nats://u:secret@127.0.0.1:{}", closed_port()),
            ..ConnectConfig::default()
        };
        let started = Instant::now();
        let connection = Connection::connect(&config, "trellis-nats-connect-test").await;
        // Not a performance assertion: "about a second" told from the 5 s request timeout.
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{:?}",
            started.elapsed()
        );
        assert!(!connection.is_connected());
        let message = connection.jetstream().expect_err("down").to_string();
        assert!(
            message.starts_with("nats at nats://***@127.0.0.1:"),
            "{message}"
        );
        assert!(
            message.contains("calls will succeed again when it is back"),
            "{message}"
        );
        assert!(!message.contains("secret"), "{message}");
    }

    /// The shared server of the provider tests: nats-server -js on 127.0.0.1:4222.
    #[tokio::test]
    async fn connects_to_a_running_server() {
        let connection =
            Connection::connect(&ConnectConfig::default(), "trellis-nats-connect-test").await;
        assert_eq!(connection.uri(), "nats://127.0.0.1:4222");
        assert!(
            connection.is_connected(),
            "the shared nats-server runs on 4222, and connect waits for it"
        );
    }
}
