//! Deploying an application onto this host: check everything ([`checks`], pure), then
//! start everything ([`start`]). Nothing starts unless the whole app checks out.

mod checks;
mod start;

pub(crate) use checks::{
    DEFAULT_HTTP_ADDRESS, Route, SubscriptionLink, WATCH_KEY, WatchLink, merge_config, take_ci,
};

use crate::Host;
use crate::problems::{DeployError, Problem};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use trellis_claims::{ComponentClaims, Policy};
use trellis_control::secret::{SecretReference, is_secret_reference};
use trellis_control::{ComponentId, error_text};
use trellis_manifest::{Application, ImageRef};
use trellis_runtime::{Component, LoadError};

/// Annotation on the one-entry apps the control interface deploys.
pub(crate) const LATTICE_OPERATION: &str = "trellis.dev/lattice-operation";

/// An HTTP listener started by a deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listening {
    /// The bound address (with the real port when the request was port 0).
    pub address: SocketAddr,
    /// The provider entry serving it.
    pub provider: String,
    /// The component requests go to.
    pub component_id: ComponentId,
}

impl Host {
    /// Checks `app` as a whole and, if nothing is wrong, starts it on this host.
    pub async fn deploy(&self, app: &Application) -> Result<Vec<Listening>, DeployError> {
        let app = &self.with_secrets(self.with_stored_config(app).await).await;
        let mut problems = Vec::new();
        let manifest = app.manifest_path.display().to_string();

        checks::check_providers(app, &mut problems);
        let (loaded, claims) = self.load_components(app, &mut problems).await;
        let checked = checks::check(
            app,
            loaded,
            self.config.http_address_override,
            &mut problems,
        );
        if !problems.is_empty() {
            return Err(DeployError {
                app: app.name.clone(),
                manifest,
                problems,
            });
        }

        for warning in &checked.warnings {
            match &warning.hint {
                Some(hint) => {
                    tracing::warn!(app = %app.name, "{}\n  {}", warning.message, hint.replace('\n', "\n  "))
                }
                None => tracing::warn!(app = %app.name, "{}", warning.message),
            }
        }
        self.prepare_and_start(app, checked, claims, manifest).await
    }

    /// `app` with the named config it lists without properties (wadm's way of using config
    /// stored beforehand, with `trellis config put`) filled in from the config store: the
    /// lattice's, or the embedded host's own. Names found nowhere are left for the checks to
    /// report.
    async fn with_stored_config<'a>(&self, app: &'a Application) -> Cow<'a, Application> {
        let wanted = app.stored_config_names();
        if wanted.is_empty() {
            return Cow::Borrowed(app);
        }
        let state = self.control_state();
        let mut filled = app.clone();
        for name in wanted {
            match state.get_config(name).await {
                Ok(Some(values)) => {
                    filled.configs.insert(name.clone(), values);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(config = %name, "reading stored config failed: {e}"),
            }
        }
        Cow::Owned(filled)
    }

    /// `app` with the secrets its references name revealed ([`Application::revealed`]),
    /// from the lattice's secret store (or the embedded host's), opened with this host's
    /// secrets key. What cannot be revealed is kept as the reason, for the checks to report.
    async fn with_secrets<'a>(&self, app: Cow<'a, Application>) -> Cow<'a, Application> {
        let names: std::collections::BTreeSet<String> = app
            .config_names()
            .filter(|n| is_secret_reference(n))
            .cloned()
            .collect();
        if names.is_empty() {
            return app;
        }
        let mut app = app.into_owned();
        let store = self.secret_store();
        let key = self.secrets_key();
        for name in names {
            let Some(reference) = app
                .configs
                .get(&name)
                .and_then(SecretReference::from_config)
            else {
                continue;
            };
            let revealed = match &store {
                Some(store) => store.reveal(key.as_ref(), &reference).await,
                None => Err("this host keeps no secret store (embedded hosts keep one beside the manifest, lattice hosts in JetStream)".to_owned()),
            };
            app.revealed.insert(name, revealed);
        }
        Cow::Owned(app)
    }

    /// Loads (compiles, or finds in the cache) every component of `app`, after checking its
    /// signature against the host's policy: a component the policy refuses is never
    /// compiled. Returns them with the claims of those whose signature checks out.
    async fn load_components(
        &self,
        app: &Application,
        problems: &mut Vec<Problem>,
    ) -> (Vec<(String, Component)>, BTreeMap<String, ComponentClaims>) {
        let mut jobs = Vec::new();
        for c in &app.components {
            let runtime = self.runtime.clone();
            let policy = self.config.signed_components.clone();
            let (id, name) = (c.id.clone(), c.name.clone());
            let place = format!("{}:{}", app.manifest_path.display(), c.line);
            match &c.image {
                ImageRef::File(path) => {
                    let path = path.clone();
                    // Compiling is CPU-bound: keep it off the async workers.
                    jobs.push(tokio::task::spawn_blocking(move || {
                        let bytes = std::fs::read(&path).map_err(|source| {
                            Problem::new(
                                LoadError::Read {
                                    id: id.clone(),
                                    path: path.clone(),
                                    source,
                                }
                                .to_string(),
                            )
                        });
                        let loaded = bytes.and_then(|bytes| {
                            load_checked(&runtime, &policy, &id, &name, &place, &path, &bytes)
                        });
                        (name, loaded)
                    }));
                }
                ImageRef::Remote(reference) => {
                    let pulled = match self.pull(&id, reference).await {
                        Ok(pulled) => pulled,
                        Err(e) => {
                            problems.push(
                                Problem::new(format!(
                                    "component `{}` ({place}): {}",
                                    c.name,
                                    error_text(&e)
                                ))
                                .hint(pull_hint(&e)),
                            );
                            continue;
                        }
                    };
                    let shown = std::path::PathBuf::from(reference);
                    jobs.push(tokio::task::spawn_blocking(move || {
                        let loaded =
                            load_checked(&runtime, &policy, &id, &name, &place, &shown, &pulled);
                        (name, loaded)
                    }));
                }
            }
        }
        let mut loaded = Vec::new();
        let mut claims = BTreeMap::new();
        for job in jobs {
            match job.await {
                Ok((name, Ok((component, signed)))) => {
                    tracing::info!(
                        component_id = %component.id(),
                        from_cache = component.from_cache(),
                        issuer = signed.as_ref().map(|c| c.issuer.as_str()),
                        "component loaded"
                    );
                    if let Some(signed) = signed {
                        claims.insert(name.clone(), signed);
                    }
                    loaded.push((name, component));
                }
                Ok((_, Err(problem))) => problems.push(problem),
                Err(e) => problems.push(Problem::new(format!("loading a component failed: {e}"))),
            }
        }
        (loaded, claims)
    }
}

