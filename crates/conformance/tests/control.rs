//! wasmCloud v1 control-interface conformance: `trellis host` processes on a private NATS server,
//! driven by the published `wasmcloud-control-interface` client (whose serde types are the
//! authority on the wire format), with lattice events read by a plain NATS subscription and parsed
//! as CloudEvents by `cloudevents-sdk`.
//!
//! Every test has its own `nats-server -js` and lattice name; every process is killed on drop.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use common::{EVENT_TIMEOUT, Lattice, assert_success, logs, ok};
use trellis_conformance::HostProcess;
use wasmcloud_control_interface::{Client, HostInventory, Link};

fn assert_semver(what: &str, version: &str) {
    if let Err(e) = semver::Version::parse(version) {
        panic!("{what}: version {version:?} is not semver: {e}");
    }
}

fn assert_hostcore_labels(what: &str, labels: &BTreeMap<String, String>) {
    for (key, expected) in [
        ("hostcore.os", std::env::consts::OS),
        ("hostcore.arch", std::env::consts::ARCH),
        ("hostcore.osfamily", std::env::consts::FAMILY),
    ] {
        assert_eq!(
            labels.get(key).map(String::as_str),
            Some(expected),
            "{what}: label {key} in {labels:?}"
        );
    }
}

/// Everything `host.ping` returned, keyed by host id (each reply must be a success with data).
async fn ping(
    ctl: &Client,
    hosts: &[&HostProcess],
) -> BTreeMap<String, wasmcloud_control_interface::Host> {
    let replies = ok("get_hosts", ctl.get_hosts().await, hosts);
    let mut by_id = BTreeMap::new();
    for reply in replies {
        assert_success("get_hosts reply", &reply, hosts);
        let host = reply
            .into_data()
            .unwrap_or_else(|| panic!("get_hosts reply without a response{}", logs(hosts)));
        let id = host.id().to_owned();
        assert!(
            by_id.insert(id.clone(), host).is_none(),
            "get_hosts: host {id} answered twice"
        );
    }
    by_id
}

/// The labels one host reports in `host.ping`.
async fn ping_labels(ctl: &Client, host: &HostProcess) -> BTreeMap<String, String> {
    let mut all = ping(ctl, &[host]).await;
    all.remove(host.id())
        .unwrap_or_else(|| {
            panic!(
                "host {} did not answer host.ping{}",
                host.id(),
                logs(&[host])
            )
        })
        .labels()
        .clone()
}

fn config_map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn test_link(source: &str, target: &str, interfaces: &[&str]) -> Link {
    Link::builder()
        .source_id(source)
        .target(target)
        .name("default")
        .wit_namespace("wasi")
        .wit_package("keyvalue")
        .interfaces(interfaces.iter().map(|i| (*i).to_owned()).collect())
        .source_config(vec!["conf-source-config".to_owned()])
        .target_config(vec!["conf-target-config".to_owned()])
        .build()
        .expect("valid link")
}

/// Test 1: `host.ping` is answered by every host with its summary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_hosts_returns_every_host_with_labels_and_version() {
    let lattice = Lattice::new("get-hosts");
    let hosts = lattice.start_hosts(&[
        &[
            "--label",
            "zone=a",
            "--label",
            "tier=conformance",
            "--friendly-name",
            "conf-a",
        ],
        &["--label", "zone=b", "--friendly-name", "conf-b"],
        &["--label", "zone=c"],
    ]);
    let refs: Vec<&HostProcess> = hosts.iter().collect();
    let ctl = lattice.ctl().await;

    let found = ping(&ctl, &refs).await;
    let expected: HashSet<&str> = hosts.iter().map(HostProcess::id).collect();
    let got: HashSet<&str> = found.keys().map(String::as_str).collect();
    assert_eq!(got, expected, "host ids answering host.ping{}", logs(&refs));

    for (host, (zone, name)) in
        hosts
            .iter()
            .zip([("a", Some("conf-a")), ("b", Some("conf-b")), ("c", None)])
    {
        let summary = &found[host.id()];
        let what = format!("host.ping from {}", host.id());
        assert_eq!(summary.lattice(), lattice.name, "{what}: lattice");
        assert_eq!(
            summary.labels().get("zone").map(String::as_str),
            Some(zone),
            "{what}: labels {:?}",
            summary.labels()
        );
        assert_hostcore_labels(&what, summary.labels());
        match name {
            Some(name) => assert_eq!(summary.friendly_name(), name, "{what}: friendly name"),
            None => assert!(
                !summary.friendly_name().is_empty(),
                "{what}: empty friendly name"
            ),
        }
        let version = summary
            .version()
            .unwrap_or_else(|| panic!("{what}: no version in {summary:?}"));
        assert_semver(&what, version);
        assert!(
            summary.uptime_human().is_some(),
            "{what}: no uptime_human in {summary:?}"
        );
    }
    assert_eq!(
        found[hosts[0].id()]
            .labels()
            .get("tier")
            .map(String::as_str),
        Some("conformance")
    );
}

