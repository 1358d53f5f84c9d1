//! Strict mode: a host started with `--require-signed-control` answers only control and app
//! requests signed by a trusted key, recently and once. Unsigned, wrongly signed, stale and
//! replayed requests are refused with a reason and change nothing; the CLI signing with a
//! trusted key works, and the host's own reconciler (signing with the host's key) deploys.

mod common;

use common::*;
use std::time::Duration;
use trellis_lattice::signing::Signer;

const LATTICE: &str = "strict";

fn key() -> (String, String) {
    let out = run(&["control-key"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let seed = out.stdout.trim().to_owned();
    let public = out
        .stderr
        .split_whitespace()
        .find(|w| w.starts_with('U') && w.len() == 56)
        .expect("public key")
        .to_owned();
    let again = run(&["control-key", "--public", &seed]);
    assert_eq!(again.stdout.trim(), public);
    (seed, public)
}

#[test]
fn a_strict_host_answers_only_requests_signed_by_a_trusted_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nats = NatsServer::start(free_port(), &dir.path().join("nats"));
    let (admin_seed, admin_public) = key();
    let (host_seed, host_public) = key();
    let trusted = format!("{admin_public},{host_public}");
    let host = LatticeHost::start(
        &nats.url(),
        LATTICE,
        &[
            "--require-signed-control",
            "--trusted-control-keys",
            &trusted,
            "--control-key",
            &host_seed,
            "--reconcile-interval",
            "1s",
        ],
    );
    let url = nats.url();
    let cli = |key: Option<&str>, args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--nats", url.as_str(), "--lattice", LATTICE]);
        if let Some(key) = key {
            all.extend(["--control-key", key]);
        }
        run(&all)
    };

    // Signed by a trusted key: answered.
    let out = cli(Some(&admin_seed), &["get", "hosts"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.contains(&host.id), "{}", out.stdout);
    let out = cli(Some(&admin_seed), &["config", "put", "signed", "k=v"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);

    // Unsigned: refused, saying how to sign, and nothing is stored.
    let out = cli(None, &["get", "hosts"]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("requires signed control requests"),
        "{}",
        out.stderr
    );
    let out = cli(None, &["config", "put", "unsigned", "k=v"]);
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert!(
        out.stderr.contains("requires signed control requests"),
        "{}",
        out.stderr
    );
    let out = cli(None, &["app", "list"]);
    assert_eq!(out.code, Some(1), "the app API too: {}", out.stdout);
    // A key the host does not trust: refused.
    let (stranger, stranger_public) = key();
    let out = cli(Some(&stranger), &["config", "put", "stranger", "k=v"]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains(&stranger_public) && out.stderr.contains("does not trust"),
        "{}",
        out.stderr
    );
    let out = cli(Some(&admin_seed), &["get", "config", "unsigned"]);
    assert!(
        out.stderr.contains("no config named `unsigned`"),
        "{}",
        out.stderr
    );
    let out = cli(Some(&admin_seed), &["get", "config", "stranger"]);
    assert!(
        out.stderr.contains("no config named `stranger`"),
        "{}",
        out.stderr
    );

    // Stale and replayed requests, built by hand with a plain NATS client.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let client = async_nats::connect(nats.url()).await.expect("connect");
        let signer = Signer::from_seed(&admin_seed).expect("seed");
        let subject = format!("wasmbus.ctl.v1.{LATTICE}.config.put.replayed");
        let body = br#"{"k":"v"}"#.to_vec();
        let ask = |headers: async_nats::HeaderMap| {
            let (client, subject, body) = (client.clone(), subject.clone(), body.clone());
            async move {
                let reply = client
                    .request_with_headers(subject, headers, body.into())
                    .await
                    .expect("reply");
                serde_json::from_slice::<serde_json::Value>(&reply.payload).expect("JSON")
            }
        };
        let headers = signer.headers(&subject, &body);
        let first = ask(headers.clone()).await;
        assert_eq!(first["success"], true, "{first}");
        let again = ask(headers).await;
        assert_eq!(again["success"], false, "{again}");
        assert!(
            again["message"]
                .as_str()
                .unwrap_or_default()
                .contains("already used"),
            "{again}"
        );
        let old = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as u64
            - 10 * 60 * 1000;
        let stale = ask(signer.headers_at(&subject, &body, old)).await;
        assert_eq!(stale["success"], false, "{stale}");
        assert!(
            stale["message"]
                .as_str()
                .unwrap_or_default()
                .contains("check the clocks"),
            "{stale}"
        );
    });

    // The host's reconciler signs its own requests: an app deploys and serves.
    install_guest(dir.path(), "http_hello");
    let port = free_port();
    let manifest = write_manifest(
        dir.path(),
        &http_app("signed", "http_hello", 1, "")
            .replace("127.0.0.1:8000", &format!("127.0.0.1:{port}")),
    );
    let out = cli(
        Some(&admin_seed),
        &["app", "deploy", manifest.to_str().expect("utf-8")],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    eventually("the app to serve", Duration::from_secs(30), || {
        try_request(addr, "GET", "/", b"")
            .ok()
            .filter(|r| r.status == 200)
            .map(|_| ())
    });
}
