//! The wasmCloud v1 control interface's requests: one type per operation, each knowing its
//! subject and how it is parsed and serialised, so the host that answers, the client that
//! asks and the reconciler that acts all speak through the same code.
//!
//! A request travels as `wasmbus.ctl.v1.{lattice}.{operation}` with a JSON body (see
//! `shared/reference/protocol.md`); `operation` is `{noun}.{verb}` followed, for requests
//! addressed to one host or naming one config, by `.{host_id}` or `.{name}`. Over an embedded
//! host's admin endpoint the same operation is the path `POST /v1/ctl/{operation}`.
//!
//! ```
//! use trellis_control::{CtlRequest, HostId};
//! let request = CtlRequest::GetHost(HostId::new("NABC"));
//! assert_eq!(request.operation(), "host.get.NABC");
//! assert_eq!(request.subject("default"), "wasmbus.ctl.v1.default.host.get.NABC");
//! let parsed = CtlRequest::parse(&request.operation(), &request.body()).unwrap();
//! assert_eq!(parsed, request);
//! ```

use crate::{ComponentId, HostId, Link, LinkName, ProviderId, WorkloadId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The prefix of every control subject, before the lattice name.
pub const CTL_PREFIX: &str = "wasmbus.ctl.v1";

/// The subject of `operation` on `lattice`, for example
/// `wasmbus.ctl.v1.default.host.ping`.
pub fn ctl_subject(lattice: &str, operation: &str) -> String {
    format!("{CTL_PREFIX}.{lattice}.{operation}")
}

/// The subscriptions a host needs to answer the control interface of `lattice`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSubjects {
    /// Subjects every host hears on its own: pings, requests addressed to this host, and
    /// auctions (a host answers an auction only when it can take the work).
    pub own: Vec<String>,
    /// Lattice-wide requests one host answers for all (links, config, claims): subscribed
    /// in a queue group shared by every host.
    pub shared: Vec<String>,
}

impl HostSubjects {
    /// The subjects for host `host_id` on `lattice`.
    pub fn new(lattice: &str, host_id: &HostId) -> Self {
        let subject = |operation: &str| ctl_subject(lattice, operation);
        Self {
            own: vec![
                subject(op::HOST_PING),
                subject(&format!("*.*.{host_id}")),
                subject(op::COMPONENT_AUCTION),
                subject(op::PROVIDER_AUCTION),
            ],
            shared: vec![
                subject("link.*"),
                subject("config.*.*"),
                subject("secret.*"),
                subject("secret.*.*"),
                subject(op::CLAIMS_GET),
            ],
        }
    }

    /// The operation of a request that arrived on `subject` (the part after
    /// `wasmbus.ctl.v1.{lattice}.`), or `None` for a subject of another lattice.
    pub fn operation<'a>(lattice: &str, subject: &'a str) -> Option<&'a str> {
        subject
            .strip_prefix(CTL_PREFIX)?
            .strip_prefix('.')?
            .strip_prefix(lattice)?
            .strip_prefix('.')
    }
}

