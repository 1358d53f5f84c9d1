//! Who may publish and subscribe to what on a lattice's NATS server: the subjects each kind
//! of credential needs, derived from the subjects this crate and `trellis-control` use, so
//! that a credential for calls between components cannot drive the control plane.
//!
//! Three roles (`trellis creds init` writes one credential for each, docs/security.md):
//!
//! - [`Role::Host`]: what `trellis host` needs on both of its connections: the control
//!   interface and the app API (answering them, and the reconciler's own requests), events,
//!   app status, the lattice's JetStream buckets (links, config, apps and the reconciler
//!   lease, secrets, components) and calls between components.
//! - [`Role::Admin`]: what the CLI and wadm-era clients (`wash`, `wadm-client`, the
//!   control-interface crate) need: control requests, the app API, events and app status to
//!   watch, and the component store that `trellis app deploy` puts `file://` components in.
//! - [`Role::Rpc`]: calls between components only: wRPC subjects and wRPC inboxes
//!   ([`crate::wrpc::inbox_prefix`]). Nothing under `wasmbus.`, `wadm.`, `$JS.`, `$KV.`,
//!   `$O.` or `_INBOX.`.
//!
//! Everything not listed is denied: NATS permissions are allow lists.
//!
//! ```
//! use trellis_lattice::access::{Role, permissions};
//! let rpc = permissions(Role::Rpc, "prod");
//! assert!(rpc.publish.contains(&"prod.*.wrpc.>".to_owned()));
//! assert!(!rpc.publish.iter().any(|s| s.starts_with("wasmbus.")));
//! ```

use crate::{apps, components, event_subject, secrets, state, wrpc};
use trellis_control::ctl::CTL_PREFIX;
use trellis_control::wadm;

/// A kind of credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A host's control and RPC connections.
    Host,
    /// The CLI and other clients that drive the lattice.
    Admin,
    /// Calls between components (and capability traffic over wRPC) only.
    Rpc,
}

impl Role {
    /// Every role, in the order the docs list them.
    pub const ALL: [Role; 3] = [Role::Host, Role::Admin, Role::Rpc];

    /// `host`, `admin` or `rpc`: the credential file's name without `.creds`.
    pub fn name(self) -> &'static str {
        match self {
            Role::Host => "host",
            Role::Admin => "admin",
            Role::Rpc => "rpc",
        }
    }
}

/// The subjects a role may publish and subscribe to (NATS subject patterns).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permissions {
    /// Subjects it may publish on.
    pub publish: Vec<String>,
    /// Subjects it may subscribe to.
    pub subscribe: Vec<String>,
    /// Whether it may answer any request it receives once (NATS's `allow_responses`), for
    /// requesters whose inbox is not under `_INBOX.`.
    pub allow_responses: bool,
}

/// The prefixes of the JetStream API: the server's own, and any JetStream domain's
/// (`$JS.{domain}.API`), which is what crosses a leaf node connection to the hub's
/// JetStream (docs/security.md#leaf-nodes).
const API_PREFIXES: [&str; 2] = ["$JS.API", "$JS.*.API"];

/// The JetStream subjects for using stream `stream` and no other: its API
/// (`$JS.API.STREAM.INFO.S`, `$JS.API.CONSUMER.CREATE.S.…`, `$JS.API.DIRECT.GET.S.…`, …),
/// and acknowledging and flow-controlling its consumers.
fn stream_api(stream: &str) -> Vec<String> {
    let mut subjects = Vec::new();
    for api in API_PREFIXES {
        subjects.extend([
            format!("{api}.*.*.{stream}"),
            format!("{api}.*.*.{stream}.>"),
            format!("{api}.*.*.*.{stream}"),
            format!("{api}.*.*.*.{stream}.>"),
        ]);
    }
    subjects.extend([format!("$JS.ACK.{stream}.>"), format!("$JS.FC.{stream}.>")]);
    subjects
}

