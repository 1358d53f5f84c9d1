//! Table tests of the planner: small manifests, hand-built lattices, no I/O.

use std::collections::BTreeMap;
use std::path::Path;
use trellis_control::{ComponentId, HostId, Link, LinkName, ProviderId};
use trellis_reconciler::{
    APP_ANNOTATION, Action, DesiredApp, EntryKind, FailedComponent, MANAGED_ANNOTATION, MANAGED_BY,
    Observed, ObservedComponent, ObservedHost, ObservedProvider, Plan, StatusType,
    VERSION_ANNOTATION, managed_annotations, plan,
};

// --- helpers ----------------------------------------------------------------------------

/// Parses an app named `name` whose `spec.components` items are `components` (YAML indented
/// by four spaces).
fn app(name: &str, version: &str, components: &str) -> DesiredApp {
    let yaml = format!(
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: {name}\n  annotations:\n    version: {version}\nspec:\n  components:\n{components}"
    );
    let app = trellis_manifest::parse(&yaml, Path::new("/apps/test/wadm.yaml"))
        .unwrap_or_else(|e| panic!("manifest should parse:\n{e}\n{yaml}"));
    DesiredApp {
        name: name.to_owned(),
        version: version.to_owned(),
        app,
    }
}

/// A component entry `name` with image `image` and the given traits (YAML, indented by eight
/// spaces, or empty).
fn component(name: &str, image: &str, traits: &str) -> String {
    let mut s = format!(
        "    - name: {name}\n      type: component\n      properties:\n        image: {image}\n"
    );
    if !traits.is_empty() {
        s += "      traits:\n";
        s += traits;
    }
    s
}

/// A spread: name, requirements, weight.
type SpreadSpec<'a> = (&'a str, &'a [(&'a str, &'a str)], Option<u32>);

fn spreadscaler(instances: u32, spread: &[SpreadSpec<'_>]) -> String {
    let mut s = format!(
        "        - type: spreadscaler\n          properties:\n            instances: {instances}\n"
    );
    if !spread.is_empty() {
        s += "            spread:\n";
        for (name, requirements, weight) in spread {
            s += &format!("              - name: {name}\n");
            if requirements.is_empty() {
                s += "                requirements: {}\n";
            } else {
                s += "                requirements:\n";
                for (k, v) in *requirements {
                    s += &format!("                  {k}: {v}\n");
                }
            }
            if let Some(w) = weight {
                s += &format!("                weight: {w}\n");
            }
        }
    }
    s
}

fn daemonscaler(instances: u32, requirements: &[(&str, &str)]) -> String {
    let mut s = format!(
        "        - type: daemonscaler\n          properties:\n            instances: {instances}\n"
    );
    if !requirements.is_empty() {
        s += "            spread:\n              - name: only\n                requirements:\n";
        for (k, v) in requirements {
            s += &format!("                  {k}: {v}\n");
        }
    }
    s
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn host(id: &str, pairs: &[(&str, &str)]) -> ObservedHost {
    ObservedHost {
        id: HostId::new(id),
        labels: labels(pairs),
        components: Vec::new(),
        providers: Vec::new(),
        draining: false,
        failed_components: Vec::new(),
    }
}

fn lattice(hosts: Vec<ObservedHost>) -> Observed {
    Observed {
        hosts,
        ..Observed::default()
    }
}

/// A component running on a host, managed by `app` (or by nobody when `app` is `None`).
fn running(id: &str, image: &str, count: u32, app: Option<&str>) -> ObservedComponent {
    ObservedComponent {
        id: ComponentId::new(id),
        image_ref: image.to_owned(),
        max_instances: count,
        annotations: app
            .map(|a| managed_annotations(a, "v1"))
            .unwrap_or_default(),
    }
}

fn provider_running(id: &str, image: &str, app: Option<&str>) -> ObservedProvider {
    ObservedProvider {
        id: ProviderId::new(id),
        image_ref: Some(image.to_owned()),
        annotations: app
            .map(|a| managed_annotations(a, "v1"))
            .unwrap_or_default(),
        failed: None,
        unhealthy: None,
    }
}

fn host_mut<'a>(observed: &'a mut Observed, id: &str) -> &'a mut ObservedHost {
    observed
        .hosts
        .iter_mut()
        .find(|h| h.id.as_str() == id)
        .unwrap_or_else(|| panic!("no host {id}"))
}

/// Simulates the effect of `actions` on the lattice, as the hosts would carry them out.
fn apply(observed: &mut Observed, actions: &[Action]) {
    for action in actions {
        match action {
            Action::ScaleComponent {
                host_id,
                component_id,
                image_ref,
                count,
                annotations,
                ..
            } => {
                let host = host_mut(observed, host_id.as_str());
                host.components.retain(|c| &c.id != component_id);
                if *count > 0 {
                    host.components.push(ObservedComponent {
                        id: component_id.clone(),
                        image_ref: image_ref.clone(),
                        max_instances: *count,
                        annotations: annotations.clone(),
                    });
                }
            }
            Action::StartProvider {
                host_id,
                provider_id,
                image_ref,
                annotations,
                ..
            } => {
                let host = host_mut(observed, host_id.as_str());
                assert!(
                    host.providers.iter().all(|p| &p.id != provider_id),
                    "{provider_id} started twice on {host_id}"
                );
                host.providers.push(ObservedProvider {
                    id: provider_id.clone(),
                    image_ref: Some(image_ref.clone()),
                    annotations: annotations.clone(),
                    failed: None,
                    unhealthy: None,
                });
            }
            Action::StopProvider {
                host_id,
                provider_id,
            } => {
                host_mut(observed, host_id.as_str())
                    .providers
                    .retain(|p| &p.id != provider_id);
            }
            Action::PutConfig { name, values } => {
                observed.configs.insert(name.clone(), values.clone());
            }
            Action::DeleteConfig { name } => {
                observed.configs.remove(name);
            }
            Action::PutLink(link) => {
                observed.links.retain(|l| !same_key(l, link));
                observed.links.push(link.clone());
            }
            Action::DeleteLink {
                source_id,
                wit_namespace,
                wit_package,
                name,
            } => observed.links.retain(|l| {
                !(&l.source_id == source_id
                    && &l.wit_namespace == wit_namespace
                    && &l.wit_package == wit_package
                    && &l.name == name)
            }),
        }
    }
}

