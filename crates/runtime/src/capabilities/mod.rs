//! The capability interfaces a component reaches through links: `wasi:keyvalue`,
//! `wasmcloud:messaging` (0.2.0 in `messaging`, 0.3.0 in `messaging_v3`), `wasi:blobstore`,
//! `wasmcloud:postgres` and `wasi:http/outgoing-handler`.
//!
//! The host resolves a component's links to backends when it deploys it and hands them to
//! the runtime in a [`Capabilities`]; the bindings here turn guest calls into calls on those
//! backends, after checking the [`CapabilityLimits`]. Two rules hold throughout:
//!
//! - Whatever goes wrong with a backend (down, misconfigured, failed to start) reaches the
//!   guest as the interface's error value, never as a trap: a guest can always answer
//!   "storage is unavailable" instead of dying.
//! - Every value from a guest is bounded before a backend sees it (key, value, batch and
//!   message sizes, request timeouts).
//!
//! Each binding implements the generated host traits on a view of what it needs (for
//! key-value: the component's link, the bounds and the resource table) and offers an
//! `add_to_linker(linker, view)`, as wasmtime's own WASI crates do; the store's data lends
//! the views ([`crate::linker::host`] wires them up), so nothing here names the store's type.

pub(crate) mod blobstore;
pub(crate) mod http_client;
pub(crate) mod keyvalue;
pub(crate) mod messaging;
pub(crate) mod messaging_v3;
pub(crate) mod postgres;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tracing::Instrument as _;
use trellis_blobstore::Blobstore;
use trellis_keyvalue::KeyValue;
use trellis_messaging::Messaging;

pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: [
            "../../wit/io",
            "../../wit/keyvalue",
            "../../wit/messaging",
            "../../wit/blobstore",
            "../../wit/postgres",
        ],
        inline: "
            package trellis:capabilities;
            world capabilities {
                import wasi:keyvalue/store@0.2.0-draft;
                import wasi:keyvalue/atomics@0.2.0-draft;
                import wasi:keyvalue/batch@0.2.0-draft;
                import wasmcloud:messaging/consumer@0.2.0;
                import wasi:blobstore/types@0.2.0-draft;
                import wasi:blobstore/container@0.2.0-draft;
                import wasi:blobstore/blobstore@0.2.0-draft;
                import wasmcloud:postgres/query@0.1.1-draft;
                import wasmcloud:postgres/prepared@0.1.1-draft;
                export wasmcloud:messaging/handler@0.2.0;
            }
        ",
        imports: { default: async | trappable },
        exports: { default: async },
        require_store_data_send: true,
        with: {
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:keyvalue/store.bucket": super::keyvalue::BucketHandle,
            "wasi:blobstore/types.outgoing-value": super::blobstore::OutgoingValue,
            "wasi:blobstore/types.incoming-value": super::blobstore::IncomingValue,
            "wasi:blobstore/container.container": super::blobstore::ContainerHandle,
            "wasi:blobstore/container.stream-object-names": super::blobstore::ObjectNames,
        },
    });
}

/// Where an instance's capability operations are reported: the host's observer (its
/// metrics), and the span of the request a reused instance is serving, which their spans
/// nest under (a fresh instance's run inside the request's span already).
#[derive(Clone, Copy, Default)]
pub(crate) struct Observing<'a> {
    /// Told of every operation, when anyone listens.
    pub(crate) observer: Option<&'a Arc<dyn crate::Observer>>,
    /// The request being served, when the instance is reused ([`crate::reuse`]).
    pub(crate) request_span: Option<&'a tracing::Span>,
}

