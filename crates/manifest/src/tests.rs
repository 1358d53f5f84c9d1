//! Whole-manifest tests: the reference examples, and one test per rule and per error.

use super::*;
use std::collections::BTreeMap;
use trellis_control::{ComponentId, Link, LinkName, ProviderId};

const HELLO_WORLD: &str = include_str!("../testdata/http-hello-world.wadm.yaml");
const KEYVALUE_COUNTER: &str = include_str!("../testdata/http-keyvalue-counter.wadm.yaml");

/// Where manifests without `file://` images claim to come from.
const ORIGIN: &str = "/apps/test/wadm.yaml";

/// A manifest of application `test-app` whose `spec.components` items are `components`
/// (indented by four spaces; the first item is on line 7).
fn manifest(components: &str) -> String {
    format!(
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: test-app\nspec:\n  components:\n{components}"
    )
}

fn parse_ok(source: &str) -> Application {
    parse(source, Path::new(ORIGIN))
        .unwrap_or_else(|e| panic!("expected the manifest to parse:\n{e}"))
}

fn parse_err(source: &str) -> ManifestError {
    match parse(source, Path::new(ORIGIN)) {
        Ok(app) => panic!("expected an error, got {app:#?}"),
        Err(e) => e,
    }
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

const GREETER: &str = "    - name: greeter
      type: component
      properties:
        image: ghcr.io/example/greeter:0.1.0
";

const HTTPSERVER: &str = "    - name: httpserver
      type: capability
      properties:
        image: ghcr.io/wasmcloud/http-server:0.27.0
";

// --- the reference examples -------------------------------------------------------------

#[test]
fn hello_world_example_normalises() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest_path = dir.path().join("wadm.yaml");
    std::fs::write(&manifest_path, HELLO_WORLD).expect("write manifest");
    std::fs::create_dir(dir.path().join("build")).expect("mkdir build");
    let wasm = dir.path().join("build/http_hello_world_s.wasm");
    std::fs::write(&wasm, b"").expect("write wasm");

    let app = load(&manifest_path).unwrap_or_else(|e| panic!("{e}"));

    let expected = Application {
        name: "rust-hello-world".into(),
        version: None,
        description: Some(
            "HTTP hello world demo in Rust, using the WebAssembly Component Model and WebAssembly Interfaces Types (WIT)"
                .into(),
        ),
        annotations: app.annotations.clone(),
        labels: BTreeMap::new(),
        manifest_path: manifest_path.clone(),
        components: vec![Component {
            name: "http-component".into(),
            id: ComponentId::new("rust_hello_world-http_component"),
            image: ImageRef::File(wasm),
            scale: Scale { kind: ScalerKind::Spread, instances: 1, spread: vec![] },
            config: vec![],
            line: 15,
        }],
        providers: vec![Provider {
            name: "httpserver".into(),
            id: ProviderId::new("rust_hello_world-httpserver"),
            image_ref: "ghcr.io/wasmcloud/http-server:0.27.0".into(),
            builtin: Some(Builtin::HTTP_SERVER),
            scale: Scale::default(),
            config: vec![],
            line: 28,
        }],
        links: vec![LinkSpec {
            source: "httpserver".into(),
            target: "http-component".into(),
            link: Link {
                source_id: "rust_hello_world-httpserver".into(),
                target: "rust_hello_world-http_component".into(),
                name: LinkName::default(),
                wit_namespace: "wasi".into(),
                wit_package: "http".into(),
                interfaces: vec!["incoming-handler".into()],
                source_config: vec!["default-http".into()],
                target_config: vec![],
            },
            line: 45,
        }],
        configs: BTreeMap::from([("default-http".to_owned(), map(&[("address", "0.0.0.0:8000")]))]),
        warnings: Vec::new(),
        revealed: BTreeMap::new(),
    };
    assert_eq!(app, expected);
    assert_eq!(app.annotations.len(), 6);
    assert_eq!(app.annotations["wasmcloud.dev/authors"], "wasmCloud team");
    assert_eq!(
        app.annotations["wasmcloud.dev/categories"],
        "http,http-server,rust,hello-world,example\n"
    );
}

#[test]
fn keyvalue_counter_example_normalises() {
    let app = parse(KEYVALUE_COUNTER, Path::new("examples/kv/wadm.yaml"))
        .unwrap_or_else(|e| panic!("{e}"));

    let expected = Application {
        name: "rust-http-kv".into(),
        version: Some("v0.0.1".into()),
        description: Some(
            "HTTP counter demo in Rust, using the WebAssembly Component Model and WebAssembly Interfaces Types (WIT)"
                .into(),
        ),
        annotations: app.annotations.clone(),
        labels: BTreeMap::new(),
        manifest_path: PathBuf::from("examples/kv/wadm.yaml"),
        components: vec![Component {
            name: "counter".into(),
            id: ComponentId::new("rust_http_kv-counter"),
            image: ImageRef::Remote("ghcr.io/wasmcloud/components/http-keyvalue-counter-rust:0.1.0".into()),
            scale: Scale { kind: ScalerKind::Spread, instances: 1, spread: vec![] },
            config: vec![],
            line: 16,
        }],
        providers: vec![
            Provider {
                name: "kvredis".into(),
                id: ProviderId::new("rust_http_kv-kvredis"),
                image_ref: "ghcr.io/wasmcloud/keyvalue-redis:0.30.0".into(),
                builtin: Builtin::from_name("keyvalue-redis"),
                scale: Scale::default(),
                config: vec![],
                line: 45,
            },
            Provider {
                name: "httpserver".into(),
                id: ProviderId::new("rust_http_kv-httpserver"),
                image_ref: "ghcr.io/wasmcloud/http-server:0.27.0".into(),
                builtin: Some(Builtin::HTTP_SERVER),
                scale: Scale::default(),
                config: vec![],
                line: 59,
            },
        ],
        links: vec![
            LinkSpec {
                source: "counter".into(),
                target: "kvredis".into(),
                link: Link {
                    source_id: "rust_http_kv-counter".into(),
                    target: "rust_http_kv-kvredis".into(),
                    name: LinkName::default(),
                    wit_namespace: "wasi".into(),
                    wit_package: "keyvalue".into(),
                    interfaces: vec!["atomics".into(), "store".into()],
                    source_config: vec![],
                    target_config: vec!["redis-url".into()],
                },
                line: 32,
            },
            LinkSpec {
                source: "httpserver".into(),
                target: "counter".into(),
                link: Link {
                    source_id: "rust_http_kv-httpserver".into(),
                    target: "rust_http_kv-counter".into(),
                    name: LinkName::default(),
                    wit_namespace: "wasi".into(),
                    wit_package: "http".into(),
                    interfaces: vec!["incoming-handler".into()],
                    source_config: vec!["default-http".into()],
                    target_config: vec![],
                },
                line: 79,
            },
        ],
        configs: BTreeMap::from([
            ("default-http".to_owned(), map(&[("address", "0.0.0.0:8000")])),
            ("redis-url".to_owned(), map(&[("url", "redis://0.0.0.0:6379")])),
        ]),
        warnings: Vec::new(),
        revealed: BTreeMap::new(),
    };
    assert_eq!(app, expected);
}

