//! The control commands beyond `get`/`config`/`label`/`link`: `trellis events` against an
//! embedded host, `trellis stop component|provider` and `trellis update component` on a
//! lattice, with the real binary, a real NATS and real hosts.

mod common;

use common::*;
use serde_json::Value;
use std::time::Duration;

/// The host id `trellis up` printed.
fn embedded_host_id(trellis: &Trellis) -> String {
    trellis
        .stdout
        .iter()
        .find_map(|l| l.split(" is running on host ").nth(1))
        .unwrap_or_else(|| panic!("no host line in {:?}", trellis.stdout))
        .trim()
        .to_owned()
}

#[test]
fn events_stream_from_an_embedded_host_until_it_stops() {
    let dir = tempfile::tempdir().expect("tempdir");
    install_guest(dir.path(), "http_hello");
    let manifest = write_manifest(dir.path(), &http_app("watched", "http_hello", 1, ""));
    let mut trellis = Trellis::up(&manifest, &[]);
    let admin = trellis.admin_url();
    let host = embedded_host_id(&trellis);
    let cli = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--embedded", admin.as_str()]);
        let out = run(&all);
        assert_eq!(out.code, Some(0), "trellis {args:?}: {}", out.stderr);
        out
    };

    let mut events = Watching::start(&["events", "--embedded", &admin]);
    // The stream may not be open yet when the first label is put: put one until it shows.
    let mut n = 0;
    let line = eventually(
        "a labels_changed line from `trellis events`",
        Duration::from_secs(15),
        || {
            n += 1;
            cli(&["label", "put", &host[..8], &format!("round=r{n}")]);
            events
                .lines()
                .into_iter()
                .find(|l| l.split_whitespace().nth(1) == Some("labels_changed"))
        },
    );
    // `TIME NAME SOURCE DATA`, as on NATS.
    let fields: Vec<&str> = line.splitn(4, ' ').collect();
    assert_eq!(fields[2], host, "{line}");
    let data: Value = serde_json::from_str(fields[3]).expect("data is JSON");
    assert!(
        data["labels"]["round"]
            .as_str()
            .is_some_and(|r| r.starts_with('r')),
        "{line}"
    );

    // Once open, every event arrives, in order.
    cli(&["config", "put", "greeting", "text=hi"]);
    cli(&["config", "del", "greeting"]);
    let names = eventually(
        "config_set and config_deleted lines",
        Duration::from_secs(10),
        || {
            let names: Vec<String> = events
                .lines()
                .iter()
                .filter_map(|l| l.split_whitespace().nth(1))
                .filter(|n| n.starts_with("config_"))
                .map(str::to_owned)
                .collect();
            (names.len() >= 2).then_some(names)
        },
    );
    assert_eq!(names, ["config_set", "config_deleted"]);

    // JSON output is one CloudEvent per line.
    let json = Watching::start(&["events", "--embedded", &admin, "-o", "json"]);
    let event: Value = eventually("a JSON event line", Duration::from_secs(15), || {
        cli(&["config", "put", "other", "a=b"]);
        json.lines()
            .iter()
            .find_map(|l| serde_json::from_str::<Value>(l).ok())
    });
    assert_eq!(event["specversion"], "1.0");
    assert_eq!(event["source"], host.as_str());
    assert!(
        event["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("com.wasmcloud.lattice.")),
        "{event}"
    );

    // The stream ends when the host stops, and the watcher exits by itself.
    assert_eq!(trellis.terminate(), Some(0));
    assert_eq!(events.wait_exit(Duration::from_secs(15)), Some(0));
    assert!(
        events.stderr().contains("the event stream ended"),
        "{}",
        events.stderr()
    );
}

/// A NATS server and the CLI pointed at it.
struct Lattice {
    _nats: NatsServer,
    url: String,
    name: &'static str,
}