fn same_key(a: &Link, b: &Link) -> bool {
    a.source_id == b.source_id
        && a.wit_namespace == b.wit_namespace
        && a.wit_package == b.wit_package
        && a.name == b.name
}

/// Plans, applies, and checks that planning again changes nothing; returns the first plan
/// and the state it led to.
fn converge(apps: &[DesiredApp], undeployed: &[String], observed: &Observed) -> (Plan, Observed) {
    let first = plan(apps, undeployed, observed);
    let mut after = observed.clone();
    apply(&mut after, &first.actions);
    let second = plan(apps, undeployed, &after);
    assert_eq!(
        second.actions,
        Vec::<Action>::new(),
        "planning again after applying should do nothing; first plan: {:#?}",
        first.actions
    );
    (first, after)
}

/// `host -> count` of the component `id` in `observed`.
fn shares(observed: &Observed, id: &str) -> BTreeMap<String, u32> {
    observed
        .hosts
        .iter()
        .flat_map(|h| {
            h.components
                .iter()
                .filter(|c| c.id.as_str() == id)
                .map(|c| (h.id.to_string(), c.max_instances))
        })
        .collect()
}

/// Hosts running provider `id`.
fn provider_hosts(observed: &Observed, id: &str) -> Vec<String> {
    observed
        .hosts
        .iter()
        .filter(|h| h.providers.iter().any(|p| p.id.as_str() == id))
        .map(|h| h.id.to_string())
        .collect()
}

fn counts(pairs: &[(&str, u32)]) -> BTreeMap<String, u32> {
    pairs.iter().map(|(h, c)| ((*h).to_owned(), *c)).collect()
}

fn scale(host: &str, id: &str, image: &str, count: u32, app: &str, version: &str) -> Action {
    Action::ScaleComponent {
        host_id: HostId::new(host),
        component_id: ComponentId::new(id),
        image_ref: image.to_owned(),
        count,
        config: Vec::new(),
        annotations: managed_annotations(app, version),
    }
}

/// A count-0 scale of a component started by [`running`] for `app`.
fn stop(host: &str, id: &str, image: &str, app: &str) -> Action {
    Action::ScaleComponent {
        host_id: HostId::new(host),
        component_id: ComponentId::new(id),
        image_ref: image.to_owned(),
        count: 0,
        config: Vec::new(),
        annotations: managed_annotations(app, "v1"),
    }
}

fn entry_status(plan: &Plan, app: &str, entry: &str) -> (StatusType, String) {
    let status = &plan.status[app];
    let e = status
        .components
        .iter()
        .find(|c| c.name == entry)
        .unwrap_or_else(|| panic!("no status for {entry}: {status:#?}"));
    (e.status, e.message.clone())
}

const IMG: &str = "ghcr.io/x/y:1";
const IMG2: &str = "ghcr.io/x/y:2";

// --- spread scaler ------------------------------------------------------------------------

#[test]
fn spread_by_weight_then_evenly_within_each_zone() {
    let a = app(
        "shop",
        "v1",
        &component(
            "web",
            IMG,
            &spreadscaler(
                6,
                &[
                    ("a", &[("zone", "a")], Some(1)),
                    ("b", &[("zone", "b")], Some(2)),
                ],
            ),
        ),
    );
    let observed = lattice(vec![
        host("a1", &[("zone", "a")]),
        host("a2", &[("zone", "a")]),
        host("b1", &[("zone", "b")]),
        host("b2", &[("zone", "b")]),
        host("b3", &[("zone", "b")]),
        host("c1", &[("zone", "c")]),
    ]);
    let (first, after) = converge(std::slice::from_ref(&a), &[], &observed);
    assert_eq!(
        first.actions,
        vec![
            scale("a1", "shop-web", IMG, 1, "shop", "v1"),
            scale("a2", "shop-web", IMG, 1, "shop", "v1"),
            scale("b1", "shop-web", IMG, 2, "shop", "v1"),
            scale("b2", "shop-web", IMG, 1, "shop", "v1"),
            scale("b3", "shop-web", IMG, 1, "shop", "v1"),
        ]
    );
    assert_eq!(
        entry_status(&first, "shop", "web"),
        (
            StatusType::Reconciling,
            "0 of 6 instances placed".to_owned()
        )
    );
    assert_eq!(first.status["shop"].status, StatusType::Reconciling);
    let settled = plan(&[a], &[], &after);
    assert_eq!(settled.status["shop"].status, StatusType::Deployed);
    assert_eq!(
        settled.status["shop"].message,
        "1 component and 0 providers deployed"
    );
    assert_eq!(
        entry_status(&settled, "shop", "web"),
        (StatusType::Deployed, "6 of 6 instances placed".to_owned())
    );
}

#[test]
fn remainders_go_to_the_largest_fractions() {
    let spreads: &[SpreadSpec<'_>] = &[
        ("x", &[("zone", "x")], Some(20)),
        ("y", &[("zone", "y")], Some(30)),
        ("z", &[("zone", "z")], Some(50)),
    ];
    let observed = lattice(vec![
        host("hx", &[("zone", "x")]),
        host("hy", &[("zone", "y")]),
        host("hz", &[("zone", "z")]),
    ]);
    // (instances, expected shares): 3 → 0.6, 0.9, 1.5 → 1, 1, 1 (largest fractions, not
    // manifest order); 1 → 0.2, 0.3, 0.5 → z; 2 → 0.4, 0.6, 1.0 → y and z.
    let table: &[(u32, &[(&str, u32)])] = &[
        (3, &[("hx", 1), ("hy", 1), ("hz", 1)]),
        (1, &[("hz", 1)]),
        (2, &[("hy", 1), ("hz", 1)]),
        (7, &[("hx", 1), ("hy", 2), ("hz", 4)]),
    ];
    for (instances, expected) in table {
        let a = app(
            "r",
            "v1",
            &component("c", IMG, &spreadscaler(*instances, spreads)),
        );
        let (_, after) = converge(&[a], &[], &observed);
        assert_eq!(
            shares(&after, "r-c"),
            counts(expected),
            "instances {instances}"
        );
    }
}

