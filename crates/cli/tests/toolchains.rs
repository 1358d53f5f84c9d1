//! Components from other toolchains: built from source with the toolchain's own tools, for
//! the standard `wasi:http/proxy` world, deployed with a plain http-server manifest.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// componentize-py, as `scripts/services` installs it (or `TRELLIS_COMPONENTIZE_PY`).
fn componentize_py() -> PathBuf {
    if let Some(path) = std::env::var_os("TRELLIS_COMPONENTIZE_PY") {
        return PathBuf::from(path);
    }
    let tools = std::env::var_os("TRELLIS_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/trellis-tools"));
    let path = tools.join("venv/bin/componentize-py");
    assert!(
        path.exists(),
        "componentize-py is not at {}: run scripts/services (it installs it from PyPI), or set TRELLIS_COMPONENTIZE_PY",
        path.display()
    );
    path
}

/// The WASI 0.2 WIT that wasmtime-wasi-http (the version this workspace serves) ships with:
/// the `wasi:http/proxy` world the guest is built for, at the version the host serves.
fn wasi_http_wit() -> PathBuf {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1"])
        .current_dir(trellis_test_support::repo_root())
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata json");
    let manifest = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .find(|p| p["name"] == "wasmtime-wasi-http")
        .and_then(|p| p["manifest_path"].as_str())
        .expect("wasmtime-wasi-http is a dependency");
    Path::new(manifest)
        .parent()
        .expect("crate folder")
        .join("wit")
}

/// The `wasi:http` version in that WIT, such as `0.2.12`.
fn wasi_http_version(wit: &Path) -> String {
    let http = std::fs::read_to_string(wit.join("deps/http.wit")).expect("read http.wit");
    http.lines()
        .find_map(|l| l.trim().strip_prefix("package wasi:http@"))
        .map(|v| v.trim_end_matches(';').to_owned())
        .expect("package line in http.wit")
}

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
