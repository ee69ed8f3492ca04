//! The ledger in the cluster: rollback's [`Cluster`] over the Kubernetes API, and what `stop`,
//! `resume`, `rollback` and the scheduler's sweep do with it. Everything here needs nothing but
//! Kubernetes credentials: no store, no Prometheus, no scheduler.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use firedrill_rollback::{
    replay, replay_after_sweep, Cluster, ClusterError, Done, EntryState, Guard, Key, Ledger,
    LedgerError, ObjectKind, ObjectRef, Operation, Outcome, Report, Stored, Trust,
    ARTIFACT_SELECTOR, KILL_SWITCH, LEDGER_SELECTOR,
};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::Value;

use crate::cluster::kubernetes::{access, cluster_error, firedrill_meta, Kube, JOB_SELECTOR};

/// The kinds of artifact a run may create, each swept by label: what `stop` costs in calls.
pub const ARTIFACT_KINDS: [ObjectKind; 4] = [
    ObjectKind::NetworkPolicy,
    ObjectKind::Pod,
    ObjectKind::Service,
    ObjectKind::Deployment,
];

/// Runs `$body` with `$api` an `Api` of the kind `$target` names: namespaced, or cluster-wide
/// for Nodes (and for a namespaced kind given no namespace: every namespace, for listing).
macro_rules! with_api {
    ($client:expr, $kind:expr, $namespace:expr, |$api:ident| $body:expr) => {{
        let client: Client = $client;
        let namespace: Option<&str> = $namespace;
        match $kind {
            ObjectKind::ConfigMap => {
                let $api: Api<ConfigMap> = scoped(client, namespace);
                $body
            }
            ObjectKind::Deployment => {
                let $api: Api<Deployment> = scoped(client, namespace);
                $body
            }
            ObjectKind::NetworkPolicy => {
                let $api: Api<NetworkPolicy> = scoped(client, namespace);
                $body
            }
            ObjectKind::Pod => {
                let $api: Api<Pod> = scoped(client, namespace);
                $body
            }
            ObjectKind::Service => {
                let $api: Api<Service> = scoped(client, namespace);
                $body
            }
            ObjectKind::StatefulSet => {
                let $api: Api<StatefulSet> = scoped(client, namespace);
                $body
            }
            ObjectKind::Node => {
                let $api: Api<Node> = Api::all(client);
                $body
            }
        }
    }};
}

// After the macro, which it uses.
mod oncall;

pub use oncall::{
    describe, engage, recent_hits, release, render, report_rejected, rollback, stop, stop_saying,
    sweep_expired, LedgerOutcome, NotReplayed, RollbackError, Selection, StopReport,
};

fn scoped<K>(client: Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
    }
}

