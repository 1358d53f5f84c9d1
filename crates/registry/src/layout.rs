//! The artifact layouts: which manifests hold a component, which layer it is, and what a push
//! writes.
//!
//! Two layouts are pulled:
//!
//! - the CNCF *Wasm OCI Artifact* layout (what `wkg`, `wash` ≥ 0.30 and `oras` with the right
//!   media types push): config [`WASM_CONFIG_MEDIA_TYPE`], one layer [`WASM_LAYER_MEDIA_TYPE`];
//! - wasmCloud v1's older layout: one layer [`WASMCLOUD_LAYER_MEDIA_TYPE`], any config.
//!
//! Pushes write the first, with `org.opencontainers.image.*` annotations.

use std::collections::BTreeMap;

use serde::Deserialize;

/// Config media type of the CNCF Wasm OCI artifact layout.
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// Layer media type of the CNCF Wasm OCI artifact layout.
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";
/// Layer media type of wasmCloud v1 (and `wasm-to-oci`).
pub const WASMCLOUD_LAYER_MEDIA_TYPE: &str = "application/vnd.module.wasm.content.layer.v1+wasm";
/// The OCI image manifest media type, which pushes use.
pub const OCI_MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// Docker's image manifest media type, accepted on pull.
pub const DOCKER_MANIFEST_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// The OCI image index media type (multi-platform images): never a component.
pub const OCI_INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// Docker's manifest list media type (multi-platform images): never a component.
pub const DOCKER_LIST_MEDIA_TYPE: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";

/// Layer media types that carry a component.
pub const COMPONENT_LAYER_MEDIA_TYPES: [&str; 2] =
    [WASM_LAYER_MEDIA_TYPE, WASMCLOUD_LAYER_MEDIA_TYPE];

/// Manifest media types asked for on pull; indexes are asked for too, so that a container
/// image is recognised and named rather than refused with "not found".
pub(crate) const ACCEPTED_MANIFESTS: [&str; 4] = [
    OCI_MANIFEST_MEDIA_TYPE,
    DOCKER_MANIFEST_MEDIA_TYPE,
    OCI_INDEX_MEDIA_TYPE,
    DOCKER_LIST_MEDIA_TYPE,
];

/// Annotation: where the component's source lives.
pub const ANNOTATION_SOURCE: &str = "org.opencontainers.image.source";
/// Annotation: the component's version (a push defaults it to the tag).
pub const ANNOTATION_VERSION: &str = "org.opencontainers.image.version";
/// Annotation: when the artifact was made, RFC 3339 (a push defaults it to now).
pub const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";

/// A blob's description in a manifest.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: i64,
}

/// The parts of an image manifest (or index) this crate reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Manifest {
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub config: Option<Descriptor>,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// Present in indexes only.
    #[serde(default)]
    pub manifests: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

impl Manifest {
    /// Parses a manifest, or says what is wrong with it.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("its manifest is not valid JSON: {e}"))
    }

    /// The manifest's media type as declared, or as inferred from its shape.
    pub fn media_type(&self) -> &str {
        match &self.media_type {
            Some(media_type) => media_type,
            None if self.manifests.is_some() => OCI_INDEX_MEDIA_TYPE,
            None => OCI_MANIFEST_MEDIA_TYPE,
        }
    }

    /// The layer holding the component, or what the artifact is instead.
    pub fn component_layer(&self) -> Result<&Descriptor, Refusal> {
        let media_type = self.media_type();
        if self.manifests.is_some()
            || media_type == OCI_INDEX_MEDIA_TYPE
            || media_type == DOCKER_LIST_MEDIA_TYPE
        {
            return Err(Refusal::NotAComponent(format!(
                "an image index ({media_type}), as multi-platform container images are"
            )));
        }
        if media_type != OCI_MANIFEST_MEDIA_TYPE && media_type != DOCKER_MANIFEST_MEDIA_TYPE {
            return Err(Refusal::NotAComponent(format!(
                "an artifact with manifest media type {media_type}"
            )));
        }
        let wasm: Vec<&Descriptor> = self
            .layers
            .iter()
            .filter(|l| COMPONENT_LAYER_MEDIA_TYPES.contains(&l.media_type.as_str()))
            .collect();
        match wasm.as_slice() {
            [layer] => Ok(layer),
            [] => Err(Refusal::NotAComponent(self.describe_other_layers())),
            many => Err(Refusal::BadManifest(format!(
                "it has {} WebAssembly layers; a component artifact has exactly one",
                many.len()
            ))),
        }
    }

    fn describe_other_layers(&self) -> String {
        let types: Vec<&str> = self.layers.iter().map(|l| l.media_type.as_str()).collect();
        let config = self.config.as_ref().map(|c| c.media_type.as_str());
        let container_config = matches!(
            config,
            Some(
                "application/vnd.oci.image.config.v1+json"
                    | "application/vnd.docker.container.image.v1+json"
            )
        );
        if types
            .iter()
            .any(|t| t.contains(".tar") || t.contains("rootfs"))
            || container_config
        {
            format!(
                "a container image (layer media types: {})",
                list_or_none(&types)
            )
        } else {
            format!(
                "an artifact with layer media types {}; a component's layer is {} or {}",
                list_or_none(&types),
                WASM_LAYER_MEDIA_TYPE,
                WASMCLOUD_LAYER_MEDIA_TYPE
            )
        }
    }
}

