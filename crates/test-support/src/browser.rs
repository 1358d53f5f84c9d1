//! Browser tests: scripts in `tests/browser/` driven by `playwright-core` in Debian's
//! Chromium (`scripts/browser-tools` installs both; nothing downloads a browser).
//!
//! ```no_run
//! let out = trellis_test_support::browser::run("dashboard.mjs", &[("URL", "http://127.0.0.1:1/")]);
//! assert!(out.contains("ok"));
//! ```

use std::path::PathBuf;
use std::process::Command;

/// Where screenshots go: `{CARGO_TARGET_DIR or {repo}/target}/artefacts`, kept after the run.
pub fn artefacts_dir() -> PathBuf {
    crate::guest_target_dir("artefacts")
}

/// Runs `node tests/browser/{script}` with `env` (and `TRELLIS_ARTEFACTS`), and returns its
/// stdout.
///
/// # Panics
///
/// When the script fails or cannot start: the message carries its output, and the hint to
/// run `scripts/browser-tools` when Chromium or playwright-core is missing.
pub fn run(script: &str, env: &[(&str, &str)]) -> String {
    let dir = crate::repo_root().join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").is_dir()
            && std::path::Path::new("/usr/bin/chromium").exists()
            || std::env::var_os("CHROMIUM").is_some(),
        "the browser tests need Chromium and playwright-core: run scripts/browser-tools"
    );
    let output = Command::new("node")
        .arg(dir.join(script))
        .current_dir(&dir)
        .env("TRELLIS_ARTEFACTS", artefacts_dir())
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run node (install Node.js, or run scripts/browser-tools): {e}")
        });
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "browser script {script} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}
