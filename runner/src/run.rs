//! A run of a drill as it is recorded: its status, what it acted on, what it measured, and the
//! evidence behind the outcome. The store, the cluster's result ConfigMaps, the Pushgateway and
//! the reports all read these types.

use chrono::{DateTime, Utc};
use firedrill_safety::cluster::{OwnerKind, OwnerRef};
use serde::{Deserialize, Serialize};

/// The outcome of a run. The names are a contract with reports and dashboards.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    /// Also what a step note of unknown status reads as (never a verdict).
    #[default]
    Running,
    Passed,
    Failed,
    Aborted,
    Blocked,
    DryRun,
    Missed,
    /// Vetoed by a person (`firedrill skip`): never run.
    Skipped,
    Error,
    /// The fault was injected but not seen to take effect (evidence `effect` says what was
    /// looked for and what was seen): nothing was judged, and the fault was reverted.
    Ineffective,
}

impl RunStatus {
    pub const ALL: [RunStatus; 10] = [
        RunStatus::Running,
        RunStatus::Passed,
        RunStatus::Failed,
        RunStatus::Aborted,
        RunStatus::Blocked,
        RunStatus::DryRun,
        RunStatus::Missed,
        RunStatus::Skipped,
        RunStatus::Error,
        RunStatus::Ineffective,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Passed => "passed",
            RunStatus::Failed => "failed",
            RunStatus::Aborted => "aborted",
            RunStatus::Blocked => "blocked",
            RunStatus::DryRun => "dry-run",
            RunStatus::Missed => "missed",
            RunStatus::Skipped => "skipped",
            RunStatus::Error => "error",
            RunStatus::Ineffective => "ineffective",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        RunStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether it is the scheduler's record of a fire that never ran: missed, or vetoed.
    pub fn never_ran(self) -> bool {
        matches!(self, RunStatus::Missed | RunStatus::Skipped)
    }

    /// Whether the run is over (anything but `running`).
    pub fn is_final(self) -> bool {
        self != RunStatus::Running
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What was measured during a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Measurements {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_p50_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_p95_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_p99_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rto_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpo_seconds: Option<f64>,
}

/// One run of one drill.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The cluster the run acted on (the drill file's `cluster:`); run ids are unique per
    /// cluster. Records written before the fleet carry the default name.
    #[serde(default = "default_cluster")]
    pub cluster: String,
    pub id: String,
    pub drill: String,
    pub kind: String,
    pub scheduled: DateTime<Utc>,
    pub started: Option<DateTime<Utc>>,
    pub ended: Option<DateTime<Utc>>,
    pub status: RunStatus,
    pub reason: Option<String>,
    /// The pods the run acted on (for a dry run, the ones it would have).
    pub targets: Vec<Hit>,
    pub measurements: Measurements,
    /// Gate results, verdict, samples, the revert: what an auditor needs to trust the outcome.
    /// Boxed: the evidence is most of a record's size, and a report moves 100,000 records
    /// (read, sorted, put in their slots) — a pointer moves, not the whole evidence.
    pub evidence: Box<Evidence>,
}

/// The targets a run was judged against, as the drill file said when it ran (kept in the
/// record's evidence as `criteria`, so a report judges old runs by the targets of their day).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Criteria {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p50_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p95_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p99_seconds: Option<f64>,
    // In key order, as the JSON map records were first written from kept them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpo_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto_seconds: Option<f64>,
}

/// Why an aborted run stopped early, as recorded in its evidence (`abort.cause`).
pub const ABORT_CONDITION: &str = "abort-condition";

/// The version of [`Evidence`] this release writes (`version` in the stored document). Records
/// without one were written before the evidence was typed (version 1: the same keys, a failed
/// revert known only by its text); they read the same.
pub const EVIDENCE_VERSION: u32 = 2;

/// What a run did and why its outcome is what it is: the record auditors read. The executor
/// fills it; the store, the result ConfigMaps, the spool, the Pushgateway and the reports read
/// it. A field is `None` where its step did not happen (a run blocked at preflight never chose
/// targets). Stored as JSON under the keys runs have always written ([`EvidenceText`]), so
/// records of every version read alike; the parts a fault kind alone writes (`nodes`,
/// `regions`, `promotion`, `rpo`, `failback`) are kept as that kind wrote them.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(into = "EvidenceText")]
pub struct Evidence {
    /// The shape it was written in: 1 for records written before this type, else
    /// [`EVIDENCE_VERSION`].
    pub version: u32,
    /// `scheduler` for a run the scheduler fired.
    pub fired_by: Option<String>,
    /// The drill Job the run executed in; none for records written before it was kept.
    pub job: Option<JobNote>,
    pub armed: Option<bool>,
    pub dry_run: Option<bool>,
    /// The targets the run was judged against; none for records written before they were kept.
    pub criteria: Option<Criteria>,
    /// Why the kill switch was not looked at (a probe without cluster access).
    pub kill_switch: Option<String>,
    /// Why `safety.cooldown` was not checked (a dry run without the history).
    pub cooldown: Option<String>,
    pub preflight: Option<Vec<Gate>>,
    /// A node fault's choice: the nodes it hurts and those it refused.
    pub nodes: Option<serde_json::Value>,
    /// What the guard left alone.
    pub excluded: Option<Vec<Excluded>>,
    /// A region failover's judgement of the regions.
    pub regions: Option<serde_json::Value>,
    /// What a region failover's rehearsal found of its RPO markers' databases.
    pub data: Option<String>,
    /// Why a dry run could not plan its steps.
    pub plan: Option<String>,
    /// What a dry run would have changed.
    pub would_change: Option<Vec<String>>,
    pub injected: Option<Injected>,
    /// A region failover's promotion hook, its RPO markers and its failback.
    pub promotion: Option<serde_json::Value>,
    pub rpo: Option<serde_json::Value>,
    pub failback: Option<serde_json::Value>,
    pub timeline: Option<Vec<Moment>>,
    /// What the revert did.
    pub revert: Revert,
    pub samples: Option<Samples>,
    pub abort: Option<AbortNote>,
    /// What became of the Event the run left on its Job; none for records written before it
    /// was kept, and for a record kept where it could not be added afterwards.
    pub event: Option<EventNote>,
    /// After a failed revert: when and how its ledger was found closed later.
    pub rollback_closed: Option<Closed>,
    /// A fire vetoed by `firedrill skip`: who, why and when.
    pub skipped: Option<SkipNote>,
    /// Whether the fault took effect, how that was established and what was seen; none for a
    /// run that injected nothing, and for records written before it was kept.
    pub effect: Option<EffectNote>,
    /// A scenario's steps, each with its own outcome and evidence; none for any other kind, and
    /// for records written before scenarios.
    pub steps: Option<Vec<StepNote>>,
}

/// One step of a scenario run, as recorded (`evidence.steps`): what it was, what became of it,
/// when, and the evidence of its own run (`<run>-<step>`: effect, timeline, targets, revert).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StepNote {
    pub name: String,
    /// The step's fault kind.
    pub kind: String,
    /// The step's own run id (its ledger is `firedrill-ledger-<run>`); none for a skipped step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    pub status: RunStatus,
    /// Why it ended as it did (blocked, skipped, failed, an error).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started: Option<DateTime<Utc>>,
    /// Its first fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub injected: Option<DateTime<Utc>>,
    /// Its workloads back as desired (last time it recovered).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovered: Option<DateTime<Utc>>,
    /// Reverted and done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended: Option<DateTime<Utc>>,
    /// From its first fault to its workloads back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rto_seconds: Option<f64>,
    /// The step's own `success: { rto }`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rto_target_seconds: Option<f64>,
    /// The pods it acted on.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<Hit>,
    /// The evidence of the step's own run; none for a step that never ran (skipped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Box<Evidence>>,
}

