//! [`NatsBlobConfig`]: the wasmCloud `blobstore-nats` config keys, read from a string map.

use async_nats::ServerAddr;
use async_nats::jetstream::stream::StorageType;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The NATS server(s) used when the config names none.
pub const DEFAULT_CLUSTER_URI: &str = "nats://127.0.0.1:4222";
/// How long one metadata request to NATS may take (create, look up, delete, list).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long moving one object's data may take (write, read, copy, move), by default:
/// wasmCloud's `max_write_wait` default.
pub const DEFAULT_MAX_WRITE_WAIT: Duration = Duration::from_secs(30);
/// The most replicas JetStream keeps of a stream.
const MAX_REPLICAS: usize = 5;

/// Keys this backend reads; any other key is reported in [`NatsBlobConfig::ignored`].
const KNOWN: &[&str] = &[
    "cluster_uri",
    "js_domain",
    "client_jwt",
    "client_seed",
    "tls_ca_file",
    "max_write_wait",
    "max_age",
    "storage_type",
    "num_replicas",
    "compression",
];

/// A bad NATS blobstore configuration. Messages never contain the seed.
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

/// How new containers (object-store buckets) are stored: wasmCloud's storage keys. They
/// apply when a container is created; existing buckets keep their settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storage {
    /// `max_age` (seconds): objects older than this are removed by the server; zero keeps
    /// them for ever.
    pub max_age: Duration,
    /// `storage_type`: `file` or `memory`.
    pub storage_type: StorageType,
    /// `num_replicas`: copies kept in a NATS cluster, 1 to 5.
    pub num_replicas: usize,
    /// `compression`: whether the server compresses the bucket's stream (S2; NATS 2.10+).
    pub compression: bool,
}

impl Default for Storage {
    fn default() -> Self {
        Self {
            max_age: Duration::ZERO,
            storage_type: StorageType::File,
            num_replicas: 1,
            compression: false,
        }
    }
}

/// Where the NATS object store is and how to reach it; see the [crate docs](crate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsBlobConfig {
    /// `cluster_uri`: one or more server URLs, comma-separated.
    pub cluster_uri: String,
    /// `js_domain`: the JetStream domain, if not the local one.
    pub js_domain: Option<String>,
    /// `client_jwt` and `client_seed`, if the server wants JWT authentication.
    pub auth: Option<JwtAuth>,
    /// `tls_ca_file`: a PEM file of CA certificates to trust for TLS.
    pub tls_ca_file: Option<PathBuf>,
    /// `max_write_wait` (seconds): how long moving one object's data may take.
    pub max_write_wait: Duration,
    /// The storage of containers this backend creates.
    pub storage: Storage,
    /// How long one metadata request may take (not a config key;
    /// [`DEFAULT_REQUEST_TIMEOUT`]).
    pub request_timeout: Duration,
    /// Keys that were present but that this backend does not use, for the host to warn about
    /// (`tls_ca`, inline PEM, is one: give the CA as `tls_ca_file`).
    pub ignored: Vec<String>,
}