/// What publishing to key-value bucket `bucket` needs (reads arrive on inboxes); through a
/// leaf node, writes travel as `$JS.{domain}.API.$KV.…`.
fn kv_bucket(bucket: &str) -> Vec<String> {
    let mut subjects = stream_api(&format!("KV_{bucket}"));
    subjects.push(format!("$KV.{bucket}.>"));
    subjects.push(format!("$JS.*.API.$KV.{bucket}.>"));
    subjects
}

/// What publishing to object store `bucket` needs.
fn object_store(bucket: &str) -> Vec<String> {
    let mut subjects = stream_api(&format!("OBJ_{bucket}"));
    subjects.push(format!("$O.{bucket}.>"));
    subjects
}

/// The subjects `role` may use on lattice `lattice`.
pub fn permissions(role: Role, lattice: &str) -> Permissions {
    let control = format!("{CTL_PREFIX}.{lattice}.>");
    let events = event_subject(lattice, ">");
    let app_api = wadm::api_subscription(lattice);
    let app_status = wadm::status_subject(lattice, ">");
    // Every wRPC version's subjects, `{lattice}.{target}.wrpc.{version}.…`.
    let calls = format!("{lattice}.*.wrpc.>");
    let call_inboxes = format!("{}.>", wrpc::inbox_prefix(lattice));
    let inboxes = "_INBOX.>".to_owned();
    let logs = trellis_control::logs::log_subject(lattice, "*");
    // The account's own usage, which clients ask for before some JetStream operations.
    let account_info = API_PREFIXES.map(|api| format!("{api}.INFO"));
    match role {
        Role::Host => {
            let mut publish = vec![
                control.clone(),
                events.clone(),
                logs.clone(),
                app_status.clone(),
                inboxes.clone(),
                calls.clone(),
                call_inboxes.clone(),
            ];
            publish.extend(account_info);
            for bucket in [
                state::links_bucket(lattice),
                state::config_bucket(lattice),
                apps::bucket(lattice),
                secrets::bucket(lattice),
            ] {
                publish.extend(kv_bucket(&bucket));
            }
            publish.extend(object_store(&components::bucket(lattice)));
            Permissions {
                publish,
                subscribe: vec![
                    control,
                    events,
                    app_api,
                    app_status,
                    inboxes,
                    calls,
                    call_inboxes,
                ],
                allow_responses: true,
            }
        }
        Role::Admin => {
            let mut publish = vec![control, app_api];
            publish.extend(account_info);
            publish.extend(object_store(&components::bucket(lattice)));
            Permissions {
                publish,
                subscribe: vec![events, logs, app_status, inboxes],
                allow_responses: false,
            }
        }
        Role::Rpc => Permissions {
            publish: vec![calls.clone(), call_inboxes.clone()],
            subscribe: vec![calls, call_inboxes],
            allow_responses: false,
        },
    }
}

