//! Every call firedrill makes to the Kubernetes API, in one place, so each can be checked on
//! the wire: Jobs, the kill switch, run results, the leader Lease, Events and cluster snapshots.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use firedrill_rollback::{Access, ClusterError, KILL_SWITCH, LABEL_DRILL, LABEL_KIND, LABEL_RUN};
use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Event};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Client;
use serde_json::Value;

use crate::run::RunRecord;

/// Jobs firedrill created: the selector every listing of them uses.
pub const JOB_SELECTOR: &str = "app.kubernetes.io/name=firedrill,app.kubernetes.io/component=drill";
/// Result ConfigMaps: where an executor leaves its record when the store is out of reach.
pub const RESULT_SELECTOR: &str = "app.kubernetes.io/name=firedrill,firedrill.io/kind=result";
/// What a candidate last saw of the leader Lease, and when on its own clock.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    record: Option<String>,
    since: Option<DateTime<Utc>>,
}

/// One scheduler's side of leader election: renewed on its own cadence (a third of the lease),
/// independent of the scheduler's tick, and judged on this process's clock.
#[derive(Clone, Debug)]
pub struct Elector {
    identity: String,
    lease_seconds: i32,
    seen: Seen,
    /// Leading until then, unless renewed.
    leading_until: Option<DateTime<Utc>>,
    last_attempt: Option<DateTime<Utc>>,
    /// Shut down: never leads again.
    resigned: bool,
}

impl Elector {
    pub fn new(identity: impl Into<String>, lease_seconds: i32) -> Self {
        Elector {
            identity: identity.into(),
            lease_seconds,
            seen: Seen::default(),
            leading_until: None,
            last_attempt: None,
            resigned: false,
        }
    }

    /// How often to renew: a third of the lease, so two renewals may fail before it lapses.
    pub fn every(&self) -> std::time::Duration {
        std::time::Duration::from_secs((self.lease_seconds as u64 / 3).max(1))
    }

    /// Whether it leads at `now` (a Lease taken or renewed less than a lease ago).
    pub fn leading(&self, now: DateTime<Utc>) -> bool {
        self.leading_until.is_some_and(|until| now < until)
    }

    /// Whether a renewal is due at `now`.
    pub fn due(&self, now: DateTime<Utc>) -> bool {
        self.last_attempt.is_none_or(|last| {
            now - last >= chrono::TimeDelta::from_std(self.every()).unwrap_or_default()
        })
    }

    /// Takes or renews the Lease; whether it leads now. A failed renewal leaves the leadership
    /// to lapse at the end of what was already held (never longer). The leader counts itself
    /// leading for two thirds of the lease from the moment it asked (client-go's renew
    /// deadline): a third of the lease is the margin before any other scheduler may take it.
    /// A request that does not answer within a third of the lease fails (never holds things up).
    pub async fn renew(&mut self, kube: &Kube, now: DateTime<Utc>) -> Result<bool, KubeError> {
        if self.resigned {
            return Ok(false);
        }
        self.last_attempt = Some(now);
        let held = tokio::time::timeout(
            self.every(),
            kube.lead(&self.identity, self.lease_seconds, now, &mut self.seen),
        )
        .await
        .map_err(|_| KubeError::Invalid {
            action: format!("renew Lease {}/{LEASE_NAME}", kube.namespace()),
            message: format!("no answer within {}s", self.every().as_secs()),
        })??;
        if held {
            let leading = i64::from(self.lease_seconds) * 2 / 3;
            self.leading_until = Some(now + chrono::TimeDelta::seconds(leading));
        } else {
            self.leading_until = None;
        }
        Ok(self.leading(now))
    }

    /// Stops leading for good (shutdown): no renewal takes the Lease again.
    pub fn resign(&mut self) {
        self.resigned = true;
        self.leading_until = None;
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }
}

/// The scheduler's Deployment, as `deploy/` names it.
pub const SCHEDULER_DEPLOYMENT: &str = "firedrill-scheduler";

/// The Lease the schedulers compete for.
pub const LEASE_NAME: &str = "firedrill-scheduler";

