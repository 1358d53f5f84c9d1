//! The built-in HTTP client provider behind `wasi:http/outgoing-handler`: one pooled client
//! per provider, so connections to a host are reused across requests and components, with
//! connect and first-byte timeouts and an allow-list of hosts a component may reach.
//!
//! The runtime hands every outgoing request a guest makes to [`HttpClient::send`], which
//! checks the allow-list before any connection is made. With `allowed_hosts` unset every
//! host may be reached (as with wasmCloud's provider); once it is set, everything not on it
//! is refused.
//!
//! Config keys (provider config or the link's target config):
//!
//! | key | default | meaning |
//! | --- | --- | --- |
//! | `allowed_hosts` | unset: any | comma-separated `host`, `host:port` or `*.domain` entries |
//! | `connect_timeout_ms` | 5000 | TCP (and TLS) connect timeout |
//! | `first_byte_timeout_ms` | 30000 | time from sending to the response head |
//! | `pool_idle_timeout_ms` | 90000 | how long an idle connection is kept for reuse |
//! | `max_idle_per_host` | 32 | idle connections kept per host |
//!
//! Whatever `allowed_hosts` says, a component never reaches the host's own control surfaces:
//! the host gives each client its [`Protected`] addresses (the embedded host's control
//! endpoint, the NATS servers of the lattice), and a connection that lands on one of them is
//! closed before a byte is sent, and the request refused ([`SendError::Protected`]).
//!
//! wasmCloud's `load_native_certs`, `load_webpki_certs` and `ssl_certs_file` are accepted
//! and reported as ignored: TLS always trusts the compiled-in Mozilla roots.

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// The body type of requests handed to [`HttpClient::send`].
pub type RequestBody = UnsyncBoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

/// Why a config is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("HTTP client config key `{key}`: {message}")]
pub struct ConfigError {
    /// The key.
    pub key: String,
    /// What is wrong and what would be right.
    pub message: String,
}

/// One allow-list entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum AllowedHost {
    /// Exactly this host, any port.
    Host(String),
    /// This host on this port.
    HostPort(String, u16),
    /// Any subdomain of this domain (not the domain itself).
    Suffix(String),
}

impl AllowedHost {
    fn parse(entry: &str) -> Result<Self, String> {
        let entry = entry.trim().to_ascii_lowercase();
        if entry.is_empty() {
            return Err("empty entry".into());
        }
        if entry.contains("://") || entry.contains('/') {
            return Err(format!(
                "`{entry}` should be a host name, not a URL (for example `api.example.com`)"
            ));
        }
        if let Some(domain) = entry.strip_prefix("*.") {
            return Ok(AllowedHost::Suffix(format!(".{domain}")));
        }
        if let Some((host, port)) = entry.rsplit_once(':')
            && !host.contains(':')
        {
            let port = port
                .parse()
                .map_err(|_| format!("`{entry}` has an invalid port"))?;
            return Ok(AllowedHost::HostPort(host.to_owned(), port));
        }
        Ok(AllowedHost::Host(entry.trim_matches(['[', ']']).to_owned()))
    }

    fn allows(&self, host: &str, port: u16) -> bool {
        match self {
            AllowedHost::Host(h) => h == host,
            AllowedHost::HostPort(h, p) => h == host && *p == port,
            AllowedHost::Suffix(s) => host.ends_with(s.as_str()),
        }
    }
}

/// How the client behaves; see the crate docs for the config keys.
#[derive(Debug, Clone)]
pub struct HttpClientConfig {
    allowed_hosts: Option<Vec<AllowedHost>>,
    /// TCP (and TLS) connect timeout.
    pub connect_timeout: Duration,
    /// Time from sending a request to receiving the response head.
    pub first_byte_timeout: Duration,
    /// How long an idle connection is kept for reuse.
    pub pool_idle_timeout: Duration,
    /// Idle connections kept per host.
    pub max_idle_per_host: usize,
    /// Keys that were present but that this provider does not use.
    pub ignored: Vec<String>,
}

impl Default for HttpClientConfig {
    fn default() -> Self {
        Self {
            allowed_hosts: None,
            connect_timeout: Duration::from_secs(5),
            first_byte_timeout: Duration::from_secs(30),
            pool_idle_timeout: Duration::from_secs(90),
            max_idle_per_host: 32,
            ignored: Vec::new(),
        }
    }
}

