//! A run of a drill as it is recorded: its status, what it acted on, what it measured, and the
//! evidence behind the outcome. The store, the cluster's result ConfigMaps, the Pushgateway and
//! the reports all read these types.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use firedrill_safety::cluster::{OwnerKind, OwnerRef};
use serde::{Deserialize, Serialize};

/// The outcome of a run. The names are a contract with reports and dashboards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    Running,
    Passed,
    Failed,
    Aborted,
    Blocked,
    DryRun,
    Missed,
    Error,
}

impl RunStatus {
    pub const ALL: [RunStatus; 8] = [
        RunStatus::Running,
        RunStatus::Passed,
        RunStatus::Failed,
        RunStatus::Aborted,
        RunStatus::Blocked,
        RunStatus::DryRun,
        RunStatus::Missed,
        RunStatus::Error,
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
            RunStatus::Error => "error",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        RunStatus::ALL.into_iter().find(|s| s.as_str() == text)
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

/// One run of one drill. The evidence is the JSON document the run wrote (`Value`), or, where
/// many records are read only to be reported, the [`Trail`] typed from it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord<E = serde_json::Value> {
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
    /// Gate results, verdict, samples: what an auditor needs to trust the outcome.
    pub evidence: E,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpo_seconds: Option<f64>,
}

/// Why an aborted run stopped early, as recorded in its evidence (`abort.cause`).
pub const ABORT_CONDITION: &str = "abort-condition";

/// What reports and the Pushgateway read of a run's evidence, typed. A report over a year of
/// hourly drills reads 100,000 records: parsed into this, each keeps only these fields instead
/// of a tree of the whole document.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Trail {
    /// The targets the run was judged against; none for records written before they were kept.
    pub criteria: Option<Criteria>,
    pub abort: Option<AbortNote>,
    /// What the guard left alone.
    pub excluded: Vec<Excluded>,
    pub injected: Option<Injected>,
    /// The ledger's replay after the run: one line per change.
    pub reverted: Option<serde_json::Value>,
    /// The replay after a failed injection: its lines, or `REVERT FAILED: …`.
    pub revert: Option<serde_json::Value>,
    pub revert_error: Option<serde_json::Value>,
    /// After a failed revert: when and how its ledger was found closed later.
    pub rollback_closed: Option<Closed>,
    pub preflight: Vec<Gate>,
    pub samples: Option<Samples>,
    pub timeline: Vec<Moment>,
    /// The drill Job the run executed in; none for records written before it was kept.
    pub job: Option<JobNote>,
    /// What became of the Event the run left on its Job; none for records written before it
    /// was kept, and for a record kept where it could not be added afterwards.
    pub event: Option<EventNote>,
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

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct AbortNote {
    pub cause: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Excluded {
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub reason: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Injected {
    pub changed: Option<serde_json::Value>,
    pub ledger: Option<String>,
    pub dns_changes: Option<serde_json::Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Closed {
    /// When the scheduler found it so (it closed at or before then).
    pub at: Option<String>,
    pub how: Option<String>,
    /// Closed by a replay (everything reverted, or left and said); false when the ledger was
    /// deleted while open, so what it held may still be in place.
    pub restored: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Gate {
    pub check: Option<String>,
    pub passed: Option<bool>,
}

/// Counts as the run wrote them (kept as written: `897.0` stays `897.0`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Samples {
    pub sent: serde_json::Value,
    pub available: serde_json::Value,
    pub answered: serde_json::Value,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Moment {
    pub at: Option<String>,
    pub event: Option<String>,
}

impl Trail {
    /// Reads the evidence's stored text. A document whose fields have other shapes than these
    /// (written by a future version, or damaged) is read field by field, each field of another
    /// shape as absent; only text that is not JSON at all is an error.
    pub fn parse(text: &str) -> Result<Trail, serde_json::Error> {
        serde_json::from_str(text).or_else(|_| {
            serde_json::from_str::<serde_json::Value>(text).map(|v| Trail::from_value(&v))
        })
    }

    /// The trail of a document in memory, field by field as [`Trail::parse`] reads it.
    pub fn from_value(v: &serde_json::Value) -> Trail {
        fn field<T: serde::de::DeserializeOwned>(v: &serde_json::Value, key: &str) -> Option<T> {
            // `null` is absent, as in the typed pass.
            v.get(key)
                .filter(|f| !f.is_null())
                .and_then(|f| T::deserialize(f).ok())
        }
        Trail {
            criteria: field(v, "criteria"),
            abort: field(v, "abort"),
            excluded: field(v, "excluded").unwrap_or_default(),
            injected: field(v, "injected"),
            reverted: field(v, "reverted"),
            revert: field(v, "revert"),
            revert_error: field(v, "revert_error"),
            rollback_closed: field(v, "rollback_closed"),
            preflight: field(v, "preflight").unwrap_or_default(),
            samples: field(v, "samples"),
            timeline: field(v, "timeline").unwrap_or_default(),
            job: field(v, "job"),
            event: field(v, "event"),
        }
    }

    /// The changes the injection made, as its lines.
    pub fn changed(&self) -> Option<&serde_json::Value> {
        self.injected.as_ref().and_then(|i| i.changed.as_ref())
    }
}

/// The evidence of a record, read as a [`Trail`].
pub trait Evidence {
    fn trail(&self) -> Cow<'_, Trail>;
}

impl Evidence for serde_json::Value {
    fn trail(&self) -> Cow<'_, Trail> {
        Cow::Owned(Trail::from_value(self))
    }
}

impl Evidence for Trail {
    fn trail(&self) -> Cow<'_, Trail> {
        Cow::Borrowed(self)
    }
}

impl<E: Evidence> RunRecord<E> {
    /// The targets the run was judged against; none for records written before they were kept.
    pub fn criteria(&self) -> Criteria {
        self.evidence.trail().criteria.clone().unwrap_or_default()
    }

    /// Whether the revert left something undone (the ledger stays open for `rollback`).
    pub fn rollback_failed(&self) -> bool {
        let t = self.evidence.trail();
        t.revert_error.is_some()
            || t.revert
                .as_ref()
                .and_then(serde_json::Value::as_str)
                .is_some_and(|r| r.starts_with("REVERT FAILED"))
    }

    /// After a failed revert, when and how its ledger was found closed (by the sweep's retry,
    /// `firedrill rollback` or `stop`); none while it is open.
    pub fn rollback_closed(&self) -> Option<Closed> {
        self.evidence.trail().rollback_closed.clone()
    }

    /// Whether a safety constraint broke during the run: one of the drill's abort conditions
    /// was breached and ended it.
    pub fn safety_violated(&self) -> bool {
        self.evidence
            .trail()
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
    fn the_trail_reads_what_runs_write_and_tolerates_what_they_did_not() {
        let written = r#"{"armed":true,"criteria":{"availability":0.95,"rto_seconds":30.0,"rpo_seconds":null},
            "excluded":[{"name":"canary-0","namespace":"default","reason":"protected"}],
            "injected":{"changed":["delete Pod/default/a"],"ledger":"firedrill-ledger-x","refused":[]},
            "preflight":[{"check":"promql up","detail":"1 series","passed":true}],
            "revert_error":"Pod/default/a: forbidden",
            "samples":{"answered":900,"available":897.0,"sent":900},
            "abort":{"cause":"abort-condition"},
            "job":{"name":"drill-x1"},"event":{"not_created":"no cluster access"},
            "timeline":[{"at":"2027-01-01T00:00:00.000Z","event":"delete Pod/default/a","seconds":0.0}]}"#;
        let typed: Trail = serde_json::from_str(written).expect("the typed pass reads it whole");
        assert_eq!(Trail::parse(written).unwrap(), typed);
        let value: serde_json::Value = serde_json::from_str(written).unwrap();
        assert_eq!(Trail::from_value(&value), typed);
        assert_eq!(typed.criteria.as_ref().unwrap().rto_seconds, Some(30.0));
        assert_eq!(typed.excluded[0].reason.as_deref(), Some("protected"));
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

        let damaged = r#"{"criteria":"fast","timeline":{"at":1},"injected":{"ledger":"l"},"revert":"REVERT FAILED: x","revert_error":null}"#;
        let t = Trail::parse(damaged).unwrap();
        assert_eq!(t.criteria, None);
        assert!(t.timeline.is_empty());
        assert_eq!(t.injected.unwrap().ledger.as_deref(), Some("l"));
        assert_eq!(t.revert_error, None, "null is absent on both paths");
        let nulls = r#"{"revert_error":null,"reverted":null}"#;
        assert_eq!(Trail::parse(nulls).unwrap(), Trail::default());
        assert_eq!(
            Trail::from_value(&serde_json::from_str(nulls).unwrap()),
            Trail::default()
        );
        assert!(Trail::parse("{not json").is_err());

        fn record<E>(evidence: E) -> RunRecord<E> {
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
                evidence,
            }
        }
        let (as_value, as_trail) = (record(value), record(typed));
        assert_eq!(as_value.criteria(), as_trail.criteria());
        assert!(as_value.rollback_failed() && as_trail.rollback_failed());
        assert!(as_value.safety_violated() && as_trail.safety_violated());
        assert_eq!(as_value.breached(), ["rto"]);
        assert_eq!(as_trail.breached(), ["rto"]);
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
