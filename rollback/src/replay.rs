//! The applier and the replayer: the only code that turns steps and undo records into calls,
//! through a [`Cluster`] the runner implements for the Kubernetes API (and tests in memory).

use std::future::Future;

use serde_json::Value;

use crate::error::ClusterError;
use crate::ledger::{EntryState, Ledger};
use crate::object::{ObjectRef, Operation};
use crate::scope::{within, Scope};
use crate::seal::{Key, Unverified};
use crate::undo::{decide, Decision, Step, UndoRecord};

/// What the applier and replayer need of a cluster. Each call's error says its kind
/// ([`ClusterError`]), which the replay acts on.
pub trait Cluster {
    /// The object as it is now, `None` when it does not exist.
    fn get(
        &self,
        target: &ObjectRef,
    ) -> impl Future<Output = Result<Option<Value>, ClusterError>> + Send;
    /// Makes one change. Deleting what is gone and creating what exists (an earlier attempt) are
    /// not errors; a change the API server refuses for now (an eviction a PodDisruptionBudget
    /// does not allow) is [`Done::Refused`], never retried into a violation.
    fn execute(
        &self,
        operation: &Operation,
    ) -> impl Future<Output = Result<Done, ClusterError>> + Send;
    /// Writes the run's ledger: creates it at the first write (refused if it exists: a run id is
    /// used once), else replaces it only if nobody wrote it since `resource_version` — and
    /// otherwise merges what the other writer stored ([`Ledger::merge`]) and tries again. Sets
    /// `resource_version` to the version written.
    fn save(&self, ledger: &mut Ledger) -> impl Future<Output = Result<(), ClusterError>> + Send;
    /// The state now of what an external undo record names (`record.target`), in the shape its
    /// `prior` and `applied` were recorded in; `None` when it no longer exists. A cluster with no
    /// handler for `system` says so, and the record stays open.
    fn read_external(
        &self,
        system: &str,
        target: &Value,
    ) -> impl Future<Output = Result<Option<Value>, ClusterError>> + Send {
        let _ = target;
        let error = ClusterError::other(format!(
            "no handler for changes in {system} in this process"
        ));
        async move { Err(error) }
    }
}

/// What became of one change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Done {
    Made,
    /// Not made: the API server refused it for now, and said why.
    Refused(String),
}

/// Why applying steps stopped. Whatever was applied is in the ledger; the caller reverts.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error(
        "the ledger could not be written before step {step} ({what}), so it was not made: {error}"
    )]
    Ledger {
        step: usize,
        what: String,
        error: ClusterError,
    },
    #[error("step {step} ({what}) failed: {error}")]
    Step {
        step: usize,
        what: String,
        error: ClusterError,
    },
    #[error("step {step} ({what}) touches {target}, which is protected; not made")]
    Protected {
        step: usize,
        what: String,
        target: String,
    },
    /// A planner asked for something firedrill's planners never do: a bug, refused before the
    /// ledger holds it.
    #[error("step {step} ({what}) is outside what firedrill's planners write ({why}); not made (a firedrill bug: please report it)")]
    OutOfScope {
        step: usize,
        what: String,
        why: crate::scope::OutOfScope,
    },
    #[error("step {step} ({what}) not made: no ledger key to sign its undo record with, and an unsigned entry would never be reverted")]
    NoKey { step: usize, what: String },
}

/// Says whether an object may be touched; `Some(reason)` when it is protected.
pub type Guard<'a> = &'a (dyn Fn(&ObjectRef) -> Option<String> + Sync);

/// What a ledger entry must pass before anything acts on it, and what a writer signs with: its
/// object is not protected (`guard`), it is something firedrill's planners write (`scope`),
/// and it carries a code made with the ledger key (`key`), which [`apply`] signs with and
/// [`replay`] verifies.
#[derive(Clone, Copy)]
pub struct Trust<'a> {
    pub guard: Guard<'a>,
    pub scope: &'a Scope,
    /// `None`: no key given. [`apply`] then writes nothing; a real [`replay`] applies nothing;
    /// a dry run judges entries as if verified and says that it did not check them.
    pub key: Option<&'a Key>,
    /// Applies ledgers written before signing (format v1), which cannot be verified: only ever
    /// set by a person (`rollback --run ID --accept-unsigned`), never by the sweeper or `stop`.
    pub accept_unsigned: bool,
}

