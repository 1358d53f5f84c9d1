//! `trellis repl`: a prompt on the terminal's last line, with the lattice's events (and, in
//! `trellis dev --repl`, the dev loop's log lines) printed above it while a line is typed.
//!
//! Every CLI command runs at the prompt without the `trellis` prefix: the line is split into
//! words as a shell would (`shell-words`), parsed by the CLI's own clap parser and run by
//! [`crate::run`], so what it prints is what the command prints on the command line. The
//! REPL's lattice flags are the defaults of every command typed in it ([`mod@line`]). Commands
//! that run a host (`up`, `host`, `dev`, `repl`) are refused.
//!
//! The line editor is `reedline`, on a thread of its own since reading a line blocks:
//!
//! ```text
//!   editor thread ──lines──▶ this task: parse, run the command, refresh the names
//!        ▲  ◀───done────────┘
//!        │ external printer (drained while a line is edited)
//!   screen::forward ◀── events (watch.rs), feed lines, log lines (tracing)
//! ```
//!
//! While a command runs the editor is not reading, so [`screen::Screen`] prints lines above
//! directly instead; a line never waits for the prompt. Ctrl-C at the prompt clears the line
//! (the terminal is in raw mode, so it is a key); during a command it is a signal, which
//! stops the command and brings the prompt back.
//!
//! Without a terminal on stdin (`trellis repl < commands.txt`) each line is run in turn, no
//! prompt, no events; the exit code says whether every command succeeded.

mod complete;
mod line;
mod screen;
mod watch;

use crate::ctl::{LatticeArgs, Target};
use anyhow::Context as _;
use line::{Line, Parser};
use reedline::{
    ColumnarMenu, Emacs, ExternalPrinter, FileBackedHistory, KeyCode, KeyModifiers, MenuBuilder,
    Reedline, ReedlineEvent, ReedlineMenu, Signal,
};
use screen::{Above, Screen};
use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, mpsc};

/// `trellis repl`'s flags: where the lattice is, for the REPL's event stream and completion
/// and as the default of every command typed in it.
#[derive(clap::Args)]
pub(crate) struct ReplArgs {
    #[command(flatten)]
    pub(crate) lattice: LatticeArgs,
}

/// Entries kept in the history file.
const HISTORY_ENTRIES: usize = 1000;

