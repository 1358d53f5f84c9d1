//! The built-in `sqldb-postgres` provider: `wasmcloud:postgres@0.1.1-draft` (`query`,
//! `prepared`, and the `types` they use) on a PostgreSQL server, configured with the keys
//! of wasmCloud's `sqldb-postgres` provider so that existing manifests and named config
//! carry over.
//!
//! The crate knows nothing of wasm: the runtime converts the guest's values into this
//! crate's [`PgValue`] (a one-to-one mirror of the WIT) and calls a [`Postgres`].
//!
//! - [`config`]: [`PostgresConfig::from_config`] reads the provider's and the link's config.
//! - [`value`]: the WIT's types as Rust types.
//! - `codec`: those values to and from PostgreSQL's binary format.
//! - this file: [`Postgres`], a connection pool per distinct configuration, the calls, the
//!   prepared statements, [`Limits`] and the errors the guest sees.
//!
//! # Why tokio-postgres and deadpool-postgres
//!
//! `tokio-postgres` is the maintained asynchronous PostgreSQL client of the Rust ecosystem
//! (the `postgres` crate is a blocking wrapper around it); it speaks the extended protocol,
//! so parameters travel separately from the SQL and in binary, typed by the server.
//! `deadpool-postgres` is the pool made for it: it recycles connections that died (a
//! restarted server) and caches prepared statements per connection, which is what a
//! prepared-statement token needs when its next execution lands on another connection.
//! wasmCloud's provider uses the same two crates, so behaviour at the edges matches.
//!
//! # Semantics
//!
//! - A pool is created per distinct configuration (the host keeps one [`Postgres`] per
//!   distinct link config), and connects lazily: a provider never fails to start because
//!   the server is down. While it is down, calls fail within the connect timeout with
//!   `unexpected("postgres at HOST:PORT is unreachable: …")` and work again, on the same
//!   pool and without a redeploy, once it is back: connections the server closed are
//!   dropped from the pool when next taken.
//! - Errors from the server reach the guest with the server's message and SQLSTATE:
//!   `invalid-query` for syntax and access-rule errors (SQLSTATE class 42) and results that
//!   cannot be represented, `invalid-params` for parameters that do not fit, `unexpected`
//!   for the rest.
//! - Prepared statements belong to whoever prepared them (the runtime passes the component
//!   and link name as the owner): a token is unknown to anyone else. Preparing the same SQL
//!   again returns the same token, and each owner keeps at most [`Limits::max_prepared`]
//!   statements, the least recently used forgotten first, so a component that prepares on
//!   every request does not grow the host's memory. A statement is re-prepared on whichever
//!   pooled connection runs it.
//! - Every call is bounded by [`Limits`]: a query that runs past `query_timeout` is
//!   cancelled on the server; one that returns more than `max_rows` rows or `max_bytes`
//!   bytes of data is cancelled and answered with an error, never truncated silently.

pub(crate) mod codec;
pub mod config;
pub mod value;

pub use config::{ConfigError, PostgresConfig};
pub use value::{PgValue, ResultRow, ResultRowEntry};

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod};
use futures::TryStreamExt as _;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio_postgres::types::Type;
use tokio_postgres::{NoTls, Row};
pub use trellis_provider::HealthError;

/// Bounds on one call, set by the host (`trellis up` flags) and tightened by a link's
/// config keys (see [`PostgresConfig`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// How long a query or statement may run; it is then cancelled on the server.
    pub query_timeout: Duration,
    /// Most rows one query may return.
    pub max_rows: usize,
    /// Most bytes of data one query may return, counted as [`PgValue::data_size`] plus the
    /// column names.
    pub max_bytes: usize,
    /// Longest SQL text a guest may send, in bytes.
    pub max_statement_bytes: usize,
    /// Most prepared statements one owner (a component's link) keeps.
    pub max_prepared: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            query_timeout: Duration::from_secs(10),
            max_rows: 10_000,
            max_bytes: 16 << 20,
            max_statement_bytes: 1 << 20,
            max_prepared: 1000,
        }
    }
}