/// Whether a run's fault took effect (ARCHITECTURE.md, principle 10), as recorded
/// (`evidence.effect`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EffectNote {
    /// `true`: seen; `false`: not seen, and the run ended `ineffective`; absent: not checked
    /// (`what` says why).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed: Option<bool>,
    /// How it was established (what was read back, and against what).
    pub how: String,
    /// What was seen, or not.
    pub what: String,
}

impl EffectNote {
    /// A fault whose kind has no effect check yet: said, never passed off as seen.
    pub fn not_checked(kind: &str) -> EffectNote {
        EffectNote {
            observed: None,
            how: "not checked".to_owned(),
            what: format!("{kind} has no effect check yet"),
        }
    }
}

impl std::fmt::Display for EffectNote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.observed {
            None => write!(f, "{} ({})", self.how, self.what),
            Some(true) => write!(f, "observed: {} ({})", self.what, self.how),
            Some(false) => write!(f, "NOT observed: {} ({})", self.what, self.how),
        }
    }
}

/// What a run's revert did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Revert {
    /// No revert was due: the run changed nothing (blocked, a dry run, a probe), or its record
    /// says of none.
    #[default]
    NothingChanged,
    /// The ledger replayed to the end, every change undone: the replay's lines.
    Restored {
        when: RevertWhen,
        lines: Vec<String>,
    },
    /// The ledger replayed to the end, some changes left on purpose (changed by someone since),
    /// each line saying which and why.
    Left {
        when: RevertWhen,
        lines: Vec<String>,
    },
    /// Something was not undone: the ledger stays open for `firedrill rollback`.
    Failed { when: RevertWhen, error: String },
}