/// Test 2: `host.get.{id}` returns that host's inventory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_host_inventory_describes_the_host() {
    let lattice = Lattice::new("inventory");
    let hosts = lattice.start_hosts(&[
        &["--label", "zone=inv", "--friendly-name", "inventory-host"],
        &["--label", "zone=other"],
    ]);
    let host = &hosts[0];
    let ctl = lattice.ctl().await;

    let reply = ok(
        "get_host_inventory",
        ctl.get_host_inventory(host.id()).await,
        &[host],
    );
    assert_success("get_host_inventory", &reply, &[host]);
    let inv = reply.into_data().expect("inventory in the response");
    assert_eq!(inv.host_id(), host.id());
    assert_eq!(inv.friendly_name(), "inventory-host");
    assert_eq!(inv.labels().get("zone").map(String::as_str), Some("inv"));
    assert_hostcore_labels("inventory", inv.labels());
    assert_semver("inventory", inv.version());
    assert!(
        !inv.uptime_human().is_empty(),
        "inventory: empty uptime_human"
    );
    assert!(
        inv.components().is_empty(),
        "components: {:?}",
        inv.components()
    );
    assert!(
        inv.providers().is_empty(),
        "providers: {:?}",
        inv.providers()
    );

    // The other host answers for itself.
    let other = ok(
        "get_host_inventory (second host)",
        ctl.get_host_inventory(hosts[1].id()).await,
        &[&hosts[1]],
    );
    let other = other.into_data().expect("inventory in the response");
    assert_eq!(other.host_id(), hosts[1].id());
    assert_eq!(
        other.labels().get("zone").map(String::as_str),
        Some("other")
    );
}

/// Test 3: labels can be put and deleted, except `hostcore.*`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_put_and_delete_but_hostcore_is_refused() {
    let lattice = Lattice::new("labels");
    let host = lattice.start_host(&["--label", "zone=l"]);
    let ctl = lattice.ctl().await;

    let put = ok(
        "put_label",
        ctl.put_label(host.id(), "conformance", "yes").await,
        &[&host],
    );
    assert_success("put_label", &put, &[&host]);
    let labels = ping_labels(&ctl, &host).await;
    assert_eq!(
        labels.get("conformance").map(String::as_str),
        Some("yes"),
        "after put_label: {labels:?}"
    );
    assert_eq!(labels.get("zone").map(String::as_str), Some("l"));

    let del = ok(
        "delete_label",
        ctl.delete_label(host.id(), "conformance").await,
        &[&host],
    );
    assert_success("delete_label", &del, &[&host]);
    let labels = ping_labels(&ctl, &host).await;
    assert!(
        !labels.contains_key("conformance"),
        "after delete_label: {labels:?}"
    );

    let refused = ok(
        "put_label hostcore.os",
        ctl.put_label(host.id(), "hostcore.os", "plan9").await,
        &[&host],
    );
    assert!(
        !refused.succeeded(),
        "putting a hostcore.* label must be refused, got {refused:?}"
    );
    assert!(!refused.message().is_empty(), "refusal without a message");
    let refused = ok(
        "delete_label hostcore.arch",
        ctl.delete_label(host.id(), "hostcore.arch").await,
        &[&host],
    );
    assert!(
        !refused.succeeded(),
        "deleting a hostcore.* label must be refused, got {refused:?}"
    );
    let labels = ping_labels(&ctl, &host).await;
    assert_hostcore_labels("after refused hostcore changes", &labels);
}

