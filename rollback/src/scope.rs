//! What firedrill's own planners ever write, per undo record: a replay (and an apply) refuses
//! anything else, signed or not. The ledger lives in a ConfigMap that others may be able to
//! write; firedrill's rights must not become theirs (ARCHITECTURE.md, principle "No confused
//! deputy"). Pure: the runner builds a [`Scope`] from the drill file, this judges records.
//!
//! The allow-list is derived from every `Step::` and `UndoRecord::` the planners in
//! `experiments/src/*.rs` and the executor build (the tests in `experiments` pin it against
//! them):
//!
//! | record             | planners                                  | allowed                                          |
//! |--------------------|-------------------------------------------|--------------------------------------------------|
//! | `delete-created`   | helper, stress and proxy Pods, partition, block and isolation NetworkPolicies, the upstream Service, the proxy Deployment | Pod, NetworkPolicy, Service, Deployment named `firedrill-…` |
//! | `restore-field`    | partition and block mark pods             | Pod `/metadata/labels/firedrill.io~1partition`, prior absent, applied a label value |
//! | `uncordon`         | node-drain                                | a Node                                           |
//! | `restore-replicas` | scale-to-zero, region isolation           | Deployment or StatefulSet, 0..=[`MAX_REPLICAS`]  |
//! | `restore-selector` | http-fault                                | Service, valid labels, applied `{firedrill.io/proxy: …}` |
//! | `external`         | region failover; the executor's promotion | `route53` in a zone, record and endpoint the drill file declares; `promotion` (never undone) |
//! | `recreated`        | pod-kill, node-drain                      | a Pod and its `Kind/name` owner (nothing is undone) |
//!
//! Protected namespaces are the runner's [`crate::Guard`]'s; this is in addition.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::object::{ObjectKind, ObjectRef};
use crate::undo::UndoRecord;

/// A JSON object's fields, as an external record holds them.
type Fields = serde_json::Map<String, Value>;

/// The label that marks the pods a partition (or a dependency block) isolates.
pub const PARTITION_LABEL: &str = "firedrill.io/partition";
/// The label the http-fault proxy's pods carry; a swapped Service selects on it alone.
pub const PROXY_LABEL: &str = "firedrill.io/proxy";
/// The external system of region failover's DNS changes.
pub const ROUTE53: &str = "route53";
/// The external "system" of a database promotion: recorded, never undone.
pub const PROMOTION: &str = "promotion";
/// Every object firedrill creates is named with this prefix.
pub const CREATED_PREFIX: &str = "firedrill-";
/// The most replicas a revert restores. Scale-to-zero records the count it found; a workload
/// above this is refused when the drill applies (so it is never scaled down either).
pub const MAX_REPLICAS: i64 = 10_000;
/// The longest wait for a Route 53 change a record may carry (a drill file allows less).
const MAX_WAIT_SECONDS: i64 = 3_600;

/// The kinds firedrill creates (and so may delete).
const CREATED_KINDS: [ObjectKind; 4] = [
    ObjectKind::Deployment,
    ObjectKind::NetworkPolicy,
    ObjectKind::Pod,
    ObjectKind::Service,
];

/// What a replay may act on besides Kubernetes objects: the DNS the drill file declares.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    /// Route 53 record sets and health checks of the drill file's region drills; `None`: no
    /// drill file was given, so no external record can be shown to be declared.
    pub dns: Option<Vec<DeclaredDns>>,
}

/// One region drill's `fault.dns`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeclaredDns {
    /// The drill that declares it, for messages.
    pub drill: String,
    pub zone: String,
    pub name: String,
    pub record_type: String,
    /// Each region's `set_identifier`.
    pub set_identifiers: BTreeSet<String>,
    /// Each region's `health_check`.
    pub health_checks: BTreeSet<String>,
    /// The endpoints a record may name: the declared one; with none declared, AWS's (`None`)
    /// and `FIREDRILL_ROUTE53_ENDPOINT` where it is set.
    pub endpoints: BTreeSet<Option<String>>,
}

impl Scope {
    /// `stop` or `rollback` without `--config`: Kubernetes records are judged as always; external
    /// ones are refused, saying how to give the file.
    pub fn without_drill_file() -> Scope {
        Scope { dns: None }
    }
}

