//! Lattice-wide state in JetStream KV, in the buckets wasmCloud v1 hosts use, so that links
//! and config put through any host reach every host, including ones that join later:
//!
//! - `LATTICEDATA_{lattice}`: `COMPONENT_{source_id}` → `{"url": image_ref, "links": [...]}`;
//! - `LATTICEDATA_{lattice}`: `CLAIMS_{subject}` → the claims of a signed component
//!   ([`StoredClaims`]), written when a host starts it, as wasmCloud v1 hosts do;
//! - `CONFIGDATA_{lattice}`: config name → JSON string map.
//!
//! Reads go to the bucket every time (no cache), so there is nothing to keep in sync.
//! Embedded mode, with no NATS, keeps the same keys and values in memory
//! ([`LatticeState::in_memory`]); both go through [`crate::kv`], so each operation here is
//! written once.

use crate::kv::{Kv, KvError};
use async_nats::jetstream;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use trellis_control::Link;
use trellis_control::claims::StoredClaims;

/// Why a state operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The bucket could not be read or written.
    #[error("lattice state")]
    Store(#[from] KvError),
    /// Another host kept changing a key while this one tried to change it.
    #[error(
        "lattice state in JetStream bucket `{bucket}`: `{key}` kept changing while the link was being {doing}"
    )]
    Busy {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
        /// `put` or `deleted`.
        doing: &'static str,
    },
    /// The stored value is not what Trellis or wasmCloud writes.
    #[error("lattice state key `{key}` holds a value that is not valid JSON of the expected shape")]
    Corrupt {
        /// The key.
        key: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A value could not be encoded (which plain strings and links never fail).
    #[error("cannot encode the value of lattice state key `{key}`")]
    Encode {
        /// The key.
        key: String,
        /// The encoding error.
        #[source]
        source: serde_json::Error,
    },
    /// The link conflicts with one already set.
    #[error("{0}")]
    Conflict(String),
    /// Embedded mode's config file could not be read back.
    #[error("cannot {what} {}: is it the named config file Trellis wrote (`trellis config put --local`)?", file.display())]
    LocalFile {
        /// What was being done.
        what: &'static str,
        /// The file.
        file: std::path::PathBuf,
        /// The I/O or parse error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl From<crate::kv::LoadError> for StateError {
    fn from(crate::kv::LoadError { what, file, source }: crate::kv::LoadError) -> Self {
        StateError::LocalFile { what, file, source }
    }
}

/// The value under `COMPONENT_{id}`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct ComponentLinks {
    #[serde(default)]
    url: String,
    #[serde(default)]
    links: Vec<Link>,
}

/// The links and config of a lattice, in JetStream or in memory; cheap to clone.
#[derive(Clone)]
pub struct LatticeState {
    links: Kv,
    config: Kv,
    links_bucket: String,
}

/// How many times a link change is tried while other hosts change the same source's links.
const ATTEMPTS: usize = 10;

/// The key-value bucket of `lattice`'s links (wasmCloud's name for it).
pub fn links_bucket(lattice: &str) -> String {
    format!("LATTICEDATA_{lattice}")
}

/// The key-value bucket of `lattice`'s named config (wasmCloud's name for it).
pub fn config_bucket(lattice: &str) -> String {
    format!("CONFIGDATA_{lattice}")
}

impl LatticeState {
    /// Opens (creating when missing) the buckets of `lattice`.
    pub async fn open(client: async_nats::Client, lattice: &str) -> Result<Self, StateError> {
        let js = jetstream::new(client);
        let links_bucket = links_bucket(lattice);
        let config_bucket = config_bucket(lattice);
        Ok(Self {
            links: Kv::open(&js, &links_bucket).await?,
            config: Kv::open(&js, &config_bucket).await?,
            links_bucket,
        })
    }

    /// State kept in this process only, for embedded mode.
    pub fn in_memory() -> Self {
        Self {
            links: Kv::in_memory(),
            config: Kv::in_memory(),
            links_bucket: "memory".into(),
        }
    }

    /// Embedded mode's state with its named config kept in `config_file` between runs (so
    /// that `trellis config put --local` can store config before `trellis up` starts);
    /// links are in memory, as the manifest makes them again on every start.
    pub fn local(config_file: &std::path::Path) -> Result<Self, StateError> {
        Ok(Self {
            links: Kv::in_memory(),
            config: Kv::local(config_file)?,
            links_bucket: "memory".into(),
        })
    }

