//! `trellis dev`: build, run, watch, rebuild and swap.
//!
//! It builds every `file://` component whose source it finds ([`build`]), runs the app on an
//! embedded host (the same one `trellis up` runs, found by the CLI the same way), watches the
//! sources and the manifest, and on a change rebuilds and hands the embedded reconciler a new
//! version of the app: components whose bytes changed are swapped in (requests in flight
//! finish on the old version, new ones go to the new one as soon as it is compiled), and
//! manifest edits (scale, links, config, new components) are applied like `trellis app
//! deploy`. A failed build is printed in full and the old version keeps serving.
//!
//! Each build is served from its own copy, `.trellis/dev/<component>-<hash>.wasm`, so that
//! every build is a different image to the reconciler and the compiler never reads a file
//! cargo is writing. Components compile with the baseline compiler (Winch) by default, which
//! is several times faster than the optimising one for big components.

mod build;
mod console;

use crate::embedded::{Embedded, Serving};
use crate::{RunArgs, lock};
use anyhow::Context as _;
use build::Source;
use clap::Parser as _;
use console::{Console, ConsoleLayer};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::{Duration, Instant};
use trellis_host::HostConfig;
use trellis_runtime::Compiler;

#[derive(clap::Args)]
pub(crate) struct DevArgs {
    /// The application manifest.
    #[arg(default_value = "app.yaml")]
    manifest: PathBuf,

    /// How components are compiled: `baseline` (Winch: fast to compile, slower to run) or
    /// `optimizing` (Cranelift, as `trellis up` and `trellis host` do).
    #[arg(
        long,
        value_enum,
        default_value = "baseline",
        env = "TRELLIS_DEV_COMPILER"
    )]
    compiler: CompilerArg,

    /// Colour the output: auto (on a terminal, unless NO_COLOR is set), always, never.
    #[arg(long, value_enum, default_value = "auto")]
    color: clap::ColorChoice,

    /// Open `trellis repl` on this host: a prompt on the last line, with the build and
    /// component lines printed above it. `exit` or Ctrl-D there stops dev.
    #[arg(long)]
    repl: bool,

    #[command(flatten)]
    pub(crate) run: RunArgs,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum CompilerArg {
    Baseline,
    Optimizing,
}

/// How long changes are collected before acting on them: an editor's save, or a `git
/// checkout`, is several file events.
const SETTLE: Duration = Duration::from_millis(150);

/// How long a swap may take before dev says it is still waiting.
const SWAP_TIMEOUT: Duration = Duration::from_secs(120);

