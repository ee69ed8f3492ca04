//! `network-degrade`: latency, jitter, loss and a bandwidth cap on the chosen pods' traffic. A
//! short-lived helper pod on each target's node finds the pod's processes by a container id in
//! their cgroup (through `hostPID`), enters that pod's network namespace and applies `tc`
//! (netem delay, tbf rate) and `nft` (random loss) there. Nothing in the target pod changes.
//!
//! The helper removes exactly what it added when its time is up, when it is told to stop (the
//! revert deletes it; `stop`, the sweep of an expired or orphaned ledger, and
//! `activeDeadlineSeconds` do too) and when applying fails half way. Its privileges are the least
//! that work, every other capability dropped: `NET_ADMIN` (tc, nft), `SYS_ADMIN` (setns into
//! another network namespace) and `SYS_PTRACE` (open another user's `/proc/PID/ns/net`), as root,
//! with `hostPID`; so its namespace must allow the `privileged` Pod Security level (not
//! `privileged: true`).

use std::time::Duration;

use firedrill_reader::duration;
use firedrill_reader::read::Reader;
use firedrill_reader::yaml::Node;
use firedrill_safety::cluster::Cluster;
use firedrill_safety::verdict::Verdict;
use serde_json::{json, Value};

use crate::container::host_helper_plan;
use crate::plan::{Expect, HelperError, Plan, Scene};
use crate::values::{load_percent, read_image};

/// The default helper image: sh, nsenter, tc and nft (pin it by digest in production).
pub const DEGRADE_IMAGE: &str = "nicolaka/netshoot:v0.13";

/// The capabilities the helper keeps, every other one dropped.
pub const CAPABILITIES: [&str; 3] = ["NET_ADMIN", "SYS_ADMIN", "SYS_PTRACE"];

/// `network-degrade`'s `fault:`.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkDegrade {
    pub delay: Option<Duration>,
    pub jitter: Option<Duration>,
    /// Whole percent of packets dropped, 0 to 100.
    pub loss: u32,
    /// A `tc` rate (`1mbit`, `500kbit`).
    pub rate: Option<String>,
    /// The pod's interface.
    pub interface: String,
    pub image: String,
}

impl Default for NetworkDegrade {
    fn default() -> Self {
        NetworkDegrade {
            delay: None,
            jitter: None,
            loss: 0,
            rate: None,
            interface: "eth0".into(),
            image: DEGRADE_IMAGE.into(),
        }
    }
}

/// What the helper runs (POSIX sh): see the module documentation.
pub const DEGRADE_SCRIPT: &str = include_str!("degrade.sh");

/// The id of a running container of pod `namespace/name`: any one leads to the pod's network
/// namespace, which all its containers share. A pod on its node's network is refused: degrading
/// it would degrade the node and every pod on it.
fn running_container<'c>(
    cluster: &'c Cluster,
    namespace: &str,
    name: &str,
) -> Result<&'c str, HelperError> {
    let pod = cluster.containers_of(namespace, name);
    if pod.is_some_and(|p| p.host_network) {
        return Err(HelperError::HostNetwork {
            namespace: namespace.to_owned(),
            pod: name.to_owned(),
        });
    }
    pod.and_then(|c| c.containers.iter().find_map(|(_, id)| id.as_deref()))
        .and_then(crate::container::container_id)
        .ok_or_else(|| HelperError::NoRunningContainer {
            namespace: namespace.to_owned(),
            pod: name.to_owned(),
        })
}

/// Whether every chosen pod can be reached (a running container to enter the network of).
pub fn judge(cluster: &Cluster, verdict: &Verdict) -> Result<(), HelperError> {
    for target in &verdict.targets {
        running_container(cluster, &target.namespace, &target.name)?;
    }
    Ok(())
}

pub fn plan(run: &str, settings: &NetworkDegrade, scene: &Scene) -> Result<Plan, HelperError> {
    let to = "find the pods' nodes";
    let plan = host_helper_plan(scene, "network-degrade", to, |i, cluster, target, node| {
        let (namespace, pod) = (&target.namespace, &target.name);
        let id = running_container(cluster, namespace, pod)?;
        Ok(helper(
            run,
            i,
            namespace,
            pod,
            node,
            id,
            settings,
            scene.duration,
        ))
    })?;
    let Some(mut plan) = plan else {
        return Ok(Plan::default());
    };
    // Each helper's report: what it applied, and the round-trip it measured.
    let effect = plan
        .helpers
        .iter()
        .map(|h| Expect::Degraded {
            helper: h.pod.clone(),
            target: h.acts_on.clone(),
            delay: settings.delay,
            loss: settings.loss,
            rate: settings.rate.clone(),
        })
        .collect();
    plan.effect = Some(effect);
    Ok(plan)
}

/// The environment the script reads.
pub fn script_env(settings: &NetworkDegrade, hold: Duration) -> Vec<(&'static str, String)> {
    let ms = |d: Option<Duration>| d.map_or_else(String::new, |d| d.as_millis().to_string());
    vec![
        ("IFACE", settings.interface.clone()),
        ("DELAY_MS", ms(settings.delay)),
        ("JITTER_MS", ms(settings.jitter)),
        (
            "LOSS_PERCENT",
            if settings.loss == 0 {
                String::new()
            } else {
                settings.loss.to_string()
            },
        ),
        ("RATE", settings.rate.clone().unwrap_or_default()),
        ("HOLD_SECONDS", hold.as_secs().max(1).to_string()),
    ]
}