/// Test 4: named config is shared lattice state (JetStream KV), served by any host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_is_shared_and_served_by_late_joiners() {
    let lattice = Lattice::new("config");
    let mut early = lattice.start_hosts(&[&[], &[]]);
    let ctl = lattice.ctl().await;
    let value = config_map(&[("greeting", "hello"), ("answer", "42")]);

    let put = ok(
        "put_config",
        ctl.put_config("conf-settings", value.clone()).await,
        &[&early[0], &early[1]],
    );
    assert_success("put_config", &put, &[&early[0], &early[1]]);
    let got = ok(
        "get_config",
        ctl.get_config("conf-settings").await,
        &[&early[0], &early[1]],
    );
    assert_success("get_config", &got, &[&early[0], &early[1]]);
    assert_eq!(got.data(), Some(&value), "get_config after put");

    let unknown = ok(
        "get_config (unknown name)",
        ctl.get_config("conf-never-put").await,
        &[&early[0], &early[1]],
    );
    assert_success(
        "get_config (unknown name)",
        &unknown,
        &[&early[0], &early[1]],
    );
    assert_eq!(unknown.data(), None, "unknown config must have no response");

    // A host that joins after the put, alone in the lattice, still serves it.
    let late = lattice.start_host(&[]);
    for host in &mut early {
        host.kill();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = ok(
        "get_config (late host)",
        ctl.get_config("conf-settings").await,
        &[&late],
    );
    assert_success("get_config (late host)", &got, &[&late]);
    assert_eq!(
        got.data(),
        Some(&value),
        "get_config served by the late host"
    );

    let del = ok(
        "delete_config",
        ctl.delete_config("conf-settings").await,
        &[&late],
    );
    assert_success("delete_config", &del, &[&late]);
    let got = ok(
        "get_config after delete",
        ctl.get_config("conf-settings").await,
        &[&late],
    );
    assert_success("get_config after delete", &got, &[&late]);
    assert_eq!(got.data(), None, "config must be gone after delete_config");
}

/// Test 5: links are shared lattice state (JetStream KV), served by any host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_are_shared_and_served_by_late_joiners() {
    let lattice = Lattice::new("links");
    let mut early = lattice.start_hosts(&[&[], &[]]);
    let ctl = lattice.ctl().await;
    let all: Vec<&HostProcess> = early.iter().collect();
    // The named config the link refers to exists, whether or not the host insists on it.
    for name in ["conf-source-config", "conf-target-config"] {
        let put = ok(
            "put_config",
            ctl.put_config(name, config_map(&[("k", "v")])).await,
            &all,
        );
        assert_success("put_config", &put, &all);
    }

    let link = test_link("conf-source", "conf-target", &["store", "atomics"]);
    let put = ok("put_link", ctl.put_link(link.clone()).await, &all);
    assert_success("put_link", &put, &all);

    let got = ok("get_links", ctl.get_links().await, &all);
    assert_success("get_links", &got, &all);
    let links = got.into_data().expect("get_links returns a list");
    assert_eq!(links, vec![link.clone()], "get_links after put_link");

    // A host that joins after the put, alone in the lattice, still serves it.
    let late = lattice.start_host(&[]);
    for host in &mut early {
        host.kill();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = ok("get_links (late host)", ctl.get_links().await, &[&late]);
    assert_success("get_links (late host)", &got, &[&late]);
    assert_eq!(
        got.into_data().expect("get_links returns a list"),
        vec![link.clone()],
        "get_links served by the late host"
    );

    let del = ok(
        "delete_link",
        ctl.delete_link("conf-source", "default", "wasi", "keyvalue")
            .await,
        &[&late],
    );
    assert_success("delete_link", &del, &[&late]);
    let got = ok("get_links after delete", ctl.get_links().await, &[&late]);
    assert_success("get_links after delete", &got, &[&late]);
    assert_eq!(
        got.into_data().unwrap_or_default(),
        Vec::<Link>::new(),
        "links must be empty after delete_link"
    );
}