#[test]
fn spread_without_a_matching_host_waits() {
    let a = app(
        "eu",
        "v1",
        &component(
            "web",
            IMG,
            &spreadscaler(
                4,
                &[
                    ("eu", &[("zone", "eu"), ("region", "west")], None),
                    ("us", &[("zone", "us")], None),
                ],
            ),
        ),
    );
    let observed = lattice(vec![host("h1", &[("zone", "us")])]);
    let p = plan(std::slice::from_ref(&a), &[], &observed);
    // The matching spread is placed; the other one gets nothing.
    assert_eq!(p.actions, vec![scale("h1", "eu-web", IMG, 2, "eu", "v1")]);
    assert_eq!(
        entry_status(&p, "eu", "web"),
        (
            StatusType::Waiting,
            "no host matches requirements region=west, zone=eu".to_owned()
        )
    );
    assert_eq!(p.status["eu"].status, StatusType::Waiting);
    assert_eq!(
        p.status["eu"].message,
        "web: no host matches requirements region=west, zone=eu"
    );

    // Matching hosts exist but are draining.
    let mut observed = lattice(vec![host("h1", &[("zone", "eu"), ("region", "west")])]);
    observed.hosts[0].draining = true;
    let a = app(
        "eu",
        "v1",
        &component(
            "web",
            IMG,
            &spreadscaler(1, &[("eu", &[("zone", "eu")], None)]),
        ),
    );
    let p = plan(&[a], &[], &observed);
    assert!(p.actions.is_empty());
    assert_eq!(
        entry_status(&p, "eu", "web"),
        (
            StatusType::Waiting,
            "no host available: every host matching requirements zone=eu is draining".to_owned()
        )
    );
}

#[test]
fn no_hosts_waits() {
    let a = app(
        "lonely",
        "v1",
        &(component("web", IMG, &spreadscaler(2, &[]))
            + &component("edge", IMG2, &daemonscaler(1, &[]))),
    );
    let p = plan(&[a], &[], &Observed::default());
    assert!(p.actions.is_empty());
    for entry in ["web", "edge"] {
        assert_eq!(
            entry_status(&p, "lonely", entry),
            (StatusType::Waiting, "no hosts in the lattice".to_owned())
        );
    }
    assert_eq!(p.status["lonely"].status, StatusType::Waiting);
}

#[test]
fn daemonscaler_runs_on_every_matching_host() {
    let a = app(
        "d",
        "v1",
        &component("agent", IMG, &daemonscaler(2, &[("role", "edge")])),
    );
    let mut observed = lattice(vec![
        host("e1", &[("role", "edge")]),
        host("e2", &[("role", "edge")]),
        host("e3", &[("role", "edge")]),
        host("core", &[("role", "core")]),
    ]);
    observed.hosts[2].draining = true;
    let (first, after) = converge(std::slice::from_ref(&a), &[], &observed);
    assert_eq!(
        first.actions,
        vec![
            scale("e1", "d-agent", IMG, 2, "d", "v1"),
            scale("e2", "d-agent", IMG, 2, "d", "v1"),
        ]
    );
    assert_eq!(
        entry_status(&plan(&[a], &[], &after), "d", "agent"),
        (StatusType::Deployed, "4 of 4 instances placed".to_owned())
    );

    // No spread: every host.
    let a = app("d", "v1", &component("agent", IMG, &daemonscaler(1, &[])));
    let (_, after) = converge(&[a], &[], &lattice(vec![host("x", &[]), host("y", &[])]));
    assert_eq!(shares(&after, "d-agent"), counts(&[("x", 1), ("y", 1)]));
}

#[test]
fn existing_instances_are_kept_without_churn() {
    let a = app("keep", "v1", &component("web", IMG, &spreadscaler(2, &[])));
    let mut observed = lattice(vec![host("h1", &[]), host("h2", &[]), host("h3", &[])]);
    host_mut(&mut observed, "h2")
        .components
        .push(running("keep-web", IMG, 1, Some("keep")));
    host_mut(&mut observed, "h3")
        .components
        .push(running("keep-web", IMG, 1, Some("keep")));
    let p = plan(std::slice::from_ref(&a), &[], &observed);
    assert_eq!(p.actions, Vec::<Action>::new());
    assert_eq!(p.status["keep"].status, StatusType::Deployed);

    // Four instances: one per host, and the extra one where instances already run.
    let a = app("keep", "v1", &component("web", IMG, &spreadscaler(4, &[])));
    let p = plan(&[a], &[], &observed);
    assert_eq!(
        p.actions,
        vec![
            scale("h1", "keep-web", IMG, 1, "keep", "v1"),
            scale("h2", "keep-web", IMG, 2, "keep", "v1"),
        ]
    );
    assert_eq!(
        entry_status(&p, "keep", "web"),
        (
            StatusType::Reconciling,
            "2 of 4 instances placed".to_owned()
        )
    );
}

#[test]
fn version_upgrade_reissues_shares_with_the_new_image() {
    let v1 = app("up", "v1", &component("web", IMG, &spreadscaler(3, &[])));
    let observed = lattice(vec![host("h1", &[]), host("h2", &[])]);
    let (_, after) = converge(&[v1], &[], &observed);
    assert_eq!(shares(&after, "up-web"), counts(&[("h1", 2), ("h2", 1)]));

    let v2 = app("up", "v2", &component("web", IMG2, &spreadscaler(3, &[])));
    let (p, after) = converge(&[v2], &[], &after);
    assert_eq!(
        p.actions,
        vec![
            scale("h1", "up-web", IMG2, 2, "up", "v2"),
            scale("h2", "up-web", IMG2, 1, "up", "v2"),
        ]
    );
    assert_eq!(
        entry_status(&p, "up", "web"),
        (
            StatusType::Reconciling,
            "0 of 3 instances placed".to_owned()
        )
    );
    let upgraded = &after.hosts[0].components[0];
    assert_eq!(upgraded.annotations[VERSION_ANNOTATION], "v2");

    // A smaller count with a new image: the host that drops to 0 is stopped.
    let v3 = app("up", "v3", &component("web", IMG, &spreadscaler(1, &[])));
    let (p, _) = converge(&[v3], &[], &after);
    assert_eq!(
        p.actions,
        vec![
            scale("h1", "up-web", IMG, 1, "up", "v3"),
            Action::ScaleComponent {
                host_id: HostId::new("h2"),
                component_id: ComponentId::new("up-web"),
                image_ref: IMG2.to_owned(),
                count: 0,
                config: Vec::new(),
                annotations: managed_annotations("up", "v2"),
            },
        ]
    );
}

