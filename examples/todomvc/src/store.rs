//! The todos in a `wasi:keyvalue` bucket.
//!
//! # Layout
//!
//! | key | value |
//! | --- | --- |
//! | `todo:next-id` | the last id handed out, a decimal counter kept by `atomics.increment` |
//! | `todo:{id}:title` | the title, UTF-8; this key existing is what makes the todo exist |
//! | `todo:{id}:completed` | `true` or `false` |
//!
//! # Why this layout
//!
//! `wasi:keyvalue` 0.2.0-draft has no transactions and no compare-and-swap, only atomic
//! increments, so the layout keeps every change to a single key or to keys no other request
//! writes at the same time:
//!
//! - Adding takes a fresh id from `atomics.increment`, so two adds never share keys, and writes
//!   both of its keys in one `set-many` (one `MSET` on Redis). Nothing is read and written
//!   back, as a single "all todos" value would have to be, losing one of two concurrent adds.
//! - The title and the completed flag are separate keys, so editing a title and ticking the
//!   same todo at once both land, and every change is a plain write of the new value (the API
//!   says `completed: true`, never "flip"), so repeating a request is harmless.
//! - Deleting removes the two keys with one `delete-many`.
//!
//! What remains is last-writer-wins on one field of one todo, and a change racing a delete of
//! the same todo: it may bring back the field it wrote (an edited title brings the todo back;
//! a lone `completed` key without a title is invisible and ignored).
//!
//! The todos are found by listing the bucket's keys (`list-keys`, every page) and keeping the
//! `todo:{id}:title` ones; their values then come with `get-many` in chunks. Keys that are not
//! ours are skipped: a Redis bucket is the whole database, which other apps may share. The
//! listing stops with an error past [`MAX_KEYS_LISTED`] keys, so a huge shared database gives
//! a clear message instead of a request that runs into its deadline. Ids only grow, so sorting
//! by id is the order the todos were added in.

use std::collections::BTreeSet;

use crate::bindings::wasi::config::runtime as config;
use crate::bindings::wasi::keyvalue::{atomics, batch, store};

/// The bucket opened when the component's config sets no `bucket`.
pub const DEFAULT_BUCKET: &str = "todomvc";
/// The most todos kept when the config sets no `max_todos`. A list the page shows in full
/// has to stop somewhere, and this keeps every listing to a handful of key-value calls.
pub const DEFAULT_MAX_TODOS: usize = 1000;
/// The most keys one listing goes through before giving up (see the module docs).
pub const MAX_KEYS_LISTED: usize = 100_000;
/// Keys per `get-many`, `set-many` or `delete-many`: well under the host's default batch limit
/// (1000, `--max-kv-batch`), so an operator may lower that a lot before this notices.
const BATCH: usize = 100;

const NEXT_ID_KEY: &str = "todo:next-id";

/// One todo, as the API shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Todo {
    pub id: u64,
    pub title: String,
    pub completed: bool,
}

/// Why the store could not do what was asked.
#[derive(Debug)]
pub enum Error {
    /// The key-value call `operation` failed.
    KeyValue {
        operation: &'static str,
        error: store::Error,
    },
    /// The component's config could not be read.
    Config(config::ConfigError),
    /// A config value is not what its key takes.
    Setting {
        key: &'static str,
        value: String,
        expected: &'static str,
    },
    /// The bucket holds more keys than one listing goes through.
    TooManyKeys,
}

