//! `trellis new NAME [--template …] [--path DIR]`: writes a component project that builds
//! with `cargo build --release --target wasm32-wasip2` and runs with `trellis up app.yaml`
//! (or `trellis dev`), with nothing to copy in between: its manifest's `file://` image is
//! Cargo's own output.
//!
//! The templates are the repository's examples, embedded at build time; `templates.rs` says
//! why and how. This module checks the name and the folder, renders a template (its edits,
//! its Cargo.lock with the crates renamed) and writes it.

mod templates;

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use std::path::{Path, PathBuf};
use templates::{Source, Spec};
use trellis_manifest::derive_id;

/// `trellis new`.
#[derive(Args)]
#[command(after_help = "\
Examples:
  trellis new hello                          # an HTTP component in ./hello
  trellis new hello --template kv-counter    # a request counter in a key-value store
  trellis new shop --template greeter --path ~/src/shop

Then, in the project's folder: `cargo build --release --target wasm32-wasip2` and
`trellis up app.yaml` (its README.md says more).")]
pub(crate) struct NewArgs {
    /// The project's name: lowercase letters, digits, `-` and `_`, starting with a letter. It
    /// names the crate, the app and its component.
    name: String,

    /// What the component does.
    #[arg(long, value_enum, default_value = "http")]
    template: Template,

    /// The folder to write the project in; it must be new or empty [default: ./NAME].
    #[arg(long)]
    path: Option<PathBuf>,
}

/// The templates, one per example in the repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Template {
    /// Answers every HTTP request with a greeting (examples/http-hello).
    Http,
    /// Counts HTTP requests in Trellis's durable key-value store (examples/kv-counter).
    KvCounter,
    /// Answers messages, on Trellis's in-process broker or on NATS (examples/messaging).
    Messaging,
    /// Two components: `front` answers HTTP by calling `greet`, which `back` exports
    /// (examples/greeter).
    Greeter,
}

impl Template {
    fn spec(self) -> &'static Spec {
        match self {
            Self::Http => &templates::HTTP,
            Self::KvCounter => &templates::KV_COUNTER,
            Self::Messaging => &templates::MESSAGING,
            Self::Greeter => &templates::GREETER,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::KvCounter => "kv-counter",
            Self::Messaging => "messaging",
            Self::Greeter => "greeter",
        }
    }
}

/// `trellis new`: checks, renders, writes, and says what to do next.
pub(crate) fn run(args: NewArgs) -> anyhow::Result<()> {
    let name = Name::parse(&args.name, args.template)?;
    let files = render(args.template, &name)?;
    let dir = args.path.unwrap_or_else(|| PathBuf::from(&name.0));
    write(&dir, &files)?;

    let written: Vec<&str> = files.iter().map(|(path, _)| *path).collect();
    println!(
        "wrote {} (template {}): {}",
        dir.display(),
        args.template.name(),
        written.join(", ")
    );
    println!("next:");
    println!("  cd {}", dir.display());
    println!("  cargo build --release --target wasm32-wasip2");
    println!("  trellis up app.yaml        # or `trellis dev`: build, run, rebuild on changes");
    Ok(())
}

/// A project name that can name a crate, a wadm app and a component.
#[derive(Debug)]
struct Name(String);

impl Name {
    /// Checks `name` for `template`: the characters, and each crate name the template makes
    /// from it (not a Rust keyword, not a crate the template depends on).
    fn parse(name: &str, template: Template) -> anyhow::Result<Self> {
        let hint = "a project name has lowercase letters, digits, `-` and `_`, and starts with \
                    a letter (it names a Rust crate and a wadm app)";
        let Some(first) = name.chars().next() else {
            bail!("the project name is empty; {hint}, for example `trellis new hello`");
        };
        if let Some(bad) = name
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_')))
        {
            bail!(
                "`{name}` contains {bad:?}; {hint}: try `{}`",
                suggestion(name)
            );
        }
        if !first.is_ascii_lowercase() {
            bail!(
                "`{name}` does not start with a letter; {hint}: try `{}`",
                suggestion(name)
            );
        }
        let name = Self(name.to_owned());
        let spec = template.spec();
        let dependencies = lock_packages(spec.lock.1);
        for (_, pattern) in spec.crates {
            let crate_name = name.expand(pattern);
            let lib = crate_name.replace('-', "_");
            if RESERVED.split_whitespace().any(|word| word == lib) {
                bail!(
                    "`{crate_name}` cannot name a crate: it is a Rust keyword or the name of a \
                     standard library crate; choose another name, for example `{}-app`",
                    name.0
                );
            }
            if let Some(dependency) = dependencies.iter().find(|d| d.replace('-', "_") == lib) {
                bail!(
                    "`{crate_name}` cannot name the project's crate: the {} template depends on \
                     the crate `{dependency}`; choose another name, for example `my-{}`",
                    template.name(),
                    name.0
                );
            }
        }
        Ok(name)
    }