/// Operation names (`{noun}.{verb}`), as they appear in subjects.
mod op {
    pub const HOST_PING: &str = "host.ping";
    pub const HOST_GET: &str = "host.get";
    pub const HOST_STOP: &str = "host.stop";
    pub const LABEL_PUT: &str = "label.put";
    pub const LABEL_DEL: &str = "label.del";
    pub const CONFIG_PUT: &str = "config.put";
    pub const CONFIG_GET: &str = "config.get";
    pub const CONFIG_DEL: &str = "config.del";
    pub const LINK_PUT: &str = "link.put";
    pub const LINK_DEL: &str = "link.del";
    pub const LINK_GET: &str = "link.get";
    pub const CLAIMS_GET: &str = "claims.get";
    pub const COMPONENT_SCALE: &str = "component.scale";
    pub const COMPONENT_UPDATE: &str = "component.update";
    pub const PROVIDER_START: &str = "provider.start";
    pub const PROVIDER_STOP: &str = "provider.stop";
    pub const COMPONENT_AUCTION: &str = "component.auction";
    pub const PROVIDER_AUCTION: &str = "provider.auction";
    // Trellis's own: the lattice's secret store (wasmCloud v1 has no control operation for it).
    pub const SECRET_KEY: &str = "secret.key";
    pub const SECRET_PUT: &str = "secret.put";
    pub const SECRET_DEL: &str = "secret.del";
    pub const SECRET_LIST: &str = "secret.list";
    /// Trellis's own: not a wasmCloud v1 operation, under a noun wasmCloud does not use.
    pub const TRELLIS_CALL: &str = "trellis.call";
    /// Trellis's own: what a host counted ([`crate::stats::HostStats`]).
    pub const TRELLIS_STATS: &str = "trellis.stats";
    /// Trellis's own: a host's recent component log lines ([`crate::logs::LogsRequest`]).
    pub const TRELLIS_LOGS: &str = "trellis.logs";
}

/// One control-interface request.
#[derive(Debug, Clone, PartialEq)]
pub enum CtlRequest {
    /// `host.ping`: every host answers with its [`crate::HostSummary`].
    PingHosts,
    /// `host.get.{host_id}`: that host's [`crate::HostInventory`].
    GetHost(HostId),
    /// `host.stop.{host_id}`: the host replies, then stops.
    StopHost(StopHost),
    /// `label.put.{host_id}`.
    PutLabel(HostLabel),
    /// `label.del.{host_id}` (the value is ignored).
    DeleteLabel(HostLabel),
    /// `config.put.{name}` with a string map.
    PutConfig {
        /// The config's name.
        name: String,
        /// Its values.
        values: BTreeMap<String, String>,
    },
    /// `config.get.{name}`: the values, absent if unknown.
    GetConfig(String),
    /// `config.del.{name}`.
    DeleteConfig(String),
    /// `link.put`.
    PutLink(Link),
    /// `link.del`.
    DeleteLink(DeleteLink),
    /// `link.get`: every link in the lattice.
    GetLinks,
    /// `claims.get`: the claims of the signed components started on the lattice.
    GetClaims,
    /// `component.scale.{host_id}`.
    ScaleComponent(ScaleComponent),
    /// `component.update.{host_id}`.
    UpdateComponent(UpdateComponent),
    /// `provider.start.{host_id}`.
    StartProvider(StartProvider),
    /// `provider.stop.{host_id}`.
    StopProvider(StopProvider),
    /// `component.auction`: hosts that could run it answer.
    ComponentAuction(ComponentAuction),
    /// `provider.auction`: hosts that could run it answer.
    ProviderAuction(ProviderAuction),
    /// `secret.key` (Trellis): the public key secrets must be sealed to.
    GetSecretsKey,
    /// `secret.put.{name}` (Trellis) with a value sealed to that key: stores it.
    PutSecret {
        /// The secret's name.
        name: String,
        /// Its value, sealed.
        sealed: crate::secret::Sealed,
    },
    /// `secret.del.{name}` (Trellis).
    DeleteSecret(String),
    /// `secret.list` (Trellis): names, versions and times, never values.
    ListSecrets,
    /// `trellis.call.{host_id}`, Trellis's own (wasmCloud v1 has no such operation): that
    /// host calls a function a component running there exports, with arguments as text, and
    /// answers a [`CallReply`] (what `trellis call` sends).
    CallComponent(CallComponent),
    /// `trellis.stats.{host_id}`, Trellis's own: that host's counters, a
    /// [`crate::stats::HostStats`] (what the dashboard shows as rates).
    GetStats(HostId),
    /// `trellis.logs.{host_id}`, Trellis's own: that host's most recent component log
    /// lines, a list of [`crate::logs::LogRecord`] (what `trellis logs` shows).
    GetLogs(crate::logs::LogsRequest),
}

