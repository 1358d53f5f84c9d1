//! `trellis creds init` on a real `nats-server` started from the configuration it writes:
//! hosts run with `host.creds` (and `rpc.creds` for their calls), the CLI works with
//! `admin.creds`, a client holding `rpc.creds` is refused anything but calls, a client with
//! no credential cannot connect; and the leaf-node setup, a host on a leaf node whose
//! remote holds `host.creds`, driven through the hub.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `trellis creds init DIR --lattice LATTICE --port PORT --leaf-port LEAF`.
fn creds_init(dir: &Path, lattice: &str, port: u16, leaf_port: u16) {
    let out = run(&[
        "creds",
        "init",
        &dir.display().to_string(),
        "--lattice",
        lattice,
        "--port",
        &port.to_string(),
        "--leaf-port",
        &leaf_port.to_string(),
    ]);
    assert_eq!(out.code, Some(0), "creds init: {}", out.stderr);
    for role in ["host", "admin", "rpc"] {
        assert!(
            out.stdout.contains(&format!("{role}.creds")),
            "{}",
            out.stdout
        );
    }
}

fn creds(dir: &Path, role: &str) -> String {
    dir.join(format!("{role}.creds")).display().to_string()
}

/// Runs `trellis ARGS --nats URL --lattice LATTICE --ctl-creds CREDS`.
fn cli_with<'a>(url: &'a str, lattice: &'a str, creds: &'a str) -> impl Fn(&[&str]) -> Exited + 'a {
    move |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--nats", url, "--lattice", lattice, "--ctl-creds", creds]);
        run(&all)
    }
}

fn ok(out: Exited, what: &str) -> String {
    assert_eq!(out.code, Some(0), "{what}: {}", out.stderr);
    out.stdout
}

/// The errors the server sent `client`'s connection, as async-nats reports them.
type ServerErrors = tokio::sync::mpsc::UnboundedReceiver<String>;

async fn connect_with(creds: &str, url: &str) -> (async_nats::Client, ServerErrors) {
    let (tx, errors) = tokio::sync::mpsc::unbounded_channel();
    let client = async_nats::ConnectOptions::with_credentials_file(PathBuf::from(creds))
        .await
        .expect("read the creds file")
        .event_callback(move |event| {
            let tx = tx.clone();
            async move {
                if let async_nats::Event::ServerError(e) = event {
                    let _ = tx.send(e.to_string());
                }
            }
        })
        .connect(url)
        .await
        .expect("connect with the creds file");
    (client, errors)
}

/// Waits for the server's permissions violation that names `subject`.
async fn refused(errors: &mut ServerErrors, subject: &str) {
    let found = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(e) = errors.recv().await {
            if e.to_lowercase().contains("permissions violation") && e.contains(subject) {
                return;
            }
        }
    })
    .await;
    assert!(found.is_ok(), "no permissions violation for {subject}");
}

