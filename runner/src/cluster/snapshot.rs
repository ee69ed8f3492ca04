//! Reads a cluster snapshot — what `kubectl get pods,deployments,statefulsets,replicasets,
//! daemonsets,poddisruptionbudgets,services,namespaces,nodes -A -o yaml` prints — into the guard's model.
//! With `configmaps` added, the vetoes of single fires (`firedrill skip`'s ConfigMap) are kept too.
//!
//! Objects are read as JSON values, so the same conversion serves a live cluster's objects.
//! Kinds the guard does not need (Services, Nodes, ...) are skipped. A field that is present but
//! malformed is an error naming the object and field; a missing field takes the value that is
//! safe (a pod with no status is not ready; a pod with no creation time is brand new).

use std::collections::HashMap;
use std::fmt;
use std::io::BufRead;
use std::path::Path;

use chrono::DateTime;
use firedrill_safety::cluster::{
    Cluster, IntOrPercent, Labels, Namespace, Owner, OwnerKind, OwnerRef, Pdb, Pod,
};
use firedrill_safety::{Percent, Requirement, Selector};
use serde_json::Value;

use crate::cluster::kubernetes::{Kube, KubeError};
use crate::config::Drill;

use firedrill_reader::yaml::{self, Limits, Mark, StreamError};

mod scheduling;

/// Problems past this many are counted, not listed.
const MAX_PROBLEMS: usize = 50;

/// The kinds a snapshot reads; anything else in a List is skipped.
const KINDS: &[&str] = &[
    "Namespace",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "PodDisruptionBudget",
    "Pod",
    "Node",
    "Service",
];

macro_rules! kubectl {
    () => {
        "kubectl get pods,deployments,statefulsets,replicasets,daemonsets,poddisruptionbudgets,services,namespaces,nodes -A -o yaml"
    };
}
const KUBECTL: &str = kubectl!();
/// What a snapshot's document must be.
const EXPECTED: &str = concat!(
    "expected a Kubernetes List (the output of `",
    kubectl!(),
    "`)"
);

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("cannot read {path}: {source} (check the path given to --cluster)")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(Problems),
}

/// Every problem found in one snapshot, each with its position.
#[derive(Debug)]
pub struct Problems {
    pub file: String,
    pub items: Vec<(Mark, String)>,
    /// Problems found beyond the ones listed.
    pub more: usize,
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (mark, message)) in self.items.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}:{}:{}: {message}", self.file, mark.line, mark.column)?;
        }
        if self.more > 0 {
            write!(f, "\n{}: and {} more problems", self.file, self.more)?;
        }
        Ok(())
    }
}

impl Problems {
    fn push(&mut self, mark: Mark, message: String) {
        if self.items.len() < MAX_PROBLEMS {
            self.items.push((mark, message));
        } else {
            self.more += 1;
        }
    }
}

/// Why a run could not read the cluster it acts on: the API failed, or answered with an object
/// the run cannot make sense of. Either way the run judges nothing from it (fail safe).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Api(#[from] KubeError),
    #[error(transparent)]
    Object(#[from] ObjectError),
}

/// The part of the cluster one fire is decided on: the targets' namespaces (and the
/// dependency's); for node faults also every node and every namespace with a pod, so each
/// neighbour is judged with its workload and budgets and a drain's pods are placed on what is
/// really free. Also returns, for node faults, the nodes whose pods were all read.
pub async fn read_for(
    kube: &Kube,
    drill: &Drill,
) -> Result<(Cluster, Option<Vec<String>>), ReadError> {
    // A scenario reads what each of its steps reads (its steps are judged on one read).
    let faults = drill.faults();
    let mut namespaces: Vec<String> = faults
        .iter()
        .flat_map(|f| f.targets.iter().map(|t| t.namespace.clone()))
        .chain(
            faults
                .iter()
                .filter_map(|f| firedrill_experiments::also_reads(f.settings).map(str::to_owned)),
        )
        .collect();
    namespaces.sort();
    namespaces.dedup();
    let mut objects = kube.snapshot(&namespaces).await?;
    let model = |objects: &[Value]| {
        let refs: Vec<&Value> = objects.iter().collect();
        from_objects(&refs).map_err(ReadError::from)
    };
    if !faults
        .iter()
        .any(|f| firedrill_experiments::reads_every_node(f.settings))
    {
        return Ok((model(&objects)?, None));
    }
    // A node fault may judge the node of any candidate (it falls back past a refused one), and
    // a drain places the pods it moves on the nodes left: every node and every pod is read. The
    // pods of the other namespaces come with their workloads and budgets.
    let extra = kube.nodes_and_pods().await?;
    let nodes: Vec<String> = extra
        .iter()
        .filter(|o| o["kind"] == "Node")
        .filter_map(|o| o.pointer("/metadata/name").and_then(Value::as_str))
        .map(str::to_owned)
        .collect();
    let mut more: Vec<String> = extra
        .iter()
        .filter(|o| o["kind"] == "Pod")
        .filter_map(|o| o.pointer("/metadata/namespace").and_then(Value::as_str))
        .filter(|ns| !namespaces.iter().any(|n| n == ns))
        .map(str::to_owned)
        .collect();
    more.sort();
    more.dedup();
    objects.extend(extra.into_iter().filter(|o| o["kind"] == "Node"));
    objects.extend(kube.snapshot(&more).await?);
    Ok((model(&objects)?, Some(nodes)))
}

/// What is wrong with one Kubernetes object: which object, and which field of it.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error("an object without `kind`")]
    NoKind,
    #[error("a {kind} without metadata.name")]
    NoName { kind: String },
    #[error("{kind} {}: {field}", shown(.namespace, .name))]
    Field {
        kind: String,
        /// Empty for cluster-scoped objects.
        namespace: String,
        name: String,
        #[source]
        field: Box<FieldError>,
    },
}

