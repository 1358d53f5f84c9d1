//! Reused instances: WASI 0.3 components serving several requests from one instance, and
//! WASI 0.2 components opted into warm instances with the `trellis.dev/warm.<component>`
//! annotation. A counter kept in guest memory (`/count`) shows when an instance is reused.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::time::Duration;

/// `http_app` with annotations in `metadata`.
fn app_with_annotations(wasm: &str, instances: u32, annotations: &[(&str, &str)]) -> String {
    let manifest = http_app("instances", wasm, instances, "");
    if annotations.is_empty() {
        return manifest;
    }
    let lines: String = annotations
        .iter()
        .map(|(k, v)| format!("    {k}: \"{v}\"\n"))
        .collect();
    manifest.replacen(
        "  name: instances\n",
        &format!("  name: instances\n  annotations:\n{lines}"),
        1,
    )
}

fn serve(
    wasm: &str,
    instances: u32,
    annotations: &[(&str, &str)],
    flags: &[&str],
) -> (tempfile::TempDir, Trellis) {
    let dir = tempfile::tempdir().expect("tempdir");
    install_guest(dir.path(), wasm);
    let manifest = write_manifest(
        dir.path(),
        &app_with_annotations(wasm, instances, annotations),
    );
    let trellis = Trellis::up(&manifest, flags);
    (dir, trellis)
}

fn counts(trellis: &Trellis, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let r = get(trellis.addr(), "/count");
            assert_eq!(r.status, 200, "{}", r.body);
            r.body
        })
        .collect()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Runs `n` GETs of `path(i)` at once and returns the responses in order.
