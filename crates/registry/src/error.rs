//! What can go wrong talking to a registry, each case carrying the reference (or registry) it
//! happened to and, where there is one, what to do next.

use std::time::Duration;

/// A boxed cause, kept so that callers can print the whole chain.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The environment variables that hold registry credentials, named once for messages and docs.
pub const USER_ENV: &str = "TRELLIS_REGISTRY_USER";
/// See [`USER_ENV`].
pub const PASSWORD_ENV: &str = "TRELLIS_REGISTRY_PASSWORD";

/// An error from [`Registry`](crate::Registry).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The reference does not parse as `registry/repository[:tag][@digest]`.
    #[error(
        "`{reference}` is not an OCI reference ({reason}); write e.g. `localhost:5000/demo/hello:0.1.0` or `ghcr.io/org/app@sha256:…`"
    )]
    InvalidReference {
        /// The reference as given.
        reference: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The registry wants credentials, or refused the ones it got.
    #[error("not authorized to access `{reference}` on {registry}{detail}; log in with `docker login {registry}`, or set {USER_ENV} and {PASSWORD_ENV} (or pass --registry-user and --registry-password)", detail = .detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Unauthorized {
        /// The reference as given.
        reference: String,
        /// The registry host (and port).
        registry: String,
        /// What the registry said, when it said something useful.
        detail: Option<String>,
    },

    /// The registry has no such repository, tag or digest.
    #[error(
        "`{reference}` was not found on {registry}; check the repository and tag (`trellis inspect` shows what a reference points to)"
    )]
    NotFound {
        /// The reference as given.
        reference: String,
        /// The registry host (and port).
        registry: String,
    },

    /// The registry's name does not resolve (no DNS, no network, or a misspelt name).
    #[error(
        "cannot reach {registry} for `{reference}`: its name does not resolve (is it spelt right, and does this machine have DNS and a network? Components pulled before run from the cache)"
    )]
    Unresolved {
        /// The reference as given.
        reference: String,
        /// The registry host (and port).
        registry: String,
        /// The transport's error.
        #[source]
        source: BoxError,
    },

    /// The registry could not be reached: refused, reset, no such host, a TLS failure.
    #[error("cannot reach {registry} for `{reference}` (is it running?{hint})", hint = if *.plain_http { String::new() } else { format!(" A registry that serves plain HTTP must be named with --allow-insecure-registry {registry}") })]
    Unreachable {
        /// The reference as given.
        reference: String,
        /// The registry host (and port).
        registry: String,
        /// Whether it was spoken to over plain HTTP (else HTTPS).
        plain_http: bool,
        /// The transport's error.
        #[source]
        source: BoxError,
    },

    /// The registry stopped answering for longer than the timeout.
    #[error(
        "{registry} did not answer within {timeout:?} for `{reference}`; raise --registry-timeout if it is just slow"
    )]
    TimedOut {
        /// The reference as given.
        reference: String,
        /// The registry host (and port).
        registry: String,
        /// The timeout in force.
        timeout: Duration,
    },

    /// The artifact is larger than the configured maximum.
    #[error(
        "`{reference}` is {size} bytes, more than the limit of {limit} bytes; raise it with --max-image-size"
    )]
    TooLarge {
        /// The reference as given.
        reference: String,
        /// The size the manifest claims (or the bytes received so far).
        size: u64,
        /// The limit in force.
        limit: u64,
    },

    /// The registry sent a blob of another size than the manifest says.
    #[error(
        "{registry} sent {received} for blob {digest} of `{reference}`, but the manifest says {claimed} bytes; nothing was kept"
    )]
    SizeMismatch {
        /// The reference as given.
        reference: String,
        /// The registry host (and port).
        registry: String,
        /// The blob's digest.
        digest: String,
        /// The size in the manifest.
        claimed: u64,
        /// What arrived: `"N bytes"` or `"more than N bytes"` when the download was cut off.
        received: String,
    },

    /// Content does not hash to the digest that names it.
    #[error(
        "`{reference}`: content does not match its digest (expected {expected}, got {found}); nothing was kept. The registry's storage may be corrupt, or something altered the download"
    )]
    DigestMismatch {
        /// The reference as given.
        reference: String,
        /// The digest the content should have.
        expected: String,
        /// The digest it has.
        found: String,
    },

    /// The artifact is something other than a WebAssembly component.
    #[error("`{reference}` is not a WebAssembly component: it is {found}")]
    NotAComponent {
        /// The reference as given.
        reference: String,
        /// What it is instead: "a core WebAssembly module, not a component", "a container
        /// image (layer media type …)", "an artifact with layer media types …".
        found: String,
    },

    /// The manifest is malformed or uses something this client does not support.
    #[error("`{reference}` has a manifest Trellis cannot use: {reason}")]
    BadManifest {
        /// The reference as given.
        reference: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The registry answered with an error not covered above.
    #[error("{registry} refused the request for `{reference}`")]
    Registry {
        /// The reference as given.
        reference: String,
        /// The registry host (and port).
        registry: String,
        /// The client's error, with the registry's message.
        #[source]
        source: BoxError,
    },
}

impl RegistryError {
    /// Whether the registry could not be talked to at all (refused, reset, timed out): the one
    /// case where a tag may be answered from the cache's index.
    pub fn is_offline(&self) -> bool {
        matches!(
            self,
            Self::Unreachable { .. } | Self::Unresolved { .. } | Self::TimedOut { .. }
        )
    }
}
