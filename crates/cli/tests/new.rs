//! `trellis new`: each template, written by the real binary into a fresh folder, builds with
//! `cargo build --release --target wasm32-wasip2` and runs with `trellis up app.yaml`, doing
//! what its README says; names and folders it cannot use are refused, and nothing is written.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A project written by `trellis new NAME --template TEMPLATE` in a fresh folder and built as
/// its README says, in the project's folder with no `CARGO_TARGET_DIR`. Its `target/` is a
/// link to one folder these tests share (beside the other guests' target folders), so the
/// guests' dependencies compile once per test run, while the build command and the manifest's
/// `file://./target/…` image are exactly a user's.
fn built(template: &str, name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let project = dir.path().join(name);
    let path = project.to_str().expect("a UTF-8 temp path");
    let out = run(&["new", name, "--template", template, "--path", path]);
    assert_eq!(out.code, Some(0), "trellis new: {}", out.stderr);

    let shared = trellis_test_support::guest_target_dir("new-templates");
    std::fs::create_dir_all(&shared).expect("create the shared target folder");
    std::os::unix::fs::symlink(&shared, project.join("target")).expect("link target/");
    let lock = read(&project.join("Cargo.lock"));
    let build = trellis_test_support::guest_cargo()
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .env_remove("CARGO_TARGET_DIR")
        .current_dir(&project)
        .output()
        .expect("run cargo");
    assert!(
        build.status.success(),
        "cargo build in a project from the {template} template failed:\n{}",
        String::from_utf8_lossy(&build.stderr)
    );
    assert_eq!(
        read(&project.join("Cargo.lock")),
        lock,
        "building changed the Cargo.lock that trellis new wrote"
    );
    (dir, project)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `trellis ARGS` run in `folder`, as a user in the project's folder runs it.
fn run_in(folder: &Path, args: &[&str]) -> Exited {
    run_with(args, |command| {
        command.current_dir(folder);
    })
}

#[test]
fn the_http_template_says_hello() {
    let (_dir, project) = built("http", "hello-http");
    let trellis = Trellis::up(&project.join("app.yaml"), &[]);
    let response = get(trellis.addr(), "/");
    assert_eq!(response.status, 200);
    assert_eq!(response.body, "Hello from Trellis!\n");
}

#[test]
fn the_kv_counter_template_counts_requests() {
    let (_dir, project) = built("kv-counter", "hello-kv");
    let trellis = Trellis::up(&project.join("app.yaml"), &[]);
    assert_eq!(get(trellis.addr(), "/").body, "Counter: 1\n");
    assert_eq!(get(trellis.addr(), "/").body, "Counter: 2\n");
    assert!(project.join(".trellis/keyvalue/kv.redb").is_file());
}

#[test]
fn the_messaging_template_handles_a_message_with_no_broker_to_run() {
    let (_dir, project) = built("messaging", "hello-msg");
    let trellis = Trellis::up(&project.join("app.yaml"), &[]);
    // As its README says: `trellis call` in the project's folder finds this `trellis up`.
    assert!(read(&project.join("README.md")).contains(
        r#"trellis call hello_msg-hello_msg wasmcloud:messaging/handler.handle-message \
    '{"subject": "trellis.echo", "body": "hello"}'"#
    ));
    let out = run_in(
        &project,
        &[
            "call",
            "hello_msg-hello_msg",
            "wasmcloud:messaging/handler.handle-message",
            r#"{"subject": "trellis.echo", "body": "hello"}"#,
        ],
    );
    assert_eq!(out.code, Some(0), "trellis call: {}", out.stderr);
    assert_eq!(out.stdout.trim(), "ok");
    trellis.wait_for_stderr("received on trellis.echo: hello", Duration::from_secs(20));
}

#[test]
fn the_greeter_template_answers_through_its_back_component() {
    let (_dir, project) = built("greeter", "hello-greeter");
    let trellis = Trellis::up(&project.join("app.yaml"), &[]);
    assert_eq!(
        get(trellis.addr(), "/?name=Ada").body,
        "Hello, Ada! (from back)\n"
    );
    assert!(
        read(&project.join("README.md"))
            .contains(r#"trellis call hello_greeter-back example:greeter/greet.greet '"Ada"'"#)
    );
    let out = run_in(
        &project,
        &[
            "call",
            "hello_greeter-back",
            "example:greeter/greet.greet",
            "\"Ada\"",
        ],
    );
    assert_eq!(out.code, Some(0), "trellis call: {}", out.stderr);
    assert_eq!(out.stdout.trim(), "\"Hello, Ada! (from back)\"");
}

#[test]
fn names_and_folders_it_cannot_use_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, says) in [
        ("Hello", "try `hello`"),
        ("my.app", "try `my-app`"),
        ("1st", "does not start with a letter"),
        ("wasi", "depends on the crate `wasi`"),
    ] {
        let out = run_in(dir.path(), &["new", name, "--template", "kv-counter"]);
        assert_eq!(out.code, Some(1), "{name}: {}", out.stdout);
        assert!(out.stderr.contains(says), "{name}: {}", out.stderr);
    }
    let written = std::fs::read_dir(dir.path()).expect("read_dir").count();
    assert_eq!(written, 0, "a refused name wrote something");

    // A folder that is not empty is left alone, and the error says what to do.
    let taken = dir.path().join("taken");
    std::fs::create_dir(&taken).expect("mkdir");
    std::fs::write(taken.join("notes.txt"), "mine").expect("write");
    let out = run_in(dir.path(), &["new", "taken"]);
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert!(
        out.stderr.contains("already exists and is not empty") && out.stderr.contains("--path"),
        "{}",
        out.stderr
    );
    let left: Vec<_> = std::fs::read_dir(&taken).expect("read_dir").collect();
    assert_eq!(
        left.len(),
        1,
        "trellis new wrote into a folder that was not empty"
    );

    // ./NAME by default; an existing empty folder is fine.
    let out = run_in(dir.path(), &["new", "fresh"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("cd fresh"), "{}", out.stdout);
    for file in [
        "Cargo.toml",
        "Cargo.lock",
        "src/lib.rs",
        "app.yaml",
        "README.md",
    ] {
        assert!(dir.path().join("fresh").join(file).is_file(), "{file}");
    }
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    let out = run_in(
        dir.path(),
        &["new", "shop", "--template", "greeter", "--path", "empty"],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(empty.join("front/Cargo.toml").is_file());
    assert!(read(&empty.join("back/Cargo.toml")).contains("name = \"shop-back\""));
}

#[test]
fn help_shows_an_example() {
    let out = run(&["new", "--help"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stdout
            .contains("trellis new hello --template kv-counter"),
        "{}",
        out.stdout
    );
    for template in ["http", "kv-counter", "messaging", "greeter"] {
        assert!(out.stdout.contains(template), "{template}: {}", out.stdout);
    }
}
