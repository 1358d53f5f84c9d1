//! Black-box conformance tests for Trellis hosts.
//!
//! The tests in `tests/` start a private `nats-server` with JetStream, start `trellis host`
//! processes that join a lattice on it, and drive them with the published
//! `wasmcloud-control-interface` client crate (a dev-dependency), so that the real wasmCloud v1
//! client's serde types are the authority on the wire format.
//!
//! This library is the std-only process harness those tests share:
//!
//! - [`trellis_bin`] finds the `trellis` binary: `$TRELLIS_BIN` if set, else
//!   `<target dir>/debug/trellis`, where the target dir is `$CARGO_TARGET_DIR` (at test run time)
//!   or the workspace's `target/`. When that file is missing it runs
//!   `cargo build -p trellis-cli --bin trellis` once per test process. A binary that is present is
//!   used as it is, so build it (`cargo build -p trellis-cli --bin trellis`) after changing the
//!   host, before running these tests.
//! - [`NatsServer`] runs `nats-server -js` on a free loopback port with a scratch store directory.
//! - [`HostProcess`] runs one `trellis host` and waits for its `host <ID> joined lattice <NAME>`
//!   line.
//!
//! Every process is killed when its guard is dropped.

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a host may take from spawn to its `joined lattice` line.
pub const HOST_READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The workspace root (two levels above this crate's manifest).
#[must_use]
pub fn workspace_root() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("..");
    dir.canonicalize().unwrap_or(dir)
}

/// The cargo target directory the tests look in: `$CARGO_TARGET_DIR` at run time (relative paths
/// are taken from the workspace root), else `<workspace>/target`.
#[must_use]
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace_root().join(dir),
        _ => workspace_root().join("target"),
    }
}

/// The `trellis` binary under test, built once per process if it is missing (see the crate docs).
///
/// # Panics
///
/// Panics when the binary is missing and `cargo build` fails.
#[must_use]
pub fn trellis_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("TRELLIS_BIN").filter(|b| !b.is_empty()) {
            return PathBuf::from(bin);
        }
        let bin = target_dir().join("debug").join("trellis");
        if !bin.exists() {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let status = Command::new(&cargo)
                .args(["build", "-p", "trellis-cli", "--bin", "trellis"])
                .current_dir(workspace_root())
                .env("CARGO_TARGET_DIR", target_dir())
                .stdin(Stdio::null())
                .status()
                .unwrap_or_else(|e| panic!("running {cargo:?} build -p trellis-cli: {e}"));
            assert!(
                status.success(),
                "cargo build -p trellis-cli --bin trellis failed: {status}"
            );
            assert!(
                bin.exists(),
                "cargo build did not produce {}",
                bin.display()
            );
        }
        bin
    })
}

/// A lattice name unique to this process and call, starting with `prefix` (which should name the
/// test). It contains no `.`, `*`, `>` or whitespace.
#[must_use]
pub fn unique_lattice(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let prefix: String = prefix
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("{prefix}-{}-{n}-{nanos:x}", std::process::id())
}

/// A loopback TCP port that was free a moment ago (bound to port 0, then released).
///
/// # Panics
///
/// Panics when no port can be bound.
#[must_use]
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// A scratch directory removed (with its contents) on drop.
#[derive(Debug)]
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    /// Creates a fresh directory under the system temp dir.
    ///
    /// # Panics
    ///
    /// Panics when the directory cannot be created.
    #[must_use]
    pub fn new(prefix: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("trellis-conformance-{}", unique_lattice(prefix)));
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("create scratch dir {}: {e}", dir.display()));
        Self(dir)
    }

    /// The directory's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A private `nats-server -js` on a free loopback port; killed on drop.
#[derive(Debug)]
pub struct NatsServer {
    child: Child,
    port: u16,
    log: PathBuf,
    // Declared last so the server is killed before its store is removed.
    _store: ScratchDir,
}

impl NatsServer {
    /// Starts the server and waits until it accepts TCP connections.
    ///
    /// # Panics
    ///
    /// Panics when `nats-server` cannot be started or does not listen within 15 s (after a few
    /// tries with other ports, in case another process took the port).
    #[must_use]
    pub fn start() -> Self {
        let mut last_error = String::new();
        for _ in 0..3 {
            let store = ScratchDir::new("nats");
            let port = free_port();
            let log = store.path().join("nats-server.log");
            let log_file = std::fs::File::create(&log).expect("create nats-server log");
            let child = Command::new("nats-server")
                .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
                .arg(store.path().join("jetstream"))
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().expect("clone log handle"))
                .stderr(log_file)
                .spawn()
                .unwrap_or_else(|e| panic!("spawn nats-server (is it on PATH?): {e}"));
            let mut server = Self {
                child,
                port,
                log,
                _store: store,
            };
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                if let Ok(Some(status)) = server.child.try_wait() {
                    last_error = format!("nats-server exited with {status}: {}", server.log());
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return server;
                }
                if Instant::now() > deadline {
                    panic!(
                        "nats-server did not listen on port {port} within 15 s: {}",
                        server.log()
                    );
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        }
        panic!("nats-server did not start: {last_error}");
    }

