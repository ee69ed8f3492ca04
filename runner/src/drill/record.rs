//! Keeping a finished run's record: the store (or the spool), the run's result ConfigMap, the
//! Pushgateway and a Kubernetes Event, each said when it could not be kept.

use std::time::Duration;

use tokio::sync::watch;

use crate::cluster::kubernetes::Kube;
use crate::history::pushgateway;
use crate::history::store::{Spool, Store, StoreError};
use crate::run::{EventNote, RunRecord, RunStatus};

/// Where a finished record goes.
pub struct Sinks<'a> {
    pub store: Option<&'a Store>,
    pub kube: Option<&'a Kube>,
    /// Where the record is kept when neither the store nor the cluster takes it.
    pub spool: Option<&'a Spool>,
    pub pushgateway: Option<&'a url::Url>,
    pub client: &'a reqwest::Client,
    pub push_retry: pushgateway::Retry,
}

/// Where a finished record was kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kept {
    Store,
    /// In a result ConfigMap, for the scheduler to backfill.
    Cluster,
    /// In a spool file, replayed into the store by the next start that reaches it.
    Spool(std::path::PathBuf),
    /// Not in the history: its id already names another run in the store. Kept in a spool file
    /// marked `.conflict`, which is never replayed; a person decides.
    Conflict(std::path::PathBuf),
    /// Nowhere but the process's output: said loudly, in the log and the exit code.
    Nowhere,
}

impl std::fmt::Display for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Kept::Store => f.write_str("store"),
            Kept::Cluster => f.write_str("cluster"),
            Kept::Spool(path) => write!(f, "spool {}", path.display()),
            Kept::Conflict(path) => write!(f, "conflict {}", path.display()),
            Kept::Nowhere => f.write_str("nowhere"),
        }
    }
}

/// Keeps a finished run's record: the store (retried for a bounded time, not past a signal),
/// else a result ConfigMap for the scheduler, else a spool file in the data directory. Each fallback
/// is logged with the reason the one before failed; losing the record is an error.
pub async fn keep(run: &RunRecord, sinks: &Sinks<'_>, stop: &watch::Receiver<bool>) -> Kept {
    let mut stop = stop.clone();
    let stored = match sinks.store {
        // Stopping (a first SIGTERM): one attempt, no retries.
        Some(store) if *stop.borrow() => {
            tokio::time::timeout(STOPPING_BUDGET, store.record_run(run))
                .await
                .unwrap_or_else(|_| Err(stopping_timeout()))
        }
        Some(store) => tokio::select! {
            result = store.record_run_with_retry(run) => result,
            () = pushgateway::stopping(&mut stop) => {
                tokio::time::timeout(STOPPING_BUDGET, store.record_run(run))
                    .await
                    .unwrap_or_else(|_| Err(stopping_timeout()))
            }
        },
        None => Err(StoreError::Unavailable {
            why: "it could not be opened (see the log above)".into(),
        }),
    };
    let store_error = match stored {
        Ok(()) => return Kept::Store,
        // Another run's record under this id: never merged, never retried. Kept for a person.
        Err(e @ StoreError::Conflict { .. }) => {
            let kept = sinks.spool.map(|spool| spool.write(run, true));
            tracing::error!(run = %run.id, error = %e, kept = ?kept.as_ref().map(|k| k.as_ref().map(|p| p.display().to_string())),
                "RECORD NOT IN THE HISTORY: its run id already names another run");
            return match kept {
                Some(Ok(path)) => Kept::Conflict(path),
                _ => Kept::Nowhere,
            };
        }
        Err(e) => e.to_string(),
    };
    let cluster_error = match sinks.kube {
        Some(kube) => match within_budget(kube.write_result(run)).await {
            Ok(()) => {
                tracing::warn!(run = %run.id, error = %store_error, "store unavailable; the record is left in the cluster for the scheduler");
                return Kept::Cluster;
            }
            Err(e) => e.to_string(),
        },
        None => "no cluster access".to_owned(),
    };
    let spool_error = match sinks.spool.map(|spool| spool.write(run, false)) {
        Some(Ok(path)) => {
            tracing::warn!(run = %run.id, store_error = %store_error, cluster_error = %cluster_error, path = %path.display(),
                "neither the store nor the cluster took the record; it is spooled and goes into the store at the next start that reaches it");
            return Kept::Spool(path);
        }
        Some(Err(e)) => e.to_string(),
        None => "no spool".to_owned(),
    };
    tracing::error!(run = %run.id, store_error = %store_error, cluster_error = %cluster_error, spool_error = %spool_error,
        "RECORD NOT KEPT: the store, the cluster and the spool all failed; the record is only on stdout");
    Kept::Nowhere
}

/// The store's one attempt while stopping took longer than [`STOPPING_BUDGET`].
pub(super) fn stopping_timeout() -> StoreError {
    StoreError::Timeout {
        what: "the one attempt to keep the record while stopping",
        waited: STOPPING_BUDGET,
    }
}