/// Test 5b: a link that overlaps an existing one (same source, namespace, package and name, an
/// interface in common) but has another target is refused, and the first one stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_link_is_refused() {
    let lattice = Lattice::new("link-conflict");
    let host = lattice.start_host(&[]);
    let ctl = lattice.ctl().await;
    for name in ["conf-source-config", "conf-target-config"] {
        let put = ok(
            "put_config",
            ctl.put_config(name, config_map(&[("k", "v")])).await,
            &[&host],
        );
        assert_success("put_config", &put, &[&host]);
    }

    let first = test_link("conf-source", "target-one", &["store"]);
    let put = ok("put_link", ctl.put_link(first.clone()).await, &[&host]);
    assert_success("put_link", &put, &[&host]);

    let second = test_link("conf-source", "target-two", &["store", "atomics"]);
    let refused = ok("put_link (conflict)", ctl.put_link(second).await, &[&host]);
    assert!(
        !refused.succeeded(),
        "a conflicting link must be refused, got {refused:?}"
    );
    let got = ok("get_links", ctl.get_links().await, &[&host]);
    assert_eq!(
        got.into_data().unwrap_or_default(),
        vec![first],
        "only the first link remains"
    );
}

/// Test 6: heartbeats carry the inventory; `host.stop` stops the host gracefully.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_then_stop_host_publishes_host_stopped_and_exits_zero() {
    let lattice = Lattice::new("heartbeat-stop");
    let mut events = lattice.events().await;
    let mut hosts = lattice.start_hosts(&[
        &["--heartbeat-interval", "1s", "--label", "zone=hb"],
        &["--heartbeat-interval", "1s"],
    ]);
    let ctl = lattice.ctl().await;

    for host in &hosts {
        let id = host.id().to_owned();
        let started = events
            .expect("host_started", EVENT_TIMEOUT, |e| e.source == id)
            .await;
        assert!(
            started.data.is_object(),
            "host_started data: {}",
            started.data
        );
    }

    let id = hosts[0].id().to_owned();
    let beat = events
        .expect("host_heartbeat", Duration::from_secs(5), |e| e.source == id)
        .await;
    let inv: HostInventory = serde_json::from_value(beat.data.clone()).unwrap_or_else(|e| {
        panic!(
            "host_heartbeat data is not a HostInventory ({e}): {}",
            beat.data
        )
    });
    assert_eq!(inv.host_id(), id, "heartbeat host_id");
    assert_semver("heartbeat", inv.version());
    assert_eq!(inv.labels().get("zone").map(String::as_str), Some("hb"));
    assert_hostcore_labels("heartbeat", inv.labels());
    assert!(inv.components().is_empty() && inv.providers().is_empty());
    // Another one follows about one interval later.
    events
        .expect("host_heartbeat", Duration::from_secs(5), |e| e.source == id)
        .await;

    let victim = hosts[1].id().to_owned();
    let reply = ok(
        "stop_host",
        ctl.stop_host(&victim, None).await,
        &[&hosts[1]],
    );
    assert_success("stop_host", &reply, &[&hosts[1]]);
    events
        .expect("host_stopped", EVENT_TIMEOUT, |e| e.source == victim)
        .await;
    let status = hosts[1].wait_exit(Duration::from_secs(15));
    assert!(
        status.is_some_and(|s| s.code() == Some(0)),
        "stopped host should exit with code 0, got {status:?}{}",
        logs(&[&hosts[1]])
    );

    // The other host is unaffected.
    assert!(hosts[0].try_exit().is_none(), "the other host exited too");
    let found = ping(&ctl, &[&hosts[0]]).await;
    assert_eq!(
        found.keys().collect::<Vec<_>>(),
        vec![&id],
        "only the remaining host answers host.ping"
    );
}

