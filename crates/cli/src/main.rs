//! `trellis`: one binary that runs hosts and drives them.
//!
//! `trellis up app.yaml` is embedded mode: one host, an in-process lattice, the app deployed
//! from its manifest, HTTP served until Ctrl-C or SIGTERM.

mod app;
mod claims;
mod creds;
mod ctl;
mod dashboard;
mod dev;
mod embedded;
mod endpoint;
mod help;
mod host;
mod lock;
mod logs;
mod new;
mod observe;
mod progress;
#[cfg(test)]
mod reference;
mod registry;
mod repl;
mod secret;
mod units;

use anyhow::Context as _;
use clap::{Args, CommandFactory as _, FromArgMatches as _, Parser, Subcommand};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use trellis_host::HostConfig;
use trellis_http_server::ServerLimits;
use trellis_runtime::{CapabilityLimits, Limits};
use units::{ByteSize, Span};

#[derive(Parser)]
#[command(
    name = "trellis",
    version,
    about = "Run WebAssembly components as applications"
)]
struct Cli {
    /// Log format on stderr.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "TRELLIS_LOG_FORMAT"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run an application from its manifest on one embedded host (no broker needed).
    Up(Box<UpArgs>),
    /// Develop an app: build its components, run it, and rebuild and swap them in as you
    /// edit (no request fails during a swap).
    Dev(Box<dev::DevArgs>),
    /// Run a host that joins a lattice over NATS and serves the control interface.
    Host(Box<host::HostArgs>),
    /// Show hosts, a host's inventory, links or config.
    Get {
        #[command(subcommand)]
        what: ctl::Get,
        #[command(flatten)]
        lattice: ctl::LatticeArgs,
    },
    /// Put, get or delete named config shared by the lattice.
    Config {
        #[command(subcommand)]
        cmd: ctl::ConfigCmd,
        /// Use the named config of the `trellis up` project in this folder (its
        /// `.trellis/config.json`) directly, before it starts, instead of a lattice or a
        /// running host.
        #[arg(long, global = true, num_args = 0..=1, default_missing_value = ".")]
        local: Option<PathBuf>,
        #[command(flatten)]
        lattice: ctl::LatticeArgs,
    },
    /// Put or delete host labels.
    Label {
        #[command(subcommand)]
        cmd: ctl::LabelCmd,
        #[command(flatten)]
        lattice: ctl::LatticeArgs,
    },
    /// Put or delete links.
    Link {
        #[command(subcommand)]
        cmd: ctl::LinkCmd,
        #[command(flatten)]
        lattice: ctl::LatticeArgs,
    },
    /// Start a component or a provider on a host.
    Start {
        #[command(subcommand)]
        cmd: ctl::StartCmd,
        #[command(flatten)]
        lattice: ctl::LatticeArgs,
    },
    /// Change how many instances of a component may run.
    Scale {
        #[command(subcommand)]
        cmd: ctl::ScaleCmd,
        #[command(flatten)]
        lattice: ctl::LatticeArgs,
    },
    /// Run a component from a new image.
    Update {
        #[command(subcommand)]
        cmd: ctl::UpdateCmd,
        #[command(flatten)]
        lattice: ctl::LatticeArgs,
    },
    /// Stop a host, a component or a provider.
    Stop {
        #[command(subcommand)]
        cmd: ctl::StopCmd,
        #[command(flatten)]
        lattice: ctl::LatticeArgs,
    },
    /// Stream lattice events, one line each.
    Events {
        #[command(flatten)]
        lattice: ctl::LatticeArgs,
    },
    /// Show what components logged (wasi:logging, stdout, stderr), from every host; -f to
    /// follow.
    Logs {
        #[command(flatten)]
        args: logs::LogsArgs,
        #[command(flatten)]
        lattice: ctl::LatticeArgs,
    },
    /// Serve the web dashboard for a lattice (hosts, components, providers, links, apps,
    /// events; read-only) and print its address; `trellis up` serves it itself.
    Dashboard(Box<dashboard::DashboardArgs>),
    /// Deploy and manage applications (manifests) across the lattice.
    App {
        #[command(subcommand)]
        cmd: app::AppCmd,
        #[command(flatten)]
        lattice: ctl::LatticeArgs,
    },
    /// Prints a new control key: its seed on stdout (keep it secret; give it to the CLI and
    /// hosts as --control-key or TRELLIS_CONTROL_KEY) and its public key on stderr (list it
    /// in the hosts' --trusted-control-keys). With --public SEED, prints that seed's public key.
    ControlKey {
        /// Print the public key of this seed (or of the file holding it) instead.
        #[arg(long)]
        public: Option<String>,
    },
    /// Store, delete or list secrets (values are sealed here and never printed).
    Secret {
        #[command(subcommand)]
        cmd: secret::SecretCmd,
        /// Use the secret store of the `trellis up` project in this folder (its
        /// `.trellis/secrets.json`) directly, running or not, instead of a lattice.
        #[arg(long, global = true, num_args = 0..=1, default_missing_value = ".")]
        local: Option<PathBuf>,
        #[command(flatten)]
        lattice: ctl::LatticeArgs,
    },
    /// Call a function a running component exports: `trellis call ID wasmcloud:examples/invoke.call`,
    /// arguments as JSON or WAVE, one per parameter.
    Call {
        #[command(flatten)]
        call: ctl::CallArgs,
        #[command(flatten)]
        lattice: ctl::LatticeArgs,
    },
    /// Push a component to an OCI registry (the CNCF Wasm artifact layout); prints its digest.
    Push(Box<registry::PushArgs>),
    /// Pull a component from an OCI registry into a file; prints its digest.
    Pull(Box<registry::PullArgs>),
    /// Show a component in an OCI registry: digest, size, media types, annotations, imports
    /// and exports.
    Inspect(Box<registry::InspectArgs>),
    /// Resolve a manifest's registry images to digests and record them (and each file
    /// component's content hash) in trellis.lock beside it.
    Lock(Box<lock::LockCmd>),
    /// Write a NATS server configuration and credentials for a lattice: host.creds,
    /// admin.creds and rpc.creds, each allowed only what its role needs.
    Creds {
        #[command(subcommand)]
        cmd: creds::CredsCmd,
    },
    /// Sign components and read their signatures (claims as wasmCloud v1 and `wash claims`
    /// write them), or make the keys that sign them.
    Claims {
        #[command(subcommand)]
        cmd: claims::ClaimsCmd,
    },
    /// Print a shell completion script for bash, zsh, fish, elvish or powershell.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write a new component project (Cargo, wasm32-wasip2, app.yaml, README) from a template:
    /// `trellis new hello --template kv-counter`.
    New(new::NewArgs),
    /// Move a host's workloads to other hosts, wait until they run there, then stop the host.
    Drain {
        /// The host (id, id prefix or friendly name).
        host: String,
        #[command(flatten)]
        lattice: ctl::LatticeArgs,
    },
    /// A prompt that runs these commands (without `trellis`), with the lattice's events
    /// printed above it, history, and Tab completion of commands and ids.
    Repl(repl::ReplArgs),
}

