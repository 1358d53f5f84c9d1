//! Calls between components through links: in one `trellis up` process (no NATS at all),
//! and across `trellis host` processes on a real NATS server (wRPC).
//!
//! The `caller` guest answers HTTP by calling the `trellis:test/calls` interface that the
//! `callee` guest exports (see test-components/).

mod common;

use common::*;
use futures::StreamExt as _;
use std::time::Duration;

const LINK_TO_CALLEE: &str = r#"
        - type: link
          properties:
            target:
              name: callee
            namespace: trellis
            package: test
            interfaces: [calls]"#;

fn app(callee_image: &str, execution_time_note: &str) -> String {
    format!(
        r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: calls
  annotations:
    note: '{execution_time_note}'
spec:
  components:
    - name: caller
      type: component
      properties:
        image: file://./build/caller.wasm
      traits:
        - type: spreadscaler
          properties:
            instances: 4{LINK_TO_CALLEE}
    - name: callee
      type: component
      properties:
        image: file://./build/{callee_image}.wasm
        config:
          - name: callee-config
            properties:
              who: embedded
      traits:
        - type: spreadscaler
          properties:
            instances: 4
    - name: httpserver
      type: capability
      properties:
        image: ghcr.io/wasmcloud/http-server:0.27.0
      traits:
        - type: link
          properties:
            target:
              name: caller
            namespace: wasi
            package: http
            interfaces: [incoming-handler]
"#
    )
}

#[test]
fn components_call_components_on_the_same_host() {
    let dir = tempfile::tempdir().expect("tempdir");
    install_guest(dir.path(), "caller");
    install_guest(dir.path(), "callee");
    let manifest = write_manifest(dir.path(), &app("callee", ""));
    let mut trellis = Trellis::up(&manifest, &["--max-execution-time", "2s"]);
    let addr = trellis.addr();

    let r = get(addr, "/greet?name=Ada");
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "hello Ada from embedded")
    );
    // Every kind of value, both branches of each variant, option and result.
    for path in ["/roundtrip", "/roundtrip?variant=2", "/roundtrip?variant=3"] {
        let r = get(addr, path);
        assert_eq!((r.status, r.body.as_str()), (200, "ok"), "{path}");
    }
    assert_eq!(get(addr, "/divide?a=7&b=2").body, "ok:3");
    assert_eq!(get(addr, "/divide?a=1&b=0").body, "err:division by zero");
    let body: Vec<u8> = (0..100_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let r = request(addr, "POST", "/echo", &body);
    assert_eq!(r.status, 200);
    assert!(r.body.as_bytes() == body, "the echo came back intact");

    // A trap in the callee fails the call, and with it the caller's request; both recover.
    let r = get(addr, "/fail?reason=boom-42");
    assert_eq!(r.status, 500);
    let log = trellis.wait_for_stderr("boom-42", Duration::from_secs(5));
    assert!(
        log.contains("call from `calls_caller` to `trellis:test/calls@0.1.0.fail` on component `calls_callee` failed"),
        "{log}"
    );
    // The callee overruns its own execution limit: the call fails before the caller's does.
    let r = get(addr, "/spin?ms=5000");
    assert!(r.status == 500 || r.status == 504, "{}", r.status);
    trellis.wait_for_stderr("exceeded its execution time limit", Duration::from_secs(5));
    assert_eq!(
        get(addr, "/greet?name=again").body,
        "hello again from embedded"
    );
    assert_eq!(trellis.terminate(), Some(0));
}

/// Two links from the caller for one interface, to two components, told apart by name:
/// `set-link-name` picks per request, and a name with no link is refused.
#[test]
fn link_names_pick_the_component_a_call_goes_to() {
    let dir = tempfile::tempdir().expect("tempdir");
    install_guest(dir.path(), "caller");
    install_guest(dir.path(), "callee");
    let manifest = app("callee", "")
        .replace(
            "    - name: httpserver\n",
            r#"    - name: second
      type: component
      properties:
        image: file://./build/callee.wasm
        config:
          - name: second-config
            properties:
              who: second
    - name: httpserver
"#,
        )
        .replace(
            "            interfaces: [calls]",
            r#"            interfaces: [calls]
        - type: link
          properties:
            name: other
            target:
              name: second
            namespace: trellis
            package: test
            interfaces: [calls]"#,
        );
    let manifest = write_manifest(dir.path(), &manifest);
    let trellis = Trellis::up(&manifest, &[]);
    let addr = trellis.addr();
    assert_eq!(get(addr, "/greet?name=Ada").body, "hello Ada from embedded");
    assert_eq!(
        get(addr, "/greet?name=Ada&link=other").body,
        "hello Ada from second"
    );
    assert_eq!(
        get(addr, "/greet?name=Ada").body,
        "hello Ada from embedded",
        "each request starts on the default link"
    );
    let r = get(addr, "/greet?name=Ada&link=nope");
    assert_eq!(r.status, 500);
    assert!(
        r.body
            .contains("no link named `nope` carrying `trellis:test/calls`"),
        "{}",
        r.body
    );
}