fn status(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

/// When a ledger's run began changing things, as an instant (none: unreadable, or written
/// before it was kept), for ordering ledgers newest first.
fn began(ledger: &Result<Ledger, LedgerError>) -> Option<DateTime<Utc>> {
    let started = ledger.as_ref().ok()?.started.as_deref()?;
    DateTime::parse_from_rfc3339(started)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// An API error of a call `verb` on `kind` in `namespace`, sorted, with the text for people.
fn failed(
    e: &kube::Error,
    verb: &str,
    kind: ObjectKind,
    namespace: Option<&str>,
    message: String,
) -> ClusterError {
    cluster_error(e, access(verb, kind.resource(), namespace), message)
}

fn to_value<K: serde::Serialize>(object: K) -> Value {
    serde_json::to_value(object).unwrap_or(Value::Null)
}

/// The Kubernetes side of the ledger: objects anywhere, ledgers in firedrill's namespace.
#[derive(Clone)]
pub struct KubeCluster {
    client: Client,
    namespace: String,
    /// Changes outside Kubernetes (Route 53).
    externals: crate::cluster::route53::Externals,
}

/// The Event a drill leaves on an object it touched, so `kubectl describe` tells the story:
/// in the object's namespace (`default` for a Node, where the kubelet's Events go too).
pub fn victim_event(
    target: &ObjectRef,
    reason: &str,
    message: &str,
) -> k8s_openapi::api::core::v1::Event {
    let kind = target.kind.to_string();
    let involved = crate::cluster::kubernetes::Involved {
        api_version: target.kind.api_version(),
        kind: &kind,
        namespace: target.namespace.as_deref(),
        name: &target.name,
    };
    let namespace = target.namespace.as_deref().unwrap_or("default");
    // A fault is a warning; its revert is normal business.
    let warning = reason != "FiredrillRevert";
    crate::cluster::kubernetes::event_about(&involved, namespace, warning, reason, message)
}

impl KubeCluster {
    /// The changes outside Kubernetes made since the last call (Route 53 change ids).
    pub fn external_changes(&self) -> Vec<String> {
        self.externals.take_changes()
    }

    /// Leaves an Event on an object a drill touched; an Event that cannot be written is logged,
    /// never a reason to stop.
    pub async fn event_on(&self, target: &ObjectRef, reason: &str, message: &str) {
        let event = victim_event(target, reason, message);
        let namespace = event.metadata.namespace.clone().unwrap_or_default();
        let api: Api<k8s_openapi::api::core::v1::Event> =
            Api::namespaced(self.client.clone(), &namespace);
        if let Err(e) = api.create(&PostParams::default(), &event).await {
            tracing::warn!(object = %target, error = %e, "no Event on the object the drill touched");
        }
    }

    pub fn new(kube: &Kube) -> Self {
        KubeCluster {
            client: kube.client().clone(),
            namespace: kube.namespace().to_owned(),
            externals: Default::default(),
        }
    }

    /// The Kubernetes client it writes through.
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn config_maps(&self) -> Api<ConfigMap> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Every ledger in firedrill's namespace, each read or refused with its reason, newest
    /// first (by when its run began changing things): whoever reverts them in this order takes
    /// a scenario's steps off in reverse. Unreadable ledgers come last.
    pub async fn ledgers(
        &self,
    ) -> Result<Vec<(String, Result<Ledger, LedgerError>)>, ClusterError> {
        let namespace = Some(self.namespace.as_str());
        let list = self
            .config_maps()
            .list(&ListParams::default().labels(LEDGER_SELECTOR))
            .await
            .map_err(|e| {
                let message = format!("list ledgers in {}: {e}", self.namespace);
                failed(&e, "list", ObjectKind::ConfigMap, namespace, message)
            })?;
        let mut ledgers: Vec<(String, Result<Ledger, LedgerError>)> = list
            .items
            .into_iter()
            .map(|cm| {
                let stored = stored(cm);
                (stored.name.clone(), Ledger::from_stored(&stored))
            })
            .collect();
        ledgers.sort_by_key(|(name, ledger)| std::cmp::Reverse((began(ledger), name.clone())));
        Ok(ledgers)
    }

    /// One run's ledger, if it has one.
    pub async fn ledger(
        &self,
        run: &str,
    ) -> Result<Option<Result<Ledger, LedgerError>>, ClusterError> {
        let name = firedrill_rollback::ledger_name(run);
        let namespace = Some(self.namespace.as_str());
        let cm = self.config_maps().get_opt(&name).await.map_err(|e| {
            let message = format!("read ConfigMap {}/{name}: {e}", self.namespace);
            failed(&e, "get", ObjectKind::ConfigMap, namespace, message)
        })?;
        Ok(cm.map(|cm| Ledger::from_stored(&stored(cm))))
    }

    /// Lists one kind of artifact in every namespace, by label.
    async fn artifacts(&self, kind: ObjectKind) -> Result<Vec<ObjectRef>, ClusterError> {
        let params = ListParams::default().labels(ARTIFACT_SELECTOR);
        let items: Vec<Value> = with_api!(self.client.clone(), kind, None, |api| api
            .list(&params)
            .await
            .map(|l| l.items.into_iter().map(to_value).collect()))
        .map_err(|e| {
            let message = format!("list {kind}s labelled {ARTIFACT_SELECTOR}: {e}");
            failed(&e, "list", kind, None, message)
        })?;
        Ok(items
            .iter()
            .filter_map(|v| ObjectRef::named(v, kind))
            .collect())
    }

    /// Deletes every artifact of one kind by label: one call per namespace that holds any.
    async fn sweep(
        &self,
        kind: ObjectKind,
        protection: &Protection,
    ) -> Result<Swept, ClusterError> {
        let listed = self.artifacts(kind).await?;
        // Protected objects are never swept, label or not; a namespace holding one is swept
        // object by object instead of by label.
        let (protected, found): (Vec<ObjectRef>, Vec<ObjectRef>) = listed
            .into_iter()
            .partition(|r| protection.check(r).is_some());
        let careful: BTreeSet<String> = protected
            .iter()
            .filter_map(|r| r.namespace.clone())
            .collect();
        let namespaces: BTreeSet<String> =
            found.iter().filter_map(|r| r.namespace.clone()).collect();
        let params = ListParams::default().labels(ARTIFACT_SELECTOR);
        for ns in namespaces.difference(&careful) {
            with_api!(self.client.clone(), kind, Some(ns.as_str()), |api| api
                .delete_collection(&DeleteParams::background(), &params)
                .await
                .map(|_| ()))
            .map_err(|e| {
                let message = format!("delete {kind}s labelled {ARTIFACT_SELECTOR} in {ns}: {e}");
                failed(&e, "deletecollection", kind, Some(ns), message)
            })?;
        }
        for target in &found {
            if target
                .namespace
                .as_ref()
                .is_some_and(|ns| careful.contains(ns))
            {
                self.execute(&Operation::Delete {
                    target: target.clone(),
                })
                .await?;
            }
        }
        Ok(Swept {
            kind,
            count: found.len(),
            namespaces,
            found: found.into_iter().collect(),
        })
    }
}

/// The Kubernetes calls of [`Cluster::execute`], one per operation.
impl KubeCluster {
    async fn create(&self, object: &Value) -> Result<Done, ClusterError> {
        let target = ObjectRef::of(object).ok_or_else(|| {
            ClusterError::other(format!(
                "cannot create {object}: no kind, namespace or name"
            ))
        })?;
        let namespace = target.namespace.as_deref();
        let post = PostParams::default();
        let result = with_api!(
            self.client.clone(),
            target.kind,
            target.namespace.as_deref(),
            |api| match serde_json::from_value(object.clone()) {
                Ok(typed) => api.create(&post, &typed).await.map(|_| ()),
                Err(e) => {
                    return Err(ClusterError::other(format!("cannot create {target}: {e}")));
                }
            }
        );
        match result {
            // Someone's object has that name: not ours to take over (or later delete).
            Err(e) if status(&e) == Some(409) => Ok(Done::Refused(format!(
                "{target} already exists and was not made by this run"
            ))),
            other => other.map(|()| Done::Made).map_err(|e| {
                failed(
                    &e,
                    "create",
                    target.kind,
                    namespace,
                    format!("create {target}: {e}"),
                )
            }),
        }
    }

    async fn delete(&self, target: &ObjectRef) -> Result<Done, ClusterError> {
        let name = target.name.as_str();
        let result = with_api!(
            self.client.clone(),
            target.kind,
            target.namespace.as_deref(),
            |api| api
                .delete(name, &DeleteParams::background())
                .await
                .map(|_| ())
        );
        match result {
            Err(e) if status(&e) == Some(404) => Ok(Done::Made),
            other => other.map(|()| Done::Made).map_err(|e| {
                let namespace = target.namespace.as_deref();
                failed(
                    &e,
                    "delete",
                    target.kind,
                    namespace,
                    format!("delete {target}: {e}"),
                )
            }),
        }
    }

    async fn patch(&self, target: &ObjectRef, patch: &Value) -> Result<Done, ClusterError> {
        let name = target.name.as_str();
        let params = PatchParams::default();
        let namespace = target.namespace.as_deref();
        with_api!(self.client.clone(), target.kind, namespace, |api| api
            .patch(name, &params, &Patch::Merge(patch))
            .await
            .map(|_| Done::Made))
        .map_err(|e| {
            failed(
                &e,
                "patch",
                target.kind,
                namespace,
                format!("patch {target}: {e}"),
            )
        })
    }

    async fn kill(
        &self,
        pod: &ObjectRef,
        evict: bool,
        grace_seconds: Option<i64>,
    ) -> Result<Done, ClusterError> {
        let namespace = pod.namespace.as_deref().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let delete = DeleteParams {
            grace_period_seconds: grace_seconds.and_then(|g| u32::try_from(g).ok()),
            ..DeleteParams::default()
        };
        let result = if evict {
            // Written out rather than through kube's `evict`, whose body (4.2) names the
            // field `delete_options`, which the API server ignores: the grace period
            // would be lost.
            let mut eviction = serde_json::json!({
                "apiVersion": "policy/v1",
                "kind": "Eviction",
                "metadata": { "name": pod.name, "namespace": namespace },
            });
            if let Some(grace) = grace_seconds {
                eviction["deleteOptions"] = serde_json::json!({ "gracePeriodSeconds": grace });
            }
            api.create_subresource::<Value, Value>(
                "eviction",
                &pod.name,
                &PostParams::default(),
                &eviction,
            )
            .await
            .map(|_| ())
        } else {
            api.delete(&pod.name, &delete).await.map(|_| ())
        };
        match result {
            Ok(()) => Ok(Done::Made),
            // Gone already: its controller is at work; nothing more to do.
            Err(e) if status(&e) == Some(404) => Ok(Done::Made),
            // A PodDisruptionBudget allows no disruption now: not now, never retried.
            Err(e) if status(&e) == Some(429) => Ok(Done::Refused(format!(
                "the API server refused to evict {pod} now (a PodDisruptionBudget allows no more disruptions): {e}"
            ))),
            Err(e) => {
                let (verb, resource) = if evict {
                    ("create", "pods/eviction")
                } else {
                    ("delete", "pods")
                };
                let rule = access(verb, resource, Some(namespace));
                Err(cluster_error(&e, rule, format!("kill {pod}: {e}")))
            }
        }
    }
}

fn stored(cm: ConfigMap) -> Stored {
    Stored {
        name: cm.metadata.name.unwrap_or_default(),
        resource_version: cm.metadata.resource_version,
        labels: cm.metadata.labels.unwrap_or_default(),
        annotations: cm.metadata.annotations.unwrap_or_default(),
        data: cm.data.unwrap_or_default(),
    }
}

impl Cluster for KubeCluster {
    async fn get(&self, target: &ObjectRef) -> Result<Option<Value>, ClusterError> {
        let name = target.name.as_str();
        let namespace = target.namespace.as_deref();
        with_api!(self.client.clone(), target.kind, namespace, |api| api
            .get_opt(name)
            .await
            .map(|o| o.map(to_value)))
        .map_err(|e| {
            failed(
                &e,
                "get",
                target.kind,
                namespace,
                format!("read {target}: {e}"),
            )
        })
    }

    async fn execute(&self, operation: &Operation) -> Result<Done, ClusterError> {
        match operation {
            Operation::Create { object } => self.create(object).await,
            Operation::Delete { target } => self.delete(target).await,
            Operation::Patch { target, patch } => self.patch(target, patch).await,
            Operation::Kill {
                pod,
                evict,
                grace_seconds,
            } => self.kill(pod, *evict, *grace_seconds).await,
            Operation::External { system, action } => self
                .externals
                .apply(system, action)
                .await
                .map(|()| Done::Made),
        }
    }

    async fn read_external(
        &self,
        system: &str,
        target: &Value,
    ) -> Result<Option<Value>, ClusterError> {
        self.externals.read(system, target).await
    }

    async fn save(&self, ledger: &mut Ledger) -> Result<(), ClusterError> {
        let api = self.config_maps();
        let name = ledger.name();
        let namespace = Some(self.namespace.as_str());
        let action = format!("write ledger {}/{name}", self.namespace);
        for _ in 0..5 {
            let verb = if ledger.resource_version.is_some() {
                "update"
            } else {
                "create"
            };
            let mut cm = ledger_config_map(&self.namespace, ledger);
            let written = match &ledger.resource_version {
                // The first write creates: a ledger already there is another run's.
                None => match api.create(&PostParams::default(), &cm).await {
                    Err(e) if status(&e) == Some(409) => {
                        return Err(ClusterError::Conflict { message: format!(
                            "{action}: it already exists: run id {} is already used (a run id is used once)",
                            ledger.run
                        )})
                    }
                    other => other,
                },
                Some(version) => {
                    cm.metadata.resource_version = Some(version.clone());
                    match api.replace(&name, &PostParams::default(), &cm).await {
                        // Someone else wrote it since: take in what they wrote, then try again.
                        Err(e) if status(&e) == Some(409) => {
                            let theirs = api.get(&name).await.map_err(|e| {
                                let message = format!("{action}: re-read after a conflict: {e}");
                                failed(&e, "get", ObjectKind::ConfigMap, namespace, message)
                            })?;
                            let theirs = Ledger::from_stored(&stored(theirs))
                                .map_err(|e| ClusterError::other(format!("{action}: {e}")))?;
                            ledger.merge(&theirs);
                            continue;
                        }
                        other => other,
                    }
                }
            };
            let written = written.map_err(|e| {
                failed(
                    &e,
                    verb,
                    ObjectKind::ConfigMap,
                    namespace,
                    format!("{action}: {e}"),
                )
            })?;
            ledger.resource_version = written.metadata.resource_version;
            return Ok(());
        }
        Err(ClusterError::Conflict {
            message: format!("{action}: five conflicting writes in a row"),
        })
    }
}

/// A run's ledger as the ConfigMap it is kept in.
pub fn ledger_config_map(namespace: &str, ledger: &Ledger) -> ConfigMap {
    let s = ledger.to_stored();
    ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some(s.name),
            namespace: Some(namespace.to_owned()),
            labels: Some(s.labels),
            annotations: Some(s.annotations),
            ..Default::default()
        },
        data: Some(s.data),
        ..Default::default()
    }
}

