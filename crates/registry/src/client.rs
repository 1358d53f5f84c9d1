//! One `oci_client::Client` per registry (plain HTTP or HTTPS, its credentials, its token
//! cache), and the translation of its errors into [`RegistryError`]s.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use oci_client::Reference;
use oci_client::client::{Client, ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;

use crate::config::{Credentials, RegistryConfig, is_insecure};
use crate::error::{BoxError, PASSWORD_ENV, RegistryError, USER_ENV};

/// A parsed reference, with the text it was given as (for messages).
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The reference as the caller wrote it.
    pub given: String,
    pub reference: Reference,
}

impl Target {
    pub fn parse(given: &str) -> Result<Self, RegistryError> {
        let reference =
            Reference::try_from(given.trim()).map_err(|e| RegistryError::InvalidReference {
                reference: given.to_string(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            given: given.to_string(),
            reference,
        })
    }

    /// The registry as contacted (`docker.io` becomes `index.docker.io`).
    pub fn registry(&self) -> &str {
        self.reference.resolve_registry()
    }

    /// The same repository at `digest`.
    pub fn at_digest(&self, digest: &str) -> Self {
        Self {
            given: self.given.clone(),
            reference: self.reference.clone_with_digest(digest.to_string()),
        }
    }
}

/// A registry's client, the credentials it sends, and where they came from.
#[derive(Clone)]
pub(crate) struct Connection {
    pub client: Client,
    pub auth: RegistryAuth,
    /// Where `auth` came from, for a 401's message; `None` when anonymous.
    pub auth_source: Option<String>,
    /// Whether it speaks plain HTTP rather than HTTPS.
    pub plain_http: bool,
}

/// The clients made so far, by registry.
pub(crate) struct Connections {
    insecure: Vec<String>,
    credentials: Credentials,
    timeout: Duration,
    by_registry: Mutex<HashMap<String, Connection>>,
}

impl Connections {
    pub fn new(config: &RegistryConfig) -> Self {
        Self {
            insecure: config.insecure.clone(),
            credentials: config.credentials.clone().resolve_auto(),
            timeout: config.timeout,
            by_registry: Mutex::default(),
        }
    }

