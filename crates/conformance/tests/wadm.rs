//! Deployment manager (wadm API) conformance: `trellis host` processes on a private NATS server,
//! driven by the published `wadm-client` crate, whose `wadm-types` serde types are the authority
//! on the shapes of `wadm.api.{lattice}.model.…` and `wadm.status.{lattice}.{app}`. What the
//! reconciler ran is checked with the published control-interface client.
//!
//! Every test has its own `nats-server -js` and lattice name; every process is killed on drop.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Lattice, logs, ok};
use futures::StreamExt;
use tokio::time::Instant;
use trellis_conformance::HostProcess;
use wadm_client::error::ClientError;
use wadm_client::{Client as WadmClient, ClientConnectOptions};
use wadm_types::api::{PutModelResponse, PutResult, Status, StatusType};
use wadm_types::{Manifest, Properties, TraitProperty};
use wasmcloud_control_interface::Client;

/// How long a deployed app may take to reach a status (the hosts reconcile every second).
const STATUS_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a status message on `wadm.status.{lattice}.{app}` may take to arrive.
const STATUS_MESSAGE_TIMEOUT: Duration = Duration::from_secs(30);

/// The flags every host of these tests runs with.
const HOST_ARGS: &[&str] = &["--heartbeat-interval", "1s", "--reconcile-interval", "1s"];

