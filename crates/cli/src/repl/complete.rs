//! Tab completion: command names, subcommands, flags and their fixed values from the CLI's
//! clap definition, and ids and names (components, providers, hosts, links, apps) from the
//! running hosts ([`super::watch::Names`]).

use super::line::REFUSED;
use super::watch::Names;
use reedline::{CompletionResult, Span, Suggestion};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// The completion menu's name in the editor.
pub(super) const MENU: &str = "completion_menu";

/// The REPL's own words at the start of a line.
const BUILTINS: &[&str] = &["help", "exit", "quit"];

pub(super) struct Completer {
    command: clap::Command,
    names: Arc<Mutex<Names>>,
    /// Asks for fresh names: the next Tab sees what changed since the last refresh.
    refresh: Arc<Notify>,
}

impl Completer {
    pub(super) fn new(
        command: clap::Command,
        names: Arc<Mutex<Names>>,
        refresh: Arc<Notify>,
    ) -> Completer {
        Completer {
            command,
            names,
            refresh,
        }
    }
}

impl reedline::Completer for Completer {
    fn complete(&mut self, line: &str, pos: usize) -> CompletionResult {
        self.refresh.notify_one();
        CompletionResult::fresh(self.suggestions(line, pos))
    }
}

impl Completer {
    fn suggestions(&self, line: &str, pos: usize) -> Vec<Suggestion> {
        let names = self.names.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let Some(before) = line.get(..pos) else {
            return Vec::new();
        };
        let words = words(before);
        let Some(((start, partial), done)) = words.split_last() else {
            return Vec::new();
        };
        candidates(&self.command, done, partial, &names)
            .into_iter()
            .filter(|c| c.starts_with(partial.as_str()))
            .map(|c| Suggestion {
                value: quote(&c),
                span: Span::new(*start, pos),
                append_whitespace: true,
                ..Suggestion::default()
            })
            .collect()
    }
}

/// `word` as it must be typed to come back as itself.
fn quote(word: &str) -> String {
    shell_words::quote(word).into_owned()
}

/// What may stand in the place of the last word, after the words `done`.
fn candidates(
    root: &clap::Command,
    done: &[(usize, String)],
    partial: &str,
    names: &Names,
) -> Vec<String> {
    let mut command = root;
    let mut path: Vec<&str> = Vec::new();
    let mut positional = 0;
    let mut value_of: Option<&clap::Arg> = None;
    for (_, word) in done {
        if value_of.take().is_some() {
            continue;
        }
        if let Some(flag) = word.strip_prefix('-').filter(|f| !f.is_empty()) {
            let arg = match flag.strip_prefix('-') {
                Some(long) => {
                    let (long, inline) = match long.split_once('=') {
                        Some((long, _)) => (long, true),
                        None => (long, false),
                    };
                    command
                        .get_arguments()
                        .find(|a| a.get_long() == Some(long))
                        .filter(|_| !inline)
                }
                // `-o` takes its value next; `-ojson` has it.
                None => command
                    .get_arguments()
                    .find(|a| a.get_short().is_some_and(|s| flag == s.to_string())),
            };
            value_of = arg.filter(|a| takes_value(a));
            continue;
        }
        if let Some(sub) = command.find_subcommand(word) {
            path.push(sub.get_name());
            command = sub;
            positional = 0;
            continue;
        }
        positional += 1;
    }
    if let Some(arg) = value_of {
        return values(arg, &path, names);
    }
    if partial.starts_with('-') {
        return command
            .get_arguments()
            .filter(|a| !a.is_hide_set())
            .filter_map(|a| a.get_long())
            .map(|long| format!("--{long}"))
            .collect();
    }
    let mut found: Vec<String> = command
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .map(|c| c.get_name())
        .filter(|name| !(path.is_empty() && REFUSED.iter().any(|(r, _)| r == name)))
        .map(str::to_owned)
        .collect();
    if path.is_empty() {
        found.extend(BUILTINS.iter().map(|b| (*b).to_owned()));
        found.sort();
        found.dedup();
    }
    let positionals: Vec<&clap::Arg> = command.get_positionals().collect();
    let arg = positionals.get(positional).or_else(|| {
        positionals
            .last()
            .filter(|a| a.get_num_args().is_some_and(|n| n.max_values() > 1))
    });
    if let Some(arg) = arg {
        found.extend(values(arg, &path, names));
    }
    found
}

/// Whether `arg` takes a value after it (`--host H`), rather than being a switch.
fn takes_value(arg: &clap::Arg) -> bool {
    arg.get_action().takes_values() && arg.get_num_args().is_none_or(|n| n.min_values() > 0)
}

