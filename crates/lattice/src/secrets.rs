//! The secret store: secret values encrypted at rest, and the key that opens them.
//!
//! Values are sealed to the lattice's **secrets key**, an nkeys curve key ("xkey", the kind
//! wasmCloud's secrets backends use): anyone may seal with its public key, only a holder of
//! its seed opens. The CLI seals a value before it leaves the user's machine
//! ([`seal`]), the store keeps only [`Sealed`] values, and a host opens them
//! ([`SecretsKey::open`]) when it starts a component or provider that references them.
//!
//! - On a lattice the store is the JetStream KV bucket `TRELLIS_SECRETS_{lattice}`: the key
//!   `public-key` holds the lattice's public xkey (recorded by the first host started with
//!   the seed), `secret.{name}` each sealed value. The seed is held by hosts only (`trellis
//!   host --secrets-key`, `TRELLIS_SECRETS_KEY`), never written to the bucket.
//! - Embedded (`trellis up`) the store is `.trellis/secrets.json` beside the manifest, with
//!   its seed in `.trellis/secrets.key` (mode 0600), created on first use. The file is read
//!   on every operation, so `trellis secret put --local` can write it with or without a
//!   running `trellis up`.

use crate::kv::{Kv, KvError};
use async_nats::jetstream;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use nkeys::XKey;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use trellis_control::secret::{Sealed, SecretInfo, SecretReference, SecretValue};

/// Why a secrets operation failed. No variant ever carries a secret's value.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// The bucket could not be read or written.
    #[error("secret store")]
    Store(#[from] KvError),
    /// The local store's files could not be read or written.
    #[error("secret store {}: cannot {what}", file.display())]
    File {
        /// What was being done.
        what: &'static str,
        /// The file.
        file: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A stored entry is not what Trellis writes.
    #[error("secret store: `{0}` is damaged (not a sealed secret Trellis wrote)")]
    Corrupt(String),
    /// The text is not an nkeys curve seed or public key.
    #[error(
        "{what} is not a valid secrets key: expected an nkeys curve {kind} (starts with `{prefix}`); generate one with `trellis secret keygen`"
    )]
    BadKey {
        /// Which key.
        what: String,
        /// `seed` or `public key`.
        kind: &'static str,
        /// `SX` or `X`.
        prefix: &'static str,
    },
    /// No secrets key has been set up where the store is.
    #[error(
        "no secrets key is set up for this lattice: start a host with `--secrets-key SEED` (or TRELLIS_SECRETS_KEY); `trellis secret keygen` makes a seed"
    )]
    NoKey,
    /// The host's seed does not belong to the store's public key.
    #[error(
        "this host's secrets key (public key {ours}) is not the one the lattice's secrets are sealed to ({theirs}): start every host with the same TRELLIS_SECRETS_KEY"
    )]
    WrongKey {
        /// The host's public key.
        ours: String,
        /// The store's.
        theirs: String,
    },
    /// Sealing or opening failed (a wrong key, or damaged data).
    #[error(
        "secret `{0}` cannot be decrypted with this host's secrets key (was it sealed to another lattice's key?)"
    )]
    Open(String),
    /// Sealing failed.
    #[error("cannot seal the secret: {0}")]
    Seal(String),
    /// The name cannot be a secret's name (the text says why).
    #[error("{0}")]
    BadName(String),
}

/// A lattice's secrets key with its seed: what opens sealed values.
#[derive(Clone)]
pub struct SecretsKey(XKey);

impl std::fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretsKey({})", self.public_key())
    }
}

impl SecretsKey {
    /// A new random key.
    pub fn generate() -> Self {
        Self(XKey::new())
    }

    /// The key with this seed (`SX…`).
    pub fn from_seed(seed: &str) -> Result<Self, SecretsError> {
        XKey::from_seed(seed.trim())
            .map(Self)
            .map_err(|_| SecretsError::BadKey {
                what: "the seed".into(),
                kind: "seed",
                prefix: "SX",
            })
    }