#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error("Kubernetes API: {action}: {source}")]
    Api {
        action: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("Kubernetes API: {action}: {message}")]
    Invalid { action: String, message: String },
}

/// Why a Job could not be followed to its end (`run --wait`); each names the Job.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error("job/{job} disappeared before it finished")]
    Gone { job: String },
    /// The credentials may not watch Jobs: the verbs they need.
    #[error(
        "following job/{job} needs get, list and watch on jobs in namespace {namespace} ({source})"
    )]
    Forbidden {
        job: String,
        namespace: String,
        #[source]
        source: Box<watcher::Error>,
    },
    #[error("the watch on job/{job} ended")]
    WatchEnded { job: String },
    #[error("job/{job} did not finish within its deadline")]
    Deadline { job: String },
    #[error("job/{job} ended without an executor exit code")]
    NoExitCode { job: String },
    #[error("{0}")]
    Api(#[from] KubeError),
}

fn api_error(action: impl Into<String>) -> impl FnOnce(kube::Error) -> KubeError {
    let action = action.into();
    move |source| KubeError::Api {
        action,
        source: Box::new(source),
    }
}

/// Sorts an error of the API server's into what a caller can act on ([`ClusterError`]): `access`
/// is the RBAC rule the call needed (named when it is forbidden), `message` the text for people.
pub fn cluster_error(e: &kube::Error, access: Access, message: String) -> ClusterError {
    match e {
        kube::Error::Api(s) => match s.code {
            404 => ClusterError::NotFound { message },
            409 => ClusterError::Conflict { message },
            403 => ClusterError::Forbidden { access, message },
            410 => ClusterError::Gone { message },
            // Too many requests (other than an eviction a budget refuses, which the caller
            // judges first), a timeout, the server failing or unavailable: worth another try.
            429 | 500 | 502 | 503 | 504 => ClusterError::Transient { message },
            _ => ClusterError::Other { message },
        },
        // No answer: the connection, the transport, a stream cut short.
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => {
            ClusterError::Transient { message }
        }
        _ => ClusterError::Other { message },
    }
}

/// The RBAC rule of one call: `verb` on `resource`, in `namespace` when it has one.
pub fn access(verb: &str, resource: &str, namespace: Option<&str>) -> Access {
    Access {
        verb: verb.to_owned(),
        resource: resource.to_owned(),
        namespace: namespace.map(str::to_owned),
    }
}

fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(status) if status.code == code)
}

/// The object an Event is about.
pub struct Involved<'a> {
    pub api_version: &'a str,
    pub kind: &'a str,
    /// `None` for a cluster-scoped object.
    pub namespace: Option<&'a str>,
    pub name: &'a str,
}

/// An Event about `involved`, kept in `namespace`, named as kubectl names Events (the object, a
/// dot, a unique suffix), from firedrill.
pub fn event_about(
    involved: &Involved,
    namespace: &str,
    warning: bool,
    reason: &str,
    message: &str,
) -> Event {
    use k8s_openapi::api::core::v1::{EventSource, ObjectReference};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    let at = Utc::now();
    let now = Time(
        k8s_openapi::jiff::Timestamp::from_second(at.timestamp())
            .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
    );
    Event {
        metadata: ObjectMeta {
            name: Some(format!(
                "{}.{:x}",
                involved.name,
                at.timestamp_nanos_opt().unwrap_or_default()
            )),
            namespace: Some(namespace.to_owned()),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some(involved.api_version.to_owned()),
            kind: Some(involved.kind.to_owned()),
            name: Some(involved.name.to_owned()),
            namespace: involved.namespace.map(str::to_owned),
            ..ObjectReference::default()
        },
        reason: Some(reason.to_owned()),
        message: Some(message.chars().take(1000).collect()),
        type_: Some(if warning { "Warning" } else { "Normal" }.to_owned()),
        source: Some(EventSource {
            component: Some("firedrill".to_owned()),
            ..EventSource::default()
        }),
        first_timestamp: Some(now.clone()),
        last_timestamp: Some(now),
        count: Some(1),
        ..Event::default()
    }
}

/// Whether creating a Job made it, or found it already there (the same fire, fired before).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Created {
    New,
    AlreadyExists,
}

