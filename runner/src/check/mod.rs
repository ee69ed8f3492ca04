//! `firedrill check`: whether firedrill will work in this cluster, before anything is armed.
//! Each check reads only: RBAC through SelfSubjectAccessReview (the API server answers for the
//! caller's credentials; nothing is created or changed), a namespace's Pod Security label, the
//! ledger key and the kill switch, the store in a transaction rolled back, the monitoring
//! endpoints' readiness, the scheduler Deployment's image and Route 53's records. With
//! `--network` one check changes something, through a ledger, and removes it: the
//! NetworkPolicy enforcement canary (`canary`).

pub mod canary;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use firedrill_experiments::{Mode, Settings};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use serde_json::{json, Value};

use crate::cluster::access::{self, Rule, Scope};
use crate::cluster::kubernetes::{Kube, SCHEDULER_DEPLOYMENT};
use crate::config::scenario::Fault;
use crate::config::Config;

/// The oldest Kubernetes firedrill supports: Pod Security admission (the labels `check` and the
/// helpers rely on) and `policy/v1` evictions and budgets are GA from 1.25.
pub const OLDEST: (u32, u32) = (1, 25);

/// How long a monitoring endpoint may take to answer.
const ENDPOINT_TIMEOUT: Duration = Duration::from_secs(5);

/// The Pod Security label a namespace enforces.
pub const ENFORCE_LABEL: &str = "pod-security.kubernetes.io/enforce";

/// Every check's name, as `--format json`, `/readyz` and the `firedrill_check` metric say it.
pub const CHECKS: [&str; 12] = [
    "api",
    "rbac",
    "pod-security",
    "ledger-key",
    "kill-switch",
    "scheduler-image",
    "store",
    "pushgateway",
    "prometheus",
    "alertmanager",
    "route53",
    "network",
];

/// The checks without which the scheduler cannot work at all: the API, its rights, and the key
/// every ledger is signed with. One failing makes the scheduler's `/readyz` fail; the others
/// are reported there and in the metric, and leave it ready.
pub const CRITICAL: [&str; 3] = ["api", "rbac", "ledger-key"];

/// How often the scheduler runs the read-only checks again after its start, so `/readyz` and
/// the metric follow a fix (or a regression) without a restart.
pub const RECHECK_EVERY: Duration = Duration::from_secs(15 * 60);

/// One check's verdict: what was checked and found, and when it failed, how to fix it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Line {
    /// Which check: one of [`CHECKS`].
    pub check: &'static str,
    pub passed: bool,
    pub what: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// `false`: this could not be checked here (said in `what`); it fails nothing, and is not
    /// shown as passed either.
    #[serde(skip_serializing_if = "is_true")]
    pub checked: bool,
}

fn is_true(b: &bool) -> bool {
    *b
}

impl Line {
    fn pass(check: &'static str, what: impl Into<String>) -> Line {
        Line {
            check,
            passed: true,
            what: what.into(),
            fix: None,
            checked: true,
        }
    }

    /// What could not be checked here, and why: neither ✓ nor ✗.
    fn unchecked(check: &'static str, what: impl Into<String>) -> Line {
        Line {
            checked: false,
            ..Line::pass(check, what)
        }
    }

    fn fail(check: &'static str, what: impl Into<String>, fix: impl Into<String>) -> Line {
        Line {
            check,
            passed: false,
            what: what.into(),
            fix: Some(fix.into()),
            checked: true,
        }
    }
}

