//! Lattice-wide state in JetStream KV, in the buckets wasmCloud v1 hosts use, so that links
//! and config put through any host reach every host, including ones that join later:
//!
//! - `LATTICEDATA_{lattice}`: `COMPONENT_{source_id}` → `{"url": image_ref, "links": [...]}`;
//! - `CONFIGDATA_{lattice}`: config name → JSON string map.
//!
//! Reads go to the bucket every time (no cache), so there is nothing to keep in sync.
//! Embedded mode, with no NATS, keeps the same state in memory ([`LatticeState::in_memory`]).

use async_nats::jetstream::{self, kv};
use futures::StreamExt as _;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use trellis_control::Link;

/// Why a state operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// JetStream refused or did not answer.
    #[error("lattice state in JetStream bucket `{bucket}`: {reason}")]
    JetStream {
        /// The bucket.
        bucket: String,
        /// What went wrong.
        reason: String,
    },
    /// The stored value is not what Trellis or wasmCloud writes.
    #[error(
        "lattice state key `{key}` holds a value that is not valid JSON of the expected shape: {reason}"
    )]
    Corrupt {
        /// The key.
        key: String,
        /// The parse error.
        reason: String,
    },
    /// The link conflicts with one already set.
    #[error("{0}")]
    Conflict(String),
}

/// The value under `COMPONENT_{id}`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct ComponentLinks {
    #[serde(default)]
    url: String,
    #[serde(default)]
    links: Vec<Link>,
}

/// Handles to both buckets, or the in-memory stand-in of embedded mode.
#[derive(Clone)]
pub struct LatticeState {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    JetStream(Box<JetStreamState>),
    Memory(std::sync::Arc<std::sync::Mutex<MemoryState>>),
}

#[derive(Default)]
struct MemoryState {
    config: BTreeMap<String, BTreeMap<String, String>>,
    components: BTreeMap<String, ComponentLinks>,
}

#[derive(Clone)]
struct JetStreamState {
    links: kv::Store,
    config: kv::Store,
    links_bucket: String,
    config_bucket: String,
}

/// What `nats kv add BUCKET` makes; built by hand because `create_key_value` needs account
/// info that NATS servers before 2.10 do not send.
fn bucket_stream(bucket: &str) -> jetstream::stream::Config {
    jetstream::stream::Config {
        name: format!("KV_{bucket}"),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: 1,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: jetstream::stream::DiscardPolicy::New,
        num_replicas: 1,
        storage: jetstream::stream::StorageType::File,
        ..Default::default()
    }
}