#[allow(clippy::too_many_arguments)]
fn helper(
    run: &str,
    index: usize,
    namespace: &str,
    pod: &str,
    node: &str,
    id: &str,
    settings: &NetworkDegrade,
    hold: Duration,
) -> Value {
    let mut env: Vec<Value> = script_env(settings, hold)
        .into_iter()
        .map(|(name, value)| json!({ "name": name, "value": value }))
        .collect();
    env.push(json!({ "name": "CONTAINER_ID", "value": id }));
    env.push(json!({ "name": "TARGET", "value": format!("{namespace}/{pod}") }));
    crate::container::host_helper(&crate::container::HostHelper {
        name: format!("firedrill-degrade-{run}-{index}"),
        namespace,
        pod,
        node,
        container: "degrade",
        image: &settings.image,
        script: DEGRADE_SCRIPT,
        env,
        capabilities: &CAPABILITIES,
        // It holds for the drill, then removes its rules; the kubelet stops it a minute later
        // at the latest (SIGTERM: it removes them then too).
        deadline_seconds: hold.as_secs() + 60,
        grace_seconds: 30,
        memory_limit: "64Mi",
    })
}

impl NetworkDegrade {
    /// `fault:` of a network-degrade, every problem reported at its line.
    pub fn read(r: &mut Reader, node: &Node, path: &str) -> Option<Self> {
        let f = r.fields(
            node,
            path,
            &["delay", "jitter", "loss", "rate", "interface", "image"],
        )?;
        let d = NetworkDegrade::default();
        let ms = |r: &mut Reader, key: &str| match f.get(key) {
            Some(n) => r
                .parsed(n, &f.path_of(key), "a duration", |s| {
                    duration::parse_within(s, Duration::from_millis(1), Duration::from_secs(60))
                })
                .map(Some),
            None => Some(None),
        };
        let (delay, jitter) = (ms(r, "delay"), ms(r, "jitter"));
        let loss = match f.get("loss") {
            Some(n) => r.parsed(n, &f.path_of("loss"), "a percentage", load_percent),
            None => Some(0),
        };
        let rate = match f.get("rate") {
            Some(n) => r
                .parsed(n, &f.path_of("rate"), "a rate", |s| {
                    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
                    let unit = &s[digits.len()..];
                    if !digits.is_empty()
                        && digits.bytes().all(|b| b.is_ascii_digit())
                        && ["kbit", "mbit", "gbit"].contains(&unit)
                        && digits.parse::<u64>().is_ok_and(|v| v > 0)
                    {
                        Ok(s.to_owned())
                    } else {
                        Err(format!(
                            "{s:?} is not a rate (write e.g. 500kbit, 1mbit, 1gbit)"
                        ))
                    }
                })
                .map(Some),
            None => Some(None),
        };
        let interface = match f.get("interface") {
            Some(n) => r.parsed(n, &f.path_of("interface"), "an interface name", |s| {
                if !s.is_empty()
                    && s.len() < 16
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b))
                {
                    Ok(s.to_owned())
                } else {
                    Err(format!("{s:?} is not an interface name (at most 15 letters, digits and -_.@, e.g. eth0)"))
                }
            }),
            None => Some(d.interface.clone()),
        };
        let image = read_image(r, &f, "an image with sh, nsenter, tc and nft", &d.image);
        let settings = NetworkDegrade {
            delay: delay?,
            jitter: jitter?,
            loss: loss?,
            rate: rate?,
            interface: interface?,
            image: image?,
        };
        if settings.delay.is_none() && settings.loss == 0 && settings.rate.is_none() {
            r.error(
                f.mark,
                path,
                "say what to degrade: `delay`, `loss` or `rate` (or several)",
            );
            return None;
        }
        if settings.jitter.is_some() && settings.delay.is_none() {
            r.error(
                f.get("jitter").map_or(f.mark, |n| n.mark),
                f.path_of("jitter"),
                "jitter varies a delay: give `delay` too",
            );
            return None;
        }
        Some(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use firedrill_safety::cluster::PodContainers;

    fn cluster(host_network: bool) -> Cluster {
        Cluster {
            containers: vec![PodContainers {
                namespace: "api".into(),
                pod: "api-1".into(),
                containers: vec![
                    ("init".into(), None),
                    ("main".into(), Some("containerd://0123456789abcdef".into())),
                ],
                host_network,
            }],
            ..Cluster::default()
        }
    }

    #[test]
    fn any_running_container_leads_in_but_never_the_nodes_network() {
        assert_eq!(
            running_container(&cluster(false), "api", "api-1"),
            Ok("0123456789abcdef")
        );
        let refused = running_container(&cluster(true), "api", "api-1").unwrap_err();
        assert!(
            matches!(refused, HelperError::HostNetwork { .. }),
            "{refused}"
        );
        assert!(refused.to_string().contains("hostNetwork"), "{refused}");
        assert!(running_container(&cluster(false), "api", "api-2").is_err());
    }
}
