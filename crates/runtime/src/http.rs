//! Serving `wasi:http/incoming-handler`: a fresh store and instance per request.

use crate::invoke::{GuestFailure, InvokeError, PrepareError, spawn_with_deadline};
use crate::state::InstanceBounds;
use crate::state::InstanceState;
use crate::{Component, InstanceContext, Runtime};
use bytes::Bytes;
use trellis_control::ComponentId;
use wasmtime::component::InstancePre;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;

/// The body of a response produced by a guest.
pub type OutgoingBody = wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// A component prepared once to serve HTTP; cheap to clone and share across tasks.
#[derive(Clone)]
pub struct HttpComponent {
    pre: ProxyPre<InstanceState>,
    context: InstanceContext,
    bounds: InstanceBounds,
}

impl HttpComponent {
    pub(crate) fn prepare(
        runtime: &Runtime,
        component: &Component,
        context: InstanceContext,
    ) -> Result<Self, PrepareError> {
        let instance_pre = instance_pre(
            runtime,
            component,
            &context,
            "wasi:http/incoming-handler",
            "handle HTTP requests",
        )?;
        let pre = ProxyPre::new(instance_pre).map_err(|e| link_error(component, e))?;
        Ok(Self {
            pre,
            context,
            bounds: InstanceBounds::from(&runtime.limits),
        })
    }

    /// The id of the component this serves.
    pub fn id(&self) -> &ComponentId {
        &self.context.component_id
    }

    /// Handles one request in a fresh instance.
    ///
    /// The instance runs on its own task so that the response can stream while the guest
    /// keeps writing the body; the task, and with it the instance, is stopped at the
    /// execution deadline whatever the guest is doing.
    pub async fn handle<B>(
        &self,
        request: hyper::Request<B>,
    ) -> Result<hyper::Response<OutgoingBody>, InvokeError>
    where
        B: http_body::Body<Data = Bytes, Error = wasmtime_wasi_http::Error> + Send + 'static,
    {
        let id = self.context.component_id.clone();
        let limit = self.bounds.max_execution_time;
        let mut store = self
            .bounds
            .new_store(self.pre.engine(), self.context.clone());

        let (sender, receiver) = tokio::sync::oneshot::channel();
        let bad_request = |e: wasmtime::Error| InvokeError::BadRequest {
            id: id.clone(),
            reason: format!("{e:#}"),
        };
        let req = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, request)
            .map_err(bad_request)?;
        let out = store
            .data_mut()
            .http()
            .new_response_outparam(sender)
            .map_err(bad_request)?;
        let pre = self.pre.clone();

        let task = spawn_with_deadline(id.clone(), limit, async move {
            let proxy = pre
                .instantiate_async(&mut store)
                .await
                .map_err(GuestFailure::Instantiate)?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, req, out)
                .await
                .map_err(GuestFailure::Call)
        });

        match receiver.await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(code)) => Err(InvokeError::ErrorCode {
                id,
                code: format!("{code:?}"),
            }),
            // The guest dropped the outparam without setting it: the task tells why.
            Err(_) => match task.await {
                Ok(Err(e)) => Err(e),
                Ok(Ok(())) => Err(InvokeError::NoResponse { id }),
                Err(join) => Err(InvokeError::Trap {
                    id,
                    message: format!("host task failed: {join}"),
                }),
            },
        }
    }
}

/// Checks that `component` exports `export` and resolves its imports against the host's
/// linker (and its component links) once, for every kind of invocation.
pub(crate) fn instance_pre(
    runtime: &Runtime,
    component: &Component,
    context: &InstanceContext,
    export: &'static str,
    purpose: &'static str,
) -> Result<InstancePre<InstanceState>, PrepareError> {
    let exported = crate::imports::InterfaceName::parse(export)
        .is_some_and(|n| component.exports_interface(n.namespace, n.package, n.interface));
    if !exported {
        return Err(PrepareError::NotAHandler {
            id: component.id.clone(),
            interface: export,
            purpose,
            exports: component.exports.join(", "),
        });
    }
    crate::linker::for_component(&runtime.linker, &runtime.engine, component, context)?
        .instantiate_pre(&component.component)
        .map_err(|e| link_error(component, e))
}

pub(crate) fn link_error(component: &Component, e: wasmtime::Error) -> PrepareError {
    PrepareError::Link {
        id: component.id.clone(),
        reason: format!("{e:#}"),
    }
}
