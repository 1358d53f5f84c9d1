//! The provider's configuration: wasmCloud's `sqldb-postgres` keys, and Trellis's bounds.
//!
//! The host lays a link's target config over the provider's own config and hands the result
//! to [`PostgresConfig::from_config`]; links whose merged config is equal share one pool.
//! Keys are matched without regard to case.
//!
//! | key | meaning | default |
//! |-----|---------|---------|
//! | `POSTGRES_HOST` | server host name or address | required |
//! | `POSTGRES_PORT` | server port | `5432` |
//! | `POSTGRES_USERNAME` | user | required |
//! | `POSTGRES_PASSWORD` | password | empty (for `trust` authentication) |
//! | `POSTGRES_DATABASE` | database | required |
//! | `POSTGRES_TLS_REQUIRED` | `true`/`yes` to require TLS | `false`; `true` is refused: TLS is not built in yet |
//! | `POSTGRES_POOL_SIZE` | most connections in the pool | deadpool's default (4 × cores) |
//! | `POSTGRES_SHARE_CONNECTIONS_BY_URL` | wasmCloud's pool sharing | accepted; pools are always shared by equal config |
//! | `POSTGRES_CONNECT_TIMEOUT_MS` | time to open a connection | `5000` |
//! | `POSTGRES_QUERY_TIMEOUT_MS` | lowers the host's `--pg-query-timeout` | the host's |
//! | `POSTGRES_MAX_ROWS` | lowers the host's `--max-pg-rows` | the host's |
//! | `POSTGRES_MAX_BYTES` | lowers the host's `--max-pg-bytes` | the host's |
//!
//! A link may only tighten the host's bounds: the lower of the two applies.

use crate::Limits;
use std::collections::BTreeMap;
use std::time::Duration;

/// A configuration this backend cannot serve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Keys without which there is nothing to connect to.
    #[error(
        "the link to this provider needs {} (in the link's target config or the provider's \
         config), for example POSTGRES_HOST=127.0.0.1 POSTGRES_USERNAME=postgres \
         POSTGRES_DATABASE=postgres",
        .0.join(", ")
    )]
    Missing(Vec<&'static str>),
    /// A value that does not parse.
    #[error("config key `{key}`: `{value}` is not {expected}")]
    Invalid {
        /// The key as written.
        key: String,
        /// The value (never a password).
        value: String,
        /// What would be accepted.
        expected: &'static str,
    },
    /// `POSTGRES_TLS_REQUIRED` is true.
    #[error(
        "POSTGRES_TLS_REQUIRED is set, but this built-in provider does not speak TLS yet; \
         connect over a trusted network or a local socket tunnel and set it to false"
    )]
    TlsUnsupported,
    /// The pool could not be built.
    #[error("cannot build the connection pool: {0}")]
    Pool(String),
}

/// Where the server is and how to use it; see the [module docs](self).
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresConfig {
    /// `POSTGRES_HOST`.
    pub host: String,
    /// `POSTGRES_PORT`.
    pub port: u16,
    /// `POSTGRES_USERNAME`.
    pub username: String,
    /// `POSTGRES_PASSWORD`.
    pub password: String,
    /// `POSTGRES_DATABASE`.
    pub database: String,
    /// `POSTGRES_TLS_REQUIRED`.
    pub tls_required: bool,
    /// `POSTGRES_POOL_SIZE`.
    pub pool_size: Option<usize>,
    /// `POSTGRES_CONNECT_TIMEOUT_MS`.
    pub connect_timeout: Duration,
    /// The bounds the config sets.
    pub limits: ConfigLimits,
    /// Keys that mean nothing to this backend, for the host to warn about.
    pub ignored: Vec<String>,
}

impl std::fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &"***")
            .field("database", &self.database)
            .field("tls_required", &self.tls_required)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("limits", &self.limits)
            .field("ignored", &self.ignored)
            .finish()
    }
}

/// Bounds a link's config sets; each lowers the host's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigLimits {
    /// `POSTGRES_QUERY_TIMEOUT_MS`.
    pub query_timeout: Option<Duration>,
    /// `POSTGRES_MAX_ROWS`.
    pub max_rows: Option<usize>,
    /// `POSTGRES_MAX_BYTES`.
    pub max_bytes: Option<usize>,
}

impl ConfigLimits {
    /// `host`'s limits with these laid over, the lower of each pair winning.
    pub fn apply(&self, host: &Limits) -> Limits {
        Limits {
            query_timeout: self
                .query_timeout
                .map_or(host.query_timeout, |t| t.min(host.query_timeout)),
            max_rows: self
                .max_rows
                .map_or(host.max_rows, |n| n.min(host.max_rows)),
            max_bytes: self
                .max_bytes
                .map_or(host.max_bytes, |n| n.min(host.max_bytes)),
            ..host.clone()
        }
    }
}

const KEYS: &[&str] = &[
    "POSTGRES_HOST",
    "POSTGRES_PORT",
    "POSTGRES_USERNAME",
    "POSTGRES_PASSWORD",
    "POSTGRES_DATABASE",
    "POSTGRES_TLS_REQUIRED",
    "POSTGRES_POOL_SIZE",
    "POSTGRES_SHARE_CONNECTIONS_BY_URL",
    "POSTGRES_CONNECT_TIMEOUT_MS",
    "POSTGRES_QUERY_TIMEOUT_MS",
    "POSTGRES_MAX_ROWS",
    "POSTGRES_MAX_BYTES",
];