/// Why a query failed: `wasmcloud:postgres/types.query-error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// A parameter does not fit, or their number is wrong.
    #[error("invalid parameters: {0}")]
    InvalidParams(String),
    /// The server refused the SQL, or its result cannot be represented.
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// Anything else: the server is down, a limit was reached, the server failed.
    #[error("{0}")]
    Unexpected(String),
}

/// Why a statement could not be prepared: `statement-prepare-error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrepareError {
    /// The only case the WIT has; the message says what happened.
    #[error("{0}")]
    Unexpected(String),
}

/// Why a prepared statement could not run: `prepared-statement-exec-error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    /// The token is not one this owner prepared (or it was forgotten, see the crate docs).
    #[error("unknown prepared statement token")]
    UnknownPreparedQuery,
    /// Running it failed.
    #[error(transparent)]
    QueryError(QueryError),
    /// Anything else.
    #[error("{0}")]
    Unexpected(String),
}

/// One prepared statement: enough to prepare it again on any connection.
struct Prepared {
    owner: String,
    sql: String,
    types: Vec<Type>,
    /// When it was last prepared or run, for forgetting the least recently used.
    used: u64,
}

#[derive(Default)]
struct Statements {
    by_token: HashMap<String, Prepared>,
    clock: u64,
}

/// A PostgreSQL database behind a connection pool. Cheap to share: the host keeps it in an
/// `Arc` per distinct link config.
pub struct Postgres {
    pool: Pool,
    /// `host:port`, for messages.
    endpoint: String,
    /// `database` as `user`, for messages.
    who: String,
    /// Bounds from the config, applied over the host's.
    config_limits: config::ConfigLimits,
    statements: Mutex<Statements>,
}

impl Postgres {
    /// Creates the pool and tries one connection, so that a wrong host or password shows in
    /// the log at once. Never fails because the server is down: calls then fail until it is
    /// up. Fails only for a configuration this backend cannot serve (TLS).
    pub async fn connect(config: &PostgresConfig) -> Result<Postgres, ConfigError> {
        if config.tls_required {
            return Err(ConfigError::TlsUnsupported);
        }
        let mut pg = tokio_postgres::Config::new();
        pg.host(&config.host)
            .port(config.port)
            .user(&config.username)
            .password(config.password.as_bytes())
            .dbname(&config.database)
            .application_name("trellis")
            .connect_timeout(config.connect_timeout);
        let manager = Manager::from_config(
            pg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let mut builder = Pool::builder(manager)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(config.connect_timeout + Duration::from_secs(5)))
            .create_timeout(Some(config.connect_timeout + Duration::from_millis(500)))
            .recycle_timeout(Some(config.connect_timeout));
        if let Some(size) = config.pool_size {
            builder = builder.max_size(size);
        }
        let pool = builder
            .build()
            .map_err(|e| ConfigError::Pool(e.to_string()))?;
        let db = Postgres {
            pool,
            endpoint: format!("{}:{}", config.host, config.port),
            who: format!("database `{}` as `{}`", config.database, config.username),
            config_limits: config.limits.clone(),
            statements: Mutex::default(),
        };
        match db.client().await {
            Ok(_) => tracing::debug!(endpoint = %db.endpoint, "connected to postgres"),
            Err(e) => {
                tracing::warn!(endpoint = %db.endpoint, error = %e, "postgres is not reachable yet; calls will fail until it is")
            }
        }
        Ok(db)
    }

    /// `host:port` of the server.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The host's limits, tightened by the config's.
    pub fn limits(&self, host: &Limits) -> Limits {
        self.config_limits.apply(host)
    }