/// The published wadm client, connected to the lattice's NATS server.
async fn wadm(lattice: &Lattice) -> WadmClient {
    WadmClient::new(
        &lattice.name,
        None,
        ClientConnectOptions {
            url: Some(lattice.nats.url()),
            ..ClientConnectOptions::default()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("wadm client: connect to {}: {e}", lattice.nats.url()))
}

/// `file://` reference of a built test guest.
fn guest_ref(name: &str) -> String {
    format!("file://{}", trellis_test_support::guest(name).display())
}

/// `metadata.annotations` of a manifest without any (wadm-types requires the field).
const NO_ANNOTATIONS: &str = "\n  annotations: {}";

/// A manifest with one component (`callee`) scaled to `instances` by a spreadscaler.
fn manifest_yaml(app: &str, annotations: &str, id: Option<&str>, instances: usize) -> String {
    let id = id
        .map(|id| format!("\n          id: {id}"))
        .unwrap_or_default();
    format!(
        r"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: {app}{annotations}
spec:
  components:
    - name: callee
      type: component
      properties:
          image: {image}{id}
      traits:
        - type: spreadscaler
          properties:
            instances: {instances}
",
        image = guest_ref("callee"),
    )
}

/// Parses a manifest the way the client's loaders do.
fn parse(yaml: &str) -> Manifest {
    wadm_client::loader::parse_yaml_or_json(yaml)
        .unwrap_or_else(|e| panic!("wadm-types cannot parse the test manifest ({e}):\n{yaml}"))
}

/// The spreadscaler instance count of a manifest's only component.
fn instances_of(manifest: &Manifest) -> usize {
    let component = manifest.spec.components.first().expect("one component");
    component
        .traits
        .iter()
        .flatten()
        .find_map(|t| match &t.properties {
            TraitProperty::SpreadScaler(p) if t.is_scaler() => Some(p.instances),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no spreadscaler in {manifest:?}"))
}

/// Unwraps a wadm client result, showing the hosts' logs on error.
fn wok<T>(what: &str, result: wadm_client::Result<T>, hosts: &[&HostProcess]) -> T {
    result.unwrap_or_else(|e| panic!("{what}: wadm client error: {e:?}{}", logs(hosts)))
}

/// Polls `model.status.{name}` until the status is `want`.
async fn wait_for_status(
    wadm: &WadmClient,
    name: &str,
    want: StatusType,
    hosts: &[&HostProcess],
) -> Status {
    let deadline = Instant::now() + STATUS_TIMEOUT;
    loop {
        let last = match wadm.get_manifest_status(name).await {
            Ok(status) if status.info.status_type == want => return status,
            other => format!("{other:?}"),
        };
        assert!(
            Instant::now() < deadline,
            "app {name} did not reach status {want:?} within {STATUS_TIMEOUT:?}; last answer: {last}{}",
            logs(hosts)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Instances of component `id` on each host that runs it (from `host.get`), with its image.
async fn placements(
    ctl: &Client,
    hosts: &[&HostProcess],
    id: &str,
) -> BTreeMap<String, (u32, String)> {
    let mut out = BTreeMap::new();
    for host in hosts {
        let inventory = ok(
            "get_host_inventory",
            ctl.get_host_inventory(host.id()).await,
            hosts,
        )
        .into_data()
        .unwrap_or_else(|| panic!("no inventory from host {}{}", host.id(), logs(hosts)));
        for c in inventory.components().iter().filter(|c| c.id() == id) {
            out.insert(
                host.id().to_owned(),
                (c.max_instances(), c.image_ref().to_owned()),
            );
        }
    }
    out
}

/// Polls the hosts' inventories until component `id` runs `total` instances in all (0: nowhere).
async fn wait_for_instances(
    ctl: &Client,
    hosts: &[&HostProcess],
    id: &str,
    total: u32,
) -> BTreeMap<String, (u32, String)> {
    let deadline = Instant::now() + STATUS_TIMEOUT;
    loop {
        let found = placements(ctl, hosts, id).await;
        if found.values().map(|(n, _)| n).sum::<u32>() == total {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "component {id} should run {total} instances in all; the hosts report {found:?}{}",
            logs(hosts)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// put + deploy, list, get, versions, status (polled and streamed), what runs, undeploy and
/// delete, all through the published client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_deploy_status_undeploy_with_wadm_client() {
    let lattice = Lattice::new("wadm-deploy");
    let hosts = lattice.start_hosts(&[HOST_ARGS, HOST_ARGS]);
    let refs: Vec<&HostProcess> = hosts.iter().collect();
    let ctl = lattice.ctl().await;
    let wadm = wadm(&lattice).await;

    let app = "conf-callee";
    let id = "conf-wadm-callee";
    let manifest = parse(&manifest_yaml(
        app,
        "\n  annotations:\n    description: the callee, twice",
        Some(id),
        2,
    ));
    let mut statuses = Box::pin(wok(
        "subscribe_to_status",
        wadm.subscribe_to_status(app).await,
        &refs,
    ));

    let (name, version) = wok(
        "put_and_deploy_manifest",
        wadm.put_and_deploy_manifest(&manifest).await,
        &refs,
    );
    assert_eq!(name, app, "name returned by put");
    assert!(!version.is_empty(), "put returned an empty version");

    let listed = wok("list_manifests", wadm.list_manifests().await, &refs);
    let summary = listed
        .iter()
        .find(|m| m.name == app)
        .unwrap_or_else(|| panic!("{app} missing from list_manifests: {listed:?}"));
    assert_eq!(summary.version, version, "listed version: {summary:?}");
    assert_eq!(
        summary.deployed_version.as_deref(),
        Some(version.as_str()),
        "listed deployed_version: {summary:?}"
    );
    assert_eq!(
        summary.description.as_deref(),
        Some("the callee, twice"),
        "listed description: {summary:?}"
    );

    let got = wok("get_manifest", wadm.get_manifest(app, None).await, &refs);
    assert_eq!(got.metadata.name, app);
    assert_eq!(got.spec, manifest.spec, "get_manifest returns what was put");
    assert_eq!(
        got.metadata
            .annotations
            .get("description")
            .map(String::as_str),
        Some("the callee, twice")
    );
    assert_eq!(
        got.version(),
        version,
        "the manifest's version annotation is the version put returned (as wadm sets it)"
    );

    let versions = wok("list_versions", wadm.list_versions(app).await, &refs);
    assert_eq!(versions.len(), 1, "versions: {versions:?}");
    assert_eq!(versions[0].version, version);
    assert!(
        versions[0].deployed,
        "the version is deployed: {versions:?}"
    );

    let status = wait_for_status(&wadm, app, StatusType::Deployed, &refs).await;
    assert!(
        status
            .scalers
            .iter()
            .all(|s| s.info.status_type == StatusType::Deployed),
        "every scaler is deployed: {status:?}"
    );
    let running = wait_for_instances(&ctl, &refs, id, 2).await;
    let image = guest_ref("callee");
    assert!(
        running.values().all(|(_, i)| *i == image),
        "the manifest's image runs: {running:?}"
    );

    // The reconciler announced at least one status change for the app.
    let message = tokio::time::timeout(STATUS_MESSAGE_TIMEOUT, statuses.next())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "no message on wadm.status.{}.{app} within {STATUS_MESSAGE_TIMEOUT:?}{}",
                lattice.name,
                logs(&refs)
            )
        })
        .expect("status subscription open");
    assert_eq!(
        message.subject.as_str(),
        format!("wadm.status.{}.{app}", lattice.name)
    );
    let announced: Status = serde_json::from_slice(&message.payload).unwrap_or_else(|e| {
        panic!(
            "status message is not a wadm-types Status ({e}): {}",
            String::from_utf8_lossy(&message.payload)
        )
    });
    assert_ne!(
        announced.info.status_type,
        StatusType::Undeployed,
        "a deployed app's status message: {announced:?}"
    );

    let undeployed = wok(
        "undeploy_manifest",
        wadm.undeploy_manifest(app).await,
        &refs,
    );
    assert_eq!(undeployed, app, "name returned by undeploy");
    wait_for_status(&wadm, app, StatusType::Undeployed, &refs).await;
    let left = wait_for_instances(&ctl, &refs, id, 0).await;
    assert!(left.is_empty(), "component still listed: {left:?}");
    let versions = wok("list_versions", wadm.list_versions(app).await, &refs);
    assert!(
        versions.iter().all(|v| !v.deployed),
        "nothing deployed after undeploy: {versions:?}"
    );

    assert!(
        wok(
            "delete_manifest",
            wadm.delete_manifest(app, None).await,
            &refs
        ),
        "delete_manifest deletes the app"
    );
    match wadm.get_manifest(app, None).await {
        Err(ClientError::NotFound(n)) => assert_eq!(n, app),
        other => panic!("get_manifest after delete: expected NotFound, got {other:?}"),
    }
    let listed = wok("list_manifests", wadm.list_manifests().await, &refs);
    assert!(
        listed.iter().all(|m| m.name != app),
        "{app} still listed after delete: {listed:?}"
    );
    assert!(
        !wok(
            "delete_manifest (again)",
            wadm.delete_manifest(app, None).await,
            &refs
        ),
        "deleting a deleted app is a no-op"
    );
}

/// Two versions of one app, deploying the older, and the errors for unknown versions and apps
/// and for invalid manifests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_and_errors_with_wadm_client() {
    let lattice = Lattice::new("wadm-versions");
    let host = lattice.start_host(HOST_ARGS);
    let refs = [&host];
    let ctl = lattice.ctl().await;
    let wadm = wadm(&lattice).await;

    let app = "conf-versions";
    // No `id`: the component gets wadm's derived id. No `version` annotation: the host names
    // the versions (wadm-types serializes the empty annotations by leaving them out).
    let first = parse(&manifest_yaml(app, NO_ANNOTATIONS, None, 1));
    let second = parse(&manifest_yaml(app, NO_ANNOTATIONS, None, 3));
    let (name, v1) = wok(
        "put_manifest (first)",
        wadm.put_manifest(&first).await,
        &refs,
    );
    assert_eq!(name, app);
    let (name, v2) = wok(
        "put_manifest (second)",
        wadm.put_manifest(&second).await,
        &refs,
    );
    assert_eq!(name, app);
    assert_ne!(v1, v2, "two different manifests get two versions");

    let versions = wok("list_versions", wadm.list_versions(app).await, &refs);
    let listed: Vec<(&str, bool)> = versions
        .iter()
        .map(|v| (v.version.as_str(), v.deployed))
        .collect();
    assert_eq!(
        listed,
        vec![(v1.as_str(), false), (v2.as_str(), false)],
        "versions before deploy"
    );
    for (version, want) in [(Some(v1.as_str()), 1), (Some(v2.as_str()), 3), (None, 3)] {
        let got = wok("get_manifest", wadm.get_manifest(app, version).await, &refs);
        assert_eq!(
            instances_of(&got),
            want,
            "get_manifest({version:?}) instances"
        );
        assert_eq!(
            got.version(),
            version.unwrap_or(&v2),
            "get_manifest({version:?}) carries its version annotation"
        );
    }

    let (name, deployed) = wok(
        "deploy_manifest (first version)",
        wadm.deploy_manifest(app, Some(&v1)).await,
        &refs,
    );
    assert_eq!(name, app);
    assert_eq!(deployed.as_deref(), Some(v1.as_str()), "deployed version");
    let versions = wok("list_versions", wadm.list_versions(app).await, &refs);
    let listed: Vec<(&str, bool)> = versions
        .iter()
        .map(|v| (v.version.as_str(), v.deployed))
        .collect();
    assert_eq!(
        listed,
        vec![(v1.as_str(), true), (v2.as_str(), false)],
        "versions after deploying the first"
    );
    let summary = wok("list_manifests", wadm.list_manifests().await, &refs)
        .into_iter()
        .find(|m| m.name == app)
        .expect("app listed");
    assert_eq!(summary.version, v2, "the latest version: {summary:?}");
    assert_eq!(summary.deployed_version.as_deref(), Some(v1.as_str()));

    // The first version runs: one instance of the component under wadm's derived id.
    wait_for_status(&wadm, app, StatusType::Deployed, &refs).await;
    wait_for_instances(&ctl, &refs, "conf_versions-callee", 1).await;

    // A version that does not exist.
    match wadm.deploy_manifest(app, Some("no-such-version")).await {
        Err(ClientError::NotFound(_)) => {}
        Err(ClientError::ApiError(message)) if message.contains("no-such-version") => {}
        other => panic!("deploying an unknown version: expected NotFound, got {other:?}"),
    }
    let versions = wok("list_versions", wadm.list_versions(app).await, &refs);
    assert!(
        versions.iter().any(|v| v.version == v1 && v.deployed),
        "the failed deploy changed nothing: {versions:?}"
    );

    // An app that does not exist.
    let unknown = "conf-never-put";
    match wadm.get_manifest_status(unknown).await {
        Err(ClientError::NotFound(n)) => assert_eq!(n, unknown),
        other => panic!("status of an unknown app: expected NotFound, got {other:?}"),
    }
    match wadm.get_manifest(unknown, None).await {
        Err(ClientError::NotFound(_)) => {}
        other => panic!("get of an unknown app: expected NotFound, got {other:?}"),
    }
    match wadm.list_versions(unknown).await {
        Err(ClientError::NotFound(_)) => {}
        other => panic!("versions of an unknown app: expected NotFound, got {other:?}"),
    }
    match wadm.deploy_manifest(unknown, None).await {
        Err(ClientError::NotFound(_)) => {}
        other => panic!("deploy of an unknown app: expected NotFound, got {other:?}"),
    }
    match wadm.undeploy_manifest(unknown).await {
        Err(ClientError::NotFound(_)) => {}
        other => panic!("undeploy of an unknown app: expected NotFound, got {other:?}"),
    }
    assert!(
        !wok(
            "delete_manifest (unknown)",
            wadm.delete_manifest(unknown, None).await,
            &refs
        ),
        "deleting an unknown app is a no-op"
    );

    // An entry of an unknown type, as JSON: the client itself refuses to send it...
    let nonsense = serde_json::json!({
        "apiVersion": "core.oam.dev/v1beta1",
        "kind": "Application",
        "metadata": {"name": "conf-invalid", "annotations": {}},
        "spec": {"components": [{
            "name": "callee",
            "type": "nonsense",
            "properties": {"image": guest_ref("callee")},
        }]},
    });
    let bytes = serde_json::to_vec(&nonsense).expect("JSON");
    match wadm.put_manifest(bytes.clone()).await {
        Err(e) => assert!(
            e.to_string().contains("nonsense"),
            "the client's error names the bad type: {e}"
        ),
        Ok(put) => panic!("put of an entry with type `nonsense` succeeded: {put:?}"),
    }
    // ... and the host, sent the same bytes on `model.put`, answers with a wadm error that
    // explains it.
    let nc = lattice.nats_client().await;
    let reply = nc
        .request(format!("wadm.api.{}.model.put", lattice.name), bytes.into())
        .await
        .unwrap_or_else(|e| panic!("model.put request: {e}{}", logs(&refs)));
    let answer: PutModelResponse = serde_json::from_slice(&reply.payload).unwrap_or_else(|e| {
        panic!(
            "model.put answer is not a wadm-types PutModelResponse ({e}): {}",
            String::from_utf8_lossy(&reply.payload)
        )
    });
    assert_eq!(answer.result, PutResult::Error, "{answer:?}");
    assert!(
        answer.message.contains("nonsense") && answer.message.contains("spec.components[0]"),
        "the error names the bad type and where it is: {answer:?}"
    );

    // A manifest wadm-types accepts but that cannot run (a component without an image).
    let mut imageless = parse(&manifest_yaml("conf-invalid", NO_ANNOTATIONS, None, 1));
    if let Properties::Component { properties } = &mut imageless.spec.components[0].properties {
        properties.image = None;
    }
    match wadm.put_manifest(&imageless).await {
        Err(ClientError::ApiError(message)) => assert!(
            message.contains("image"),
            "the error says the image is missing: {message}"
        ),
        other => panic!("put of a component without an image: expected ApiError, got {other:?}"),
    }
    match wadm.get_manifest("conf-invalid", None).await {
        Err(ClientError::NotFound(_)) => {}
        other => panic!("an invalid manifest must not be stored, got {other:?}"),
    }
}