/// Why a control request could not be understood; the message is what the reply says.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The operation is not one of the control interface's.
    #[error("unknown control operation `{0}`")]
    UnknownOperation(String),
    /// A component or provider operation this host does not implement.
    #[error("{0} is not supported by this version of Trellis yet")]
    Unsupported(String),
    /// The body is not the JSON the operation takes.
    #[error("invalid {what} request: {source}{hint}")]
    Body {
        /// Which request, for example `label` or `component.scale`.
        what: &'static str,
        /// What serde said.
        #[source]
        source: serde_json::Error,
        /// What the body should have been, when that helps.
        hint: &'static str,
    },
}

/// `host.stop`'s body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopHost {
    /// The host to stop (from the subject when absent from the body).
    #[serde(default)]
    pub host_id: HostId,
    /// How long the host may take, in milliseconds (accepted, not used: the host's drain
    /// timeout applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
}

/// `label.put` / `label.del`'s body, with the host from the subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostLabel {
    /// The host, from the subject.
    #[serde(skip)]
    pub host_id: HostId,
    /// The label key.
    pub key: String,
    /// The value (ignored when deleting).
    #[serde(default)]
    pub value: String,
}

/// `link.del`'s body: which link to remove.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteLink {
    /// The link's source.
    pub source_id: WorkloadId,
    /// The link name.
    #[serde(default)]
    pub name: LinkName,
    /// The link's WIT namespace.
    pub wit_namespace: String,
    /// The link's WIT package.
    pub wit_package: String,
}

/// `component.scale`'s body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScaleComponent {
    /// The host to run on (from the subject when absent from the body).
    #[serde(default)]
    pub host_id: HostId,
    /// The component's id.
    pub component_id: ComponentId,
    /// Where its image is, for example `file:///app/hello.wasm`.
    #[serde(default)]
    pub component_ref: String,
    /// The maximum number of concurrent instances; 0 stops the component.
    #[serde(default, alias = "max_instances")]
    pub count: u32,
    /// Names of the named config given to the component.
    #[serde(default)]
    pub config: Vec<String>,
    /// Annotations shown in the inventory; the reconciler marks what it manages here.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Whether a running component may be replaced by another image.
    #[serde(default)]
    pub allow_update: bool,
}

/// `component.update`'s body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateComponent {
    /// The host it runs on (from the subject when absent from the body).
    #[serde(default)]
    pub host_id: HostId,
    /// The component's id.
    pub component_id: ComponentId,
    /// The image to run from now on.
    pub new_component_ref: String,
    /// Annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// `provider.start`'s body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartProvider {
    /// The host to run on (from the subject when absent from the body).
    #[serde(default)]
    pub host_id: HostId,
    /// The provider's id.
    pub provider_id: ProviderId,
    /// Its image, for example `ghcr.io/wasmcloud/keyvalue-redis:0.28.1`.
    #[serde(default)]
    pub provider_ref: String,
    /// Names of the named config given to the provider.
    #[serde(default)]
    pub config: Vec<String>,
    /// Annotations shown in the inventory.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// `provider.stop`'s body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopProvider {
    /// The host it runs on (from the subject when absent from the body).
    #[serde(default)]
    pub host_id: HostId,
    /// The provider's id.
    pub provider_id: ProviderId,
}

/// `component.auction`'s body; a host that can run it answers with the same fields and its
/// `host_id` ([`AuctionAck`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentAuction {
    /// The image to run.
    #[serde(default)]
    pub component_ref: String,
    /// The component's id.
    #[serde(default)]
    pub component_id: ComponentId,
    /// Labels a host must carry.
    #[serde(default)]
    pub constraints: BTreeMap<String, String>,
}

