//! Guest components for Trellis's integration tests, built from source on demand.
//!
//! The guests live outside the host workspace because they target `wasm32-wasip2`: the
//! examples (`examples/http-hello`, `examples/kv-counter`, `examples/messaging`,
//! `examples/greeter`, `examples/todomvc`) and the `test-components` workspace (`behaviours`,
//! `needs-kv`, `kv-ops`, `kv-watch`, `blob-ops`, `http-fetch`, `msg-client`, `msg-v3`,
//! `msg-v3-request`, `callee`, `caller`, `pg-query`, `secrets-reader`, `typed-exports`,
//! `wadm-status`).
//! [`guest`] builds all of them the first time a test process asks for one, so a test never
//! runs against a stale or committed binary.
//!
//! ```no_run
//! let wasm = trellis_test_support::guest("behaviours");
//! assert!(wasm.ends_with("behaviours.wasm"));
//! ```
//!
//! [`registry::RegistryServer`] runs a real OCI registry (Debian's `docker-registry`) for
//! tests that push and pull components.
//!
//! Test runners such as cargo-nextest start one process per test, so many processes may build
//! at once. They share one target directory, and cargo's lock on it makes all but the first wait
//! and then find nothing left to do.

pub mod browser;
pub mod registry;

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The Rust target every guest is compiled for.
const WASM_TARGET: &str = "wasm32-wasip2";

/// The guests [`guest`] knows how to build, by the file stem of their `.wasm` output.
pub const GUESTS: [&str; 22] = [
    "http_hello",
    "behaviours",
    "needs_kv",
    "kv_ops",
    "kv_watch",
    "blob_ops",
    "http_fetch",
    "msg_client",
    "msg_v3",
    "msg_v3_request",
    "callee",
    "caller",
    "pg_query",
    "secrets_reader",
    "typed_exports",
    "wadm_status",
    "kv_counter",
    "messaging_echo",
    "greeter_front",
    "greeter_back",
    "hello_p3",
    "todomvc",
];

/// Manifests, relative to the repository root, of the workspaces that produce [`GUESTS`].
const GUEST_MANIFESTS: [&str; 6] = [
    "examples/http-hello/Cargo.toml",
    "examples/kv-counter/Cargo.toml",
    "examples/messaging/Cargo.toml",
    "examples/greeter/Cargo.toml",
    "examples/todomvc/Cargo.toml",
    "test-components/Cargo.toml",
];

/// Environment variables that configure the host build and would break, or silently change,
/// the nested cross-compile. `CARGO_TARGET_DIR` is not listed: it is always set explicitly.
const HOST_BUILD_VARS: [&str; 4] = [
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_BUILD_TARGET",
];

/// Path of a built guest: one of [`GUESTS`], for example `"http_hello"` or `"kv_ops"`.
///
/// The first call in a process builds all guests (release, `wasm32-wasip2`) into
/// `{target}/guests`, where `{target}` is `CARGO_TARGET_DIR` if set, else `{repo}/target`.
///
/// # Panics
///
/// If `name` is not one of [`GUESTS`], or if the build fails: the message carries cargo's
/// stderr and a hint on how to fix it. A failed build is not retried within the process.
pub fn guest(name: &str) -> PathBuf {
    assert!(
        GUESTS.contains(&name),
        "unknown guest {name:?}; the guests are {GUESTS:?}"
    );

    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let out_dir = match BUILT.get_or_init(build_guests) {
        Ok(dir) => dir,
        Err(message) => panic!("{message}"),
    };

    let path = out_dir.join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "the guest build succeeded but {} is missing; was the crate renamed?",
        path.display()
    );
    path
}

/// Root of the repository (the directory holding the workspace `Cargo.toml`).
pub fn repo_root() -> PathBuf {
    // Prefer the checkout the tests run in: cargo and nextest set CARGO_MANIFEST_DIR for each
    // test process to the crate under test, `{repo}/crates/NAME`. The path baked in at compile
    // time can name another checkout, because cargo reuses artifacts across checkouts that
    // share a target directory (CI does).
    let crate_dir = env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    crate_dir
        .ancestors()
        .find(|dir| dir.join("test-components/Cargo.toml").is_file())
        .unwrap_or_else(|| {
            panic!(
                "no repository root (with test-components/) above {}",
                crate_dir.display()
            )
        })
        .to_path_buf()
}

