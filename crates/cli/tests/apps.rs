//! Apps across a lattice: `trellis app` against three `trellis host` processes on a real
//! nats-server; the reconciler inside the hosts places, restores after `kill -9`, moves on
//! to another host when the one running it dies, and cleans up on undeploy.

mod common;

use common::*;
use futures::StreamExt as _;
use serde_json::Value;
use std::time::{Duration, Instant};

const LATTICE: &str = "apps";

fn manifest(instances: u32, requirements: &str) -> String {
    format!(
        r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: spread
  annotations:
    description: 'one component spread over the lattice'
spec:
  components:
    - name: callee
      type: component
      properties:
        image: file://./build/callee.wasm
        id: spread-callee
      traits:
        - type: spreadscaler
          properties:
            instances: {instances}{requirements}
"#
    )
}

struct Cli {
    url: String,
}

impl Cli {
    fn run(&self, args: &[&str]) -> Exited {
        let mut all = args.to_vec();
        all.extend(["--nats", self.url.as_str(), "--lattice", LATTICE]);
        run(&all)
    }

    fn ok(&self, args: &[&str]) -> Exited {
        let out = self.run(args);
        assert_eq!(out.code, Some(0), "trellis {args:?}: {}", out.stderr);
        out
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&all).stdout).expect("JSON")
    }

    /// Instances of `id` per host id, from every host's inventory.
    fn placement(&self, id: &str) -> Vec<(String, u64)> {
        let hosts = self.json(&["get", "hosts"]);
        let mut out = Vec::new();
        for host in hosts.as_array().expect("hosts") {
            let host_id = host["id"].as_str().expect("id");
            let Ok(inventory) = serde_json::from_str::<Value>(
                &self
                    .run(&["get", "inventory", host_id, "-o", "json"])
                    .stdout,
            ) else {
                continue;
            };
            for c in inventory["components"].as_array().into_iter().flatten() {
                if c["id"] == id {
                    out.push((host_id.to_owned(), c["max_instances"].as_u64().unwrap_or(0)));
                }
            }
        }
        out.sort();
        out
    }

    fn status(&self, app: &str) -> Value {
        self.json(&["app", "status", app])["status"].clone()
    }
}

fn hosts(url: &str, n: usize) -> Vec<LatticeHost> {
    (0..n)
        .map(|i| {
            LatticeHost::start(
                url,
                LATTICE,
                &[
                    "--friendly-name",
                    &format!("h{i}"),
                    "--heartbeat-interval",
                    "1s",
                    "--reconcile-interval",
                    "1s",
                    "--label",
                    if i < 2 { "zone=a" } else { "zone=b" },
                ],
            )
        })
        .collect()
}

