//! A key-value backend on a Redis server, configured like wasmCloud's `keyvalue-redis`
//! provider so that existing link configuration carries over.
//!
//! [`RedisStore`] implements [`trellis_keyvalue::KeyValue`].
//!
//! # Configuration
//!
//! [`RedisConfig::from_config`] reads a string map:
//!
//! | key   | meaning | default |
//! |-------|---------|---------|
//! | `url` | the Redis URL, matched case-insensitively (wasmCloud writes `URL`): `redis://[[user]:password@]host[:port][/db]` or `redis+unix:///path/to/socket` | `redis://127.0.0.1:6379/` |
//!
//! Other keys are not errors: they are returned in [`RedisConfig::ignored`] so the host can warn
//! about them. TLS (`rediss://`) is not built in, so such a URL is a configuration error.
//! Timeouts come separately, as [`RedisTimeouts`] (connect 2 s, response 5 s by default).
//!
//! # Semantics
//!
//! - **The bucket identifier is ignored**, as in wasmCloud's provider: every bucket is the whole
//!   database that the URL selects (`/0` by default). Use a database number or a separate
//!   server to keep applications apart.
//! - Values are Redis strings; `get-many` is `MGET`, `set-many` is `MSET` (atomic in Redis),
//!   `delete-many` is `DEL`.
//! - `increment` is atomic: one Lua script checks that the current value (if any) is a decimal
//!   unsigned integer, then runs `INCRBY`. Redis counts in signed 64 bits, so a counter here
//!   stops at `i64::MAX` (an overflow is an error that changes nothing) and one increment adds
//!   at most `i64::MAX`. A value written as `-5` or `abc` is refused, unchanged.
//! - `list-keys` is `SCAN`. The cursor we hand out is Redis's own `SCAN` cursor, with one
//!   refinement: `COUNT` is only a hint, so when one `SCAN` step returns more keys than the
//!   page `limit`, the rest of that step are served next, and the cursor then also carries how
//!   many of that step's keys were already returned (in its top 16 bits; Redis cursors stay far
//!   below 2^48). As with `SCAN` itself, a key present for the whole listing is returned at
//!   least once, and may be returned twice. Keys that are not UTF-8 are skipped.
//! - The store never fails to start because Redis is down. It connects on first use and
//!   reconnects after a failure by itself; while Redis is unreachable every call returns
//!   `Error::Other("redis at <url> is unreachable: …; calls will succeed again when it is
//!   back")` within the connect and response timeouts, and calls succeed again, on the same
//!   store, once Redis is back. After a failed connection attempt, calls in the next
//!   half second fail at once rather than queueing for another attempt.
//! - A call that fails with a connection or timeout error may still have been applied by Redis.
//! - [`KeyValue::health`] sends `PING` under the same timeouts.
//! - [`KeyValue::watch`] listens to Redis's keyspace notifications for the watched keys
//!   (`SUBSCRIBE __keyspace@<db>__:<key>`, on a connection of its own). Redis sends them only
//!   when `notify-keyspace-events` asks for them; every watch checks that setting and adds
//!   what is missing of `K$gx` (keyspace channel, string commands, generic commands such as
//!   `DEL`, expiry) with `CONFIG SET`, logging the change, so watching resumes by itself after
//!   Redis restarts with its default (no notifications). A server that refuses `CONFIG SET`
//!   (managed Redis, ACLs) fails the watch with a message saying what to set; one that refuses
//!   `CONFIG GET` is watched all the same, with a warning. A notification carries no value, so
//!   a write is reported with what `GET` returns right after it (a key deleted meanwhile is not
//!   reported as written). Writes are `set`, `setrange`, `append`, `incrby`, `decrby`,
//!   `incrbyfloat` and keys renamed, moved or copied in; deletions are `del`, `unlink`,
//!   expiry, eviction and keys renamed or moved away. The watch ends when its connection
//!   breaks.
//!
//! Passwords in the URL never appear in messages: the user-info part is shown as `***`.

use async_trait::async_trait;
use futures::StreamExt as _;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, RedisError, RedisResult};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use trellis_keyvalue::watch::{Change, Changes, Sent, changes};
use trellis_keyvalue::{Bucket, Error, HealthError, KeyPage, KeyValue};

