//! `region-failover`: the annual drill. Traffic leaves the failed region through DNS (Route 53: the
//! primary's health check inverted, or the record sets' weights shifted, never a record deleted),
//! the failed region's workloads are isolated inside Kubernetes (a deny-all NetworkPolicy, or
//! scaled to zero), and the database is promoted in the surviving region by a hook the user
//! declares. DNS and isolation are steps through the ledger and undone exactly; promotion is not
//! undoable, which is why an armed drill must name its `failback:`.
//!
//! DNS steps are [`Operation::External`] changes for the `route53` system. Each undo record holds
//! the target, the exact prior state and the state applied, in the same shape the runner's Route 53
//! adapter reads them back in: the replayer restores the prior state only while the target is
//! still as the drill left it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use firedrill_rollback::{ObjectKind, ObjectRef, Operation, Step, UndoRecord};
use firedrill_safety::cluster::{Cluster, OwnerKind, OwnerRef};
use firedrill_safety::verdict::Request;
use serde_json::{json, Value};

pub use crate::plan::DnsFacts;
use crate::plan::{Expect, Plan, Scene};

mod read;
pub use read::JobSpecCheck;

/// The `system` of every DNS change.
pub const ROUTE53: &str = firedrill_rollback::scope::ROUTE53;

/// `region-failover`'s `fault:`.
#[derive(Clone, Debug, PartialEq)]
pub struct RegionFailover {
    /// The region the drill fails.
    pub from: String,
    /// The region that takes over (and where the database is promoted).
    pub to: String,
    pub dns: Option<Dns>,
    pub isolate: Vec<Isolate>,
    pub promote: Option<Hook>,
    pub failback: Option<Failback>,
    pub data: Option<Markers>,
}

/// How traffic leaves the failed region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DnsMethod {
    /// Invert the failed region's health check: Route 53 then treats it as unhealthy and answers
    /// with the other records (failover, weighted or latency records that use the check).
    HealthCheck,
    /// Set the failed region's weighted record to 0 (and the surviving region's to the failed
    /// one's weight when no other region would receive traffic).
    Weights,
}

