//! `wasi:keyvalue/watcher` through the real binary: changes to watched keys reach the
//! component's export in order, with a bucket it can read, on the in-memory and local stores,
//! Redis (keyspace notifications, switched on by the host, and again after Redis restarts) and
//! NATS JetStream KV (embedded, and on a lattice, where the reconciler puts the link through
//! the control interface); a trapping handler stops nothing; changes beyond the queue bound are
//! dropped with a warning. The `kv_watch` guest records each change it hears of in the key
//! `watch-log`, which `GET /log` returns.

mod common;

use common::*;
use std::time::Duration;

/// A component `web` (the `kv_watch` guest) with a key-value link to `kv`, and `kv` watching
/// `watch` for it. `provider` is the lines under the provider's `properties:`.
fn watcher_app(provider: &str, watch: &str) -> String {
    format!(
        r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: watcher
spec:
  components:
    - name: web
      type: component
      properties:
        image: file://./build/kv_watch.wasm
      traits:
        - type: spreadscaler
          properties:
            instances: 4
        - type: link
          properties:
            namespace: wasi
            package: keyvalue
            interfaces: [store]
            target:
              name: kv
    - name: kv
      type: capability
      properties:
{provider}
      traits:
        - type: link
          properties:
            target:
              name: web
            namespace: wasi
            package: keyvalue
            interfaces: [watcher]
            source:
              config:
                - name: watch-config
                  properties:
                    watch: {watch}
    - name: httpserver
      type: capability
      properties:
        image: ghcr.io/wasmcloud/http-server:0.27.0
      traits:
        - type: link
          properties:
            target:
              name: web
            namespace: wasi
            package: http
            interfaces: [incoming-handler]
            source:
              config:
                - name: default-http
                  properties:
                    address: 127.0.0.1:8000
"#
    )
}

/// Waits until the component's `watch-log` has `lines` lines, and returns it.
fn log_with(addr: std::net::SocketAddr, lines: usize) -> String {
    eventually(
        &format!("{lines} lines in the watch log"),
        Duration::from_secs(60),
        || {
            let r = get(addr, "/log");
            (r.status == 200 && r.body.lines().count() >= lines).then_some(r.body)
        },
    )
}

fn set(addr: std::net::SocketAddr, key: &str, value: &str) {
    let r = request(addr, "PUT", &format!("/set?key={key}"), value.as_bytes());
    assert_eq!(r.status, 204, "{}", r.body);
}

fn delete(addr: std::net::SocketAddr, key: &str) {
    let r = request(addr, "DELETE", &format!("/delete?key={key}"), b"");
    assert_eq!(r.status, 204, "{}", r.body);
}

#[test]
fn embedded_stores_deliver_changes_in_order_and_a_trap_stops_nothing() {
    for image in [
        "trellis+builtin://keyvalue-memory",
        "trellis+builtin://keyvalue-local",
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        install_guest(dir.path(), "kv_watch");
        let manifest = write_manifest(
            dir.path(),
            &watcher_app(&format!("        image: {image}"), "SET@a,DEL@a,set@b"),
        );
        let trellis = Trellis::up(&manifest, &[]);
        let addr = trellis.addr();

        // Each change is waited for before the next, so that the guest's `get` sees it.
        set(addr, "a", "1");
        log_with(addr, 1);
        set(addr, "unwatched", "x");
        delete(addr, "a");
        log_with(addr, 2);
        set(addr, "b", "2");
        log_with(addr, 3);
        delete(addr, "b"); // deletions of b are not watched
        set(addr, "b", "3");
        assert_eq!(
            log_with(addr, 4),
            "set a=1 get=1\ndel a get=<none>\nset b=2 get=2\nset b=3 get=3\n",
            "{image}: every watched change, in order, with a bucket the guest can read"
        );

        // A handler that traps is logged; the next change is delivered all the same.
        set(addr, "a", "trap");
        set(addr, "a", "after");
        let log = log_with(addr, 5);
        assert!(
            log.ends_with("set b=3 get=3\nset a=after get=after\n"),
            "{image}: {log}"
        );
        let stderr = trellis.wait_for_stderr("key-value watcher failed", Duration::from_secs(30));
        assert!(stderr.contains("trapping on purpose"), "{stderr}");
    }
}

#[test]
fn changes_beyond_the_queue_bound_are_dropped_with_a_warning() {
    let dir = tempfile::tempdir().expect("tempdir");
    install_guest(dir.path(), "kv_watch");
    let manifest = write_manifest(
        dir.path(),
        &watcher_app(
            "        image: trellis+builtin://keyvalue-memory",
            "SET@slow,SET@a",
        ),
    );
    let trellis = Trellis::up(&manifest, &["--max-queued-kv-changes", "2"]);
    let addr = trellis.addr();

    // The component sits on the first change while ten more come: two wait, the rest are
    // dropped.
    set(addr, "slow", "sleep:8000");
    for i in 0..10 {
        set(addr, "a", &i.to_string());
    }
    trellis.wait_for_stderr(
        "dropping new changes until it catches up",
        Duration::from_secs(30),
    );
    let log = log_with(addr, 3);
    assert!(log.starts_with("set slow=sleep:8000"), "{log}");
    // Once the queue has room again, changes are delivered again.
    set(addr, "a", "later");
    let log = eventually("the later change", Duration::from_secs(60), || {
        let log = get(addr, "/log").body;
        log.contains("set a=later").then_some(log)
    });
    let delivered = log.lines().filter(|l| l.starts_with("set a=")).count();
    assert!(
        delivered < 11,
        "at most the queue's worth of the burst, then the later one: {log}"
    );
    trellis.wait_for_stderr("queued again after", Duration::from_secs(30));
}

