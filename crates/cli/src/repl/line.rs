//! A typed line → a CLI command: split as a shell would, parsed by the CLI's own clap
//! parser ([`crate::Cli`]), with the REPL's lattice flags as the defaults of what the line
//! does not name.

use crate::Command;
use crate::ctl::LatticeArgs;
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory as _, FromArgMatches as _};
use std::fmt::Write as _;
use std::path::PathBuf;

/// Commands that run a host in this process until it stops, and why the REPL refuses them.
pub(super) const REFUSED: &[(&str, &str)] = &[
    (
        "up",
        "`up` runs a host until it stops, which would take this prompt away; run `trellis up` in another terminal (started in this folder, the REPL finds it)",
    ),
    (
        "host",
        "`host` runs a lattice host until it stops, which would take this prompt away; run `trellis host` in another terminal",
    ),
    (
        "dev",
        "`dev` runs a host until it stops, which would take this prompt away; run `trellis dev --repl` for a dev loop with this prompt",
    ),
    (
        "dashboard",
        "`dashboard` serves a web page until it stops, which would take this prompt away; run `trellis dashboard` in another terminal",
    ),
    ("repl", "this is the REPL already"),
];

/// Words that leave the REPL.
const EXIT: &[&str] = &["exit", "quit"];

/// What a typed line asks for.
pub(super) enum Line {
    /// Nothing (blank).
    Empty,
    /// `exit` or `quit`.
    Exit,
    /// `help` alone: the REPL's own help.
    Help,
    /// A command the REPL does not run, and why.
    Refused(&'static str),
    /// What clap says: a usage error, or help or version text asked for.
    Clap(clap::Error),
    /// A line that does not split into words (an unclosed quote).
    Invalid(String),
    /// A command to run.
    Run(Box<Command>),
}

/// The CLI's parser, built once.
pub(super) struct Parser {
    command: clap::Command,
}

impl Parser {
    pub(super) fn new() -> Parser {
        // With the examples and grouping `trellis --help` has, so `COMMAND --help` at the
        // prompt shows what it shows on the command line.
        let mut command = crate::help::command(crate::Cli::command());
        // Globals propagated and `help` added, as when parsing: completion reads this too.
        command.build();
        Parser { command }
    }

    /// The CLI's clap definition.
    pub(super) fn command(&self) -> &clap::Command {
        &self.command
    }

    pub(super) fn parse(&self, text: &str, defaults: &LatticeArgs) -> Line {
        let words = match shell_words::split(text) {
            Ok(words) => words,
            Err(e) => return Line::Invalid(format!("{e} in `{}`", text.trim())),
        };
        let Some(first) = words.first() else {
            return Line::Empty;
        };
        if words.len() == 1 && EXIT.contains(&first.as_str()) {
            return Line::Exit;
        }
        if words.len() == 1 && first == "help" {
            return Line::Help;
        }
        // Before parsing, so that `up` without a manifest is refused rather than explained.
        if let Some(why) = refusal(words.iter().find(|w| !w.starts_with('-'))) {
            return Line::Refused(why);
        }
        let argv = std::iter::once("trellis".to_owned()).chain(words);
        let matches = match self.command.clone().try_get_matches_from(argv) {
            Ok(matches) => matches,
            Err(e) => return Line::Clap(e),
        };
        if let Some(why) = refusal(matches.subcommand_name().map(str::to_owned).as_ref()) {
            return Line::Refused(why);
        }
        let mut command = match crate::Cli::from_arg_matches(&matches) {
            Ok(cli) => cli.command,
            Err(e) => return Line::Clap(e.format(&mut self.command.clone())),
        };
        if let Some(lattice) = lattice_of(&mut command) {
            inherit(lattice, defaults, |id| given(&matches, id));
        }
        Line::Run(Box::new(command))
    }

