//! The on-call operations on the ledgers in the cluster: `stop` (the kill switch, then every
//! open ledger and artifact), `rollback` of one run or all, `resume`, the sweep of expired
//! artifacts, and the rendering `rollback --render` shows. Each acts through [`KubeCluster`].

use super::*;

/// One ledger's replay, or why it was not replayed.
#[derive(Debug)]
pub struct LedgerOutcome {
    pub ledger: String,
    pub result: Result<Report, NotReplayed>,
}

/// Why a ledger was not replayed: it cannot be read, or no key can verify its entries.
#[derive(Clone, Debug, thiserror::Error)]
pub enum NotReplayed {
    #[error("{0}")]
    Unreadable(#[from] LedgerError),
    #[error("not reverted: {0}")]
    NoKey(crate::cluster::ledger_key::KeyError),
}

impl LedgerOutcome {
    pub fn failed(&self) -> bool {
        self.result.as_ref().map_or(true, Report::failed)
    }
}

/// Which ledgers `rollback` reverts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    Run(String),
    Drill(String),
    All,
}

/// Why `rollback` could not start.
#[derive(Debug)]
pub enum RollbackError {
    /// The run named has no ledger.
    NoLedger(String),
    /// The API could not be read.
    Api(ClusterError),
    /// The ledger key could not be read: nothing is reverted from any ledger.
    Key(crate::cluster::ledger_key::KeyError),
}

/// Reverts the selected open ledgers (or says what it would do). Only entries that verify with
/// the ledger key are applied; with `accept_unsigned` (a person's `--accept-unsigned`, for one
/// run), a ledger written before signing is too. A dry run without the key judges entries as
/// if verified and says so.
pub async fn rollback(
    cluster: &KubeCluster,
    selection: &Selection,
    protection: &Protection,
    dry_run: bool,
    accept_unsigned: bool,
) -> Result<Vec<LedgerOutcome>, RollbackError> {
    let kube = Kube::new(cluster.client.clone(), &cluster.namespace);
    let key = match crate::cluster::ledger_key::read(&kube).await {
        Ok(key) => Some(key),
        Err(e) if dry_run => {
            tracing::warn!(error = %e, "dry run without the ledger key: signatures are not checked");
            None
        }
        Err(e) => return Err(RollbackError::Key(e)),
    };
    let found = match selection {
        Selection::Run(run) => match cluster.ledger(run).await.map_err(RollbackError::Api)? {
            Some(l) => vec![(firedrill_rollback::ledger_name(run), l)],
            // A scenario's run has no ledger of its own: each of its steps has one
            // (`<run>-<step>`), reverted newest first.
            None => {
                let steps = scenario_steps(cluster, run).await?;
                if steps.is_empty() {
                    return Err(RollbackError::NoLedger(format!(
                        "run {run} has no ledger in namespace {} (nothing it changed is recorded there; check --namespace)",
                        cluster.namespace
                    )));
                }
                steps
            }
        },
        _ => cluster.ledgers().await.map_err(RollbackError::Api)?,
    };
    let guard = |r: &ObjectRef| protection.check(r);
    let trust = Trust {
        accept_unsigned,
        ..protection.trust(&guard, key.as_ref())
    };
    let mut out = Vec::new();
    for (name, ledger) in found {
        let Some(mut ledger) = readable(&mut out, &name, ledger) else {
            continue;
        };
        let selected = match selection {
            Selection::Run(_) | Selection::All => true,
            Selection::Drill(d) => &ledger.drill == d,
        };
        if !selected || !ledger.is_open() {
            continue;
        }
        let report = replay(cluster, &mut ledger, &trust, dry_run).await;
        let outcome = LedgerOutcome {
            ledger: name,
            result: Ok(report),
        };
        if !dry_run {
            report_rejected(cluster, &outcome).await;
        }
        out.push(outcome);
    }
    Ok(out)
}

/// The ledgers of a scenario run's steps (`<run>-<step>`, all of one drill), newest first.
async fn scenario_steps(
    cluster: &KubeCluster,
    run: &str,
) -> Result<Vec<(String, Result<Ledger, LedgerError>)>, RollbackError> {
    let prefix = format!("{run}-");
    let steps: Vec<(String, Result<Ledger, LedgerError>)> = cluster
        .ledgers()
        .await
        .map_err(RollbackError::Api)?
        .into_iter()
        .filter(|(_, l)| l.as_ref().is_ok_and(|l| l.run.starts_with(&prefix)))
        .collect();
    // Another drill's run whose id happens to start the same is not a step of this one.
    let drills: BTreeSet<&str> = steps
        .iter()
        .filter_map(|(_, l)| l.as_ref().ok().map(|l| l.drill.as_str()))
        .collect();
    if drills.len() > 1 {
        return Err(RollbackError::NoLedger(format!(
            "run {run} has no ledger of its own, and the ledgers named {prefix}… belong to several drills ({}): name the step's run to revert",
            drills.into_iter().collect::<Vec<_>>().join(", ")
        )));
    }
    Ok(steps)
}

