//! The callee side of calls between components: [`ExportedComponent`] runs the plain-value
//! functions a component exports, in a fresh instance per call, for callers on this host (as
//! values, untouched) and on other hosts (as wRPC bytes, see [`crate::calls::codec`]); and
//! any plain-value export by name with values as text, for `trellis call`
//! ([`crate::by_name`]).
//!
//! Which functions it serves to other components is decided once, when it is prepared
//! ([`crate::Runtime::prepare_exports`] calls [`exported_functions`]): those of every exported
//! interface the host does not call itself whose types carry only plain values.

use crate::by_name::{self, ByNameError};
use crate::calls::codec::{self, Blob};
use crate::calls::{Call, CallError, Signature, Values};
use crate::component::Component;
use crate::invoke::{GuestFailure, InvokeError, run_with_deadline};
use crate::state::{InstanceBounds, InstanceContext, InstanceState};
use std::collections::HashMap;
use std::sync::Arc;
use trellis_control::ComponentId;
use trellis_control::ctl::CallReply;
use wasmtime::Engine;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{
    ComponentExportIndex, ComponentNamedList, InstancePre, Lift, Lower, Val,
};

/// Interface name (as exported, with version) → function → export.
pub(crate) type ExportedFunctions = HashMap<String, HashMap<String, Export>>;

/// One function a component exports to callers.
pub(crate) struct Export {
    index: ComponentExportIndex,
    signature: Signature,
    /// When its parameters (at most two) and results (at most one) are all `list<u8>` or
    /// `string`: callers on other hosts reach it as bytes, without `Val`s.
    blobs: Option<Blobs>,
}

/// The blob types of a function's parameters and results.
pub(crate) struct Blobs {
    params: Vec<Blob>,
    results: Vec<Blob>,
}

impl Blobs {
    fn of(signature: &Signature) -> Option<Self> {
        let params = Blob::all(&signature.params)?;
        let results = Blob::all(&signature.results)?;
        (params.len() <= 2 && results.len() <= 1).then_some(Self { params, results })
    }
}

/// A component prepared once to answer calls on the plain-value functions it exports.
#[derive(Clone)]
pub struct ExportedComponent {
    pre: InstancePre<InstanceState>,
    context: InstanceContext,
    bounds: InstanceBounds,
    /// Interface name (as exported, with version) → function → export.
    exports: Arc<ExportedFunctions>,
}

impl ExportedComponent {
    pub(crate) fn new(
        pre: InstancePre<InstanceState>,
        context: InstanceContext,
        bounds: InstanceBounds,
        exports: ExportedFunctions,
    ) -> Self {
        Self {
            pre,
            context,
            bounds,
            exports: Arc::new(exports),
        }
    }

    /// The id of the component this serves.
    pub fn id(&self) -> &ComponentId {
        &self.context.component_id
    }

    /// The interfaces it serves, as `namespace:package/interface@version`.
    pub fn interfaces(&self) -> impl Iterator<Item = &str> {
        self.exports.keys().map(String::as_str)
    }

    /// Whether other components can call it: it exports an interface whose functions carry
    /// only plain values, other than those the host calls itself.
    pub fn serves_calls(&self) -> bool {
        !self.exports.is_empty()
    }

    /// Runs the exported function `function` (`namespace:package/interface[@version].function`,
    /// or a world-level function's bare name) in a fresh instance, with `args` given as text
    /// (each JSON or WAVE, typed against its parameter), and returns the results as JSON and
    /// WAVE: what `trellis call` does. Any plain-value export can be called this way, also
    /// one the host calls itself.
    pub async fn call_by_name(
        &self,
        function: &str,
        args: &[String],
    ) -> Result<CallReply, ByNameError> {
        let target = by_name::resolve(
            self.pre.engine(),
            self.pre.component(),
            &self.context.component_id,
            function,
        )?;
        let params = by_name::parse_args(&target, args)?;
        let results = self
            .run(target.index, target.func.results().len(), params)
            .await?;
        by_name::show(&target, &results)
    }