    /// The crate's file name: the name with `-` as `_`, as Cargo names the `.wasm`.
    fn lib(&self) -> String {
        self.0.replace('-', "_")
    }

    /// `text` with `{name}` and `{lib}` filled in.
    fn expand(&self, text: &str) -> String {
        text.replace("{name}", &self.0)
            .replace("{lib}", &self.lib())
    }
}

/// `name` made valid, for an error's suggestion: lowercase, anything else as `-`, and a
/// letter first.
fn suggestion(name: &str) -> String {
    let cleaned: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let cleaned = cleaned.trim_matches(['-', '_']);
    if cleaned.starts_with(|c: char| c.is_ascii_lowercase()) {
        cleaned.to_owned()
    } else if cleaned.is_empty() {
        "app".to_owned()
    } else {
        format!("app-{cleaned}")
    }
}

/// Rust keywords (strict and reserved, every edition) and the standard library's crates: a
/// crate of one of these names does not build, or shadows what it must not.
const RESERVED: &str = "\
   abstract alloc as async await become box break const continue core crate do dyn else enum \
   extern false final fn for gen if impl in let loop macro match mod move mut override priv \
   proc_macro pub ref return self static std struct super test trait true try type typeof \
   unsafe unsized use virtual where while yield";

/// The project's files, by path, in the template's order (Cargo.lock after the first).
fn render(template: Template, name: &Name) -> anyhow::Result<Vec<(&'static str, String)>> {
    let spec = template.spec();
    let out_of_step = |from: &str, what: String| {
        anyhow::anyhow!(
            "the {} template is out of step with {from}, which it is made from: {what} (a bug \
             in this build of trellis; the unit tests of crates/cli/src/new.rs show it)",
            template.name()
        )
    };
    let mut files = Vec::with_capacity(spec.files.len() + 1);
    for file in spec.files {
        let text = match &file.source {
            Source::Repo { from, text, edits } => {
                let mut text = (*text).to_owned();
                for edit in *edits {
                    if !text.contains(edit.find) {
                        return Err(out_of_step(from, format!("{:?} is not there", edit.find)));
                    }
                    text = text.replace(edit.find, &name.expand(edit.replace));
                }
                text
            }
            Source::Own(text) => name.expand(
                &text
                    .replace("{run}", templates::RUN.trim_end())
                    .replace("{id}", &derive_id(&name.0, &name.0))
                    .replace("{back_id}", &derive_id(&name.0, "back")),
            ),
        };
        files.push((file.path, text));
    }
    let (from, lock) = spec.lock;
    let renames: Vec<(&str, String)> = spec
        .crates
        .iter()
        .map(|(old, new)| (*old, name.expand(new)))
        .collect();
    let lock = rename_in_lock(lock, &renames).map_err(|e| out_of_step(from, format!("{e:#}")))?;
    files.insert(1, ("Cargo.lock", lock));
    Ok(files)
}

/// The name of the package a `[[package]]` block of a Cargo.lock describes.
fn package_name(block: &str) -> Option<&str> {
    block
        .lines()
        .find_map(|line| line.strip_prefix("name = \"")?.strip_suffix('"'))
}

/// Every package a Cargo.lock names.
fn lock_packages(lock: &str) -> Vec<&str> {
    lock.split("\n\n").filter_map(package_name).collect()
}