fn list_or_none(types: &[&str]) -> String {
    if types.is_empty() {
        "none".to_string()
    } else {
        types.join(", ")
    }
}

/// Why a manifest yields no component.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    NotAComponent(String),
    BadManifest(String),
}

/// Checks that `bytes` are a WebAssembly component (by its header), or says what they are.
///
/// A component starts with the magic `\0asm` and the version and layer `0d 00 01 00`; a core
/// module has version `01 00 00 00`.
pub fn check_component(bytes: &[u8]) -> Result<(), String> {
    if !bytes.starts_with(b"\0asm") {
        return Err("not WebAssembly at all (it does not start with `\\0asm`)".to_string());
    }
    match bytes.get(4..8) {
        Some([0x0d, 0x00, 0x01, 0x00]) => Ok(()),
        Some([0x01, 0x00, 0x00, 0x00]) => {
            Err("a core WebAssembly module, not a component".to_string())
        }
        Some(other) => Err(format!(
            "WebAssembly of an unknown version/layer {other:02x?} (a component has 0d 00 01 00)"
        )),
        None => Err("a truncated WebAssembly header".to_string()),
    }
}

/// A checked `sha256:<64 lowercase hex>` digest; the only form this crate stores or trusts.
/// It is also a safe file name, which is why nothing else is accepted.
pub(crate) fn sha256_hex(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))).then_some(hex)
}

