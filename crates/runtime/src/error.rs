//! The errors of creating a [`crate::Runtime`] and of loading a component into it; the
//! [`crate::CompileCache`] reports through [`RuntimeError`] too.

use std::path::PathBuf;
use trellis_control::ComponentId;

/// Errors creating the runtime.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// wasmtime refused the engine configuration (for example the pooling allocator could not
    /// reserve its address space).
    #[error("cannot configure the WebAssembly engine: {0:#}")]
    Engine(#[source] wasmtime::Error),
    /// The interfaces the host serves could not be added to its linker (a host bug: two
    /// bindings defining the same import).
    #[error("cannot define the host's interfaces for components: {0:#}")]
    HostInterfaces(#[source] wasmtime::Error),
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
    #[error("component `{id}`: {path} is not a valid component: {source:#}")]
    Invalid {
        /// Component id.
        id: ComponentId,
        /// The file.
        path: PathBuf,
        /// wasmtime's explanation.
        source: wasmtime::Error,
    },
}