    /// Stores named config, replacing any previous values.
    pub async fn put_config(
        &self,
        name: &str,
        values: &BTreeMap<String, String>,
    ) -> Result<(), StateError> {
        let body = serde_json::to_vec(values).map_err(|source| StateError::Encode {
            key: name.to_owned(),
            source,
        })?;
        Ok(self.config.put(name, body).await?)
    }

    /// Named config, if it exists.
    pub async fn get_config(
        &self,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, StateError> {
        match self.config.get(name).await? {
            None => Ok(None),
            Some((_, bytes)) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|source| StateError::Corrupt {
                        key: name.to_owned(),
                        source,
                    })
            }
        }
    }

    /// Deletes named config; deleting a missing one succeeds.
    pub async fn delete_config(&self, name: &str) -> Result<(), StateError> {
        Ok(self.config.delete(name).await?)
    }

    /// The links of the component under `key`, and the revision to swap against.
    async fn read_component(&self, key: &str) -> Result<(ComponentLinks, Option<u64>), StateError> {
        match self.links.get(key).await? {
            Some((revision, bytes)) => {
                let value =
                    serde_json::from_slice(&bytes).map_err(|source| StateError::Corrupt {
                        key: key.to_owned(),
                        source,
                    })?;
                Ok((value, Some(revision)))
            }
            None => Ok((ComponentLinks::default(), None)),
        }
    }

    /// Writes a component's links if nobody changed them since `revision`.
    async fn write_component(
        &self,
        key: &str,
        value: &ComponentLinks,
        revision: Option<u64>,
    ) -> Result<bool, StateError> {
        let body = serde_json::to_vec(value).map_err(|source| StateError::Encode {
            key: key.to_owned(),
            source,
        })?;
        Ok(self.links.swap(key, revision, body).await?)
    }

    fn busy(&self, key: String, doing: &'static str) -> StateError {
        StateError::Busy {
            bucket: self.links_bucket.clone(),
            key,
            doing,
        }
    }

    /// Adds or replaces a link (same source, namespace, package and name). A link that would
    /// send an interface the source already links elsewhere under the same name is refused.
    pub async fn put_link(&self, link: &Link) -> Result<(), StateError> {
        let key = format!("COMPONENT_{}", link.source_id);
        // Compare-and-set so that two hosts putting links for one source at once both land.
        for _ in 0..ATTEMPTS {
            let (mut value, revision) = self.read_component(&key).await?;
            merge_link(&mut value.links, link)?;
            if self.write_component(&key, &value, revision).await? {
                return Ok(());
            }
            tracing::debug!(%key, "link update raced; retrying");
        }
        Err(self.busy(key, "put"))
    }

    /// Removes the link of `source_id` with this namespace, package and name, if any.
    pub async fn delete_link(
        &self,
        source_id: &str,
        name: &str,
        wit_namespace: &str,
        wit_package: &str,
    ) -> Result<Option<Link>, StateError> {
        let key = format!("COMPONENT_{source_id}");
        for _ in 0..ATTEMPTS {
            let (mut value, revision) = self.read_component(&key).await?;
            let Some(removed) = take_link(&mut value.links, name, wit_namespace, wit_package)
            else {
                return Ok(None);
            };
            if self.write_component(&key, &value, revision).await? {
                return Ok(Some(removed));
            }
            tracing::debug!(%key, "link delete raced; retrying");
        }
        Err(self.busy(key, "deleted"))
    }

    /// Records the claims of a signed component started somewhere on the lattice, under
    /// `CLAIMS_{subject}` (replacing what an earlier signature of the same subject said).
    pub async fn put_claims(&self, claims: &StoredClaims) -> Result<(), StateError> {
        let key = format!("CLAIMS_{}", claims.subject);
        let body = serde_json::to_vec(claims).map_err(|source| StateError::Encode {
            key: key.clone(),
            source,
        })?;
        Ok(self.links.put(&key, body).await?)
    }

    /// The claims of every signed component started on the lattice so far (a cache, as in
    /// wasmCloud v1: claims stay after their component stops). A value that is not claims
    /// is skipped with a warning rather than failing the whole answer.
    pub async fn claims(&self) -> Result<Vec<StoredClaims>, StateError> {
        let mut all = Vec::new();
        for key in self.links.keys().await? {
            if !key.starts_with("CLAIMS_") {
                continue;
            }
            let Some((_, bytes)) = self.links.get(&key).await? else {
                continue;
            };
            match serde_json::from_slice(&bytes) {
                Ok(claims) => all.push(claims),
                Err(e) => {
                    tracing::warn!(%key, "skipping lattice state that is not component claims: {e}")
                }
            }
        }
        Ok(all)
    }

    /// Every link in the lattice.
    pub async fn links(&self) -> Result<Vec<Link>, StateError> {
        let mut links = Vec::new();
        for key in self.links.keys().await? {
            if key.starts_with("COMPONENT_") {
                links.extend(self.read_component(&key).await?.0.links);
            }
        }
        Ok(links)
    }
}

