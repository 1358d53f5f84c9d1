//! [`Registry`]: pull, pin, resolve, inspect and push components.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt as _;
use oci_client::manifest::OciDescriptor;

use crate::cache::Cache;
use crate::client::{Connection, Connections, Target, map_error, map_transport};
use crate::config::RegistryConfig;
use crate::error::RegistryError;
use crate::layout::{
    self, ACCEPTED_MANIFESTS, ANNOTATION_CREATED, ANNOTATION_VERSION, Descriptor, Manifest,
    OCI_MANIFEST_MEDIA_TYPE, Refusal, check_component, digest_of, sha256_hex,
};

/// Manifests larger than this are refused (the limit registries such as distribution apply
/// to the manifests they accept).
const MAX_MANIFEST_BYTES: usize = 4 << 20;

/// Where a pulled component's bytes came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Downloaded from the registry just now.
    Registry,
    /// From the cache: a digest reference (no network at all), or a tag whose manifest the
    /// registry just confirmed.
    Cache,
    /// From the cache while the registry was unreachable: the tag resolved to the digest it
    /// had when last pulled, which may be out of date.
    Offline,
}

/// A pulled component.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The reference as given.
    pub reference: String,
    /// The manifest's digest (`sha256:…`): the immutable name of what was pulled.
    pub digest: String,
    /// The component layer's digest.
    pub layer_digest: String,
    /// The component layer's media type.
    pub media_type: String,
    /// The component, checked against its digest and its header.
    pub bytes: Arc<[u8]>,
    /// Where the bytes came from.
    pub source: Source,
}

impl Pulled {
    /// Whether the bytes were read from the cache rather than downloaded.
    pub fn from_cache(&self) -> bool {
        self.source != Source::Registry
    }
}

/// A component and what its manifest says about it.
#[derive(Debug, Clone)]
pub struct Inspected {
    /// The component, as [`Registry::pull`] returns it.
    pub pulled: Pulled,
    /// The manifest's media type.
    pub manifest_media_type: String,
    /// The config blob's media type.
    pub config_media_type: Option<String>,
    /// The component's size in bytes.
    pub size: u64,
    /// The manifest's annotations.
    pub annotations: BTreeMap<String, String>,
}

/// A manifest and its component, verified.
struct Artifact {
    manifest: Manifest,
    pulled: Pulled,
}

/// A client for OCI registries with a digest-keyed cache. See the [crate docs](crate).
pub struct Registry {
    config: RegistryConfig,
    connections: Connections,
    cache: Option<Cache>,
}

