//! The data every store carries ([`InstanceState`]), who an instance is
//! ([`InstanceContext`]), and a fresh store for one invocation ([`InstanceBounds`]).
//!
//! The bindings never see [`InstanceState`] whole: it lends each of them a view of the
//! fields it needs (the WASI contexts, a capability's link and bounds, the resource table),
//! and [`crate::linker`] hands those views to the bindings' `add_to_linker`.

use crate::builtins::Builtins;
use crate::bus::BusView;
use crate::calls::ComponentCalls;
use crate::capabilities::CapabilityLimits;
use crate::capabilities::Observing;
use crate::capabilities::blobstore::BlobstoreView;
use crate::capabilities::http_client::OutgoingHooks;
use crate::capabilities::keyvalue::KeyValueView;
use crate::capabilities::messaging::MessagingView;
use crate::capabilities::messaging_v3::MessagingV3View;
use crate::capabilities::postgres::PostgresView;
use crate::limits::Limits;
use crate::links::{Links, Selection};
use crate::output::GuestOutput;
use crate::secrets::{Secrets, SecretsView};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use trellis_control::ComponentId;
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Who an instance is and what it may reach: passed by the host, fixed for the instance.
#[derive(Clone)]
pub struct InstanceContext {
    /// The component id, attached to every log line the guest writes.
    pub component_id: ComponentId,
    /// What `wasi:config` returns to the guest.
    pub config: Arc<BTreeMap<String, String>>,
    /// What `wasmcloud:secrets` reveals to the guest, by the names the manifest gave.
    pub secrets: Arc<Secrets>,
    /// Its links: the backends its links to providers resolved to, by link name.
    pub links: Arc<Links>,
    /// Its links to other components and who routes the calls, when it has any.
    pub calls: Option<ComponentCalls>,
    /// Told what happens inside its instances (the host's metrics), when anyone listens.
    pub observer: Option<Arc<dyn crate::Observer>>,
}

/// The `T` of every `Store<T>`.
pub(crate) struct InstanceState {
    pub(crate) wasi: WasiCtx,
    pub(crate) http: WasiHttpCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limits: GuestLimits,
    pub(crate) context: InstanceContext,
    pub(crate) capability_limits: Arc<CapabilityLimits>,
    /// Which link each interface's calls go through (`wasmcloud:bus/lattice`).
    pub(crate) selection: Selection,
    http_hooks: OutgoingHooks,
    /// The request a reused instance is serving alone, which its spans nest under
    /// ([`crate::reuse`]); `None` in a fresh instance, whose task runs in the request's span.
    pub(crate) request_span: Option<tracing::Span>,
}

impl InstanceState {
    pub(crate) fn new(
        context: InstanceContext,
        max_memory_bytes: usize,
        capability_limits: Arc<CapabilityLimits>,
    ) -> Self {
        // Guest output becomes log lines that name the component (on the host's stderr,
        // never its stdout, which carries the host's own messages that scripts read).
        let id: Arc<str> = context.component_id.as_str().into();
        let wasi = wasmtime_wasi::WasiCtxBuilder::new()
            .stdout(GuestOutput::stdout(id.clone(), context.observer.clone()))
            .stderr(GuestOutput::stderr(id, context.observer.clone()))
            .build();
        let limits = GuestLimits {
            limits: wasmtime::StoreLimitsBuilder::new()
                .memory_size(max_memory_bytes)
                .trap_on_grow_failure(false)
                .build(),
            refused: Arc::default(),
            observer: context.observer.clone(),
        };
        Self {
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            limits,
            http_hooks: OutgoingHooks {
                client: context.links.default_capabilities().http_client.clone(),
                observer: context.observer.clone(),
                request_span: None,
            },
            selection: Selection::default(),
            request_span: None,
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

/// The views the bindings in [`crate::builtins`] and [`crate::capabilities`] work on.
impl InstanceState {
    /// Sets the request the instance serves now (`None`: several, or none).
    pub(crate) fn set_request_span(&mut self, span: Option<tracing::Span>) {
        self.http_hooks.request_span.clone_from(&span);
        self.request_span = span;
    }

    pub(crate) fn builtins(&mut self) -> Builtins<'_> {
        Builtins {
            component_id: &self.context.component_id,
            config: &self.context.config,
            observer: self.context.observer.as_deref(),
        }
    }

    pub(crate) fn secrets(&mut self) -> SecretsView<'_> {
        SecretsView {
            secrets: &self.context.secrets,
            table: &mut self.table,
        }
    }

    pub(crate) fn bus(&mut self) -> BusView<'_> {
        BusView {
            component_id: &self.context.component_id,
            links: &self.context.links,
            selection: &mut self.selection,
            http_client: &mut self.http_hooks.client,
            table: &mut self.table,
        }
    }

