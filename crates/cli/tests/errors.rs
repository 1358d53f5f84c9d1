//! Bad input is refused before anything runs, with the file, the field and what to do.

mod common;

use common::*;
use std::time::Duration;

/// Runs `trellis up MANIFEST`, which must refuse it: exit 1 (within a minute, rather than
/// hang if the host started after all) with nothing listening. Its stderr.
fn up_fails(manifest: &std::path::Path) -> String {
    let cache = shared_cache_dir();
    let mut up = Watching::start(&[
        "up",
        manifest.to_str().expect("utf8"),
        "--http",
        "127.0.0.1:0",
        "--admin",
        "off",
        "--cache-dir",
        cache.to_str().expect("utf8"),
    ]);
    let code = up.wait_exit(Duration::from_secs(60));
    let (stdout, stderr) = (up.lines().join("\n"), up.stderr());
    assert_eq!(
        code,
        Some(1),
        "expected failure; stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(
        !stdout.contains("listening on"),
        "nothing may start: {stdout}"
    );
    stderr
}

#[test]
fn malformed_yaml_names_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = write_manifest(
        dir.path(),
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: [oops\n",
    );
    let err = up_fails(&manifest);
    assert!(err.contains("app.yaml:"), "{err}");
}

/// wadm ignores keys it does not know; so does `trellis up`, saying so once, with the line.
#[test]
fn unknown_fields_are_warned_about_once_with_their_path_and_the_app_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    install_guest(dir.path(), "http_hello");
    let manifest = write_manifest(
        dir.path(),
        &http_app("typo", "http_hello", 1, "        imgae: typo\n"),
    );
    let trellis = Trellis::up(&manifest, &[]);
    assert_eq!(get(trellis.addr(), "/").status, 200);
    let stderr = trellis.stderr();
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("warning: "))
        .collect();
    assert_eq!(
        warnings,
        [format!(
            "warning: {}:11:9: spec.components[0].properties.imgae: unknown field `imgae`, expected one of `image`, `id`, `config`, `secrets`, `application`; ignored, as wadm does",
            manifest.display()
        )],
        "{stderr}"
    );
    assert!(stderr.contains("hint: did you mean `image`?"), "{stderr}");
}

/// A misspelt required key is still an error, and the hint points at the ignored spelling.
#[test]
fn a_misspelt_required_field_fails_naming_the_ignored_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    install_guest(dir.path(), "http_hello");
    let manifest = write_manifest(
        dir.path(),
        &http_app("typo", "http_hello", 1, "").replace("instances: 1", "instance: 1"),
    );
    let err = up_fails(&manifest);
    assert!(
        err.contains("properties.instances: missing field `instances`"),
        "{err}"
    );
    assert!(
        err.contains(
            "`instance` (line 14) is not a field here and was ignored: did you mean `instances`?"
        ),
        "{err}"
    );
}

#[test]
fn a_missing_wasm_file_says_where_it_looked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = write_manifest(dir.path(), &http_app("missing", "not_built", 1, ""));
    let err = up_fails(&manifest);
    assert!(err.contains("not_built.wasm"), "{err}");
    assert!(
        err.contains(&dir.path().join("build").display().to_string()),
        "shows the resolved path: {err}"
    );
}

#[test]
fn garbage_and_core_modules_are_refused_with_a_hint() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("build")).expect("mkdir");
    std::fs::write(dir.path().join("build/garbage.wasm"), b"this is not wasm").expect("write");
    let manifest = write_manifest(dir.path(), &http_app("garbage", "garbage", 1, ""));
    let err = up_fails(&manifest);
    assert!(err.contains("not a WebAssembly file"), "{err}");

    std::fs::write(dir.path().join("build/core.wasm"), b"\0asm\x01\0\0\0").expect("write");
    let manifest = write_manifest(dir.path(), &http_app("core", "core", 1, ""));
    let err = up_fails(&manifest);
    assert!(
        err.contains("core WebAssembly module, not a component"),
        "{err}"
    );
    assert!(err.contains("wasm32-wasip2"), "{err}");
}

#[test]
fn a_link_to_an_unknown_component_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    install_guest(dir.path(), "http_hello");
    let manifest = write_manifest(
        dir.path(),
        &http_app("badlink", "http_hello", 1, "")
            .replace("              name: web\n", "              name: wbe\n"),
    );
    let err = up_fails(&manifest);
    assert!(err.contains("wbe"), "{err}");
}

#[test]
fn an_import_nothing_provides_is_refused_with_the_link_to_add() {
    let dir = tempfile::tempdir().expect("tempdir");
    install_guest(dir.path(), "needs_kv");
    let manifest = write_manifest(dir.path(), &http_app("nokv", "needs_kv", 1, ""));
    let err = up_fails(&manifest);
    assert!(
        err.contains("`wasi:keyvalue/store@0.2.0-draft`"),
        "names the import: {err}"
    );
    assert!(err.contains("component `web`"), "{err}");
    assert!(
        err.contains("- type: link"),
        "shows the trait to add: {err}"
    );
    assert!(
        err.contains("package: keyvalue") && err.contains("interfaces: [store]"),
        "{err}"
    );
}

