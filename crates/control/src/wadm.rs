//! The deployment manager's API, as wadm serves it: `wadm.api.{lattice}.model.{operation}`
//! with the request and reply shapes of the published `wadm-client` / `wadm-types` crates,
//! and app status updates on `wadm.status.{lattice}.{app}`. One type per request
//! ([`AppRequest`]) and one per reply, used by the hosts that answer and the CLI that asks.
//!
//! ```
//! use trellis_control::wadm::AppRequest;
//! let request = AppRequest::Status { name: "shop".into() };
//! assert_eq!(request.subject("default"), "wadm.api.default.model.status.shop");
//! assert_eq!(AppRequest::parse("status.shop", b""), request);
//! ```

use serde::{Deserialize, Serialize};
use std::fmt;

/// The prefix of the app API's subjects, before the lattice name.
const API_PREFIX: &str = "wadm.api";

/// The subject every app API request of `lattice` matches (for a subscription).
pub fn api_subscription(lattice: &str) -> String {
    format!("{API_PREFIX}.{lattice}.model.>")
}

/// The operation of an app API request that arrived on `subject` (`put`, `get.NAME`, …), or
/// `None` for another lattice's.
pub fn api_operation<'a>(lattice: &str, subject: &'a str) -> Option<&'a str> {
    subject
        .strip_prefix(API_PREFIX)?
        .strip_prefix('.')?
        .strip_prefix(lattice)?
        .strip_prefix(".model.")
}

/// Where the status of `app` on `lattice` is published when it changes.
pub fn status_subject(lattice: &str, app: &str) -> String {
    format!("wadm.status.{lattice}.{app}")
}

/// One app API request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppRequest {
    /// `put`: store a manifest (YAML or JSON) as a new version.
    Put(Vec<u8>),
    /// `get.{name}`: a version's manifest (the latest when `version` is absent).
    Get {
        /// The app.
        name: String,
        /// Which version.
        version: Option<String>,
    },
    /// `list`: every app with its status.
    List,
    /// `versions.{name}`.
    Versions {
        /// The app.
        name: String,
    },
    /// `del.{name}`: delete the app (undeploying it) or one version.
    Delete {
        /// The app.
        name: String,
        /// Which version; all when absent.
        version: Option<String>,
    },
    /// `deploy.{name}`.
    Deploy {
        /// The app.
        name: String,
        /// Which version; the latest when absent.
        version: Option<String>,
    },
    /// `undeploy.{name}`.
    Undeploy {
        /// The app.
        name: String,
    },
    /// `status.{name}`.
    Status {
        /// The app.
        name: String,
    },
    /// An operation the API does not have; answered with an error naming the ones it has.
    Unknown(String),
}

/// The body of requests that may name a version.
#[derive(Serialize, Deserialize)]
struct VersionBody {
    #[serde(default)]
    version: Option<String>,
}

impl AppRequest {
    /// Parses a request from its operation (the subject after `wadm.api.{lattice}.model.`)
    /// and body. Lenient, as wadm is: a body that names no version means the latest.
    pub fn parse(operation: &str, body: &[u8]) -> Self {
        let (verb, name) = match operation.split_once('.') {
            Some((verb, name)) => (verb, name.to_owned()),
            None => (operation, String::new()),
        };
        let version = || {
            serde_json::from_slice::<VersionBody>(body)
                .ok()
                .and_then(|b| b.version)
        };
        match verb {
            "put" => Self::Put(body.to_vec()),
            "get" => Self::Get {
                name,
                version: version(),
            },
            "list" => Self::List,
            "versions" => Self::Versions { name },
            "del" => Self::Delete {
                name,
                version: version(),
            },
            "deploy" => Self::Deploy {
                name,
                version: version(),
            },
            "undeploy" => Self::Undeploy { name },
            "status" => Self::Status { name },
            other => Self::Unknown(other.to_owned()),
        }
    }

    /// The operation: the subject after `wadm.api.{lattice}.model.`.
    pub fn operation(&self) -> String {
        match self {
            Self::Put(_) => "put".into(),
            Self::Get { name, .. } => format!("get.{name}"),
            Self::List => "list".into(),
            Self::Versions { name } => format!("versions.{name}"),
            Self::Delete { name, .. } => format!("del.{name}"),
            Self::Deploy { name, .. } => format!("deploy.{name}"),
            Self::Undeploy { name } => format!("undeploy.{name}"),
            Self::Status { name } => format!("status.{name}"),
            Self::Unknown(operation) => operation.clone(),
        }
    }

