//! Signed components: `trellis claims keygen|sign|inspect` through the real binary, and hosts
//! started with `--allowed-issuers` running a component signed by an allowed issuer and
//! refusing unsigned, foreign, tampered, expired and not-yet-valid ones with the reason: in
//! `trellis up`'s error, and on a lattice in `component_scale_failed` and `trellis app status`.

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// Runs `trellis ARGS`, which must succeed; its stdout.
fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert_eq!(out.code, Some(0), "trellis {args:?}: {}", out.stderr);
    out.stdout
}

/// A new account key: its seed file in `dir` and its public key.
fn account(dir: &Path, name: &str) -> (String, String) {
    let seed = dir.join(format!("{name}.nk"));
    let seed = seed.to_str().expect("utf-8").to_owned();
    let public = ok(&["claims", "keygen", "account", "--output", &seed])
        .trim()
        .to_owned();
    assert!(public.starts_with('A') && public.len() == 56, "{public}");
    (seed, public)
}

fn text(path: &Path) -> &str {
    path.to_str().expect("utf-8")
}

/// `trellis up MANIFEST --allowed-issuers ALLOWED`, which must refuse the app: its stderr.
fn up_refuses(manifest: &Path, allowed: &str) -> String {
    let out = run(&[
        "up",
        text(manifest),
        "--http",
        "127.0.0.1:0",
        "--admin",
        "off",
        "--allowed-issuers",
        allowed,
    ]);
    assert_eq!(out.code, Some(1), "expected a refusal: {}", out.stderr);
    assert!(!out.stdout.contains("listening on"), "{}", out.stdout);
    out.stderr
}

/// The signed guest with one byte of its greeting changed: still a valid component, but not
/// the code that was signed.
fn tamper(signed: &Path, to: &Path) {
    let mut bytes = std::fs::read(signed).expect("read signed");
    let at = bytes
        .windows(b"Hello from Trellis".len())
        .position(|w| w == b"Hello from Trellis")
        .expect("the greeting in the data segment");
    bytes[at + 1] = b'u';
    std::fs::write(to, bytes).expect("write tampered");
}

#[test]
fn hosts_with_allowed_issuers_run_only_what_those_issuers_signed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (seed, issuer) = account(dir.path(), "issuer");
    let (other_seed, other) = account(dir.path(), "other");
    let unsigned = install_guest(dir.path(), "http_hello");

    // Signed with the default output name, as wash names it.
    let signed_out = ok(&[
        "claims",
        "sign",
        text(&unsigned),
        "--issuer-key",
        &seed,
        "--name",
        "hello",
        "--ver",
        "1.0.0",
        "--rev",
        "2",
        "--tag",
        "web,demo",
    ]);
    let signed = dir.path().join("build/http_hello_s.wasm");
    assert!(signed.exists(), "{signed_out}");
    assert!(signed_out.contains(&issuer), "{signed_out}");

    // inspect: the claims and the checks, as text and JSON.
    let shown = ok(&["claims", "inspect", text(&signed)]);
    for want in [
        issuer.as_str(),
        "hello",
        "1.0.0",
        "web, demo",
        "never",
        "matches",
        "verdict    ok",
    ] {
        assert!(shown.contains(want), "inspect shows {want}: {shown}");
    }
    let json: Value =
        serde_json::from_str(&ok(&["claims", "inspect", text(&signed), "-o", "json"]))
            .expect("JSON");
    assert_eq!(json["signed"], true);
    assert_eq!(json["claims"]["issuer"], issuer.as_str());
    assert_eq!(json["claims"]["revision"], 2);
    assert_eq!(json["hash"], "matches");
    assert_eq!(json["signature_valid"], true);
    assert_eq!(json["problem"], Value::Null);
    assert!(
        json["claims"]["subject"]
            .as_str()
            .is_some_and(|s| s.starts_with('M'))
    );
    let json: Value =
        serde_json::from_str(&ok(&["claims", "inspect", text(&unsigned), "-o", "json"]))
            .expect("JSON");
    assert_eq!(json["signed"], false);

    // Allowed: it runs and serves (the list may hold other keys too).
    let manifest = write_manifest(dir.path(), &http_app("signed", "http_hello_s", 1, ""));
    let allowed = format!("{other},{issuer}");
    let up = Trellis::up(&manifest, &["--allowed-issuers", &allowed]);
    let response = get(up.addr(), "/");
    assert_eq!(response.status, 200);
    assert_eq!(response.body, "Hello from Trellis!\n");
    drop(up);

    // Unsigned: refused, saying how to sign it.
    let manifest = write_manifest(dir.path(), &http_app("unsigned", "http_hello", 1, ""));
    let err = up_refuses(&manifest, &issuer);
    assert!(
        err.contains("component `web`") && err.contains("is refused: it is not signed"),
        "{err}"
    );
    assert!(err.contains("trellis claims sign"), "the hint: {err}");

    // Signed by another issuer: refused, naming it and the allowed ones.
    let foreign = dir.path().join("build/foreign.wasm");
    ok(&[
        "claims",
        "sign",
        text(&unsigned),
        "--issuer-key",
        &other_seed,
        "--output",
        text(&foreign),
    ]);
    let manifest = write_manifest(dir.path(), &http_app("foreign", "foreign", 1, ""));
    let err = up_refuses(&manifest, &issuer);
    assert!(
        err.contains(&format!(
            "signed by issuer {other}, which this host does not allow (allowed: {issuer})"
        )),
        "{err}"
    );

    // Modified after signing: refused with a hash mismatch; inspect says so too.
    let tampered = dir.path().join("build/tampered.wasm");
    tamper(&signed, &tampered);
    let shown = ok(&["claims", "inspect", text(&tampered)]);
    assert!(shown.contains("MISMATCH"), "{shown}");
    let manifest = write_manifest(dir.path(), &http_app("tampered", "tampered", 1, ""));
    let err = up_refuses(&manifest, &issuer);
    assert!(
        err.contains("modified after signing (hash mismatch)"),
        "{err}"
    );
    // The change is real code, and still a component: without the policy it runs, changed.
    let up = Trellis::up(&manifest, &[]);
    assert_eq!(get(up.addr(), "/").body, "Hullo from Trellis!\n");
    drop(up);

    // Expired, and not valid yet: refused with the time.
    let expired = dir.path().join("build/expired.wasm");
    let out = run(&[
        "claims",
        "sign",
        text(&unsigned),
        "--issuer-key",
        &seed,
        "--expires-at",
        "2020-01-01T00:00:00Z",
        "--output",
        text(&expired),
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stderr.contains("expired already"), "{}", out.stderr);
    let manifest = write_manifest(dir.path(), &http_app("expired", "expired", 1, ""));
    let err = up_refuses(&manifest, &issuer);
    assert!(
        err.contains("its signature expired at 2020-01-01T00:00:00Z"),
        "{err}"
    );
    let early = dir.path().join("build/early.wasm");
    ok(&[
        "claims",
        "sign",
        text(&unsigned),
        "--issuer-key",
        &seed,
        "--valid-in",
        "1d",
        "--output",
        text(&early),
    ]);
    let manifest = write_manifest(dir.path(), &http_app("early", "early", 1, ""));
    let err = up_refuses(&manifest, &issuer);
    assert!(err.contains("is not valid yet: not before"), "{err}");

    // Signing in place replaces the signature: the foreign component is now the issuer's.
    ok(&[
        "claims",
        "sign",
        text(&foreign),
        "--issuer-key",
        &seed,
        "--output",
        text(&foreign),
    ]);
    let json: Value =
        serde_json::from_str(&ok(&["claims", "inspect", text(&foreign), "-o", "json"]))
            .expect("JSON");
    assert_eq!(json["claims"]["issuer"], issuer.as_str());
    assert_eq!(json["hash"], "matches");

    // A key that is not an account key is refused at start.
    let out = run(&["up", text(&manifest), "--allowed-issuers", "MNOTANACCOUNT"]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("account public keys"), "{}", out.stderr);
}

