//! `--metrics ADDR`: Prometheus metrics of a real host, scraped over HTTP, and the same
//! counters through `trellis.stats`.

mod common;

use common::metrics::*;
use common::*;
use std::net::SocketAddr;
use std::time::Duration;

#[test]
fn requests_traps_deadlines_and_memory_are_counted_per_component() {
    let dir = tempfile::tempdir().expect("tempdir");
    install_guest(dir.path(), "behaviours");
    let manifest = write_manifest(dir.path(), &http_app("metered", "behaviours", 2, ""));
    let trellis = Trellis::up(
        &manifest,
        &[
            "--metrics",
            "127.0.0.1:0",
            "--max-execution-time",
            "1s",
            "--admin-token",
            "t0ken",
        ],
    );
    let addr = trellis.addr();
    let metrics = metrics_addr(&trellis);
    let component = "metered-web";
    let host_id = trellis
        .stdout
        .iter()
        .find_map(|l| l.split("is running on host ").nth(1))
        .expect("host id")
        .trim()
        .to_owned();

    for _ in 0..3 {
        assert_eq!(get(addr, "/").status, 200);
    }
    assert_eq!(get(addr, "/trap").status, 500);
    assert_eq!(get(addr, "/loop").status, 504);
    let grown = get(addr, "/grow");
    assert!(grown.status >= 500, "{}", grown.body);

    let scrape = scrape_metrics(metrics);
    let with = |class: &str| {
        scrape.expect(
            "trellis_http_requests_total",
            &[
                ("component_id", component),
                ("status_class", class),
                ("host_id", &host_id),
            ],
        )
    };
    assert_eq!(with("2xx"), 3.0);
    assert_eq!(with("5xx"), 3.0);
    assert_eq!(
        scrape.expect(
            "trellis_http_request_duration_seconds_count",
            &[("component_id", component)]
        ),
        6.0
    );
    let looped = scrape.expect(
        "trellis_http_request_duration_seconds_sum",
        &[("component_id", component)],
    );
    assert!(looped >= 1.0, "the 1 s deadline is in the sum: {looped}");
    for (name, want) in [
        // `/trap` panics; `/grow`'s allocator aborts when refused memory, which traps too.
        ("trellis_component_traps_total", 2.0),
        ("trellis_component_deadline_hits_total", 1.0),
        ("trellis_component_memory_limit_hits_total", 1.0),
        ("trellis_component_instances_max", 2.0),
        ("trellis_component_instances_in_use", 0.0),
        ("trellis_component_queue_depth", 0.0),
    ] {
        assert_eq!(
            scrape.expect(name, &[("component_id", component)]),
            want,
            "{name}"
        );
    }
    assert_eq!(
        scrape.expect(
            "trellis_provider_up",
            &[("provider_id", "metered-httpserver")]
        ),
        1.0
    );

    // Every family is on the metrics page, with its labels.
    let page = std::fs::read_to_string(trellis_test_support::repo_root().join("docs/metrics.md"))
        .expect("docs/metrics.md");
    for family in &scrape.families {
        assert!(
            page.contains(&format!("`{family}")),
            "docs/metrics.md does not describe {family}"
        );
    }

    // The same counters through the control interface, as the dashboard reads them.
    let stats = request_with(
        &trellis.admin_address(),
        &format!("/v1/ctl/trellis.stats.{host_id}"),
        "t0ken",
    );
    let stats: serde_json::Value = serde_json::from_str(&stats).expect("stats JSON");
    assert_eq!(stats["success"], true, "{stats}");
    let web = stats["response"]["components"]
        .as_array()
        .expect("components")
        .iter()
        .find(|c| c["component_id"] == component)
        .unwrap_or_else(|| panic!("no {component} in {stats}"))
        .clone();
    assert_eq!(web["requests"]["2xx"], 3, "{web}");
    assert_eq!(web["requests"]["5xx"], 3, "{web}");
    assert_eq!(web["errors"], 3, "{web}");
    assert_eq!(web["traps"], 2, "{web}");
    assert_eq!(web["deadline_hits"], 1, "{web}");
    assert_eq!(web["max_instances"], 2, "{web}");

    // Read-only: one path, GET only.
    assert_eq!(get(metrics, "/").status, 404);
    assert_eq!(request(metrics, "POST", "/metrics", b"").status, 405);
}

/// POSTs an empty body to `path` on the admin endpoint with `token`; the body of the answer.
fn request_with(admin: &str, path: &str, token: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(admin).expect("connect");
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut text = String::new();
    stream.read_to_string(&mut text).expect("read");
    let (_, body) = text.split_once("\r\n\r\n").expect("head and body");
    body.to_owned()
}

