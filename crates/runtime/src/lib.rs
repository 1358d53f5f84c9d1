//! The Trellis runtime: wasmtime configured for serving components.
//!
//! This crate owns everything that touches wasmtime directly. The host decides what to run;
//! the runtime compiles it, links it and runs it, each invocation in a fresh instance under
//! the host's [`Limits`]. It knows nothing about manifests, links or providers: the host
//! passes each component its identity, config, capability backends and component links in an
//! [`InstanceContext`].
//!
//! A component goes through three steps: [`Runtime::load_file`] compiles it (or loads it from
//! the [`CompileCache`]) into a [`Component`], whose imports the host checks against its links
//! ([`imports::classify`]); `Runtime::prepare_*` resolves its imports once; the prepared
//! [`HttpComponent`], [`MessageComponent`] or [`ExportedComponent`] then runs each request,
//! message or call in a fresh store and instance.
//!
//! # Modules
//!
//! From the bottom up; each module uses only those above it.
//!
//! - `sync`: locking a mutex whose holder may have panicked.
//! - `imports` (public): which imports the host serves itself and which need a link.
//! - `error`: [`RuntimeError`] and [`LoadError`].
//! - `invoke`: what every kind of invocation shares: [`PrepareError`], [`InvokeError`], and
//!   running a guest under its execution deadline.
//! - `capabilities`: the capability interfaces a link gives a component (`wasi:keyvalue`,
//!   `wasmcloud:messaging` 0.2.0 and 0.3.0, `wasi:blobstore`, `wasi:http/outgoing-handler`)
//!   bound to the backends in [`Capabilities`], each on a view of the store rather than the
//!   store.
//! - `builtins`: `wasi:logging` and `wasi:config`, served to every component, the same way.
//! - `secrets`: `wasmcloud:secrets`, the secrets the host revealed for the component
//!   ([`SecretValue`], which never prints its contents).
//! - `links`: [`Links`], a component's links by name, and an instance's choice among them.
//! - `bus`: `wasmcloud:bus/lattice` (1.0.0 and 2.0.0), with which a guest makes that choice.
//! - `limits`: [`Limits`] and the engine configuration derived from them.
//! - `calls`: calls between components: [`ComponentLink`], the host's [`CallRouter`],
//!   [`Call`] and [`CallError`], and the wRPC value codec.
//! - `cache`: [`CompileCache`], compiled components on disk.
//! - `component`: [`Component`], a compiled component and its imports and exports.
//! - `output`: a guest's stdout and stderr as log lines naming the component
//!   ([`GUEST_LOG`]).
//! - `state`: the store's data and [`InstanceContext`], the views it lends the bindings, and a
//!   fresh store per invocation.
//! - `linker`: builds every linker: the host's (WASI, `wasi:http`, builtins, capabilities)
//!   and, per component, the imports it reaches through links to other components.
//! - `by_name`: calls by name with values as text (`trellis call`): finding the export,
//!   reading JSON or WAVE arguments against its types, writing the results; [`ByNameError`].
//! - `http`, `messaging`, `watcher`, `exported`: [`HttpComponent`], [`MessageComponent`],
//!   [`WatcherComponent`] and [`ExportedComponent`], one per kind of invocation.
//! - `runtime`: [`Runtime`]: the engine, the host's linker, compiled components by content
//!   hash, the epoch ticker; loading components.
//! - `prepare`: `Runtime::prepare_http`, `prepare_messaging`, `prepare_watcher` and
//!   `prepare_exports`.

mod builtins;
mod bus;
mod by_name;
mod cache;
mod calls;
mod capabilities;
mod component;
mod error;
mod exported;
#[doc(hidden)]
pub mod fuzzing;
mod http;
pub mod imports;
mod invoke;
mod limits;
mod linker;
mod links;
mod messaging;
mod observe;
mod output;
mod prepare;
mod reuse;
mod runtime;
mod secrets;
mod state;
mod sync;
mod watcher;

pub use by_name::ByNameError;
pub use cache::CompileCache;
pub use calls::{Call, CallError, CallRouter, ComponentCalls, ComponentLink, Reply, Values};
pub use capabilities::{Backend, Capabilities, CapabilityLimits, Linked};
pub use component::Component;
pub use error::{LoadError, RuntimeError};
pub use exported::ExportedComponent;
pub use http::{HttpComponent, OutgoingBody};
pub use invoke::{InvokeError, PrepareError};
pub use limits::{Compiler, Limits, Reuse};
pub use links::Links;
pub use messaging::{HandleMessageError, MessageComponent};
pub use observe::Observer;
pub use output::{GUEST_LOG, MAX_LINE_BYTES};
pub use runtime::{EPOCH_TICK, Runtime};
pub use secrets::{SecretValue, Secrets};
pub use state::InstanceContext;
/// The error type of request bodies handed to guests; see [`HttpComponent::handle`].
pub use wasmtime_wasi_http::Error as WasiHttpError;
pub use watcher::WatcherComponent;