impl<'a> Trust<'a> {
    /// Signed entries only, with `key`.
    pub fn new(guard: Guard<'a>, scope: &'a Scope, key: &'a Key) -> Self {
        Trust {
            guard,
            scope,
            key: Some(key),
            accept_unsigned: false,
        }
    }

    /// No key: for a dry run that cannot read it (an offline render).
    pub fn without_key(guard: Guard<'a>, scope: &'a Scope) -> Self {
        Trust {
            guard,
            scope,
            key: None,
            accept_unsigned: false,
        }
    }

    /// Why `undo` must not be acted on, if it must not (whoever signed it).
    pub fn refuses(&self, undo: &UndoRecord) -> Option<String> {
        let target = undo.target();
        if let Some(reason) = target.as_ref().and_then(self.guard) {
            return Some(format!(
                "refused: names {}, which is protected ({reason}); not touched",
                target.map(|t| t.to_string()).unwrap_or_default()
            ));
        }
        within(undo, self.scope)
            .err()
            .map(|why| format!("refused: {why}; not touched (the ledger stays open)"))
    }
}

/// Applies steps in order: for each, the undo record goes to the ledger first (a failed write
/// means the change is not made), then the change, then the entry is marked applied.
pub async fn apply<C: Cluster>(
    cluster: &C,
    ledger: &mut Ledger,
    steps: &[Step],
    trust: &Trust<'_>,
) -> Result<Applied, ApplyError> {
    let mut applied = Applied::default();
    for (i, step) in steps.iter().enumerate() {
        let what = step.forward.describe();
        let number = i + 1;
        let Some(key) = trust.key else {
            return Err(ApplyError::NoKey { step: number, what });
        };
        if let Some(target) = step.forward.target().filter(|t| (trust.guard)(t).is_some()) {
            return Err(ApplyError::Protected {
                step: number,
                what,
                target: target.to_string(),
            });
        }
        if let Err(why) = within(&step.undo, trust.scope) {
            return Err(ApplyError::OutOfScope {
                step: number,
                what,
                why,
            });
        }
        let index = ledger.push(step.undo.clone(), key);
        if let Err(error) = cluster.save(ledger).await {
            // Not made, so nothing to undo: the entry goes, the ledger stays as last written.
            ledger.entries.remove(index);
            return Err(ApplyError::Ledger {
                step: number,
                what,
                error,
            });
        }
        let done = cluster
            .execute(&stamped(&step.forward, ledger))
            .await
            .map_err(|error| ApplyError::Step {
                step: number,
                what: what.clone(),
                error,
            })?;
        let entry = &mut ledger.entries[index];
        match done {
            Done::Made => {
                entry.state = EntryState::Applied;
                applied.made.push(what);
            }
            Done::Refused(reason) => {
                // Nothing changed, so nothing to undo.
                entry.state = EntryState::Reverted;
                entry.note = Some(format!("not made: {reason}"));
                applied.refused.push((what, reason));
            }
        }
        // Marking it is bookkeeping: an `Intended` entry is reverted the same way.
        let _ = cluster.save(ledger).await;
    }
    Ok(applied)
}

/// What [`apply`] made, and what the API server refused for now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub made: Vec<String>,
    pub refused: Vec<(String, String)>,
}