impl Observing<'_> {
    /// Tells the observer how `operation` of `capability` went through `linked`, the link
    /// chosen when it was made.
    pub(crate) fn observe<T, E, B: ?Sized>(
        &self,
        linked: Option<&Linked<B>>,
        capability: &'static str,
        operation: &'static str,
        result: &Result<T, E>,
    ) {
        if let (Some(observer), Some(linked)) = (self.observer, linked) {
            observer.capability_call(&linked.provider_id, capability, operation, result.is_ok());
        }
    }

    /// Makes a span with `make`, as a child of the request being served.
    pub(crate) fn child(&self, make: impl FnOnce() -> tracing::Span) -> tracing::Span {
        match self.request_span {
            Some(request) => request.in_scope(make),
            None => make(),
        }
    }

    /// A span for one `operation` of `capability` through `linked` (a span of the request's
    /// trace when traces are exported).
    pub(crate) fn span<B: ?Sized>(
        &self,
        linked: Option<&Linked<B>>,
        capability: &'static str,
        operation: &'static str,
    ) -> tracing::Span {
        let provider = linked.map_or("", |l| l.provider_id.as_str());
        self.child(|| {
            tracing::info_span!(
                "capability",
                otel.name = %format!("{capability} {operation}"),
                otel.kind = "client",
                provider_id = %provider,
                operation,
            )
        })
    }

    /// Runs `operation` of `capability` through `linked`: inside its [`Self::span`], and
    /// told to the observer when it finishes.
    pub(crate) async fn traced<T, E, B: ?Sized>(
        self,
        linked: Option<&Linked<B>>,
        capability: &'static str,
        operation: &'static str,
        operation_future: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let result = operation_future
            .instrument(self.span(linked, capability, operation))
            .await;
        self.observe(linked, capability, operation, &result);
        result
    }
}

/// What a guest hears when it uses a capability it has no link to under the chosen name.
fn no_link(capability: &str, link_name: &str) -> String {
    if link_name == "default" {
        format!(
            "no {capability} capability is linked to this component under the link name `default` \
             (links without a `name` are named `default`; to use a named link, choose it with \
             wasmcloud:bus/lattice set-link-name)"
        )
    } else {
        format!(
            "no {capability} capability is linked to this component under the link name `{link_name}`"
        )
    }
}

/// A backend a link resolved to, or why the provider behind it is not available.
pub enum Backend<T: ?Sized> {
    /// The provider is running.
    Ready(Arc<T>),
    /// The provider failed to start; calls answer with this reason.
    Failed(String),
}

impl<T: ?Sized> Clone for Backend<T> {
    fn clone(&self) -> Self {
        match self {
            Backend::Ready(b) => Backend::Ready(b.clone()),
            Backend::Failed(r) => Backend::Failed(r.clone()),
        }
    }
}

/// One link from a component to a capability provider.
pub struct Linked<T: ?Sized> {
    /// The provider's name in the manifest, for error messages.
    pub provider: String,
    /// The provider's id, for the host's metrics.
    pub provider_id: String,
    /// What calls go to.
    pub backend: Backend<T>,
    /// Set when the provider is stopped: calls fail from then on.
    pub stopped: Arc<AtomicBool>,
}

impl<T: ?Sized> Clone for Linked<T> {
    fn clone(&self) -> Self {
        Self {
            provider: self.provider.clone(),
            provider_id: self.provider_id.clone(),
            backend: self.backend.clone(),
            stopped: self.stopped.clone(),
        }
    }
}

impl<T: ?Sized> Linked<T> {
    /// The backend, or the text the guest should see when there is none.
    fn ready(&self) -> Result<&Arc<T>, String> {
        if self.stopped.load(Ordering::Relaxed) {
            return Err(format!(
                "capability `{}` is not available: it was stopped",
                self.provider
            ));
        }
        match &self.backend {
            Backend::Ready(b) => Ok(b),
            Backend::Failed(reason) => Err(format!(
                "capability `{}` is not available: it failed to start: {reason}",
                self.provider
            )),
        }
    }
}

/// What a component's links give it; fixed when the component is deployed.
#[derive(Clone, Default)]
pub struct Capabilities {
    /// `wasi:keyvalue/{store,atomics,batch}`.
    pub keyvalue: Option<Linked<dyn KeyValue>>,
    /// `wasmcloud:messaging`: 0.2.0's `consumer`, 0.3.0's `producer` and `request-reply`.
    pub messaging: Option<Linked<dyn Messaging>>,
    /// `wasi:blobstore/*`.
    pub blobstore: Option<Linked<dyn Blobstore>>,
    /// `wasi:http/outgoing-handler`.
    pub http_client: Option<Linked<trellis_http_client::HttpClient>>,
    /// `wasmcloud:postgres/{query,prepared}`.
    pub postgres: Option<Linked<trellis_postgres::Postgres>>,
}

/// Bounds on capability calls, the same for every component on a host.
#[derive(Debug, Clone, Default)]
pub struct CapabilityLimits {
    /// Key-value bounds.
    pub keyvalue: trellis_keyvalue::Limits,
    /// Messaging bounds.
    pub messaging: trellis_messaging::Limits,
    /// Blobstore bounds.
    pub blobstore: trellis_blobstore::Limits,
    /// Postgres bounds.
    pub postgres: trellis_postgres::Limits,
}