    /// `nats://127.0.0.1:PORT`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The server's log so far.
    #[must_use]
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `trellis host` process that has announced it joined its lattice; killed on drop.
#[derive(Debug)]
pub struct HostProcess {
    child: Child,
    id: String,
    lattice: String,
    stderr: Arc<Mutex<String>>,
}

/// A spawned `trellis host` that has not yet been seen to join (see [`HostProcess::spawn`]).
#[derive(Debug)]
pub struct PendingHost {
    child: Option<Child>,
    lattice: String,
    stdout: Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl HostProcess {
    /// Spawns `trellis host --nats URL --lattice LATTICE ARGS...` without waiting for it.
    ///
    /// # Panics
    ///
    /// Panics when the process cannot be spawned.
    #[must_use]
    pub fn spawn(nats_url: &str, lattice: &str, args: &[&str]) -> PendingHost {
        let bin = trellis_bin();
        let mut child = Command::new(bin)
            .args(["host", "--nats", nats_url, "--lattice", lattice])
            .args(args)
            .env_remove("TRELLIS_NATS")
            .env_remove("TRELLIS_LATTICE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {} host: {e}", bin.display()));

        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // The receiver goes away once the host is ready; keep draining regardless.
                let _ = tx.send(line);
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("piped stderr");
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match pipe.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if let Ok(mut s) = sink.lock() {
                            s.push_str(&String::from_utf8_lossy(&buf[..n]));
                        }
                    }
                }
            }
        });
        PendingHost {
            child: Some(child),
            lattice: lattice.to_owned(),
            stdout: rx,
            stderr,
        }
    }

    /// Spawns a host and waits (up to [`HOST_READY_TIMEOUT`]) until it has joined.
    ///
    /// # Panics
    ///
    /// See [`HostProcess::spawn`] and [`PendingHost::wait_ready`].
    #[must_use]
    pub fn start(nats_url: &str, lattice: &str, args: &[&str]) -> Self {
        Self::spawn(nats_url, lattice, args).wait_ready(HOST_READY_TIMEOUT)
    }

    /// Starts one host per entry of `args`, all spawned before any is waited for.
    #[must_use]
    pub fn start_many(nats_url: &str, lattice: &str, args: &[&[&str]]) -> Vec<Self> {
        let pending: Vec<PendingHost> = args
            .iter()
            .map(|a| Self::spawn(nats_url, lattice, a))
            .collect();
        pending
            .into_iter()
            .map(|p| p.wait_ready(HOST_READY_TIMEOUT))
            .collect()
    }

    /// The host id printed on its ready line.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The lattice the host joined.
    #[must_use]
    pub fn lattice(&self) -> &str {
        &self.lattice
    }

    /// The OS process id.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the host wrote to stderr so far.
    #[must_use]
    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Sends SIGTERM (through `kill -TERM`, so this crate needs no unsafe code).
    ///
    /// # Panics
    ///
    /// Panics when `kill` cannot be run or fails.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill -TERM");
        assert!(
            status.success(),
            "kill -TERM {} failed: {status}",
            self.pid()
        );
    }

    /// The exit status, if the process has exited.
    ///
    /// # Panics
    ///
    /// Panics when the status cannot be queried.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("query host process status")
    }

    /// Waits up to `timeout` for the process to exit; `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_exit() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Kills the process (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

impl PendingHost {
    fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Waits until the first stdout line, which must be `host <HOST_ID> joined lattice <NAME>`
    /// with this host's lattice.
    ///
    /// # Panics
    ///
    /// Panics (showing the host's stderr) when the line does not arrive within `timeout`, the
    /// process exits first, or the first line is anything else.
    #[must_use]
    pub fn wait_ready(mut self, timeout: Duration) -> HostProcess {
        let line = match self.stdout.recv_timeout(timeout) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => panic!(
                "trellis host printed no ready line within {timeout:?}; stderr:\n{}",
                self.stderr()
            ),
            Err(RecvTimeoutError::Disconnected) => {
                let status = self.child.as_mut().and_then(|c| c.wait().ok());
                // Give the stderr reader a moment to catch the last words.
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "trellis host closed stdout before its ready line (exit status {status:?}); \
                     stderr:\n{}",
                    self.stderr()
                )
            }
        };
        let words: Vec<&str> = line.split_whitespace().collect();
        let id = match words.as_slice() {
            ["host", id, "joined", "lattice", name] if *name == self.lattice => (*id).to_owned(),
            _ => panic!(
                "expected first stdout line `host <HOST_ID> joined lattice {}`, got {line:?}; \
                 stderr:\n{}",
                self.lattice,
                self.stderr()
            ),
        };
        HostProcess {
            child: self.child.take().expect("child present until ready"),
            id,
            lattice: std::mem::take(&mut self.lattice),
            stderr: Arc::clone(&self.stderr),
        }
    }
}

impl Drop for PendingHost {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
