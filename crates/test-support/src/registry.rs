//! A real OCI registry for tests: Debian's `docker-registry` (CNCF distribution 2.8) on a free
//! port, with its own storage folder and config, optionally behind htpasswd basic auth;
//! killed, and its folder removed, on drop.
//!
//! ```no_run
//! use trellis_test_support::registry::RegistryServer;
//!
//! let registry = RegistryServer::start();
//! let reference = registry.reference("demo/hello:0.1.0"); // "127.0.0.1:PORT/demo/hello:0.1.0"
//! # let _ = reference;
//! let private = RegistryServer::start_with_auth("alice", "s3cret");
//! assert!(private.host().starts_with("127.0.0.1:"));
//! ```
//!
//! `docker-registry` comes from the Debian package of that name (`.ci/run` installs it);
//! auth needs `htpasswd` from `apache2-utils` to write the bcrypt password file.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The registry binary the Debian package installs.
pub const REGISTRY_BIN: &str = "docker-registry";

/// A running registry on `127.0.0.1`, killed on drop.
pub struct RegistryServer {
    child: Option<Child>,
    ip: &'static str,
    port: u16,
    dir: PathBuf,
    credentials: Option<(String, String)>,
}

impl RegistryServer {
    /// A registry anyone may push to and pull from.
    pub fn start() -> Self {
        Self::launch(None, "127.0.0.1")
    }

    /// A registry on another loopback address, such as `127.0.0.2`, which clients do not
    /// treat as local: they use HTTPS unless told the registry is insecure.
    pub fn start_on(ip: &'static str) -> Self {
        Self::launch(None, ip)
    }

    /// A registry that wants HTTP basic auth as `user` / `password` for everything (over
    /// plain HTTP: distribution allows it, and clients send it to loopback registries).
    pub fn start_with_auth(user: &str, password: &str) -> Self {
        Self::launch(Some((user.to_string(), password.to_string())), "127.0.0.1")
    }

    fn launch(credentials: Option<(String, String)>, ip: &'static str) -> Self {
        let dir = unique_dir();
        std::fs::create_dir_all(dir.join("storage")).expect("create the registry's folder");
        let auth = match &credentials {
            None => String::new(),
            Some((user, password)) => {
                let htpasswd = dir.join("htpasswd");
                write_htpasswd(&htpasswd, user, password);
                format!(
                    "auth:\n  htpasswd:\n    realm: trellis-test\n    path: {}\n",
                    htpasswd.display()
                )
            }
        };
        let mut server = Self {
            child: None,
            ip,
            port: 0,
            dir,
            credentials,
        };
        // No blob descriptor cache: tests alter blobs on disk and the registry must serve
        // what is there.
        let storage = server.dir.join("storage");
        let config = |port: u16| {
            format!(
                "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 http:\n  addr: {ip}:{port}\n{auth}",
                storage.display()
            )
        };
        std::fs::write(server.dir.join("config.yml"), config(free_port(ip)))
            .expect("write the registry config");
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        // A port chosen by the OS can be taken by someone else before the registry binds it:
        // try a few.
        for _ in 0..5 {
            let port = free_port(self.ip);
            let config_path = self.dir.join("config.yml");
            let config = std::fs::read_to_string(&config_path).expect("read the registry config");
            let config = rewrite_port(&config, self.ip, port);
            std::fs::write(&config_path, config).expect("write the registry config");
            let log = std::fs::File::create(self.dir.join("registry.log")).expect("create log");
            let child = Command::new(REGISTRY_BIN)
                .arg("serve")
                .arg(&config_path)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| {
                    panic!(
                        "cannot start {REGISTRY_BIN}: {e}; install it with \
                         `apt-get install docker-registry`"
                    )
                });
            self.child = Some(child);
            self.port = port;
            if self.wait_ready(Duration::from_secs(20)) {
                return;
            }
            self.kill();
        }
        panic!("{REGISTRY_BIN} did not start; its log:\n{}", self.log());
    }

    /// Waits until `/v2/` answers (200, or 401 with auth); false if the process died.
    fn wait_ready(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(_)) = child.try_wait()
            {
                return false;
            }
            if let Some(status) = http_status(self.ip, self.port, "/v2/")
                && (status == 200 || status == 401)
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// `127.0.0.1:PORT` (or the address it was started on).
    pub fn host(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT/{repository_and_tag}`.
    pub fn reference(&self, repository_and_tag: &str) -> String {
        format!("{}/{repository_and_tag}", self.host())
    }

    /// The user and password it wants, when started with auth.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials
            .as_ref()
            .map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// The folder its storage driver writes to.
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.join("storage")
    }

    /// Where the registry keeps blob `sha256:…` on disk; tests overwrite it to corrupt it.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.storage_dir()
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2.min(hex.len())])
            .join(hex)
            .join("data")
    }

    /// Stops the registry (it is unreachable until [`RegistryServer::restart`]).
    pub fn stop(&mut self) {
        self.kill();
    }

    /// Starts it again on a fresh port, with the same storage.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// What the registry logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RegistryServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port nothing listens on right now.
fn free_port(ip: &str) -> u16 {
    TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn rewrite_port(config: &str, ip: &str, port: u16) -> String {
    config
        .lines()
        .map(|line| {
            if line.trim_start().starts_with("addr: ") {
                format!("  addr: {ip}:{port}")
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// A folder of its own under the system's temp dir.
fn unique_dir() -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!(
        "trellis-registry-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Writes a bcrypt htpasswd file (the only hash distribution accepts) with `htpasswd -B`.
fn write_htpasswd(path: &Path, user: &str, password: &str) {
    let output = Command::new("htpasswd")
        .args(["-Bbn", user, password])
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run htpasswd: {e}; install it with `apt-get install apache2-utils`")
        });
    assert!(
        output.status.success(),
        "htpasswd failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::write(path, &output.stdout).expect("write htpasswd");
}

/// The status of `GET path` on `ip:port`, or `None` if nothing answers.
fn http_status(ip: &str, port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect((ip, port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {ip}:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}