#[test]
fn a_port_in_use_fails_the_provider_and_is_retried_until_free() {
    let dir = tempfile::tempdir().expect("tempdir");
    install_guest(dir.path(), "http_hello");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let manifest = write_manifest(
        dir.path(),
        &http_app("busy", "http_hello", 1, "")
            .replace("127.0.0.1:8000", &format!("127.0.0.1:{port}")),
    );
    let mut cmd = std::process::Command::new(trellis_bin());
    cmd.arg("up")
        .arg(&manifest)
        .args(["--provider-health-interval", "200ms"]);
    let trellis = Trellis::start(cmd);
    // The host stays up and says which capability failed and why.
    let failed = trellis
        .stdout
        .iter()
        .find(|l| l.starts_with("capability `httpserver` failed:"))
        .unwrap_or_else(|| panic!("no failure line in {:?}", trellis.stdout));
    assert!(
        failed.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{failed}"
    );
    assert!(!trellis.stderr().contains("panicked"));

    // Once the port is free, the next health check binds it and requests are served.
    drop(taken);
    trellis.wait_for_stderr("HTTP server listening", Duration::from_secs(20));
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    assert_eq!(get(addr, "/").status, 200);
    trellis.wait_for_stderr(
        "capability provider is healthy again",
        Duration::from_secs(20),
    );
}

#[test]
fn the_shared_keyvalue_example_parses_and_says_what_is_missing() {
    let source = trellis_test_support::repo_root()
        .join("../shared/reference/examples/http-keyvalue-counter.wadm.yaml");
    let err = up_fails(&source);
    // Its image is on ghcr.io, which this machine cannot reach: said with what to check.
    assert!(
        err.contains("component `counter`")
            && err.contains("cannot reach ghcr.io")
            && err.contains("does not resolve"),
        "{err}"
    );
    // Its Redis provider is built in, so that is not a problem.
    assert!(!err.contains("keyvalue-redis"), "{err}");
}

/// A link from a built-in provider to a component, as manifest YAML under `traits:`.
fn provider_link(target: &str, namespace: &str, package: &str, interface: &str) -> String {
    format!(
        r#"        - type: link
          properties:
            target:
              name: {target}
            namespace: {namespace}
            package: {package}
            interfaces: [{interface}]
"#
    )
}

#[test]
fn a_message_handler_link_needs_subscriptions_and_a_handler() {
    let dir = tempfile::tempdir().expect("tempdir");
    install_guest(dir.path(), "messaging_echo");
    install_guest(dir.path(), "http_hello");
    let manifest = format!(
        r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: handlers
spec:
  components:
    - name: echo
      type: component
      properties:
        image: file://./build/messaging_echo.wasm
      traits:
{consumer}    - name: hello
      type: component
      properties:
        image: file://./build/http_hello.wasm
    - name: broker
      type: capability
      properties:
        image: trellis+builtin://messaging-local
      traits:
{to_echo}{to_hello}"#,
        consumer = provider_link("broker", "wasmcloud", "messaging", "consumer"),
        to_echo = provider_link("echo", "wasmcloud", "messaging", "handler"),
        // A second handler link from the same provider needs a name of its own.
        to_hello = provider_link("hello", "wasmcloud", "messaging", "handler")
            .replace("properties:\n", "properties:\n            name: to-hello\n"),
    );
    let err = up_fails(&write_manifest(dir.path(), &manifest));
    assert!(
        err.contains(
            "capability `broker` links to component `echo`'s message handler but subscribes to nothing"
        ),
        "{err}"
    );
    assert!(
        err.contains("add `subscriptions: some.subject`"),
        "with the fix: {err}"
    );
    // Every problem is reported at once.
    assert!(
        err.contains(
            "capability `broker` delivers messages to component `hello`, but it exports neither wasmcloud:messaging/handler@0.2.0 nor incoming-handler@0.3.0"
        ),
        "{err}"
    );
}

#[test]
fn an_http_server_link_must_carry_requests_to_an_http_component() {
    let dir = tempfile::tempdir().expect("tempdir");
    install_guest(dir.path(), "http_hello");
    install_guest(dir.path(), "callee");
    let manifest = format!(
        r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: httplinks
spec:
  components:
    - name: hello
      type: component
      properties:
        image: file://./build/http_hello.wasm
    - name: callee
      type: component
      properties:
        image: file://./build/callee.wasm
    - name: httpserver
      type: capability
      properties:
        image: ghcr.io/wasmcloud/http-server:0.27.0
      traits:
{to_callee}    - name: other-server
      type: capability
      properties:
        image: ghcr.io/wasmcloud/http-server:0.27.0
      traits:
{wrong_interface}"#,
        to_callee = provider_link("callee", "wasi", "http", "incoming-handler"),
        wrong_interface = provider_link("hello", "wasi", "http", "outgoing-handler"),
    );
    let err = up_fails(&write_manifest(dir.path(), &manifest));
    assert!(
        err.contains(
            "capability `httpserver` sends HTTP requests to component `callee`, but it exports neither wasi:http/incoming-handler@0.2 nor wasi:http/handler@0.3"
        ),
        "{err}"
    );
    assert!(
        err.contains(
            "capability `other-server` is an HTTP server; its link to `hello` must carry wasi:http/incoming-handler"
        ),
        "{err}"
    );
}