/// Runs the REPL until `exit`, `quit` or Ctrl-D. Every line received on `feed` is printed
/// above the prompt, as events are (`trellis dev --repl` sends its log lines there).
pub(crate) async fn run(
    args: ReplArgs,
    feed: Option<mpsc::UnboundedReceiver<String>>,
) -> anyhow::Result<()> {
    use std::io::IsTerminal as _;
    if !std::io::stdin().is_terminal() {
        return script(&args.lattice, feed).await;
    }
    let parser = Parser::new();
    let (above, above_rx) = mpsc::unbounded_channel();
    let printer = ExternalPrinter::<String>::new(screen::QUEUED_LINES);
    let screen = Arc::new(Screen::new(printer.sender()));
    let names = Arc::new(Mutex::new(watch::Names::default()));
    let refresh = Arc::new(Notify::new());
    // Dropped (and so aborted) when the REPL returns, also inside `trellis dev`.
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(screen::forward(above_rx, screen.clone()));
    if let Some(mut feed) = feed {
        let above = above.clone();
        tasks.spawn(async move {
            while let Some(line) = feed.recv().await {
                let _ = above.send(Above::Line(line));
            }
        });
    }
    tasks.spawn(watch::events(
        args.lattice.clone(),
        above.clone(),
        refresh.clone(),
    ));
    tasks.spawn(watch::names(
        args.lattice.clone(),
        names.clone(),
        refresh.clone(),
    ));
    let _logs = LogSink::install(above.clone());

    println!("{}", banner(&args.lattice));
    let history = history_file();
    let completer = complete::Completer::new(parser.command().clone(), names, refresh.clone());
    let (lines_tx, mut lines) = mpsc::channel(1);
    let (done, done_rx) = std::sync::mpsc::channel();
    let editor = {
        let screen = screen.clone();
        std::thread::Builder::new()
            .name("repl-editor".into())
            .spawn(move || {
                let editor = editor(completer, printer, history.as_ref());
                edit(editor, &screen, &lines_tx, &done_rx);
            })
            .context("cannot start the line editor")?
    };

    let mut failure = None;
    while let Some(input) = lines.recv().await {
        match input {
            Input::Line(text) => {
                // Ctrl-C stops a command, not the REPL.
                if let Flow::Exit = execute(&parser, &args.lattice, &text, Some(&screen)).await {
                    break;
                }
                // What the command changed shows in completion at once.
                refresh.notify_one();
                if done.send(()).is_err() {
                    break;
                }
            }
            Input::End => break,
            Input::Failed(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    // The editor thread ends when it has nothing to wait for; its editor saves the history
    // and restores the terminal as it is dropped, which must happen before the process ends.
    drop(done);
    drop(lines);
    let _ = tokio::task::spawn_blocking(move || editor.join()).await;
    match failure {
        Some(e) => Err(anyhow::anyhow!("the line editor failed: {e}")),
        None => Ok(()),
    }
}

/// What the editor thread hands over.
enum Input {
    /// A line, Enter pressed.
    Line(String),
    /// Ctrl-D on an empty line.
    End,
    /// The terminal could not be read or written.
    Failed(String),
}

/// Whether the REPL goes on after a line.
enum Flow {
    Continue {
        ok: bool,
    },
    /// Ctrl-C stopped the command.
    Stopped,
    Exit,
}

/// Runs one typed line. `screen` is the interactive REPL's (none when reading a script).
async fn execute(
    parser: &Parser,
    defaults: &LatticeArgs,
    text: &str,
    screen: Option<&Screen>,
) -> Flow {
    let command = match parser.parse(text, defaults) {
        Line::Empty => return Flow::Continue { ok: true },
        Line::Exit => return Flow::Exit,
        Line::Help => {
            print!("{}", parser.help(&history_file()));
            return Flow::Continue { ok: true };
        }
        Line::Refused(why) => {
            eprintln!("{why}");
            return Flow::Continue { ok: false };
        }
        Line::Clap(e) => {
            // Help and version are clap's "errors" too, printed on stdout.
            let ok = !e.use_stderr();
            let _ = e.print();
            return Flow::Continue { ok };
        }
        Line::Invalid(why) => {
            eprintln!("error: {why}");
            return Flow::Continue { ok: false };
        }
        Line::Run(command) => command,
    };
    if let Some(screen) = screen {
        // `events` prints the lattice's events itself; the REPL's copy would double them.
        screen.running(matches!(*command, crate::Command::Events { .. }));
    }
    let flow = tokio::select! {
        result = Box::pin(crate::run(*command)) => match result {
            Ok(()) => Flow::Continue { ok: true },
            Err(e) => {
                eprintln!("error: {e:#}");
                Flow::Continue { ok: false }
            }
        },
        // The terminal is out of raw mode while a command runs: Ctrl-C is SIGINT.
        _ = tokio::signal::ctrl_c() => {
            eprintln!();
            eprintln!("stopped");
            Flow::Stopped
        }
    };
    if let Some(screen) = screen {
        screen.running(false);
    }
    flow
}

/// `trellis repl < FILE`: every line in turn, as typed at the prompt.
async fn script(
    defaults: &LatticeArgs,
    feed: Option<mpsc::UnboundedReceiver<String>>,
) -> anyhow::Result<()> {
    use tokio::io::AsyncBufReadExt as _;
    let parser = Parser::new();
    // Aborted when this returns.
    let mut printing = tokio::task::JoinSet::new();
    if let Some(mut feed) = feed {
        printing.spawn(async move {
            while let Some(line) = feed.recv().await {
                println!("{line}");
            }
        });
    }
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut failed = 0;
    while let Some(text) = lines.next_line().await.context("cannot read stdin")? {
        match execute(&parser, defaults, &text, None).await {
            Flow::Exit => break,
            Flow::Continue { ok } => failed += usize::from(!ok),
            // No prompt to come back to: Ctrl-C ends the script.
            Flow::Stopped => anyhow::bail!("stopped (Ctrl-C)"),
        }
    }
    anyhow::ensure!(failed == 0, "{failed} of the commands failed");
    Ok(())
}

/// The editor's loop: read a line, hand it over, wait until it has run.
fn edit(
    mut editor: Reedline,
    screen: &Screen,
    lines: &mpsc::Sender<Input>,
    done: &std::sync::mpsc::Receiver<()>,
) {
    let prompt = Prompt;
    loop {
        screen.prompt_shown();
        let signal = editor.read_line(&prompt);
        screen.prompt_left();
        let input = match signal {
            Ok(Signal::Success(line)) => Input::Line(line),
            Ok(Signal::CtrlD) => Input::End,
            // Ctrl-C: the line is dropped and a fresh prompt shown.
            Ok(_) => continue,
            Err(e) => Input::Failed(e.to_string()),
        };
        // Kept on disk at once, so that a REPL killed later loses nothing.
        let _ = editor.sync_history();
        let more = matches!(input, Input::Line(_));
        if lines.blocking_send(input).is_err() || !more || done.recv().is_err() {
            return;
        }
    }
}

/// The line editor: history in `history` (in memory when there is no such file), Tab for
/// the completion menu, the external printer for lines above the prompt.
fn editor(
    completer: complete::Completer,
    printer: ExternalPrinter<String>,
    history: Option<&PathBuf>,
) -> Reedline {
    let mut keys = reedline::default_emacs_keybindings();
    keys.add_binding(
        KeyModifiers::NONE,
        KeyCode::Tab,
        ReedlineEvent::UntilFound(vec![
            ReedlineEvent::Menu(complete::MENU.into()),
            ReedlineEvent::MenuNext,
        ]),
    );
    keys.add_binding(
        KeyModifiers::SHIFT,
        KeyCode::BackTab,
        ReedlineEvent::MenuPrevious,
    );
    let mut editor = Reedline::create()
        .with_edit_mode(Box::new(Emacs::new(keys)))
        .with_completer(Box::new(completer))
        .with_menu(ReedlineMenu::EngineCompleter(Box::new(
            ColumnarMenu::default().with_name(complete::MENU),
        )))
        // One candidate is taken at once, several share their common start first: as a
        // shell's Tab does.
        .with_quick_completions(true)
        .with_partial_completions(true)
        .with_ansi_colors(std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()))
        .with_external_printer(printer);
    if let Some(path) = history {
        let opened = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .map_err(|e| e.to_string())
            .and_then(|()| {
                FileBackedHistory::with_file(HISTORY_ENTRIES, path.clone())
                    .map_err(|e| e.to_string())
            });
        match opened {
            Ok(history) => editor = editor.with_history(Box::new(history)),
            Err(e) => eprintln!(
                "warning: history is not kept: cannot open {}: {e}",
                path.display()
            ),
        }
    }
    editor
}

/// `$XDG_STATE_HOME/trellis/history`, else `~/.local/state/trellis/history`.
fn history_file() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    Some(base.join("trellis/history"))
}

/// The first line: where commands go, and how to get help.
fn banner(lattice: &LatticeArgs) -> String {
    let target = match lattice.target() {
        Ok(Target::Embedded { url, .. }) => format!("the `trellis up` at {url}"),
        Ok(Target::Nats) => format!("lattice `{}` at {}", lattice.lattice, lattice.nats_url()),
        Err(e) => format!("no host yet ({e:#})"),
    };
    format!(
        "trellis repl: commands go to {target}. Events print above the prompt; Tab completes; `help` lists the commands; Ctrl-D leaves."
    )
}

/// `trellis> `.
struct Prompt;

impl reedline::Prompt for Prompt {
    fn render_prompt_left(&self) -> Cow<'_, str> {
        Cow::Borrowed("trellis")
    }

    fn render_prompt_right(&self) -> Cow<'_, str> {
        Cow::Borrowed("")
    }

    fn render_prompt_indicator(&self, _: reedline::PromptEditMode) -> Cow<'_, str> {
        Cow::Borrowed("> ")
    }

    fn render_prompt_multiline_indicator(&self) -> Cow<'_, str> {
        Cow::Borrowed("… ")
    }

    fn render_prompt_history_search_indicator(
        &self,
        search: reedline::PromptHistorySearch,
    ) -> Cow<'_, str> {
        let failed = match search.status {
            reedline::PromptHistorySearchStatus::Passing => "",
            reedline::PromptHistorySearchStatus::Failing => "failing ",
        };
        Cow::Owned(format!("({failed}search: {}) ", search.term))
    }
}

/// The REPL's claim on log lines (above the prompt: written across the line being edited, a
/// warning would break it), given back when dropped.
struct LogSink;

impl LogSink {
    fn install(above: mpsc::UnboundedSender<Above>) -> LogSink {
        crate::progress::divert_logs(Some(Box::new(move |line| {
            above.send(Above::Line(line)).is_ok()
        })));
        LogSink
    }
}

impl Drop for LogSink {
    fn drop(&mut self) {
        crate::progress::divert_logs(None);
    }
}
