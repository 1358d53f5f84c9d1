//! `trellis logs`: component log lines from an embedded host and from every host of a
//! lattice, filtered by component and level, and followed with `-f`.

mod common;

use common::*;
use serde_json::Value;
use std::time::Duration;

const TOKEN: &str = "logs-t0ken";

fn embedded_logs(trellis: &Trellis, args: &[&str]) -> Exited {
    let url = trellis.admin_url();
    let mut all = vec!["logs"];
    all.extend_from_slice(args);
    all.extend(["--embedded", url.as_str(), "--admin-token", TOKEN]);
    run(&all)
}

#[test]
fn an_embedded_host_keeps_and_streams_what_components_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    install_guest(dir.path(), "behaviours");
    let manifest = write_manifest(dir.path(), &http_app("chatty", "behaviours", 1, ""));
    let trellis = Trellis::up(&manifest, &["--admin-token", TOKEN]);
    let addr = trellis.addr();
    assert_eq!(get(addr, "/log?msg=plain-info").status, 200);
    assert_eq!(get(addr, "/log-draft?msg=draft-warning").status, 200);

    let all = embedded_logs(&trellis, &[]);
    assert_eq!(all.code, Some(0), "{}", all.stderr);
    let lines: Vec<&str> = all.stdout.lines().collect();
    let info = lines
        .iter()
        .position(|l| l.contains("plain-info"))
        .unwrap_or_else(|| panic!("no plain-info line in {lines:?}"));
    let warn = lines
        .iter()
        .position(|l| l.contains("draft-warning"))
        .unwrap_or_else(|| panic!("no draft-warning line in {lines:?}"));
    assert!(info < warn, "oldest first: {lines:?}");
    assert!(
        lines[info].contains(" INFO  chatty-web@N") && lines[info].contains("[behaviours]"),
        "{}",
        lines[info]
    );
    assert!(lines[warn].contains(" WARN "), "{}", lines[warn]);

    // At least warn: only the draft line. Another component: nothing.
    let warnings = embedded_logs(&trellis, &["--level", "warn"]);
    assert!(
        warnings.stdout.contains("draft-warning"),
        "{}",
        warnings.stdout
    );
    assert!(
        !warnings.stdout.contains("plain-info"),
        "{}",
        warnings.stdout
    );
    let other = embedded_logs(&trellis, &["someone-else"]);
    assert_eq!(other.code, Some(0), "{}", other.stderr);
    assert_eq!(other.stdout, "");
    let bad = embedded_logs(&trellis, &["--level", "loud"]);
    assert_eq!(bad.code, Some(2));
    assert!(
        bad.stderr
            .contains("use one of trace, debug, info, warn, error, critical"),
        "{}",
        bad.stderr
    );

    // JSON lines, one record each.
    let json = embedded_logs(&trellis, &["-o", "json", "-n", "1"]);
    let records: Vec<Value> = json
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(records.len(), 1, "{}", json.stdout);
    assert_eq!(records[0]["message"], "draft-warning");
    assert_eq!(records[0]["level"], "warn");
    assert_eq!(records[0]["source"], "logging");
    assert_eq!(records[0]["component_id"], "chatty-web");

    // Following: the recent lines, then what is logged from then on.
    let url = trellis.admin_url();
    let mut follow = Watching::start(&[
        "logs",
        "-f",
        "chatty-web",
        "--embedded",
        url.as_str(),
        "--admin-token",
        TOKEN,
    ]);
    let (seen, _) = follow.wait_for_line(0, "draft-warning", Duration::from_secs(20));
    assert_eq!(get(addr, "/log?msg=while-following").status, 200);
    follow.wait_for_line(seen, "while-following", Duration::from_secs(20));
    follow.terminate();
}

#[test]
fn lines_come_from_every_host_of_a_lattice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nats = NatsServer::start(free_port(), &dir.path().join("nats"));
    let url = nats.url();
    let _hosts: Vec<LatticeHost> = ["one", "two"]
        .iter()
        .map(|n| LatticeHost::start(&url, "logged", &["--friendly-name", n]))
        .collect();
    let wasm = install_guest(dir.path(), "callee");
    let reference = format!("file://{}", wasm.display());
    let cli = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--nats", url.as_str(), "--lattice", "logged"]);
        run(&all)
    };
    // A follower from the start sees both hosts' lines as they come.
    let mut follow = Watching::start(&[
        "logs",
        "-f",
        "-o",
        "json",
        "--nats",
        url.as_str(),
        "--lattice",
        "logged",
    ]);
    for host in ["one", "two"] {
        let id = format!("callee-{host}");
        let r = cli(&["start", "component", &reference, &id, "--host", host]);
        assert_eq!(r.code, Some(0), "{}", r.stderr);
        eventually(&format!("{id} runs"), Duration::from_secs(30), || {
            let out = cli(&["get", "inventory", host, "-o", "json"]);
            out.stdout.contains(&id).then_some(())
        });
        let name = format!("\"from-{host}\"");
        let r = cli(&["call", &id, "trellis:test/calls.greet", &name]);
        assert_eq!(r.code, Some(0), "{}", r.stderr);
    }

    let out = cli(&["logs", "-o", "json"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let records: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let hosts: std::collections::BTreeSet<&str> = records
        .iter()
        .filter(|r| r["source"] == "stdout")
        .filter_map(|r| r["host_id"].as_str())
        .collect();
    assert_eq!(hosts.len(), 2, "{}", out.stdout);
    for host in ["one", "two"] {
        let record = records
            .iter()
            .find(|r| r["message"] == format!("greeting from-{host}"))
            .unwrap_or_else(|| panic!("no line from {host}: {}", out.stdout));
        assert_eq!(record["component_id"], format!("callee-{host}"));
        assert_eq!(record["level"], "info");
        follow.wait_for_line(0, &format!("greeting from-{host}"), Duration::from_secs(20));
    }

    let only_one = cli(&["logs", "callee-one"]);
    assert!(
        only_one.stdout.contains("greeting from-one"),
        "{}",
        only_one.stdout
    );
    assert!(!only_one.stdout.contains("from-two"), "{}", only_one.stdout);
    follow.terminate();
}