/// A Job as the scheduler tracks it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobState {
    pub name: String,
    pub drill: Option<String>,
    pub scheduled: Option<DateTime<Utc>>,
    pub phase: JobPhase,
}

/// A Lease time, from this process's clock.
fn micro_time(t: DateTime<Utc>) -> MicroTime {
    MicroTime(
        k8s_openapi::jiff::Timestamp::from_microsecond(t.timestamp_micros())
            .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
    )
}

/// A Lease time as the API server writes it (RFC 3339, microseconds, UTC).
fn micro_time_text(t: &MicroTime) -> String {
    k8s_openapi::jiff::fmt::strtime::format("%Y-%m-%dT%H:%M:%S%.6fZ", t.0).unwrap_or_default()
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobPhase {
    Active,
    Succeeded,
    /// Failed, with the reason Kubernetes gives (e.g. DeadlineExceeded, BackoffLimitExceeded).
    Failed(String),
}

pub fn job_state(job: &Job) -> JobState {
    let status = job.status.as_ref();
    let conditions = status
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default();
    let holds = |kind: &str| {
        conditions
            .iter()
            .find(|c| c.type_ == kind && c.status == "True")
    };
    let count = |n: Option<i32>| n.unwrap_or(0);
    let phase = if holds("Complete").is_some() || count(status.and_then(|s| s.succeeded)) > 0 {
        JobPhase::Succeeded
    } else if let Some(c) = holds("Failed") {
        JobPhase::Failed(c.reason.clone().unwrap_or_else(|| "Failed".to_owned()))
    } else if count(status.and_then(|s| s.failed)) > 0 {
        JobPhase::Failed("a pod failed".to_owned())
    } else {
        JobPhase::Active
    };
    JobState {
        name: job.metadata.name.clone().unwrap_or_default(),
        drill: job
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(LABEL_DRILL).cloned()),
        scheduled: job
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(crate::cluster::job::ANNOTATION_SCHEDULED))
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc)),
        phase,
    }
}

/// firedrill's view of the cluster: its own namespace, where Jobs, results, the kill switch and
/// the Lease live.
#[derive(Clone)]
pub struct Kube {
    client: Client,
    namespace: String,
}

impl Kube {
    pub fn new(client: Client, namespace: impl Into<String>) -> Self {
        Kube {
            client,
            namespace: namespace.into(),
        }
    }