#[test]
fn hello_world_example_needs_its_build() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest_path = dir.path().join("wadm.yaml");
    std::fs::write(&manifest_path, HELLO_WORLD).expect("write manifest");

    let err = load(&manifest_path).expect_err("the wasm file is missing");
    let base = std::path::absolute(dir.path()).expect("absolute");
    assert_eq!(err.kind, ErrorKind::MissingFile);
    assert_eq!((err.line, err.column), (Some(18), Some(9)));
    assert_eq!(err.path, "spec.components[0].properties.image");
    assert_eq!(
        err.message,
        format!(
            "component `http-component`: image `file://./build/http_hello_world_s.wasm` resolves to `{}`, which does not exist",
            base.join("build/http_hello_world_s.wasm").display()
        )
    );
    assert_eq!(
        err.hint.as_deref(),
        Some(
            format!(
                "file:// paths are relative to the manifest's folder (`{}`); build the component first \
                 (for example `cargo build --release --target wasm32-wasip2`) or fix the path",
                base.display()
            )
            .as_str()
        )
    );
}

#[test]
fn serialises_to_json() {
    let app = parse_ok(KEYVALUE_COUNTER);
    let json = serde_json::to_value(&app).expect("serialise");
    assert_eq!(
        json["components"][0]["image"],
        serde_json::json!({"remote": "ghcr.io/wasmcloud/components/http-keyvalue-counter-rust:0.1.0"})
    );
    assert_eq!(json["components"][0]["scale"]["kind"], "spread");
    assert_eq!(json["providers"][0]["builtin"], "keyvalue-redis");
    assert_eq!(json["links"][0]["link"]["target"], "rust_http_kv-kvredis");
}

#[test]
fn json_manifests_parse() {
    let json = r#"{
  "apiVersion": "core.oam.dev/v1beta1",
  "kind": "Application",
  "metadata": {"name": "json-app", "annotations": {}},
  "spec": {
    "components": [
      {"name": "web", "type": "component", "properties": {"image": "ghcr.io/example/web:1"},
       "traits": [{"type": "spreadscaler", "properties": {"instances": 3}}]},
      {"name": "api", "type": "component", "properties": {"image": "ghcr.io/example/api:1"},
       "traits": [{"type": "link", "properties": {"target": {"name": "wbe"}, "namespace": "wasi", "package": "http", "interfaces": ["outgoing-handler"]}}]}
    ]
  }
}"#;
    let err = parse_err(json);
    assert_eq!(
        err.to_string(),
        format!(
            "{ORIGIN}:10:62: spec.components[1].traits[0].properties.target.name: link target `wbe` is not an entry of this manifest; the entries are `web` and `api`\n  hint: did you mean `web`?"
        )
    );
    let app = parse_ok(&json.replace("wbe", "web"));
    assert_eq!(app.components[0].scale.instances, 3);
    assert_eq!(app.components[1].line, 9);
    assert_eq!(app.links[0].link.target, "json_app-web");
}

// --- rules ------------------------------------------------------------------------------

#[test]
fn ids_default_to_app_and_entry_name_or_the_id_property() {
    let app = parse_ok(&manifest(&format!(
        "{GREETER}    - name: Http.Server
      type: capability
      properties:
        image: ghcr.io/wasmcloud/http-server:0.27.0
        id: my-server
    - name: Other.Thing
      type: component
      properties:
        image: ghcr.io/example/other:1
"
    )));
    assert_eq!(app.components[0].id.as_str(), "test_app-greeter");
    assert_eq!(app.providers[0].id.as_str(), "my-server");
    assert_eq!(app.components[1].id.as_str(), "test_app-other_thing");
}

#[test]
fn scalers_spreads_and_defaults() {
    let app = parse_ok(&manifest(
        "    - name: greeter
      type: component
      properties:
        image: ghcr.io/example/greeter:0.1.0
      traits:
        - type: daemonscaler
          properties:
            replicas: 2
            spread:
              - name: east
                requirements: {zone: us-east-1}
                weight: 80
              - name: anywhere
                requirements: {}
    - name: idle
      type: component
      properties:
        image: ghcr.io/example/idle:0.1.0
",
    ));
    assert_eq!(
        app.components[0].scale,
        Scale {
            kind: ScalerKind::Daemon,
            instances: 2,
            spread: vec![
                Spread {
                    name: "east".into(),
                    requirements: map(&[("zone", "us-east-1")]),
                    weight: 80
                },
                Spread {
                    name: "anywhere".into(),
                    requirements: BTreeMap::new(),
                    weight: 100
                },
            ],
        }
    );
    // No scaler trait: one instance anywhere.
    assert_eq!(
        app.components[1].scale,
        Scale {
            kind: ScalerKind::Spread,
            instances: 1,
            spread: vec![]
        }
    );
}