/// `namespace/name`, or `name` for a cluster-scoped object.
fn shown(namespace: &str, name: &str) -> String {
    if namespace.is_empty() {
        name.to_owned()
    } else {
        format!("{namespace}/{name}")
    }
}

/// A malformed field, by its dotted path in the object (`spec.ports[0].port`).
#[derive(Debug, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct FieldError {
    pub field: String,
    pub problem: FieldProblem,
}

#[derive(Debug, thiserror::Error)]
pub enum FieldProblem {
    #[error("expected {0}")]
    Expected(&'static str),
    #[error("expected {expected}, found {found}")]
    Found {
        expected: &'static str,
        found: Value,
    },
    #[error("{0} is not a whole number")]
    NotWhole(serde_json::Number),
    #[error("{0:?} is not an RFC 3339 time (e.g. 2026-11-01T10:00:00Z)")]
    NotTime(String),
    #[error("{0}")]
    Percent(#[from] firedrill_safety::QuantityError),
    #[error("missing")]
    Missing,
    #[error("a controller without kind or name")]
    UnnamedController,
    /// A label selector's expression: the operator named needs values, or takes none.
    #[error("{0} needs at least one value")]
    NoValues(String),
    #[error("{0} takes no values")]
    Values(String),
    #[error("{0:?} is not In, NotIn, Exists or DoesNotExist")]
    Operator(Option<String>),
    /// A resource quantity: requests, allocatable.
    #[error("{0}")]
    Resource(firedrill_safety::QuantityError),
    #[error("{0:?} is not In, NotIn, Exists, DoesNotExist, Gt or Lt")]
    NodeOperator(String),
    #[error("{0} takes one whole number")]
    OneWhole(String),
    #[error("{0:?} is not NoSchedule, PreferNoSchedule or NoExecute")]
    Effect(String),
    #[error("{0:?} is not Equal or Exists")]
    Toleration(String),
    /// A label selector within the object (a PodDisruptionBudget's `spec.selector`).
    #[error("{0}")]
    Selector(Box<FieldError>),
}

impl FieldError {
    fn new(field: impl Into<String>, problem: FieldProblem) -> Self {
        FieldError {
            field: field.into(),
            problem,
        }
    }

    fn expected(field: impl Into<String>, expected: &'static str) -> Self {
        FieldError::new(field, FieldProblem::Expected(expected))
    }

    fn found(field: impl Into<String>, expected: &'static str, found: &Value) -> Self {
        FieldError::new(
            field,
            FieldProblem::Found {
                expected,
                found: found.clone(),
            },
        )
    }
}

/// Why a snapshot's document is not a List of the objects the guard reads.
#[derive(Debug, thiserror::Error)]
enum RootError {
    #[error("{EXPECTED}, found {0}")]
    Found(String),
    #[error("items: expected a list of Kubernetes objects, found {0}")]
    Items(String),
    #[error("{EXPECTED}, found a single {kind} (a snapshot holds {kinds})", kinds = KINDS.join(", "))]
    Single { kind: String },
    #[error("{EXPECTED}, found a drill file (give the drill file with --config and a snapshot with --cluster)")]
    DrillFile,
    #[error("{EXPECTED}, found a mapping without `kind` or `items`")]
    Unkeyed,
    #[error("{0}")]
    Object(#[from] ObjectError),
}

/// A snapshot as `plan --cluster` reads it: the guard's model, and the vetoes of single fires
/// (`firedrill skip`'s ConfigMap) when the snapshot lists them.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub cluster: Cluster,
    /// The data of each ConfigMap `firedrill-skips` labelled as firedrill writes it, by its
    /// namespace (firedrill reads only its own namespace's).
    skips: Vec<(String, Labels)>,
}

impl Snapshot {
    /// The vetoes in firedrill's namespace `namespace`, when the snapshot lists them.
    pub fn skips(&self, namespace: &str) -> Option<crate::cluster::skips::Skips> {
        self.skips
            .iter()
            .find(|(ns, _)| ns == namespace)
            .map(|(_, data)| crate::cluster::skips::Skips::from_data(data.clone()))
    }
}

/// Reads a snapshot file item by item: memory follows the model, not the file.
pub fn load(path: &Path) -> Result<Cluster, SnapshotError> {
    load_snapshot(path).map(|s| s.cluster)
}

/// [`load`], with the vetoes the snapshot lists.
pub fn load_snapshot(path: &Path) -> Result<Snapshot, SnapshotError> {
    let file = std::fs::File::open(path).map_err(|source| SnapshotError::Io {
        path: path.display().to_string(),
        source,
    })?;
    read(
        std::io::BufReader::with_capacity(1 << 16, file),
        &path.display().to_string(),
    )
}

/// Parses a snapshot; `file` names it in messages.
pub fn parse(text: &str, file: &str) -> Result<Cluster, SnapshotError> {
    read(text.as_bytes(), file).map(|s| s.cluster)
}

fn read(input: impl BufRead, file: &str) -> Result<Snapshot, SnapshotError> {
    let mut model = Model::default();
    let mut problems = Problems {
        file: file.to_owned(),
        items: Vec::new(),
        more: 0,
    };
    let mut listed = Listed::default();
    let empty = format!("the snapshot is empty; expected the output of `{KUBECTL}`");
    let root = yaml::stream_items(input, Limits::SNAPSHOT, "items", &empty, |node| {
        let object = yaml::to_json(&node);
        let result = match listed.again(&object, node.mark.line, file) {
            Some(message) => Err(message),
            None => model.add(&object).map_err(|e| e.to_string()),
        };
        if let Err(message) = result {
            problems.push(node.mark, message);
        }
    });
    let root = match root {
        Ok(root) => root,
        Err(StreamError::Io(source)) => {
            return Err(SnapshotError::Io {
                path: file.to_owned(),
                source,
            })
        }
        Err(StreamError::Syntax(e)) => {
            problems.push(e.mark, e.message);
            return Err(SnapshotError::Invalid(problems));
        }
    };
    if let Err(e) = check_root(&root, &mut model) {
        problems.push(root.mark, e.to_string());
    }
    if problems.items.is_empty() {
        let skips = std::mem::take(&mut model.skips);
        Ok(Snapshot {
            cluster: model.finish(),
            skips,
        })
    } else {
        Err(SnapshotError::Invalid(problems))
    }
}

/// The objects seen so far and the line each was listed at. A snapshot that lists an object
/// twice (two dumps concatenated, a copy-paste) is refused: read twice, a pod would count twice
/// toward its budgets ("16 of 16 healthy" for four pods).
#[derive(Default)]
struct Listed {
    /// By kind and uid: uids are unique, but snapshots written by hand or by generators (this
    /// repository's example among them) reuse one across kinds, which is no repeat.
    by_uid: HashMap<(String, String), usize>,
    by_name: HashMap<(String, String, String), usize>,
}

impl Listed {
    /// Why `object`, listed at `line`, was listed before, if it was: by its kind and uid, or by
    /// its kind, namespace and name (an object without them is left to the model to refuse).
    fn again(&mut self, object: &Value, line: usize, file: &str) -> Option<String> {
        let text = |pointer: &str| object.pointer(pointer).and_then(Value::as_str);
        let (Some(kind), Some(name)) = (text("/kind"), text("/metadata/name")) else {
            return None;
        };
        let namespace = text("/metadata/namespace").unwrap_or("");
        let shown = if namespace.is_empty() {
            format!("{kind} {name}")
        } else {
            format!("{kind} {namespace}/{name}")
        };
        let uid = text("/metadata/uid").filter(|u| !u.is_empty());
        let first = uid
            .and_then(|uid| {
                self.by_uid
                    .get(&(kind.to_owned(), uid.to_owned()))
                    .map(|first| (*first, "uid"))
            })
            .or_else(|| {
                self.by_name
                    .get(&(kind.to_owned(), namespace.to_owned(), name.to_owned()))
                    .map(|first| (*first, "kind, namespace and name"))
            });
        if let Some((first, same)) = first {
            return Some(format!(
                "{shown} is listed twice, at {file}:{first} and at {file}:{line} (the same {same}); a snapshot lists each object once, or it would count twice (was one kubectl output joined to another?)"
            ));
        }
        if let Some(uid) = uid {
            self.by_uid.insert((kind.to_owned(), uid.to_owned()), line);
        }
        self.by_name.insert(
            (kind.to_owned(), namespace.to_owned(), name.to_owned()),
            line,
        );
        None
    }
}

/// The document must be a List (its items were read as they streamed by) or one object of a
/// kind the guard reads.
fn check_root(root: &yaml::Node, model: &mut Model) -> Result<(), RootError> {
    let yaml::Value::Mapping(entries) = &root.value else {
        return Err(RootError::Found(root.describe()));
    };
    let get = |key: &str| {
        entries
            .iter()
            .find(|(k, _)| matches!(&k.value, yaml::Value::Scalar { text, .. } if text == key))
            .map(|(_, v)| v)
    };
    let kind = get("kind").and_then(|k| match &k.value {
        yaml::Value::Scalar { text, .. } => Some(text.as_str()),
        _ => None,
    });
    match (get("items"), kind) {
        (Some(items), _) => match &items.value {
            yaml::Value::Sequence(_) => Ok(()),
            _ if items.is_null() => Ok(()),
            _ => Err(RootError::Items(items.describe())),
        },
        // `kubectl get` of nothing: a List without items.
        (None, Some(kind)) if kind.ends_with("List") => Ok(()),
        (None, Some(kind)) if KINDS.contains(&kind) => Ok(model.add(&yaml::to_json(root))?),
        (None, Some(kind)) => Err(RootError::Single {
            kind: kind.to_owned(),
        }),
        (None, None) if get("drills").is_some() => Err(RootError::DrillFile),
        (None, None) => Err(RootError::Unkeyed),
    }
}

/// The guard's model, built one object at a time. Pods owned by a ReplicaSet are attributed to
/// its Deployment at the end, when every ReplicaSet has been seen.
#[derive(Default)]
pub struct Model {
    cluster: Cluster,
    /// ReplicaSet (namespace, name) -> its controlling Deployment.
    replica_set_parents: HashMap<(String, String), OwnerRef>,
    /// `firedrill-skips` ConfigMaps, by namespace: see [`Snapshot`].
    skips: Vec<(String, Labels)>,
}

impl Model {
    /// Adds one object; an error names the object and the field.
    pub fn add(&mut self, object: &Value) -> Result<(), ObjectError> {
        let o = Object::new(object)?;
        let cluster = &mut self.cluster;
        let result = match o.kind.as_str() {
            "Namespace" => o.labels().and_then(|labels| {
                cluster.namespaces.push(Namespace {
                    name: o.name.clone(),
                    labels,
                    annotations: o.string_map("/metadata/annotations")?,
                });
                Ok(())
            }),
            "Deployment" | "StatefulSet" => o.replicas("/spec/replicas", 1).and_then(|desired| {
                cluster.owners.push(o.owner(desired)?);
                Ok(())
            }),
            "DaemonSet" => o
                .replicas("/status/desiredNumberScheduled", 0)
                .and_then(|desired| {
                    cluster.owners.push(o.owner(desired)?);
                    Ok(())
                }),
            "ReplicaSet" => o.controller().and_then(|parent| {
                match parent.filter(|p| p.kind == OwnerKind::Deployment) {
                    Some(parent) => {
                        self.replica_set_parents
                            .insert((o.namespace.clone(), o.name.clone()), parent);
                    }
                    None => {
                        let desired = o.replicas("/spec/replicas", 1)?;
                        cluster.owners.push(o.owner(desired)?);
                    }
                }
                Ok(())
            }),
            "PodDisruptionBudget" => o.pdb().map(|pdb| cluster.pdbs.push(pdb)),
            "Pod" => o.pod().map(|pod| {
                let containers: Vec<(String, Option<String>)> = o
                    .value
                    .pointer("/status/containerStatuses")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|c| {
                        let name = c.get("name")?.as_str()?.to_owned();
                        // Only a running container has a process to kill.
                        let running = c.pointer("/state/running").is_some();
                        let id = c
                            .get("containerID")
                            .and_then(Value::as_str)
                            .filter(|_| running)
                            .map(str::to_owned);
                        Some((name, id))
                    })
                    .collect();
                if !containers.is_empty() {
                    cluster
                        .containers
                        .push(firedrill_safety::cluster::PodContainers {
                            namespace: pod.namespace.clone(),
                            pod: pod.name.clone(),
                            containers,
                            host_network: o
                                .value
                                .pointer("/spec/hostNetwork")
                                .and_then(Value::as_bool)
                                .unwrap_or(false),
                        });
                }
                cluster.pods.push(pod)
            }),
            "Node" => o.labels().and_then(|labels| {
                cluster.nodes.push(firedrill_safety::cluster::Node {
                    name: o.name.clone(),
                    unschedulable: o
                        .value
                        .pointer("/spec/unschedulable")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                    ready: is_ready(o.value),
                    labels,
                    allocatable: scheduling::allocatable(o.value)?,
                    taints: scheduling::taints(o.value)?,
                });
                Ok(())
            }),
            "Service" => o.service().map(|service| cluster.services.push(service)),
            // Vetoes of single fires, kept only from the ConfigMap firedrill writes (its name
            // and label): any other ConfigMap is skipped, as the scheduler ignores it.
            "ConfigMap" if o.name == crate::cluster::skips::SKIPS => {
                o.labels().and_then(|labels| {
                    let own = labels
                        .get(firedrill_rollback::LABEL_KIND)
                        .map(String::as_str)
                        == Some(crate::cluster::skips::KIND_SKIPS);
                    if own {
                        self.skips
                            .push((o.namespace.clone(), o.string_map("/data")?));
                    }
                    Ok(())
                })
            }
            _ => Ok(()),
        };
        result.map_err(|field| ObjectError::Field {
            kind: o.kind.clone(),
            namespace: o.namespace.clone(),
            name: o.name.clone(),
            field: Box::new(field),
        })
    }

    pub fn finish(mut self) -> Cluster {
        if !self.replica_set_parents.is_empty() {
            for pod in &mut self.cluster.pods {
                if let Some(owner) = pod
                    .owner
                    .as_mut()
                    .filter(|o| o.kind == OwnerKind::ReplicaSet)
                {
                    let key = (
                        std::mem::take(&mut owner.namespace),
                        std::mem::take(&mut owner.name),
                    );
                    match self.replica_set_parents.get(&key) {
                        Some(parent) => *owner = parent.clone(),
                        None => (owner.namespace, owner.name) = key,
                    }
                }
            }
        }
        self.cluster
    }
}

/// Builds the model from Kubernetes objects; an error names the bad object.
pub fn from_objects(objects: &[&Value]) -> Result<Cluster, ObjectError> {
    let mut model = Model::default();
    for object in objects {
        model.add(object)?;
    }
    Ok(model.finish())
}

/// One object, with the identifying fields read up front.
struct Object<'a> {
    value: &'a Value,
    kind: String,
    namespace: String,
    name: String,
}

