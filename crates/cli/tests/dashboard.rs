//! The web dashboard, in Debian's Chromium (tests/browser/dashboard.mjs), against the real
//! binary: served by `trellis up` on its control endpoint, and by `trellis dashboard` for a
//! lattice on a real NATS. Screenshots land in trellis_test_support::browser::artefacts_dir().

mod common;

use common::*;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

/// The `dashboard on …` address a command printed.
fn dashboard_url(stdout: &[String]) -> String {
    stdout
        .iter()
        .find_map(|l| l.strip_prefix("dashboard on "))
        .unwrap_or_else(|| panic!("no dashboard line in {stdout:?}"))
        .trim()
        .to_owned()
}

/// `GET path` on `url`'s server with `token` (if any): the status and the body.
fn get_with(url: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let address = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .expect("host:port");
    let mut stream = TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\n{auth}Connection: close\r\n\r\n"
    )
    .expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn token_of(url: &str) -> &str {
    url.split_once("#token=").expect("a #token= fragment").1
}

/// `trellis up` with a component running and a Redis provider with a bad URL: the
/// page lists the component with its limit, shows the provider as failed with the reason
/// `trellis up` printed, and follows a `trellis scale` without a reload.
#[test]
fn the_embedded_hosts_dashboard_shows_its_app_and_follows_a_scale() {
    let dir = tempfile::tempdir().expect("tempdir");
    install_guest(dir.path(), "kv_counter");
    // A Redis URL that is no URL fails the provider at start (a closed port would only
    // make it unhealthy at its first health check).
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
    let url = dashboard_url(&trellis.stdout);
    let admin = trellis.admin_url();
    assert!(
        url.starts_with(&format!("{admin}/#token=")),
        "{url} is not on {admin}"
    );
    let reason = trellis
        .stdout
        .iter()
        .find_map(|l| l.strip_prefix("capability `cap` failed: "))
        .unwrap_or_else(|| panic!("the provider did not fail: {:?}", trellis.stdout))
        .to_owned();

    // The API needs the token; the control interface still answers on its own routes.
    let token = token_of(&url);
    assert_eq!(get_with(&url, "/api/snapshot", None).0, 401);
    assert_eq!(get_with(&url, "/api/snapshot", Some("not-it")).0, 401);
    let (status, body) = get_with(&url, "/api/snapshot", Some(token));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("capabilities-web"), "{body}");
    assert_eq!(get_with(&url, "/nothing-here", Some(token)).0, 404);
    assert_eq!(get_with(&url, "/v1/events-typo", Some(token)).0, 404);
    assert_eq!(get_with(&url, "/v1/nothing", None).0, 401);

    let scale = serde_json::to_string(&[
        trellis_bin(),
        "scale",
        "component",
        "capabilities-web",
        "--count",
        "7",
        "--embedded",
        &admin,
    ])
    .expect("JSON");
    let out = trellis_test_support::browser::run(
        "dashboard.mjs",
        &[
            ("DASHBOARD_URL", &url),
            ("MODE", "embedded"),
            ("COMPONENT_ID", "capabilities-web"),
            ("COMPONENT_URL", &format!("http://{}/", trellis.addr())),
            ("MAX_INSTANCES", "4"),
            ("PROVIDER_ID", "capabilities-cap"),
            ("PROVIDER_REASON", &reason),
            ("SCALE_COMMAND", &scale),
            ("SCALED_TO", "7"),
        ],
    );
    assert!(out.contains("ok"), "{out}");
    assert!(
        trellis_test_support::browser::artefacts_dir()
            .join("dashboard-embedded-scaled.png")
            .is_file()
    );
}

/// `trellis dashboard` for a lattice on NATS lists its host with the host's labels.
#[test]
fn trellis_dashboard_shows_a_lattices_hosts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nats = NatsServer::start(free_port(), dir.path());
    let lattice = format!("dash{}", std::process::id());
    let host = LatticeHost::start(&nats.url(), &lattice, &["--label", "zone=eu-1"]);

    let mut cmd = Command::new(trellis_bin());
    cmd.args([
        "dashboard",
        "--listen",
        "127.0.0.1:0",
        "--nats",
        &nats.url(),
        "--lattice",
        &lattice,
    ]);
    let mut dashboard = Trellis::start_until(cmd, "dashboard on ");
    let url = dashboard_url(&dashboard.stdout);
    assert_eq!(get_with(&url, "/api/events", None).0, 401);
    assert_eq!(get_with(&url, "/api/nothing", Some(token_of(&url))).0, 404);

    let out = trellis_test_support::browser::run(
        "dashboard.mjs",
        &[
            ("DASHBOARD_URL", &url),
            ("MODE", "lattice"),
            ("HOST_ID", &host.id),
            ("LABEL", "zone=eu-1"),
        ],
    );
    assert!(out.contains("ok"), "{out}");

    // Ctrl-C stops it at once, even with a page's event stream open a moment ago.
    let started = std::time::Instant::now();
    assert_eq!(dashboard.terminate(), Some(0), "{}", dashboard.stderr());
    assert!(started.elapsed() < Duration::from_secs(5));
}
