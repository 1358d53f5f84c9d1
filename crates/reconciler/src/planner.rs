//! [`plan`]: desired apps + observed lattice → actions and status.

use crate::model::{
    Action, AppStatus, ComponentStatus, DesiredApp, EntryKind, Observed, ObservedComponent,
    ObservedHost, ObservedProvider, Plan, StatusType,
};
use crate::placement::{SpreadSlot, distribute, split_by_weight};
use crate::{WARM_ANNOTATION, image_ref, managed_annotations, managed_app, warm_setting};
use std::collections::{BTreeMap, BTreeSet};
use trellis_control::{Link, LinkName, WorkloadId};
use trellis_manifest::{Component, DEFAULT_SPREAD_WEIGHT, Provider, ScalerKind, Spread};

/// Plans the actions that bring the lattice from `observed` to the state `apps` declare, and
/// cleans up after the apps named in `undeployed`.
///
/// Apps are planned by name; if two apps have the same name the first one given wins. A name
/// both in `apps` and in `undeployed` is treated as deployed. See the crate documentation for
/// the rules and the order of the actions.
pub fn plan(apps: &[DesiredApp], undeployed: &[String], observed: &Observed) -> Plan {
    let mut desired: Vec<&DesiredApp> = apps.iter().collect();
    desired.sort_by(|a, b| a.name.cmp(&b.name));
    desired.dedup_by(|b, a| a.name == b.name);
    let desired_names: BTreeSet<&str> = desired.iter().map(|a| a.name.as_str()).collect();
    let undeploying: BTreeSet<&str> = undeployed
        .iter()
        .map(String::as_str)
        .filter(|n| !desired_names.contains(n))
        .collect();

    let mut hosts: Vec<&ObservedHost> = observed.hosts.iter().collect();
    hosts.sort_by(|a, b| a.id.cmp(&b.id));
    hosts.dedup_by(|b, a| a.id == b.id);

    let mut links: Vec<&Link> = observed.links.iter().collect();
    links.sort_by(|a, b| LinkKey::of(a).cmp(&LinkKey::of(b)));

    let mut ctx = Context {
        hosts,
        links,
        configs: &observed.configs,
        undeploying,
        declared_links: desired
            .iter()
            .flat_map(|a| a.app.links.iter().map(|l| LinkKey::of(&l.link)))
            .collect(),
        config_claims: BTreeMap::new(),
        link_claims: BTreeMap::new(),
        deleted_links: BTreeSet::new(),
    };
    let mut out = Out::default();
    let mut status = BTreeMap::new();
    for app in &desired {
        status.insert(app.name.clone(), ctx.plan_app(app, &mut out));
    }
    let undeploying: Vec<&str> = ctx.undeploying.iter().copied().collect();
    for name in undeploying {
        status.insert(name.to_owned(), ctx.plan_undeploy(name, &mut out));
    }
    Plan {
        actions: out.into_actions(),
        status,
    }
}

/// The actions of a plan, by group; see [`Plan::actions`] for the order.
#[derive(Default)]
struct Out {
    configs: Vec<Action>,
    provider_starts: Vec<Action>,
    component_scales: Vec<Action>,
    link_puts: Vec<Action>,
    link_deletes: Vec<Action>,
    component_stops: Vec<Action>,
    provider_stops: Vec<Action>,
}