/// Every object a run creates carries the run, the drill, the artifact label (what `stop` and the
/// sweeper select on) and the expiry any firedrill process honours: stamped here, so no fault
/// kind can forget.
pub fn stamped(operation: &Operation, ledger: &Ledger) -> Operation {
    let Operation::Create { object } = operation else {
        return operation.clone();
    };
    let mut object = object.clone();
    let labels = [
        (crate::LABEL_RUN, ledger.run.as_str()),
        (crate::LABEL_DRILL, ledger.drill.as_str()),
        (crate::LABEL_ARTIFACT, "true"),
        ("app.kubernetes.io/name", "firedrill"),
    ];
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        let map = metadata
            .entry("labels")
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
        if let Some(map) = map.as_object_mut() {
            for (k, v) in labels {
                map.insert(k.to_owned(), Value::String(v.to_owned()));
            }
        }
        let map = metadata
            .entry("annotations")
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
        if let Some(map) = map.as_object_mut() {
            map.insert(
                crate::ANNOTATION_EXPIRES_AT.to_owned(),
                Value::String(ledger.expires_at.clone()),
            );
        }
    }
    Operation::Create { object }
}

/// What a replay did with one entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Action {
    /// `step-NNNN`.
    pub step: String,
    pub outcome: Outcome,
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Undone now.
    Reverted,
    /// Already as before: nothing to do.
    AlreadyDone,
    /// Changed by someone since; left alone.
    Left,
    /// Would be undone (dry run).
    WouldRevert,
    /// Not undone: an error, a protected object, an unreadable record. The ledger stays open.
    Failed,
}

/// The whole replay of one ledger.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub actions: Vec<Action>,
    /// The open entries not applied because firedrill cannot prove it wrote them (each also an
    /// action, `Failed`): what the caller reports (log, Event, metric).
    pub rejected: Vec<Rejected>,
}

/// An open entry not applied because it is not proven firedrill's own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// `step-NNNN`.
    pub step: String,
    pub why: Rejection,
}

/// Why an entry is not proven firedrill's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// Its code does not verify with the key.
    Unverified(Unverified),
    /// Its ledger was written before signing (format v1), and no person accepted it.
    Unsigned,
    /// No key was given to check it with (a real replay applies nothing unchecked).
    NoKey,
}

impl Rejection {
    /// A bounded label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Rejection::Unverified(Unverified::Missing) => "no_code",
            Rejection::Unverified(_) => "wrong_code",
            Rejection::Unsigned => "unsigned_ledger",
            Rejection::NoKey => "no_key",
        }
    }
}

impl Report {
    /// Whether anything could not be undone (and so remains).
    pub fn failed(&self) -> bool {
        self.actions.iter().any(|a| a.outcome == Outcome::Failed)
    }
}

/// Replays the ledger backwards: each open entry is judged on its object as it is now and
/// undone, found already undone, or left because someone changed it since. Idempotent: a
/// second replay finds nothing open. With `dry_run`, nothing changes (the ledger neither).
pub async fn replay<C: Cluster>(
    cluster: &C,
    ledger: &mut Ledger,
    trust: &Trust<'_>,
    dry_run: bool,
) -> Report {
    replay_with(cluster, ledger, trust, Mode::of(dry_run), &|_| false).await
}

/// [`replay`] on a cluster in memory that stands for the real one (`rollback --render`'s
/// [`crate::AsLeft`]): its changes are made, on that copy, so that later entries are judged on
/// them; nothing real is touched, so without the key each entry is judged as if verified and
/// says so.
pub(crate) async fn rehearse<C: Cluster>(
    cluster: &C,
    ledger: &mut Ledger,
    trust: &Trust<'_>,
) -> Report {
    replay_with(cluster, ledger, trust, Mode::Rehearsal, &|_| false).await
}

/// What a replay may change: the cluster and the ledger, nothing, or a stand-in cluster.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Real,
    DryRun,
    Rehearsal,
}

impl Mode {
    fn of(dry_run: bool) -> Mode {
        if dry_run {
            Mode::DryRun
        } else {
            Mode::Real
        }
    }
}