    /// From the in-cluster service account or the local kubeconfig.
    pub async fn connect(namespace: &str) -> Result<Self, KubeError> {
        crate::drill::gate::install_tls_provider();
        let client = Client::try_default().await.map_err(api_error(
            "connect (no in-cluster service account and no usable kubeconfig)",
        ))?;
        Ok(Kube::new(client, namespace))
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    fn jobs(&self) -> Api<Job> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    fn config_maps(&self) -> Api<ConfigMap> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// The kill switch: `Some(reason)` when engaged. An error reading it is an error, which
    /// callers treat as engaged (fail safe).
    pub async fn kill_switch(&self) -> Result<Option<String>, KubeError> {
        match self.config_maps().get_opt(KILL_SWITCH).await {
            Ok(None) => Ok(None),
            Ok(Some(cm)) => {
                let data = cm.data.unwrap_or_default();
                let reason = data
                    .get("reason")
                    .cloned()
                    .unwrap_or_else(|| "no reason given".into());
                let by = data
                    .get("engaged-by")
                    .map(|b| format!(" by {b}"))
                    .unwrap_or_default();
                Ok(Some(format!("{reason}{by}")))
            }
            Err(e) => Err(api_error(format!(
                "read ConfigMap {}/{KILL_SWITCH}",
                self.namespace
            ))(e)),
        }
    }

    pub async fn create_job(&self, job: &Job) -> Result<Created, KubeError> {
        let name = job.metadata.name.clone().unwrap_or_default();
        match self.jobs().create(&PostParams::default(), job).await {
            Ok(_) => Ok(Created::New),
            Err(e) if is_status(&e, 409) => Ok(Created::AlreadyExists),
            Err(e) => Err(api_error(format!("create Job {}/{name}", self.namespace))(
                e,
            )),
        }
    }

    pub async fn job(&self, name: &str) -> Result<Option<Job>, KubeError> {
        self.jobs()
            .get_opt(name)
            .await
            .map_err(api_error(format!("read Job {}/{name}", self.namespace)))
    }

    /// The scheduler's container in its Deployment (by name, or the one whose first argument is
    /// `scheduler`: not a sidecar that may come first). `None` when there is no scheduler
    /// Deployment.
    pub async fn scheduler_container(
        &self,
    ) -> Result<Option<k8s_openapi::api::core::v1::Container>, KubeError> {
        use k8s_openapi::api::apps::v1::Deployment;
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), &self.namespace);
        let Some(deployment) =
            api.get_opt(SCHEDULER_DEPLOYMENT)
                .await
                .map_err(api_error(format!(
                    "read Deployment {}/{SCHEDULER_DEPLOYMENT}",
                    self.namespace
                )))?
        else {
            return Ok(None);
        };
        let Some(pod) = deployment.spec.and_then(|s| s.template.spec) else {
            return Ok(None);
        };
        let by_name = pod.containers.iter().position(|c| c.name == "scheduler");
        let by_args = || {
            pod.containers.iter().position(|c| {
                c.args.as_ref().and_then(|a| a.first()).map(String::as_str) == Some("scheduler")
            })
        };
        Ok(by_name.or_else(by_args).map(|i| pod.containers[i].clone()))
    }

    /// The image, drill-file ConfigMap and service account the scheduler's Deployment gives its
    /// Jobs (its `FIREDRILL_*` environment, else its own image and service account): what a Job
    /// started from a workstation must run. `None` when there is no scheduler Deployment.
    pub async fn scheduler_runtime(
        &self,
    ) -> Result<Option<crate::cluster::job::Runtime>, KubeError> {
        let Some(container) = self.scheduler_container().await? else {
            return Ok(None);
        };
        let env = |name: &str| {
            container
                .env
                .iter()
                .flatten()
                .find(|e| e.name == name)
                .and_then(|e| e.value.clone())
        };
        let defaults = crate::cluster::job::Runtime::from_env();
        Ok(Some(crate::cluster::job::Runtime {
            image: env("FIREDRILL_IMAGE")
                .or_else(|| container.image.clone())
                .unwrap_or(defaults.image),
            config_map: env("FIREDRILL_CONFIGMAP").unwrap_or(defaults.config_map),
            // As the scheduler itself defaults it (never its own, broader, account).
            service_account: env("FIREDRILL_SERVICE_ACCOUNT").unwrap_or(defaults.service_account),
        }))
    }

    /// Every drill Job in firedrill's namespace.
    pub async fn drill_jobs(&self) -> Result<Vec<Job>, KubeError> {
        Ok(self
            .jobs()
            .list(&ListParams::default().labels(JOB_SELECTOR))
            .await
            .map_err(api_error(format!("list Jobs in {}", self.namespace)))?
            .items)
    }

    /// Leaves a run's record in a ConfigMap for the scheduler to backfill into the store.
    pub async fn write_result(&self, run: &RunRecord) -> Result<(), KubeError> {
        let name = result_name(&run.id);
        let action = format!("write ConfigMap {}/{name}", self.namespace);
        let record = serde_json::to_string(run).map_err(|e| KubeError::Invalid {
            action: action.clone(),
            message: e.to_string(),
        })?;
        let mut labels = BTreeMap::from([
            ("app.kubernetes.io/name".to_owned(), "firedrill".to_owned()),
            (LABEL_KIND.to_owned(), "result".to_owned()),
            (LABEL_RUN.to_owned(), run.id.clone()),
        ]);
        labels.insert(LABEL_DRILL.to_owned(), run.drill.clone());
        let cm = ConfigMap {
            metadata: kube::api::ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(self.namespace.clone()),
                labels: Some(labels),
                ..Default::default()
            },
            data: Some(BTreeMap::from([("run.json".to_owned(), record)])),
            ..Default::default()
        };
        match self.config_maps().create(&PostParams::default(), &cm).await {
            Ok(_) => Ok(()),
            Err(e) if is_status(&e, 409) => self
                .config_maps()
                .replace(&name, &PostParams::default(), &cm)
                .await
                .map(|_| ())
                .map_err(api_error(action)),
            Err(e) => Err(api_error(action)(e)),
        }
    }

    /// Records executors left behind.
    pub async fn results(&self) -> Result<Vec<RunRecord>, KubeError> {
        let list = self
            .config_maps()
            .list(&ListParams::default().labels(RESULT_SELECTOR))
            .await
            .map_err(api_error(format!(
                "list result ConfigMaps in {}",
                self.namespace
            )))?;
        Ok(list
            .items
            .into_iter()
            .filter_map(|cm| {
                cm.data?
                    .get("run.json")
                    .and_then(|j| serde_json::from_str(j).ok())
            })
            .collect())
    }

    pub async fn result(&self, run: &str) -> Result<Option<RunRecord>, KubeError> {
        let name = result_name(run);
        let cm = self
            .config_maps()
            .get_opt(&name)
            .await
            .map_err(api_error(format!(
                "read ConfigMap {}/{name}",
                self.namespace
            )))?;
        Ok(cm
            .and_then(|cm| cm.data)
            .and_then(|d| d.get("run.json").and_then(|j| serde_json::from_str(j).ok())))
    }

    pub async fn delete_result(&self, run: &str) -> Result<(), KubeError> {
        let name = result_name(run);
        match self
            .config_maps()
            .delete(&name, &DeleteParams::default())
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_status(&e, 404) => Ok(()),
            Err(e) => Err(api_error(format!(
                "delete ConfigMap {}/{name}",
                self.namespace
            ))(e)),
        }
    }

    /// A Kubernetes Event on the run's Job, so `kubectl describe job` tells the story.
    pub async fn event(
        &self,
        run: &str,
        warning: bool,
        reason: &str,
        message: &str,
    ) -> Result<(), KubeError> {
        let involved = Involved {
            api_version: "batch/v1",
            kind: "Job",
            namespace: Some(&self.namespace),
            name: run,
        };
        let event = event_about(&involved, &self.namespace, warning, reason, message);
        Api::<Event>::namespaced(self.client.clone(), &self.namespace)
            .create(&PostParams::default(), &event)
            .await
            .map(|_| ())
            .map_err(api_error(format!(
                "create Event for Job {}/{run}",
                self.namespace
            )))
    }

    /// Follows a Job until it ends, telling `progress` each phase it enters, and returns its
    /// executor's exit code. Gives up after `deadline`. Watches the Job (kube's `watch_object`),
    /// so each phase is told as the API server reports it, not at the next poll; credentials
    /// that may not watch Jobs end it at once, with the verbs it needs.
    pub async fn follow(
        &self,
        job: &str,
        deadline: std::time::Duration,
        mut progress: impl FnMut(&str),
    ) -> Result<u8, FollowError> {
        let job_name = || job.to_owned();
        let mut updates = std::pin::pin!(watch_one::<Job>(
            Api::namespaced(self.client.clone(), &self.namespace),
            job
        ));
        let mut last: Option<JobPhase> = None;
        let ended = async {
            while let Some(update) = updates.next().await {
                let j = match update {
                    Ok(Some(j)) => j,
                    Ok(None) => return Err(FollowError::Gone { job: job_name() }),
                    Err(e) if watch_forbidden(&e) => {
                        return Err(FollowError::Forbidden {
                            job: job_name(),
                            namespace: self.namespace.clone(),
                            source: Box::new(e),
                        })
                    }
                    Err(e) => {
                        progress(&format!("cannot watch the Job, retrying: {e}"));
                        continue;
                    }
                };
                let phase = job_state(&j).phase;
                if last.as_ref() != Some(&phase) {
                    progress(&match &phase {
                        JobPhase::Active => "running".to_owned(),
                        JobPhase::Succeeded => "finished".to_owned(),
                        JobPhase::Failed(reason) => format!("failed ({reason})"),
                    });
                    last = Some(phase.clone());
                }
                if phase != JobPhase::Active {
                    return Ok(());
                }
            }
            Err(FollowError::WatchEnded { job: job_name() })
        };
        match tokio::time::timeout(deadline, ended).await {
            Err(_) => Err(FollowError::Deadline { job: job_name() }),
            Ok(Err(e)) => Err(e),
            Ok(Ok(())) => match self.job_exit_code(job).await? {
                Some(code) => Ok(code),
                None => Err(FollowError::NoExitCode { job: job_name() }),
            },
        }
    }

    /// Who holds the Lease, and when they last renewed it.
    pub async fn leader(&self) -> Result<Option<(String, String)>, KubeError> {
        let api: Api<Lease> = Api::namespaced(self.client.clone(), &self.namespace);
        let lease = api.get_opt(LEASE_NAME).await.map_err(api_error(format!(
            "read Lease {}/{LEASE_NAME}",
            self.namespace
        )))?;
        Ok(lease.and_then(|l| l.spec).and_then(|s| {
            let holder = s.holder_identity.filter(|h| !h.is_empty())?;
            Some((
                holder,
                s.renew_time
                    .map_or_else(|| "never".to_owned(), |t| micro_time_text(&t)),
            ))
        }))
    }

    /// The exit code of the Job's executor container, once its pod has terminated.
    pub async fn job_exit_code(&self, job: &str) -> Result<Option<u8>, KubeError> {
        use k8s_openapi::api::core::v1::Pod;
        let pods = Api::<Pod>::namespaced(self.client.clone(), &self.namespace)
            .list(&ListParams::default().labels(&format!("job-name={job}")))
            .await
            .map_err(api_error(format!(
                "list the pods of Job {}/{job}",
                self.namespace
            )))?;
        Ok(pods.items.iter().find_map(|pod| {
            pod.status
                .as_ref()?
                .container_statuses
                .as_ref()?
                .iter()
                .find_map(|c| Some(c.state.as_ref()?.terminated.as_ref()?.exit_code))
                .map(|code| u8::try_from(code).unwrap_or(4))
        }))
    }

    /// Takes or keeps the leader Lease. Returns whether `identity` holds it now (for
    /// `lease_seconds` from `now`, unless renewed). Another holder's Lease is taken only when its
    /// record has not changed for `lease_seconds` on this process's clock (`seen` remembers what
    /// was last seen and when): the holder's `renewTime` is written for people and never compared
    /// with this clock, so a holder whose clock is skewed keeps its Lease while it renews.
    pub async fn lead(
        &self,
        identity: &str,
        lease_seconds: i32,
        now: DateTime<Utc>,
        seen: &mut Seen,
    ) -> Result<bool, KubeError> {
        let api: Api<Lease> = Api::namespaced(self.client.clone(), &self.namespace);
        let action = format!("Lease {}/{LEASE_NAME}", self.namespace);
        let stamp = micro_time(now);
        let build = |acquired: MicroTime,
                     transitions: i32,
                     resource_version: Option<String>|
         -> Result<Lease, KubeError> {
            Ok(Lease {
                metadata: ObjectMeta {
                    name: Some(LEASE_NAME.to_owned()),
                    namespace: Some(self.namespace.clone()),
                    resource_version,
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(identity.to_owned()),
                    lease_duration_seconds: Some(lease_seconds),
                    acquire_time: Some(acquired),
                    renew_time: Some(stamp.clone()),
                    lease_transitions: Some(transitions),
                    ..LeaseSpec::default()
                }),
            })
        };
        let current = api
            .get_opt(LEASE_NAME)
            .await
            .map_err(api_error(format!("read {action}")))?;
        let Some(current) = current else {
            return match api
                .create(&PostParams::default(), &build(stamp.clone(), 0, None)?)
                .await
            {
                Ok(_) => Ok(true),
                Err(e) if is_status(&e, 409) => Ok(false),
                Err(e) => Err(api_error(format!("create {action}"))(e)),
            };
        };
        let spec = current.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.as_deref().unwrap_or("");
        let duration = i64::from(spec.lease_duration_seconds.unwrap_or(lease_seconds));
        let transitions = spec.lease_transitions.unwrap_or(0);
        let text = |t: &Option<MicroTime>| t.as_ref().map(micro_time_text).unwrap_or_default();
        // Every renewal changes the record (its renewTime and resourceVersion).
        // What a renewal changes (not the resourceVersion: a label written by someone else
        // must not make a dead holder look alive).
        let record = format!(
            "{holder}|{}|{}|{transitions}",
            text(&spec.renew_time),
            text(&spec.acquire_time),
        );
        let since = match (&seen.record, seen.since) {
            (Some(r), Some(since)) if *r == record => since,
            _ => {
                seen.record = Some(record);
                seen.since = Some(now);
                now
            }
        };
        let expired = now - since > chrono::TimeDelta::seconds(duration);
        let lease = if holder == identity {
            let acquired = spec.acquire_time.clone().unwrap_or_else(|| stamp.clone());
            build(
                acquired,
                transitions,
                current.metadata.resource_version.clone(),
            )?
        } else if expired || holder.is_empty() {
            build(
                stamp.clone(),
                transitions.saturating_add(1),
                current.metadata.resource_version.clone(),
            )?
        } else {
            return Ok(false);
        };
        match api
            .replace(LEASE_NAME, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            // Someone else renewed or took it between our read and our write.
            Err(e) if is_status(&e, 409) => Ok(false),
            Err(e) => Err(api_error(format!("renew {action}"))(e)),
        }
    }

    /// Gives up the Lease if `identity` holds it, so that another scheduler takes over at once
    /// (a graceful shutdown) instead of after the lease runs out.
    pub async fn release(&self, identity: &str) -> Result<bool, KubeError> {
        let api: Api<Lease> = Api::namespaced(self.client.clone(), &self.namespace);
        let action = format!("release Lease {}/{LEASE_NAME}", self.namespace);
        let Some(mut lease) = api
            .get_opt(LEASE_NAME)
            .await
            .map_err(api_error(action.clone()))?
        else {
            return Ok(false);
        };
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(false);
        };
        if spec.holder_identity.as_deref() != Some(identity) {
            return Ok(false);
        }
        spec.holder_identity = None;
        match api
            .replace(LEASE_NAME, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_status(&e, 409) => Ok(false),
            Err(e) => Err(api_error(action)(e)),
        }
    }

    /// The objects the guard needs from the namespaces a drill targets, as JSON values ready for
    /// `snapshot::from_objects`.
    pub async fn snapshot(&self, namespaces: &[String]) -> Result<Vec<Value>, KubeError> {
        use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
        use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
        use k8s_openapi::api::policy::v1::PodDisruptionBudget;

        async fn list<K>(
            client: &Client,
            namespace: &str,
            kind: &str,
        ) -> Result<Vec<Value>, KubeError>
        where
            K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
                + Clone
                + serde::de::DeserializeOwned
                + serde::Serialize
                + std::fmt::Debug,
            <K as kube::Resource>::DynamicType: Default,
        {
            listed(
                Api::<K>::namespaced(client.clone(), namespace),
                kind,
                format!("list {kind}s in {namespace}"),
            )
            .await
        }

        let mut objects = Vec::new();
        let namespaces_api: Api<Namespace> = Api::all(self.client.clone());
        for namespace in namespaces {
            // Only opt-in reads namespace labels, and without them a namespace counts as not
            // opted in: a namespace that cannot be read narrows what may be hit, never widens it.
            match namespaces_api.get_opt(namespace).await {
                Ok(Some(ns)) => {
                    let mut v = serde_json::to_value(ns).unwrap_or_default();
                    v["kind"] = Value::String("Namespace".into());
                    objects.push(v);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(%namespace, error = %e, "cannot read the namespace; treating it as not opted in")
                }
            }
            objects.extend(list::<Deployment>(&self.client, namespace, "Deployment").await?);
            objects.extend(list::<StatefulSet>(&self.client, namespace, "StatefulSet").await?);
            objects.extend(list::<DaemonSet>(&self.client, namespace, "DaemonSet").await?);
            objects.extend(list::<ReplicaSet>(&self.client, namespace, "ReplicaSet").await?);
            objects.extend(
                list::<PodDisruptionBudget>(&self.client, namespace, "PodDisruptionBudget").await?,
            );
            objects.extend(list::<Pod>(&self.client, namespace, "Pod").await?);
            objects.extend(list::<Service>(&self.client, namespace, "Service").await?);
        }
        Ok(objects)
    }

    /// Every node and every pod, in any namespace: what a node fault judges (any candidate's node,
    /// and where a drain's pods can go).
    pub async fn nodes_and_pods(&self) -> Result<Vec<Value>, KubeError> {
        use k8s_openapi::api::core::v1::{Node, Pod};
        let mut objects = listed(
            Api::<Node>::all(self.client.clone()),
            "Node",
            "list nodes".to_owned(),
        )
        .await?;
        objects.extend(
            listed(
                Api::<Pod>::all(self.client.clone()),
                "Pod",
                "list the pods of every namespace".to_owned(),
            )
            .await?,
        );
        Ok(objects)
    }
}