/// The URL used when the config names none.
pub const DEFAULT_URL: &str = "redis://127.0.0.1:6379/";

/// How long after a failed connection attempt calls fail at once instead of trying again.
const RETRY_GAP: Duration = Duration::from_millis(500);

/// Bits of our `list-keys` cursor that hold Redis's `SCAN` cursor; the bits above hold, when
/// one `SCAN` step had more keys than a page, the [`rank`] of the last key returned from it.
const SCAN_CURSOR_BITS: u32 = 48;
const SCAN_CURSOR_MASK: u64 = (1 << SCAN_CURSOR_BITS) - 1;

/// Where a key stands within a split `SCAN` step: 1 to 32768, from a hash of the key. A
/// step asked again need not come back in the same order, or even with the same keys (Redis
/// may finish rehashing in between), so the rest of a step is "its keys ranked after the last
/// one returned", not "all but the first N": nothing is skipped that was not returned.
fn rank(key: &str) -> u64 {
    // FNV-1a, folded to 15 bits.
    let mut hash: u32 = 0x811c_9dc5;
    for byte in key.bytes() {
        hash = (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193);
    }
    1 + u64::from((hash ^ (hash >> 15) ^ (hash >> 30)) & 0x7fff)
}
/// The largest `COUNT` hint sent with `SCAN`.
const MAX_SCAN_COUNT: usize = 10_000;

/// `url` with a wildcard host (`0.0.0.0`, `[::]`) replaced by the loopback address.
///
/// wasmCloud's examples write `redis://0.0.0.0:6379`, which its provider connects to (on
/// Linux, connecting to the wildcard address reaches the local host); the `redis` crate now
/// refuses wildcard hosts. Connecting to the loopback address is what those manifests mean.
///
/// ```
/// use trellis_keyvalue_redis::loopback_for_wildcard;
/// assert_eq!(loopback_for_wildcard("redis://0.0.0.0:6379"), "redis://127.0.0.1:6379");
/// assert_eq!(loopback_for_wildcard("redis://:pw@[::]:6379/2"), "redis://:pw@[::1]:6379/2");
/// assert_eq!(loopback_for_wildcard("redis://10.0.0.5:6379"), "redis://10.0.0.5:6379");
/// ```
pub fn loopback_for_wildcard(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (userinfo, hostport) = match rest.rsplit_once('@') {
        Some((user, after)) => (format!("{user}@"), after),
        None => (String::new(), rest),
    };
    for (wildcard, loopback) in [("0.0.0.0", "127.0.0.1"), ("[::]", "[::1]")] {
        if let Some(tail) = hostport.strip_prefix(wildcard)
            && (tail.is_empty() || tail.starts_with([':', '/', '?']))
        {
            return format!("{scheme}://{userinfo}{loopback}{tail}");
        }
    }
    url.to_owned()
}

/// A bad Redis configuration.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConfigError {
    /// The URL does not parse.
    #[error(
        "config key `{key}`: `{value}` is not a usable Redis URL; \
         expected something like redis://127.0.0.1:6379/0 or redis://:password@host:6379/1"
    )]
    InvalidUrl {
        /// The key as written in the config (`url`, `URL`, ...).
        key: String,
        /// The value, with any password replaced by `***`.
        value: String,
        /// What the Redis client said.
        #[source]
        source: RedisError,
    },
    /// The URL is given twice, under keys differing only in case, with different values.
    #[error("config keys {} all set the Redis URL, to different values; keep one", .keys.join(", "))]
    ConflictingKeys {
        /// The keys, as written.
        keys: Vec<String>,
    },
}

/// Where the Redis server is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// The Redis URL; see the [crate docs](crate).
    pub url: String,
    /// Config keys that were present but mean nothing to this backend, for the host to warn
    /// about. Not an error: wasmCloud configs may carry keys for other providers.
    pub ignored: Vec<String>,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: DEFAULT_URL.to_owned(),
            ignored: Vec::new(),
        }
    }
}