/// [`replay`] after a sweep by label has removed every artifact `swept` says it covered: their
/// entries are closed without a call each, so an emergency stop costs calls per kind of
/// artifact, not per artifact.
pub async fn replay_after_sweep<C: Cluster>(
    cluster: &C,
    ledger: &mut Ledger,
    trust: &Trust<'_>,
    swept: &(dyn Fn(&ObjectRef) -> bool + Sync),
) -> Report {
    replay_with(cluster, ledger, trust, Mode::Real, swept).await
}

/// What an open entry's authentication says: `Ok(None)` verified; `Ok(Some(note))` judged as
/// verified with a note for the reader (a dry run without the key, an unsigned ledger a person
/// accepted); `Err` not applied, and why.
fn authenticate(
    ledger: &Ledger,
    seal: Option<&crate::seal::LedgerSeal>,
    entry: &crate::ledger::Entry,
    trust: &Trust<'_>,
    rehearsal: bool,
) -> Result<Option<&'static str>, (Rejection, String)> {
    if ledger.unsigned {
        return if trust.accept_unsigned {
            Ok(Some(
                "unsigned entry (ledger-v1), applied because --accept-unsigned was given",
            ))
        } else {
            Err((
                Rejection::Unsigned,
                format!(
                    "written before ledger signing (format {}), so it cannot be proven firedrill's own: not applied unattended; check what it names, then run `firedrill rollback --run {} --accept-unsigned`",
                    crate::ledger::FORMAT_UNSIGNED,
                    ledger.run
                ),
            ))
        };
    }
    match seal {
        // Nothing real is touched (a dry run, a render): judged as if verified, and said.
        None if rehearsal => Ok(Some("signature not checked: no key given")),
        None => Err((
            Rejection::NoKey,
            "not applied: no ledger key to verify it with (firedrill applies only entries it can prove it wrote)".to_owned(),
        )),
        Some(seal) => seal
            .verify(entry.seq, &entry.undo, entry.mac.as_deref())
            .map(|()| None)
            .map_err(|why| {
                (
                    Rejection::Unverified(why),
                    format!(
                        "DOES NOT VERIFY, not applied: {why}. It names {}; the ledger stays open for a person (runbooks/ledger-unverified.md)",
                        names(&entry.undo)
                    ),
                )
            }),
    }
}

/// What an undo record names, for people.
fn names(undo: &UndoRecord) -> String {
    match (undo.target(), undo) {
        (Some(t), _) => t.to_string(),
        // A record without target fields (a promotion note) is named by its system alone.
        (None, UndoRecord::External { system, record }) => {
            crate::undo::external_target(system, record)
                .trim_end()
                .to_owned()
        }
        (None, _) => "nothing in Kubernetes".to_owned(),
    }
}

async fn replay_with<C: Cluster>(
    cluster: &C,
    ledger: &mut Ledger,
    trust: &Trust<'_>,
    mode: Mode,
    swept: &(dyn Fn(&ObjectRef) -> bool + Sync),
) -> Report {
    let dry_run = mode == Mode::DryRun;
    let mut report = Report::default();
    // Every open entry is authenticated before anything is read or touched.
    let seal = trust.key.map(|k| k.ledger(&ledger.run, &ledger.drill));
    let verdicts: Vec<_> = ledger
        .entries
        .iter()
        .map(|e| {
            e.state
                .is_open()
                .then(|| authenticate(ledger, seal.as_ref(), e, trust, mode != Mode::Real))
        })
        .collect();
    for u in &ledger.unreadable {
        report.actions.push(Action {
            step: u.key.clone(),
            outcome: Outcome::Failed,
            text: format!("cannot be read, so not undone: {}", u.error),
        });
    }
    for index in (0..ledger.entries.len()).rev() {
        let entry = &ledger.entries[index];
        if !entry.state.is_open() {
            continue;
        }
        let step = format!("step-{:04}", entry.seq);
        let caveat = match &verdicts[index] {
            Some(Err((why, text))) => {
                report.rejected.push(Rejected {
                    step: step.clone(),
                    why: *why,
                });
                report.actions.push(Action {
                    step,
                    outcome: Outcome::Failed,
                    text: text.clone(),
                });
                continue;
            }
            Some(Ok(caveat)) => *caveat,
            None => None,
        };
        let (outcome, text) =
            replay_entry(cluster, ledger, index, trust, dry_run, swept, caveat).await;
        report.actions.push(Action {
            step,
            outcome,
            text,
        });
    }
    if !dry_run {
        if let Err(e) = cluster.save(ledger).await {
            report.actions.push(Action {
                step: "ledger".to_owned(),
                outcome: Outcome::Failed,
                text: format!(
                    "the revert is done but the ledger could not be updated ({e}); the next replay finds it done"
                ),
            });
        }
    }
    report
}