impl PostgresConfig {
    /// Reads the config map; see the [module docs](self) for the keys.
    pub fn from_config(config: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let get = |key: &str| -> Option<(&String, &String)> {
            config.iter().find(|(k, _)| k.eq_ignore_ascii_case(key))
        };
        let number =
            |key: &'static str, expected: &'static str| -> Result<Option<u64>, ConfigError> {
                match get(key) {
                    None => Ok(None),
                    Some((k, v)) => v
                        .trim()
                        .parse::<u64>()
                        .ok()
                        .filter(|n| *n > 0)
                        .map(Some)
                        .ok_or_else(|| ConfigError::Invalid {
                            key: k.clone(),
                            value: v.clone(),
                            expected,
                        }),
                }
            };
        let missing: Vec<&'static str> =
            ["POSTGRES_HOST", "POSTGRES_USERNAME", "POSTGRES_DATABASE"]
                .into_iter()
                .filter(|k| get(k).is_none_or(|(_, v)| v.trim().is_empty()))
                .collect();
        if !missing.is_empty() {
            return Err(ConfigError::Missing(missing));
        }
        let text = |key: &str| {
            get(key)
                .map(|(_, v)| v.trim().to_owned())
                .unwrap_or_default()
        };
        let port = match get("POSTGRES_PORT") {
            None => 5432,
            Some((k, v)) => v
                .trim()
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| ConfigError::Invalid {
                    key: k.clone(),
                    value: v.clone(),
                    expected: "a port number (1 to 65535)",
                })?,
        };
        let tls_required = match get("POSTGRES_TLS_REQUIRED") {
            None => false,
            Some((k, v)) => match v.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" => true,
                "false" | "no" | "" => false,
                _ => {
                    return Err(ConfigError::Invalid {
                        key: k.clone(),
                        value: v.clone(),
                        expected: "true or false",
                    });
                }
            },
        };
        let size = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        Ok(Self {
            host: text("POSTGRES_HOST"),
            port,
            username: text("POSTGRES_USERNAME"),
            // Not trimmed: a password may end in a space.
            password: get("POSTGRES_PASSWORD")
                .map(|(_, v)| v.clone())
                .unwrap_or_default(),
            database: text("POSTGRES_DATABASE"),
            tls_required,
            pool_size: number("POSTGRES_POOL_SIZE", "a positive number of connections")?.map(size),
            connect_timeout: Duration::from_millis(
                number(
                    "POSTGRES_CONNECT_TIMEOUT_MS",
                    "a positive number of milliseconds",
                )?
                .unwrap_or(5000),
            ),
            limits: ConfigLimits {
                query_timeout: number(
                    "POSTGRES_QUERY_TIMEOUT_MS",
                    "a positive number of milliseconds",
                )?
                .map(Duration::from_millis),
                max_rows: number("POSTGRES_MAX_ROWS", "a positive number of rows")?.map(size),
                max_bytes: number("POSTGRES_MAX_BYTES", "a positive number of bytes")?.map(size),
            },
            ignored: config
                .keys()
                .filter(|k| !KEYS.iter().any(|known| k.eq_ignore_ascii_case(known)))
                .cloned()
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    const BASE: &[(&str, &str)] = &[
        ("POSTGRES_HOST", "db.example"),
        ("POSTGRES_USERNAME", "app"),
        ("POSTGRES_PASSWORD", "s3cret"),
        ("POSTGRES_DATABASE", "shop"),
    ];

    #[test]
    fn reads_wasmclouds_keys_with_defaults() {
        let mut pairs = BASE.to_vec();
        pairs.push(("otel_endpoint", "x"));
        let c = PostgresConfig::from_config(&map(&pairs)).expect("valid");
        assert_eq!(
            (
                c.host.as_str(),
                c.port,
                c.username.as_str(),
                c.database.as_str()
            ),
            ("db.example", 5432, "app", "shop")
        );
        assert_eq!(c.password, "s3cret");
        assert!(!c.tls_required);
        assert_eq!(c.pool_size, None);
        assert_eq!(c.ignored, ["otel_endpoint"]);
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn missing_and_bad_keys_are_named() {
        let err =
            PostgresConfig::from_config(&map(&[("POSTGRES_HOST", "h")])).expect_err("missing");
        assert_eq!(
            err,
            ConfigError::Missing(vec!["POSTGRES_USERNAME", "POSTGRES_DATABASE"])
        );
        for (key, value) in [
            ("POSTGRES_PORT", "99999"),
            ("POSTGRES_POOL_SIZE", "zero"),
            ("POSTGRES_MAX_ROWS", "0"),
            ("POSTGRES_TLS_REQUIRED", "maybe"),
        ] {
            let mut pairs = BASE.to_vec();
            pairs.push((key, value));
            let err = PostgresConfig::from_config(&map(&pairs)).expect_err(key);
            assert!(err.to_string().contains(key), "{err}");
        }
    }

    #[test]
    fn a_link_only_tightens_the_hosts_bounds() {
        let mut pairs = BASE.to_vec();
        pairs.extend([
            ("postgres_max_rows", "5"),
            ("POSTGRES_QUERY_TIMEOUT_MS", "60000"),
        ]);
        let c = PostgresConfig::from_config(&map(&pairs)).expect("valid");
        let host = Limits::default();
        let applied = c.limits.apply(&host);
        assert_eq!(applied.max_rows, 5);
        assert_eq!(applied.query_timeout, host.query_timeout);
        assert_eq!(applied.max_bytes, host.max_bytes);
    }
}