#[derive(Args)]
struct UpArgs {
    /// The OAM application manifest (YAML or JSON). `file://` paths in it are relative to it.
    manifest: PathBuf,

    #[command(flatten)]
    run: RunArgs,
}

/// What every command that runs an embedded host takes (`up`, `dev`).
#[derive(Args)]
pub(crate) struct RunArgs {
    /// Listen on this address instead of the addresses in the manifest (port 0 picks a free port).
    #[arg(long, env = "TRELLIS_HTTP")]
    http: Option<SocketAddr>,

    /// Serve the control interface over HTTP here (port 0: a free port), for `trellis get …`
    /// and the other control commands from another terminal; `off` to disable. Loopback only
    /// unless you say otherwise. Every request needs the endpoint's token, which this writes
    /// with the address to .trellis/up/MANIFEST.json (mode 0600) beside the manifest, where
    /// the CLI finds both when run in that folder.
    #[arg(long, env = "TRELLIS_ADMIN_ADDR", default_value = "127.0.0.1:0")]
    admin: String,

    /// The control endpoint's token [default: a new random one each start].
    #[arg(long, env = "TRELLIS_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,

    #[command(flatten)]
    lock: lock::LockArgs,

    #[command(flatten)]
    limits: LimitArgs,

    #[command(flatten)]
    cache: CacheArgs,

