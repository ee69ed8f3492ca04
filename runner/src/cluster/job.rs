//! The Job that runs one drill: its deterministic name and its spec.
//!
//! ARCHITECTURE.md, principle 8: the name derives from (drill, scheduled instant), so a second fire of the
//! same instant — from a restarted scheduler or a second leader — is refused by the API server.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use firedrill_rollback::{ANNOTATION_EXPIRES_AT, LABEL_DRILL, LABEL_KIND, LABEL_RUN};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, EnvFromSource, EnvVar, PodSecurityContext,
    PodSpec, PodTemplateSpec, ResourceRequirements, SeccompProfile, SecurityContext, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::config::{Config, Drill};

/// Set in a drill Job's container to the Job's name: the executor writes it into its ledger, so
/// the scheduler can tell a run whose Job is gone (and revert it) from a run started by hand.
pub const ENV_JOB: &str = "FIREDRILL_JOB";
/// The drill Job this process runs in (`FIREDRILL_JOB`, which only a drill Job sets); none for
/// `firedrill execute` started by hand.
pub fn current() -> Option<String> {
    std::env::var(ENV_JOB).ok().filter(|j| !j.is_empty())
}

/// How long a drill Job's pod has after SIGTERM to revert its ledger (with retries) and record.
pub const TERMINATION_GRACE: i64 = 120;

/// Annotation carrying the instant the run was scheduled for.
pub const ANNOTATION_SCHEDULED: &str = "firedrill.io/scheduled";
/// Where the drill file is mounted in the Job's pod.
pub const CONFIG_PATH: &str = "/etc/firedrill/firedrill.yaml";
/// Time a Job has after its drill's duration to revert, measure and record.
pub const REVERT_AND_MEASURE_BUDGET: Duration = Duration::from_secs(10 * 60);
/// How long a finished Job stays for `kubectl logs` and the scheduler's bookkeeping.
pub const TTL_AFTER_FINISHED: i32 = 7 * 24 * 3600;

/// How the Job's pod is run: the image and the ConfigMap holding the drill file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Runtime {
    pub image: String,
    pub config_map: String,
    pub service_account: String,
}

impl Runtime {
    /// From the environment the scheduler's Deployment sets (`FIREDRILL_IMAGE`,
    /// `FIREDRILL_CONFIGMAP`, `FIREDRILL_SERVICE_ACCOUNT`), with the defaults of `deploy/`.
    pub fn from_env() -> Self {
        let var =
            |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
        Runtime {
            image: var(
                "FIREDRILL_IMAGE",
                concat!("firedrill:", env!("CARGO_PKG_VERSION")),
            ),
            config_map: var("FIREDRILL_CONFIGMAP", "firedrill-config"),
            service_account: var("FIREDRILL_SERVICE_ACCOUNT", "firedrill"),
        }
    }
}

/// The base-36 digits of `n`, lowercase: short enough to keep names within 63 characters.
const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

fn base36(mut n: u64) -> String {
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// The run id (and Job name) of a scheduled fire: `<drill>-<scheduled unix seconds, base 36>`.
/// Drill names are at most 52 characters, so the name fits 63 until the year 2100.
pub fn run_id(drill: &str, scheduled: DateTime<Utc>) -> String {
    format!("{drill}-{}", base36(scheduled.timestamp().max(0) as u64))
}

/// The run id of a manual run started at `now`: `<drill>-m<minute><random>`, marked `m` so it
/// never collides with a fire. The minute (since 2020, base 36, five digits until 2134) keeps
/// ids in start order; the random tail (as long as the 63-character limit allows: 4 to 8
/// base-36 digits) keeps runs of the same minute apart. Where a collision would still matter,
/// the API server (Job names) and the store (a record never changes its drill, kind or instant)
/// refuse it, and the caller draws again.
pub fn manual_run_id(drill: &str, now: DateTime<Utc>) -> String {
    const EPOCH_2020: i64 = 1_577_836_800;
    let minute = ((now.timestamp() - EPOCH_2020) / 60).max(0) as u64;
    let head = format!("{drill}-m{}", base36(minute));
    let room = MAX_RUN_ID.saturating_sub(head.len()).min(8);
    let mut bits = random();
    let tail: String = (0..room)
        .map(|_| {
            let digit = DIGITS[(bits % 36) as usize] as char;
            bits /= 36;
            digit
        })
        .collect();
    head + &tail
}

/// Run ids are Job names and label values: DNS-1123 labels of at most 63 characters (the drill
/// file's reader leaves a scenario's steps room within it: `<run>-<step>`).
pub use crate::config::scenario::MAX_RUN_ID;

/// A run id given on the command line must be usable as a Job name and a label value.
pub fn validate_run_id(id: &str) -> Result<(), crate::config::NameError> {
    crate::config::NameRules::RunId { max: MAX_RUN_ID }
        .check(id)
        .map(drop)
}

/// 64 bits from the OS-seeded hasher keys of the standard library (no extra dependency),
/// mixed with the clock and the process id.
fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    hasher.write_u32(std::process::id());
    hasher.finish()
}