#[test]
fn a_lost_hosts_share_moves_to_the_others() {
    let a = app("ha", "v1", &component("web", IMG, &spreadscaler(3, &[])));
    let observed = lattice(vec![host("h1", &[]), host("h2", &[]), host("h3", &[])]);
    let (_, mut after) = converge(std::slice::from_ref(&a), &[], &observed);
    assert_eq!(
        shares(&after, "ha-web"),
        counts(&[("h1", 1), ("h2", 1), ("h3", 1)])
    );
    after.hosts.retain(|h| h.id.as_str() != "h2");
    let (p, after) = converge(&[a], &[], &after);
    assert_eq!(p.actions, vec![scale("h1", "ha-web", IMG, 2, "ha", "v1")]);
    assert_eq!(shares(&after, "ha-web"), counts(&[("h1", 2), ("h3", 1)]));
}

#[test]
fn a_draining_host_is_emptied_after_the_others_take_over() {
    let a = app("mv", "v1", &component("web", IMG, &spreadscaler(2, &[])));
    let mut observed = lattice(vec![host("h1", &[]), host("h2", &[]), host("h3", &[])]);
    host_mut(&mut observed, "h1")
        .components
        .push(running("mv-web", IMG, 1, Some("mv")));
    host_mut(&mut observed, "h2")
        .components
        .push(running("mv-web", IMG, 1, Some("mv")));
    host_mut(&mut observed, "h1").draining = true;
    let (p, after) = converge(&[a], &[], &observed);
    // The new instance first, the stop last.
    assert_eq!(
        p.actions,
        vec![
            scale("h3", "mv-web", IMG, 1, "mv", "v1"),
            stop("h1", "mv-web", IMG, "mv"),
        ]
    );
    assert_eq!(
        entry_status(&p, "mv", "web"),
        (
            StatusType::Reconciling,
            "1 of 2 instances placed; removing instances from host h1".to_owned()
        )
    );
    assert_eq!(shares(&after, "mv-web"), counts(&[("h2", 1), ("h3", 1)]));
}

// --- ownership --------------------------------------------------------------------------

#[test]
fn an_unmanaged_component_with_the_same_id_is_left_alone() {
    let a = app("own", "v1", &component("web", IMG, &spreadscaler(2, &[])));
    let mut observed = lattice(vec![host("h1", &[]), host("h2", &[])]);
    host_mut(&mut observed, "h1").components.push(running(
        "own-web",
        "ghcr.io/other/web:9",
        4,
        None,
    ));
    let (p, after) = converge(&[a], &[], &observed);
    // Both instances go to h2; h1's copy is not scaled or stopped.
    assert_eq!(p.actions, vec![scale("h2", "own-web", IMG, 2, "own", "v1")]);
    assert_eq!(
        entry_status(&p, "own", "web"),
        (
            StatusType::Failed,
            "component `web` on host h1 is not managed by this app; left alone".to_owned()
        )
    );
    assert_eq!(p.status["own"].status, StatusType::Failed);
    assert_eq!(
        p.status["own"].message,
        "component `web` on host h1 is not managed by this app; left alone"
    );
    assert_eq!(shares(&after, "own-web"), counts(&[("h1", 4), ("h2", 2)]));
}

#[test]
fn undeploy_removes_only_what_the_app_manages() {
    let mut observed = lattice(vec![host("h1", &[]), host("h2", &[])]);
    let h1 = host_mut(&mut observed, "h1");
    h1.components.push(running("old-web", IMG, 2, Some("old")));
    h1.components
        .push(running("other-web", IMG, 1, Some("other")));
    h1.components.push(running("manual", IMG, 1, None));
    h1.providers.push(provider_running(
        "old-http",
        "ghcr.io/wasmcloud/http-server:0.27.0",
        Some("old"),
    ));
    let h2 = host_mut(&mut observed, "h2");
    h2.components.push(running("old-web", IMG, 1, Some("old")));
    h2.providers.push(provider_running(
        "manual-kv",
        "ghcr.io/wasmcloud/keyvalue-redis:0.28.0",
        None,
    ));
    let link = |source: &str, target: &str, package: &str| Link {
        source_id: source.into(),
        target: target.into(),
        name: LinkName::default(),
        wit_namespace: "wasi".into(),
        wit_package: package.into(),
        interfaces: vec!["x".into()],
        source_config: vec![],
        target_config: vec![],
    };
    observed.links = vec![
        link("old-http", "old-web", "http"),
        link("old-web", "manual-kv", "keyvalue"),
        link("manual", "manual-kv", "keyvalue"),
        link("other-web", "manual-kv", "keyvalue"),
    ];
    observed
        .configs
        .insert("old-config".into(), labels(&[("k", "v")]));

    let (p, after) = converge(&[], &["old".to_owned()], &observed);
    assert_eq!(
        p.actions,
        vec![
            Action::DeleteLink {
                source_id: "old-http".into(),
                wit_namespace: "wasi".into(),
                wit_package: "http".into(),
                name: LinkName::default(),
            },
            Action::DeleteLink {
                source_id: "old-web".into(),
                wit_namespace: "wasi".into(),
                wit_package: "keyvalue".into(),
                name: LinkName::default(),
            },
            stop("h1", "old-web", IMG, "old"),
            stop("h2", "old-web", IMG, "old"),
            Action::StopProvider {
                host_id: HostId::new("h1"),
                provider_id: ProviderId::new("old-http"),
            },
        ]
    );
    let status = &p.status["old"];
    assert_eq!(status.status, StatusType::Undeployed);
    assert_eq!(
        status.message,
        "undeploying: stopping 2 component placements, stopping 1 provider, deleting 2 links"
    );
    // Config stays; other resources stay.
    assert_eq!(after.configs, observed.configs);
    assert_eq!(after.links.len(), 2);
    assert_eq!(shares(&after, "other-web"), counts(&[("h1", 1)]));
    assert_eq!(shares(&after, "manual"), counts(&[("h1", 1)]));
    assert_eq!(provider_hosts(&after, "manual-kv"), ["h2"]);
    assert_eq!(
        plan(&[], &["old".to_owned()], &after).status["old"].message,
        "undeployed"
    );
}