/// `provider.auction`'s body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderAuction {
    /// The image to run.
    #[serde(default)]
    pub provider_ref: String,
    /// The provider's id.
    #[serde(default)]
    pub provider_id: ProviderId,
    /// Labels a host must carry.
    #[serde(default)]
    pub constraints: BTreeMap<String, String>,
}

/// `trellis.call`'s body: which function of which component, with what arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallComponent {
    /// The host that runs the component (from the subject when absent from the body).
    #[serde(default)]
    pub host_id: HostId,
    /// The component's id.
    pub component_id: ComponentId,
    /// `namespace:package/interface[@version].function`, or the name of a function the
    /// component exports at the level of its world.
    pub function: String,
    /// One value per parameter, each as JSON or as WAVE text; the host types them against
    /// the function's parameters.
    #[serde(default)]
    pub args: Vec<String>,
}

/// `trellis.call`'s answer: the function that ran and what it returned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallReply {
    /// The function, as the component exports it (with the interface's version).
    pub function: String,
    /// Its results: none, or one (a component function returns at most one value).
    #[serde(default)]
    pub results: Vec<CallValue>,
}

/// One value, as JSON for scripts and as WAVE text for people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallValue {
    /// The value as JSON: records as objects, variants as `{"case": payload}` (or `"case"`),
    /// enums as strings, options as `null` or the value, results as `{"ok": …}` / `{"err": …}`,
    /// flags as lists of names.
    pub json: serde_json::Value,
    /// The value as WAVE, the WebAssembly Value Encoding.
    pub wave: String,
}

/// A host's answer to an auction: the request echoed with the bidder's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AuctionAck {
    /// For `component.auction`.
    Component {
        /// The image.
        component_ref: String,
        /// The component's id.
        component_id: ComponentId,
        /// The bidding host.
        host_id: HostId,
        /// The constraints it satisfies.
        constraints: BTreeMap<String, String>,
    },
    /// For `provider.auction`.
    Provider {
        /// The image.
        provider_ref: String,
        /// The provider's id.
        provider_id: ProviderId,
        /// The bidding host.
        host_id: HostId,
        /// The constraints it satisfies.
        constraints: BTreeMap<String, String>,
    },
}

fn body<T: for<'de> Deserialize<'de>>(
    payload: &[u8],
    what: &'static str,
    hint: &'static str,
) -> Result<T, ParseError> {
    serde_json::from_slice(payload).map_err(|source| ParseError::Body { what, source, hint })
}

/// Fills a host id the body left out with the one from the subject. The subject decides
/// which host answers, so it wins.
fn from_subject(id: &mut HostId, subject: &str) {
    *id = HostId::new(subject);
}

