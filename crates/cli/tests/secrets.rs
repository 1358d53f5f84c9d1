//! Secrets end to end through the real binary: `trellis secret` seals values on the client,
//! stores keep only ciphertext (the embedded project's `.trellis/secrets.json`, a real
//! nats-server's JetStream files), hosts reveal them to components through
//! `wasmcloud:secrets@0.1.0-draft` (the `secrets-reader` guest) and to providers through
//! their config (a password-protected redis-server), and the value shows up nowhere else:
//! not in inventory, events, logs, `get config`, app status, listings or error messages.

mod common;

use common::*;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Runs `trellis ARGS` with `stdin` piped in.
fn run_with_stdin(args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Exited {
    let mut child = Command::new(trellis_bin())
        .args(args)
        .envs(env.iter().copied())
        .env("TRELLIS_CACHE_DIR", shared_cache_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn trellis");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    Exited {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn ok(out: Exited, what: &str) -> Exited {
    assert_eq!(out.code, Some(0), "{what}: {}{}", out.stdout, out.stderr);
    out
}

/// Every file under `dir`, read as bytes.
fn files_contain(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if std::fs::read(&path)
                .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
            {
                hits.push(path.display().to_string());
            }
        }
    }
    hits
}

/// The app: `secrets-reader` with two secrets (one a field of a JSON secret) and plain
/// config, served over HTTP on `address`.
fn reader_app(address: &str, extra_secret: &str) -> String {
    format!(
        r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: vault
spec:
  policies:
    - name: nats-kv
      type: policy.secret.wasmcloud.dev/v1alpha1
      properties:
        backend: nats-kv
  components:
    - name: web
      type: component
      properties:
        image: file://./build/secrets_reader.wasm
        config:
          - name: plain
            properties:
              greeting: hello
        secrets:
          - name: api_password
            properties:
              policy: nats-kv
              key: api_password
          - name: db_password
            properties:
              policy: nats-kv
              key: db_creds
              field: password
{extra_secret}      traits:
        - type: spreadscaler
          properties:
            instances: 2
    - name: httpserver
      type: capability
      properties:
        image: ghcr.io/wasmcloud/http-server:0.27.0
      traits:
        - type: link
          properties:
            target:
              name: web
            namespace: wasi
            package: http
            interfaces: [incoming-handler]
            source:
              config:
                - name: vault-http
                  properties:
                    address: {address}
"#
    )
}

fn assert_hidden(value: &str, text: &str, what: &str) {
    assert!(
        !text.contains(value),
        "the secret's value appears in {what}:\n{text}"
    );
}