/// `lock` with each `(old, new)` package renamed, in the order Cargo writes (packages sorted
/// by name), so that building the project leaves its Cargo.lock as it is. Only packages no
/// other package depends on (the project's own crates) can be renamed.
fn rename_in_lock(lock: &str, renames: &[(&str, String)]) -> anyhow::Result<String> {
    let mut blocks: Vec<String> = lock
        .trim_end_matches('\n')
        .split("\n\n")
        .map(str::to_owned)
        .collect();
    let header = blocks.remove(0);
    if !header.contains("version = ") || blocks.iter().any(|b| !b.starts_with("[[package]]\n")) {
        bail!("Cargo.lock is not a header and `[[package]]` blocks");
    }
    let mut renamed = Vec::new();
    for (old, new) in renames {
        let at = blocks
            .iter()
            .position(|b| package_name(b) == Some(*old))
            .with_context(|| format!("Cargo.lock has no package `{old}`"))?;
        let block = blocks.remove(at);
        renamed.push(block.replacen(
            &format!("name = \"{old}\""),
            &format!("name = \"{new}\""),
            1,
        ));
    }
    for (old, _) in renames {
        let quoted = format!("\"{old}\"");
        if let Some(user) = blocks.iter().find(|b| b.contains(&quoted)) {
            bail!(
                "Cargo.lock's package `{}` refers to `{old}`",
                package_name(user).unwrap_or("?")
            );
        }
    }
    for block in renamed {
        let name = package_name(&block).unwrap_or_default().to_owned();
        let at = blocks
            .iter()
            .position(|b| package_name(b).is_some_and(|other| other > name.as_str()))
            .unwrap_or(blocks.len());
        blocks.insert(at, block);
    }
    Ok(format!("{header}\n\n{}\n", blocks.join("\n\n")))
}

