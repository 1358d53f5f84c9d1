//! A durable, local key-value backend: every bucket lives in one [redb] file on this machine.
//!
//! [`RedbStore`] implements [`trellis_keyvalue::KeyValue`]. It is the store to use when a
//! single host should keep data across restarts without running a database server.
//!
//! # Configuration
//!
//! The store has one setting, the path of its file, passed to [`RedbStore::open`]. The host
//! names the config key (`path`); this crate only takes a [`Path`]. Missing parent directories
//! and the file itself are created. The file is locked while open: a second process (or a second
//! `open` of the same file in this process) gets [`OpenError::Locked`].
//!
//! # Semantics
//!
//! - Each bucket identifier is its own keyspace, kept as one redb table named
//!   `trellis-kv/<identifier>`. Any identifier string is allowed (table names are plain strings
//!   in redb, not paths), and opening a bucket creates nothing: a table appears on first write.
//! - Every write is its own transaction, committed durably (fsync) before the call returns.
//! - [`Bucket::increment`] reads, adds and writes in one write transaction, so it is atomic with
//!   respect to every other call on the file. Counters are decimal text, as the trait requires.
//! - `list-keys` pages through the keys in sorted order; the cursor is the offset of the next
//!   key, so it is stable while no key sorting before it is added or removed.
//! - `set-many` and `delete-many` are atomic here (one transaction each), which the trait allows.
//! - redb is synchronous, so every call runs on Tokio's blocking thread pool.
//! - [`KeyValue::health`] is `Ok` unless a call has hit a storage failure (an I/O error, a
//!   damaged file); redb then refuses further writes, and the message says which failure.
//! - [`KeyValue::watch`] sees a key's changes in every bucket, each reported with its bucket,
//!   once the write is committed and in the order writes were committed. Deleting a key that
//!   is not there reports nothing.
//!
//! [redb]: https://www.redb.org

use async_trait::async_trait;
use redb::{
    Database, DatabaseError, ReadableDatabase, ReadableTable, StorageError, TableDefinition,
    TableError,
};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use trellis_keyvalue::watch::{Change, Changes, Watchers};
use trellis_keyvalue::{Bucket, Error, HealthError, KeyPage, KeyValue, add_counter, parse_counter};

/// Why [`RedbStore::open`] could not open its file.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Another process (or another `open` in this one) holds the file.
    #[error(
        "the key-value database {} is already open in another process (or twice in this one); \
         only one may use it at a time: stop the other, or give this one another path",
        path.display()
    )]
    Locked {
        /// The file.
        path: PathBuf,
    },
    /// The file exists but is not a redb database, or is damaged.
    #[error(
        "{} is not a usable redb key-value database; move it away or choose another path",
        path.display()
    )]
    NotADatabase {
        /// The file.
        path: PathBuf,
        /// What redb said.
        #[source]
        source: DatabaseError,
    },
    /// The file or its directory could not be created, read or written.
    #[error("cannot create or open the key-value database {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is in a redb format this build reads only after an upgrade.
    #[error(
        "cannot open the key-value database {}: the file is in redb format version {version}, which this build cannot read without an upgrade",
        path.display()
    )]
    UpgradeRequired {
        /// The file.
        path: PathBuf,
        /// The file's format version.
        version: u8,
    },
    /// Any other reason redb gave.
    #[error("cannot open the key-value database {}", path.display())]
    Other {
        /// The file.
        path: PathBuf,
        /// What redb said.
        #[source]
        source: DatabaseError,
    },
}

/// A key-value store kept in one redb file. See the [crate docs](crate) for its semantics.
pub struct RedbStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    path: PathBuf,
    /// The first storage failure seen, which makes the store unhealthy.
    failure: Mutex<Option<String>>,
    watchers: Watchers,
    /// Held from the start of a write transaction until its changes are reported, so that
    /// watches see changes in commit order.
    writing: Mutex<()>,
}

impl RedbStore {
    /// Opens the database at `path`, creating its parent directories and the file if missing.
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| OpenError::Io {
                path: path.to_owned(),
                source,
            })?;
        }
        let db = Database::create(path).map_err(|e| open_error(path, e))?;
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                path: path.to_owned(),
                failure: Mutex::new(None),
                watchers: Watchers::new(),
                writing: Mutex::new(()),
            }),
        })
    }

    /// The file this store keeps its data in.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }
}