/// When a revert ran.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RevertWhen {
    /// After the drill (stored as `reverted` / `revert_error`).
    #[default]
    AfterTheRun,
    /// Right after an injection that failed part way (stored as `revert`).
    AfterAFailedInjection,
}

/// How a replay's lines mark an entry left (`ledger::describe`): what tells a record written
/// before the outcome was stored apart from a full restore.
const LEFT_MARK: &str = ": LEFT (changed since): ";
/// How records before version 2 marked a failed revert after a failed injection.
const REVERT_FAILED: &str = "REVERT FAILED: ";

impl Revert {
    /// Whether the revert left something undone (the ledger stays open for `rollback`).
    pub fn failed(&self) -> bool {
        matches!(self, Revert::Failed { .. })
    }

    /// A replay's outcome: `lines` as the ledger describes it, `left` whether some change was
    /// left on purpose.
    pub fn replayed(when: RevertWhen, lines: Vec<String>, left: bool) -> Revert {
        if left {
            Revert::Left { when, lines }
        } else {
            Revert::Restored { when, lines }
        }
    }

    /// The replay's lines; none for a failed revert (its error says what) or none due.
    pub fn lines(&self) -> &[String] {
        match self {
            Revert::Restored { lines, .. } | Revert::Left { lines, .. } => lines,
            Revert::NothingChanged | Revert::Failed { .. } => &[],
        }
    }

    fn name(&self) -> Option<&'static str> {
        match self {
            Revert::NothingChanged => None,
            Revert::Restored { .. } => Some("restored"),
            Revert::Left { .. } => Some("left"),
            Revert::Failed { .. } => Some("failed"),
        }
    }
}

/// The evidence as stored: one key per step, as runs have always written them (in key order,
/// as a JSON map keeps them), the revert under the key of its phase, and since version 2 its
/// outcome by name.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct EvidenceText {
    #[serde(skip_serializing_if = "Option::is_none")]
    abort: Option<AbortNote>,
    #[serde(skip_serializing_if = "Option::is_none")]
    armed: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cooldown: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    criteria: Option<Criteria>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dry_run: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    effect: Option<EffectNote>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<EventNote>,
    #[serde(skip_serializing_if = "Option::is_none")]
    excluded: Option<Vec<Excluded>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failback: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fired_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    injected: Option<Injected>,
    #[serde(skip_serializing_if = "Option::is_none")]
    job: Option<JobNote>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kill_switch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nodes: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    plan: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    preflight: Option<Vec<Gate>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    promotion: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    regions: Option<serde_json::Value>,
    /// After a failed injection: the replay's lines, or (before version 2) `REVERT FAILED: …`.
    #[serde(skip_serializing_if = "Option::is_none")]
    revert: Option<RevertText>,
    #[serde(skip_serializing_if = "Option::is_none")]
    revert_error: Option<String>,
    /// `restored`, `left` or `failed` (version 2 on).
    #[serde(skip_serializing_if = "Option::is_none")]
    revert_outcome: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reverted: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rollback_closed: Option<Closed>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rpo: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    samples: Option<Samples>,
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped: Option<SkipNote>,
    #[serde(skip_serializing_if = "Option::is_none")]
    steps: Option<Vec<StepNote>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeline: Option<Vec<Moment>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    would_change: Option<Vec<String>>,
}

