//! Components from a registry, through the real binary and a real registry (Debian's
//! `docker-registry`): `trellis up` pulls a registry image, records its digest in
//! `trellis.lock` and keeps running that digest after the tag moves; `--locked` refuses what
//! the lock does not say; `trellis lock --update` moves on; the cache runs what was pulled
//! while the registry is down, and a component that cannot be pulled says why, in
//! `trellis up`'s error and in a lattice app's status.

mod common;

use common::*;
use std::path::Path;
use std::time::Duration;
use trellis_test_support::registry::RegistryServer;

/// An HTTP app whose component is `image`.
fn registry_app(image: &str) -> String {
    http_app("fromreg", "unused", 1, "").replace("file://./build/unused.wasm", image)
}

/// `trellis push REFERENCE` the built guest `guest`; its digest.
fn push(reference: &str, guest: &str, cache: &Path) -> String {
    let wasm = trellis_test_support::guest(guest);
    let out = run(&[
        "push",
        reference,
        wasm.to_str().expect("utf-8"),
        "--image-cache-dir",
        cache.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.code, Some(0), "push: {}", out.stderr);
    out.stdout.trim().to_owned()
}

fn up_args(cache: &Path) -> Vec<String> {
    vec![
        "--image-cache-dir".into(),
        cache.to_str().expect("utf-8").into(),
    ]
}

fn up(manifest: &Path, cache: &Path, extra: &[&str]) -> Trellis {
    let mut args = up_args(cache);
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Trellis::up(manifest, &args)
}

fn up_fails(manifest: &Path, cache: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "up",
        manifest.to_str().expect("utf-8"),
        "--http",
        "127.0.0.1:0",
        "--admin",
        "off",
        "--image-cache-dir",
        cache.to_str().expect("utf-8"),
    ];
    args.extend(extra);
    let out = run(&args);
    assert_eq!(
        out.code,
        Some(1),
        "should fail: {}\n{}",
        out.stdout,
        out.stderr
    );
    out.stderr
}

fn body(trellis: &Trellis) -> String {
    let r = get(trellis.addr(), "/");
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

#[test]
fn a_registry_image_runs_pinned_by_the_lock_until_it_is_updated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("oci");
    let registry = RegistryServer::start();
    let reference = registry.reference("demo/web:1");
    let first = push(&reference, "http_hello", &dir.path().join("push-cache"));
    let manifest = write_manifest(dir.path(), &registry_app(&reference));

    let mut trellis = up(&manifest, &cache, &[]);
    let hello = body(&trellis);
    let lock = std::fs::read_to_string(dir.path().join("trellis.lock")).expect("trellis.lock");
    assert!(
        lock.contains(&format!("[images.\"{reference}\"]")) && lock.contains(&first),
        "the lock records the digest:\n{lock}"
    );
    assert!(
        trellis.stderr().contains("component image pulled"),
        "{}",
        trellis.stderr()
    );
    trellis.terminate();

    // The tag moves to another component; the lock keeps the old digest running.
    let second = push(&reference, "behaviours", &dir.path().join("push-cache"));
    assert_ne!(first, second);
    let mut trellis = up(&manifest, &cache, &["--locked"]);
    assert_eq!(
        body(&trellis),
        hello,
        "the locked digest runs, not the moved tag"
    );
    trellis.terminate();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("trellis.lock")).expect("lock"),
        lock,
        "an honoured lock is not rewritten"
    );

    // `trellis lock --update` moves to what the tag names now.
    let out = run(&[
        "lock",
        manifest.to_str().expect("utf-8"),
        "--update",
        "--image-cache-dir",
        cache.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!("{first} -> {second}")),
        "the change is shown: {}",
        out.stderr
    );
    let mut trellis = up(&manifest, &cache, &["--locked"]);
    assert_ne!(body(&trellis), hello, "the new digest runs");
    trellis.terminate();

    // --locked with a reference the lock does not know fails, and writes nothing.
    let other = registry.reference("demo/web:2");
    push(&other, "http_hello", &dir.path().join("push-cache"));
    write_manifest(dir.path(), &registry_app(&other));
    let before = std::fs::read_to_string(dir.path().join("trellis.lock")).expect("lock");
    let err = up_fails(&manifest, &cache, &["--locked"]);
    assert!(
        err.contains("--locked") && err.contains(&other) && err.contains("trellis lock"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("trellis.lock")).expect("lock"),
        before
    );
}

#[test]
fn a_pulled_component_runs_with_the_registry_down_and_an_unpulled_one_says_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("oci");
    let mut registry = RegistryServer::start();
    let reference = registry.reference("demo/web:1");
    push(&reference, "http_hello", &dir.path().join("push-cache"));
    let never = registry.reference("demo/never:1");
    let never_digest = push(&never, "behaviours", &dir.path().join("push-cache"));
    let manifest = write_manifest(dir.path(), &registry_app(&reference));
    let mut trellis = up(&manifest, &cache, &[]);
    let hello = body(&trellis);
    trellis.terminate();

    registry.stop();
    let mut trellis = up(&manifest, &cache, &["--locked"]);
    assert_eq!(body(&trellis), hello, "served from the cache");
    trellis.terminate();

    // Pinned by digest (no resolution needed), never pulled: the pull itself fails.
    write_manifest(
        dir.path(),
        &registry_app(&format!("{never}@{never_digest}")),
    );
    let err = up_fails(&manifest, &cache, &[]);
    assert!(
        err.contains("component `web`") && err.contains(&registry.host()),
        "the failure names the component and the registry: {err}"
    );
}

#[test]
fn a_lattice_app_whose_image_cannot_be_pulled_shows_why_in_its_status() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nats = NatsServer::start(free_port(), &dir.path().join("nats"));
    let _host = LatticeHost::start(
        &nats.url(),
        "images",
        &[
            "--reconcile-interval",
            "1s",
            "--image-cache-dir",
            dir.path().join("host-oci").to_str().expect("utf-8"),
        ],
    );
    let mut registry = RegistryServer::start();
    let reference = registry.reference("demo/web:1");
    let digest = push(&reference, "http_hello", &dir.path().join("push-cache"));
    registry.stop();
    let port = free_port();
    let app = registry_app(&format!("{reference}@{digest}"))
        .replace("127.0.0.1:8000", &format!("127.0.0.1:{port}"));
    let manifest = write_manifest(dir.path(), &app);
    let lattice = ["--nats", &nats.url(), "--lattice", "images"].map(str::to_owned);
    let with = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(lattice.iter().map(String::as_str));
        run(&all)
    };
    let out = with(&["app", "deploy", manifest.to_str().expect("utf-8")]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let text = eventually("status failed", Duration::from_secs(60), || {
        let out = with(&["app", "status", "fromreg"]);
        (out.stdout.contains("did not start on host")).then_some(out.stdout)
    });
    assert!(
        text.contains(&registry.host()) && text.contains("cannot reach"),
        "the reason names the registry: {text}"
    );
}
