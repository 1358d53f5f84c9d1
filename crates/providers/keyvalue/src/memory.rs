//! An in-memory backend: fast, shared by every component linked to the same provider, and
//! gone when the process stops. Each bucket identifier is its own keyspace.

use crate::{Bucket, Error, HealthError, KeyPage, KeyValue, add_counter, parse_counter};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

/// The in-memory store.
#[derive(Default)]
pub struct MemoryStore {
    buckets: Mutex<HashMap<String, Arc<MemoryBucket>>>,
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
        let bucket = buckets.entry(identifier.to_owned()).or_default().clone();
        Ok(bucket)
    }

    async fn health(&self) -> Result<(), HealthError> {
        Ok(())
    }
}

// Every change here is one map operation, so the map is whole whatever a panicking holder
// of the lock was doing.
use trellis_provider::lock;

/// One keyspace. Keys are kept sorted so that list cursors are stable offsets.
#[derive(Default)]
pub struct MemoryBucket {
    entries: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl MemoryBucket {
    fn entries(&self) -> MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        lock(&self.entries)
    }
}

#[async_trait]
impl Bucket for MemoryBucket {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.entries().get(key).cloned())
    }

    async fn set(&self, key: &str, value: Vec<u8>) -> Result<(), Error> {
        self.entries().insert(key.to_owned(), value);
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
        self.entries().remove(key);
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
        entries.insert(key.to_owned(), next.to_string().into_bytes());
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