#[test]
fn an_app_spreads_survives_host_loss_and_reconciler_loss_and_undeploys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nats = NatsServer::start(free_port(), &dir.path().join("nats"));
    let cli = Cli { url: nats.url() };
    let mut hosts = hosts(&cli.url, 3);
    install_guest(dir.path(), "callee");
    let path = write_manifest(dir.path(), &manifest(3, ""));
    let path = path.to_str().expect("utf-8");

    let deployed = cli.ok(&["app", "deploy", path]);
    assert!(
        deployed.stdout.contains("deploying version v1"),
        "{}",
        deployed.stdout
    );
    let placed = eventually("3 instances, one per host", Duration::from_secs(30), || {
        let p = cli.placement("spread-callee");
        (p.len() == 3 && p.iter().all(|(_, n)| *n == 1)).then_some(p)
    });
    assert_eq!(placed.len(), 3);
    eventually("status deployed", Duration::from_secs(10), || {
        (cli.status("spread")["status"]["type"] == "deployed").then_some(())
    });
    let list = cli.json(&["app", "list"]);
    assert_eq!(list[0]["name"], "spread");
    assert_eq!(list[0]["deployed_version"], "v1");
    // Putting the same manifest again stores nothing new.
    cli.ok(&["app", "deploy", path]);
    let versions = cli.json(&["app", "versions", "spread"]);
    assert_eq!(
        versions["versions"].as_array().map(Vec::len),
        Some(1),
        "{versions}"
    );

    // kill -9 a host that does not run the reconciler: its instance comes back elsewhere.
    let leader = |hosts: &[LatticeHost]| {
        hosts.iter().position(|h| {
            h.trellis
                .stderr()
                .contains("now runs the lattice's reconciler")
        })
    };
    let first_leader = eventually("a reconciler", Duration::from_secs(10), || leader(&hosts));
    let victim = (first_leader + 1) % hosts.len();
    let killed_at = Instant::now();
    drop(hosts.remove(victim));
    let restored = eventually(
        "3 instances on the 2 remaining hosts",
        Duration::from_secs(30),
        || {
            let p = cli.placement("spread-callee");
            (p.iter().map(|(_, n)| n).sum::<u64>() == 3 && p.len() == 2).then_some(p)
        },
    );
    eprintln!(
        "host loss: 3 instances restored in {:?} on {restored:?}",
        killed_at.elapsed()
    );

    // kill -9 the host running the reconciler: the other takes the lease over.
    let leader_index = leader(&hosts).expect("the reconciler runs on a remaining host");
    drop(hosts.remove(leader_index));
    let taken_over = Instant::now();
    eventually(
        "the last host to take over the reconciler",
        Duration::from_secs(20),
        || leader(&hosts),
    );
    eventually(
        "3 instances on the last host",
        Duration::from_secs(30),
        || {
            let p = cli.placement("spread-callee");
            (p.len() == 1 && p[0].1 == 3).then_some(())
        },
    );
    eprintln!(
        "reconciler takeover and restore: {:?}",
        taken_over.elapsed()
    );

    // Undeploy removes what the app started.
    cli.ok(&["app", "undeploy", "spread"]);
    eventually("the component to go", Duration::from_secs(30), || {
        cli.placement("spread-callee").is_empty().then_some(())
    });
    eventually("status undeployed", Duration::from_secs(10), || {
        (cli.status("spread")["status"]["type"] == "undeployed").then_some(())
    });
    cli.ok(&["app", "delete", "spread"]);
    let missing = cli.run(&["app", "status", "spread"]);
    assert_eq!(missing.code, Some(1));
    assert!(
        missing.stderr.contains("no app named `spread`"),
        "{}",
        missing.stderr
    );
}

#[test]
fn an_app_that_cannot_be_placed_says_why_and_versions_are_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nats = NatsServer::start(free_port(), &dir.path().join("nats"));
    let cli = Cli { url: nats.url() };
    let _hosts = hosts(&cli.url, 2);
    install_guest(dir.path(), "callee");
    let eu = "\n            spread:\n              - name: eu\n                requirements:\n                  zone: eu";
    let path = write_manifest(dir.path(), &manifest(2, eu));
    cli.ok(&["app", "deploy", path.to_str().expect("utf-8")]);
    let status = eventually("status waiting", Duration::from_secs(20), || {
        let s = cli.status("spread");
        (s["status"]["type"] == "waiting").then_some(s)
    });
    let text = cli.ok(&["app", "status", "spread"]).stdout;
    assert!(
        text.contains("no host matches requirements zone=eu"),
        "{text}\n{status}"
    );

    // A second version that fits: zone=a.
    let a = "\n            spread:\n              - name: a\n                requirements:\n                  zone: a";
    let path = write_manifest(dir.path(), &manifest(2, a));
    cli.ok(&["app", "deploy", path.to_str().expect("utf-8")]);
    eventually("both instances in zone a", Duration::from_secs(30), || {
        let p = cli.placement("spread-callee");
        (p.iter().map(|(_, n)| n).sum::<u64>() == 2).then_some(())
    });
    let versions = cli.json(&["app", "versions", "spread"]);
    let listed: Vec<(String, bool)> = versions["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| {
            (
                v["version"].as_str().unwrap_or_default().to_owned(),
                v["deployed"] == true,
            )
        })
        .collect();
    assert_eq!(listed, [("v1".to_owned(), false), ("v2".to_owned(), true)]);

    // A version whose component cannot start: the hosts' reason shows in the app's status.
    std::fs::write(dir.path().join("build/broken.wasm"), b"\0asm not really").expect("write");
    let broken = manifest(1, "").replace("callee.wasm", "broken.wasm");
    let path = write_manifest(dir.path(), &broken);
    cli.ok(&["app", "deploy", path.to_str().expect("utf-8")]);
    let status = eventually("status failed", Duration::from_secs(30), || {
        let s = cli.status("spread");
        (s["status"]["type"] == "failed").then_some(s)
    });
    let text = cli.ok(&["app", "status", "spread"]).stdout;
    assert!(
        text.contains("did not start on host") && text.contains("broken.wasm"),
        "the reason is shown: {text}\n{status}"
    );

    // A bad manifest is refused at the door, with the line.
    let bad = write_manifest(
        dir.path(),
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: bad\nspec:\n  components:\n    - name: x\n      type: nonsense\n",
    );
    let out = cli.run(&["app", "deploy", bad.to_str().expect("utf-8")]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("nonsense"), "{}", out.stderr);
}

