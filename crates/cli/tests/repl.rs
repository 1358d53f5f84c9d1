//! `trellis repl` in a real terminal (tmux), driven as a person would: half a command typed
//! while events arrive stays intact on the prompt line with the events above it; commands
//! print what they print on the command line; Tab completes a component id from the running
//! host; Ctrl-C clears the line and stops `events`; hosts are refused; history survives a
//! restart. Against a NATS lattice, the REPL's flags are every command's defaults.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const TMUX: &str = "/usr/bin/tmux";

/// A tmux server of its own (its own socket), killed on drop.
struct Tmux {
    socket: String,
}

/// `trellis repl ARGS` as a shell command: the exit code shows on the screen when it ends,
/// and the pane stays so that the test can read it.
fn repl_command(args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    format!(
        "{} repl {}; echo \"[exited $?]\"; sleep 600",
        trellis_bin(),
        args.join(" ")
    )
}

impl Tmux {
    fn new(name: &str) -> Tmux {
        Tmux {
            socket: format!("trellis-repl-{}-{name}", std::process::id()),
        }
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new(TMUX)
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Opens session `session`, 120×40, running `trellis repl ARGS` in `dir`.
    fn open(&self, session: &str, dir: &Path, state: &Path, args: &[&str]) {
        self.open_shell(session, dir, state, &repl_command(args));
    }

    /// Opens session `session`, 120×40, running the shell command `command` in `dir`.
    fn open_shell(&self, session: &str, dir: &Path, state: &Path, command: &str) {
        let out = Command::new(TMUX)
            .arg("-L")
            .arg(&self.socket)
            .args([
                "new-session",
                "-d",
                "-s",
                session,
                "-x",
                "120",
                "-y",
                "40",
                "-c",
            ])
            .arg(dir)
            .arg(command)
            // The server starts with this environment, and so does every session in it.
            .env("XDG_STATE_HOME", state)
            .env("TRELLIS_CACHE_DIR", shared_cache_dir())
            .env("NO_COLOR", "1")
            .env_remove("TRELLIS_NATS")
            .env_remove("TRELLIS_ADMIN")
            .env_remove("TRELLIS_ADMIN_TOKEN")
            .env_remove("TRELLIS_LOG")
            .output()
            .expect("run tmux");
        assert!(
            out.status.success(),
            "tmux new-session: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn close(&self, session: &str) {
        self.tmux(&["kill-session", "-t", session]);
    }

    /// Types `text` as it is (no Enter).
    fn type_text(&self, session: &str, text: &str) {
        self.tmux(&["send-keys", "-t", session, "-l", "--", text]);
    }

    /// Presses keys by name: `Enter`, `Tab`, `Up`, `C-c`, `C-d`.
    fn press(&self, session: &str, key: &str) {
        self.tmux(&["send-keys", "-t", session, key]);
    }

    /// The screen's lines, trailing blank lines dropped.
    fn screen(&self, session: &str) -> Vec<String> {
        let text = self.tmux(&["capture-pane", "-p", "-t", session]);
        let mut lines: Vec<String> = text.lines().map(|l| l.trim_end().to_owned()).collect();
        while lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        lines
    }

    /// Waits until `ready` holds for the screen; the screen.
    fn wait(
        &self,
        session: &str,
        what: &str,
        timeout: Duration,
        ready: impl Fn(&[String]) -> bool,
    ) -> Vec<String> {
        let mut last = Vec::new();
        let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            eventually(what, timeout, || {
                last = self.screen(session);
                ready(&last).then(|| last.clone())
            })
        }));
        match found {
            Ok(screen) => screen,
            Err(_) => panic!(
                "timed out waiting for {what}; the screen:\n{}",
                self.screen(session).join("\n")
            ),
        }
    }

    /// Waits until the last line is the prompt with `typed` after it.
    fn wait_prompt(&self, session: &str, typed: &str) -> Vec<String> {
        let want = format!("trellis> {typed}").trim_end().to_owned();
        self.wait(
            session,
            &format!("the prompt line `{want}`"),
            Duration::from_secs(30),
            |s| s.last().is_some_and(|l| *l == want),
        )
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new(TMUX)
            .arg("-L")
            .arg(&self.socket)
            .arg("kill-server")
            .output();
    }
}