    /// Runs one parameterised statement and returns its rows.
    pub async fn query(
        &self,
        sql: &str,
        params: &[PgValue],
        limits: &Limits,
    ) -> Result<Vec<ResultRow>, QueryError> {
        let limits = self.limits(limits);
        check_sql(sql, &limits)?;
        let client = self.client().await?;
        let run = async |client: &Object| {
            let stream = client
                .query_raw(sql, params.iter().map(codec::Param))
                .await
                .map_err(|e| self.error(&e))?;
            futures::pin_mut!(stream);
            let mut rows = Vec::new();
            let mut bytes = 0usize;
            while let Some(row) = stream.try_next().await.map_err(|e| self.error(&e))? {
                if rows.len() == limits.max_rows {
                    return Err(Stop::Bound(QueryError::Unexpected(format!(
                        "the query returned more than {} rows, the limit (link config \
                         POSTGRES_MAX_ROWS, host flag --max-pg-rows); it was cancelled: add a \
                         LIMIT or fetch in pages",
                        limits.max_rows
                    ))));
                }
                let row = result_row(&row).map_err(Stop::Query)?;
                bytes += row
                    .iter()
                    .map(|e| e.column_name.len() + e.value.data_size())
                    .sum::<usize>();
                if bytes > limits.max_bytes {
                    return Err(Stop::Bound(QueryError::Unexpected(format!(
                        "the query returned more than {} bytes of data, the limit (link config \
                         POSTGRES_MAX_BYTES, host flag --max-pg-bytes); it was cancelled: \
                         select fewer columns or rows",
                        limits.max_bytes
                    ))));
                }
                rows.push(row);
            }
            Ok(rows)
        };
        self.bounded(client, &limits, run).await
    }

    /// Runs SQL that may hold several statements, without parameters and without results
    /// (`query-batch`: migrations and the like).
    pub async fn query_batch(&self, sql: &str, limits: &Limits) -> Result<(), QueryError> {
        let limits = self.limits(limits);
        check_sql(sql, &limits)?;
        let client = self.client().await?;
        let run = async |client: &Object| {
            client
                .batch_execute(sql)
                .await
                .map_err(|e| Stop::Query(self.error(&e)))
        };
        self.bounded(client, &limits, run).await
    }

    /// Prepares `sql` for `owner` and returns its token (the same token for the same SQL).
    pub async fn prepare(
        &self,
        owner: &str,
        sql: &str,
        limits: &Limits,
    ) -> Result<String, PrepareError> {
        let limits = self.limits(limits);
        let unexpected = |e: QueryError| PrepareError::Unexpected(e.to_string());
        check_sql(sql, &limits).map_err(unexpected)?;
        {
            let mut statements = sync_lock(&self.statements);
            let now = statements.tick();
            if let Some((token, p)) = statements
                .by_token
                .iter_mut()
                .find(|(_, p)| p.owner == owner && p.sql == sql)
            {
                p.used = now;
                return Ok(token.clone());
            }
        }
        let client = self.client().await.map_err(unexpected)?;
        let run = async |client: &Object| {
            client
                .prepare_cached(sql)
                .await
                .map_err(|e| Stop::Query(self.error(&e)))
        };
        let statement = self
            .bounded(client, &limits, run)
            .await
            .map_err(unexpected)?;
        let token = format!("prepared-statement-{}", uuid::Uuid::new_v4().simple());
        let mut statements = sync_lock(&self.statements);
        let used = statements.tick();
        statements.by_token.insert(
            token.clone(),
            Prepared {
                owner: owner.to_owned(),
                sql: sql.to_owned(),
                types: statement.params().to_vec(),
                used,
            },
        );
        statements.forget_beyond(owner, limits.max_prepared);
        Ok(token)
    }

    /// Runs the statement `token` that `owner` prepared; returns the number of rows
    /// affected.
    pub async fn exec(
        &self,
        owner: &str,
        token: &str,
        params: &[PgValue],
        limits: &Limits,
    ) -> Result<u64, ExecError> {
        let limits = self.limits(limits);
        let (sql, types) = {
            let mut statements = sync_lock(&self.statements);
            let now = statements.tick();
            match statements.by_token.get_mut(token) {
                Some(p) if p.owner == owner => {
                    p.used = now;
                    (p.sql.clone(), p.types.clone())
                }
                _ => return Err(ExecError::UnknownPreparedQuery),
            }
        };
        let client = self.client().await.map_err(ExecError::QueryError)?;
        let run = async |client: &Object| {
            let statement = client
                .prepare_typed_cached(&sql, &types)
                .await
                .map_err(|e| Stop::Query(self.error(&e)))?;
            client
                .execute_raw(&statement, params.iter().map(codec::Param))
                .await
                .map_err(|e| Stop::Query(self.error(&e)))
        };
        self.bounded(client, &limits, run)
            .await
            .map_err(ExecError::QueryError)
    }