/// `revert` as stored: the replay's lines, or one line saying it failed.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum RevertText {
    Lines(Vec<String>),
    Failed(String),
}

impl<'de> Deserialize<'de> for Evidence {
    /// As [`Evidence::parse`] reads the stored text: a record in a result ConfigMap or a spool
    /// file whose evidence has a field of another shape still reads, that field absent.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        Ok(match EvidenceText::deserialize(&v) {
            Ok(text) => text.into(),
            Err(_) => Evidence::from_value(&v),
        })
    }
}

impl From<EvidenceText> for Evidence {
    fn from(t: EvidenceText) -> Self {
        let left = |lines: &[String]| match t.revert_outcome.as_deref() {
            Some(outcome) => outcome == "left",
            None => lines.iter().any(|l| l.contains(LEFT_MARK)),
        };
        let revert = match (t.revert_error, t.revert, t.reverted) {
            (Some(error), _, _) => Revert::Failed {
                when: RevertWhen::AfterTheRun,
                error,
            },
            (None, Some(RevertText::Failed(text)), _) => Revert::Failed {
                when: RevertWhen::AfterAFailedInjection,
                error: text
                    .strip_prefix(REVERT_FAILED)
                    .map_or(text.clone(), str::to_owned),
            },
            (None, Some(RevertText::Lines(lines)), _) => {
                let left = left(&lines);
                Revert::replayed(RevertWhen::AfterAFailedInjection, lines, left)
            }
            (None, None, Some(lines)) => {
                let left = left(&lines);
                Revert::replayed(RevertWhen::AfterTheRun, lines, left)
            }
            (None, None, None) => Revert::NothingChanged,
        };
        Evidence {
            version: t.version.unwrap_or(1),
            fired_by: t.fired_by,
            job: t.job,
            armed: t.armed,
            dry_run: t.dry_run,
            criteria: t.criteria,
            kill_switch: t.kill_switch,
            cooldown: t.cooldown,
            preflight: t.preflight,
            nodes: t.nodes,
            excluded: t.excluded,
            regions: t.regions,
            data: t.data,
            plan: t.plan,
            would_change: t.would_change,
            injected: t.injected,
            promotion: t.promotion,
            rpo: t.rpo,
            failback: t.failback,
            timeline: t.timeline,
            revert,
            samples: t.samples,
            abort: t.abort,
            event: t.event,
            rollback_closed: t.rollback_closed,
            skipped: t.skipped,
            effect: t.effect,
            steps: t.steps,
        }
    }
}