impl<'a> Object<'a> {
    fn new(value: &'a Value) -> Result<Self, ObjectError> {
        let text = |pointer: &str| value.pointer(pointer).and_then(Value::as_str);
        let kind = text("/kind").ok_or(ObjectError::NoKind)?.to_owned();
        let name = text("/metadata/name")
            .ok_or_else(|| ObjectError::NoName { kind: kind.clone() })?
            .to_owned();
        let namespace = text("/metadata/namespace").unwrap_or("").to_owned();
        Ok(Object {
            value,
            kind,
            namespace,
            name,
        })
    }

    fn field(pointer: &str) -> String {
        pointer.trim_start_matches('/').replace('/', ".")
    }

    fn string_map(&self, pointer: &str) -> Result<Labels, FieldError> {
        match self.value.pointer(pointer) {
            None | Some(Value::Null) => Ok(Labels::new()),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    Value::Bool(b) => Ok((k.clone(), b.to_string())),
                    Value::Number(n) => Ok((k.clone(), n.to_string())),
                    _ => Err(FieldError::expected(
                        format!("{}.{k}", Self::field(pointer)),
                        "a string",
                    )),
                })
                .collect(),
            Some(_) => Err(FieldError::expected(
                Self::field(pointer),
                "a mapping of strings",
            )),
        }
    }

    fn labels(&self) -> Result<Labels, FieldError> {
        self.string_map("/metadata/labels")
    }

    fn replicas(&self, pointer: &str, default: u32) -> Result<u32, FieldError> {
        match self.value.pointer(pointer) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| FieldError::found(Self::field(pointer), "a whole number", v)),
        }
    }

    fn owner(&self, desired: u32) -> Result<Owner, FieldError> {
        Ok(Owner {
            key: OwnerRef {
                kind: OwnerKind::parse(&self.kind),
                namespace: self.namespace.clone(),
                name: self.name.clone(),
            },
            labels: self.labels()?,
            desired,
        })
    }

    /// The owner reference with `controller: true`, if any.
    fn controller(&self) -> Result<Option<OwnerRef>, FieldError> {
        let Some(refs) = self.value.pointer("/metadata/ownerReferences") else {
            return Ok(None);
        };
        let refs = refs
            .as_array()
            .ok_or_else(|| FieldError::expected("metadata.ownerReferences", "a list"))?;
        for r in refs {
            if r.get("controller").and_then(Value::as_bool) == Some(true) {
                let kind = r.get("kind").and_then(Value::as_str);
                let name = r.get("name").and_then(Value::as_str);
                let (Some(kind), Some(name)) = (kind, name) else {
                    return Err(FieldError::new(
                        "metadata.ownerReferences",
                        FieldProblem::UnnamedController,
                    ));
                };
                return Ok(Some(OwnerRef {
                    kind: OwnerKind::parse(kind),
                    namespace: self.namespace.clone(),
                    name: name.to_owned(),
                }));
            }
        }
        Ok(None)
    }

    fn pod(&self) -> Result<Pod, FieldError> {
        let owner = self.controller()?;
        let terminating = self
            .value
            .pointer("/metadata/deletionTimestamp")
            .is_some_and(|v| !v.is_null());
        let phase = match self.value.pointer("/status/phase") {
            None | Some(Value::Null) => "Unknown".to_owned(),
            Some(Value::String(p)) => p.clone(),
            Some(v) => return Err(FieldError::found("status.phase", "a string", v)),
        };
        let ready = is_ready(self.value);
        let created = match self.value.pointer("/metadata/creationTimestamp") {
            None | Some(Value::Null) => i64::MAX,
            Some(Value::String(t)) => DateTime::parse_from_rfc3339(t)
                .map(|t| t.timestamp())
                .map_err(|_| {
                    FieldError::new(
                        "metadata.creationTimestamp",
                        FieldProblem::NotTime(t.clone()),
                    )
                })?,
            Some(v) => {
                return Err(FieldError::found(
                    "metadata.creationTimestamp",
                    "a string",
                    v,
                ))
            }
        };
        Ok(Pod {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            labels: self.labels()?,
            owner,
            running_and_ready: phase == "Running" && ready && !terminating,
            phase: if terminating {
                "Terminating".to_owned()
            } else {
                phase
            },
            created,
            node: self
                .value
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .map(str::to_owned),
            requests: scheduling::requests(self.value)?,
            placement: scheduling::placement(self.value)?,
        })
    }

    fn int_or_percent(&self, pointer: &str) -> Result<Option<IntOrPercent>, FieldError> {
        match self.value.pointer(pointer) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(|n| Some(IntOrPercent::Int(n)))
                .ok_or_else(|| {
                    FieldError::new(Self::field(pointer), FieldProblem::NotWhole(n.clone()))
                }),
            Some(Value::String(s)) => Percent::parse(s, false)
                .map(|p| Some(IntOrPercent::Percent(p)))
                .map_err(|e| FieldError::new(Self::field(pointer), e.into())),
            Some(v) => Err(FieldError::found(
                Self::field(pointer),
                "a number or a percentage",
                v,
            )),
        }
    }

    fn service(&self) -> Result<firedrill_safety::cluster::Service, FieldError> {
        use firedrill_safety::cluster::{Service, ServicePort};
        let selector = match self.value.pointer("/spec/selector") {
            None | Some(Value::Null) => None,
            Some(_) => Some(self.string_map("/spec/selector")?),
        };
        let mut ports = Vec::new();
        for (i, port) in self
            .value
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let number = port
                .get("port")
                .and_then(Value::as_u64)
                .and_then(|n| u16::try_from(n).ok())
                .ok_or_else(|| {
                    FieldError::expected(format!("spec.ports[{i}].port"), "a port number")
                })?;
            let (target_port, target_port_name) = match port.get("targetPort") {
                None | Some(Value::Null) => (Some(number), None),
                Some(Value::String(name)) => match name.parse::<u16>() {
                    Ok(n) => (Some(n), None),
                    Err(_) => (None, Some(name.clone())),
                },
                Some(v) => (
                    Some(
                        v.as_u64()
                            .and_then(|n| u16::try_from(n).ok())
                            .ok_or_else(|| {
                                FieldError::expected(
                                    format!("spec.ports[{i}].targetPort"),
                                    "a port number or name",
                                )
                            })?,
                    ),
                    None,
                ),
            };
            ports.push(ServicePort {
                name: port.get("name").and_then(Value::as_str).map(str::to_owned),
                port: number,
                target_port,
                target_port_name,
                protocol: port
                    .get("protocol")
                    .and_then(Value::as_str)
                    .unwrap_or("TCP")
                    .to_owned(),
                app_protocol: port
                    .get("appProtocol")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            });
        }
        Ok(Service {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            selector,
            ports,
        })
    }

    fn pdb(&self) -> Result<Pdb, FieldError> {
        let selector = match self.value.pointer("/spec/selector") {
            None | Some(Value::Null) => None,
            Some(s) => Some(label_selector(s).map_err(|e| {
                FieldError::new("spec.selector", FieldProblem::Selector(Box::new(e)))
            })?),
        };
        Ok(Pdb {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            selector,
            min_available: self.int_or_percent("/spec/minAvailable")?,
            max_unavailable: self.int_or_percent("/spec/maxUnavailable")?,
            disruptions_allowed: self
                .value
                .pointer("/status/disruptionsAllowed")
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok()),
        })
    }
}

