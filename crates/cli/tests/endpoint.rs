//! The embedded control endpoint is authenticated and found without flags: `trellis up`
//! listens on a free port with a random token, a request without the token gets 401 and
//! changes nothing, and the CLI run in the manifest's folder finds address and token by
//! itself; two `trellis up` in two folders never clash, and elsewhere the CLI says which
//! ones run.

mod common;

use common::*;
use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::Command;

/// `trellis up` of `manifest` with its own user state folder `state`.
fn up(manifest: &Path, state: &Path) -> Trellis {
    let mut cmd = Command::new(trellis_bin());
    cmd.arg("up")
        .arg(manifest)
        .args(["--http", "127.0.0.1:0"])
        .env("XDG_STATE_HOME", state);
    Trellis::start(cmd)
}

/// The CLI run in `dir`, with no lattice or endpoint named anywhere.
fn cli_in(dir: &Path, state: &Path, args: &[&str]) -> Exited {
    run_with(args, |cmd| {
        cmd.current_dir(dir)
            .env("XDG_STATE_HOME", state)
            .env_remove("TRELLIS_NATS")
            .env_remove("TRELLIS_ADMIN")
            .env_remove("TRELLIS_ADMIN_TOKEN");
    })
}

/// A raw HTTP/1.1 POST; the status code and body.
fn post(address: &str, path: &str, auth: Option<&str>) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    let auth = auth
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {address}\r\n{auth}Content-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    )
    .expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn the_control_endpoint_needs_its_token_and_the_cli_finds_it() {
    let state = tempfile::tempdir().expect("state");
    let first = tempfile::tempdir().expect("first");
    let second = tempfile::tempdir().expect("second");
    let elsewhere = tempfile::tempdir().expect("elsewhere");
    for dir in [&first, &second] {
        install_guest(dir.path(), "http_hello");
    }
    let one = up(
        &write_manifest(first.path(), &http_app("one", "http_hello", 1, "")),
        state.path(),
    );
    let two = up(
        &write_manifest(second.path(), &http_app("two", "http_hello", 1, "")),
        state.path(),
    );
    let (a, b) = (one.admin_address(), two.admin_address());
    assert_ne!(a, b, "each `trellis up` has its own endpoint");

    // The token is kept beside the manifest, for its owner only.
    let file = first.path().join(".trellis/up/app.json");
    let published: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).expect("endpoint file")).expect("JSON");
    assert_eq!(published["url"], format!("http://{a}"));
    let token = published["token"].as_str().expect("token").to_owned();
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).expect("file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // Without the token: 401, and nothing happens.
    let host_id = one
        .stdout
        .iter()
        .find_map(|l| l.split(" is running on host ").nth(1))
        .expect("host id")
        .trim()
        .to_owned();
    let (status, body) = post(&a, &format!("/v1/ctl/host.stop.{host_id}"), None);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("token"), "{body}");
    let (status, _) = post(&a, "/v1/ctl/host.ping", Some("not-the-token"));
    assert_eq!(status, 401);
    assert_eq!(get(one.addr(), "/").status, 200, "the host still serves");
    let (status, body) = post(&a, "/v1/ctl/host.ping", Some(&token));
    assert_eq!(status, 200, "{body}");

    // In each folder, no flag needed: the CLI finds that folder's `trellis up`.
    for (dir, app) in [(&first, "one"), (&second, "two")] {
        let out = cli_in(
            dir.path(),
            state.path(),
            &["get", "inventory", "-o", "json"],
        );
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        let inventory: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
        assert_eq!(inventory["components"][0]["id"], format!("{app}-web"));
    }
    // An address with no token at hand is refused with what to do.
    let out = cli_in(
        elsewhere.path(),
        state.path(),
        &[
            "get",
            "inventory",
            "--embedded",
            &a,
            "--admin-token",
            "wrong",
        ],
    );
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("needs its token") && out.stderr.contains("--admin-token"),
        "{}",
        out.stderr
    );
    // Elsewhere, `--embedded` says which ones run.
    let out = cli_in(
        elsewhere.path(),
        state.path(),
        &["get", "inventory", "--embedded"],
    );
    assert_eq!(out.code, Some(1));
    for dir in [&first, &second] {
        let manifest = dir.path().canonicalize().expect("path").join("app.yaml");
        assert!(
            out.stderr.contains(&manifest.display().to_string()),
            "{}",
            out.stderr
        );
    }

    // When it stops, its endpoint file goes.
    let mut one = one;
    assert_eq!(one.terminate(), Some(0));
    assert!(!file.exists(), "the endpoint file is removed at exit");
    let out = cli_in(
        elsewhere.path(),
        state.path(),
        &["get", "inventory", "--embedded"],
    );
    assert!(
        !out.stderr.contains(&first.path().display().to_string()),
        "{}",
        out.stderr
    );
}