impl HttpClientConfig {
    /// Reads the config keys; an unparseable value is an error naming its key.
    pub fn from_config(config: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let mut out = Self::default();
        for (key, value) in config {
            let err = |message: String| ConfigError {
                key: key.clone(),
                message,
            };
            let millis = |value: &str| {
                value
                    .trim()
                    .parse::<u64>()
                    .map(Duration::from_millis)
                    .map_err(|_| err(format!("`{value}` is not a whole number of milliseconds")))
            };
            match key.to_ascii_lowercase().as_str() {
                "allowed_hosts" => {
                    let hosts = value
                        .split(',')
                        .filter(|e| !e.trim().is_empty())
                        .map(AllowedHost::parse)
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(err)?;
                    out.allowed_hosts = Some(hosts);
                }
                "connect_timeout_ms" => out.connect_timeout = millis(value)?,
                "first_byte_timeout_ms" => out.first_byte_timeout = millis(value)?,
                "pool_idle_timeout_ms" => out.pool_idle_timeout = millis(value)?,
                "max_idle_per_host" => {
                    out.max_idle_per_host = value
                        .trim()
                        .parse()
                        .map_err(|_| err(format!("`{value}` is not a whole number")))?
                }
                _ => out.ignored.push(key.clone()),
            }
        }
        Ok(out)
    }

    /// Whether a request to `host:port` is allowed.
    pub fn allows(&self, host: &str, port: u16) -> bool {
        let host = host.trim_matches(['[', ']']).to_ascii_lowercase();
        match &self.allowed_hosts {
            None => true,
            Some(list) => list.iter().any(|a| a.allows(&host, port)),
        }
    }
}

/// Why a request was not answered.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The destination is not on the allow-list.
    #[error("requests to `{host}:{port}` are not allowed by this HTTP client's `allowed_hosts`")]
    Denied {
        /// The host asked for.
        host: String,
        /// The port asked for.
        port: u16,
    },
    /// The URI has no host.
    #[error("the request URI `{0}` has no host")]
    NoHost(String),
    /// Connecting took longer than the connect timeout.
    #[error("connecting timed out after {0:?}")]
    ConnectTimeout(Duration),
    /// No response head arrived within the first-byte timeout.
    #[error("no response within {0:?}")]
    FirstByteTimeout(Duration),
    /// The connection was refused.
    #[error("connection refused: {0}")]
    ConnectionRefused(String),
    /// The host name did not resolve.
    #[error("the host name does not resolve: {0}")]
    Dns(String),
    /// The connection landed on one of the host's own control surfaces.
    #[error("{0}")]
    Protected(ProtectedAddress),
    /// Anything else from the HTTP stack.
    #[error("{0}")]
    Other(String),
}

/// Addresses no component may reach through the HTTP client, whatever its `allowed_hosts`:
/// the host's control endpoint and its NATS servers. A loopback or unspecified address
/// stands for every address of this machine on that port (a server listening on 0.0.0.0
/// is reachable through any of them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Protected {
    addresses: Vec<SocketAddr>,
}

impl Protected {
    /// Protects `addresses`.
    pub fn new(addresses: impl IntoIterator<Item = SocketAddr>) -> Self {
        let mut addresses: Vec<SocketAddr> = addresses.into_iter().collect();
        addresses.sort();
        addresses.dedup();
        Self { addresses }
    }

    /// The protected addresses.
    pub fn addresses(&self) -> &[SocketAddr] {
        &self.addresses
    }

    /// Whether a connection from `local` to `peer` reaches a protected address. A peer on
    /// this machine shows as a loopback address or as the connection's own local address.
    pub fn denies(&self, peer: SocketAddr, local: SocketAddr) -> bool {
        let this_machine = |ip: IpAddr| ip.is_loopback() || ip.is_unspecified();
        let peer_here = this_machine(peer.ip()) || peer.ip() == local.ip();
        self.addresses.iter().any(|p| {
            p.port() == peer.port()
                && (same_ip(p.ip(), peer.ip()) || (this_machine(p.ip()) && peer_here))
        })
    }
}

/// Equal, counting an IPv4-mapped IPv6 address as its IPv4 address.
fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    let plain = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    plain(a) == plain(b)
}

/// A connection refused because it reached a [`Protected`] address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} is one of this host's control surfaces; components may not reach it")]
pub struct ProtectedAddress(pub SocketAddr);

/// The TCP connector under TLS: connects as hyper-util does, then checks where the
/// connection landed (after DNS, so no name can smuggle a protected address past the check).
#[derive(Clone)]
struct Guarded {
    inner: HttpConnector,
    protected: Arc<Protected>,
}

type Connected = hyper_util::rt::TokioIo<tokio::net::TcpStream>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower_service::Service<http::Uri> for Guarded {
    type Response = Connected;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Connected, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let connecting = self.inner.call(uri);
        let protected = self.protected.clone();
        Box::pin(async move {
            let io = connecting.await?;
            let stream = io.inner();
            if let (Ok(peer), Ok(local)) = (stream.peer_addr(), stream.local_addr())
                && protected.denies(peer, local)
            {
                return Err(Box::new(ProtectedAddress(peer)) as BoxError);
            }
            Ok(io)
        })
    }
}

/// A pooled client; cheap to share behind an `Arc`.
pub struct HttpClient {
    config: HttpClientConfig,
    client: Client<hyper_rustls::HttpsConnector<Guarded>, RequestBody>,
}

