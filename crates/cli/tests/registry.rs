//! `trellis push|pull|inspect` against a real registry (`docker-registry`).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{Exited, shared_cache_dir, trellis_bin};
use trellis_test_support::registry::RegistryServer;

/// Runs `trellis ARGS` with its own image cache, no credentials from the environment (an
/// empty Docker config), plus `env`.
fn trellis(args: &[&str], home: &Path, env: &[(&str, &str)]) -> Exited {
    let mut cmd = Command::new(trellis_bin());
    cmd.args(args)
        .env("TRELLIS_CACHE_DIR", shared_cache_dir())
        .env("TRELLIS_IMAGE_CACHE_DIR", home.join("oci"))
        .env("DOCKER_CONFIG", home.join("docker"))
        .env_remove("TRELLIS_REGISTRY_USER")
        .env_remove("TRELLIS_REGISTRY_PASSWORD")
        .current_dir(home)
        .stdin(Stdio::null());
    for (key, value) in env {
        cmd.env(key, value);
    }
    let out = cmd.output().expect("run trellis");
    Exited {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn hello() -> String {
    trellis_test_support::guest("http_hello")
        .to_string_lossy()
        .into_owned()
}

fn is_digest(text: &str) -> bool {
    text.strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[test]
fn push_pull_and_inspect_a_component() {
    let server = RegistryServer::start();
    let home = tempfile::tempdir().expect("tempdir");
    let reference = server.reference("demo/hello:0.1.0");
    let wasm = hello();

    let pushed = trellis(
        &[
            "push",
            &reference,
            &wasm,
            "--annotation",
            "org.opencontainers.image.description=hello",
            "--source",
            "https://example.com/hello",
        ],
        home.path(),
        &[],
    );
    assert_eq!(pushed.code, Some(0), "{}", pushed.stderr);
    let digest = pushed.stdout.trim().to_string();
    assert!(
        is_digest(&digest),
        "stdout is the digest: {:?}",
        pushed.stdout
    );
    assert_eq!(pushed.stdout.lines().count(), 1);
    // Not a terminal: no progress bar, nothing at all on stderr.
    assert!(
        pushed.stderr.trim().is_empty(),
        "no progress bar without a TTY: {:?}",
        pushed.stderr
    );

    // Pull with a fresh cache, into the default file name.
    let other = tempfile::tempdir().expect("tempdir");
    let pulled = trellis(&["pull", &reference], other.path(), &[]);
    assert_eq!(pulled.code, Some(0), "{}", pulled.stderr);
    assert_eq!(pulled.stdout.trim(), digest);
    assert_eq!(
        std::fs::read(other.path().join("hello.wasm")).expect("hello.wasm written"),
        std::fs::read(&wasm).expect("guest")
    );
    let out = other.path().join("elsewhere.wasm");
    let pulled = trellis(
        &["pull", &reference, "-o", &out.to_string_lossy()],
        other.path(),
        &[],
    );
    assert_eq!(pulled.code, Some(0), "{}", pulled.stderr);
    assert!(out.is_file());

    let inspected = trellis(&["inspect", &reference], home.path(), &[]);
    assert_eq!(inspected.code, Some(0), "{}", inspected.stderr);
    for needle in [
        digest.as_str(),
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.wasm.config.v0+json",
        "application/wasm",
        "org.opencontainers.image.version: 0.1.0",
        "org.opencontainers.image.source: https://example.com/hello",
        "org.opencontainers.image.description: hello",
        "org.opencontainers.image.created: ",
        "wasi:http/incoming-handler@0.2",
    ] {
        assert!(
            inspected.stdout.contains(needle),
            "{needle:?} in\n{}",
            inspected.stdout
        );
    }

    let json = trellis(&["inspect", &reference, "-o", "json"], home.path(), &[]);
    assert_eq!(json.code, Some(0), "{}", json.stderr);
    let json: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    assert_eq!(json["digest"], digest.as_str());
    assert_eq!(json["mediaTypes"]["layer"], "application/wasm");
    assert_eq!(
        json["annotations"]["org.opencontainers.image.version"],
        "0.1.0"
    );
    let names = |key: &str| -> Vec<String> {
        json[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert!(
        names("exports")
            .iter()
            .any(|e| e.starts_with("wasi:http/incoming-handler@0.2")),
        "{json}"
    );
    assert!(
        names("imports").iter().any(|i| i.starts_with("wasi:")),
        "{json}"
    );
}

#[test]
fn pushing_a_core_module_is_refused_by_name() {
    let server = RegistryServer::start();
    let home = tempfile::tempdir().expect("tempdir");
    let module = home.path().join("core.wasm");
    std::fs::write(&module, b"\0asm\x01\x00\x00\x00").expect("write");
    let reference = server.reference("demo/core:1");
    let out = trellis(
        &["push", &reference, &module.to_string_lossy()],
        home.path(),
        &[],
    );
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("core WebAssembly module") && out.stderr.contains(&reference),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn a_private_registry_says_how_to_log_in_and_takes_every_credential_source() {
    let server = RegistryServer::start_with_auth("bob", "pa55word");
    let home = tempfile::tempdir().expect("tempdir");
    let reference = server.reference("private/hello:1");
    let wasm = hello();

    let refused = trellis(&["push", &reference, &wasm], home.path(), &[]);
    assert_eq!(refused.code, Some(1));
    let login = format!("docker login {}", server.host());
    for needle in [login.as_str(), "TRELLIS_REGISTRY_USER", "--registry-user"] {
        assert!(
            refused.stderr.contains(needle),
            "{needle:?} in {}",
            refused.stderr
        );
    }

    // Environment variables.
    let pushed = trellis(
        &["push", &reference, &wasm],
        home.path(),
        &[
            ("TRELLIS_REGISTRY_USER", "bob"),
            ("TRELLIS_REGISTRY_PASSWORD", "pa55word"),
        ],
    );
    assert_eq!(pushed.code, Some(0), "{}", pushed.stderr);

    // Flags, with a wrong password: the message says the credentials were refused.
    let wrong = tempfile::tempdir().expect("tempdir");
    let refused = trellis(
        &[
            "pull",
            &reference,
            "--registry-user",
            "bob",
            "--registry-password",
            "nope",
        ],
        wrong.path(),
        &[],
    );
    assert_eq!(refused.code, Some(1));
    assert!(
        refused.stderr.contains("refused the credentials"),
        "{}",
        refused.stderr
    );

    // The Docker config file, as `docker login` leaves it (DOCKER_CONFIG points there).
    let docker = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(docker.path().join("docker")).expect("mkdir");
    std::fs::write(
        docker.path().join("docker/config.json"),
        format!(
            r#"{{"auths": {{"{}": {{"auth": "Ym9iOnBhNTV3b3Jk"}}}}}}"#,
            server.host()
        ),
    )
    .expect("write config.json");
    let pulled = trellis(&["pull", &reference], docker.path(), &[]);
    assert_eq!(pulled.code, Some(0), "{}", pulled.stderr);
    assert_eq!(pulled.stdout.trim(), pushed.stdout.trim());
}

#[test]
fn size_and_time_limits_have_flags_that_the_errors_name() {
    let server = RegistryServer::start();
    let home = tempfile::tempdir().expect("tempdir");
    let reference = server.reference("demo/limits:1");
    let pushed = trellis(&["push", &reference, &hello()], home.path(), &[]);
    assert_eq!(pushed.code, Some(0), "{}", pushed.stderr);

    let fresh = tempfile::tempdir().expect("tempdir");
    let big = trellis(
        &["pull", &reference, "--max-image-size", "1KiB"],
        fresh.path(),
        &[],
    );
    assert_eq!(big.code, Some(1));
    assert!(big.stderr.contains("--max-image-size"), "{}", big.stderr);
    assert!(
        !fresh.path().join("limits.wasm").exists(),
        "nothing written"
    );

    // A listener that accepts and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let silent = format!("127.0.0.1:{port}/demo/silent:1");
    let started = std::time::Instant::now();
    let slow = trellis(
        &["pull", &silent, "--registry-timeout", "300ms"],
        fresh.path(),
        &[],
    );
    assert_eq!(slow.code, Some(1));
    assert!(
        slow.stderr.contains("--registry-timeout"),
        "{}",
        slow.stderr
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));

    let help = trellis(&["pull", "--help"], fresh.path(), &[]);
    for needle in [
        "--registry-timeout",
        "[default: 30s]",
        "--max-image-size",
        "[default: 256MiB]",
        "--allow-insecure-registry",
        "--registry-user",
        "--registry-password",
    ] {
        assert!(
            help.stdout.contains(needle),
            "{needle:?} in {}",
            help.stdout
        );
    }
}

#[test]
fn a_stopped_registry_still_serves_what_was_pulled() {
    let mut server = RegistryServer::start();
    let home = tempfile::tempdir().expect("tempdir");
    let reference = server.reference("demo/offline:1");
    let pushed = trellis(&["push", &reference, &hello()], home.path(), &[]);
    assert_eq!(pushed.code, Some(0), "{}", pushed.stderr);
    server.stop();

    // The push cached it: the same image cache pulls it with the registry gone.
    let pulled = trellis(&["pull", &reference, "-o", "x.wasm"], home.path(), &[]);
    assert_eq!(pulled.code, Some(0), "{}", pulled.stderr);
    assert_eq!(pulled.stdout.trim(), pushed.stdout.trim());
    assert!(pulled.stderr.contains("unreachable"), "{}", pulled.stderr);

    let fresh = tempfile::tempdir().expect("tempdir");
    let failed = trellis(&["pull", &reference], fresh.path(), &[]);
    assert_eq!(failed.code, Some(1));
    assert!(
        failed.stderr.contains("cannot reach") && failed.stderr.contains(&server.host()),
        "{}",
        failed.stderr
    );
}

/// On a terminal (a pseudo-terminal from `script`, util-linux), the push draws its bar.
#[test]
fn a_push_on_a_terminal_draws_a_progress_bar() {
    let server = RegistryServer::start();
    let home = tempfile::tempdir().expect("tempdir");
    let reference = server.reference("demo/tty:1");
    let command = format!("'{}' push '{reference}' '{}'", trellis_bin(), hello());
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("TRELLIS_IMAGE_CACHE_DIR", home.path().join("oci"))
        .env("DOCKER_CONFIG", home.path().join("docker"))
        .stdin(Stdio::null())
        .output()
        .expect("run script (util-linux)");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    assert!(
        screen.contains(&format!("pushing {reference}")) && screen.contains("KiB"),
        "a progress bar on the terminal: {screen:?}"
    );
    assert!(screen.contains("sha256:"), "and the digest: {screen:?}");
}