/// Replays one open, authenticated entry: refused, found swept, unreadable, or undone as
/// `decide` says. The entry is closed in the ledger (never on a dry run) when its undo is done
/// or left on purpose; otherwise it stays open for the next replay.
async fn replay_entry<C: Cluster>(
    cluster: &C,
    ledger: &mut Ledger,
    index: usize,
    trust: &Trust<'_>,
    dry_run: bool,
    swept: &(dyn Fn(&ObjectRef) -> bool + Sync),
    caveat: Option<&'static str>,
) -> (Outcome, String) {
    let entry = &ledger.entries[index];
    let target = entry.undo.target();
    // Before anything reads or touches what the entry names: a protected object, or a
    // record no planner of firedrill writes, is refused and the entry stays open.
    if let Some(text) = trust.refuses(&entry.undo) {
        return (Outcome::Failed, text);
    }
    if let (UndoRecord::DeleteCreated { target }, false) = (&entry.undo, dry_run) {
        if swept(target) {
            let text = format!("{target} was removed by the sweep of its kind, by label");
            close(&mut ledger.entries[index], EntryState::Reverted, &text);
            return (Outcome::AlreadyDone, text);
        }
    }
    let current = match read_now(cluster, &entry.undo, target.as_ref()).await {
        Ok(current) => current,
        Err(unread) => return (Outcome::Failed, unread.to_string()),
    };
    let (outcome, text, state) = act(
        cluster,
        &ledger.run,
        &entry.undo,
        target.as_ref(),
        current.as_ref(),
        dry_run,
    )
    .await;
    let text = match caveat {
        Some(caveat) => format!("{text} ({caveat})"),
        None => text,
    };
    if let (Some(state), false) = (state, dry_run) {
        close(&mut ledger.entries[index], state, &text);
    }
    (outcome, text)
}

/// What `decide` makes of an undo against its target as it is now: applied (on a dry run only
/// described), found already done, or left; and the state its entry closes in, if it does.
async fn act<C: Cluster>(
    cluster: &C,
    run: &str,
    undo: &UndoRecord,
    target: Option<&ObjectRef>,
    current: Option<&Value>,
    dry_run: bool,
) -> (Outcome, String, Option<EntryState>) {
    match decide(run, undo, current) {
        Decision::Apply(operation, text) if dry_run => (
            Outcome::WouldRevert,
            format!("would {text}: {}", operation.describe()),
            None,
        ),
        Decision::Apply(operation, text) => {
            undo_now(cluster, run, undo, target, operation, text).await
        }
        Decision::AlreadyDone(text) => (Outcome::AlreadyDone, text, Some(EntryState::Reverted)),
        Decision::Leave(text) => (Outcome::Left, text, Some(EntryState::Left)),
    }
}

/// Closes an entry in the ledger, with the text that says how.
fn close(entry: &mut crate::ledger::Entry, state: EntryState, text: &str) {
    entry.state = state;
    entry.note = Some(text.to_owned());
}

/// How many conflicting writes in a row an undo takes before it is left open for the next
/// replay: each conflict is re-read and judged again first.
const CONFLICTS: usize = 3;