    /// The NATS subject on `lattice`.
    pub fn subject(&self, lattice: &str) -> String {
        format!("{API_PREFIX}.{lattice}.model.{}", self.operation())
    }

    /// The body.
    pub fn body(&self) -> Vec<u8> {
        match self {
            Self::Put(manifest) => manifest.clone(),
            Self::Get { version, .. }
            | Self::Delete { version, .. }
            | Self::Deploy { version, .. } => serde_json::to_vec(&VersionBody {
                version: version.clone(),
            })
            .unwrap_or_default(),
            _ => Vec::new(),
        }
    }
}

/// The `result` of an app API reply, as wadm names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiResult {
    /// `put` stored the first version.
    Created,
    /// `put` stored another version (or found the same content again).
    NewVersion,
    /// `get` / `versions` found it.
    Success,
    /// `status` found it.
    Ok,
    /// No such app or version.
    NotFound,
    /// `del` deleted something.
    Deleted,
    /// `del` found nothing to delete.
    Noop,
    /// `deploy` / `undeploy` accepted.
    Acknowledged,
    /// Something went wrong; the message says what.
    Error,
}

/// The reply to `put`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutReply {
    /// `created`, `newversion` or `error`.
    pub result: ApiResult,
    /// The app's name (empty when the manifest was refused).
    #[serde(default)]
    pub name: String,
    /// The version now latest.
    #[serde(default)]
    pub current_version: String,
    /// How many versions the app has.
    #[serde(default)]
    pub total_versions: usize,
    /// For people.
    #[serde(default)]
    pub message: String,
}

/// The reply to `get`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GetReply {
    /// `success`, `notfound` or `error`.
    pub result: ApiResult,
    /// For people.
    #[serde(default)]
    pub message: String,
    /// The manifest, with its version in `metadata.annotations.version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<serde_json::Value>,
}

/// One app in the reply to `list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppSummary {
    /// The app's name.
    pub name: String,
    /// Its latest version.
    pub version: String,
    /// The latest version's `description` annotation.
    #[serde(default)]
    pub description: Option<serde_json::Value>,
    /// The version deployed, if any.
    #[serde(default)]
    pub deployed_version: Option<String>,
    /// Its status.
    pub status: StatusType,
    /// Why, for people.
    #[serde(default)]
    pub status_message: String,
    /// The whole status.
    pub detailed_status: AppStatusReport,
}

/// The reply to `versions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionsReply {
    /// `success`, `notfound` or `error`.
    pub result: ApiResult,
    /// For people.
    #[serde(default)]
    pub message: String,
    /// Every version, oldest first.
    #[serde(default)]
    pub versions: Vec<VersionInfo>,
}

/// One version of an app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// The version.
    pub version: String,
    /// Whether it is the deployed one.
    pub deployed: bool,
}

/// The reply to `del`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteReply {
    /// `deleted`, `noop` or `error`.
    pub result: ApiResult,
    /// For people.
    #[serde(default)]
    pub message: String,
    /// Whether the app is being undeployed as a result.
    #[serde(default)]
    pub undeploy: bool,
}

/// The reply to `deploy` and `undeploy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployReply {
    /// `acknowledged`, `notfound` or `error`.
    pub result: ApiResult,
    /// For people.
    #[serde(default)]
    pub message: String,
    /// The app.
    #[serde(default)]
    pub name: String,
    /// The version being deployed (`deploy` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// The reply to `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReply {
    /// `ok`, `notfound` or `error`.
    pub result: ApiResult,
    /// For people.
    #[serde(default)]
    pub message: String,
    /// The status, when the app exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<AppStatusReport>,
}

/// The reply to an operation the API does not have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    /// Always `error`.
    pub result: ApiResult,
    /// What went wrong.
    pub message: String,
}

/// An app's status as wadm reports it (`status`, `list`'s `detailed_status`, and what is
/// published on [`status_subject`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppStatusReport {
    /// The app's status.
    pub status: StatusInfo,
    /// One entry per manifest entry.
    #[serde(default)]
    pub scalers: Vec<ScalerStatus>,
    /// The version deployed, when there is one: wadm's (deprecated but still read) `version`
    /// field, which `wasmcloud:wadm`'s `status` record carries to components.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
}