    /// The seed, to keep somewhere safe.
    pub fn seed(&self) -> String {
        self.0.seed().unwrap_or_default()
    }

    /// The public key values are sealed to (`X…`).
    pub fn public_key(&self) -> String {
        self.0.public_key()
    }

    /// Opens a value sealed to this key; `name` is only for the error.
    pub fn open(&self, name: &str, sealed: &Sealed) -> Result<SecretValue, SecretsError> {
        let fail = || SecretsError::Open(name.to_owned());
        let sender = XKey::from_public_key(&sealed.sender).map_err(|_| fail())?;
        let bytes = BASE64.decode(&sealed.sealed).map_err(|_| fail())?;
        let plain = self.0.open(&bytes, &sender).map_err(|_| fail())?;
        decode_plain(&plain).ok_or_else(fail)
    }
}

/// Seals `value` to the public key `recipient` with a one-time sender key.
pub fn seal(recipient: &str, value: &SecretValue) -> Result<Sealed, SecretsError> {
    let recipient = XKey::from_public_key(recipient.trim()).map_err(|_| SecretsError::BadKey {
        what: format!("`{recipient}`"),
        kind: "public key",
        prefix: "X",
    })?;
    let sender = XKey::new();
    let sealed = sender
        .seal(&encode_plain(value), &recipient)
        .map_err(|e| SecretsError::Seal(e.to_string()))?;
    Ok(Sealed {
        sender: sender.public_key(),
        sealed: BASE64.encode(sealed),
    })
}

/// A value before sealing: a kind byte, then the bytes.
fn encode_plain(value: &SecretValue) -> Vec<u8> {
    let (kind, bytes) = match value {
        SecretValue::String(s) => (b's', s.as_bytes()),
        SecretValue::Bytes(b) => (b'b', b.as_slice()),
    };
    let mut out = Vec::with_capacity(bytes.len() + 1);
    out.push(kind);
    out.extend_from_slice(bytes);
    out
}

fn decode_plain(plain: &[u8]) -> Option<SecretValue> {
    match plain.split_first()? {
        (b's', rest) => String::from_utf8(rest.to_vec())
            .ok()
            .map(SecretValue::String),
        (b'b', rest) => Some(SecretValue::Bytes(rest.to_vec())),
        _ => None,
    }
}

/// One stored secret: its sealed value and when it was put.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredSecret {
    /// How many times it was put.
    pub version: u64,
    /// When it was last put (RFC 3339).
    pub updated: String,
    /// The value.
    #[serde(flatten)]
    pub sealed: Sealed,
}

/// Checks that `name` can name a secret.
pub fn check_name(name: &str) -> Result<(), SecretsError> {
    trellis_control::secret::check_key(name).map_err(SecretsError::BadName)
}

const PUBLIC_KEY: &str = "public-key";
const SECRET_KEY_PREFIX: &str = "secret.";

/// Where the sealed secrets live; cheap to clone.
#[derive(Clone)]
pub struct SecretStore {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Bucket(Kv),
    /// The folder holding `secrets.json` and `secrets.key`.
    Local(PathBuf),
}

/// The local store's file: entries by the same keys as the bucket's.
type LocalEntries = BTreeMap<String, String>;

/// The key-value bucket of `lattice`'s sealed secrets.
pub fn bucket(lattice: &str) -> String {
    format!("TRELLIS_SECRETS_{lattice}")
}

impl SecretStore {
    /// The lattice's bucket, created when missing.
    pub async fn open(client: async_nats::Client, lattice: &str) -> Result<Self, SecretsError> {
        let js = jetstream::new(client);
        Ok(Self {
            backend: Backend::Bucket(Kv::open(&js, &bucket(lattice)).await?),
        })
    }

    /// The store of embedded mode in `dir` (a project's `.trellis` folder).
    pub fn local(dir: &Path) -> Self {
        Self {
            backend: Backend::Local(dir.to_owned()),
        }
    }

