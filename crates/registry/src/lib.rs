//! Components from OCI registries: pull (checked, cached by digest, offline when the registry
//! is down), push (the CNCF Wasm OCI artifact layout), resolve and inspect.
//!
//! A component is named by an OCI reference, `localhost:5000/demo/hello:0.1.0`,
//! `ghcr.io/org/app:1.2`, or `ghcr.io/org/app@sha256:…`. [`Registry::pull`] fetches the
//! manifest, picks the one WebAssembly layer ([`layout`] lists the media types accepted),
//! refuses anything else by name (a container image, a core module, another media type),
//! downloads the layer within [`RegistryConfig::max_size`], checks its size and digest, and
//! caches it. It never returns or caches anything half-downloaded or unverified.
//!
//! ```no_run
//! # async fn run() -> Result<(), trellis_registry::RegistryError> {
//! use trellis_registry::{Registry, RegistryConfig};
//!
//! let registry = Registry::new(RegistryConfig {
//!     cache_dir: Some("/var/cache/trellis/oci".into()),
//!     ..RegistryConfig::default()
//! });
//! let pulled = registry.pull("localhost:5000/demo/hello:0.1.0").await?;
//! println!("{} is {} bytes", pulled.digest, pulled.bytes.len());
//! // Later, as a lockfile would: no network at all while the digest is cached.
//! let again = registry.pull_pinned("localhost:5000/demo/hello:0.1.0", &pulled.digest).await?;
//! assert!(again.from_cache());
//! # Ok(()) }
//! ```
//!
//! The modules, bottom-up:
//!
//! - [`layout`]: media types, the component check, what a manifest must hold, what a push
//!   writes;
//! - `config`: [`RegistryConfig`], [`Credentials`], which registries may use plain HTTP;
//! - `error`: [`RegistryError`];
//! - `cache`: blobs by digest and the reference index (layout in `docs/images.md`);
//! - `client`: one `oci_client::Client` per registry with its credentials, and its errors
//!   translated;
//! - `registry`: [`Registry`] and what it returns.
//!
//! This crate does not depend on wasmtime: the component check reads the header only;
//! compiling is the runtime's job.

mod cache;
mod client;
mod config;
mod error;
pub mod layout;
mod registry;

pub use config::{Credentials, RegistryConfig};
pub use error::{BoxError, PASSWORD_ENV, RegistryError, USER_ENV};
pub use registry::{Inspected, Pulled, Registry, Source};
