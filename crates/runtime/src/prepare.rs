//! Preparing a component for each kind of invocation: [`Runtime::prepare_http`],
//! [`Runtime::prepare_messaging`], [`Runtime::prepare_watcher`] and
//! [`Runtime::prepare_exports`].
//!
//! Preparing resolves every import of the component against its linker
//! ([`crate::linker::for_component`]) once, into an `InstancePre`; the prepared component
//! then only instantiates, in a fresh store, per request, message or call. Whatever cannot
//! be linked is a [`PrepareError`] at deploy time, not a failure on the first request.

use crate::capabilities::messaging_v3::bindings::MessagingThreePre;
use crate::component::Component;
use crate::exported::{ExportedComponent, exported_functions};
use crate::http::HttpComponent;
use crate::imports::InterfaceName;
use crate::invoke::PrepareError;
use crate::limits::Reuse;
use crate::linker;
use crate::messaging::{HandlerPre, MessageComponent};
use crate::reuse::Pool;
use crate::runtime::Runtime;
use crate::state::{InstanceBounds, InstanceContext, InstanceState};
use crate::watcher::WatcherComponent;
use wasmtime::component::InstancePre;
use wasmtime_wasi_http::handler;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p3::bindings::ServicePre;

impl Runtime {
    /// Prepares `component` to serve HTTP: resolves all its imports against the host's
    /// linker once, so each request only instantiates (or finds a warm instance).
    ///
    /// A WASI 0.3 component (`wasi:http/handler@0.3`) is served from reused instances, each
    /// taking several requests at once, at most `max_instances` of them; `warm` says how they
    /// are reused (the host's [`crate::Limits::reuse`] when `None`). A WASI 0.2 component
    /// (`wasi:http/incoming-handler`) gets a fresh instance per request unless `warm` opts it
    /// into warm instances, which serve one request at a time.
    pub fn prepare_http(
        &self,
        component: &Component,
        context: InstanceContext,
        max_instances: u32,
        warm: Option<Reuse>,
    ) -> Result<HttpComponent, PrepareError> {
        let bounds = self.bounds();
        if component.exports_interface("wasi", "http", "handler") {
            let instance_pre = self.instance_pre(component, &context)?;
            let pre = ServicePre::new(instance_pre).map_err(|e| link_error(component, e))?;
            let handler = Pool::handler(
                handler::ProxyPre::P3(pre),
                context.clone(),
                bounds.clone(),
                warm.unwrap_or(self.limits.reuse),
                true,
                max_instances,
            );
            return Ok(HttpComponent::reused(handler, context, bounds));
        }
        let instance_pre = self.handler_pre(
            component,
            &context,
            "wasi:http/incoming-handler",
            "handle HTTP requests",
        )?;
        let pre = ProxyPre::new(instance_pre).map_err(|e| link_error(component, e))?;
        Ok(match warm {
            None => HttpComponent::fresh(pre, context, bounds),
            Some(reuse) => {
                let handler = Pool::handler(
                    handler::ProxyPre::P2(pre),
                    context.clone(),
                    bounds.clone(),
                    reuse,
                    false,
                    max_instances,
                );
                HttpComponent::reused(handler, context, bounds)
            }
        })
    }

    /// Prepares `component` to receive messages: on `wasmcloud:messaging/incoming-handler`
    /// (0.3.0) when it exports that, else on `handler` (0.2.0).
    pub fn prepare_messaging(
        &self,
        component: &Component,
        context: InstanceContext,
    ) -> Result<MessageComponent, PrepareError> {
        let pre = if component.exports_interface("wasmcloud", "messaging", "incoming-handler") {
            let instance_pre = self.instance_pre(component, &context)?;
            HandlerPre::V3(
                MessagingThreePre::new(instance_pre).map_err(|e| link_error(component, e))?,
            )
        } else {
            let instance_pre = self.handler_pre(
                component,
                &context,
                "wasmcloud:messaging/handler",
                "receive messages",
            )?;
            HandlerPre::V2(
                crate::capabilities::bindings::CapabilitiesPre::new(instance_pre)
                    .map_err(|e| link_error(component, e))?,
            )
        };
        Ok(MessageComponent::new(pre, context, self.bounds()))
    }

    /// Prepares `component` to hear of changes to watched keys on its
    /// `wasi:keyvalue/watcher` export.
    pub fn prepare_watcher(
        &self,
        component: &Component,
        context: InstanceContext,
    ) -> Result<WatcherComponent, PrepareError> {
        let instance_pre = self.handler_pre(
            component,
            &context,
            "wasi:keyvalue/watcher",
            "hear of changes to watched keys",
        )?;
        let pre = crate::capabilities::keyvalue::watcher_bindings::WatcherPre::new(instance_pre)
            .map_err(|e| link_error(component, e))?;
        Ok(WatcherComponent::new(pre, context, self.bounds()))
    }

    /// Prepares `component` to answer calls: from other components, on the interfaces it
    /// exports whose functions carry only plain values
    /// ([`ExportedComponent::serves_calls`]), and by name from `trellis call`, on any
    /// plain-value export.
    pub fn prepare_exports(
        &self,
        component: &Component,
        context: InstanceContext,
    ) -> Result<ExportedComponent, PrepareError> {
        let exports = exported_functions(&self.engine, component);
        let pre = self.instance_pre(component, &context)?;
        Ok(ExportedComponent::new(pre, context, self.bounds(), exports))
    }

    /// Checks that `component` exports `export`, the handler a kind of invocation calls, and
    /// resolves its imports.
    fn handler_pre(
        &self,
        component: &Component,
        context: &InstanceContext,
        export: &'static str,
        purpose: &'static str,
    ) -> Result<InstancePre<InstanceState>, PrepareError> {
        let exported = InterfaceName::parse(export)
            .is_some_and(|n| component.exports_interface(n.namespace, n.package, n.interface));
        if !exported {
            return Err(PrepareError::NotAHandler {
                id: component.id.clone(),
                interface: export,
                purpose,
                exports: component.exports.join(", "),
            });
        }
        self.instance_pre(component, context)
    }

    /// Resolves the imports of `component` against the host's linker and its component links.
    fn instance_pre(
        &self,
        component: &Component,
        context: &InstanceContext,
    ) -> Result<InstancePre<InstanceState>, PrepareError> {
        linker::for_component(&self.linker, &self.engine, component, context)?
            .instantiate_pre(&component.component)
            .map_err(|e| link_error(component, e))
    }

    /// What bounds each store of a prepared component.
    fn bounds(&self) -> InstanceBounds {
        InstanceBounds::from(&self.limits)
    }
}

fn link_error(component: &Component, source: wasmtime::Error) -> PrepareError {
    PrepareError::Link {
        id: component.id.clone(),
        source,
    }
}