#[test]
fn apps_come_back_when_everything_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let nats = NatsServer::start(port, &dir.path().join("nats"));
    let cli = Cli { url: nats.url() };
    let first = hosts(&cli.url, 2);
    install_guest(dir.path(), "callee");
    let path = write_manifest(dir.path(), &manifest(2, ""));
    cli.ok(&["app", "deploy", path.to_str().expect("utf-8")]);
    eventually("2 instances", Duration::from_secs(30), || {
        (cli.placement("spread-callee")
            .iter()
            .map(|(_, n)| n)
            .sum::<u64>()
            == 2)
            .then_some(())
    });

    // Every host and the NATS server go away; JetStream keeps its files.
    drop(first);
    drop(nats);
    let nats = NatsServer::start(port, &dir.path().join("nats"));
    let _second = hosts(&nats.url(), 2);
    let placed = eventually(
        "the app to come back by itself",
        Duration::from_secs(30),
        || {
            let p = cli.placement("spread-callee");
            (p.iter().map(|(_, n)| n).sum::<u64>() == 2).then_some(p)
        },
    );
    assert_eq!(placed.len(), 2, "{placed:?}");
    let list = cli.json(&["app", "list"]);
    assert_eq!(list[0]["deployed_version"], "v1", "{list}");
}

/// An HTTP app on one of two hosts on this machine; a client keeps requesting while the host
/// is drained: the app moves to the other host (which shares the address through
/// SO_REUSEPORT) and no request fails.
#[test]
fn draining_a_host_moves_an_http_app_without_a_failed_request() {
    let migrate = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_migrate_req").unwrap_or_default();
    assert_eq!(
        migrate.trim(),
        "1",
        "net.ipv4.tcp_migrate_req must be 1 for connections queued on a closing listener to move to the other host: run scripts/services (as root) or `sysctl -w net.ipv4.tcp_migrate_req=1`"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let nats = NatsServer::start(free_port(), &dir.path().join("nats"));
    let cli = Cli { url: nats.url() };
    let mut hosts = hosts(&cli.url, 2);
    install_guest(dir.path(), "http_hello");
    let port = free_port();
    let app = format!(
        r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: web
spec:
  components:
    - name: hello
      type: component
      properties:
        image: file://./build/http_hello.wasm
        id: web-hello
      traits:
        - type: spreadscaler
          properties:
            instances: 1
    - name: httpserver
      type: capability
      properties:
        image: ghcr.io/wasmcloud/http-server:0.27.0
        id: web-http
      traits:
        - type: link
          properties:
            target:
              name: hello
            namespace: wasi
            package: http
            interfaces: [incoming-handler]
            source:
              config:
                - name: web-address
                  properties:
                    address: 127.0.0.1:{port}
"#
    );
    let path = write_manifest(dir.path(), &app);
    cli.ok(&["app", "deploy", path.to_str().expect("utf-8")]);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    eventually("the app to answer", Duration::from_secs(30), || {
        try_request(addr, "GET", "/", b"")
            .ok()
            .filter(|r| r.status == 200)
    });
    let running_on = cli.placement("web-hello");
    assert_eq!(running_on.len(), 1, "{running_on:?}");
    let drained = running_on[0].0.clone();

    let load = Load::start(addr);
    std::thread::sleep(Duration::from_millis(300));
    let out = cli.ok(&["drain", &drained, "--timeout", "10s"]);
    assert!(
        out.stderr.contains("drained and stopping"),
        "{}",
        out.stderr
    );
    let index = hosts
        .iter()
        .position(|h| h.id == drained)
        .expect("drained host");
    let mut leaving = hosts.remove(index);
    assert_eq!(leaving.trellis.wait_exit(Duration::from_secs(20)), Some(0));
    std::thread::sleep(Duration::from_millis(500));
    let ok = load.finish_without_failures();
    let now = cli.placement("web-hello");
    assert_eq!(now.len(), 1);
    assert_ne!(now[0].0, drained, "the app now runs on the other host");
    eprintln!("drain: {ok} requests, none failed");
}

/// A new version of an app with another image replaces the component under load: the new
/// one is started and swapped in before the old one goes, and no request fails.
#[test]
fn a_new_version_replaces_the_component_without_a_failed_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nats = NatsServer::start(free_port(), &dir.path().join("nats"));
    let cli = Cli { url: nats.url() };
    let _hosts = hosts(&cli.url, 1);
    install_guest(dir.path(), "http_hello");
    std::fs::copy(
        dir.path().join("build/http_hello.wasm"),
        dir.path().join("build/http_hello_v2.wasm"),
    )
    .expect("copy");
    let port = free_port();
    let app = |wasm: &str| {
        format!(
            r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: upgrade
spec:
  components:
    - name: hello
      type: component
      properties:
        image: file://./build/{wasm}.wasm
      traits:
        - type: spreadscaler
          properties:
            instances: 2
    - name: httpserver
      type: capability
      properties:
        image: ghcr.io/wasmcloud/http-server:0.27.0
      traits:
        - type: link
          properties:
            target:
              name: hello
            namespace: wasi
            package: http
            interfaces: [incoming-handler]
            source:
              config:
                - name: upgrade-address
                  properties:
                    address: 127.0.0.1:{port}
"#
        )
    };
    let path = write_manifest(dir.path(), &app("http_hello"));
    cli.ok(&["app", "deploy", path.to_str().expect("utf-8")]);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    eventually("v1 to answer", Duration::from_secs(30), || {
        try_request(addr, "GET", "/", b"")
            .ok()
            .filter(|r| r.status == 200)
    });

    let load = Load::start(addr);
    std::thread::sleep(Duration::from_millis(300));
    let path = write_manifest(dir.path(), &app("http_hello_v2"));
    cli.ok(&["app", "deploy", path.to_str().expect("utf-8")]);
    eventually("v2 to run", Duration::from_secs(30), || {
        let out = cli.run(&["get", "inventory", "-o", "json"]).stdout;
        out.contains("http_hello_v2.wasm").then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    load.finish_without_failures();
    let versions = cli.json(&["app", "versions", "upgrade"]);
    assert_eq!(versions["versions"][1]["deployed"], true, "{versions}");
}

/// An app whose component imports a capability: the reconciler puts the links, starts the
/// providers beside the component and the component after them; it counts. A provider that
/// cannot start (its address is taken) makes the app `failed`, with the reason.
#[test]
fn an_app_with_capability_links_runs_and_a_failed_provider_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nats = NatsServer::start(free_port(), &dir.path().join("nats"));
    let cli = Cli { url: nats.url() };
    let _hosts = hosts(&cli.url, 1);
    install_guest(dir.path(), "kv_counter");
    let app = |name: &str, port: u16| {
        format!(
            r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: {name}
spec:
  components:
    - name: counter
      type: component
      properties:
        image: file://./build/kv_counter.wasm
      traits:
        - type: spreadscaler
          properties:
            instances: 1
        - type: link
          properties:
            target:
              name: kv
            namespace: wasi
            package: keyvalue
            interfaces: [atomics, store]
    - name: kv
      type: capability
      properties:
        image: trellis+builtin://keyvalue-memory
    - name: httpserver
      type: capability
      properties:
        image: ghcr.io/wasmcloud/http-server:0.27.0
      traits:
        - type: link
          properties:
            target:
              name: counter
            namespace: wasi
            package: http
            interfaces: [incoming-handler]
            source:
              config:
                - name: {name}-address
                  properties:
                    address: 127.0.0.1:{port}
"#
        )
    };
    let port = free_port();
    let path = write_manifest(dir.path(), &app("counting", port));
    cli.ok(&["app", "deploy", path.to_str().expect("utf-8")]);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let first = eventually("the counter to answer", Duration::from_secs(30), || {
        try_request(addr, "GET", "/", b"")
            .ok()
            .filter(|r| r.status == 200)
            .map(|r| r.body)
    });
    assert_eq!(first, "Counter: 1\n");
    assert_eq!(get(addr, "/").body, "Counter: 2\n");
    eventually("status deployed", Duration::from_secs(10), || {
        (cli.status("counting")["status"]["type"] == "deployed").then_some(())
    });

    // A second app wants an address something else holds.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let busy = taken.local_addr().expect("addr").port();
    let path = dir.path().join("busy.yaml");
    std::fs::write(&path, app("busy", busy)).expect("write");
    cli.ok(&["app", "deploy", path.to_str().expect("utf-8")]);
    let status = eventually("status failed", Duration::from_secs(30), || {
        let s = cli.status("busy");
        (s["status"]["type"] == "failed").then_some(s)
    });
    let text = cli.ok(&["app", "status", "busy"]).stdout;
    assert!(
        text.contains(&format!("127.0.0.1:{busy}")) && text.contains("failed on host"),
        "{text}\n{status}"
    );
}

/// Where the host serves HTTP for a lattice link to `component_id` (from its log: with
/// `--http 127.0.0.1:0` the port is picked when the link is applied).
fn lattice_listener(trellis: &Trellis, component_id: &str) -> std::net::SocketAddr {
    let log = trellis.wait_for_stderr("serving HTTP for a lattice link", Duration::from_secs(10));
    let line = log
        .lines()
        .find(|l| l.contains("serving HTTP for a lattice link") && l.contains(component_id))
        .unwrap_or_else(|| panic!("no listener for {component_id}:\n{log}"));
    line.split("address=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("address=")
        .parse()
        .expect("socket address")
}

/// Embedded mode runs the same reconciler: the app `trellis up` started is listed as
/// deployed, and a second app deployed with `trellis app deploy --embedded` runs beside it,
/// serving HTTP, and goes again on undeploy.
#[test]
fn embedded_mode_manages_apps_with_the_same_reconciler() {
    let dir = tempfile::tempdir().expect("tempdir");
    install_guest(dir.path(), "http_hello");
    let first = write_manifest(dir.path(), &http_app("first", "http_hello", 1, ""));
    let mut trellis = Trellis::up(&first, &[]);
    let admin_of = |t: &Trellis| t.admin_url();
    let admin = std::cell::RefCell::new(admin_of(&trellis));
    let app = |args: &[&str]| {
        let admin = admin.borrow().clone();
        let mut all = args.to_vec();
        all.extend(["--embedded", admin.as_str(), "-o", "json"]);
        let out = run(&all);
        assert_eq!(out.code, Some(0), "trellis {args:?}: {}", out.stderr);
        serde_json::from_str::<Value>(&out.stdout).expect("JSON")
    };
    let list = app(&["app", "list"]);
    assert_eq!(list[0]["name"], "first", "{list}");
    assert_eq!(list[0]["deployed_version"], "v1", "{list}");
    eventually("first to be deployed", Duration::from_secs(10), || {
        (app(&["app", "status", "first"])["status"]["status"]["type"] == "deployed").then_some(())
    });

    let second = dir.path().join("second.yaml");
    std::fs::write(&second, http_app("second", "http_hello", 2, "")).expect("write");
    app(&["app", "deploy", second.to_str().expect("utf-8")]);
    eventually("second to be deployed", Duration::from_secs(20), || {
        (app(&["app", "status", "second"])["status"]["status"]["type"] == "deployed").then_some(())
    });
    // `--http 127.0.0.1:0` picked its port too; the host logs it.
    let addr = lattice_listener(&trellis, "second-web");
    assert_eq!(get(addr, "/").status, 200);
    assert_eq!(
        get(trellis.addr(), "/").status,
        200,
        "the first app still answers"
    );

    // The apps deployed beside the manifest's are kept in .trellis/apps/app.json: a restart
    // brings the second one back.
    assert_eq!(trellis.terminate(), Some(0));
    assert!(dir.path().join(".trellis/apps/app.json").is_file());
    trellis = Trellis::up(&first, &[]);
    *admin.borrow_mut() = admin_of(&trellis);
    eventually("second to come back", Duration::from_secs(20), || {
        (app(&["app", "status", "second"])["status"]["status"]["type"] == "deployed").then_some(())
    });
    let addr = lattice_listener(&trellis, "second-web");
    assert_eq!(get(addr, "/").status, 200);

    app(&["app", "undeploy", "second"]);
    eventually("second to go", Duration::from_secs(20), || {
        try_request(addr, "GET", "/", b"").is_err().then_some(())
    });
    assert_eq!(
        get(trellis.addr(), "/").status,
        200,
        "the first app is untouched"
    );

    // Another manifest in the same folder has its own store: nothing of the first comes up.
    drop(trellis);
    let other = dir.path().join("other.yaml");
    std::fs::write(&other, http_app("other", "http_hello", 1, "")).expect("write");
    let trellis = Trellis::up(&other, &[]);
    *admin.borrow_mut() = admin_of(&trellis);
    let names: Vec<String> = app(&["app", "list"])
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|a| a["name"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(names, ["other"]);
}

/// A config named without `properties` is config stored beforehand (`trellis config put`),
/// as wadm has it: the app deployed after the put reads it; one naming config nobody stored
/// fails, and its status says which config and what to do.
#[test]
fn config_named_without_properties_comes_from_the_config_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    install_guest(dir.path(), "http_hello");
    install_guest(dir.path(), "behaviours");
    let first = write_manifest(dir.path(), &http_app("first", "http_hello", 1, ""));
    let trellis = Trellis::up(&first, &[]);
    let admin = trellis.admin_url();
    let cli = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--embedded", admin.as_str(), "-o", "json"]);
        let out = run(&all);
        assert_eq!(out.code, Some(0), "trellis {args:?}: {}", out.stderr);
        out.stdout
    };
    let status = |app: &str| -> Value {
        serde_json::from_str::<Value>(&cli(&["app", "status", app])).expect("JSON")["status"]
            ["status"]
            .clone()
    };
    cli(&["config", "put", "greetings", "greeting=stored beforehand"]);

    let stored = dir.path().join("stored.yaml");
    let uses = |name: &str| format!("        config:\n          - name: {name}\n");
    std::fs::write(
        &stored,
        http_app("stored", "behaviours", 1, &uses("greetings")),
    )
    .expect("write");
    cli(&["app", "deploy", stored.to_str().expect("utf-8")]);
    eventually("stored to be deployed", Duration::from_secs(20), || {
        (status("stored")["type"] == "deployed").then_some(())
    });
    let addr = lattice_listener(&trellis, "stored-web");
    let response = get(addr, "/config?key=greeting");
    assert_eq!(
        (response.status, response.body.as_str()),
        (200, "stored beforehand")
    );

    let absent = dir.path().join("absent.yaml");
    std::fs::write(
        &absent,
        http_app("absent", "behaviours", 1, &uses("nobody-stored-this")),
    )
    .expect("write");
    cli(&["app", "deploy", absent.to_str().expect("utf-8")]);
    // The reconciler retries; the status keeps the reason of the last failure.
    let deadline = Instant::now() + Duration::from_secs(20);
    let reason = loop {
        let s = status("absent");
        let message = s["message"].as_str().unwrap_or_default().to_owned();
        if message.contains("nobody-stored-this") {
            break message;
        }
        assert!(
            Instant::now() < deadline,
            "absent never failed on its config: {s}\n{}",
            trellis.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        reason.contains("no stored config has that name")
            && reason.contains("trellis config put nobody-stored-this"),
        "{reason}"
    );
    drop(trellis);

    // Before a `trellis up` project starts, `--local` stores config in its folder, where
    // the host reads it at start; `--embedded` writes of a running one are kept there too.
    let project = tempfile::tempdir().expect("tempdir");
    install_guest(project.path(), "behaviours");
    let folder = project.path().to_str().expect("utf-8");
    let out = run(&[
        "config",
        "put",
        "--local",
        folder,
        "early",
        "greeting=before up",
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stderr.contains("config `early` set in"),
        "{}",
        out.stderr
    );
    let out = run(&["config", "get", "--local", folder, "early"]);
    assert_eq!(out.stdout.trim(), "greeting=before up", "{}", out.stderr);
    let manifest = write_manifest(
        project.path(),
        &http_app("early", "behaviours", 1, &uses("early")),
    );
    let trellis = Trellis::up(&manifest, &[]);
    let response = get(trellis.addr(), "/config?key=greeting");
    assert_eq!(
        (response.status, response.body.as_str()),
        (200, "before up"),
        "{}",
        trellis.stderr()
    );
    let admin = trellis.admin_url();
    let out = run(&[
        "config",
        "put",
        "later",
        "k=v",
        "--embedded",
        admin.as_str(),
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    drop(trellis);
    let out = run(&["config", "get", "--local", folder, "later"]);
    assert_eq!(out.stdout.trim(), "k=v", "{}", out.stderr);
}

/// A provider whose backend goes away turns unhealthy (event, inventory, app status) and,
/// when the backend comes back, healthy again on all three, and the app serves again.
#[test]
fn a_provider_recovers_when_its_backend_comes_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nats = NatsServer::start(free_port(), &dir.path().join("nats"));
    let cli = Cli { url: nats.url() };
    let host = LatticeHost::start(
        &cli.url,
        LATTICE,
        &[
            "--heartbeat-interval",
            "1s",
            "--reconcile-interval",
            "1s",
            "--provider-health-interval",
            "300ms",
        ],
    );
    let redis_port = free_port();
    let redis = RedisServer::start(redis_port);
    install_guest(dir.path(), "kv_counter");
    let port = free_port();
    let manifest = format!(
        r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: recovering
spec:
  components:
    - name: counter
      type: component
      properties:
        image: file://./build/kv_counter.wasm
      traits:
        - type: spreadscaler
          properties:
            instances: 1
        - type: link
          properties:
            target:
              name: kv
              config:
                - name: recovering-redis
                  properties:
                    url: redis://127.0.0.1:{redis_port}
            namespace: wasi
            package: keyvalue
            interfaces: [atomics, store]
    - name: kv
      type: capability
      properties:
        image: ghcr.io/wasmcloud/keyvalue-redis:0.30.0
    - name: httpserver
      type: capability
      properties:
        image: ghcr.io/wasmcloud/http-server:0.27.0
      traits:
        - type: link
          properties:
            target:
              name: counter
            namespace: wasi
            package: http
            interfaces: [incoming-handler]
            source:
              config:
                - name: recovering-address
                  properties:
                    address: 127.0.0.1:{port}
"#
    );
    let path = write_manifest(dir.path(), &manifest);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let client = rt
        .block_on(async_nats::connect(cli.url.clone()))
        .expect("connect");
    let mut events = rt
        .block_on(client.subscribe(format!("wasmbus.evt.{LATTICE}.>")))
        .expect("subscribe");
    rt.block_on(client.flush()).expect("flush");
    // The next event of `kind`, skipping others.
    let mut next_event = |kind: &str| -> Value {
        let kind = format!("com.wasmcloud.lattice.{kind}");
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(30), async {
                loop {
                    let m = events.next().await.expect("event stream");
                    let ev: Value = serde_json::from_slice(&m.payload).expect("json");
                    if ev["type"] == kind.as_str() {
                        return ev;
                    }
                }
            })
            .await
            .unwrap_or_else(|_| panic!("no {kind} within 30 s"))
        })
    };
    // The redis provider's state in the host's inventory.
    let provider_state = || -> Option<String> {
        let inventory: Value = serde_json::from_str(
            &cli.run(&["get", "inventory", &host.id, "-o", "json"])
                .stdout,
        )
        .ok()?;
        inventory["providers"]
            .as_array()?
            .iter()
            .find(|p| {
                p["image_ref"]
                    .as_str()
                    .is_some_and(|i| i.contains("keyvalue-redis"))
            })
            .and_then(|p| p["status"]["state"].as_str().map(str::to_owned))
    };

    cli.ok(&["app", "deploy", path.to_str().expect("utf-8")]);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let first = eventually("the counter to answer", Duration::from_secs(30), || {
        try_request(addr, "GET", "/", b"")
            .ok()
            .filter(|r| r.status == 200)
            .map(|r| r.body)
    });
    assert_eq!(first, "Counter: 1\n");
    eventually("status deployed", Duration::from_secs(30), || {
        (cli.status("recovering")["status"]["type"] == "deployed").then_some(())
    });

    drop(redis);
    let failed = next_event("health_check_failed");
    assert!(
        failed["data"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("unreachable")),
        "{failed}"
    );
    eventually(
        "the provider to show unhealthy",
        Duration::from_secs(30),
        || (provider_state()? == "unhealthy").then_some(()),
    );
    eventually("status unhealthy", Duration::from_secs(30), || {
        (cli.status("recovering")["status"]["type"] == "unhealthy").then_some(())
    });

    let _redis = RedisServer::start(redis_port);
    let passed = next_event("health_check_passed");
    assert_eq!(passed["data"]["provider_id"], failed["data"]["provider_id"]);
    eventually(
        "the provider to show running",
        Duration::from_secs(30),
        || (provider_state()? == "running").then_some(()),
    );
    eventually("status deployed again", Duration::from_secs(30), || {
        (cli.status("recovering")["status"]["type"] == "deployed").then_some(())
    });
    // The restarted Redis kept nothing, so counting starts again.
    let r = get(addr, "/");
    assert_eq!((r.status, r.body.as_str()), (200, "Counter: 1\n"));
}
