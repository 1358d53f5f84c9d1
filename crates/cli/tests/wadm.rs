//! The wadm status provider through the real binary: a component linked from a `wadm`
//! provider (wasmCloud's `wadm-provider.par.gz`, with the wadm-status-receiver example's
//! config) receives the status changes of the app its link names, from Trellis's own
//! reconciler, in embedded mode and across the hosts of a lattice.

mod common;

use common::*;
use std::time::Duration;

/// The receiving app, as wasmCloud's wadm-status-receiver example writes it: a component
/// exporting `wasmcloud:wadm/handler@0.2.0`, and the wadm provider linked to it with
/// `app_name` in the link's source config. `provider_config` is the provider's config
/// properties (18 spaces' indent); `requirements` go under the scalers' properties.
fn receiver(
    app_name: &str,
    provider_config: &str,
    component_where: &str,
    provider_where: &str,
) -> String {
    format!(
        r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: status-watch
spec:
  components:
    - name: status-receiver
      type: component
      properties:
        image: file://./build/wadm_status.wasm
      traits:
        - type: spreadscaler
          properties:
            instances: 1{component_where}
    - name: wadm-client
      type: capability
      properties:
        image: file://../../../../src/bin/wadm-provider/build/wadm-provider.par.gz
        config:
          - name: default-wadm
            properties:
{provider_config}      traits:
        - type: spreadscaler
          properties:
            instances: 1{provider_where}
        - type: link
          properties:
            target:
              name: status-receiver
            namespace: wasmcloud
            package: wadm
            interfaces: [handler]
            source:
              config:
                - name: default-wadm-sub
                  properties:
                    app_name: "{app_name}"
"#
    )
}

const EXAMPLE_CONFIG: &str = r#"              ctl_host: "127.0.0.1"
              ctl_port: "4222"
              lattice: "default"
"#;

/// Embedded mode: `trellis up` runs the receiver; an app deployed beside it with `trellis app
/// deploy --embedded` is watched from deploying to deployed, then undeployed.
#[test]
fn embedded_mode_delivers_the_watched_apps_status_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    install_guest(dir.path(), "wadm_status");
    install_guest(dir.path(), "http_hello");
    let manifest = write_manifest(dir.path(), &receiver("watched", EXAMPLE_CONFIG, "", ""));
    let trellis = Trellis::up(&manifest, &["--provider-health-interval", "300ms"]);
    trellis.wait_for_stderr("delivering app status updates", Duration::from_secs(30));
    let admin = trellis.admin_url();
    let app = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--embedded", admin.as_str()]);
        let out = run(&all);
        assert_eq!(out.code, Some(0), "trellis {args:?}: {}", out.stderr);
    };

    let watched = dir.path().join("watched.yaml");
    std::fs::write(&watched, http_app("watched", "http_hello", 1, "")).expect("write");
    app(&["app", "deploy", watched.to_str().expect("utf-8")]);
    let log = trellis.wait_for_stderr(
        "status update: app=watched version=v1 status=deployed",
        Duration::from_secs(30),
    );
    let line = log
        .lines()
        .find(|l| l.contains("status update: app=watched version=v1 status=deployed"))
        .expect("the line");
    // One entry per manifest entry, with its kind and status.
    assert!(line.contains("web/component/deployed"), "{line}");
    assert!(line.contains("httpserver/capability/deployed"), "{line}");
    assert!(
        !log.contains("status update: app=status-watch"),
        "only the app the link names is delivered:\n{log}"
    );

    app(&["app", "undeploy", "watched"]);
    trellis.wait_for_stderr(
        "status update: app=watched version= status=undeployed",
        Duration::from_secs(30),
    );
    assert!(!trellis.stderr().contains("cannot deliver app status"));
}

/// A link that names no app is refused at deploy, saying what to add; one that names
/// another lattice is reported once at run time, with what to do.
#[test]
fn a_link_must_name_an_app_of_this_lattice() {
    let dir = tempfile::tempdir().expect("tempdir");
    install_guest(dir.path(), "wadm_status");
    let no_app = receiver("", "              ctl_host: \"127.0.0.1\"\n", "", "").replace(
        "                    app_name: \"\"\n",
        "                    ctl_port: \"4222\"\n",
    );
    let manifest = write_manifest(dir.path(), &no_app);
    let out = run(&["up", manifest.to_str().expect("utf-8")]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("its link names no app"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("app_name"), "{}", out.stderr);

    let other_lattice = receiver("watched", "              lattice: \"prod\"\n", "", "");
    let trellis = Trellis::up(
        &write_manifest(dir.path(), &other_lattice),
        &["--provider-health-interval", "300ms"],
    );
    let log = trellis.wait_for_stderr(
        "the wadm provider cannot deliver app status to this component",
        Duration::from_secs(30),
    );
    assert!(log.contains("`lattice` is `prod`"), "{log}");
}

/// On a lattice: the receiver component runs on one host and the wadm provider on another
/// (spread requirements), so each status change travels from the reconciler on NATS
/// (`wadm.status.{lattice}.{app}`) to the provider's host and from there as a wRPC call to
/// the component's host.
#[test]
fn on_a_lattice_status_reaches_a_component_on_another_host() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nats = NatsServer::start(free_port(), &dir.path().join("nats"));
    let lattice = "wadmstatus";
    let start = |zone: &str| {
        LatticeHost::start(
            &nats.url(),
            lattice,
            &[
                "--heartbeat-interval",
                "1s",
                "--reconcile-interval",
                "1s",
                "--provider-health-interval",
                "300ms",
                "--label",
                &format!("zone={zone}"),
            ],
        )
    };
    let a = start("a");
    let b = start("b");
    install_guest(dir.path(), "wadm_status");
    install_guest(dir.path(), "http_hello");
    let url = nats.url();
    let cli = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--nats", url.as_str(), "--lattice", lattice]);
        let out = run(&all);
        assert_eq!(out.code, Some(0), "trellis {args:?}: {}", out.stderr);
    };
    let place = |zone: &str| {
        format!(
            "\n            spread:\n              - name: {zone}\n                requirements:\n                  zone: {zone}"
        )
    };
    let manifest = write_manifest(
        dir.path(),
        &receiver(
            "watched",
            "              ctl_host: \"127.0.0.1\"\n",
            &place("a"),
            &place("b"),
        ),
    );
    cli(&["app", "deploy", manifest.to_str().expect("utf-8")]);
    b.trellis
        .wait_for_stderr("delivering app status updates", Duration::from_secs(60));

    let watched = dir.path().join("watched.yaml");
    std::fs::write(
        &watched,
        http_app("watched", "http_hello", 1, "").replace("127.0.0.1:8000", "127.0.0.1:0"),
    )
    .expect("write");
    cli(&["app", "deploy", watched.to_str().expect("utf-8")]);
    let log = a.trellis.wait_for_stderr(
        "status update: app=watched version=v1 status=deployed",
        Duration::from_secs(60),
    );
    assert!(log.contains("web/component/deployed"), "{log}");
    assert!(
        !b.trellis.stderr().contains("status update: app=watched"),
        "the component runs on host a only"
    );
}
