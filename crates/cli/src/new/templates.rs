//! The four templates of `trellis new`, made from the repository's examples.
//!
//! The examples (`examples/http-hello`, `kv-counter`, `messaging`, `greeter`) are the one copy
//! of each template's code: they are built by `scripts/build-guests` and served by the
//! integration tests as they stand, and this table embeds their files into the binary
//! (`include_str!`, so a change to an example rebuilds `trellis`) and lists the few edits that
//! turn one into a project of its own: the names, the image path (Cargo's own output instead
//! of the repository's `build/` folder), and the WIT the examples read from the repository's
//! `wit/`, which a project gets vendored under `wit/deps/`. Every edit must find its text in the
//! example, or rendering fails (and the unit tests do, at once), so an example cannot drift away
//! from its template unnoticed. Only the README is written for projects alone: the examples'
//! READMEs explain the repository.
//!
//! In edits and READMEs, `{name}` stands for the project's name and `{lib}` for its crate's
//! file name (`-` as `_`); in READMEs, `{id}` and `{back_id}` for the ids of the components
//! named `{name}` and `back` (as wadm derives ids: `my-app` gives `my_app-my_app`) and `{run}`
//! for the build-and-run section every README shares.

/// One file of a generated project.
pub(super) struct File {
    /// Its path in the project.
    pub path: &'static str,
    pub source: Source,
}

