//! `wasi:keyvalue` through the real binary: the durable local store across restarts,
//! in-memory limits, Redis (including Redis going away and coming back), NATS KV, and
//! providers that cannot start.

mod common;

use common::*;
use std::time::Duration;

const KV: (&str, &str, &str) = ("wasi", "keyvalue", "store, atomics, batch");

#[test]
fn the_local_store_keeps_the_counter_across_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    install_guest(dir.path(), "kv_counter");
    let manifest = write_manifest(
        dir.path(),
        &capability_app("kv_counter", "trellis+builtin://keyvalue-local", KV, "", ""),
    );
    {
        let mut trellis = Trellis::up(&manifest, &[]);
        let addr = trellis.addr();
        assert_eq!(get(addr, "/").body, "Counter: 1\n");
        assert_eq!(get(addr, "/").body, "Counter: 2\n");
        assert_eq!(trellis.terminate(), Some(0));
    }
    assert!(
        dir.path().join(".trellis/keyvalue/cap.redb").is_file(),
        "the store lives beside the manifest"
    );
    let trellis = Trellis::up(&manifest, &[]);
    assert_eq!(get(trellis.addr(), "/").body, "Counter: 3\n");
}

#[test]
fn every_operation_works_and_limits_are_guest_visible_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    install_guest(dir.path(), "kv_ops");
    let manifest = write_manifest(
        dir.path(),
        &capability_app("kv_ops", "trellis+builtin://keyvalue-memory", KV, "", ""),
    );
    let trellis = Trellis::up(
        &manifest,
        &[
            "--max-kv-value",
            "1KiB",
            "--max-kv-key",
            "64B",
            "--max-kv-batch",
            "3",
        ],
    );
    let addr = trellis.addr();

    assert_eq!(get(addr, "/get?key=a").status, 404);
    assert_eq!(request(addr, "PUT", "/set?key=a", b"hello").status, 204);
    assert_eq!(get(addr, "/get?key=a").body, "hello");
    assert_eq!(get(addr, "/exists?key=a").body, "true");
    assert_eq!(request(addr, "DELETE", "/delete?key=a", b"").status, 204);
    assert_eq!(get(addr, "/exists?key=a").body, "false");

    assert_eq!(request(addr, "POST", "/incr?key=n&by=5", b"").body, "5");
    assert_eq!(request(addr, "POST", "/incr?key=n", b"").body, "6");
    request(addr, "PUT", "/set?key=word", b"abc");
    let r = request(addr, "POST", "/incr?key=word", b"");
    assert_eq!(r.status, 500);
    assert!(r.body.starts_with("kv error: other:"), "{}", r.body);

    assert_eq!(request(addr, "POST", "/set-many", b"x=1\ny=2").status, 204);
    assert_eq!(
        get(addr, "/get-many?keys=x,z,y").body,
        "x=1\nz=<missing>\ny=2"
    );
    assert_eq!(
        request(addr, "POST", "/delete-many?keys=x,y", b"").status,
        204
    );
    assert_eq!(get(addr, "/exists?key=x").body, "false");
    let keys = get(addr, "/keys").body;
    assert!(keys.contains('n') && keys.contains("word"), "{keys}");

    // Buckets are separate keyspaces in the embedded stores.
    request(addr, "PUT", "/set?key=a&bucket=other", b"1");
    assert_eq!(get(addr, "/exists?key=a").body, "false");

    let big = vec![b'v'; 2048];
    let r = request(addr, "PUT", "/set?key=big", &big);
    assert_eq!(r.status, 500);
    assert!(r.body.contains("--max-kv-value"), "{}", r.body);
    assert_eq!(
        get(addr, "/get?key=big").status,
        404,
        "an oversize value is not stored"
    );
    let long_key = "k".repeat(100);
    let r = request(addr, "PUT", &format!("/set?key={long_key}"), b"1");
    assert!(
        r.status == 500 && r.body.contains("--max-kv-key"),
        "{}",
        r.body
    );
    let r = get(addr, "/get-many?keys=a,b,c,d");
    assert!(
        r.status == 500 && r.body.contains("--max-kv-batch"),
        "{}",
        r.body
    );
    // The instance survived every refusal.
    assert_eq!(request(addr, "POST", "/incr?key=n", b"").body, "7");
}