    #[command(flatten)]
    signed: claims::SignedComponentArgs,

    #[command(flatten)]
    observe: observe::ObserveArgs,
}

#[derive(Args)]
pub(crate) struct CacheArgs {
    /// Directory for compiled components [default: $XDG_CACHE_HOME/trellis/compiled].
    #[arg(long, env = "TRELLIS_CACHE_DIR")]
    cache_dir: Option<PathBuf>,

    /// Compile every component at start-up instead of using the cache.
    #[arg(long)]
    no_cache: bool,

    /// Where the host pulls components named by registry references from, and how.
    #[command(flatten)]
    registry: registry::RegistryArgs,

    #[command(flatten)]
    images: registry::ImageCacheArgs,
}

impl CacheArgs {
    fn dir(&self) -> Option<PathBuf> {
        if self.no_cache {
            None
        } else {
            self.cache_dir.clone().or_else(default_cache_dir)
        }
    }
}

/// The defaults every limit flag shows and uses: the libraries' own `Default`s, written
/// once there.
pub(crate) fn defaults() -> HostConfig {
    HostConfig::default()
}

#[derive(Args)]
pub(crate) struct LimitArgs {
    /// Linear memory one instance may use (e.g. 256MiB).
    #[arg(long, default_value_t = ByteSize::of(defaults().limits.max_memory_bytes), env = "TRELLIS_MAX_MEMORY")]
    max_memory: ByteSize,

    /// Linear memory a finished instance's slot keeps resident and resets in place for the
    /// next instance, instead of returning it to the kernel (faster fresh instances; 0
    /// returns it all).
    #[arg(long, default_value_t = ByteSize::of(defaults().limits.memory_keep_resident_bytes), env = "TRELLIS_MEMORY_KEEP_RESIDENT")]
    memory_keep_resident: ByteSize,

    /// Requests one reused instance serves before it is retired: WASI 0.3 components' and
    /// warm ones' (`trellis.dev/warm.<component>` annotation).
    #[arg(long, default_value_t = defaults().limits.reuse.max_requests, env = "TRELLIS_INSTANCE_MAX_REQUESTS")]
    instance_max_requests: usize,

    /// Requests one WASI 0.3 instance serves at once.
    #[arg(long, default_value_t = defaults().limits.reuse.max_concurrent, env = "TRELLIS_INSTANCE_MAX_CONCURRENT")]
    instance_max_concurrent: usize,

    /// How long a reused instance with nothing to do is kept (e.g. 10s).
    #[arg(long, default_value_t = Span(defaults().limits.reuse.idle_timeout), env = "TRELLIS_INSTANCE_IDLE_TIMEOUT")]
    instance_idle_timeout: Span,

    /// Time one request may run before its instance is stopped (e.g. 30s, 500ms).
    #[arg(long, default_value_t = Span(defaults().limits.max_execution_time), env = "TRELLIS_MAX_EXECUTION_TIME")]
    max_execution_time: Span,

    /// Size of the wasm call stack; deeper recursion traps (e.g. 512KiB).
    #[arg(long, default_value_t = ByteSize::of(defaults().limits.max_wasm_stack_bytes), env = "TRELLIS_MAX_WASM_STACK")]
    max_wasm_stack: ByteSize,

    /// Instances that may exist at once across all components (pooling allocator size).
    #[arg(long, default_value_t = defaults().limits.max_total_instances, env = "TRELLIS_MAX_TOTAL_INSTANCES")]
    max_total_instances: u32,

    /// Requests that may wait for a busy component before the host answers 503.
    #[arg(long, default_value_t = defaults().max_queued_requests, env = "TRELLIS_MAX_QUEUED_REQUESTS")]
    max_queued_requests: usize,

    /// Component log lines each host keeps for `trellis logs` (the most recent ones; 0 keeps
    /// none, `trellis logs -f` still streams them).
    #[arg(long, default_value_t = defaults().log_lines, env = "TRELLIS_LOG_LINES")]
    log_lines: usize,

