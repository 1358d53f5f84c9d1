//! Hostile and broken guests and clients are contained; everyone else keeps being served.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn behaviours(instances: u32, flags: &[&str]) -> (tempfile::TempDir, Trellis) {
    let dir = tempfile::tempdir().expect("tempdir");
    install_guest(dir.path(), "behaviours");
    let manifest = write_manifest(dir.path(), &http_app("limits", "behaviours", instances, ""));
    let trellis = Trellis::up(&manifest, flags);
    (dir, trellis)
}

/// Waits until the guest has logged `announce` (the `announce=` query parameter of the
/// behaviours guest) `times` times: those requests are running in the guest.
fn wait_for_announcements(trellis: &Trellis, announce: &str, times: usize) {
    eventually(
        &format!("{times} requests to announce {announce:?} from the guest"),
        Duration::from_secs(30),
        || {
            let logged = trellis
                .stderr()
                .lines()
                .filter(|l| l.contains(announce) && l.contains("context=behaviours"))
                .count();
            (logged >= times).then_some(())
        },
    );
}

#[test]
fn a_guest_looping_forever_is_stopped_at_its_deadline_while_others_are_served() {
    let (_dir, trellis) = behaviours(10, &["--max-execution-time", "2s"]);
    let addr = trellis.addr();
    let loops: Vec<_> = (0..3)
        .map(|_| {
            std::thread::spawn(move || {
                let started = Instant::now();
                let response = get(addr, "/loop?announce=spinning-now");
                (response, started.elapsed())
            })
        })
        .collect();
    wait_for_announcements(&trellis, "spinning-now", 3);
    // Three spinning guests on a two-core machine, and a normal request still gets through.
    let normal = get(addr, "/");
    assert_eq!(
        (normal.status, normal.body.as_str()),
        (200, "hello from behaviours")
    );
    for l in loops {
        let (r, took) = l.join().expect("thread");
        assert_eq!(r.status, 504, "{}", r.body);
        assert!(
            r.body.contains("exceeded its execution time limit"),
            "{}",
            r.body
        );
        // Not a performance assertion: the 2 s limit, not the 30 s default, stopped it.
        assert!(
            took < Duration::from_secs(20),
            "the loop was stopped after {took:?}, not at the 2 s limit"
        );
    }
}

#[test]
fn a_guest_growing_memory_without_bound_fails_alone() {
    // 64 MiB is within the 256 MiB default ...
    {
        let (_dir, default) = behaviours(4, &[]);
        let r = get(default.addr(), "/alloc?mib=64");
        assert_eq!((r.status, r.body.as_str()), (200, "allocated 64 MiB"));
    }
    // ... and over a 32 MiB limit.
    let (_dir, trellis) = behaviours(4, &["--max-memory", "32MiB"]);
    let r = get(trellis.addr(), "/alloc?mib=64");
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(r.body.contains("trapped"), "{}", r.body);
    let r = get(trellis.addr(), "/alloc?mib=16");
    assert_eq!((r.status, r.body.as_str()), (200, "allocated 16 MiB"));
    let r = get(trellis.addr(), "/grow");
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(r.body.contains("trapped"), "{}", r.body);
    assert_eq!(get(trellis.addr(), "/").status, 200);
}

#[test]
fn stack_overflow_and_panics_are_a_500_for_that_request_only() {
    let (_dir, trellis) = behaviours(4, &[]);
    let r = get(trellis.addr(), "/recurse");
    assert_eq!(r.status, 500, "{}", r.body);
    // The log explains the 500: wasmtime's trap message for a stack overflow.
    trellis.wait_for_stderr("call stack exhausted", Duration::from_secs(10));
    assert_eq!(get(trellis.addr(), "/trap").status, 500);
    assert_eq!(get(trellis.addr(), "/").status, 200);
    // The default 512 KiB stack holds 5,000 calls of the guest's recursion, not 50,000
    // (the stack test below relies on both).
    let r = get(trellis.addr(), "/recurse?depth=5000");
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "recursion ended at depth 5000")
    );
    assert_eq!(get(trellis.addr(), "/recurse?depth=50000").status, 500);
}

#[test]
fn the_wasm_stack_flag_sets_how_deep_a_guest_may_recurse() {
    {
        let (_dir, small) = behaviours(2, &["--max-wasm-stack", "64KiB"]);
        let r = get(small.addr(), "/recurse?depth=5000");
        assert_eq!(r.status, 500, "{}", r.body);
        small.wait_for_stderr("call stack exhausted", Duration::from_secs(10));
        assert_eq!(get(small.addr(), "/").status, 200);
    }
    let (_dir, large) = behaviours(2, &["--max-wasm-stack", "4MiB"]);
    let r = get(large.addr(), "/recurse?depth=50000");
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "recursion ended at depth 50000")
    );
}

#[test]
fn requests_beyond_instances_and_queue_get_503() {
    let (_dir, trellis) = behaviours(1, &["--max-queued-requests", "1"]);
    let addr = trellis.addr();
    // The one instance is busy for 5 s: long enough for two more requests to arrive.
    let running = std::thread::spawn(move || get(addr, "/sleep?ms=5000&announce=running-now"));
    wait_for_announcements(&trellis, "running-now", 1);
    // Of two more requests, whichever comes first takes the one queue slot and waits; the
    // other is refused at once.
    let more: Vec<_> = (0..2)
        .map(|_| std::thread::spawn(move || get(addr, "/sleep?ms=10")))
        .collect();
    let mut more: Vec<Response> = more
        .into_iter()
        .map(|t| t.join().expect("thread"))
        .collect();
    more.sort_by_key(|r| r.status);
    let (queued, refused) = (&more[0], &more[1]);
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(refused.body.contains("busy"), "{}", refused.body);
    assert_eq!(running.join().expect("thread").status, 200);
    assert_eq!(
        (queued.status, queued.body.as_str()),
        (200, "slept 10"),
        "the queued request waits, it is not dropped"
    );
}