/// Why an undo record is not something firedrill's planners write: what, and why, for people
/// (a ledger entry refused before anything acts on it).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct OutOfScope(pub String);

impl From<String> for OutOfScope {
    fn from(why: String) -> Self {
        OutOfScope(why)
    }
}

impl From<&str> for OutOfScope {
    fn from(why: &str) -> Self {
        OutOfScope(why.to_owned())
    }
}

/// Whether `undo` is something firedrill's planners write, judged with `scope`; `Err` says what
/// is not and why.
pub fn within(undo: &UndoRecord, scope: &Scope) -> Result<(), OutOfScope> {
    match undo {
        UndoRecord::DeleteCreated { target } => {
            object(target, &CREATED_KINDS, "delete-created")?;
            if !target.name.starts_with(CREATED_PREFIX) {
                return Err(format!(
                    "delete-created names {target}, but everything firedrill creates is named {CREATED_PREFIX}…"
                ).into());
            }
            Ok(())
        }
        UndoRecord::RestoreField {
            target,
            path,
            prior,
            applied,
        } => {
            object(target, &[ObjectKind::Pod], "restore-field")?;
            let segments = pointer(path)?;
            if segments != ["metadata", "labels", PARTITION_LABEL] {
                return Err(format!(
                    "restore-field path {path:?} on {target} is not a field firedrill sets (only /metadata/labels/{} on a Pod)",
                    PARTITION_LABEL.replace('/', "~1")
                ).into());
            }
            if let Some(prior) = prior {
                return Err(format!(
                    "restore-field on {target} would set {PARTITION_LABEL} to {prior}; firedrill only removes the label it added"
                ).into());
            }
            match applied {
                Some(Value::String(v)) if label_value(v) => Ok(()),
                other => Err(format!(
                    "restore-field on {target}: applied {} is not a label value",
                    other
                        .as_ref()
                        .map_or("(absent)".to_owned(), Value::to_string)
                )
                .into()),
            }
        }
        UndoRecord::Uncordon { node, .. } => {
            object(&ObjectRef::node(node), &[ObjectKind::Node], "uncordon")
        }
        UndoRecord::RestoreReplicas {
            target,
            prior,
            applied,
            hpa,
        } => {
            object(
                target,
                &[ObjectKind::Deployment, ObjectKind::StatefulSet],
                "restore-replicas",
            )?;
            for (what, n) in [("prior", prior), ("applied", applied)] {
                if !(0..=MAX_REPLICAS).contains(n) {
                    return Err(format!(
                        "restore-replicas on {target}: {what} {n} is not a replica count firedrill restores (0 to {MAX_REPLICAS})"
                    ).into());
                }
            }
            match hpa {
                Some(h) if !dns_subdomain(h) => Err(format!(
                    "restore-replicas on {target}: hpa {h:?} is not an object name"
                )
                .into()),
                _ => Ok(()),
            }
        }
        UndoRecord::RestoreSelector {
            service,
            prior,
            applied,
        } => {
            object(service, &[ObjectKind::Service], "restore-selector")?;
            labels(prior).map_err(|e| format!("restore-selector on {service}: prior {e}"))?;
            match applied.iter().collect::<Vec<_>>().as_slice() {
                [(k, v)] if k.as_str() == PROXY_LABEL && label_value(v) => Ok(()),
                _ => Err(format!(
                    "restore-selector on {service}: applied {applied:?} is not the selector firedrill sets (only {PROXY_LABEL})"
                ).into()),
            }
        }
        UndoRecord::External { system, record } => external(system, record, scope),
        UndoRecord::Recreated { pod, owner } => {
            object(pod, &[ObjectKind::Pod], "recreated")?;
            match owner.split_once('/') {
                Some((kind, name))
                    if !kind.is_empty()
                        && kind.bytes().all(|b| b.is_ascii_alphanumeric())
                        && dns_subdomain(name) =>
                {
                    Ok(())
                }
                _ => Err(format!("recreated {pod}: owner {owner:?} is not Kind/name").into()),
            }
        }
    }
}

