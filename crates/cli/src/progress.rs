//! Progress shown while something takes more than a moment: on stderr, only when stderr is
//! a terminal, so logs, pipes and files never see it. Log lines written meanwhile go above
//! the spinner ([`LogWriter`]), which is drawn again below them, or wherever
//! [`divert_logs`] sends them (the REPL, above its prompt).

use std::io::{IsTerminal as _, Write as _};
use std::sync::Mutex;
use std::time::Duration;

/// The spinner being drawn, if any, for [`LogWriter`] to print around.
static ACTIVE: Mutex<Option<indicatif::ProgressBar>> = Mutex::new(None);

/// Takes whole log lines instead of stderr; returns false when it could not.
type Divert = Box<dyn Fn(String) -> bool + Send>;

/// Where log lines go instead of stderr, if anywhere.
static DIVERTED: Mutex<Option<Divert>> = Mutex::new(None);

/// Sends every log line (whole, without its newline) to `to` from now on, or to stderr again
/// with `None`.
pub(crate) fn divert_logs(to: Option<Divert>) {
    *DIVERTED.lock().unwrap_or_else(|e| e.into_inner()) = to;
}

/// A spinner on stderr with a message and the time taken so far; cleared when dropped.
pub(crate) struct Spinner(Option<indicatif::ProgressBar>);

/// Starts a spinner with `message`; draws nothing when stderr is not a terminal.
pub(crate) fn spinner(message: String) -> Spinner {
    if !std::io::stderr().is_terminal() {
        return Spinner(None);
    }
    let bar = indicatif::ProgressBar::new_spinner();
    if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
        bar.set_style(style);
    }
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(100));
    *ACTIVE.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar.clone());
    Spinner(Some(bar))
}

impl Drop for Spinner {
    fn drop(&mut self) {
        if let Some(bar) = self.0.take() {
            *ACTIVE.lock().unwrap_or_else(|e| e.into_inner()) = None;
            bar.finish_and_clear();
        }
    }
}

/// Where log lines go (`tracing_subscriber`'s writer): stderr, above a spinner when one is
/// drawn. Each event is written whole when its writer is dropped.
pub(crate) struct LogWriter(Vec<u8>);

impl LogWriter {
    pub(crate) fn new() -> Self {
        Self(Vec::new())
    }
}

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        if let Some(divert) = DIVERTED.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            let text = String::from_utf8_lossy(&self.0);
            let text = text.trim_end();
            if text.is_empty() || divert(text.to_owned()) {
                return;
            }
        }
        let write = || {
            let _ = std::io::stderr().lock().write_all(&self.0);
        };
        let active = ACTIVE.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match active {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }
}