/// The ledger, when it could be read; when not, `out` gets its outcome (why) and the caller
/// skips it.
fn readable(
    out: &mut Vec<LedgerOutcome>,
    name: &str,
    ledger: Result<Ledger, LedgerError>,
) -> Option<Ledger> {
    match ledger {
        Ok(ledger) => Some(ledger),
        Err(e) => {
            out.push(LedgerOutcome {
                ledger: name.to_owned(),
                result: Err(e.into()),
            });
            None
        }
    }
}

/// Says, for each entry a replay would not apply because it is not proven firedrill's own,
/// which and why: an error in the log and a Warning Event on the ledger ConfigMap (what
/// `kubectl describe configmap` shows). The scheduler also counts them on `/metrics`.
pub async fn report_rejected(cluster: &KubeCluster, outcome: &LedgerOutcome) {
    let Ok(report) = &outcome.result else {
        return;
    };
    for rejected in &report.rejected {
        let text = report
            .actions
            .iter()
            .find(|a| a.step == rejected.step)
            .map(|a| a.text.as_str())
            .unwrap_or_default();
        tracing::error!(ledger = %outcome.ledger, step = %rejected.step, reason = rejected.why.label(), %text, "ledger entry not applied: not proven firedrill's own");
        let involved = crate::cluster::kubernetes::Involved {
            api_version: "v1",
            kind: "ConfigMap",
            namespace: Some(&cluster.namespace),
            name: &outcome.ledger,
        };
        let event = crate::cluster::kubernetes::event_about(
            &involved,
            &cluster.namespace,
            true,
            "LedgerEntryUnverified",
            &format!("{}: {text}", rejected.step),
        );
        let api: Api<k8s_openapi::api::core::v1::Event> =
            Api::namespaced(cluster.client.clone(), &cluster.namespace);
        if let Err(e) = api.create(&PostParams::default(), &event).await {
            tracing::warn!(ledger = %outcome.ledger, error = %e, "no Event on the ledger");
        }
    }
}

/// What `stop` did, step by step.
#[derive(Debug)]
pub struct StopReport {
    pub kill_switch: Result<String, ClusterError>,
    pub jobs: Result<(), ClusterError>,
    pub swept: Vec<Result<Swept, ClusterError>>,
    pub ledgers: Vec<LedgerOutcome>,
    /// What is still there after all of it: artifacts and open ledgers, or errors reading them.
    pub remaining: Vec<String>,
}

impl StopReport {
    pub fn clean(&self) -> bool {
        self.remaining.is_empty()
            && self.kill_switch.is_ok()
            && self.jobs.is_ok()
            && self.swept.iter().all(Result::is_ok)
            && !self.ledgers.iter().any(LedgerOutcome::failed)
    }
}

/// The emergency stop: engage the kill switch (nothing new starts, running executors revert),
/// delete the drill Jobs, sweep every labelled artifact by kind, revert every open ledger, and
/// look again for anything left. Calls grow with the kinds of artifact and the runs, not with
/// the number of artifacts.
pub async fn stop(kube: &Kube, reason: &str, by: &str, protection: &Protection) -> StopReport {
    stop_saying(kube, reason, by, protection, &|_| {}).await
}