/// The sha256 digest of `bytes`, as `sha256:<hex>`.
pub fn digest_of(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    let hash = sha2::Sha256::digest(bytes);
    let mut out = String::with_capacity(71);
    out.push_str("sha256:");
    for b in hash {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// What a push uploads: the config blob, and the manifest bytes that name it and the layer.
pub(crate) struct PushLayout {
    pub config: Vec<u8>,
    pub config_digest: String,
    pub layer_digest: String,
    pub manifest: Vec<u8>,
}

/// Builds the CNCF layout for `component`, annotated with `annotations`.
pub(crate) fn push_layout(
    component: &[u8],
    annotations: &BTreeMap<String, String>,
    created: &str,
) -> PushLayout {
    let layer_digest = digest_of(component);
    // The config the CNCF Wasm OCI artifact spec asks for: architecture `wasm`, the WASI
    // version as `os`, and the layers' digests. (Its optional `component` section, the
    // world's imports and exports, would need a wasm parser; readers must not require it.)
    let config = serde_json::json!({
        "created": created,
        "architecture": "wasm",
        "os": "wasip2",
        "layerDigests": [layer_digest],
    });
    let config = serde_json::to_vec(&config).unwrap_or_default();
    let config_digest = digest_of(&config);
    let mut manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST_MEDIA_TYPE,
        "config": {
            "mediaType": WASM_CONFIG_MEDIA_TYPE,
            "digest": config_digest,
            "size": config.len(),
        },
        "layers": [{
            "mediaType": WASM_LAYER_MEDIA_TYPE,
            "digest": layer_digest,
            "size": component.len(),
        }],
    });
    if !annotations.is_empty() {
        manifest["annotations"] = serde_json::json!(annotations);
    }
    let manifest = serde_json::to_vec(&manifest).unwrap_or_default();
    PushLayout {
        config,
        config_digest,
        layer_digest,
        manifest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMPONENT: &[u8] = b"\0asm\x0d\x00\x01\x00rest";

    #[test]
    fn headers_tell_components_from_modules() {
        assert_eq!(check_component(COMPONENT), Ok(()));
        let core = check_component(b"\0asm\x01\x00\x00\x00").expect_err("core");
        assert!(core.contains("core WebAssembly module"), "{core}");
        let text = check_component(b"#!/bin/sh").expect_err("text");
        assert!(text.contains("not WebAssembly"), "{text}");
        assert!(check_component(b"\0asm").is_err());
    }

    #[test]
    fn only_plain_sha256_digests_are_trusted() {
        let good = digest_of(b"x");
        assert!(sha256_hex(&good).is_some());
        assert!(sha256_hex("sha256:../../etc/passwd").is_none());
        assert!(sha256_hex(&good.to_uppercase()).is_none());
        assert!(sha256_hex("sha512:abcd").is_none());
    }

    fn manifest(json: serde_json::Value) -> Manifest {
        Manifest::parse(&serde_json::to_vec(&json).expect("json")).expect("manifest")
    }

    fn layer(media_type: &str) -> serde_json::Value {
        serde_json::json!({"mediaType": media_type, "digest": digest_of(b"x"), "size": 1})
    }

    #[test]
    fn both_layouts_yield_their_layer() {
        for media_type in COMPONENT_LAYER_MEDIA_TYPES {
            let m = manifest(serde_json::json!({
                "schemaVersion": 2,
                "config": layer("application/vnd.wasmcloud.actor.archive.config"),
                "layers": [layer(media_type)],
            }));
            assert_eq!(
                m.component_layer().expect(media_type).media_type,
                media_type
            );
        }
    }

    #[test]
    fn container_images_and_others_are_named() {
        let image = manifest(serde_json::json!({
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST_MEDIA_TYPE,
            "config": layer("application/vnd.docker.container.image.v1+json"),
            "layers": [layer("application/vnd.docker.image.rootfs.diff.tar.gzip")],
        }));
        let Err(Refusal::NotAComponent(found)) = image.component_layer() else {
            panic!("a container image must be refused");
        };
        assert!(found.starts_with("a container image"), "{found}");

        let index = manifest(serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX_MEDIA_TYPE, "manifests": [],
        }));
        let Err(Refusal::NotAComponent(found)) = index.component_layer() else {
            panic!("an index must be refused");
        };
        assert!(found.contains("image index"), "{found}");

        let other = manifest(serde_json::json!({
            "schemaVersion": 2,
            "config": layer("application/json"),
            "layers": [layer("text/plain")],
        }));
        let Err(Refusal::NotAComponent(found)) = other.component_layer() else {
            panic!("a text layer must be refused");
        };
        assert!(found.contains("text/plain"), "{found}");
    }

    #[test]
    fn a_push_writes_the_cncf_layout() {
        let annotations = BTreeMap::from([(ANNOTATION_VERSION.to_string(), "0.1.0".to_string())]);
        let layout = push_layout(COMPONENT, &annotations, "2026-01-01T00:00:00Z");
        let m: serde_json::Value = serde_json::from_slice(&layout.manifest).expect("json");
        assert_eq!(m["config"]["mediaType"], WASM_CONFIG_MEDIA_TYPE);
        assert_eq!(m["config"]["digest"], layout.config_digest.as_str());
        assert_eq!(m["layers"][0]["mediaType"], WASM_LAYER_MEDIA_TYPE);
        assert_eq!(m["layers"][0]["size"], COMPONENT.len());
        assert_eq!(m["annotations"][ANNOTATION_VERSION], "0.1.0");
        let config: serde_json::Value = serde_json::from_slice(&layout.config).expect("json");
        assert_eq!(config["architecture"], "wasm");
        assert_eq!(config["layerDigests"][0], layout.layer_digest.as_str());
    }
}
