//! What `trellis dev` prints: plain lines, each with a prefix saying who speaks (a
//! component, a build, trellis itself), coloured on a terminal unless `NO_COLOR` is set.
//!
//! Component logs (`wasi:logging` and stdout/stderr, [`trellis_runtime::GUEST_LOG`]) and the
//! host's warnings reach it through a `tracing` layer; dev's own progress through
//! [`Console::say`]. Lines go to stdout, or, under `trellis dev --repl`, above the REPL's
//! prompt.

use anstyle::{AnsiColor, Style};
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use tracing::field::{Field, Visit};
use tracing_subscriber::Layer;

/// Where lines go.
enum Sink {
    Stdout,
    /// Printed above the REPL's prompt.
    Feed(tokio::sync::mpsc::UnboundedSender<String>),
}

/// The dev output: shared by dev's loop and the `tracing` layer.
#[derive(Clone)]
pub(crate) struct Console {
    color: bool,
    sink: Arc<Mutex<Sink>>,
}

/// The width prefixes are padded to, so messages line up.
const PREFIX_WIDTH: usize = 14;

/// Colours for component prefixes, picked by a hash of the id so each keeps its colour.
const PALETTE: [AnsiColor; 6] = [
    AnsiColor::Cyan,
    AnsiColor::Magenta,
    AnsiColor::Blue,
    AnsiColor::Green,
    AnsiColor::Yellow,
    AnsiColor::BrightCyan,
];

impl Console {
    pub(crate) fn new(color: bool) -> Self {
        Self {
            color,
            sink: Arc::new(Mutex::new(Sink::Stdout)),
        }
    }

    /// Whether lines are coloured.
    pub(crate) fn color(&self) -> bool {
        self.color
    }

    /// Sends lines above a REPL's prompt from now on.
    pub(crate) fn feed(&self, sender: tokio::sync::mpsc::UnboundedSender<String>) {
        *self.sink.lock().unwrap_or_else(|e| e.into_inner()) = Sink::Feed(sender);
    }

    /// Prints on stdout again (the REPL has ended).
    pub(crate) fn unfeed(&self) {
        *self.sink.lock().unwrap_or_else(|e| e.into_inner()) = Sink::Stdout;
    }

    /// A line from trellis dev itself, after `who`'s prefix (`build`, `dev`).
    pub(crate) fn say(&self, who: &str, message: &str) {
        let style = Style::new().fg_color(Some(AnsiColor::BrightBlack.into()));
        self.line(&self.prefix(who, style), message);
    }

    /// An error from trellis dev, in red on a terminal.
    pub(crate) fn error(&self, who: &str, message: &str) {
        let style = Style::new().fg_color(Some(AnsiColor::Red.into())).bold();
        let text = if self.color {
            format!("{style}{message}{style:#}")
        } else {
            message.to_owned()
        };
        self.line(&self.prefix(who, style), &text);
    }

    /// A success from trellis dev, in green on a terminal.
    pub(crate) fn ok(&self, who: &str, message: &str) {
        let style = Style::new().fg_color(Some(AnsiColor::Green.into()));
        let text = if self.color {
            format!("{style}{message}{style:#}")
        } else {
            message.to_owned()
        };
        self.line(&self.prefix(who, style), &text);
    }

    /// A line a component logged or printed.
    fn component(&self, id: &str, level: &tracing::Level, message: &str) {
        let hash = id
            .bytes()
            .fold(0usize, |h, b| h.wrapping_mul(31) + b as usize);
        let style = Style::new().fg_color(Some(PALETTE[hash % PALETTE.len()].into()));
        let mut text = String::new();
        if *level <= tracing::Level::WARN {
            let _ = write!(text, "{} ", self.level(level));
        }
        text.push_str(message);
        self.line(&self.prefix(id, style), &text);
    }

    fn level(&self, level: &tracing::Level) -> String {
        let color = match *level {
            tracing::Level::ERROR => AnsiColor::Red,
            tracing::Level::WARN => AnsiColor::Yellow,
            _ => AnsiColor::BrightBlack,
        };
        let style = Style::new().fg_color(Some(color.into())).bold();
        if self.color {
            format!("{style}{level}{style:#}")
        } else {
            level.to_string()
        }
    }

    fn prefix(&self, who: &str, style: Style) -> String {
        let padded = format!("{who:>PREFIX_WIDTH$} |");
        if self.color {
            format!("{style}{padded}{style:#}")
        } else {
            padded
        }
    }

    fn line(&self, prefix: &str, message: &str) {
        let sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        for part in message.split('\n') {
            let line = format!("{prefix} {part}");
            match &*sink {
                Sink::Stdout => {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{line}");
                    let _ = out.flush();
                }
                Sink::Feed(sender) => {
                    let _ = sender.send(line);
                }
            }
        }
    }
}

/// The `tracing` layer that prints component logs and host messages on the [`Console`].
pub(crate) struct ConsoleLayer {
    pub(crate) console: Console,
}

impl<S: tracing::Subscriber> Layer<S> for ConsoleLayer {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let meta = event.metadata();
        if meta.target() == trellis_runtime::GUEST_LOG {
            let id = fields.component_id.as_deref().unwrap_or("component");
            let mut message = fields.message;
            if let Some(context) = fields.context.filter(|c| !c.is_empty()) {
                message = format!("{context}: {message}");
            }
            self.console.component(id, meta.level(), &message);
            return;
        }
        let mut text = format!("{} {}", self.console.level(meta.level()), fields.message);
        for (name, value) in &fields.rest {
            let _ = write!(text, " {name}={value}");
        }
        let style = Style::new().fg_color(Some(AnsiColor::BrightBlack.into()));
        self.console
            .line(&self.console.prefix("trellis", style), &text);
    }
}

/// An event's fields, the few dev shows apart and the rest as `name=value`.
#[derive(Default)]
struct Fields {
    message: String,
    component_id: Option<String>,
    context: Option<String>,
    rest: Vec<(&'static str, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record(field, value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.record(field, format!("{value:?}"));
    }
}

impl Fields {
    fn record(&mut self, field: &Field, value: String) {
        match field.name() {
            "message" => self.message = value,
            "component_id" => self.component_id = Some(value),
            "context" => self.context = Some(value),
            // A guest's stdout and stderr read the same in dev.
            "stream" => {}
            name => self.rest.push((name, value)),
        }
    }
}

/// Whether to colour: `--color`, then `NO_COLOR` (any non-empty value), then whether stdout
/// is a terminal.
pub(crate) fn use_color(choice: clap::ColorChoice) -> bool {
    use std::io::IsTerminal as _;
    match choice {
        clap::ColorChoice::Always => true,
        clap::ColorChoice::Never => false,
        clap::ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::io::stdout().is_terminal()
        }
    }
}
