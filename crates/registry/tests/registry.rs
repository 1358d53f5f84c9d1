//! trellis-registry against a real registry (`docker-registry`, CNCF distribution), and
//! against a client we did not write (`oras`, the Python package).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::secrets::RegistryAuth;
use trellis_registry::layout::{
    ANNOTATION_CREATED, ANNOTATION_SOURCE, ANNOTATION_VERSION, WASM_CONFIG_MEDIA_TYPE,
    WASM_LAYER_MEDIA_TYPE, WASMCLOUD_LAYER_MEDIA_TYPE,
};
use trellis_registry::{Credentials, Registry, RegistryConfig, RegistryError, Source};
use trellis_test_support::registry::RegistryServer;

/// A real component: the hello guest.
fn component() -> Vec<u8> {
    std::fs::read(trellis_test_support::guest("http_hello")).expect("read the hello guest")
}

/// A registry client caching into `cache`.
fn registry(cache: &Path) -> Registry {
    Registry::new(RegistryConfig {
        cache_dir: Some(cache.to_path_buf()),
        credentials: Credentials::Anonymous,
        ..RegistryConfig::default()
    })
}

fn no_progress(_: u64, _: u64) {}

/// Pushes an arbitrary image with the distribution client directly (what Trellis would refuse
/// to push itself).
async fn push_raw(
    reference: &str,
    layer: &[u8],
    layer_media_type: &str,
    config_media_type: &str,
) -> String {
    let client = oci_client::Client::new(ClientConfig {
        protocol: ClientProtocol::Http,
        ..ClientConfig::default()
    });
    let reference: oci_client::Reference = reference.parse().expect("reference");
    let response = client
        .push(
            &reference,
            &[ImageLayer::new(
                layer.to_vec(),
                layer_media_type.to_string(),
                None,
            )],
            Config::new(b"{}".to_vec(), config_media_type.to_string(), None),
            &RegistryAuth::Anonymous,
            None,
        )
        .await
        .expect("push a raw image");
    response.manifest_url
}