/// Every object `api` lists, as JSON with its `kind` set (a list's items carry none); `what` names
/// the call in an error.
async fn listed<K>(api: Api<K>, kind: &str, what: String) -> Result<Vec<Value>, KubeError>
where
    K: Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let items = api
        .list(&ListParams::default())
        .await
        .map_err(api_error(what))?
        .items;
    Ok(items
        .into_iter()
        .map(|item| {
            let mut v = serde_json::to_value(item).unwrap_or_default();
            v["kind"] = Value::String(kind.to_owned());
            v
        })
        .collect())
}

/// The metadata of an object firedrill owns in its namespace (the kill switch, the ledger key):
/// its name and namespace, labelled `app.kubernetes.io/name=firedrill`.
pub fn firedrill_meta(name: &str, namespace: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(namespace.to_owned()),
        labels: Some(BTreeMap::from([(
            "app.kubernetes.io/name".to_owned(),
            "firedrill".to_owned(),
        )])),
        ..ObjectMeta::default()
    }
}

/// `firedrill-result-<run>`: run ids are at most 61 characters, so this can exceed 63; ConfigMap
/// names may be up to 253.
pub fn result_name(run: &str) -> String {
    format!("firedrill-result-{run}")
}

/// One object's updates as the API server reports them: `Some` when it is created or changed,
/// `None` when it is deleted or not there. A watch that fails is retried, backing off from
/// 200 ms to at most 2 s (what the polls it replaces waited), and its error passed on so the
/// caller can say so.
pub fn watch_one<K>(
    api: Api<K>,
    name: &str,
) -> impl futures::Stream<Item = Result<Option<K>, watcher::Error>> + Send + use<K>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let backoff = backon::ExponentialBuilder::default()
        .with_min_delay(std::time::Duration::from_millis(200))
        .with_max_delay(std::time::Duration::from_secs(2))
        .with_jitter()
        .without_max_times();
    watcher::watch_object(api, name).backoff(watcher::ExponentialBackoff::from(backoff))
}