    /// Largest request body accepted; larger ones get 413 (e.g. 10MiB).
    #[arg(long, default_value_t = ByteSize(defaults().server.max_request_body_bytes), env = "TRELLIS_MAX_REQUEST_BODY")]
    max_request_body: ByteSize,

    /// Time a client has to send its request headers before it is disconnected.
    #[arg(long, default_value_t = Span(defaults().server.header_read_timeout), env = "TRELLIS_HEADER_READ_TIMEOUT")]
    header_read_timeout: Span,

    /// Largest request head (request line and headers) accepted; a larger one gets 431
    /// (e.g. 64KiB; at least 8KiB).
    #[arg(long, default_value_t = ByteSize(defaults().server.max_header_bytes as u64), env = "TRELLIS_MAX_HEADER_SIZE")]
    max_header_size: ByteSize,

    /// Time in-flight requests get to finish on Ctrl-C or SIGTERM.
    #[arg(long, default_value_t = Span(defaults().server.drain_timeout), env = "TRELLIS_DRAIN_TIMEOUT")]
    drain_timeout: Span,

    /// Longest key a component may use in key-value calls (e.g. 1KiB).
    #[arg(long, default_value_t = ByteSize::of(defaults().limits.capabilities.keyvalue.max_key_bytes), env = "TRELLIS_MAX_KV_KEY")]
    max_kv_key: ByteSize,

    /// Largest value a component may store in key-value calls (e.g. 1MiB).
    #[arg(long, default_value_t = ByteSize::of(defaults().limits.capabilities.keyvalue.max_value_bytes), env = "TRELLIS_MAX_KV_VALUE")]
    max_kv_value: ByteSize,

    /// Most keys in one key-value batch call.
    #[arg(long, default_value_t = defaults().limits.capabilities.keyvalue.max_batch_keys, env = "TRELLIS_MAX_KV_BATCH")]
    max_kv_batch: usize,

    /// Changes to watched keys that may wait for one component's `wasi:keyvalue/watcher`;
    /// beyond, new changes are dropped with a warning.
    #[arg(long, default_value_t = defaults().limits.capabilities.keyvalue.max_queued_changes, env = "TRELLIS_MAX_QUEUED_KV_CHANGES")]
    max_queued_kv_changes: usize,

    /// Largest message body a component may publish (e.g. 1MiB).
    #[arg(long, default_value_t = ByteSize::of(defaults().limits.capabilities.messaging.max_body_bytes), env = "TRELLIS_MAX_MESSAGE_SIZE")]
    max_message_size: ByteSize,

    /// Longest timeout a component may ask for on a messaging request.
    #[arg(long, default_value_t = Span(defaults().limits.capabilities.messaging.max_request_timeout), env = "TRELLIS_MAX_REQUEST_TIMEOUT")]
    max_request_timeout: Span,

    /// Most replies one `wasmcloud:messaging@0.3.0` request may collect
    /// (`set-expected-replies`).
    #[arg(long, default_value_t = defaults().limits.capabilities.messaging.max_request_replies, env = "TRELLIS_MAX_REQUEST_REPLIES")]
    max_request_replies: usize,

    /// Largest blobstore object a component may write or read at once (e.g. 64MiB).
    #[arg(long, default_value_t = ByteSize(defaults().limits.capabilities.blobstore.max_object_bytes), env = "TRELLIS_MAX_BLOB_SIZE")]
    max_blob_size: ByteSize,

    /// Time one Postgres query or statement may run before it is cancelled (e.g. 10s).
    #[arg(long, default_value_t = Span(defaults().limits.capabilities.postgres.query_timeout), env = "TRELLIS_PG_QUERY_TIMEOUT")]
    pg_query_timeout: Span,

    /// Most rows one Postgres query may return; beyond, it fails and is cancelled.
    #[arg(long, default_value_t = defaults().limits.capabilities.postgres.max_rows, env = "TRELLIS_MAX_PG_ROWS")]
    max_pg_rows: usize,

