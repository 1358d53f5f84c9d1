//! [`ConfigKeys`], a provider's string map folded to lower case, and [`ConnectConfig`], the
//! connection keys read from it.

use async_nats::ServerAddr;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The NATS server(s) used when the config names none.
pub const DEFAULT_CLUSTER_URI: &str = "nats://127.0.0.1:4222";
/// How long connecting and one request to NATS may take, by default.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A bad NATS configuration. Messages name the key and never contain the seed or a password.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value does not parse or is out of range.
    #[error("config key `{key}`: {problem}; for example: {example}")]
    Invalid {
        /// The key as written in the config.
        key: String,
        /// What is wrong with its value.
        problem: String,
        /// A value that would work.
        example: &'static str,
    },
    /// One of the `cluster_uri` servers is not a NATS server URL.
    #[error("config key `{key}`: `{url}` is not a NATS server URL; for example: {example}")]
    ServerUrl {
        /// The key as written in the config.
        key: String,
        /// The URL, with any password hidden.
        url: String,
        /// URLs that would work.
        example: &'static str,
        /// Why async-nats refused it.
        #[source]
        source: std::io::Error,
    },
    /// `client_seed` is not an nkey seed.
    #[error(
        "config key `{key}`: not a valid nkey seed; for example: SUAB… (a user seed, 58 \
         characters, the one that belongs to `client_jwt`)"
    )]
    Seed {
        /// The key as written in the config.
        key: String,
        /// Why nkeys refused it.
        #[source]
        source: nkeys::error::Error,
    },
    /// One of `client_jwt` and `client_seed` is set without the other.
    #[error(
        "config key `{present}` is set but `{missing}` is not: JWT authentication needs both \
         the user JWT (`client_jwt`) and its nkey seed (`client_seed`)"
    )]
    HalfOfJwtAuth {
        /// The key that is set.
        present: &'static str,
        /// The key that is missing.
        missing: &'static str,
    },
    /// A key is given twice, in different letter cases, with different values.
    #[error("config keys {} set the same thing to different values; keep one", .keys.join(", "))]
    ConflictingKeys {
        /// The keys, as written.
        keys: Vec<String>,
    },
}

impl ConfigError {
    /// A [`ConfigError::Invalid`]: `key`'s value has `problem`; `example` would work.
    pub fn invalid(key: &str, problem: impl Into<String>, example: &'static str) -> Self {
        Self::Invalid {
            key: key.to_owned(),
            problem: problem.into(),
            example,
        }
    }
}

/// User JWT authentication (decentralised NATS auth): the JWT and the nkey seed that signs the
/// server's nonce. `Debug` hides both.
#[derive(Clone, PartialEq, Eq)]
pub struct JwtAuth {
    /// The user JWT.
    pub jwt: String,
    /// The user's nkey seed (`SU…`).
    pub seed: String,
}

impl std::fmt::Debug for JwtAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtAuth")
            .field("jwt", &"***")
            .field("seed", &"***")
            .finish()
    }
}

/// A provider's config map with its keys folded to lower case, remembering how each was
/// written. A key given twice in different cases must have one value.
pub struct ConfigKeys<'a> {
    values: BTreeMap<String, (&'a str, &'a str)>,
}

impl<'a> ConfigKeys<'a> {
    /// Folds `config`'s keys; fails if two spellings of one key disagree.
    pub fn new(config: &'a BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let mut values: BTreeMap<String, (&str, &str)> = BTreeMap::new();
        for (key, value) in config {
            let folded = key.to_ascii_lowercase();
            if let Some((_, first)) = values.get(&folded)
                && *first != value.as_str()
            {
                return Err(ConfigError::ConflictingKeys {
                    keys: config
                        .keys()
                        .filter(|k| k.eq_ignore_ascii_case(&folded))
                        .cloned()
                        .collect(),
                });
            }
            values.insert(folded, (key.as_str(), value.as_str()));
        }
        Ok(Self { values })
    }

    /// `(key as written, value)` for a lower-case key.
    pub fn get(&self, key: &str) -> Option<(&'a str, &'a str)> {
        self.values.get(key).copied()
    }

    /// The keys, as written, that are neither connection keys ([`ConnectConfig::KEYS`]) nor
    /// in `own` (lower case): what a backend returns for the host to warn about.
    pub fn unknown(&self, own: &[&str]) -> Vec<String> {
        self.values
            .iter()
            .filter(|(k, _)| {
                !ConnectConfig::KEYS.contains(&k.as_str()) && !own.contains(&k.as_str())
            })
            .map(|(_, (written, _))| (*written).to_owned())
            .collect()
    }
}

/// `true` or `false` in any case; empty is `false`.
pub fn boolean(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" | "" => Ok(false),
        _ => Err(ConfigError::invalid(
            key,
            format!("`{value}` is neither `true` nor `false`"),
            "true",
        )),
    }
}