/// The kind is one of `kinds`, the namespace is there exactly when the kind has one, and the
/// names are names.
fn object(target: &ObjectRef, kinds: &[ObjectKind], record: &str) -> Result<(), OutOfScope> {
    if !kinds.contains(&target.kind) {
        let allowed: Vec<String> = kinds.iter().map(ToString::to_string).collect();
        return Err(format!(
            "{record} names {target}, a kind firedrill never changes this way (only {})",
            allowed.join(", ")
        )
        .into());
    }
    match (&target.namespace, target.kind.is_namespaced()) {
        (Some(ns), true) if dns_label(ns) => {}
        (None, false) => {}
        (Some(ns), true) => {
            return Err(format!("{record}: namespace {ns:?} is not a namespace").into())
        }
        (None, true) => return Err(format!("{record} names {target} without a namespace").into()),
        (Some(_), false) => return Err(format!("{record} names {target} with a namespace").into()),
    }
    if !dns_subdomain(&target.name) {
        return Err(format!("{record}: name {:?} is not an object name", target.name).into());
    }
    Ok(())
}

/// A JSON pointer's segments, refusing what firedrill never writes: no leading `/`, empty
/// segments, `.` or `..`, a `~` that is not `~0` or `~1`, or a spelling that decodes to the
/// same segments differently (only the canonical encoding is accepted).
fn pointer(path: &str) -> Result<Vec<String>, OutOfScope> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err(format!("path {path:?} is not a JSON pointer (it must start with /)").into());
    };
    let mut segments = Vec::new();
    for raw in rest.split('/') {
        if raw.is_empty() {
            return Err(format!("path {path:?} has an empty segment").into());
        }
        let mut decoded = String::new();
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            match (c, c == '~') {
                (_, false) => decoded.push(c),
                (_, true) => match chars.next() {
                    Some('0') => decoded.push('~'),
                    Some('1') => decoded.push('/'),
                    _ => return Err(format!("path {path:?} has a ~ that is not ~0 or ~1").into()),
                },
            }
        }
        if decoded == "." || decoded == ".." || decoded.split('/').any(|p| p == "..") {
            return Err(format!("path {path:?} has a . or .. segment").into());
        }
        if decoded.replace('~', "~0").replace('/', "~1") != raw {
            return Err(format!("path {path:?} is not canonically escaped").into());
        }
        segments.push(decoded);
    }
    Ok(segments)
}

/// An external record is one of the systems firedrill changes, with only the fields it writes.
fn external(system: &str, record: &Value, scope: &Scope) -> Result<(), OutOfScope> {
    let Some(fields) = record.as_object() else {
        return Err(format!("external {system} record is not an object").into());
    };
    match system {
        PROMOTION => promotion(fields),
        ROUTE53 => {
            only_fields(system, fields, &["target", "prior", "applied", "settings"])?;
            route53(record, scope)
        }
        other => Err(format!(
            "external system {other:?} is not one firedrill changes ({ROUTE53}, {PROMOTION})"
        )
        .into()),
    }
}

/// The record holds no field outside `allowed`.
fn only_fields(system: &str, fields: &Fields, allowed: &[&str]) -> Result<(), OutOfScope> {
    match fields.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => {
            Err(format!("external {system} record has a field {k:?} firedrill never writes").into())
        }
        None => Ok(()),
    }
}

/// A promotion record is the note firedrill writes: `irreversible`, `from` and `to`, as text.
fn promotion(fields: &Fields) -> Result<(), OutOfScope> {
    only_fields(PROMOTION, fields, &["irreversible", "from", "to"])?;
    if !fields.values().all(Value::is_string) || !fields.contains_key("irreversible") {
        return Err(
            "external promotion record is not the note firedrill writes (irreversible, from, to as text)"
                .to_owned()
                .into(),
        );
    }
    Ok(())
}

/// A Route 53 record names a health check or a record set, at an endpoint, that the drill file
/// declares.
fn route53(record: &Value, scope: &Scope) -> Result<(), OutOfScope> {
    let target = record
        .get("target")
        .and_then(Value::as_object)
        .ok_or("external route53 record has no target")?;
    let endpoint = match target.get("endpoint") {
        None | Some(Value::Null) => None,
        Some(Value::String(e)) => Some(e.clone()),
        Some(other) => return Err(format!("route53 endpoint {other} is not a URL").into()),
    };
    match target.get("health_check") {
        Some(id) => health_check(id.as_str().unwrap_or(""), target, &endpoint, record, scope),
        None => record_set(target, &endpoint, record, scope),
    }
}