#[test]
fn redis_going_away_fails_calls_cleanly_and_they_recover_when_it_returns() {
    let port = free_port();
    let redis = RedisServer::start(port);
    let dir = tempfile::tempdir().expect("tempdir");
    install_guest(dir.path(), "kv_counter");
    let manifest = write_manifest(
        dir.path(),
        &capability_app(
            "kv_counter",
            "ghcr.io/wasmcloud/keyvalue-redis:0.30.0",
            ("wasi", "keyvalue", "atomics, store"),
            &format!("                    url: redis://127.0.0.1:{port}\n"),
            "",
        ),
    );
    let trellis = Trellis::up(&manifest, &["--provider-health-interval", "300ms"]);
    let addr = trellis.addr();
    assert_eq!(get(addr, "/").body, "Counter: 1\n");

    drop(redis);
    let r = get(addr, "/");
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(r.body.starts_with("key-value error:"), "{}", r.body);
    trellis.wait_for_stderr("capability provider is unhealthy", Duration::from_secs(20));

    let _redis = RedisServer::start(port);
    let body = eventually("the counter to work again", Duration::from_secs(20), || {
        let r = get(addr, "/");
        (r.status == 200).then_some(r.body)
    });
    // The restarted Redis kept nothing, so counting starts again.
    assert_eq!(body, "Counter: 1\n");
    trellis.wait_for_stderr(
        "capability provider is healthy again",
        Duration::from_secs(20),
    );
}

#[test]
fn a_provider_with_bad_config_is_failed_with_its_reason_and_calls_get_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    install_guest(dir.path(), "kv_counter");
    let manifest = write_manifest(
        dir.path(),
        &capability_app(
            "kv_counter",
            "ghcr.io/wasmcloud/keyvalue-redis:0.30.0",
            ("wasi", "keyvalue", "atomics, store"),
            "                    URL: not a url\n",
            "",
        ),
    );
    let trellis = Trellis::up(&manifest, &[]);
    let failed = trellis
        .stdout
        .iter()
        .find(|l| l.starts_with("capability `cap` failed:"))
        .unwrap_or_else(|| panic!("no failure line in {:?}", trellis.stdout));
    assert!(failed.contains("not a url"), "{failed}");
    let r = get(trellis.addr(), "/");
    assert_eq!(r.status, 500);
    assert!(r.body.contains("failed to start"), "{}", r.body);
    assert!(!trellis.stderr().contains("panicked"));
}

#[test]
fn nats_jetstream_kv_counts() {
    let bucket = format!("trellis_test_{}", std::process::id());
    let dir = tempfile::tempdir().expect("tempdir");
    install_guest(dir.path(), "kv_counter");
    let manifest = write_manifest(
        dir.path(),
        &capability_app(
            "kv_counter",
            "ghcr.io/wasmcloud/keyvalue-nats:0.4.1",
            ("wasi", "keyvalue", "atomics, store"),
            &format!(
                "                    bucket: {bucket}\n                    enable_bucket_auto_create: 'true'\n                    cluster_uri: nats://127.0.0.1:4222\n"
            ),
            "",
        ),
    );
    let trellis = Trellis::up(&manifest, &[]);
    let addr = trellis.addr();
    assert_eq!(get(addr, "/").body, "Counter: 1\n");
    assert_eq!(get(addr, "/").body, "Counter: 2\n");
}

#[test]
fn a_keyvalue_import_linked_to_the_wrong_provider_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    install_guest(dir.path(), "kv_counter");
    let manifest = write_manifest(
        dir.path(),
        &capability_app(
            "kv_counter",
            "ghcr.io/wasmcloud/http-client:0.13.1",
            ("wasi", "keyvalue", "atomics, store"),
            "",
            "",
        ),
    );
    let out = run(&["up", manifest.to_str().expect("utf8")]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("http-client provider, which does not provide wasi:keyvalue"),
        "{}",
        out.stderr
    );
}

