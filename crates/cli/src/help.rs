//! Help that teaches: `trellis --help` lists the commands grouped by task, and each
//! command's help ends with an example. Both come from [`GROUPS`], checked against the clap
//! definitions by a test, so a new command cannot be left out.

/// The commands by task, each with the example its help shows.
pub(crate) const GROUPS: &[(&str, &[(&str, &str)])] = &[
    (
        "Run",
        &[
            ("up", "trellis up app.yaml"),
            (
                "host",
                "trellis host --nats nats://127.0.0.1:4222 --label zone=eu-1",
            ),
        ],
    ),
    (
        "Develop",
        &[
            ("new", "trellis new hello --template kv-counter"),
            ("dev", "trellis dev            # app.yaml in this folder"),
            ("repl", "trellis repl"),
            (
                "call",
                "trellis call hello-greeter 'example:greeter/greet.hello' '\"world\"'",
            ),
            (
                "completions",
                "trellis completions bash > ~/.local/share/bash-completion/completions/trellis",
            ),
        ],
    ),
    (
        "Inspect",
        &[
            ("get", "trellis get inventory -o json"),
            ("events", "trellis events"),
            ("logs", "trellis logs -f --level warn"),
            (
                "dashboard",
                "trellis dashboard --nats nats://127.0.0.1:4222",
            ),
            ("inspect", "trellis inspect localhost:5000/demo/hello:0.1.0"),
        ],
    ),
    (
        "Operate",
        &[
            ("app", "trellis app deploy app.yaml"),
            ("scale", "trellis scale component hello-hello --count 10"),
            (
                "update",
                "trellis update component hello-hello file:///srv/hello-v2.wasm",
            ),
            (
                "start",
                "trellis start provider ghcr.io/wasmcloud/http-server:0.27.0 http",
            ),
            ("stop", "trellis stop component hello-hello"),
            ("link", "trellis link del hello-hello wasi:keyvalue"),
            ("config", "trellis config put db url=redis://127.0.0.1:6379"),
            ("secret", "trellis secret put api-key --file api-key.txt"),
            ("label", "trellis label put HOST zone=eu-1"),
            ("drain", "trellis drain HOST"),
        ],
    ),
    (
        "Images and security",
        &[
            (
                "push",
                "trellis push localhost:5000/demo/hello:0.1.0 build/hello.wasm",
            ),
            (
                "pull",
                "trellis pull localhost:5000/demo/hello:0.1.0 -o hello.wasm",
            ),
            ("lock", "trellis lock app.yaml"),
            (
                "claims",
                "trellis claims sign build/hello.wasm --issuer-key account.nk",
            ),
            ("creds", "trellis creds init ./lattice-creds"),
            ("control-key", "trellis control-key > control.nk"),
        ],
    ),
];

/// What every command's help ends with, and the root help's last lines.
const EXIT_CODES: &str = "Exit codes: 0 success; 1 failure (the message says what went wrong and what to do); 2 bad usage.";

/// The `trellis` command as clap parses it, with the grouped overview and the examples.
pub(crate) fn command(mut cmd: clap::Command) -> clap::Command {
    let mut overview = String::new();
    let width = GROUPS
        .iter()
        .flat_map(|(_, commands)| commands.iter().map(|(name, _)| name.len()))
        .max()
        .unwrap_or(0);
    for (group, commands) in GROUPS {
        overview.push_str(&format!("{group}:\n"));
        for (name, example) in *commands {
            let Some(sub) = cmd.find_subcommand(name) else {
                continue;
            };
            let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
            let first = about
                .split(". ")
                .next()
                .unwrap_or_default()
                .trim_end_matches('.');
            overview.push_str(&format!("  {name:<width$}  {first}\n"));
            let example = format!("Example:\n  {example}\n\n{EXIT_CODES}");
            cmd = cmd.mut_subcommand(name, |sub| sub.after_help(example));
        }
        overview.push('\n');
    }
    cmd.help_template(format!(
        "{{about}}\n\n{{usage-heading}} {{usage}}\n\n{overview}Options:\n{{options}}\n\nRun `trellis COMMAND --help` for a command's flags and an example.\n{EXIT_CODES}\n"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn every_command_is_in_one_group_with_an_example() {
        let cmd = crate::Cli::command();
        let listed: Vec<&str> = GROUPS
            .iter()
            .flat_map(|(_, commands)| commands.iter().map(|(name, _)| *name))
            .collect();
        for sub in cmd.get_subcommands() {
            let name = sub.get_name();
            if name == "help" {
                continue;
            }
            assert_eq!(
                listed.iter().filter(|l| **l == name).count(),
                1,
                "`{name}` must be in exactly one group of help::GROUPS"
            );
        }
        for name in listed {
            assert!(
                cmd.find_subcommand(name).is_some(),
                "help::GROUPS lists `{name}`, which is no command"
            );
        }
        for (_, commands) in GROUPS {
            for (name, example) in *commands {
                assert!(
                    example.starts_with(&format!("trellis {name}")),
                    "the example of `{name}` does not run it: {example}"
                );
            }
        }
    }

    /// An example that does not parse would teach a command that fails at once.
    #[test]
    fn every_example_parses() {
        for (_, commands) in GROUPS {
            for (name, example) in *commands {
                // What the shell keeps for itself: a comment, a redirection.
                let line = example.split(" #").next().unwrap_or_default();
                let line = line.split(" > ").next().unwrap_or_default();
                let words = shell_words::split(line).expect("example splits into words");
                if let Err(e) = command(crate::Cli::command()).try_get_matches_from(&words) {
                    panic!("the example of `{name}` does not parse: {example}\n{e}");
                }
            }
        }
    }

    #[test]
    fn the_overview_groups_commands_by_task() {
        let help = command(crate::Cli::command()).render_help().to_string();
        for heading in ["Run:", "Develop:", "Inspect:", "Operate:"] {
            assert!(help.contains(heading), "{help}");
        }
        let up = help.find("  up ").expect("up listed");
        let get = help.find("  get ").expect("get listed");
        assert!(up < get, "{help}");
    }
}