/// `trellis up` of `manifest`, listed in the user state folder `state`.
fn up(manifest: &Path, state: &Path) -> Trellis {
    let mut cmd = Command::new(trellis_bin());
    cmd.arg("up")
        .arg(manifest)
        .args(["--http", "127.0.0.1:0"])
        .env("XDG_STATE_HOME", state);
    Trellis::start(cmd)
}

/// The CLI in `dir`, finding the `trellis up` there.
fn cli_in(dir: &Path, state: &Path, args: &[&str]) -> Exited {
    let out = run_with(args, |cmd| {
        cmd.current_dir(dir)
            .env("XDG_STATE_HOME", state)
            .env_remove("TRELLIS_NATS")
            .env_remove("TRELLIS_ADMIN")
            .env_remove("TRELLIS_ADMIN_TOKEN");
    });
    assert_eq!(out.code, Some(0), "trellis {args:?}: {}", out.stderr);
    out
}

fn position(screen: &[String], what: impl Fn(&str) -> bool) -> Option<usize> {
    screen.iter().position(|l| what(l))
}

#[test]
fn a_person_at_the_prompt() {
    if !Path::new(TMUX).exists() {
        panic!("{TMUX} is missing: apt-get install tmux");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let state = tempfile::tempdir().expect("state");
    install_guest(dir.path(), "http_hello");
    let manifest = write_manifest(dir.path(), &http_app("shop", "http_hello", 1, ""));
    let host_up = up(&manifest, state.path());
    let host = host_up
        .stdout
        .iter()
        .find_map(|l| l.split(" is running on host ").nth(1))
        .expect("host id")
        .trim()
        .to_owned();
    let tmux = Tmux::new("prompt");
    tmux.open("one", dir.path(), state.path(), &[]);
    let screen = tmux.wait_prompt("one", "");
    assert!(
        screen[0].contains("trellis repl: commands go to the `trellis up` at http://127.0.0.1:"),
        "{screen:?}"
    );

    // Half a command, while events arrive: they print above it, and the line stays whole.
    tmux.type_text("one", "get inv");
    let mut round = 0;
    let screen = eventually(
        "two label events above the half-typed line",
        Duration::from_secs(30),
        || {
            round += 1;
            cli_in(
                dir.path(),
                state.path(),
                &["label", "put", &host[..8], &format!("round=r{round}")],
            );
            std::thread::sleep(Duration::from_millis(300));
            let screen = tmux.screen("one");
            let events = screen
                .iter()
                .filter(|l| l.contains(" labels_changed "))
                .count();
            (events >= 2).then_some(screen)
        },
    );
    assert_eq!(
        screen.last().map(String::as_str),
        Some("trellis> get inv"),
        "the line being typed is intact on the last line:\n{}",
        screen.join("\n")
    );
    let event = position(&screen, |l| l.contains(" labels_changed ")).expect("event");
    assert!(event < screen.len() - 1, "events are above the prompt");
    // Cut at the screen's width, so the editor draws its prompt below the whole of it.
    let whole = screen[event..screen.len() - 1].concat();
    assert!(
        screen[event].contains(&host) && whole.contains("\"round\":\"r"),
        "as `trellis events` prints it:\n{}",
        screen.join("\n")
    );

    // Finished and run: the same table as `trellis get inventory`.
    tmux.type_text("one", "entory");
    tmux.press("one", "Enter");
    let screen = tmux.wait("one", "the inventory table", Duration::from_secs(30), |s| {
        s.iter().any(|l| l.starts_with("KIND ")) && s.last().is_some_and(|l| l == "trellis>")
    });
    let table = position(&screen, |l| l.starts_with("KIND ")).expect("table");
    assert!(
        screen[table..]
            .iter()
            .any(|l| l.starts_with("component") && l.contains("shop-web")),
        "{}",
        screen.join("\n")
    );

    // Tab completes a component id from the running host (the names may take a moment).
    eventually(
        "`shop-w` completed to the component id",
        Duration::from_secs(30),
        || {
            tmux.type_text("one", "scale component shop-w");
            tmux.press("one", "Tab");
            std::thread::sleep(Duration::from_millis(500));
            let done = tmux
                .screen("one")
                .last()
                .is_some_and(|l| l == "trellis> scale component shop-web");
            // Ctrl-C clears the line, completed or not.
            tmux.press("one", "C-c");
            tmux.wait_prompt("one", "");
            done.then_some(())
        },
    );

    // `events` runs until Ctrl-C, which brings the prompt back.
    tmux.type_text("one", "events");
    tmux.press("one", "Enter");
    let mut round = 100;
    eventually(
        "`events` printing a label event",
        Duration::from_secs(30),
        || {
            round += 1;
            cli_in(
                dir.path(),
                state.path(),
                &["label", "put", &host[..8], &format!("round=r{round}")],
            );
            std::thread::sleep(Duration::from_millis(300));
            let screen = tmux.screen("one");
            let at = position(&screen, |l| l == "trellis> events")?;
            screen[at..]
                .iter()
                .any(|l| l.contains(&format!("\"r{round}\"")))
                .then_some(())
        },
    );
    tmux.press("one", "C-c");
    let screen = tmux.wait_prompt("one", "");
    assert!(
        screen.iter().any(|l| l == "stopped"),
        "{}",
        screen.join("\n")
    );

    // Hosts are refused, with why.
    tmux.type_text("one", "up app.yaml");
    tmux.press("one", "Enter");
    tmux.wait("one", "`up` refused", Duration::from_secs(15), |s| {
        s.iter()
            .any(|l| l.starts_with("`up` runs a host until it stops"))
            && s.last().is_some_and(|l| l == "trellis>")
    });

    // The last command, then Ctrl-D.
    tmux.type_text("one", "get hosts");
    tmux.press("one", "Enter");
    tmux.wait("one", "the hosts table", Duration::from_secs(30), |s| {
        s.iter().any(|l| l.starts_with("ID ") && l.contains("NAME"))
            && s.last().is_some_and(|l| l == "trellis>")
    });
    tmux.press("one", "C-d");
    tmux.wait("one", "the REPL to exit", Duration::from_secs(15), |s| {
        s.iter().any(|l| l == "[exited 0]")
    });
    tmux.close("one");

    // History survives: Up in a new REPL brings back the last command.
    let history: PathBuf = state.path().join("trellis/history");
    let kept = std::fs::read_to_string(&history).expect("history file");
    assert!(kept.contains("get hosts"), "{kept}");
    tmux.open("two", dir.path(), state.path(), &[]);
    tmux.wait_prompt("two", "");
    tmux.press("two", "Up");
    tmux.wait_prompt("two", "get hosts");
    tmux.press("two", "C-c");
    tmux.wait_prompt("two", "");
    tmux.type_text("two", "exit");
    tmux.press("two", "Enter");
    tmux.wait("two", "`exit` to leave", Duration::from_secs(15), |s| {
        s.iter().any(|l| l == "[exited 0]")
    });
    drop(host_up);
}

#[test]
fn on_a_nats_lattice_the_repl_flags_are_every_commands_defaults() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = tempfile::tempdir().expect("state");
    let nats = NatsServer::start(free_port(), &dir.path().join("nats"));
    let host = LatticeHost::start(&nats.url(), "repl", &["--friendly-name", "quiet-fox"]);
    let tmux = Tmux::new("nats");
    // No `trellis up` in this folder: everything goes by the REPL's flags.
    tmux.open(
        "one",
        dir.path(),
        state.path(),
        &["--nats", &nats.url(), "--lattice", "repl"],
    );
    let screen = tmux.wait_prompt("one", "");
    assert!(
        screen[0].contains(&format!("lattice `repl` at {}", nats.url())),
        "{}",
        screen.join("\n")
    );

    tmux.type_text("one", "get ho");
    let mut round = 0;
    let screen = eventually(
        "a label event above the half-typed line",
        Duration::from_secs(30),
        || {
            round += 1;
            let out = run(&[
                "label",
                "put",
                &host.id,
                &format!("round=r{round}"),
                "--nats",
                &nats.url(),
                "--lattice",
                "repl",
            ]);
            assert_eq!(out.code, Some(0), "{}", out.stderr);
            std::thread::sleep(Duration::from_millis(300));
            let screen = tmux.screen("one");
            screen
                .iter()
                .any(|l| l.contains(" labels_changed "))
                .then_some(screen)
        },
    );
    assert_eq!(
        screen.last().map(String::as_str),
        Some("trellis> get ho"),
        "{}",
        screen.join("\n")
    );

    // No flags on the line: the REPL's lattice is used, and the host answers.
    tmux.type_text("one", "sts");
    tmux.press("one", "Enter");
    let screen = tmux.wait("one", "the hosts table", Duration::from_secs(30), |s| {
        s.iter().any(|l| l.starts_with("ID ")) && s.last().is_some_and(|l| l == "trellis>")
    });
    assert!(
        screen
            .iter()
            .any(|l| l.starts_with(&host.id) && l.contains("quiet-fox")),
        "{}",
        screen.join("\n")
    );
    // A lattice named on the line wins: nobody answers there.
    tmux.type_text("one", "get hosts --lattice elsewhere -o json");
    tmux.press("one", "Enter");
    tmux.wait("one", "an empty host list", Duration::from_secs(30), |s| {
        s.iter().any(|l| l == "[]") && s.last().is_some_and(|l| l == "trellis>")
    });

    // Host names complete from the lattice.
    eventually(
        "`quiet` completed to the host's name",
        Duration::from_secs(30),
        || {
            tmux.type_text("one", "get inventory quiet");
            tmux.press("one", "Tab");
            std::thread::sleep(Duration::from_millis(500));
            let done = tmux
                .screen("one")
                .last()
                .is_some_and(|l| l == "trellis> get inventory quiet-fox");
            tmux.press("one", "C-c");
            tmux.wait_prompt("one", "");
            done.then_some(())
        },
    );
    tmux.type_text("one", "quit");
    tmux.press("one", "Enter");
    tmux.wait("one", "`quit` to leave", Duration::from_secs(15), |s| {
        s.iter().any(|l| l == "[exited 0]")
    });
}