/// Every check's line, in the order they ran.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Report {
    pub checks: Vec<Line>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|l| l.passed)
    }

    /// One line per check, ✓ or ✗ with the fix, then the count.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for line in &self.checks {
            match &line.fix {
                None if !line.checked => out.push_str(&format!("? {}\n", line.what)),
                None => out.push_str(&format!("✓ {}\n", line.what)),
                Some(fix) => out.push_str(&format!("✗ {}; fix: {fix}\n", line.what)),
            }
        }
        let failed = self.checks.iter().filter(|l| !l.passed).count();
        let unchecked = self.checks.iter().filter(|l| !l.checked).count();
        let total = self.checks.len();
        out.push_str(&match (failed, unchecked) {
            (0, 0) => format!("all {total} checks passed\n"),
            (n, 0) => format!("{n} of {total} checks failed\n"),
            (0, u) => format!(
                "{} of {total} checks passed, {u} could not be checked\n",
                total - u
            ),
            (n, u) => format!("{n} of {total} checks failed, {u} could not be checked\n"),
        });
        out
    }

    pub fn json(&self) -> Value {
        json!({ "passed": self.passed(), "checks": self.checks })
    }

    /// Whether every line of the check named `check` passed; `None` when it did not run.
    pub fn check_passed(&self, check: &str) -> Option<bool> {
        let mut lines = self.checks.iter().filter(|l| l.check == check).peekable();
        lines.peek()?;
        Some(lines.all(|l| l.passed))
    }

    /// The lines of the [`CRITICAL`] checks that failed.
    pub fn critical_failures(&self) -> Vec<&Line> {
        self.checks
            .iter()
            .filter(|l| !l.passed && CRITICAL.contains(&l.check))
            .collect()
    }
}

/// The cluster did not answer at all: nothing else can be checked.
#[derive(Debug, thiserror::Error)]
#[error("the Kubernetes API does not answer ({source}); check KUBECONFIG (its current context and server) or, in a pod, its service account")]
pub struct Unreachable {
    #[source]
    source: kube::Error,
}

impl Report {
    /// The report of a cluster whose API did not answer: that one failed line.
    pub fn unreachable(e: &Unreachable) -> Report {
        Report {
            checks: vec![Line::fail(
                "api",
                format!("Kubernetes API: {}", e.source),
                "make the API server reachable from here (KUBECONFIG's server, or in a pod its network and service account), then check again",
            )],
        }
    }
}

/// Runs every read-only check against the cluster of `kube` (firedrill's namespace is its
/// namespace), for the drills of `config` when one is given.
pub async fn run(kube: &Kube, config: Option<&Config>) -> Result<Report, Unreachable> {
    run_with(kube, config, None).await
}

/// [`run`], and with `network` the NetworkPolicy enforcement canary too (last, and its rights
/// asked first with the others).
pub async fn run_with(
    kube: &Kube,
    config: Option<&Config>,
    network: Option<&canary::Canary>,
) -> Result<Report, Unreachable> {
    let mut report = Report::default();
    report.checks.push(api(kube).await?);
    let drills = config.map(|c| c.drills.as_slice()).unwrap_or_default();
    let canary_in = network.map(|_| kube.namespace());
    report.checks.extend(rbac(kube, drills, canary_in).await);
    report.checks.extend(pod_security(kube, drills).await);
    report.checks.push(ledger_key(kube).await);
    report.checks.push(kill_switch(kube).await);
    report.checks.push(scheduler_image(kube).await);
    if let Some(config) = config {
        report.checks.push(store(config).await);
        report.checks.extend(endpoints(config).await);
        report.checks.extend(route53(config).await);
    }
    if let Some(canary) = network {
        report.checks.push(canary::run(kube, canary).await);
    }
    Ok(report)
}

/// The API answers `/version`, and with a version firedrill supports.
async fn api(kube: &Kube) -> Result<Line, Unreachable> {
    let info = kube
        .client()
        .apiserver_version()
        .await
        .map_err(|source| Unreachable { source })?;
    // Managed clusters append to the minor ("32+").
    let number = |s: &str| -> Option<u32> {
        s.trim_end_matches(|c: char| !c.is_ascii_digit())
            .parse()
            .ok()
    };
    let version = (number(&info.major), number(&info.minor));
    let (major, minor) = OLDEST;
    Ok(match version {
        (Some(a), Some(b)) if (a, b) >= OLDEST => Line::pass(
            "api",
            format!(
                "Kubernetes API answers: {} (supported: {major}.{minor} and later)",
                info.git_version
            ),
        ),
        _ => Line::fail(
            "api",
            format!(
                "Kubernetes API answers: {} (major {:?}, minor {:?}), older than firedrill supports",
                info.git_version, info.major, info.minor
            ),
            format!("upgrade the cluster to Kubernetes {major}.{minor} or later"),
        ),
    })
}