impl CtlRequest {
    /// Parses a request from its operation (the subject after `wasmbus.ctl.v1.{lattice}.`)
    /// and body.
    pub fn parse(operation: &str, payload: &[u8]) -> Result<Self, ParseError> {
        let unknown = || ParseError::UnknownOperation(operation.to_owned());
        let mut tokens = operation.splitn(3, '.');
        let noun = tokens.next().unwrap_or_default();
        let verb = tokens.next().ok_or_else(unknown)?;
        let name = tokens.next();
        let request = match (noun, verb, name) {
            ("host", "ping", None) => Self::PingHosts,
            ("host", "get", Some(id)) => Self::GetHost(HostId::new(id)),
            ("host", "stop", Some(id)) => {
                // An empty body is a stop with no options.
                let mut stop: StopHost = if payload.iter().all(u8::is_ascii_whitespace) {
                    StopHost {
                        host_id: HostId::new(id),
                        timeout: None,
                    }
                } else {
                    body(payload, "host.stop", "")?
                };
                from_subject(&mut stop.host_id, id);
                Self::StopHost(stop)
            }
            ("label", verb @ ("put" | "del"), Some(id)) => {
                let mut label: HostLabel = body(payload, "label", "")?;
                from_subject(&mut label.host_id, id);
                if verb == "put" {
                    Self::PutLabel(label)
                } else {
                    Self::DeleteLabel(label)
                }
            }
            ("config", "put", Some(name)) => Self::PutConfig {
                name: name.to_owned(),
                values: body(payload, "config", " (expected a JSON object of strings)")?,
            },
            ("config", "get", Some(name)) => Self::GetConfig(name.to_owned()),
            ("config", "del", Some(name)) => Self::DeleteConfig(name.to_owned()),
            ("link", "put", None) => Self::PutLink(body(payload, "link", "")?),
            ("link", "del", None) => Self::DeleteLink(body(payload, "link delete", "")?),
            ("link", "get", None) => Self::GetLinks,
            ("claims", "get", None) => Self::GetClaims,
            ("component", "scale", Some(id)) => {
                let mut scale: ScaleComponent = body(payload, "component.scale", "")?;
                from_subject(&mut scale.host_id, id);
                Self::ScaleComponent(scale)
            }
            ("component", "update", Some(id)) => {
                let mut update: UpdateComponent = body(payload, "component.update", "")?;
                from_subject(&mut update.host_id, id);
                Self::UpdateComponent(update)
            }
            ("provider", "start", Some(id)) => {
                let mut start: StartProvider = body(payload, "provider.start", "")?;
                from_subject(&mut start.host_id, id);
                Self::StartProvider(start)
            }
            ("provider", "stop", Some(id)) => {
                let mut stop: StopProvider = body(payload, "provider.stop", "")?;
                from_subject(&mut stop.host_id, id);
                Self::StopProvider(stop)
            }
            ("component", "auction", None) => {
                Self::ComponentAuction(body(payload, "component.auction", "")?)
            }
            ("provider", "auction", None) => {
                Self::ProviderAuction(body(payload, "provider.auction", "")?)
            }
            ("secret", "key", None) => Self::GetSecretsKey,
            ("secret", "list", None) => Self::ListSecrets,
            ("secret", "put", Some(name)) => Self::PutSecret {
                name: name.to_owned(),
                sealed: body(
                    payload,
                    "secret.put",
                    " (expected a value sealed to the lattice's secrets key: {\"sender\": …, \"sealed\": …}; `trellis secret put` makes it)",
                )?,
            },
            ("secret", "del", Some(name)) => Self::DeleteSecret(name.to_owned()),
            ("trellis", "call", Some(id)) => {
                let mut call: CallComponent = body(
                    payload,
                    "trellis.call",
                    " (expected {\"component_id\", \"function\", \"args\": [text, …]})",
                )?;
                from_subject(&mut call.host_id, id);
                Self::CallComponent(call)
            }
            ("trellis", "stats", Some(id)) => Self::GetStats(HostId::new(id)),
            ("trellis", "logs", Some(id)) => {
                // An empty body asks for the defaults.
                let mut logs: crate::logs::LogsRequest =
                    if payload.iter().all(u8::is_ascii_whitespace) {
                        crate::logs::LogsRequest::default()
                    } else {
                        body(
                            payload,
                            "trellis.logs",
                            " (expected {\"component_id\"?, \"level\"?, \"limit\"?})",
                        )?
                    };
                from_subject(&mut logs.host_id, id);
                Self::GetLogs(logs)
            }
            (noun @ ("component" | "provider"), verb, Some(_)) => {
                return Err(ParseError::Unsupported(format!("{noun}.{verb}")));
            }
            _ => return Err(unknown()),
        };
        Ok(request)
    }