pub(crate) async fn open_bucket(
    js: &jetstream::Context,
    bucket: &str,
) -> Result<kv::Store, StateError> {
    let err = |reason: String| StateError::JetStream {
        bucket: bucket.to_owned(),
        reason,
    };
    if let Ok(store) = js.get_key_value(bucket).await {
        return Ok(store);
    }
    if let Err(e) = js.get_or_create_stream(bucket_stream(bucket)).await {
        // Hosts starting together race to create the bucket: the loser is told the subjects
        // overlap with the stream the winner just made, which is the bucket it wanted.
        for _ in 0..20 {
            if let Ok(store) = js.get_key_value(bucket).await {
                return Ok(store);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        return Err(err(format!(
            "cannot create it: {e}; is JetStream enabled on the server (`nats-server -js`)?"
        )));
    }
    js.get_key_value(bucket)
        .await
        .map_err(|e| err(e.to_string()))
}

impl LatticeState {
    /// Opens (creating when missing) the buckets of `lattice`.
    pub async fn open(client: async_nats::Client, lattice: &str) -> Result<Self, StateError> {
        let js = jetstream::new(client);
        let links_bucket = format!("LATTICEDATA_{lattice}");
        let config_bucket = format!("CONFIGDATA_{lattice}");
        Ok(Self {
            backend: Backend::JetStream(Box::new(JetStreamState {
                links: open_bucket(&js, &links_bucket).await?,
                config: open_bucket(&js, &config_bucket).await?,
                links_bucket,
                config_bucket,
            })),
        })
    }

    /// State kept in this process only, for embedded mode.
    pub fn in_memory() -> Self {
        Self {
            backend: Backend::Memory(Default::default()),
        }
    }

    /// Stores named config, replacing any previous values.
    pub async fn put_config(
        &self,
        name: &str,
        values: &BTreeMap<String, String>,
    ) -> Result<(), StateError> {
        match &self.backend {
            Backend::JetStream(js) => js.put_config(name, values).await,
            Backend::Memory(m) => {
                lock(m).config.insert(name.to_owned(), values.clone());
                Ok(())
            }
        }
    }

    /// Named config, if it exists.
    pub async fn get_config(
        &self,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, StateError> {
        match &self.backend {
            Backend::JetStream(js) => js.get_config(name).await,
            Backend::Memory(m) => Ok(lock(m).config.get(name).cloned()),
        }
    }

    /// Deletes named config; deleting a missing one succeeds.
    pub async fn delete_config(&self, name: &str) -> Result<(), StateError> {
        match &self.backend {
            Backend::JetStream(js) => js.delete_config(name).await,
            Backend::Memory(m) => {
                lock(m).config.remove(name);
                Ok(())
            }
        }
    }

    /// Adds or replaces a link (same source, namespace, package and name). A link that would
    /// send an interface the source already links elsewhere under the same name is refused.
    pub async fn put_link(&self, link: &Link) -> Result<(), StateError> {
        match &self.backend {
            Backend::JetStream(js) => js.put_link(link).await,
            Backend::Memory(m) => {
                let mut state = lock(m);
                let value = state.components.entry(link.source_id.clone()).or_default();
                merge_link(&mut value.links, link)
            }
        }
    }

    /// Removes the link of `source_id` with this namespace, package and name, if any.
    pub async fn delete_link(
        &self,
        source_id: &str,
        name: &str,
        wit_namespace: &str,
        wit_package: &str,
    ) -> Result<Option<Link>, StateError> {
        match &self.backend {
            Backend::JetStream(js) => {
                js.delete_link(source_id, name, wit_namespace, wit_package)
                    .await
            }
            Backend::Memory(m) => {
                let mut state = lock(m);
                let Some(value) = state.components.get_mut(source_id) else {
                    return Ok(None);
                };
                Ok(take_link(
                    &mut value.links,
                    name,
                    wit_namespace,
                    wit_package,
                ))
            }
        }
    }

    /// Every link in the lattice.
    pub async fn links(&self) -> Result<Vec<Link>, StateError> {
        match &self.backend {
            Backend::JetStream(js) => js.links().await,
            Backend::Memory(m) => Ok(lock(m)
                .components
                .values()
                .flat_map(|c| c.links.clone())
                .collect()),
        }
    }
}

fn lock(m: &std::sync::Mutex<MemoryState>) -> std::sync::MutexGuard<'_, MemoryState> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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

impl JetStreamState {
    fn links_err(&self, e: impl std::fmt::Display) -> StateError {
        StateError::JetStream {
            bucket: self.links_bucket.clone(),
            reason: e.to_string(),
        }
    }

    fn config_err(&self, e: impl std::fmt::Display) -> StateError {
        StateError::JetStream {
            bucket: self.config_bucket.clone(),
            reason: e.to_string(),
        }
    }

    /// Stores named config, replacing any previous values.
    pub async fn put_config(
        &self,
        name: &str,
        values: &BTreeMap<String, String>,
    ) -> Result<(), StateError> {
        let body = serde_json::to_vec(values).map_err(|e| self.config_err(e))?;
        self.config
            .put(name, body.into())
            .await
            .map_err(|e| self.config_err(e))?;
        Ok(())
    }

    /// Named config, if it exists.
    pub async fn get_config(
        &self,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, StateError> {
        match self
            .config
            .get(name)
            .await
            .map_err(|e| self.config_err(e))?
        {
            None => Ok(None),
            Some(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| StateError::Corrupt {
                        key: name.to_owned(),
                        reason: e.to_string(),
                    })
            }
        }
    }

    /// Deletes named config; deleting a missing one succeeds.
    pub async fn delete_config(&self, name: &str) -> Result<(), StateError> {
        self.config
            .delete(name)
            .await
            .map_err(|e| self.config_err(e))
    }

    async fn read_component(&self, key: &str) -> Result<(ComponentLinks, u64), StateError> {
        match self.links.entry(key).await.map_err(|e| self.links_err(e))? {
            Some(entry) if entry.operation == kv::Operation::Put => {
                let value =
                    serde_json::from_slice(&entry.value).map_err(|e| StateError::Corrupt {
                        key: key.to_owned(),
                        reason: e.to_string(),
                    })?;
                Ok((value, entry.revision))
            }
            Some(entry) => Ok((ComponentLinks::default(), entry.revision)),
            None => Ok((ComponentLinks::default(), 0)),
        }
    }

    /// Adds or replaces a link (same source, namespace, package and name). A link that would
    /// send an interface the source already links elsewhere under the same name is refused.
    pub async fn put_link(&self, link: &Link) -> Result<(), StateError> {
        let key = format!("COMPONENT_{}", link.source_id);
        // Compare-and-set so that two hosts putting links for one source at once both land.
        for _ in 0..10 {
            let (mut value, revision) = self.read_component(&key).await?;
            merge_link(&mut value.links, link)?;
            let body = serde_json::to_vec(&value).map_err(|e| self.links_err(e))?;
            let written = if revision == 0 {
                self.links
                    .create(&key, body.into())
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            } else {
                self.links
                    .update(&key, body.into(), revision)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            };
            match written {
                Ok(()) => return Ok(()),
                Err(e) => tracing::debug!(%key, error = %e, "link update raced; retrying"),
            }
        }
        Err(self.links_err(format!(
            "`{key}` kept changing while the link was being put"
        )))
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
        for _ in 0..10 {
            let (mut value, revision) = self.read_component(&key).await?;
            let Some(removed) = take_link(&mut value.links, name, wit_namespace, wit_package)
            else {
                return Ok(None);
            };
            let body = serde_json::to_vec(&value).map_err(|e| self.links_err(e))?;
            match self.links.update(&key, body.into(), revision).await {
                Ok(_) => return Ok(Some(removed)),
                Err(e) => tracing::debug!(%key, error = %e, "link delete raced; retrying"),
            }
        }
        Err(self.links_err(format!(
            "`{key}` kept changing while the link was being deleted"
        )))
    }

    /// Every link in the lattice.
    pub async fn links(&self) -> Result<Vec<Link>, StateError> {
        let mut keys = self.links.keys().await.map_err(|e| self.links_err(e))?;
        let mut names = Vec::new();
        while let Some(key) = keys.next().await {
            let key = key.map_err(|e| self.links_err(e))?;
            if key.starts_with("COMPONENT_") {
                names.push(key);
            }
        }
        let mut links = Vec::new();
        for key in names {
            links.extend(self.read_component(&key).await?.0.links);
        }
        Ok(links)
    }
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
        assert_eq!(removed.map(|l| l.target), Some("back".to_owned()));
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