/// Every namespace a drill acts in: its targets' and its dependency's.
fn namespaces(fault: &Fault) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = fault.targets.iter().map(|t| t.namespace.clone()).collect();
    out.extend(firedrill_experiments::also_reads(fault.settings).map(str::to_owned));
    if let Settings::RegionFailover(rf) = fault.settings {
        out.extend(rf.isolate.iter().map(|i| i.namespace.clone()));
    }
    out
}

/// Each rule to ask about (in a namespace, or cluster-wide: `None`) and who needs it.
/// With `canary_in`, the canary's rules in that namespace (firedrill's own) too.
fn wanted(
    drills: &[crate::config::Drill],
    canary_in: Option<&str>,
) -> BTreeMap<(Option<String>, Rule), BTreeSet<String>> {
    let mut wanted: BTreeMap<(Option<String>, Rule), BTreeSet<String>> = BTreeMap::new();
    if let Some(ns) = canary_in {
        for rule in access::CANARY {
            wanted
                .entry((Some(ns.to_owned()), *rule))
                .or_default()
                .insert("`check --network`'s canary".to_owned());
        }
    }
    for rule in access::SWEEP {
        wanted
            .entry((None, *rule))
            .or_default()
            .insert("the sweep and `stop`".to_owned());
    }
    // A scenario needs what each of its steps' kinds needs, where each step acts.
    for fault in drills.iter().flat_map(crate::config::Drill::faults) {
        let places = namespaces(&fault);
        for rule in access::needs(fault.kind()) {
            let who = format!("{} ({})", fault.who, fault.kind());
            match rule.scope {
                Scope::Cluster => {
                    wanted.entry((None, rule)).or_default().insert(who);
                }
                Scope::Namespace => {
                    for ns in &places {
                        wanted
                            .entry((Some(ns.clone()), rule))
                            .or_default()
                            .insert(who.clone());
                    }
                }
            }
        }
    }
    wanted
}