impl HttpClient {
    /// Builds a client that may reach nothing `protected` lists; nothing connects until the
    /// first request.
    pub fn new(config: HttpClientConfig, protected: Arc<Protected>) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(config.connect_timeout));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(Guarded {
                inner: http,
                protected,
            });
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(config.pool_idle_timeout)
            .pool_max_idle_per_host(config.max_idle_per_host)
            .build(https);
        Self { config, client }
    }

    /// The config it runs with.
    pub fn config(&self) -> &HttpClientConfig {
        &self.config
    }

    /// Sends `request` (its URI must be absolute) and returns the response head with a
    /// streaming body. The allow-list is checked before any connection is made.
    pub async fn send(
        &self,
        request: http::Request<RequestBody>,
    ) -> Result<http::Response<hyper::body::Incoming>, SendError> {
        let uri = request.uri().clone();
        let host = uri
            .host()
            .ok_or_else(|| SendError::NoHost(uri.to_string()))?
            .to_owned();
        let https = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        if !self.config.allows(&host, port) {
            tracing::warn!(%host, port, "outgoing HTTP request refused by allowed_hosts");
            return Err(SendError::Denied { host, port });
        }
        let timeout = self.config.first_byte_timeout;
        match tokio::time::timeout(timeout, self.client.request(request)).await {
            Err(_) => Err(SendError::FirstByteTimeout(timeout)),
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => Err(classify(e, self.config.connect_timeout)),
        }
    }
}

fn classify(e: hyper_util::client::legacy::Error, connect_timeout: Duration) -> SendError {
    use std::error::Error as _;
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(protected) = s.downcast_ref::<ProtectedAddress>() {
            return SendError::Protected(protected.clone());
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    return SendError::ConnectionRefused(io.to_string());
                }
                std::io::ErrorKind::TimedOut => return SendError::ConnectTimeout(connect_timeout),
                _ => {}
            }
        }
        // hyper-util's connector names a failed lookup "dns error", caused by the resolver's
        // own error ("failed to lookup address information: …").
        if e.is_connect() && s.to_string() == "dns error" {
            let cause = s.source().map(|c| c.to_string());
            return SendError::Dns(cause.unwrap_or_else(|| s.to_string()));
        }
        if s.to_string().contains("timed out") && e.is_connect() {
            return SendError::ConnectTimeout(connect_timeout);
        }
        source = s.source();
    }
    SendError::Other(format!("{e:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<HttpClientConfig, ConfigError> {
        HttpClientConfig::from_config(
            &pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn protected_addresses_cover_every_name_of_this_machine() {
        let addr = |s: &str| s.parse::<SocketAddr>().expect("address");
        let local = addr("10.0.0.5:50000");
        let loopback = Protected::new([addr("127.0.0.1:7373")]);
        assert!(loopback.denies(addr("127.0.0.1:7373"), addr("127.0.0.1:50000")));
        assert!(loopback.denies(addr("127.0.0.2:7373"), addr("127.0.0.1:50000")));
        assert!(loopback.denies(addr("[::1]:7373"), addr("[::1]:50000")));
        // This machine's own address, reached from itself.
        assert!(loopback.denies(addr("10.0.0.5:7373"), local));
        assert!(
            !loopback.denies(addr("10.0.0.9:7373"), local),
            "another machine"
        );
        assert!(!loopback.denies(addr("127.0.0.1:7374"), addr("127.0.0.1:50000")));
        let remote = Protected::new([addr("10.1.2.3:4222")]);
        assert!(remote.denies(addr("10.1.2.3:4222"), local));
        assert!(remote.denies(addr("[::ffff:10.1.2.3]:4222"), local));
        assert!(!remote.denies(addr("127.0.0.1:4222"), addr("127.0.0.1:50000")));
        assert!(!Protected::default().denies(addr("127.0.0.1:7373"), local));
    }

    #[test]
    fn no_list_allows_everything_and_a_list_denies_the_rest() {
        let open = config(&[]).expect("config");
        assert!(open.allows("example.com", 443));
        let c = config(&[(
            "allowed_hosts",
            "api.example.com, 127.0.0.1:8080,*.internal",
        )])
        .expect("config");
        assert!(c.allows("api.example.com", 443));
        assert!(c.allows("API.example.com", 80));
        assert!(c.allows("127.0.0.1", 8080));
        assert!(!c.allows("127.0.0.1", 8081));
        assert!(c.allows("db.internal", 5432));
        assert!(
            !c.allows("internal", 80),
            "a wildcard covers subdomains only"
        );
        assert!(!c.allows("example.com", 443));
        let empty = config(&[("allowed_hosts", "")]).expect("config");
        assert!(
            !empty.allows("example.com", 443),
            "an empty list denies everything"
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        let e = config(&[("allowed_hosts", "https://x.com")]).expect_err("a URL is not a host");
        assert_eq!(e.key, "allowed_hosts");
        let e = config(&[("connect_timeout_ms", "soon")]).expect_err("not a number");
        assert!(e.to_string().contains("connect_timeout_ms"), "{e}");
        let c = config(&[("load_native_certs", "true")]).expect("known wasmCloud key");
        assert_eq!(c.ignored, ["load_native_certs"]);
    }
}
