//! Watching keys: what `wasi:keyvalue/watcher@0.2.0-draft` delivers to a component.
//!
//! A watch is configured as wasmCloud's key-value providers read it, from a link's `watch`
//! config value: comma-separated `OPERATION@key` entries, where the operation is `SET` or
//! `DEL` (any case), for example `SET@counter,DEL@counter,SET@greeting` ([`WatchSpec`]).
//!
//! A backend starts a watch with [`crate::KeyValue::watch`]: it reports every change to the
//! watched keys, in the order it saw them, into a bounded queue ([`changes`]). The host reads
//! the queue ([`Changes`], a stream) and delivers each change the spec asks for to the
//! component. When the queue is full, new changes are dropped with a logged warning rather
//! than kept without bound ([`ChangeSender::send`]); the queue ends when the backend loses
//! what it watches through (a broken connection), and the host then watches again.
//!
//! [`Watchers`] is the registry the in-process backends (memory, redb) keep: their writes
//! tell it what changed, and it feeds every watch of that key.

use futures::Stream;
use std::collections::BTreeSet;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::sync::mpsc::{self, error::TrySendError};

/// How many changes a watch may hold for the component before new ones are dropped, unless
/// the host says otherwise (`--max-queued-kv-changes`).
pub const DEFAULT_MAX_QUEUED_CHANGES: usize = 1024;

/// A change to a watched key, as a backend reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `key` was written (`set`, `set-many`, `increment`); `value` is what it holds now.
    Set {
        /// The bucket identifier the key is in: for the embedded stores, the keyspace that
        /// changed; Redis and NATS have one keyspace per config and report `""`.
        bucket: String,
        /// The key.
        key: String,
        /// Its value after the change.
        value: Vec<u8>,
    },
    /// `key` was deleted (or, in Redis, expired).
    Delete {
        /// As for [`Change::Set`].
        bucket: String,
        /// The key.
        key: String,
    },
}

impl Change {
    /// The key that changed.
    pub fn key(&self) -> &str {
        match self {
            Change::Set { key, .. } | Change::Delete { key, .. } => key,
        }
    }

    /// The bucket identifier it changed in.
    pub fn bucket(&self) -> &str {
        match self {
            Change::Set { bucket, .. } | Change::Delete { bucket, .. } => bucket,
        }
    }
}

/// Which changes one watch delivers: parsed from wasmCloud's `watch` config value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchSpec {
    /// Keys whose writes are delivered (`on-set`).
    pub sets: BTreeSet<String>,
    /// Keys whose deletions are delivered (`on-delete`).
    pub deletes: BTreeSet<String>,
}

/// A `watch` config value that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{entry}` in `watch` is not a watch entry: {problem}; write comma-separated \
     `OPERATION@key` entries with SET or DEL, for example `watch: SET@counter,DEL@counter`"
)]
pub struct WatchSpecError {
    /// The entry as written.
    pub entry: String,
    /// What is wrong with it.
    pub problem: String,
}

impl WatchSpec {
    /// Parses `SET@key,DEL@key,…`. Empty entries are skipped; an entry without `@`, with an
    /// operation other than `SET` or `DEL`, or without a key is an error naming it.
    ///
    /// ```
    /// use trellis_keyvalue::watch::WatchSpec;
    /// let spec = WatchSpec::parse("SET@counter, del@counter,SET@name").unwrap();
    /// assert!(spec.sets.contains("counter") && spec.sets.contains("name"));
    /// assert!(spec.deletes.contains("counter"));
    /// assert!(WatchSpec::parse("GET@counter").is_err());
    /// ```
    pub fn parse(value: &str) -> Result<Self, WatchSpecError> {
        let mut spec = WatchSpec::default();
        for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let error = |problem: &str| WatchSpecError {
                entry: entry.to_owned(),
                problem: problem.to_owned(),
            };
            let Some((operation, key)) = entry.split_once('@') else {
                return Err(error("it has no `@`"));
            };
            let key = key.trim();
            if key.is_empty() {
                return Err(error("the key after `@` is empty"));
            }
            match operation.trim().to_ascii_uppercase().as_str() {
                "SET" => spec.sets.insert(key.to_owned()),
                "DEL" => spec.deletes.insert(key.to_owned()),
                _ => return Err(error("the operation is neither SET nor DEL")),
            };
        }
        Ok(spec)
    }

    /// Whether it watches nothing.
    pub fn is_empty(&self) -> bool {
        self.sets.is_empty() && self.deletes.is_empty()
    }

    /// Every key it watches, for either operation.
    pub fn keys(&self) -> BTreeSet<String> {
        self.sets.union(&self.deletes).cloned().collect()
    }

    /// Whether `change` is one this watch delivers.
    pub fn wants(&self, change: &Change) -> bool {
        match change {
            Change::Set { key, .. } => self.sets.contains(key),
            Change::Delete { key, .. } => self.deletes.contains(key),
        }
    }
}

