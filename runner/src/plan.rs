//! `firedrill plan`: the calendar of upcoming fires, as a table for people or JSON for tools.

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde::Serialize;

use firedrill_safety::cluster::Cluster;
use firedrill_safety::verdict::{self, Request};

use crate::config::Config;
use crate::duration;
use crate::schedule::{self, Fire, FireStatus};

/// How far `plan` looks when neither `--until` nor `--next` is given.
pub const DEFAULT_WINDOW: TimeDelta = TimeDelta::days(366);
/// How far `--next` searches for fires before giving up.
const MAX_SEARCH: TimeDelta = TimeDelta::days(100 * 366);

/// How much of the calendar to show.
#[derive(Clone, Copy, Debug)]
pub enum Window {
    Until(DateTime<Utc>),
    Next(usize),
    /// One hypothetical fire of every drill at this instant.
    At(DateTime<Utc>),
}

/// One fire as `plan --format json` prints it. Field names are a contract.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlannedFire {
    pub drill: String,
    pub kind: String,
    pub scheduled: String,
    pub local: String,
    pub timezone: String,
    pub start: Option<String>,
    /// `start` in the drill's zone.
    pub start_local: Option<String>,
    pub duration_seconds: u64,
    pub status: FireStatus,
    pub reason: Option<String>,
    /// With `--cluster`: what the fire would hit, for fires that run and act on pods.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<PlannedVerdict>,
}