/// A `metav1.LabelSelector` (matchLabels and matchExpressions) as a selector.
pub fn label_selector(value: &Value) -> Result<Selector, FieldError> {
    let mut selector = Selector::everything();
    if let Some(labels) = value.get("matchLabels").filter(|v| !v.is_null()) {
        let labels = labels
            .as_object()
            .ok_or_else(|| FieldError::expected("matchLabels", "a mapping"))?;
        for (k, v) in labels {
            let v = v
                .as_str()
                .ok_or_else(|| FieldError::expected(format!("matchLabels.{k}"), "a string"))?;
            selector = selector.with(Requirement::Equals(k.clone(), v.to_owned()));
        }
    }
    if let Some(expressions) = value.get("matchExpressions").filter(|v| !v.is_null()) {
        let expressions = expressions
            .as_array()
            .ok_or_else(|| FieldError::expected("matchExpressions", "a list"))?;
        for (i, e) in expressions.iter().enumerate() {
            let key = e
                .get("key")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    FieldError::new(format!("matchExpressions[{i}].key"), FieldProblem::Missing)
                })?
                .to_owned();
            let values: Vec<String> = match e.get("values").filter(|v| !v.is_null()) {
                None => Vec::new(),
                Some(Value::Array(vs)) => vs
                    .iter()
                    .map(|v| {
                        v.as_str().map(str::to_owned).ok_or_else(|| {
                            FieldError::found(format!("matchExpressions[{i}].values"), "strings", v)
                        })
                    })
                    .collect::<Result<_, _>>()?,
                Some(v) => {
                    return Err(FieldError::found(
                        format!("matchExpressions[{i}].values"),
                        "a list",
                        v,
                    ))
                }
            };
            let operator = e.get("operator").and_then(Value::as_str);
            // As the API server validates a LabelSelector: sets for In/NotIn, none for the others.
            match (operator, values.is_empty()) {
                (Some("In" | "NotIn"), true) => {
                    return Err(FieldError::new(
                        format!("matchExpressions[{i}].values"),
                        FieldProblem::NoValues(operator.unwrap_or_default().to_owned()),
                    ))
                }
                (Some("Exists" | "DoesNotExist"), false) => {
                    return Err(FieldError::new(
                        format!("matchExpressions[{i}].values"),
                        FieldProblem::Values(operator.unwrap_or_default().to_owned()),
                    ))
                }
                _ => {}
            }
            let values = values.into_iter().collect();
            let requirement = match operator {
                Some("In") => Requirement::In(key, values),
                Some("NotIn") => Requirement::NotIn(key, values),
                Some("Exists") => Requirement::Exists(key),
                Some("DoesNotExist") => Requirement::DoesNotExist(key),
                other => {
                    return Err(FieldError::new(
                        format!("matchExpressions[{i}].operator"),
                        FieldProblem::Operator(other.map(str::to_owned)),
                    ))
                }
            };
            selector = selector.with(requirement);
        }
    }
    Ok(selector)
}

