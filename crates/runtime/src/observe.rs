//! What the host learns from inside an instance that no return value carries: an instance
//! refused memory, a capability call made. The host implements [`Observer`] (its metrics)
//! and passes one per component in [`crate::InstanceContext::observer`]; the runtime knows
//! nothing of how it is counted.

/// Told what happens inside a component's instances. Calls come from the guest's thread,
/// mid-invocation: they must be quick and must not block.
pub trait Observer: Send + Sync + 'static {
    /// The component logged `message`: through `wasi:logging` (`source` `logging`, with its
    /// `context`), or as a line of its stdout or stderr (`source` `stdout`/`stderr`, no
    /// context). The runtime also logs it through `tracing` (target `trellis::guest`).
    fn log(
        &self,
        level: trellis_control::logs::LogLevel,
        source: &'static str,
        context: &str,
        message: &str,
    ) {
        let _ = (level, source, context, message);
    }

    /// An instance was refused memory (or a table) beyond its limit; told once per instance.
    fn memory_limit_hit(&self) {}

    /// The component asked `provider` (its name in the manifest) for `operation` of
    /// `capability` (`keyvalue`, `blobstore`, `messaging`, `postgres`, `http-client`); `ok`
    /// is false when the guest got an error value back.
    fn capability_call(
        &self,
        provider: &str,
        capability: &'static str,
        operation: &'static str,
        ok: bool,
    ) {
        let _ = (provider, capability, operation, ok);
    }

    /// The W3C `traceparent` of the current span, which an outgoing HTTP request carries to
    /// the service it calls; `None` when traces are not exported.
    fn traceparent(&self) -> Option<String> {
        None
    }
}

/// An [`Observer`] that remembers the capability calls it is told of, for tests.
#[cfg(test)]
#[derive(Default)]
pub(crate) struct Recorder {
    calls: std::sync::Mutex<Vec<String>>,
}

#[cfg(test)]
impl Recorder {
    /// The calls so far, as `provider capability operation ok|error`, and forgets them.
    pub(crate) fn take(&self) -> Vec<String> {
        std::mem::take(&mut *crate::sync::lock(&self.calls))
    }
}

#[cfg(test)]
impl Observer for Recorder {
    fn capability_call(
        &self,
        provider: &str,
        capability: &'static str,
        operation: &'static str,
        ok: bool,
    ) {
        let outcome = if ok { "ok" } else { "error" };
        crate::sync::lock(&self.calls)
            .push(format!("{provider} {capability} {operation} {outcome}"));
    }
}