pub(crate) async fn run(args: DevArgs) -> anyhow::Result<()> {
    let console = Console::new(console::use_color(args.color));
    init_logging(&console);
    let manifest = &args.manifest;
    if !manifest.is_file() {
        anyhow::bail!(
            "there is no {} here: start a project with `trellis new NAME`, or name the manifest (`trellis dev path/to/app.yaml`)",
            manifest.display()
        );
    }
    let manifest = manifest
        .canonicalize()
        .with_context(|| format!("cannot read {}", manifest.display()))?;
    let manifest_dir = manifest.parent().map(Path::to_path_buf).unwrap_or_default();
    let settings = crate::host_config(&args.run.limits, &args.run.cache, &args.run.signed)?;
    let registry = trellis_registry::Registry::new(settings.registry.clone());
    let compiler = match args.compiler {
        CompilerArg::Baseline => Compiler::Baseline,
        CompilerArg::Optimizing => Compiler::Optimizing,
    };
    // Dev keeps its app versions in memory: each refers to a build in .trellis/dev/.
    let host = Embedded::start(
        &manifest,
        &args.run,
        HostConfig {
            compiler,
            apps_file: None,
            ..settings
        },
    )?
    .serve()
    .await?;
    if args.repl && host.admin.is_none() {
        anyhow::bail!(
            "--repl needs the control interface, which is off or could not listen (--admin)"
        );
    }
    if let Some(addr) = host.admin {
        console.say(
            "dev",
            &format!("control interface on http://{addr} (the CLI finds it from this folder)"),
        );
    }
    if let Some(url) = &host.metrics {
        console.say("dev", &format!("metrics on {url}"));
    }
    if let Some(url) = host.dashboard_url() {
        console.say("dev", &format!("dashboard on {url}"));
    }

    let (changes_tx, mut changes) = tokio::sync::mpsc::unbounded_channel::<PathBuf>();
    let mut watcher = Watcher::new(changes_tx)?;
    let mut dev = Dev {
        console: console.clone(),
        manifest,
        manifest_dir,
        registry,
        host,
        sources: Vec::new(),
        builds: BTreeMap::new(),
        deployed: false,
        swapped: BTreeMap::new(),
    };
    dev.replan(&mut watcher);
    let all: Vec<usize> = (0..dev.sources.len()).collect();
    dev.build(&all).await;
    // What the first build wrote (cargo creates target/ through a temporary folder beside
    // it) is no edit. Edits count from "watching for changes" on, printed after this.
    tokio::time::sleep(SETTLE).await;
    while changes.try_recv().is_ok() {}
    dev.apply().await;

    // The REPL, when asked for, once the app runs: dev's lines go above its prompt from
    // now on.
    // Polled in this task (the line editor has a thread of its own); boxed, since the
    // commands typed at it run through `crate::run`, which runs dev.
    let mut repl: Option<Pin<Box<dyn Future<Output = anyhow::Result<()>>>>> = None;
    if args.repl {
        let Some(addr) = dev.host.admin else {
            anyhow::bail!("--repl needs the control interface, which is off (--admin)");
        };
        let repl_args = ReplOn::try_parse_from([
            "repl",
            "--embedded",
            &format!("http://{addr}"),
            "--admin-token",
            &dev.host.token,
        ])
        .context("cannot set up the REPL")?
        .repl;
        let (lines, feed) = tokio::sync::mpsc::unbounded_channel();
        console.feed(lines);
        repl = Some(Box::pin(crate::repl::run(repl_args, Some(feed))));
    }

    let signals = crate::shutdown_signal();
    tokio::pin!(signals);
    loop {
        tokio::select! {
            _ = &mut signals => break,
            _ = dev.host.host.stop_requested() => break,
            ended = async {
                match repl.as_mut() {
                    Some(repl) => repl.await,
                    None => std::future::pending().await,
                }
            } => {
                if let Err(e) = ended {
                    console.error("dev", &format!("{e:#}"));
                }
                console.unfeed();
                break;
            }
            Some(first) = changes.recv() => {
                let mut paths = BTreeSet::from([first]);
                // Let the burst of events settle.
                let settle = tokio::time::sleep(SETTLE);
                tokio::pin!(settle);
                loop {
                    tokio::select! {
                        _ = &mut settle => break,
                        Some(p) = changes.recv() => { paths.insert(p); }
                    }
                }
                dev.changed(paths, &mut watcher).await;
            }
        }
    }
    console.say("dev", "stopping: finishing in-flight requests");
    dev.host.stop().await;
    Ok(())
}

/// The REPL's flags for `trellis dev --repl`, parsed as typed ones are (its environment
/// variables and defaults apply).
#[derive(clap::Parser)]
struct ReplOn {
    #[command(flatten)]
    repl: crate::repl::ReplArgs,
}

/// Logs go to the console: component lines with their prefix, the host's warnings.
fn init_logging(console: &Console) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = tracing_subscriber::EnvFilter::try_from_env("TRELLIS_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("warn,{}=trace", trellis_runtime::GUEST_LOG))
    });
    use tracing_subscriber::Layer as _;
    let _ = tracing_subscriber::registry()
        .with(
            ConsoleLayer {
                console: console.clone(),
            }
            .with_filter(filter),
        )
        // Spans to OpenTelemetry, when traces are configured (docs/tracing.md).
        .with(crate::observe::spans_layer())
        .try_init();
}

/// The dev loop's state.
struct Dev {
    console: Console,
    manifest: PathBuf,
    manifest_dir: PathBuf,
    registry: trellis_registry::Registry,
    host: Serving,
    sources: Vec<Source>,
    /// The latest good build of each component: its copy in `.trellis/dev/`.
    builds: BTreeMap<String, PathBuf>,
    /// Whether the app runs (its first deploy succeeded).
    deployed: bool,
    /// The copies that replaced another, awaiting their swap: component → (copy, since).
    swapped: BTreeMap<String, (PathBuf, Instant)>,
}

