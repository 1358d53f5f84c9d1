//! Components from other toolchains: built from source with the toolchain's own tools, for
//! the standard `wasi:http/proxy` world, deployed with a plain http-server manifest.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

#[test]
fn a_python_component_for_wasi_http_proxy_deploys_with_a_plain_http_server_manifest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wit = wasi_http_wit();
    let world = format!("wasi:http/proxy@{}", wasi_http_version(&wit));
    std::fs::create_dir_all(dir.path().join("build")).expect("mkdir build");
    let source = trellis_test_support::repo_root().join("test-components/py-http");
    let out = Command::new(componentize_py())
        .arg("-d")
        .arg(&wit)
        .args(["-w", &world, "componentize", "app", "-o"])
        .arg(dir.path().join("build/py_http.wasm"))
        .current_dir(&source)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run componentize-py");
    assert!(
        out.status.success(),
        "componentize-py failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // No HTTP client link: the world's outgoing-handler import deploys with one warning.
    let manifest = write_manifest(dir.path(), &http_app("py", "py_http", 1, ""));
    let trellis = Trellis::up(&manifest, &[]);
    let response = get(trellis.addr(), "/greet?who=wasi");
    assert_eq!(response.status, 200, "{}", trellis.stderr());
    assert_eq!(response.body, "Hello from Python at /greet?who=wasi\n");

    let stderr = trellis.wait_for_stderr("http-request-denied", Duration::from_secs(10));
    let warnings = stderr
        .lines()
        .filter(|l| l.contains("has no link to an HTTP client"))
        .count();
    assert_eq!(warnings, 1, "one deploy warning expected:\n{stderr}");
    assert!(
        stderr.contains(&format!(
            "imports `wasi:http/outgoing-handler@{}`",
            wasi_http_version(&wit)
        )),
        "{stderr}"
    );
}