    fn export(&self, instance: &str, function: &str) -> Result<&Export, CallError> {
        let functions = self.exports.get(instance).or_else(|| {
            // A caller built against another patch version of the same interface.
            let unversioned = instance.split('@').next().unwrap_or(instance);
            self.exports
                .iter()
                .find(|(k, _)| k.split('@').next() == Some(unversioned))
                .map(|(_, v)| v)
        });
        let Some(functions) = functions else {
            let mut served: Vec<_> = self.exports.keys().map(String::as_str).collect();
            served.sort_unstable();
            return Err(CallError::NoSuchFunction {
                target: self.context.component_id.clone(),
                what: format!("`{instance}` (it serves: {})", served.join(", ")),
            });
        };
        functions
            .get(function)
            .ok_or_else(|| CallError::NoSuchFunction {
                target: self.context.component_id.clone(),
                what: format!("function `{function}` in `{instance}`"),
            })
    }

    /// Runs `call` in a fresh instance, with the values as they are (a caller on this host).
    pub async fn call(&self, call: Call) -> Result<Values, CallError> {
        let export = self.export(call.instance(), call.function())?;
        if export.signature.params != call.route.signature.params
            || export.signature.results != call.route.signature.results
        {
            return Err(CallError::NoSuchFunction {
                target: self.context.component_id.clone(),
                what: format!(
                    "`{}.{}` with the type its caller imports",
                    call.instance(),
                    call.function()
                ),
            });
        }
        let results = self.run_export(export, call.params).await?;
        Ok(Values(results))
    }

    /// Whether `bytes` hold all of the wRPC-encoded arguments of `instance.function`; an
    /// error when they cannot (unknown function, malformed bytes).
    pub fn params_complete(
        &self,
        instance: &str,
        function: &str,
        bytes: &[u8],
    ) -> Result<bool, CallError> {
        let export = self.export(instance, function)?;
        codec::complete(bytes, &export.signature.params).map_err(CallError::Encoding)
    }

    /// Runs `instance.function` with wRPC-encoded arguments (a caller on another host) and
    /// returns the encoded results.
    pub async fn call_encoded(
        &self,
        instance: &str,
        function: &str,
        params: &[u8],
    ) -> Result<Vec<u8>, CallError> {
        let export = self.export(instance, function)?;
        if let Some(blobs) = &export.blobs {
            return self.call_blobs(export.index, blobs, params).await;
        }
        let params = codec::decode_all(params, &export.signature.params)
            .map_err(|e| CallError::Encoding(format!("arguments: {e}")))?;
        let results = self.run_export(export, params).await?;
        let mut out = Vec::new();
        codec::encode_all(&results, &export.signature.results, &mut out)
            .map_err(CallError::Encoding)?;
        Ok(out)
    }

    /// [`Self::call_encoded`] for a function whose values are all blobs: the arguments go
    /// from the encoding into the guest, and the results back, as byte slices through a typed
    /// call, with no `Val` per byte.
    async fn call_blobs(
        &self,
        index: ComponentExportIndex,
        blobs: &Blobs,
        params: &[u8],
    ) -> Result<Vec<u8>, CallError> {
        let p = codec::blobs(params, &blobs.params)
            .map_err(|e| CallError::Encoding(format!("arguments: {e}")))?;
        // `codec::blobs` checked every string's bytes.
        let text = |i: usize| std::str::from_utf8(p[i]).unwrap_or_default();
        let mut out = Vec::new();
        macro_rules! with_results {
            ($params:expr) => {
                match blobs.results.as_slice() {
                    [] => self.run_typed::<_, ()>(index, $params).await?,
                    [Blob::Bytes] => {
                        let (r,): (Vec<u8>,) = self.run_typed(index, $params).await?;
                        codec::put_blob(&r, &mut out).map_err(CallError::Encoding)?;
                    }
                    [Blob::Text] => {
                        let (r,): (String,) = self.run_typed(index, $params).await?;
                        codec::put_blob(r.as_bytes(), &mut out).map_err(CallError::Encoding)?;
                    }
                    _ => return Err(CallError::Encoding("unexpected blob results".into())),
                }
            };
        }
        use Blob::{Bytes as B, Text as T};
        match blobs.params.as_slice() {
            [] => with_results!(()),
            [B] => with_results!((p[0],)),
            [T] => with_results!((text(0),)),
            [B, B] => with_results!((p[0], p[1])),
            [B, T] => with_results!((p[0], text(1))),
            [T, B] => with_results!((text(0), p[1])),
            [T, T] => with_results!((text(0), text(1))),
            _ => return Err(CallError::Encoding("unexpected blob arguments".into())),
        }
        Ok(out)
    }