impl Dev {
    /// Reads the manifest's sources and watches them (and the manifest).
    fn replan(&mut self, watcher: &mut Watcher) {
        let text = match std::fs::read_to_string(&self.manifest) {
            Ok(text) => text,
            Err(e) => {
                self.console.error(
                    "dev",
                    &format!("cannot read {}: {e}", self.manifest.display()),
                );
                return;
            }
        };
        let app = match trellis_manifest::parse_before_build(&text, &self.manifest) {
            Ok(app) => app,
            Err(e) => {
                self.console.error("dev", &e.to_string());
                return;
            }
        };
        self.sources = build::sources(&app, &self.manifest_dir);
        let mut paths = vec![self.manifest_dir.clone()];
        for s in &self.sources {
            paths.extend(s.watch.iter().cloned());
        }
        watcher.watch(&paths, &self.console);
        for s in &self.sources {
            let what = match &s.recipe {
                build::Recipe::Cargo { project, .. } => {
                    format!("cargo project {}", project.display())
                }
                build::Recipe::Command { command, .. } => format!("`{command}`"),
                build::Recipe::File => {
                    "the file itself (no Cargo.toml above it, no build annotation)".to_owned()
                }
            };
            let names: Vec<&str> = s.components.keys().map(String::as_str).collect();
            self.console
                .say("dev", &format!("{}: built from {what}", names.join(", ")));
        }
    }

