//! `trellis dev` as a developer uses it: a project from `trellis new`, `trellis dev` in it,
//! then edits: a source change is rebuilt and swapped in while a client keeps requesting (no
//! request fails), a syntax error is shown and the old version keeps serving, a manifest edit
//! (scale) is applied, and the CLI finds the dev host with no flag.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Where the guests these tests build go, shared so that each test does not rebuild the
/// component's dependencies.
fn guest_target_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dev-guests")
}

/// A project from `trellis new hello` (the http template) in `dir/hello`.
fn hello_project(dir: &Path) -> PathBuf {
    let project = dir.join("hello");
    let out = run(&["new", "hello", "--path", project.to_str().expect("utf-8")]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    project
}

/// The project's manifest with another instance count.
fn scale_to(project: &Path, instances: u32) {
    let path = project.join("app.yaml");
    let manifest = std::fs::read_to_string(&path).expect("read app.yaml");
    assert!(manifest.contains("instances: 100"), "{manifest}");
    std::fs::write(
        &path,
        manifest.replace("instances: 100", &format!("instances: {instances}")),
    )
    .expect("write app.yaml");
}

fn dev_in(project: &Path, state: &Path) -> Watching {
    let mut cmd = Command::new(trellis_bin());
    cmd.args(["dev", "--http", "127.0.0.1:0"])
        .current_dir(project)
        .env("TRELLIS_CACHE_DIR", shared_cache_dir())
        .env("CARGO_TARGET_DIR", guest_target_dir())
        .env("XDG_STATE_HOME", state)
        .env_remove("TRELLIS_LOG");
    Watching::start_command(cmd)
}

fn listening(line: &str) -> std::net::SocketAddr {
    let rest = line
        .split("listening on http://")
        .nth(1)
        .expect("listening line");
    rest.split_whitespace()
        .next()
        .expect("address")
        .parse()
        .expect("socket address")
}

fn body(addr: std::net::SocketAddr) -> String {
    let r = get(addr, "/");
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

#[test]
fn dev_swaps_edits_without_a_failed_request_and_keeps_serving_through_a_broken_build() {
    let dir = tempfile::tempdir().expect("tempdir");
    let project = hello_project(dir.path());
    let state = dir.path().join("state");
    let mut dev = dev_in(&project, &state);
    // The first build compiles the component's dependencies.
    let (_, line) = dev.wait_for_line(0, "listening on http://", Duration::from_secs(600));
    let addr = listening(&line);
    assert_eq!(body(addr), "Hello from Trellis!\n");
    // Not a terminal: plain lines.
    assert!(
        dev.lines().iter().all(|l| !l.contains('\u{1b}')),
        "{:?}",
        dev.lines()
    );

    // An edit while a client requests in a loop: the new body is served, nothing failed.
    let load = Load::start(addr);
    std::thread::sleep(Duration::from_millis(300));
    let source = project.join("src/lib.rs");
    let original = std::fs::read_to_string(&source).expect("read");
    let from = dev.lines().len();
    std::fs::write(
        &source,
        original.replace("Hello from Trellis!", "Hello from an edit!"),
    )
    .expect("edit");
    let (_, swapped) = dev.wait_for_line(from, "swapped in", Duration::from_secs(300));
    assert!(swapped.contains("hello-hello"), "{swapped}");
    assert_eq!(body(addr), "Hello from an edit!\n");
    std::thread::sleep(Duration::from_millis(300));
    load.finish_without_failures();

    // A syntax error: the compiler's message is shown, the last good version keeps serving.
    let from = dev.lines().len();
    std::fs::write(&source, format!("{original}\nfn broken( {{\n")).expect("break");
    let (at, failed) = dev.wait_for_line(from, "cargo build failed", Duration::from_secs(300));
    assert!(failed.contains("keeps serving"), "{failed}");
    let output = dev.lines()[from..at].join("\n");
    assert!(output.contains("error"), "{output}");
    assert!(output.contains("src/lib.rs"), "{output}");
    assert_eq!(body(addr), "Hello from an edit!\n");

    // A manifest edit is applied: the scale changes; `trellis get` finds the dev host here.
    let from = dev.lines().len();
    scale_to(&project, 3);
    dev.wait_for_line(from, "the manifest changed", Duration::from_secs(60));
    eventually("the new scale", Duration::from_secs(60), || {
        let out = run_with(&["get", "inventory", "-o", "json"], |cmd| {
            cmd.current_dir(&project).env("XDG_STATE_HOME", &state);
        });
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        let inventory: Value = serde_json::from_str(&out.stdout).expect("JSON");
        (inventory["components"][0]["max_instances"] == 3).then_some(())
    });
    assert_eq!(body(addr), "Hello from an edit!\n");

    // Output to a pipe is plain lines: no colour, no cursor movement.
    let output = dev.lines().join("\n");
    assert!(
        !output.contains('\u{1b}'),
        "escape codes in piped output: {output}"
    );
    assert_eq!(dev.terminate(), Some(0), "{}", dev.stderr());
}

/// `trellis completions SHELL` prints a script that completes the current commands.
#[test]
fn completions_are_printed_for_each_shell() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef trellis"),
        ("fish", "complete -c trellis"),
    ] {
        let out = run(&["completions", shell]);
        assert_eq!(out.code, Some(0), "{shell}: {}", out.stderr);
        assert!(out.stdout.contains(marker), "{shell}: {}", out.stdout);
        for command in ["dev", "repl", "new", "app"] {
            assert!(
                out.stdout.contains(command),
                "{shell} completion lacks `{command}`"
            );
        }
    }
}