/// Checks a component's signature against `policy`, then compiles it (or finds it in the
/// cache). Refused bytes are never handed to the compiler.
fn load_checked(
    runtime: &trellis_runtime::Runtime,
    policy: &Policy,
    id: &ComponentId,
    name: &str,
    place: &str,
    path: &std::path::Path,
    bytes: &[u8],
) -> Result<(Component, Option<ComponentClaims>), Problem> {
    let claims = policy.check(bytes).map_err(|refusal| {
        tracing::warn!(component_id = %id, path = %path.display(), reason = %refusal, "component refused");
        Problem::new(format!(
            "component `{name}` ({place}, {}) is refused: {refusal}",
            path.display()
        ))
        .hint(refusal.hint())
    })?;
    let component = runtime
        .load_bytes(id, path, bytes)
        .map_err(|e| Problem::new(e.to_string()))?;
    Ok((component, claims))
}

/// Why a component's image could not be fetched.
#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error(transparent)]
    Registry(#[from] trellis_registry::RegistryError),
    #[error(transparent)]
    Lattice(#[from] trellis_lattice::components::ComponentStoreError),
    #[error("`{0}` is carried by a lattice's component store, and this host is not on a lattice")]
    NoLattice(String),
}

impl Host {
    /// Fetches the component `reference` names: from the lattice's component store for a
    /// `lattice://` image, else from its registry (or the cache). Logs what happens: a pull
    /// can take a while, and a failure must say why where people look.
    async fn pull(&self, id: &ComponentId, reference: &str) -> Result<Arc<[u8]>, FetchError> {
        tracing::info!(component_id = %id, %reference, "pulling component image");
        let fetched = match trellis_manifest::lattice_image(reference) {
            Some((_, digest)) => match self.control.components.get() {
                Some(store) => store
                    .get(digest, self.config.registry.max_size)
                    .await
                    .map(|bytes| (Arc::from(bytes), digest.to_owned(), "lattice".to_owned()))
                    .map_err(FetchError::from),
                None => Err(FetchError::NoLattice(reference.to_owned())),
            },
            None => self
                .registry
                .pull(reference)
                .await
                .map(|p| (p.bytes, p.digest, format!("{:?}", p.source).to_lowercase()))
                .map_err(FetchError::from),
        };
        match fetched {
            Ok((bytes, digest, source)) => {
                tracing::info!(
                    component_id = %id,
                    %reference,
                    %digest,
                    bytes = bytes.len(),
                    %source,
                    "component image pulled"
                );
                Ok(bytes)
            }
            Err(e) => {
                tracing::warn!(component_id = %id, %reference, error = %error_text(&e), "cannot pull component image");
                Err(e)
            }
        }
    }
}

/// What to do about a failed pull.
fn pull_hint(e: &FetchError) -> &'static str {
    use trellis_registry::RegistryError as E;
    let e = match e {
        FetchError::Registry(e) => e,
        FetchError::Lattice(_) => {
            return "deploy the manifest again with `trellis app deploy` from the machine that has the component's file";
        }
        FetchError::NoLattice(_) => {
            return "give the component's `file://` path (or a registry reference) instead";
        }
    };
    match e {
        E::Unauthorized { .. } => {
            "log in with `docker login REGISTRY` on the host, or start it with --registry-user/--registry-password"
        }
        E::TooLarge { .. } => "start the host with a larger --max-image-size",
        E::NotAComponent { .. } => {
            "push a WebAssembly component (built for wasm32-wasip2) to that reference"
        }
        _ => {
            "check the reference and that the registry is reachable from this host; a component pulled once runs from the cache when the registry is down"
        }
    }
}