/// The drill file's DNS declarations; without a drill file nothing external is in scope.
fn declared<'s>(scope: &'s Scope, what: &str) -> Result<&'s Vec<DeclaredDns>, OutOfScope> {
    scope.dns.as_ref().ok_or_else(|| {
        OutOfScope(format!(
            "external record {what}: no drill file given to show it is declared; rerun with --config FILE"
        ))
    })
}

/// A health check firedrill inverts: declared there, with prior and applied each
/// `{"inverted": bool}`.
fn health_check(
    id: &str,
    target: &Fields,
    endpoint: &Option<String>,
    record: &Value,
    scope: &Scope,
) -> Result<(), OutOfScope> {
    let what = format!("of route53 health check {id:?}");
    let keys_ok = target
        .keys()
        .all(|k| k == "health_check" || k == "endpoint");
    if !keys_ok {
        return Err(format!(
            "external record {what}: its target has fields firedrill never writes"
        )
        .into());
    }
    let dns = declared(scope, &what)?;
    if !dns
        .iter()
        .any(|d| d.health_checks.contains(id) && d.endpoints.contains(endpoint))
    {
        return Err(format!(
            "external record {what} at endpoint {}: no drill in the drill file declares that health check there",
            endpoint.as_deref().unwrap_or("(AWS)")
        ).into());
    }
    for key in ["prior", "applied"] {
        let state = record.get(key).and_then(Value::as_object);
        let ok =
            state.is_some_and(|s| s.len() == 1 && s.get("inverted").is_some_and(Value::is_boolean));
        if !ok {
            return Err(format!(
                "external record {what}: {key} is not {{\"inverted\": true|false}}"
            )
            .into());
        }
    }
    Ok(())
}

/// A weighted record set firedrill shifts: declared there (zone, name, type, set identifier,
/// endpoint), a bounded wait, and prior and applied states of that same record set.
fn record_set(
    target: &Fields,
    endpoint: &Option<String>,
    record: &Value,
    scope: &Scope,
) -> Result<(), OutOfScope> {
    let text = |key: &str| target.get(key).and_then(Value::as_str).unwrap_or("");
    let what = format!(
        "in zone {} ({} {} set {})",
        text("zone"),
        text("name"),
        text("type"),
        text("set_identifier")
    );
    let allowed = [
        "zone",
        "name",
        "type",
        "set_identifier",
        "wait_seconds",
        "endpoint",
    ];
    if target.keys().any(|k| !allowed.contains(&k.as_str())) {
        return Err(format!(
            "external record {what}: its target has fields firedrill never writes"
        )
        .into());
    }
    let dns = declared(scope, &what)?;
    let matches = |d: &DeclaredDns| {
        d.zone == text("zone")
            && same_name(&d.name, text("name"))
            && d.record_type == text("type")
            && d.set_identifiers.contains(text("set_identifier"))
            && d.endpoints.contains(endpoint)
    };
    if !dns.iter().any(matches) {
        return Err(format!(
            "external record {what} at endpoint {}: no drill in the drill file declares it",
            endpoint.as_deref().unwrap_or("(AWS)")
        )
        .into());
    }
    match target.get("wait_seconds") {
        None => {}
        Some(w)
            if w.as_i64()
                .is_some_and(|w| (0..=MAX_WAIT_SECONDS).contains(&w)) => {}
        Some(w) => {
            return Err(format!(
                "external record {what}: wait_seconds {w} is not 0 to {MAX_WAIT_SECONDS}"
            )
            .into())
        }
    }
    for key in ["prior", "applied"] {
        record_set_state(target, record.get(key), key, &what)?;
    }
    Ok(())
}

/// A record set's `prior` or `applied` state names the target's record set (name, type, set
/// identifier) and a weight of 0 to 255, if any.
fn record_set_state(
    target: &Fields,
    state: Option<&Value>,
    key: &str,
    what: &str,
) -> Result<(), OutOfScope> {
    let text = |key: &str| target.get(key).and_then(Value::as_str).unwrap_or("");
    let Some(state) = state.and_then(Value::as_object) else {
        return Err(format!("external record {what}: {key} is not a record set").into());
    };
    for same in ["name", "type", "set_identifier"] {
        let ok = match same {
            "name" => same_name(
                state.get(same).and_then(Value::as_str).unwrap_or(""),
                text("name"),
            ),
            _ => state.get(same).and_then(Value::as_str) == Some(text(same)),
        };
        if !ok {
            return Err(format!(
                "external record {what}: its {key} state names another record set ({same})"
            )
            .into());
        }
    }
    match state.get("weight") {
        None | Some(Value::Null) => Ok(()),
        Some(w) if w.as_i64().is_some_and(|w| (0..=255).contains(&w)) => Ok(()),
        Some(w) => Err(format!("external record {what}: {key} weight {w} is not 0 to 255").into()),
    }
}