#[test]
fn zero_instances_are_allowed() {
    let app = parse_ok(&manifest(&format!(
        "{GREETER}      traits:\n        - type: spreadscaler\n          properties: {{instances: 0}}\n"
    )));
    assert_eq!(app.components[0].scale.instances, 0);
}

#[test]
fn links_in_the_older_form() {
    let app = parse_ok(&manifest(&format!(
        "{GREETER}      traits:
        - type: link
          properties:
            target: kv
            name: cache
            namespace: wasi
            package: keyvalue
            interfaces: [store]
            source_config:
              - name: greeter-kv
                properties: {{bucket: greetings}}
            target_config:
              - name: redis-url
                properties: {{url: 'redis://127.0.0.1:6379'}}
              - name: shared-secret-config
    - name: kv
      type: capability
      properties:
        image: ghcr.io/wasmcloud/keyvalue-redis:0.30.0
"
    )));
    let link = &app.links[0];
    assert_eq!(
        (link.source.as_str(), link.target.as_str()),
        ("greeter", "kv")
    );
    assert_eq!(link.line, 12);
    assert_eq!(
        link.link,
        Link {
            source_id: "test_app-greeter".into(),
            target: "test_app-kv".into(),
            name: LinkName::new("cache"),
            wit_namespace: "wasi".into(),
            wit_package: "keyvalue".into(),
            interfaces: vec!["store".into()],
            source_config: vec!["greeter-kv".into()],
            target_config: vec!["redis-url".into(), "shared-secret-config".into()],
        }
    );
    // Config without properties is managed elsewhere and is not collected.
    assert_eq!(
        app.configs,
        BTreeMap::from([
            ("greeter-kv".to_owned(), map(&[("bucket", "greetings")])),
            (
                "redis-url".to_owned(),
                map(&[("url", "redis://127.0.0.1:6379")])
            ),
        ])
    );
}

#[test]
fn config_on_entries_is_collected_and_scalars_become_strings() {
    let app = parse_ok(&manifest(
        "    - name: greeter
      type: component
      properties:
        image: ghcr.io/example/greeter:0.1.0
        config:
          - name: greeting
            properties:
              text: hello
              repeat: 3
              loud: true
              ratio: 0.5
          - name: external
    - name: httpserver
      type: capability
      properties:
        image: ghcr.io/wasmcloud/http-server:0.27.0
        config:
          - name: greeting
            properties: {ratio: '0.5', loud: 'true', repeat: '3', text: hello}
",
    ));
    assert_eq!(app.components[0].config, ["greeting", "external"]);
    assert_eq!(app.providers[0].config, ["greeting"]);
    assert_eq!(
        app.configs,
        BTreeMap::from([(
            "greeting".to_owned(),
            map(&[
                ("text", "hello"),
                ("repeat", "3"),
                ("loud", "true"),
                ("ratio", "0.5")
            ])
        )])
    );
}

#[test]
fn file_images_resolve_relative_and_absolute() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = std::path::absolute(dir.path()).expect("absolute");
    std::fs::write(base.join("a.wasm"), b"").expect("write");
    std::fs::create_dir(base.join("build")).expect("mkdir");
    std::fs::write(base.join("build/b.wasm"), b"").expect("write");
    let abs = base.join("build/b.wasm");
    let source = manifest(&format!(
        "    - name: a
      type: component
      properties:
        image: file://a.wasm
    - name: b
      type: component
      properties:
        image: file://./build/b.wasm
    - name: c
      type: component
      properties:
        image: file://{}
",
        abs.display()
    ));
    let app = parse(&source, &base.join("wadm.yaml")).unwrap_or_else(|e| panic!("{e}"));
    let images: Vec<&ImageRef> = app.components.iter().map(|c| &c.image).collect();
    assert_eq!(
        images,
        [
            &ImageRef::File(base.join("a.wasm")),
            &ImageRef::File(abs.clone()),
            &ImageRef::File(abs)
        ]
    );
}

#[test]
fn a_relative_origin_resolves_against_the_current_directory() {
    let source = manifest(
        "    - name: a\n      type: component\n      properties:\n        image: file://Cargo.toml\n",
    );
    // Tests run in the crate folder, which has a Cargo.toml to stand in for a component.
    let app = parse(&source, Path::new("wadm.yaml")).unwrap_or_else(|e| panic!("{e}"));
    let cwd = std::env::current_dir().expect("cwd");
    assert_eq!(
        app.components[0].image,
        ImageRef::File(cwd.join("Cargo.toml"))
    );
}

#[test]
fn unknown_provider_images_are_not_builtin() {
    let app = parse_ok(&manifest(
        "    - name: custom\n      type: capability\n      properties:\n        image: ghcr.io/example/custom-provider:1.0.0\n",
    ));
    assert_eq!(app.providers[0].builtin, None);
    assert_eq!(
        app.providers[0].image_ref,
        "ghcr.io/example/custom-provider:1.0.0"
    );
}

#[test]
fn labels_and_actor_entries_are_accepted() {
    let source = "apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: old_style
  labels:
    team.example.com/owner: platform
spec:
  policies: []
  components:
    - name: greeter
      type: actor
      properties:
        image: ghcr.io/example/greeter:0.1.0
        id: null
        secrets: []
      traits: null
";
    let app = parse_ok(source);
    assert_eq!(app.labels, map(&[("team.example.com/owner", "platform")]));
    assert_eq!(app.components[0].id.as_str(), "old_style-greeter");
}