/// [`stop`], saying each phase as it begins (the CLI's progress).
pub async fn stop_saying(
    kube: &Kube,
    reason: &str,
    by: &str,
    protection: &Protection,
    phase: &(dyn Fn(&str) + Sync),
) -> StopReport {
    let cluster = KubeCluster::new(kube);
    phase("engaging the kill switch");
    let mut report = StopReport {
        kill_switch: engage(kube, reason, by).await,
        jobs: Ok(()),
        swept: Vec::new(),
        ledgers: Vec::new(),
        remaining: Vec::new(),
    };
    phase("deleting drill Jobs");
    let jobs: Api<Job> = Api::namespaced(kube.client().clone(), kube.namespace());
    report.jobs = jobs
        .delete_collection(
            &DeleteParams::background(),
            &ListParams::default().labels(JOB_SELECTOR),
        )
        .await
        .map(|_| ())
        .map_err(|e| {
            let message = format!("delete drill Jobs in {}: {e}", kube.namespace());
            let rule = access("deletecollection", "jobs.batch", Some(kube.namespace()));
            cluster_error(&e, rule, message)
        });
    let mut deleted: BTreeSet<ObjectRef> = BTreeSet::new();
    for kind in ARTIFACT_KINDS {
        phase(&format!(
            "sweeping every {kind} labelled {ARTIFACT_SELECTOR}"
        ));
        let swept = cluster.sweep(kind, protection).await;
        if let Ok(s) = &swept {
            deleted.extend(s.found.iter().cloned());
        }
        report.swept.push(swept);
    }
    // Only what the sweep itself deleted is closed without a look; anything else a ledger
    // created is judged one by one.
    let swept = |r: &ObjectRef| deleted.contains(r);
    let guard = |r: &ObjectRef| protection.check(r);
    phase("reading the ledger key");
    // Without the key nothing is applied from any ledger (the sweep by label above has run: it
    // deletes only labelled artifacts of the kinds firedrill creates, outside protected
    // namespaces); each open ledger says why it was not reverted.
    let key = crate::cluster::ledger_key::read(kube).await;
    phase("reverting open ledgers");
    match cluster.ledgers().await {
        Ok(ledgers) => {
            for (name, ledger) in ledgers {
                let result = match (ledger, &key) {
                    (Ok(mut ledger), Ok(key)) if ledger.is_open() => {
                        phase(&format!("reverting {name}"));
                        let trust = protection.trust(&guard, Some(key));
                        Ok(replay_after_sweep(&cluster, &mut ledger, &trust, &swept).await)
                    }
                    (Ok(ledger), Err(e)) if ledger.is_open() => Err(NotReplayed::NoKey(e.clone())),
                    (Ok(_), _) => continue,
                    (Err(e), _) => Err(e.into()),
                };
                let outcome = LedgerOutcome {
                    ledger: name,
                    result,
                };
                report_rejected(&cluster, &outcome).await;
                report.ledgers.push(outcome);
            }
        }
        Err(e) => report.remaining.push(format!("ledgers unknown: {e}")),
    }
    phase("checking that nothing remains");
    for kind in ARTIFACT_KINDS {
        match cluster.artifacts(kind).await {
            Ok(left) => report
                .remaining
                .extend(left.iter().map(|r| format!("{r} (artifact)"))),
            Err(e) => report.remaining.push(format!("{kind}s unknown: {e}")),
        }
    }
    if let Ok(ledgers) = cluster.ledgers().await {
        for (name, ledger) in ledgers {
            if ledger.as_ref().map_or(true, Ledger::is_open) {
                report.remaining.push(format!("ledger {name} still open"));
            }
        }
    }
    report
}

/// Engages the kill switch; says what it found.
pub async fn engage(kube: &Kube, reason: &str, by: &str) -> Result<String, ClusterError> {
    let cm = kill_switch_config_map(kube.namespace(), reason, by);
    let api: Api<ConfigMap> = Api::namespaced(kube.client().clone(), kube.namespace());
    match api.create(&PostParams::default(), &cm).await {
        Ok(_) => Ok(format!("kill switch engaged ({reason}, by {by})")),
        Err(e) if status(&e) == Some(409) => Ok("kill switch was already engaged".to_owned()),
        Err(e) => Err(failed(
            &e,
            "create",
            ObjectKind::ConfigMap,
            Some(kube.namespace()),
            format!("KILL SWITCH NOT ENGAGED: {e}"),
        )),
    }
}

/// Releases the kill switch. `Ok(false)` when it was not engaged.
pub async fn release(kube: &Kube) -> Result<bool, ClusterError> {
    let api: Api<ConfigMap> = Api::namespaced(kube.client().clone(), kube.namespace());
    match api.delete(KILL_SWITCH, &DeleteParams::default()).await {
        Ok(_) => Ok(true),
        Err(e) if status(&e) == Some(404) => Ok(false),
        Err(e) => Err(failed(
            &e,
            "delete",
            ObjectKind::ConfigMap,
            Some(kube.namespace()),
            format!("delete ConfigMap {}/{KILL_SWITCH}: {e}", kube.namespace()),
        )),
    }
}