/// The DNS side: one name, one record set per region.
#[derive(Clone, Debug, PartialEq)]
pub struct Dns {
    /// The hosted zone id (`Z…`).
    pub zone: String,
    /// The record name, fully qualified with the trailing dot.
    pub name: String,
    pub record_type: String,
    pub method: DnsMethod,
    /// Every region's record set, by region name.
    pub regions: BTreeMap<String, RegionRecord>,
    /// How long a change may take to reach `INSYNC`.
    pub wait: Duration,
    /// The Route 53 endpoint (moto, a VPC endpoint); `None`: AWS's.
    pub endpoint: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionRecord {
    /// The record set's `SetIdentifier`.
    pub set_identifier: String,
    /// The Route 53 health check of the region, if it has one.
    pub health_check: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IsolateHow {
    /// A NetworkPolicy denying all ingress and egress of the selected pods.
    NetworkPolicy,
    /// Scale every Deployment and StatefulSet whose pods the selector matches to zero.
    ScaleToZero,
}

/// The failed region's workloads inside Kubernetes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Isolate {
    pub namespace: String,
    /// Equality labels (`topology.kubernetes.io/region=us-east-1,app=pake-api`).
    pub selector: BTreeMap<String, String>,
    pub how: IsolateHow,
}

/// A procedure firedrill runs and records: a command in the executor's container, or a Job.
#[derive(Clone, Debug, PartialEq)]
pub enum HookAction {
    /// argv; no shell unless the user writes one.
    Command(Vec<String>),
    /// A Job manifest (its `spec`), created in firedrill's namespace.
    Job(Value),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Hook {
    pub action: HookAction,
    pub timeout: Duration,
}

/// How the region comes back after the drill: what the drill cannot undo itself.
#[derive(Clone, Debug, PartialEq)]
pub enum Failback {
    /// firedrill runs it at the end, before it reverts DNS and isolation.
    Hook(Hook),
    /// People follow it; firedrill reverts DNS and isolation and says the database stays promoted.
    Runbook(String),
}

/// Where a data source is: a URL in the file (no password), or the name of an environment
/// variable that holds it (from a Secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Url(String),
    Env(String),
}

/// The RPO probe: markers written to the primary, read back on the promoted side.
#[derive(Clone, Debug, PartialEq)]
pub struct Markers {
    pub primary: Source,
    pub promoted: Source,
    /// The marker table (created if missing): `run`, `seq`, `written_at`.
    pub table: String,
    /// How often a marker is written.
    pub every: Duration,
    /// How long markers are written before the first fault.
    pub lead_in: Duration,
}

impl RegionFailover {
    /// The time a fire needs besides its duration: the markers' lead-in, each DNS change waited
    /// for on the way there and back, the promotion and the failback hooks.
    pub fn budget(&self) -> Duration {
        let dns = self.dns.as_ref().map_or(Duration::ZERO, |d| d.wait * 2 * 2);
        let hook = |h: Option<&Hook>| h.map_or(Duration::ZERO, |h| h.timeout);
        let failback = match &self.failback {
            Some(Failback::Hook(h)) => Some(h),
            _ => None,
        };
        self.data.as_ref().map_or(Duration::ZERO, |m| m.lead_in)
            + dns
            + hook(self.promote.as_ref())
            + hook(failback)
    }
}

/// Why a region failover may not go on (the fire is blocked, nothing is changed): each names the
/// regions, records or workloads, and what to fix where a person can.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RegionError {
    #[error("the region {to} that would take over is not healthy in Route 53; failing {from} over to it would take the service down")]
    TakeOverUnhealthy { from: String, to: String },
    /// `after`: the regions still healthy.
    #[error("failing {from} would leave {} healthy region{} ({}), fewer than safety.limits.min_healthy_regions {min}", .after.len(), if .after.len() == 1 { "" } else { "s" }, if .after.is_empty() { "none".to_owned() } else { .after.join(", ") })]
    TooFewHealthy {
        from: String,
        after: Vec<String>,
        min: u32,
    },
    #[error("the records of {from} and {to} overlap: {why}; failing {from} over would fail {to} with it (give each region its own record set and health check in fault.dns)")]
    Overlap {
        from: String,
        to: String,
        why: Overlap,
    },
    #[error("nothing in namespace {namespace} matches the isolation selector {selector} (fault.isolate): isolating nothing would prove nothing")]
    NothingIsolated { namespace: String, selector: String },
    /// A pod the isolation cuts off is one the guard would never target; `why` is its rule.
    #[error("the isolation selector {selector} matches pod {namespace}/{pod}: {why}")]
    IsolatedPod {
        selector: String,
        namespace: String,
        pod: String,
        why: String,
    },
    #[error("{0}")]
    IsolatedWorkload(#[from] Box<crate::dependency::DependencyError>),
    #[error("{owner} cannot be scaled to zero (only Deployments and StatefulSets)")]
    NotScalable { owner: String },
    #[error("fault.dns.regions has no record for region {region}")]
    NoRecord { region: String },
    #[error("fault.dns.method health-check needs the health check of {region} (fault.dns.regions.{region}.health_check)")]
    NoHealthCheck { region: String },
    #[error("the health check {id} of {region} was not read")]
    HealthCheckUnread { id: String, region: String },
    #[error("{0}")]
    CheckUnused(Box<CheckUnused>),
    #[error("the health check {id} of {region} is already inverted; firedrill will not invert it back (fix the health check, then run the drill)")]
    AlreadyInverted { id: String, region: String },
    #[error("the record set {name} {record_type} of region {region} was not found in zone {zone}")]
    RecordSetNotFound {
        name: String,
        record_type: String,
        region: String,
        zone: String,
    },
    #[error("the record set of region {region} has no weight: fault.dns.method weights needs weighted records (use health-check for failover records)")]
    NoWeight { region: String },
    #[error("the record set of {region} already has weight 0: it receives no traffic, so failing it over proves nothing")]
    NoTraffic { region: String },
}

/// The failed region's record set does not use the health check the drill would invert; `found`
/// is false when Route 53 returned no record set for it at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the record set {name} {record_type} of {region} (set identifier {set_identifier}{}) does not use health check {id}, so inverting it would move no traffic; name the check the record uses, or use method weights", if *.found { String::new() } else { format!(": not found in zone {}", .zone) })]
pub struct CheckUnused {
    pub name: String,
    pub record_type: String,
    pub region: String,
    pub set_identifier: String,
    pub found: bool,
    pub zone: String,
    pub id: String,
}

/// How the failed region's records and those of the region taking over overlap.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Overlap {
    #[error("both name set identifier {0}")]
    SetIdentifier(String),
    #[error("both resolve to the same record set in Route 53 ({name} {record_type} set identifier {set_identifier})")]
    RecordSet {
        name: String,
        record_type: String,
        set_identifier: String,
    },
    #[error("both record sets use health check {0} in Route 53")]
    HealthCheck(String),
}

/// The regions that stay healthy after failing `from`, and whether the drill may go on.
pub fn judge(
    settings: &RegionFailover,
    facts: Option<&DnsFacts>,
    min_healthy_regions: Option<u32>,
) -> Result<Vec<String>, RegionError> {
    let regions: BTreeSet<&str> = match &settings.dns {
        Some(dns) => dns.regions.keys().map(String::as_str).collect(),
        None => [settings.from.as_str(), settings.to.as_str()].into(),
    };
    if let Some(dns) = &settings.dns {
        records_overlap(settings, dns, facts)?;
    }
    // A region counts as healthy only when Route 53 says so: one without a health check cannot
    // be proven healthy (a plan without Route 53 cannot judge, and assumes it).
    let healthy = |region: &str| facts.is_none_or(|f| f.healthy.get(region) == Some(&true));
    if !healthy(&settings.to) {
        return Err(RegionError::TakeOverUnhealthy {
            from: settings.from.clone(),
            to: settings.to.clone(),
        });
    }
    let after: Vec<String> = regions
        .iter()
        .filter(|r| **r != settings.from && healthy(r))
        .map(|r| (*r).to_owned())
        .collect();
    let min = min_healthy_regions.unwrap_or(1);
    if (after.len() as u32) < min {
        return Err(RegionError::TooFewHealthy {
            from: settings.from.clone(),
            after,
            min,
        });
    }
    if let (Some(dns), Some(facts)) = (&settings.dns, facts) {
        dns_steps(settings, dns, facts)?;
    }
    Ok(after)
}