/// A bounded queue of changes: its sending half ([`ChangeSender`]) for the backend, its
/// receiving half ([`Changes`]) for whoever delivers them. `source` names the watch in the
/// warnings logged when changes are dropped (for example the provider and its server).
pub fn changes(capacity: usize, source: impl Into<String>) -> (ChangeSender, Changes) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let sender = ChangeSender {
        tx,
        shared: Arc::new(Shared {
            source: source.into(),
            capacity: capacity.max(1),
            dropped: AtomicU64::new(0),
        }),
    };
    (sender, Changes { rx })
}

/// The backend's end of a watch's queue. Cheap to clone; the queue ends when every clone is
/// dropped.
#[derive(Debug, Clone)]
pub struct ChangeSender {
    tx: mpsc::Sender<Change>,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    source: String,
    capacity: usize,
    /// Changes dropped since the queue last had room.
    dropped: AtomicU64,
}

/// What became of a change handed to [`ChangeSender::send`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Queued for delivery.
    Queued,
    /// The queue was full: dropped, with a warning.
    Dropped,
    /// Nobody reads the queue any more: the watch is over, stop producing.
    Closed,
}

impl ChangeSender {
    /// Queues `change` without waiting. A full queue drops it: the first drop after the queue
    /// last had room logs a warning, and the next change that fits logs how many were lost.
    pub fn send(&self, change: Change) -> Sent {
        match self.tx.try_send(change) {
            Ok(()) => {
                let lost = self.shared.dropped.swap(0, Ordering::AcqRel);
                if lost > 0 {
                    tracing::warn!(
                        watch = %self.shared.source,
                        lost,
                        "key-value changes are queued again after {lost} were dropped"
                    );
                }
                Sent::Queued
            }
            Err(TrySendError::Full(change)) => {
                if self.shared.dropped.fetch_add(1, Ordering::AcqRel) == 0 {
                    tracing::warn!(
                        watch = %self.shared.source,
                        key = %change.key(),
                        capacity = self.shared.capacity,
                        "the component has {} key-value changes waiting to be delivered; dropping new changes until it catches up (host flag --max-queued-kv-changes)",
                        self.shared.capacity
                    );
                }
                Sent::Dropped
            }
            Err(TrySendError::Closed(_)) => Sent::Closed,
        }
    }

    /// Whether nobody reads the queue any more.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Resolves when nobody reads the queue any more.
    pub async fn closed(&self) {
        self.tx.closed().await;
    }
}

/// The delivering end of a watch's queue: the changes in the order the backend reported
/// them. It ends when the backend stops watching (its connection broke); watch again then.
#[derive(Debug)]
pub struct Changes {
    rx: mpsc::Receiver<Change>,
}

impl Changes {
    /// The next change, or `None` once the watch has ended.
    pub async fn next_change(&mut self) -> Option<Change> {
        self.rx.recv().await
    }

    /// How many changes are waiting.
    pub fn queued(&self) -> usize {
        self.rx.len()
    }
}

impl Stream for Changes {
    type Item = Change;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Change>> {
        self.rx.poll_recv(cx)
    }
}

/// The watches of an in-process store, fed by its writes. Each write reports what it
/// changed while it still holds whatever orders writes to that key, so that every watch sees
/// a key's changes in the order they were applied.
#[derive(Debug, Default)]
pub struct Watchers {
    watches: Mutex<Vec<(BTreeSet<String>, ChangeSender)>>,
}

impl Watchers {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a watch of `keys` (in every bucket); see [`crate::KeyValue::watch`].
    pub fn add(&self, keys: BTreeSet<String>, capacity: usize, source: &str) -> Changes {
        let (tx, rx) = changes(capacity, source);
        let mut watches = trellis_provider::lock(&self.watches);
        watches.retain(|(_, tx)| !tx.is_closed());
        watches.push((keys, tx));
        rx
    }