impl From<Evidence> for EvidenceText {
    fn from(e: Evidence) -> Self {
        let revert_outcome = e.revert.name().map(str::to_owned);
        let (mut revert, mut revert_error, mut reverted) = (None, None, None);
        match e.revert {
            Revert::NothingChanged => {}
            Revert::Restored { when, lines } | Revert::Left { when, lines } => match when {
                RevertWhen::AfterTheRun => reverted = Some(lines),
                RevertWhen::AfterAFailedInjection => revert = Some(RevertText::Lines(lines)),
            },
            Revert::Failed { when, error } => match when {
                RevertWhen::AfterTheRun => revert_error = Some(error),
                // The text version 1 wrote, so that a reader of that version finds it too.
                RevertWhen::AfterAFailedInjection => {
                    revert = Some(RevertText::Failed(format!("{REVERT_FAILED}{error}")))
                }
            },
        }
        EvidenceText {
            abort: e.abort,
            armed: e.armed,
            cooldown: e.cooldown,
            criteria: e.criteria,
            data: e.data,
            dry_run: e.dry_run,
            effect: e.effect,
            event: e.event,
            excluded: e.excluded,
            failback: e.failback,
            fired_by: e.fired_by,
            injected: e.injected,
            job: e.job,
            kill_switch: e.kill_switch,
            nodes: e.nodes,
            plan: e.plan,
            preflight: e.preflight,
            promotion: e.promotion,
            regions: e.regions,
            revert,
            revert_error,
            // Version 1 had no name for the outcome; a record read from it is written back as
            // it was.
            revert_outcome: revert_outcome.filter(|_| e.version >= 2),
            reverted,
            rollback_closed: e.rollback_closed,
            rpo: e.rpo,
            samples: e.samples,
            skipped: e.skipped,
            steps: e.steps,
            timeline: e.timeline,
            version: (e.version >= 2).then_some(e.version),
            would_change: e.would_change,
        }
    }
}

impl Evidence {
    /// The evidence of a new run: this release's version, nothing else yet.
    pub fn new() -> Evidence {
        Evidence {
            version: EVIDENCE_VERSION,
            ..Evidence::default()
        }
    }

    /// Reads the evidence's stored text. A document whose fields have other shapes than these
    /// (written by a future version, or damaged) is read field by field, each field of another
    /// shape as absent; only text that is not JSON at all is an error.
    pub fn parse(text: &str) -> Result<Evidence, serde_json::Error> {
        serde_json::from_str::<EvidenceText>(text)
            .map(Evidence::from)
            .or_else(|_| {
                serde_json::from_str::<serde_json::Value>(text).map(|v| Evidence::from_value(&v))
            })
    }

    /// The evidence of a document in memory, field by field as [`Evidence::parse`] reads it.
    pub fn from_value(v: &serde_json::Value) -> Evidence {
        fn field<T: serde::de::DeserializeOwned>(v: &serde_json::Value, key: &str) -> Option<T> {
            // `null` is absent, as in the typed pass.
            v.get(key)
                .filter(|f| !f.is_null())
                .and_then(|f| T::deserialize(f).ok())
        }
        EvidenceText {
            abort: field(v, "abort"),
            armed: field(v, "armed"),
            cooldown: field(v, "cooldown"),
            criteria: field(v, "criteria"),
            data: field(v, "data"),
            dry_run: field(v, "dry_run"),
            effect: field(v, "effect"),
            event: field(v, "event"),
            excluded: field(v, "excluded"),
            failback: field(v, "failback"),
            fired_by: field(v, "fired_by"),
            injected: field(v, "injected"),
            job: field(v, "job"),
            kill_switch: field(v, "kill_switch"),
            nodes: field(v, "nodes"),
            plan: field(v, "plan"),
            preflight: field(v, "preflight"),
            promotion: field(v, "promotion"),
            regions: field(v, "regions"),
            revert: field(v, "revert"),
            revert_error: field(v, "revert_error"),
            revert_outcome: field(v, "revert_outcome"),
            reverted: field(v, "reverted"),
            rollback_closed: field(v, "rollback_closed"),
            rpo: field(v, "rpo"),
            samples: field(v, "samples"),
            skipped: field(v, "skipped"),
            steps: field(v, "steps"),
            timeline: field(v, "timeline"),
            version: field(v, "version"),
            would_change: field(v, "would_change"),
        }
        .into()
    }

    /// The evidence as the JSON document it is stored as (for tests and messages).
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// The changes the injection made, as its lines.
    pub fn changed(&self) -> &[String] {
        self.injected
            .as_ref()
            .and_then(|i| i.changed.as_deref())
            .unwrap_or_default()
    }
}

