//! The Trellis runtime: wasmtime configured for serving components.
//!
//! This crate owns everything that touches wasmtime directly:
//!
//! - [`Runtime`]: one [`wasmtime::Engine`] with the component model, async support, the pooling
//!   allocator, epoch interruption and a wasm stack limit; one [`wasmtime::component::Linker`]
//!   with the WASI 0.2 interfaces the host serves; an epoch ticker thread.
//! - [`CompileCache`]: compiled components on disk, keyed by the component's content hash and
//!   the engine's compatibility hash, so a restarted host does not recompile.
//! - [`Component`]: a compiled component with its imports and exports, ready to check against
//!   links ([`imports::classify`]) and to prepare for a kind of invocation.
//! - [`HttpComponent`]: a component prepared once (`InstancePre`) to serve
//!   `wasi:http/incoming-handler`; each request gets a fresh store and instance, bounded by the
//!   [`Limits`] (memory, execution deadline).
//! - [`MessageComponent`] does the same for `wasmcloud:messaging/handler`, and
//!   [`ExportedComponent`] for the plain-value interfaces a component exports to other
//!   components; a component's own imports through component links go to the host's
//!   [`CallRouter`] (see `calls`).
//!
//! It knows nothing about manifests, links or providers: the host decides what to run and
//! passes each instance its identity and config in an [`InstanceContext`].

mod builtins;
mod cache;
mod calls;
mod capabilities;
mod http;
pub mod imports;
mod invoke;
mod limits;
mod linker;
mod messaging;
mod state;

pub use cache::CompileCache;
pub use calls::{
    Call, CallError, CallRouter, ComponentCalls, ComponentLink, ExportedComponent, Reply, Values,
};
pub use capabilities::{Backend, Capabilities, CapabilityLimits, Linked};
pub use http::{HttpComponent, OutgoingBody};
pub use invoke::{InvokeError, PrepareError};
pub use limits::Limits;
pub use messaging::{HandleMessageError, MessageComponent};
pub use state::InstanceContext;
/// The error type of request bodies handed to guests; see [`HttpComponent::handle`].
pub use wasmtime_wasi_http::Error as WasiHttpError;

use sha2::Digest as _;
use state::InstanceState;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use trellis_control::ComponentId;
use wasmtime::component::Linker;

/// How often the epoch ticks. Deadlines are accurate to about this much, and a busy guest
/// yields its thread at least this often so other requests keep being served.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Errors creating the runtime.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// wasmtime refused the engine configuration (for example the pooling allocator could not
    /// reserve its address space).
    #[error("cannot configure the WebAssembly engine: {0}")]
    Engine(String),
    /// The compiled-component cache directory cannot be used.
    #[error("cannot use compile cache directory {dir}: {source}")]
    Cache {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Errors loading a component.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("component `{id}`: cannot read {path}: {source}")]
    Read {
        /// Component id.
        id: ComponentId,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The bytes are not WebAssembly at all.
    #[error(
        "component `{id}`: {path} is not a WebAssembly file (it does not start with the `\\0asm` magic); point the manifest at the .wasm your build produces"
    )]
    NotWasm {
        /// Component id.
        id: ComponentId,
        /// The file.
        path: PathBuf,
    },
    /// A core module where a component was expected.
    #[error(
        "component `{id}`: {path} is a core WebAssembly module, not a component; build it for the `wasm32-wasip2` target (or run it through `wasm-tools component new`)"
    )]
    CoreModule {
        /// Component id.
        id: ComponentId,
        /// The file.
        path: PathBuf,
    },
    /// wasmtime could not compile it.
    #[error("component `{id}`: {path} is not a valid component: {reason}")]
    Invalid {
        /// Component id.
        id: ComponentId,
        /// The file.
        path: PathBuf,
        /// wasmtime's explanation.
        reason: String,
    },
}

/// The shared WebAssembly runtime of one host.
pub struct Runtime {
    engine: wasmtime::Engine,
    /// Components compiled in this process, by content hash: a thousand copies of one
    /// component share one compiled image.
    compiled: Mutex<HashMap<[u8; 32], wasmtime::component::Component>>,
    linker: Linker<InstanceState>,
    limits: Limits,
    cache: Option<CompileCache>,
    ticker: EpochTicker,
}

impl Runtime {
    /// Builds the engine and linker. `cache_dir` enables the compiled-component cache.
    pub fn new(limits: Limits, cache_dir: Option<&Path>) -> Result<Self, RuntimeError> {
        let engine = wasmtime::Engine::new(&limits.engine_config())
            .map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        let linker = linker::host(&engine).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        let cache = cache_dir
            .map(|dir| CompileCache::open(dir, &engine))
            .transpose()?;
        let ticker = EpochTicker::start(engine.clone());
        Ok(Self {
            engine,
            compiled: Mutex::default(),
            linker,
            limits,
            cache,
            ticker,
        })
    }