fn blob_files(cache: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(cache.join("blobs/sha256"))
        .map(|dir| dir.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn push_then_pull_round_trips_with_digests_and_media_types() {
    let server = RegistryServer::start();
    let cache = tempfile::tempdir().expect("tempdir");
    let wasm = component();
    let reference = server.reference("demo/hello:0.1.0");

    let mut calls = Vec::new();
    let push_cache = tempfile::tempdir().expect("tempdir");
    let digest = registry(push_cache.path())
        .push(&reference, &wasm, BTreeMap::new(), |done, total| {
            calls.push((done, total))
        })
        .await
        .expect("push");
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    let (first, last) = (calls[0], calls[calls.len() - 1]);
    assert_eq!(first.0, 0);
    assert_eq!(last.0, last.1, "progress ends at the total: {calls:?}");
    assert!(last.1 > wasm.len() as u64);

    let registry = registry(cache.path());
    let pulled = registry.pull(&reference).await.expect("pull");
    assert_eq!(pulled.digest, digest);
    assert_eq!(&pulled.bytes[..], &wasm[..]);
    assert_eq!(pulled.media_type, WASM_LAYER_MEDIA_TYPE);
    assert_eq!(pulled.source, Source::Registry);
    assert_eq!(pulled.reference, reference);

    let again = registry.pull(&reference).await.expect("pull again");
    assert_eq!(
        again.source,
        Source::Cache,
        "the layer comes from the cache"
    );
    assert_eq!(&again.bytes[..], &wasm[..]);

    let by_digest = format!("{}/demo/hello@{digest}", server.host());
    let pinned = registry.pull(&by_digest).await.expect("pull by digest");
    assert_eq!(pinned.source, Source::Cache);
    assert_eq!(registry.resolve(&reference).await.expect("resolve"), digest);

    let inspected = registry.inspect(&reference).await.expect("inspect");
    assert_eq!(inspected.size, wasm.len() as u64);
    assert_eq!(
        inspected.config_media_type.as_deref(),
        Some(WASM_CONFIG_MEDIA_TYPE)
    );
    assert_eq!(
        inspected
            .annotations
            .get(ANNOTATION_VERSION)
            .map(String::as_str),
        Some("0.1.0"),
        "the version defaults to the tag"
    );
    assert!(inspected.annotations.contains_key(ANNOTATION_CREATED));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_push_writes_the_cncf_layout_as_plain_http_shows() {
    let server = RegistryServer::start();
    let wasm = component();
    let reference = server.reference("demo/layout:1.2.3");
    let annotations = BTreeMap::from([(
        ANNOTATION_SOURCE.to_string(),
        "https://example.com/demo".to_string(),
    )]);
    let digest = registry(tempfile::tempdir().expect("tempdir").path())
        .push(&reference, &wasm, annotations, no_progress)
        .await
        .expect("push");

    // Read it back without our client: the registry's HTTP API as any tool would.
    let http = reqwest::Client::new();
    let base = format!("http://{}/v2/demo/layout", server.host());
    let response = http
        .get(format!("{base}/manifests/1.2.3"))
        .header("Accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .expect("get the manifest");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response
            .headers()
            .get("Docker-Content-Digest")
            .and_then(|v| v.to_str().ok()),
        Some(digest.as_str())
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&response.bytes().await.expect("body")).expect("json");
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(manifest["config"]["mediaType"], WASM_CONFIG_MEDIA_TYPE);
    assert_eq!(manifest["layers"].as_array().map(Vec::len), Some(1));
    assert_eq!(manifest["layers"][0]["mediaType"], WASM_LAYER_MEDIA_TYPE);
    assert_eq!(manifest["layers"][0]["size"], wasm.len());
    let annotations = &manifest["annotations"];
    assert_eq!(annotations[ANNOTATION_SOURCE], "https://example.com/demo");
    assert_eq!(annotations[ANNOTATION_VERSION], "1.2.3");
    let created = annotations[ANNOTATION_CREATED].as_str().expect("created");
    assert!(
        time::OffsetDateTime::parse(created, &time::format_description::well_known::Rfc3339)
            .is_ok(),
        "created is RFC 3339: {created}"
    );

    let get_blob = |digest: String| {
        let http = http.clone();
        let base = base.clone();
        async move {
            let response = http
                .get(format!("{base}/blobs/{digest}"))
                .send()
                .await
                .expect("get a blob");
            assert_eq!(response.status(), 200);
            response.bytes().await.expect("blob").to_vec()
        }
    };
    let layer_digest = manifest["layers"][0]["digest"].as_str().expect("digest");
    assert_eq!(get_blob(layer_digest.to_string()).await, wasm);
    let config_digest = manifest["config"]["digest"].as_str().expect("digest");
    let config: serde_json::Value =
        serde_json::from_slice(&get_blob(config_digest.to_string()).await).expect("json");
    assert_eq!(config["architecture"], "wasm");
    assert_eq!(config["os"], "wasip2");
    assert_eq!(config["layerDigests"][0], layer_digest);
}

#[tokio::test(flavor = "multi_thread")]
async fn wasmcloud_v1_layout_is_pulled() {
    let server = RegistryServer::start();
    let wasm = component();
    let reference = server.reference("wasmcloud/hello:0.1.0");
    push_raw(
        &reference,
        &wasm,
        WASMCLOUD_LAYER_MEDIA_TYPE,
        "application/vnd.wasmcloud.actor.archive.config",
    )
    .await;
    let cache = tempfile::tempdir().expect("tempdir");
    let pulled = registry(cache.path())
        .pull(&reference)
        .await
        .expect("pull the wasmCloud v1 layout");
    assert_eq!(pulled.media_type, WASMCLOUD_LAYER_MEDIA_TYPE);
    assert_eq!(&pulled.bytes[..], &wasm[..]);
}

#[tokio::test(flavor = "multi_thread")]
async fn core_modules_and_container_images_are_refused_by_name_and_not_cached() {
    let server = RegistryServer::start();
    let cache = tempfile::tempdir().expect("tempdir");
    let registry = registry(cache.path());

    // The smallest valid core module: magic and version 1.
    let core = server.reference("demo/core:1");
    push_raw(
        &core,
        b"\0asm\x01\x00\x00\x00",
        WASM_LAYER_MEDIA_TYPE,
        WASM_CONFIG_MEDIA_TYPE,
    )
    .await;
    let error = registry.pull(&core).await.expect_err("a core module");
    assert!(
        matches!(&error, RegistryError::NotAComponent { found, .. } if found.contains("core WebAssembly module")),
        "{error}"
    );
    assert!(error.to_string().contains(&core), "{error}");

    let image = server.reference("demo/nginx:latest");
    push_raw(
        &image,
        b"\x1f\x8b not really a tarball",
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.config.v1+json",
    )
    .await;
    let error = registry.pull(&image).await.expect_err("a container image");
    assert!(
        matches!(&error, RegistryError::NotAComponent { found, .. } if found.starts_with("a container image")),
        "{error}"
    );
    assert!(error.to_string().contains("demo/nginx:latest"), "{error}");

    let other = server.reference("demo/text:1");
    push_raw(&other, b"hello", "text/plain", "application/json").await;
    let error = registry.pull(&other).await.expect_err("text");
    assert!(error.to_string().contains("text/plain"), "{error}");

    assert!(
        blob_files(cache.path()).is_empty(),
        "nothing refused is cached"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupt_blob_is_refused_and_not_cached() {
    let server = RegistryServer::start();
    let wasm = component();
    let reference = server.reference("demo/corrupt:1");
    registry(tempfile::tempdir().expect("tempdir").path())
        .push(&reference, &wasm, BTreeMap::new(), no_progress)
        .await
        .expect("push");
    let layer_digest = trellis_registry::layout::digest_of(&wasm);
    let blob = server.blob_path(&layer_digest);

    // Same size, one byte changed: only the digest can tell.
    let mut corrupt = wasm.clone();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    std::fs::write(&blob, &corrupt).expect("corrupt the blob");
    let cache = tempfile::tempdir().expect("tempdir");
    let error = registry(cache.path())
        .pull(&reference)
        .await
        .expect_err("a corrupt blob");
    assert!(
        matches!(&error, RegistryError::DigestMismatch { expected, .. } if *expected == layer_digest),
        "{error}"
    );
    assert!(
        !cache
            .path()
            .join("blobs/sha256")
            .join(&layer_digest[7..])
            .exists(),
        "the corrupt layer is not cached"
    );
    assert!(
        cache.path().join("refs").read_dir().is_err(),
        "the tag is not recorded"
    );

    // Longer than the manifest says: cut off.
    let mut longer = wasm.clone();
    longer.extend_from_slice(&[0; 4096]);
    std::fs::write(&blob, &longer).expect("lengthen the blob");
    let error = registry(cache.path())
        .pull(&reference)
        .await
        .expect_err("a blob longer than claimed");
    assert!(
        matches!(error, RegistryError::SizeMismatch { claimed, .. } if claimed == wasm.len() as u64),
        "{error}"
    );
    assert!(blob_files(cache.path()).is_empty(), "nothing was cached");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupt_cache_file_is_discarded_and_pulled_again() {
    let server = RegistryServer::start();
    let wasm = component();
    let reference = server.reference("demo/recache:1");
    let cache = tempfile::tempdir().expect("tempdir");
    let registry = registry(cache.path());
    registry
        .push(&reference, &wasm, BTreeMap::new(), no_progress)
        .await
        .expect("push");
    let layer = cache
        .path()
        .join("blobs/sha256")
        .join(&trellis_registry::layout::digest_of(&wasm)[7..]);
    std::fs::write(&layer, b"garbage").expect("corrupt the cache");
    let pulled = registry.pull(&reference).await.expect("pull");
    assert_eq!(pulled.source, Source::Registry, "downloaded again");
    assert_eq!(&pulled.bytes[..], &wasm[..]);
    assert_eq!(std::fs::read(&layer).expect("re-cached"), wasm);
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_registry_down_cached_tags_and_digests_still_run() {
    let mut server = RegistryServer::start();
    let wasm = component();
    let tag = server.reference("demo/offline:1");
    let uncached = server.reference("demo/offline:2");
    let cache = tempfile::tempdir().expect("tempdir");
    let registry = registry(cache.path());
    registry
        .push(&uncached, &wasm, BTreeMap::new(), no_progress)
        .await
        .expect("push");
    // Pushed by someone else, so this cache has not seen tag 2's manifest.
    let other_cache = tempfile::tempdir().expect("tempdir");
    let digest = self::registry(other_cache.path())
        .push(&tag, &wasm, BTreeMap::new(), no_progress)
        .await
        .expect("push");
    std::fs::remove_dir_all(cache.path()).expect("forget the first push");
    let pulled = registry.pull(&tag).await.expect("pull while up");
    assert_eq!(pulled.source, Source::Registry);

    server.stop();
    let offline = registry
        .pull(&tag)
        .await
        .expect("the cached tag runs offline");
    assert_eq!(offline.source, Source::Offline);
    assert_eq!(offline.digest, digest);
    assert_eq!(&offline.bytes[..], &wasm[..]);

    let pinned = registry
        .pull_pinned(&tag, &digest)
        .await
        .expect("a cached digest needs no network");
    assert_eq!(pinned.source, Source::Cache);

    let error = registry.pull(&uncached).await.expect_err("not cached");
    assert!(
        matches!(error, RegistryError::Unreachable { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains(&server.host()),
        "the message names the registry: {error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_tag_is_not_found_even_when_cached() {
    let server = RegistryServer::start();
    let wasm = component();
    let tag = server.reference("demo/deleted:1");
    let cache = tempfile::tempdir().expect("tempdir");
    let registry = registry(cache.path());
    let digest = registry
        .push(&tag, &wasm, BTreeMap::new(), no_progress)
        .await
        .expect("push");
    registry.pull(&tag).await.expect("pull");

    let response = reqwest::Client::new()
        .delete(format!(
            "http://{}/v2/demo/deleted/manifests/{digest}",
            server.host()
        ))
        .send()
        .await
        .expect("delete the manifest");
    assert_eq!(response.status(), 202);

    let error = registry.pull(&tag).await.expect_err("deleted");
    assert!(matches!(error, RegistryError::NotFound { .. }), "{error:?}");
    // The digest itself is immutable and still cached.
    registry
        .pull_pinned(&tag, &digest)
        .await
        .expect("the pinned digest is still cached");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_private_registry_names_itself_and_how_to_log_in() {
    let server = RegistryServer::start_with_auth("alice", "s3cret");
    let wasm = component();
    let reference = server.reference("private/hello:1");
    let cache = tempfile::tempdir().expect("tempdir");

    let error = registry(cache.path())
        .push(&reference, &wasm, BTreeMap::new(), no_progress)
        .await
        .expect_err("no credentials");
    assert!(
        matches!(error, RegistryError::Unauthorized { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    for needle in [
        server.host().as_str(),
        "docker login",
        "TRELLIS_REGISTRY_USER",
        "--registry-user",
        "no credentials were sent",
    ] {
        assert!(message.contains(needle), "{needle:?} in {message}");
    }

    let with = |credentials: Credentials| {
        Registry::new(RegistryConfig {
            credentials,
            cache_dir: Some(cache.path().to_path_buf()),
            ..RegistryConfig::default()
        })
    };
    let digest = with(Credentials::basic("alice", "s3cret"))
        .push(&reference, &wasm, BTreeMap::new(), no_progress)
        .await
        .expect("push with credentials");

    let error = with(Credentials::basic("alice", "wrong"))
        .pull(&reference)
        .await
        .expect_err("wrong password");
    assert!(
        matches!(&error, RegistryError::Unauthorized { detail: Some(d), .. } if d.contains("refused the credentials")),
        "{error:?}"
    );

    // `docker login` leaves this behind.
    let docker = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        docker.path().join("config.json"),
        serde_json::json!({"auths": {server.host(): {"auth": "YWxpY2U6czNjcmV0"}}}).to_string(),
    )
    .expect("write config.json");
    let fresh = tempfile::tempdir().expect("tempdir");
    let pulled = Registry::new(RegistryConfig {
        credentials: Credentials::DockerConfig {
            dir: Some(docker.path().to_path_buf()),
        },
        cache_dir: Some(fresh.path().to_path_buf()),
        ..RegistryConfig::default()
    })
    .pull(&reference)
    .await
    .expect("pull with the Docker config's credentials");
    assert_eq!(pulled.digest, digest);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_component_over_the_size_limit_is_refused_before_download() {
    let server = RegistryServer::start();
    let wasm = component();
    let reference = server.reference("demo/big:1");
    registry(tempfile::tempdir().expect("tempdir").path())
        .push(&reference, &wasm, BTreeMap::new(), no_progress)
        .await
        .expect("push");
    let cache = tempfile::tempdir().expect("tempdir");
    let small = Registry::new(RegistryConfig {
        max_size: 1024,
        cache_dir: Some(cache.path().to_path_buf()),
        credentials: Credentials::Anonymous,
        ..RegistryConfig::default()
    });
    let error = small.pull(&reference).await.expect_err("too large");
    assert!(
        matches!(error, RegistryError::TooLarge { size, limit: 1024, .. } if size == wasm.len() as u64),
        "{error:?}"
    );
    assert!(error.to_string().contains("--max-image-size"), "{error}");
    assert!(blob_files(cache.path()).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registry_that_never_answers_times_out() {
    // Accepts connections and never says a word.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let registry = Registry::new(RegistryConfig {
        timeout: Duration::from_millis(300),
        credentials: Credentials::Anonymous,
        ..RegistryConfig::default()
    });
    let started = Instant::now();
    let error = registry
        .pull(&format!("127.0.0.1:{port}/demo/silent:1"))
        .await
        .expect_err("silence");
    assert!(
        matches!(error, RegistryError::TimedOut { timeout, .. } if timeout == Duration::from_millis(300)),
        "{error:?}"
    );
    assert!(error.to_string().contains("--registry-timeout"), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_references_are_refused_with_an_example() {
    let registry = registry(tempfile::tempdir().expect("tempdir").path());
    let error = registry.pull("UPPER/Case:1").await.expect_err("invalid");
    assert!(
        matches!(error, RegistryError::InvalidReference { .. }),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("localhost:5000/demo/hello:0.1.0")
    );
    let error = registry
        .pull_pinned("localhost:1/x:1", "sha256:nothex")
        .await
        .expect_err("invalid digest");
    assert!(matches!(error, RegistryError::InvalidReference { .. }));
}

/// `oras` (Python) pushes with the CNCF media types; Trellis pulls it.
#[tokio::test(flavor = "multi_thread")]
async fn a_component_pushed_by_oras_is_pulled() {
    let server = RegistryServer::start();
    let wasm = component();
    let work = tempfile::tempdir().expect("tempdir");
    std::fs::write(work.path().join("hello.wasm"), &wasm).expect("write wasm");
    std::fs::write(
        work.path().join("config.json"),
        r#"{"architecture":"wasm","os":"wasip2","layerDigests":[]}"#,
    )
    .expect("write config");
    let reference = server.reference("oras/hello:0.2.0");
    let script = format!(
        r#"
import oras.client
client = oras.client.OrasClient(insecure=True)
client.push(
    target="{reference}",
    files=["hello.wasm:{WASM_LAYER_MEDIA_TYPE}"],
    manifest_config="config.json:{WASM_CONFIG_MEDIA_TYPE}",
    manifest_annotations={{"{ANNOTATION_VERSION}": "0.2.0"}},
)
"#
    );
    let output = std::process::Command::new("python3")
        .args(["-c", &script])
        .current_dir(work.path())
        .output()
        .expect("run python3 (apt-get install python3)");
    assert!(
        output.status.success(),
        "oras push failed (pip install oras):\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    let cache = tempfile::tempdir().expect("tempdir");
    let inspected = registry(cache.path())
        .inspect(&reference)
        .await
        .expect("pull what oras pushed");
    assert_eq!(&inspected.pulled.bytes[..], &wasm[..]);
    assert_eq!(inspected.pulled.media_type, WASM_LAYER_MEDIA_TYPE);
    assert_eq!(
        inspected.config_media_type.as_deref(),
        Some(WASM_CONFIG_MEDIA_TYPE)
    );
    assert_eq!(
        inspected
            .annotations
            .get(ANNOTATION_VERSION)
            .map(String::as_str),
        Some("0.2.0")
    );
}

/// Only loopback names are spoken to over plain HTTP unasked: `127.0.0.2` is not one of them.
#[tokio::test(flavor = "multi_thread")]
async fn other_registries_need_allow_insecure_for_plain_http() {
    let server = RegistryServer::start_on("127.0.0.2");
    let wasm = component();
    let reference = server.reference("demo/insecure:1");
    let cache = tempfile::tempdir().expect("tempdir");

    let error = registry(cache.path())
        .push(&reference, &wasm, BTreeMap::new(), no_progress)
        .await
        .expect_err("HTTPS to a plain-HTTP registry");
    assert!(
        matches!(
            error,
            RegistryError::Unreachable {
                plain_http: false,
                ..
            }
        ),
        "{error:?}"
    );
    let hint = format!("--allow-insecure-registry {}", server.host());
    assert!(error.to_string().contains(&hint), "{error}");

    for allowed in ["127.0.0.2", server.host().as_str()] {
        let registry = Registry::new(RegistryConfig {
            insecure: vec![allowed.to_string()],
            credentials: Credentials::Anonymous,
            cache_dir: Some(cache.path().to_path_buf()),
            ..RegistryConfig::default()
        });
        let digest = registry
            .push(&reference, &wasm, BTreeMap::new(), no_progress)
            .await
            .expect("push when allowed");
        assert_eq!(
            registry.pull(&reference).await.expect("pull").digest,
            digest
        );
    }
}