#[test]
fn a_link_to_a_component_that_does_not_export_the_interface_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    install_guest(dir.path(), "caller");
    install_guest(dir.path(), "http_hello");
    let manifest = write_manifest(dir.path(), &app("http_hello", ""));
    let out = run(&[
        "up",
        manifest.to_str().expect("utf-8"),
        "--http",
        "127.0.0.1:0",
    ]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "component `caller` links trellis:test/{calls} to component `callee`, which does not export trellis:test/calls"
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn a_call_to_a_component_that_runs_nowhere_fails_clearly_in_embedded_mode() {
    let dir = tempfile::tempdir().expect("tempdir");
    install_guest(dir.path(), "caller");
    install_guest(dir.path(), "callee");
    // The callee is declared with zero instances: nothing runs it.
    let manifest = app("callee", "").replacen(
        "instances: 4\n    - name: httpserver",
        "instances: 0\n    - name: httpserver",
        1,
    );
    let manifest = write_manifest(dir.path(), &manifest);
    let trellis = Trellis::up(&manifest, &[]);
    let r = get(trellis.addr(), "/greet?name=x");
    assert_eq!(r.status, 500);
    trellis.wait_for_stderr(
        "component `calls_callee` is not running on this host (embedded mode has no lattice to reach other hosts)",
        Duration::from_secs(5),
    );
}

/// Runs `trellis ARGS --nats URL --lattice LATTICE` and insists that it succeeds.
fn lattice_cli<'a>(url: &'a str, lattice: &'a str) -> impl Fn(&[&str]) -> Exited + 'a {
    move |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--nats", url, "--lattice", lattice]);
        let out = run(&all);
        assert_eq!(out.code, Some(0), "trellis {args:?}: {}", out.stderr);
        out
    }
}

/// An HTTP server provider on host `front` listening on `port` for the `caller` component,
/// and the caller's link to the `callee`.
fn serve_caller_on_front(cli: &impl Fn(&[&str]) -> Exited, port: u16) {
    cli(&[
        "config",
        "put",
        "front-http",
        &format!("address=127.0.0.1:{port}"),
    ]);
    cli(&[
        "start",
        "provider",
        "ghcr.io/wasmcloud/http-server:0.27.0",
        "http",
        "--host",
        "front",
    ]);
    cli(&[
        "link",
        "put",
        "http",
        "caller",
        "wasi:http/incoming-handler",
        "--source-config",
        "front-http",
    ]);
    cli(&["link", "put", "caller", "callee", "trellis:test/calls"]);
}

