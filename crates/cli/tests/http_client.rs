//! `wasi:http/outgoing-handler` through the built-in HTTP client: requests reach an allowed
//! upstream over a reused connection, and everything else is refused before connecting.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A keep-alive HTTP/1.1 upstream that counts the connections it accepts.
fn upstream() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { break };
            counter.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut writer = stream;
                loop {
                    let mut request_line = String::new();
                    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut length = 0;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    let path = request_line
                        .split_whitespace()
                        .nth(1)
                        .unwrap_or("")
                        .to_owned();
                    let reply = format!("upstream saw {path}");
                    let _ = write!(
                        writer,
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{reply}",
                        reply.len()
                    );
                }
            });
        }
    });
    (port, connections)
}

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
    let (port, connections) = upstream();
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = fetch_app(
        dir.path(),
        &format!("              allowed_hosts: 127.0.0.1:{port}\n"),
    );
    let trellis = Trellis::up(&manifest, &[]);
    let addr = trellis.addr();
    for i in 0..3 {
        let url = format!("http%3A%2F%2F127.0.0.1%3A{port}%2Fitem%2F{i}");
        let r = get(addr, &format!("/fetch?url={url}"));
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body, format!("status=200\nupstream saw /item/{i}"));
    }
    assert_eq!(
        connections.load(Ordering::SeqCst),
        1,
        "three sequential requests should share one pooled connection"
    );
}

#[test]
fn hosts_off_the_allow_list_are_refused_before_connecting() {
    let (port, connections) = upstream();
    let (other_port, other_connections) = upstream();
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
    assert_eq!(other_connections.load(Ordering::SeqCst), 0);
    assert_eq!(connections.load(Ordering::SeqCst), 0);

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
