//! Lines printed above the prompt: through the editor's external printer while a line is
//! edited (the editor prints them and redraws the line below), straight to stdout while a
//! command runs (nothing is drawn then, and a line must not wait for the command to end).

use std::sync::Mutex;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::time::Duration;
use tokio::sync::mpsc;

/// Lines the external printer holds until the editor prints them (it takes them every
/// tenth of a second); more wait in [`forward`]'s channel.
///
/// What it still holds when Enter is pressed is printed when the next prompt is shown (the
/// editor keeps its receiving end): at most a tenth of a second's lines, late.
pub(super) const QUEUED_LINES: usize = 256;

/// A line to print above the prompt.
pub(crate) enum Above {
    /// A lattice event, as `trellis events` prints it.
    Event(String),
    /// Anything else: a log line, a line from `trellis dev`, a note from the REPL.
    Line(String),
}

impl Above {
    fn into_text(self) -> String {
        match self {
            Above::Event(text) | Above::Line(text) => text,
        }
    }
}

/// Who draws the terminal now.
#[derive(Clone, Copy)]
enum State {
    /// The editor, with a prompt and the line being typed.
    Prompt,
    /// A command; `events` when it is `events`, which prints the lattice's events itself.
    Running { events: bool },
}

/// Where lines above the prompt go, by [`State`].
pub(super) struct Screen {
    state: Mutex<State>,
    /// The sending end of the editor's external printer.
    printer: SyncSender<String>,
}

impl Screen {
    pub(super) fn new(printer: SyncSender<String>) -> Screen {
        Screen {
            state: Mutex::new(State::Running { events: false }),
            printer,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The editor is about to read a line.
    pub(super) fn prompt_shown(&self) {
        *self.state() = State::Prompt;
    }

    /// The editor returned a line.
    pub(super) fn prompt_left(&self) {
        *self.state() = State::Running { events: false };
    }

    /// A command runs; `events` says whether it is `trellis events`.
    pub(super) fn running(&self, events: bool) {
        *self.state() = State::Running { events };
    }

    /// Prints `line`, or hands it back when the printer is full.
    fn offer(&self, line: Above) -> Result<(), Above> {
        let state = self.state();
        match *state {
            State::Running { events: true } if matches!(line, Above::Event(_)) => Ok(()),
            State::Running { .. } => {
                println!("{}", line.into_text());
                Ok(())
            }
            State::Prompt => {
                let is_event = matches!(line, Above::Event(_));
                match self.printer.try_send(line.into_text()) {
                    Ok(()) => Ok(()),
                    Err(TrySendError::Full(text)) if is_event => Err(Above::Event(text)),
                    Err(TrySendError::Full(text)) => Err(Above::Line(text)),
                    Err(TrySendError::Disconnected(text)) => {
                        println!("{text}");
                        Ok(())
                    }
                }
            }
        }
    }
}

/// Prints every line received, in order, until the senders are gone.
pub(super) async fn forward(
    mut lines: mpsc::UnboundedReceiver<Above>,
    screen: std::sync::Arc<Screen>,
) {
    while let Some(mut line) = lines.recv().await {
        // The lock is not held while waiting, so the editor can leave the prompt meanwhile.
        while let Err(back) = screen.offer(line) {
            line = back;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
