//! Hostile and broken guests and clients are contained; everyone else keeps being served.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn behaviours(instances: u32, flags: &[&str]) -> (tempfile::TempDir, Trellis) {
    let dir = tempfile::tempdir().expect("tempdir");
    install_guest(dir.path(), "behaviours");
    let manifest = write_manifest(dir.path(), &http_app("limits", "behaviours", instances, ""));
    let trellis = Trellis::up(&manifest, flags);
    (dir, trellis)
}

#[test]
fn a_guest_looping_forever_is_stopped_at_its_deadline_while_others_are_served() {
    let (_dir, trellis) = behaviours(10, &["--max-execution-time", "2s"]);
    let addr = trellis.addr();
    let loops: Vec<_> = (0..3)
        .map(|_| std::thread::spawn(move || get(addr, "/loop")))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // Three spinning guests on a two-core machine, and a normal request still gets through.
    let normal = get(addr, "/");
    assert_eq!(
        (normal.status, normal.body.as_str()),
        (200, "hello from behaviours")
    );
    for l in loops {
        let r = l.join().expect("thread");
        assert_eq!(r.status, 504, "{}", r.body);
        assert!(
            r.body.contains("exceeded its execution time limit"),
            "{}",
            r.body
        );
    }
}

#[test]
fn a_guest_growing_memory_without_bound_fails_alone() {
    let (_dir, trellis) = behaviours(4, &["--max-memory", "32MiB"]);
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
}

#[test]
fn requests_beyond_instances_and_queue_get_503() {
    let (_dir, trellis) = behaviours(1, &["--max-queued-requests", "1"]);
    let addr = trellis.addr();
    let running = std::thread::spawn(move || get(addr, "/sleep?ms=2000"));
    std::thread::sleep(Duration::from_millis(400));
    let queued = std::thread::spawn(move || get(addr, "/sleep?ms=10"));
    std::thread::sleep(Duration::from_millis(400));
    let refused = get(addr, "/");
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(refused.body.contains("busy"), "{}", refused.body);
    assert_eq!(running.join().expect("thread").status, 200);
    assert_eq!(
        queued.join().expect("thread").status,
        200,
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
fn a_slow_client_is_disconnected_after_the_header_timeout() {
    let (_dir, trellis) = behaviours(2, &["--header-read-timeout", "1s"]);
    let mut slow = TcpStream::connect(trellis.addr()).expect("connect");
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .expect("partial headers");
    slow.set_read_timeout(Some(Duration::from_secs(20)))
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
    let running = std::thread::spawn(move || get(addr, "/sleep?ms=2000"));
    std::thread::sleep(Duration::from_millis(500));
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
    let stuck = std::thread::spawn(move || try_request(addr, "GET", "/sleep?ms=20000", b""));
    std::thread::sleep(Duration::from_millis(500));
    let started = std::time::Instant::now();
    assert_eq!(trellis.terminate(), Some(0));
    // Not a performance assertion: the host must not wait out the 20 s guest.
    assert!(
        started.elapsed() < Duration::from_secs(15),
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
