//! The NATS connection that the JetStream provider backends (`trellis-keyvalue-nats`,
//! `trellis-blobstore-nats`) share: wasmCloud's connection config keys, read from a
//! provider's string map, and a client that connects in the background.
//!
//! A backend reads its map once with [`ConfigKeys::new`] (keys match case-insensitively),
//! takes the connection keys with [`ConnectConfig::from_keys`], reads its own keys (a bucket,
//! storage settings) from the same [`ConfigKeys`], and lists what nobody read with
//! [`ConfigKeys::unknown`]. [`Connection::connect`] then starts the client.
//!
//! ```no_run
//! # async fn example(map: &std::collections::BTreeMap<String, String>)
//! #     -> Result<(), trellis_nats_connect::ConfigError> {
//! use trellis_nats_connect::{ConfigKeys, ConnectConfig, Connection};
//!
//! let keys = ConfigKeys::new(map)?;
//! let config = ConnectConfig::from_keys(&keys)?;
//! let bucket = keys.get("bucket").map_or("trellis", |(_, value)| value);
//! let ignored = keys.unknown(&["bucket"]);
//! let connection = Connection::connect(&config, "trellis-keyvalue-nats").await;
//! match connection.jetstream() {
//!     Ok(js) => { let _ = js.get_key_value(bucket).await; }
//!     Err(not_connected) => eprintln!("{not_connected}"),
//! }
//! # let _ = ignored;
//! # Ok(())
//! # }
//! ```
//!
//! # The connection keys
//!
//! | key | meaning | default |
//! |-----|---------|---------|
//! | `cluster_uri` | server URL(s), comma-separated (`nats://`, `tls://`, `ws://`, `wss://`) | `nats://127.0.0.1:4222` |
//! | `js_domain` | JetStream domain (letters, digits, `_`, `-`) | the local one |
//! | `client_jwt`, `client_seed` | user JWT and its nkey seed, for JWT auth; both or neither | none |
//! | `tls_ca_file` | PEM file of CA certificates to trust | system roots |
//!
//! `tls_ca` (an inline PEM, which wasmCloud accepts) is not read: give the CA as
//! `tls_ca_file`; a backend reports it among its unknown keys. [`ConnectConfig::request_timeout`]
//! (not a key; [`DEFAULT_REQUEST_TIMEOUT`]) bounds connecting and every request.
//!
//! # The connection
//!
//! [`Connection::connect`] never fails because NATS is down: the client retries the first
//! connection and reconnects for ever, logging each connect and disconnect. It returns as
//! soon as it is connected, or after at most a second. While it is not connected,
//! [`Connection::jetstream`] fails at once with [`NotConnected`] ("nats at … is unreachable
//! (…); calls will succeed again when it is back"), so that a backend's calls fail promptly
//! instead of queueing. Messages name the servers with any password hidden ([`redact`]).
//!
//! `trellis-messaging-nats` reads wasmCloud's messaging keys (`cluster_uris`, no JetStream, no
//! TLS keys) and builds its client itself; it shares [`JwtAuth`], [`wait_for_connection`] and
//! [`redact`].
//! The host's own lattice connections (`trellis-lattice`) fail fast instead and do not use
//! this crate.

mod config;
mod connection;

pub use config::{
    ConfigError, ConfigKeys, ConnectConfig, DEFAULT_CLUSTER_URI, DEFAULT_REQUEST_TIMEOUT, JwtAuth,
    boolean, is_jetstream_name, redact,
};
pub use connection::{Connection, NotConnected, wait_for_connection};
