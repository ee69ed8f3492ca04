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

use crate::kubernetes::{access, cluster_error, Kube, JOB_SELECTOR};

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
    externals: crate::route53::Externals,
}

/// The Event a drill leaves on an object it touched, so `kubectl describe` tells the story:
/// in the object's namespace (`default` for a Node, where the kubelet's Events go too).
pub fn victim_event(
    target: &ObjectRef,
    reason: &str,
    message: &str,
) -> k8s_openapi::api::core::v1::Event {
    let kind = target.kind.to_string();
    let involved = crate::kubernetes::Involved {
        api_version: target.kind.api_version(),
        kind: &kind,
        namespace: target.namespace.as_deref(),
        name: &target.name,
    };
    let namespace = target.namespace.as_deref().unwrap_or("default");
    // A fault is a warning; its revert is normal business.
    let warning = reason != "FiredrillRevert";
    crate::kubernetes::event_about(&involved, namespace, warning, reason, message)
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

    /// Every ledger in firedrill's namespace, each read or refused with its reason.
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
        Ok(list
            .items
            .into_iter()
            .map(|cm| {
                let stored = stored(cm);
                (stored.name.clone(), Ledger::from_stored(&stored))
            })
            .collect())
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
            Operation::Create { object } => {
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
                            return Err(ClusterError::other(format!(
                                "cannot create {target}: {e}"
                            )));
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
            Operation::Delete { target } => {
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
            Operation::Patch { target, patch } => {
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
            Operation::Kill {
                pod,
                evict,
                grace_seconds,
            } => {
                let namespace = pod.namespace.as_deref().unwrap_or_default();
                let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
                let delete = DeleteParams {
                    grace_period_seconds: grace_seconds.and_then(|g| u32::try_from(g).ok()),
                    ..DeleteParams::default()
                };
                let result = if *evict {
                    // Written out rather than through kube's `evict`, whose body (4.2) names the
                    // field `delete_options`, which the API server ignores: the grace period
                    // would be lost.
                    let mut eviction = serde_json::json!({
                        "apiVersion": "policy/v1",
                        "kind": "Eviction",
                        "metadata": { "name": pod.name, "namespace": namespace },
                    });
                    if let Some(grace) = grace_seconds {
                        eviction["deleteOptions"] =
                            serde_json::json!({ "gracePeriodSeconds": grace });
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
                        let (verb, resource) = if *evict {
                            ("create", "pods/eviction")
                        } else {
                            ("delete", "pods")
                        };
                        let rule = access(verb, resource, Some(namespace));
                        Err(cluster_error(&e, rule, format!("kill {pod}: {e}")))
                    }
                }
            }
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
        metadata: kube::api::ObjectMeta {
            name: Some(KILL_SWITCH.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/name".to_owned(),
                "firedrill".to_owned(),
            )])),
            ..Default::default()
        },
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
        if namespace == self.own_namespace {
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
    let dns = config
        .drills
        .iter()
        .filter_map(|drill| match &drill.fault {
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
    let from_env = std::env::var(crate::route53::ENV_ENDPOINT)
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
    NoKey(crate::ledger_key::KeyError),
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
    Key(crate::ledger_key::KeyError),
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
    let key = match crate::ledger_key::read(&kube).await {
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
            None => {
                return Err(RollbackError::NoLedger(format!(
                    "run {run} has no ledger in namespace {} (nothing it changed is recorded there; check --namespace)",
                    cluster.namespace
                )))
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
        let mut ledger = match ledger {
            Ok(l) => l,
            Err(e) => {
                out.push(LedgerOutcome {
                    ledger: name,
                    result: Err(e.into()),
                });
                continue;
            }
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
        let involved = crate::kubernetes::Involved {
            api_version: "v1",
            kind: "ConfigMap",
            namespace: Some(&cluster.namespace),
            name: &outcome.ledger,
        };
        let event = crate::kubernetes::event_about(
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
    let key = crate::ledger_key::read(kube).await;
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
    let key = crate::ledger_key::read_or_create(kube).await;
    let expired = |at: &str| {
        DateTime::parse_from_rfc3339(at)
            .map(|t| t.with_timezone(&Utc) <= now)
            // An expiry that cannot be read is treated as passed (fail safe).
            .unwrap_or(true)
    };
    let mut out = Vec::new();
    for (name, ledger) in cluster.ledgers().await? {
        let mut ledger = match ledger {
            Ok(l) => l,
            Err(e) => {
                out.push(LedgerOutcome {
                    ledger: name,
                    result: Err(e.into()),
                });
                continue;
            }
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
        crate::config::yaml::emit(&doc)
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
                out.push_str(&crate::config::yaml::emit(&closed));
            }
        }
    }
    if ledger.entries.is_empty() && ledger.unreadable.is_empty() {
        out.push_str("# the ledger records no changes\n");
    }
    out
}