impl Lattice {
    fn start(dir: &std::path::Path, name: &'static str) -> Lattice {
        let nats = NatsServer::start(free_port(), &dir.join("nats"));
        Lattice {
            url: nats.url(),
            _nats: nats,
            name,
        }
    }

    fn host(&self, friendly_name: &str) -> LatticeHost {
        LatticeHost::start(&self.url, self.name, &["--friendly-name", friendly_name])
    }

    fn cli(&self, args: &[&str]) -> Exited {
        let mut all = args.to_vec();
        all.extend(["--nats", self.url.as_str(), "--lattice", self.name]);
        run(&all)
    }

    /// Runs a command that must succeed.
    fn ok(&self, args: &[&str]) -> Exited {
        let out = self.cli(args);
        assert_eq!(out.code, Some(0), "trellis {args:?}: {}", out.stderr);
        out
    }

    fn inventory(&self, host: &str) -> Option<Value> {
        serde_json::from_str(&self.cli(&["get", "inventory", host, "-o", "json"]).stdout).ok()
    }

    /// Waits until `host`'s inventory satisfies `f`.
    fn wait_inventory(&self, host: &str, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        eventually(what, Duration::from_secs(30), || {
            self.inventory(host).filter(|i| f(i))
        })
    }

    /// `trellis events` on this lattice, printing each event as it comes.
    fn events(&self) -> Watching {
        Watching::start(&[
            "events",
            "--nats",
            self.url.as_str(),
            "--lattice",
            self.name,
            "-o",
            "json",
        ])
    }
}

/// Waits until `events` printed an event of `kind` (`linkdef_set_failed`, …); its JSON.
fn wait_event(events: &Watching, kind: &str) -> Value {
    let kind = format!("com.wasmcloud.lattice.{kind}");
    eventually(&kind, Duration::from_secs(30), || {
        events
            .lines()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|e| e["type"] == kind.as_str())
    })
}

fn lists(inventory: &Value, kind: &str, id: &str) -> bool {
    inventory[kind]
        .as_array()
        .is_some_and(|list| list.iter().any(|e| e["id"] == id))
}

#[test]
fn stop_component_finds_the_host_running_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lattice = Lattice::start(dir.path(), "stopcomp");
    let _alpha = lattice.host("alpha");
    let _beta = lattice.host("beta");
    let wasm = install_guest(dir.path(), "http_hello");
    let reference = format!("file://{}", wasm.display());
    lattice.ok(&["start", "component", &reference, "hello", "--host", "alpha"]);
    lattice.wait_inventory("alpha", "hello on alpha", |i| {
        lists(i, "components", "hello")
    });

    // Two hosts and no --host: the one whose inventory lists it.
    let stop = lattice.ok(&["stop", "component", "hello"]);
    assert!(
        stop.stderr
            .contains("component `hello` stop accepted by host"),
        "{}",
        stop.stderr
    );
    lattice.wait_inventory("alpha", "hello to stop", |i| {
        !lists(i, "components", "hello")
    });

    let nosuch = lattice.cli(&["stop", "component", "nosuch"]);
    assert_eq!(nosuch.code, Some(1), "{}", nosuch.stderr);
    assert!(
        nosuch
            .stderr
            .contains("component `nosuch` is not running on any host"),
        "{}",
        nosuch.stderr
    );
    let elsewhere = lattice.cli(&["stop", "component", "hello", "--host", "beta"]);
    assert_eq!(elsewhere.code, Some(1), "{}", elsewhere.stderr);
    assert!(
        elsewhere
            .stderr
            .contains("component `hello` is not running on host beta"),
        "{}",
        elsewhere.stderr
    );
    let usage = lattice.cli(&["stop", "component"]);
    assert_eq!(usage.code, Some(2), "{}", usage.stderr);
}

