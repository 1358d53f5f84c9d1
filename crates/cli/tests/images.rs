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
    // The host's inventory shows the component it could not start, and why.
    let out = with(&["get", "inventory", "-o", "json"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let inventory: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    let pending = &inventory["pending_components"][0];
    assert_eq!(pending["id"], "fromreg-web", "{inventory}");
    assert_eq!(pending["state"], "failed", "{inventory}");
    assert!(
        pending["reason"]
            .as_str()
            .is_some_and(|r| r.contains("cannot reach")),
        "{inventory}"
    );
    let out = with(&["get", "inventory"]);
    assert!(
        out.stdout.contains("failed to start:") && out.stdout.contains("fromreg-web"),
        "{}",
        out.stdout
    );

    // A pull in progress shows too: this "registry" accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_port = silent.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming().flatten() {
            held.push(stream);
        }
    });
    let zeros = "0".repeat(64);
    let slow = registry_app(&format!("127.0.0.1:{silent_port}/demo/slow@sha256:{zeros}"))
        .replace("name: fromreg", "name: slowreg")
        .replace("127.0.0.1:8000", &format!("127.0.0.1:{}", free_port()));
    let slow_dir = dir.path().join("slow");
    std::fs::create_dir_all(&slow_dir).expect("mkdir");
    let manifest = write_manifest(&slow_dir, &slow);
    let out = with(&["app", "deploy", manifest.to_str().expect("utf-8")]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let text = eventually("a pull in progress", Duration::from_secs(20), || {
        let out = with(&["get", "inventory"]);
        out.stdout
            .lines()
            .any(|l| l.contains("slowreg-web") && l.contains("starting since"))
            .then_some(out.stdout)
    });
    assert!(
        text.contains(&format!("127.0.0.1:{silent_port}/demo/slow")),
        "{text}"
    );
}

/// `trellis host` in `dir`, with its own compile cache and image cache there.
fn host_in(dir: &Path, nats: &str, lattice: &str) -> LatticeHost {
    let mut cmd = std::process::Command::new(trellis_bin());
    cmd.current_dir(dir)
        .args(["host", "--nats", nats, "--lattice", lattice])
        .args(["--reconcile-interval", "1s", "--heartbeat-interval", "1s"])
        .arg("--cache-dir")
        .arg(dir.join("compiled"))
        .arg("--image-cache-dir")
        .arg(dir.join("oci"));
    LatticeHost::start_command(cmd)
}

#[test]
fn a_file_component_deployed_to_a_lattice_runs_on_hosts_that_do_not_have_the_file() {
    let nats_dir = tempfile::tempdir().expect("tempdir");
    let nats = NatsServer::start(free_port(), nats_dir.path());
    let (a, b, deployer) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let hosts = [
        host_in(a.path(), &nats.url(), "carried"),
        host_in(b.path(), &nats.url(), "carried"),
    ];
    let wasm = install_guest(deployer.path(), "http_hello");
    let port = free_port();
    let manifest = write_manifest(
        deployer.path(),
        &http_app("carried", "http_hello", 2, "")
            .replace("127.0.0.1:8000", &format!("127.0.0.1:{port}")),
    );
    let lattice = ["--nats", &nats.url(), "--lattice", "carried"].map(str::to_owned);
    let with = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(lattice.iter().map(String::as_str));
        run(&all)
    };
    let out = with(&["app", "deploy", manifest.to_str().expect("utf-8")]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stderr.contains("stored in the lattice as sha256:"),
        "{}",
        out.stderr
    );
    // Only the deploying side ever had the file, and now not even it.
    std::fs::remove_file(&wasm).expect("remove the component");

    for host in &hosts {
        let image = eventually(
            "the component runs on every host",
            Duration::from_secs(60),
            || {
                let out = with(&["get", "inventory", &host.id, "-o", "json"]);
                let inventory: serde_json::Value = serde_json::from_str(&out.stdout).ok()?;
                inventory["components"]
                    .as_array()?
                    .iter()
                    .find(|c| c["id"] == "carried-web")
                    .and_then(|c| c["image_ref"].as_str().map(str::to_owned))
            },
        );
        assert!(
            image.starts_with("lattice://http_hello.wasm@sha256:"),
            "{image}"
        );
        assert!(
            host.trellis.stderr().contains("component image pulled"),
            "{}",
            host.trellis.stderr()
        );
    }
    let r = get(std::net::SocketAddr::from(([127, 0, 0, 1], port)), "/");
    assert_eq!(r.status, 200, "{}", r.body);
}
