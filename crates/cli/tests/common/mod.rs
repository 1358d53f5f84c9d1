//! Runs the real `trellis` binary and talks to it over real sockets.

#![allow(dead_code)]

pub mod metrics;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `trellis` process, killed on drop.
pub struct Trellis {
    child: Option<Child>,
    /// Addresses from the `listening on http://…` lines, in order.
    pub addresses: Vec<SocketAddr>,
    /// Every line printed on stdout before it was ready.
    pub stdout: Vec<String>,
    stderr: Arc<Mutex<String>>,
}

/// Output of a `trellis` run that exited.
pub struct Exited {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// One compile cache for the whole test run, so each test does not recompile the guests.
pub fn shared_cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("compile-cache")
}

pub fn trellis_bin() -> &'static str {
    env!("CARGO_BIN_EXE_trellis")
}

/// Runs `trellis ARGS` to completion (for commands expected to fail fast).
pub fn run(args: &[&str]) -> Exited {
    run_with(args, |_| {})
}

/// Runs `trellis ARGS` to completion, with the command adjusted by `setup` first (a working
/// folder, environment variables).
pub fn run_with(args: &[&str], setup: impl FnOnce(&mut Command)) -> Exited {
    let mut cmd = Command::new(trellis_bin());
    cmd.args(args)
        .env("TRELLIS_LOG", "info")
        .env("TRELLIS_CACHE_DIR", shared_cache_dir())
        .stdin(Stdio::null());
    setup(&mut cmd);
    let out = cmd.output().expect("run trellis");
    Exited {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

impl Trellis {
    /// Starts `trellis up MANIFEST --http 127.0.0.1:0 EXTRA...` and waits until it listens.
    pub fn up(manifest: &Path, extra: &[&str]) -> Trellis {
        let mut cmd = Command::new(trellis_bin());
        cmd.arg("up")
            .arg(manifest)
            .args(["--http", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
            .args(extra);
        Self::start(cmd)
    }

    pub fn start(cmd: Command) -> Trellis {
        Self::start_until(cmd, "app `")
    }

    /// The control endpoint `trellis up` printed, `http://127.0.0.1:PORT`.
    pub fn admin_url(&self) -> String {
        self.stdout
            .iter()
            .find_map(|l| l.strip_prefix("control interface on "))
            .unwrap_or_else(|| panic!("no control interface line in {:?}", self.stdout))
            .trim()
            .to_owned()
    }

    /// The control endpoint's `host:port`.
    pub fn admin_address(&self) -> String {
        self.admin_url().trim_start_matches("http://").to_owned()
    }

    /// Starts `cmd` and returns once it printed a stdout line starting with `ready`.
    pub fn start_until(mut cmd: Command, ready: &str) -> Trellis {
        // A test may ask for more (or less) logging by setting TRELLIS_LOG itself.
        if !cmd.get_envs().any(|(k, _)| k == "TRELLIS_LOG") {
            cmd.env("TRELLIS_LOG", "info");
        }
        cmd.env("TRELLIS_CACHE_DIR", shared_cache_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn trellis");
        let stderr = Arc::new(Mutex::new(String::new()));
        {
            let stderr = stderr.clone();
            let pipe = child.stderr.take().expect("stderr");
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let mut s = stderr.lock().expect("lock");
                    s.push_str(&line);
                    s.push('\n');
                }
            });
        }
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut trellis = Trellis {
            child: Some(child),
            addresses: Vec::new(),
            stdout: Vec::new(),
            stderr,
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix("listening on http://") {
                        let addr = rest.split_whitespace().next().expect("address");
                        trellis
                            .addresses
                            .push(addr.parse().expect("socket address"));
                    }
                    trellis.stdout.push(line);
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    // The host prints all its startup lines at once, the ready line first.
                    if trellis.stdout.iter().any(|l| l.starts_with(ready)) {
                        return trellis;
                    }
                    if let Some(status) = trellis
                        .child
                        .as_mut()
                        .and_then(|c| c.try_wait().ok().flatten())
                    {
                        panic!("trellis exited early with {status}:\n{}", trellis.stderr());
                    }
                    if Instant::now() > deadline {
                        panic!(
                            "trellis did not start listening in time:\n{}",
                            trellis.stderr()
                        );
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    if trellis.stdout.iter().any(|l| l.starts_with(ready)) {
                        return trellis;
                    }
                    let _ = trellis.child.as_mut().map(Child::wait);
                    panic!(
                        "trellis closed stdout before listening:\n{}",
                        trellis.stderr()
                    );
                }
            }
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addresses[0]
    }

    /// Everything written to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("lock").clone()
    }

    /// Waits until stderr contains `needle`, or panics after `timeout`.
    pub fn wait_for_stderr(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.stderr();
            if s.contains(needle) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "stderr never contained {needle:?}:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends SIGTERM and waits for the exit code.
    /// Waits up to `timeout` for the process to exit by itself; its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "trellis did not exit within {timeout:?}:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn terminate(&mut self) -> Option<i32> {
        let mut child = self.child.take().expect("running");
        let pid = child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "trellis did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Trellis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// Sends one HTTP/1.1 request with `Connection: close` and reads the whole response.
pub fn request(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> Response {
    try_request(addr, method, path, body).expect("HTTP request")
}

pub fn get(addr: SocketAddr, path: &str) -> Response {
    request(addr, "GET", path, b"")
}

pub fn try_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    read_response(&mut stream)
}

pub fn read_response(stream: &mut impl Read) -> std::io::Result<Response> {
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw).ok_or_else(|| {
        std::io::Error::other(format!(
            "malformed response: {:?}",
            String::from_utf8_lossy(&raw)
        ))
    })
}

fn parse_response(raw: &[u8]) -> Option<Response> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &raw[split + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)?
    } else {
        rest.to_vec()
    };
    Some(Response {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_str = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_str.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// Writes `manifest` to `dir/app.yaml` and returns the path.
pub fn write_manifest(dir: &Path, manifest: &str) -> PathBuf {
    let path = dir.join("app.yaml");
    std::fs::write(&path, manifest).expect("write manifest");
    path
}

/// Copies a built guest into `dir/build/NAME.wasm`.
pub fn install_guest(dir: &Path, guest: &str) -> PathBuf {
    let build = dir.join("build");
    std::fs::create_dir_all(&build).expect("mkdir build");
    let dest = build.join(format!("{guest}.wasm"));
    std::fs::copy(trellis_test_support::guest(guest), &dest).expect("copy guest");
    dest
}

/// A manifest with one component served over HTTP by the built-in server.
pub fn http_app(name: &str, wasm: &str, instances: u32, extra_component_yaml: &str) -> String {
    format!(
        r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: {name}
spec:
  components:
    - name: web
      type: component
      properties:
        image: file://./build/{wasm}.wasm
{extra_component_yaml}      traits:
        - type: spreadscaler
          properties:
            instances: {instances}
    - name: httpserver
      type: capability
      properties:
        image: ghcr.io/wasmcloud/http-server:0.27.0
      traits:
        - type: link
          properties:
            target:
              name: web
            namespace: wasi
            package: http
            interfaces: [incoming-handler]
            source:
              config:
                - name: default-http
                  properties:
                    address: 127.0.0.1:8000
"#
    )
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A `redis-server` of our own on `port`, with no persistence; killed on drop.
pub struct RedisServer {
    child: Child,
    pub port: u16,
}

impl RedisServer {
    pub fn start(port: u16) -> RedisServer {
        let mut cmd = Command::new("redis-server");
        cmd.args([
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ]);
        let child = spawn_listening(cmd, port, "redis-server (apt-get install redis-server)");
        RedisServer { child, port }
    }
}

/// Spawns a server quietly and waits until it accepts connections on `port`.
fn spawn_listening(mut cmd: Command, port: u16, what: &str) -> Child {
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not start on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `f` until it returns `Some`, or panics with `what` after `timeout`.
pub fn eventually<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A manifest with one HTTP component `web` linked to one capability provider `cap`.
///
/// `link` is the `namespace`/`package`/`interfaces` lines of the link from `web` to `cap`;
/// `target_config` is inline properties for that link (YAML lines at 20 spaces' indent) and
/// `provider_config` properties for the provider itself (at 18 spaces' indent).
pub fn capability_app(
    wasm: &str,
    provider_image: &str,
    link: (&str, &str, &str),
    target_config: &str,
    provider_config: &str,
) -> String {
    let (namespace, package, interfaces) = link;
    let target_config = if target_config.is_empty() {
        String::new()
    } else {
        format!(
            "              config:\n                - name: cap-link\n                  properties:\n{target_config}"
        )
    };
    let provider_config = if provider_config.is_empty() {
        String::new()
    } else {
        format!(
            "        config:\n          - name: cap-config\n            properties:\n{provider_config}"
        )
    };
    format!(
        r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: capabilities
spec:
  components:
    - name: web
      type: component
      properties:
        image: file://./build/{wasm}.wasm
      traits:
        - type: spreadscaler
          properties:
            instances: 4
        - type: link
          properties:
            namespace: {namespace}
            package: {package}
            interfaces: [{interfaces}]
            target:
              name: cap
{target_config}
    - name: cap
      type: capability
      properties:
        image: {provider_image}
{provider_config}
    - name: httpserver
      type: capability
      properties:
        image: ghcr.io/wasmcloud/http-server:0.27.0
      traits:
        - type: link
          properties:
            target:
              name: web
            namespace: wasi
            package: http
            interfaces: [incoming-handler]
            source:
              config:
                - name: default-http
                  properties:
                    address: 127.0.0.1:8000
"#
    )
}

/// A `nats-server -js` of our own on `port`, storing in `dir`; killed on drop.
pub struct NatsServer {
    child: Child,
    pub port: u16,
}

impl NatsServer {
    pub fn start(port: u16, dir: &Path) -> NatsServer {
        let mut cmd = Command::new("nats-server");
        cmd.args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(dir);
        let child = spawn_listening(cmd, port, "nats-server (apt-get install nats-server)");
        NatsServer { child, port }
    }

    /// A `nats-server -c CONFIG` (which must listen on `port`, and says where it stores),
    /// bound to 127.0.0.1.
    pub fn with_config(config: &Path, port: u16) -> NatsServer {
        let mut cmd = Command::new("nats-server");
        cmd.arg("-c").arg(config).args(["-a", "127.0.0.1"]);
        let child = spawn_listening(cmd, port, "nats-server (apt-get install nats-server)");
        NatsServer { child, port }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `trellis host`, killed on drop.
pub struct LatticeHost {
    pub trellis: Trellis,
    pub id: String,
}

impl LatticeHost {
    pub fn start(nats: &str, lattice: &str, extra: &[&str]) -> LatticeHost {
        let mut cmd = Command::new(trellis_bin());
        cmd.args(["host", "--nats", nats, "--lattice", lattice])
            .args(extra);
        Self::start_command(cmd)
    }

    /// Starts `cmd` (a `trellis host …` command) and waits for the host to join.
    pub fn start_command(cmd: Command) -> LatticeHost {
        let trellis = Trellis::start_until(cmd, "host ");
        let id = trellis
            .stdout
            .iter()
            .find_map(|l| {
                l.strip_prefix("host ")?
                    .split_whitespace()
                    .next()
                    .map(str::to_owned)
            })
            .expect("host id line");
        LatticeHost { trellis, id }
    }
}

/// A long-running `trellis ARGS` (such as `trellis events`) whose stdout lines and stderr are
/// collected as they come; killed on drop.
pub struct Watching {
    child: Option<Child>,
    lines: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
    /// The threads copying stdout and stderr; they end when the process closes them.
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Watching {
    pub fn start(args: &[&str]) -> Watching {
        let mut cmd = Command::new(trellis_bin());
        cmd.args(args).env("TRELLIS_LOG", "info");
        Self::start_command(cmd)
    }

    /// Starts `cmd` (a `trellis` command with its folder and environment set).
    pub fn start_command(mut cmd: Command) -> Watching {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn trellis");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let stdout = child.stdout.take().expect("stdout");
        let sink = lines.clone();
        let out_reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().expect("lock").push(line);
            }
        });
        let pipe = child.stderr.take().expect("stderr");
        let sink = stderr.clone();
        let err_reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut s = sink.lock().expect("lock");
                s.push_str(&line);
                s.push('\n');
            }
        });
        Watching {
            child: Some(child),
            lines,
            stderr,
            readers: vec![out_reader, err_reader],
        }
    }

    /// Every stdout line so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("lock").clone()
    }

    /// Waits until a stdout line after the first `from` contains `needle`; that line and its
    /// index.
    pub fn wait_for_line(&self, from: usize, needle: &str, timeout: Duration) -> (usize, String) {
        let deadline = Instant::now() + timeout;
        loop {
            let lines = self.lines();
            if let Some((i, l)) = lines
                .iter()
                .enumerate()
                .skip(from)
                .find(|(_, l)| l.contains(needle))
            {
                return (i, l.clone());
            }
            assert!(
                Instant::now() < deadline,
                "no line with {needle:?} within {timeout:?}; stdout:\n{}\nstderr:\n{}",
                lines.join("\n"),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends SIGTERM and waits for the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        if let Some(child) = &self.child {
            Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .expect("kill");
        }
        self.wait_exit(Duration::from_secs(30))
    }

    /// Everything written to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("lock").clone()
    }

    /// Waits up to `timeout` for the process to exit by itself; its exit code. Everything it
    /// wrote is in [`Self::lines`] and [`Self::stderr`] by then.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                for reader in self.readers.drain(..) {
                    let _ = reader.join();
                }
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "trellis did not exit within {timeout:?}:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A client requesting `GET /` in a loop, each on a new connection, until finished.
pub struct Load {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<(u32, Vec<String>)>,
}

impl Load {
    pub fn start(addr: SocketAddr) -> Load {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let (mut ok, mut failed) = (0u32, Vec::new());
            while !flag.load(Ordering::Relaxed) {
                match try_request(addr, "GET", "/", b"") {
                    Ok(r) if r.status == 200 => ok += 1,
                    Ok(r) => failed.push(format!("{} {}", r.status, r.body)),
                    Err(e) => failed.push(e.to_string()),
                }
            }
            (ok, failed)
        });
        Load { stop, thread }
    }

    /// Stops, asserts that no request failed and enough went through; the count of them.
    pub fn finish_without_failures(self) -> u32 {
        self.stop.store(true, Ordering::Relaxed);
        let (ok, failed) = self.thread.join().expect("load thread");
        assert!(
            failed.is_empty(),
            "{} of {} requests failed: {:?}",
            failed.len(),
            ok as usize + failed.len(),
            &failed[..failed.len().min(5)]
        );
        assert!(ok > 20, "only {ok} requests went through");
        ok
    }
}