fn open_error(path: &Path, error: DatabaseError) -> OpenError {
    let path = path.to_owned();
    use std::io::ErrorKind::{InvalidData, UnexpectedEof};
    match error {
        DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch => {
            OpenError::Locked { path }
        }
        // redb reports a wrong magic number as invalid data, and a file too short to hold
        // its header as an unexpected end of file.
        DatabaseError::Storage(StorageError::Io(ref io))
            if matches!(io.kind(), InvalidData | UnexpectedEof) =>
        {
            OpenError::NotADatabase {
                path,
                source: error,
            }
        }
        DatabaseError::Storage(StorageError::Io(source)) => OpenError::Io { path, source },
        DatabaseError::Storage(StorageError::Corrupted(_)) => OpenError::NotADatabase {
            path,
            source: error,
        },
        DatabaseError::UpgradeRequired(version) => OpenError::UpgradeRequired { path, version },
        other => OpenError::Other {
            path,
            source: other,
        },
    }
}

#[async_trait]
impl KeyValue for RedbStore {
    async fn open(&self, identifier: &str) -> Result<Arc<dyn Bucket>, Error> {
        Ok(Arc::new(RedbBucket {
            inner: self.inner.clone(),
            identifier: identifier.to_owned(),
            table: format!("trellis-kv/{identifier}"),
        }))
    }

    async fn watch(
        &self,
        keys: BTreeSet<String>,
        capacity: usize,
        source: &str,
    ) -> Result<Changes, Error> {
        Ok(self.inner.watchers.add(keys, capacity, source))
    }

    async fn health(&self) -> Result<(), HealthError> {
        if let Some(failure) = self.inner.failure() {
            return Err(HealthError::unhealthy(failure));
        }
        let inner = self.inner.clone();
        let checked = tokio::task::spawn_blocking(move || {
            inner.db.begin_read().map(drop).map_err(|e| inner.fail(e))
        })
        .await;
        match checked {
            Ok(result) => Ok(result?),
            Err(join) => Err(HealthError::caused_by(
                "the health check could not run",
                join,
            )),
        }
    }
}

impl Inner {
    /// The recorded failure; a panic while it was held cannot have left it half-written.
    fn failure_slot(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn failure(&self) -> Option<String> {
        self.failure_slot().clone()
    }

    /// Records a storage failure (the first one wins) and returns the error a guest sees.
    fn fail(&self, what: impl std::fmt::Display) -> Error {
        let message = format!(
            "the key-value database {} failed: {what}",
            self.path.display()
        );
        let mut failure = self.failure_slot();
        if failure.is_none() {
            tracing::error!(path = %self.path.display(), error = %what, "key-value database failed");
            *failure = Some(message.clone());
        }
        Error::Other(message)
    }
}

/// Converts any redb error into the guest's error, marking the store unhealthy when it is a
/// storage failure rather than, say, a value that is too large.
trait IntoKvError<T> {
    fn kv(self, inner: &Inner) -> Result<T, Error>;
}

impl<T, E> IntoKvError<T> for Result<T, E>
where
    E: Into<redb::Error>,
{
    fn kv(self, inner: &Inner) -> Result<T, Error> {
        self.map_err(|e| match e.into() {
            redb::Error::ValueTooLarge(size) => Error::Other(format!(
                "the value is too large for the key-value database ({size} bytes)"
            )),
            other => inner.fail(other),
        })
    }
}

/// One bucket: a table in the store's file.
struct RedbBucket {
    inner: Arc<Inner>,
    identifier: String,
    table: String,
}

/// The changes one write transaction makes to watched keys, reported once it commits.
struct Record<'a> {
    watchers: &'a Watchers,
    bucket: &'a str,
    changes: Vec<Change>,
}

impl Record<'_> {
    fn set(&mut self, key: &str, value: &[u8]) {
        if self.watchers.watching(key) {
            self.changes.push(Change::Set {
                bucket: self.bucket.to_owned(),
                key: key.to_owned(),
                value: value.to_vec(),
            });
        }
    }

    fn delete(&mut self, key: &str) {
        if self.watchers.watching(key) {
            self.changes.push(Change::Delete {
                bucket: self.bucket.to_owned(),
                key: key.to_owned(),
            });
        }
    }
}

type Def<'a> = TableDefinition<'a, &'static str, &'static [u8]>;

impl RedbBucket {
    /// Runs `f` with the shared state and this bucket's table definition on the blocking pool.
    async fn run<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&Inner, Def<'_>) -> Result<T, Error> + Send + 'static,
    {
        let inner = self.inner.clone();
        let table = self.table.clone();
        tokio::task::spawn_blocking(move || f(&inner, TableDefinition::new(&table)))
            .await
            .map_err(|e| Error::other(format!("a key-value database call did not finish: {e}")))?
    }

    /// Runs a read-only `f` on the table, or returns `missing` when the table does not exist.
    async fn read<T, F>(&self, missing: T, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&redb::ReadOnlyTable<&'static str, &'static [u8]>) -> Result<T, redb::Error>
            + Send
            + 'static,
    {
        self.run(move |inner, def| {
            let txn = inner.db.begin_read().kv(inner)?;
            let table = match txn.open_table(def) {
                Ok(table) => table,
                Err(TableError::TableDoesNotExist(_)) => return Ok(missing),
                Err(e) => return Err(e).kv(inner),
            };
            f(&table).kv(inner)
        })
        .await
    }