#[test]
fn links_binding_different_interfaces_may_share_a_name() {
    let app = parse_ok(&manifest(&format!(
        "{GREETER}      traits:
        - type: link
          properties: {{target: kv, namespace: wasi, package: keyvalue, interfaces: [store]}}
        - type: link
          properties: {{target: kv2, namespace: wasi, package: keyvalue, interfaces: [atomics]}}
    - name: kv
      type: capability
      properties:
        image: ghcr.io/wasmcloud/keyvalue-redis:0.30.0
    - name: kv2
      type: capability
      properties:
        image: ghcr.io/wasmcloud/keyvalue-nats:0.3.0
"
    )));
    assert_eq!(app.links.len(), 2);
    assert_eq!(
        app.providers[1].builtin,
        Builtin::from_name("keyvalue-nats")
    );
}

// --- errors -----------------------------------------------------------------------------

#[test]
fn malformed_yaml() {
    let err = parse_err(&manifest(&format!(
        "{GREETER}      traits:\n        - type: spreadscaler\n       properties: {{}}\n"
    )));
    assert_eq!(err.kind, ErrorKind::Syntax);
    assert_eq!(
        err.to_string(),
        format!(
            "{ORIGIN}:13:8: did not find expected key, while parsing a block mapping at line 7 column 7\n  hint: YAML is indentation-sensitive: check the indentation and quoting at this line"
        )
    );
}

#[test]
fn unclosed_flow_sequence() {
    let err = parse_err("apiVersion: [core.oam.dev/v1beta1\nkind: Application\n");
    assert_eq!(err.kind, ErrorKind::Syntax);
    assert_eq!(err.line, Some(2));
}

#[test]
fn empty_document() {
    let err = parse_err("");
    assert_eq!(
        err.to_string(),
        format!(
            "{ORIGIN}: the manifest is empty\n  hint: a wadm manifest starts with `apiVersion: core.oam.dev/v1beta1` and `kind: Application`"
        )
    );
    assert_eq!(
        parse_err("# nothing yet\n").message,
        "the manifest is empty"
    );
}

/// The one warning of `app`, rendered.
fn only_warning(app: &Application) -> String {
    assert_eq!(app.warnings.len(), 1, "{:#?}", app.warnings);
    assert_eq!(app.warnings[0].kind, ErrorKind::Ignored);
    app.warnings[0].to_string()
}

#[test]
fn unknown_field_is_a_warning_as_in_wadm() {
    let app = parse_ok(&manifest(
        "    - name: greeter\n      type: component\n      properties:\n        image: ghcr.io/example/greeter:0.1.0\n        imagePullPolicy: Always\n",
    ));
    assert_eq!(
        only_warning(&app),
        format!(
            "{ORIGIN}:11:9: spec.components[0].properties.imagePullPolicy: unknown field `imagePullPolicy`, expected one of `image`, `id`, `config`, `secrets`, `application`; ignored, as wadm does"
        )
    );
    assert_eq!(
        app.components[0].image,
        ImageRef::Remote("ghcr.io/example/greeter:0.1.0".into())
    );
}