/// The guard's verdict for one fire, as `plan --cluster --format json` prints it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlannedVerdict {
    pub targets: Vec<PlannedTarget>,
    pub excluded: Vec<PlannedExclusion>,
    pub blocked: Option<String>,
    /// Node faults: each node the fire would drain or stress, with every pod on it that it
    /// hurts (targets and neighbours).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodes: Option<Vec<PlannedNode>>,
    /// Node faults: each node the fire would leave alone, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused_nodes: Option<Vec<PlannedRefusal>>,
    /// Dependency faults: what fails and how. Scaling it down or answering for its Service
    /// reaches every client, not only the pods in `targets`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dependency: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlannedRefusal {
    pub node: String,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlannedNode {
    pub node: String,
    pub cordoned_before: bool,
    pub pods: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlannedTarget {
    pub namespace: String,
    pub name: String,
    /// The workload, as `Kind/name` in the pod's namespace.
    pub owner: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlannedExclusion {
    pub namespace: String,
    pub name: String,
    pub reason: String,
}

fn rfc3339_utc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The fires of `config` from `from` on, as far as `window` says; with a cluster snapshot, what
/// each fire would hit, and with `exclusions`, every pod it leaves alone and why (a table shows
/// only counts: a year of hourly fires would otherwise hold millions of reasons).
pub fn calendar(
    config: &Config,
    from: DateTime<Utc>,
    window: Window,
    cluster: Option<&Cluster>,
    exclusions: bool,
) -> Vec<PlannedFire> {
    let drills = config.planned_drills();
    let run = |until: DateTime<Utc>| {
        schedule::plan(
            &drills,
            config.timezone,
            &config.blackouts,
            config.concurrency as usize,
            from,
            until,
        )
    };
    let fires: Vec<Fire> = match window {
        Window::Until(until) => run(until),
        Window::Next(n) => schedule::plan_next(
            &drills,
            config.timezone,
            &config.blackouts,
            config.concurrency as usize,
            from,
            n,
            from.checked_add_signed(MAX_SEARCH)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        ),
        Window::At(at) => schedule::fires_at(&drills, config.timezone, &config.blackouts, at),
    };
    // Fires of a calendar follow each other, so each sees the cooldown of those before it;
    // `--at` asks what each drill would do on its own.
    let sequential = !matches!(window, Window::At(_));
    let verdicts = match cluster {
        Some(cluster) => verdicts(config, cluster, &fires, sequential, exclusions),
        None => vec![None; fires.len()],
    };
    fires
        .into_iter()
        .zip(verdicts)
        .map(|(f, verdict)| {
            let drill = &config.drills[f.drill];
            PlannedFire {
                drill: drill.name.clone(),
                kind: drill.kind.to_string(),
                scheduled: rfc3339_utc(f.scheduled),
                local: f
                    .scheduled
                    .with_timezone(&drill.timezone)
                    .to_rfc3339_opts(SecondsFormat::Secs, true),
                timezone: drill.timezone.name().to_owned(),
                start: f.start.map(rfc3339_utc),
                start_local: f.start.map(|s| {
                    s.with_timezone(&drill.timezone)
                        .to_rfc3339_opts(SecondsFormat::Secs, true)
                }),
                duration_seconds: drill.duration.as_secs(),
                status: f.status,
                reason: f.reason,
                verdict,
            }
        })
        .collect()
}

/// The guard's verdict for each fire that runs and acts on pods, in start order; when
/// `sequential`, each fire's cooldown sees the workloads the fires before it hit.
fn verdicts(
    config: &Config,
    cluster: &Cluster,
    fires: &[Fire],
    sequential: bool,
    exclusions: bool,
) -> Vec<Option<PlannedVerdict>> {
    let mut out = vec![None; fires.len()];
    let mut order: Vec<usize> = (0..fires.len()).collect();
    order.sort_by_key(|&i| (fires[i].start, i));
    let index = verdict::ClusterIndex::new(cluster);
    let mut hits = verdict::RecentHits::new();
    for i in order {
        let fire = &fires[i];
        let drill = &config.drills[fire.drill];
        let Some(start) = fire.start else { continue };
        if !drill.kind.needs_pod_targets()
            && drill.kind != firedrill_experiments::Kind::RegionFailover
        {
            continue;
        }
        let choice = firedrill_experiments::choose(
            drill.kind,
            &drill.fault,
            &index,
            cluster,
            &Request {
                drill: &drill.name,
                seed: verdict::seed(&drill.name, fire.scheduled.timestamp()),
                now: start.timestamp(),
                targets: &drill.targets,
                policy: &drill.safety,
                own_namespace: &config.namespace,
                recent_hits: &hits,
            },
        );
        let (nodes, refused_nodes) = match choice.nodes {
            None => (None, None),
            Some(judged) => (
                Some(
                    judged
                        .nodes
                        .into_iter()
                        .map(|n| PlannedNode {
                            node: n.node,
                            cordoned_before: n.was_unschedulable,
                            pods: n
                                .pods
                                .into_iter()
                                .map(|p| format!("{}/{}", p.namespace, p.name))
                                .collect(),
                        })
                        .collect(),
                ),
                Some(
                    judged
                        .refused
                        .into_iter()
                        .filter(|_| exclusions)
                        .map(|(node, reason)| PlannedRefusal { node, reason })
                        .collect(),
                ),
            ),
        };
        let v = choice.verdict;
        if sequential {
            // Fires are decided in start order, so this fire's start is each workload's latest.
            for owner in v.targets.iter().filter_map(|t| t.owner.clone()) {
                hits.insert(owner, start.timestamp());
            }
        }
        out[i] = Some(PlannedVerdict {
            targets: v
                .targets
                .into_iter()
                .map(|t| PlannedTarget {
                    owner: t.owner.map(|o| format!("{}/{}", o.kind, o.name)),
                    namespace: t.namespace,
                    name: t.name,
                })
                .collect(),
            excluded: v
                .excluded
                .into_iter()
                .filter(|_| exclusions)
                .map(|e| PlannedExclusion {
                    namespace: e.namespace,
                    name: e.name,
                    reason: e.reason,
                })
                .collect(),
            blocked: v.blocked,
            nodes,
            refused_nodes,
            dependency: match &drill.fault {
                firedrill_experiments::Settings::DependencyFailure(d) => Some(format!(
                    "{} ({})",
                    d.dependency,
                    firedrill_experiments::dependency::mode_name(&d.mode)
                )),
                _ => None,
            },
        });
    }
    out
}

pub fn render_json(fires: &[PlannedFire]) -> String {
    serde_json::to_string_pretty(fires).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// A plain-text table, one fire per line, columns aligned. The HITS column (pods the guard
/// would hit) appears only when the plan was made against a cluster snapshot.
pub fn render_table(fires: &[PlannedFire]) -> String {
    let with_hits = fires.iter().any(|f| f.verdict.is_some());
    let mut header = vec![
        "DRILL", "KIND", "LOCAL", "UTC", "DURATION", "STATUS", "START",
    ];
    if with_hits {
        header.push("HITS");
    }
    header.push("REASON");
    let rows: Vec<Vec<String>> = fires
        .iter()
        .map(|f| {
            let mut row = vec![
                f.drill.clone(),
                f.kind.clone(),
                f.local.clone(),
                f.scheduled.clone(),
                duration::format(std::time::Duration::from_secs(f.duration_seconds)),
                f.status.to_string(),
                match (&f.start, &f.start_local) {
                    (Some(s), _) if *s == f.scheduled => "on time".to_owned(),
                    (_, Some(local)) => local.clone(),
                    _ => "-".to_owned(),
                },
            ];
            if with_hits {
                row.push(match &f.verdict {
                    None => "-".to_owned(),
                    Some(v) if v.blocked.is_some() => "blocked".to_owned(),
                    Some(v) => format!(
                        "{} pod{}",
                        v.targets.len(),
                        if v.targets.len() == 1 { "" } else { "s" }
                    ),
                });
            }
            let blocked = f.verdict.as_ref().and_then(|v| v.blocked.as_ref());
            row.push(match (&f.reason, blocked) {
                (Some(r), Some(b)) => format!("{r}; {b}"),
                (Some(r), None) => r.clone(),
                (None, Some(b)) => b.clone(),
                (None, None) => String::new(),
            });
            row
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&header.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>());
    for row in &rows {
        line(row);
    }
    if rows.is_empty() {
        out.push_str("(no fires in this window)\n");
    }
    out
}

/// `plan --drill NAME --at T --render`: every change one fire of the drill would make to the
/// cluster snapshot, as YAML documents — objects it would create (as they would be created,
/// labels and expiry included) and changes to existing objects with the prior value a revert
/// restores. Nothing is asked of a cluster.
pub fn render_fire(
    config: &Config,
    cluster: &Cluster,
    name: &str,
    at: DateTime<Utc>,
) -> Result<String, String> {
    let drill = config.drill(name).ok_or_else(|| {
        let names: Vec<&str> = config.drills.iter().map(|d| d.name.as_str()).collect();
        format!(
            "no drill named {name:?} (the file's drills: {})",
            names.join(", ")
        )
    })?;
    let index = verdict::ClusterIndex::new(cluster);
    let judged =
        drill.kind.needs_pod_targets() || drill.kind == firedrill_experiments::Kind::RegionFailover;
    let chosen = judged.then(|| {
        firedrill_experiments::choose(
            drill.kind,
            &drill.fault,
            &index,
            cluster,
            &Request {
                drill: &drill.name,
                seed: verdict::seed(&drill.name, at.timestamp()),
                now: at.timestamp(),
                targets: &drill.targets,
                policy: &drill.safety,
                own_namespace: &config.namespace,
                recent_hits: &verdict::RecentHits::new(),
            },
        )
    });
    let mut out = format!(
        "# {} ({}) at {}: what one fire would change, newest last\n",
        drill.name,
        drill.kind,
        rfc3339_utc(at)
    );
    for (_, reason) in chosen
        .iter()
        .filter_map(|c| c.nodes.as_ref())
        .flat_map(|n| &n.refused)
    {
        out.push_str(&format!("# left alone: {reason}\n"));
    }
    if let Some(blocked) = chosen.as_ref().and_then(|c| c.verdict.blocked.as_ref()) {
        out.push_str(&format!("# blocked: {blocked}; nothing would change\n"));
        return Ok(out);
    }
    let run = crate::job::run_id(&drill.name, at);
    let expires = at
        + TimeDelta::from_std(crate::job::active_deadline(drill)).unwrap_or(TimeDelta::hours(25));
    let image = crate::job::Runtime::from_env().image;
    let plan = firedrill_experiments::plan(
        drill.kind,
        &run,
        &drill.fault,
        &firedrill_experiments::Scene {
            choice: chosen.as_ref(),
            cluster: Some(cluster),
            image: &image,
            duration: drill.duration,
            expires: &rfc3339_utc(expires),
            dns: None,
        },
    )?;
    let ledger = firedrill_rollback::Ledger::new(
        &run,
        &drill.name,
        drill.kind.name(),
        &rfc3339_utc(expires),
    );
    for (w, wave) in plan.waves.iter().enumerate() {
        for step in wave {
            let mut doc = serde_json::json!({
                "change": firedrill_rollback::stamped(&step.forward, &ledger),
                "undo": step.undo,
            });
            if plan.waves.len() > 1 {
                doc["wave"] = serde_json::json!(w + 1);
            }
            out.push_str("---\n");
            out.push_str(&crate::config::yaml::emit(&doc));
        }
    }
    if plan.is_empty() {
        out.push_str("# nothing would change\n");
    }
    Ok(out)
}

/// What a person should know about the drills that fire in a plan: what a kind needs of the
/// cluster and of the people running it. One line each.
pub fn notes(config: &Config, fired: &std::collections::BTreeSet<&str>) -> Vec<String> {
    use firedrill_experiments::region::Failback;
    use firedrill_experiments::{Kind, Mode, Settings};
    let drills: Vec<&crate::config::Drill> = config
        .drills
        .iter()
        .filter(|d| fired.contains(d.name.as_str()))
        .collect();
    let names = |keep: &dyn Fn(&crate::config::Drill) -> bool| -> Vec<&str> {
        drills
            .iter()
            .filter(|d| keep(d))
            .map(|d| d.name.as_str())
            .collect()
    };
    let mut notes = Vec::new();
    let policies = names(&|d| {
        d.kind == Kind::NetworkPartition
            || matches!(&d.fault, Settings::DependencyFailure(s) if s.mode == Mode::Block)
            || matches!(&d.fault, Settings::RegionFailover(rf) if rf.isolate.iter().any(|i| i.how == firedrill_experiments::region::IsolateHow::NetworkPolicy))
    });
    if !policies.is_empty() {
        notes.push(format!("{} {} NetworkPolicies: they need a network plugin that enforces them (Calico, Cilium, ...); with one that does not, the fault is silently not in effect", policies.join(", "), if policies.len() == 1 { "uses" } else { "use" }));
    }
    let killers = names(&|d| d.kind == Kind::ContainerKill);
    if !killers.is_empty() {
        notes.push(format!("container-kill drills ({}) run a helper pod with hostPID and CAP_KILL on the target's node: its namespace must allow the `privileged` Pod Security level", killers.join(", ")));
    }
    let degraders = names(&|d| d.kind == Kind::NetworkDegrade);
    if !degraders.is_empty() {
        notes.push(format!("network-degrade drills ({}) run a helper pod with hostPID and the capabilities {} (no others, not privileged: true) on the target's node: its namespace must allow the `privileged` Pod Security level", degraders.join(", "), firedrill_experiments::degrade::CAPABILITIES.join(", ")));
    }
    for d in &drills {
        let Settings::RegionFailover(rf) = &d.fault else {
            continue;
        };
        if let Some(dns) = &rf.dns {
            let actions = match dns.method {
                firedrill_experiments::region::DnsMethod::HealthCheck => "route53:GetHealthCheck, GetHealthCheckStatus, UpdateHealthCheck and ListResourceRecordSets",
                firedrill_experiments::region::DnsMethod::Weights => "route53:GetHealthCheck, GetHealthCheckStatus, ListResourceRecordSets, ChangeResourceRecordSets and GetChange",
            };
            notes.push(format!("{}: changes Route 53 with the AWS credentials of the drill Job (IRSA; and of whoever runs stop or rollback): {actions}", d.name));
        }
        if rf.promote.is_some() {
            let back = match &rf.failback {
                Some(Failback::Runbook(link)) => format!("failback: people follow {link}"),
                Some(Failback::Hook(_)) => {
                    "failback: firedrill runs the declared hook before it reverts DNS and isolation"
                        .to_owned()
                }
                None => "no failback declared (an armed file refuses this)".to_owned(),
            };
            notes.push(format!("{}: promoting the database in {} cannot be undone; the revert restores DNS and isolation only; {back}", d.name, rf.to));
        }
        if let Some(data) = &rf.data {
            let vars: Vec<&str> = [&data.primary, &data.promoted]
                .into_iter()
                .filter_map(|s| match s {
                    firedrill_experiments::region::Source::Env(v) => Some(v.as_str()),
                    firedrill_experiments::region::Source::Url(_) => None,
                })
                .collect();
            if !vars.is_empty() {
                notes.push(format!("{}: the RPO markers read {} from the environment: put them in the Secret {} in firedrill's namespace", d.name, vars.join(" and "), crate::job::ENV_SECRET));
            }
        }
    }
    notes
}