    /// The secrets key of a local store, created (mode 0600) when missing; `None` for a
    /// lattice's bucket, whose seed only hosts hold.
    pub fn local_key(&self) -> Result<Option<SecretsKey>, SecretsError> {
        let Backend::Local(dir) = &self.backend else {
            return Ok(None);
        };
        let file = dir.join("secrets.key");
        let io = |what, source| SecretsError::File {
            what,
            file: file.clone(),
            source,
        };
        match std::fs::read_to_string(&file) {
            Ok(seed) => SecretsKey::from_seed(&seed)
                .map(Some)
                .map_err(|_| SecretsError::BadKey {
                    what: file.display().to_string(),
                    kind: "seed",
                    prefix: "SX",
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir).map_err(|e| io("create its folder", e))?;
                let key = SecretsKey::generate();
                write_private(&file, key.seed().as_bytes()).map_err(|e| io("write", e))?;
                Ok(Some(key))
            }
            Err(e) => Err(io("read", e)),
        }
    }

    /// The public key values must be sealed to.
    pub async fn public_key(&self) -> Result<String, SecretsError> {
        match &self.backend {
            Backend::Local(_) => Ok(self.local_key()?.ok_or(SecretsError::NoKey)?.public_key()),
            Backend::Bucket(_) => match self.read(PUBLIC_KEY).await? {
                Some(key) => Ok(String::from_utf8_lossy(&key).into_owned()),
                None => Err(SecretsError::NoKey),
            },
        }
    }

    /// Makes `key` the lattice's secrets key if it has none, and checks it is the same
    /// otherwise: a host started with a different seed could open nothing.
    pub async fn adopt_key(&self, key: &SecretsKey) -> Result<(), SecretsError> {
        let Backend::Bucket(kv) = &self.backend else {
            return Ok(());
        };
        let ours = key.public_key();
        if !kv.swap(PUBLIC_KEY, None, ours.clone().into_bytes()).await? {
            let theirs = self.public_key().await?;
            if theirs != ours {
                return Err(SecretsError::WrongKey { ours, theirs });
            }
        }
        Ok(())
    }

    /// Stores a sealed value under `name`; returns its new version.
    pub async fn put(&self, name: &str, sealed: Sealed) -> Result<u64, SecretsError> {
        check_name(name)?;
        let key = format!("{SECRET_KEY_PREFIX}{name}");
        let version = match self.get(name).await? {
            Some(previous) => previous.version + 1,
            None => 1,
        };
        let updated = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let entry = StoredSecret {
            version,
            updated,
            sealed,
        };
        let body = serde_json::to_vec(&entry).map_err(|_| SecretsError::Corrupt(key.clone()))?;
        self.write(&key, Some(body)).await?;
        Ok(version)
    }