/// The same `component.scale` sent again while the first is still compiling (as a reconciler
/// does every tick until it sees the component) is the same work, not another compile: ten
/// at once start the component once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_scale_again_while_it_compiles_is_done_once() {
    let lattice = Lattice::new("scale-again");
    let mut events = lattice.events().await;
    // No compile cache: each scale would compile, which takes far longer than ten requests.
    let host = lattice.start_host(&["--no-cache"]);
    let ctl = lattice.ctl().await;
    let wasm = trellis_test_support::guest("http_hello");
    let reference = format!("file://{}", wasm.display());
    let replies = futures::future::join_all((0..10).map(|_| {
        ctl.scale_component(
            host.id(),
            &reference,
            "conf-again",
            2,
            None,
            Vec::new(),
            false,
        )
    }))
    .await;
    for reply in replies {
        let reply = ok("scale_component", reply, &[&host]);
        assert_success("scale_component", &reply, &[&host]);
    }
    events
        .expect("component_scaled", EVENT_TIMEOUT, |e| {
            e.source == host.id() && e.data["component_id"] == "conf-again"
        })
        .await;
    // Any further start would have followed within the time the first took.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut again = 0;
    while tokio::time::timeout(
        Duration::from_millis(300),
        // Dropped by the timeout before its own (which panics) runs out.
        events.expect("component_scaled", Duration::from_secs(60), |e| {
            e.data["component_id"] == "conf-again"
        }),
    )
    .await
    .is_ok()
    {
        again += 1;
    }
    assert_eq!(
        again,
        0,
        "the component started more than once{}",
        logs(&[&host])
    );
}

/// `component.scale` with a `file://` component: accepted, `component_scaled` from that host,
/// and the component in the inventory with its instance count. A registry reference (which
/// Trellis cannot pull yet) is refused with a reason, not left unanswered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn component_scale_runs_a_file_component_and_pulls_registry_refs() {
    let lattice = Lattice::new("scale");
    let mut events = lattice.events().await;
    let host = lattice.start_host(&[]);
    let ctl = lattice.ctl().await;
    let wasm = trellis_test_support::guest("http_hello");
    let reference = format!("file://{}", wasm.display());

    let reply = ok(
        "scale_component",
        ctl.scale_component(
            host.id(),
            &reference,
            "conf-component",
            3,
            None,
            Vec::new(),
            false,
        )
        .await,
        &[&host],
    );
    assert_success("scale_component", &reply, &[&host]);
    let scaled = events
        .expect("component_scaled", EVENT_TIMEOUT, |e| {
            e.source == host.id() && e.data["component_id"] == "conf-component"
        })
        .await;
    assert_eq!(scaled.data["max_instances"], 3, "{scaled:?}");
    let inventory = ok(
        "get_host_inventory",
        ctl.get_host_inventory(host.id()).await,
        &[&host],
    );
    let inventory = inventory.into_data().expect("inventory data");
    let component = inventory
        .components()
        .iter()
        .find(|c| c.id() == "conf-component")
        .unwrap_or_else(|| panic!("scaled component missing from {inventory:?}"));
    assert_eq!(component.max_instances(), 3);

    let reply = ok(
        "scale_component",
        ctl.scale_component(
            host.id(),
            "ghcr.io/trellis-conformance/absent:0.1.0",
            "conf-remote",
            1,
            None,
            Vec::new(),
            false,
        )
        .await,
        &[&host],
    );
    assert!(
        reply.succeeded(),
        "a registry reference is accepted and pulled: {reply:?}"
    );
    // This machine cannot resolve ghcr.io: the pull fails, and the event says why.
    let failed = events
        .expect("component_scale_failed", EVENT_TIMEOUT, |e| {
            e.source == host.id() && e.data["component_id"] == "conf-remote"
        })
        .await;
    let error = failed.data["error"].as_str().unwrap_or_default();
    assert!(error.contains("ghcr.io"), "{failed:?}");
    // wasmCloud's client still reads an inventory that lists the failed component in
    // Trellis's `pending_components`.
    let inventory = ok(
        "get_host_inventory",
        ctl.get_host_inventory(host.id()).await,
        &[&host],
    );
    let inventory = inventory.into_data().expect("inventory data");
    assert!(
        inventory
            .components()
            .iter()
            .all(|c| c.id() != "conf-remote"),
        "{inventory:?}"
    );
}

/// SIGTERM stops a host gracefully: `host_stopped`, then exit code 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_publishes_host_stopped_and_exits_zero() {
    let lattice = Lattice::new("sigterm");
    let mut events = lattice.events().await;
    let mut host = lattice.start_host(&[]);
    let id = host.id().to_owned();

    host.terminate();
    events
        .expect("host_stopped", EVENT_TIMEOUT, |e| e.source == id)
        .await;
    let status = host.wait_exit(Duration::from_secs(15));
    assert!(
        status.is_some_and(|s| s.code() == Some(0)),
        "host should exit with code 0 on SIGTERM, got {status:?}{}",
        logs(&[&host])
    );
}