/// Which NATS servers to reach and how; see the [crate docs](crate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectConfig {
    /// `cluster_uri`: one or more server URLs, comma-separated.
    pub cluster_uri: String,
    /// `js_domain`: the JetStream domain, if not the local one.
    pub js_domain: Option<String>,
    /// `client_jwt` and `client_seed`, if the server wants JWT authentication.
    pub auth: Option<JwtAuth>,
    /// `tls_ca_file`: a PEM file of CA certificates to trust for TLS.
    pub tls_ca_file: Option<PathBuf>,
    /// How long connecting and one request may take (not a config key;
    /// [`DEFAULT_REQUEST_TIMEOUT`]).
    pub request_timeout: Duration,
}

impl Default for ConnectConfig {
    fn default() -> Self {
        Self {
            cluster_uri: DEFAULT_CLUSTER_URI.to_owned(),
            js_domain: None,
            auth: None,
            tls_ca_file: None,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

/// Whether `value` can name a JetStream bucket or domain: letters, digits, `_` and `-`, not
/// empty.
pub fn is_jetstream_name(value: &str) -> bool {
    !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl ConnectConfig {
    /// The keys [`ConnectConfig::from_keys`] reads, lower case.
    pub const KEYS: &[&str] = &[
        "cluster_uri",
        "js_domain",
        "client_jwt",
        "client_seed",
        "tls_ca_file",
    ];

    /// Reads the connection keys; absent keys keep their defaults.
    pub fn from_keys(keys: &ConfigKeys<'_>) -> Result<Self, ConfigError> {
        let mut out = Self::default();

        if let Some((key, value)) = keys.get("cluster_uri") {
            let example = "nats://127.0.0.1:4222 or nats://a:4222,nats://b:4222";
            let servers: Vec<&str> = value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            if servers.is_empty() {
                return Err(ConfigError::invalid(key, "no server URL given", example));
            }
            for server in &servers {
                if let Err(source) = server.parse::<ServerAddr>() {
                    return Err(ConfigError::ServerUrl {
                        key: key.to_owned(),
                        url: redact(server),
                        example,
                        source,
                    });
                }
            }
            out.cluster_uri = servers.join(",");
        }

        if let Some((key, value)) = keys.get("js_domain") {
            if !is_jetstream_name(value) {
                return Err(ConfigError::invalid(
                    key,
                    format!("`{value}` is not a JetStream domain name"),
                    "hub",
                ));
            }
            out.js_domain = Some(value.to_owned());
        }

        match (keys.get("client_jwt"), keys.get("client_seed")) {
            (None, None) => {}
            (Some(_), None) => {
                return Err(ConfigError::HalfOfJwtAuth {
                    present: "client_jwt",
                    missing: "client_seed",
                });
            }
            (None, Some(_)) => {
                return Err(ConfigError::HalfOfJwtAuth {
                    present: "client_seed",
                    missing: "client_jwt",
                });
            }
            (Some((jwt_key, jwt)), Some((seed_key, seed))) => {
                if jwt.trim().is_empty() {
                    return Err(ConfigError::invalid(
                        jwt_key,
                        "the JWT is empty",
                        "eyJ0eXAiOiJKV1Qi…",
                    ));
                }
                if let Err(source) = nkeys::KeyPair::from_seed(seed.trim()) {
                    return Err(ConfigError::Seed {
                        key: seed_key.to_owned(),
                        source,
                    });
                }
                out.auth = Some(JwtAuth {
                    jwt: jwt.trim().to_owned(),
                    seed: seed.trim().to_owned(),
                });
            }
        }

        if let Some((key, value)) = keys.get("tls_ca_file") {
            let path = PathBuf::from(value);
            if !path.is_file() {
                return Err(ConfigError::invalid(
                    key,
                    format!("`{value}` is not a readable file"),
                    "/etc/nats/ca.pem",
                ));
            }
            out.tls_ca_file = Some(path);
        }

        Ok(out)
    }

    /// The servers to connect to.
    pub fn servers(&self) -> Vec<String> {
        self.cluster_uri
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// The servers for messages and logs, with any password hidden.
    pub fn redacted_uri(&self) -> String {
        self.cluster_uri
            .split(',')
            .map(redact)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// `url` with any user-info part (`user:password@`) replaced by `***@`, for messages.
pub fn redact(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    match url[start..end].rfind('@') {
        Some(at) => format!("{}***{}", &url[..start], &url[start + at..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn parse(pairs: &[(&str, &str)]) -> Result<ConnectConfig, ConfigError> {
        let map = map(pairs);
        ConnectConfig::from_keys(&ConfigKeys::new(&map)?)
    }

    fn seed() -> String {
        nkeys::KeyPair::new_user()
            .seed()
            .expect("a fresh key pair has a seed")
    }

    #[test]
    fn defaults() {
        let config = parse(&[]).expect("empty");
        assert_eq!(config, ConnectConfig::default());
        assert_eq!(config.cluster_uri, "nats://127.0.0.1:4222");
        assert_eq!(config.request_timeout, Duration::from_secs(5));
        assert_eq!(config.servers(), ["nats://127.0.0.1:4222"]);
    }

    #[test]
    fn reads_every_key_in_any_case() {
        let seed = seed();
        let ca = tempfile::NamedTempFile::new().expect("temp file");
        let ca_path = ca.path().to_str().expect("utf-8 path");
        let config = parse(&[
            ("CLUSTER_URI", "nats://a:4222, nats://u:pw@b:4223"),
            ("Js_Domain", "hub"),
            ("client_jwt", "eyJhbGciOi.jwt"),
            ("CLIENT_SEED", &seed),
            ("tls_ca_file", ca_path),
        ])
        .expect("valid");
        assert_eq!(config.cluster_uri, "nats://a:4222,nats://u:pw@b:4223");
        assert_eq!(config.servers(), ["nats://a:4222", "nats://u:pw@b:4223"]);
        assert_eq!(config.redacted_uri(), "nats://a:4222,nats://***@b:4223");
        assert_eq!(config.js_domain.as_deref(), Some("hub"));
        assert_eq!(
            config.auth,
            Some(JwtAuth {
                jwt: "eyJhbGciOi.jwt".into(),
                seed: seed.clone()
            })
        );
        assert_eq!(config.tls_ca_file.as_deref(), Some(ca.path()));
        assert!(
            !format!("{config:?}").contains(&seed),
            "Debug hides the seed"
        );
    }

    #[test]
    fn unknown_keys_are_those_neither_the_connection_nor_the_backend_reads() {
        let map = map(&[
            ("CLUSTER_URI", "nats://a:4222"),
            ("Bucket", "b"),
            ("tls_ca", "-----BEGIN CERTIFICATE-----"),
            ("other", "x"),
        ]);
        let keys = ConfigKeys::new(&map).expect("keys");
        assert_eq!(keys.unknown(&["bucket"]), ["other", "tls_ca"]);
        assert_eq!(keys.get("bucket"), Some(("Bucket", "b")));
    }

    #[test]
    fn jwt_and_seed_come_together() {
        let err = parse(&[("client_jwt", "x")]).expect_err("half");
        assert!(err.to_string().contains("`client_seed`"), "{err}");
        let err = parse(&[("client_seed", &seed())]).expect_err("half");
        assert!(err.to_string().contains("`client_jwt`"), "{err}");
        let err = parse(&[("client_jwt", "x"), ("client_seed", "SUnotaseed")]).expect_err("bad");
        assert!(matches!(err, ConfigError::Seed { .. }), "{err:?}");
        assert!(err.to_string().contains("`client_seed`"), "{err}");
        assert!(err.source().is_some(), "keeps why nkeys refused it");
        let chain = format!("{err} {}", err.source().expect("source"));
        assert!(!chain.contains("SUnotaseed"), "{chain}");
    }

    #[test]
    fn bad_values_name_their_key_and_an_example() {
        for (key, value) in [
            ("cluster_uri", ""),
            ("cluster_uri", "http://:pw@host:4222"),
            ("js_domain", "a b"),
            ("js_domain", ""),
            ("client_seed", "SUnotaseed"),
            ("tls_ca_file", "/definitely/not/here.pem"),
        ] {
            let mut pairs = vec![(key, value)];
            if key == "client_seed" {
                pairs.push(("client_jwt", "eyJhbGciOi.jwt"));
            }
            let err = parse(&pairs).expect_err(&format!("{key}={value:?}"));
            let message = err.to_string();
            assert!(message.contains(&format!("`{key}`")), "{message}");
            assert!(message.contains("for example"), "{message}");
            assert!(!message.contains(":pw@"), "{message}");
        }
    }

    #[test]
    fn a_bad_server_url_keeps_its_cause() {
        let err = parse(&[("cluster_uri", "nats://a:4222,http://u:pw@b")]).expect_err("http");
        let ConfigError::ServerUrl { url, .. } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(url, "http://***@b");
        let cause = err.source().expect("source").to_string();
        assert!(cause.contains("scheme"), "{cause}");
    }

    #[test]
    fn a_key_twice_in_different_case_must_agree() {
        let same = map(&[("js_domain", "a"), ("JS_DOMAIN", "a")]);
        let keys = ConfigKeys::new(&same).expect("same");
        assert_eq!(
            ConnectConfig::from_keys(&keys)
                .expect("same")
                .js_domain
                .as_deref(),
            Some("a")
        );
        let different = map(&[("js_domain", "a"), ("JS_DOMAIN", "b")]);
        assert!(matches!(
            ConfigKeys::new(&different),
            Err(ConfigError::ConflictingKeys { .. })
        ));
    }

    #[test]
    fn booleans() {
        assert!(boolean("k", " TRUE ").expect("true"));
        assert!(!boolean("k", "false").expect("false"));
        assert!(!boolean("k", "").expect("empty"));
        let err = boolean("k", "maybe").expect_err("maybe");
        assert!(err.to_string().contains("`k`"), "{err}");
    }

    #[test]
    fn redact_hides_user_info() {
        assert_eq!(redact("nats://u:p@h:4222"), "nats://***@h:4222");
        assert_eq!(redact("nats://h:4222"), "nats://h:4222");
        assert_eq!(redact("u:p@h:4222"), "***@h:4222");
        assert_eq!(redact("nats://h:4222/p@th"), "nats://h:4222/p@th");
    }
}