#[test]
fn stop_provider_removes_it_from_the_inventory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lattice = Lattice::start(dir.path(), "stopprov");
    let _solo = lattice.host("solo");
    lattice.ok(&[
        "start",
        "provider",
        "trellis+builtin://keyvalue-memory",
        "kv",
    ]);
    lattice.wait_inventory("solo", "kv on solo", |i| lists(i, "providers", "kv"));

    let stop = lattice.ok(&["stop", "provider", "kv"]);
    assert!(
        stop.stderr.contains("provider `kv` stop accepted by host"),
        "{}",
        stop.stderr
    );
    lattice.wait_inventory("solo", "kv to leave the inventory", |i| {
        !lists(i, "providers", "kv")
    });

    let nosuch = lattice.cli(&["stop", "provider", "kv"]);
    assert_eq!(nosuch.code, Some(1), "{}", nosuch.stderr);
    assert!(
        nosuch
            .stderr
            .contains("provider `kv` is not running on any host"),
        "{}",
        nosuch.stderr
    );
}

#[test]
fn update_component_runs_the_new_image() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lattice = Lattice::start(dir.path(), "update");
    let _solo = lattice.host("solo");
    let wasm = install_guest(dir.path(), "http_hello");
    let other = dir.path().join("other.wasm");
    std::fs::copy(&wasm, &other).expect("copy");
    lattice.ok(&[
        "start",
        "component",
        &format!("file://{}", wasm.display()),
        "hello",
        "--count",
        "3",
    ]);
    lattice.wait_inventory("solo", "hello on solo", |i| lists(i, "components", "hello"));

    let new_ref = format!("file://{}", other.display());
    let update = lattice.ok(&["update", "component", "hello", &new_ref]);
    assert!(
        update
            .stderr
            .contains("component `hello` update to file://"),
        "{}",
        update.stderr
    );
    let inventory = lattice.wait_inventory("solo", "hello to run other.wasm", |i| {
        i["components"][0]["image_ref"] == new_ref.as_str()
    });
    assert_eq!(inventory["components"][0]["id"], "hello");
    assert_eq!(
        inventory["components"][0]["max_instances"], 3,
        "the count is kept: {inventory}"
    );

    let nosuch = lattice.cli(&["update", "component", "nosuch", &new_ref]);
    assert_eq!(nosuch.code, Some(1), "{}", nosuch.stderr);
    assert!(
        nosuch
            .stderr
            .contains("component `nosuch` is not running on any host"),
        "{}",
        nosuch.stderr
    );
    // A relative REF is refused by the host, as for `start component`.
    let relative = lattice.cli(&["update", "component", "hello", "build/x.wasm"]);
    assert_eq!(relative.code, Some(1), "{}", relative.stderr);
    assert!(
        relative
            .stderr
            .contains("write it as `file://build/x.wasm`"),
        "{}",
        relative.stderr
    );
}

/// An update to an image that cannot run is accepted, fails with `component_scale_failed`,
/// and leaves the running version serving.
#[test]
fn an_update_that_cannot_start_keeps_the_old_version_serving() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lattice = Lattice::start(dir.path(), "badupdate");
    let _solo = lattice.host("solo");
    let events = lattice.events();
    let wasm = install_guest(dir.path(), "http_hello");
    let old_ref = format!("file://{}", wasm.display());
    let garbage = dir.path().join("garbage.wasm");
    std::fs::write(&garbage, b"this is not wasm").expect("write");
    let port = free_port();
    lattice.ok(&[
        "config",
        "put",
        "hello-http",
        &format!("address=127.0.0.1:{port}"),
    ]);
    lattice.ok(&[
        "start",
        "provider",
        "ghcr.io/wasmcloud/http-server:0.27.0",
        "http",
    ]);
    lattice.ok(&["start", "component", &old_ref, "hello", "--count", "2"]);
    // Seeing this also shows the event stream is live.
    wait_event(&events, "component_scaled");
    lattice.ok(&[
        "link",
        "put",
        "http",
        "hello",
        "wasi:http/incoming-handler",
        "--source-config",
        "hello-http",
    ]);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let body = eventually("hello to answer over HTTP", Duration::from_secs(30), || {
        try_request(addr, "GET", "/", b"")
            .ok()
            .filter(|r| r.status == 200)
            .map(|r| r.body)
    });
    assert_eq!(body, "Hello from Trellis!\n");

    let new_ref = format!("file://{}", garbage.display());
    lattice.ok(&["update", "component", "hello", &new_ref]);
    let failed = wait_event(&events, "component_scale_failed");
    assert_eq!(failed["data"]["component_id"], "hello", "{failed}");
    assert!(
        failed["data"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("garbage.wasm") && e.contains("not a WebAssembly file")),
        "{failed}"
    );
    // The old version still runs, with its count, and serves.
    let inventory = lattice.inventory("solo").expect("inventory");
    assert_eq!(
        inventory["components"][0]["image_ref"],
        old_ref.as_str(),
        "{inventory}"
    );
    assert_eq!(
        inventory["components"][0]["max_instances"], 2,
        "{inventory}"
    );
    let r = get(addr, "/");
    assert_eq!((r.status, r.body.as_str()), (200, "Hello from Trellis!\n"));
}