/// Refuses a failover whose failed region and the region taking over are one record set or use
/// one health check: failing one over would fail the other with it (weights: the one record set
/// to 0, traffic nowhere; health-check: both inverted at once). The file shows a shared
/// `set_identifier`; which record set Route 53 returns and which health check it uses are Route
/// 53's to say, so they are checked on what was read from it, before any change.
pub fn records_overlap(
    settings: &RegionFailover,
    dns: &Dns,
    facts: Option<&DnsFacts>,
) -> Result<(), RegionError> {
    let (from, to) = (settings.from.as_str(), settings.to.as_str());
    let refuse = |why: Overlap| {
        Err(RegionError::Overlap {
            from: from.to_owned(),
            to: to.to_owned(),
            why,
        })
    };
    if let (Some(a), Some(b)) = (dns.regions.get(from), dns.regions.get(to)) {
        if a.set_identifier == b.set_identifier {
            return refuse(Overlap::SetIdentifier(a.set_identifier.clone()));
        }
    }
    let Some((a, b)) = facts.and_then(|f| Some((f.record_sets.get(from)?, f.record_sets.get(to)?)))
    else {
        return Ok(());
    };
    let field = |set: &Value, key: &str| set.get(key).filter(|v| !v.is_null()).cloned();
    let identity = |set: &Value| {
        ["name", "type", "set_identifier"].map(|key| {
            field(set, key).and_then(|v| {
                v.as_str()
                    .map(|s| s.trim_end_matches('.').to_ascii_lowercase())
            })
        })
    };
    if identity(a) == identity(b) {
        return refuse(Overlap::RecordSet {
            name: dns.name.clone(),
            record_type: dns.record_type.clone(),
            set_identifier: field(a, "set_identifier")
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
        });
    }
    if let Some(check) =
        field(a, "health_check_id").filter(|c| Some(c) == field(b, "health_check_id").as_ref())
    {
        return refuse(Overlap::HealthCheck(
            check.as_str().unwrap_or_default().to_owned(),
        ));
    }
    Ok(())
}

/// Whether the isolated workloads may be scaled to zero (the rules a dependency scaled to zero
/// obeys) and the NetworkPolicy targets exist.
pub fn judge_isolation(
    settings: &RegionFailover,
    cluster: &Cluster,
    request: &Request,
) -> Result<(), RegionError> {
    let namespaces = cluster.namespace_index();
    for isolate in &settings.isolate {
        let owners = isolated(isolate, cluster);
        if owners.is_empty() {
            return Err(RegionError::NothingIsolated {
                namespace: isolate.namespace.clone(),
                selector: labels(&isolate.selector),
            });
        }
        // Every pod the selector cuts off obeys the rules a target does (protected, never-target,
        // opt-in, kube-system, firedrill's own namespace, a controller to bring it back).
        for pod in selected(isolate, cluster) {
            let owner = pod
                .owner
                .as_ref()
                .and_then(|key| cluster.owners.iter().find(|o| &o.key == key));
            if let Some(why) =
                firedrill_safety::verdict::protection(pod, request, &namespaces, owner)
            {
                return Err(RegionError::IsolatedPod {
                    selector: labels(&isolate.selector),
                    namespace: pod.namespace.clone(),
                    pod: pod.name.clone(),
                    why,
                });
            }
        }
        if isolate.how == IsolateHow::ScaleToZero {
            for owner in owners {
                crate::dependency::judge_scale_to_zero(
                    owner,
                    "the isolated workload",
                    cluster,
                    request,
                )
                .map_err(Box::new)?;
            }
        }
    }
    Ok(())
}

fn labels(selector: &BTreeMap<String, String>) -> String {
    selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Every pod the fire cuts off (what `plan --cluster` counts as its hits).
pub fn cut_off(
    settings: &RegionFailover,
    cluster: &Cluster,
) -> Vec<firedrill_safety::verdict::Chosen> {
    settings
        .isolate
        .iter()
        .flat_map(|i| selected(i, cluster))
        .map(|p| firedrill_safety::verdict::Chosen {
            namespace: p.namespace.clone(),
            name: p.name.clone(),
            owner: p.owner.clone(),
        })
        .collect()
}

/// The pods an isolation selects.
fn selected<'c>(
    isolate: &'c Isolate,
    cluster: &'c Cluster,
) -> impl Iterator<Item = &'c firedrill_safety::cluster::Pod> {
    cluster
        .pods
        .iter()
        .filter(|p| p.namespace == isolate.namespace)
        .filter(|p| {
            isolate
                .selector
                .iter()
                .all(|(k, v)| p.labels.get(k) == Some(v))
        })
}

