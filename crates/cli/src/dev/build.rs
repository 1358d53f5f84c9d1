//! Where each component of a `trellis dev` app comes from, and building it.
//!
//! A `file://` component is built by, in this order:
//! 1. the command in the app annotation `trellis.dev/build.<component>` (run with `sh -c` in
//!    the manifest's folder; it must write the file the manifest names), watching the folders
//!    listed in `trellis.dev/watch.<component>` (comma-separated, relative to the manifest;
//!    default: the manifest's folder);
//! 2. `cargo build --target wasm32-wasip2` in the Cargo project around the file (the nearest
//!    folder above it with a `Cargo.toml`), `--release` unless the file is under a `debug`
//!    folder, watching that project;
//! 3. nobody: the file itself is watched, and a new version is swapped in when it changes.
//!
//! Registry components are run as they are.

use anyhow::{Context as _, bail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use trellis_manifest::{Application, ImageRef};

/// The annotation prefix that gives a component's build command.
pub(crate) const BUILD_ANNOTATION: &str = "trellis.dev/build.";
/// The annotation prefix that gives the folders a build command reads.
pub(crate) const WATCH_ANNOTATION: &str = "trellis.dev/watch.";

/// How one source becomes component files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Recipe {
    /// `cargo build` in this project folder, with or without `--release`.
    Cargo { project: PathBuf, release: bool },
    /// This shell command, run in the manifest's folder.
    Command { command: String, dir: PathBuf },
    /// Nothing to build: the file is swapped in when it changes.
    File,
}

/// One thing to build, and the components it yields.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub(crate) recipe: Recipe,
    /// What to watch for changes.
    pub(crate) watch: Vec<PathBuf>,
    /// The components it builds: name → the file the manifest names.
    pub(crate) components: BTreeMap<String, PathBuf>,
}

impl Source {
    /// A short name for the output: the project folder's or the component's.
    pub(crate) fn label(&self) -> String {
        match &self.recipe {
            Recipe::Cargo { project, .. } => project
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| project.display().to_string()),
            Recipe::Command { .. } | Recipe::File => self
                .components
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(","),
        }
    }

    /// Whether a change at `path` concerns this source. Build outputs (`target/`, the
    /// files it writes) and editor droppings are not changes.
    pub(crate) fn concerns(&self, path: &Path) -> bool {
        if !self.watch.iter().any(|w| path.starts_with(w)) {
            return false;
        }
        if let Recipe::File = self.recipe {
            return self.components.values().any(|f| f == path);
        }
        if self.components.values().any(|f| f == path) {
            return false;
        }
        let ignored = |name: &str| {
            matches!(
                name,
                "target" | ".git" | ".trellis" | "node_modules" | "__pycache__" | "build"
            )
        };
        let Some(root) = self.watch.iter().find(|w| path.starts_with(w)) else {
            return false;
        };
        let relative = path.strip_prefix(root).unwrap_or(path);
        if relative
            .components()
            .any(|c| ignored(&c.as_os_str().to_string_lossy()))
        {
            return false;
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        !(name.starts_with('.') || name.ends_with('~') || name.ends_with(".swp"))
    }
}

/// The sources of `app`'s file components, one per Cargo project or build command.
pub(crate) fn sources(app: &Application, manifest_dir: &Path) -> Vec<Source> {
    let mut out: Vec<Source> = Vec::new();
    for c in &app.components {
        let ImageRef::File(file) = &c.image else {
            continue;
        };
        let (recipe, watch) = if let Some(command) = app
            .annotations
            .get(&format!("{BUILD_ANNOTATION}{}", c.name))
        {
            let watch = app
                .annotations
                .get(&format!("{WATCH_ANNOTATION}{}", c.name))
                .map(|list| {
                    list.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| manifest_dir.join(s))
                        .collect()
                })
                .unwrap_or_else(|| vec![manifest_dir.to_owned()]);
            (
                Recipe::Command {
                    command: command.clone(),
                    dir: manifest_dir.to_owned(),
                },
                watch,
            )
        } else if let Some(project) = cargo_project(file) {
            let release = !file
                .components()
                .any(|c| c.as_os_str() == std::ffi::OsStr::new("debug"));
            (
                Recipe::Cargo {
                    project: project.clone(),
                    release,
                },
                vec![project],
            )
        } else {
            (
                Recipe::File,
                vec![file.parent().unwrap_or(manifest_dir).to_owned()],
            )
        };
        match out.iter_mut().find(|s| s.recipe == recipe) {
            Some(source) => {
                source.components.insert(c.name.clone(), file.clone());
            }
            None => out.push(Source {
                recipe,
                watch,
                components: BTreeMap::from([(c.name.clone(), file.clone())]),
            }),
        }
    }
    out
}