    /// Takes a connection and runs `SELECT 1` on it.
    pub async fn health(&self) -> Result<(), HealthError<QueryError>> {
        let client = self.client().await?;
        let limits = Limits {
            query_timeout: Duration::from_secs(5),
            ..Limits::default()
        };
        let run = async |client: &Object| {
            client
                .simple_query("SELECT 1")
                .await
                .map_err(|e| Stop::Query(self.error(&e)))
        };
        self.bounded(client, &limits, run).await?;
        Ok(())
    }

    /// A pooled connection, or the error that says why there is none.
    async fn client(&self) -> Result<Object, QueryError> {
        self.pool.get().await.map_err(|e| match e {
            PoolError::Backend(e) => match e.as_db_error() {
                Some(db) => QueryError::Unexpected(format!(
                    "postgres at {} refused to connect to {}: {} (SQLSTATE {}); check \
                     POSTGRES_USERNAME, POSTGRES_PASSWORD and POSTGRES_DATABASE in the link's \
                     config",
                    self.endpoint,
                    self.who,
                    db.message(),
                    db.code().code()
                )),
                None => self.unreachable(&error_chain(&e)),
            },
            PoolError::Timeout(_) => self.unreachable(
                "no connection could be made or freed in time (the server is slow to answer, \
                 or every pooled connection is busy: raise POSTGRES_POOL_SIZE)",
            ),
            other => self.unreachable(&other.to_string()),
        })
    }

    fn unreachable(&self, why: &str) -> QueryError {
        QueryError::Unexpected(format!(
            "postgres at {} is unreachable: {why}; start the server or fix POSTGRES_HOST and \
             POSTGRES_PORT in the link's config: calls succeed again as soon as it answers, \
             without a redeploy",
            self.endpoint
        ))
    }

    /// Runs `work` on `client` within the query timeout. When the time is up, or a bound on
    /// the result stops it early, the query is cancelled on the server and the connection
    /// is dropped rather than returned to the pool mid-query.
    async fn bounded<T>(
        &self,
        client: Object,
        limits: &Limits,
        work: impl AsyncFnOnce(&Object) -> Result<T, Stop>,
    ) -> Result<T, QueryError> {
        let cancel = client.cancel_token();
        let outcome = tokio::time::timeout(limits.query_timeout, work(&client)).await;
        let (error, stop_server) = match outcome {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(Stop::Query(e))) => (e, false),
            Ok(Err(Stop::Bound(e))) => (e, true),
            Err(_) => (
                QueryError::Unexpected(format!(
                    "the query did not finish within {:?}, the limit (link config \
                     POSTGRES_QUERY_TIMEOUT_MS, host flag --pg-query-timeout); it was cancelled",
                    limits.query_timeout
                )),
                true,
            ),
        };
        if stop_server {
            drop(Object::take(client));
            let endpoint = self.endpoint.clone();
            tokio::spawn(async move {
                if let Err(e) = cancel.cancel_query(NoTls).await {
                    tracing::debug!(%endpoint, error = %e, "could not cancel a query");
                }
            });
        }
        Err(error)
    }

    /// What a guest sees of a failed call.
    fn error(&self, e: &tokio_postgres::Error) -> QueryError {
        if let Some(db) = e.as_db_error() {
            let mut message = format!("{} (SQLSTATE {})", db.message(), db.code().code());
            if let Some(detail) = db.detail() {
                message = format!("{message}; detail: {detail}");
            }
            if let Some(hint) = db.hint() {
                message = format!("{message}; hint: {hint}");
            }
            return if db.code().code().starts_with("42") {
                QueryError::InvalidQuery(message)
            } else {
                QueryError::Unexpected(format!("postgres: {message}"))
            };
        }
        let text = e.to_string();
        if let Some(index) = text.strip_prefix("error serializing parameter ") {
            let n = index.trim().parse::<usize>().map_or(0, |i| i + 1);
            let cause = std::error::Error::source(e).map_or(String::new(), |s| s.to_string());
            return QueryError::InvalidParams(format!("parameter ${n}: {cause}"));
        }
        if text.starts_with("expected ") && text.contains("parameters") {
            return QueryError::InvalidParams(text);
        }
        if e.is_closed() || text.starts_with("error communicating") {
            return self.unreachable(&format!("the connection was lost ({})", error_chain(e)));
        }
        QueryError::Unexpected(format!("postgres at {}: {}", self.endpoint, error_chain(e)))
    }
}

