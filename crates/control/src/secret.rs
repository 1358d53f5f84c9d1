//! Secrets as the rest of Trellis sees them: a [`SecretReference`] (what a manifest's
//! `secrets:` entry says: which stored secret, which field, which version), carried as named
//! config whose name starts with [`SECRET_PREFIX`] exactly as wadm and wasmCloud v1 hosts
//! carry them, so that references travel wherever config names do (component config,
//! link source and target config, provider config) and a `SECRET_` name in `trellis config`
//! shows the reference, never a value; [`Sealed`], a value encrypted to the lattice's
//! secrets key, which is all that is ever stored or sent; [`SecretInfo`], what listing shows;
//! and [`SecretValue`], a revealed value, which never prints its contents.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Config names that are secret references start with this (then `_`), as in wasmCloud v1.
pub const SECRET_PREFIX: &str = "SECRET";

/// The `type` of a secret reference, as wadm writes it.
pub const SECRET_REFERENCE_TYPE: &str = "secret.wasmcloud.dev/v1alpha1";

/// The `type` of a policy that names a secrets backend, as wadm manifests write it.
pub const SECRET_POLICY_TYPE: &str = "policy.secret.wasmcloud.dev/v1alpha1";

/// Whether a config name is a secret reference.
pub fn is_secret_reference(config_name: &str) -> bool {
    config_name
        .strip_prefix(SECRET_PREFIX)
        .is_some_and(|rest| rest.starts_with('_'))
}

/// Checks that `key` can name a stored secret (and a key in a JetStream bucket); the error
/// says what is allowed.
pub fn check_key(key: &str) -> Result<(), String> {
    let ok = !key.is_empty()
        && key.len() < 256
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{key}` is not a valid secret name: use 1 to 255 letters, digits, `_`, `-` and `.`"
        ))
    }
}

/// What a manifest's `secrets:` entry asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretReference {
    /// The name the component asks `wasmcloud:secrets/store.get` for, or the config key a
    /// provider reads the value under.
    pub name: String,
    /// The stored secret's name (`trellis secret put KEY`).
    pub key: String,
    /// When set, the stored value is a JSON object and this is the field to use.
    pub field: Option<String>,
    /// When set, the version the stored secret must be at (versions count the puts: 1, 2, …).
    pub version: Option<String>,
    /// The policy's name in the manifest.
    pub policy: String,
    /// The policy's `backend` property.
    pub backend: String,
}

impl SecretReference {
    /// The config name under which this reference travels, unique per app and name.
    pub fn config_name(app: &str, name: &str) -> String {
        format!("{SECRET_PREFIX}_{app}_{name}")
    }

    /// The reference as named config, in the keys wasmCloud v1 writes.
    pub fn to_config(&self) -> BTreeMap<String, String> {
        let mut map = BTreeMap::from([
            ("name".to_owned(), self.name.clone()),
            ("type".to_owned(), SECRET_REFERENCE_TYPE.to_owned()),
            ("backend".to_owned(), self.backend.clone()),
            ("key".to_owned(), self.key.clone()),
            (
                "policy".to_owned(),
                serde_json::json!({
                    "type": SECRET_POLICY_TYPE,
                    "properties": {"name": self.policy, "backend": self.backend},
                })
                .to_string(),
            ),
        ]);
        if let Some(field) = &self.field {
            map.insert("field".to_owned(), field.clone());
        }
        if let Some(version) = &self.version {
            map.insert("version".to_owned(), version.clone());
        }
        map
    }

    /// Reads a reference back from named config; `None` when it lacks `name` or `key`.
    pub fn from_config(config: &BTreeMap<String, String>) -> Option<Self> {
        let policy = config
            .get("policy")
            .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
            .and_then(|p| p["properties"]["name"].as_str().map(str::to_owned))
            .unwrap_or_default();
        Some(Self {
            name: config.get("name")?.clone(),
            key: config.get("key")?.clone(),
            field: config.get("field").cloned(),
            version: config.get("version").cloned(),
            policy,
            backend: config.get("backend").cloned().unwrap_or_default(),
        })
    }
}

/// A secret's value encrypted to the lattice's secrets key: an nkeys curve ("xkey") box from
/// a one-time sender key, so that only a holder of the lattice's key opens it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    /// The one-time sender's public xkey.
    pub sender: String,
    /// The sealed bytes, base64 (standard alphabet, padded).
    pub sealed: String,
}

/// A stored secret as listings show it: never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretInfo {
    /// The secret's name.
    pub name: String,
    /// How many times it was put.
    pub version: u64,
    /// When it was last put (RFC 3339).
    pub updated: String,
}

/// A revealed secret: text or bytes, as it was stored. Its `Debug` shows only the kind and
/// length, so a value that reaches a log line or an error by mistake still does not leak.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretValue {
    /// A UTF-8 secret.
    String(String),
    /// A binary secret.
    Bytes(Vec<u8>),
}

impl SecretValue {
    /// The value's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            SecretValue::String(s) => s.as_bytes(),
            SecretValue::Bytes(b) => b,
        }
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretValue::String(s) => {
                write!(f, "SecretValue::String(<{} bytes redacted>)", s.len())
            }
            SecretValue::Bytes(b) => write!(f, "SecretValue::Bytes(<{} bytes redacted>)", b.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_value() {
        let s = format!("{:?}", SecretValue::String("hunter2".into()));
        assert!(!s.contains("hunter2"), "{s}");
        assert!(s.contains("7 bytes redacted"), "{s}");
        let b = format!("{:?}", SecretValue::Bytes(b"hunter2".to_vec()));
        assert!(!b.contains("104"), "{b}");
    }

    #[test]
    fn references_round_trip_through_config() {
        let r = SecretReference {
            name: "api_password".into(),
            key: "api_password".into(),
            field: Some("pw".into()),
            version: Some("2".into()),
            policy: "nats-kv".into(),
            backend: "nats-kv".into(),
        };
        let config = r.to_config();
        assert_eq!(config["type"], SECRET_REFERENCE_TYPE);
        assert_eq!(SecretReference::from_config(&config), Some(r));
        assert!(is_secret_reference("SECRET_app_api_password"));
        assert!(!is_secret_reference("SECRETS"));
        assert!(!is_secret_reference("db"));
    }
}