/// The Secret in firedrill's namespace whose keys every drill Job gets as environment variables.
pub const ENV_SECRET: &str = "firedrill-env";

/// Everything that identifies one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunRef {
    pub drill: String,
    pub run: String,
    pub scheduled: DateTime<Utc>,
    pub dry_run: bool,
}

pub fn labels(drill: &str, run: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), "firedrill".to_owned()),
        ("app.kubernetes.io/component".to_owned(), "drill".to_owned()),
        (LABEL_DRILL.to_owned(), drill.to_owned()),
        (LABEL_RUN.to_owned(), run.to_owned()),
        (LABEL_KIND.to_owned(), "job".to_owned()),
    ])
}

/// How long the Job may run: the drill's duration plus the revert and measure budget (and, for a
/// region failover, its lead-in, DNS waits and hooks). The run's ledger expires then too.
pub fn active_deadline(drill: &Drill) -> Duration {
    use firedrill_experiments::Settings;
    let extra = match &drill.fault {
        Settings::RegionFailover(rf) => rf.budget(),
        // A scenario's steps are reverted one after another, newest first, each within the
        // budget a drill of its own has; a region failover step brings its own lead-in and hooks.
        Settings::Scenario(scenario) => scenario
            .steps
            .iter()
            .enumerate()
            .map(|(i, step)| {
                let revert = if i == 0 {
                    Duration::ZERO
                } else {
                    REVERT_AND_MEASURE_BUDGET
                };
                revert
                    + match &step.fault {
                        Settings::RegionFailover(rf) => rf.budget(),
                        _ => Duration::ZERO,
                    }
            })
            .sum(),
        _ => Duration::ZERO,
    };
    drill.duration + REVERT_AND_MEASURE_BUDGET + extra
}

/// How long the drill pod has after SIGTERM: [`TERMINATION_GRACE`] for each fault it may have
/// to revert in turn (a scenario reverts its steps one after another, newest first).
pub fn termination_grace(drill: &Drill) -> i64 {
    let faults = match &drill.fault {
        firedrill_experiments::Settings::Scenario(scenario) => scenario.steps.len().max(1),
        _ => 1,
    };
    TERMINATION_GRACE.saturating_mul(i64::try_from(faults).unwrap_or(i64::MAX))
}

pub fn render(config: &Config, drill: &Drill, run: &RunRef, runtime: &Runtime) -> Job {
    let labels = labels(&drill.name, &run.run);
    let deadline = active_deadline(drill);
    let expires = run.scheduled
        + TimeDelta::from_std(deadline).unwrap_or(TimeDelta::hours(25))
        + TimeDelta::minutes(5);
    Job {
        metadata: ObjectMeta {
            name: Some(run.run.clone()),
            namespace: Some(config.namespace.clone()),
            labels: Some(labels.clone()),
            annotations: Some(BTreeMap::from([
                (
                    ANNOTATION_SCHEDULED.to_owned(),
                    run.scheduled.to_rfc3339_opts(SecondsFormat::Secs, true),
                ),
                (
                    ANNOTATION_EXPIRES_AT.to_owned(),
                    expires.to_rfc3339_opts(SecondsFormat::Secs, true),
                ),
            ])),
            ..ObjectMeta::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(0),
            active_deadline_seconds: Some(deadline.as_secs() as i64),
            ttl_seconds_after_finished: Some(TTL_AFTER_FINISHED),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod_spec(
                    executor(drill, run, runtime),
                    runtime,
                    termination_grace(drill),
                )),
            },
            ..JobSpec::default()
        }),
        status: None,
    }
}

/// The drill pod: the executor container alone, under the runtime's service account, as a
/// non-root user with the config file mounted.
fn pod_spec(executor: Container, runtime: &Runtime, grace: i64) -> PodSpec {
    PodSpec {
        service_account_name: Some(runtime.service_account.clone()),
        restart_policy: Some("Never".to_owned()),
        // SIGTERM (a deleted Job, a drained node) reverts before the pod is killed.
        termination_grace_period_seconds: Some(grace),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(65532),
            run_as_group: Some(65532),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".to_owned(),
                localhost_profile: None,
            }),
            ..PodSecurityContext::default()
        }),
        containers: vec![executor],
        volumes: Some(vec![Volume {
            name: "config".to_owned(),
            config_map: Some(ConfigMapVolumeSource {
                name: runtime.config_map.clone(),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        }]),
        ..PodSpec::default()
    }
}

