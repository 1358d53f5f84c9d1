//! `trellis up`: the real binary serving real components over real HTTP.

mod common;

use common::*;
use std::time::Duration;

#[test]
fn serves_the_hello_example_with_paths_relative_to_the_manifest() {
    let app_dir = tempfile::tempdir().expect("tempdir");
    install_guest(app_dir.path(), "http_hello");
    let manifest_src = std::fs::read_to_string(
        trellis_test_support::repo_root().join("examples/http-hello/app.yaml"),
    )
    .expect("read example");
    let manifest = write_manifest(app_dir.path(), &manifest_src);

    // Run from an unrelated directory: `file://./build/...` must resolve against the manifest.
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let mut cmd = std::process::Command::new(trellis_bin());
    cmd.current_dir(elsewhere.path())
        .arg("up")
        .arg(&manifest)
        .args(["--http", "127.0.0.1:0"]);
    let trellis = Trellis::start(cmd);

    let response = get(trellis.addr(), "/");
    assert_eq!(response.status, 200);
    assert_eq!(response.body, "Hello from Trellis!\n");
}

#[test]
fn runs_the_shared_wadm_hello_world_manifest_unchanged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = trellis_test_support::repo_root()
        .join("../shared/reference/examples/http-hello-world.wadm.yaml");
    let manifest = dir.path().join("wadm.yaml");
    std::fs::copy(&source, &manifest).expect("copy shared example");
    std::fs::create_dir_all(dir.path().join("build")).expect("mkdir");
    std::fs::copy(
        trellis_test_support::guest("http_hello"),
        dir.path().join("build/http_hello_world_s.wasm"),
    )
    .expect("copy guest");

    let trellis = Trellis::up(&manifest, &[]);
    let response = get(trellis.addr(), "/");
    assert_eq!(response.status, 200);
    assert_eq!(response.body, "Hello from Trellis!\n");
}

#[test]
fn listens_on_the_address_from_the_link_source_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    install_guest(dir.path(), "http_hello");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let manifest = write_manifest(
        dir.path(),
        &http_app("addr", "http_hello", 1, "")
            .replace("127.0.0.1:8000", &format!("127.0.0.1:{port}")),
    );
    let mut cmd = std::process::Command::new(trellis_bin());
    cmd.arg("up").arg(&manifest);
    let trellis = Trellis::start(cmd);
    assert_eq!(trellis.addr().port(), port);
    assert_eq!(get(trellis.addr(), "/").status, 200);
}

#[test]
fn guest_logs_and_config_reach_the_host() {
    let dir = tempfile::tempdir().expect("tempdir");
    install_guest(dir.path(), "behaviours");
    let config = "        config:\n          - name: greetings\n            properties:\n              greeting: hello there\n              audience: world\n";
    let manifest = write_manifest(dir.path(), &http_app("cfg", "behaviours", 1, config));
    let trellis = Trellis::up(&manifest, &[]);

    let response = get(trellis.addr(), "/config?key=greeting");
    assert_eq!(
        (response.status, response.body.as_str()),
        (200, "hello there")
    );
    assert_eq!(get(trellis.addr(), "/config?key=nope").status, 404);
    let all = get(trellis.addr(), "/config-all");
    assert!(
        all.body.contains("audience=world") && all.body.contains("greeting=hello there"),
        "{}",
        all.body
    );

    assert_eq!(get(trellis.addr(), "/log?msg=guest-says-hi").status, 200);
    let stderr = trellis.wait_for_stderr("guest-says-hi", Duration::from_secs(10));
    let line = stderr
        .lines()
        .find(|l| l.contains("guest-says-hi"))
        .expect("log line");
    assert!(
        line.contains("component_id=cfg-web"),
        "log line lacks the component id: {line}"
    );
    assert!(line.contains("INFO"), "{line}");

    // The same interface under the versioned name wasmCloud v1 components import.
    assert_eq!(
        get(trellis.addr(), "/log-draft?msg=draft-says-hi").status,
        200
    );
    let stderr = trellis.wait_for_stderr("draft-says-hi", Duration::from_secs(10));
    let line = stderr
        .lines()
        .find(|l| l.contains("draft-says-hi"))
        .expect("log line");
    assert!(
        line.contains("component_id=cfg-web") && line.contains("WARN"),
        "{line}"
    );
}

#[test]
fn sigterm_finishes_in_flight_requests_and_exits_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    install_guest(dir.path(), "behaviours");
    let manifest = write_manifest(dir.path(), &http_app("drain", "behaviours", 2, ""));
    let mut trellis = Trellis::up(&manifest, &["--drain-timeout", "20s"]);
    let addr = trellis.addr();

    let in_flight = std::thread::spawn(move || get(addr, "/sleep?ms=1500"));
    // Let the request reach the guest before the signal.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(trellis.terminate(), Some(0));
    let response = in_flight.join().expect("request thread");
    assert_eq!(
        (response.status, response.body.as_str()),
        (200, "slept 1500")
    );
    // And the listener is closed.
    assert!(try_request(addr, "GET", "/", b"").is_err());
}

#[test]
fn restart_uses_the_compile_cache() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("cache");
    install_guest(dir.path(), "http_hello");
    let manifest = write_manifest(dir.path(), &http_app("cache", "http_hello", 1, ""));
    let cache_arg = cache.to_str().expect("utf8");

    let first = Trellis::up(&manifest, &["--cache-dir", cache_arg]);
    assert!(
        first.stderr().contains("from_cache=false"),
        "{}",
        first.stderr()
    );
    drop(first);
    let entries: Vec<_> = std::fs::read_dir(&cache).expect("cache dir").collect();
    assert_eq!(entries.len(), 1, "one compiled component is cached");

    let second = Trellis::up(&manifest, &["--cache-dir", cache_arg]);
    assert!(
        second.stderr().contains("from_cache=true"),
        "{}",
        second.stderr()
    );
    assert_eq!(get(second.addr(), "/").body, "Hello from Trellis!\n");
}

#[test]
fn no_cache_compiles_every_time_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("cache");
    install_guest(dir.path(), "http_hello");
    let manifest = write_manifest(dir.path(), &http_app("nocache", "http_hello", 1, ""));
    let cache_arg = cache.to_str().expect("utf8");
    let cached = || -> usize { std::fs::read_dir(&cache).map_or(0, |entries| entries.count()) };

    let uncached = Trellis::up(&manifest, &["--cache-dir", cache_arg, "--no-cache"]);
    assert_eq!(get(uncached.addr(), "/").body, "Hello from Trellis!\n");
    drop(uncached);
    assert_eq!(cached(), 0, "--no-cache wrote to the cache directory");

    // With an entry in the cache, --no-cache still compiles.
    drop(Trellis::up(&manifest, &["--cache-dir", cache_arg]));
    assert_eq!(cached(), 1, "one compiled component is cached");
    let uncached = Trellis::up(&manifest, &["--cache-dir", cache_arg, "--no-cache"]);
    assert!(
        uncached.stderr().contains("from_cache=false")
            && !uncached.stderr().contains("from_cache=true"),
        "{}",
        uncached.stderr()
    );
    assert_eq!(get(uncached.addr(), "/").body, "Hello from Trellis!\n");
}