/// The kill switch, as `stop` engages it.
pub fn kill_switch_config_map(namespace: &str, reason: &str, by: &str) -> ConfigMap {
    ConfigMap {
        metadata: firedrill_meta(KILL_SWITCH, namespace),
        data: Some(BTreeMap::from([
            ("reason".to_owned(), reason.to_owned()),
            ("engaged-by".to_owned(), by.to_owned()),
            ("engaged-at".to_owned(), Utc::now().to_rfc3339()),
        ])),
        ..Default::default()
    }
}

/// What one kind's sweep removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Swept {
    pub kind: ObjectKind,
    pub count: usize,
    pub namespaces: BTreeSet<String>,
    /// What the sweep deleted.
    pub found: BTreeSet<ObjectRef>,
}

/// What protects objects from any revert: kube-system always, and the drill file's
/// `safety.protected` globs when a file is given. A ledger that names one is refused.
pub struct Protection {
    pub globs: Vec<firedrill_safety::NamespacedGlob>,
    /// firedrill's own namespace: its Jobs, ledgers and kill switch are never a drill's to undo.
    pub own_namespace: String,
    /// What firedrill's planners write, and the DNS the drill file declares: a ledger entry
    /// outside it is refused even when its object is not protected.
    pub scope: firedrill_rollback::Scope,
}