    /// The operation: the subject after `wasmbus.ctl.v1.{lattice}.`.
    pub fn operation(&self) -> String {
        let with = |op: &str, name: &str| format!("{op}.{name}");
        match self {
            Self::PingHosts => op::HOST_PING.to_owned(),
            Self::GetHost(id) => with(op::HOST_GET, id.as_str()),
            Self::StopHost(r) => with(op::HOST_STOP, r.host_id.as_str()),
            Self::PutLabel(r) => with(op::LABEL_PUT, r.host_id.as_str()),
            Self::DeleteLabel(r) => with(op::LABEL_DEL, r.host_id.as_str()),
            Self::PutConfig { name, .. } => with(op::CONFIG_PUT, name),
            Self::GetConfig(name) => with(op::CONFIG_GET, name),
            Self::DeleteConfig(name) => with(op::CONFIG_DEL, name),
            Self::PutLink(_) => op::LINK_PUT.to_owned(),
            Self::DeleteLink(_) => op::LINK_DEL.to_owned(),
            Self::GetLinks => op::LINK_GET.to_owned(),
            Self::GetClaims => op::CLAIMS_GET.to_owned(),
            Self::ScaleComponent(r) => with(op::COMPONENT_SCALE, r.host_id.as_str()),
            Self::UpdateComponent(r) => with(op::COMPONENT_UPDATE, r.host_id.as_str()),
            Self::StartProvider(r) => with(op::PROVIDER_START, r.host_id.as_str()),
            Self::StopProvider(r) => with(op::PROVIDER_STOP, r.host_id.as_str()),
            Self::ComponentAuction(_) => op::COMPONENT_AUCTION.to_owned(),
            Self::ProviderAuction(_) => op::PROVIDER_AUCTION.to_owned(),
            Self::GetSecretsKey => op::SECRET_KEY.to_owned(),
            Self::PutSecret { name, .. } => with(op::SECRET_PUT, name),
            Self::DeleteSecret(name) => with(op::SECRET_DEL, name),
            Self::ListSecrets => op::SECRET_LIST.to_owned(),
            Self::CallComponent(r) => with(op::TRELLIS_CALL, r.host_id.as_str()),
            Self::GetStats(id) => with(op::TRELLIS_STATS, id.as_str()),
            Self::GetLogs(r) => with(op::TRELLIS_LOGS, r.host_id.as_str()),
        }
    }

    /// The NATS subject on `lattice`.
    pub fn subject(&self, lattice: &str) -> String {
        ctl_subject(lattice, &self.operation())
    }

    /// The JSON body (empty for requests that take none).
    pub fn body(&self) -> Vec<u8> {
        fn json(value: &impl Serialize) -> Vec<u8> {
            // Plain structs and maps of strings: serialising them cannot fail.
            serde_json::to_vec(value).unwrap_or_default()
        }
        match self {
            Self::PingHosts
            | Self::GetHost(_)
            | Self::GetConfig(_)
            | Self::GetLinks
            | Self::GetClaims
            | Self::GetSecretsKey
            | Self::ListSecrets
            | Self::GetStats(_) => Vec::new(),
            Self::PutSecret { sealed, .. } => json(sealed),
            Self::DeleteSecret(_) => b"{}".to_vec(),
            Self::StopHost(r) => json(r),
            Self::PutLabel(r) | Self::DeleteLabel(r) => json(r),
            Self::PutConfig { values, .. } => json(values),
            Self::DeleteConfig(_) => b"{}".to_vec(),
            Self::PutLink(r) => json(r),
            Self::DeleteLink(r) => json(r),
            Self::ScaleComponent(r) => json(r),
            Self::UpdateComponent(r) => json(r),
            Self::StartProvider(r) => json(r),
            Self::StopProvider(r) => json(r),
            Self::ComponentAuction(r) => json(r),
            Self::ProviderAuction(r) => json(r),
            Self::CallComponent(r) => json(r),
            Self::GetLogs(r) => json(r),
        }
    }