#[test]
fn overlapping_apps_do_not_fight() {
    let one = app(
        "one",
        "v1",
        &(component("web", IMG, &spreadscaler(3, &[]))
            + &component(
                "api",
                IMG2,
                &spreadscaler(2, &[("z", &[("zone", "a")], None)]),
            )),
    );
    let two = app(
        "two",
        "v1",
        &(component("web", IMG, &spreadscaler(4, &[]))
            + &component("edge", IMG2, &daemonscaler(1, &[]))),
    );
    let observed = lattice(vec![
        host("h1", &[("zone", "a")]),
        host("h2", &[("zone", "a")]),
        host("h3", &[("zone", "b")]),
    ]);
    let apps = [two, one];
    let (_, mut after) = converge(&apps, &[], &observed);
    assert_eq!(
        shares(&after, "one-web"),
        counts(&[("h1", 1), ("h2", 1), ("h3", 1)])
    );
    assert_eq!(
        shares(&after, "two-web"),
        counts(&[("h1", 2), ("h2", 1), ("h3", 1)])
    );
    assert_eq!(shares(&after, "one-api"), counts(&[("h1", 1), ("h2", 1)]));
    assert_eq!(
        shares(&after, "two-edge"),
        counts(&[("h1", 1), ("h2", 1), ("h3", 1)])
    );
    let settled = plan(&apps, &[], &after);
    assert!(
        settled
            .status
            .values()
            .all(|s| s.status == StatusType::Deployed)
    );

    // Each app only sees its own: undeploying one leaves the other untouched.
    let (p, after2) = converge(&apps[..1], &["one".to_owned()], &after);
    assert!(p.actions.iter().all(|a| match a {
        Action::ScaleComponent {
            component_id,
            count,
            ..
        } => component_id.as_str().starts_with("one-") && *count == 0,
        _ => false,
    }));
    assert_eq!(shares(&after2, "two-web"), shares(&after, "two-web"));

    // Losing a host: both apps move, and settle.
    after.hosts.remove(0);
    converge(&apps, &[], &after);
}

#[test]
fn planning_is_deterministic() {
    let a = app(
        "det",
        "v1",
        &(component("web", IMG, &spreadscaler(5, &[]))
            + &component("b", IMG2, &spreadscaler(1, &[]))),
    );
    let hosts = vec![host("h3", &[]), host("h1", &[]), host("h2", &[])];
    let p1 = plan(std::slice::from_ref(&a), &[], &lattice(hosts.clone()));
    let mut reversed = hosts;
    reversed.reverse();
    let p2 = plan(&[a], &[], &lattice(reversed));
    assert_eq!(p1, p2);
}

// --- providers ----------------------------------------------------------------------------

const HTTP_IMG: &str = "ghcr.io/wasmcloud/http-server:0.27.0";
const KV_IMG: &str = "ghcr.io/wasmcloud/keyvalue-redis:0.28.0";