    /// Whether any watch wants changes to `key`; lets writers skip building a change.
    pub fn watching(&self, key: &str) -> bool {
        trellis_provider::lock(&self.watches)
            .iter()
            .any(|(keys, tx)| keys.contains(key) && !tx.is_closed())
    }

    /// Reports `change` to every watch of its key.
    pub fn notify(&self, change: Change) {
        let mut watches = trellis_provider::lock(&self.watches);
        let mut closed = false;
        for (keys, tx) in watches.iter() {
            if keys.contains(change.key()) && tx.send(change.clone()) == Sent::Closed {
                closed = true;
            }
        }
        if closed {
            watches.retain(|(_, tx)| !tx.is_closed());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_reads_wasmclouds_format_and_names_bad_entries() {
        let spec = WatchSpec::parse(" SET@a ,DEL@a,,set@b").expect("valid");
        assert_eq!(spec.sets, BTreeSet::from(["a".into(), "b".into()]));
        assert_eq!(spec.deletes, BTreeSet::from(["a".into()]));
        assert_eq!(spec.keys().len(), 2);
        assert!(WatchSpec::parse("").expect("empty").is_empty());
        for (bad, problem) in [
            ("SET", "no `@`"),
            ("SET@", "empty"),
            ("PUT@a", "neither SET nor DEL"),
        ] {
            let err = WatchSpec::parse(&format!("SET@ok,{bad}")).expect_err(bad);
            let text = err.to_string();
            assert!(
                text.contains(&format!("`{bad}`")) && text.contains(problem),
                "{text}"
            );
            assert!(
                text.contains("SET@counter"),
                "the message shows the form: {text}"
            );
        }
    }

    #[test]
    fn wants_matches_operation_and_key() {
        let spec = WatchSpec::parse("SET@a,DEL@b").expect("valid");
        let set = |k: &str| Change::Set {
            bucket: String::new(),
            key: k.into(),
            value: vec![],
        };
        let del = |k: &str| Change::Delete {
            bucket: String::new(),
            key: k.into(),
        };
        assert!(spec.wants(&set("a")) && spec.wants(&del("b")));
        assert!(!spec.wants(&del("a")) && !spec.wants(&set("b")) && !spec.wants(&set("c")));
    }

    #[tokio::test]
    async fn a_full_queue_drops_new_changes_and_keeps_the_old() {
        let (tx, mut rx) = changes(2, "test");
        let set = |v: u8| Change::Set {
            bucket: String::new(),
            key: "k".into(),
            value: vec![v],
        };
        assert_eq!(tx.send(set(1)), Sent::Queued);
        assert_eq!(tx.send(set(2)), Sent::Queued);
        assert_eq!(tx.send(set(3)), Sent::Dropped);
        assert_eq!(rx.queued(), 2);
        assert_eq!(rx.next_change().await, Some(set(1)));
        assert_eq!(tx.send(set(4)), Sent::Queued, "room again");
        assert_eq!(rx.next_change().await, Some(set(2)));
        assert_eq!(rx.next_change().await, Some(set(4)));
        drop(rx);
        assert_eq!(tx.send(set(5)), Sent::Closed);
        assert!(tx.is_closed());
    }

    #[tokio::test]
    async fn watchers_feed_every_watch_of_a_key_and_forget_closed_ones() {
        let watchers = Watchers::new();
        let mut a = watchers.add(BTreeSet::from(["k".into()]), 8, "a");
        let b = watchers.add(BTreeSet::from(["other".into()]), 8, "b");
        assert!(watchers.watching("k") && !watchers.watching("nobody"));
        watchers.notify(Change::Delete {
            bucket: "x".into(),
            key: "k".into(),
        });
        assert_eq!(
            a.next_change().await,
            Some(Change::Delete {
                bucket: "x".into(),
                key: "k".into()
            })
        );
        assert_eq!(b.queued(), 0);
        drop(a);
        assert!(!watchers.watching("k"));
        watchers.notify(Change::Delete {
            bucket: "x".into(),
            key: "k".into(),
        });
        assert_eq!(trellis_provider::lock(&watchers.watches).len(), 1);
    }
}