/// Whether a watch failed because its credentials may not list or watch (retrying cannot help).
pub fn watch_forbidden(e: &watcher::Error) -> bool {
    match e {
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => is_status(e, 403),
        watcher::Error::WatchError(status) => status.code == 403,
        watcher::Error::NoResourceVersion => false,
    }
}

/// A wake-up at each change to a pod in `namespaces` (created, changed or deleted), as the API
/// server reports it, and at the end of each listing (what changed before the watch began). A
/// watch that fails is listed again with kube's default backoff; its errors are logged at debug,
/// for a caller that also looks on its own cadence.
pub fn pod_changes(
    client: &Client,
    namespaces: &[String],
) -> futures::stream::BoxStream<'static, ()> {
    use k8s_openapi::api::core::v1::Pod;
    let watches = namespaces.iter().map(|namespace| {
        watcher::watcher(
            Api::<Pod>::namespaced(client.clone(), namespace),
            watcher::Config::default(),
        )
        .default_backoff()
        .filter_map(|event| async move {
            match event {
                Ok(
                    watcher::Event::Apply(_) | watcher::Event::Delete(_) | watcher::Event::InitDone,
                ) => Some(()),
                Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => None,
                Err(e) => {
                    tracing::debug!(error = %e, "the pod watch failed; listing again");
                    None
                }
            }
        })
        .boxed()
    });
    futures::stream::select_all(watches).boxed()
}