/// Why what an undo record names could not be read: the entry stays open. The text says what,
/// and by the error's kind what to do (grant a rule, or wait for the next sweep).
#[derive(Debug, thiserror::Error)]
enum ReadError {
    #[error("cannot read {target}: {error}{}", open_because(.error))]
    Object {
        target: ObjectRef,
        error: ClusterError,
    },
    /// An external record (a DNS change): `what` is what it names.
    #[error(
        "cannot read {what}: {error}; not undone (the ledger stays open){}",
        open_because(.error)
    )]
    External { what: String, error: ClusterError },
}

/// What an undo record names, as it is now.
async fn read_now<C: Cluster>(
    cluster: &C,
    undo: &UndoRecord,
    target: Option<&ObjectRef>,
) -> Result<Option<Value>, ReadError> {
    match (target, undo) {
        (Some(t), _) => cluster.get(t).await.map_err(|error| ReadError::Object {
            target: t.clone(),
            error,
        }),
        (None, undo) if undo.irreversible().is_some() => Ok(None),
        (None, UndoRecord::External { system, record }) => cluster
            .read_external(system, record.get("target").unwrap_or(&Value::Null))
            .await
            .map_err(|error| ReadError::External {
                what: crate::undo::external_target(system, record),
                error,
            }),
        (None, _) => Ok(None),
    }
}

/// Makes the undo `decide` chose, and acts on how it failed: what is gone when undone is judged
/// again as gone (already done, or left, by the ledger's rules); a conflict is re-read and
/// judged again, up to [`CONFLICTS`] times; anything else leaves the entry open, saying why.
async fn undo_now<C: Cluster>(
    cluster: &C,
    run: &str,
    undo: &UndoRecord,
    target: Option<&ObjectRef>,
    mut operation: Operation,
    mut text: String,
) -> (Outcome, String, Option<EntryState>) {
    let mut conflicts = 0;
    loop {
        let e = match cluster.execute(&operation).await {
            Ok(Done::Made) => return (Outcome::Reverted, text, Some(EntryState::Reverted)),
            Ok(Done::Refused(e)) => return (Outcome::Failed, format!("{text} refused: {e}"), None),
            Err(e) => e,
        };
        let current = match &e {
            ClusterError::NotFound { .. } | ClusterError::Gone { .. } => None,
            ClusterError::Conflict { .. } if conflicts < CONFLICTS => {
                conflicts += 1;
                match read_now(cluster, undo, target).await {
                    Ok(current) => current,
                    Err(again) => {
                        return (
                            Outcome::Failed,
                            format!("{text} failed: {e}; read again after the conflict: {again}"),
                            None,
                        )
                    }
                }
            }
            _ => {
                return (
                    Outcome::Failed,
                    format!("{text} failed: {e}{}", open_because(&e)),
                    None,
                )
            }
        };
        match decide(run, undo, current.as_ref()) {
            Decision::Apply(again, again_text) if matches!(e, ClusterError::Conflict { .. }) => {
                operation = again;
                text = again_text;
            }
            // Gone, and the ledger's rules would still make something (create it again): that
            // is what failed, so the entry stays open.
            Decision::Apply(..) => return (Outcome::Failed, format!("{text} failed: {e}"), None),
            Decision::AlreadyDone(done) => {
                return (Outcome::AlreadyDone, done, Some(EntryState::Reverted))
            }
            Decision::Leave(left) => return (Outcome::Left, left, Some(EntryState::Left)),
        }
    }
}

/// What a failed read or undo adds to its text, by kind: the rule to grant when forbidden, and
/// that a passing failure is tried again (the entry stays open either way).
fn open_because(e: &ClusterError) -> String {
    match e {
        ClusterError::Forbidden { access, .. } => format!(
            "; forbidden: firedrill may not {access}: grant that to the identity firedrill runs as (its ServiceAccount's Role, or its IAM policy), then run the revert again; the ledger stays open until then"
        ),
        ClusterError::Transient { .. } => {
            "; a passing failure: the ledger stays open and the next sweep or rollback tries again"
                .to_owned()
        }
        _ => String::new(),
    }
}
