//! Progress shown while something takes more than a moment: on stderr, only when stderr is
//! a terminal, so logs, pipes and files never see it.

use std::io::IsTerminal as _;
use std::time::Duration;

/// A spinner with `message` and the time taken so far, drawn until it is dropped or
/// finished; `None` when stderr is not a terminal.
pub(crate) fn spinner(message: String) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let spinner = indicatif::ProgressBar::new_spinner();
    if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
        spinner.set_style(style);
    }
    spinner.set_message(message);
    spinner.enable_steady_tick(Duration::from_millis(100));
    Some(spinner)
}