    /// The host a request is addressed to, for requests that name one.
    pub fn host_id(&self) -> Option<&HostId> {
        match self {
            Self::GetHost(id) => Some(id),
            Self::StopHost(r) => Some(&r.host_id),
            Self::PutLabel(r) | Self::DeleteLabel(r) => Some(&r.host_id),
            Self::ScaleComponent(r) => Some(&r.host_id),
            Self::UpdateComponent(r) => Some(&r.host_id),
            Self::StartProvider(r) => Some(&r.host_id),
            Self::StopProvider(r) => Some(&r.host_id),
            Self::CallComponent(r) => Some(&r.host_id),
            Self::GetStats(id) => Some(id),
            Self::GetLogs(r) => Some(&r.host_id),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip(request: CtlRequest) {
        let parsed = CtlRequest::parse(&request.operation(), &request.body())
            .unwrap_or_else(|e| panic!("{request:?}: {e}"));
        assert_eq!(parsed, request);
    }

    #[test]
    fn every_request_round_trips() {
        let host = HostId::new("NHOST");
        round_trip(CtlRequest::PingHosts);
        round_trip(CtlRequest::GetHost(host.clone()));
        round_trip(CtlRequest::StopHost(StopHost {
            host_id: host.clone(),
            timeout: Some(500),
        }));
        round_trip(CtlRequest::PutLabel(HostLabel {
            host_id: host.clone(),
            key: "zone".into(),
            value: "a".into(),
        }));
        round_trip(CtlRequest::DeleteLabel(HostLabel {
            host_id: host.clone(),
            key: "zone".into(),
            value: String::new(),
        }));
        round_trip(CtlRequest::PutConfig {
            name: "db".into(),
            values: BTreeMap::from([("url".into(), "redis://x".into())]),
        });
        round_trip(CtlRequest::GetConfig("db".into()));
        round_trip(CtlRequest::DeleteConfig("db".into()));
        round_trip(CtlRequest::GetSecretsKey);
        round_trip(CtlRequest::ListSecrets);
        round_trip(CtlRequest::DeleteSecret("db".into()));
        round_trip(CtlRequest::PutSecret {
            name: "db".into(),
            sealed: crate::secret::Sealed {
                sender: "XABC".into(),
                sealed: "AAAA".into(),
            },
        });
        round_trip(CtlRequest::GetLinks);
        round_trip(CtlRequest::GetClaims);
        round_trip(CtlRequest::DeleteLink(DeleteLink {
            source_id: "front".into(),
            name: LinkName::default(),
            wit_namespace: "wasi".into(),
            wit_package: "keyvalue".into(),
        }));
        round_trip(CtlRequest::ScaleComponent(ScaleComponent {
            host_id: host.clone(),
            component_id: ComponentId::new("hello"),
            component_ref: "file:///hello.wasm".into(),
            count: 3,
            config: vec!["c".into()],
            annotations: BTreeMap::from([("a".into(), "b".into())]),
            allow_update: true,
        }));
        round_trip(CtlRequest::UpdateComponent(UpdateComponent {
            host_id: host.clone(),
            component_id: ComponentId::new("hello"),
            new_component_ref: "file:///v2.wasm".into(),
            annotations: BTreeMap::new(),
        }));
        round_trip(CtlRequest::StartProvider(StartProvider {
            host_id: host.clone(),
            provider_id: ProviderId::new("kv"),
            provider_ref: "wasmcloud+builtin://keyvalue-redis".into(),
            config: vec![],
            annotations: BTreeMap::new(),
        }));
        round_trip(CtlRequest::StopProvider(StopProvider {
            host_id: host,
            provider_id: ProviderId::new("kv"),
        }));
        round_trip(CtlRequest::CallComponent(CallComponent {
            host_id: HostId::new("NHOST"),
            component_id: ComponentId::new("hello"),
            function: "wasmcloud:examples/invoke.call".into(),
            args: vec!["\"x\"".into(), "{a: 1}".into()],
        }));
        round_trip(CtlRequest::GetStats(HostId::new("NHOST")));
        round_trip(CtlRequest::GetLogs(crate::logs::LogsRequest {
            host_id: HostId::new("NHOST"),
            filter: crate::logs::LogFilter {
                component_id: Some(ComponentId::new("web")),
                level: Some(crate::logs::LogLevel::Warn),
            },
            limit: 20,
        }));
        round_trip(CtlRequest::ComponentAuction(ComponentAuction {
            component_ref: "file:///x.wasm".into(),
            component_id: ComponentId::new("x"),
            constraints: BTreeMap::from([("zone".into(), "a".into())]),
        }));
    }

    #[test]
    fn the_subject_names_the_host_whatever_the_body_says() {
        let body = json!({"host_id": "NOTHER", "component_id": "c", "max_instances": 2});
        let request = CtlRequest::parse(
            "component.scale.NHOST",
            &serde_json::to_vec(&body).expect("json"),
        )
        .expect("parses");
        let CtlRequest::ScaleComponent(scale) = &request else {
            panic!("{request:?}")
        };
        assert_eq!(scale.host_id.as_str(), "NHOST");
        assert_eq!(scale.count, 2, "max_instances is an alias of count");
        assert_eq!(request.host_id().map(HostId::as_str), Some("NHOST"));
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        let e = CtlRequest::parse("label.put.NHOST", b"not json").expect_err("refused");
        assert!(e.to_string().starts_with("invalid label request: "), "{e}");
        let e = CtlRequest::parse("config.put.db", b"[1]").expect_err("refused");
        assert!(
            e.to_string()
                .ends_with("(expected a JSON object of strings)"),
            "{e}"
        );
        for operation in [
            "host.dance",
            "host",
            "link.put.extra",
            "component.scale",
            "",
        ] {
            let e = CtlRequest::parse(operation, b"{}").expect_err(operation);
            assert_eq!(
                e.to_string(),
                format!("unknown control operation `{operation}`")
            );
        }
        // A stop with no body is a stop.
        assert!(matches!(
            CtlRequest::parse("host.stop.NHOST", b""),
            Ok(CtlRequest::StopHost(_))
        ));
    }

    #[test]
    fn trellis_call_is_addressed_to_one_host_under_a_noun_of_its_own() {
        let body = json!({"component_id": "c", "function": "f", "args": ["1", "x"]});
        let request = CtlRequest::parse(
            "trellis.call.NHOST",
            &serde_json::to_vec(&body).expect("json"),
        )
        .expect("parses");
        assert_eq!(request.subject("l"), "wasmbus.ctl.v1.l.trellis.call.NHOST");
        assert_eq!(request.host_id().map(HostId::as_str), Some("NHOST"));
        // A host hears it on its own subscription.
        let own = HostSubjects::new("l", &HostId::new("NHOST")).own;
        assert!(own.contains(&"wasmbus.ctl.v1.l.*.*.NHOST".to_owned()));
        let e = CtlRequest::parse("trellis.call.NHOST", b"{}").expect_err("refused");
        assert!(
            e.to_string().starts_with("invalid trellis.call request"),
            "{e}"
        );
        // wasmCloud's own nouns are left alone.
        assert!(matches!(
            CtlRequest::parse("component.call.NHOST", b"{}"),
            Err(ParseError::Unsupported(_))
        ));
    }

    #[test]
    fn host_subjects_and_operations() {
        let subjects = HostSubjects::new("demo", &HostId::new("NHOST"));
        assert!(
            subjects
                .own
                .contains(&"wasmbus.ctl.v1.demo.*.*.NHOST".to_owned())
        );
        assert!(
            subjects
                .shared
                .contains(&"wasmbus.ctl.v1.demo.link.*".to_owned())
        );
        assert_eq!(
            HostSubjects::operation("demo", "wasmbus.ctl.v1.demo.host.get.NHOST"),
            Some("host.get.NHOST")
        );
        assert_eq!(
            HostSubjects::operation("demo", "wasmbus.ctl.v1.other.host.ping"),
            None
        );
    }
}
