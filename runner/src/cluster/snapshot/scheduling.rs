//! What the scheduler reads of pods and nodes, for the guard's capacity check: a pod's requests
//! and the nodes it may run on, a node's allocatable and taints. A quantity that does not parse
//! is an error naming the field; an absent request is 0, as Kubernetes schedules.

use firedrill_safety::cluster::{
    NodeOperator, NodeRequirement, NodeSelectorTerm, Placement, Resources, Taint, TaintEffect,
    Toleration,
};
use firedrill_safety::quantity;
use serde_json::Value;

use super::{FieldError, FieldProblem};

/// The items of the list at `pointer` (none when absent), or an error naming `field`.
fn list<'a>(value: &'a Value, pointer: &str, field: &str) -> Result<&'a [Value], FieldError> {
    match value.pointer(pointer) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(v) => Err(FieldError::found(field, "a list", v)),
    }
}

fn text<'a>(
    value: &'a Value,
    key: &str,
    field: impl Fn() -> String,
) -> Result<&'a str, FieldError> {
    match value.get(key) {
        None | Some(Value::Null) => Ok(""),
        Some(Value::String(s)) => Ok(s),
        Some(v) => Err(FieldError::found(field(), "a string", v)),
    }
}

/// One quantity (a string, or a bare number as YAML writes `cpu: 2`), or 0 when absent.
fn amount(
    value: Option<&Value>,
    field: String,
    parse: fn(&str) -> Result<u64, firedrill_safety::QuantityError>,
) -> Result<u64, FieldError> {
    let text = match value {
        None | Some(Value::Null) => return Ok(0),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(v) => return Err(FieldError::found(field, "a quantity", v)),
    };
    parse(&text).map_err(|e| FieldError::new(field, FieldProblem::Resource(e)))
}

/// CPU and memory of a `requests` (or `allocatable`) mapping at `field`.
fn resources(value: Option<&Value>, field: &str) -> Result<Resources, FieldError> {
    let get = |key: &str| value.and_then(|v| v.get(key));
    Ok(Resources {
        cpu_millis: amount(get("cpu"), format!("{field}.cpu"), quantity::cpu_millis)?,
        memory_bytes: amount(get("memory"), format!("{field}.memory"), quantity::bytes)?,
    })
}

/// A pod's requests as the scheduler counts them: its containers' summed, or its largest init
/// container's when that is more (sidecars, init containers that keep running, add to the
/// sum), plus the pod's `overhead`.
pub(super) fn requests(pod: &Value) -> Result<Resources, FieldError> {
    let mut sum = Resources::default();
    let add = |sum: &mut Resources, r: Resources| {
        sum.cpu_millis = sum.cpu_millis.saturating_add(r.cpu_millis);
        sum.memory_bytes = sum.memory_bytes.saturating_add(r.memory_bytes);
    };
    for (i, c) in list(pod, "/spec/containers", "spec.containers")?
        .iter()
        .enumerate()
    {
        let field = format!("spec.containers[{i}].resources.requests");
        add(
            &mut sum,
            resources(c.pointer("/resources/requests"), &field)?,
        );
    }
    let mut init = Resources::default();
    for (i, c) in list(pod, "/spec/initContainers", "spec.initContainers")?
        .iter()
        .enumerate()
    {
        let field = format!("spec.initContainers[{i}].resources.requests");
        let r = resources(c.pointer("/resources/requests"), &field)?;
        if c.get("restartPolicy").and_then(Value::as_str) == Some("Always") {
            add(&mut sum, r);
        } else {
            init.cpu_millis = init.cpu_millis.max(r.cpu_millis);
            init.memory_bytes = init.memory_bytes.max(r.memory_bytes);
        }
    }
    sum.cpu_millis = sum.cpu_millis.max(init.cpu_millis);
    sum.memory_bytes = sum.memory_bytes.max(init.memory_bytes);
    let overhead = resources(pod.pointer("/spec/overhead"), "spec.overhead")?;
    add(&mut sum, overhead);
    Ok(sum)
}

/// A node's `status.allocatable`; `None` unless it gives both CPU and memory.
pub(super) fn allocatable(node: &Value) -> Result<Option<Resources>, FieldError> {
    let Some(given) = node.pointer("/status/allocatable").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    if given.get("cpu").is_none() || given.get("memory").is_none() {
        return Ok(None);
    }
    resources(Some(given), "status.allocatable").map(Some)
}

fn effect(value: &Value, field: impl Fn() -> String) -> Result<Option<TaintEffect>, FieldError> {
    match text(value, "effect", &field)? {
        "" => Ok(None),
        e => TaintEffect::parse(e)
            .map(Some)
            .ok_or_else(|| FieldError::new(field(), FieldProblem::Effect(e.to_owned()))),
    }
}