/// The workloads whose pods an isolation selects.
fn isolated<'c>(isolate: &'c Isolate, cluster: &'c Cluster) -> Vec<&'c OwnerRef> {
    let mut owners: Vec<&OwnerRef> = selected(isolate, cluster)
        .filter_map(|p| p.owner.as_ref())
        .collect();
    owners.sort();
    owners.dedup();
    owners
}

/// The steps of one fire: DNS first (traffic leaves), then isolation, in one wave.
pub fn plan(
    run: &str,
    settings: &RegionFailover,
    scene: &Scene,
    facts: Option<&DnsFacts>,
) -> Result<Plan, RegionError> {
    let mut steps = Vec::new();
    let mut effect = None;
    if let Some(dns) = &settings.dns {
        records_overlap(settings, dns, facts)?;
        match facts {
            Some(facts) => {
                steps.extend(dns_steps(settings, dns, facts)?);
                effect = Some(vec![dns_answer(settings, dns, facts)]);
            }
            // Without Route 53 (a plan from a snapshot) the steps are shown with the state
            // they will read when the drill fires.
            None => steps.extend(unread_dns_steps(settings, dns)),
        }
    }
    for (i, isolate) in settings.isolate.iter().enumerate() {
        match isolate.how {
            IsolateHow::NetworkPolicy => {
                steps.extend(Step::create(isolation_policy(run, i, isolate)));
            }
            IsolateHow::ScaleToZero => {
                let Some(cluster) = scene.cluster else {
                    continue;
                };
                for owner in isolated(isolate, cluster) {
                    let desired = cluster
                        .owners
                        .iter()
                        .find(|o| &o.key == owner)
                        .map_or(0, |o| i64::from(o.desired));
                    let kind = match owner.kind {
                        OwnerKind::StatefulSet => ObjectKind::StatefulSet,
                        OwnerKind::Deployment => ObjectKind::Deployment,
                        _ => {
                            return Err(RegionError::NotScalable {
                                owner: owner.to_string(),
                            })
                        }
                    };
                    if desired == 0 {
                        continue;
                    }
                    steps.push(Step::scale(
                        ObjectRef::namespaced(kind, &owner.namespace, &owner.name),
                        desired,
                        0,
                        None,
                    ));
                }
            }
        }
    }
    Ok(Plan {
        waves: vec![steps],
        effect,
        ..Plan::default()
    })
}