    /// The connection to `target`'s registry, made on first use.
    pub async fn get(&self, target: &Target) -> Connection {
        let registry = target.registry().to_string();
        if let Some(found) = self.lock().get(&registry) {
            return found.clone();
        }
        let credentials = self.credentials.clone();
        let docker_registry = target.reference.registry().to_string();
        // Reading the Docker config may run a credential helper: keep it off the executor.
        let (auth, auth_source) =
            tokio::task::spawn_blocking(move || credentials_for(&credentials, &docker_registry))
                .await
                .unwrap_or((RegistryAuth::Anonymous, None));
        let plain_http = is_insecure(&registry, &self.insecure);
        let protocol = if plain_http {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        };
        let client = Client::new(ClientConfig {
            protocol,
            // Components are single artifacts: no platform to choose.
            platform_resolver: None,
            use_monolithic_push: true,
            connect_timeout: Some(self.timeout),
            read_timeout: Some(self.timeout),
            user_agent: concat!("trellis/", env!("CARGO_PKG_VERSION")),
            ..ClientConfig::default()
        });
        let connection = Connection {
            client,
            auth,
            auth_source,
            plain_http,
        };
        self.lock().entry(registry).or_insert(connection).clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Connection>> {
        // The map holds no invariant a panic could break.
        self.by_registry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The credentials to send to `registry`, and where they came from.
fn credentials_for(credentials: &Credentials, registry: &str) -> (RegistryAuth, Option<String>) {
    match credentials {
        Credentials::Basic {
            username,
            password,
            registry: only,
        } if only.as_deref().is_none_or(|only| only == registry) => (
            RegistryAuth::Basic(username.clone(), password.clone()),
            Some(format!("--registry-user or {USER_ENV}/{PASSWORD_ENV}")),
        ),
        Credentials::DockerConfig { dir } => docker_config(dir.clone(), registry),
        Credentials::Auto => credentials_for(&credentials.clone().resolve_auto(), registry),
        Credentials::Basic { .. } | Credentials::Anonymous => (RegistryAuth::Anonymous, None),
    }
}

/// Looks `registry` up in the Docker config (`dir`, `$DOCKER_CONFIG` or `~/.docker`).
fn docker_config(dir: Option<PathBuf>, registry: &str) -> (RegistryAuth, Option<String>) {
    let dir = dir
        .or_else(|| std::env::var_os("DOCKER_CONFIG").map(PathBuf::from))
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker")));
    let Some(path) = dir.map(|d| d.join("config.json")) else {
        return (RegistryAuth::Anonymous, None);
    };
    let Ok(file) = std::fs::File::open(&path) else {
        return (RegistryAuth::Anonymous, None);
    };
    let source = Some(format!("the Docker config {}", path.display()));
    match docker_credential::get_credential_from_reader(std::io::BufReader::new(file), registry) {
        Ok(docker_credential::DockerCredential::UsernamePassword(user, password)) => {
            (RegistryAuth::Basic(user, password), source)
        }
        // An identity token is what `docker login` keeps for registries that issue OAuth
        // tokens; sent as a bearer token it works with those that accept it directly.
        Ok(docker_credential::DockerCredential::IdentityToken(token)) => {
            (RegistryAuth::Bearer(token), source)
        }
        Err(docker_credential::CredentialRetrievalError::NoCredentialConfigured) => {
            (RegistryAuth::Anonymous, None)
        }
        Err(e) => {
            tracing::warn!(registry, config = %path.display(), error = %e, "cannot read credentials from the Docker config; trying without");
            (RegistryAuth::Anonymous, None)
        }
    }
}

/// Translates a client error about `target` into a [`RegistryError`].
pub(crate) fn map_error(
    error: OciDistributionError,
    target: &Target,
    connection: &Connection,
    timeout: Duration,
) -> RegistryError {
    let reference = target.given.clone();
    let registry = target.reference.registry().to_string();
    let unauthorized = |detail: Option<String>| RegistryError::Unauthorized {
        reference: target.given.clone(),
        registry: registry.clone(),
        detail: detail.or_else(|| match &connection.auth_source {
            Some(source) => Some(format!("it refused the credentials from {source}")),
            None => Some("no credentials were sent".to_string()),
        }),
    };
    let not_found = || RegistryError::NotFound {
        reference: target.given.clone(),
        registry: registry.clone(),
    };
    match error {
        OciDistributionError::UnauthorizedError { .. } => unauthorized(None),
        OciDistributionError::AuthenticationFailure(reason) => {
            unauthorized(Some(format!("its token service said: {}", reason.trim())))
        }
        OciDistributionError::ImageManifestNotFoundError(_) => not_found(),
        OciDistributionError::RegistryError { ref envelope, .. }
            if envelope.errors.iter().any(|e| {
                matches!(
                    e.code,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::BlobUnknown
                        | OciErrorCode::NotFound
                )
            }) =>
        {
            not_found()
        }
        OciDistributionError::RegistryError { ref envelope, .. }
            if envelope
                .errors
                .iter()
                .any(|e| matches!(e.code, OciErrorCode::Unauthorized | OciErrorCode::Denied)) =>
        {
            unauthorized(None)
        }
        OciDistributionError::ServerError { code: 404, .. } => not_found(),
        OciDistributionError::ServerError {
            code: 401 | 403, ..
        } => unauthorized(None),
        OciDistributionError::DigestError(oci_client::errors::DigestError::VerificationError {
            expected,
            actual,
        }) => RegistryError::DigestMismatch {
            reference,
            expected,
            found: actual,
        },
        OciDistributionError::UnsupportedMediaTypeError(media_type) => {
            RegistryError::NotAComponent {
                reference,
                found: format!("an artifact with manifest media type {media_type}"),
            }
        }
        // Unwrapped here: the client's error is `transparent`, so its `source()` skips the
        // HTTP client's error that says what kind of failure it was.
        OciDistributionError::RequestError(e) => {
            map_transport(e.into(), target, connection, timeout)
        }
        OciDistributionError::IoError(e) => map_transport(e.into(), target, connection, timeout),
        other => map_transport(other.into(), target, connection, timeout),
    }
}

/// Translates a transport-level error (the HTTP client's, possibly inside an I/O error).
pub(crate) fn map_transport(
    error: BoxError,
    target: &Target,
    connection: &Connection,
    timeout: Duration,
) -> RegistryError {
    let reference = target.given.clone();
    let registry = target.reference.registry().to_string();
    match classify(&*error) {
        Transport::TimedOut => RegistryError::TimedOut {
            reference,
            registry,
            timeout,
        },
        Transport::Status(404) => RegistryError::NotFound {
            reference,
            registry,
        },
        Transport::Status(401 | 403) => RegistryError::Unauthorized {
            reference,
            registry,
            detail: Some(match &connection.auth_source {
                Some(source) => format!("it refused the credentials from {source}"),
                None => "no credentials were sent".to_string(),
            }),
        },
        Transport::Unreachable if unresolved(&*error) => RegistryError::Unresolved {
            reference,
            registry,
            source: error,
        },
        Transport::Unreachable => RegistryError::Unreachable {
            reference,
            registry,
            plain_http: connection.plain_http,
            source: error,
        },
        Transport::Status(_) | Transport::Other => RegistryError::Registry {
            reference,
            registry,
            source: error,
        },
    }
}

/// Whether the cause chain says the host name did not resolve (hyper-util's connector calls
/// it a "dns error").
fn unresolved(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if e.to_string().starts_with("dns error") {
            return true;
        }
        next = e.source();
    }
    false
}

enum Transport {
    TimedOut,
    Status(u16),
    Unreachable,
    Other,
}

/// Looks through the cause chain (and inside I/O errors, whose `source` skips the error they
/// wrap) for the HTTP client's error and says what kind of failure it was.
fn classify(error: &(dyn std::error::Error + 'static)) -> Transport {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(http) = e.downcast_ref::<reqwest::Error>() {
            if http.is_timeout() {
                return Transport::TimedOut;
            }
            if let Some(status) = http.status() {
                return Transport::Status(status.as_u16());
            }
            if http.is_connect() || http.is_request() || http.is_body() {
                return Transport::Unreachable;
            }
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::TimedOut {
                return Transport::TimedOut;
            }
            if let Some(inner) = io.get_ref() {
                next = Some(inner);
                continue;
            }
            if matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::UnexpectedEof
            ) {
                return Transport::Unreachable;
            }
        }
        next = e.source();
    }
    Transport::Other
}