impl RedisConfig {
    /// Reads the config map: `url` (any case) and nothing else; see the [crate docs](crate).
    pub fn from_config(config: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let mut url: Option<(&String, &String)> = None;
        let mut url_keys = Vec::new();
        let mut ignored = Vec::new();
        for (key, value) in config {
            if key.eq_ignore_ascii_case("url") {
                url_keys.push(key.clone());
                match url {
                    Some((_, first)) if first != value => {
                        return Err(ConfigError::ConflictingKeys {
                            keys: config
                                .keys()
                                .filter(|k| k.eq_ignore_ascii_case("url"))
                                .cloned()
                                .collect(),
                        });
                    }
                    Some(_) => {}
                    None => url = Some((key, value)),
                }
            } else {
                ignored.push(key.clone());
            }
        }
        let url = match url {
            Some((key, value)) => {
                let value = loopback_for_wildcard(value);
                if let Err(source) = Client::open(value.as_str()) {
                    return Err(ConfigError::InvalidUrl {
                        key: key.clone(),
                        value: redact(&value),
                        source,
                    });
                }
                value
            }
            None => DEFAULT_URL.to_owned(),
        };
        Ok(Self { url, ignored })
    }
}

/// How long to wait for Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedisTimeouts {
    /// To open a connection, including the handshake (`AUTH`, `SELECT`).
    pub connect: Duration,
    /// For the answer to one command.
    pub response: Duration,
}

impl Default for RedisTimeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(2),
            response: Duration::from_secs(5),
        }
    }
}

/// A key-value store on a Redis server. Cheap to share: clone the `Arc` the host keeps.
pub struct RedisStore {
    conn: Arc<Conn>,
}

impl RedisStore {
    /// Creates the store and tries once to connect, for at most `timeouts.connect`.
    ///
    /// Never fails because Redis is down: the store then starts disconnected and connects on
    /// a later call. A URL that does not parse (possible only when [`RedisConfig`] was built by
    /// hand, since [`RedisConfig::from_config`] checks it) makes every call fail with the reason.
    pub async fn connect(config: &RedisConfig, timeouts: RedisTimeouts) -> RedisStore {
        let url = redact(&config.url);
        let client = Client::open(config.url.as_str()).map_err(|e| {
            format!("the Redis URL `{url}` is not usable ({e}); fix the `url` config key")
        });
        let store = RedisStore {
            conn: Arc::new(Conn {
                client,
                config: AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(timeouts.connect))
                    .set_response_timeout(Some(timeouts.response)),
                url,
                timeouts,
                state: Mutex::new(State::default()),
            }),
        };
        match store
            .conn
            .call(|mut c| async move { redis::cmd("PING").query_async::<()>(&mut c).await })
            .await
        {
            Ok(()) => tracing::debug!(url = %store.conn.url, "connected to redis"),
            Err(e) => {
                tracing::warn!(url = %store.conn.url, error = %e, "redis is not reachable yet; will connect when it is")
            }
        }
        store
    }

    /// The URL this store talks to, with any password hidden.
    pub fn url(&self) -> &str {
        &self.conn.url
    }
}

#[async_trait]
impl KeyValue for RedisStore {
    /// Every identifier opens the same keyspace: the database the URL selects.
    async fn open(&self, _identifier: &str) -> Result<Arc<dyn Bucket>, Error> {
        Ok(Arc::new(RedisBucket {
            conn: self.conn.clone(),
        }))
    }

    async fn health(&self) -> Result<(), HealthError> {
        self.conn
            .call(|mut c| async move { redis::cmd("PING").query_async::<String>(&mut c).await })
            .await?;
        Ok(())
    }

