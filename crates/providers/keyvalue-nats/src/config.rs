//! [`NatsKvConfig`]: the wasmCloud `keyvalue-nats` config keys, read from a string map.

use std::collections::BTreeMap;
use trellis_nats_connect::{ConfigError, ConfigKeys, ConnectConfig, boolean, is_jetstream_name};

/// The JetStream key-value bucket used when the config names none.
pub const DEFAULT_BUCKET: &str = "trellis";

/// Keys this backend reads besides the connection keys ([`ConnectConfig::KEYS`]); any other
/// key is reported in [`NatsKvConfig::ignored`].
const OWN_KEYS: &[&str] = &["bucket", "enable_bucket_auto_create"];

/// Where the NATS key-value bucket is and how to reach it; see the [crate docs](crate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsKvConfig {
    /// The servers and how to reach them: `cluster_uri`, `js_domain`, `client_jwt`,
    /// `client_seed`, `tls_ca_file`; its `request_timeout` bounds every request.
    pub connection: ConnectConfig,
    /// `bucket`: the JetStream key-value bucket every identifier opens.
    pub bucket: String,
    /// `enable_bucket_auto_create`: create the bucket if it does not exist.
    pub auto_create: bool,
    /// Keys that were present but that this backend does not use, for the host to warn about
    /// (`tls_ca`, inline PEM, is one: give the CA as `tls_ca_file`).
    pub ignored: Vec<String>,
}

impl Default for NatsKvConfig {
    fn default() -> Self {
        Self {
            connection: ConnectConfig::default(),
            bucket: DEFAULT_BUCKET.to_owned(),
            auto_create: false,
            ignored: Vec::new(),
        }
    }
}

impl NatsKvConfig {
    /// Reads the config map; keys match case-insensitively. See the [crate docs](crate).
    pub fn from_config(config: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let keys = ConfigKeys::new(config)?;
        let connection = ConnectConfig::from_keys(&keys)?;

        let bucket = match keys.get("bucket") {
            Some((key, value)) => {
                if !is_jetstream_name(value) {
                    return Err(ConfigError::invalid(
                        key,
                        format!(
                            "`{value}` is not a valid bucket name (letters, digits, `_` and `-` \
                             only)"
                        ),
                        "trellis",
                    ));
                }
                value.to_owned()
            }
            None => DEFAULT_BUCKET.to_owned(),
        };

        let auto_create = match keys.get("enable_bucket_auto_create") {
            Some((key, value)) => boolean(key, value)?,
            None => false,
        };

        Ok(NatsKvConfig {
            connection,
            bucket,
            auto_create,
            ignored: keys.unknown(OWN_KEYS),
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

    #[test]
    fn defaults() {
        let config = NatsKvConfig::from_config(&BTreeMap::new()).expect("empty");
        assert_eq!(config, NatsKvConfig::default());
        assert_eq!(config.connection.cluster_uri, "nats://127.0.0.1:4222");
        assert_eq!(config.bucket, "trellis");
        assert!(!config.auto_create);
        assert!(config.ignored.is_empty());
    }

    #[test]
    fn reads_every_key_in_any_case_and_reports_unknown_ones() {
        let seed = nkeys::KeyPair::new_user().seed().expect("seed");
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
        assert_eq!(config.connection.cluster_uri, "nats://a:4222,nats://b:4223");
        assert_eq!(config.connection.js_domain.as_deref(), Some("hub"));
        assert!(config.connection.auth.is_some());
        assert_eq!(config.bucket, "my_bucket-1");
        assert!(config.auto_create);
        assert_eq!(config.ignored, ["other", "tls_ca"]);
        assert!(
            !format!("{config:?}").contains(&seed),
            "Debug hides the seed"
        );
    }

    #[test]
    fn bad_values_name_their_key_and_an_example() {
        // The connection keys' errors are trellis-nats-connect's; one shows they come through.
        for (key, value) in [
            ("cluster_uri", "http://:pw@host:4222"),
            ("bucket", "has.dot"),
            ("bucket", ""),
            ("enable_bucket_auto_create", "maybe"),
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
}