fn concurrently(trellis: &Trellis, n: usize, path: impl Fn(usize) -> String) -> Vec<Response> {
    let addr = trellis.addr();
    let threads: Vec<_> = (0..n)
        .map(|i| {
            let path = path(i);
            std::thread::spawn(move || get(addr, &path))
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().expect("request thread"))
        .collect()
}

#[test]
fn a_wasi_0_2_instance_is_fresh_for_every_request_unless_the_manifest_opts_in() {
    let (_dir, fresh) = serve("behaviours", 1, &[], &[]);
    assert_eq!(counts(&fresh, 4), strings(&["1", "1", "1", "1"]));

    let (_dir, warm) = serve("behaviours", 1, &[("trellis.dev/warm.web", "true")], &[]);
    assert_eq!(counts(&warm, 4), strings(&["1", "2", "3", "4"]));

    // App-wide, and turned off again for the one component.
    let (_dir, app_wide) = serve("behaviours", 1, &[("trellis.dev/warm", "true")], &[]);
    assert_eq!(counts(&app_wide, 3), strings(&["1", "2", "3"]));
    let (_dir, off) = serve(
        "behaviours",
        1,
        &[
            ("trellis.dev/warm", "true"),
            ("trellis.dev/warm.web", "false"),
        ],
        &[],
    );
    assert_eq!(counts(&off, 3), strings(&["1", "1", "1"]));
}

#[test]
fn a_warm_instance_never_serves_two_requests_at_once() {
    let (_dir, trellis) = serve("behaviours", 2, &[("trellis.dev/warm.web", "true")], &[]);
    for round in 0..3 {
        let responses = concurrently(&trellis, 8, |_| "/exclusive?ms=100".to_owned());
        for r in &responses {
            assert_eq!(r.status, 200, "round {round}: {}", r.body);
            assert!(r.body.starts_with("alone "), "round {round}: {}", r.body);
        }
    }
    // Reused all the same: two instances served 24 requests, so some counter passed 1.
    let r = get(trellis.addr(), "/count");
    assert_eq!(r.status, 200);
    assert!(
        r.body.parse::<u32>().expect("a count") > 1,
        "count {}",
        r.body
    );
}

#[test]
fn a_warm_instance_is_retired_after_a_trap_a_deadline_or_a_memory_refusal() {
    let (_dir, trellis) = serve(
        "behaviours",
        1,
        &[("trellis.dev/warm.web", "true")],
        &["--max-execution-time", "2s", "--max-memory", "32MiB"],
    );
    assert_eq!(counts(&trellis, 2), strings(&["1", "2"]));

    let r = get(trellis.addr(), "/trap");
    assert_eq!(r.status, 500, "{}", r.body);
    assert_eq!(counts(&trellis, 2), strings(&["1", "2"]), "after a trap");

    let r = get(trellis.addr(), "/loop");
    assert_eq!(r.status, 504, "{}", r.body);
    assert!(r.body.contains("execution time limit"), "{}", r.body);
    assert_eq!(
        counts(&trellis, 2),
        strings(&["1", "2"]),
        "after a deadline"
    );

    // 64 MiB is over the 32 MiB limit: the guest is refused memory, and its instance is not
    // used again whatever the guest did about it.
    let r = get(trellis.addr(), "/alloc?mib=64");
    assert_ne!(r.status, 200, "{}", r.body);
    assert_eq!(counts(&trellis, 2), strings(&["1", "2"]), "after a refusal");
}

#[test]
fn a_warm_instance_is_retired_after_its_requests_and_when_idle() {
    let (_dir, trellis) = serve(
        "behaviours",
        1,
        &[("trellis.dev/warm.web", "max-requests=3, idle=300ms")],
        &[],
    );
    assert_eq!(
        counts(&trellis, 7),
        strings(&["1", "2", "3", "1", "2", "3", "1"])
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(counts(&trellis, 1), strings(&["1"]), "after idling");
}

#[test]
fn a_bad_warm_annotation_is_refused_with_what_to_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    install_guest(dir.path(), "behaviours");
    let manifest = write_manifest(
        dir.path(),
        &app_with_annotations(
            "behaviours",
            1,
            &[("trellis.dev/warm.web", "max-requests=lots")],
        ),
    );
    let out = run(&[
        "up",
        manifest.to_str().expect("utf-8 path"),
        "--http",
        "127.0.0.1:0",
    ]);
    assert_ne!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stderr.contains("trellis.dev/warm.web"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("max-requests=500"), "{}", out.stderr);
}

#[test]
fn a_wasi_0_3_component_serves_concurrent_requests_from_one_instance() {
    let (_dir, trellis) = serve("hello_p3", 1, &[], &[]);
    let r = get(trellis.addr(), "/");
    assert_eq!((r.status, r.body.as_str()), (200, "hello from WASI 0.3"));

    let responses = concurrently(&trellis, 8, |_| "/sleep/400".to_owned());
    let mut instances = BTreeSet::new();
    let mut most_in_flight = 0;
    for r in &responses {
        assert_eq!(r.status, 200, "{}", r.body);
        // `slept 400 on <instance> with <n> in flight`
        let words: Vec<&str> = r.body.split(' ').collect();
        assert_eq!(words.len(), 8, "{}", r.body);
        instances.insert(words[3].to_owned());
        most_in_flight = most_in_flight.max(words[5].parse::<u32>().expect("n"));
    }
    assert_eq!(
        instances.len(),
        1,
        "instances: 1 in the manifest: {instances:?}"
    );
    assert!(
        most_in_flight > 1,
        "one instance had {most_in_flight} request(s) in flight at most"
    );
    // The instance lives on: its counter keeps counting.
    assert_eq!(counts(&trellis, 2), strings(&["1", "2"]));
}

#[test]
fn a_wasi_0_3_component_answers_every_request_right_under_load() {
    let (_dir, trellis) = serve("hello_p3", 2, &[], &[]);
    let addr = trellis.addr();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..40 {
                    let text = format!("t{t}-r{i}");
                    let r = get(addr, &format!("/echo/{text}"));
                    assert_eq!((r.status, r.body.as_str()), (200, text.as_str()));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("load thread");
    }
}

#[test]
fn a_wasi_0_3_request_that_traps_retires_its_instance_and_the_next_gets_a_new_one() {
    let (_dir, trellis) = serve("hello_p3", 1, &[], &[]);
    let before = get(trellis.addr(), "/instance");
    assert_eq!(before.status, 200);
    let addr = trellis.addr();
    let sleepers: Vec<_> = (0..4)
        .map(|_| std::thread::spawn(move || get(addr, "/sleep/1500")))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let trapped = get(addr, "/trap");
    assert_eq!(trapped.status, 500, "{}", trapped.body);
    assert!(trapped.body.contains("trapped"), "{}", trapped.body);
    // The requests that shared the instance end (the trap took their instance with it, as
    // the component model requires): each answers, none hangs.
    for s in sleepers {
        let r = s.join().expect("sleeper");
        assert!(
            r.status == 200 || r.status == 500,
            "{}: {}",
            r.status,
            r.body
        );
    }
    let after = get(addr, "/instance");
    assert_eq!(after.status, 200);
    assert_ne!(after.body, before.body, "a new instance after the trap");
    assert_eq!(counts(&trellis, 1), strings(&["1"]));
}

#[test]
fn a_wasi_0_3_instance_is_bounded_in_concurrency_and_requests_and_stopped_at_its_deadline() {
    let (_dir, one_at_a_time) = serve(
        "hello_p3",
        1,
        &[],
        &[
            "--instance-max-concurrent",
            "1",
            "--instance-max-requests",
            "3",
        ],
    );
    for r in concurrently(&one_at_a_time, 4, |_| "/sleep/100".to_owned()) {
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.body.ends_with("with 1 in flight"), "{}", r.body);
    }
    // One request at a time, three per instance: the four went to two instances (three and
    // one), so the second takes two more requests, then a third instance takes over.
    assert_eq!(
        counts(&one_at_a_time, 5),
        strings(&["1", "2", "1", "2", "3"])
    );

    let (_dir, trellis) = serve("hello_p3", 1, &[], &["--max-execution-time", "2s"]);
    let r = get(trellis.addr(), "/spin");
    assert_eq!(r.status, 504, "{}", r.body);
    assert!(r.body.contains("execution time limit"), "{}", r.body);
    let r = get(trellis.addr(), "/");
    assert_eq!((r.status, r.body.as_str()), (200, "hello from WASI 0.3"));
}

#[test]
fn instance_flags_refuse_zero() {
    for flag in ["--instance-max-requests", "--instance-max-concurrent"] {
        let out = run(&["up", "no-such.yaml", flag, "0"]);
        assert_ne!(out.code, Some(0));
        assert!(out.stderr.contains(flag), "{}", out.stderr);
    }
}
