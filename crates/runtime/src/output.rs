//! A guest's stdout and stderr, as log lines that say whose they are.
//!
//! Each line a component writes becomes a `tracing` event at target [`GUEST_LOG`] with
//! the fields `component_id` and `stream` (`stdout` or `stderr`), like its `wasi:logging`
//! calls: `trellis dev` prints it with the component's coloured prefix, and the host's log
//! shows who wrote it. Writing never blocks the guest; a line longer than
//! [`MAX_LINE_BYTES`] is cut into pieces of that size.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// The `tracing` target of what guests log: their `wasi:logging` calls (with a `context`
/// field) and their output lines (with a `stream` field), both with `component_id`.
pub const GUEST_LOG: &str = "trellis::guest";

/// The longest line kept whole; longer ones are logged in pieces of this size.
pub const MAX_LINE_BYTES: usize = 16 << 10;

/// One stream (stdout or stderr) of one component.
#[derive(Clone)]
pub(crate) struct GuestOutput {
    component_id: Arc<str>,
    stream: &'static str,
    /// Also told of each line (the host's log stream), when anyone listens.
    observer: Option<Arc<dyn crate::Observer>>,
}

impl GuestOutput {
    pub(crate) fn stdout(
        component_id: Arc<str>,
        observer: Option<Arc<dyn crate::Observer>>,
    ) -> Self {
        Self {
            component_id,
            stream: "stdout",
            observer,
        }
    }

    pub(crate) fn stderr(
        component_id: Arc<str>,
        observer: Option<Arc<dyn crate::Observer>>,
    ) -> Self {
        Self {
            component_id,
            stream: "stderr",
            observer,
        }
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(LineWriter {
            output: self.clone(),
            lines: Lines::default(),
        })
    }
}

/// Splits bytes into lines of at most [`MAX_LINE_BYTES`] (without their `\n` or `\r\n`).
#[derive(Default)]
struct Lines {
    pending: Vec<u8>,
}

impl Lines {
    fn push(&mut self, mut buf: &[u8], mut emit: impl FnMut(&[u8])) {
        while let Some(end) = buf.iter().position(|b| *b == b'\n') {
            if self.pending.is_empty() {
                emit(&buf[..end]);
            } else {
                self.pending.extend_from_slice(&buf[..end]);
                emit(&std::mem::take(&mut self.pending));
            }
            buf = &buf[end + 1..];
        }
        self.pending.extend_from_slice(buf);
        while self.pending.len() >= MAX_LINE_BYTES {
            let rest = self.pending.split_off(MAX_LINE_BYTES);
            emit(&std::mem::replace(&mut self.pending, rest));
        }
    }

    fn finish(&mut self, mut emit: impl FnMut(&[u8])) {
        if !self.pending.is_empty() {
            emit(&std::mem::take(&mut self.pending));
        }
    }
}

/// Logs each line a guest writes.
struct LineWriter {
    output: GuestOutput,
    lines: Lines,
}

impl LineWriter {
    fn emit(output: &GuestOutput, line: &[u8]) {
        let line = String::from_utf8_lossy(line);
        let line = line.strip_suffix('\r').unwrap_or(&line);
        tracing::info!(
            target: GUEST_LOG,
            component_id = %output.component_id,
            stream = output.stream,
            "{line}"
        );
        if let Some(observer) = &output.observer {
            // stderr is where panics and most error reports go.
            let level = if output.stream == "stderr" {
                trellis_control::logs::LogLevel::Warn
            } else {
                trellis_control::logs::LogLevel::Info
            };
            observer.log(level, output.stream, "", line);
        }
    }
}

impl AsyncWrite for LineWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        this.lines.push(buf, |line| Self::emit(&this.output, line));
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        // A guest flushes after every print; a line is logged when it is complete.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        this.lines.finish(|line| Self::emit(&this.output, line));
        Poll::Ready(Ok(()))
    }
}

impl Drop for LineWriter {
    /// What the guest wrote without a final newline is logged when its instance ends.
    fn drop(&mut self) {
        let output = self.output.clone();
        self.lines.finish(|line| Self::emit(&output, line));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_at_newlines_and_bounded() {
        let mut lines = Lines::default();
        let mut out: Vec<Vec<u8>> = Vec::new();
        let long = vec![b'x'; MAX_LINE_BYTES + 10];
        for w in [&b"one\ntw"[..], b"o\r\n", &long, b"\nlast"] {
            lines.push(w, |l| out.push(l.to_vec()));
        }
        lines.finish(|l| out.push(l.to_vec()));
        assert_eq!(
            out,
            vec![
                b"one".to_vec(),
                b"two\r".to_vec(),
                vec![b'x'; MAX_LINE_BYTES],
                vec![b'x'; 10],
                b"last".to_vec()
            ]
        );
    }
}