impl Protection {
    /// What the drill file protects: the file's `safety.protected` and every drill's own.
    pub fn of(config: &crate::config::Config) -> Self {
        let mut globs = config.safety.protected.clone();
        for drill in &config.drills {
            for glob in &drill.safety.protected {
                if !globs.contains(glob) {
                    globs.push(glob.clone());
                }
            }
        }
        Protection {
            globs,
            own_namespace: config.namespace.clone(),
            scope: scope_of(config),
        }
    }

    /// Without a drill file: kube-system and `namespace` are protected, and no external record
    /// can be shown to be declared (see [`firedrill_rollback::Scope::without_drill_file`]).
    pub fn without_drill_file(namespace: &str) -> Self {
        Protection {
            globs: Vec::new(),
            own_namespace: namespace.to_owned(),
            scope: firedrill_rollback::Scope::without_drill_file(),
        }
    }

    /// The guard, the scope and the ledger key, as a replay takes them (`None`: no key given,
    /// so nothing is applied, see [`Trust`]).
    pub fn trust<'a>(&'a self, guard: Guard<'a>, key: Option<&'a Key>) -> Trust<'a> {
        Trust {
            guard,
            scope: &self.scope,
            key,
            accept_unsigned: false,
        }
    }

    pub fn check(&self, target: &ObjectRef) -> Option<String> {
        let namespace = target.namespace.as_deref()?;
        if namespace == "kube-system" {
            return Some("kube-system is always protected".to_owned());
        }
        // The one exception: `check --network`'s canary, whose pods and policy live there.
        if namespace == self.own_namespace && !crate::check::canary::is_canary(target) {
            return Some(format!("{namespace} is firedrill's own namespace"));
        }
        self.globs
            .iter()
            .find(|g| g.matches(namespace, &target.name))
            .map(|g| format!("safety.protected {g}"))
    }
}