    /// Most data one Postgres query may return (e.g. 16MiB); beyond, it fails and is
    /// cancelled.
    #[arg(long, default_value_t = ByteSize::of(defaults().limits.capabilities.postgres.max_bytes), env = "TRELLIS_MAX_PG_BYTES")]
    max_pg_bytes: ByteSize,

    /// Longest SQL text a component may send to Postgres (e.g. 1MiB).
    #[arg(long, default_value_t = ByteSize::of(defaults().limits.capabilities.postgres.max_statement_bytes), env = "TRELLIS_MAX_PG_STATEMENT")]
    max_pg_statement: ByteSize,

    /// Largest arguments or results of one call between components on different hosts, and
    /// of one `trellis call` as text (e.g. 8MiB).
    #[arg(long, default_value_t = ByteSize::of(defaults().call_limits.max_size), env = "TRELLIS_MAX_CALL_SIZE")]
    max_call_size: ByteSize,

    /// Time a component waits for a call to a component on another host to answer.
    #[arg(long, default_value_t = Span(defaults().call_limits.timeout), env = "TRELLIS_CALL_TIMEOUT")]
    call_timeout: Span,

    /// How often capability providers are health-checked and failed listeners retried.
    #[arg(long, default_value_t = Span(defaults().provider_health_interval), env = "TRELLIS_PROVIDER_HEALTH_INTERVAL")]
    provider_health_interval: Span,
}

/// Task polls between two checks for I/O events on a busy worker (tokio's default is 61).
const RUNTIME_EVENT_INTERVAL: u32 = 4;

fn main() -> ExitCode {
    let cli = match Cli::from_arg_matches(&help::command(Cli::command()).get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    // Commands that run a host log what they do; client commands only what went wrong.
    // `trellis dev` prints logs its own way (dev::console).
    // Hosts export traces when told where (`--otlp-endpoint`, `OTEL_EXPORTER_OTLP_*`).
    let observe = match &cli.command {
        Command::Up(args) => Some(&args.run.observe),
        Command::Dev(args) => Some(&args.run.observe),
        Command::Host(args) => Some(&args.observe),
        _ => None,
    };
    if let Some(Err(e)) = observe.map(observe::init_tracing) {
        eprintln!("error: {e:#}");
        return ExitCode::FAILURE;
    }
    match cli.command {
        Command::Dev(_) => {}
        // The REPL prints log lines above its prompt (through its external printer: plain).
        Command::Repl(_) => init_logging(cli.log_format, "warn", false),
        Command::Up(_) | Command::Host(_) => init_logging(cli.log_format, "info", true),
        _ => init_logging(cli.log_format, "warn", true),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Check sockets for new requests every 4 task polls rather than tokio's 61: a poll
        // of a busy guest lasts a whole epoch tick (10 ms), so with guests spinning on every
        // worker a new request waited 61 slices to be noticed (a plain request took 240-450
        // ms while four guests spun on two cores; 20-30 ms with this). `bench/run noisy`.
        .event_interval(RUNTIME_EVENT_INTERVAL)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli.command));
    drop(runtime);
    observe::shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one command: from the command line, or typed at `trellis repl`'s prompt.
pub(crate) async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Up(args) => up(*args).await,
        Command::Dev(args) => dev::run(*args).await,
        Command::Host(args) => host::run(*args).await,
        Command::Get { what, lattice } => ctl::get(&lattice, what).await,
        Command::Config {
            cmd,
            local,
            lattice,
        } => ctl::config(&lattice, local.as_deref(), cmd).await,
        Command::Label { cmd, lattice } => ctl::label(&lattice, cmd).await,
        Command::Link { cmd, lattice } => ctl::link(&lattice, cmd).await,
        Command::Stop { cmd, lattice } => ctl::stop(&lattice, cmd).await,
        Command::Start { cmd, lattice } => ctl::start(&lattice, cmd).await,
        Command::Scale { cmd, lattice } => ctl::scale(&lattice, cmd).await,
        Command::Update { cmd, lattice } => ctl::update(&lattice, cmd).await,
        Command::Events { lattice } => ctl::events(&lattice).await,
        Command::Logs { args, lattice } => logs::run(&args, &lattice).await,
        Command::Dashboard(args) => dashboard::run(*args).await,
        Command::App { cmd, lattice } => app::run(&lattice, cmd).await,
        Command::Drain { host, lattice } => ctl::drain(&lattice, &host).await,
        Command::Secret {
            cmd,
            local,
            lattice,
        } => secret::secret(&lattice, local, cmd).await,
        Command::Call { call, lattice } => ctl::call(&lattice, call).await,
        Command::ControlKey { public } => control_key(public.as_deref()),
        Command::Push(args) => registry::push(*args).await,
        Command::Pull(args) => registry::pull(*args).await,
        Command::Inspect(args) => registry::inspect(*args).await,
        Command::Lock(cmd) => lock::run(*cmd).await,
        Command::Creds { cmd } => creds::run(cmd),
        Command::Claims { cmd } => claims::run(cmd),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut help::command(Cli::command()),
                "trellis",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::New(args) => new::run(args),
        Command::Repl(args) => repl::run(args, None).await,
    }
}