/// Whether an object (a node, a pod) has the condition `Ready` with status `True`.
fn is_ready(object: &Value) -> bool {
    object
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|conditions| {
            conditions.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some("Ready")
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SNAPSHOT: &str = r#"
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Namespace
    metadata: { name: pake-api, labels: { team: api }, annotations: { firedrill.io/enabled: "true" } }
  - apiVersion: apps/v1
    kind: Deployment
    metadata: { name: api, namespace: pake-api, labels: { app: pake-api } }
    spec: { replicas: 3 }
  - apiVersion: apps/v1
    kind: ReplicaSet
    metadata:
      name: api-7d9f
      namespace: pake-api
      ownerReferences: [{ apiVersion: apps/v1, kind: Deployment, name: api, controller: true, uid: x }]
    spec: { replicas: 3 }
  - apiVersion: v1
    kind: Pod
    metadata:
      name: api-7d9f-abcde
      namespace: pake-api
      labels: { app: pake-api }
      creationTimestamp: "2026-11-01T10:00:00Z"
      ownerReferences: [{ apiVersion: apps/v1, kind: ReplicaSet, name: api-7d9f, controller: true, uid: y }]
    spec: { nodeName: node-1 }
    status:
      phase: Running
      conditions: [{ type: Ready, status: "True" }]
  - apiVersion: v1
    kind: Pod
    metadata:
      name: api-7d9f-zzzzz
      namespace: pake-api
      labels: { app: pake-api }
      deletionTimestamp: "2026-11-02T10:00:00Z"
      ownerReferences: [{ apiVersion: apps/v1, kind: ReplicaSet, name: api-7d9f, controller: true, uid: y }]
    status: { phase: Running, conditions: [{ type: Ready, status: "True" }] }
  - apiVersion: policy/v1
    kind: PodDisruptionBudget
    metadata: { name: api, namespace: pake-api }
    spec:
      minAvailable: "50%"
      selector:
        matchLabels: { app: pake-api }
        matchExpressions: [{ key: tier, operator: NotIn, values: [batch] }]
    status: { disruptionsAllowed: 1 }
  - apiVersion: v1
    kind: Service
    metadata: { name: api, namespace: pake-api }
"#;

    #[test]
    fn a_kubectl_list_becomes_the_guard_model() {
        let c = parse(SNAPSHOT, "snap.yaml").unwrap();
        assert_eq!(c.namespaces.len(), 1);
        assert_eq!(c.namespaces[0].annotations["firedrill.io/enabled"], "true");
        assert_eq!(
            c.owners.len(),
            1,
            "the ReplicaSet folds into its Deployment"
        );
        assert_eq!(c.owners[0].desired, 3);
        let pod = &c.pods[0];
        assert_eq!(
            pod.owner.as_ref().map(ToString::to_string).as_deref(),
            Some("Deployment/pake-api/api")
        );
        assert!(pod.running_and_ready);
        assert_eq!(pod.created, 1_793_527_200);
        assert_eq!(pod.node.as_deref(), Some("node-1"));
        assert!(!c.pods[1].running_and_ready);
        assert_eq!(c.pods[1].phase, "Terminating");
        assert_eq!(
            c.pods[1].created,
            i64::MAX,
            "no creation time reads as brand new"
        );
        let pdb = &c.pdbs[0];
        assert_eq!(
            pdb.min_available,
            Some(IntOrPercent::Percent(Percent::parse("50%", false).unwrap()))
        );
        assert_eq!(pdb.disruptions_allowed, Some(1));
        assert_eq!(
            pdb.selector.as_ref().map(ToString::to_string).as_deref(),
            Some("app=pake-api,tier notin (batch)")
        );
    }

    #[test]
    fn malformed_objects_are_named() {
        let bad = "kind: List\nitems:\n  - kind: Deployment\n    metadata: {name: api, namespace: x}\n    spec: {replicas: many}\n";
        let err = parse(bad, "snap.yaml").unwrap_err().to_string();
        assert_eq!(err, "snap.yaml:3:5: Deployment x/api: spec.replicas: expected a whole number, found \"many\"");
        let err = parse("kind: List\nitems:\n  - metadata: {name: a}\n", "s.yaml")
            .unwrap_err()
            .to_string();
        assert_eq!(err, "s.yaml:3:5: an object without `kind`");
        let err = parse("- a\n- b\n", "s.yaml").unwrap_err().to_string();
        assert!(err.contains("expected a Kubernetes List"), "{err}");
        let pdb = "kind: PodDisruptionBudget\nmetadata: {name: p, namespace: n}\nspec: {maxUnavailable: lots}\n";
        let err = parse(pdb, "s.yaml").unwrap_err().to_string();
        assert!(err.starts_with("s.yaml:1:1: PodDisruptionBudget n/p: spec.maxUnavailable: \"lots\" is not a percentage"), "{err}");
    }

    #[test]
    fn requests_allocatable_taints_and_placement_are_read() {
        let text = r#"
kind: List
items:
  - kind: Node
    metadata: { name: n1, labels: { pool: std } }
    spec: { taints: [{ key: gpu, value: "yes", effect: NoSchedule }] }
    status: { allocatable: { cpu: 3920m, memory: 15Gi, pods: "110" } }
  - kind: Node
    metadata: { name: n2 }
    status: { allocatable: { cpu: "4" } }
  - kind: Pod
    metadata: { name: p, namespace: a }
    spec:
      nodeSelector: { pool: std }
      containers:
        - { name: a, resources: { requests: { cpu: 250m, memory: 128Mi } } }
        - { name: b, resources: { requests: { cpu: 1 } } }
        - { name: c }
      initContainers:
        - { name: i, resources: { requests: { memory: 1Gi } } }
      tolerations: [{ key: gpu, operator: Exists, effect: NoSchedule }]
      affinity:
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms:
              - matchExpressions: [{ key: cores, operator: Gt, values: ["2"] }]
"#;
        let c = parse(text, "s.yaml").unwrap();
        use firedrill_safety::cluster::{NodeOperator, Resources, TaintEffect};
        let n1 = &c.nodes[0];
        assert_eq!(
            n1.allocatable,
            Some(Resources {
                cpu_millis: 3920,
                memory_bytes: 15 << 30
            })
        );
        assert_eq!(n1.taints[0].effect, TaintEffect::NoSchedule);
        assert_eq!(
            c.nodes[1].allocatable, None,
            "no memory given: capacity unknown"
        );
        let p = &c.pods[0];
        assert_eq!(
            p.requests,
            Resources {
                cpu_millis: 1250,
                memory_bytes: 1 << 30
            },
            "containers summed; the init container's memory is more"
        );
        assert_eq!(p.placement.node_selector["pool"], "std");
        assert!(p.placement.tolerations[0].exists);
        let terms = p.placement.affinity.as_ref().unwrap();
        assert_eq!(terms[0].expressions[0].operator, NodeOperator::Gt(2));
    }

    #[test]
    fn a_quantity_that_does_not_parse_names_the_object_and_field() {
        let pod = "kind: Pod\nmetadata: {name: p, namespace: a}\nspec: {containers: [{name: a, resources: {requests: {memory: lots}}}]}\n";
        let err = parse(pod, "s.yaml").unwrap_err().to_string();
        assert_eq!(err, "s.yaml:1:1: Pod a/p: spec.containers[0].resources.requests.memory: \"lots\" is not a quantity (write e.g. 500m or 2 for CPU, 128Mi, 1Gi or 1G for memory)");
        let node = "kind: Node\nmetadata: {name: n1}\nstatus: {allocatable: {cpu: 4 cores, memory: 16Gi}}\n";
        let err = parse(node, "s.yaml").unwrap_err().to_string();
        assert!(
            err.starts_with(
                "s.yaml:1:1: Node n1: status.allocatable.cpu: \"4 cores\" is not a quantity"
            ),
            "{err}"
        );
        let taint = "kind: Node\nmetadata: {name: n1}\nspec: {taints: [{key: k, effect: NoRun}]}\n";
        let err = parse(taint, "s.yaml").unwrap_err().to_string();
        assert!(
            err.ends_with("Node n1: spec.taints[0].effect: \"NoRun\" is not NoSchedule, PreferNoSchedule or NoExecute"),
            "{err}"
        );
        let gt = "kind: Pod\nmetadata: {name: p, namespace: a}\nspec: {affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: k, operator: Gt, values: [x]}]}]}}}}\n";
        let err = parse(gt, "s.yaml").unwrap_err().to_string();
        assert!(
            err.ends_with(
                "nodeSelectorTerms[0].matchExpressions[0].values: Gt takes one whole number"
            ),
            "{err}"
        );
    }

    #[test]
    fn every_bad_object_is_reported_not_just_the_first() {
        let bad = "kind: List\nitems:\n  - kind: Deployment\n    metadata: {name: a, namespace: x}\n    spec: {replicas: many}\n  - kind: Pod\n    metadata: {name: p, namespace: x, creationTimestamp: yesterday}\n  - kind: Namespace\n    metadata: {name: ok}\n";
        let err = parse(bad, "s.yaml").unwrap_err().to_string();
        assert_eq!(
            err,
            "s.yaml:3:5: Deployment x/a: spec.replicas: expected a whole number, found \"many\"\n\
             s.yaml:6:5: Pod x/p: metadata.creationTimestamp: \"yesterday\" is not an RFC 3339 time (e.g. 2026-11-01T10:00:00Z)"
        );
    }

    #[test]
    fn an_object_listed_twice_is_refused_naming_both_lines() {
        // Issue #21: a pod listed four times counted four times toward its budget.
        let pod = |uid: &str, name: &str| {
            format!("  - kind: Pod\n    metadata: {{name: {name}, namespace: api, uid: {uid}}}\n    status: {{phase: Running}}\n")
        };
        let text = format!(
            "kind: List\nitems:\n{}{}{}{}",
            pod("u1", "api-0"),
            pod("u2", "api-1"),
            pod("u1", "api-0"),
            pod("u3", "api-1"),
        );
        let err = parse(&text, "s.yaml").unwrap_err().to_string();
        assert_eq!(
            err,
                "s.yaml:9:5: Pod api/api-0 is listed twice, at s.yaml:3 and at s.yaml:9 (the same uid); a snapshot lists each object once, or it would count twice (was one kubectl output joined to another?)\n\
                 s.yaml:12:5: Pod api/api-1 is listed twice, at s.yaml:6 and at s.yaml:12 (the same kind, namespace and name); a snapshot lists each object once, or it would count twice (was one kubectl output joined to another?)"
        );
        // The same name in another kind or namespace is another object.
        // One uid on objects of different kinds is no repeat either.
        let distinct = "kind: List\nitems:\n  - {kind: Namespace, metadata: {name: api, uid: x}}\n  - {kind: Service, metadata: {name: api, namespace: api, uid: x}}\n  - {kind: Service, metadata: {name: api, namespace: web}}\n  - {kind: Deployment, metadata: {name: api, namespace: api, uid: x}}\n";
        assert!(parse(distinct, "s.yaml").is_ok());
        let twice = "kind: List\nitems:\n  - {kind: Namespace, metadata: {name: api}}\n  - {kind: Namespace, metadata: {name: api}}\n";
        let err = parse(twice, "s.yaml").unwrap_err().to_string();
        assert!(
            err.starts_with(
                "s.yaml:4:5: Namespace api is listed twice, at s.yaml:3 and at s.yaml:4"
            ),
            "{err}"
        );
    }

    #[test]
    fn what_is_not_a_snapshot_says_so() {
        let cases: &[(&str, &str)] = &[
            (
                "",
                "s.yaml:1:1: the snapshot is empty; expected the output of `kubectl get",
            ),
            (
                "- a\n- b\n",
                "s.yaml:1:1: expected a Kubernetes List (the output of `kubectl get",
            ),
            (
                "kind: ConfigMap\nmetadata: {name: c}\n",
                "found a single ConfigMap (a snapshot holds Namespace, Deployment",
            ),
            (
                "drills:\n  - name: x\n",
                "found a drill file (give the drill file with --config",
            ),
            (
                "kind: List\nitems: 3\n",
                "items: expected a list of Kubernetes objects, found \"3\"",
            ),
            (
                "kind: List\nitems: []\n---\nkind: List\nitems: []\n",
                "s.yaml:3:1: a cluster snapshot holds one YAML document; remove the second `---`",
            ),
        ];
        for (text, expected) in cases {
            let err = parse(text, "s.yaml").unwrap_err().to_string();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
        // One object of a kind the guard reads is a snapshot of one.
        let one = parse("kind: Namespace\nmetadata: {name: solo}\n", "s.yaml").unwrap();
        assert_eq!(one.namespaces[0].name, "solo");
    }

    #[test]
    fn an_alias_bomb_in_a_snapshot_stops_at_the_node_limit() {
        let mut text = String::from("kind: List\nitems:\n  - kind: Namespace\n    metadata:\n      name: n\n      labels:\n        a: &a [x,x,x,x,x,x,x,x,x]\n");
        let mut previous = "a".to_owned();
        for name in ["b", "c", "d", "e", "f", "g", "h", "i"] {
            text.push_str(&format!(
                "        {name}: &{name} [{}]\n",
                vec![format!("*{previous}"); 9].join(",")
            ));
            previous = name.to_owned();
        }
        let err = parse(&text, "s.yaml").unwrap_err().to_string();
        assert!(
            err.contains("more than 1000000 YAML nodes in one object"),
            "{err}"
        );
        let deep = format!(
            "kind: List\nitems:\n  - {}{}\n",
            "[".repeat(100),
            "]".repeat(100)
        );
        let err = parse(&deep, "s.yaml").unwrap_err().to_string();
        assert!(err.contains("nested deeper than 64 levels"), "{err}");
    }

    #[test]
    fn label_selectors_are_as_strict_as_the_api_server() {
        let bad: &[(serde_json::Value, &str)] = &[
            (
                serde_json::json!({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": []}]}),
                "NotIn needs at least one value",
            ),
            (
                serde_json::json!({"matchExpressions": [{"key": "app", "operator": "In"}]}),
                "In needs at least one value",
            ),
            (
                serde_json::json!({"matchExpressions": [{"key": "app", "operator": "Exists", "values": ["x"]}]}),
                "Exists takes no values",
            ),
            (
                serde_json::json!({"matchExpressions": [{"key": "app", "operator": "In", "values": [1]}]}),
                "expected strings",
            ),
        ];
        for (selector, message) in bad {
            let err = label_selector(selector).unwrap_err().to_string();
            assert!(err.contains(message), "{selector}: {err}");
        }
    }

    #[test]
    fn anchors_across_objects_count_over_the_whole_snapshot() {
        let mut text = String::from("kind: List\nitems:\n");
        for i in 0..8 {
            text.push_str(&format!(
                "  - &p{i} {{ kind: Namespace, metadata: {{ name: n{i} }}, spec: [{}] }}\n",
                vec!["x"; 200_000].join(",")
            ));
        }
        let err = parse(&text, "s.yaml").unwrap_err().to_string();
        assert!(
            err.contains("anchors hold more than 1000000 YAML nodes"),
            "{err}"
        );
        // A List of nothing is an empty cluster, not an error.
        assert_eq!(
            parse("apiVersion: v1\nkind: List\n", "s.yaml").unwrap(),
            Cluster::default()
        );
    }
}