#[test]
fn generated_credentials_keep_calls_away_from_the_control_plane() {
    let dir = tempfile::tempdir().expect("tempdir");
    let creds_dir = dir.path().join("creds");
    let lattice = "secured";
    let port = free_port();
    creds_init(&creds_dir, lattice, port, 0);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(creds_dir.join("rpc.creds"))
            .expect("rpc.creds")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "credentials are for their owner only");
    }
    let again = run(&["creds", "init", &creds_dir.display().to_string()]);
    assert_eq!(again.code, Some(1));
    assert!(again.stderr.contains("pass --force"), "{}", again.stderr);
    let nats = NatsServer::with_config(&creds_dir.join("nats-server.conf"), port);
    let url = nats.url();
    let (host, admin, rpc) = (
        creds(&creds_dir, "host"),
        creds(&creds_dir, "admin"),
        creds(&creds_dir, "rpc"),
    );

    // Hosts: control on host.creds, calls on rpc.creds; `solo` gives only --ctl-creds,
    // which then serves both of its connections.
    let both = |name: &'static str| {
        LatticeHost::start(
            &url,
            lattice,
            &[
                "--friendly-name",
                name,
                "--ctl-creds",
                &host,
                "--rpc-creds",
                &rpc,
                "--call-timeout",
                "5s",
            ],
        )
    };
    let _front = both("front");
    let _back = both("back");
    let _solo = LatticeHost::start(
        &url,
        lattice,
        &["--friendly-name", "solo", "--ctl-creds", &host],
    );

    // The CLI with admin.creds.
    let cli = cli_with(&url, lattice, &admin);
    let hosts = ok(cli(&["get", "hosts"]), "get hosts");
    for name in ["front", "back", "solo"] {
        assert!(hosts.contains(name), "{hosts}");
    }
    let caller = install_guest(dir.path(), "caller");
    let callee = install_guest(dir.path(), "callee");
    let file = |p: &Path| format!("file://{}", p.display());
    let http = free_port();
    for args in [
        vec!["config", "put", "who-back", "who=back"],
        vec![
            "config",
            "put",
            "front-http",
            &format!("address=127.0.0.1:{http}"),
        ],
        vec![
            "start",
            "provider",
            "ghcr.io/wasmcloud/http-server:0.27.0",
            "http",
            "--host",
            "front",
        ],
        vec![
            "link",
            "put",
            "http",
            "caller",
            "wasi:http/incoming-handler",
            "--source-config",
            "front-http",
        ],
        vec!["link", "put", "caller", "callee", "trellis:test/calls"],
        vec![
            "start",
            "component",
            &file(&callee),
            "callee",
            "--host",
            "back",
            "--config",
            "who-back",
        ],
        vec![
            "start",
            "component",
            &file(&caller),
            "caller",
            "--host",
            "front",
        ],
    ] {
        ok(cli(&args), &args.join(" "));
    }
    ok(cli(&["app", "list"]), "app list (the wadm API)");

    // A call from front to back travels on rpc.creds.
    let addr: std::net::SocketAddr = format!("127.0.0.1:{http}").parse().expect("addr");
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

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        // rpc.creds: calls yes, the control plane no.
        let (client, mut errors) = connect_with(&rpc, &url).await;
        let put = format!("wasmbus.ctl.v1.{lattice}.config.put.stolen");
        client
            .publish(put.clone(), br#"{"who":"mallory"}"#.as_slice().into())
            .await
            .expect("publish");
        client.flush().await.expect("flush");
        refused(&mut errors, &put).await;
        let api = format!("wadm.api.{lattice}.model.list");
        client
            .publish(api.clone(), "".into())
            .await
            .expect("publish");
        client.flush().await.expect("flush");
        refused(&mut errors, &api).await;
        for state in [
            format!("$KV.CONFIGDATA_{lattice}.>"),
            format!("wasmbus.evt.{lattice}.>"),
            "_INBOX.>".to_owned(),
        ] {
            let _sub = client.subscribe(state.clone()).await.expect("subscribe");
            client.flush().await.expect("flush");
            refused(&mut errors, &state).await;
        }
        let info = format!("$JS.API.STREAM.INFO.KV_LATTICEDATA_{lattice}");
        client
            .publish(info.clone(), "".into())
            .await
            .expect("publish");
        client.flush().await.expect("flush");
        refused(&mut errors, &info).await;
        // What it may do: subscribe to and publish calls.
        let _calls = client
            .subscribe(format!("{lattice}.*.wrpc.>"))
            .await
            .expect("subscribe to calls");
        client.flush().await.expect("flush");
        if let Ok(error) = tokio::time::timeout(Duration::from_millis(300), errors.recv()).await {
            panic!("calls are allowed to rpc.creds, but the server said {error:?}");
        }

        // No credential: no connection.
        assert!(
            async_nats::ConnectOptions::new()
                .connect(url.as_str())
                .await
                .is_err(),
            "a client without credentials is refused"
        );
    });
    // Nothing changed.
    let stolen = cli(&["get", "config", "stolen"]);
    assert_eq!(stolen.code, Some(1), "{}", stolen.stdout);
    assert!(
        stolen.stderr.contains("no config named `stolen`"),
        "{}",
        stolen.stderr
    );
    let refused_cli = run(&["get", "hosts", "--nats", &url, "--lattice", lattice]);
    assert_eq!(refused_cli.code, Some(1));
    assert!(
        refused_cli.stderr.contains("are the credentials right?"),
        "{}",
        refused_cli.stderr
    );
    // The CLI given only rpc.creds is refused the control plane, and says so.
    let rpc_cli = run(&[
        "config",
        "get",
        "who-back",
        "--nats",
        &url,
        "--lattice",
        lattice,
        "--rpc-creds",
        &rpc,
        "--timeout",
        "1s",
    ]);
    assert_eq!(rpc_cli.code, Some(1), "{}", rpc_cli.stdout);
    assert!(
        rpc_cli
            .stderr
            .to_lowercase()
            .contains("permissions violation"),
        "{}",
        rpc_cli.stderr
    );
}