    async fn watch(
        &self,
        keys: BTreeSet<String>,
        capacity: usize,
        source: &str,
    ) -> Result<Changes, Error> {
        let (tx, rx) = changes(capacity, source);
        if keys.is_empty() {
            tokio::spawn(async move { tx.closed().await });
            return Ok(rx);
        }
        let client = self
            .conn
            .client
            .as_ref()
            .map_err(|e| Error::Other(e.clone()))?;
        self.conn.ensure_keyspace_events().await?;
        let db = client.get_connection_info().redis_settings().db();
        let prefix = format!("__keyspace@{db}__:");
        let subscribe = async {
            let mut pubsub = client.get_async_pubsub().await?;
            let channels: Vec<String> = keys.iter().map(|k| format!("{prefix}{k}")).collect();
            pubsub.subscribe(channels).await?;
            Ok::<_, RedisError>(pubsub)
        };
        let limit = self.conn.timeouts.connect + self.conn.timeouts.response;
        let pubsub = match tokio::time::timeout(limit, subscribe).await {
            Ok(Ok(pubsub)) => pubsub,
            Ok(Err(e)) => return Err(self.conn.unreachable(describe(&e))),
            Err(_) => {
                return Err(self.conn.unreachable(format!(
                    "subscribing did not finish within {:.1}s",
                    limit.as_secs_f64()
                )));
            }
        };
        tracing::debug!(url = %self.conn.url, keys = keys.len(), "watching redis keys");
        let conn = self.conn.clone();
        tokio::spawn(async move {
            let mut messages = pubsub.into_on_message();
            loop {
                let message = tokio::select! {
                    message = messages.next() => message,
                    () = tx.closed() => break,
                };
                let Some(message) = message else {
                    tracing::warn!(url = %conn.url, "lost the redis connection that watches keys");
                    break;
                };
                let Ok(channel) = message.get_channel::<Vec<u8>>() else {
                    continue;
                };
                let Some(key) = channel
                    .strip_prefix(prefix.as_bytes())
                    .and_then(|k| std::str::from_utf8(k).ok())
                else {
                    continue;
                };
                let event = String::from_utf8_lossy(message.get_payload_bytes());
                let change = match event_kind(&event) {
                    Some(Kind::Write) => {
                        let cmd = redis::cmd("GET").arg(key).to_owned();
                        let value: Result<Option<Vec<u8>>, Error> = conn
                            .call(|mut c| async move { cmd.query_async(&mut c).await })
                            .await;
                        match value {
                            Ok(Some(value)) => Change::Set {
                                bucket: String::new(),
                                key: key.to_owned(),
                                value,
                            },
                            // Deleted since: its deletion is on its way.
                            Ok(None) => continue,
                            Err(e) => {
                                tracing::warn!(url = %conn.url, key, error = %e, "cannot read the value of a changed key; not reporting the change");
                                continue;
                            }
                        }
                    }
                    Some(Kind::Delete) => Change::Delete {
                        bucket: String::new(),
                        key: key.to_owned(),
                    },
                    None => continue,
                };
                if tx.send(change) == Sent::Closed {
                    break;
                }
            }
        });
        Ok(rx)
    }
}

/// What a keyspace notification says happened to its key.
enum Kind {
    Write,
    Delete,
}

/// The kind of change a keyspace event (the notification's payload) is, if it is one a
/// watch reports.
fn event_kind(event: &str) -> Option<Kind> {
    match event {
        "set" | "setrange" | "append" | "incrby" | "decrby" | "incrbyfloat" | "rename_to"
        | "move_to" | "copy_to" | "restore" => Some(Kind::Write),
        "del" | "unlink" | "expired" | "evicted" | "rename_from" | "move_from" => {
            Some(Kind::Delete)
        }
        _ => None,
    }
}

/// What `notify-keyspace-events` must hold for watches (`K$gx`) that `flags` lacks; `A`
/// stands for every class of command.
fn missing_keyspace_flags(flags: &str) -> String {
    let all = flags.contains('A');
    [('K', false), ('$', all), ('g', all), ('x', all)]
        .into_iter()
        .filter(|(flag, covered)| !covered && !flags.contains(*flag))
        .map(|(flag, _)| flag)
        .collect()
}

/// The connection shared by the store and its buckets, replaced when it fails.
struct Conn {
    client: Result<Client, String>,
    config: AsyncConnectionConfig,
    /// The URL for messages, password hidden.
    url: String,
    timeouts: RedisTimeouts,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The live connection and its generation number.
    current: Option<(u64, MultiplexedConnection)>,
    generation: u64,
    /// When the last connection attempt failed, and the error calls got.
    last_failure: Option<(Instant, Error)>,
}