/// The DNS every region drill of the file declares: where a `route53` ledger record may point.
/// A drill without an endpoint reaches AWS's, or `FIREDRILL_ROUTE53_ENDPOINT` where the
/// executor has it set (as it does when it fires).
pub fn scope_of(config: &crate::config::Config) -> firedrill_rollback::Scope {
    // A scenario's region-failover steps write ledgers under the scenario's name.
    let dns = config
        .drills
        .iter()
        .flat_map(|drill| drill.faults().into_iter().map(move |f| (drill, f)))
        .filter_map(|(drill, fault)| match fault.settings {
            firedrill_experiments::Settings::RegionFailover(rf) => {
                rf.dns.as_ref().map(|dns| declared(&drill.name, dns))
            }
            _ => None,
        })
        .collect();
    firedrill_rollback::Scope { dns: Some(dns) }
}

/// One drill's `fault.dns`, as the scope of a revert holds it.
pub fn declared(
    drill: &str,
    dns: &firedrill_experiments::region::Dns,
) -> firedrill_rollback::scope::DeclaredDns {
    let from_env = std::env::var(crate::cluster::route53::ENV_ENDPOINT)
        .ok()
        .filter(|e| !e.is_empty());
    firedrill_rollback::scope::DeclaredDns {
        drill: drill.to_owned(),
        zone: dns.zone.clone(),
        name: dns.name.clone(),
        record_type: dns.record_type.clone(),
        set_identifiers: dns
            .regions
            .values()
            .map(|r| r.set_identifier.clone())
            .collect(),
        health_checks: dns
            .regions
            .values()
            .filter_map(|r| r.health_check.clone())
            .collect(),
        endpoints: match &dns.endpoint {
            Some(e) => BTreeSet::from([Some(e.clone())]),
            None => BTreeSet::from([None, from_env]),
        },
    }
}
