//! An in-memory backend: fast, shared by every component linked to the same provider, and
//! gone when the process stops. Each bucket identifier is its own keyspace.
//!
//! A watch sees a key's changes in every bucket, each reported with the bucket it happened
//! in. Writes report while they hold the bucket's lock, so changes to a key arrive in the
//! order they were applied. Deleting a key that is not there changes nothing and reports
//! nothing.

use crate::watch::{Change, Changes, Watchers};
use crate::{Bucket, Error, HealthError, KeyPage, KeyValue, add_counter, parse_counter};
use async_trait::async_trait;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

/// The in-memory store.
#[derive(Default)]
pub struct MemoryStore {
    buckets: Mutex<HashMap<String, Arc<MemoryBucket>>>,
    watchers: Arc<Watchers>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl KeyValue for MemoryStore {
    async fn open(&self, identifier: &str) -> Result<Arc<dyn Bucket>, Error> {
        let mut buckets = lock(&self.buckets);
        let bucket = buckets
            .entry(identifier.to_owned())
            .or_insert_with(|| {
                Arc::new(MemoryBucket {
                    identifier: identifier.to_owned(),
                    entries: Mutex::default(),
                    watchers: self.watchers.clone(),
                })
            })
            .clone();
        Ok(bucket)
    }

    async fn health(&self) -> Result<(), HealthError> {
        Ok(())
    }

    async fn watch(
        &self,
        keys: BTreeSet<String>,
        capacity: usize,
        source: &str,
    ) -> Result<Changes, Error> {
        Ok(self.watchers.add(keys, capacity, source))
    }
}

// Every change here is one map operation, so the map is whole whatever a panicking holder
// of the lock was doing.
use trellis_provider::lock;

/// One keyspace. Keys are kept sorted so that list cursors are stable offsets.
pub struct MemoryBucket {
    identifier: String,
    entries: Mutex<BTreeMap<String, Vec<u8>>>,
    watchers: Arc<Watchers>,
}

impl MemoryBucket {
    fn entries(&self) -> MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        lock(&self.entries)
    }

    /// Reports that `key` now holds `value`; called with the entries locked.
    fn changed(&self, key: &str, value: &[u8]) {
        if self.watchers.watching(key) {
            self.watchers.notify(Change::Set {
                bucket: self.identifier.clone(),
                key: key.to_owned(),
                value: value.to_vec(),
            });
        }
    }

    /// Reports that `key` was deleted; called with the entries locked.
    fn deleted(&self, key: &str) {
        if self.watchers.watching(key) {
            self.watchers.notify(Change::Delete {
                bucket: self.identifier.clone(),
                key: key.to_owned(),
            });
        }
    }
}

#[async_trait]
impl Bucket for MemoryBucket {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.entries().get(key).cloned())
    }

    async fn set(&self, key: &str, value: Vec<u8>) -> Result<(), Error> {
        let mut entries = self.entries();
        self.changed(key, &value);
        entries.insert(key.to_owned(), value);
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
        let mut entries = self.entries();
        if entries.remove(key).is_some() {
            self.deleted(key);
        }
        Ok(())
    }

    async fn exists(&self, key: &str) -> Result<bool, Error> {
        Ok(self.entries().contains_key(key))
    }

    async fn list_keys(&self, cursor: Option<u64>, limit: usize) -> Result<KeyPage, Error> {
        let entries = self.entries();
        let start = usize::try_from(cursor.unwrap_or(0)).unwrap_or(usize::MAX);
        let keys: Vec<String> = entries.keys().skip(start).take(limit).cloned().collect();
        let next = start.saturating_add(keys.len());
        let cursor = (next < entries.len()).then_some(next as u64);
        Ok(KeyPage { keys, cursor })
    }

    async fn increment(&self, key: &str, delta: u64) -> Result<u64, Error> {
        let mut entries = self.entries();
        let current = match entries.get(key) {
            Some(bytes) => parse_counter(key, bytes)?,
            None => 0,
        };
        let next = add_counter(key, current, delta)?;
        let value = next.to_string().into_bytes();
        self.changed(key, &value);
        entries.insert(key.to_owned(), value);
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn buckets_are_separate_keyspaces_and_shared_by_identifier() {
        let store = MemoryStore::new();
        let a = store.open("a").await.expect("open");
        let b = store.open("b").await.expect("open");
        a.set("k", b"1".to_vec()).await.expect("set");
        assert_eq!(b.get("k").await.expect("get"), None);
        let a2 = store.open("a").await.expect("open");
        assert_eq!(a2.get("k").await.expect("get"), Some(b"1".to_vec()));
    }

    #[tokio::test]
    async fn increment_counts_from_zero_and_refuses_non_numbers() {
        let store = MemoryStore::new();
        let b = store.open("").await.expect("open");
        assert_eq!(b.increment("n", 2).await.expect("inc"), 2);
        assert_eq!(b.increment("n", 3).await.expect("inc"), 5);
        assert_eq!(b.get("n").await.expect("get"), Some(b"5".to_vec()));
        b.set("s", b"abc".to_vec()).await.expect("set");
        assert!(matches!(b.increment("s", 1).await, Err(Error::Other(_))));
        b.set("max", u64::MAX.to_string().into_bytes())
            .await
            .expect("set");
        assert!(b.increment("max", 1).await.is_err());
    }

    #[tokio::test]
    async fn watches_pass_conformance_and_a_full_queue_drops_new_changes() {
        let store = MemoryStore::new();
        crate::conformance::check_watch(&store, "bucket").await;

        let mut changes = store
            .watch(BTreeSet::from(["k".to_owned()]), 2, "test")
            .await
            .expect("watch");
        let b = store.open("b").await.expect("open");
        for i in 0..5u8 {
            b.set("k", vec![i]).await.expect("set");
        }
        assert_eq!(
            changes.queued(),
            2,
            "the queue holds two, the rest are dropped"
        );
        let first = changes.next_change().await.expect("a change");
        assert_eq!(
            first,
            Change::Set {
                bucket: "b".into(),
                key: "k".into(),
                value: vec![0]
            },
            "the oldest changes are kept"
        );
    }

    #[tokio::test]
    async fn list_keys_pages_with_a_cursor() {
        let store = MemoryStore::new();
        let b = store.open("").await.expect("open");
        for i in 0..5 {
            b.set(&format!("k{i}"), vec![]).await.expect("set");
        }
        let first = b.list_keys(None, 2).await.expect("list");
        assert_eq!(first.keys, ["k0", "k1"]);
        let second = b.list_keys(first.cursor, 2).await.expect("list");
        assert_eq!(second.keys, ["k2", "k3"]);
        let last = b.list_keys(second.cursor, 2).await.expect("list");
        assert_eq!((last.keys.len(), last.cursor), (1, None));
    }
}