/// How long a stopping process gives the store for its one attempt.
pub(super) const STOPPING_BUDGET: Duration = Duration::from_secs(10);
/// How long a record, an Event or a result ConfigMap may wait on the API server.
pub(super) const CLUSTER_BUDGET: Duration = Duration::from_secs(10);

/// Why a call given [`CLUSTER_BUDGET`] did not succeed: no answer in time, or its own error.
#[derive(Debug, thiserror::Error)]
enum BudgetError<E> {
    #[error("no answer within {CLUSTER_BUDGET:?}")]
    NoAnswer,
    #[error("{0}")]
    Failed(E),
}

/// `call`, given [`CLUSTER_BUDGET`] to answer.
async fn within_budget<T, E>(
    call: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, BudgetError<E>> {
    match tokio::time::timeout(CLUSTER_BUDGET, call).await {
        Ok(answer) => answer.map_err(BudgetError::Failed),
        Err(_) => Err(BudgetError::NoAnswer),
    }
}

/// Tells the world a run ended: a Kubernetes Event on its Job (what became of it is then added
/// to the record where it was kept) and the Pushgateway (bounded, never past a signal; an outage
/// never fails the drill).
pub async fn announce(
    run: &RunRecord,
    kept: &Kept,
    sinks: &Sinks<'_>,
    stop: &watch::Receiver<bool>,
) {
    let event = match sinks.kube {
        Some(kube) => {
            let warning = !matches!(run.status, RunStatus::Passed | RunStatus::DryRun);
            let message = format!(
                "{}: {}",
                run.status,
                run.reason.as_deref().unwrap_or("all criteria met")
            );
            let mut stop = stop.clone();
            let reason = drill_event_reason(run.status);
            let event = within_budget(kube.event(&run.id, warning, &reason, &message));
            let not_created = |why: String| {
                tracing::warn!(run = %run.id, "no Event recorded: {why}");
                EventNote {
                    created: None,
                    not_created: Some(why),
                }
            };
            tokio::select! {
                result = event => match result {
                    Ok(()) => EventNote {
                        created: Some(format!(
                            "Job/{}/{}: {} {reason}: {message}",
                            kube.namespace(),
                            run.id,
                            if warning { "Warning" } else { "Normal" },
                        )),
                        not_created: None,
                    },
                    Err(e) => not_created(e.to_string()),
                },
                () = pushgateway::stopping(&mut stop) => not_created("stopping".to_owned()),
            }
        }
        None => EventNote {
            created: None,
            not_created: Some("no cluster access".to_owned()),
        },
    };
    note_event(run, event, kept, sinks).await;
    if let Some(base) = sinks.pushgateway {
        // The last success is the history's; a store that cannot say leaves it out of the push.
        let last_success = match sinks.store {
            Some(store) if run.status != RunStatus::Passed => {
                match within_budget(store.last_success(&run.drill)).await {
                    Ok(at) => at,
                    Err(BudgetError::Failed(e)) => {
                        tracing::warn!(run = %run.id, error = %e, "last success unknown: not pushed");
                        None
                    }
                    Err(BudgetError::NoAnswer) => None,
                }
            }
            _ => None,
        };
        if let Err(e) = pushgateway::push(
            sinks.client,
            base,
            run,
            last_success,
            sinks.push_retry,
            stop.clone(),
        )
        .await
        {
            tracing::warn!(run = %run.id, error = %e, "results not pushed");
        }
    }
}

/// Adds what became of the run's Event to its record, where the record was kept: the store,
/// its result ConfigMap, or its spool file. A record kept nowhere, or set aside as a conflict,
/// is left as it is; one that cannot be updated keeps no word of the Event (a report says
/// "not recorded"), never a guess.
pub(super) async fn note_event(run: &RunRecord, event: EventNote, kept: &Kept, sinks: &Sinks<'_>) {
    let mut noted = run.clone();
    noted.evidence.event = Some(event);
    let updated = match kept {
        Kept::Store => match sinks.store {
            Some(store) => within_budget(store.record_run(&noted))
                .await
                .map_err(|e| e.to_string()),
            None => return,
        },
        Kept::Cluster => match sinks.kube {
            Some(kube) => within_budget(kube.write_result(&noted))
                .await
                .map_err(|e| e.to_string()),
            None => return,
        },
        Kept::Spool(path) => match sinks.spool {
            Some(spool) => spool.replace(path, &noted).map_err(|e| e.to_string()),
            None => return,
        },
        Kept::Conflict(_) | Kept::Nowhere => return,
    };
    if let Err(e) = updated {
        tracing::warn!(run = %run.id, error = %e, "what became of the Event is not in the record");
    }
}

/// [`keep`], then [`announce`].
pub async fn record(run: &RunRecord, sinks: &Sinks<'_>, stop: &watch::Receiver<bool>) -> Kept {
    let kept = keep(run, sinks, stop).await;
    announce(run, &kept, sinks, stop).await;
    kept
}

/// The reason of the Event a run leaves on its Job when it ends: `DrillPassed`, `DrillDryRun`.
pub fn drill_event_reason(status: RunStatus) -> String {
    format!("Drill{}", title(status.as_str()))
}

pub(super) fn title(status: &str) -> String {
    status
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}