#[test]
fn dev_without_a_manifest_says_how_to_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run_with(&["dev"], |cmd| {
        cmd.current_dir(dir.path());
    });
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("trellis new"), "{}", out.stderr);
}

/// A component built by a command of its own (the `trellis.dev/build.<component>`
/// annotation): a Python component from componentize-py. An edit to its source is built
/// and served; dev prints how long the build and the swap (compiling the 15 MB component
/// with the baseline compiler) took.
#[test]
fn dev_runs_the_build_command_from_the_manifest_for_a_python_component() {
    let dir = tempfile::tempdir().expect("tempdir");
    let project = dir.path().join("py");
    std::fs::create_dir_all(&project).expect("mkdir");
    let source = trellis_test_support::repo_root().join("test-components/py-http/app.py");
    let original = std::fs::read_to_string(&source).expect("read app.py");
    std::fs::write(project.join("app.py"), &original).expect("write app.py");
    let wit = wasi_http_wit();
    let build = format!(
        "PYTHONDONTWRITEBYTECODE=1 {} -d {} -w wasi:http/proxy@{} componentize app -o build/py_http.wasm",
        componentize_py().display(),
        wit.display(),
        wasi_http_version(&wit)
    );
    let manifest = http_app("py", "py_http", 4, "")
        .replace(
            "metadata:\n  name: py\n",
            &format!("metadata:\n  name: py\n  annotations:\n    trellis.dev/build.web: '{build}'\n    trellis.dev/watch.web: app.py\n"),
        );
    assert!(manifest.contains("trellis.dev/build.web"), "{manifest}");
    std::fs::write(project.join("app.yaml"), manifest).expect("manifest");

    let state = dir.path().join("state");
    let mut dev = dev_in(&project, &state);
    let (_, line) = dev.wait_for_line(0, "listening on http://", Duration::from_secs(300));
    let addr = listening(&line);
    assert_eq!(body(addr), "Hello from Python at /\n");

    let from = dev.lines().len();
    std::fs::write(
        project.join("app.py"),
        original.replace("Hello from Python", "Hello again from Python"),
    )
    .expect("edit");
    dev.wait_for_line(from, "swapped in", Duration::from_secs(300));
    assert_eq!(body(addr), "Hello again from Python at /\n");
    assert_eq!(dev.terminate(), Some(0), "{}", dev.stderr());
}
