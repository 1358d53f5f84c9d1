//! Deploy-time diagnostics: everything wrong with an app, found before anything runs.

use std::fmt;

/// One thing that stops an app from deploying, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What is wrong, naming the component, provider, link or import.
    pub message: String,
    /// What to change, possibly several lines (for example a link trait to add).
    pub hint: Option<String>,
}

impl Problem {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: None,
        }
    }

    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// An app that cannot be deployed, with every problem found.
#[derive(Debug, Clone, thiserror::Error)]
pub struct DeployError {
    /// The app's name.
    pub app: String,
    /// The manifest file.
    pub manifest: String,
    /// Every problem, in manifest order.
    pub problems: Vec<Problem>,
}

impl fmt::Display for DeployError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        writeln!(
            f,
            "cannot deploy app `{}` ({}): {n} problem{}",
            self.app,
            self.manifest,
            if n == 1 { "" } else { "s" }
        )?;
        for (i, p) in self.problems.iter().enumerate() {
            writeln!(f, "  {}. {}", i + 1, p.message)?;
            if let Some(hint) = &p.hint {
                for line in hint.lines() {
                    writeln!(f, "     {line}")?;
                }
            }
        }
        Ok(())
    }
}
