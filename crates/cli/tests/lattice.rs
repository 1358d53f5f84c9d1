//! `trellis host` on a real NATS server: the control interface as a plain NATS client sees
//! it, heartbeats, a stop request, and a NATS restart survived. (The published
//! `wasmcloud-control-interface` client drives the same hosts in `crates/conformance`.)

mod common;

use common::*;
use futures::StreamExt as _;
use serde_json::{Value, json};
use std::time::Duration;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().expect("runtime")
}

async fn ctl(client: &async_nats::Client, subject: String, body: Value) -> Value {
    let payload = if body.is_null() {
        Vec::new()
    } else {
        serde_json::to_vec(&body).expect("json")
    };
    let msg = tokio::time::timeout(
        Duration::from_secs(10),
        client.request(subject.clone(), payload.into()),
    )
    .await
    .unwrap_or_else(|_| panic!("no reply on {subject}"))
    .unwrap_or_else(|e| panic!("request on {subject}: {e}"));
    serde_json::from_slice(&msg.payload).expect("reply is JSON")
}

/// Collects `host.ping` replies for a second.
async fn ping(client: &async_nats::Client, lattice: &str) -> Vec<Value> {
    let inbox = client.new_inbox();
    let mut replies = client.subscribe(inbox.clone()).await.expect("subscribe");
    client
        .publish_with_reply(
            format!("wasmbus.ctl.v1.{lattice}.host.ping"),
            inbox,
            "".into(),
        )
        .await
        .expect("publish");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while let Some(m) = replies.next().await {
            out.push(serde_json::from_slice::<Value>(&m.payload).expect("json"));
        }
    })
    .await;
    out
}

#[test]
fn hosts_answer_the_control_interface_and_share_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nats = NatsServer::start(free_port(), dir.path());
    let lattice = "ctltest";
    let a = LatticeHost::start(
        &nats.url(),
        lattice,
        &["--label", "zone=a", "--heartbeat-interval", "500ms"],
    );
    let b = LatticeHost::start(&nats.url(), lattice, &["--label", "zone=b"]);
    let rt = runtime();
    rt.block_on(async {
        let client = async_nats::connect(nats.url()).await.expect("connect");
        let mut events = client.subscribe(format!("wasmbus.evt.{lattice}.>")).await.expect("subscribe");
        let prefix = format!("wasmbus.ctl.v1.{lattice}");

        let hosts = ping(&client, lattice).await;
        assert_eq!(hosts.len(), 2, "{hosts:?}");
        let summary = hosts
            .iter()
            .map(|h| &h["response"])
            .find(|h| h["id"] == a.id.as_str())
            .expect("host a answered");
        assert_eq!(summary["labels"]["zone"], "a");
        assert_eq!(summary["lattice"], lattice);
        assert!(summary["labels"]["hostcore.os"].is_string());

        let inventory = ctl(&client, format!("{prefix}.host.get.{}", b.id), Value::Null).await;
        assert_eq!(inventory["success"], true);
        assert_eq!(inventory["response"]["host_id"], b.id.as_str());
        assert_eq!(inventory["response"]["components"], json!([]));

        // Labels: put, refuse hostcore.*, bad JSON gets an error reply, not silence.
        let r = ctl(&client, format!("{prefix}.label.put.{}", a.id), json!({"key": "tier", "value": "gold"})).await;
        assert_eq!(r["success"], true, "{r}");
        let r = ctl(&client, format!("{prefix}.label.put.{}", a.id), json!({"key": "hostcore.os", "value": "x"})).await;
        assert_eq!(r["success"], false);
        let msg = client.request(format!("{prefix}.label.put.{}", a.id), "not json".into()).await.expect("reply");
        let r: Value = serde_json::from_slice(&msg.payload).expect("json");
        assert_eq!(r["success"], false);
        assert!(r["message"].as_str().unwrap_or_default().contains("invalid label request"), "{r}");

        // Config and links put through whichever host answers are read back by any.
        let r = ctl(&client, format!("{prefix}.config.put.db"), json!({"url": "redis://x"})).await;
        assert_eq!(r["success"], true, "{r}");
        let link = json!({
            "source_id": "front", "target": "back", "name": "default",
            "wit_namespace": "example", "wit_package": "greeter", "interfaces": ["greet"],
            "source_config": [], "target_config": ["db"]
        });
        assert_eq!(ctl(&client, format!("{prefix}.link.put"), link.clone()).await["success"], true);
        let conflicting = json!({
            "source_id": "front", "target": "elsewhere", "name": "default",
            "wit_namespace": "example", "wit_package": "greeter", "interfaces": ["greet"]
        });
        let r = ctl(&client, format!("{prefix}.link.put"), conflicting).await;
        assert_eq!(r["success"], false, "a second target for the same link is refused: {r}");

        // A host that joins later sees both.
        let c = LatticeHost::start(&nats.url(), lattice, &[]);
        for _ in 0..5 {
            let got = ctl(&client, format!("{prefix}.config.get.db"), Value::Null).await;
            assert_eq!(got["response"], json!({"url": "redis://x"}));
            let links = ctl(&client, format!("{prefix}.link.get"), Value::Null).await;
            assert_eq!(links["response"], json!([link]));
        }
        let r = ctl(
            &client,
            format!("{prefix}.link.del"),
            json!({"source_id": "front", "name": "default", "wit_namespace": "example", "wit_package": "greeter"}),
        )
        .await;
        assert_eq!(r["success"], true);
        assert_eq!(ctl(&client, format!("{prefix}.link.get"), Value::Null).await["response"], json!([]));

        // Heartbeats carry the inventory.
        let heartbeat = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let m = events.next().await.expect("event");
                let ev: Value = serde_json::from_slice(&m.payload).expect("json");
                // Heartbeats sent before the label was put do not carry it yet.
                if ev["type"] == "com.wasmcloud.lattice.host_heartbeat"
                    && ev["source"] == a.id.as_str()
                    && ev["data"]["labels"]["tier"] == "gold"
                {
                    return ev;
                }
            }
        })
        .await
        .expect("a heartbeat with the new label within 10s");
        assert_eq!(heartbeat["data"]["host_id"], a.id.as_str());
        assert!(heartbeat["data"]["version"].as_str().is_some_and(|v| v.split('.').count() == 3));
        drop(c);
    });
}