/// The values `arg` of the subcommand at `path` may take: its fixed ones, or the names of
/// what it names (by the argument's id: `host`, `id`, `component`, `source`, `name`, …).
fn values(arg: &clap::Arg, path: &[&str], names: &Names) -> Vec<String> {
    let fixed: Vec<String> = arg
        .get_possible_values()
        .iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| v.get_name().to_owned())
        .collect();
    if !fixed.is_empty() {
        return fixed;
    }
    let first = path.first().copied().unwrap_or_default();
    let last = path.last().copied().unwrap_or_default();
    let list = |set: &std::collections::BTreeSet<String>| set.iter().cloned().collect::<Vec<_>>();
    match arg.get_id().as_str() {
        "host" => list(&names.hosts),
        "component" => list(&names.components),
        // `start` names a new id.
        "id" if first == "start" => Vec::new(),
        "id" if last == "component" => list(&names.components),
        "id" if last == "provider" => list(&names.providers),
        "source" | "target" => {
            let mut both = list(&names.components);
            both.extend(list(&names.providers));
            both
        }
        "name" if first == "link" => list(&names.links),
        "name" | "app" if first == "app" => list(&names.apps),
        _ => Vec::new(),
    }
}

/// The words of `line`, each with the byte offset it starts at, unquoted as a shell would;
/// the last is the word the cursor is in (empty after a space).
fn words(line: &str) -> Vec<(usize, String)> {
    let mut words = Vec::new();
    let mut current: Option<(usize, String)> = None;
    let mut quote: Option<char> = None;
    let mut chars = line.char_indices();
    /// The word being read, started at `at` if there is none.
    fn word(current: &mut Option<(usize, String)>, at: usize) -> &mut String {
        &mut current.get_or_insert_with(|| (at, String::new())).1
    }
    while let Some((i, c)) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') | (None, '\\') => {
                let escaped = chars.next().map(|(_, n)| n);
                word(&mut current, i).extend(escaped);
            }
            (Some(_), c) => word(&mut current, i).push(c),
            (None, c) if c.is_whitespace() => words.extend(current.take()),
            (None, '\'' | '"') => {
                word(&mut current, i);
                quote = Some(c);
            }
            (None, c) => word(&mut current, i).push(c),
        }
    }
    words.push(current.unwrap_or((line.len(), String::new())));
    words
}

#[cfg(test)]
mod tests {
    use super::*;
    use reedline::Completer as _;

    fn completer() -> Completer {
        let names = Names {
            components: ["shop-web".into(), "shop-worker".into()].into(),
            providers: ["shop-httpserver".into()].into(),
            hosts: ["NABC".into(), "quiet-fox".into()].into(),
            links: ["default".into()].into(),
            apps: ["shop".into()].into(),
        };
        Completer::new(
            super::super::line::Parser::new().command().clone(),
            Arc::new(Mutex::new(names)),
            Arc::new(Notify::new()),
        )
    }

    fn complete(line: &str) -> Vec<String> {
        completer()
            .complete(line, line.len())
            .suggestions()
            .iter()
            .map(|s| s.value.clone())
            .collect()
    }

    #[test]
    fn commands_subcommands_and_flags_come_from_the_parser() {
        let top = complete("");
        assert!(top.contains(&"get".to_owned()), "{top:?}");
        assert!(top.contains(&"exit".to_owned()), "{top:?}");
        assert!(
            !top.contains(&"up".to_owned()),
            "refused commands are not offered"
        );
        assert_eq!(complete("ge"), ["get"]);
        assert_eq!(complete("get inv"), ["inventory"]);
        assert!(complete("scale component --").contains(&"--count".to_owned()));
        assert!(complete("get hosts --lat").contains(&"--lattice".to_owned()));
        assert_eq!(complete("get hosts -o j"), ["json"]);
    }

    #[test]
    fn ids_and_names_come_from_the_hosts() {
        assert_eq!(
            complete("scale component shop-w"),
            ["shop-web", "shop-worker"]
        );
        assert_eq!(complete("stop provider "), ["shop-httpserver"]);
        assert_eq!(complete("scale component shop-web --host q"), ["quiet-fox"]);
        assert_eq!(complete("get inventory q"), ["quiet-fox"]);
        assert_eq!(complete("app status s"), ["shop"]);
        assert_eq!(complete("call shop-we"), ["shop-web"]);
        assert_eq!(
            complete("link del shop-web wasi:http --name d"),
            ["default"]
        );
        assert!(complete("start component /x.wasm ").is_empty(), "a new id");
        let quoted = completer().complete("stop component 'shop-we", 23);
        assert_eq!(quoted.suggestions()[0].span, Span::new(15, 23));
    }

    #[test]
    fn words_split_as_a_shell_does_and_keep_their_offsets() {
        assert_eq!(
            words("a 'b c' d\\ e "),
            [
                (0, "a".into()),
                (2, "b c".into()),
                (8, "d e".into()),
                (13, String::new())
            ]
        );
        assert_eq!(words("get \"in"), [(0, "get".into()), (4, "in".into())]);
    }
}
