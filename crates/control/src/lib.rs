//! Typed identifiers and wire types shared by every Trellis crate.
//!
//! The shapes here follow the wasmCloud v1 control interface (see `shared/reference/protocol.md`):
//! the reply envelope, links, host inventory and CloudEvents. Other crates speak in these types
//! so that the in-process lattice of embedded mode and the NATS lattice carry the same JSON.
//!
//! Identifiers are newtypes so that a component id cannot be passed where a provider id or a
//! link name is expected.
//!
//! - [`claims`]: the claims of signed components as the lattice stores and answers them;
//! - [`ctl`]: the control interface's requests ([`CtlRequest`]), one variant per operation,
//!   each knowing its subject, body and how it is parsed;
//! - [`secret`]: secret references, sealed values and revealed ones;
//! - [`stats`]: what a host counted (`trellis.stats`), for the dashboard;
//! - [`logs`]: component log lines (`trellis.logs`, and the subject they stream on);
//! - [`wadm`]: the deployment manager's API ([`wadm::AppRequest`]) and its replies;
//! - ids, [`Link`], the host inventory, the reply envelope ([`CtlResponse`]) and
//!   [`CloudEvent`], the shapes both carry; [`error_text`], how an error and its causes
//!   become the text these carry.

pub mod claims;
pub mod ctl;
mod ids;
mod inventory;
mod link;
pub mod logs;
pub mod secret;
pub mod stats;
pub mod wadm;

pub use ctl::{CtlRequest, HostSubjects};

pub use ids::{ComponentId, HostId, LinkName, ProviderId, WorkloadId};
pub use inventory::{
    ComponentDescription, HostInventory, HostSummary, PendingComponent, PendingState,
    ProviderDescription, ProviderStatus,
};
pub use link::Link;

use serde::{Deserialize, Serialize};

/// The envelope of every control-interface reply: `success: true` on a command means
/// "accepted"; completion is announced by events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CtlResponse<T> {
    /// Whether the request was accepted.
    pub success: bool,
    /// A human-readable explanation, empty on success.
    #[serde(default)]
    pub message: String,
    /// The payload, absent for commands (a missing field reads as `None`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<T>,
}

impl<T> CtlResponse<T> {
    /// A successful reply carrying `response`.
    pub fn ok(response: T) -> Self {
        Self {
            success: true,
            message: String::new(),
            response: Some(response),
        }
    }

    /// A successful reply to a command, with no payload.
    pub fn success() -> Self {
        Self {
            success: true,
            message: String::new(),
            response: None,
        }
    }

    /// A failed reply explaining why.
    pub fn error(message: impl Into<String>) -> Self {
        Self {
            success: false,
            message: message.into(),
            response: None,
        }
    }
}

/// `error` and each of its causes, joined with `: ` (what anyhow's `{:#}` prints): the text
/// an error becomes where it travels as a string, such as a reply envelope's `message`, a
/// provider's failure reason or the wRPC error header. Errors keep their cause as a source
/// instead of repeating it in their own message, so `to_string()` alone would drop it.
pub fn error_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}

/// A lattice event as a CloudEvents 1.0 JSON document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloudEvent {
    /// Always `"1.0"`.
    pub specversion: String,
    /// Unique per event.
    pub id: String,
    /// The id of the host that emitted it.
    pub source: String,
    /// `com.wasmcloud.lattice.{event_name}`.
    #[serde(rename = "type")]
    pub ty: String,
    /// Always `"application/json"`.
    pub datacontenttype: String,
    /// RFC 3339 timestamp.
    pub time: String,
    /// Event-specific payload.
    pub data: serde_json::Value,
}

impl CloudEvent {
    /// The prefix of every event type.
    pub const TYPE_PREFIX: &'static str = "com.wasmcloud.lattice.";

    /// The event name without the type prefix, for example `component_scaled`.
    pub fn name(&self) -> &str {
        self.ty.strip_prefix(Self::TYPE_PREFIX).unwrap_or(&self.ty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_omits_absent_response() {
        let json = serde_json::to_value(CtlResponse::<()>::error("nope")).expect("serialize");
        assert_eq!(
            json,
            serde_json::json!({"success": false, "message": "nope"})
        );
    }

    #[test]
    fn error_text_follows_the_causes() {
        #[derive(Debug, thiserror::Error)]
        #[error("cannot open the bucket")]
        struct Outer(#[source] std::io::Error);
        let e = Outer(std::io::Error::other("connection refused"));
        assert_eq!(error_text(&e), "cannot open the bucket: connection refused");
    }

    #[test]
    fn event_name_strips_prefix() {
        let ev = CloudEvent {
            specversion: "1.0".into(),
            id: "1".into(),
            source: "h".into(),
            ty: "com.wasmcloud.lattice.component_scaled".into(),
            datacontenttype: "application/json".into(),
            time: "2026-01-01T00:00:00Z".into(),
            data: serde_json::Value::Null,
        };
        assert_eq!(ev.name(), "component_scaled");
    }
}