    /// Acts on changed files.
    async fn changed(&mut self, paths: BTreeSet<PathBuf>, watcher: &mut Watcher) {
        tracing::debug!(?paths, "files changed");
        let manifest_changed = paths.iter().any(|p| *p == self.manifest);
        if manifest_changed {
            self.console.say("dev", "the manifest changed");
            self.replan(watcher);
        }
        let to_build: Vec<usize> = self
            .sources
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                paths.iter().any(|p| s.concerns(p))
                    || (manifest_changed
                        && s.components.keys().any(|c| !self.builds.contains_key(c)))
            })
            .map(|(i, _)| i)
            .collect();
        if to_build.is_empty() && !manifest_changed {
            return;
        }
        let built_any = self.build(&to_build).await;
        if built_any || manifest_changed || !self.deployed {
            let applied = self.apply().await;
            if applied && manifest_changed {
                self.console.ok(
                    "dev",
                    "the manifest's new version is deployed; the reconciler applies it (`trellis app status` shows how far)",
                );
            }
        }
    }

    /// Builds the sources at `which`; returns whether any produced a new component.
    async fn build(&mut self, which: &[usize]) -> bool {
        let mut changed = false;
        for &i in which {
            let Some(source) = self.sources.get(i).cloned() else {
                continue;
            };
            let label = source.label();
            let started = Instant::now();
            if !matches!(source.recipe, build::Recipe::File) {
                self.console.say("build", &format!("building {label}"));
            }
            let console = self.console.clone();
            let who = format!("build {label}");
            let who = if who.len() > 14 {
                "build".to_owned()
            } else {
                who
            };
            let result = build::build(&source, self.console.color(), |line| {
                console.say(&who, &line)
            })
            .await;
            match result {
                Err(e) => {
                    let keep = if self.deployed {
                        "; the running version keeps serving"
                    } else {
                        ""
                    };
                    self.console
                        .error("build", &format!("{label}: {e:#}{keep}"));
                }
                Ok(files) => {
                    let mut new = false;
                    for (component, file) in files {
                        match self.keep_copy(&component, &file) {
                            Ok(copy) => {
                                if self.builds.get(&component) != Some(&copy) {
                                    new = true;
                                    self.builds.insert(component, copy);
                                }
                            }
                            Err(e) => self.console.error("build", &format!("{e:#}")),
                        }
                    }
                    changed |= new;
                    if !matches!(source.recipe, build::Recipe::File) {
                        let same = if new || !self.deployed {
                            ""
                        } else {
                            " (the same component as the running one: nothing to swap)"
                        };
                        self.console.ok(
                            "build",
                            &format!(
                                "built {label} in {:.1}s{same}",
                                started.elapsed().as_secs_f64()
                            ),
                        );
                    }
                }
            }
        }
        changed
    }

    /// Copies a build to `.trellis/dev/<component>-<hash>.wasm` (once per content).
    fn keep_copy(&self, component: &str, file: &Path) -> anyhow::Result<PathBuf> {
        use sha2::Digest as _;
        let bytes =
            std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        let hash: String = sha2::Sha256::digest(&bytes)
            .iter()
            .take(6)
            .map(|b| format!("{b:02x}"))
            .collect();
        let dir = self.manifest_dir.join(".trellis/dev");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let copy = dir.join(format!("{component}-{hash}.wasm"));
        if !copy.is_file() {
            std::fs::write(&copy, &bytes)
                .with_context(|| format!("cannot write {}", copy.display()))?;
        }
        Ok(copy)
    }

    /// Runs the manifest with the latest builds: the first time by deploying it, then by
    /// handing the reconciler a new version; waits for changed components to be swapped in.
    async fn apply(&mut self) -> bool {
        let (text, app) =
            match lock::pinned_manifest(&self.manifest, &self.registry, lock::Mode::Dev).await {
                Ok(pinned) => pinned,
                Err(e) => {
                    self.console.error("dev", &format!("{e:#}"));
                    return false;
                }
            };
        let images: BTreeMap<String, String> = self
            .builds
            .iter()
            .filter(|(name, _)| app.component(name).is_some())
            .map(|(name, copy)| (name.clone(), format!("file://{}", copy.display())))
            .collect();
        let text = match dev_manifest(&text, &images) {
            Ok(text) => text,
            Err(e) => {
                self.console.error("dev", &format!("{e:#}"));
                return false;
            }
        };
        let app = match trellis_manifest::parse(&text, &self.manifest) {
            Ok(app) => app,
            Err(e) => {
                self.console.error("dev", &e.to_string());
                return false;
            }
        };
        let host = self.host.host.clone();
        if !self.deployed {
            crate::app::print_warnings(&app);
            match host.deploy(&app).await {
                Ok(listening) => {
                    self.deployed = true;
                    for l in &listening {
                        self.console.ok(
                            "dev",
                            &format!(
                                "listening on http://{} (component {})",
                                l.address, l.component_id
                            ),
                        );
                    }
                    self.console.ok(
                        "dev",
                        &format!("app `{}` is running; watching for changes", app.name),
                    );
                }
                Err(e) => {
                    self.console.error(
                        "dev",
                        &format!("{e}\nfix it and save: trellis dev is watching"),
                    );
                    return false;
                }
            }
        }
        // What runs now, to tell which components this version swaps.
        let running: BTreeMap<String, String> = host
            .inventory()
            .components
            .into_iter()
            .map(|c| (c.id.to_string(), c.image_ref))
            .collect();
        if let Err(e) = host.register_app(&text).await {
            self.console
                .error("dev", &format!("the new version was refused: {e}"));
            return false;
        }
        for c in &app.components {
            let Some(copy) = self.builds.get(&c.name) else {
                continue;
            };
            let want = format!("file://{}", copy.display());
            if running.get(c.id.as_str()).is_some_and(|now| *now != want) {
                self.swapped
                    .insert(c.id.to_string(), (copy.clone(), Instant::now()));
            }
        }
        self.await_swaps(&app.name).await;
        self.clean_copies();
        true
    }

    /// Waits until each swapped component runs its new build, or failed to start (its
    /// reason printed; the old version keeps serving).
    async fn await_swaps(&mut self, app: &str) {
        let host = self.host.host.clone();
        let deadline = Instant::now() + SWAP_TIMEOUT;
        while !self.swapped.is_empty() && Instant::now() < deadline {
            let inventory = host.inventory();
            let mut done = Vec::new();
            for (id, (copy, since)) in &self.swapped {
                let want = format!("file://{}", copy.display());
                if inventory
                    .components
                    .iter()
                    .any(|c| c.id.as_str() == id && c.image_ref == want)
                {
                    self.console.ok(
                        "dev",
                        &format!(
                            "{id} swapped in {:.2}s after the build",
                            since.elapsed().as_secs_f64()
                        ),
                    );
                    done.push(id.clone());
                } else if let Some(failed) = inventory.pending_components.iter().find(|p| {
                    p.id.as_str() == id
                        && p.image_ref == want
                        && matches!(p.state, trellis_control::PendingState::Failed { .. })
                }) && let trellis_control::PendingState::Failed { reason } = &failed.state
                {
                    self.console.error(
                        "dev",
                        &format!("{id}: the new build cannot start: {reason}\nthe running version keeps serving"),
                    );
                    done.push(id.clone());
                }
            }
            for id in done {
                self.swapped.remove(&id);
            }
            if self.swapped.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if !self.swapped.is_empty() {
            let ids: Vec<&str> = self.swapped.keys().map(String::as_str).collect();
            self.console.error(
                "dev",
                &format!(
                    "{} not swapped yet after {}s",
                    ids.join(", "),
                    SWAP_TIMEOUT.as_secs()
                ),
            );
            self.swapped.clear();
        }
        if let Some(status) = host.app_status(app).await
            && status.status.kind == trellis_control::wadm::StatusType::Failed
        {
            self.console
                .error("dev", &format!("app `{app}`: {}", status.status.message));
        }
    }

    /// Removes the copies no component runs any more.
    fn clean_copies(&self) {
        let keep: BTreeSet<&PathBuf> = self.builds.values().collect();
        let running: BTreeSet<String> = self
            .host
            .host
            .inventory()
            .components
            .into_iter()
            .map(|c| c.image_ref)
            .collect();
        let Ok(entries) = std::fs::read_dir(self.manifest_dir.join(".trellis/dev")) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if !keep.contains(&path) && !running.contains(&format!("file://{}", path.display())) {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}

/// The manifest dev deploys: each built component's image is its copy, and the `version`
/// annotation is dropped, so that each change is a new version, numbered by the app store.
fn dev_manifest(text: &str, images: &BTreeMap<String, String>) -> anyhow::Result<String> {
    let text = lock::set_images(text, images)?;
    let mut value: serde_yaml::Value = serde_yaml::from_str(&text)?;
    if let Some(annotations) = value
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
        .and_then(|a| a.as_mapping_mut())
    {
        annotations.remove("version");
    }
    Ok(serde_yaml::to_string(&value)?)
}

/// Watches folders for changes (recursively) and sends each changed path.
struct Watcher {
    inner: notify::RecommendedWatcher,
    watched: Vec<PathBuf>,
}

impl Watcher {
    fn new(changes: tokio::sync::mpsc::UnboundedSender<PathBuf>) -> anyhow::Result<Self> {
        let inner = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if let Ok(event) = event
                && !matches!(event.kind, notify::EventKind::Access(_))
            {
                for path in event.paths {
                    let _ = changes.send(path);
                }
            }
        })
        .context("cannot watch files")?;
        Ok(Self {
            inner,
            watched: Vec::new(),
        })
    }

    /// Watches exactly `paths` (and what is under them) from now on.
    fn watch(&mut self, paths: &[PathBuf], console: &Console) {
        use notify::Watcher as _;
        let mut wanted: Vec<PathBuf> = Vec::new();
        for p in paths {
            if !wanted.iter().any(|w| p.starts_with(w)) {
                wanted.retain(|w| !w.starts_with(p));
                wanted.push(p.clone());
            }
        }
        for old in std::mem::take(&mut self.watched) {
            if !wanted.contains(&old) {
                let _ = self.inner.unwatch(&old);
            } else {
                self.watched.push(old);
            }
        }
        for p in wanted {
            if self.watched.contains(&p) {
                continue;
            }
            match self.inner.watch(&p, notify::RecursiveMode::Recursive) {
                Ok(()) => self.watched.push(p),
                Err(e) => console.error("dev", &format!("cannot watch {}: {e}", p.display())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dev_manifest_runs_the_copies_and_drops_the_version() {
        let text = "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: a\n  annotations:\n    version: v1\n    description: d\nspec:\n  components:\n    - name: c\n      type: component\n      properties:\n        image: file://./c.wasm\n";
        let images =
            BTreeMap::from([("c".to_owned(), "file:///x/.trellis/dev/c-1.wasm".to_owned())]);
        let out = dev_manifest(text, &images).expect("manifest");
        assert!(out.contains("file:///x/.trellis/dev/c-1.wasm"), "{out}");
        assert!(!out.contains("version: v1"), "{out}");
        assert!(out.contains("description: d"), "{out}");
    }
}
