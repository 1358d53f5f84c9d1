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
use crate::linker;
use crate::messaging::{HandlerPre, MessageComponent};
use crate::runtime::Runtime;
use crate::state::{InstanceBounds, InstanceContext, InstanceState};
use crate::watcher::WatcherComponent;
use wasmtime::component::InstancePre;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

impl Runtime {
    /// Prepares `component` to serve `wasi:http/incoming-handler`: resolves all its imports
    /// against the host's linker once, so each request only instantiates.
    pub fn prepare_http(
        &self,
        component: &Component,
        context: InstanceContext,
    ) -> Result<HttpComponent, PrepareError> {
        let instance_pre = self.handler_pre(
            component,
            &context,
            "wasi:http/incoming-handler",
            "handle HTTP requests",
        )?;
        let pre = ProxyPre::new(instance_pre).map_err(|e| link_error(component, e))?;
        Ok(HttpComponent::new(pre, context, self.bounds()))
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
