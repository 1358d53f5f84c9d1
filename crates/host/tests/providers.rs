//! Provider failure and health as the host's inventory and event stream show them.

use std::time::Duration;
use trellis_control::ProviderStatus;
use trellis_host::{Host, HostConfig};
use trellis_lattice::Lattice;

fn manifest(kv_image: &str, kv_config: &str) -> String {
    format!(
        r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: health
spec:
  components:
    - name: counter
      type: component
      properties:
        image: file://./kv_counter.wasm
      traits:
        - type: link
          properties:
            namespace: wasi
            package: keyvalue
            interfaces: [atomics, store]
            target:
              name: kv
              config:
                - name: kv-config
                  properties:
{kv_config}
    - name: kv
      type: capability
      properties:
        image: {kv_image}
"#
    )
}

async fn deploy(source: &str, interval: Duration) -> (std::sync::Arc<Host>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        trellis_test_support::guest("kv_counter"),
        dir.path().join("kv_counter.wasm"),
    )
    .expect("copy guest");
    let app = trellis_manifest::parse(source, &dir.path().join("app.yaml")).expect("manifest");
    let host = Host::new(
        HostConfig {
            provider_health_interval: interval,
            ..HostConfig::default()
        },
        Lattice::in_process("test"),
    )
    .expect("host");
    host.deploy(&app)
        .await
        .expect("a failed provider does not fail the deployment");
    (host, dir)
}

#[tokio::test]
async fn a_provider_that_cannot_start_is_failed_with_its_reason_in_the_inventory() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The store's parent is a file, so the store cannot be created.
    std::fs::write(dir.path().join("blocker"), "a file, not a directory").expect("write");
    std::fs::copy(
        trellis_test_support::guest("kv_counter"),
        dir.path().join("kv_counter.wasm"),
    )
    .expect("copy guest");
    let source = manifest(
        "trellis+builtin://keyvalue-local",
        "                    path: ./blocker/kv.redb",
    );
    let app = trellis_manifest::parse(&source, &dir.path().join("app.yaml")).expect("manifest");
    let host = Host::new(HostConfig::default(), Lattice::in_process("test")).expect("host");
    host.deploy(&app)
        .await
        .expect("a failed provider does not fail the deployment");

    let inventory = host.inventory();
    let kv = inventory
        .providers
        .iter()
        .find(|p| p.name.as_deref() == Some("kv"))
        .expect("the provider is in the inventory");
    match &kv.status {
        ProviderStatus::Failed { reason } => assert!(reason.contains("blocker"), "{reason}"),
        other => panic!("expected a failed provider, got {other:?}"),
    }
    assert_eq!(inventory.components.len(), 1, "the component still runs");
    host.shutdown().await;
}

#[tokio::test]
async fn health_changes_are_published_as_events() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let (host, _dir) = deploy(
        &manifest(
            "ghcr.io/wasmcloud/keyvalue-redis:0.30.0",
            &format!("                    url: redis://127.0.0.1:{port}"),
        ),
        Duration::from_millis(200),
    )
    .await;
    let mut events = host.lattice().subscribe_events();
    let failed = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let event = events.recv().await.expect("event");
            if event.name() == "health_check_failed" {
                return event;
            }
        }
    })
    .await
    .expect("a health_check_failed event for Redis that is not there");
    let inventory = host.inventory();
    // It started (the Redis client connects lazily), so it is unhealthy, not failed.
    assert!(matches!(
        inventory.providers[0].status,
        ProviderStatus::Unhealthy { .. }
    ));
    drop(failed);
    host.shutdown().await;
}
