//! The CLI reference in `docs/reference/cli/`: one Markdown page per command, with every
//! subcommand, argument and flag (its environment variable, default and allowed values),
//! written from the same clap definition `--help` prints ([`crate::help::command`]), so it
//! cannot drift from the CLI. A test compares the pages with the files in the repository;
//! `scripts/docs cli --write` (the test with `TRELLIS_WRITE_CLI_REFERENCE=1`) writes them.

use crate::help::GROUPS;
use clap::{Arg, Command};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// The index page's file name: mdBook serves a folder's `README.md` as its index.
pub(crate) const INDEX: &str = "README.md";

/// Every page by file name: the index, and `{command}.md` for each command.
pub(crate) fn pages(root: Command) -> BTreeMap<String, String> {
    let mut root = root;
    root.build();
    let mut pages = BTreeMap::new();
    pages.insert(INDEX.to_owned(), index(&root));
    for sub in visible_subcommands(&root) {
        pages.insert(format!("{}.md", sub.get_name()), page(sub, &globals(&root)));
    }
    pages
}

fn visible_subcommands(cmd: &Command) -> impl Iterator<Item = &Command> {
    cmd.get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
}

const GENERATED: &str = "<!-- Generated from the clap definitions by `scripts/docs cli --write`; edit crates/cli, not this file. -->\n\n";

fn index(root: &Command) -> String {
    let mut out = String::from(GENERATED);
    out.push_str("# The `trellis` command\n\n");
    out.push_str(&text(&about(root)));
    out.push_str(
        "\n\nOne binary runs hosts and drives them. Each command has a page with every \
         subcommand, argument and flag; every flag that has an environment variable or a \
         default shows it. `trellis COMMAND --help` prints the same, and \
         `trellis completions SHELL` a completion script.\n\n",
    );
    for (group, commands) in GROUPS {
        let _ = writeln!(out, "## {group}\n");
        out.push_str("| command | what it does | example |\n| --- | --- | --- |\n");
        for (name, example) in *commands {
            let Some(sub) = root.find_subcommand(name) else {
                continue;
            };
            let _ = writeln!(
                out,
                "| [`trellis {name}`]({name}.md) | {} | `{}` |",
                cell(&first_sentence(&about(sub))),
                example.replace('|', "\\|")
            );
        }
        out.push('\n');
    }
    out.push_str("## Options of every command\n\n");
    let globals: Vec<&Arg> = root
        .get_arguments()
        .filter(|a| a.is_global_set() && shown(a))
        .collect();
    options_table(&mut out, &globals);
    out.push_str(
        "\nExit codes: 0 success; 1 failure (the message says what went wrong and what to do); \
         2 bad usage.\n",
    );
    out
}

/// The ids of `cmd`'s global flags, which its subcommands inherit.
fn globals(cmd: &Command) -> BTreeSet<String> {
    cmd.get_arguments()
        .filter(|a| a.is_global_set())
        .map(|a| a.get_id().to_string())
        .collect()
}

fn page(cmd: &Command, inherited: &BTreeSet<String>) -> String {
    let mut out = String::from(GENERATED);
    let example = GROUPS
        .iter()
        .flat_map(|(_, commands)| commands.iter())
        .find(|(name, _)| *name == cmd.get_name())
        .map(|(_, example)| *example);
    section(&mut out, cmd, 1, example, inherited);
    out
}

/// One command's section, then its subcommands' (one heading level down, at most `###`).
/// Flags a parent declared global are shown on the parent's section only.
fn section(
    out: &mut String,
    cmd: &Command,
    level: usize,
    example: Option<&str>,
    inherited: &BTreeSet<String>,
) {
    let path = cmd.get_bin_name().unwrap_or(cmd.get_name());
    let _ = writeln!(out, "{} {path}\n", "#".repeat(level));
    let long = cmd
        .get_long_about()
        .or(cmd.get_about())
        .map(|a| a.to_string());
    if let Some(about) = long {
        let _ = writeln!(out, "{}\n", text(&about));
    }
    let usage = cmd.clone().render_usage().to_string();
    let _ = writeln!(out, "```text\n{}\n```\n", usage.trim_end());
    if let Some(example) = example {
        let _ = writeln!(out, "Example:\n\n```sh\n{example}\n```\n");
    }
    let positionals: Vec<&Arg> = cmd
        .get_arguments()
        .filter(|a| a.is_positional() && shown(a))
        .collect();
    if !positionals.is_empty() {
        out.push_str("Arguments:\n\n| argument | required | meaning |\n| --- | --- | --- |\n");
        for a in positionals {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} |",
                value_name(a),
                if a.is_required_set() { "yes" } else { "no" },
                cell(&help(a))
            );
        }
        out.push('\n');
    }
    let options: Vec<&Arg> = cmd
        .get_arguments()
        .filter(|a| !a.is_positional() && !inherited.contains(a.get_id().as_str()) && shown(a))
        .collect();
    if !options.is_empty() {
        out.push_str("Options:\n\n");
        options_table(out, &options);
        out.push('\n');
    }
    let subs: Vec<&Command> = visible_subcommands(cmd).collect();
    if !subs.is_empty() {
        out.push_str("Subcommands:\n\n");
        for sub in &subs {
            let name = sub.get_bin_name().unwrap_or(sub.get_name());
            let _ = writeln!(
                out,
                "- [`{name}`](#{}): {}",
                anchor(name),
                text(&first_sentence(&about(sub)))
            );
        }
        out.push('\n');
        let mut inherited = inherited.clone();
        inherited.extend(globals(cmd));
        for sub in subs {
            section(out, sub, (level + 1).min(3), None, &inherited);
        }
    }
}