impl Error {
    /// An HTTP status for this failure: a backend that failed (Redis down) may come back, so
    /// `503`; a store that does not exist or refuses access is a deployment problem, `500`.
    pub fn status(&self) -> u16 {
        match self {
            Error::KeyValue {
                error: store::Error::Other(_),
                ..
            } => 503,
            _ => 500,
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::KeyValue { operation, error } => {
                let why = match error {
                    store::Error::NoSuchStore => "no such store".to_owned(),
                    store::Error::AccessDenied => "access denied".to_owned(),
                    store::Error::Other(message) => message.clone(),
                };
                write!(f, "the key-value store failed ({operation}): {why}")
            }
            Error::Config(config::ConfigError::Upstream(message))
            | Error::Config(config::ConfigError::Io(message)) => {
                write!(f, "could not read the component's config: {message}")
            }
            Error::Setting {
                key,
                value,
                expected,
            } => write!(
                f,
                "the component's config sets {key} to {value:?}; it takes {expected}"
            ),
            Error::TooManyKeys => write!(
                f,
                "the key-value bucket holds more than {MAX_KEYS_LISTED} keys, more than one \
                 listing goes through; give TodoMVC a bucket of its own (with Redis, a database \
                 of its own, such as redis://127.0.0.1:6379/1)"
            ),
        }
    }
}

fn kv(operation: &'static str) -> impl FnOnce(store::Error) -> Error {
    move |error| Error::KeyValue { operation, error }
}

fn title_key(id: u64) -> String {
    format!("todo:{id}:title")
}

fn completed_key(id: u64) -> String {
    format!("todo:{id}:completed")
}

/// The id in a `todo:{id}:title` key.
fn id_of_title_key(key: &str) -> Option<u64> {
    let id = key.strip_prefix("todo:")?.strip_suffix(":title")?;
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    id.parse().ok()
}

fn flag(completed: bool) -> Vec<u8> {
    if completed {
        b"true".to_vec()
    } else {
        b"false".to_vec()
    }
}

/// The todos' bucket, opened for one request.
pub struct Todos {
    bucket: store::Bucket,
    /// How many todos may exist: adding past it is refused.
    pub max_todos: usize,
}

impl Todos {
    /// Opens the bucket named by the config key `bucket`, or [`DEFAULT_BUCKET`], with the
    /// limit that `max_todos` sets, or [`DEFAULT_MAX_TODOS`].
    pub fn open() -> Result<Todos, Error> {
        let name = config::get("bucket")
            .map_err(Error::Config)?
            .unwrap_or_else(|| DEFAULT_BUCKET.to_owned());
        let max_todos = match config::get("max_todos").map_err(Error::Config)? {
            None => DEFAULT_MAX_TODOS,
            Some(value) => value.trim().parse().map_err(|_| Error::Setting {
                key: "max_todos",
                value,
                expected: "a whole number",
            })?,
        };
        let bucket = store::open(&name).map_err(kv("open"))?;
        Ok(Todos { bucket, max_todos })
    }