impl Registry {
    /// A registry client with these settings. [`Credentials::Auto`](crate::Credentials::Auto)
    /// reads the environment now.
    pub fn new(config: RegistryConfig) -> Self {
        let connections = Connections::new(&config);
        let cache = config.cache_dir.clone().map(Cache::new);
        Self {
            config,
            connections,
            cache,
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    /// Pulls the component `reference` names (a tag or a digest).
    ///
    /// A digest reference already in the cache is served without any network. A tag is
    /// resolved by the registry; its component comes from the cache when the digest is there.
    /// When the registry cannot be reached at all (refused, reset, timed out), a tag pulled
    /// before is served as it was then ([`Source::Offline`], with a warning); any other
    /// failure (401, 404, a digest mismatch) is returned as it is.
    pub async fn pull(&self, reference: &str) -> Result<Pulled, RegistryError> {
        let target = Target::parse(reference)?;
        Ok(self.fetch(&target).await?.pulled)
    }

    /// Pulls `reference` at `digest`, as a lockfile pins it: from the cache without any
    /// network when the manifest `digest` is cached, else `repository@digest` from the
    /// registry, checked against `digest`.
    pub async fn pull_pinned(
        &self,
        reference: &str,
        digest: &str,
    ) -> Result<Pulled, RegistryError> {
        let target = Target::parse(reference)?;
        if sha256_hex(digest).is_none() {
            return Err(RegistryError::InvalidReference {
                reference: format!("{reference}@{digest}"),
                reason: "the digest is not `sha256:` and 64 lowercase hex digits".to_string(),
            });
        }
        if let Some(found) = target.reference.digest()
            && found != digest
        {
            return Err(RegistryError::InvalidReference {
                reference: reference.to_string(),
                reason: format!("it names digest {found}, but {digest} is pinned"),
            });
        }
        Ok(self.fetch(&target.at_digest(digest)).await?.pulled)
    }

    /// The manifest digest `reference` points to now (asking the registry; a digest
    /// reference is its own answer).
    pub async fn resolve(&self, reference: &str) -> Result<String, RegistryError> {
        let target = Target::parse(reference)?;
        if let Some(digest) = target.reference.digest() {
            return Ok(digest.to_string());
        }
        let connection = self.connections.get(&target).await;
        let digest = self
            .bounded(
                &target,
                connection
                    .client
                    .fetch_manifest_digest(&target.reference, &connection.auth),
            )
            .await?
            .map_err(|e| self.map(e, &target, &connection))?;
        Ok(digest)
    }

    /// Pulls `reference` like [`Registry::pull`] and says what its manifest says.
    pub async fn inspect(&self, reference: &str) -> Result<Inspected, RegistryError> {
        let target = Target::parse(reference)?;
        let Artifact { manifest, pulled } = self.fetch(&target).await?;
        Ok(Inspected {
            manifest_media_type: manifest.media_type().to_string(),
            config_media_type: manifest.config.map(|c| c.media_type),
            size: pulled.bytes.len() as u64,
            annotations: manifest.annotations,
            pulled,
        })
    }

    /// Pushes `component` to `reference` (a tag) in the CNCF Wasm OCI artifact layout and
    /// returns the manifest digest. `org.opencontainers.image.created` defaults to now and
    /// `org.opencontainers.image.version` to the tag. `progress(done, total)` is called as
    /// blobs are uploaded (in bytes, manifest included). What was pushed is also cached, so
    /// it runs offline.
    pub async fn push(
        &self,
        reference: &str,
        component: &[u8],
        annotations: BTreeMap<String, String>,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<String, RegistryError> {
        let target = Target::parse(reference)?;
        if target.reference.digest().is_some() {
            return Err(RegistryError::InvalidReference {
                reference: reference.to_string(),
                reason: "a push needs a tag, not a digest".to_string(),
            });
        }
        check_component(component).map_err(|found| RegistryError::NotAComponent {
            reference: reference.to_string(),
            found,
        })?;
        let mut annotations = annotations;
        if let Some(tag) = target.reference.tag() {
            annotations
                .entry(ANNOTATION_VERSION.to_string())
                .or_insert_with(|| tag.to_string());
        }
        if !annotations.contains_key(ANNOTATION_CREATED) {
            let now = time::OffsetDateTime::now_utc()
                .replace_nanosecond(0)
                .unwrap_or_else(|_| time::OffsetDateTime::now_utc());
            let created = now
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            annotations.insert(ANNOTATION_CREATED.to_string(), created);
        }
        let created = annotations
            .get(ANNOTATION_CREATED)
            .cloned()
            .unwrap_or_default();
        let layout = layout::push_layout(component, &annotations, &created);
        let total = (component.len() + layout.config.len() + layout.manifest.len()) as u64;
        progress(0, total);

        let connection = self.connections.get(&target).await;
        let client = &connection.client;
        client
            .store_auth_if_needed(target.registry(), &connection.auth)
            .await;
        let reference_ = &target.reference;
        client
            .push_blob(reference_, component, &layout.layer_digest)
            .await
            .map_err(|e| self.map(e, &target, &connection))?;
        progress(component.len() as u64, total);
        client
            .push_blob(reference_, &layout.config, &layout.config_digest)
            .await
            .map_err(|e| self.map(e, &target, &connection))?;
        progress((component.len() + layout.config.len()) as u64, total);
        let content_type = http::HeaderValue::from_static(OCI_MANIFEST_MEDIA_TYPE);
        client
            .push_manifest_raw(reference_, layout.manifest.clone(), content_type)
            .await
            .map_err(|e| self.map(e, &target, &connection))?;
        progress(total, total);

        let digest = digest_of(&layout.manifest);
        if let Some(cache) = &self.cache {
            cache
                .write_blob(&layout.layer_digest, component.to_vec())
                .await;
            cache.write_blob(&digest, layout.manifest).await;
            cache.write_ref(&target.reference.whole(), &digest).await;
        }
        Ok(digest)
    }

    /// The manifest and component `target` names, from the cache or the registry.
    async fn fetch(&self, target: &Target) -> Result<Artifact, RegistryError> {
        if let Some(digest) = target.reference.digest()
            && let Some(artifact) = self.cached_artifact(target, digest, Source::Cache).await
        {
            tracing::debug!(reference = %target.given, %digest, "served from the cache");
            return Ok(artifact);
        }
        let connection = self.connections.get(target).await;
        let (manifest_bytes, digest) = match self.fetch_manifest(target, &connection).await {
            Ok(found) => found,
            Err(e) if e.is_offline() && target.reference.digest().is_none() => {
                let whole = target.reference.whole();
                let cached = match &self.cache {
                    Some(cache) => cache.read_ref(&whole).await,
                    None => None,
                };
                if let Some(digest) = cached
                    && let Some(artifact) =
                        self.cached_artifact(target, &digest, Source::Offline).await
                {
                    tracing::warn!(reference = %target.given, %digest, error = %e, "registry unreachable; using the digest this tag had when last pulled");
                    return Ok(artifact);
                }
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let manifest = self.parse_manifest(target, &manifest_bytes)?;
        let layer = self.component_layer(target, &manifest)?.clone();
        let size = self.checked_size(target, &layer)?;

        let (bytes, source) = match self.cached_blob(&layer.digest).await {
            Some(bytes) => (bytes, Source::Cache),
            None => {
                let bytes = self.download(target, &connection, &layer, size).await?;
                (bytes, Source::Registry)
            }
        };
        check_component(&bytes).map_err(|found| RegistryError::NotAComponent {
            reference: target.given.clone(),
            found,
        })?;
        let bytes: Arc<[u8]> = bytes.into();
        if let Some(cache) = &self.cache {
            if source == Source::Registry {
                cache.write_blob(&layer.digest, bytes.to_vec()).await;
            }
            cache.write_blob(&digest, manifest_bytes).await;
            if target.reference.digest().is_none() {
                cache.write_ref(&target.reference.whole(), &digest).await;
            }
        }
        Ok(Artifact {
            pulled: Pulled {
                reference: target.given.clone(),
                digest,
                layer_digest: layer.digest,
                media_type: layer.media_type,
                bytes,
                source,
            },
            manifest,
        })
    }

    /// The manifest bytes and their digest, from the registry.
    async fn fetch_manifest(
        &self,
        target: &Target,
        connection: &Connection,
    ) -> Result<(Vec<u8>, String), RegistryError> {
        let (bytes, digest) = self
            .bounded(
                target,
                connection.client.pull_manifest_raw(
                    &target.reference,
                    &connection.auth,
                    &ACCEPTED_MANIFESTS,
                ),
            )
            .await?
            .map_err(|e| self.map(e, target, connection))?;
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(RegistryError::BadManifest {
                reference: target.given.clone(),
                reason: format!(
                    "its manifest is {} bytes, more than {MAX_MANIFEST_BYTES}",
                    bytes.len()
                ),
            });
        }
        // The client checked the body against the registry's digest header and the
        // reference's digest; the cache names blobs by sha256, so make sure of that one.
        let sha256 = digest_of(&bytes);
        if sha256_hex(&digest).is_some() && digest != sha256 {
            return Err(RegistryError::DigestMismatch {
                reference: target.given.clone(),
                expected: digest,
                found: sha256,
            });
        }
        Ok((bytes, sha256))
    }

    /// A cached manifest `digest` and its component, all verified; `None` if anything is
    /// missing or corrupt (corrupt files are discarded by the cache).
    async fn cached_artifact(
        &self,
        target: &Target,
        digest: &str,
        source: Source,
    ) -> Option<Artifact> {
        let cache = self.cache.as_ref()?;
        let manifest = Manifest::parse(&cache.read_blob(digest).await?).ok()?;
        let layer = manifest.component_layer().ok()?.clone();
        let bytes = cache.read_blob(&layer.digest).await?;
        check_component(&bytes).ok()?;
        Some(Artifact {
            pulled: Pulled {
                reference: target.given.clone(),
                digest: digest.to_string(),
                layer_digest: layer.digest,
                media_type: layer.media_type,
                bytes: bytes.into(),
                source,
            },
            manifest,
        })
    }

    async fn cached_blob(&self, digest: &str) -> Option<Vec<u8>> {
        self.cache.as_ref()?.read_blob(digest).await
    }

    fn parse_manifest(&self, target: &Target, bytes: &[u8]) -> Result<Manifest, RegistryError> {
        Manifest::parse(bytes).map_err(|reason| RegistryError::BadManifest {
            reference: target.given.clone(),
            reason,
        })
    }

    fn component_layer<'m>(
        &self,
        target: &Target,
        manifest: &'m Manifest,
    ) -> Result<&'m Descriptor, RegistryError> {
        let layer = manifest
            .component_layer()
            .map_err(|refusal| match refusal {
                Refusal::NotAComponent(found) => RegistryError::NotAComponent {
                    reference: target.given.clone(),
                    found,
                },
                Refusal::BadManifest(reason) => RegistryError::BadManifest {
                    reference: target.given.clone(),
                    reason,
                },
            })?;
        if sha256_hex(&layer.digest).is_none() {
            return Err(RegistryError::BadManifest {
                reference: target.given.clone(),
                reason: format!(
                    "its layer digest `{}` is not sha256, the one algorithm Trellis accepts",
                    layer.digest
                ),
            });
        }
        Ok(layer)
    }

    /// The layer's claimed size, refused when negative or over the limit.
    fn checked_size(&self, target: &Target, layer: &Descriptor) -> Result<u64, RegistryError> {
        let size = u64::try_from(layer.size).map_err(|_| RegistryError::BadManifest {
            reference: target.given.clone(),
            reason: format!("its layer claims a size of {}", layer.size),
        })?;
        if size > self.config.max_size {
            return Err(RegistryError::TooLarge {
                reference: target.given.clone(),
                size,
                limit: self.config.max_size,
            });
        }
        Ok(size)
    }

    /// Downloads a layer of `size` bytes, never holding more than that, and checks its digest.
    async fn download(
        &self,
        target: &Target,
        connection: &Connection,
        layer: &Descriptor,
        size: u64,
    ) -> Result<Vec<u8>, RegistryError> {
        // No `urls`: the client would follow them to any host, unauthenticated.
        let descriptor = OciDescriptor {
            media_type: layer.media_type.clone(),
            digest: layer.digest.clone(),
            size: layer.size,
            urls: None,
            annotations: None,
        };
        let mut stream = self
            .bounded(
                target,
                connection
                    .client
                    .pull_blob_stream(&target.reference, &descriptor),
            )
            .await?
            .map_err(|e| self.map(e, target, connection))?;
        let size_mismatch = |received: String| RegistryError::SizeMismatch {
            reference: target.given.clone(),
            registry: target.reference.registry().to_string(),
            digest: layer.digest.clone(),
            claimed: size,
            received,
        };
        if let Some(length) = stream.content_length
            && length > size
        {
            return Err(size_mismatch(format!(
                "{length} bytes (its Content-Length)"
            )));
        }
        // `size` is at most `max_size`, so this allocation is bounded.
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        loop {
            let next = tokio::time::timeout(self.config.timeout, stream.next())
                .await
                .map_err(|_| self.timed_out(target))?;
            match next {
                None => break,
                Some(Ok(chunk)) => {
                    if bytes.len() as u64 + chunk.len() as u64 > size {
                        return Err(size_mismatch(format!("more than {size} bytes")));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                // The client checks the digest at the end of the stream; say it our way.
                Some(Err(e)) if is_digest_error(&e) => {
                    return Err(RegistryError::DigestMismatch {
                        reference: target.given.clone(),
                        expected: layer.digest.clone(),
                        found: digest_of(&bytes),
                    });
                }
                Some(Err(e)) => {
                    return Err(map_transport(
                        e.into(),
                        target,
                        connection,
                        self.config.timeout,
                    ));
                }
            }
        }
        if bytes.len() as u64 != size {
            return Err(size_mismatch(format!("{} bytes", bytes.len())));
        }
        let found = digest_of(&bytes);
        if found != layer.digest {
            return Err(RegistryError::DigestMismatch {
                reference: target.given.clone(),
                expected: layer.digest.clone(),
                found,
            });
        }
        Ok(bytes)
    }

    /// Runs one request exchange under the timeout.
    async fn bounded<T>(
        &self,
        target: &Target,
        request: impl Future<Output = T>,
    ) -> Result<T, RegistryError> {
        tokio::time::timeout(self.config.timeout, request)
            .await
            .map_err(|_| self.timed_out(target))
    }

    fn timed_out(&self, target: &Target) -> RegistryError {
        RegistryError::TimedOut {
            reference: target.given.clone(),
            registry: target.reference.registry().to_string(),
            timeout: self.config.timeout,
        }
    }

    fn map(
        &self,
        error: oci_client::errors::OciDistributionError,
        target: &Target,
        connection: &Connection,
    ) -> RegistryError {
        map_error(error, target, connection, self.config.timeout)
    }
}

fn is_digest_error(error: &std::io::Error) -> bool {
    error
        .get_ref()
        .is_some_and(|inner| inner.is::<oci_client::errors::DigestError>())
}