/// Where a run executed, as recorded (`evidence.job`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JobNote {
    /// The Job's name; `None`: the run executed in no Job (`firedrill execute` by hand, or a
    /// fire the scheduler recorded missed).
    pub name: Option<String>,
}

/// What became of the Event a run leaves on its Job when it ends, as recorded once it was sent
/// (`evidence.event`): the record is kept first, so this is added to it afterwards.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EventNote {
    /// The Event the API server created: `Job/<namespace>/<name>: <type> <reason>: <message>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Why none was created (no cluster access, the API server's answer, a signal).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_created: Option<String>,
}

/// Who vetoed a fire with `firedrill skip`, why, and when (`evidence.skipped`). `by` is the
/// Kubernetes user the CLI's credentials named, as it saw them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SkipNote {
    pub by: String,
    pub reason: String,
    /// When the fire was marked, RFC 3339.
    pub marked: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AbortNote {
    /// [`ABORT_CONDITION`], `signal` or `kill-switch`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

/// One pod the guard left alone, and why.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Excluded {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What a wave of the injection made and refused.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Injected {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed: Option<Vec<String>>,
    /// Route 53 changes, as their record set and change id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_changes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ledger: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<Vec<Refused>>,
}

/// A step the API server refused.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Refused {
    pub reason: String,
    pub step: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Closed {
    /// When the scheduler found it so (it closed at or before then).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub how: Option<String>,
    /// Closed by a replay (everything reverted, or left and said); false when the ledger was
    /// deleted while open, so what it held may still be in place.
    pub restored: bool,
}

/// One preflight gate and its answer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Gate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passed: Option<bool>,
}

/// Counts as the run wrote them (kept as written: `897.0` stays `897.0`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Samples {
    pub answered: serde_json::Value,
    pub available: serde_json::Value,
    pub sent: serde_json::Value,
}

/// One moment of the run's timeline.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Moment {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// Seconds since the first fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
}

impl RunRecord {
    /// The targets the run was judged against; none for records written before they were kept.
    pub fn criteria(&self) -> Criteria {
        self.evidence.criteria.clone().unwrap_or_default()
    }

    /// Whether the revert left something undone (the ledger stays open for `rollback`).
    pub fn rollback_failed(&self) -> bool {
        self.evidence.revert.failed()
    }

    /// After a failed revert, when and how its ledger was found closed (by the sweep's retry,
    /// `firedrill rollback` or `stop`); none while it is open.
    pub fn rollback_closed(&self) -> Option<Closed> {
        self.evidence.rollback_closed.clone()
    }

    /// Whether a safety constraint broke during the run: one of the drill's abort conditions
    /// was breached and ended it.
    pub fn safety_violated(&self) -> bool {
        self.evidence
            .abort
            .as_ref()
            .and_then(|a| a.cause.as_deref())
            == Some(ABORT_CONDITION)
    }

    /// Whether the RTO or the RPO measured exceeds the target the run was judged against.
    pub fn breached(&self) -> Vec<&'static str> {
        let c = self.criteria();
        let m = &self.measurements;
        let mut out = Vec::new();
        if let (Some(want), Some(got)) = (c.rto_seconds, m.rto_seconds) {
            if got > want {
                out.push("rto");
            }
        }
        if let (Some(want), Some(got)) = (c.rpo_seconds, m.rpo_seconds) {
            if got > want {
                out.push("rpo");
            }
        }
        out
    }
}

/// The cluster name of a drill file without `cluster:`, and of records older than the fleet.
pub const DEFAULT_CLUSTER: &str = "default";

fn default_cluster() -> String {
    DEFAULT_CLUSTER.to_owned()
}

/// One pod a run acted on, and its workload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "HitText", into = "HitText")]
pub struct Hit {
    pub namespace: String,
    pub name: String,
    pub owner: Option<OwnerRef>,
}

/// A hit as it is stored: the workload as `Kind/name` in the pod's namespace (the format records
/// have always had).
#[derive(Clone, Serialize, Deserialize)]
struct HitText {
    namespace: String,
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    owner: Option<String>,
}