/// `web` (spread over `instances`) served by `httpserver`, and calling `kv`.
fn web_app(name: &str, instances: u32, provider_traits: &str) -> DesiredApp {
    let web = component(
        "web",
        IMG,
        &(spreadscaler(instances, &[])
            + "        - type: link
          properties:
            target: { name: kv }
            namespace: wasi
            package: keyvalue
            interfaces: [store]
"),
    );
    let providers = format!(
        "    - name: httpserver
      type: capability
      properties:
        image: {HTTP_IMG}
      traits:
        - type: link
          properties:
            target: {{ name: web }}
            namespace: wasi
            package: http
            interfaces: [incoming-handler]
            source:
              config:
                - name: listen
                  properties: {{ address: \"0.0.0.0:8000\" }}
    - name: kv
      type: capability
      properties:
        image: {KV_IMG}
{provider_traits}"
    );
    app(name, "v1", &(web + &providers))
}

#[test]
fn providers_run_where_their_linked_components_run() {
    let a = web_app("site", 2, "");
    let observed = lattice(vec![host("h1", &[]), host("h2", &[]), host("h3", &[])]);
    let (p, after) = converge(std::slice::from_ref(&a), &[], &observed);
    assert_eq!(provider_hosts(&after, "site-httpserver"), ["h1", "h2"]);
    assert_eq!(provider_hosts(&after, "site-kv"), ["h1", "h2"]);
    // Order: config, providers, components, links.
    let kinds: Vec<&str> = p
        .actions
        .iter()
        .map(|a| match a {
            Action::PutConfig { .. } => "config",
            Action::StartProvider { .. } => "provider",
            Action::ScaleComponent { .. } => "component",
            Action::PutLink(_) => "link",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "config",
            "provider",
            "provider",
            "provider",
            "provider",
            "component",
            "component",
            "link",
            "link"
        ]
    );
    assert_eq!(
        p.actions[1],
        Action::StartProvider {
            host_id: HostId::new("h1"),
            provider_id: ProviderId::new("site-httpserver"),
            image_ref: HTTP_IMG.to_owned(),
            config: Vec::new(),
            annotations: managed_annotations("site", "v1"),
        }
    );
    let settled = plan(std::slice::from_ref(&a), &[], &after);
    assert_eq!(
        entry_status(&settled, "site", "httpserver"),
        (StatusType::Deployed, "running on 2 of 2 hosts".to_owned())
    );
    assert_eq!(
        settled.status["site"].message,
        "1 component and 2 providers deployed"
    );

    // The component shrinks to one host: the provider follows.
    let smaller = web_app("site", 1, "");
    let (p, after) = converge(&[smaller], &[], &after);
    assert!(p.actions.contains(&Action::StopProvider {
        host_id: HostId::new("h2"),
        provider_id: ProviderId::new("site-httpserver"),
    }));
    assert_eq!(provider_hosts(&after, "site-httpserver"), ["h1"]);
}

#[test]
fn a_providers_own_scaler_adds_hosts_and_keeps_running_ones() {
    // kv: a daemon on role=cache hosts, on top of the component's hosts.
    let a = web_app(
        "site",
        1,
        "      traits:
        - type: daemonscaler
          properties:
            instances: 1
            spread:
              - name: cache
                requirements: { role: cache }
",
    );
    let observed = lattice(vec![
        host("h1", &[]),
        host("h2", &[("role", "cache")]),
        host("h3", &[("role", "cache")]),
    ]);
    let (_, after) = converge(&[a], &[], &observed);
    assert_eq!(provider_hosts(&after, "site-kv"), ["h1", "h2", "h3"]);
    assert_eq!(provider_hosts(&after, "site-httpserver"), ["h1"]);

    // kv: a spread of 2 hosts, already running on h3: it stays there, h1 (linked) counts.
    let a = web_app(
        "site",
        1,
        "      traits:
        - type: spreadscaler
          properties:
            instances: 2
",
    );
    let mut observed = lattice(vec![host("h1", &[]), host("h2", &[]), host("h3", &[])]);
    host_mut(&mut observed, "h3")
        .providers
        .push(provider_running("site-kv", KV_IMG, Some("site")));
    let (p, after) = converge(&[a], &[], &observed);
    assert_eq!(provider_hosts(&after, "site-kv"), ["h1", "h3"]);
    assert!(
        !p.actions
            .iter()
            .any(|a| matches!(a, Action::StopProvider { .. }))
    );
}

#[test]
fn a_failed_provider_fails_the_app() {
    let a = web_app("site", 1, "");
    let observed = lattice(vec![host("h1", &[])]);
    let (_, mut after) = converge(std::slice::from_ref(&a), &[], &observed);
    let http = host_mut(&mut after, "h1")
        .providers
        .iter_mut()
        .find(|p| p.id.as_str() == "site-httpserver")
        .expect("http server started");
    http.failed = Some("address 0.0.0.0:8000 in use".into());
    let p = plan(&[a], &[], &after);
    assert!(
        p.actions.is_empty(),
        "a failed provider is not restarted: {:?}",
        p.actions
    );
    let message = "provider httpserver failed on host h1: address 0.0.0.0:8000 in use";
    assert_eq!(
        entry_status(&p, "site", "httpserver"),
        (StatusType::Failed, message.to_owned())
    );
    assert_eq!(p.status["site"].status, StatusType::Failed);
    assert_eq!(p.status["site"].message, message);
    let kinds: Vec<EntryKind> = p.status["site"].components.iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        [
            EntryKind::Component,
            EntryKind::Capability,
            EntryKind::Capability
        ]
    );
}

#[test]
fn a_component_that_did_not_start_fails_the_app_with_the_hosts_reason() {
    let a = web_app("site", 1, "");
    let observed = lattice(vec![host("h1", &[])]);
    let first = plan(std::slice::from_ref(&a), &[], &observed);
    let (image, id) = first
        .actions
        .iter()
        .find_map(|action| match action {
            Action::ScaleComponent {
                image_ref,
                component_id,
                ..
            } => Some((image_ref.clone(), component_id.clone())),
            _ => None,
        })
        .expect("the component is scaled");
    // The host tried, and said why it could not.
    let mut after = observed.clone();
    host_mut(&mut after, "h1")
        .failed_components
        .push(FailedComponent {
            id: id.clone(),
            image_ref: image.clone(),
            reason: "registry localhost:5000 is unreachable".into(),
        });
    let p = plan(std::slice::from_ref(&a), &[], &after);
    let (status, message) = entry_status(&p, "site", "web");
    assert_eq!(status, StatusType::Failed, "{message}");
    assert!(
        message.contains("did not start on host h1: registry localhost:5000 is unreachable"),
        "{message}"
    );
    assert_eq!(p.status["site"].status, StatusType::Failed);
    assert!(
        p.actions
            .iter()
            .any(|a| matches!(a, Action::ScaleComponent { count: 1, .. })),
        "the scale is tried again: {:?}",
        p.actions
    );
    // A failure of another image (an older version) says nothing about this one.
    host_mut(&mut after, "h1").failed_components[0].image_ref = "file:///old.wasm".into();
    let p = plan(&[a], &[], &after);
    assert_eq!(entry_status(&p, "site", "web").0, StatusType::Reconciling);
}

#[test]
fn an_unhealthy_provider_makes_the_app_unhealthy_and_then_deployed_again() {
    let a = web_app("site", 1, "");
    let observed = lattice(vec![host("h1", &[])]);
    let (_, mut after) = converge(std::slice::from_ref(&a), &[], &observed);
    let http = host_mut(&mut after, "h1")
        .providers
        .iter_mut()
        .find(|p| p.id.as_str() == "site-httpserver")
        .expect("http server started");
    http.unhealthy = Some("backend unreachable".into());
    let p = plan(std::slice::from_ref(&a), &[], &after);
    assert!(p.actions.is_empty(), "nothing to change: {:?}", p.actions);
    assert_eq!(p.status["site"].status, StatusType::Unhealthy);
    assert_eq!(
        entry_status(&p, "site", "httpserver"),
        (
            StatusType::Unhealthy,
            "provider httpserver is unhealthy on host h1: backend unreachable".to_owned()
        )
    );
    host_mut(&mut after, "h1")
        .providers
        .iter_mut()
        .for_each(|p| p.unhealthy = None);
    assert_eq!(
        plan(&[a], &[], &after).status["site"].status,
        StatusType::Deployed
    );
}

#[test]
fn a_provider_with_a_new_image_is_stopped_then_started() {
    let a = web_app("site", 1, "");
    let mut observed = lattice(vec![host("h1", &[])]);
    host_mut(&mut observed, "h1")
        .providers
        .push(provider_running(
            "site-kv",
            "ghcr.io/wasmcloud/keyvalue-redis:0.1.0",
            Some("site"),
        ));
    let p = plan(std::slice::from_ref(&a), &[], &observed);
    assert!(p.actions.contains(&Action::StopProvider {
        host_id: HostId::new("h1"),
        provider_id: ProviderId::new("site-kv"),
    }));
    let mut after = observed.clone();
    apply(&mut after, &p.actions);
    let (p, _) = converge(&[a], &[], &after);
    assert_eq!(
        p.actions,
        vec![Action::StartProvider {
            host_id: HostId::new("h1"),
            provider_id: ProviderId::new("site-kv"),
            image_ref: KV_IMG.to_owned(),
            config: Vec::new(),
            annotations: managed_annotations("site", "v1"),
        }]
    );
}

// --- config and links -------------------------------------------------------------------------

#[test]
fn config_is_put_only_when_different() {
    let a = web_app("site", 1, "");
    let listen = labels(&[("address", "0.0.0.0:8000")]);
    let table: &[(Option<BTreeMap<String, String>>, bool)] = &[
        (None, true),
        (Some(labels(&[("address", "0.0.0.0:9000")])), true),
        (Some(listen.clone()), false),
    ];
    for (present, put) in table {
        let mut observed = lattice(vec![host("h1", &[])]);
        if let Some(values) = present {
            observed.configs.insert("listen".into(), values.clone());
        }
        let p = plan(std::slice::from_ref(&a), &[], &observed);
        let puts: Vec<&Action> = p
            .actions
            .iter()
            .filter(|a| matches!(a, Action::PutConfig { .. }))
            .collect();
        let expected = Action::PutConfig {
            name: "listen".into(),
            values: listen.clone(),
        };
        if *put {
            assert_eq!(puts, [&expected], "present: {present:?}");
        } else {
            assert!(puts.is_empty(), "present: {present:?}");
        }
    }
}

#[test]
fn links_are_put_and_stale_ones_deleted() {
    let a = web_app("site", 1, "");
    let observed = lattice(vec![host("h1", &[])]);
    let (_, mut after) = converge(std::slice::from_ref(&a), &[], &observed);
    assert_eq!(after.links.len(), 2);

    // A stale link from one of the app's entries, and one from someone else's.
    let stale = Link {
        source_id: "site-web".into(),
        target: "elsewhere".into(),
        name: LinkName::default(),
        wit_namespace: "wasi".into(),
        wit_package: "blobstore".into(),
        interfaces: vec!["blobstore".into()],
        source_config: vec![],
        target_config: vec![],
    };
    let foreign = Link {
        source_id: "someone_else".into(),
        ..stale.clone()
    };
    after.links.push(stale);
    after.links.push(foreign.clone());
    // The http link lost its config: it is put again.
    let http = after
        .links
        .iter_mut()
        .find(|l| l.wit_package == "http")
        .expect("http link");
    http.source_config.clear();
    let (p, after) = converge(std::slice::from_ref(&a), &[], &after);
    let http_link = a
        .app
        .links
        .iter()
        .find(|l| l.link.wit_package == "http")
        .expect("declared")
        .link
        .clone();
    assert_eq!(
        p.actions,
        vec![
            Action::PutLink(http_link),
            Action::DeleteLink {
                source_id: "site-web".into(),
                wit_namespace: "wasi".into(),
                wit_package: "blobstore".into(),
                name: LinkName::default(),
            },
        ]
    );
    assert!(after.links.contains(&foreign));
    assert_eq!(
        p.status["site"].message,
        "putting link site-httpserver -> site-web (wasi:http/incoming-handler); \
         deleting link site-web -> elsewhere (wasi:blobstore/blobstore): no longer in the manifest"
    );

    // A link retargeted in the lattice is replaced: delete, then put.
    let mut moved = after.clone();
    moved
        .links
        .iter_mut()
        .find(|l| l.wit_package == "keyvalue")
        .expect("kv link")
        .target = "other-kv".into();
    let p = plan(&[a], &[], &moved);
    assert!(matches!(
        p.actions.as_slice(),
        [Action::DeleteLink { wit_package, .. }, Action::PutLink(l)] if wit_package == "keyvalue" && l.target == "site-kv"
    ));
}

#[test]
fn entries_dropped_from_the_manifest_are_stopped() {
    let v1 = web_app("site", 1, "");
    let observed = lattice(vec![host("h1", &[])]);
    let (_, after) = converge(&[v1], &[], &observed);
    // v2 keeps only the component.
    let v2 = app("site", "v2", &component("web", IMG, &spreadscaler(1, &[])));
    let (p, after) = converge(&[v2], &[], &after);
    assert_eq!(
        provider_hosts(&after, "site-httpserver"),
        Vec::<String>::new()
    );
    assert_eq!(provider_hosts(&after, "site-kv"), Vec::<String>::new());
    // Links from the dropped provider go; the component's link to kv is no longer declared.
    assert!(after.links.is_empty(), "{:?}", after.links);
    assert_eq!(p.status["site"].status, StatusType::Reconciling);
    assert!(
        p.status["site"]
            .message
            .contains("stopping provider `site-httpserver` on host h1: no longer in the manifest")
    );
}

// --- wire shapes -------------------------------------------------------------------------------

#[test]
fn plan_serialises_for_storage() {
    let a = web_app("site", 1, "");
    let p = plan(&[a], &[], &lattice(vec![host("h1", &[])]));
    let json = serde_json::to_value(&p).expect("serialise");
    assert_eq!(json["status"]["site"]["status"], "reconciling");
    assert_eq!(
        json["status"]["site"]["components"][1]["kind"],
        "capability"
    );
    assert_eq!(json["actions"][0]["action"], "put_config");
    let back: Plan = serde_json::from_value(json).expect("deserialise");
    assert_eq!(back, p);
    assert_eq!(
        managed_annotations("a", "v1"),
        labels(&[
            (APP_ANNOTATION, "a"),
            (MANAGED_ANNOTATION, MANAGED_BY),
            (VERSION_ANNOTATION, "v1")
        ])
    );
}

#[test]
fn apps_sharing_a_config_name_do_not_fight() {
    let with_config = |name: &str, value: &str| {
        app(
            name,
            "v1",
            &format!(
                "    - name: web
      type: component
      properties:
        image: {IMG}
        config:
          - name: shared
            properties: {{ key: {value} }}
"
            ),
        )
    };
    let apps = [with_config("b", "from-b"), with_config("a", "from-a")];
    let (p, after) = converge(&apps, &[], &lattice(vec![host("h1", &[])]));
    let puts: Vec<&Action> = p
        .actions
        .iter()
        .filter(|a| matches!(a, Action::PutConfig { .. }))
        .collect();
    assert_eq!(
        puts,
        [&Action::PutConfig {
            name: "shared".into(),
            values: labels(&[("key", "from-a")]),
        }]
    );
    let settled = plan(&apps, &[], &after);
    assert_eq!(settled.status["a"].status, StatusType::Deployed);
    assert_eq!(settled.status["b"].status, StatusType::Failed);
    assert_eq!(
        settled.status["b"].message,
        "config `shared` is also defined by app `a` with other values; left as `a` defines it"
    );
}

#[test]
fn an_id_held_by_an_app_being_undeployed_waits_for_it() {
    // `new` reuses the id of `old`'s component on the only host.
    let new = app(
        "new",
        "v1",
        "    - name: web
      type: component
      properties:
        image: ghcr.io/x/y:1
        id: shared-web
",
    );
    let mut observed = lattice(vec![host("h1", &[])]);
    host_mut(&mut observed, "h1")
        .components
        .push(running("shared-web", IMG2, 1, Some("old")));
    let p = plan(std::slice::from_ref(&new), &["old".to_owned()], &observed);
    assert_eq!(p.actions, vec![stop("h1", "shared-web", IMG2, "old")]);
    assert_eq!(
        entry_status(&p, "new", "web"),
        (
            StatusType::Waiting,
            "component `web` on host h1 still belongs to app `old`, which is being undeployed; \
             no host available: every host already runs this id outside this app"
                .to_owned()
        )
    );
    let mut after = observed.clone();
    apply(&mut after, &p.actions);
    let (p, _) = converge(&[new], &["old".to_owned()], &after);
    assert_eq!(
        p.actions,
        vec![scale("h1", "shared-web", IMG, 1, "new", "v1")]
    );
}

/// A tiny deterministic generator for the randomised test.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[test]
fn random_lattices_settle_in_one_plan() {
    let zones = ["a", "b", "c"];
    for seed in 0..300u64 {
        let mut rng = Lcg(seed);
        let mut hosts = Vec::new();
        for i in 0..rng.below(6) {
            let mut h = host(&format!("h{i}"), &[("zone", zones[rng.below(3) as usize])]);
            h.draining = rng.below(6) == 0;
            // Leftovers from earlier plans: managed instances at odd counts.
            if rng.below(2) == 0 {
                h.components
                    .push(running("r-web", IMG, 1 + rng.below(4) as u32, Some("r")));
            }
            if rng.below(3) == 0 {
                h.providers
                    .push(provider_running("r-kv", KV_IMG, Some("r")));
            }
            hosts.push(h);
        }
        // Overlapping spreads: one without requirements, one or two by zone.
        let mut spreads: Vec<SpreadSpec<'_>> = vec![("any", &[], Some(1 + rng.below(3) as u32))];
        for zone in [("zone", "a"), ("zone", "b")]
            .iter()
            .take(rng.below(3) as usize)
        {
            spreads.push((
                "z",
                std::slice::from_ref(zone),
                Some(1 + rng.below(3) as u32),
            ));
        }
        let kv_scale = if rng.below(2) == 0 {
            spreadscaler(rng.below(4) as u32, &spreads)
        } else {
            daemonscaler(1, &[("zone", "c")])
        };
        let a = app(
            "r",
            "v1",
            &(component(
                "web",
                IMG,
                &(spreadscaler(rng.below(9) as u32, &spreads)
                    + "        - type: link
          properties:
            target: { name: kv }
            namespace: wasi
            package: keyvalue
            interfaces: [store]
"),
            ) + &format!(
                "    - name: kv
      type: capability
      properties:
        image: {KV_IMG}
      traits:
{kv_scale}"
            )),
        );
        let (_, mut after) = converge(std::slice::from_ref(&a), &[], &lattice(hosts));
        // Then a host drains and another goes away.
        let n = after.hosts.len() as u64;
        if n > 0 {
            after.hosts[rng.below(n) as usize].draining = true;
            after.hosts.remove(rng.below(n) as usize);
            after = converge(std::slice::from_ref(&a), &[], &after).1;
        }
        // The component sits only on live, non-draining hosts.
        for h in &after.hosts {
            if h.draining {
                assert!(
                    h.components.is_empty() && h.providers.is_empty(),
                    "seed {seed}"
                );
            }
        }
    }
}

/// wadm's rule for config named without `properties`: it is stored config, and an app that
/// names config nobody stored is failed, naming it; once stored, the app deploys.
#[test]
fn config_named_without_properties_must_be_stored() {
    let entry = "    - name: web\n      type: component\n      properties:\n        image: ghcr.io/x/y:1\n        config:\n          - name: site-settings\n";
    let apps = [app("cfg", "v1", entry)];
    let observed = lattice(vec![host("h1", &[])]);
    let (p, mut observed) = converge(&apps, &[], &observed);
    assert_eq!(p.status["cfg"].status, StatusType::Failed);
    assert!(
        p.status["cfg"].message.contains(
            "config `site-settings` is not defined in the manifest and no stored config has that name: store it with `trellis config put site-settings key=value`"
        ),
        "{}",
        p.status["cfg"].message
    );
    observed
        .configs
        .insert("site-settings".into(), labels(&[("theme", "dark")]));
    let (p, _) = converge(&apps, &[], &observed);
    assert_eq!(
        p.status["cfg"].status,
        StatusType::Deployed,
        "{}",
        p.status["cfg"].message
    );
    assert!(
        !p.actions
            .iter()
            .any(|a| matches!(a, Action::PutConfig { .. })),
        "stored config is not the app's to write: {:?}",
        p.actions
    );
}