    pub(crate) fn keyvalue(&mut self) -> KeyValueView<'_> {
        KeyValueView {
            linked: self
                .selection
                .capabilities(&self.context.links, "wasi:keyvalue/store")
                .keyvalue
                .as_ref(),
            link_name: self.selection.name("wasi:keyvalue/store"),
            limits: &self.capability_limits.keyvalue,
            table: &mut self.table,
            observing: Observing {
                observer: self.context.observer.as_ref(),
                request_span: self.request_span.as_ref(),
            },
        }
    }

    pub(crate) fn messaging(&mut self) -> MessagingView<'_> {
        MessagingView {
            linked: self
                .selection
                .capabilities(&self.context.links, "wasmcloud:messaging/consumer")
                .messaging
                .as_ref(),
            link_name: self.selection.name("wasmcloud:messaging/consumer"),
            limits: &self.capability_limits.messaging,
            observing: Observing {
                observer: self.context.observer.as_ref(),
                request_span: self.request_span.as_ref(),
            },
        }
    }

    pub(crate) fn messaging_v3(&mut self) -> MessagingV3View<'_> {
        MessagingV3View {
            links: &*self.context.links,
            // Every wasmcloud:messaging interface shares one choice (`crate::links`).
            link_name: self.selection.name("wasmcloud:messaging/consumer"),
            limits: &self.capability_limits.messaging,
            table: &mut self.table,
            observing: Observing {
                observer: self.context.observer.as_ref(),
                request_span: self.request_span.as_ref(),
            },
        }
    }

    pub(crate) fn postgres(&mut self) -> PostgresView<'_> {
        let links = &self.context.links;
        let query = "wasmcloud:postgres/query";
        let prepared = "wasmcloud:postgres/prepared";
        PostgresView {
            query: self.selection.capabilities(links, query).postgres.as_ref(),
            query_link_name: self.selection.name(query),
            prepared: self
                .selection
                .capabilities(links, prepared)
                .postgres
                .as_ref(),
            prepared_link_name: self.selection.name(prepared),
            component_id: &self.context.component_id,
            limits: &self.capability_limits.postgres,
            observing: Observing {
                observer: self.context.observer.as_ref(),
                request_span: self.request_span.as_ref(),
            },
        }
    }

    pub(crate) fn blobstore(&mut self) -> BlobstoreView<'_> {
        BlobstoreView {
            linked: self
                .selection
                .capabilities(&self.context.links, "wasi:blobstore/blobstore")
                .blobstore
                .as_ref(),
            link_name: self.selection.name("wasi:blobstore/blobstore"),
            limits: &self.capability_limits.blobstore,
            table: &mut self.table,
            observing: Observing {
                observer: self.context.observer.as_ref(),
                request_span: self.request_span.as_ref(),
            },
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

/// The store's resource limiter: wasmtime's [`StoreLimits`], noting when it refuses to grow a
/// memory or table, so that a reused instance that hit its limit is retired
/// ([`crate::reuse`]) instead of serving the next request short of memory.
pub(crate) struct GuestLimits {
    limits: StoreLimits,
    pub(crate) refused: Arc<AtomicBool>,
    observer: Option<Arc<dyn crate::Observer>>,
}

impl GuestLimits {
    /// Notes a refusal; the observer hears of the first one of each instance.
    fn refuse(&self) {
        if !self.refused.swap(true, Ordering::Relaxed)
            && let Some(observer) = &self.observer
        {
            observer.memory_limit_hit();
        }
    }
}

impl ResourceLimiter for GuestLimits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum)?;
        if !allowed {
            self.refuse();
        }
        Ok(allowed)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.refuse();
        self.limits.memory_grow_failed(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.table_growing(current, desired, maximum)?;
        if !allowed {
            self.refuse();
        }
        Ok(allowed)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.refuse();
        self.limits.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

/// What bounds every store: memory, execution time, capability call limits.
#[derive(Clone)]
pub(crate) struct InstanceBounds {
    pub(crate) max_memory_bytes: usize,
    pub(crate) max_execution_time: std::time::Duration,
    pub(crate) capability_limits: Arc<CapabilityLimits>,
}

impl From<&Limits> for InstanceBounds {
    fn from(limits: &Limits) -> Self {
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
        let mut store = self.bare_store(engine, context);
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

    /// A store for an instance that serves several requests ([`crate::reuse`]): its guest
    /// yields on every epoch tick and is never interrupted from inside, because the pool
    /// that runs it drops the whole instance when a request outlives its deadline.
    pub(crate) fn reused_store(
        &self,
        engine: &wasmtime::Engine,
        context: InstanceContext,
    ) -> wasmtime::Store<InstanceState> {
        let mut store = self.bare_store(engine, context);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|_| Ok(wasmtime::UpdateDeadline::Yield(1)));
        store
    }

    fn bare_store(
        &self,
        engine: &wasmtime::Engine,
        context: InstanceContext,
    ) -> wasmtime::Store<InstanceState> {
        let mut store = wasmtime::Store::new(
            engine,
            InstanceState::new(
                context,
                self.max_memory_bytes,
                self.capability_limits.clone(),
            ),
        );
        store.limiter(|s| &mut s.limits);
        store
    }
}
