//! [`NatsKvConfig`]: the wasmCloud `keyvalue-nats` config keys, read from a string map.

use async_nats::ServerAddr;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The NATS server(s) used when the config names none.
pub const DEFAULT_CLUSTER_URI: &str = "nats://127.0.0.1:4222";
/// The JetStream key-value bucket used when the config names none.
pub const DEFAULT_BUCKET: &str = "trellis";
/// How long one request to NATS may take, by default.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Keys this backend reads; any other key is reported in [`NatsKvConfig::ignored`].
const KNOWN: &[&str] = &[
    "cluster_uri",
    "bucket",
    "js_domain",
    "client_jwt",
    "client_seed",
    "enable_bucket_auto_create",
    "tls_ca_file",
];

/// A bad NATS key-value configuration. Messages never contain the seed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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

/// Where the NATS key-value bucket is and how to reach it; see the [crate docs](crate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsKvConfig {
    /// `cluster_uri`: one or more server URLs, comma-separated.
    pub cluster_uri: String,
    /// `bucket`: the JetStream key-value bucket every identifier opens.
    pub bucket: String,
    /// `js_domain`: the JetStream domain, if not the local one.
    pub js_domain: Option<String>,
    /// `client_jwt` and `client_seed`, if the server wants JWT authentication.
    pub auth: Option<JwtAuth>,
    /// `tls_ca_file`: a PEM file of CA certificates to trust for TLS.
    pub tls_ca_file: Option<PathBuf>,
    /// `enable_bucket_auto_create`: create the bucket if it does not exist.
    pub auto_create: bool,
    /// How long one request may take (not a config key; [`DEFAULT_REQUEST_TIMEOUT`]).
    pub request_timeout: Duration,
    /// Keys that were present but that this backend does not use, for the host to warn about
    /// (`tls_ca`, inline PEM, is one: give the CA as `tls_ca_file`).
    pub ignored: Vec<String>,
}

impl Default for NatsKvConfig {
    fn default() -> Self {
        Self {
            cluster_uri: DEFAULT_CLUSTER_URI.to_owned(),
            bucket: DEFAULT_BUCKET.to_owned(),
            js_domain: None,
            auth: None,
            tls_ca_file: None,
            auto_create: false,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            ignored: Vec::new(),
        }
    }
}

/// The config map with keys folded to lower case, remembering how each was written.
struct Folded<'a> {
    values: BTreeMap<String, (&'a str, &'a str)>,
}

impl<'a> Folded<'a> {
    fn new(config: &'a BTreeMap<String, String>) -> Result<Self, ConfigError> {
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
    fn get(&self, key: &str) -> Option<(&'a str, &'a str)> {
        self.values.get(key).copied()
    }
}

fn invalid(key: &str, problem: impl Into<String>, example: &'static str) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        problem: problem.into(),
        example,
    }
}

impl NatsKvConfig {
    /// Reads the config map; keys match case-insensitively. See the [crate docs](crate).
    pub fn from_config(config: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let folded = Folded::new(config)?;
        let mut out = NatsKvConfig::default();

        if let Some((key, value)) = folded.get("cluster_uri") {
            let example = "nats://127.0.0.1:4222 or nats://a:4222,nats://b:4222";
            let servers: Vec<&str> = value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            if servers.is_empty() {
                return Err(invalid(key, "no server URL given", example));
            }
            for server in &servers {
                if let Err(e) = server.parse::<ServerAddr>() {
                    return Err(invalid(
                        key,
                        format!("`{}` is not a NATS server URL ({e})", redact(server)),
                        example,
                    ));
                }
            }
            out.cluster_uri = servers.join(",");
        }

        if let Some((key, value)) = folded.get("bucket") {
            let valid = !value.is_empty()
                && value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !valid {
                return Err(invalid(
                    key,
                    format!(
                        "`{value}` is not a valid bucket name (letters, digits, `_` and `-` only)"
                    ),
                    "trellis",
                ));
            }
            out.bucket = value.to_owned();
        }

        if let Some((key, value)) = folded.get("js_domain") {
            let valid = !value.is_empty()
                && value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !valid {
                return Err(invalid(
                    key,
                    format!("`{value}` is not a JetStream domain name"),
                    "hub",
                ));
            }
            out.js_domain = Some(value.to_owned());
        }

        match (folded.get("client_jwt"), folded.get("client_seed")) {
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
                    return Err(invalid(jwt_key, "the JWT is empty", "eyJ0eXAiOiJKV1Qi…"));
                }
                if let Err(e) = nkeys::KeyPair::from_seed(seed.trim()) {
                    return Err(invalid(
                        seed_key,
                        format!("not a valid nkey seed ({e})"),
                        "SUAB… (a user seed, 58 characters)",
                    ));
                }
                out.auth = Some(JwtAuth {
                    jwt: jwt.trim().to_owned(),
                    seed: seed.trim().to_owned(),
                });
            }
        }

        if let Some((key, value)) = folded.get("enable_bucket_auto_create") {
            out.auto_create = match value.trim().to_ascii_lowercase().as_str() {
                "true" => true,
                "false" | "" => false,
                _ => {
                    return Err(invalid(
                        key,
                        format!("`{value}` is neither `true` nor `false`"),
                        "true",
                    ));
                }
            };
        }

        if let Some((key, value)) = folded.get("tls_ca_file") {
            let path = PathBuf::from(value);
            if !path.is_file() {
                return Err(invalid(
                    key,
                    format!("`{value}` is not a readable file"),
                    "/etc/nats/ca.pem",
                ));
            }
            out.tls_ca_file = Some(path);
        }

        out.ignored = folded
            .values
            .iter()
            .filter(|(k, _)| !KNOWN.contains(&k.as_str()))
            .map(|(_, (written, _))| (*written).to_owned())
            .collect();
        Ok(out)
    }
}