/// The shape of wasmCloud's http-keyvalue-watcher example: no key-value link from the
/// component, the provider's link to it carrying `[watcher]` with the older `target_config`
/// form holding the URL, and `watch` beside it as the example's README says. Redis starts with
/// keyspace notifications off; the host switches them on, and again after Redis restarts.
#[test]
fn redis_changes_reach_the_watcher_with_wasmclouds_manifest_and_again_after_a_restart() {
    let port = free_port();
    let redis = RedisServer::start(port);
    let dir = tempfile::tempdir().expect("tempdir");
    install_guest(dir.path(), "kv_watch");
    let manifest = format!(
        r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: rust-keyvalue-watcher
spec:
  components:
    - name: kvwatcher
      type: component
      properties:
        image: file://./build/kv_watch.wasm
      traits:
        - type: spreadscaler
          properties:
            instances: 1
    - name: kvredis
      type: capability
      properties:
        image: ghcr.io/wasmcloud/keyvalue-redis:0.30.0
      traits:
        - type: spreadscaler
          properties:
            instances: 1
        - type: link
          properties:
            target: kvwatcher
            namespace: wasi
            package: keyvalue
            interfaces: [watcher]
            target_config:
              - name: redis-url
                properties:
                  url: redis://127.0.0.1:{port}
                  watch: SET@key,DEL@key
    - name: httpserver
      type: capability
      properties:
        image: ghcr.io/wasmcloud/http-server:0.27.0
      traits:
        - type: link
          properties:
            target:
              name: kvwatcher
            namespace: wasi
            package: http
            interfaces: [incoming-handler]
"#
    );
    let manifest = write_manifest(dir.path(), &manifest);
    let trellis = Trellis::up(&manifest, &["--provider-health-interval", "300ms"]);
    let addr = trellis.addr();
    trellis.wait_for_stderr(
        "switched on redis keyspace notifications",
        Duration::from_secs(30),
    );

    set(addr, "key", "1");
    log_with(addr, 1);
    delete(addr, "key");
    assert_eq!(log_with(addr, 2), "set key=1 get=1\ndel key get=<none>\n");

    drop(redis);
    trellis.wait_for_stderr("the key-value watch ended", Duration::from_secs(30));
    let _redis = RedisServer::start(port);
    // The restarted Redis kept nothing and reports nothing until the host, watching again,
    // switches notifications back on: write until a change comes through.
    let mut attempt = 0;
    let log = eventually(
        "a change after the restart",
        Duration::from_secs(60),
        || {
            attempt += 1;
            let r = request(
                addr,
                "PUT",
                "/set?key=key",
                format!("again{attempt}").as_bytes(),
            );
            let log = get(addr, "/log").body;
            (r.status == 204 && log.contains("set key=again")).then_some(log)
        },
    );
    assert!(log.starts_with("set key=again"), "{log}");
}

#[test]
fn nats_kv_changes_reach_the_watcher() {
    let bucket = format!("trellis_watch_{}", std::process::id());
    let dir = tempfile::tempdir().expect("tempdir");
    install_guest(dir.path(), "kv_watch");
    let manifest = write_manifest(
        dir.path(),
        &watcher_app(
            &format!(
                "        image: ghcr.io/wasmcloud/keyvalue-nats:0.4.1\n        config:\n          - name: nats-kv\n            properties:\n              bucket: {bucket}\n              enable_bucket_auto_create: 'true'\n              cluster_uri: nats://127.0.0.1:4222"
            ),
            "SET@counter,DEL@counter",
        ),
    );
    let trellis = Trellis::up(&manifest, &[]);
    let addr = trellis.addr();
    set(addr, "counter", "1");
    log_with(addr, 1);
    set(addr, "other", "x");
    delete(addr, "counter");
    log_with(addr, 2);
    set(addr, "counter", "2");
    assert_eq!(
        log_with(addr, 3),
        "set counter=1 get=1\ndel counter get=<none>\nset counter=2 get=2\n"
    );
}

/// On a lattice the reconciler starts the component and puts the watcher link through the
/// control interface; the host running both delivers the changes.
#[test]
fn a_watcher_deployed_on_a_lattice_delivers_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nats = NatsServer::start(free_port(), &dir.path().join("nats"));
    let _host = LatticeHost::start(
        &nats.url(),
        "watching",
        &["--reconcile-interval", "1s", "--heartbeat-interval", "1s"],
    );
    install_guest(dir.path(), "kv_watch");
    let port = free_port();
    let manifest = watcher_app(
        &format!(
            "        image: ghcr.io/wasmcloud/keyvalue-nats:0.4.1\n        config:\n          - name: nats-kv\n            properties:\n              bucket: watched\n              enable_bucket_auto_create: 'true'\n              cluster_uri: {}",
            nats.url()
        ),
        "SET@counter,DEL@counter",
    )
    .replace("127.0.0.1:8000", &format!("127.0.0.1:{port}"));
    let manifest = write_manifest(dir.path(), &manifest);
    let out = run(&[
        "app",
        "deploy",
        manifest.to_str().expect("utf-8"),
        "--nats",
        &nats.url(),
        "--lattice",
        "watching",
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    eventually("the app serves", Duration::from_secs(60), || {
        try_request(addr, "GET", "/log", b"")
            .ok()
            .filter(|r| r.status == 200)
    });
    set(addr, "counter", "1");
    log_with(addr, 1);
    delete(addr, "counter");
    assert_eq!(
        log_with(addr, 2),
        "set counter=1 get=1\ndel counter get=<none>\n"
    );
}