/// The NGS-style setup: the host talks to a local leaf node with no credential of its own;
/// the leaf node's remote connects to the hub with host.creds; the CLI drives the host
/// through the hub with admin.creds, and an app deployed there runs on the leaf's host.
#[test]
fn a_host_on_a_leaf_node_is_driven_through_the_hub() {
    let dir = tempfile::tempdir().expect("tempdir");
    let creds_dir = dir.path().join("creds");
    let lattice = "edge";
    let (hub_port, hub_leaf_port, leaf_port) = (free_port(), free_port(), free_port());
    creds_init(&creds_dir, lattice, hub_port, hub_leaf_port);
    let hub = NatsServer::with_config(&creds_dir.join("nats-server.conf"), hub_port);
    let leaf_config = dir.path().join("leaf.conf");
    std::fs::write(
        &leaf_config,
        format!(
            "port: {leaf_port}\ndefault_js_domain: {{ \"$G\": \"hub\" }}\nleafnodes {{\n  remotes = [\n    {{ url: \"nats-leaf://127.0.0.1:{hub_leaf_port}\", credentials: \"{}\" }}\n  ]\n}}\n",
            creds(&creds_dir, "host")
        ),
    )
    .expect("write leaf.conf");
    let leaf = NatsServer::with_config(&leaf_config, leaf_port);
    // The hub's JetStream answers through the leaf once the leaf's remote is connected.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let local = rt
        .block_on(async_nats::connect(leaf.url()))
        .expect("connect to the leaf");
    eventually(
        "the leaf node to connect to the hub",
        Duration::from_secs(15),
        || {
            rt.block_on(async {
                tokio::time::timeout(
                    Duration::from_secs(1),
                    local.request("$JS.API.INFO", "".into()),
                )
                .await
            })
            .ok()
            .and_then(Result::ok)
        },
    );
    let host = LatticeHost::start(&leaf.url(), lattice, &["--friendly-name", "edge-1"]);

    let admin = creds(&creds_dir, "admin");
    let hub_url = hub.url();
    let cli = cli_with(&hub_url, lattice, &admin);
    eventually(
        "the hub to see the leaf's host",
        Duration::from_secs(15),
        || {
            let out = cli(&["get", "hosts"]);
            (out.code == Some(0) && out.stdout.contains("edge-1")).then_some(())
        },
    );
    std::fs::create_dir_all(dir.path().join("app/build")).expect("app dir");
    let callee = install_guest(&dir.path().join("app"), "callee");
    let manifest = write_manifest(
        &dir.path().join("app"),
        &format!(
            r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: edgeapp
spec:
  components:
    - name: callee
      type: component
      properties:
        image: file://{}
      traits:
        - type: spreadscaler
          properties:
            instances: 1
"#,
            callee.display()
        ),
    );
    ok(
        cli(&["app", "deploy", &manifest.display().to_string()]),
        "app deploy through the hub",
    );
    let greeting = eventually(
        "the app to run on the leaf's host",
        Duration::from_secs(30),
        || {
            let out = cli(&[
                "call",
                "edgeapp-callee",
                "trellis:test/calls.greet",
                "\"Ada\"",
                "--raw",
            ]);
            (out.code == Some(0)).then_some(out.stdout)
        },
    );
    assert_eq!(greeting.trim(), "hello Ada from callee");
    drop(host);
}