#[test]
fn embedded_components_read_their_secrets_and_the_value_shows_up_nowhere_else() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_str().expect("utf-8");
    let password = format!("opensesame-{}", std::process::id());
    let db_password = format!("db-pw-{}", std::process::id());
    install_guest(dir.path(), "secrets_reader");

    // Before `trellis up`: straight into the project's store, value on stdin.
    let put = ok(
        run_with_stdin(
            &["secret", "put", "api_password", "--local", root],
            format!("{password}\n").as_bytes(),
            &[],
        ),
        "secret put",
    );
    assert!(put.stderr.contains("version 1"), "{}", put.stderr);
    let creds = format!(r#"{{"user":"app","password":"{db_password}"}}"#);
    ok(
        run_with_stdin(
            &["secret", "put", "db_creds", "--local", root],
            creds.as_bytes(),
            &[],
        ),
        "secret put json",
    );
    let trellis_dir = dir.path().join(".trellis");
    for value in [&password, &db_password] {
        assert_eq!(
            files_contain(&trellis_dir, value.as_bytes()),
            Vec::<String>::new(),
            "stored in clear"
        );
    }

    let manifest = write_manifest(dir.path(), &reader_app("127.0.0.1:8000", ""));
    let mut cmd = Command::new(trellis_bin());
    cmd.arg("up")
        .arg(&manifest)
        .args(["--http", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
        .env("TRELLIS_LOG", "debug");
    let trellis = Trellis::start(cmd);
    let admin = trellis.admin_url();

    let r = get(trellis.addr(), "/secret?name=api_password");
    assert_eq!((r.status, r.body.as_str()), (200, password.as_str()));
    let r = get(trellis.addr(), "/secret?name=db_password");
    assert_eq!((r.status, r.body.as_str()), (200, db_password.as_str()));
    let r = get(trellis.addr(), "/secret?name=db_creds");
    assert_eq!(
        (r.status, r.body.as_str()),
        (404, "not-found"),
        "a component gets secrets by the names its manifest gave, not by stored key"
    );
    let config = get(trellis.addr(), "/config");
    assert_eq!(config.status, 200);
    assert!(config.body.contains("greeting=hello"), "{}", config.body);
    assert_hidden(&password, &config.body, "wasi:config");
    assert_hidden(&db_password, &config.body, "wasi:config");

    // Every way of looking at the host, through the control interface.
    let embedded = ["--embedded", admin.as_str()];
    let look = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(embedded);
        ok(run(&all), &format!("{args:?}"))
    };
    let mut seen = String::new();
    // The reconciler puts the app's config (the references among it) shortly after start.
    eventually(
        "the references in the config store",
        Duration::from_secs(20),
        || {
            let mut all = vec!["get", "config", "SECRET_vault_db_password"];
            all.extend(embedded);
            (run(&all).code == Some(0)).then_some(())
        },
    );
    for args in [
        &["get", "inventory", "-o", "json"][..],
        &["get", "inventory"],
        &["get", "config", "SECRET_vault_api_password", "-o", "json"],
        &["get", "config", "SECRET_vault_db_password"],
        &["app", "status", "vault", "-o", "json"],
        &["app", "list", "-o", "json"],
        &["secret", "list", "-o", "json"],
        &["secret", "list"],
    ] {
        let out = look(args);
        seen.push_str(&out.stdout);
        seen.push_str(&out.stderr);
    }
    // The reference is visible, and says where the value comes from.
    assert!(seen.contains("\"key\": \"api_password\""), "{seen}");
    assert!(seen.contains("db_creds"), "{seen}");
    // A version bump through the running host, with the value again on stdin.
    let mut put_args = vec!["secret", "put", "api_password"];
    put_args.extend(embedded);
    let put = ok(
        run_with_stdin(&put_args, password.as_bytes(), &[]),
        "secret put --embedded",
    );
    assert!(put.stderr.contains("version 2"), "{}", put.stderr);
    seen.push_str(&put.stderr);

    // A second app asking for a secret nobody stored, and one at a version that is gone:
    // the errors say what to do and carry no value.
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).expect("mkdir");
    install_guest(&other, "secrets_reader");
    let missing = reader_app(
        "127.0.0.1:0",
        "          - name: token\n            properties:\n              policy: nats-kv\n              key: never_stored\n",
    )
    .replace("name: vault", "name: vault2");
    let missing_path = other.join("app.yaml");
    std::fs::write(&missing_path, &missing).expect("write");
    let mut deploy = vec!["app", "deploy", missing_path.to_str().expect("utf-8")];
    deploy.extend(embedded);
    let refused = run(&deploy);
    let text = format!("{}{}", refused.stdout, refused.stderr);
    // Deploying is accepted; starting the component fails, and the host says why (in its
    // log and in the `component_scale_failed` event).
    let status = trellis.wait_for_stderr(
        "secret `never_stored` is not stored; put it with `trellis secret put never_stored`",
        Duration::from_secs(30),
    );
    seen.push_str(&status);
    seen.push_str(&text);

    seen.push_str(&trellis.stderr());
    for value in [&password, &db_password] {
        assert_hidden(
            value,
            &seen,
            "the control interface's answers or the host's log",
        );
    }
    for value in [&password, &db_password] {
        assert_eq!(
            files_contain(&trellis_dir, value.as_bytes()),
            Vec::<String>::new(),
            "stored in clear after the update"
        );
    }
}