/// A link the host cannot apply (an HTTP server link whose address is taken) is stored,
/// and the host says why with `linkdef_set_failed`.
#[test]
fn a_link_that_cannot_be_served_publishes_linkdef_set_failed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lattice = Lattice::start(dir.path(), "badlink");
    let _solo = lattice.host("solo");
    let events = lattice.events();
    let wasm = install_guest(dir.path(), "http_hello");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let busy = taken.local_addr().expect("addr");
    lattice.ok(&["config", "put", "busy-http", &format!("address={busy}")]);
    lattice.ok(&[
        "start",
        "provider",
        "ghcr.io/wasmcloud/http-server:0.27.0",
        "http",
    ]);
    lattice.ok(&[
        "start",
        "component",
        &format!("file://{}", wasm.display()),
        "hello",
    ]);
    lattice.wait_inventory("solo", "hello and http on solo", |i| {
        lists(i, "components", "hello") && lists(i, "providers", "http")
    });
    // Seeing this also shows the event stream is live.
    wait_event(&events, "component_scaled");
    lattice.ok(&[
        "link",
        "put",
        "http",
        "hello",
        "wasi:http/incoming-handler",
        "--source-config",
        "busy-http",
    ]);
    let failed = wait_event(&events, "linkdef_set_failed");
    assert_eq!(failed["data"]["source_id"], "http", "{failed}");
    assert_eq!(failed["data"]["target"], "hello", "{failed}");
    assert!(
        failed["data"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(&format!("cannot listen on {busy}"))),
        "{failed}"
    );
    // The provider shows the reason in the inventory.
    let inventory = lattice.wait_inventory("solo", "http to show failed", |i| {
        i["providers"][0]["status"]["state"] == "failed"
    });
    assert!(
        inventory["providers"][0]["status"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains(&busy.to_string())),
        "{inventory}"
    );
}

/// Trellis runs only built-in providers: a provider image it cannot run is refused when the
/// request is made (so no `provider_start_failed` follows), with the reason, and nothing
/// starts.
#[test]
fn starting_a_provider_that_is_not_built_in_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lattice = Lattice::start(dir.path(), "badprovider");
    let _solo = lattice.host("solo");
    let refused = lattice.cli(&[
        "start",
        "provider",
        "ghcr.io/example/custom-provider:1.0.0",
        "custom",
    ]);
    assert_eq!(refused.code, Some(1), "{}", refused.stderr);
    assert!(
        refused.stderr.contains(
            "`ghcr.io/example/custom-provider:1.0.0` is not a built-in provider; external providers are not supported yet"
        ),
        "{}",
        refused.stderr
    );
    let inventory = lattice.inventory("solo").expect("inventory");
    assert!(!lists(&inventory, "providers", "custom"), "{inventory}");
}