/// The SelfSubjectAccessReview that asks whether the caller may `rule` in `namespace`.
pub fn review(namespace: Option<&str>, rule: &Rule) -> SelfSubjectAccessReview {
    let (resource, subresource) = match rule.resource.split_once('/') {
        Some((r, s)) => (r, Some(s.to_owned())),
        None => (rule.resource, None),
    };
    SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                namespace: namespace.map(str::to_owned),
                verb: Some(rule.verb.to_owned()),
                group: Some(rule.group.to_owned()),
                resource: Some(resource.to_owned()),
                subresource,
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The fix for a denied rule: the ClusterRole of deploy/kubernetes that grants it, by file.
fn grant_fix(namespace: Option<&str>, rule: &Rule) -> String {
    let role = access::granted_by(rule)
        .map(|r| format!(" (ClusterRole {r} grants it)"))
        .unwrap_or_default();
    let namespaced = namespace
        .map(|ns| format!("; with overlays/namespaced, apply deploy/overlays/namespaced/target/ in namespace {ns}"))
        .unwrap_or_default();
    format!(
        "kubectl apply -f {} -f {}{role}{namespaced}",
        access::CLUSTER_ROLE_FILE,
        access::CLUSTER_ROLE_BINDING_FILE
    )
}

/// RBAC: every verb the drill file's kinds need, per namespace, asked of the API server. One
/// line per namespace whose verbs are all allowed; one per verb denied.
async fn rbac(kube: &Kube, drills: &[crate::config::Drill], canary_in: Option<&str>) -> Vec<Line> {
    let api: Api<SelfSubjectAccessReview> = Api::all(kube.client().clone());
    let mut allowed: BTreeMap<Option<String>, usize> = BTreeMap::new();
    let mut denied = Vec::new();
    for ((namespace, rule), who) in wanted(drills, canary_in) {
        let place = match &namespace {
            Some(ns) => format!("in namespace {ns}"),
            None => "cluster-wide".to_owned(),
        };
        let asked = api
            .create(&PostParams::default(), &review(namespace.as_deref(), &rule))
            .await;
        let who: Vec<String> = who.into_iter().collect();
        match asked.map(|r| r.status.map(|s| (s.allowed, s.reason))) {
            Ok(Some((true, _))) => *allowed.entry(namespace).or_default() += 1,
            Ok(answer) => {
                let reason = answer
                    .and_then(|(_, reason)| reason)
                    .filter(|r| !r.is_empty())
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default();
                denied.push(Line::fail(
                    "rbac",
                    format!(
                        "RBAC: {} {} {place} is denied{reason} (needed by {})",
                        rule.verb,
                        rule.resource,
                        who.join(", ")
                    ),
                    grant_fix(namespace.as_deref(), &rule),
                ));
            }
            Err(e) => denied.push(Line::fail(
                "rbac",
                format!(
                    "RBAC: cannot ask whether {} {} {place} is allowed: {e}",
                    rule.verb, rule.resource
                ),
                "allow `create` on selfsubjectaccessreviews.authorization.k8s.io (every authenticated user has it by default: system:basic-user)",
            )),
        }
    }
    let mut lines: Vec<Line> = allowed
        .into_iter()
        .map(|(namespace, n)| {
            let place = match namespace {
                Some(ns) => format!("in namespace {ns}"),
                None => "cluster-wide".to_owned(),
            };
            Line::pass("rbac", format!("RBAC {place}: {n} verbs allowed"))
        })
        .collect();
    lines.extend(denied);
    lines
}

/// Pod Security levels, from the most to the least permissive.
fn level_rank(level: &str) -> Option<u8> {
    match level {
        "privileged" => Some(2),
        "baseline" => Some(1),
        "restricted" => Some(0),
        _ => None,
    }
}

/// The pod a drill of this kind runs in a target's namespace, the Pod Security level it needs,
/// and why (README "Pod Security"); `None` for kinds that run no pod there.
fn helper(fault: &Settings) -> Option<(&'static str, &'static str, &'static str)> {
    match fault {
        Settings::ContainerKill(_) => Some((
            "container-kill helper",
            "privileged",
            "hostPID and root with CAP_KILL",
        )),
        Settings::NetworkDegrade(_) => Some((
            "network-degrade helper",
            "privileged",
            "hostPID and root with NET_ADMIN, SYS_ADMIN, SYS_PTRACE",
        )),
        Settings::ResourceStress(_) => Some((
            "stress-ng pod",
            "restricted",
            "non-root, all capabilities dropped, seccomp RuntimeDefault",
        )),
        Settings::DependencyFailure(d) if matches!(d.mode, Mode::HttpFault(_)) => Some((
            "fault proxy",
            "restricted",
            "non-root, all capabilities dropped, seccomp RuntimeDefault",
        )),
        _ => None,
    }
}

/// Each namespace a drill's helper runs in, against the level the helper needs.
async fn pod_security(kube: &Kube, drills: &[crate::config::Drill]) -> Vec<Line> {
    let api: Api<Namespace> = Api::all(kube.client().clone());
    let mut lines = Vec::new();
    for drill in drills.iter().flat_map(crate::config::Drill::faults) {
        let Some((pod, needs, why)) = helper(drill.settings) else {
            continue;
        };
        let places = match drill.settings {
            // The proxy runs beside the dependency.
            Settings::DependencyFailure(d) => d
                .dependency
                .namespace()
                .into_iter()
                .map(str::to_owned)
                .collect(),
            _ => drill
                .targets
                .iter()
                .map(|t| t.namespace.clone())
                .collect::<BTreeSet<_>>(),
        };
        for ns in places {
            let subject = format!(
                "Pod Security in namespace {ns}: drill {} ({}) runs a {pod} there, which needs `{needs}` ({why})",
                drill.who,
                drill.kind()
            );
            let line = match api.get_opt(&ns).await {
                Err(e) => Line::fail(
                    "pod-security",
                    format!("{subject}; cannot read the namespace: {e}"),
                    format!(
                        "allow `get` on namespaces ({})",
                        grant_fix(None, &access::READ_NAMESPACES)
                    ),
                ),
                Ok(None) => Line::fail(
                    "pod-security",
                    format!("{subject}; the namespace does not exist"),
                    format!("create namespace {ns}, or correct the drill's targets"),
                ),
                Ok(Some(namespace)) => {
                    let label = namespace
                        .metadata
                        .labels
                        .and_then(|l| l.get(ENFORCE_LABEL).cloned());
                    judge_level(&subject, &ns, pod, needs, label.as_deref())
                }
            };
            lines.push(line);
        }
    }
    lines
}

/// A namespace enforcing `label` (none: the API server's default, `privileged` unless its
/// admission configuration says otherwise) against a helper that needs `needs`.
fn judge_level(subject: &str, ns: &str, pod: &str, needs: &str, label: Option<&str>) -> Line {
    let fix = format!("kubectl label --overwrite namespace {ns} {ENFORCE_LABEL}={needs}");
    match label {
        None => Line::pass(
            "pod-security",
            format!("{subject}; no {ENFORCE_LABEL} label: the cluster's default level applies (privileged unless the API server's admission configuration sets another)"),
        ),
        Some(level) => match (level_rank(level), level_rank(needs)) {
            (Some(have), Some(want)) if have >= want => {
                Line::pass("pod-security", format!("{subject}; it enforces `{level}`"))
            }
            (Some(_), _) => Line::fail(
                "pod-security",
                format!("{subject}; it enforces `{level}`, which refuses the {pod}"),
                fix,
            ),
            (None, _) => Line::fail(
                "pod-security",
                format!("{subject}; it enforces {level:?}, not a Pod Security level"),
                fix,
            ),
        },
    }
}

async fn ledger_key(kube: &Kube) -> Line {
    match crate::cluster::ledger_key::read(kube).await {
        Ok(key) => Line::pass(
            "ledger-key",
            format!(
                "ledger key Secret {}/{} readable (key {})",
                kube.namespace(),
                crate::cluster::ledger_key::KEY_SECRET,
                key.id()
            ),
        ),
        Err(e) => Line::fail(
            "ledger-key",
            format!(
                "ledger key Secret {}/{}",
                kube.namespace(),
                crate::cluster::ledger_key::KEY_SECRET
            ),
            e.to_string(),
        ),
    }
}

async fn kill_switch(kube: &Kube) -> Line {
    let name = firedrill_rollback::KILL_SWITCH;
    match kube.kill_switch().await {
        Ok(None) => Line::pass(
            "kill-switch",
            format!("kill switch ConfigMap {}/{name} readable: not engaged", kube.namespace()),
        ),
        Ok(Some(reason)) => Line::pass(
            "kill-switch",
            format!("kill switch ConfigMap {}/{name} readable: ENGAGED ({reason}); nothing fires until `firedrill resume`", kube.namespace()),
        ),
        Err(e) => Line::fail(
            "kill-switch",
            format!("kill switch ConfigMap {}/{name} unreadable: {e}", kube.namespace()),
            format!("kubectl apply -f deploy/kubernetes/role.yaml -f deploy/kubernetes/rolebinding.yaml (Role firedrill grants get on configmaps in {})", kube.namespace()),
        ),
    }
}

/// The tag of an image reference (`registry:5000/firedrill:0.1.0@sha256:…` → `0.1.0`).
fn image_tag(image: &str) -> Option<&str> {
    let name = image.split('@').next().unwrap_or(image);
    let last = name.rsplit('/').next().unwrap_or(name);
    last.split_once(':').map(|(_, tag)| tag)
}

async fn scheduler_image(kube: &Kube) -> Line {
    let version = env!("CARGO_PKG_VERSION");
    let deployment = format!("Deployment {}/{SCHEDULER_DEPLOYMENT}", kube.namespace());
    match kube.scheduler_container().await {
        Err(e) => Line::fail(
            "scheduler-image",
            format!("{deployment} unreadable: {e}"),
            "run `check` with credentials that may get deployments in firedrill's namespace",
        ),
        Ok(None) => Line::fail(
            "scheduler-image",
            format!("{deployment} not found"),
            "kubectl apply -k deploy/ (or your overlay): the scheduler fires the drills",
        ),
        Ok(Some(container)) => {
            let image = container.image.unwrap_or_default();
            match image_tag(&image) {
                Some(tag) if tag.trim_start_matches('v') == version => Line::pass(
                    "scheduler-image",
                    format!("{deployment} runs {image}, this firedrill's version {version}"),
                ),
                Some(tag) => Line::fail(
                    "scheduler-image",
                    format!("{deployment} runs {image}: version {tag}, this firedrill is {version}"),
                    format!("deploy the {version} image (and FIREDRILL_IMAGE), or check with the firedrill {tag} binary"),
                ),
                None => Line::pass(
                    "scheduler-image",
                    format!("{deployment} runs {image}, pinned by digest without a tag: its version cannot be compared with {version}"),
                ),
            }
        }
    }
}

async fn store(config: &Config) -> Line {
    match crate::history::store::Store::check_writable(&config.store, &config.cluster).await {
        Ok(()) => Line::pass(
            "store",
            format!("store {} writable and at the current schema", config.store),
        ),
        Err(e) => Line::fail(
            "store",
            format!("store {}: {e}", config.store),
            "run `firedrill check` where the scheduler runs (`kubectl exec deploy/firedrill-scheduler -- firedrill check --config /etc/firedrill/firedrill.yaml`); the scheduler creates and migrates the history at its start",
        ),
    }
}

/// The Pushgateway, Prometheus and Alertmanager the drill file names, each by its readiness
/// endpoint (`/-/ready`).
async fn endpoints(config: &Config) -> Vec<Line> {
    crate::drill::gate::install_tls_provider();
    let client = match reqwest::Client::builder().timeout(ENDPOINT_TIMEOUT).build() {
        Ok(c) => c,
        Err(e) => {
            return vec![Line::fail(
                "pushgateway",
                format!("no HTTP client: {e}"),
                "report this as a bug",
            )]
        }
    };
    let mut lines = Vec::new();
    for (check, name, key, url) in [
        (
            "pushgateway",
            "Pushgateway",
            "pushgateway",
            &config.pushgateway,
        ),
        ("prometheus", "Prometheus", "prometheus", &config.prometheus),
        (
            "alertmanager",
            "Alertmanager",
            "alertmanager",
            &config.alertmanager,
        ),
    ] {
        let Some(url) = url else { continue };
        let ready = match url.join("-/ready") {
            Ok(u) => u,
            Err(e) => {
                lines.push(Line::fail(
                    check,
                    format!("{name} {url}: {e}"),
                    format!("correct `{key}:` in the drill file"),
                ));
                continue;
            }
        };
        let line = match client.get(ready.clone()).send().await {
            Ok(r) if r.status().is_success() => Line::pass(
                check,
                format!("{name} {url} answers ({ready}: {})", r.status()),
            ),
            Ok(r) => Line::fail(
                check,
                format!("{name} {url} is not ready ({ready}: {})", r.status()),
                format!("look at the {name}'s own logs, or correct `{key}:` in the drill file"),
            ),
            Err(e) => Line::fail(
                check,
                format!(
                    "{name} {url} does not answer within {}s: {e}",
                    ENDPOINT_TIMEOUT.as_secs()
                ),
                format!("correct `{key}:` in the drill file, or allow firedrill's egress to it"),
            ),
        };
        lines.push(line);
    }
    lines
}

/// For each region drill: Route 53 answers with the credentials at hand, and its zone's records
/// and health checks read (what a fire is decided on).
async fn route53(config: &Config) -> Vec<Line> {
    let mut lines = Vec::new();
    for drill in config.drills.iter().flat_map(crate::config::Drill::faults) {
        let Settings::RegionFailover(rf) = drill.settings else {
            continue;
        };
        let Some(dns) = &rf.dns else { continue };
        let line = route53_line(&drill.who, dns).await;
        let readable = line.passed;
        lines.push(line);
        // The record is there to be asked about: whether it can be.
        if readable {
            lines.push(route53_answer_line(&drill.who, dns).await);
        }
    }
    lines
}

/// One region drill's effect check, tried: Route 53's `TestDNSAnswer` for the drill's record
/// (what a run asks after the DNS change). Denied is ✗ with the permission to grant (a run
/// could not tell the failover took effect, and would end `ineffective`); an endpoint that does
/// Route 53 did not answer (either Route 53 line): what to open.
fn route53_silent(subject: &str, message: &str) -> Line {
    Line::fail(
        "route53",
        format!("{subject}: Route 53 did not answer: {message}"),
        "allow firedrill's egress to Route 53 (route53.amazonaws.com:443, or fault.dns.endpoint), then check again",
    )
}

/// not implement the call (moto) could not be checked here, and says so.
pub async fn route53_answer_line(drill: &str, dns: &firedrill_experiments::region::Dns) -> Line {
    use firedrill_rollback::ClusterError;
    let route53 = crate::cluster::route53::Route53::new(dns.endpoint.as_deref()).await;
    let subject = format!(
        "Route 53 for drill {drill}: TestDNSAnswer for {} {}",
        dns.name, dns.record_type
    );
    match route53.answer(&dns.zone, &dns.name, &dns.record_type).await {
        Ok(Some(answered)) => Line::pass(
            "route53",
            format!(
                "{subject} answers {} ({}): the run can tell whether the failover took effect",
                match answered.values.is_empty() {
                    true => "nothing".to_owned(),
                    false => answered.values.join(", "),
                },
                answered.code
            ),
        ),
        Ok(None) => Line::unchecked(
            "route53",
            format!(
                "{subject}: could not be checked against this endpoint ({}): it does not implement TestDNSAnswer (moto does not), so a run records its effect as not checked",
                dns.endpoint.as_deref().unwrap_or("AWS")
            ),
        ),
        Err(ClusterError::Forbidden { message, .. }) => Line::fail(
            "route53",
            format!("{subject}: denied: {message}"),
            "grant the credentials route53:TestDNSAnswer (IRSA in a pod; the AWS CLI's chain elsewhere): the region failover's effect check asks it, and a run that cannot ends ineffective",
        ),
        Err(ClusterError::Transient { message }) => route53_silent(&subject, &message),
        Err(e) => Line::fail(
            "route53",
            format!("{subject}: {e}"),
            "check fault.dns.zone, name and type: a run asks TestDNSAnswer for them",
        ),
    }
}

/// One region drill's `fault.dns`: its zone, record sets and health checks read, each record
/// set there; a failure says whether the credentials, the zone or the network is at fault.
pub async fn route53_line(drill: &str, dns: &firedrill_experiments::region::Dns) -> Line {
    use firedrill_rollback::ClusterError;
    let route53 = crate::cluster::route53::Route53::new(dns.endpoint.as_deref()).await;
    let subject = format!(
        "Route 53 for drill {drill}: zone {} record {}",
        dns.zone, dns.name
    );
    match route53.facts(dns).await {
        Ok(facts) => {
            let missing: Vec<&str> = dns
                .regions
                .iter()
                .filter(|(region, _)| !facts.record_sets.contains_key(*region))
                .map(|(_, r)| r.set_identifier.as_str())
                .collect();
            if missing.is_empty() {
                Line::pass(
                    "route53",
                    format!(
                        "{subject}: {} record set(s) and {} health check(s) readable",
                        facts.record_sets.len(),
                        facts.health_checks.len()
                    ),
                )
            } else {
                Line::fail(
                    "route53",
                    format!(
                        "{subject}: no {} record set with set identifier {} in the zone",
                        dns.record_type,
                        missing.join(", ")
                    ),
                    "correct fault.dns.name, type and each region's set_identifier to the zone's records (aws route53 list-resource-record-sets --hosted-zone-id ZONE)",
                )
            }
        }
        Err(ClusterError::NotFound { message }) => Line::fail(
            "route53",
            format!("{subject}: {message}"),
            format!("correct fault.dns.zone (or the health check ids) in the drill file: {} is not a hosted zone these credentials see (aws route53 list-hosted-zones)", dns.zone),
        ),
        Err(ClusterError::Transient { message }) => route53_silent(&subject, &message),
        Err(e) => Line::fail(
            "route53",
            format!("{subject}: {e}"),
            "give the credentials route53:ListResourceRecordSets, GetHealthCheck and GetHealthCheckStatus (IRSA in a pod; the AWS CLI's chain elsewhere), and check fault.dns",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue #26: a scenario's access is the union of its steps' kinds, each where its step acts.
    #[test]
    fn a_scenario_needs_what_each_of_its_steps_needs_where_it_acts() {
        let config = Config::load(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../deploy/examples/firedrill.yaml"),
        )
        .unwrap();
        let game_day = config.drill("game-day-annual").unwrap();
        let wanted = wanted(std::slice::from_ref(game_day), None);
        let who = |ns: &str, resource: &str, verb: &str| -> Vec<String> {
            wanted
                .iter()
                .filter(|((n, r), _)| {
                    n.as_deref() == Some(ns) && r.resource == resource && r.verb == verb
                })
                .flat_map(|(_, who)| who.iter().cloned())
                .collect()
        };
        // The replica kill evicts in the database's namespace; the API kill in the API's.
        assert_eq!(
            who("database", "pods/eviction", "create"),
            ["game-day-annual/replica-down (pod-kill)"]
        );
        assert_eq!(
            who("pake-api", "pods/eviction", "create"),
            ["game-day-annual/api-kill (pod-kill)"]
        );
        // The cache cut's NetworkPolicy, where its targets are.
        assert!(
            who("pake-api", "networkpolicies", "create")
                .contains(&"game-day-annual/cache-cut (dependency-failure)".to_owned()),
            "{wanted:?}"
        );
        // The stress step's pod, in the workers' namespace.
        assert!(
            wanted
                .iter()
                .any(|((n, _), who)| n.as_deref() == Some("pake-ai")
                    && who.contains("game-day-annual/ai-stress (resource-stress)")),
            "{wanted:?}"
        );
        // Nothing asked for a scenario as such beyond what its steps need.
        assert!(
            wanted.values().flatten().all(|w| !w.contains("(scenario)")),
            "{wanted:?}"
        );
    }

    #[test]
    fn image_tags() {
        assert_eq!(image_tag("ghcr.io/example/firedrill:0.1.0"), Some("0.1.0"));
        assert_eq!(
            image_tag("registry:5000/firedrill:0.2.0@sha256:ab"),
            Some("0.2.0")
        );
        assert_eq!(image_tag("registry:5000/firedrill@sha256:ab"), None);
        assert_eq!(image_tag("firedrill"), None);
    }

    #[test]
    fn levels() {
        let (s, pod) = ("subject", "container-kill helper");
        assert!(judge_level(s, "apps", pod, "privileged", None).passed);
        assert!(judge_level(s, "apps", pod, "privileged", Some("privileged")).passed);
        let strict = judge_level(s, "apps", pod, "privileged", Some("baseline"));
        assert!(!strict.passed);
        assert!(
            strict.what.contains("refuses the container-kill helper"),
            "{strict:?}"
        );
        assert!(judge_level(s, "apps", pod, "restricted", Some("restricted")).passed);
        assert!(!judge_level(s, "apps", pod, "restricted", Some("strict")).passed);
    }
}