/// The dead-man's switch and the scheduler's clean-up: reverts every open ledger whose expiry
/// has passed, or whose run's Job is no longer running (failed, finished or gone), and deletes
/// every artifact whose expiry has passed.
pub async fn sweep_expired(
    kube: &Kube,
    now: DateTime<Utc>,
    running_jobs: &BTreeSet<String>,
    protection: &Protection,
) -> Result<Vec<LedgerOutcome>, ClusterError> {
    let cluster = KubeCluster::new(kube);
    let guard = |r: &ObjectRef| protection.check(r);
    // The scheduler is what creates the key at first start; it is never without one here
    // unless the API refuses, and then no ledger is replayed (each says why).
    let key = crate::cluster::ledger_key::read_or_create(kube).await;
    let expired = |at: &str| {
        DateTime::parse_from_rfc3339(at)
            .map(|t| t.with_timezone(&Utc) <= now)
            // An expiry that cannot be read is treated as passed (fail safe).
            .unwrap_or(true)
    };
    let mut out = Vec::new();
    for (name, ledger) in cluster.ledgers().await? {
        let Some(mut ledger) = readable(&mut out, &name, ledger) else {
            continue;
        };
        if !ledger.is_open() {
            continue;
        }
        // A run from a Job is reverted as soon as its Job is not running; a run started by
        // hand (`execute` on a workstation) only at its expiry.
        let orphaned = ledger
            .job
            .as_ref()
            .is_some_and(|job| !running_jobs.contains(job));
        if !(orphaned || expired(&ledger.expires_at)) {
            continue;
        }
        let key = match &key {
            Ok(key) => key,
            Err(e) => {
                tracing::error!(ledger = %name, error = %e, "a ledger its run left open is not reverted: no ledger key");
                out.push(LedgerOutcome {
                    ledger: name,
                    result: Err(NotReplayed::NoKey(e.clone())),
                });
                continue;
            }
        };
        let report = replay(
            &cluster,
            &mut ledger,
            &protection.trust(&guard, Some(key)),
            false,
        )
        .await;
        tracing::warn!(ledger = %name, actions = report.actions.len(), failed = report.failed(), "reverted a ledger its run left open");
        let outcome = LedgerOutcome {
            ledger: name,
            result: Ok(report),
        };
        report_rejected(&cluster, &outcome).await;
        out.push(outcome);
    }
    for kind in ARTIFACT_KINDS {
        let params = ListParams::default().labels(ARTIFACT_SELECTOR);
        let items: Vec<Value> = with_api!(kube.client().clone(), kind, None, |api| api
            .list(&params)
            .await
            .map(|l| l.items.into_iter().map(to_value).collect()))
        .map_err(|e| failed(&e, "list", kind, None, format!("list {kind}s: {e}")))?;
        for item in items {
            let at = item
                .pointer("/metadata/annotations/firedrill.io~1expires-at")
                .and_then(Value::as_str)
                .unwrap_or("");
            let Some(target) = ObjectRef::named(&item, kind) else {
                continue;
            };
            if expired(at) && guard(&target).is_none() {
                match cluster
                    .execute(&Operation::Delete {
                        target: target.clone(),
                    })
                    .await
                {
                    Ok(_) => {
                        tracing::warn!(artifact = %target, expired = at, "deleted an artifact past its expiry")
                    }
                    // One that cannot be deleted does not stop the others.
                    Err(e) => {
                        tracing::error!(artifact = %target, error = %e, "an artifact past its expiry could not be deleted")
                    }
                }
            }
        }
    }
    Ok(out)
}

/// The workloads runs hit since `since`, from their ledgers in the cluster: what `cooldown` reads
/// when the history is out of reach (a Job cannot reach the leader's SQLite file), and what it
/// adds to the history otherwise. A ledger that cannot be read is skipped with a warning.
pub async fn recent_hits(
    kube: &Kube,
    since: DateTime<Utc>,
) -> Result<firedrill_safety::verdict::RecentHits, ClusterError> {
    use firedrill_safety::cluster::{OwnerKind, OwnerRef};
    let mut hits = Vec::new();
    for (name, ledger) in KubeCluster::new(kube).ledgers().await? {
        let ledger = match ledger {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(ledger = %name, error = %e, "a ledger's hits are unreadable; cooldown goes without them");
                continue;
            }
        };
        let Some(started) = ledger
            .started
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
        else {
            continue;
        };
        if started < since {
            continue;
        }
        for hit in &ledger.hits {
            let mut parts = hit.splitn(3, '/');
            if let (Some(kind), Some(namespace), Some(name)) =
                (parts.next(), parts.next(), parts.next())
            {
                hits.push((
                    OwnerRef {
                        kind: OwnerKind::parse(kind),
                        namespace: namespace.to_owned(),
                        name: name.to_owned(),
                    },
                    started.timestamp(),
                ));
            }
        }
    }
    Ok(firedrill_safety::verdict::latest_hits(hits))
}

