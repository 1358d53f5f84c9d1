//! `wasi:http/outgoing-handler` through the built-in HTTP client: requests reach an allowed
//! upstream over a reused connection, and everything else is refused before connecting.

mod common;

use common::*;
use std::net::TcpListener;
use std::time::Duration;

fn fetch_app(dir: &std::path::Path, provider_config: &str) -> std::path::PathBuf {
    install_guest(dir, "http_fetch");
    write_manifest(
        dir,
        &capability_app(
            "http_fetch",
            "ghcr.io/wasmcloud/http-client:0.13.1",
            ("wasi", "http", "outgoing-handler"),
            "",
            provider_config,
        ),
    )
}

#[test]
fn allowed_requests_go_through_on_a_reused_connection() {
    let upstream = Upstream::start();
    let port = upstream.port;
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = fetch_app(
        dir.path(),
        &format!("              allowed_hosts: 127.0.0.1:{port}\n"),
    );
    let trellis = Trellis::up(&manifest, &["--metrics", "127.0.0.1:0"]);
    let addr = trellis.addr();
    for i in 0..3 {
        let url = format!("http%3A%2F%2F127.0.0.1%3A{port}%2Fitem%2F{i}");
        let r = get(addr, &format!("/fetch?url={url}"));
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body, format!("status=200\nupstream saw /item/{i}"));
    }
    assert_eq!(
        upstream.connections(),
        1,
        "three sequential requests should share one pooled connection"
    );

    // Each request is an operation of the provider; one refused by the allow-list an error.
    let r = get(addr, "/fetch?url=http%3A%2F%2F127.0.0.2%3A1%2F");
    assert_eq!(r.status, 502, "{}", r.body);
    let scrape = metrics::scrape_metrics(metrics::metrics_addr(&trellis));
    assert_eq!(
        scrape.operations("http-client", "send", "ok"),
        3.0,
        "{}",
        scrape.text
    );
    assert_eq!(
        scrape.operations("http-client", "send", "error"),
        1.0,
        "{}",
        scrape.text
    );
    // Scaled from the command line, it keeps its link to the manifest's provider.
    let admin = trellis.admin_address();
    let scaled = run(&[
        "scale",
        "component",
        "capabilities-web",
        "--count",
        "7",
        "--embedded",
        &admin,
    ]);
    assert_eq!(scaled.code, Some(0), "{}", scaled.stderr);
    eventually(
        "the component runs 7 instances",
        Duration::from_secs(10),
        || {
            let out = run(&["get", "inventory", "--embedded", &admin, "-o", "json"]);
            out.stdout.contains("\"max_instances\": 7").then_some(())
        },
    );
    let url = format!("http%3A%2F%2F127.0.0.1%3A{port}%2Fafter-scale");
    let r = get(addr, &format!("/fetch?url={url}"));
    assert_eq!(r.body, "status=200\nupstream saw /after-scale");
}

#[test]
fn hosts_off_the_allow_list_are_refused_before_connecting() {
    let upstream = Upstream::start();
    let other = Upstream::start();
    let (port, other_port) = (upstream.port, other.port);
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = fetch_app(
        dir.path(),
        &format!("              allowed_hosts: 127.0.0.1:{port}\n"),
    );
    let trellis = Trellis::up(&manifest, &[]);
    let url = format!("http%3A%2F%2F127.0.0.1%3A{other_port}%2F");
    let r = get(trellis.addr(), &format!("/fetch?url={url}"));
    assert_eq!(r.status, 502, "{}", r.body);
    assert!(r.body.contains("HttpRequestDenied"), "{}", r.body);
    assert_eq!(other.connections(), 0);
    assert_eq!(upstream.connections(), 0);

    // A refused connection is an error value too, not a trap.
    let closed = free_port();
    let dir2 = tempfile::tempdir().expect("tempdir");
    let manifest = fetch_app(dir2.path(), "");
    let trellis = Trellis::up(&manifest, &[]);
    let url = format!("http%3A%2F%2F127.0.0.1%3A{closed}%2F");
    let r = get(trellis.addr(), &format!("/fetch?url={url}"));
    assert_eq!(r.status, 502, "{}", r.body);
    assert!(r.body.contains("ConnectionRefused"), "{}", r.body);

    // A name that does not resolve is a DNS error, as `wasmtime serve` reports it.
    let r = get(
        trellis.addr(),
        "/fetch?url=http%3A%2F%2Fno-such-host.invalid%2F",
    );
    assert_eq!(r.status, 502, "{}", r.body);
    assert!(r.body.contains("DnsError"), "{}", r.body);
}

/// The host's control endpoint is out of reach for components whatever `allowed_hosts`
/// says, by any name of this machine: the request is refused before a byte is sent, the host
/// keeps running and nothing changes.
#[test]
fn components_cannot_reach_the_hosts_control_endpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = fetch_app(
        dir.path(),
        "              allowed_hosts: 127.0.0.1,localhost\n",
    );
    let trellis = Trellis::up(&manifest, &[]);
    let admin = trellis.admin_address();
    let port = admin.rsplit_once(':').expect("port").1.to_owned();
    let before = run(&["get", "inventory", "--embedded", &admin, "-o", "json"]);
    assert_eq!(before.code, Some(0), "{}", before.stderr);
    for host in ["127.0.0.1", "localhost", "127.0.0.2"] {
        let url = format!("http%3A%2F%2F{host}%3A{port}%2Fv1%2Fevents");
        let r = get(trellis.addr(), &format!("/fetch?url={url}"));
        assert_eq!(r.status, 502, "{host}: {}", r.body);
        assert!(r.body.contains("HttpRequestDenied"), "{host}: {}", r.body);
    }
    trellis.wait_for_stderr("control surface; refused", Duration::from_secs(5));
    let after = run(&["get", "inventory", "--embedded", &admin, "-o", "json"]);
    assert_eq!(
        after.code,
        Some(0),
        "the host still answers: {}",
        after.stderr
    );
    let components = |out: &str| {
        serde_json::from_str::<serde_json::Value>(out).expect("JSON")["components"].clone()
    };
    assert_eq!(components(&before.stdout), components(&after.stdout));
}

#[test]
fn an_upstream_that_never_answers_times_out_with_an_error_code() {
    // Accepts connections and reads, but never writes a response.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = fetch_app(dir.path(), "              first_byte_timeout_ms: '300'\n");
    let trellis = Trellis::up(&manifest, &[]);
    let url = format!("http%3A%2F%2F127.0.0.1%3A{port}%2Fslow");
    let r = get(trellis.addr(), &format!("/fetch?url={url}"));
    assert_eq!(r.status, 502, "{}", r.body);
    assert!(r.body.contains("ConnectionReadTimeout"), "{}", r.body);
}