/// `url` with any user-info part (`user:password@`) replaced by `***@`, for messages.
pub(crate) fn redact(url: &str) -> String {
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

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn seed() -> String {
        nkeys::KeyPair::new_user()
            .seed()
            .expect("a fresh key pair has a seed")
    }

    #[test]
    fn defaults() {
        let config = NatsKvConfig::from_config(&BTreeMap::new()).expect("empty");
        assert_eq!(config, NatsKvConfig::default());
        assert_eq!(config.cluster_uri, "nats://127.0.0.1:4222");
        assert_eq!(config.bucket, "trellis");
        assert!(!config.auto_create);
    }

    #[test]
    fn reads_every_key_in_any_case_and_reports_unknown_ones() {
        let seed = seed();
        let config = NatsKvConfig::from_config(&map(&[
            ("CLUSTER_URI", "nats://a:4222, nats://b:4223"),
            ("Bucket", "my_bucket-1"),
            ("js_domain", "hub"),
            ("client_jwt", "eyJhbGciOi.jwt"),
            ("CLIENT_SEED", &seed),
            ("enable_bucket_auto_create", "TRUE"),
            ("tls_ca", "-----BEGIN CERTIFICATE-----"),
            ("other", "x"),
        ]))
        .expect("valid");
        assert_eq!(config.cluster_uri, "nats://a:4222,nats://b:4223");
        assert_eq!(config.bucket, "my_bucket-1");
        assert_eq!(config.js_domain.as_deref(), Some("hub"));
        assert_eq!(
            config.auth,
            Some(JwtAuth {
                jwt: "eyJhbGciOi.jwt".into(),
                seed: seed.clone()
            })
        );
        assert!(config.auto_create);
        assert_eq!(config.ignored, ["other", "tls_ca"]);
        assert!(
            !format!("{config:?}").contains(&seed),
            "Debug hides the seed"
        );
    }

    #[test]
    fn jwt_and_seed_come_together() {
        let err = NatsKvConfig::from_config(&map(&[("client_jwt", "x")])).expect_err("half");
        assert!(err.to_string().contains("`client_seed`"), "{err}");
        let err = NatsKvConfig::from_config(&map(&[("client_seed", &seed())])).expect_err("half");
        assert!(err.to_string().contains("`client_jwt`"), "{err}");
        let err =
            NatsKvConfig::from_config(&map(&[("client_jwt", "x"), ("client_seed", "SUnotaseed")]))
                .expect_err("bad seed");
        assert!(err.to_string().contains("`client_seed`"), "{err}");
        assert!(!err.to_string().contains("SUnotaseed"), "{err}");
    }

    #[test]
    fn bad_values_name_their_key_and_an_example() {
        for (key, value) in [
            ("cluster_uri", ""),
            ("cluster_uri", "http://:pw@host:4222"),
            ("bucket", "has.dot"),
            ("bucket", ""),
            ("js_domain", "a b"),
            ("enable_bucket_auto_create", "maybe"),
            ("tls_ca_file", "/definitely/not/here.pem"),
        ] {
            let err = NatsKvConfig::from_config(&map(&[(key, value)]))
                .expect_err(&format!("{key}={value:?}"));
            let message = err.to_string();
            assert!(message.contains(&format!("`{key}`")), "{message}");
            assert!(message.contains("for example"), "{message}");
            assert!(!message.contains(":pw@"), "{message}");
        }
    }

    #[test]
    fn a_key_twice_in_different_case_must_agree() {
        let same = map(&[("bucket", "a"), ("BUCKET", "a")]);
        assert_eq!(NatsKvConfig::from_config(&same).expect("same").bucket, "a");
        let different = map(&[("bucket", "a"), ("BUCKET", "b")]);
        assert!(matches!(
            NatsKvConfig::from_config(&different),
            Err(ConfigError::ConflictingKeys { .. })
        ));
    }

    #[test]
    fn redact_hides_user_info() {
        assert_eq!(redact("nats://u:p@h:4222"), "nats://***@h:4222");
        assert_eq!(redact("nats://h:4222"), "nats://h:4222");
        assert_eq!(redact("u:p@h:4222"), "***@h:4222");
    }
}