/// Label, config and link changes are announced as events shaped like wasmCloud's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_changes_publish_events() {
    let lattice = Lattice::new("state-events");
    let host = lattice.start_host(&[]);
    let id = host.id().to_owned();
    let ctl = lattice.ctl().await;
    let mut events = lattice.events().await;
    let h = [&host];

    // labels_changed: {host_id, labels}
    let put = ok("put_label", ctl.put_label(&id, "evt", "on").await, &h);
    assert_success("put_label", &put, &h);
    let ev = events
        .expect("labels_changed", EVENT_TIMEOUT, |e| {
            e.data["labels"]["evt"] == "on"
        })
        .await;
    assert_eq!(ev.source, id, "labels_changed source");
    assert_eq!(
        ev.data["host_id"],
        id.as_str(),
        "labels_changed data: {}",
        ev.data
    );
    let del = ok("delete_label", ctl.delete_label(&id, "evt").await, &h);
    assert_success("delete_label", &del, &h);
    let ev = events
        .expect("labels_changed", EVENT_TIMEOUT, |e| {
            e.data["labels"].is_object() && e.data["labels"].get("evt").is_none()
        })
        .await;
    assert_eq!(
        ev.data["host_id"],
        id.as_str(),
        "labels_changed data: {}",
        ev.data
    );

    // config_set / config_deleted: {config_name}
    for name in ["conf-source-config", "conf-target-config"] {
        let put = ok(
            "put_config",
            ctl.put_config(name, config_map(&[("k", "v")])).await,
            &h,
        );
        assert_success("put_config", &put, &h);
        events
            .expect("config_set", EVENT_TIMEOUT, |e| {
                e.data["config_name"] == name
            })
            .await;
    }
    let del = ok(
        "delete_config",
        ctl.delete_config("conf-target-config").await,
        &h,
    );
    assert_success("delete_config", &del, &h);
    events
        .expect("config_deleted", EVENT_TIMEOUT, |e| {
            e.data["config_name"] == "conf-target-config"
        })
        .await;
    let put = ok(
        "put_config",
        ctl.put_config("conf-target-config", config_map(&[("k", "v")]))
            .await,
        &h,
    );
    assert_success("put_config", &put, &h);

    // linkdef_set: the link; linkdef_deleted: {source_id, name, wit_namespace, wit_package}
    let link = test_link("conf-source", "conf-target", &["store"]);
    let put = ok("put_link", ctl.put_link(link.clone()).await, &h);
    assert_success("put_link", &put, &h);
    let ev = events.expect("linkdef_set", EVENT_TIMEOUT, |_| true).await;
    let announced: Link = serde_json::from_value(ev.data.clone())
        .unwrap_or_else(|e| panic!("linkdef_set data is not a Link ({e}): {}", ev.data));
    assert_eq!(announced, link, "linkdef_set data");

    let del = ok(
        "delete_link",
        ctl.delete_link("conf-source", "default", "wasi", "keyvalue")
            .await,
        &h,
    );
    assert_success("delete_link", &del, &h);
    let ev = events
        .expect("linkdef_deleted", EVENT_TIMEOUT, |_| true)
        .await;
    for (key, want) in [
        ("source_id", "conf-source"),
        ("name", "default"),
        ("wit_namespace", "wasi"),
        ("wit_package", "keyvalue"),
    ] {
        assert_eq!(ev.data[key], want, "linkdef_deleted {key}: {}", ev.data);
    }
}