    /// Runs the function at `index` with typed parameters and results, like [`Self::run`].
    async fn run_typed<P, R>(
        &self,
        index: ComponentExportIndex,
        params: P,
    ) -> Result<R, InvokeError>
    where
        P: ComponentNamedList + Lower + Send + Sync,
        R: ComponentNamedList + Lift + Send + Sync + 'static,
    {
        let id = self.context.component_id.clone();
        let limit = self.bounds.max_execution_time;
        let mut store = self
            .bounds
            .new_store(self.pre.engine(), self.context.clone());
        let pre = self.pre.clone();
        let run = async move {
            let instance = pre
                .instantiate_async(&mut store)
                .await
                .map_err(GuestFailure::Instantiate)?;
            let func = instance
                .get_typed_func::<P, R>(&mut store, index)
                .map_err(GuestFailure::Instantiate)?;
            func.call_async(&mut store, params)
                .await
                .map_err(GuestFailure::Call)
        };
        run_with_deadline(limit, run)
            .await
            .map_err(|f| f.into_invoke_error(&id, limit))
    }

    async fn run_export(&self, export: &Export, params: Vec<Val>) -> Result<Vec<Val>, CallError> {
        let results = self
            .run(export.index, export.signature.results.len(), params)
            .await?;
        Ok(results)
    }

    /// Runs the function at `index` in a fresh store and instance, under the component's
    /// memory limit and execution deadline.
    async fn run(
        &self,
        index: ComponentExportIndex,
        results: usize,
        params: Vec<Val>,
    ) -> Result<Vec<Val>, InvokeError> {
        let id = self.context.component_id.clone();
        let limit = self.bounds.max_execution_time;
        let mut store = self
            .bounds
            .new_store(self.pre.engine(), self.context.clone());
        let pre = self.pre.clone();
        let mut results = vec![Val::Bool(false); results];
        let run = async move {
            let instance = pre
                .instantiate_async(&mut store)
                .await
                .map_err(GuestFailure::Instantiate)?;
            let func = instance.get_func(&mut store, index).ok_or_else(|| {
                GuestFailure::Instantiate(wasmtime::format_err!("export not found"))
            })?;
            func.call_async(&mut store, &params, &mut results)
                .await
                .map_err(GuestFailure::Call)?;
            Ok(results)
        };
        // Unlike an HTTP response, nothing streams after the call returns: it runs on the
        // caller's task (no hand-off to another worker), bounded by the same deadline.
        run_with_deadline(limit, run)
            .await
            .map_err(|f| f.into_invoke_error(&id, limit))
    }
}

/// The functions of `component` that other components may call; empty when there are none.
pub(crate) fn exported_functions(engine: &Engine, component: &Component) -> ExportedFunctions {
    let ty = component.component.component_type();
    let mut exports = HashMap::new();
    for (name, item) in ty.exports(engine) {
        let Some(n) = crate::imports::InterfaceName::parse(name) else {
            continue;
        };
        // Exports the host calls itself (HTTP, messages, `run`) are not served to callers.
        if trellis_capabilities::host_invoked(n.namespace, n.package, n.interface) {
            continue;
        }
        let ComponentItem::ComponentInstance(instance) = item.ty else {
            continue;
        };
        let Some(instance_index) = component.component.get_export_index(None, name) else {
            continue;
        };
        let mut functions = HashMap::new();
        for (function, export) in instance.exports(engine) {
            let ComponentItem::ComponentFunc(f) = export.ty else {
                continue;
            };
            let signature = Signature::of(&f);
            if signature.check().is_err() {
                continue;
            }
            let Some(index) = component
                .component
                .get_export_index(Some(&instance_index), function)
            else {
                continue;
            };
            let blobs = Blobs::of(&signature);
            functions.insert(
                function.to_owned(),
                Export {
                    index,
                    signature,
                    blobs,
                },
            );
        }
        if !functions.is_empty() {
            exports.insert(name.to_owned(), functions);
        }
    }
    exports
}