/// Whether NATS subject pattern `pattern` (with `*` and `>` wildcards) covers `subject`.
pub fn covers(pattern: &str, subject: &str) -> bool {
    let mut tokens = subject.split('.');
    for p in pattern.split('.') {
        match (p, tokens.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (p, Some(t)) if p == t => {}
            _ => return false,
        }
    }
    tokens.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(list: &[String], subject: &str) -> bool {
        list.iter().any(|p| covers(p, subject))
    }

    #[test]
    fn patterns_cover_subjects_as_nats_does() {
        assert!(covers("a.>", "a.b.c"));
        assert!(!covers("a.>", "a"));
        assert!(covers("a.*.c", "a.b.c"));
        assert!(!covers("a.*.c", "a.b.c.d"));
        assert!(!covers("a.b", "a.b.c"));
        assert!(covers("$JS.API.*.*.KV_x", "$JS.API.STREAM.INFO.KV_x"));
    }

    #[test]
    fn the_rpc_role_reaches_calls_and_nothing_of_the_control_plane() {
        let rpc = permissions(Role::Rpc, "prod");
        let call = wrpc::invocation_subject("prod", "callee", "a:b/c@1.0.0", "f");
        assert!(allowed(&rpc.publish, &call));
        assert!(allowed(&rpc.subscribe, &call));
        assert!(allowed(&rpc.publish, "_INBOX_RPC.prod.abc.results"));
        for forbidden in [
            "wasmbus.ctl.v1.prod.config.put.db",
            "wasmbus.ctl.v1.prod.host.ping",
            "wadm.api.prod.model.put",
            "wasmbus.evt.prod.host_heartbeat",
            "wadm.status.prod.app",
            "$JS.API.STREAM.INFO.KV_LATTICEDATA_prod",
            "$JS.API.DIRECT.GET.KV_CONFIGDATA_prod.$KV.CONFIGDATA_prod.db",
            "$KV.CONFIGDATA_prod.db",
            "$JS.hub.API.$KV.CONFIGDATA_prod.db",
            "$JS.hub.API.INFO",
            "$O.TRELLIS_COMPONENTS_prod.M.x",
            "_INBOX.abc",
            // Another lattice's calls.
            "other.callee.wrpc.0.0.1.a:b/c@1.0.0.f",
        ] {
            assert!(!allowed(&rpc.publish, forbidden), "publish {forbidden}");
            assert!(!allowed(&rpc.subscribe, forbidden), "subscribe {forbidden}");
        }
    }

    #[test]
    fn hosts_reach_their_lattice_and_admins_drive_it_without_its_buckets() {
        let host = permissions(Role::Host, "prod");
        for subject in [
            "wasmbus.ctl.v1.prod.component.scale.NHOST",
            "wasmbus.evt.prod.host_started",
            "wadm.status.prod.shop",
            "$JS.API.STREAM.CREATE.KV_LATTICEDATA_prod",
            "$JS.API.CONSUMER.CREATE.KV_TRELLIS_APPS_prod.c.$KV.TRELLIS_APPS_prod.>",
            "$JS.API.DIRECT.GET.KV_TRELLIS_SECRETS_prod.$KV.TRELLIS_SECRETS_prod.k",
            "$KV.CONFIGDATA_prod.db",
            "$O.TRELLIS_COMPONENTS_prod.C.abc",
            "$JS.API.STREAM.INFO.OBJ_TRELLIS_COMPONENTS_prod",
            // Through a leaf node, to the hub's JetStream domain.
            "$JS.hub.API.STREAM.INFO.KV_CONFIGDATA_prod",
            "$JS.hub.API.$KV.CONFIGDATA_prod.db",
            "$JS.hub.API.INFO",
        ] {
            assert!(allowed(&host.publish, subject), "host publishes {subject}");
        }
        assert!(allowed(&host.subscribe, "wadm.api.prod.model.put"));
        assert!(!allowed(&host.publish, "wasmbus.ctl.v1.other.host.ping"));
        assert!(!allowed(&host.publish, "$JS.API.STREAM.DELETE.KV_other"));

        let admin = permissions(Role::Admin, "prod");
        assert!(allowed(&admin.publish, "wasmbus.ctl.v1.prod.link.put"));
        assert!(allowed(&admin.publish, "wadm.api.prod.model.deploy.shop"));
        assert!(allowed(
            &admin.subscribe,
            "wasmbus.evt.prod.component_scaled"
        ));
        assert!(allowed(&admin.publish, "$O.TRELLIS_COMPONENTS_prod.M.x"));
        assert!(!allowed(&admin.publish, "$KV.LATTICEDATA_prod.COMPONENT_x"));
        assert!(!allowed(
            &admin.publish,
            "$JS.API.STREAM.INFO.KV_TRELLIS_SECRETS_prod"
        ));
        assert!(!allowed(&admin.subscribe, "wasmbus.ctl.v1.prod.host.ping"));
    }
}