impl Out {
    fn into_actions(self) -> Vec<Action> {
        [
            self.configs,
            self.provider_starts,
            self.component_scales,
            self.link_puts,
            self.link_deletes,
            self.component_stops,
            self.provider_stops,
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

/// What identifies a link: `link.del` takes these four.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct LinkKey {
    source_id: WorkloadId,
    wit_namespace: String,
    wit_package: String,
    name: String,
}

impl LinkKey {
    fn of(link: &Link) -> Self {
        Self {
            source_id: link.source_id.clone(),
            wit_namespace: link.wit_namespace.clone(),
            wit_package: link.wit_package.clone(),
            name: link.name.as_str().to_owned(),
        }
    }

    fn delete(&self) -> Action {
        Action::DeleteLink {
            source_id: self.source_id.clone(),
            wit_namespace: self.wit_namespace.clone(),
            wit_package: self.wit_package.clone(),
            name: LinkName::new(self.name.clone()),
        }
    }
}

/// Whether two links are the same, the order of interfaces aside.
fn same_link(a: &Link, b: &Link) -> bool {
    let sorted = |l: &Link| {
        let mut i = l.interfaces.clone();
        i.sort();
        i
    };
    a.source_id == b.source_id
        && a.target == b.target
        && a.name == b.name
        && a.wit_namespace == b.wit_namespace
        && a.wit_package == b.wit_package
        && a.source_config == b.source_config
        && a.target_config == b.target_config
        && sorted(a) == sorted(b)
}

/// `src -> target (ns:pkg/a,b)`, plus the link name when it is not `default`.
fn describe_link(link: &Link) -> String {
    let name = if link.name == LinkName::default() {
        String::new()
    } else {
        format!(" named `{}`", link.name)
    };
    format!(
        "{} -> {} ({}:{}/{}){name}",
        link.source_id,
        link.target,
        link.wit_namespace,
        link.wit_package,
        link.interfaces.join(",")
    )
}

/// One observation about an entry or an app, with the status it implies.
struct Finding {
    status: StatusType,
    message: String,
}

impl Finding {
    fn new(status: StatusType, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

/// What planning one entry found out.
struct EntryReport {
    name: String,
    kind: EntryKind,
    findings: Vec<Finding>,
    /// How many actions the plan has for the entry.
    actions: usize,
    /// How far along it is ("2 of 3 instances placed"); the message while it reconciles or
    /// is deployed.
    summary: String,
}

impl EntryReport {
    fn new(name: &str, kind: EntryKind) -> Self {
        Self {
            name: name.to_owned(),
            kind,
            findings: Vec::new(),
            actions: 0,
            summary: String::new(),
        }
    }

    fn finish(self) -> ComponentStatus {
        let mut findings = self.findings;
        if self.actions > 0 {
            findings.push(Finding::new(StatusType::Reconciling, self.summary.clone()));
        }
        let status = worst(&findings);
        let message = if status == StatusType::Deployed {
            self.summary
        } else {
            join_with_status(&findings, status)
        };
        ComponentStatus {
            name: self.name,
            kind: self.kind,
            status,
            message,
        }
    }
}

fn worst(findings: &[Finding]) -> StatusType {
    findings
        .iter()
        .fold(StatusType::Deployed, |s, f| s.worst(f.status))
}

fn join_with_status(findings: &[Finding], status: StatusType) -> String {
    let messages: Vec<&str> = findings
        .iter()
        .filter(|f| f.status == status)
        .map(|f| f.message.as_str())
        .collect();
    messages.join("; ")
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn host_list(hosts: &[String]) -> String {
    format!(
        "{} {}",
        if hosts.len() == 1 { "host" } else { "hosts" },
        hosts.join(", ")
    )
}

/// `k=v, k2=v2`.
fn describe_requirements(requirements: &BTreeMap<String, String>) -> String {
    let parts: Vec<String> = requirements
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    parts.join(", ")
}

static NO_REQUIREMENTS: BTreeMap<String, String> = BTreeMap::new();

/// A scaler's spreads; no spread means one spread without requirements.
fn spreads_of(spread: &[Spread]) -> Vec<(&BTreeMap<String, String>, u32)> {
    if spread.is_empty() {
        vec![(&NO_REQUIREMENTS, DEFAULT_SPREAD_WEIGHT)]
    } else {
        spread.iter().map(|s| (&s.requirements, s.weight)).collect()
    }
}

fn matches(host: &ObservedHost, requirements: &BTreeMap<String, String>) -> bool {
    requirements
        .iter()
        .all(|(k, v)| host.labels.get(k) == Some(v))
}

/// State shared by the apps of one plan.
struct Context<'a> {
    /// Sorted by id, one per id.
    hosts: Vec<&'a ObservedHost>,
    /// Sorted by [`LinkKey`].
    links: Vec<&'a Link>,
    configs: &'a BTreeMap<String, BTreeMap<String, String>>,
    /// Apps to clean up (never also desired).
    undeploying: BTreeSet<&'a str>,
    /// Every link some desired app declares: never deleted.
    declared_links: BTreeSet<LinkKey>,
    /// Named config put by an earlier app of this plan: which app, which values.
    config_claims: BTreeMap<&'a str, (&'a str, &'a BTreeMap<String, String>)>,
    /// Links declared by an earlier app of this plan.
    link_claims: BTreeMap<LinkKey, (&'a str, &'a Link)>,
    /// Links this plan already deletes.
    deleted_links: BTreeSet<LinkKey>,
}

/// Where one entry may and may not go.
struct Placement {
    /// Host indices where the entry's id runs outside this app: never touched or used.
    blocked: BTreeSet<usize>,
}

impl<'a> Context<'a> {
    fn host_id(&self, i: usize) -> String {
        self.hosts[i].id.to_string()
    }

    /// Hosts a scaler may use for `requirements`, in id order.
    fn eligible(&self, requirements: &BTreeMap<String, String>, p: &Placement) -> Vec<usize> {
        (0..self.hosts.len())
            .filter(|i| {
                let h = self.hosts[*i];
                !h.draining && !p.blocked.contains(i) && matches(h, requirements)
            })
            .collect()
    }

    /// Why no host is eligible for `requirements`.
    fn unavailable(
        &self,
        requirements: &BTreeMap<String, String>,
        placement: &Placement,
    ) -> String {
        if self.hosts.is_empty() {
            return "no hosts in the lattice".to_owned();
        }
        let matching: Vec<usize> = (0..self.hosts.len())
            .filter(|i| matches(self.hosts[*i], requirements))
            .collect();
        if matching.is_empty() {
            return format!(
                "no host matches requirements {}",
                describe_requirements(requirements)
            );
        }
        let which = if requirements.is_empty() {
            "every host".to_owned()
        } else {
            format!(
                "every host matching requirements {}",
                describe_requirements(requirements)
            )
        };
        let draining = matching.iter().filter(|i| self.hosts[**i].draining).count();
        let why = if draining == matching.len() {
            "is draining"
        } else if draining == 0 {
            "already runs this id outside this app"
        } else {
            "is draining or already runs this id outside this app"
        };
        // Every matching host is draining or blocked, or it would be eligible.
        debug_assert!(
            matching
                .iter()
                .all(|i| self.hosts[*i].draining || placement.blocked.contains(i))
        );
        format!("no host available: {which} {why}")
    }

    /// A finding for an entry whose id runs on `host` under annotations that are not this
    /// app's.
    fn conflict(&self, kind: &str, name: &str, host: usize, owner: Option<&str>) -> Finding {
        let host = self.host_id(host);
        match owner {
            Some(other) if self.undeploying.contains(other) => Finding::new(
                StatusType::Waiting,
                format!(
                    "{kind} `{name}` on host {host} still belongs to app `{other}`, which is being undeployed"
                ),
            ),
            _ => Finding::new(
                StatusType::Failed,
                format!("{kind} `{name}` on host {host} is not managed by this app; left alone"),
            ),
        }
    }

    fn plan_app(&mut self, app: &'a DesiredApp, out: &mut Out) -> AppStatus {
        let mut app_findings = Vec::new();
        self.plan_config(app, out, &mut app_findings);

        let mut entries = Vec::new();
        let mut targets: BTreeMap<&str, BTreeMap<usize, u32>> = BTreeMap::new();
        // Entry ids whose links this app may delete: not those that run outside the app.
        let mut link_sources: BTreeSet<&str> = BTreeSet::new();
        for c in &app.app.components {
            let (report, target, blocked) = self.plan_component(app, c, out);
            targets.insert(&c.name, target);
            if !blocked {
                link_sources.insert(c.id.as_str());
            }
            entries.push(report);
        }
        for p in &app.app.providers {
            let (report, blocked) = self.plan_provider(app, p, &targets, out);
            if !blocked {
                link_sources.insert(p.id.as_str());
            }
            entries.push(report);
        }
        let orphans = self.plan_orphans(app, out, &mut app_findings);
        link_sources.extend(orphans);
        self.plan_links(app, &link_sources, out, &mut app_findings);

        let entries: Vec<ComponentStatus> = entries.into_iter().map(EntryReport::finish).collect();
        let status = entries
            .iter()
            .fold(worst(&app_findings), |s, e| s.worst(e.status));
        let message = if status == StatusType::Deployed {
            format!(
                "{} and {} deployed",
                plural(app.app.components.len(), "component", "components"),
                plural(app.app.providers.len(), "provider", "providers")
            )
        } else {
            let mut parts: Vec<String> = entries
                .iter()
                .filter(|e| e.status == status)
                .map(|e| {
                    if status == StatusType::Failed {
                        // Failure messages name the entry already.
                        e.message.clone()
                    } else {
                        format!("{}: {}", e.name, e.message)
                    }
                })
                .collect();
            parts.extend(
                app_findings
                    .iter()
                    .filter(|f| f.status == status)
                    .map(|f| f.message.clone()),
            );
            parts.join("; ")
        };
        AppStatus {
            status,
            message,
            components: entries,
        }
    }

    fn plan_config(&mut self, app: &'a DesiredApp, out: &mut Out, findings: &mut Vec<Finding>) {
        // Config named without `properties` is config stored beforehand (wadm's rule): it
        // must exist, or the app is failed with the name and how to store it.
        for name in app.app.stored_config_names() {
            if !self.configs.contains_key(name) {
                findings.push(Finding::new(
                    StatusType::Failed,
                    format!(
                        "config `{name}` is not defined in the manifest and no stored config has that name: store it with `trellis config put {name} key=value`"
                    ),
                ));
            }
        }
        for (name, values) in &app.app.configs {
            if let Some((owner, claimed)) = self.config_claims.get(name.as_str()) {
                if *claimed != values {
                    findings.push(Finding::new(
                        StatusType::Failed,
                        format!(
                            "config `{name}` is also defined by app `{owner}` with other values; left as `{owner}` defines it"
                        ),
                    ));
                }
                continue;
            }
            self.config_claims
                .insert(name.as_str(), (app.name.as_str(), values));
            if self.configs.get(name) != Some(values) {
                out.configs.push(Action::PutConfig {
                    name: name.clone(),
                    values: values.clone(),
                });
                findings.push(Finding::new(
                    StatusType::Reconciling,
                    format!("putting config `{name}`"),
                ));
            }
        }
    }

    /// Plans one component; returns its report, its share per host index, and whether its
    /// id runs outside the app somewhere.
    fn plan_component(
        &self,
        app: &DesiredApp,
        c: &Component,
        out: &mut Out,
    ) -> (EntryReport, BTreeMap<usize, u32>, bool) {
        let mut report = EntryReport::new(&c.name, EntryKind::Component);
        let image = image_ref(&c.image);
        let mut current: BTreeMap<usize, &ObservedComponent> = BTreeMap::new();
        let mut placement = Placement {
            blocked: BTreeSet::new(),
        };
        for (i, host) in self.hosts.iter().enumerate() {
            for oc in host.components.iter().filter(|oc| oc.id == c.id) {
                match managed_app(&oc.annotations) {
                    Some(owner) if owner == app.name => {
                        current.insert(i, oc);
                    }
                    owner => {
                        placement.blocked.insert(i);
                        report
                            .findings
                            .push(self.conflict("component", &c.name, i, owner));
                    }
                }
            }
        }

        let spreads = spreads_of(&c.scale.spread);
        let (target, declared) = match c.scale.kind {
            ScalerKind::Spread => {
                let weights: Vec<u32> = spreads.iter().map(|(_, w)| *w).collect();
                let counts = split_by_weight(c.scale.instances, &weights);
                let slots: Vec<SpreadSlot> = spreads
                    .iter()
                    .zip(counts)
                    .map(|((requirements, _), count)| SpreadSlot {
                        count,
                        eligible: self.eligible(requirements, &placement),
                    })
                    .collect();
                for (slot, (requirements, _)) in slots.iter().zip(&spreads) {
                    if slot.count > 0 && slot.eligible.is_empty() {
                        report.findings.push(Finding::new(
                            StatusType::Waiting,
                            self.unavailable(requirements, &placement),
                        ));
                    }
                }
                let counts: BTreeMap<usize, u32> = current
                    .iter()
                    .map(|(i, oc)| (*i, oc.max_instances))
                    .collect();
                (distribute(&slots, &counts), u64::from(c.scale.instances))
            }
            ScalerKind::Daemon => {
                let eligible = self.daemon_hosts(&c.scale.spread, &placement);
                if c.scale.instances > 0 && eligible.is_empty() {
                    report
                        .findings
                        .push(self.daemon_unavailable(&spreads, &placement));
                }
                let declared = u64::from(c.scale.instances) * eligible.len() as u64;
                let target = if c.scale.instances > 0 {
                    eligible
                        .into_iter()
                        .map(|i| (i, c.scale.instances))
                        .collect()
                } else {
                    BTreeMap::new()
                };
                (target, declared)
            }
        };

        let mut annotations = managed_annotations(&app.name, &app.version);
        let warm = warm_setting(&app.app, &c.name);
        if let Some(warm) = warm {
            annotations.insert(WARM_ANNOTATION.to_owned(), warm.clone());
        }
        let mut placed = 0u64;
        let mut stopping = Vec::new();
        for (i, host) in self.hosts.iter().enumerate() {
            let want = target.get(&i).copied().unwrap_or(0);
            match (want, current.get(&i)) {
                (0, None) => {}
                (0, Some(oc)) => {
                    out.component_stops.push(Action::ScaleComponent {
                        host_id: host.id.clone(),
                        component_id: c.id.clone(),
                        image_ref: oc.image_ref.clone(),
                        count: 0,
                        config: Vec::new(),
                        annotations: oc.annotations.clone(),
                    });
                    report.actions += 1;
                    stopping.push(host.id.to_string());
                }
                (want, Some(oc))
                    if oc.max_instances == want
                        && oc.image_ref == image
                        && oc.annotations.get(WARM_ANNOTATION) == warm =>
                {
                    placed += u64::from(want);
                }
                (want, current) => {
                    if let Some(oc) = current.filter(|oc| oc.image_ref == image) {
                        placed += u64::from(oc.max_instances.min(want));
                    }
                    // The host failed to start this very image last time: say why (the
                    // action goes out again; a fixed cause heals it).
                    if let Some(failed) = host
                        .failed_components
                        .iter()
                        .find(|f| f.id == c.id && f.image_ref == image)
                    {
                        report.findings.push(Finding::new(
                            StatusType::Failed,
                            format!(
                                "component `{}` did not start on host {}: {}",
                                c.name, host.id, failed.reason
                            ),
                        ));
                    }
                    out.component_scales.push(Action::ScaleComponent {
                        host_id: host.id.clone(),
                        component_id: c.id.clone(),
                        image_ref: image.clone(),
                        count: want,
                        config: c.config.clone(),
                        annotations: annotations.clone(),
                    });
                    report.actions += 1;
                }
            }
        }
        report.summary = format!("{placed} of {declared} instances placed");
        if !stopping.is_empty() {
            report.summary += &format!("; removing instances from {}", host_list(&stopping));
        }
        let blocked = !placement.blocked.is_empty();
        (report, target, blocked)
    }

    /// Hosts a daemon scaler runs on: eligible for any of its spreads (any host when it has
    /// none).
    fn daemon_hosts(&self, spread: &[Spread], placement: &Placement) -> Vec<usize> {
        let mut hosts: BTreeSet<usize> = BTreeSet::new();
        for (requirements, _) in spreads_of(spread) {
            hosts.extend(self.eligible(requirements, placement));
        }
        hosts.into_iter().collect()
    }

    fn daemon_unavailable(
        &self,
        spreads: &[(&BTreeMap<String, String>, u32)],
        placement: &Placement,
    ) -> Finding {
        let mut reasons: Vec<String> = spreads
            .iter()
            .map(|(requirements, _)| self.unavailable(requirements, placement))
            .collect();
        reasons.dedup();
        Finding::new(StatusType::Waiting, reasons.join("; "))
    }

    /// Plans one provider; returns its report and whether its id runs outside the app
    /// somewhere.
    fn plan_provider(
        &self,
        app: &DesiredApp,
        p: &Provider,
        component_targets: &BTreeMap<&str, BTreeMap<usize, u32>>,
        out: &mut Out,
    ) -> (EntryReport, bool) {
        let mut report = EntryReport::new(&p.name, EntryKind::Capability);
        let mut present: BTreeMap<usize, &ObservedProvider> = BTreeMap::new();
        let mut placement = Placement {
            blocked: BTreeSet::new(),
        };
        for (i, host) in self.hosts.iter().enumerate() {
            for op in host.providers.iter().filter(|op| op.id == p.id) {
                match managed_app(&op.annotations) {
                    Some(owner) if owner == app.name => {
                        present.insert(i, op);
                    }
                    owner => {
                        placement.blocked.insert(i);
                        report
                            .findings
                            .push(self.conflict("provider", &p.name, i, owner));
                    }
                }
            }
        }

        // Hosts where components linked to the provider (either direction) are placed.
        let mut colocated: BTreeSet<usize> = BTreeSet::new();
        for spec in &app.app.links {
            let linked = if spec.source == p.name {
                &spec.target
            } else if spec.target == p.name {
                &spec.source
            } else {
                continue;
            };
            if let Some(target) = component_targets.get(linked.as_str()) {
                colocated.extend(target.keys().filter(|i| !placement.blocked.contains(i)));
            }
        }

        let spreads = spreads_of(&p.scale.spread);
        let mut wanted = colocated.clone();
        match p.scale.kind {
            ScalerKind::Spread => {
                let weights: Vec<u32> = spreads.iter().map(|(_, w)| *w).collect();
                let counts = split_by_weight(p.scale.instances, &weights);
                let slots: Vec<SpreadSlot> = spreads
                    .iter()
                    .zip(counts)
                    .map(|((requirements, _), count)| SpreadSlot {
                        count,
                        eligible: self.eligible(requirements, &placement),
                    })
                    .collect();
                let have = |wanted: &BTreeSet<usize>, slot: &SpreadSlot| {
                    slot.eligible.iter().filter(|i| wanted.contains(i)).count()
                };
                let need = |slot: &SpreadSlot| usize::try_from(slot.count).unwrap_or(usize::MAX);
                // Keep it wherever it runs and may run, add hosts (by id) where a spread has
                // too few, then drop what no spread needs: new hosts first, then the highest
                // ids. What is left is a fixed point: planning again keeps exactly it.
                for slot in &slots {
                    wanted.extend(slot.eligible.iter().filter(|i| present.contains_key(i)));
                }
                for (slot, (requirements, _)) in slots.iter().zip(&spreads) {
                    let missing = need(slot).saturating_sub(have(&wanted, slot));
                    let more: Vec<usize> = slot
                        .eligible
                        .iter()
                        .copied()
                        .filter(|i| !wanted.contains(i))
                        .take(missing)
                        .collect();
                    let short = missing - more.len();
                    wanted.extend(more);
                    if short > 0 {
                        let message = if slot.eligible.is_empty() {
                            self.unavailable(requirements, &placement)
                        } else if requirements.is_empty() {
                            format!(
                                "wants {} but only {} available",
                                plural(need(slot), "host", "hosts"),
                                slot.eligible.len()
                            )
                        } else {
                            format!(
                                "wants {} but only {} available for requirements {}",
                                plural(need(slot), "host", "hosts"),
                                slot.eligible.len(),
                                describe_requirements(requirements)
                            )
                        };
                        report
                            .findings
                            .push(Finding::new(StatusType::Waiting, message));
                    }
                }
                let mut candidates: Vec<usize> = wanted.difference(&colocated).copied().collect();
                candidates.sort_by(|a, b| {
                    present
                        .contains_key(a)
                        .cmp(&present.contains_key(b))
                        .then(b.cmp(a))
                });
                for i in candidates {
                    let surplus = slots
                        .iter()
                        .filter(|slot| slot.eligible.contains(&i))
                        .all(|slot| have(&wanted, slot) > need(slot));
                    if surplus {
                        wanted.remove(&i);
                    }
                }
            }
            ScalerKind::Daemon => {
                if p.scale.instances > 0 {
                    let eligible = self.daemon_hosts(&p.scale.spread, &placement);
                    if eligible.is_empty() {
                        report
                            .findings
                            .push(self.daemon_unavailable(&spreads, &placement));
                    }
                    wanted.extend(eligible);
                }
            }
        }

        let annotations = managed_annotations(&app.name, &app.version);
        let mut running = 0usize;
        let mut stopping = Vec::new();
        for (i, host) in self.hosts.iter().enumerate() {
            let stop = Action::StopProvider {
                host_id: host.id.clone(),
                provider_id: p.id.clone(),
            };
            match (wanted.contains(&i), present.get(&i)) {
                (true, None) => {
                    out.provider_starts.push(Action::StartProvider {
                        host_id: host.id.clone(),
                        provider_id: p.id.clone(),
                        image_ref: p.image_ref.clone(),
                        config: p.config.clone(),
                        annotations: annotations.clone(),
                    });
                    report.actions += 1;
                }
                (true, Some(op)) => {
                    if op.image_ref.as_ref().is_some_and(|r| *r != p.image_ref) {
                        // Another image: stop it now, start the new one once it is gone.
                        out.provider_stops.push(stop);
                        report.actions += 1;
                        stopping.push(host.id.to_string());
                    } else if let Some(reason) = &op.failed {
                        report.findings.push(Finding::new(
                            StatusType::Failed,
                            format!("provider {} failed on host {}: {reason}", p.name, host.id),
                        ));
                    } else if let Some(reason) = &op.unhealthy {
                        running += 1;
                        report.findings.push(Finding::new(
                            StatusType::Unhealthy,
                            format!(
                                "provider {} is unhealthy on host {}: {reason}",
                                p.name, host.id
                            ),
                        ));
                    } else {
                        running += 1;
                    }
                }
                (false, Some(_)) => {
                    out.provider_stops.push(stop);
                    report.actions += 1;
                    stopping.push(host.id.to_string());
                }
                (false, None) => {}
            }
        }
        report.summary = format!(
            "running on {running} of {}",
            plural(wanted.len(), "host", "hosts")
        );
        if !stopping.is_empty() {
            report.summary += &format!("; stopping on {}", host_list(&stopping));
        }
        let blocked = !placement.blocked.is_empty();
        (report, blocked)
    }

    /// Stops what this app manages but no longer declares; returns the ids stopped.
    fn plan_orphans(
        &self,
        app: &DesiredApp,
        out: &mut Out,
        findings: &mut Vec<Finding>,
    ) -> BTreeSet<&'a str> {
        let components: BTreeSet<&str> = app.app.components.iter().map(|c| c.id.as_str()).collect();
        let providers: BTreeSet<&str> = app.app.providers.iter().map(|p| p.id.as_str()).collect();
        let mut ids = BTreeSet::new();
        for host in self.hosts.iter().copied() {
            for oc in &host.components {
                if managed_app(&oc.annotations) == Some(app.name.as_str())
                    && !components.contains(oc.id.as_str())
                {
                    out.component_stops.push(Action::ScaleComponent {
                        host_id: host.id.clone(),
                        component_id: oc.id.clone(),
                        image_ref: oc.image_ref.clone(),
                        count: 0,
                        config: Vec::new(),
                        annotations: oc.annotations.clone(),
                    });
                    findings.push(Finding::new(
                        StatusType::Reconciling,
                        format!(
                            "stopping component `{}` on host {}: no longer in the manifest",
                            oc.id, host.id
                        ),
                    ));
                    ids.insert(oc.id.as_str());
                }
            }
            for op in &host.providers {
                if managed_app(&op.annotations) == Some(app.name.as_str())
                    && !providers.contains(op.id.as_str())
                {
                    out.provider_stops.push(Action::StopProvider {
                        host_id: host.id.clone(),
                        provider_id: op.id.clone(),
                    });
                    findings.push(Finding::new(
                        StatusType::Reconciling,
                        format!(
                            "stopping provider `{}` on host {}: no longer in the manifest",
                            op.id, host.id
                        ),
                    ));
                    ids.insert(op.id.as_str());
                }
            }
        }
        ids
    }

    fn plan_links(
        &mut self,
        app: &'a DesiredApp,
        sources: &BTreeSet<&str>,
        out: &mut Out,
        findings: &mut Vec<Finding>,
    ) {
        for spec in &app.app.links {
            let link = &spec.link;
            let key = LinkKey::of(link);
            if let Some((owner, claimed)) = self.link_claims.get(&key) {
                if !same_link(claimed, link) {
                    findings.push(Finding::new(
                        StatusType::Failed,
                        format!(
                            "link {} is also declared by app `{owner}` differently; left as `{owner}` declares it",
                            describe_link(link)
                        ),
                    ));
                }
                continue;
            }
            self.link_claims
                .insert(key.clone(), (app.name.as_str(), link));
            match self.links.iter().find(|l| LinkKey::of(l) == key) {
                Some(existing) if same_link(existing, link) => {}
                Some(existing) if existing.target != link.target => {
                    // A link to another target with the same key is refused: replace it.
                    out.link_puts.push(key.delete());
                    out.link_puts.push(Action::PutLink(link.clone()));
                    findings.push(Finding::new(
                        StatusType::Reconciling,
                        format!(
                            "replacing link {} with {}",
                            describe_link(existing),
                            describe_link(link)
                        ),
                    ));
                }
                _ => {
                    out.link_puts.push(Action::PutLink(link.clone()));
                    findings.push(Finding::new(
                        StatusType::Reconciling,
                        format!("putting link {}", describe_link(link)),
                    ));
                }
            }
        }
        for link in self.links.clone() {
            let key = LinkKey::of(link);
            if sources.contains(link.source_id.as_str())
                && !self.declared_links.contains(&key)
                && self.deleted_links.insert(key.clone())
            {
                out.link_deletes.push(key.delete());
                findings.push(Finding::new(
                    StatusType::Reconciling,
                    format!(
                        "deleting link {}: no longer in the manifest",
                        describe_link(link)
                    ),
                ));
            }
        }
    }

    fn plan_undeploy(&mut self, name: &str, out: &mut Out) -> AppStatus {
        let mut ids: BTreeSet<&str> = BTreeSet::new();
        let (mut components, mut providers, mut links) = (0, 0, 0);
        for host in self.hosts.iter().copied() {
            for oc in &host.components {
                if managed_app(&oc.annotations) == Some(name) {
                    out.component_stops.push(Action::ScaleComponent {
                        host_id: host.id.clone(),
                        component_id: oc.id.clone(),
                        image_ref: oc.image_ref.clone(),
                        count: 0,
                        config: Vec::new(),
                        annotations: oc.annotations.clone(),
                    });
                    components += 1;
                    ids.insert(oc.id.as_str());
                }
            }
            for op in &host.providers {
                if managed_app(&op.annotations) == Some(name) {
                    out.provider_stops.push(Action::StopProvider {
                        host_id: host.id.clone(),
                        provider_id: op.id.clone(),
                    });
                    providers += 1;
                    ids.insert(op.id.as_str());
                }
            }
        }
        for link in &self.links {
            let key = LinkKey::of(link);
            if ids.contains(link.source_id.as_str())
                && !self.declared_links.contains(&key)
                && self.deleted_links.insert(key.clone())
            {
                out.link_deletes.push(key.delete());
                links += 1;
            }
        }
        let message = if components + providers + links == 0 {
            "undeployed".to_owned()
        } else {
            let mut parts = Vec::new();
            if components > 0 {
                parts.push(format!(
                    "stopping {}",
                    plural(components, "component placement", "component placements")
                ));
            }
            if providers > 0 {
                parts.push(format!(
                    "stopping {}",
                    plural(providers, "provider", "providers")
                ));
            }
            if links > 0 {
                parts.push(format!("deleting {}", plural(links, "link", "links")));
            }
            format!("undeploying: {}", parts.join(", "))
        };
        AppStatus {
            status: StatusType::Undeployed,
            message,
            components: Vec::new(),
        }
    }
}