    /// The limits every instance runs under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The compile cache, when enabled.
    pub fn cache(&self) -> Option<&CompileCache> {
        self.cache.as_ref()
    }

    /// Reads and compiles (or loads from the cache) the component at `path`.
    pub fn load_file(&self, id: &ComponentId, path: &Path) -> Result<Component, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            id: id.clone(),
            path: path.to_owned(),
            source,
        })?;
        self.load_bytes(id, path, &bytes)
    }

    /// Compiles (or loads from the cache) a component from its bytes; `path` is for messages.
    pub fn load_bytes(
        &self,
        id: &ComponentId,
        path: &Path,
        bytes: &[u8],
    ) -> Result<Component, LoadError> {
        if !bytes.starts_with(b"\0asm") {
            return Err(LoadError::NotWasm {
                id: id.clone(),
                path: path.to_owned(),
            });
        }
        // The 4 bytes after the magic are the version: 1 for core modules, 0x0d 0 1 0 for components.
        if bytes.get(4..8) == Some(&[1, 0, 0, 0]) {
            return Err(LoadError::CoreModule {
                id: id.clone(),
                path: path.to_owned(),
            });
        }
        let invalid = |e: wasmtime::Error| LoadError::Invalid {
            id: id.clone(),
            path: path.to_owned(),
            reason: format!("{e:#}"),
        };
        let digest: [u8; 32] = sha2::Sha256::digest(bytes).into();
        let known = self
            .compiled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&digest)
            .cloned();
        let (component, from_cache) = match (known, &self.cache) {
            (Some(component), _) => (component, true),
            (None, Some(cache)) => cache
                .load_or_compile(&self.engine, bytes, &digest)
                .map_err(invalid)?,
            (None, None) => (
                wasmtime::component::Component::new(&self.engine, bytes).map_err(invalid)?,
                false,
            ),
        };
        self.compiled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(digest, component.clone());
        let ty = component.component_type();
        let imports = ty
            .imports(&self.engine)
            .map(|(name, _)| name.to_owned())
            .collect();
        let exports = ty
            .exports(&self.engine)
            .map(|(name, _)| name.to_owned())
            .collect();
        Ok(Component {
            id: id.clone(),
            component,
            imports,
            exports,
            from_cache,
        })
    }

    /// Prepares `component` to serve `wasi:http/incoming-handler`: resolves all its imports
    /// against the host's linker once, so each request only instantiates.
    pub fn prepare_http(
        &self,
        component: &Component,
        context: InstanceContext,
    ) -> Result<HttpComponent, PrepareError> {
        HttpComponent::prepare(self, component, context)
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker.stop();
    }
}

/// A compiled component and what it imports and exports.
#[derive(Clone)]
pub struct Component {
    id: ComponentId,
    component: wasmtime::component::Component,
    imports: Vec<String>,
    exports: Vec<String>,
    from_cache: bool,
}

impl std::fmt::Debug for Component {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Component")
            .field("id", &self.id)
            .field("imports", &self.imports)
            .field("exports", &self.exports)
            .field("from_cache", &self.from_cache)
            .finish_non_exhaustive()
    }
}

impl Component {
    /// The component's id.
    pub fn id(&self) -> &ComponentId {
        &self.id
    }

    /// Fully qualified import names, for example `wasi:http/types@0.2.0`.
    pub fn imports(&self) -> &[String] {
        &self.imports
    }

    /// Fully qualified export names, for example `wasi:http/incoming-handler@0.2.0`.
    pub fn exports(&self) -> &[String] {
        &self.exports
    }

    /// Whether it exports `namespace:package/interface` at any version.
    pub fn exports_interface(&self, namespace: &str, package: &str, interface: &str) -> bool {
        self.exports.iter().any(|e| {
            imports::InterfaceName::parse(e).is_some_and(|n| {
                n.namespace == namespace && n.package == package && n.interface == interface
            })
        })
    }

    /// Whether the compiled code came from the compile cache rather than from compiling.
    pub fn from_cache(&self) -> bool {
        self.from_cache
    }
}

/// Increments the engine's epoch every [`EPOCH_TICK`] on a dedicated thread, so that the
/// ticks keep coming even when every tokio worker is busy running guests.
struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: wasmtime::Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("trellis-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .ok();
        Self { stop, thread }
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
