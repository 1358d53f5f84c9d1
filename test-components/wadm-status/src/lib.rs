//! A guest for the wadm status provider, shaped like wasmCloud's wadm-status-receiver
//! example: every status update it receives becomes one log line (context `wadm-status`):
//!
//! ```text
//! status update: app=<app> version=<version> status=<type> message=<message> components=<name>/<type>/<status>,…
//! ```
//!
//! An update whose message contains `reject me` is answered with an error, so that tests
//! can see the host report a handler's error.

mod bindings {
    wit_bindgen::generate!({
        path: ["../../wit/logging-draft", "wit"],
        world: "trellis-test:wadm-status/wadm-status",
        generate_all,
    });
}

use bindings::exports::wasmcloud::wadm::handler::Guest;
use bindings::wasi::logging::logging::{Level, log};
use bindings::wasmcloud::wadm::types::{StatusType, StatusUpdate};

struct WadmStatus;

fn name(status: StatusType) -> &'static str {
    match status {
        StatusType::Undeployed => "undeployed",
        StatusType::Reconciling => "reconciling",
        StatusType::Deployed => "deployed",
        StatusType::Failed => "failed",
        StatusType::Waiting => "waiting",
        StatusType::Unhealthy => "unhealthy",
    }
}

impl Guest for WadmStatus {
    fn handle_status_update(msg: StatusUpdate) -> Result<(), String> {
        let components: Vec<String> = msg
            .status
            .components
            .iter()
            .map(|c| {
                format!(
                    "{}/{}/{}",
                    c.name,
                    c.component_type,
                    name(c.info.status_type)
                )
            })
            .collect();
        log(
            Level::Info,
            "wadm-status",
            &format!(
                "status update: app={} version={} status={} message={} components={}",
                msg.app,
                msg.status.version,
                name(msg.status.info.status_type),
                msg.status.info.message,
                components.join(",")
            ),
        );
        if msg.status.info.message.contains("reject me") {
            return Err("rejected on purpose".into());
        }
        Ok(())
    }
}

bindings::export!(WadmStatus with_types_in bindings);