/// Route 53 answers names with the trailing dot; compare as it does.
fn same_name(a: &str, b: &str) -> bool {
    !a.is_empty()
        && a.trim_end_matches('.')
            .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

/// RFC 1123 label: what a namespace is.
fn dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// RFC 1123 subdomain: what most object names are.
fn dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(dns_label)
}

/// A label value: up to 63 alphanumerics, `-`, `_`, `.`, starting and ending alphanumeric.
fn label_value(s: &str) -> bool {
    s.is_empty()
        || (s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && s.starts_with(|c: char| c.is_ascii_alphanumeric())
            && s.ends_with(|c: char| c.is_ascii_alphanumeric()))
}

/// A label key: an optional DNS subdomain prefix and `/`, then a non-empty name.
fn label_key(s: &str) -> bool {
    let (prefix, name) = match s.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    prefix.is_none_or(|p| !p.is_empty() && dns_subdomain(p))
        && !name.is_empty()
        && label_value(name)
}

fn labels(map: &BTreeMap<String, String>) -> Result<(), OutOfScope> {
    for (k, v) in map {
        if !label_key(k) {
            return Err(format!("has {k:?}, not a label key").into());
        }
        if !label_value(v) {
            return Err(format!("has {k}={v:?}, not a label value").into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str) -> ObjectRef {
        ObjectRef::namespaced(ObjectKind::Pod, "shop", name)
    }

    fn declared() -> Scope {
        Scope {
            dns: Some(vec![DeclaredDns {
                drill: "fail-over".into(),
                zone: "Z1".into(),
                name: "api.example.com.".into(),
                record_type: "A".into(),
                set_identifiers: BTreeSet::from(["use1".to_owned(), "euw1".to_owned()]),
                health_checks: BTreeSet::from(["hc-1".to_owned()]),
                endpoints: BTreeSet::from([None]),
            }]),
        }
    }

    fn mark(path: &str) -> UndoRecord {
        UndoRecord::RestoreField {
            target: pod("api-0"),
            path: path.into(),
            prior: None,
            applied: Some(json!("run-1")),
        }
    }

    fn refused(undo: &UndoRecord, scope: &Scope, says: &str) {
        match within(undo, scope) {
            Err(e) => assert!(e.0.contains(says), "{e:?} does not say {says:?}"),
            Ok(()) => panic!("{undo:?} was allowed"),
        }
    }

    #[test]
    fn the_partition_label_is_the_only_field_and_only_on_a_pod() {
        let scope = Scope::without_drill_file();
        within(&mark("/metadata/labels/firedrill.io~1partition"), &scope).unwrap();
        for (path, says) in [
            (
                "/metadata/../spec/template/spec/containers/0/image",
                ". or ..",
            ),
            ("/metadata/labels/..", ". or .."),
            ("/metadata/labels/firedrill.io~1..~1partition", ". or .."),
            ("/metadata//labels/firedrill.io~1partition", "empty segment"),
            ("/metadata/labels/firedrill.io~2partition", "~0 or ~1"),
            ("/metadata/labels/firedrill.io~", "~0 or ~1"),
            ("/metadata~1labels/firedrill.io~1partition", "not a field"),
            (
                "metadata/labels/firedrill.io~1partition",
                "must start with /",
            ),
            ("/spec/paused", "not a field"),
            ("/metadata/labels/app", "not a field"),
            ("/metadata/labels/firedrill.io~1partition/x", "not a field"),
        ] {
            refused(&mark(path), &scope, says);
        }
        let mut on_a_deployment = mark("/metadata/labels/firedrill.io~1partition");
        if let UndoRecord::RestoreField { target, .. } = &mut on_a_deployment {
            target.kind = ObjectKind::Deployment;
        }
        refused(&on_a_deployment, &scope, "only Pod");
        // It only ever removes the label it added.
        let sets = UndoRecord::RestoreField {
            target: pod("api-0"),
            path: "/metadata/labels/firedrill.io~1partition".into(),
            prior: Some(json!("someone-else")),
            applied: Some(json!("run-1")),
        };
        refused(&sets, &scope, "only removes");
        let odd = UndoRecord::RestoreField {
            target: pod("api-0"),
            path: "/metadata/labels/firedrill.io~1partition".into(),
            prior: None,
            applied: Some(json!({ "a": 1 })),
        };
        refused(&odd, &scope, "not a label value");
    }

    #[test]
    fn only_what_firedrill_creates_is_deleted() {
        let scope = Scope::without_drill_file();
        for kind in CREATED_KINDS {
            let target = ObjectRef::namespaced(kind, "shop", "firedrill-partition-run-1");
            within(&UndoRecord::DeleteCreated { target }, &scope).unwrap();
        }
        let not_ours = ObjectRef::namespaced(ObjectKind::Deployment, "shop", "api");
        refused(
            &UndoRecord::DeleteCreated { target: not_ours },
            &scope,
            "named firedrill-",
        );
        for kind in [ObjectKind::ConfigMap, ObjectKind::StatefulSet] {
            let target = ObjectRef::namespaced(kind, "shop", "firedrill-x");
            refused(
                &UndoRecord::DeleteCreated { target },
                &scope,
                "a kind firedrill never changes",
            );
        }
        let node = ObjectRef::node("firedrill-node");
        refused(
            &UndoRecord::DeleteCreated { target: node },
            &scope,
            "a kind",
        );
        let no_namespace = ObjectRef {
            kind: ObjectKind::Pod,
            namespace: None,
            name: "firedrill-x".into(),
        };
        refused(
            &UndoRecord::DeleteCreated {
                target: no_namespace,
            },
            &scope,
            "without a namespace",
        );
        let bad = ObjectRef::namespaced(ObjectKind::Pod, "Shop", "firedrill-x");
        refused(
            &UndoRecord::DeleteCreated { target: bad },
            &scope,
            "not a namespace",
        );
    }

    #[test]
    fn replicas_selectors_cordons_and_kills_have_their_shapes() {
        let scope = Scope::without_drill_file();
        let deployment = ObjectRef::namespaced(ObjectKind::Deployment, "shop", "api");
        let scale = |target: ObjectRef, prior: i64, applied: i64| UndoRecord::RestoreReplicas {
            target,
            prior,
            applied,
            hpa: None,
        };
        within(&scale(deployment.clone(), 3, 0), &scope).unwrap();
        within(
            &scale(
                ObjectRef::namespaced(ObjectKind::StatefulSet, "db", "pg"),
                MAX_REPLICAS,
                0,
            ),
            &scope,
        )
        .unwrap();
        refused(
            &scale(deployment.clone(), -1, 0),
            &scope,
            "not a replica count",
        );
        refused(
            &scale(deployment.clone(), MAX_REPLICAS + 1, 0),
            &scope,
            "not a replica count",
        );
        refused(
            &scale(
                ObjectRef::namespaced(ObjectKind::Service, "shop", "api"),
                3,
                0,
            ),
            &scope,
            "only Deployment, StatefulSet",
        );

        let service = ObjectRef::namespaced(ObjectKind::Service, "shop", "db");
        let swap = |prior: &[(&str, &str)], applied: &[(&str, &str)]| UndoRecord::RestoreSelector {
            service: service.clone(),
            prior: prior
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            applied: applied
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
        };
        within(
            &swap(
                &[("app", "db"), ("app.kubernetes.io/tier", "primary")],
                &[(PROXY_LABEL, "run-1")],
            ),
            &scope,
        )
        .unwrap();
        within(&swap(&[], &[(PROXY_LABEL, "run-1")]), &scope).unwrap();
        refused(
            &swap(&[("app", "db")], &[("app", "evil")]),
            &scope,
            "not the selector firedrill sets",
        );
        refused(
            &swap(&[("app", "db")], &[(PROXY_LABEL, "r"), ("x", "y")]),
            &scope,
            "not the selector",
        );
        refused(
            &swap(&[("bad key!", "db")], &[(PROXY_LABEL, "r")]),
            &scope,
            "not a label key",
        );
        refused(
            &swap(&[("app", "a b")], &[(PROXY_LABEL, "r")]),
            &scope,
            "not a label value",
        );

        within(
            &UndoRecord::Uncordon {
                node: "node-1".into(),
                was_unschedulable: true,
            },
            &scope,
        )
        .unwrap();
        refused(
            &UndoRecord::Uncordon {
                node: "Node_1".into(),
                was_unschedulable: false,
            },
            &scope,
            "not an object name",
        );

        within(
            &UndoRecord::Recreated {
                pod: pod("api-0"),
                owner: "ReplicaSet/api-7d9".into(),
            },
            &scope,
        )
        .unwrap();
        refused(
            &UndoRecord::Recreated {
                pod: pod("api-0"),
                owner: "api".into(),
            },
            &scope,
            "Kind/name",
        );
    }

    /// The edges of each shape rule, one at a time (what mutation testing found untested).
    #[test]
    fn each_shape_rule_holds_at_its_edge() {
        let scope = Scope::without_drill_file();
        // The partition label's value must be a label value.
        let mut bad_value = mark("/metadata/labels/firedrill.io~1partition");
        if let UndoRecord::RestoreField { applied, .. } = &mut bad_value {
            *applied = Some(json!("run 1; rm"));
        }
        refused(&bad_value, &scope, "is not a label value");
        // An HPA named in a scale is an object name.
        let scale = |hpa: &str| UndoRecord::RestoreReplicas {
            target: ObjectRef::namespaced(ObjectKind::Deployment, "shop", "api"),
            prior: 3,
            applied: 0,
            hpa: Some(hpa.into()),
        };
        within(&scale("api-hpa"), &scope).unwrap();
        refused(&scale("Api_HPA"), &scope, "is not an object name");
        // A killed pod's owner is Kind/name: a word of letters and digits, then a name.
        let killed = |owner: &str| UndoRecord::Recreated {
            pod: pod("api-0"),
            owner: owner.into(),
        };
        within(&killed("StatefulSet/db"), &scope).unwrap();
        for owner in ["/api", "Replica-Set/api", "ReplicaSet/Api_7", "ReplicaSet/"] {
            refused(&killed(owner), &scope, "Kind/name");
        }
        // A promotion note carries `irreversible`, whatever else it holds as text.
        let promotion = |record: Value| UndoRecord::External {
            system: PROMOTION.into(),
            record,
        };
        within(
            &promotion(json!({ "irreversible": "promoted", "from": "a", "to": "b" })),
            &scope,
        )
        .unwrap();
        refused(
            &promotion(json!({ "from": "a", "to": "b" })),
            &scope,
            "not the note firedrill writes",
        );
        refused(
            &promotion(json!({ "irreversible": true })),
            &scope,
            "not the note firedrill writes",
        );
        // A selector's keys are label keys: a prefix is a DNS subdomain.
        let selector = |key: &str| UndoRecord::RestoreSelector {
            service: ObjectRef::namespaced(ObjectKind::Service, "shop", "db"),
            prior: BTreeMap::from([(key.to_owned(), "db".to_owned())]),
            applied: BTreeMap::from([(PROXY_LABEL.to_owned(), "run-1".to_owned())]),
        };
        within(&selector("app.kubernetes.io/name"), &scope).unwrap();
        for key in ["Bad_Prefix/name", "/name", "example.com/", "a b"] {
            refused(
                &selector(key),
                &scope,
                "restore-selector on Service shop/db: prior",
            );
        }
        // Without a drill file nothing external to Kubernetes is declared.
        assert_eq!(Scope::without_drill_file(), Scope { dns: None });
    }

    #[test]
    fn a_pointer_is_read_exactly_as_rfc_6901_spells_it() {
        assert_eq!(pointer("/a~0b/c~1d").unwrap(), ["a~b", "c/d"]);
        for bad in [
            "/a/./b", "/a/../b", "/.", "/..", "/a~1..", "/a~2", "/a~", "a/b", "/a//b",
        ] {
            assert!(pointer(bad).is_err(), "{bad}");
        }
    }

    /// Route 53 writes names with or without the final dot; a wait is bounded.
    #[test]
    fn a_record_sets_name_compares_as_route53_does_and_its_wait_is_bounded() {
        let record = |state_name: &str, wait: i64| UndoRecord::External {
            system: ROUTE53.into(),
            record: json!({
                "target": { "zone": "Z1", "name": "api.example.com.", "type": "A", "set_identifier": "use1", "wait_seconds": wait },
                "prior": { "name": state_name, "type": "A", "set_identifier": "use1", "weight": 100 },
                "applied": { "name": state_name, "type": "A", "set_identifier": "use1", "weight": 0 },
            }),
        };
        within(&record("api.example.com", 60), &declared()).unwrap();
        within(&record("API.example.com.", 60), &declared()).unwrap();
        refused(
            &record("web.example.com.", 60),
            &declared(),
            "names another record set (name)",
        );
        within(&record("api.example.com.", MAX_WAIT_SECONDS), &declared()).unwrap();
        refused(
            &record("api.example.com.", MAX_WAIT_SECONDS + 1),
            &declared(),
            "wait_seconds",
        );
        refused(&record("api.example.com.", -1), &declared(), "wait_seconds");
    }

    fn record_set(zone: &str, set: &str, endpoint: Option<&str>) -> UndoRecord {
        let state = |w: i64| json!({ "name": "api.example.com.", "type": "A", "set_identifier": set, "weight": w, "records": ["192.0.2.1"] });
        UndoRecord::External {
            system: ROUTE53.into(),
            record: json!({
                "target": { "zone": zone, "name": "api.example.com.", "type": "A", "set_identifier": set, "wait_seconds": 60, "endpoint": endpoint },
                "prior": state(100),
                "applied": state(0),
            }),
        }
    }

    #[test]
    fn external_records_only_where_the_drill_file_declares_them() {
        let scope = declared();
        within(&record_set("Z1", "use1", None), &scope).unwrap();
        refused(
            &record_set("Z2", "use1", None),
            &scope,
            "no drill in the drill file declares it",
        );
        refused(&record_set("Z1", "apse1", None), &scope, "declares it");
        refused(
            &record_set("Z1", "use1", Some("http://evil.example")),
            &scope,
            "at endpoint http://evil.example",
        );
        refused(
            &record_set("Z1", "use1", None),
            &Scope::without_drill_file(),
            "external record in zone Z1 (api.example.com. A set use1): no drill file given to show it is declared; rerun with --config FILE",
        );
        // The state it would write names the target's record, not another one in the zone.
        let mut other = record_set("Z1", "use1", None);
        if let UndoRecord::External { record, .. } = &mut other {
            record["prior"]["name"] = json!("www.example.com.");
        }
        refused(&other, &scope, "names another record set (name)");
        let mut weight = record_set("Z1", "use1", None);
        if let UndoRecord::External { record, .. } = &mut weight {
            record["prior"]["weight"] = json!(1000);
        }
        refused(&weight, &scope, "weight 1000 is not 0 to 255");

        let check = |id: &str, inverted: Value| UndoRecord::External {
            system: ROUTE53.into(),
            record: json!({ "target": { "health_check": id, "endpoint": null }, "prior": { "inverted": inverted }, "applied": { "inverted": true }, "settings": {} }),
        };
        within(&check("hc-1", json!(false)), &scope).unwrap();
        refused(
            &check("hc-9", json!(false)),
            &scope,
            "declares that health check",
        );
        refused(&check("hc-1", json!("no")), &scope, "is not {\"inverted\"");

        let unknown = UndoRecord::External {
            system: "gcp-dns".into(),
            record: json!({}),
        };
        refused(&unknown, &scope, "not one firedrill changes");
        let promotion = UndoRecord::External {
            system: PROMOTION.into(),
            record: json!({ "irreversible": "run r promoted the database", "from": "a", "to": "b" }),
        };
        within(&promotion, &Scope::without_drill_file()).unwrap();
        let not_a_note = UndoRecord::External {
            system: PROMOTION.into(),
            record: json!({ "irreversible": "x", "target": { "zone": "Z1" } }),
        };
        refused(&not_a_note, &scope, "field \"target\"");
        let smuggled = UndoRecord::External {
            system: ROUTE53.into(),
            record: json!({ "irreversible": "x", "target": {} }),
        };
        refused(&smuggled, &scope, "field \"irreversible\"");
    }
}