    /// The sealed value under `name`, if any.
    pub async fn get(&self, name: &str) -> Result<Option<StoredSecret>, SecretsError> {
        check_name(name)?;
        let key = format!("{SECRET_KEY_PREFIX}{name}");
        match self.read(&key).await? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|_| SecretsError::Corrupt(key)),
        }
    }

    /// Deletes `name`; `false` when there was no such secret.
    pub async fn delete(&self, name: &str) -> Result<bool, SecretsError> {
        let existed = self.get(name).await?.is_some();
        if existed {
            self.write(&format!("{SECRET_KEY_PREFIX}{name}"), None)
                .await?;
        }
        Ok(existed)
    }

    /// Every stored secret, by name, without values.
    pub async fn list(&self) -> Result<Vec<SecretInfo>, SecretsError> {
        let names: Vec<String> = match &self.backend {
            Backend::Bucket(kv) => kv.keys().await?,
            Backend::Local(_) => self.read_local()?.into_keys().collect(),
        }
        .into_iter()
        .filter_map(|k| k.strip_prefix(SECRET_KEY_PREFIX).map(str::to_owned))
        .collect();
        let mut out = Vec::new();
        for name in names {
            if let Some(s) = self.get(&name).await? {
                out.push(SecretInfo {
                    name,
                    version: s.version,
                    updated: s.updated,
                });
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Fetches and opens what `reference` asks for with `key`. The error says what is
    /// missing or wrong and how to fix it, never the value.
    pub async fn reveal(
        &self,
        key: Option<&SecretsKey>,
        reference: &SecretReference,
    ) -> Result<SecretValue, String> {
        let r = reference;
        let stored = match self.get(&r.key).await {
            Ok(Some(s)) => s,
            Ok(None) => {
                return Err(format!(
                    "secret `{}` is not stored; put it with `trellis secret put {}` (value on stdin)",
                    r.key, r.key
                ));
            }
            Err(e) => return Err(trellis_control::error_text(&e)),
        };
        if let Some(wanted) = &r.version
            && wanted.trim_start_matches('v') != stored.version.to_string()
        {
            return Err(format!(
                "secret `{}` is at version {}, but version {wanted} is asked for; remove `version` to use the latest",
                r.key, stored.version
            ));
        }
        let key = key.ok_or_else(|| {
            "this host holds no secrets key, so it cannot open secrets: start it with `--secrets-key SEED` (or TRELLIS_SECRETS_KEY), the same seed as the lattice's other hosts".to_owned()
        })?;
        let value = key
            .open(&r.key, &stored.sealed)
            .map_err(|e| trellis_control::error_text(&e))?;
        let Some(field) = &r.field else {
            return Ok(value);
        };
        let object: Option<serde_json::Map<String, serde_json::Value>> =
            serde_json::from_slice(value.as_bytes()).ok();
        let Some(object) = object else {
            return Err(format!(
                "secret `{}` is not a JSON object, so its field `{field}` cannot be read; store a JSON object or remove `field`",
                r.key
            ));
        };
        match object.get(field) {
            Some(serde_json::Value::String(s)) => Ok(SecretValue::String(s.clone())),
            Some(other) => Ok(SecretValue::String(other.to_string())),
            None => Err(format!(
                "secret `{}` has no field `{field}` (it has {} field(s))",
                r.key,
                object.len()
            )),
        }
    }

    async fn read(&self, key: &str) -> Result<Option<Vec<u8>>, SecretsError> {
        match &self.backend {
            Backend::Bucket(kv) => Ok(kv.get(key).await?.map(|(_, v)| v)),
            Backend::Local(_) => Ok(self.read_local()?.remove(key).map(String::into_bytes)),
        }
    }

    async fn write(&self, key: &str, value: Option<Vec<u8>>) -> Result<(), SecretsError> {
        match &self.backend {
            Backend::Bucket(kv) => match value {
                Some(v) => Ok(kv.put(key, v).await?),
                None => Ok(kv.delete(key).await?),
            },
            Backend::Local(dir) => {
                let mut entries = self.read_local()?;
                match value {
                    Some(v) => {
                        entries.insert(key.to_owned(), String::from_utf8_lossy(&v).into_owned())
                    }
                    None => entries.remove(key),
                };
                let file = dir.join("secrets.json");
                let io = |what, source| SecretsError::File {
                    what,
                    file: file.clone(),
                    source,
                };
                std::fs::create_dir_all(dir).map_err(|e| io("create its folder", e))?;
                let body = serde_json::to_vec_pretty(&entries).unwrap_or_default();
                let tmp = dir.join("secrets.json.tmp");
                write_private(&tmp, &body)
                    .and_then(|()| std::fs::rename(&tmp, &file))
                    .map_err(|e| io("write", e))
            }
        }
    }

    fn read_local(&self) -> Result<LocalEntries, SecretsError> {
        let Backend::Local(dir) = &self.backend else {
            return Ok(LocalEntries::new());
        };
        let file = dir.join("secrets.json");
        match std::fs::read(&file) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|_| SecretsError::Corrupt(file.display().to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(LocalEntries::new()),
            Err(source) => Err(SecretsError::File {
                what: "read",
                file,
                source,
            }),
        }
    }
}

/// Writes `file` readable by its owner only.
fn write_private(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(file)?.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_the_key_they_were_sealed_to() {
        let key = SecretsKey::generate();
        let value = SecretValue::String("hunter2".into());
        let sealed = seal(&key.public_key(), &value).expect("seal");
        assert!(!sealed.sealed.contains("hunter2"));
        assert_eq!(key.open("pw", &sealed).expect("open"), value);
        let other = SecretsKey::generate();
        let err = other.open("pw", &sealed).expect_err("wrong key");
        assert!(err.to_string().contains("cannot be decrypted"), "{err}");
        let again = SecretsKey::from_seed(&key.seed()).expect("seed");
        assert_eq!(again.public_key(), key.public_key());
        let bytes = SecretValue::Bytes(vec![0, 1, 255]);
        assert_eq!(
            key.open("b", &seal(&key.public_key(), &bytes).expect("seal"))
                .expect("open"),
            bytes
        );
    }

    #[tokio::test]
    async fn the_local_store_keeps_sealed_values_versions_and_a_private_key() {
        let dir = tempfile::tempdir().expect("dir");
        let store = SecretStore::local(dir.path());
        let key = store.local_key().expect("key").expect("local key");
        let public = store.public_key().await.expect("public");
        assert_eq!(public, key.public_key());
        let value = SecretValue::String("s3cr3t-value".into());
        let v1 = store
            .put("db", seal(&public, &value).expect("seal"))
            .await
            .expect("put");
        let v2 = store
            .put("db", seal(&public, &value).expect("seal"))
            .await
            .expect("put");
        assert_eq!((v1, v2), (1, 2));
        let on_disk = std::fs::read_to_string(dir.path().join("secrets.json")).expect("file");
        assert!(!on_disk.contains("s3cr3t-value"), "{on_disk}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join("secrets.key"))
                .expect("key file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "the key file is private: {mode:o}");
        }
        let reference = SecretReference {
            name: "password".into(),
            key: "db".into(),
            field: None,
            version: None,
            policy: "p".into(),
            backend: "nats-kv".into(),
        };
        assert_eq!(
            store.reveal(Some(&key), &reference).await.expect("reveal"),
            value
        );
        let old = SecretReference {
            version: Some("1".into()),
            ..reference.clone()
        };
        let err = store
            .reveal(Some(&key), &old)
            .await
            .expect_err("old version");
        assert!(err.contains("at version 2"), "{err}");
        let list = store.list().await.expect("list");
        assert_eq!(list.len(), 1);
        assert_eq!((list[0].name.as_str(), list[0].version), ("db", 2));
        assert!(store.delete("db").await.expect("delete"));
        let err = store
            .reveal(Some(&key), &reference)
            .await
            .expect_err("gone");
        assert!(err.contains("trellis secret put db"), "{err}");
        assert!(matches!(
            store.put("a b", seal(&public, &value).expect("seal")).await,
            Err(SecretsError::BadName(_))
        ));
    }

    #[tokio::test]
    async fn fields_are_read_from_json_secrets() {
        let dir = tempfile::tempdir().expect("dir");
        let store = SecretStore::local(dir.path());
        let key = store.local_key().expect("key").expect("local");
        let json = SecretValue::String(r#"{"user":"app","password":"pw-123"}"#.into());
        store
            .put("creds", seal(&key.public_key(), &json).expect("seal"))
            .await
            .expect("put");
        let reference = SecretReference {
            name: "pw".into(),
            key: "creds".into(),
            field: Some("password".into()),
            version: None,
            policy: "p".into(),
            backend: "b".into(),
        };
        assert_eq!(
            store.reveal(Some(&key), &reference).await.expect("field"),
            SecretValue::String("pw-123".into())
        );
        let missing = SecretReference {
            field: Some("token".into()),
            ..reference
        };
        let err = store
            .reveal(Some(&key), &missing)
            .await
            .expect_err("no field");
        assert!(
            err.contains("no field `token`") && !err.contains("pw-123"),
            "{err}"
        );
    }
}