impl Conn {
    fn unreachable(&self, why: impl std::fmt::Display) -> Error {
        Error::Other(format!(
            "redis at {} is unreachable: {why}; calls will succeed again when it is back",
            self.url
        ))
    }

    /// The live connection, connecting first if there is none.
    async fn connection(&self) -> Result<(u64, MultiplexedConnection), Error> {
        let client = self.client.as_ref().map_err(|e| Error::Other(e.clone()))?;
        let mut state = self.state.lock().await;
        if let Some(current) = &state.current {
            return Ok(current.clone());
        }
        if let Some((at, error)) = &state.last_failure
            && at.elapsed() < RETRY_GAP
        {
            return Err(error.clone());
        }
        let attempt = tokio::time::timeout(
            self.timeouts.connect + Duration::from_millis(100),
            client.get_multiplexed_async_connection_with_config(&self.config),
        )
        .await
        .unwrap_or_else(|_| {
            Err(RedisError::from(std::io::Error::from(
                std::io::ErrorKind::TimedOut,
            )))
        });
        match attempt {
            Ok(connection) => {
                if state.last_failure.take().is_some() {
                    tracing::info!(url = %self.url, "reconnected to redis");
                }
                state.generation += 1;
                let current = (state.generation, connection);
                state.current = Some(current.clone());
                Ok(current)
            }
            Err(e) => {
                let why = describe(&e);
                if state.last_failure.is_none() {
                    tracing::warn!(url = %self.url, error = %why, "cannot connect to redis");
                }
                let error = if e.kind() == redis::ErrorKind::AuthenticationFailed {
                    Error::Other(format!(
                        "redis at {} refused our credentials ({why}); fix the user or password \
                         in the `url` config key",
                        self.url
                    ))
                } else {
                    self.unreachable(why)
                };
                state.last_failure = Some((Instant::now(), error.clone()));
                Err(error)
            }
        }
    }

    /// Makes sure Redis sends the keyspace notifications a watch needs, switching on what is
    /// missing; see the [crate docs](crate).
    async fn ensure_keyspace_events(&self) -> Result<(), Error> {
        // A refusal from the server (not a broken connection) comes back as a value, so
        // that it can be told apart from Redis being unreachable.
        let config = |args: Vec<String>| async move {
            self.call(|mut c| async move {
                let mut cmd = redis::cmd("CONFIG");
                for arg in &args {
                    cmd.arg(arg);
                }
                match cmd.query_async::<redis::Value>(&mut c).await {
                    Ok(value) => Ok(Ok(value)),
                    Err(e) if is_connection_failure(&e) => Err(e),
                    Err(e) => Ok(Err(e.to_string())),
                }
            })
            .await
        };
        let current = match config(vec!["GET".into(), "notify-keyspace-events".into()]).await? {
            Ok(value) => redis::from_redis_value::<Vec<String>>(value)
                .ok()
                .and_then(|pair| pair.into_iter().nth(1))
                .unwrap_or_default(),
            Err(refused) => {
                tracing::warn!(url = %self.url, error = %refused, "cannot read redis's notify-keyspace-events; watching anyway: if no changes arrive, set it to include K$gx");
                return Ok(());
            }
        };
        let missing = missing_keyspace_flags(&current);
        if missing.is_empty() {
            return Ok(());
        }
        let wanted = format!("{current}{missing}");
        match config(vec![
            "SET".into(),
            "notify-keyspace-events".into(),
            wanted.clone(),
        ])
        .await?
        {
            Ok(_) => {
                tracing::info!(url = %self.url, was = %current, now = %wanted, "switched on redis keyspace notifications (notify-keyspace-events) for watched keys");
                Ok(())
            }
            Err(refused) => Err(Error::Other(format!(
                "redis at {} does not report key changes (notify-keyspace-events is `{current}`) \
                 and refused to switch them on ({refused}); set notify-keyspace-events to include \
                 `K$gx` (`redis-cli CONFIG SET notify-keyspace-events K$gx`, or \
                 `notify-keyspace-events K$gx` in redis.conf)",
                self.url
            ))),
        }
    }

