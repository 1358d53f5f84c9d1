//! How a [`Registry`](crate::Registry) talks to registries: which may use plain HTTP, which
//! credentials to send, and the bounds on time and size.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{PASSWORD_ENV, USER_ENV};

/// Settings of a [`Registry`](crate::Registry). `Default` gives the documented defaults.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Registries that may be spoken to over plain HTTP, besides `localhost` and `127.0.0.1`
    /// (any port), which always may. An entry `host` allows every port of that host; an entry
    /// `host:port` only that port.
    pub insecure: Vec<String>,
    /// Where credentials come from.
    pub credentials: Credentials,
    /// How long connecting, and every wait for the registry to answer or to send the next
    /// bytes, may take; a manifest must also arrive whole within it. Default: 30 s.
    pub timeout: Duration,
    /// Largest component (wasm layer) accepted; a manifest claiming more is refused before any
    /// download, and a download that grows past it is cut off. Default: 256 MiB.
    pub max_size: u64,
    /// Directory of the digest-keyed cache; `None` caches nothing (and so cannot run offline).
    /// Default: `None` (callers pick the directory, e.g. `$XDG_CACHE_HOME/trellis/oci`).
    pub cache_dir: Option<PathBuf>,
}

impl RegistryConfig {
    /// The default timeout (30 s).
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
    /// The default largest component (256 MiB).
    pub const DEFAULT_MAX_SIZE: u64 = 256 << 20;
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            insecure: Vec::new(),
            credentials: Credentials::default(),
            timeout: Self::DEFAULT_TIMEOUT,
            max_size: Self::DEFAULT_MAX_SIZE,
            cache_dir: None,
        }
    }
}

/// Where a [`Registry`](crate::Registry) finds the credentials to send.
#[derive(Clone, Default)]
pub enum Credentials {
    /// The first that applies: [`USER_ENV`] and [`PASSWORD_ENV`] when both are set (read when
    /// the `Registry` is made), else the Docker config file as with
    /// [`Credentials::DockerConfig`] with no directory, else none.
    #[default]
    Auto,
    /// This user and password, sent to every registry (or only to `registry` when set).
    Basic {
        /// The user name.
        username: String,
        /// The password or token.
        password: String,
        /// The one registry (`host[:port]`) they are for; `None` for all.
        registry: Option<String>,
    },
    /// `config.json` in `dir`, else in `$DOCKER_CONFIG`, else in `~/.docker`: its `auths`
    /// entries, `credHelpers` and `credsStore` (helpers run as `docker-credential-NAME`).
    /// Registries it has nothing for are accessed anonymously.
    DockerConfig {
        /// The folder holding `config.json`, instead of the environment's.
        dir: Option<PathBuf>,
    },
    /// Send none.
    Anonymous,
}

impl Credentials {
    /// [`Credentials::Basic`] for every registry.
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self::Basic {
            username: username.into(),
            password: password.into(),
            registry: None,
        }
    }

    /// Replaces [`Credentials::Auto`] by what it means now, reading the environment once.
    pub(crate) fn resolve_auto(self) -> Self {
        match self {
            Self::Auto => match (std::env::var(USER_ENV), std::env::var(PASSWORD_ENV)) {
                (Ok(username), Ok(password)) if !username.is_empty() => Self::Basic {
                    username,
                    password,
                    registry: None,
                },
                _ => Self::DockerConfig { dir: None },
            },
            other => other,
        }
    }
}

impl fmt::Debug for Credentials {
    // Never print a password, not even in a debug log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("Auto"),
            Self::Basic {
                username, registry, ..
            } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"…")
                .field("registry", registry)
                .finish(),
            Self::DockerConfig { dir } => f.debug_struct("DockerConfig").field("dir", dir).finish(),
            Self::Anonymous => f.write_str("Anonymous"),
        }
    }
}

/// Whether `registry` (`host[:port]`) may be spoken to over plain HTTP.
pub(crate) fn is_insecure(registry: &str, allowed: &[String]) -> bool {
    let host = host_of(registry);
    if matches!(host, "localhost" | "127.0.0.1" | "[::1]") {
        return true;
    }
    allowed.iter().any(|entry| {
        let entry = entry.trim();
        let entry = entry
            .strip_prefix("http://")
            .unwrap_or(entry)
            .trim_end_matches('/');
        entry == registry || (entry == host && !entry.contains(':'))
    })
}

/// The host of `host[:port]`, brackets kept for IPv6 (`[::1]:5000` → `[::1]`).
fn host_of(registry: &str) -> &str {
    if registry.starts_with('[') {
        return registry.find(']').map_or(registry, |end| &registry[..=end]);
    }
    registry.split(':').next().unwrap_or(registry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_always_insecure_and_others_only_when_listed() {
        let none: Vec<String> = Vec::new();
        assert!(is_insecure("localhost:5000", &none));
        assert!(is_insecure("localhost", &none));
        assert!(is_insecure("127.0.0.1:41234", &none));
        assert!(is_insecure("[::1]:5000", &none));
        assert!(!is_insecure("ghcr.io", &none));
        assert!(!is_insecure("localhost.example.com:5000", &none));

        let listed = vec!["registry.lan".to_string(), "build:5000".to_string()];
        assert!(is_insecure("registry.lan", &listed));
        assert!(
            is_insecure("registry.lan:8080", &listed),
            "a host allows every port"
        );
        assert!(is_insecure("build:5000", &listed));
        assert!(
            !is_insecure("build:5001", &listed),
            "host:port allows that port only"
        );
        assert!(!is_insecure("build", &listed));
    }

    #[test]
    fn debug_never_shows_the_password() {
        let text = format!("{:?}", Credentials::basic("me", "hunter2"));
        assert!(text.contains("me") && !text.contains("hunter2"), "{text}");
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let config = RegistryConfig::default();
        assert_eq!(config.timeout, Duration::from_secs(30));
        assert_eq!(config.max_size, 256 * 1024 * 1024);
        assert!(config.cache_dir.is_none());
    }
}