/// `claims.get` answers with a list of string maps: empty at first; once a component signed
/// with `trellis claims sign` runs, its claims in wasmCloud v1's keys, which the published
/// client reads. Its `component_scaled` event carries them too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_get_answers_the_claims_of_signed_components() {
    let lattice = Lattice::new("claims");
    let mut events = lattice.events().await;
    let host = lattice.start_host(&[]);
    let ctl = lattice.ctl().await;
    let reply = ok("get_claims", ctl.get_claims().await, &[&host]);
    assert_success("get_claims", &reply, &[&host]);
    assert_eq!(reply.data(), Some(&Vec::new()), "nothing signed runs yet");

    let dir = trellis_conformance::ScratchDir::new("claims");
    let seed = dir.path().join("issuer.nk");
    let issuer = trellis(&[
        "claims".as_ref(),
        "keygen".as_ref(),
        "account".as_ref(),
        "--output".as_ref(),
        seed.as_ref(),
    ]);
    let issuer = issuer.trim();
    let signed = dir.path().join("hello_s.wasm");
    let guest = trellis_test_support::guest("http_hello");
    let stdout = trellis(&[
        "claims".as_ref(),
        "sign".as_ref(),
        guest.as_ref(),
        "--issuer-key".as_ref(),
        seed.as_ref(),
        "--name".as_ref(),
        "hello".as_ref(),
        "--ver".as_ref(),
        "1.2.0".as_ref(),
        "--rev".as_ref(),
        "4".as_ref(),
        "--tag".as_ref(),
        "web".as_ref(),
        "--output".as_ref(),
        signed.as_ref(),
    ]);
    let subject = stdout
        .lines()
        .find_map(|l| l.strip_prefix("subject"))
        .map(str::trim)
        .expect("the subject line")
        .to_owned();

    let reply = ok(
        "scale_component",
        ctl.scale_component(
            host.id(),
            &format!("file://{}", signed.display()),
            "conf-signed",
            1,
            None,
            Vec::new(),
            false,
        )
        .await,
        &[&host],
    );
    assert_success("scale_component", &reply, &[&host]);
    let scaled = events
        .expect("component_scaled", EVENT_TIMEOUT, |e| {
            e.source == host.id() && e.data["component_id"] == "conf-signed"
        })
        .await;
    assert_eq!(scaled.data["public_key"], subject.as_str(), "{scaled:?}");
    assert_eq!(scaled.data["claims"]["issuer"], issuer, "{scaled:?}");
    assert_eq!(scaled.data["claims"]["name"], "hello", "{scaled:?}");

    let reply = ok("get_claims", ctl.get_claims().await, &[&host]);
    assert_success("get_claims", &reply, &[&host]);
    let claims = reply.into_data().expect("claims data");
    assert_eq!(claims.len(), 1, "{claims:?}");
    let claims = &claims[0];
    let get = |key: &str| claims.get(key).map(String::as_str);
    assert_eq!(get("issuer"), Some(issuer));
    assert_eq!(get("iss"), Some(issuer));
    assert_eq!(get("subject"), Some(subject.as_str()));
    assert_eq!(get("sub"), Some(subject.as_str()));
    assert_eq!(get("name"), Some("hello"));
    assert_eq!(get("version"), Some("1.2.0"));
    assert_eq!(get("revision"), Some("4"));
    assert_eq!(get("tags"), Some("web"));
}