/// Writes `files` into `dir`, which must be new or empty; a folder this made is removed again
/// when a write fails, so that running the command again is not refused.
fn write(dir: &Path, files: &[(&str, String)]) -> anyhow::Result<()> {
    let created = prepare(dir)?;
    let result = files.iter().try_for_each(|(path, text)| {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
    });
    if result.is_err() && created {
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

/// Makes sure `dir` is an empty folder; whether this created it.
fn prepare(dir: &Path) -> anyhow::Result<bool> {
    if !dir.exists() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the folder {}", dir.display()))?;
        return Ok(true);
    }
    if !dir.is_dir() {
        bail!(
            "{} exists and is not a folder; give the project another name, or say where to \
             write it with --path DIR",
            dir.display()
        );
    }
    let mut entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the folder {}", dir.display()))?;
    if entries.next().is_some() {
        bail!(
            "{} already exists and is not empty; trellis new writes only into a new or empty \
             folder: give the project another name, say where to write it with --path DIR, or \
             empty the folder first",
            dir.display()
        );
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Template; 4] = [
        Template::Http,
        Template::KvCounter,
        Template::Messaging,
        Template::Greeter,
    ];

    fn name(text: &str, template: Template) -> Name {
        Name::parse(text, template).expect("a valid name")
    }

    fn file<'a>(files: &'a [(&str, String)], path: &str) -> &'a str {
        files
            .iter()
            .find(|(p, _)| *p == path)
            .map(|(_, text)| text.as_str())
            .unwrap_or_else(|| panic!("no {path}"))
    }

    #[test]
    fn every_template_renders_and_keeps_nothing_of_the_repository() {
        for template in ALL {
            let files = render(template, &name("my-app", template))
                .unwrap_or_else(|e| panic!("{template:?}: {e:#}"));
            for (path, text) in &files {
                for leftover in [
                    "scripts/build-guests",
                    "../../wit",
                    "./build/",
                    "examples/",
                    "messaging-echo-local",
                ] {
                    assert!(
                        !text.contains(leftover),
                        "{template:?} {path} still has {leftover:?}:\n{text}"
                    );
                }
            }
            for (old, _) in template.spec().crates {
                for path in ["Cargo.toml", "Cargo.lock", "app.yaml"] {
                    assert!(
                        !file(&files, path).contains(&format!("\"{old}\"")),
                        "{template:?} {path} still names {old}"
                    );
                }
            }
            // Placeholders are filled in (the examples' code has `{name}` of its own).
            for path in ["README.md", "app.yaml", "Cargo.toml"] {
                for placeholder in ["{name}", "{lib}", "{id}", "{back_id}", "{run}"] {
                    assert!(
                        !file(&files, path).contains(placeholder),
                        "{template:?} {path} has {placeholder}"
                    );
                }
            }
            let readme = file(&files, "README.md");
            assert!(readme.starts_with("# my-app\n"), "{readme}");
            assert!(readme.contains("cargo build --release --target wasm32-wasip2"));
            assert!(readme.contains("trellis up app.yaml"));
            assert!(readme.contains("trellis dev"));
            assert!(file(&files, ".gitignore").contains("/target/"));
        }
    }

    #[test]
    fn the_lock_names_the_project_in_cargos_order() {
        for template in ALL {
            let files = render(template, &name("zz-top", template)).expect("render");
            let lock = file(&files, "Cargo.lock");
            let names = lock_packages(lock);
            let mut sorted = names.clone();
            sorted.sort_unstable();
            assert_eq!(names, sorted, "{template:?}");
            assert!(names.iter().any(|n| n.starts_with("zz-top")), "{names:?}");
            assert_eq!(
                names.len(),
                lock_packages(template.spec().lock.1).len(),
                "{template:?}"
            );
        }
    }

    #[test]
    fn renaming_in_a_lock_moves_the_package_to_its_place() {
        let lock = "# header\nversion = 4\n\n[[package]]\nname = \"b-dep\"\nversion = \"1.0.0\"\n\n\
                    [[package]]\nname = \"c-app\"\nversion = \"0.1.0\"\ndependencies = [\n \"b-dep\",\n]\n";
        let renamed = rename_in_lock(lock, &[("c-app", "a-app".to_owned())]).expect("rename");
        assert_eq!(
            renamed,
            "# header\nversion = 4\n\n[[package]]\nname = \"a-app\"\nversion = \"0.1.0\"\n\
             dependencies = [\n \"b-dep\",\n]\n\n[[package]]\nname = \"b-dep\"\nversion = \"1.0.0\"\n"
        );
        // A package another depends on cannot be renamed: its users would name it still.
        assert!(rename_in_lock(lock, &[("b-dep", "x".to_owned())]).is_err());
        assert!(rename_in_lock(lock, &[("nope", "x".to_owned())]).is_err());
    }

    #[test]
    fn each_manifest_is_a_valid_app_running_the_projects_own_build() {
        for template in ALL {
            let dir = tempfile::tempdir().expect("tempdir");
            let files = render(template, &name("my_app", template)).expect("render");
            write(dir.path(), &files).expect("write");
            // The manifest checks that its files exist: stand in for Cargo's output.
            let release = dir.path().join("target/wasm32-wasip2/release");
            std::fs::create_dir_all(&release).expect("mkdir");
            let stems: &[&str] = match template {
                Template::Greeter => &["my_app_front", "my_app_back"],
                _ => &["my_app"],
            };
            for stem in stems {
                std::fs::write(release.join(format!("{stem}.wasm")), b"").expect("touch");
            }
            let app = trellis_manifest::load(&dir.path().join("app.yaml"))
                .unwrap_or_else(|e| panic!("{template:?}: {e}"));
            assert_eq!(app.name, "my_app");
            let components: Vec<&str> = app.components.iter().map(|c| c.name.as_str()).collect();
            match template {
                Template::Greeter => assert_eq!(components, ["front", "back"]),
                _ => assert_eq!(components, ["my_app"]),
            }
            for component in &app.components {
                let trellis_manifest::ImageRef::File(path) = &component.image else {
                    panic!("{template:?}: {:?}", component.image);
                };
                assert!(path.starts_with(&release), "{}", path.display());
            }
            assert!(app.warnings.is_empty(), "{template:?}: {:?}", app.warnings);
        }
    }

    #[test]
    fn names_that_cannot_name_a_crate_and_an_app_are_refused() {
        for good in ["hello", "a", "my-app", "my_app2", "x-1_y"] {
            assert!(Name::parse(good, Template::Http).is_ok(), "{good}");
        }
        for (bad, says) in [
            ("", "empty"),
            ("Hello", "try `hello`"),
            ("my.app", "try `my-app`"),
            ("my app", "contains ' '"),
            ("1st", "does not start with a letter"),
            ("-x", "does not start with a letter"),
            ("_x", "does not start with a letter"),
            ("--", "try `app`"),
            ("fn", "Rust keyword"),
            ("std", "standard library"),
            ("wasi", "depends on the crate `wasi`"),
            ("wit_bindgen", "depends on the crate `wit-bindgen`"),
        ] {
            let err = Name::parse(bad, Template::KvCounter)
                .expect_err(bad)
                .to_string();
            assert!(err.contains(says), "{bad:?}: {err}");
        }
        // Greeter's crates are NAME-front and NAME-back, which no keyword is.
        assert!(Name::parse("fn", Template::Greeter).is_ok());
    }

    #[test]
    fn only_a_new_or_empty_folder_is_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = [("a.txt", "a".to_owned())];
        let fresh = dir.path().join("fresh/nested");
        write(&fresh, &files).expect("a new folder");
        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).expect("mkdir");
        write(&empty, &files).expect("an empty folder");
        let err = write(&fresh, &files).expect_err("not empty").to_string();
        assert!(err.contains("already exists and is not empty"), "{err}");
        assert!(err.contains("--path"), "{err}");
        let err = write(&fresh.join("a.txt"), &files)
            .expect_err("a file")
            .to_string();
        assert!(err.contains("is not a folder"), "{err}");
    }
}