#[test]
fn a_stop_request_stops_the_host_and_announces_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nats = NatsServer::start(free_port(), dir.path());
    let mut host = LatticeHost::start(&nats.url(), "stoptest", &[]);
    let rt = runtime();
    let stopped = rt.block_on(async {
        let client = async_nats::connect(nats.url()).await.expect("connect");
        let mut events = client
            .subscribe("wasmbus.evt.stoptest.host_stopped")
            .await
            .expect("subscribe");
        let r = ctl(
            &client,
            format!("wasmbus.ctl.v1.stoptest.host.stop.{}", host.id),
            json!({"host_id": host.id}),
        )
        .await;
        assert_eq!(r["success"], true);
        let m = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("host_stopped within 10s")
            .expect("event");
        serde_json::from_slice::<Value>(&m.payload).expect("json")
    });
    assert_eq!(stopped["source"], host.id.as_str());
    assert_eq!(host.trellis.wait_exit(Duration::from_secs(20)), Some(0));
}

#[test]
fn hosts_survive_a_nats_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let nats = NatsServer::start(port, dir.path());
    let host = LatticeHost::start(&nats.url(), "restart", &[]);
    let url = nats.url();
    drop(nats);
    std::thread::sleep(Duration::from_millis(500));
    let _nats = NatsServer::start(port, dir.path());
    let rt = runtime();
    rt.block_on(async {
        let client = async_nats::connect(url).await.expect("connect");
        let subject = format!("wasmbus.ctl.v1.restart.host.get.{}", host.id);
        let mut answered = None;
        for _ in 0..100 {
            if let Ok(Ok(m)) = tokio::time::timeout(
                Duration::from_millis(500),
                client.request(subject.clone(), "".into()),
            )
            .await
            {
                answered = Some(serde_json::from_slice::<Value>(&m.payload).expect("json"));
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let answered = answered.expect("the host answers again after NATS restarts");
        assert_eq!(answered["response"]["host_id"], host.id.as_str());
    });
    assert!(
        host.trellis
            .stderr()
            .contains("NATS connection (re)established")
    );
}

#[test]
fn the_cli_drives_a_lattice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nats = NatsServer::start(free_port(), dir.path());
    let url = nats.url();
    let mut a = LatticeHost::start(
        &url,
        "clitest",
        &["--friendly-name", "alpha", "--label", "zone=a"],
    );
    let _b = LatticeHost::start(&url, "clitest", &["--friendly-name", "beta"]);
    let cli = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--nats", url.as_str(), "--lattice", "clitest"]);
        run(&all)
    };

    let out = cli(&["get", "hosts", "-o", "json"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let hosts: Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(hosts.as_array().map(Vec::len), Some(2), "{hosts}");
    let table = cli(&["get", "hosts"]).stdout;
    assert!(
        table.starts_with("ID") && table.contains("alpha") && table.contains("zone=a"),
        "{table}"
    );

    assert_eq!(cli(&["label", "put", "alpha", "tier=gold"]).code, Some(0));
    let inventory = cli(&["get", "inventory", "alpha", "-o", "json"]);
    let inventory: Value = serde_json::from_str(&inventory.stdout).expect("json");
    assert_eq!(inventory["labels"]["tier"], "gold");
    let refused = cli(&["label", "put", "alpha", "hostcore.os=x"]);
    assert_eq!(refused.code, Some(1));
    assert!(
        refused.stderr.contains("cannot be changed"),
        "{}",
        refused.stderr
    );
    let ambiguous = cli(&["get", "inventory"]);
    assert_eq!(ambiguous.code, Some(1));
    assert!(
        ambiguous.stderr.contains("2 hosts match"),
        "{}",
        ambiguous.stderr
    );

    assert_eq!(
        cli(&["config", "put", "db", "url=redis://x", "pool=4"]).code,
        Some(0)
    );
    assert_eq!(
        cli(&["get", "config", "db"]).stdout,
        "pool=4\nurl=redis://x\n"
    );
    let missing = cli(&["get", "config", "nope"]);
    assert_eq!(missing.code, Some(1));
    assert!(
        missing.stderr.contains("no config named `nope`"),
        "{}",
        missing.stderr
    );

    let put = cli(&[
        "link",
        "put",
        "front",
        "back",
        "example:greeter/greet",
        "--target-config",
        "db",
    ]);
    assert_eq!(put.code, Some(0), "{}", put.stderr);
    let links: Value =
        serde_json::from_str(&cli(&["get", "links", "-o", "json"]).stdout).expect("json");
    assert_eq!(links[0]["target"], "back");
    assert_eq!(links[0]["target_config"], json!(["db"]));
    let bad = cli(&["link", "put", "front", "back", "greeter"]);
    assert_eq!(bad.code, Some(1));
    assert!(
        bad.stderr.contains("namespace:package/interface"),
        "{}",
        bad.stderr
    );
    assert_eq!(
        cli(&["link", "del", "front", "example:greeter"]).code,
        Some(0)
    );
    assert_eq!(cli(&["get", "links", "-o", "json"]).stdout.trim(), "[]");

    assert_eq!(cli(&["stop", "host", "alpha"]).code, Some(0));
    assert_eq!(a.trellis.wait_exit(Duration::from_secs(20)), Some(0));

    let nobody = run(&[
        "get",
        "links",
        "--nats",
        url.as_str(),
        "--lattice",
        "nobody-here",
    ]);
    assert_eq!(nobody.code, Some(1));
    assert!(
        nobody.stderr.contains("no host answered"),
        "{}",
        nobody.stderr
    );
}

#[test]
fn the_same_cli_works_against_an_embedded_host() {
    let dir = tempfile::tempdir().expect("tempdir");
    install_guest(dir.path(), "http_hello");
    let manifest = write_manifest(dir.path(), &http_app("embedded", "http_hello", 2, ""));
    let trellis = Trellis::up(&manifest, &[]);
    let admin = trellis.admin_url();
    let cli = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--embedded", admin.as_str()]);
        run(&all)
    };
    let hosts: Value =
        serde_json::from_str(&cli(&["get", "hosts", "-o", "json"]).stdout).expect("json");
    assert_eq!(hosts.as_array().map(Vec::len), Some(1), "{hosts}");
    let inventory = cli(&["get", "inventory", "-o", "json"]);
    assert_eq!(inventory.code, Some(0), "{}", inventory.stderr);
    let inventory: Value = serde_json::from_str(&inventory.stdout).expect("json");
    assert_eq!(inventory["components"][0]["max_instances"], 2);
    assert_eq!(inventory["providers"][0]["name"], "httpserver");

    assert_eq!(cli(&["config", "put", "greeting", "text=hi"]).code, Some(0));
    assert_eq!(cli(&["get", "config", "greeting"]).stdout, "text=hi\n");
    assert_eq!(
        cli(&[
            "label",
            "put",
            &hosts[0]["id"].as_str().expect("id")[..8],
            "env=dev"
        ])
        .code,
        Some(0)
    );
    let table = cli(&["get", "hosts"]).stdout;
    assert!(table.contains("env=dev"), "{table}");
    // `trellis events --embedded` streams until the host stops: ctl_commands.rs.
}