fn options_table(out: &mut String, args: &[&Arg]) {
    out.push_str("| flag | environment | default | meaning |\n| --- | --- | --- | --- |\n");
    for a in args {
        let env = a
            .get_env()
            .map(|e| format!("`{}`", e.to_string_lossy()))
            .unwrap_or_default();
        let defaults: Vec<String> = a
            .get_default_values()
            .iter()
            .map(|v| format!("`{}`", v.to_string_lossy()))
            .collect();
        let mut meaning = help(a);
        if a.get_action().takes_values() {
            let values: Vec<String> = a
                .get_possible_values()
                .iter()
                .filter(|v| !v.is_hide_set())
                .map(|v| format!("`{}`", v.get_name()))
                .collect();
            if !values.is_empty() {
                // clap drops a doc comment's closing period.
                if !meaning.is_empty() && !meaning.ends_with('.') {
                    meaning.push('.');
                }
                let _ = write!(meaning, " One of: {}.", values.join(", "));
            }
        }
        let _ = writeln!(
            out,
            "| `{}` | {env} | {} | {} |",
            flag(a),
            defaults.join(", "),
            cell(&meaning)
        );
    }
}

/// Whether an argument belongs in the reference: not hidden, not clap's own help/version.
fn shown(a: &Arg) -> bool {
    !a.is_hide_set() && !matches!(a.get_id().as_str(), "help" | "version")
}

fn flag(a: &Arg) -> String {
    let mut names = Vec::new();
    if let Some(s) = a.get_short() {
        names.push(format!("-{s}"));
    }
    if let Some(l) = a.get_long() {
        names.push(format!("--{l}"));
    }
    let mut out = names.join(", ");
    if a.get_action().takes_values() {
        let optional = a.get_num_args().is_some_and(|n| n.min_values() == 0);
        let value = format!("<{}>", value_name(a));
        if optional {
            let _ = write!(out, " [{value}]");
        } else {
            let _ = write!(out, " {value}");
        }
    }
    out
}

fn value_name(a: &Arg) -> String {
    let name = a
        .get_value_names()
        .and_then(|v| v.first())
        .map(|n| n.to_string())
        .unwrap_or_else(|| a.get_id().as_str().to_uppercase());
    let many = a.get_num_args().is_some_and(|n| n.max_values() > 1);
    if many { format!("{name}…") } else { name }
}

fn help(a: &Arg) -> String {
    a.get_long_help()
        .or(a.get_help())
        .map(|h| h.to_string())
        .unwrap_or_default()
}

fn about(cmd: &Command) -> String {
    cmd.get_about().map(|a| a.to_string()).unwrap_or_default()
}

fn first_sentence(about: &str) -> String {
    let first = about.split(". ").next().unwrap_or_default();
    format!("{}.", first.trim_end_matches('.'))
}

/// Help text as Markdown prose: angle brackets shown, not taken for HTML.
fn text(s: &str) -> String {
    s.trim()
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace("\n\n", "\u{0}")
        .replace('\n', " ")
        .replace('\u{0}', "\n\n")
}

/// Help text in a table cell: one line, `|` escaped.
fn cell(s: &str) -> String {
    text(s).replace("\n\n", " ").replace('|', "\\|")
}

/// The anchor GitHub and mdBook give a heading of plain words.
fn anchor(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;
    use std::path::Path;

    /// The pages in docs/reference/cli/ are what the CLI says; with
    /// `TRELLIS_WRITE_CLI_REFERENCE=1` this writes them instead.
    #[test]
    fn cli_reference_is_current() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/reference/cli");
        let pages = pages(crate::help::command(crate::Cli::command()));
        let on_disk: Vec<String> = std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".md"))
                    .collect()
            })
            .unwrap_or_default();
        if std::env::var_os("TRELLIS_WRITE_CLI_REFERENCE").is_some() {
            std::fs::create_dir_all(&dir).expect("create docs/reference/cli");
            for name in on_disk.iter().filter(|n| !pages.contains_key(*n)) {
                std::fs::remove_file(dir.join(name)).expect("remove a stale page");
            }
            for (name, text) in &pages {
                std::fs::write(dir.join(name), text).expect("write a page");
            }
            return;
        }
        let mut stale: Vec<String> = pages
            .iter()
            .filter(|(name, text)| {
                std::fs::read_to_string(dir.join(name)).ok().as_deref() != Some(text.as_str())
            })
            .map(|(name, _)| format!("{name} (differs or is missing)"))
            .collect();
        stale.extend(
            on_disk
                .iter()
                .filter(|n| !pages.contains_key(*n))
                .map(|n| format!("{n} (no such command)")),
        );
        assert!(
            stale.is_empty(),
            "the CLI reference in docs/reference/cli/ is stale: {}; run `scripts/docs cli --write` and commit the pages",
            stale.join(", ")
        );
    }

    #[test]
    fn every_command_has_a_page_listed_in_the_book() {
        let pages = pages(crate::help::command(crate::Cli::command()));
        let summary = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/SUMMARY.md"),
        )
        .expect("docs/SUMMARY.md");
        for name in pages.keys() {
            assert!(
                summary.contains(&format!("(reference/cli/{name})")),
                "docs/SUMMARY.md does not list reference/cli/{name}"
            );
        }
    }

    #[test]
    fn anchors_are_made_as_the_book_makes_them() {
        assert_eq!(anchor("trellis get hosts"), "trellis-get-hosts");
        assert_eq!(anchor("trellis control-key"), "trellis-control-key");
    }
}