    /// The ids of every todo, in order.
    pub fn ids(&self) -> Result<BTreeSet<u64>, Error> {
        let mut ids = BTreeSet::new();
        let mut listed = 0;
        let mut cursor = None;
        loop {
            let page = self.bucket.list_keys(cursor).map_err(kv("list-keys"))?;
            listed += page.keys.len();
            if listed > MAX_KEYS_LISTED {
                return Err(Error::TooManyKeys);
            }
            // A set, because Redis's SCAN may return a key twice.
            ids.extend(page.keys.iter().filter_map(|key| id_of_title_key(key)));
            match page.cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(ids),
            }
        }
    }

    /// Every todo, in the order they were added.
    pub fn list(&self) -> Result<Vec<Todo>, Error> {
        let ids: Vec<u64> = self.ids()?.into_iter().collect();
        self.read(&ids)
    }

    /// The todos with these ids that still exist (one may be deleted since it was listed).
    fn read(&self, ids: &[u64]) -> Result<Vec<Todo>, Error> {
        let mut todos = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(BATCH / 2) {
            let keys: Vec<String> = chunk
                .iter()
                .flat_map(|&id| [title_key(id), completed_key(id)])
                .collect();
            let values = batch::get_many(&self.bucket, &keys).map_err(kv("get-many"))?;
            for (&id, pair) in chunk.iter().zip(values.chunks(2)) {
                let value = |i: usize| pair.get(i).cloned().flatten().map(|(_, value)| value);
                let Some(title) = value(0) else { continue };
                todos.push(Todo {
                    id,
                    title: String::from_utf8_lossy(&title).into_owned(),
                    completed: value(1).is_some_and(|v| v == b"true"),
                });
            }
        }
        Ok(todos)
    }

    /// The todo `id`, if it exists.
    pub fn get(&self, id: u64) -> Result<Option<Todo>, Error> {
        Ok(self.read(&[id])?.pop())
    }

    /// Adds a todo, not completed, and returns it.
    pub fn add(&self, title: &str) -> Result<Todo, Error> {
        let id = atomics::increment(&self.bucket, NEXT_ID_KEY, 1).map_err(kv("increment"))?;
        let entries = [
            (title_key(id), title.as_bytes().to_vec()),
            (completed_key(id), flag(false)),
        ];
        batch::set_many(&self.bucket, &entries).map_err(kv("set-many"))?;
        Ok(Todo {
            id,
            title: title.to_owned(),
            completed: false,
        })
    }

    /// Sets the given fields of todo `id` and returns it as stored, or `None` if there is no
    /// such todo.
    pub fn update(
        &self,
        id: u64,
        title: Option<&str>,
        completed: Option<bool>,
    ) -> Result<Option<Todo>, Error> {
        if !self.bucket.exists(&title_key(id)).map_err(kv("exists"))? {
            return Ok(None);
        }
        let mut entries = Vec::new();
        if let Some(title) = title {
            entries.push((title_key(id), title.as_bytes().to_vec()));
        }
        if let Some(completed) = completed {
            entries.push((completed_key(id), flag(completed)));
        }
        batch::set_many(&self.bucket, &entries).map_err(kv("set-many"))?;
        self.get(id)
    }

    /// Deletes todo `id`; `false` if there was no such todo.
    pub fn delete(&self, id: u64) -> Result<bool, Error> {
        if !self.bucket.exists(&title_key(id)).map_err(kv("exists"))? {
            return Ok(false);
        }
        self.delete_all(&[id])?;
        Ok(true)
    }

    fn delete_all(&self, ids: &[u64]) -> Result<(), Error> {
        for chunk in ids.chunks(BATCH / 2) {
            let keys: Vec<String> = chunk
                .iter()
                .flat_map(|&id| [title_key(id), completed_key(id)])
                .collect();
            batch::delete_many(&self.bucket, &keys).map_err(kv("delete-many"))?;
        }
        Ok(())
    }

    /// Marks every todo completed (or not) and returns them all.
    pub fn set_all_completed(&self, completed: bool) -> Result<Vec<Todo>, Error> {
        let todos = self.list()?;
        let changed: Vec<(String, Vec<u8>)> = todos
            .iter()
            .filter(|todo| todo.completed != completed)
            .map(|todo| (completed_key(todo.id), flag(completed)))
            .collect();
        for chunk in changed.chunks(BATCH) {
            batch::set_many(&self.bucket, chunk).map_err(kv("set-many"))?;
        }
        Ok(todos
            .into_iter()
            .map(|todo| Todo { completed, ..todo })
            .collect())
    }

    /// Deletes the completed todos and returns the others.
    pub fn clear_completed(&self) -> Result<Vec<Todo>, Error> {
        let (completed, active): (Vec<Todo>, Vec<Todo>) =
            self.list()?.into_iter().partition(|todo| todo.completed);
        let ids: Vec<u64> = completed.iter().map(|todo| todo.id).collect();
        self.delete_all(&ids)?;
        Ok(active)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_title_keys_name_todos() {
        assert_eq!(id_of_title_key("todo:42:title"), Some(42));
        assert_eq!(id_of_title_key(&title_key(7)), Some(7));
        for key in [
            "todo:42:completed",
            "todo:next-id",
            "todo::title",
            "todo:+4:title",
            "todo:4x:title",
            "counter",
            "todo:99999999999999999999999:title",
        ] {
            assert_eq!(id_of_title_key(key), None, "{key}");
        }
    }
}