#[test]
fn components_and_providers_start_through_the_control_interface() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nats = NatsServer::start(free_port(), &dir.path().join("nats"));
    let url = nats.url();
    let _a = LatticeHost::start(&url, "ops", &["--friendly-name", "alpha"]);
    let _b = LatticeHost::start(&url, "ops", &["--friendly-name", "beta"]);
    let wasm = install_guest(dir.path(), "http_hello");
    let wasm = wasm.to_str().expect("utf8");
    let port = free_port();
    let cli = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--nats", url.as_str(), "--lattice", "ops"]);
        run(&all)
    };
    let rt = runtime();
    let client = rt
        .block_on(async_nats::connect(url.clone()))
        .expect("connect");
    let mut events = rt
        .block_on(client.subscribe("wasmbus.evt.ops.>"))
        .expect("subscribe");

    let start = cli(&[
        "start",
        "provider",
        "ghcr.io/wasmcloud/http-server:0.27.0",
        "web-server",
        "--host",
        "alpha",
    ]);
    assert_eq!(start.code, Some(0), "{}", start.stderr);
    let start = cli(&[
        "start",
        "component",
        &format!("file://{wasm}"),
        "hello",
        "--host",
        "alpha",
        "--count",
        "2",
    ]);
    assert_eq!(start.code, Some(0), "{}", start.stderr);
    assert_eq!(
        cli(&[
            "config",
            "put",
            "hello-http",
            &format!("address=127.0.0.1:{port}")
        ])
        .code,
        Some(0)
    );
    let link = cli(&[
        "link",
        "put",
        "web-server",
        "hello",
        "wasi:http/incoming-handler",
        "--source-config",
        "hello-http",
    ]);
    assert_eq!(link.code, Some(0), "{}", link.stderr);

    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let body = eventually(
        "the linked component to answer over HTTP",
        Duration::from_secs(30),
        || {
            try_request(addr, "GET", "/", b"")
                .ok()
                .filter(|r| r.status == 200)
                .map(|r| r.body)
        },
    );
    assert_eq!(body, "Hello from Trellis!\n");

    let inventory: Value =
        serde_json::from_str(&cli(&["get", "inventory", "alpha", "-o", "json"]).stdout)
            .expect("json");
    assert_eq!(inventory["components"][0]["id"], "hello");
    assert_eq!(inventory["components"][0]["max_instances"], 2);
    assert_eq!(inventory["providers"][0]["id"], "web-server");

    // A component that cannot be loaded is accepted, then fails with the reason as an event.
    let missing = dir.path().join("missing.wasm");
    let r = cli(&[
        "start",
        "component",
        missing.to_str().expect("utf8"),
        "ghost",
        "--host",
        "beta",
    ]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let failed = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                let m = events.next().await.expect("event");
                let ev: Value = serde_json::from_slice(&m.payload).expect("json");
                if ev["type"] == "com.wasmcloud.lattice.component_scale_failed" {
                    return ev;
                }
            }
        })
        .await
        .expect("component_scale_failed within 20s")
    });
    assert_eq!(failed["data"]["component_id"], "ghost");
    assert!(
        failed["data"]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("missing.wasm"),
        "{failed}"
    );
    let relative = cli(&["start", "component", "build/x.wasm", "x", "--host", "beta"]);
    assert_eq!(relative.code, Some(1));
    assert!(
        relative
            .stderr
            .contains("write it as `file://build/x.wasm`"),
        "{}",
        relative.stderr
    );

    // Scaling to zero stops it.
    assert_eq!(
        cli(&[
            "scale",
            "component",
            "hello",
            "--count",
            "0",
            "--host",
            "alpha"
        ])
        .code,
        Some(0)
    );
    let gone = cli(&[
        "scale",
        "component",
        "nothing-here",
        "--count",
        "1",
        "--host",
        "alpha",
    ]);
    assert_eq!(gone.code, Some(1));
    assert!(gone.stderr.contains("pass --ref"), "{}", gone.stderr);
    eventually("the component to stop", Duration::from_secs(20), || {
        let inventory: Value =
            serde_json::from_str(&cli(&["get", "inventory", "alpha", "-o", "json"]).stdout).ok()?;
        inventory["components"]
            .as_array()
            .is_some_and(Vec::is_empty)
            .then_some(())
    });
    assert_eq!(get(addr, "/").status, 503);
}