    /// Runs `f` on the table in one write transaction, committing when it returns `Ok`;
    /// what `f` records is reported to the watches once the transaction has committed.
    async fn write<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(
                &mut redb::Table<'_, &'static str, &'static [u8]>,
                &mut Record<'_>,
            ) -> Result<T, Fail>
            + Send
            + 'static,
    {
        let bucket = self.identifier.clone();
        self.run(move |inner, def| {
            let _order = inner
                .writing
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let txn = inner.db.begin_write().kv(inner)?;
            let mut record = Record {
                watchers: &inner.watchers,
                bucket: &bucket,
                changes: Vec::new(),
            };
            let result = {
                let mut table = txn.open_table(def).kv(inner)?;
                f(&mut table, &mut record)
            };
            match result {
                Ok(value) => {
                    txn.commit().kv(inner)?;
                    for change in record.changes {
                        inner.watchers.notify(change);
                    }
                    Ok(value)
                }
                Err(e) => {
                    txn.abort().kv(inner)?;
                    match e {
                        Fail::Guest(e) => Err(e),
                        Fail::Db(e) => Err(e).kv(inner),
                    }
                }
            }
        })
        .await
    }
}

/// Why a write closure gave up: an error for the guest (a value that is not a number), or a
/// database failure, which `write` reports through [`IntoKvError::kv`].
enum Fail {
    Guest(Error),
    Db(redb::Error),
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Fail::Guest(e)
    }
}

impl From<StorageError> for Fail {
    fn from(e: StorageError) -> Self {
        Fail::Db(e.into())
    }
}

#[async_trait]
impl Bucket for RedbBucket {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        let key = key.to_owned();
        self.read(None, move |table| {
            Ok(table.get(key.as_str())?.map(|v| v.value().to_vec()))
        })
        .await
    }

    async fn set(&self, key: &str, value: Vec<u8>) -> Result<(), Error> {
        let key = key.to_owned();
        self.write(move |table, record| {
            table.insert(key.as_str(), value.as_slice())?;
            record.set(&key, &value);
            Ok(())
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
        let key = key.to_owned();
        self.write(move |table, record| {
            if table.remove(key.as_str())?.is_some() {
                record.delete(&key);
            }
            Ok(())
        })
        .await
    }

    async fn exists(&self, key: &str) -> Result<bool, Error> {
        let key = key.to_owned();
        self.read(false, move |table| Ok(table.get(key.as_str())?.is_some()))
            .await
    }

    async fn list_keys(&self, cursor: Option<u64>, limit: usize) -> Result<KeyPage, Error> {
        let start = usize::try_from(cursor.unwrap_or(0)).unwrap_or(usize::MAX);
        self.read(KeyPage::default(), move |table| {
            let mut keys = Vec::with_capacity(limit.min(1024));
            let mut iter = table.iter()?.skip(start);
            for entry in iter.by_ref().take(limit) {
                let (key, _) = entry?;
                keys.push(key.value().to_owned());
            }
            let more = iter.next().transpose()?.is_some();
            let next = start.saturating_add(keys.len());
            Ok(KeyPage {
                keys,
                cursor: more.then_some(next as u64),
            })
        })
        .await
    }

    async fn increment(&self, key: &str, delta: u64) -> Result<u64, Error> {
        let key = key.to_owned();
        self.write(move |table, record| {
            let current = match table.get(key.as_str())? {
                Some(bytes) => parse_counter(&key, bytes.value())?,
                None => 0,
            };
            let next = add_counter(&key, current, delta)?;
            let text = next.to_string();
            table.insert(key.as_str(), text.as_bytes())?;
            record.set(&key, text.as_bytes());
            Ok(next)
        })
        .await
    }

    async fn get_many(&self, keys: Vec<String>) -> Result<Vec<Option<(String, Vec<u8>)>>, Error> {
        let missing = vec![None; keys.len()];
        self.read(missing, move |table| {
            let mut out = Vec::with_capacity(keys.len());
            for key in keys {
                let value = table.get(key.as_str())?.map(|v| v.value().to_vec());
                out.push(value.map(|v| (key, v)));
            }
            Ok(out)
        })
        .await
    }

    async fn set_many(&self, pairs: Vec<(String, Vec<u8>)>) -> Result<(), Error> {
        self.write(move |table, record| {
            for (key, value) in &pairs {
                table.insert(key.as_str(), value.as_slice())?;
                record.set(key, value);
            }
            Ok(())
        })
        .await
    }

    async fn delete_many(&self, keys: Vec<String>) -> Result<(), Error> {
        self.write(move |table, record| {
            for key in &keys {
                if table.remove(key.as_str())?.is_some() {
                    record.delete(key);
                }
            }
            Ok(())
        })
        .await
    }
}