/// componentize-py, as `scripts/services` installs it (or `TRELLIS_COMPONENTIZE_PY`).
pub fn componentize_py() -> PathBuf {
    if let Some(path) = std::env::var_os("TRELLIS_COMPONENTIZE_PY") {
        return PathBuf::from(path);
    }
    let tools = std::env::var_os("TRELLIS_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/trellis-tools"));
    let path = tools.join("venv/bin/componentize-py");
    assert!(
        path.exists(),
        "componentize-py is not at {}: run scripts/services (it installs it from PyPI), or set TRELLIS_COMPONENTIZE_PY",
        path.display()
    );
    path
}

/// The WASI 0.2 WIT that wasmtime-wasi-http (the version this workspace serves) ships with:
/// the `wasi:http/proxy` world the guest is built for, at the version the host serves.
pub fn wasi_http_wit() -> PathBuf {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1"])
        .current_dir(trellis_test_support::repo_root())
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata json");
    let manifest = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .find(|p| p["name"] == "wasmtime-wasi-http")
        .and_then(|p| p["manifest_path"].as_str())
        .expect("wasmtime-wasi-http is a dependency");
    Path::new(manifest)
        .parent()
        .expect("crate folder")
        .join("wit")
}

/// The `wasi:http` version in that WIT, such as `0.2.12`.
pub fn wasi_http_version(wit: &Path) -> String {
    let http = std::fs::read_to_string(wit.join("deps/http.wit")).expect("read http.wit");
    http.lines()
        .find_map(|l| l.trim().strip_prefix("package wasi:http@"))
        .map(|v| v.trim_end_matches(';').to_owned())
        .expect("package line in http.wit")
}