#[test]
fn a_provider_reads_its_secret_from_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_str().expect("utf-8");
    let port = free_port();
    let password = format!("redis-pw-{}", std::process::id());
    let mut cmd = Command::new("redis-server");
    cmd.args([
        "--port",
        &port.to_string(),
        "--save",
        "",
        "--appendonly",
        "no",
        "--requirepass",
        &password,
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    let mut redis = cmd.spawn().expect("redis-server");
    eventually("redis-server", Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    let url = format!("redis://:{password}@127.0.0.1:{port}");
    ok(
        run_with_stdin(
            &["secret", "put", "redis_url", "--local", root],
            url.as_bytes(),
            &[],
        ),
        "secret put",
    );
    install_guest(dir.path(), "kv_ops");
    // The link's target gets the secret under the name `url`: the key-value provider's
    // config key for where Redis is.
    let manifest = capability_app(
        "kv_ops",
        "ghcr.io/wasmcloud/keyvalue-redis:0.28.1",
        ("wasi", "keyvalue", "store, atomics, batch"),
        "",
        "",
    )
    .replace(
        "            target:\n              name: cap\n",
        "            target:\n              name: cap\n              secrets:\n                - name: url\n                  properties:\n                    policy: store\n                    key: redis_url\n",
    )
    .replace(
        "spec:\n",
        "spec:\n  policies:\n    - name: store\n      type: policy.secret.wasmcloud.dev/v1alpha1\n      properties:\n        backend: nats-kv\n",
    );
    let manifest = write_manifest(dir.path(), &manifest);
    let mut cmd = Command::new(trellis_bin());
    cmd.arg("up")
        .arg(&manifest)
        .args(["--http", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
        .env("TRELLIS_LOG", "debug");
    let trellis = Trellis::start(cmd);
    let put = request(trellis.addr(), "PUT", "/set?key=greeting", b"hi");
    assert_eq!(put.status, 204, "{}", put.body);
    let got = get(trellis.addr(), "/get?key=greeting");
    assert_eq!((got.status, got.body.as_str()), (200, "hi"));
    // It really is the password-protected server.
    let out = Command::new("redis-cli")
        .args([
            "-p",
            &port.to_string(),
            "-a",
            &password,
            "--no-auth-warning",
            "get",
            "greeting",
        ])
        .output()
        .expect("redis-cli");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hi");
    assert_hidden(&password, &trellis.stderr(), "the host's log");
    let _ = redis.kill();
    let _ = redis.wait();
}

#[test]
fn lattice_hosts_open_secrets_sealed_by_the_cli_and_jetstream_keeps_only_ciphertext() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nats = NatsServer::start(free_port(), &dir.path().join("nats"));
    let url = nats.url();
    let lattice = "secrets";
    let with = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--nats", url.as_str(), "--lattice", lattice]);
        all.iter().map(|s| (*s).to_owned()).collect::<Vec<String>>()
    };
    let cli = |args: &[&str]| {
        let all = with(args);
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        run(&all)
    };

    // Nothing can be sealed before any host holds the lattice's key: a host started without
    // one answers, and says how to make one.
    let keyless = LatticeHost::start(&url, lattice, &[]);
    let early = run_with_stdin(
        &with(&["secret", "put", "x"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        b"v",
        &[],
    );
    assert_ne!(early.code, Some(0));
    assert!(
        early.stderr.contains("trellis secret keygen"),
        "{}",
        early.stderr
    );
    drop(keyless);

    let seed = ok(run(&["secret", "keygen"]), "keygen")
        .stdout
        .trim()
        .to_owned();
    assert!(seed.starts_with("SX"), "{seed}");
    let events = Watching::start(
        &with(&["events"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let mut host_cmd = Command::new(trellis_bin());
    host_cmd
        .args(["host", "--nats", &url, "--lattice", lattice])
        .env("TRELLIS_SECRETS_KEY", &seed)
        .env("TRELLIS_LOG", "debug");
    let host = Trellis::start_until(host_cmd, "host ");

    let password = format!("lattice-pw-{}", std::process::id());
    let db_password = format!("lattice-db-{}", std::process::id());
    let put_args = with(&["secret", "put", "api_password"]);
    let put_args: Vec<&str> = put_args.iter().map(String::as_str).collect();
    ok(run_with_stdin(&put_args, password.as_bytes(), &[]), "put");
    let db = format!(r#"{{"password":"{db_password}"}}"#);
    let db_args = with(&["secret", "put", "db_creds"]);
    let db_args: Vec<&str> = db_args.iter().map(String::as_str).collect();
    ok(run_with_stdin(&db_args, db.as_bytes(), &[]), "put json");

    install_guest(dir.path(), "secrets_reader");
    let port = free_port();
    let manifest = write_manifest(dir.path(), &reader_app(&format!("127.0.0.1:{port}"), ""));
    ok(
        cli(&["app", "deploy", manifest.to_str().expect("utf-8")]),
        "deploy",
    );
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let r = eventually("the secret over HTTP", Duration::from_secs(30), || {
        try_request(addr, "GET", "/secret?name=api_password", b"")
            .ok()
            .filter(|r| r.status == 200)
    });
    assert_eq!(r.body, password);
    let r = get(addr, "/secret?name=db_password");
    assert_eq!((r.status, r.body.as_str()), (200, db_password.as_str()));

    // A host with another key refuses to join rather than fail later.
    let other = ok(run(&["secret", "keygen"]), "keygen")
        .stdout
        .trim()
        .to_owned();
    let wrong = Command::new(trellis_bin())
        .args(["host", "--nats", &url, "--lattice", lattice])
        .env("TRELLIS_SECRETS_KEY", &other)
        .env("TRELLIS_CACHE_DIR", shared_cache_dir())
        .stdin(Stdio::null())
        .output()
        .expect("run host");
    assert_ne!(wrong.status.code(), Some(0));
    let wrong_err = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        wrong_err.contains("same TRELLIS_SECRETS_KEY"),
        "{wrong_err}"
    );

    let mut seen = String::new();
    for args in [
        &["get", "inventory", "-o", "json"][..],
        &["get", "config", "SECRET_vault_api_password", "-o", "json"],
        &["app", "status", "vault", "-o", "json"],
        &["secret", "list", "-o", "json"],
    ] {
        let out = ok(cli(args), &format!("{args:?}"));
        seen.push_str(&out.stdout);
    }
    assert!(seen.contains("api_password"), "{seen}");
    seen.push_str(&events.lines().join("\n"));
    seen.push_str(&host.stderr());
    assert!(!events.lines().is_empty(), "events were seen");
    for value in [&password, &db_password] {
        assert_hidden(
            value,
            &seen,
            "the lattice's answers, events or the host's log",
        );
        assert_eq!(
            files_contain(&dir.path().join("nats"), value.as_bytes()),
            Vec::<String>::new(),
            "JetStream keeps the value in clear"
        );
    }
}