#[test]
fn three_hosts_run_components_and_one_leaves_gracefully() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nats = NatsServer::start(free_port(), &dir.path().join("nats"));
    let url = nats.url();
    let names = ["one", "two", "three"];
    let mut hosts: Vec<LatticeHost> = names
        .iter()
        .map(|n| LatticeHost::start(&url, "trio", &["--friendly-name", n]))
        .collect();
    let wasm = install_guest(dir.path(), "http_hello");
    let reference = format!("file://{}", wasm.display());
    let cli = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--nats", url.as_str(), "--lattice", "trio"]);
        run(&all)
    };
    let rt = runtime();
    let client = rt
        .block_on(async_nats::connect(url.clone()))
        .expect("connect");
    let mut stopped = rt
        .block_on(client.subscribe("wasmbus.evt.trio.host_stopped"))
        .expect("subscribe");

    for (i, name) in names.iter().enumerate() {
        let id = format!("hello-{name}");
        let count = (i + 1).to_string();
        let r = cli(&[
            "start",
            "component",
            &reference,
            &id,
            "--host",
            name,
            "--count",
            &count,
        ]);
        assert_eq!(r.code, Some(0), "{}", r.stderr);
    }
    for (i, name) in names.iter().enumerate() {
        let inventory = eventually(
            &format!("the component on {name}"),
            Duration::from_secs(30),
            || {
                let out = cli(&["get", "inventory", name, "-o", "json"]);
                let inventory: Value = serde_json::from_str(&out.stdout).ok()?;
                (!inventory["components"].as_array()?.is_empty()).then_some(inventory)
            },
        );
        assert_eq!(inventory["components"][0]["id"], format!("hello-{name}"));
        assert_eq!(inventory["components"][0]["max_instances"], i + 1);
    }

    let leaving = hosts.remove(1);
    assert_eq!(cli(&["stop", "host", "two"]).code, Some(0));
    let event = rt.block_on(async {
        let m = tokio::time::timeout(Duration::from_secs(10), stopped.next())
            .await
            .expect("host_stopped within 10s")
            .expect("event");
        serde_json::from_slice::<Value>(&m.payload).expect("json")
    });
    assert_eq!(event["source"], leaving.id.as_str());
    let mut leaving = leaving;
    assert_eq!(leaving.trellis.wait_exit(Duration::from_secs(20)), Some(0));
    let remaining: Value =
        serde_json::from_str(&cli(&["get", "hosts", "-o", "json"]).stdout).expect("json");
    let mut remaining: Vec<&str> = remaining
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|h| h["friendly_name"].as_str())
        .collect();
    remaining.sort_unstable();
    assert_eq!(remaining, ["one", "three"]);
}