    /// Forgets connection `generation` after it failed, so that the next call reconnects.
    async fn forget(&self, generation: u64, why: &str) {
        let mut state = self.state.lock().await;
        if state
            .current
            .as_ref()
            .is_some_and(|(g, _)| *g == generation)
        {
            tracing::warn!(url = %self.url, error = %why, "lost the connection to redis");
            state.current = None;
        }
    }

    /// Runs one request on the live connection, bounded by the timeouts; a connection-level
    /// failure drops the connection so that the next call reconnects.
    async fn call<T, F, Fut>(&self, request: F) -> Result<T, Error>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let limit = self.timeouts.connect + self.timeouts.response + Duration::from_millis(200);
        let attempt = async {
            let (generation, connection) = self.connection().await?;
            match request(connection).await {
                Ok(value) => Ok(value),
                Err(e) if is_connection_failure(&e) => {
                    let why = describe(&e);
                    self.forget(generation, &why).await;
                    Err(self.unreachable(why))
                }
                Err(e) => Err(Error::Other(format!(
                    "redis at {} refused the call: {e}",
                    self.url
                ))),
            }
        };
        match tokio::time::timeout(limit, attempt).await {
            Ok(result) => result,
            Err(_) => {
                Err(self.unreachable(format!("no answer within {:.1}s", limit.as_secs_f64())))
            }
        }
    }
}

/// Whether `e` means the connection is unusable (rather than Redis refusing one command).
fn is_connection_failure(e: &RedisError) -> bool {
    e.is_io_error() || e.is_unrecoverable_error() || e.is_connection_dropped() || e.is_timeout()
}

fn describe(e: &RedisError) -> String {
    if e.is_timeout() {
        format!("timed out ({e})")
    } else {
        e.to_string()
    }
}

/// `url` with the user-info part (`user:password@`) replaced by `***@`.
fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let authority_end = url[scheme_end..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| scheme_end + i);
    match url[scheme_end..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &url[..scheme_end], &url[scheme_end + at..]),
        None => url.to_owned(),
    }
}

/// The whole database the URL selects, whatever identifier opened it.
struct RedisBucket {
    conn: Arc<Conn>,
}

/// Checks the current value and increments it in one step; replies `{status, value-or-error}`:
/// 0 = done (value is the new counter, as text, so that no precision is lost in Lua's doubles),
/// 1 = the current value is not a decimal unsigned integer, 2 = `INCRBY` refused.
const INCREMENT: &str = r"
local current = redis.call('GET', KEYS[1])
if current and not string.match(current, '^%d+$') then
  return {1, ''}
end
local result = redis.pcall('INCRBY', KEYS[1], ARGV[1])
if type(result) == 'table' and result.err then
  return {2, result.err}
end
return {0, redis.call('GET', KEYS[1])}
";

fn increment_script() -> &'static redis::Script {
    static SCRIPT: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
    SCRIPT.get_or_init(|| redis::Script::new(INCREMENT))
}

