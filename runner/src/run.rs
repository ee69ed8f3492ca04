//! A run of a drill as it is recorded: its status, what it acted on, what it measured, and the
//! evidence behind the outcome. The store, the cluster's result ConfigMaps, the Pushgateway and
//! the reports all read these types.

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
    /// Gate results, verdict, samples: what an auditor needs to trust the outcome.
    pub evidence: serde_json::Value,
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

impl RunRecord {
    /// The targets the run was judged against; none for records written before they were kept.
    pub fn criteria(&self) -> Criteria {
        self.evidence
            .get("criteria")
            .and_then(|c| serde_json::from_value(c.clone()).ok())
            .unwrap_or_default()
    }

    /// Whether the revert left something undone (the ledger stays open for `rollback`).
    pub fn rollback_failed(&self) -> bool {
        self.evidence.get("revert_error").is_some()
            || self
                .evidence
                .get("revert")
                .and_then(serde_json::Value::as_str)
                .is_some_and(|r| r.starts_with("REVERT FAILED"))
    }

    /// Whether a safety constraint broke during the run: one of the drill's abort conditions
    /// was breached and ended it.
    pub fn safety_violated(&self) -> bool {
        self.evidence
            .pointer("/abort/cause")
            .and_then(serde_json::Value::as_str)
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