/// The nearest folder above `file` with a `Cargo.toml` (the file need not exist yet).
fn cargo_project(file: &Path) -> Option<PathBuf> {
    let mut dir = file.parent();
    while let Some(d) = dir {
        if d.join("Cargo.toml").is_file() {
            // A workspace's member builds its own crate into the workspace's target folder,
            // as cargo does when run there.
            return Some(d.to_owned());
        }
        dir = d.parent();
    }
    None
}

/// A finished build: the component files it produced (name → path), or the failure.
pub(crate) type Built = BTreeMap<String, PathBuf>;

/// Builds `source`, sending each line the tool prints to `line`. On success, returns each
/// component's fresh file (the manifest's file, which the build wrote or was copied to).
pub(crate) async fn build(
    source: &Source,
    color: bool,
    mut line: impl FnMut(String),
) -> anyhow::Result<Built> {
    match &source.recipe {
        Recipe::File => {
            for file in source.components.values() {
                if !file.is_file() {
                    bail!(
                        "{} does not exist, and trellis dev found no way to build it (no Cargo.toml above it, no `{BUILD_ANNOTATION}<component>` annotation)",
                        file.display()
                    );
                }
            }
            Ok(source.components.clone())
        }
        Recipe::Command { command, dir } => {
            let mut cmd = tokio::process::Command::new("sh");
            cmd.arg("-c").arg(command).current_dir(dir);
            run(cmd, &mut line, |_| {})
                .await
                .with_context(|| format!("`{command}` failed"))?;
            for file in source.components.values() {
                if !file.is_file() {
                    bail!(
                        "`{command}` succeeded but did not write {}, the file the manifest names",
                        file.display()
                    );
                }
            }
            Ok(source.components.clone())
        }
        Recipe::Cargo { project, release } => {
            let mut cmd = tokio::process::Command::new(
                std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()),
            );
            cmd.args(["build", "--target", "wasm32-wasip2"])
                // The compiler's messages as it renders them, coloured only when dev's
                // output is.
                .args([
                    "--message-format",
                    if color {
                        "json-diagnostic-rendered-ansi"
                    } else {
                        "json"
                    },
                ])
                .args(["--color", if color { "always" } else { "never" }])
                .current_dir(project);
            if *release {
                cmd.arg("--release");
            }
            let mut artifacts: Vec<PathBuf> = Vec::new();
            run(cmd, &mut line, |json| {
                artifacts.extend(wasm_artifacts(json))
            })
            .await
            .context("cargo build failed")?;
            let mut built = BTreeMap::new();
            for (name, file) in &source.components {
                let wanted = file.file_name();
                let artifact = artifacts
                    .iter()
                    .find(|a| a.file_name() == wanted)
                    .or_else(|| (artifacts.len() == 1).then(|| &artifacts[0]))
                    .with_context(|| {
                        format!(
                            "cargo built no {} for component `{name}` (it built: {}); name the component's crate after the file, or point the image at cargo's output",
                            file.file_name().unwrap_or_default().to_string_lossy(),
                            artifacts
                                .iter()
                                .map(|a| a.display().to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    })?;
                // The manifest's file is what `trellis up` will run later: keep it current.
                if artifact != file {
                    if let Some(dir) = file.parent() {
                        std::fs::create_dir_all(dir)
                            .with_context(|| format!("cannot create {}", dir.display()))?;
                    }
                    std::fs::copy(artifact, file).with_context(|| {
                        format!("cannot copy {} to {}", artifact.display(), file.display())
                    })?;
                }
                built.insert(name.clone(), file.clone());
            }
            Ok(built)
        }
    }
}

/// The `.wasm` files of a cargo `compiler-artifact` message.
fn wasm_artifacts(message: &serde_json::Value) -> Vec<PathBuf> {
    if message["reason"] != "compiler-artifact" {
        return Vec::new();
    }
    message["filenames"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str())
        .filter(|f| f.ends_with(".wasm"))
        .map(PathBuf::from)
        .collect()
}

/// Runs `cmd`, passing every line it prints to `line` (cargo's JSON messages to `json`,
/// with their rendered diagnostics to `line`), and fails when it does.
async fn run(
    mut cmd: tokio::process::Command,
    line: &mut impl FnMut(String),
    mut json: impl FnMut(&serde_json::Value),
) -> anyhow::Result<()> {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let mut child = cmd.spawn().context("cannot start the build")?;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        bail!("cannot read the build's output");
    };
    let mut stdout = BufReader::new(stdout).lines();
    let mut stderr = BufReader::new(stderr).lines();
    let (mut out_open, mut err_open) = (true, true);
    while out_open || err_open {
        tokio::select! {
            l = stdout.next_line(), if out_open => match l? {
                Some(l) => match serde_json::from_str::<serde_json::Value>(&l) {
                    Ok(message) => {
                        json(&message);
                        if let Some(rendered) = message["message"]["rendered"].as_str() {
                            for r in rendered.trim_end().lines() {
                                line(r.to_owned());
                            }
                        }
                    }
                    Err(_) => line(l),
                },
                None => out_open = false,
            },
            l = stderr.next_line(), if err_open => match l? {
                Some(l) => line(l),
                None => err_open = false,
            },
        }
    }
    let status = child.wait().await?;
    if !status.success() {
        bail!("it exited with {status}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(recipe: Recipe, watch: &str, file: &str) -> Source {
        Source {
            recipe,
            watch: vec![PathBuf::from(watch)],
            components: BTreeMap::from([("c".to_owned(), PathBuf::from(file))]),
        }
    }

    #[test]
    fn build_outputs_and_editor_files_are_not_changes() {
        let cargo = source(
            Recipe::Cargo {
                project: "/p".into(),
                release: true,
            },
            "/p",
            "/p/target/wasm32-wasip2/release/c.wasm",
        );
        assert!(cargo.concerns(Path::new("/p/src/lib.rs")));
        assert!(cargo.concerns(Path::new("/p/Cargo.toml")));
        assert!(!cargo.concerns(Path::new("/p/target/debug/x")));
        assert!(!cargo.concerns(Path::new("/p/src/.lib.rs.swp")));
        assert!(!cargo.concerns(Path::new("/p/src/lib.rs~")));
        assert!(!cargo.concerns(Path::new("/p/.trellis/dev/x.wasm")));
        assert!(!cargo.concerns(Path::new("/elsewhere/lib.rs")));

        let file = source(Recipe::File, "/p/out", "/p/out/c.wasm");
        assert!(file.concerns(Path::new("/p/out/c.wasm")));
        assert!(!file.concerns(Path::new("/p/out/other.wasm")));
    }

    #[test]
    fn cargo_messages_name_the_wasm_files() {
        let message = serde_json::json!({
            "reason": "compiler-artifact",
            "filenames": ["/t/wasm32-wasip2/release/hello.wasm", "/t/libhello.rlib"],
        });
        assert_eq!(
            wasm_artifacts(&message),
            [PathBuf::from("/t/wasm32-wasip2/release/hello.wasm")]
        );
        assert!(wasm_artifacts(&serde_json::json!({"reason": "build-finished"})).is_empty());
    }
}