impl From<HitText> for Hit {
    fn from(t: HitText) -> Self {
        let owner = t
            .owner
            .as_deref()
            .and_then(|o| o.split_once('/'))
            .map(|(kind, name)| OwnerRef {
                kind: OwnerKind::parse(kind),
                namespace: t.namespace.clone(),
                name: name.to_owned(),
            });
        Hit {
            namespace: t.namespace,
            name: t.name,
            owner,
        }
    }
}

impl From<Hit> for HitText {
    fn from(h: Hit) -> Self {
        HitText {
            owner: h.owner.map(|o| format!("{}/{}", o.kind, o.name)),
            namespace: h.namespace,
            name: h.name,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The evidence a run writes reads typed in one pass; a field of another shape reads as
    /// absent and the rest is kept, and the record's verdicts are the same either way.
    #[test]
    fn the_evidence_reads_what_runs_write_and_tolerates_what_they_did_not() {
        let written = r#"{"armed":true,"criteria":{"availability":0.95,"rto_seconds":30.0,"rpo_seconds":null},
            "excluded":[{"name":"canary-0","namespace":"default","reason":"protected"}],
            "injected":{"changed":["delete Pod/default/a"],"ledger":"firedrill-ledger-x","refused":[]},
            "preflight":[{"check":"promql up","detail":"1 series","passed":true}],
            "revert_error":"Pod/default/a: forbidden",
            "samples":{"answered":900,"available":897.0,"sent":900},
            "abort":{"cause":"abort-condition"},
            "job":{"name":"drill-x1"},"event":{"not_created":"no cluster access"},
            "timeline":[{"at":"2027-01-01T00:00:00.000Z","event":"delete Pod/default/a","seconds":0.0}]}"#;
        let typed: Evidence = serde_json::from_str(written).expect("the typed pass reads it whole");
        assert_eq!(Evidence::parse(written).unwrap(), typed);
        let value: serde_json::Value = serde_json::from_str(written).unwrap();
        assert_eq!(Evidence::from_value(&value), typed);
        assert_eq!(
            typed.version, 1,
            "no version: written before the evidence was typed"
        );
        assert_eq!(typed.criteria.as_ref().unwrap().rto_seconds, Some(30.0));
        assert_eq!(
            typed.excluded.as_ref().unwrap()[0].reason.as_deref(),
            Some("protected")
        );
        assert_eq!(
            typed.job.as_ref().unwrap().name.as_deref(),
            Some("drill-x1")
        );
        assert_eq!(
            typed.event.as_ref().unwrap().not_created.as_deref(),
            Some("no cluster access")
        );
        assert_eq!(
            typed.samples.as_ref().unwrap().available.to_string(),
            "897.0"
        );
        assert_eq!(
            typed.revert,
            Revert::Failed {
                when: RevertWhen::AfterTheRun,
                error: "Pod/default/a: forbidden".into()
            }
        );

        let damaged = r#"{"criteria":"fast","timeline":{"at":1},"injected":{"ledger":"l"},"revert":"REVERT FAILED: x","revert_error":null}"#;
        let t = Evidence::parse(damaged).unwrap();
        assert_eq!(t.criteria, None);
        assert_eq!(t.timeline, None);
        assert_eq!(t.injected.unwrap().ledger.as_deref(), Some("l"));
        assert_eq!(
            t.revert,
            Revert::Failed {
                when: RevertWhen::AfterAFailedInjection,
                error: "x".into()
            },
            "null is absent on both paths; the old text of a failed revert is one"
        );
        let nulls = r#"{"revert_error":null,"reverted":null}"#;
        assert_eq!(
            Evidence::parse(nulls).unwrap(),
            Evidence {
                version: 1,
                ..Evidence::default()
            }
        );
        assert_eq!(
            Evidence::from_value(&serde_json::from_str(nulls).unwrap()),
            Evidence {
                version: 1,
                ..Evidence::default()
            }
        );
        assert!(Evidence::parse("{not json").is_err());

        fn record(evidence: Evidence) -> RunRecord {
            RunRecord {
                cluster: "c".into(),
                id: "r".into(),
                drill: "d".into(),
                kind: "pod-kill".into(),
                scheduled: Utc::now(),
                started: None,
                ended: None,
                status: RunStatus::Aborted,
                reason: None,
                targets: Vec::new(),
                measurements: Measurements {
                    rto_seconds: Some(45.0),
                    ..Measurements::default()
                },
                evidence: Box::new(evidence),
            }
        }
        // A whole record (a result ConfigMap, a spool file) reads a damaged field as absent too.
        let mut whole = serde_json::to_value(record(Evidence::new())).unwrap();
        whole["evidence"] = serde_json::from_str(damaged).unwrap();
        let read: RunRecord = serde_json::from_value(whole).expect("the record reads");
        assert_eq!(*read.evidence, t_again(damaged));
        fn t_again(text: &str) -> Evidence {
            Evidence::parse(text).unwrap()
        }

        let r = record(typed);
        assert!(r.rollback_failed());
        assert!(r.safety_violated());
        assert_eq!(r.breached(), ["rto"]);
    }

    /// Version 1 is written back as it was read (the same keys, no version); version 2 names
    /// the revert's outcome, and a left entry is told apart from a full restore either way.
    #[test]
    fn every_revert_outcome_round_trips_and_old_records_keep_their_text() {
        let old = [
            r#"{"injected":{"changed":["x"],"ledger":"l","refused":[]},"reverted":["l step-0001: reverted: x"]}"#,
            r#"{"reverted":["l step-0001: LEFT (changed since): x"]}"#,
            r#"{"revert":["l: nothing to do"]}"#,
            r#"{"revert":"REVERT FAILED: l step-0001: FAILED: x"}"#,
            r#"{"revert_error":"l step-0001: FAILED: x"}"#,
            r#"{"armed":false,"dry_run":true,"would_change":["x"]}"#,
        ];
        let outcomes: Vec<Option<&str>> = old
            .iter()
            .map(|text| {
                let e = Evidence::parse(text).unwrap();
                assert_eq!(serde_json::to_string(&e).unwrap(), *text, "{text}");
                e.revert.name()
            })
            .collect();
        assert_eq!(
            outcomes,
            [
                Some("restored"),
                Some("left"),
                Some("restored"),
                Some("failed"),
                Some("failed"),
                None
            ]
        );
        for revert in [
            Revert::NothingChanged,
            Revert::Restored {
                when: RevertWhen::AfterTheRun,
                lines: vec!["a".into()],
            },
            Revert::Left {
                when: RevertWhen::AfterAFailedInjection,
                lines: vec!["b".into()],
            },
            Revert::Failed {
                when: RevertWhen::AfterAFailedInjection,
                error: "c".into(),
            },
            Revert::Failed {
                when: RevertWhen::AfterTheRun,
                error: "d".into(),
            },
        ] {
            let e = Evidence {
                revert: revert.clone(),
                ..Evidence::new()
            };
            let text = serde_json::to_string(&e).unwrap();
            assert_eq!(Evidence::parse(&text).unwrap(), e, "{text}");
            assert!(text.contains(r#""version":2"#), "{text}");
        }
        // A left entry in version 2 is said by name, not found in the lines.
        let named = r#"{"revert_outcome":"left","reverted":["l step-0001: put back"],"version":2}"#;
        assert!(matches!(
            Evidence::parse(named).unwrap().revert,
            Revert::Left { .. }
        ));
    }

    #[test]
    fn hits_read_and_write_the_stored_format() {
        let text = r#"[{"namespace":"pake-api","name":"api-1","owner":"Deployment/api"},{"namespace":"x","name":"bare"}]"#;
        let hits: Vec<Hit> = serde_json::from_str(text).unwrap();
        assert_eq!(
            hits[0].owner.as_ref().unwrap().to_string(),
            "Deployment/pake-api/api"
        );
        assert_eq!(hits[1].owner, None);
        assert_eq!(serde_json::to_string(&hits).unwrap(), text);
    }
}