/// The host settings every command that runs a host shares.
pub(crate) fn host_config(
    l: &LimitArgs,
    cache: &CacheArgs,
    signed: &claims::SignedComponentArgs,
) -> anyhow::Result<HostConfig> {
    let positive = |value: usize, flag: &str| {
        if value == 0 {
            anyhow::bail!("{flag} must be at least 1");
        }
        Ok(value)
    };
    let size = |value: ByteSize, flag: &str| {
        usize::try_from(value.0).with_context(|| format!("{flag} is too large"))
    };
    Ok(HostConfig {
        limits: Limits {
            max_memory_bytes: size(l.max_memory, "--max-memory")?,
            max_execution_time: l.max_execution_time.0,
            max_wasm_stack_bytes: size(l.max_wasm_stack, "--max-wasm-stack")?,
            max_total_instances: l.max_total_instances,
            memory_keep_resident_bytes: size(l.memory_keep_resident, "--memory-keep-resident")?,
            reuse: trellis_runtime::Reuse {
                max_requests: positive(l.instance_max_requests, "--instance-max-requests")?,
                max_concurrent: positive(l.instance_max_concurrent, "--instance-max-concurrent")?,
                idle_timeout: l.instance_idle_timeout.0,
            },
            capabilities: CapabilityLimits {
                keyvalue: trellis_keyvalue::Limits {
                    max_key_bytes: size(l.max_kv_key, "--max-kv-key")?,
                    max_value_bytes: size(l.max_kv_value, "--max-kv-value")?,
                    max_batch_keys: l.max_kv_batch,
                    max_queued_changes: l.max_queued_kv_changes,
                    ..Default::default()
                },
                messaging: trellis_messaging::Limits {
                    max_body_bytes: size(l.max_message_size, "--max-message-size")?,
                    max_request_timeout: l.max_request_timeout.0,
                    max_request_replies: l.max_request_replies,
                },
                blobstore: trellis_blobstore::Limits {
                    max_object_bytes: l.max_blob_size.0,
                },
                postgres: trellis_postgres::Limits {
                    query_timeout: l.pg_query_timeout.0,
                    max_rows: l.max_pg_rows,
                    max_bytes: size(l.max_pg_bytes, "--max-pg-bytes")?,
                    max_statement_bytes: size(l.max_pg_statement, "--max-pg-statement")?,
                    ..Default::default()
                },
            },
        },
        cache_dir: cache.dir(),
        registry: cache.registry.config(cache.images.dir()),
        signed_components: signed.policy()?,
        server: ServerLimits {
            max_request_body_bytes: l.max_request_body.0,
            header_read_timeout: l.header_read_timeout.0,
            max_header_bytes: size(l.max_header_size, "--max-header-size")?,
            drain_timeout: l.drain_timeout.0,
        },
        max_queued_requests: l.max_queued_requests,
        log_lines: l.log_lines,
        provider_health_interval: l.provider_health_interval.0,
        call_limits: trellis_lattice::wrpc::CallLimits {
            max_size: size(l.max_call_size, "--max-call-size")?,
            timeout: l.call_timeout.0,
        },
        ..defaults()
    })
}

