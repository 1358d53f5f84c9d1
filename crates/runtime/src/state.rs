//! The data every store carries, and the host side of the non-HTTP WASI interfaces the
//! runtime serves without any link: `wasi:logging/logging` and `wasi:config/{runtime,store}`.
//! The linked capabilities are added to the same linker from [`crate::capabilities`].

use crate::capabilities::http_client::OutgoingHooks;
use crate::capabilities::{Capabilities, CapabilityLimits, bindings as capability_bindings};
use std::collections::BTreeMap;
use std::sync::Arc;
use trellis_control::ComponentId;
use wasmtime::StoreLimits;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

mod bindings {
    wasmtime::component::bindgen!({
        path: ["../../wit/logging", "../../wit/config"],
        inline: "
            package trellis:host;
            world imports {
                import wasi:logging/logging;
                import wasi:config/runtime@0.2.0-draft;
                import wasi:config/store@0.2.0-draft;
            }
        ",
    });
}

use bindings::wasi::config::{runtime as config_runtime, store as config_store};
use bindings::wasi::logging::logging;

/// Who an instance is and what it may reach: passed by the host, fixed for the instance.
#[derive(Clone)]
pub struct InstanceContext {
    /// The component id, attached to every log line the guest writes.
    pub component_id: ComponentId,
    /// What `wasi:config` returns to the guest.
    pub config: Arc<BTreeMap<String, String>>,
    /// The backends its links resolved to.
    pub capabilities: Capabilities,
    /// Its links to other components and who routes the calls, when it has any.
    pub calls: Option<crate::calls::ComponentCalls>,
}

/// The `T` of every `Store<T>`.
pub(crate) struct InstanceState {
    pub(crate) wasi: WasiCtx,
    pub(crate) http: WasiHttpCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limits: StoreLimits,
    pub(crate) context: InstanceContext,
    pub(crate) capability_limits: Arc<CapabilityLimits>,
    http_hooks: OutgoingHooks,
}

impl InstanceState {
    pub(crate) fn new(
        context: InstanceContext,
        max_memory_bytes: usize,
        capability_limits: Arc<CapabilityLimits>,
    ) -> Self {
        let wasi = wasmtime_wasi::WasiCtxBuilder::new()
            // Guest stdout goes to the host's stderr: the host's stdout carries its own
            // messages (listen addresses) that scripts read.
            .stdout(std::io::stderr())
            .stderr(std::io::stderr())
            .build();
        let limits = wasmtime::StoreLimitsBuilder::new()
            .memory_size(max_memory_bytes)
            .trap_on_grow_failure(false)
            .build();
        Self {
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            limits,
            http_hooks: OutgoingHooks {
                client: context.capabilities.http_client.clone(),
            },
            context,
            capability_limits,
        }
    }
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for InstanceState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.http_hooks,
        }
    }
}

impl logging::Host for InstanceState {
    fn log(&mut self, level: logging::Level, context: String, message: String) {
        let component_id = self.context.component_id.as_str();
        match level {
            logging::Level::Trace => {
                tracing::trace!(component_id = %component_id, context = %context, "{message}")
            }
            logging::Level::Debug => {
                tracing::debug!(component_id = %component_id, context = %context, "{message}")
            }
            logging::Level::Info => {
                tracing::info!(component_id = %component_id, context = %context, "{message}")
            }
            logging::Level::Warn => {
                tracing::warn!(component_id = %component_id, context = %context, "{message}")
            }
            logging::Level::Error | logging::Level::Critical => {
                tracing::error!(component_id = %component_id, context = %context, critical = matches!(level, logging::Level::Critical), "{message}")
            }
        }
    }
}

impl InstanceContext {
    fn config_value(&self, key: &str) -> Option<String> {
        self.config.get(key).cloned()
    }

    fn config_pairs(&self) -> Vec<(String, String)> {
        self.config
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

// `runtime` and `store` are two names of one interface; both read the same values.
impl config_runtime::Host for InstanceState {
    fn get(&mut self, key: String) -> Result<Option<String>, config_runtime::ConfigError> {
        Ok(self.context.config_value(&key))
    }

    fn get_all(&mut self) -> Result<Vec<(String, String)>, config_runtime::ConfigError> {
        Ok(self.context.config_pairs())
    }
}

impl config_store::Host for InstanceState {
    fn get(&mut self, key: String) -> Result<Option<String>, config_store::Error> {
        Ok(self.context.config_value(&key))
    }

    fn get_all(&mut self) -> Result<Vec<(String, String)>, config_store::Error> {
        Ok(self.context.config_pairs())
    }
}

/// Everything the host serves without a link. Keep in sync with [`crate::imports`].
pub(crate) fn add_to_linker(linker: &mut Linker<InstanceState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
    logging::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    config_runtime::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    config_store::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    use capability_bindings::wasi::{blobstore, keyvalue};
    use capability_bindings::wasmcloud::messaging;
    keyvalue::store::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    keyvalue::atomics::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    keyvalue::batch::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    messaging::types::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    messaging::consumer::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    blobstore::types::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    blobstore::container::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    blobstore::blobstore::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    Ok(())
}

/// What bounds every store: memory, execution time, capability call limits.
#[derive(Clone)]
pub(crate) struct InstanceBounds {
    pub(crate) max_memory_bytes: usize,
    pub(crate) max_execution_time: std::time::Duration,
    pub(crate) capability_limits: Arc<CapabilityLimits>,
}

impl From<&crate::Limits> for InstanceBounds {
    fn from(limits: &crate::Limits) -> Self {
        Self {
            max_memory_bytes: limits.max_memory_bytes,
            max_execution_time: limits.max_execution_time,
            capability_limits: Arc::new(limits.capabilities.clone()),
        }
    }
}

impl InstanceBounds {
    /// A fresh store for one invocation, whose guest is interrupted at the execution deadline.
    pub(crate) fn new_store(
        &self,
        engine: &wasmtime::Engine,
        context: InstanceContext,
    ) -> wasmtime::Store<InstanceState> {
        let deadline = std::time::Instant::now() + self.max_execution_time;
        let mut store = wasmtime::Store::new(
            engine,
            InstanceState::new(
                context,
                self.max_memory_bytes,
                self.capability_limits.clone(),
            ),
        );
        store.limiter(|s| &mut s.limits);
        // Check the deadline on every epoch tick; until then yield to the executor so a
        // guest spinning in a loop shares its thread with other requests.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if std::time::Instant::now() >= deadline {
                Ok(wasmtime::UpdateDeadline::Interrupt)
            } else {
                Ok(wasmtime::UpdateDeadline::Yield(1))
            }
        });
        store
    }
}