    /// The REPL's `help`: the commands it runs, and its keys.
    pub(super) fn help(&self, history: &Option<PathBuf>) -> String {
        let commands: Vec<(&str, String)> = self
            .command
            .get_subcommands()
            .filter(|c| !c.is_hide_set() && c.get_name() != "help")
            .filter(|c| refusal(Some(&c.get_name().to_owned())).is_none())
            .map(|c| {
                let about = c.get_about().map(|a| a.to_string()).unwrap_or_default();
                // Its first clause: the rest is for `help COMMAND`.
                let end = [". ", ": ", "; ", "\n"]
                    .iter()
                    .filter_map(|s| about.find(s))
                    .min()
                    .unwrap_or(about.len());
                (c.get_name(), about[..end].trim_end_matches('.').to_owned())
            })
            .collect();
        let width = commands.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
        let mut text = String::from(
            "Commands, as on the command line without `trellis` (`help COMMAND` or `COMMAND --help` for its flags):\n",
        );
        for (name, about) in commands {
            let _ = writeln!(text, "  {name:<width$}  {about}");
        }
        let history = match history {
            Some(path) => format!("kept in {}", path.display()),
            None => "not kept (no HOME)".to_owned(),
        };
        let _ = write!(
            text,
            "\nThe REPL's lattice flags (--nats, --lattice, --embedded, credentials, --admin-token, --control-key) are\n\
             every command's defaults; a flag on the line wins.\n\
             Events print above the prompt (all but host_heartbeat; `events` prints every one).\n\
             Tab completes commands, flags, and ids and names from the running hosts.\n\
             Up and Down walk the history ({history}); Ctrl-R searches it.\n\
             Ctrl-C clears the line, or stops a running command. exit, quit or Ctrl-D leaves.\n"
        );
        text
    }
}

/// Why the command named `word` is refused, if it is.
fn refusal(word: Option<&String>) -> Option<&'static str> {
    let word = word?;
    REFUSED
        .iter()
        .find(|(name, _)| name == word)
        .map(|(_, why)| *why)
}

/// The lattice flags of `command`, if it talks to a lattice.
fn lattice_of(command: &mut Command) -> Option<&mut LatticeArgs> {
    match command {
        Command::Get { lattice, .. }
        | Command::Config { lattice, .. }
        | Command::Label { lattice, .. }
        | Command::Link { lattice, .. }
        | Command::Start { lattice, .. }
        | Command::Scale { lattice, .. }
        | Command::Update { lattice, .. }
        | Command::Stop { lattice, .. }
        | Command::Events { lattice }
        | Command::Logs { lattice, .. }
        | Command::App { lattice, .. }
        | Command::Secret { lattice, .. }
        | Command::Call { lattice, .. }
        | Command::Drain { lattice, .. } => Some(lattice),
        // Commands that do not talk to a lattice, and the refused ones.
        _ => None,
    }
}

/// Whether the flag with clap id `id` was given on the line (at any level: lattice flags
/// are global, so they may follow any subcommand).
fn given(matches: &ArgMatches, id: &str) -> bool {
    // Global values show at every level, but only where the flag is defined may they be
    // asked about (clap panics elsewhere in debug builds).
    let here = matches.try_contains_id(id).unwrap_or(false)
        && matches.value_source(id) == Some(ValueSource::CommandLine);
    here || matches.subcommand().is_some_and(|(_, sub)| given(sub, id))
}