/// Log lines on stderr (or where [`progress::divert_logs`] sends them), coloured when
/// `color` allows it, stderr is a terminal and `NO_COLOR` is not set.
/// Logs to stderr as `format` (filtered by `TRELLIS_LOG`, else `RUST_LOG`, else
/// `default_level`), and the host's spans to OpenTelemetry when traces are configured
/// ([`observe::spans_layer`]).
fn init_logging(format: LogFormat, default_level: &str, color: bool) {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = tracing_subscriber::EnvFilter::try_from_env("TRELLIS_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    use std::io::IsTerminal as _;
    let color = color
        && std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(color)
        .with_writer(progress::LogWriter::new);
    let fmt = match format {
        LogFormat::Text => fmt.boxed(),
        LogFormat::Json => fmt.json().boxed(),
    };
    tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .with(observe::spans_layer())
        .init();
}

async fn up(args: UpArgs) -> anyhow::Result<()> {
    let run = &args.run;
    let host_settings = host_config(&run.limits, &run.cache, &run.signed)?;
    // Registry images run pinned to trellis.lock's digests, in the first deploy and in what
    // the embedded reconciler keeps.
    let (manifest, app) = {
        let registry = trellis_registry::Registry::new(host_settings.registry.clone());
        lock::pinned_manifest(&args.manifest, &registry, lock::Mode::of(&run.lock)).await?
    };
    app::print_warnings(&app);
    // Apps deployed beside the manifest's are kept with its other local state, one file per
    // manifest: `trellis up other.yaml` in the same folder starts only what belongs to it.
    let apps_file = embedded::state_dir(&args.manifest).and_then(|dir| {
        let stem = args.manifest.file_stem()?.to_string_lossy().into_owned();
        Some(dir.join("apps").join(format!("{stem}.json")))
    });
    let embedded = embedded::Embedded::start(
        &args.manifest,
        run,
        HostConfig {
            apps_file,
            ..host_settings
        },
    )?;
    let host = embedded.host.clone();
    // Fetching and compiling the components: seconds for a big one without the cache.
    let spinner = progress::spinner(format!("starting app `{}`", app.name));
    let listening = host.deploy(&app).await;
    drop(spinner);
    let listening = listening.map_err(|e| anyhow::anyhow!("{e}"))?;
    // The embedded reconciler keeps it from here, and `trellis app … --embedded` sees it.
    host.register_app(&manifest)
        .await
        .map_err(|e| anyhow::anyhow!("cannot register app `{}`: {e}", app.name))?;
    let embedded = embedded.serve().await?;

    let signals = shutdown_signal();
    // stdout carries only these lines, so scripts and tests can read the addresses.
    let mut out = std::io::stdout().lock();
    writeln!(out, "app `{}` is running on host {}", app.name, host.id())?;
    for l in &listening {
        writeln!(
            out,
            "listening on http://{} (component {})",
            l.address, l.component_id
        )?;
    }
    embedded.announce(&mut out)?;
    out.flush()?;
    drop(out);
    embedded.run_until_stopped(signals).await;
    Ok(())
}

/// `trellis control-key`: a new signing key for strict mode, or a seed's public key.
fn control_key(public: Option<&str>) -> anyhow::Result<()> {
    match public {
        Some(seed) => println!("{}", host::control_signer(seed)?.public_key()),
        None => {
            let key = trellis_lattice::signing::Signer::generate();
            println!("{}", key.seed());
            eprintln!(
                "public key {} (list it in the hosts' --trusted-control-keys; keep the seed above secret)",
                key.public_key()
            );
        }
    }
    Ok(())
}

fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("trellis").join("compiled"))
}

/// Resolves on Ctrl-C or SIGTERM. The handlers are installed when this is called, not when
/// the future is first polled, so call it before announcing readiness: a signal that arrives
/// right after the ready line must not find the default handler (which kills the process
/// without a graceful stop).
pub(crate) fn shutdown_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                }
                (term, int) => {
                    let e = term
                        .err()
                        .or(int.err())
                        .map(|e| e.to_string())
                        .unwrap_or_default();
                    tracing::warn!(error = %e, "cannot listen for signals; falling back to Ctrl-C only");
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