#[test]
fn unknown_link_source_key_is_a_warning() {
    // wasmCloud's keyvalue-messaging example writes `name:` under a link's `source`.
    let app = parse_ok(&manifest(&format!(
        "{GREETER}      traits:
        - type: link
          properties:
            target: kv
            namespace: wasi
            package: keyvalue
            interfaces: [store]
            source:
              name: greeter
              config: [{{name: kv-url, properties: {{url: redis://127.0.0.1:6379}}}}]
    - name: kv
      type: capability
      properties:
        image: ghcr.io/wasmcloud/keyvalue-redis:0.30.0
"
    )));
    assert_eq!(
        only_warning(&app),
        format!(
            "{ORIGIN}:19:15: spec.components[0].traits[0].properties.source.name: unknown field `name`, expected `config` or `secrets`; ignored, as wadm does"
        )
    );
    assert_eq!(app.links[0].link.source_config, ["kv-url"]);
}

#[test]
fn a_misspelt_required_field_is_an_error_that_names_the_ignored_key() {
    let err = parse_err(&manifest(&format!(
        "{GREETER}      traits:\n        - type: spreadscaler\n          properties:\n            instance: 2\n"
    )));
    assert_eq!(
        err.to_string(),
        format!(
            "{ORIGIN}:13:11: spec.components[0].traits[0].properties.instances: missing field `instances`\n  hint: `instance` (line 14) is not a field here and was ignored: did you mean `instances`?"
        )
    );
}

#[test]
fn unknown_top_level_field_is_a_warning() {
    let app = parse_ok(&format!("{}status: deployed\n", manifest(GREETER)));
    assert_eq!(
        only_warning(&app),
        format!(
            "{ORIGIN}:11:1: status: unknown field `status`, expected one of `apiVersion`, `kind`, `metadata`, `spec`; ignored, as wadm does"
        )
    );
}

#[test]
fn a_manifest_with_nothing_unknown_has_no_warnings() {
    assert!(parse_ok(&manifest(GREETER)).warnings.is_empty());
}

#[test]
fn unknown_entry_type() {
    let err = parse_err(&manifest(
        "    - name: greeter\n      type: provider\n      properties:\n        image: x\n",
    ));
    assert_eq!(
        err.to_string(),
        format!(
            "{ORIGIN}:8:7: spec.components[0].type: unknown variant `provider`, expected `component` or `capability`\n  hint: an entry is `type: component` (a WebAssembly component) or `type: capability` (a capability provider)"
        )
    );
}

#[test]
fn wrong_api_version() {
    let err =
        parse_err(&manifest(GREETER).replace("core.oam.dev/v1beta1", "core.oam.dev/v1alpha1"));
    assert_eq!(
        err.to_string(),
        format!(
            "{ORIGIN}:1:1: apiVersion: unsupported apiVersion `core.oam.dev/v1alpha1`; wadm manifests are `core.oam.dev/v1beta1`\n  hint: set `apiVersion: core.oam.dev/v1beta1`"
        )
    );
}

#[test]
fn wrong_kind() {
    let err = parse_err(&manifest(GREETER).replace("kind: Application", "kind: Deployment"));
    assert_eq!(
        err.to_string(),
        format!(
            "{ORIGIN}:2:1: kind: unsupported kind `Deployment`; wadm manifests are of kind `Application`\n  hint: set `kind: Application`"
        )
    );
}

#[test]
fn missing_api_version() {
    let err = parse_err(&manifest(GREETER).replace("apiVersion: core.oam.dev/v1beta1\n", ""));
    assert_eq!(err.path, "apiVersion");
    assert_eq!(err.message, "missing field `apiVersion`");
    assert_eq!(
        err.hint.as_deref(),
        Some(
            "a wadm manifest starts with `apiVersion: core.oam.dev/v1beta1` and `kind: Application`"
        )
    );
}

#[test]
fn missing_metadata_name() {
    let err = parse_err(&manifest(GREETER).replace("  name: test-app\n", "  annotations: {}\n"));
    assert_eq!(err.kind, ErrorKind::Schema);
    assert_eq!(
        err.to_string(),
        format!("{ORIGIN}:3:1: metadata.name: missing field `name`")
    );
}

#[test]
fn empty_or_invalid_application_name() {
    let err = parse_err(&manifest(GREETER).replace("name: test-app", "name: ''"));
    assert_eq!(
        err.to_string(),
        format!(
            "{ORIGIN}:4:3: metadata.name: the application name is empty\n  hint: name the application, for example `name: hello-world`"
        )
    );
    let err = parse_err(&manifest(GREETER).replace("name: test-app", "name: my.app"));
    assert_eq!(
        err.to_string(),
        format!(
            "{ORIGIN}:4:3: metadata.name: the application name `my.app` contains '.'; only letters, digits, `-` and `_` are allowed\n  hint: for example `my-app`"
        )
    );
}

#[test]
fn latest_is_not_a_version() {
    let source = manifest(GREETER).replace(
        "  name: test-app\n",
        "  name: test-app\n  annotations:\n    version: latest\n",
    );
    let err = parse_err(&source);
    assert_eq!(err.path, "metadata.annotations.version");
    assert_eq!(err.line, Some(6));
    assert_eq!(
        err.message,
        "`latest` is reserved and cannot be an application version"
    );
}

#[test]
fn invalid_annotation_key() {
    let source = manifest(GREETER).replace(
        "  name: test-app\n",
        "  name: test-app\n  annotations:\n    'bad key': x\n",
    );
    let err = parse_err(&source);
    assert_eq!(err.path, "metadata.annotations.bad key");
    assert_eq!(err.line, Some(6));
    assert_eq!(err.message, "`bad key` is not a valid OAM annotation key");
}

#[test]
fn duplicate_entry_names() {
    let err = parse_err(&manifest(&format!(
        "{GREETER}{HTTPSERVER}{}",
        GREETER.replace("greeter:0.1.0", "greeter:0.2.0")
    )));
    assert_eq!(
        err.to_string(),
        format!(
            "{ORIGIN}:15:7: spec.components[2].name: duplicate name `greeter`: spec.components[0] (line 7) has the same name\n  hint: every component and capability needs a unique name; links refer to entries by it"
        )
    );
}

#[test]
fn duplicate_ids() {
    // `greeter` derives `test_app-greeter`; the provider claims the same id explicitly.
    let err = parse_err(&manifest(&format!(
        "{GREETER}{HTTPSERVER}        id: test_app-greeter\n"
    )));
    assert_eq!(
        err.to_string(),
        format!(
            "{ORIGIN}:15:9: spec.components[1].properties.id: duplicate id `test_app-greeter`: `greeter` at spec.components[0] (line 7) has the same id\n  hint: ids are `{{app}}-{{entry}}` (each part lower-cased, letters and digits kept, everything else turned into `_`) unless set with the `id` property; set a distinct `id`"
        )
    );
    // Two names that derive the same id.
    let err = parse_err(&manifest(&format!(
        "{GREETER}{}",
        GREETER.replace("name: greeter", "name: Greeter")
    )));
    assert_eq!(err.path, "spec.components[1].name");
    assert_eq!(
        err.message,
        "duplicate id `test_app-greeter`: `greeter` at spec.components[0] (line 7) has the same id"
    );
}

#[test]
fn link_to_an_unknown_entry() {
    let source = manifest(&format!(
        "{GREETER}{HTTPSERVER}      traits:
        - type: link
          properties:
            target:
              name: greter
            namespace: wasi
            package: http
            interfaces: [incoming-handler]
"
    ));
    let err = parse_err(&source);
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert_eq!(
        err.to_string(),
        format!(
            "{ORIGIN}:19:15: spec.components[1].traits[0].properties.target.name: link target `greter` is not an entry of this manifest; the entries are `greeter` and `httpserver`\n  hint: did you mean `greeter`?"
        )
    );
    let err = parse_err(&source.replace("greter", "database"));
    assert_eq!(
        err.hint.as_deref(),
        Some("a link's target is the `name` of a component or capability in spec.components")
    );
}

#[test]
fn unknown_trait_type() {
    let err = parse_err(&manifest(&format!(
        "{GREETER}      traits:\n        - type: spreadscalar\n          properties: {{instances: 1}}\n"
    )));
    assert_eq!(
        err.to_string(),
        format!(
            "{ORIGIN}:12:11: spec.components[0].traits[0].type: unknown trait type `spreadscalar`; supported types are `spreadscaler`, `daemonscaler` and `link`\n  hint: did you mean `spreadscaler`?"
        )
    );
    let err = parse_err(&manifest(&format!(
        "{GREETER}      traits:\n        - type: autoscaler\n          properties: {{}}\n"
    )));
    assert_eq!(
        err.hint.as_deref(),
        Some("custom traits are not supported by Trellis")
    );
}

#[test]
fn scaler_instances_must_be_a_number() {
    let err = parse_err(&manifest(&format!(
        "{HTTPSERVER}      traits:\n        - type: spreadscaler\n          properties:\n            instances: two\n"
    )));
    assert_eq!(
        err.to_string(),
        format!(
            "{ORIGIN}:14:13: spec.components[0].traits[0].properties.instances: invalid type: string \"two\", expected u32\n  hint: `instances` is a whole number of instances, such as `instances: 1`"
        )
    );
    let err = parse_err(&manifest(&format!(
        "{HTTPSERVER}      traits:\n        - type: daemonscaler\n          properties: {{replicas: -1}}\n"
    )));
    assert_eq!(err.path, "spec.components[0].traits[0].properties.replicas");
    assert_eq!(err.message, "invalid value: integer `-1`, expected u32");
}

#[test]
fn two_scalers() {
    let err = parse_err(&manifest(&format!(
        "{GREETER}      traits:
        - type: spreadscaler
          properties: {{instances: 1}}
        - type: daemonscaler
          properties: {{instances: 1}}
"
    )));
    assert_eq!(
        err.to_string(),
        format!(
            "{ORIGIN}:14:11: spec.components[0].traits[1].type: `greeter` already has a scaler at spec.components[0].traits[0] (line 12); an entry takes one spreadscaler or one daemonscaler\n  hint: remove one of the scaler traits"
        )
    );
}

#[test]
fn component_image_that_is_neither_file_nor_oci() {
    let err = parse_err(&manifest(&GREETER.replace(
        "ghcr.io/example/greeter:0.1.0",
        "https://example.com/greeter.wasm",
    )));
    assert_eq!(
        err.to_string(),
        format!(
            "{ORIGIN}:10:9: spec.components[0].properties.image: component `greeter`: `https://example.com/greeter.wasm` is neither a file:// path nor an OCI reference (the `https://` scheme is not supported)\n  hint: use `file://./path/to/component.wasm` (relative to the manifest's folder) for a local build, or an OCI reference such as `ghcr.io/org/component:0.1.0`"
        )
    );
    let err = parse_err(&manifest(
        &GREETER.replace("ghcr.io/example/greeter:0.1.0", "./build/greeter.wasm"),
    ));
    assert_eq!(
        err.hint.as_deref(),
        Some(
            "write it as `file://./build/greeter.wasm`; file:// paths are relative to the manifest's folder"
        )
    );
}

#[test]
fn missing_file_image() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = std::path::absolute(dir.path()).expect("absolute");
    let origin = base.join("wadm.yaml");
    let source = manifest(&GREETER.replace("ghcr.io/example/greeter:0.1.0", "file://greeter.wasm"));
    let err = parse(&source, &origin).expect_err("missing file");
    assert_eq!(
        err.to_string(),
        format!(
            "{}:10:9: spec.components[0].properties.image: component `greeter`: image `file://greeter.wasm` resolves to `{}`, which does not exist\n  hint: file:// paths are relative to the manifest's folder (`{}`); build the component first (for example `cargo build --release --target wasm32-wasip2`) or fix the path",
            origin.display(),
            base.join("greeter.wasm").display(),
            base.display()
        )
    );
    // A tool that builds it first (`trellis dev`) reads the manifest before the file exists.
    let app = parse_before_build(&source, &origin).expect("before the build");
    assert_eq!(
        app.components[0].image,
        ImageRef::File(base.join("greeter.wasm"))
    );
    // A directory is not a component either.
    std::fs::create_dir(base.join("greeter.wasm")).expect("mkdir");
    let err = parse(&source, &origin).expect_err("directory");
    assert!(parse_before_build(&source, &origin).is_err());
    assert!(
        err.message.ends_with("which is not a file"),
        "{}",
        err.message
    );
}

#[test]
fn missing_image() {
    let err = parse_err(&manifest(
        "    - name: greeter\n      type: component\n      properties: {}\n",
    ));
    assert_eq!(err.path, "spec.components[0].properties");
    assert_eq!(err.line, Some(9));
    assert_eq!(err.message, "the component `greeter` has no `image`");
}

#[test]
fn config_defined_twice_with_different_properties() {
    let err = parse_err(&manifest(&format!(
        "{GREETER}        config:
          - name: shared
            properties: {{colour: red}}
{HTTPSERVER}        config:
          - name: shared
            properties: {{colour: blue}}
"
    )));
    assert_eq!(
        err.to_string(),
        format!(
            "{ORIGIN}:20:13: spec.components[1].properties.config[0].properties: config `shared` is defined twice with different properties; the first definition is at spec.components[0].properties.config[0] (line 12)\n  hint: named config is shared by the whole lattice: give one of them another name, or make the properties identical"
        )
    );
}

#[test]
fn config_value_must_be_a_scalar() {
    let err = parse_err(&manifest(&format!(
        "{GREETER}        config:\n          - name: c\n            properties: {{nested: {{a: b}}}}\n"
    )));
    assert_eq!(
        err.path,
        "spec.components[0].properties.config[0].properties.nested"
    );
    assert_eq!(
        err.message,
        "invalid type: map, expected a string, number or boolean"
    );
}

/// `spec:` with one secrets policy `vault` and the given components.
fn with_policy(components: &str) -> String {
    format!(
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: test-app\nspec:\n  policies:\n    - name: vault\n      type: policy.secret.wasmcloud.dev/v1alpha1\n      properties: {{backend: nats-kv}}\n  components:\n{components}"
    )
}

#[test]
fn secrets_become_references_carried_as_secret_config() {
    let app = parse_ok(&with_policy(&format!(
        "{GREETER}        secrets:
          - name: api-key
            properties: {{policy: vault, key: api, field: token, version: v2}}
      traits:
        - type: link
          properties:
            target:
              name: greeter
              secrets: [{{name: s, properties: {{policy: vault, key: k}}}}]
            source:
              secrets: [{{name: t, properties: {{policy: vault, key: k2}}}}]
            namespace: example
            package: self
            interfaces: [loop]
"
    )));
    let component = &app.components[0];
    assert_eq!(component.config, ["SECRET_test-app_api-key"]);
    let reference = &app.configs["SECRET_test-app_api-key"];
    assert_eq!(reference["name"], "api-key");
    assert_eq!(reference["key"], "api");
    assert_eq!(reference["field"], "token");
    assert_eq!(reference["version"], "v2");
    assert_eq!(reference["backend"], "nats-kv");
    assert_eq!(reference["type"], "secret.wasmcloud.dev/v1alpha1");
    let link = &app.links[0].link;
    assert_eq!(link.target_config, ["SECRET_test-app_s"]);
    assert_eq!(link.source_config, ["SECRET_test-app_t"]);
    assert!(app.warnings.is_empty(), "{:?}", app.warnings);
}

#[test]
fn secret_policies_must_exist_and_be_secrets_policies() {
    let err = parse_err(&manifest(&format!(
        "{GREETER}        secrets:\n          - name: api-key\n            properties: {{policy: vault, key: api}}\n"
    )));
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert_eq!(
        err.path,
        "spec.components[0].properties.secrets[0].properties.policy"
    );
    assert_eq!(
        err.message,
        "secret `api-key` names policy `vault`, which spec.policies does not define"
    );
    assert!(
        err.hint
            .as_deref()
            .unwrap_or_default()
            .contains("type: policy.secret.wasmcloud.dev/v1alpha1"),
        "{err}"
    );
    // A policy of another type: kept with a warning, but it cannot back a secret.
    let other = format!(
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: test-app\nspec:\n  policies:\n    - name: vault\n      type: policy.example.com/v1\n      properties: {{a: b}}\n  components:\n{GREETER}"
    );
    let app = parse_ok(&other);
    assert_eq!(app.warnings.len(), 1, "{:?}", app.warnings);
    let err = parse_err(&format!(
        "{other}        secrets: [{{name: s, properties: {{policy: vault, key: k}}}}]\n"
    ));
    assert!(err.message.contains("is not a secrets policy"), "{err}");
    // A backend Trellis does not use is said once.
    let app = parse_ok(&with_policy(GREETER).replace("backend: nats-kv", "backend: vault"));
    assert_eq!(app.warnings.len(), 1);
    assert!(
        app.warnings[0]
            .message
            .contains("Trellis keeps secrets in its own encrypted store"),
        "{}",
        app.warnings[0]
    );
    // Keys must be usable names; one name means one secret in an app.
    let err = parse_err(&with_policy(&format!(
        "{GREETER}        secrets: [{{name: s, properties: {{policy: vault, key: 'a b'}}}}]\n"
    )));
    assert!(err.message.contains("not a valid secret name"), "{err}");
    let err = parse_err(&with_policy(&format!(
        "{GREETER}        secrets:\n          - {{name: s, properties: {{policy: vault, key: a}}}}\n          - {{name: s, properties: {{policy: vault, key: b}}}}\n"
    )));
    assert!(
        err.message
            .contains("referenced twice with different properties"),
        "{err}"
    );
}

#[test]
fn shared_application_references_are_not_supported_yet() {
    let err = parse_err(&manifest(
        "    - name: greeter\n      type: component\n      properties:\n        application: {name: shared-app, component: greeter}\n",
    ));
    assert_eq!(err.kind, ErrorKind::Unsupported);
    assert_eq!(
        err.to_string(),
        format!(
            "{ORIGIN}:10:9: spec.components[0].properties.application: references to shared applications (here `greeter` in `shared-app`) are not supported by Trellis yet\n  hint: give the entry its own `image` instead"
        )
    );
}

#[test]
fn target_config_needs_the_older_target_form() {
    let err = parse_err(&manifest(&format!(
        "{GREETER}      traits:
        - type: link
          properties:
            target: {{name: greeter}}
            target_config: [{{name: c}}]
            namespace: example
            package: self
            interfaces: [loop]
"
    )));
    assert_eq!(
        err.path,
        "spec.components[0].traits[0].properties.target_config"
    );
    assert_eq!(
        err.message,
        "`target_config` cannot be combined with a `target` mapping"
    );
    assert_eq!(
        err.hint.as_deref(),
        Some("move these entries to `target.config`")
    );
}

#[test]
fn unknown_interfaces_of_known_packages_are_warnings() {
    let app = parse_ok(&manifest(&format!(
        "{GREETER}{HTTPSERVER}      traits:
        - type: link
          properties: {{target: greeter, namespace: wasi, package: http, interfaces: [incoming-handlr]}}
"
    )));
    assert_eq!(
        only_warning(&app),
        format!(
            "{ORIGIN}:17:86: spec.components[1].traits[0].properties.interfaces[0]: unknown interface `wasi:http/incoming-handlr`; `wasi:http` has `incoming-handler`, `outgoing-handler`, `handler` and `client`: the link is kept, but nothing on the host serves this interface through it\n  hint: did you mean `incoming-handler`?"
        )
    );
    assert_eq!(app.links[0].link.interfaces, ["incoming-handlr"]);
}

#[test]
fn two_links_binding_the_same_interface() {
    let err = parse_err(&manifest(&format!(
        "{GREETER}      traits:
        - type: link
          properties: {{target: kv, namespace: wasi, package: keyvalue, interfaces: [store, atomics]}}
        - type: link
          properties: {{target: kv2, namespace: wasi, package: keyvalue, interfaces: [store]}}
    - name: kv
      type: capability
      properties:
        image: ghcr.io/wasmcloud/keyvalue-redis:0.30.0
    - name: kv2
      type: capability
      properties:
        image: ghcr.io/wasmcloud/keyvalue-nats:0.3.0
"
    )));
    assert_eq!(
        err.to_string(),
        format!(
            "{ORIGIN}:15:73: spec.components[0].traits[1].properties.interfaces: `greeter` already links `store` of `wasi:keyvalue` under the link name `default` at spec.components[0].traits[0] (line 12)\n  hint: give one of the links a distinct `name`, or remove the duplicate"
        )
    );
}

#[test]
fn link_without_interfaces() {
    let err = parse_err(&manifest(&format!(
        "{GREETER}      traits:\n        - type: link\n          properties: {{target: greeter, namespace: x, package: y, interfaces: []}}\n"
    )));
    assert_eq!(
        err.path,
        "spec.components[0].traits[0].properties.interfaces"
    );
    assert_eq!(err.message, "the link carries no interfaces");
}

#[test]
fn missing_manifest_file() {
    let err = load(Path::new("/nonexistent/wadm.yaml")).expect_err("no such file");
    assert_eq!(err.kind, ErrorKind::Io);
    assert!(
        err.to_string().starts_with(
            "/nonexistent/wadm.yaml: cannot read the manifest: No such file or directory"
        ),
        "{err}"
    );
}

#[test]
fn builtins_are_the_capability_catalogues() {
    assert_eq!(Builtin::all().count(), trellis_capabilities::BUILTINS.len());
    for entry in trellis_capabilities::BUILTINS {
        let b = Builtin::from_name(entry.name).expect("every catalogue entry is a Builtin");
        assert_eq!(b.name(), entry.name);
        assert_eq!(b.provides(), entry.provides);
    }
    assert_eq!(
        Builtin::from_name("keyvalue-redis").and_then(|b| b.provides()),
        Some(("wasi", "keyvalue"))
    );
    assert_eq!(Builtin::HTTP_SERVER.provides(), None);
    assert_eq!(Builtin::from_name("keyvalue-postgres"), None);
}

#[test]
fn wasmclouds_postgres_provider_references_select_the_built_in() {
    let pg = Builtin::from_name("sqldb-postgres").expect("built in");
    assert_eq!(pg.provides(), Some(("wasmcloud", "postgres")));
    for r in [
        "ghcr.io/wasmcloud/sqldb-postgres:0.10.0",
        "ghcr.io/wasmcloud/sqldb-postgres:0.7.2",
        "wasmcloud+builtin://sqldb-postgres",
        "file://../build/sqldb-postgres-provider.par.gz",
        "file://./provider-sqldb-postgres.par.gz",
    ] {
        assert_eq!(Builtin::from_image_ref(r), Some(pg), "{r}");
    }
}

#[test]
fn annotations_and_labels_written_without_a_value_are_empty_strings() {
    // wasmCloud v1.9.2's examples leave `wasmcloud.dev/source-url:` empty; wadm reads "".
    let app = parse_ok(
        "apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: blank
  annotations:
    version: v0.0.1
    wasmcloud.dev/source-url:
  labels:
    team: ~
spec:
  components:
    - name: web
      type: component
      properties:
        image: ghcr.io/example/web:1
",
    );
    assert_eq!(app.annotations["wasmcloud.dev/source-url"], "");
    assert_eq!(app.labels["team"], "");
    assert_eq!(app.version.as_deref(), Some("v0.0.1"));
    let none = parse_ok(
        "apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: blank
  annotations:
spec:
  components:
    - name: web
      type: component
      properties:
        image: ghcr.io/example/web:1
",
    );
    assert!(none.annotations.is_empty());
}

// --- warm instances ------------------------------------------------------------------------

fn with_annotations(annotations: &str) -> String {
    manifest(GREETER).replacen(
        "  name: test-app\n",
        &format!("  name: test-app\n  annotations:\n{annotations}"),
        1,
    )
}

#[test]
fn warm_annotations_are_read_and_checked() {
    let app = parse_ok(&with_annotations(
        "    trellis.dev/warm.greeter: \"max-requests=10, idle=5s\"\n    trellis.dev/warm: \"false\"\n",
    ));
    assert_eq!(
        warm::lookup(&app.annotations, "greeter").map(|(k, v)| (k, v.clone())),
        Some((
            "trellis.dev/warm.greeter".to_owned(),
            "max-requests=10, idle=5s".to_owned()
        ))
    );

    let e = parse_err(&with_annotations(
        "    trellis.dev/warm.greeter: \"sometimes\"\n",
    ));
    assert_eq!(e.path, "metadata.annotations.trellis.dev/warm.greeter");
    assert!(e.message.contains("`sometimes`"), "{e}");
    assert!(
        e.hint
            .as_deref()
            .unwrap_or_default()
            .contains("max-requests=500"),
        "{e}"
    );

    let e = parse_err(&with_annotations("    trellis.dev/warm.greter: \"true\"\n"));
    assert!(e.message.contains("names no component"), "{e}");
    assert!(
        e.hint.as_deref().unwrap_or_default().contains("greeter"),
        "{e}"
    );
}