/// How a bounded call stopped early.
enum Stop {
    /// The call failed.
    Query(QueryError),
    /// A bound on the result was reached: the query must be cancelled.
    Bound(QueryError),
}

impl From<QueryError> for Stop {
    fn from(e: QueryError) -> Self {
        Stop::Query(e)
    }
}

impl Statements {
    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// Forgets `owner`'s least recently used statements beyond `max`.
    fn forget_beyond(&mut self, owner: &str, max: usize) {
        let mut mine: Vec<(u64, String)> = self
            .by_token
            .iter()
            .filter(|(_, p)| p.owner == owner)
            .map(|(t, p)| (p.used, t.clone()))
            .collect();
        if mine.len() <= max {
            return;
        }
        mine.sort_unstable();
        let excess = mine.len() - max;
        for (_, token) in mine.into_iter().take(excess) {
            self.by_token.remove(&token);
        }
    }
}

fn check_sql(sql: &str, limits: &Limits) -> Result<(), QueryError> {
    if sql.len() > limits.max_statement_bytes {
        return Err(QueryError::InvalidQuery(format!(
            "the SQL is {} bytes, over the limit of {} bytes (host flag --max-pg-statement)",
            sql.len(),
            limits.max_statement_bytes
        )));
    }
    Ok(())
}

fn result_row(row: &Row) -> Result<ResultRow, QueryError> {
    row.columns()
        .iter()
        .enumerate()
        .map(|(i, column)| {
            let value = codec::decode_column(row, i).map_err(|e| {
                QueryError::InvalidQuery(format!(
                    "column `{}` (type `{}`): {e}",
                    column.name(),
                    column.type_().name()
                ))
            })?;
            Ok(ResultRowEntry {
                column_name: column.name().to_owned(),
                value,
            })
        })
        .collect()
}

/// `e` and its causes, `: `-separated.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let s = c.to_string();
        if !text.contains(&s) {
            text = format!("{text}: {s}");
        }
        cause = c.source();
    }
    text
}

fn sync_lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    trellis_provider::lock(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prepared(owner: &str, sql: &str, used: u64) -> Prepared {
        Prepared {
            owner: owner.into(),
            sql: sql.into(),
            types: Vec::new(),
            used,
        }
    }

    #[test]
    fn only_the_least_recently_used_statements_of_the_owner_are_forgotten() {
        let mut s = Statements::default();
        s.by_token.insert("a1".into(), prepared("a", "1", 1));
        s.by_token.insert("a2".into(), prepared("a", "2", 5));
        s.by_token.insert("a3".into(), prepared("a", "3", 3));
        s.by_token.insert("b1".into(), prepared("b", "1", 0));
        s.forget_beyond("a", 2);
        let mut left: Vec<_> = s.by_token.keys().cloned().collect();
        left.sort();
        assert_eq!(left, ["a2", "a3", "b1"]);
    }

    #[test]
    fn long_sql_is_refused_before_the_server_sees_it() {
        let limits = Limits {
            max_statement_bytes: 4,
            ..Limits::default()
        };
        assert!(check_sql("SELECT 1", &limits).is_err());
        assert!(check_sql("SEL", &limits).is_ok());
    }
}