/// Takes the REPL's lattice flags for what the line did not name. Flags that only make
/// sense together go together: a line naming `--nats` or `--embedded` picks its own target
/// (and token), a line naming any credentials file its own credentials.
fn inherit(line: &mut LatticeArgs, repl: &LatticeArgs, given: impl Fn(&str) -> bool) {
    if !given("nats") && !given("embedded") {
        line.nats.clone_from(&repl.nats);
        line.embedded.clone_from(&repl.embedded);
        if !given("admin_token") {
            line.admin_token.clone_from(&repl.admin_token);
        }
    }
    if !given("ctl_creds") && !given("rpc_creds") && !given("nats_creds") {
        line.ctl_creds.clone_from(&repl.ctl_creds);
        line.rpc_creds.clone_from(&repl.rpc_creds);
        line.nats_creds.clone_from(&repl.nats_creds);
    }
    if !given("lattice") {
        line.lattice.clone_from(&repl.lattice);
    }
    if !given("control_key") {
        line.control_key.clone_from(&repl.control_key);
    }
    if !given("timeout") {
        line.timeout = repl.timeout;
    }
    if !given("output") {
        line.output = repl.output;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    /// The lattice flags of `trellis repl ARGS`.
    fn repl(args: &[&str]) -> LatticeArgs {
        let cli = crate::Cli::try_parse_from(["trellis", "repl"].iter().chain(args))
            .expect("repl flags parse");
        match cli.command {
            Command::Repl(args) => args.lattice,
            _ => panic!("not repl"),
        }
    }

    fn run(line: &str, defaults: &LatticeArgs) -> Command {
        match Parser::new().parse(line, defaults) {
            Line::Run(command) => *command,
            _ => panic!("`{line}` does not run"),
        }
    }

    fn lattice(command: &mut Command) -> &mut LatticeArgs {
        lattice_of(command).expect("a lattice command")
    }

    #[test]
    fn the_repl_flags_are_defaults_and_the_line_wins() {
        let defaults = repl(&[
            "--nats",
            "nats://10.0.0.1:4222",
            "--lattice",
            "prod",
            "--ctl-creds",
            "admin.creds",
        ]);
        let mut plain = run("get hosts", &defaults);
        let plain = lattice(&mut plain);
        assert_eq!(plain.nats.as_deref(), Some("nats://10.0.0.1:4222"));
        assert_eq!(plain.lattice, "prod");
        assert_eq!(plain.ctl_creds, Some(PathBuf::from("admin.creds")));

        let mut own = run(
            "get --lattice dev inventory --nats-creds other.creds",
            &defaults,
        );
        let own = lattice(&mut own);
        assert_eq!(own.lattice, "dev", "the line's flag wins");
        assert_eq!(own.nats.as_deref(), Some("nats://10.0.0.1:4222"));
        assert_eq!(own.nats_creds, Some(PathBuf::from("other.creds")));
        assert_eq!(own.ctl_creds, None, "credentials go together");

        let mut embedded = run("label put h a=b --embedded 127.0.0.1:9", &defaults);
        let embedded = lattice(&mut embedded);
        assert_eq!(embedded.embedded.as_deref(), Some("127.0.0.1:9"));
        assert_eq!(
            embedded.nats, None,
            "a target named on the line replaces the REPL's"
        );
    }

    #[test]
    fn hosts_are_refused_and_help_and_errors_are_claps() {
        let parser = Parser::new();
        let defaults = repl(&[]);
        for line in ["up app.yaml", "up", "host --nats x", "repl", "dev"] {
            assert!(
                matches!(parser.parse(line, &defaults), Line::Refused(_)),
                "{line}"
            );
        }
        match parser.parse("get --help", &defaults) {
            Line::Clap(e) => assert!(!e.use_stderr(), "help is printed on stdout"),
            _ => panic!("get --help"),
        }
        match parser.parse("get nothing", &defaults) {
            Line::Clap(e) => assert!(e.use_stderr()),
            _ => panic!("a usage error"),
        }
        assert!(matches!(parser.parse("  ", &defaults), Line::Empty));
        assert!(matches!(parser.parse("quit", &defaults), Line::Exit));
        assert!(matches!(
            parser.parse("get 'hosts", &defaults),
            Line::Invalid(_)
        ));
        assert!(matches!(
            parser.parse("call 'my comp' 'ns:pkg/i.f' '\"a b\"'", &defaults),
            Line::Run(_)
        ));
        let help = parser.help(&None);
        assert!(help.contains("  get "), "{help}");
        assert!(!help.contains("  up "), "{help}");
    }
}