/// What Route 53 must answer once traffic left the failed region: the values of the record set
/// of the region taking over, and none that only the failed region's holds (as read before).
fn dns_answer(settings: &RegionFailover, dns: &Dns, facts: &DnsFacts) -> Expect {
    let values = |region: &str| -> Vec<String> {
        facts
            .record_sets
            .get(region)
            .and_then(|set| set.get("records"))
            .and_then(Value::as_array)
            .map(|records| {
                records
                    .iter()
                    .filter_map(|r| r.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let answers = values(&settings.to);
    let failed_answers = values(&settings.from)
        .into_iter()
        .filter(|v| !answers.contains(v))
        .collect();
    Expect::DnsAnswer(Box::new(crate::plan::DnsAnswer {
        zone: dns.zone.clone(),
        name: dns.name.clone(),
        record_type: dns.record_type.clone(),
        endpoint: dns.endpoint.clone(),
        to: settings.to.clone(),
        answers,
        from: settings.from.clone(),
        failed_answers,
    }))
}

/// The record a DNS step names, for the adapter.
fn health_check_target(dns: &Dns, id: &str) -> Value {
    json!({ "health_check": id, "endpoint": dns.endpoint })
}

fn record_set_target(dns: &Dns, set_identifier: &str) -> Value {
    json!({
        "zone": dns.zone,
        "name": dns.name,
        "type": dns.record_type,
        "set_identifier": set_identifier,
        "wait_seconds": dns.wait.as_secs(),
        "endpoint": dns.endpoint,
    })
}

/// One change outside Kubernetes, with the undo record that restores `prior`.
pub fn external_step(system: &str, target: Value, prior: Value, applied: Value) -> Step {
    Step {
        forward: Operation::External {
            system: system.to_owned(),
            action: json!({ "target": target, "set": applied }),
        },
        undo: UndoRecord::External {
            system: system.to_owned(),
            record: json!({ "target": target, "prior": prior, "applied": applied }),
        },
    }
}

fn region<'d>(dns: &'d Dns, name: &str) -> Result<&'d RegionRecord, RegionError> {
    dns.regions.get(name).ok_or_else(|| RegionError::NoRecord {
        region: name.to_owned(),
    })
}

fn dns_steps(
    settings: &RegionFailover,
    dns: &Dns,
    facts: &DnsFacts,
) -> Result<Vec<Step>, RegionError> {
    let from = region(dns, &settings.from)?;
    let failed = || settings.from.clone();
    match dns.method {
        DnsMethod::HealthCheck => {
            let id = from
                .health_check
                .as_deref()
                .ok_or_else(|| RegionError::NoHealthCheck { region: failed() })?;
            let current = facts.health_checks.get(&settings.from).ok_or_else(|| {
                RegionError::HealthCheckUnread {
                    id: id.to_owned(),
                    region: failed(),
                }
            })?;
            // Inverting a check moves traffic only if the region's record uses it.
            let steers = facts
                .record_sets
                .get(&settings.from)
                .and_then(|set| set.get("health_check_id"))
                .and_then(Value::as_str);
            if steers != Some(id) {
                return Err(RegionError::CheckUnused(Box::new(CheckUnused {
                    name: dns.name.clone(),
                    record_type: dns.record_type.clone(),
                    region: failed(),
                    set_identifier: from.set_identifier.clone(),
                    found: facts.record_sets.contains_key(&settings.from),
                    zone: dns.zone.clone(),
                    id: id.to_owned(),
                })));
            }
            if current.get("inverted") == Some(&Value::Bool(true)) {
                return Err(RegionError::AlreadyInverted {
                    id: id.to_owned(),
                    region: failed(),
                });
            }
            let mut step = external_step(
                ROUTE53,
                health_check_target(dns, id),
                json!({ "inverted": false }),
                json!({ "inverted": true }),
            );
            // Every setting of the check as it was, for the record (only `inverted` changes).
            if let UndoRecord::External { record, .. } = &mut step.undo {
                record["settings"] = current.clone();
            }
            Ok(vec![step])
        }
        DnsMethod::Weights => {
            let weight = |region: &str| -> Result<(Value, i64), RegionError> {
                let set = facts.record_sets.get(region).ok_or_else(|| {
                    RegionError::RecordSetNotFound {
                        name: dns.name.clone(),
                        record_type: dns.record_type.clone(),
                        region: region.to_owned(),
                        zone: dns.zone.clone(),
                    }
                })?;
                let w = set.get("weight").and_then(Value::as_i64).ok_or_else(|| {
                    RegionError::NoWeight {
                        region: region.to_owned(),
                    }
                })?;
                Ok((set.clone(), w))
            };
            let (from_set, from_weight) = weight(&settings.from)?;
            if from_weight == 0 {
                return Err(RegionError::NoTraffic { region: failed() });
            }
            let mut steps = Vec::new();
            let others_serve = dns
                .regions
                .keys()
                .filter(|r| **r != settings.from)
                .any(|r| weight(r).is_ok_and(|(_, w)| w > 0));
            // The region taking over gets its weight first, and loses it last on the way back:
            // never a moment with every weight 0 (Route 53 would answer with all of them).
            if !others_serve {
                let to = region(dns, &settings.to)?;
                let (to_set, _) = weight(&settings.to)?;
                let mut applied = to_set.clone();
                applied["weight"] = json!(from_weight);
                steps.push(external_step(
                    ROUTE53,
                    record_set_target(dns, &to.set_identifier),
                    to_set,
                    applied,
                ));
            }
            let mut applied = from_set.clone();
            applied["weight"] = json!(0);
            steps.push(external_step(
                ROUTE53,
                record_set_target(dns, &from.set_identifier),
                from_set,
                applied,
            ));
            Ok(steps)
        }
    }
}

/// The DNS steps as a plan without Route 53 shows them: the prior state is read at fire time.
fn unread_dns_steps(settings: &RegionFailover, dns: &Dns) -> Vec<Step> {
    let unread = json!("(read from Route 53 when the drill fires)");
    let Ok(from) = region(dns, &settings.from) else {
        return Vec::new();
    };
    match (dns.method, &from.health_check) {
        (DnsMethod::HealthCheck, Some(id)) => vec![external_step(
            ROUTE53,
            health_check_target(dns, id),
            json!({ "inverted": false }),
            json!({ "inverted": true }),
        )],
        (DnsMethod::HealthCheck, None) => Vec::new(),
        (DnsMethod::Weights, _) => vec![external_step(
            ROUTE53,
            record_set_target(dns, &from.set_identifier),
            unread.clone(),
            json!({ "weight": 0, "rest": unread }),
        )],
    }
}

/// A NetworkPolicy that cuts the selected pods off: no ingress, no egress.
fn isolation_policy(run: &str, index: usize, isolate: &Isolate) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": format!("firedrill-isolate-{run}-{index}").chars().take(253).collect::<String>(),
            "namespace": isolate.namespace,
        },
        "spec": {
            "podSelector": { "matchLabels": isolate.selector },
            "policyTypes": ["Ingress", "Egress"],
        },
    })
}

/// The environment a hook gets.
pub struct HookContext<'a> {
    pub phase: &'a str,
    pub run: &'a str,
    pub drill: &'a str,
    pub from: &'a str,
    pub to: &'a str,
}