#[test]
fn provider_operations_and_health_are_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    install_guest(dir.path(), "kv_counter");
    let kv = ("wasi", "keyvalue", "atomics, store");
    let manifest = write_manifest(
        dir.path(),
        &capability_app(
            "kv_counter",
            "trellis+builtin://keyvalue-memory",
            kv,
            "",
            "",
        ),
    );
    let trellis = Trellis::up(&manifest, &["--metrics", "127.0.0.1:0"]);
    for _ in 0..4 {
        assert_eq!(get(trellis.addr(), "/").status, 200);
    }
    let scrape = scrape_metrics(metrics_addr(&trellis));
    let ok: f64 = scrape
        .samples
        .iter()
        .filter(|(s, _)| {
            s.starts_with("trellis_provider_operations_total{")
                && s.contains("capability=\"keyvalue\"")
                && s.contains("outcome=\"ok\"")
        })
        .map(|(_, v)| v)
        .sum();
    assert!(ok >= 4.0, "{}", scrape.text);
    drop(trellis);

    // A provider whose backend is not there: down in the gauge, its failures counted.
    let port = free_port();
    let manifest = write_manifest(
        dir.path(),
        &capability_app(
            "kv_counter",
            "ghcr.io/wasmcloud/keyvalue-redis:0.30.0",
            kv,
            &format!("                    url: redis://127.0.0.1:{port}\n"),
            "",
        ),
    );
    let trellis = Trellis::up(
        &manifest,
        &[
            "--metrics",
            "127.0.0.1:0",
            "--provider-health-interval",
            "300ms",
        ],
    );
    assert_eq!(get(trellis.addr(), "/").status, 500);
    let metrics = metrics_addr(&trellis);
    let scrape = eventually(
        "the provider reported down",
        Duration::from_secs(10),
        || {
            let scrape = scrape_metrics(metrics);
            let down = scrape
                .samples
                .iter()
                .any(|(s, v)| s.starts_with("trellis_provider_up{") && *v == 0.0);
            down.then_some(scrape)
        },
    );
    let errors: f64 = scrape
        .samples
        .iter()
        .filter(|(s, _)| {
            s.starts_with("trellis_provider_operations_total{") && s.contains("outcome=\"error\"")
        })
        .map(|(_, v)| v)
        .sum();
    assert!(errors >= 1.0, "{}", scrape.text);
}

#[test]
fn a_taken_metrics_port_is_an_error_that_names_the_flag() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    install_guest(dir.path(), "behaviours");
    let manifest = write_manifest(dir.path(), &http_app("metered", "behaviours", 1, ""));
    let out = run(&[
        "up",
        manifest.to_str().expect("path"),
        "--http",
        "127.0.0.1:0",
        "--metrics",
        &addr,
    ]);
    assert_ne!(out.code, Some(0));
    assert!(
        out.stderr
            .contains(&format!("cannot serve metrics on {addr} (--metrics)")),
        "{}",
        out.stderr
    );
}

#[test]
fn a_lattice_host_counts_control_requests_reconciler_actions_calls_and_reconnects() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let nats = NatsServer::start(port, &dir.path().join("nats"));
    let url = nats.url();
    let lattice = "metered";
    let host = LatticeHost::start(
        &url,
        lattice,
        &["--metrics", "127.0.0.1:0", "--friendly-name", "metered"],
    );
    let metrics: SocketAddr = host
        .trellis
        .wait_for_stderr("serving metrics on http://", Duration::from_secs(10))
        .lines()
        .find_map(|l| l.split("serving metrics on http://").nth(1))
        .and_then(|rest| rest.split("/metrics").next())
        .expect("metrics address")
        .parse()
        .expect("socket address");

    // The greeter example, both components on this host: the reconciler starts them, and
    // a request makes a local call from front to back.
    let addr = deploy_greeter(dir.path(), "app.yaml", &url, lattice);
    eventually("the greeter answers", Duration::from_secs(60), || {
        try_request(addr, "GET", "/?name=Ada", b"")
            .ok()
            .filter(|r| r.status == 200)
    });
    let hosts = run(&["get", "hosts", "--nats", &url, "--lattice", lattice]);
    assert_eq!(hosts.code, Some(0), "{}", hosts.stderr);

    let scrape = scrape_metrics(metrics);
    assert!(
        scrape.expect(
            "trellis_control_requests_total",
            &[("operation", "host.ping"), ("outcome", "ok")]
        ) >= 1.0
    );
    let scaled: f64 = scrape
        .samples
        .iter()
        .filter(|(s, _)| {
            s.starts_with("trellis_reconciler_actions_total{")
                && s.contains("action=\"component.scale\"")
                && s.contains("outcome=\"ok\"")
        })
        .map(|(_, v)| v)
        .sum();
    assert!(scaled >= 2.0, "front and back scaled:\n{}", scrape.text);
    assert_eq!(
        scrape.expect(
            "trellis_calls_total",
            &[
                ("component_id", "greeter-front"),
                ("target", "greeter-back"),
                ("locality", "local"),
                ("outcome", "ok")
            ]
        ),
        1.0
    );
    assert_eq!(
        scrape.expect(
            "trellis_call_duration_seconds_count",
            &[
                ("component_id", "greeter-front"),
                ("target", "greeter-back")
            ]
        ),
        1.0
    );
    assert_eq!(
        scrape.expect(
            "trellis_component_invocations_total",
            &[
                ("component_id", "greeter-back"),
                ("kind", "call"),
                ("outcome", "ok")
            ]
        ),
        1.0
    );
    assert_eq!(scrape.expect("trellis_nats_reconnects_total", &[]), 0.0);

    // NATS goes away and comes back: both connections reconnect.
    drop(nats);
    std::thread::sleep(Duration::from_millis(500));
    let _nats = NatsServer::start(port, &dir.path().join("nats"));
    eventually("the reconnects counted", Duration::from_secs(30), || {
        let scrape = scrape_metrics(metrics);
        (scrape.expect("trellis_nats_reconnects_total", &[]) >= 2.0).then_some(())
    });
}