/// Where a file's text comes from.
pub(super) enum Source {
    /// A file of the repository (an example, or the WIT in `wit/`), with edits.
    Repo {
        /// Its path in the repository, for messages.
        from: &'static str,
        text: &'static str,
        edits: &'static [Edit],
    },
    /// Text written for generated projects (with the README placeholders).
    Own(&'static str),
}

/// Replace every `find` with `replace`; `find` must occur at least once.
pub(super) struct Edit {
    pub find: &'static str,
    pub replace: &'static str,
}

/// A template: its files, and its Cargo.lock.
pub(super) struct Spec {
    pub files: &'static [File],
    /// The example's `Cargo.lock` (its path and text).
    pub lock: (&'static str, &'static str),
    /// Each crate of the example, and its name in the project.
    pub crates: &'static [(&'static str, &'static str)],
}

/// A file of the repository, by its path from the repository root.
macro_rules! repo {
    ($path:literal, $edits:expr) => {
        Source::Repo {
            from: $path,
            text: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../", $path)),
            edits: $edits,
        }
    };
}

/// A file written for projects, from this folder.
macro_rules! own {
    ($path:literal) => {
        Source::Own(include_str!($path))
    };
}

/// The example's `Cargo.lock`.
macro_rules! lock {
    ($path:literal) => {
        (
            $path,
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../", $path)),
        )
    };
}

const fn edit(find: &'static str, replace: &'static str) -> Edit {
    Edit { find, replace }
}

/// The examples' manifests say how to build in the repository.
const BUILD_COMMENT: Edit = edit(
    "# Build the component first with `scripts/build-guests` (run from the repository root).",
    "# Build the component first, in this folder: `cargo build --release --target wasm32-wasip2`.",
);

/// Written into every project.
const GITIGNORE: File = File {
    path: ".gitignore",
    source: Source::Own(concat!(
        "/target/\n",
        "# What `trellis up` keeps beside the manifest: its control endpoint, the built-in\n",
        "# key-value store's file.\n",
        "/.trellis/\n",
    )),
};

pub(super) const HTTP: Spec = Spec {
    files: &[
        File {
            path: "Cargo.toml",
            source: repo!(
                "examples/http-hello/Cargo.toml",
                &[edit("name = \"http-hello\"", "name = \"{name}\"")]
            ),
        },
        File {
            path: "src/lib.rs",
            source: repo!("examples/http-hello/src/lib.rs", &[]),
        },
        File {
            path: "app.yaml",
            source: repo!(
                "examples/http-hello/app.yaml",
                &[
                    // The app, the component and the link's target.
                    edit("name: http-hello\n", "name: {name}\n"),
                    edit("the http-hello component", "the {name} component"),
                    edit(
                        "file://./build/http_hello.wasm",
                        "file://./target/wasm32-wasip2/release/{lib}.wasm",
                    ),
                    BUILD_COMMENT,
                ]
            ),
        },
        File {
            path: "README.md",
            source: own!("readme/http.md"),
        },
        GITIGNORE,
    ],
    lock: lock!("examples/http-hello/Cargo.lock"),
    crates: &[("http-hello", "{name}")],
};

pub(super) const KV_COUNTER: Spec = Spec {
    files: &[
        File {
            path: "Cargo.toml",
            source: repo!(
                "examples/kv-counter/Cargo.toml",
                &[edit("name = \"kv-counter\"", "name = \"{name}\"")]
            ),
        },
        File {
            path: "src/lib.rs",
            source: repo!(
                "examples/kv-counter/src/lib.rs",
                &[edit(
                    r#"path: ["../../wit/keyvalue", "../../wit/config", "wit"],"#,
                    r#"path: "wit","#,
                )]
            ),
        },
        File {
            path: "wit/world.wit",
            source: repo!("examples/kv-counter/wit/world.wit", &[]),
        },
        File {
            path: "wit/deps/keyvalue/keyvalue.wit",
            source: repo!("wit/keyvalue/keyvalue.wit", &[]),
        },
        File {
            path: "wit/deps/config/config.wit",
            source: repo!("wit/config/config.wit", &[]),
        },
        File {
            path: "app.yaml",
            source: repo!(
                "examples/kv-counter/app.yaml",
                &[
                    edit("  name: kv-counter\n", "  name: {name}\n"),
                    edit("the kv-counter component", "the {name} component"),
                    // The component and the link's target.
                    edit("name: counter\n", "name: {name}\n"),
                    edit(
                        "file://./build/kv_counter.wasm",
                        "file://./target/wasm32-wasip2/release/{lib}.wasm",
                    ),
                    BUILD_COMMENT,
                ]
            ),
        },
        File {
            path: "README.md",
            source: own!("readme/kv-counter.md"),
        },
        GITIGNORE,
    ],
    lock: lock!("examples/kv-counter/Cargo.lock"),
    crates: &[("kv-counter", "{name}")],
};

/// The messaging example's `local.yaml` (the in-process broker) is the project's `app.yaml`,
/// so that it runs without a NATS server.
pub(super) const MESSAGING: Spec = Spec {
    files: &[
        File {
            path: "Cargo.toml",
            source: repo!(
                "examples/messaging/Cargo.toml",
                &[edit("name = \"messaging-echo\"", "name = \"{name}\"")]
            ),
        },
        File {
            path: "src/lib.rs",
            source: repo!(
                "examples/messaging/src/lib.rs",
                &[edit(
                    r#"path: ["../../wit/messaging", "../../wit/logging", "wit"],"#,
                    r#"path: "wit","#,
                )]
            ),
        },
        File {
            path: "wit/world.wit",
            source: repo!("examples/messaging/wit/world.wit", &[]),
        },
        File {
            path: "wit/deps/messaging/messaging.wit",
            source: repo!("wit/messaging/messaging.wit", &[]),
        },
        File {
            path: "wit/deps/logging/logging.wit",
            source: repo!("wit/logging/logging.wit", &[]),
        },
        File {
            path: "app.yaml",
            source: repo!(
                "examples/messaging/local.yaml",
                &[
                    edit("  name: messaging-echo-local\n", "  name: {name}\n"),
                    edit("the messaging-echo component", "the {name} component"),
                    // The component and the link's target.
                    edit("name: echo\n", "name: {name}\n"),
                    edit(
                        "file://./build/messaging_echo.wasm",
                        "file://./target/wasm32-wasip2/release/{lib}.wasm",
                    ),
                    edit(
                        "It keeps the name `nats` so that this\n    # manifest differs from app.yaml only in the image.",
                        "README.md says how to\n    # run on NATS instead.",
                    ),
                    BUILD_COMMENT,
                ]
            ),
        },
        File {
            path: "README.md",
            source: own!("readme/messaging.md"),
        },
        GITIGNORE,
    ],
    lock: lock!("examples/messaging/Cargo.lock"),
    crates: &[("messaging-echo", "{name}")],
};

/// Two crates, `{name}-front` and `{name}-back`, in folders `front/` and `back/`; the
/// components keep the example's entry names, `front` and `back`.
pub(super) const GREETER: Spec = Spec {
    files: &[
        File {
            path: "Cargo.toml",
            source: repo!("examples/greeter/Cargo.toml", &[]),
        },
        File {
            path: "front/Cargo.toml",
            source: repo!(
                "examples/greeter/front/Cargo.toml",
                &[edit("name = \"greeter-front\"", "name = \"{name}-front\"")]
            ),
        },
        File {
            path: "front/src/lib.rs",
            source: repo!(
                "examples/greeter/front/src/lib.rs",
                &[edit(
                    r#"path: ["../../../wit/config", "../wit"],"#,
                    r#"path: "../wit","#
                )]
            ),
        },
        File {
            path: "back/Cargo.toml",
            source: repo!(
                "examples/greeter/back/Cargo.toml",
                &[edit("name = \"greeter-back\"", "name = \"{name}-back\"")]
            ),
        },
        File {
            path: "back/src/lib.rs",
            source: repo!(
                "examples/greeter/back/src/lib.rs",
                &[edit(
                    r#"path: ["../../../wit/config", "../wit"],"#,
                    r#"path: "../wit","#
                )]
            ),
        },
        File {
            path: "wit/greeter.wit",
            source: repo!("examples/greeter/wit/greeter.wit", &[]),
        },
        File {
            path: "wit/deps/config/config.wit",
            source: repo!("wit/config/config.wit", &[]),
        },
        File {
            path: "app.yaml",
            source: repo!(
                "examples/greeter/app.yaml",
                &[
                    edit("  name: greeter\n", "  name: {name}\n"),
                    edit(
                        "file://./build/greeter_front.wasm",
                        "file://./target/wasm32-wasip2/release/{lib}_front.wasm",
                    ),
                    edit(
                        "file://./build/greeter_back.wasm",
                        "file://./target/wasm32-wasip2/release/{lib}_back.wasm",
                    ),
                    edit(
                        "# Build the components first with `scripts/build-guests` (run from the repository root).",
                        "# Build the components first, in this folder: `cargo build --release --target wasm32-wasip2`.",
                    ),
                ]
            ),
        },
        File {
            path: "README.md",
            source: own!("readme/greeter.md"),
        },
        GITIGNORE,
    ],
    lock: lock!("examples/greeter/Cargo.lock"),
    crates: &[
        ("greeter-front", "{name}-front"),
        ("greeter-back", "{name}-back"),
    ],
};

/// The section every README has at `{run}`.
pub(super) const RUN: &str = include_str!("readme/run.md");