/// A name of at most 63 characters that stays unique: cut, with a hash of the whole.
fn short_name(full: &str) -> String {
    if full.len() <= 63 {
        return full.to_owned();
    }
    let hash = full.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    format!("{}-{:08x}", full[..54].trim_end_matches('-'), hash as u32)
}

/// The Job a Job hook creates: the user's spec, in firedrill's namespace, named for the run.
pub fn hook_job(namespace: &str, spec: &Value, c: &HookContext<'_>) -> Value {
    let name = short_name(&format!("firedrill-{}-{}", c.phase, c.run));
    let mut spec = spec.clone();
    if spec.get("backoffLimit").is_none() {
        spec["backoffLimit"] = json!(0);
    }
    // Kept a day for the record, then cleaned up by Kubernetes.
    if spec.get("ttlSecondsAfterFinished").is_none() {
        spec["ttlSecondsAfterFinished"] = json!(86_400);
    }
    let env = json!([
        { "name": "FIREDRILL_PHASE", "value": c.phase },
        { "name": "FIREDRILL_RUN", "value": c.run },
        { "name": "FIREDRILL_DRILL", "value": c.drill },
        { "name": "FIREDRILL_FROM_REGION", "value": c.from },
        { "name": "FIREDRILL_TO_REGION", "value": c.to },
    ]);
    // firedrill's namespace enforces the `restricted` Pod Security level: what the spec leaves
    // out is filled in to meet it (an image that runs as root needs `runAsUser`).
    if let Some(pod) = spec
        .pointer_mut("/template/spec")
        .and_then(Value::as_object_mut)
    {
        let context = pod.entry("securityContext").or_insert_with(|| json!({}));
        if let Some(context) = context.as_object_mut() {
            context.entry("runAsNonRoot").or_insert(json!(true));
            context
                .entry("seccompProfile")
                .or_insert(json!({ "type": "RuntimeDefault" }));
        }
    }
    if let Some(containers) = spec
        .pointer_mut("/template/spec/containers")
        .and_then(Value::as_array_mut)
    {
        for container in containers {
            if let Some(c) = container.as_object_mut() {
                let context = c.entry("securityContext").or_insert_with(|| json!({}));
                if let Some(context) = context.as_object_mut() {
                    context
                        .entry("allowPrivilegeEscalation")
                        .or_insert(json!(false));
                    context
                        .entry("capabilities")
                        .or_insert(json!({ "drop": ["ALL"] }));
                }
            }
            let list = container
                .as_object_mut()
                .map(|c| c.entry("env").or_insert_with(|| json!([])));
            if let Some(Value::Array(list)) = list {
                list.extend(env.as_array().cloned().unwrap_or_default());
            }
        }
    }
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/name": "firedrill",
                "firedrill.io/kind": "hook",
                "firedrill.io/run": c.run,
                "firedrill.io/drill": c.drill,
            },
        },
        "spec": spec,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use firedrill_safety::cluster::{Owner, Pod};

    fn dns(method: DnsMethod) -> Dns {
        Dns {
            zone: "Z1".into(),
            name: "api.example.com.".into(),
            record_type: "A".into(),
            method,
            regions: [
                (
                    "us-east-1".to_owned(),
                    RegionRecord {
                        set_identifier: "use1".into(),
                        health_check: Some("hc-use1".into()),
                    },
                ),
                (
                    "eu-west-1".to_owned(),
                    RegionRecord {
                        set_identifier: "euw1".into(),
                        health_check: Some("hc-euw1".into()),
                    },
                ),
            ]
            .into(),
            wait: Duration::from_secs(120),
            endpoint: None,
        }
    }

    fn failover(method: DnsMethod) -> RegionFailover {
        RegionFailover {
            from: "us-east-1".into(),
            to: "eu-west-1".into(),
            dns: Some(dns(method)),
            isolate: Vec::new(),
            promote: None,
            failback: None,
            data: None,
        }
    }

    fn facts(weights: (i64, i64)) -> DnsFacts {
        let set = |id: &str, w: i64| json!({ "set_identifier": id, "weight": w, "ttl": 60, "records": ["192.0.2.1"], "health_check_id": format!("hc-{id}") });
        DnsFacts {
            record_sets: [
                ("us-east-1".to_owned(), set("use1", weights.0)),
                ("eu-west-1".to_owned(), set("euw1", weights.1)),
            ]
            .into(),
            health_checks: [
                ("us-east-1".to_owned(), json!({ "inverted": false })),
                ("eu-west-1".to_owned(), json!({ "inverted": false })),
            ]
            .into(),
            healthy: [
                ("us-east-1".to_owned(), true),
                ("eu-west-1".to_owned(), true),
            ]
            .into(),
        }
    }

    fn scene() -> Scene<'static> {
        Scene {
            choice: None,
            cluster: None,
            image: "firedrill:test",
            duration: Duration::from_secs(60),
            expires: "2026-01-01T00:00:00Z",
            dns: None,
        }
    }

    fn record(step: &Step) -> &Value {
        match &step.undo {
            UndoRecord::External { record, .. } => record,
            other => panic!("not external: {other:?}"),
        }
    }

    #[test]
    fn health_check_inversion_records_the_prior_setting() {
        let s = failover(DnsMethod::HealthCheck);
        let plan = plan("r1", &s, &scene(), Some(&facts((100, 0)))).unwrap();
        let steps: Vec<&Step> = plan.steps().collect();
        assert_eq!(steps.len(), 1);
        let r = record(steps[0]);
        assert_eq!(r["target"]["health_check"], "hc-use1");
        assert_eq!(r["prior"], json!({ "inverted": false }));
        assert_eq!(r["applied"], json!({ "inverted": true }));
        // Already inverted: refused, never inverted back.
        let mut f = facts((100, 0));
        f.health_checks
            .insert("us-east-1".into(), json!({ "inverted": true }));
        assert!(judge(&s, Some(&f), None)
            .unwrap_err()
            .to_string()
            .contains("already inverted"));
        // A check the region's record does not use would move no traffic.
        let mut f = facts((100, 0));
        f.record_sets.get_mut("us-east-1").unwrap()["health_check_id"] = json!("another");
        assert!(judge(&s, Some(&f), None)
            .unwrap_err()
            .to_string()
            .contains("does not use health check hc-use1"));
    }

    #[test]
    fn weights_move_traffic_to_the_surviving_region_only_when_nobody_else_serves() {
        let s = failover(DnsMethod::Weights);
        // Active-passive: the passive region takes the failed one's weight, first (never every
        // weight 0, on the way there or back).
        let p = plan("r1", &s, &scene(), Some(&facts((100, 0)))).unwrap();
        let steps: Vec<&Step> = p.steps().collect();
        assert_eq!(steps.len(), 2);
        assert_eq!(record(steps[0])["target"]["set_identifier"], "euw1");
        assert_eq!(record(steps[0])["applied"]["weight"], 100);
        assert_eq!(record(steps[0])["prior"]["weight"], 0);
        assert_eq!(record(steps[1])["target"]["set_identifier"], "use1");
        assert_eq!(record(steps[1])["applied"]["weight"], 0);
        assert_eq!(record(steps[1])["prior"]["weight"], 100);
        // The rest of the record set is kept exactly.
        assert_eq!(record(steps[1])["applied"]["records"], json!(["192.0.2.1"]));
        // Active-active: only the failed region goes to 0.
        let p = plan("r1", &s, &scene(), Some(&facts((50, 50)))).unwrap();
        assert_eq!(p.steps().count(), 1);
        // A region with no traffic cannot be failed.
        assert!(plan("r1", &s, &scene(), Some(&facts((0, 100))))
            .unwrap_err()
            .to_string()
            .contains("weight 0"));
    }

    #[test]
    fn min_healthy_regions_and_an_unhealthy_target_refuse() {
        let s = failover(DnsMethod::HealthCheck);
        assert_eq!(
            judge(&s, Some(&facts((100, 0))), Some(1)).unwrap(),
            vec!["eu-west-1".to_owned()]
        );
        assert!(judge(&s, Some(&facts((100, 0))), Some(2))
            .unwrap_err()
            .to_string()
            .contains("fewer than safety.limits.min_healthy_regions 2"));
        let mut f = facts((100, 0));
        f.healthy.insert("eu-west-1".into(), false);
        assert!(judge(&s, Some(&f), None)
            .unwrap_err()
            .to_string()
            .contains("not healthy"));
    }

    #[test]
    fn regions_on_one_record_set_or_one_health_check_are_refused_before_any_change() {
        // Issue #21: from and to on one record: weights would set that record to 0.
        let mut s = failover(DnsMethod::Weights);
        let dns = s.dns.as_mut().unwrap();
        let record = dns.regions["us-east-1"].clone();
        dns.regions.insert("eu-west-1".into(), record);
        let refused = judge(&s, Some(&facts((100, 0))), None)
            .unwrap_err()
            .to_string();
        assert!(
            refused.starts_with(
                "the records of us-east-1 and eu-west-1 overlap: both name set identifier use1;"
            ),
            "{refused}"
        );
        // A plan without Route 53 (`plan --render`) refuses it too, rather than show the change.
        assert_eq!(
            plan("r1", &s, &scene(), None).unwrap_err().to_string(),
            refused
        );

        // The file names two records, but Route 53 returns one record set for both.
        let s = failover(DnsMethod::Weights);
        let mut f = facts((100, 0));
        let one = f.record_sets["us-east-1"].clone();
        f.record_sets.insert("eu-west-1".into(), one);
        let refused = judge(&s, Some(&f), None).unwrap_err().to_string();
        assert!(
            refused.contains("both resolve to the same record set in Route 53"),
            "{refused}"
        );
        assert!(plan("r1", &s, &scene(), Some(&f)).is_err());

        // Two record sets that use one health check: inverting it fails both.
        for method in [DnsMethod::HealthCheck, DnsMethod::Weights] {
            let s = failover(method);
            let mut f = facts((50, 50));
            f.record_sets.get_mut("eu-west-1").unwrap()["health_check_id"] = json!("hc-use1");
            let refused = judge(&s, Some(&f), None).unwrap_err().to_string();
            assert!(
                refused.contains("both record sets use health check hc-use1 in Route 53"),
                "{refused}"
            );
        }
        // Separate records and checks still fail over.
        assert!(judge(&failover(DnsMethod::Weights), Some(&facts((100, 0))), None).is_ok());
    }

    #[test]
    fn isolation_denies_all_traffic_or_scales_the_region_to_zero() {
        let key = OwnerRef {
            kind: OwnerKind::Deployment,
            namespace: "pake-api".into(),
            name: "pake-api-use1".into(),
        };
        let region: BTreeMap<String, String> = [(
            "topology.kubernetes.io/region".to_owned(),
            "us-east-1".to_owned(),
        )]
        .into();
        let cluster = Cluster {
            owners: vec![Owner {
                key: key.clone(),
                labels: Default::default(),
                desired: 3,
            }],
            pods: vec![Pod {
                namespace: "pake-api".into(),
                name: "pake-api-use1-x".into(),
                labels: region.clone(),
                owner: Some(key.clone()),
                running_and_ready: true,
                phase: "Running".into(),
                created: 0,
                node: Some("n1".into()),
                ..Default::default()
            }],
            ..Cluster::default()
        };
        let mut s = failover(DnsMethod::HealthCheck);
        s.dns = None;
        s.isolate = vec![
            Isolate {
                namespace: "pake-api".into(),
                selector: region.clone(),
                how: IsolateHow::NetworkPolicy,
            },
            Isolate {
                namespace: "pake-api".into(),
                selector: region,
                how: IsolateHow::ScaleToZero,
            },
        ];
        let scene = Scene {
            cluster: Some(&cluster),
            ..scene()
        };
        let p = plan("r1", &s, &scene, None).unwrap();
        let steps: Vec<&Step> = p.steps().collect();
        assert_eq!(steps.len(), 2);
        match &steps[0].forward {
            Operation::Create { object } => {
                assert_eq!(object["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
                assert!(object["spec"].get("ingress").is_none());
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            steps[1].undo,
            UndoRecord::RestoreReplicas {
                target: ObjectRef::namespaced(ObjectKind::Deployment, "pake-api", "pake-api-use1"),
                prior: 3,
                applied: 0,
                hpa: None,
            }
        );
    }

    #[test]
    fn isolation_never_cuts_off_what_the_guard_protects() {
        use firedrill_safety::verdict::RecentHits;
        let key = OwnerRef {
            kind: OwnerKind::Deployment,
            namespace: "pake-api".into(),
            name: "pake-api-use1".into(),
        };
        let region: BTreeMap<String, String> = [(
            "topology.kubernetes.io/region".to_owned(),
            "us-east-1".to_owned(),
        )]
        .into();
        let pod = |name: &str, owner: Option<OwnerRef>| Pod {
            namespace: "pake-api".into(),
            name: name.into(),
            labels: region.clone(),
            owner,
            running_and_ready: true,
            phase: "Running".into(),
            created: 0,
            node: Some("n1".into()),
            ..Default::default()
        };
        let mut cluster = Cluster {
            owners: vec![Owner {
                key: key.clone(),
                labels: Default::default(),
                desired: 2,
            }],
            pods: vec![pod("pake-api-use1-x", Some(key.clone()))],
            ..Cluster::default()
        };
        let mut s = failover(DnsMethod::HealthCheck);
        s.isolate = vec![Isolate {
            namespace: "pake-api".into(),
            selector: region.clone(),
            how: IsolateHow::NetworkPolicy,
        }];
        let hits = RecentHits::new();
        let open = firedrill_safety::Policy::default();
        let protected = firedrill_safety::Policy {
            protected: vec![
                firedrill_safety::NamespacedGlob::parse("pake-api/pake-api-use1*").unwrap(),
            ],
            ..firedrill_safety::Policy::default()
        };
        let request = |policy| Request {
            drill: "d",
            seed: 1,
            now: 0,
            targets: &[],
            policy,
            own_namespace: "chaos",
            recent_hits: &hits,
        };
        assert!(judge_isolation(&s, &cluster, &request(&open)).is_ok());
        // A protected workload is never cut off, by policy or by scale.
        let refused = judge_isolation(&s, &cluster, &request(&protected))
            .unwrap_err()
            .to_string();
        assert!(refused.contains("protected"), "{refused}");
        // A pod nothing would bring back is not cut off either.
        cluster.pods.push(pod("bare", None));
        let refused = judge_isolation(&s, &cluster, &request(&open))
            .unwrap_err()
            .to_string();
        assert!(refused.contains("pake-api/bare"), "{refused}");
    }
}