/// Puts `link` into a source's links, replacing the one with the same name and package and
/// refusing one that would send an interface elsewhere under the same name.
fn merge_link(links: &mut Vec<Link>, link: &Link) -> Result<(), StateError> {
    let same = |l: &Link| {
        l.name == link.name
            && l.wit_namespace == link.wit_namespace
            && l.wit_package == link.wit_package
    };
    if let Some(existing) = links.iter().find(|l| {
        same(l)
            && l.target != link.target
            && l.interfaces.iter().any(|i| link.interfaces.contains(i))
    }) {
        return Err(StateError::Conflict(format!(
            "`{}` already links {}:{} (link name `{}`) to `{}`; delete that link first or use another link name",
            link.source_id, link.wit_namespace, link.wit_package, link.name, existing.target
        )));
    }
    links.retain(|l| !same(l));
    links.push(link.clone());
    Ok(())
}

fn take_link(
    links: &mut Vec<Link>,
    name: &str,
    wit_namespace: &str,
    wit_package: &str,
) -> Option<Link> {
    let pos = links.iter().position(|l| {
        l.name.as_str() == name && l.wit_namespace == wit_namespace && l.wit_package == wit_package
    })?;
    Some(links.remove(pos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use trellis_control::LinkName;

    fn link(target: &str, interfaces: &[&str]) -> Link {
        Link {
            source_id: "front".into(),
            target: target.into(),
            name: LinkName::new("default"),
            wit_namespace: "example".into(),
            wit_package: "greeter".into(),
            interfaces: interfaces.iter().map(|s| s.to_string()).collect(),
            source_config: vec![],
            target_config: vec![],
        }
    }

    #[tokio::test]
    async fn links_replace_refuse_conflicts_and_delete() {
        let state = LatticeState::in_memory();
        state
            .put_link(&link("back", &["greet"]))
            .await
            .expect("put");
        state
            .put_link(&link("back", &["greet", "wave"]))
            .await
            .expect("same target replaces");
        assert_eq!(state.links().await.expect("links").len(), 1);
        let err = state
            .put_link(&link("other", &["wave"]))
            .await
            .expect_err("conflict");
        assert!(err.to_string().contains("already links"), "{err}");
        let removed = state
            .delete_link("front", "default", "example", "greeter")
            .await
            .expect("delete");
        assert_eq!(
            removed.map(|l| l.target.to_string()),
            Some("back".to_owned())
        );
        assert!(state.links().await.expect("links").is_empty());
        assert_eq!(
            state
                .delete_link("front", "default", "example", "greeter")
                .await
                .expect("delete"),
            None
        );
    }

    #[tokio::test]
    async fn claims_round_trip_beside_links() {
        let state = LatticeState::in_memory();
        state
            .put_link(&link("back", &["greet"]))
            .await
            .expect("put link");
        assert!(state.claims().await.expect("claims").is_empty());
        let claims = StoredClaims {
            issuer: "AISSUER".into(),
            subject: "MSUBJECT".into(),
            name: "hello".into(),
            revision: "1".into(),
            ..StoredClaims::default()
        };
        state.put_claims(&claims).await.expect("put claims");
        state.put_claims(&claims).await.expect("put again");
        assert_eq!(state.claims().await.expect("claims"), [claims]);
        assert_eq!(state.links().await.expect("links").len(), 1);
    }

    #[tokio::test]
    async fn config_round_trips() {
        let state = LatticeState::in_memory();
        assert_eq!(state.get_config("db").await.expect("get"), None);
        let values = BTreeMap::from([("url".to_owned(), "redis://x".to_owned())]);
        state.put_config("db", &values).await.expect("put");
        assert_eq!(state.get_config("db").await.expect("get"), Some(values));
        state.delete_config("db").await.expect("delete");
        assert_eq!(state.get_config("db").await.expect("get"), None);
    }
}