/// Three hosts on one NATS server: the caller on `front`, the callee on `back` (and later on
/// `front` too), a third host that only watches.
#[test]
fn components_call_across_hosts_over_wrpc() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nats = NatsServer::start(free_port(), &dir.path().join("nats"));
    let url = nats.url();
    let lattice = "calls";
    let front = LatticeHost::start(
        &url,
        lattice,
        &["--friendly-name", "front", "--call-timeout", "1s"],
    );
    let mut back = LatticeHost::start(&url, lattice, &["--friendly-name", "back"]);
    let _third = LatticeHost::start(&url, lattice, &["--friendly-name", "third"]);
    let caller = install_guest(dir.path(), "caller");
    let callee = install_guest(dir.path(), "callee");
    let port = free_port();
    let cli = lattice_cli(&url, lattice);
    cli(&["config", "put", "who-back", "who=back"]);
    cli(&["config", "put", "who-front", "who=front"]);
    serve_caller_on_front(&cli, port);
    let file = |p: &std::path::Path| format!("file://{}", p.display());
    cli(&[
        "start",
        "component",
        &file(&callee),
        "callee",
        "--host",
        "back",
        "--config",
        "who-back",
    ]);
    cli(&[
        "start",
        "component",
        &file(&caller),
        "caller",
        "--host",
        "front",
        "--count",
        "4",
    ]);

    // Watch the callee's wRPC subject: calls to `back` cross NATS.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let client = rt
        .block_on(async_nats::connect(url.clone()))
        .expect("connect");
    let mut wire = rt
        .block_on(client.subscribe(format!("{lattice}.callee.wrpc.>")))
        .expect("subscribe");
    rt.block_on(client.flush()).expect("flush");

    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let greeting = eventually(
        "the caller to reach the callee",
        Duration::from_secs(30),
        || {
            try_request(addr, "GET", "/greet?name=Ada", b"")
                .ok()
                .filter(|r| r.status == 200)
                .map(|r| r.body)
        },
    );
    assert_eq!(greeting, "hello Ada from back");
    for path in ["/roundtrip", "/roundtrip?variant=2", "/roundtrip?variant=3"] {
        let r = get(addr, path);
        assert_eq!((r.status, r.body.as_str()), (200, "ok"), "{path}");
    }
    assert_eq!(get(addr, "/divide?a=-9&b=2").body, "ok:-4");
    // Larger than one NATS message (1 MiB by default) both ways.
    let body: Vec<u8> = (0..1_500_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let r = request(addr, "POST", "/echo", &body);
    assert_eq!(r.status, 200);
    assert!(r.body.as_bytes() == body, "the echo came back intact");
    let seen = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(5), wire.next())
            .await
            .ok()
            .flatten()
    });
    let seen = seen.expect("a call to `back` was published on the lattice");
    assert!(
        seen.subject
            .as_str()
            .starts_with("calls.callee.wrpc.0.0.1.trellis:test/calls@0.1.0."),
        "{}",
        seen.subject
    );
    assert_eq!(
        seen.headers
            .as_ref()
            .and_then(|h| h.get("source-id"))
            .map(|v| v.as_str()),
        Some("caller")
    );

    // Errors cross the wire as errors.
    assert_eq!(get(addr, "/fail?reason=far-away-boom").status, 500);
    front.trellis.wait_for_stderr(
        "call from `caller` to `trellis:test/calls@0.1.0.fail` on component `callee` failed: component `callee` trapped",
        Duration::from_secs(5),
    );
    // The guest's panic message is on the stderr of the host that ran it.
    back.trellis
        .wait_for_stderr("far-away-boom", Duration::from_secs(5));
    assert_eq!(get(addr, "/spin?ms=3000").status, 500);
    front.trellis.wait_for_stderr(
        "no reply from component `callee` within 1s",
        Duration::from_secs(5),
    );

    // With the callee on `front` too, calls stay on `front`: no NATS hop.
    cli(&[
        "start",
        "component",
        &file(&callee),
        "callee",
        "--host",
        "front",
        "--config",
        "who-front",
    ]);
    eventually("calls to stay on front", Duration::from_secs(30), || {
        (get(addr, "/greet?name=x").body == "hello x from front").then_some(())
    });
    rt.block_on(async {
        while tokio::time::timeout(Duration::from_millis(300), wire.next())
            .await
            .is_ok()
        {}
    });
    for _ in 0..20 {
        assert_eq!(get(addr, "/greet?name=x").body, "hello x from front");
    }
    let leaked = rt.block_on(async {
        tokio::time::timeout(Duration::from_millis(500), wire.next())
            .await
            .ok()
            .flatten()
    });
    assert!(
        leaked.is_none(),
        "a same-host call went over NATS: {leaked:?}"
    );

    // Stop the callee on `front` and the `back` host: the target runs nowhere. (Our own
    // subscription would count as interest in the subject: drop it first.)
    drop(wire);
    rt.block_on(client.flush()).expect("flush");
    cli(&[
        "scale",
        "component",
        "callee",
        "--count",
        "0",
        "--host",
        "front",
    ]);
    cli(&["stop", "host", "back"]);
    assert_eq!(back.trellis.wait_exit(Duration::from_secs(20)), Some(0));
    eventually(
        "the call to fail as not running",
        Duration::from_secs(30),
        || (get(addr, "/greet?name=x").status == 500).then_some(()),
    );
    front.trellis.wait_for_stderr(
        "component `callee` is not running on any host of lattice `calls`",
        Duration::from_secs(5),
    );
}