/// `trellis dev --repl` in a project from `trellis new`: the dev loop's lines (the build, the
/// swap after an edit) print above the prompt while a command is half typed, the command
/// then runs against dev's own host, and Ctrl-D stops dev.
#[test]
fn dev_with_a_prompt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = tempfile::tempdir().expect("state");
    let project = dir.path().join("hello");
    let out = run(&["new", "hello", "--path", project.to_str().expect("utf-8")]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let tmux = Tmux::new("dev");
    // Built in the target folder the dev tests share (the component's dependencies once).
    let command = format!(
        "CARGO_TARGET_DIR='{}' '{}' dev --repl --http 127.0.0.1:0; echo \"[exited $?]\"; sleep 600",
        PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join("dev-guests")
            .display(),
        trellis_bin()
    );
    tmux.open_shell("dev", &project, state.path(), &command);
    let screen = tmux.wait(
        "dev",
        "the app running, the prompt below",
        Duration::from_secs(600),
        |s| {
            s.iter().any(|l| l.contains("watching for changes"))
                && s.last().is_some_and(|l| l == "trellis>")
        },
    );
    assert!(
        screen
            .iter()
            .any(|l| l.contains("listening on http://127.0.0.1:")),
        "{}",
        screen.join("\n")
    );

    // Half a command typed; an edit is built and swapped in meanwhile.
    tmux.type_text("dev", "get inv");
    tmux.wait_prompt("dev", "get inv");
    let source = project.join("src/lib.rs");
    let text = std::fs::read_to_string(&source).expect("read lib.rs");
    assert!(text.contains("Hello from Trellis!"), "{text}");
    std::fs::write(
        &source,
        text.replace("Hello from Trellis!", "Hello from the prompt!"),
    )
    .expect("edit");
    let screen = tmux.wait(
        "dev",
        "the swap above the half-typed line",
        Duration::from_secs(300),
        |s| s.iter().any(|l| l.contains("hello-hello swapped in")),
    );
    assert_eq!(
        screen.last().map(String::as_str),
        Some("trellis> get inv"),
        "the typed text is intact on the last line:\n{}",
        screen.join("\n")
    );
    let swapped = position(&screen, |l| l.contains("swapped in")).expect("swap line");
    assert!(swapped < screen.len() - 1, "{}", screen.join("\n"));

    // The command finishes and runs against dev's host.
    tmux.type_text("dev", "entory");
    tmux.press("dev", "Enter");
    let screen = tmux.wait("dev", "the inventory table", Duration::from_secs(30), |s| {
        s.iter().any(|l| l.starts_with("component  hello-hello"))
            && s.last().is_some_and(|l| l == "trellis>")
    });
    let row = screen
        .iter()
        .find(|l| l.starts_with("component  hello-hello"))
        .expect("component row");
    assert!(
        row.contains(".trellis/dev/hello-"),
        "dev's copy runs: {row}"
    );

    // Ctrl-D leaves the REPL, which stops dev.
    tmux.press("dev", "C-d");
    tmux.wait("dev", "dev's exit", Duration::from_secs(60), |s| {
        s.iter().any(|l| l == "[exited 0]")
    });
}