#[test]
fn oversized_bodies_get_413_declared_or_streamed() {
    let (_dir, trellis) = behaviours(2, &["--max-request-body", "1KiB"]);
    let addr = trellis.addr();
    let ok = request(addr, "POST", "/echo", &[b'x'; 500]);
    assert_eq!((ok.status, ok.body.as_str()), (200, "500 bytes"));

    let declared = request(addr, "POST", "/echo", &[b'x'; 4000]);
    assert_eq!(declared.status, 413);
    assert!(declared.body.contains("1024 bytes"), "{}", declared.body);

    // Chunked: no Content-Length, so the limit bites while the guest reads.
    let mut s = TcpStream::connect(addr).expect("connect");
    write!(
        s,
        "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .expect("write");
    for _ in 0..4 {
        write!(s, "3e8\r\n{}\r\n", "y".repeat(1000)).expect("write chunk");
    }
    write!(s, "0\r\n\r\n").expect("write end");
    let streamed = read_response(&mut s).expect("response");
    assert_eq!(streamed.status, 413, "{}", streamed.body);
}

#[test]
fn headers_over_the_limit_get_431() {
    let head = |size: usize| {
        format!(
            "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: {}\r\n\r\n",
            "h".repeat(size)
        )
    };
    let send = |addr, text: &str| {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.write_all(text.as_bytes()).expect("write");
        read_response(&mut s).expect("response")
    };
    // The default (64KiB) takes 20KiB of headers; --max-header-size 16KiB does not.
    let (_dir, trellis) = behaviours(1, &[]);
    assert_eq!(send(trellis.addr(), &head(20 << 10)).status, 200);
    assert_eq!(send(trellis.addr(), &head(100 << 10)).status, 431);
    let (_dir, trellis) = behaviours(1, &["--max-header-size", "16KiB"]);
    assert_eq!(send(trellis.addr(), &head(8 << 10)).status, 200);
    assert_eq!(send(trellis.addr(), &head(20 << 10)).status, 431);
    // The host keeps serving.
    assert_eq!(send(trellis.addr(), &head(10)).status, 200);
}

#[test]
fn a_slow_client_is_disconnected_after_the_header_timeout() {
    let (_dir, trellis) = behaviours(2, &["--header-read-timeout", "1s"]);
    let mut slow = TcpStream::connect(trellis.addr()).expect("connect");
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .expect("partial headers");
    // Not a performance assertion: the 1 s timeout, not the 10 s default, must close it.
    slow.set_read_timeout(Some(Duration::from_secs(8)))
        .expect("timeout");
    // Others are served meanwhile.
    assert_eq!(get(trellis.addr(), "/").status, 200);
    let mut buf = Vec::new();
    let closed = slow.read_to_end(&mut buf);
    assert!(
        closed.is_ok(),
        "the server closes the connection rather than waiting forever: {closed:?}"
    );
}

#[test]
fn instances_beyond_the_pool_get_503() {
    // The component may run 5 at once, but the host's pool holds one instance in all.
    let (_dir, trellis) = behaviours(5, &["--max-total-instances", "1"]);
    let addr = trellis.addr();
    let running = std::thread::spawn(move || get(addr, "/sleep?ms=4000&announce=running-now"));
    wait_for_announcements(&trellis, "running-now", 1);
    let refused = get(addr, "/");
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(
        refused.body.contains("could not be instantiated"),
        "{}",
        refused.body
    );
    assert_eq!(running.join().expect("thread").status, 200);
    // The slot is free again.
    assert_eq!(get(addr, "/").status, 200);
}

#[test]
fn shutdown_stops_waiting_for_requests_after_the_drain_timeout() {
    let (_dir, mut trellis) = behaviours(2, &["--drain-timeout", "1s"]);
    let addr = trellis.addr();
    let stuck = std::thread::spawn(move || {
        try_request(addr, "GET", "/sleep?ms=20000&announce=stuck-now", b"")
    });
    wait_for_announcements(&trellis, "stuck-now", 1);
    let started = Instant::now();
    assert_eq!(trellis.terminate(), Some(0));
    // Not a performance assertion: the host must wait out neither the 20 s guest nor the
    // 10 s default drain timeout.
    assert!(
        started.elapsed() < Duration::from_secs(7),
        "exit took {:?}",
        started.elapsed()
    );
    let outcome = stuck.join().expect("thread");
    assert!(
        outcome.as_ref().map_or(true, |r| r.status != 200),
        "the cut-off request did not complete: {:?}",
        outcome.map(|r| r.status)
    );
}

/// Every request runs in a fresh instance whose memory is its own initial memory, whether the
/// slot it gets was reset in place (`--memory-keep-resident`, the default 1 MiB, or more than
/// the guest touched) or handed back to the kernel (0): a counter in guest memory is 1 every
/// time, also right after a request that filled megabytes of memory.
#[test]
fn a_fresh_instance_never_sees_the_memory_of_the_one_before() {
    for keep in ["1MiB", "0", "64MiB"] {
        let (_dir, trellis) = behaviours(2, &["--memory-keep-resident", keep]);
        for round in 0..20 {
            let r = get(trellis.addr(), "/count");
            assert_eq!(
                (r.status, r.body.as_str()),
                (200, "1"),
                "--memory-keep-resident {keep}, request {round}"
            );
            if round % 5 == 0 {
                let r = get(trellis.addr(), "/alloc?mib=8");
                assert_eq!(r.status, 200, "{}", r.body);
            }
        }
    }
}