#[test]
fn an_unreachable_nats_is_a_clear_error() {
    let port = free_port();
    let out = run(&[
        "get",
        "hosts",
        "--nats",
        &format!("nats://127.0.0.1:{port}"),
    ]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("cannot connect"), "{}", out.stderr);
    assert!(
        out.stderr.contains("is nats-server running there"),
        "{}",
        out.stderr
    );
    let mut cmd = std::process::Command::new(trellis_bin());
    cmd.args(["host", "--nats", &format!("nats://127.0.0.1:{port}")]);
    let host = cmd.output().expect("run");
    assert_eq!(host.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&host.stderr).contains("cannot connect the control connection")
    );
}

#[test]
fn a_component_started_on_the_lattice_uses_its_capability_links() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nats = NatsServer::start(free_port(), &dir.path().join("nats"));
    let url = nats.url();
    let host = LatticeHost::start(&url, "caps", &["--friendly-name", "solo"]);
    let wasm = install_guest(dir.path(), "kv_counter");
    let port = free_port();
    let cli = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--nats", url.as_str(), "--lattice", "caps"]);
        let out = run(&all);
        assert_eq!(out.code, Some(0), "trellis {args:?}: {}", out.stderr);
        out
    };
    let start_providers = || {
        cli(&[
            "start",
            "provider",
            "trellis+builtin://keyvalue-memory",
            "kv",
        ]);
        cli(&[
            "start",
            "provider",
            "ghcr.io/wasmcloud/http-server:0.27.0",
            "http",
        ]);
    };
    start_providers();
    cli(&[
        "link",
        "put",
        "counter",
        "kv",
        "wasi:keyvalue/atomics,store",
    ]);
    cli(&[
        "config",
        "put",
        "counter-http",
        &format!("address=127.0.0.1:{port}"),
    ]);
    cli(&[
        "link",
        "put",
        "http",
        "counter",
        "wasi:http/incoming-handler",
        "--source-config",
        "counter-http",
    ]);
    // Started after its links: the links to providers on this host serve its imports.
    cli(&[
        "start",
        "component",
        &format!("file://{}", wasm.display()),
        "counter",
    ]);

    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let first = eventually("the counter to answer", Duration::from_secs(30), || {
        try_request(addr, "GET", "/", b"")
            .ok()
            .filter(|r| r.status == 200)
            .map(|r| r.body)
    });
    assert_eq!(first, "Counter: 1\n");
    assert_eq!(get(addr, "/").body, "Counter: 2\n");
    let inventory: Value =
        serde_json::from_str(&cli(&["get", "inventory", "-o", "json"]).stdout).expect("json");
    assert_eq!(
        inventory["providers"].as_array().map(Vec::len),
        Some(2),
        "providers are shared, not started twice: {inventory}"
    );

    // Stopping the key-value provider fails the component's calls through it (the guest
    // answers its error); stopping the HTTP server closes its listener.
    let rt = runtime();
    let client = rt
        .block_on(async_nats::connect(url.clone()))
        .expect("connect");
    for provider in ["kv", "http"] {
        let reply = rt.block_on(ctl(
            &client,
            format!("wasmbus.ctl.v1.caps.provider.stop.{}", host.id),
            json!({"provider_id": provider, "host_id": host.id}),
        ));
        assert_eq!(reply["success"], true, "{reply}");
        if provider == "kv" {
            let r = get(addr, "/");
            assert_eq!(r.status, 500, "{}", r.body);
            assert!(
                r.body
                    .contains("capability `kv` is not available: it was stopped"),
                "{}",
                r.body
            );
        }
    }
    eventually("the listener to close", Duration::from_secs(10), || {
        try_request(addr, "GET", "/", b"").is_err().then_some(())
    });

    // Started again, the providers serve the component again: it is linked to the new
    // instances (a fresh in-memory store, so the count starts over).
    start_providers();
    let body = eventually(
        "the counter to answer again",
        Duration::from_secs(30),
        || {
            try_request(addr, "GET", "/", b"")
                .ok()
                .filter(|r| r.status == 200)
                .map(|r| r.body)
        },
    );
    assert!(body.starts_with("Counter: "), "{body}");
}
