//! The two NATS connections of a host: control (control interface and events) and RPC
//! (invocations between hosts). They may point at different servers with different
//! credentials; when only one is given, both use it.

use std::path::PathBuf;
use std::time::Duration;

/// Where and how to connect to one NATS server.
#[derive(Debug, Clone)]
pub struct NatsOptions {
    /// Server URL(s), comma-separated, for example `nats://127.0.0.1:4222`.
    pub url: String,
    /// A `.creds` file (JWT and nkey seed).
    pub creds: Option<PathBuf>,
    /// A PEM file of CA certificates to trust for TLS.
    pub tls_ca: Option<PathBuf>,
    /// Require TLS.
    pub tls_required: bool,
}

/// Why connecting failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The credentials file could not be read.
    #[error(
        "cannot connect the {role} connection to NATS at {url}: cannot read credentials file {}",
        path.display()
    )]
    Credentials {
        /// `control` or `rpc`.
        role: &'static str,
        /// The URL tried.
        url: String,
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// The server did not answer in time.
    #[error(
        "cannot connect the {role} connection to NATS at {url}: no answer within {timeout:?}; is nats-server running there?"
    )]
    TimedOut {
        /// `control` or `rpc`.
        role: &'static str,
        /// The URL tried.
        url: String,
        /// How long it waited.
        timeout: Duration,
    },
    /// The connection failed.
    #[error(
        "cannot connect the {role} connection to NATS at {url}; is nats-server running there, and are the credentials right?"
    )]
    Refused {
        /// `control` or `rpc`.
        role: &'static str,
        /// The URL tried.
        url: String,
        /// What async-nats said.
        #[source]
        source: async_nats::ConnectError,
    },
}

/// A host's connections; cheap to clone.
#[derive(Clone, Debug)]
pub struct Connections {
    /// Control interface and events.
    pub ctl: async_nats::Client,
    /// Invocations between hosts.
    pub rpc: async_nats::Client,
    /// The control server's URL, as `host.ping` reports it.
    pub ctl_url: String,
    /// The RPC server's URL.
    pub rpc_url: String,
}

/// How long the first connection may take before the host gives up with an error.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

async fn connect_one(
    role: &'static str,
    options: &NatsOptions,
    name: &str,
) -> Result<async_nats::Client, ConnectError> {
    let url = || options.url.clone();
    let mut connect = match &options.creds {
        Some(path) => async_nats::ConnectOptions::with_credentials_file(path.clone())
            .await
            .map_err(|source| ConnectError::Credentials {
                role,
                url: url(),
                path: path.clone(),
                source,
            })?,
        None => async_nats::ConnectOptions::new(),
    };
    if let Some(ca) = &options.tls_ca {
        connect = connect.add_root_certificates(ca.clone());
    }
    connect = connect
        .require_tls(options.tls_required)
        .name(name)
        .connection_timeout(CONNECT_TIMEOUT)
        // After the first connection the client reconnects for ever; requests made while
        // it is away fail with their own timeouts.
        .max_reconnects(None)
        .event_callback(move |event| async move {
            match event {
                async_nats::Event::Disconnected => {
                    tracing::warn!(connection = role, "NATS connection lost; reconnecting")
                }
                async_nats::Event::Connected => {
                    tracing::info!(connection = role, "NATS connection (re)established")
                }
                // A permissions violation is the server's only word when a credential does
                // not allow a subject: the request itself just goes unanswered.
                async_nats::Event::ServerError(e) => tracing::warn!(
                    connection = role,
                    error = %e,
                    "the NATS server refused an operation; does this connection's credential allow it? (docs/security.md)"
                ),
                other => tracing::debug!(connection = role, event = %other, "NATS event"),
            }
        });
    let addresses: Vec<&str> = options.url.split(',').map(str::trim).collect();
    tokio::time::timeout(
        CONNECT_TIMEOUT + Duration::from_secs(1),
        connect.connect(addresses),
    )
    .await
    .map_err(|_| ConnectError::TimedOut {
        role,
        url: url(),
        timeout: CONNECT_TIMEOUT,
    })?
    .map_err(|source| ConnectError::Refused {
        role,
        url: url(),
        source,
    })
}

impl Connections {
    /// Connects both; `rpc` defaults to `ctl`'s settings. When both settings are equal, one
    /// connection serves both roles.
    pub async fn connect(
        ctl: &NatsOptions,
        rpc: Option<&NatsOptions>,
        name: &str,
    ) -> Result<Self, ConnectError> {
        let ctl_client = connect_one("control", ctl, name).await?;
        let (rpc_client, rpc_url) = match rpc {
            Some(rpc) if rpc.url != ctl.url || rpc.creds != ctl.creds => {
                (connect_one("rpc", rpc, name).await?, rpc.url.clone())
            }
            _ => (ctl_client.clone(), ctl.url.clone()),
        };
        Ok(Self {
            ctl: ctl_client,
            rpc: rpc_client,
            ctl_url: ctl.url.clone(),
            rpc_url,
        })
    }
}