pub(super) fn taints(node: &Value) -> Result<Vec<Taint>, FieldError> {
    list(node, "/spec/taints", "spec.taints")?
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let field = |name: &str| format!("spec.taints[{i}].{name}");
            Ok(Taint {
                key: text(t, "key", || field("key"))?.to_owned(),
                value: text(t, "value", || field("value"))?.to_owned(),
                effect: effect(t, || field("effect"))?
                    .ok_or_else(|| FieldError::new(field("effect"), FieldProblem::Missing))?,
            })
        })
        .collect()
}

/// Where a pod may be placed again: nodeSelector, required node affinity, tolerations.
pub(super) fn placement(pod: &Value) -> Result<Placement, FieldError> {
    let mut node_selector = firedrill_safety::cluster::Labels::new();
    match pod.pointer("/spec/nodeSelector") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (k, v) in map {
                let v = v.as_str().ok_or_else(|| {
                    FieldError::found(format!("spec.nodeSelector.{k}"), "a string", v)
                })?;
                node_selector.insert(k.clone(), v.to_owned());
            }
        }
        Some(v) => return Err(FieldError::found("spec.nodeSelector", "a mapping", v)),
    }
    const REQUIRED: &str =
        "/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution";
    let affinity = match pod.pointer(REQUIRED).filter(|v| !v.is_null()) {
        None => None,
        Some(required) => {
            let field = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms";
            let terms = list(required, "/nodeSelectorTerms", field)?;
            Some(
                terms
                    .iter()
                    .enumerate()
                    .map(|(i, t)| term(t, &format!("{field}[{i}]")))
                    .collect::<Result<_, _>>()?,
            )
        }
    };
    let tolerations = list(pod, "/spec/tolerations", "spec.tolerations")?
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let field = |name: &str| format!("spec.tolerations[{i}].{name}");
            let exists = match text(t, "operator", || field("operator"))? {
                "" | "Equal" => false,
                "Exists" => true,
                other => {
                    return Err(FieldError::new(
                        field("operator"),
                        FieldProblem::Toleration(other.to_owned()),
                    ))
                }
            };
            Ok(Toleration {
                key: text(t, "key", || field("key"))?.to_owned(),
                exists,
                value: text(t, "value", || field("value"))?.to_owned(),
                effect: effect(t, || field("effect"))?,
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(Placement {
        node_selector,
        affinity,
        tolerations,
    })
}

fn term(value: &Value, field: &str) -> Result<NodeSelectorTerm, FieldError> {
    let requirements = |key: &str| -> Result<Vec<NodeRequirement>, FieldError> {
        let field = format!("{field}.{key}");
        list(value, &format!("/{key}"), &field)?
            .iter()
            .enumerate()
            .map(|(i, r)| requirement(r, &format!("{field}[{i}]")))
            .collect()
    };
    Ok(NodeSelectorTerm {
        expressions: requirements("matchExpressions")?,
        fields: requirements("matchFields")?,
    })
}

fn requirement(value: &Value, field: &str) -> Result<NodeRequirement, FieldError> {
    let key = text(value, "key", || format!("{field}.key"))?;
    if key.is_empty() {
        return Err(FieldError::new(
            format!("{field}.key"),
            FieldProblem::Missing,
        ));
    }
    let values_field = format!("{field}.values");
    let values: Vec<String> = list(value, "/values", &values_field)?
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| FieldError::found(values_field.as_str(), "strings", v))
        })
        .collect::<Result<_, _>>()?;
    let operator = text(value, "operator", || format!("{field}.operator"))?;
    let number = || {
        match values.as_slice() {
            [one] => one.parse::<i64>().map_err(|_| ()),
            _ => Err(()),
        }
        .map_err(|()| {
            FieldError::new(
                values_field.as_str(),
                FieldProblem::OneWhole(operator.to_owned()),
            )
        })
    };
    let needs_values = |op: fn(Vec<String>) -> NodeOperator| {
        if values.is_empty() {
            Err(FieldError::new(
                values_field.as_str(),
                FieldProblem::NoValues(operator.to_owned()),
            ))
        } else {
            Ok(op(values.clone()))
        }
    };
    let no_values = |op: NodeOperator| {
        if values.is_empty() {
            Ok(op)
        } else {
            Err(FieldError::new(
                values_field.as_str(),
                FieldProblem::Values(operator.to_owned()),
            ))
        }
    };
    let operator = match operator {
        "In" => needs_values(NodeOperator::In)?,
        "NotIn" => needs_values(NodeOperator::NotIn)?,
        "Exists" => no_values(NodeOperator::Exists)?,
        "DoesNotExist" => no_values(NodeOperator::DoesNotExist)?,
        "Gt" => NodeOperator::Gt(number()?),
        "Lt" => NodeOperator::Lt(number()?),
        other => {
            return Err(FieldError::new(
                format!("{field}.operator"),
                FieldProblem::NodeOperator(other.to_owned()),
            ))
        }
    };
    Ok(NodeRequirement {
        key: key.to_owned(),
        operator,
    })
}
