//! [`Runtime`]: the engine, the host's linker, the compiled components and the epoch ticker
//! of one host.
//!
//! One [`wasmtime::Engine`] with the component model, async support, the pooling allocator,
//! epoch interruption and a wasm stack limit ([`Limits`]); the host's linker
//! ([`crate::linker::host`]); compiled components shared by content hash, and on disk in the
//! [`CompileCache`]. Preparing a component for a kind of invocation is in [`crate::prepare`].

use crate::cache::CompileCache;
use crate::component::Component;
use crate::error::{LoadError, RuntimeError};
use crate::limits::{Compiler, Limits};
use crate::linker;
use crate::state::InstanceState;
use crate::sync::lock;
use sha2::Digest as _;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use trellis_control::ComponentId;
use wasmtime::component::Linker;

/// How often the epoch ticks. Deadlines are accurate to about this much, and a busy guest
/// yields its thread at least this often so other requests keep being served.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The shared WebAssembly runtime of one host.
pub struct Runtime {
    pub(crate) engine: wasmtime::Engine,
    /// Components compiled in this process, by content hash: a thousand copies of one
    /// component share one compiled image.
    compiled: Mutex<HashMap<[u8; 32], wasmtime::component::Component>>,
    /// The host's linker, shared by every component without links to other components.
    pub(crate) linker: Linker<InstanceState>,
    pub(crate) limits: Limits,
    cache: Option<CompileCache>,
    ticker: EpochTicker,
}

impl Runtime {
    /// Builds the engine and linker. `cache_dir` enables the compiled-component cache.
    pub fn new(limits: Limits, cache_dir: Option<&Path>) -> Result<Self, RuntimeError> {
        Self::with_compiler(limits, cache_dir, Compiler::default())
    }

    /// [`Runtime::new`] with another compiler. Its compiled components are cached apart
    /// from the other compiler's (the cache key includes the engine's settings).
    pub fn with_compiler(
        limits: Limits,
        cache_dir: Option<&Path>,
        compiler: Compiler,
    ) -> Result<Self, RuntimeError> {
        let engine =
            wasmtime::Engine::new(&limits.engine_config(compiler)).map_err(RuntimeError::Engine)?;
        let linker = linker::host(&engine).map_err(RuntimeError::HostInterfaces)?;
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
        let invalid = |source: wasmtime::Error| LoadError::Invalid {
            id: id.clone(),
            path: path.to_owned(),
            source,
        };
        let digest: [u8; 32] = sha2::Sha256::digest(bytes).into();
        let known = lock(&self.compiled).get(&digest).cloned();
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
        lock(&self.compiled).insert(digest, component.clone());
        let ty = component.component_type();
        let imports = ty
            .imports(&self.engine)
            .map(|(name, _)| name.to_owned())
            .collect();
        let types_only = ty
            .imports(&self.engine)
            .filter(|(_, item)| types_only(&self.engine, &item.ty))
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
            types_only,
            from_cache,
        })
    }
}

/// Whether an import is an interface of types only (records, enums and the like; no
/// functions, no resources): there is nothing to implement, so it needs no link, and an empty
/// instance satisfies it.
fn types_only(engine: &wasmtime::Engine, item: &wasmtime::component::types::ComponentItem) -> bool {
    use wasmtime::component::types::ComponentItem;
    let ComponentItem::ComponentInstance(instance) = item else {
        return false;
    };
    instance
        .exports(engine)
        .all(|(_, export)| matches!(export.ty, ComponentItem::Type(_)))
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker.stop();
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
