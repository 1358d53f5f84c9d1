//! [`NatsBlobConfig`]: the wasmCloud `blobstore-nats` config keys, read from a string map.

use async_nats::jetstream::stream::StorageType;
use std::collections::BTreeMap;
use std::time::Duration;
use trellis_nats_connect::{ConfigError, ConfigKeys, ConnectConfig, boolean};

/// How long moving one object's data may take (write, read, copy, move), by default:
/// wasmCloud's `max_write_wait` default.
pub const DEFAULT_MAX_WRITE_WAIT: Duration = Duration::from_secs(30);
/// The most replicas JetStream keeps of a stream.
const MAX_REPLICAS: usize = 5;

/// Keys this backend reads besides the connection keys ([`ConnectConfig::KEYS`]); any other
/// key is reported in [`NatsBlobConfig::ignored`].
const OWN_KEYS: &[&str] = &[
    "max_write_wait",
    "max_age",
    "storage_type",
    "num_replicas",
    "compression",
];

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
    /// The servers and how to reach them: `cluster_uri`, `js_domain`, `client_jwt`,
    /// `client_seed`, `tls_ca_file`; its `request_timeout` bounds every metadata request.
    pub connection: ConnectConfig,
    /// `max_write_wait` (seconds): how long moving one object's data may take.
    pub max_write_wait: Duration,
    /// The storage of containers this backend creates.
    pub storage: Storage,
    /// Keys that were present but that this backend does not use, for the host to warn about
    /// (`tls_ca`, inline PEM, is one: give the CA as `tls_ca_file`).
    pub ignored: Vec<String>,
}

impl Default for NatsBlobConfig {
    fn default() -> Self {
        Self {
            connection: ConnectConfig::default(),
            max_write_wait: DEFAULT_MAX_WRITE_WAIT,
            storage: Storage::default(),
            ignored: Vec::new(),
        }
    }
}

fn seconds(key: &str, value: &str, example: &'static str) -> Result<Duration, ConfigError> {
    value
        .trim()
        .parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| {
            ConfigError::invalid(
                key,
                format!("`{value}` is not a whole number of seconds"),
                example,
            )
        })
}

impl NatsBlobConfig {
    /// Reads the config map; keys match case-insensitively. See the [crate docs](crate).
    pub fn from_config(config: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let keys = ConfigKeys::new(config)?;
        let mut out = NatsBlobConfig {
            connection: ConnectConfig::from_keys(&keys)?,
            ..NatsBlobConfig::default()
        };

        if let Some((key, value)) = keys.get("max_write_wait") {
            let wait = seconds(key, value, "30")?;
            if wait.is_zero() {
                return Err(ConfigError::invalid(
                    key,
                    "zero seconds would fail every write",
                    "30",
                ));
            }
            out.max_write_wait = wait;
        }

        if let Some((key, value)) = keys.get("max_age") {
            out.storage.max_age = seconds(key, value, "86400 (a day; 0 keeps objects for ever)")?;
        }

        if let Some((key, value)) = keys.get("storage_type") {
            // wasmCloud also accepts the enum's numbers.
            out.storage.storage_type = match value.trim().to_ascii_lowercase().as_str() {
                "file" | "0" => StorageType::File,
                "memory" | "1" => StorageType::Memory,
                _ => {
                    return Err(ConfigError::invalid(
                        key,
                        format!("`{value}` is neither `file` nor `memory`"),
                        "file",
                    ));
                }
            };
        }

        if let Some((key, value)) = keys.get("num_replicas") {
            out.storage.num_replicas = match value.trim().parse::<usize>() {
                Ok(n) if (1..=MAX_REPLICAS).contains(&n) => n,
                _ => {
                    return Err(ConfigError::invalid(
                        key,
                        format!("`{value}` is not a number of replicas from 1 to {MAX_REPLICAS}"),
                        "1 (3 in a three-server cluster)",
                    ));
                }
            };
        }

        if let Some((key, value)) = keys.get("compression") {
            out.storage.compression = boolean(key, value)?;
        }

        out.ignored = keys.unknown(OWN_KEYS);
        Ok(out)
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
        assert_eq!(config.connection.cluster_uri, "nats://127.0.0.1:4222");
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
        assert_eq!(config.connection.cluster_uri, "nats://a:4222,nats://b:4223");
        assert_eq!(config.connection.js_domain.as_deref(), Some("hub"));
        assert!(config.connection.auth.is_some());
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
        // The connection keys' errors are trellis-nats-connect's; one shows they come through.
        for (key, value) in [
            ("cluster_uri", "http://:pw@host:4222"),
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
    fn a_key_twice_in_different_case_must_agree() {
        let different = map(&[("max_age", "1"), ("MAX_AGE", "2")]);
        assert!(matches!(
            NatsBlobConfig::from_config(&different),
            Err(ConfigError::ConflictingKeys { .. })
        ));
    }
}