/// Two key-value links from one component, told apart by name: `wasmcloud:bus/lattice`
/// (2.0.0 and 1.0.0) picks the link per request, each request starts on `default`, and a name
/// with no link is refused (2.0.0) or fails the key-value call (1.0.0), naming the link.
#[test]
fn link_names_pick_between_two_stores() {
    let dir = tempfile::tempdir().expect("tempdir");
    install_guest(dir.path(), "kv_ops");
    let manifest = capability_app("kv_ops", "trellis+builtin://keyvalue-memory", KV, "", "")
        .replace(
            "    - name: cap\n",
            r#"    - name: cache
      type: capability
      properties:
        image: trellis+builtin://keyvalue-memory
    - name: cap
"#,
        )
        .replace(
            "              name: cap\n",
            r#"              name: cap
        - type: link
          properties:
            name: cache
            namespace: wasi
            package: keyvalue
            interfaces: [store, atomics, batch]
            target:
              name: cache
"#,
        );
    let manifest = write_manifest(dir.path(), &manifest);
    let trellis = Trellis::up(&manifest, &[]);
    let addr = trellis.addr();

    assert_eq!(request(addr, "POST", "/incr?key=n", b"").body, "1");
    assert_eq!(request(addr, "POST", "/incr?key=n", b"").body, "2");
    assert_eq!(
        request(addr, "POST", "/incr?key=n&link=cache", b"").body,
        "1",
        "the cache link goes to the other store"
    );
    assert_eq!(
        request(addr, "POST", "/incr?key=n&link1=cache", b"").body,
        "2",
        "bus 1.0.0 picks the same link"
    );
    assert_eq!(
        request(addr, "POST", "/incr?key=n", b"").body,
        "3",
        "the next request starts on the default link again"
    );
    assert_eq!(
        request(addr, "POST", "/incr?key=n&link=default", b"").body,
        "4"
    );

    let refused = request(addr, "POST", "/incr?key=n&link=nope", b"");
    assert_eq!(refused.status, 500);
    assert!(
        refused.body.starts_with("link error: ")
            && refused.body.contains("no link named `nope`")
            && refused.body.contains("wasi:keyvalue/store"),
        "{}",
        refused.body
    );
    // A bucket goes through the link chosen when each call is made, not when it was opened.
    assert_eq!(
        request(addr, "POST", "/incr?key=n&link-after-open=cache", b"").body,
        "3",
        "opened on default, incremented through cache"
    );

    let failed = request(addr, "POST", "/incr?key=n&link1=nope", b"");
    assert_eq!(failed.status, 500);
    assert!(
        failed.body.starts_with("kv error: ") && failed.body.contains("nope"),
        "the key-value call through a missing link says which: {}",
        failed.body
    );
}

/// wasmCloud's keyvalue-messaging example has only a named key-value link, no `default`, and
/// opens its bucket before it chooses that link: `open` must not need a link yet.
#[test]
fn a_bucket_opened_before_the_link_is_chosen_works_without_a_default_link() {
    let dir = tempfile::tempdir().expect("tempdir");
    install_guest(dir.path(), "kv_ops");
    let manifest = capability_app("kv_ops", "trellis+builtin://keyvalue-memory", KV, "", "")
        .replace(
            "            target:\n              name: cap\n",
            "            name: bucket-id1\n            target:\n              name: cap\n",
        );
    assert!(manifest.contains("name: bucket-id1"), "{manifest}");
    let manifest = write_manifest(dir.path(), &manifest);
    let trellis = Trellis::up(&manifest, &[]);
    let addr = trellis.addr();

    assert_eq!(
        request(addr, "POST", "/incr?key=n&link-after-open=bucket-id1", b"").body,
        "1"
    );
    assert_eq!(
        request(addr, "POST", "/incr?key=n&link-after-open=bucket-id1", b"").body,
        "2"
    );
    let unchosen = request(addr, "POST", "/incr?key=n", b"");
    assert_eq!(unchosen.status, 500);
    assert!(
        unchosen.body.starts_with("kv error: other: ") && unchosen.body.contains("default"),
        "with no link chosen and none named default, the call says so: {}",
        unchosen.body
    );
}