/// `--max-call-size` bounds what one call between hosts may carry: 100 KB crosses at the
/// 8 MiB default (1.5 MB does in the test above) but not at 64 KiB.
#[test]
fn the_call_size_flag_bounds_calls_between_hosts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nats = NatsServer::start(free_port(), &dir.path().join("nats"));
    let url = nats.url();
    let lattice = "callsize";
    let front = LatticeHost::start(
        &url,
        lattice,
        &["--friendly-name", "front", "--max-call-size", "64KiB"],
    );
    let _back = LatticeHost::start(&url, lattice, &["--friendly-name", "back"]);
    let caller = install_guest(dir.path(), "caller");
    let callee = install_guest(dir.path(), "callee");
    let port = free_port();
    let cli = lattice_cli(&url, lattice);
    let file = |p: &std::path::Path| format!("file://{}", p.display());
    cli(&["config", "put", "who-back", "who=back"]);
    serve_caller_on_front(&cli, port);
    cli(&[
        "start",
        "component",
        &file(&callee),
        "callee",
        "--host",
        "back",
        "--config",
        "who-back",
    ]);
    cli(&[
        "start",
        "component",
        &file(&caller),
        "caller",
        "--host",
        "front",
    ]);

    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let greeting = eventually(
        "the caller to reach the callee on back",
        Duration::from_secs(30),
        || {
            try_request(addr, "GET", "/greet?name=Ada", b"")
                .ok()
                .filter(|r| r.status == 200)
                .map(|r| r.body)
        },
    );
    assert_eq!(greeting, "hello Ada from back");

    let small = vec![b's'; 10_000];
    let r = request(addr, "POST", "/echo", &small);
    assert_eq!(r.status, 200, "{:.200}", r.body);
    assert!(r.body.as_bytes() == small, "the echo came back intact");

    let large = vec![b'l'; 100_000];
    let r = request(addr, "POST", "/echo", &large);
    assert_eq!(r.status, 500, "{:.200}", r.body);
    front.trellis.wait_for_stderr(
        "over the limit of 65536 bytes (--max-call-size)",
        Duration::from_secs(10),
    );
}

/// Link names across hosts: the caller on `front` has a default link to `callee` and one
/// named `other` to `callee-b`, both on `back`; `set-link-name` picks which one a call
/// crosses to.
#[test]
fn link_names_pick_the_component_across_hosts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nats = NatsServer::start(free_port(), &dir.path().join("nats"));
    let url = nats.url();
    let lattice = "names";
    let _front = LatticeHost::start(&url, lattice, &["--friendly-name", "front"]);
    let _back = LatticeHost::start(&url, lattice, &["--friendly-name", "back"]);
    let caller = install_guest(dir.path(), "caller");
    let callee = install_guest(dir.path(), "callee");
    let port = free_port();
    let cli = lattice_cli(&url, lattice);
    cli(&["config", "put", "who-a", "who=a"]);
    cli(&["config", "put", "who-b", "who=b"]);
    serve_caller_on_front(&cli, port);
    cli(&[
        "link",
        "put",
        "caller",
        "callee-b",
        "trellis:test/calls",
        "--name",
        "other",
    ]);
    let file = |p: &std::path::Path| format!("file://{}", p.display());
    for (id, config) in [("callee", "who-a"), ("callee-b", "who-b")] {
        cli(&[
            "start",
            "component",
            &file(&callee),
            id,
            "--host",
            "back",
            "--config",
            config,
        ]);
    }
    cli(&[
        "start",
        "component",
        &file(&caller),
        "caller",
        "--host",
        "front",
    ]);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let reach = |path: &str, want: &str| {
        eventually(
            &format!("{path} to answer {want:?}"),
            Duration::from_secs(30),
            || {
                try_request(addr, "GET", path, b"")
                    .ok()
                    .filter(|r| r.body == want)
                    .map(|_| ())
            },
        )
    };
    reach("/greet?name=Ada", "hello Ada from a");
    reach("/greet?name=Ada&link=other", "hello Ada from b");
    assert_eq!(get(addr, "/greet?name=Ada").body, "hello Ada from a");
    let r = get(addr, "/greet?name=Ada&link=nope");
    assert_eq!(r.status, 500);
    assert!(r.body.contains("no link named `nope`"), "{}", r.body);
}