/// On a lattice, a refused component's reason reaches `component_scale_failed` and the app's
/// status; a signed one runs and its claims are answered by `claims.get`.
#[test]
fn lattice_hosts_say_why_they_refused_a_component() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nats = NatsServer::start(free_port(), &dir.path().join("nats"));
    let url = nats.url();
    let lattice = "claims";
    let (seed, issuer) = account(dir.path(), "issuer");
    install_guest(dir.path(), "http_hello");
    let allowed = format!("--allowed-issuers={issuer}");
    let _host = LatticeHost::start(&url, lattice, &[&allowed]);
    let with = |args: &[&str]| -> Vec<String> {
        let mut all: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        all.extend([
            "--nats".into(),
            url.clone(),
            "--lattice".into(),
            lattice.into(),
        ]);
        all
    };
    let events_args = with(&["events"]);
    let events = Watching::start(&events_args.iter().map(String::as_str).collect::<Vec<_>>());
    let cli = |args: &[&str]| -> String {
        let all = with(args);
        ok(&all.iter().map(String::as_str).collect::<Vec<_>>())
    };

    let manifest = write_manifest(dir.path(), &http_app("unsigned", "http_hello", 1, ""));
    cli(&["app", "deploy", text(&manifest)]);
    let failed = eventually("component_scale_failed", Duration::from_secs(20), || {
        events
            .lines()
            .into_iter()
            .find(|l| l.contains("component_scale_failed"))
    });
    assert!(failed.contains("it is not signed"), "{failed}");
    let status = eventually("the app's status says why", Duration::from_secs(20), || {
        let status = cli(&["app", "status", "unsigned"]);
        status.contains("it is not signed").then_some(status)
    });
    assert!(status.contains("trellis claims sign"), "{status}");

    // Signed by the allowed issuer: it runs, and claims.get answers its claims.
    ok(&[
        "claims",
        "sign",
        text(&dir.path().join("build/http_hello.wasm")),
        "--issuer-key",
        &seed,
        "--name",
        "hello",
    ]);
    let manifest = write_manifest(
        dir.path(),
        &http_app("signed", "http_hello_s", 1, "").replace("127.0.0.1:8000", "127.0.0.1:0"),
    );
    cli(&["app", "deploy", text(&manifest)]);
    let claims = eventually("claims.get answers", Duration::from_secs(20), || {
        let claims: Value = serde_json::from_str(&cli(&["get", "claims", "-o", "json"])).ok()?;
        claims
            .as_array()
            .filter(|c| !c.is_empty())
            .map(|c| c[0].clone())
    });
    assert_eq!(claims["issuer"], issuer.as_str(), "{claims}");
    assert_eq!(claims["name"], "hello", "{claims}");
}