/// The container that runs `firedrill execute` for this run: small, locked down, reading the
/// mounted config.
fn executor(drill: &Drill, run: &RunRef, runtime: &Runtime) -> Container {
    let quantity = |q: &str| Quantity(q.to_owned());
    Container {
        name: "executor".to_owned(),
        image: Some(runtime.image.clone()),
        image_pull_policy: Some("IfNotPresent".to_owned()),
        args: Some(execute_args(drill, run)),
        env: Some(executor_env(run, runtime)),
        // What a drill needs from a Secret (a region failover's database URLs, `url_env`),
        // when the Secret exists.
        env_from: Some(vec![EnvFromSource {
            secret_ref: Some(k8s_openapi::api::core::v1::SecretEnvSource {
                name: ENV_SECRET.to_owned(),
                optional: Some(true),
            }),
            ..Default::default()
        }]),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_owned(), quantity("50m")),
                ("memory".to_owned(), quantity("32Mi")),
            ])),
            limits: Some(BTreeMap::from([
                ("cpu".to_owned(), quantity("500m")),
                ("memory".to_owned(), quantity("128Mi")),
            ])),
            ..ResourceRequirements::default()
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            privileged: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_owned()]),
                add: None,
            }),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(vec![VolumeMount {
            name: "config".to_owned(),
            mount_path: "/etc/firedrill".to_owned(),
            read_only: Some(true),
            ..VolumeMount::default()
        }]),
        ..Container::default()
    }
}

/// `execute` for this drill, run and scheduled instant (and `--dry-run` when it is one).
fn execute_args(drill: &Drill, run: &RunRef) -> Vec<String> {
    let mut args = vec![
        "execute".to_owned(),
        "--config".to_owned(),
        CONFIG_PATH.to_owned(),
        "--drill".to_owned(),
        drill.name.clone(),
        "--run".to_owned(),
        run.run.clone(),
        "--scheduled".to_owned(),
        run.scheduled.to_rfc3339_opts(SecondsFormat::Secs, true),
    ];
    if run.dry_run {
        args.push("--dry-run".to_owned());
    }
    args
}

/// The executor's environment: JSON logs, the Job's own name (`FIREDRILL_JOB`), its image.
fn executor_env(run: &RunRef, runtime: &Runtime) -> Vec<EnvVar> {
    vec![
        EnvVar {
            name: "FIREDRILL_LOG".to_owned(),
            value: Some("json".to_owned()),
            value_from: None,
        },
        EnvVar {
            name: ENV_JOB.to_owned(),
            value: Some(run.run.clone()),
            value_from: None,
        },
        // The fault proxy a dependency drill deploys runs this same image.
        EnvVar {
            name: "FIREDRILL_IMAGE".to_owned(),
            value: Some(runtime.image.clone()),
            value_from: None,
        },
    ]
}

/// The Job as YAML with `apiVersion` and `kind`, as `run --render` prints it.
pub fn to_yaml(job: &Job) -> String {
    let mut value = serde_json::to_value(job).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.insert("apiVersion".into(), "batch/v1".into());
        map.insert("kind".into(), "Job".into());
    }
    firedrill_reader::yaml::emit(&value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_deterministic_and_fit_job_names() {
        let t: DateTime<Utc> = "2027-01-15T15:00:00Z".parse().unwrap();
        assert_eq!(run_id("pod-kill-monthly", t), run_id("pod-kill-monthly", t));
        assert_ne!(
            run_id("pod-kill-monthly", t),
            run_id("pod-kill-monthly", t + TimeDelta::seconds(1))
        );
        assert_ne!(run_id("a", t), manual_run_id("a", t));
        let longest = "a".repeat(crate::config::MAX_DRILL_NAME);
        let late: DateTime<Utc> = "2099-12-31T23:59:59Z".parse().unwrap();
        assert!(manual_run_id(&longest, late).len() <= 63);
        assert!(validate_run_id(&manual_run_id(&longest, late)).is_ok());
        // The reader's room for a scenario's step names holds for every run id form.
        for len in [1, 9, 30, 46, 52] {
            let drill = "a".repeat(len);
            let room = crate::config::scenario::longest_run_id(&drill);
            for at in [t, late] {
                assert!(manual_run_id(&drill, at).len() <= room, "{len}");
                assert!(run_id(&drill, at).len() <= room, "{len}");
            }
        }
        let ids: std::collections::HashSet<String> =
            (0..1000).map(|_| manual_run_id("pod-kill", t)).collect();
        assert_eq!(
            ids.len(),
            1000,
            "manual runs in the same second get distinct ids"
        );
        for bad in [
            "",
            "../../etc/passwd; DROP TABLE runs;--",
            "Upper",
            "-x",
            &"a".repeat(64),
        ] {
            assert!(validate_run_id(bad).is_err(), "{bad:?}");
        }
        assert_eq!(base36(0), "0");
        assert_eq!(base36(35), "z");
        assert_eq!(base36(36), "10");
    }
}