impl Default for NatsBlobConfig {
    fn default() -> Self {
        Self {
            cluster_uri: DEFAULT_CLUSTER_URI.to_owned(),
            js_domain: None,
            auth: None,
            tls_ca_file: None,
            max_write_wait: DEFAULT_MAX_WRITE_WAIT,
            storage: Storage::default(),
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

fn seconds(key: &str, value: &str, example: &'static str) -> Result<Duration, ConfigError> {
    value
        .trim()
        .parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| {
            invalid(
                key,
                format!("`{value}` is not a whole number of seconds"),
                example,
            )
        })
}

fn boolean(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" | "" => Ok(false),
        _ => Err(invalid(
            key,
            format!("`{value}` is neither `true` nor `false`"),
            "true",
        )),
    }
}

impl NatsBlobConfig {
    /// Reads the config map; keys match case-insensitively. See the [crate docs](crate).
    pub fn from_config(config: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let folded = Folded::new(config)?;
        let mut out = NatsBlobConfig::default();

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

        if let Some((key, value)) = folded.get("max_write_wait") {
            let wait = seconds(key, value, "30")?;
            if wait.is_zero() {
                return Err(invalid(key, "zero seconds would fail every write", "30"));
            }
            out.max_write_wait = wait;
        }

        if let Some((key, value)) = folded.get("max_age") {
            out.storage.max_age = seconds(key, value, "86400 (a day; 0 keeps objects for ever)")?;
        }

        if let Some((key, value)) = folded.get("storage_type") {
            // wasmCloud also accepts the enum's numbers.
            out.storage.storage_type = match value.trim().to_ascii_lowercase().as_str() {
                "file" | "0" => StorageType::File,
                "memory" | "1" => StorageType::Memory,
                _ => {
                    return Err(invalid(
                        key,
                        format!("`{value}` is neither `file` nor `memory`"),
                        "file",
                    ));
                }
            };
        }

        if let Some((key, value)) = folded.get("num_replicas") {
            out.storage.num_replicas = match value.trim().parse::<usize>() {
                Ok(n) if (1..=MAX_REPLICAS).contains(&n) => n,
                _ => {
                    return Err(invalid(
                        key,
                        format!("`{value}` is not a number of replicas from 1 to {MAX_REPLICAS}"),
                        "1 (3 in a three-server cluster)",
                    ));
                }
            };
        }

        if let Some((key, value)) = folded.get("compression") {
            out.storage.compression = boolean(key, value)?;
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

    #[test]
    fn defaults() {
        let config = NatsBlobConfig::from_config(&BTreeMap::new()).expect("empty");
        assert_eq!(config, NatsBlobConfig::default());
        assert_eq!(config.cluster_uri, "nats://127.0.0.1:4222");
        assert_eq!(config.max_write_wait, Duration::from_secs(30));
        assert_eq!(config.storage.storage_type, StorageType::File);
        assert_eq!(config.storage.num_replicas, 1);
        assert_eq!(config.storage.max_age, Duration::ZERO);
        assert!(!config.storage.compression);
    }

    #[test]
    fn reads_every_key_in_any_case_and_reports_unknown_ones() {
        let seed = nkeys::KeyPair::new_user().seed().expect("seed");
        let config = NatsBlobConfig::from_config(&map(&[
            ("CLUSTER_URI", "nats://a:4222, nats://b:4223"),
            ("js_domain", "hub"),
            ("client_jwt", "eyJhbGciOi.jwt"),
            ("CLIENT_SEED", &seed),
            ("max_write_wait", "60"),
            ("Max_Age", "3600"),
            ("storage_type", "Memory"),
            ("num_replicas", "3"),
            ("compression", "true"),
            ("tls_ca", "-----BEGIN CERTIFICATE-----"),
            ("bucket", "x"),
        ]))
        .expect("valid");
        assert_eq!(config.cluster_uri, "nats://a:4222,nats://b:4223");
        assert_eq!(config.js_domain.as_deref(), Some("hub"));
        assert_eq!(
            config.auth,
            Some(JwtAuth {
                jwt: "eyJhbGciOi.jwt".into(),
                seed: seed.clone()
            })
        );
        assert_eq!(config.max_write_wait, Duration::from_secs(60));
        assert_eq!(
            config.storage,
            Storage {
                max_age: Duration::from_secs(3600),
                storage_type: StorageType::Memory,
                num_replicas: 3,
                compression: true,
            }
        );
        assert_eq!(config.ignored, ["bucket", "tls_ca"]);
        assert!(
            !format!("{config:?}").contains(&seed),
            "Debug hides the seed"
        );
        let numeric = NatsBlobConfig::from_config(&map(&[("storage_type", "1")])).expect("1");
        assert_eq!(numeric.storage.storage_type, StorageType::Memory);
    }

    #[test]
    fn bad_values_name_their_key_and_an_example() {
        for (key, value) in [
            ("cluster_uri", ""),
            ("cluster_uri", "http://:pw@host:4222"),
            ("js_domain", "a b"),
            ("tls_ca_file", "/definitely/not/here.pem"),
            ("max_write_wait", "soon"),
            ("max_write_wait", "0"),
            ("max_age", "-1"),
            ("storage_type", "disk"),
            ("num_replicas", "0"),
            ("num_replicas", "6"),
            ("compression", "s2"),
        ] {
            let err = NatsBlobConfig::from_config(&map(&[(key, value)]))
                .expect_err(&format!("{key}={value:?}"));
            let message = err.to_string();
            assert!(message.contains(&format!("`{key}`")), "{message}");
            assert!(message.contains("for example"), "{message}");
            assert!(!message.contains(":pw@"), "{message}");
        }
    }

    #[test]
    fn jwt_and_seed_come_together() {
        let err = NatsBlobConfig::from_config(&map(&[("client_jwt", "x")])).expect_err("half");
        assert!(err.to_string().contains("`client_seed`"), "{err}");
        let err = NatsBlobConfig::from_config(&map(&[
            ("client_jwt", "x"),
            ("client_seed", "SUnotaseed"),
        ]))
        .expect_err("bad seed");
        assert!(!err.to_string().contains("SUnotaseed"), "{err}");
    }

    #[test]
    fn a_key_twice_in_different_case_must_agree() {
        let different = map(&[("max_age", "1"), ("MAX_AGE", "2")]);
        assert!(matches!(
            NatsBlobConfig::from_config(&different),
            Err(ConfigError::ConflictingKeys { .. })
        ));
    }

    #[test]
    fn redact_hides_user_info() {
        assert_eq!(redact("nats://u:p@h:4222"), "nats://***@h:4222");
        assert_eq!(redact("nats://h:4222"), "nats://h:4222");
    }
}