/// Runs `trellis ARGS` to completion; its stdout, or a panic with its stderr.
fn trellis(args: &[&std::ffi::OsStr]) -> String {
    let out = std::process::Command::new(trellis_conformance::trellis_bin())
        .args(args)
        .output()
        .expect("run trellis");
    assert!(
        out.status.success(),
        "trellis {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Auctions: every host whose labels satisfy the constraints answers with its id; the others
/// stay silent. A host that already runs a provider does not bid for it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auctions_are_answered_by_hosts_that_match_the_constraints() {
    let lattice = Lattice::new("auction");
    let east = lattice.start_host(&["--label", "zone=east"]);
    let west = lattice.start_host(&["--label", "zone=west"]);
    let ctl = lattice.ctl().await;

    let acks = ok(
        "perform_component_auction",
        ctl.perform_component_auction(
            "file:///x.wasm",
            "web",
            BTreeMap::from([("zone".to_owned(), "west".to_owned())]),
        )
        .await,
        &[&east, &west],
    );
    let bidders: Vec<String> = acks
        .into_iter()
        .filter_map(|a| a.into_data())
        .map(|a| a.host_id().to_owned())
        .collect();
    assert_eq!(
        bidders,
        vec![west.id().to_owned()],
        "only the west host matches"
    );

    let acks = ok(
        "perform_component_auction",
        ctl.perform_component_auction("file:///x.wasm", "web", BTreeMap::new())
            .await,
        &[&east, &west],
    );
    assert_eq!(
        acks.len(),
        2,
        "without constraints every host bids: {acks:?}"
    );

    let started = ok(
        "start_provider",
        ctl.start_provider(
            east.id(),
            "trellis+builtin://keyvalue-memory",
            "kv",
            None,
            Vec::new(),
        )
        .await,
        &[&east],
    );
    assert_success("start_provider", &started, &[&east]);
    let mut bidders = Vec::new();
    for _ in 0..50 {
        let acks = ok(
            "perform_provider_auction",
            ctl.perform_provider_auction(
                "trellis+builtin://keyvalue-memory",
                "kv",
                BTreeMap::new(),
            )
            .await,
            &[&east, &west],
        );
        bidders = acks
            .into_iter()
            .filter_map(|a| a.into_data())
            .map(|a| a.host_id().to_owned())
            .collect();
        if bidders.len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        bidders,
        vec![west.id().to_owned()],
        "the host running `kv` does not bid for it"
    );
}

/// `component.update` runs the new image with the same count; `provider.stop` takes a
/// provider out of the inventory with `provider_stopped`; both refuse what is not running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_component_and_stop_provider() {
    let lattice = Lattice::new("update");
    let mut events = lattice.events().await;
    let host = lattice.start_host(&[]);
    let ctl = lattice.ctl().await;
    let hello = format!(
        "file://{}",
        trellis_test_support::guest("http_hello").display()
    );
    let behaviours = format!(
        "file://{}",
        trellis_test_support::guest("behaviours").display()
    );

    let reply = ok(
        "scale_component",
        ctl.scale_component(host.id(), &hello, "conf-upd", 2, None, Vec::new(), false)
            .await,
        &[&host],
    );
    assert_success("scale_component", &reply, &[&host]);
    events
        .expect("component_scaled", EVENT_TIMEOUT, |e| {
            e.data["component_id"] == "conf-upd" && e.data["image_ref"] == hello.as_str()
        })
        .await;
    let reply = ok(
        "update_component",
        ctl.update_component(host.id(), "conf-upd", &behaviours, None)
            .await,
        &[&host],
    );
    assert_success("update_component", &reply, &[&host]);
    let updated = events
        .expect("component_scaled", EVENT_TIMEOUT, |e| {
            e.data["component_id"] == "conf-upd" && e.data["image_ref"] == behaviours.as_str()
        })
        .await;
    assert_eq!(updated.data["max_instances"], 2, "{updated:?}");
    let inventory = ok(
        "get_host_inventory",
        ctl.get_host_inventory(host.id()).await,
        &[&host],
    )
    .into_data()
    .expect("inventory data");
    let running: Vec<_> = inventory
        .components()
        .iter()
        .filter(|c| c.id() == "conf-upd")
        .map(|c| c.image_ref().to_owned())
        .collect();
    assert_eq!(
        running,
        std::slice::from_ref(&behaviours),
        "one entry, the new image"
    );
    let refused = ok(
        "update_component",
        ctl.update_component(host.id(), "conf-nothing", &behaviours, None)
            .await,
        &[&host],
    );
    assert!(!refused.succeeded(), "{refused:?}");

    let reply = ok(
        "start_provider",
        ctl.start_provider(
            host.id(),
            "trellis+builtin://keyvalue-memory",
            "conf-kv",
            None,
            Vec::new(),
        )
        .await,
        &[&host],
    );
    assert_success("start_provider", &reply, &[&host]);
    events
        .expect("provider_started", EVENT_TIMEOUT, |e| {
            e.data["provider_id"] == "conf-kv"
        })
        .await;
    let reply = ok(
        "stop_provider",
        ctl.stop_provider(host.id(), "conf-kv").await,
        &[&host],
    );
    assert_success("stop_provider", &reply, &[&host]);
    events
        .expect("provider_stopped", EVENT_TIMEOUT, |e| {
            e.data["provider_id"] == "conf-kv"
        })
        .await;
    let inventory = ok(
        "get_host_inventory",
        ctl.get_host_inventory(host.id()).await,
        &[&host],
    )
    .into_data()
    .expect("inventory data");
    assert!(
        inventory.providers().iter().all(|p| p.id() != "conf-kv"),
        "{inventory:?}"
    );
    let again = ok(
        "stop_provider",
        ctl.stop_provider(host.id(), "conf-kv").await,
        &[&host],
    );
    assert!(
        !again.succeeded() && again.message().contains("not running"),
        "{again:?}"
    );
}