impl AppStatusReport {
    /// A status with no per-entry detail.
    pub fn new(kind: StatusType, message: impl Into<String>) -> Self {
        Self {
            status: StatusInfo {
                kind,
                message: message.into(),
            },
            scalers: Vec::new(),
            version: String::new(),
        }
    }
}

/// A status and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusInfo {
    /// The status.
    #[serde(rename = "type")]
    pub kind: StatusType,
    /// Why, for people.
    #[serde(default)]
    pub message: String,
}

/// The status of one manifest entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScalerStatus {
    /// The entry's name.
    pub id: String,
    /// Component or capability.
    pub kind: EntryKind,
    /// The entry's name.
    pub name: String,
    /// Its status.
    pub status: StatusInfo,
}

/// The kind of a manifest entry, named as in the manifest's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// `type: component`.
    Component,
    /// `type: capability`.
    Capability,
}

/// The status of an app or entry, as wadm names them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusType {
    /// Everything is at its declared placement.
    Deployed,
    /// Actions are under way.
    Reconciling,
    /// A provider failed or a resource conflicts with one this app does not manage.
    Failed,
    /// Running but not healthy (not produced by the planner).
    Unhealthy,
    /// Some placement cannot be made with the hosts there are.
    Waiting,
    /// Not deployed, or being removed.
    #[default]
    Undeployed,
}

impl StatusType {
    /// Rank when aggregating, as in wadm: failed > undeployed > waiting > reconciling >
    /// unhealthy > deployed.
    pub fn precedence(self) -> u8 {
        match self {
            StatusType::Deployed => 0,
            StatusType::Unhealthy => 1,
            StatusType::Reconciling => 2,
            StatusType::Waiting => 3,
            StatusType::Undeployed => 4,
            StatusType::Failed => 5,
        }
    }

    /// Whichever of `self` and `other` takes precedence.
    pub fn worst(self, other: StatusType) -> StatusType {
        if other.precedence() > self.precedence() {
            other
        } else {
            self
        }
    }

    /// The lower-case name, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusType::Deployed => "deployed",
            StatusType::Reconciling => "reconciling",
            StatusType::Failed => "failed",
            StatusType::Unhealthy => "unhealthy",
            StatusType::Waiting => "waiting",
            StatusType::Undeployed => "undeployed",
        }
    }
}

impl fmt::Display for StatusType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip() {
        for request in [
            AppRequest::Put(b"apiVersion: core.oam.dev/v1beta1".to_vec()),
            AppRequest::Get {
                name: "shop".into(),
                version: Some("v2".into()),
            },
            AppRequest::List,
            AppRequest::Versions {
                name: "shop".into(),
            },
            AppRequest::Delete {
                name: "shop".into(),
                version: None,
            },
            AppRequest::Deploy {
                name: "shop".into(),
                version: Some("v1".into()),
            },
            AppRequest::Undeploy {
                name: "shop".into(),
            },
            AppRequest::Status {
                name: "shop".into(),
            },
        ] {
            assert_eq!(
                AppRequest::parse(&request.operation(), &request.body()),
                request
            );
            let subject = request.subject("demo");
            assert_eq!(
                api_operation("demo", &subject),
                Some(request.operation().as_str())
            );
        }
        assert_eq!(
            AppRequest::parse("dance.shop", b""),
            AppRequest::Unknown("dance".into())
        );
    }

    #[test]
    fn replies_have_wadm_shapes() {
        let status = AppStatusReport::new(StatusType::Deployed, "");
        assert_eq!(
            serde_json::to_value(&status).expect("json"),
            serde_json::json!({"status": {"type": "deployed", "message": ""}, "scalers": []})
        );
        let reply = DeployReply {
            result: ApiResult::NotFound,
            message: "no app".into(),
            name: "shop".into(),
            version: None,
        };
        assert_eq!(
            serde_json::to_value(&reply).expect("json"),
            serde_json::json!({"result": "notfound", "message": "no app", "name": "shop"})
        );
        assert_eq!(
            serde_json::to_value(ApiResult::NewVersion).expect("json"),
            "newversion"
        );
    }
}