/// Builds every guest workspace and returns the directory holding the `.wasm` files.
fn build_guests() -> Result<PathBuf, String> {
    check_wasm_target_installed()?;

    let root = repo_root();
    let target_dir = guest_target_dir("guests");

    for manifest in GUEST_MANIFESTS {
        let mut command = guest_cargo();
        command
            .args([
                "build",
                "--release",
                "--target",
                WASM_TARGET,
                "--manifest-path",
            ])
            .arg(root.join(manifest))
            .env("CARGO_TARGET_DIR", &target_dir)
            .current_dir(&root);

        let output = command.output().map_err(|e| {
            format!(
                "could not run {}: {e}",
                Path::new(command.get_program()).display()
            )
        })?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(format!(
                "building the guest components in {manifest} failed ({}):\n{stderr}\n\
                 hint: {}",
                output.status,
                failure_hint(&stderr),
            ));
        }
    }

    Ok(target_dir.join(WASM_TARGET).join("release"))
}

/// A `cargo` command for building guests: the cargo running the tests, without the
/// environment that configures the host build (`RUSTFLAGS`, `CARGO_BUILD_TARGET` and the
/// like) and would break, or silently change, the cross-compile. `CARGO_TARGET_DIR` is
/// left for the caller to set (or remove).
pub fn guest_cargo() -> Command {
    let mut command = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    for var in HOST_BUILD_VARS {
        command.env_remove(var);
    }
    command
}

/// `{CARGO_TARGET_DIR or {repo}/target}/{name}`: a target directory for guest builds (`guests`
/// for [`guest`]'s). Guests get their own directories so their builds never invalidate, or
/// wait on, the host's build artefacts more than cargo must; tests that build guests of their
/// own share one under a name of theirs, so a test run compiles each dependency once.
pub fn guest_target_dir(name: &str) -> PathBuf {
    let root = repo_root();
    let base = match env::var_os("CARGO_TARGET_DIR").filter(|dir| !dir.is_empty()) {
        // Cargo reads a relative CARGO_TARGET_DIR against the directory it was started in,
        // which for a test run is most likely the repository root, not this process's cwd.
        Some(dir) => root.join(dir),
        None => root.join("target"),
    };
    base.join(name)
}

/// Fails early, with the fix, when rustc has no standard library for the guest target;
/// otherwise the error would be buried in cargo's output as "can't find crate for `core`".
fn check_wasm_target_installed() -> Result<(), String> {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .map_err(|e| format!("could not run {}: {e}", Path::new(&rustc).display()))?;
    if !output.status.success() {
        // Let the build itself report whatever is wrong with this toolchain.
        return Ok(());
    }
    let sysroot = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let target_lib = Path::new(&sysroot)
        .join("lib")
        .join("rustlib")
        .join(WASM_TARGET);
    if target_lib.is_dir() {
        Ok(())
    } else {
        Err(format!(
            "the Rust target {WASM_TARGET} is not installed for the toolchain at {sysroot}; \
             install it with `rustup target add {WASM_TARGET}`"
        ))
    }
}

/// What to try next, judged from cargo's stderr.
fn failure_hint(stderr: &str) -> String {
    let target_missing = ["target may not be installed", "can't find crate for `core`"]
        .iter()
        .any(|symptom| stderr.contains(symptom));
    if target_missing {
        format!("install the guest target with `rustup target add {WASM_TARGET}`")
    } else {
        format!(
            "reproduce with `cargo build --release --target {WASM_TARGET} --manifest-path \
             <manifest>` from the repository root, or run `scripts/build-guests`; \
             if the target is missing, `rustup target add {WASM_TARGET}`"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_http_hello_as_a_wasm_binary() {
        let path = guest("http_hello");
        let bytes = std::fs::read(&path).expect("the built guest is readable");
        assert!(
            bytes.starts_with(b"\0asm"),
            "{} does not start with the wasm magic",
            path.display()
        );
    }

    #[test]
    fn repo_root_holds_the_guest_manifests() {
        let root = repo_root();
        for manifest in GUEST_MANIFESTS {
            assert!(
                root.join(manifest).is_file(),
                "{manifest} not found under {}",
                root.display()
            );
        }
    }

    #[test]
    #[should_panic(expected = "unknown guest")]
    fn unknown_guest_is_refused() {
        guest("no_such_guest");
    }
}