/// The headers of one request, names in lower case.
pub type Headers = Vec<(String, String)>;

/// A keep-alive HTTP/1.1 upstream on a free port that answers `upstream saw PATH`, counting
/// the connections it accepts and keeping the headers of every request (names in lower
/// case), for components that call out through the HTTP client.
pub struct Upstream {
    pub port: u16,
    pub connections: Arc<AtomicUsize>,
    pub requests: Arc<Mutex<Vec<Headers>>>,
}

impl Upstream {
    pub fn start() -> Upstream {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (counter, kept) = (connections.clone(), requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                counter.fetch_add(1, Ordering::SeqCst);
                let kept = kept.clone();
                std::thread::spawn(move || answer_upstream(stream, &kept));
            }
        });
        Upstream {
            port,
            connections,
            requests,
        }
    }

    /// The connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// The value of header `name` in every request received so far.
    pub fn header(&self, name: &str) -> Vec<Option<String>> {
        self.requests
            .lock()
            .expect("lock")
            .iter()
            .map(|headers| {
                headers
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            })
            .collect()
    }
}

fn answer_upstream(stream: TcpStream, kept: &Mutex<Vec<Headers>>) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0;
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                let (name, value) = (name.trim().to_ascii_lowercase(), value.trim().to_owned());
                if name == "content-length" {
                    length = value.parse().unwrap_or(0);
                }
                headers.push((name, value));
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        kept.lock().expect("lock").push(headers);
        let path = request_line.split_whitespace().nth(1).unwrap_or("");
        let reply = format!("upstream saw {path}");
        let _ = write!(
            writer,
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{reply}",
            reply.len()
        );
    }
}

/// Deploys the greeter example's `manifest` (`app.yaml` or `lattice.yaml` in
/// examples/greeter) with its HTTP port moved to a free one, to `lattice` on the NATS server
/// at `nats`, and returns the address it will serve on.
pub fn deploy_greeter(dir: &Path, manifest: &str, nats: &str, lattice: &str) -> SocketAddr {
    install_guest(dir, "greeter_front");
    install_guest(dir, "greeter_back");
    let port = free_port();
    let text = std::fs::read_to_string(
        trellis_test_support::repo_root()
            .join("examples/greeter")
            .join(manifest),
    )
    .expect("manifest")
    .replace("127.0.0.1:8000", &format!("127.0.0.1:{port}"));
    let path = write_manifest(dir, &text);
    let deployed = run(&[
        "app",
        "deploy",
        path.to_str().expect("path"),
        "--nats",
        nats,
        "--lattice",
        lattice,
    ]);
    assert_eq!(deployed.code, Some(0), "{}", deployed.stderr);
    SocketAddr::from(([127, 0, 0, 1], port))
}