#[async_trait]
impl Bucket for RedisBucket {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        let cmd = redis::cmd("GET").arg(key).to_owned();
        self.conn
            .call(|mut c| async move { cmd.query_async(&mut c).await })
            .await
    }

    async fn set(&self, key: &str, value: Vec<u8>) -> Result<(), Error> {
        let cmd = redis::cmd("SET").arg(key).arg(value).to_owned();
        self.conn
            .call(|mut c| async move { cmd.query_async(&mut c).await })
            .await
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
        let cmd = redis::cmd("DEL").arg(key).to_owned();
        self.conn
            .call(|mut c| async move { cmd.query_async(&mut c).await })
            .await
    }

    async fn exists(&self, key: &str) -> Result<bool, Error> {
        let cmd = redis::cmd("EXISTS").arg(key).to_owned();
        self.conn
            .call(|mut c| async move { cmd.query_async(&mut c).await })
            .await
    }

    async fn list_keys(&self, cursor: Option<u64>, limit: usize) -> Result<KeyPage, Error> {
        let raw = cursor.unwrap_or(0);
        if limit == 0 {
            return Ok(KeyPage {
                keys: Vec::new(),
                cursor: Some(raw),
            });
        }
        let scan_cursor = raw & SCAN_CURSOR_MASK;
        // 0: the whole step; else only the keys ranked after this.
        let after = raw >> SCAN_CURSOR_BITS;
        let cmd = redis::cmd("SCAN")
            .arg(scan_cursor)
            .arg("COUNT")
            .arg(limit.min(MAX_SCAN_COUNT))
            .to_owned();
        let (next, batch): (u64, Vec<Vec<u8>>) = self
            .conn
            .call(|mut c| async move { cmd.query_async(&mut c).await })
            .await?;
        if next > SCAN_CURSOR_MASK {
            return Err(Error::other(format!(
                "redis at {} returned SCAN cursor {next}, larger than this backend can page with",
                self.conn.url
            )));
        }
        let mut ranked: Vec<(u64, String)> = batch
            .into_iter()
            .filter_map(|k| String::from_utf8(k).ok())
            .map(|k| (rank(&k), k))
            .filter(|(r, _)| *r > after)
            .collect();
        ranked.sort();
        let total = ranked.len();
        let end = if total > limit {
            // Keys sharing the last rank all go in this page, even past the limit.
            let last = ranked[limit - 1].0;
            ranked.iter().take_while(|(r, _)| *r <= last).count()
        } else {
            total
        };
        let cursor = if end < total {
            // More of this step is left: come back to it for the keys ranked after the last
            // one returned.
            Some(scan_cursor | (ranked[end - 1].0 << SCAN_CURSOR_BITS))
        } else {
            (next != 0).then_some(next)
        };
        ranked.truncate(end);
        let keys = ranked.into_iter().map(|(_, k)| k).collect();
        Ok(KeyPage { keys, cursor })
    }

    async fn increment(&self, key: &str, delta: u64) -> Result<u64, Error> {
        let Ok(delta) = i64::try_from(delta) else {
            return Err(Error::other(format!(
                "cannot increment `{key}` by {delta}: Redis counts in signed 64 bits, so one \
                 increment may add at most {}",
                i64::MAX
            )));
        };
        let mut invocation = increment_script().key(key);
        invocation.arg(delta);
        let (status, text): (i64, String) = self
            .conn
            .call(|mut c| async move { invocation.invoke_async(&mut c).await })
            .await?;
        match status {
            0 => text.parse::<u64>().map_err(|_| {
                Error::other(format!(
                    "cannot increment `{key}`: Redis returned `{text}`, not a counter"
                ))
            }),
            1 => Err(Error::other(format!(
                "cannot increment `{key}`: its value is not a decimal unsigned integer"
            ))),
            _ if text.contains("overflow") => Err(Error::other(format!(
                "cannot increment `{key}`: the result overflows Redis's signed 64-bit counters \
                 (at most {})",
                i64::MAX
            ))),
            _ => Err(Error::other(format!(
                "cannot increment `{key}`: its value is not an integer Redis can count with \
                 (Redis counters are signed 64-bit): {text}"
            ))),
        }
    }

    async fn get_many(&self, keys: Vec<String>) -> Result<Vec<Option<(String, Vec<u8>)>>, Error> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let cmd = redis::cmd("MGET").arg(&keys).to_owned();
        let values: Vec<Option<Vec<u8>>> = self
            .conn
            .call(|mut c| async move { cmd.query_async(&mut c).await })
            .await?;
        if values.len() != keys.len() {
            return Err(Error::other(format!(
                "redis at {} answered MGET of {} keys with {} values",
                self.conn.url,
                keys.len(),
                values.len()
            )));
        }
        Ok(keys
            .into_iter()
            .zip(values)
            .map(|(k, v)| v.map(|v| (k, v)))
            .collect())
    }

    async fn set_many(&self, pairs: Vec<(String, Vec<u8>)>) -> Result<(), Error> {
        if pairs.is_empty() {
            return Ok(());
        }
        let mut cmd = redis::cmd("MSET");
        for (key, value) in &pairs {
            cmd.arg(key).arg(value);
        }
        self.conn
            .call(|mut c| async move { cmd.query_async(&mut c).await })
            .await
    }

    async fn delete_many(&self, keys: Vec<String>) -> Result<(), Error> {
        if keys.is_empty() {
            return Ok(());
        }
        let cmd = redis::cmd("DEL").arg(&keys).to_owned();
        self.conn
            .call(|mut c| async move { cmd.query_async(&mut c).await })
            .await
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
    fn defaults_to_local_redis() {
        let config = RedisConfig::from_config(&BTreeMap::new()).expect("empty config");
        assert_eq!(config, RedisConfig::default());
        assert_eq!(config.url, "redis://127.0.0.1:6379/");
    }

    #[test]
    fn url_key_is_case_insensitive_and_other_keys_are_ignored() {
        for key in ["url", "URL", "Url"] {
            let config = RedisConfig::from_config(&map(&[
                (key, "redis://example.invalid:7000/3"),
                ("bucket", "x"),
                ("TLS_CA", "y"),
            ]))
            .expect("valid");
            assert_eq!(config.url, "redis://example.invalid:7000/3");
            assert_eq!(config.ignored, ["TLS_CA", "bucket"]);
        }
    }

    #[test]
    fn the_same_url_twice_is_fine_but_two_urls_are_an_error() {
        let same = map(&[("URL", "redis://a/"), ("url", "redis://a/")]);
        assert_eq!(
            RedisConfig::from_config(&same).expect("same").url,
            "redis://a/"
        );
        let different = map(&[("URL", "redis://a/"), ("url", "redis://b/")]);
        let err = RedisConfig::from_config(&different).expect_err("conflict");
        assert!(err.to_string().contains("URL, url"), "{err}");
    }

    #[test]
    fn a_bad_url_names_the_key_and_an_example_and_hides_the_password() {
        let err = RedisConfig::from_config(&map(&[("URL", "http://:secret@host/")]))
            .expect_err("not redis");
        let message = err.to_string();
        let mut chain = message.clone();
        let mut cause = std::error::Error::source(&err);
        while let Some(e) = cause {
            chain = format!("{chain}: {e}");
            cause = e.source();
        }
        assert!(!chain.contains("secret"), "{chain}");
        assert!(message.contains("`URL`"), "{message}");
        assert!(message.contains("redis://127.0.0.1:6379/0"), "{message}");
        assert!(!message.contains("secret"), "{message}");
        for bad in ["", "not a url", "redis://host:notaport/"] {
            assert!(
                RedisConfig::from_config(&map(&[("url", bad)])).is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    /// wasmCloud's examples connect to `redis://0.0.0.0:6379`; that means this machine.
    #[test]
    fn a_wildcard_host_means_the_loopback_address() {
        let config = RedisConfig::from_config(&map(&[("url", "redis://0.0.0.0:6379")]))
            .expect("wasmCloud's example URL is accepted");
        assert_eq!(config.url, "redis://127.0.0.1:6379");
        assert_eq!(
            loopback_for_wildcard("rediss://u:p@0.0.0.0/1"),
            "rediss://u:p@127.0.0.1/1"
        );
        // Only the host: a password or database that looks like one is left alone.
        assert_eq!(
            loopback_for_wildcard("redis://:0.0.0.0@host:6379"),
            "redis://:0.0.0.0@host:6379"
        );
        assert_eq!(
            loopback_for_wildcard("redis://0.0.0.01:6379"),
            "redis://0.0.0.01:6379"
        );
    }

    #[test]
    fn keyspace_flags_are_added_only_where_missing() {
        assert_eq!(missing_keyspace_flags(""), "K$gx");
        assert_eq!(missing_keyspace_flags("Kg$"), "x");
        assert_eq!(missing_keyspace_flags("AK"), "");
        assert_eq!(missing_keyspace_flags("Ex"), "K$g");
    }

    #[test]
    fn redact_hides_user_info_only() {
        assert_eq!(redact("redis://:pw@host:1/2"), "redis://***@host:1/2");
        assert_eq!(redact("redis://user:p@w@host/"), "redis://***@host/");
        assert_eq!(redact("redis://host:1/2?x=a@b"), "redis://host:1/2?x=a@b");
        assert_eq!(redact("redis://host"), "redis://host");
        assert_eq!(redact("nonsense"), "nonsense");
    }
}