/// A replay report as lines for people.
pub fn describe(outcome: &LedgerOutcome) -> Vec<String> {
    match &outcome.result {
        Err(e) => vec![format!("{}: NOT REVERTED: {e}", outcome.ledger)],
        Ok(report) if report.actions.is_empty() => {
            vec![format!("{}: nothing to do", outcome.ledger)]
        }
        Ok(report) => report
            .actions
            .iter()
            .map(|a| {
                let word = match a.outcome {
                    Outcome::Reverted => "reverted",
                    Outcome::AlreadyDone => "already as before",
                    Outcome::Left => "LEFT (changed since)",
                    Outcome::WouldRevert => "would revert",
                    Outcome::Failed => "FAILED",
                };
                format!("{} {}: {word}: {}", outcome.ledger, a.step, a.text)
            })
            .collect(),
    }
}

/// What a saved ledger's revert would do, entry by entry, newest first, as YAML documents:
/// `rollback --ledger FILE --render`. Found by replaying it ([`firedrill_rollback::preview`])
/// on a cluster in memory that holds each object as the run left it, with `protection` (the
/// same guard and scope as a real revert): every verdict and operation printed is one the
/// replay reached, none is a second reading of the records.
pub async fn render(ledger: &Ledger, protection: &Protection, key: Option<&Key>) -> String {
    let guard = |r: &ObjectRef| protection.check(r);
    let trust = protection.trust(&guard, key);
    let previewed = firedrill_rollback::preview(ledger, &trust).await;
    let rejected: BTreeMap<&str, firedrill_rollback::Rejection> = previewed
        .iter()
        .filter_map(|p| Some((p.action.step.as_str(), p.rejection?)))
        .collect();
    let mut out = String::new();
    let doc = |p: &firedrill_rollback::Previewed, state: Option<&EntryState>| {
        let verdict = match p.action.outcome {
            Outcome::Reverted | Outcome::WouldRevert => "will revert",
            Outcome::AlreadyDone => "already as before",
            Outcome::Left => "left",
            Outcome::Failed if p.action.text.starts_with("refused: ") => "refused",
            Outcome::Failed if rejected.contains_key(p.action.step.as_str()) => "not verified",
            Outcome::Failed => "not undone",
        };
        let mut doc = serde_json::json!({ "step": p.action.step, "verdict": verdict });
        if let Some(state) = state {
            doc["state"] = serde_json::json!(state);
            // What the entry's code says: checked only with the key, as a real revert checks it.
            let signature = match (rejected.get(p.action.step.as_str()), key) {
                (Some(firedrill_rollback::Rejection::Unverified(why)), _) => {
                    format!("DOES NOT VERIFY ({why})")
                }
                (Some(firedrill_rollback::Rejection::Unsigned), _) => {
                    "unsigned (ledger-v1: needs --accept-unsigned)".to_owned()
                }
                (Some(firedrill_rollback::Rejection::NoKey), _) | (None, None) => {
                    "not checked (no key given)".to_owned()
                }
                (None, Some(_)) => "verified".to_owned(),
            };
            doc["signature"] = serde_json::json!(signature);
        }
        doc["why"] = Value::String(p.action.text.clone());
        if let Some(operation) = &p.operation {
            doc["operation"] = Value::String(operation.describe());
            doc["call"] = serde_json::json!(operation);
        }
        firedrill_reader::yaml::emit(&doc)
    };
    let by_step: BTreeMap<&str, &firedrill_rollback::Previewed> = previewed
        .iter()
        .map(|p| (p.action.step.as_str(), p))
        .collect();
    // What cannot be read comes first, as the replay reports it.
    for u in &ledger.unreadable {
        if let Some(p) = by_step.get(u.key.as_str()) {
            out.push_str("---\n");
            out.push_str(&doc(p, None));
        }
    }
    for entry in ledger.entries.iter().rev() {
        let step = format!("step-{:04}", entry.seq);
        out.push_str("---\n");
        match by_step.get(step.as_str()) {
            Some(p) => out.push_str(&doc(p, Some(&entry.state))),
            None => {
                let mut closed = serde_json::json!({
                    "step": step,
                    "verdict": "closed",
                    "state": entry.state,
                    "why": "already closed; a revert does not touch it",
                });
                if let Some(note) = &entry.note {
                    closed["note"] = Value::String(note.clone());
                }
                out.push_str(&firedrill_reader::yaml::emit(&closed));
            }
        }
    }
    if ledger.entries.is_empty() && ledger.unreadable.is_empty() {
        out.push_str("# the ledger records no changes\n");
    }
    out
}
