//! The one error type of this crate, rendered like a compiler diagnostic.

use std::fmt;
use std::path::{Path, PathBuf};

/// Why a manifest was rejected, and where.
///
/// Displays as
///
/// ```text
/// {file}:{line}:{column}: {path}: {message}
///   hint: {hint}
/// ```
///
/// where `:{column}` is left out when unknown, `:{line}:{column}` when the line is unknown,
/// `{path}: ` when the problem concerns the whole document, and the hint line when there is
/// no hint. `path` is a field path such as `spec.components[0].traits[1].properties.target.name`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct ManifestError {
    /// The manifest file.
    pub file: PathBuf,
    /// 1-based line of the problem, if known.
    pub line: Option<usize>,
    /// 1-based column of the problem, if known.
    pub column: Option<usize>,
    /// The field path of the offending value; empty for the document as a whole.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// What to do about it, if there is something specific to say.
    pub hint: Option<String>,
    /// What kind of problem this is, for callers that react differently to each.
    pub kind: ErrorKind,
}

/// The broad class of a [`ManifestError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The manifest file could not be read.
    Io,
    /// The text is not valid YAML (or JSON).
    Syntax,
    /// The document does not have the shape of an OAM application: an unknown or missing
    /// field, or a value of the wrong type.
    Schema,
    /// A semantic rule is broken: a dangling link, a duplicate name, a bad reference, ….
    Invalid,
    /// The manifest uses a feature wadm has and Trellis does not support yet.
    Unsupported,
    /// A `file://` image does not exist.
    MissingFile,
    /// Not an error: something wadm accepts (an unknown key, an interface the host does not
    /// know) that Trellis accepts too, reported in [`crate::Application::warnings`].
    Ignored,
}

impl ManifestError {
    /// An error at an explicit position.
    pub fn new(
        kind: ErrorKind,
        file: impl Into<PathBuf>,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            file: file.into(),
            line: None,
            column: None,
            path: path.into(),
            message: message.into(),
            hint: None,
            kind,
        }
    }

    /// Sets the 1-based line and column.
    pub fn at(mut self, line: Option<usize>, column: Option<usize>) -> Self {
        self.line = line;
        // A column without a line would render misleadingly, so drop it.
        self.column = line.and(column);
        self
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub(crate) fn io(file: &Path, err: &std::io::Error) -> Self {
        Self::new(
            ErrorKind::Io,
            file,
            "",
            format!("cannot read the manifest: {err}"),
        )
        .with_hint("check that the path is right and the file is readable")
    }

    fn render(&self) -> String {
        let mut out = self.file.display().to_string();
        if let Some(line) = self.line {
            out.push_str(&format!(":{line}"));
            if let Some(column) = self.column {
                out.push_str(&format!(":{column}"));
            }
        }
        out.push_str(": ");
        if !self.path.is_empty() {
            out.push_str(&self.path);
            out.push_str(": ");
        }
        out.push_str(&self.message);
        if let Some(hint) = &self.hint {
            out.push_str("\n  hint: ");
            out.push_str(hint);
        }
        out
    }
}

/// The name among `candidates` closest to `wanted`, if one is close enough to be a likely typo:
/// at most one edit per three characters (and always one edit, for short names).
pub(crate) fn closest<'a>(
    wanted: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let budget = (wanted.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(wanted, c), c))
        .filter(|(distance, _)| *distance <= budget)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

/// Renders names as "`a`, `b` and `c`" for messages.
pub(crate) fn list<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let names: Vec<String> = names.into_iter().map(|n| format!("`{n}`")).collect();
    match names.split_last() {
        None => "none".to_owned(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Io => "io",
            ErrorKind::Syntax => "syntax",
            ErrorKind::Schema => "schema",
            ErrorKind::Invalid => "invalid",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::MissingFile => "missing file",
            ErrorKind::Ignored => "ignored",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err() -> ManifestError {
        ManifestError::new(
            ErrorKind::Invalid,
            "app/wadm.yaml",
            "spec.components[0].name",
            "bad",
        )
    }

    #[test]
    fn renders_full_location_and_hint() {
        let e = err().at(Some(3), Some(7)).with_hint("do better");
        assert_eq!(
            e.to_string(),
            "app/wadm.yaml:3:7: spec.components[0].name: bad\n  hint: do better"
        );
    }

    #[test]
    fn renders_without_column_or_hint() {
        assert_eq!(
            err().at(Some(3), None).to_string(),
            "app/wadm.yaml:3: spec.components[0].name: bad"
        );
    }

    #[test]
    fn renders_without_line() {
        // A column alone is meaningless and is dropped.
        assert_eq!(
            err().at(None, Some(7)).to_string(),
            "app/wadm.yaml: spec.components[0].name: bad"
        );
    }

    #[test]
    fn renders_without_path() {
        let e = ManifestError::new(ErrorKind::Syntax, "wadm.yaml", "", "oops").at(Some(1), Some(1));
        assert_eq!(e.to_string(), "wadm.yaml:1:1: oops");
    }

    #[test]
    fn closest_finds_typos_only() {
        let names = ["kvredis", "httpserver", "counter"];
        assert_eq!(closest("kv-redis", names), Some("kvredis"));
        assert_eq!(closest("countr", names), Some("counter"));
        assert_eq!(closest("blobstore", names), None);
        assert_eq!(closest("wbe", ["web", "api"]), Some("web"));
        assert_eq!(
            closest("autoscaler", ["spreadscaler", "daemonscaler", "link"]),
            None
        );
    }

    #[test]
    fn lists_names() {
        assert_eq!(list([]), "none");
        assert_eq!(list(["a"]), "`a`");
        assert_eq!(list(["a", "b", "c"]), "`a`, `b` and `c`");
    }
}
