//! A region failover's hook `job:`, checked against Kubernetes's own types before DNS has moved
//! (`firedrill_experiments::region::JobSpecCheck`: the kind reads the rest of its settings).

use firedrill_reader::read::Reader;
use firedrill_reader::yaml::{self, to_json, Node};

/// A hook's Job spec, with every problem Kubernetes would refuse it for reported now, before
/// DNS has moved: each field of the Job, of its pod template and of each container is checked
/// on its own, so that all of them show in one pass (a whole-Job check stops at the first).
pub(super) fn read_job(r: &mut Reader, node: &Node, path: &str) -> Option<serde_json::Value> {
    use k8s_openapi::api::batch::v1::JobSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use serde_json::{json, Value as J};

    let spec = to_json(node);
    if !spec.is_object() {
        r.error(
            node.mark,
            path,
            format!(
                "expected a Job spec (a mapping with template.spec.containers), found {}",
                node.describe()
            ),
        );
        return None;
    }
    let mut problems = JobProblems {
        node,
        path,
        found: false,
    };
    // The Job's own fields; the template is checked in its parts below.
    let mut job = spec.clone();
    job["template"] = json!({});
    for (key, message) in field_problems::<JobSpec>(&job) {
        problems.report(r, &[], key, message);
    }
    if let Some(meta) = spec.pointer("/template/metadata") {
        for (key, message) in field_problems::<ObjectMeta>(meta) {
            problems.report(r, &["template", "metadata"], key, message);
        }
    }
    let pod = spec.pointer("/template/spec");
    if let Some(pod) = pod {
        check_pod_spec(r, &mut problems, pod);
    }
    let containers = pod.and_then(|p| p.get("containers")).and_then(J::as_array);
    if containers.is_none_or(|c| c.is_empty()) {
        problems.report(
            r,
            &["template", "spec"],
            None,
            "a Job spec needs template.spec.containers (and restartPolicy: Never)".to_owned(),
        );
    }
    if problems.found {
        return None;
    }
    // The whole Job as firedrill creates it, for anything the parts do not show.
    let job = firedrill_experiments::region::hook_job(
        "firedrill",
        &spec,
        &firedrill_experiments::region::HookContext {
            phase: "promote",
            run: "r",
            drill: "d",
            from: "a",
            to: "b",
        },
    );
    if let Err(e) = serde_json::from_value::<k8s_openapi::api::batch::v1::Job>(job) {
        r.error(node.mark, path, format!("not a valid Job spec: {e}"));
        return None;
    }
    Some(spec)
}

/// Reports a problem of a hook's Job spec at the keys it is under, and remembers that there was one.
struct JobProblems<'n> {
    /// The spec as written, to find where each problem is.
    node: &'n Node,
    path: &'n str,
    found: bool,
}

impl JobProblems<'_> {
    /// A problem with `at` (mapping keys and list indexes) and `key` under it, or with `at`
    /// itself when `key` is `None`.
    fn report(&mut self, r: &mut Reader, at: &[&str], key: Option<String>, message: String) {
        let mut keys: Vec<&str> = at.to_vec();
        if let Some(key) = key.as_deref() {
            keys.push(key);
        }
        let mark = yaml::locate(self.node, &keys).mark;
        let mut where_ = self.path.to_owned();
        for k in &keys {
            if k.parse::<usize>().is_ok() {
                where_ = format!("{where_}[{k}]");
            } else {
                where_ = format!("{where_}.{k}");
            }
        }
        r.error(mark, where_, message);
        self.found = true;
    }
}

/// The pod template's spec: its own fields, each container's, and a restart policy a Job allows.
fn check_pod_spec(r: &mut Reader, problems: &mut JobProblems, pod: &serde_json::Value) {
    use k8s_openapi::api::core::v1::PodSpec;
    use serde_json::{json, Value as J};

    let mut rest = pod.clone();
    if let Some(rest) = rest.as_object_mut() {
        rest.insert("containers".into(), json!([]));
        rest.remove("initContainers");
    }
    for (key, message) in field_problems::<PodSpec>(&rest) {
        problems.report(r, &["template", "spec"], key, message);
    }
    for list in ["initContainers", "containers"] {
        match pod.get(list) {
            None | Some(J::Null) => {}
            Some(J::Array(containers)) => {
                for (i, c) in containers.iter().enumerate() {
                    let index = i.to_string();
                    check_container(r, problems, &["template", "spec", list, index.as_str()], c);
                }
            }
            Some(other) => problems.report(
                r,
                &["template", "spec", list],
                None,
                format!("expected a list of containers, found {other}"),
            ),
        }
    }
    let restart = pod.get("restartPolicy");
    if !matches!(restart.and_then(J::as_str), Some("Never" | "OnFailure")) {
        problems.report(
            r,
            &["template", "spec"],
            Some("restartPolicy".to_owned()),
            "a Job's pods need restartPolicy: Never (or OnFailure)".to_owned(),
        );
    }
}

/// One container of the pod template, at `at`.
fn check_container(
    r: &mut Reader,
    problems: &mut JobProblems,
    at: &[&str],
    container: &serde_json::Value,
) {
    use k8s_openapi::api::core::v1::Container;
    use serde_json::Value as J;

    // A missing name is said below, with a missing image.
    for (key, message) in field_problems::<Container>(container)
        .into_iter()
        .filter(|(key, m)| key.is_some() || !m.ends_with("missing field `name`"))
    {
        problems.report(r, at, key, message);
    }
    let missing: Vec<&str> = ["name", "image"]
        .into_iter()
        .filter(|k| {
            container
                .get(k)
                .and_then(J::as_str)
                .is_none_or(str::is_empty)
        })
        .collect();
    if !missing.is_empty() && container.is_object() {
        problems.report(
            r,
            at,
            None,
            format!(
                "every container needs a `name` and an `image` (this one has no {})",
                missing.join(" and no ")
            ),
        );
    }
}

/// Why `value` is not a `T`, field by field: each problem with the key it comes from (`None`: the
/// object as a whole, e.g. a required field missing). serde stops at the first problem, so each
/// key that causes one is taken out in turn and the rest read again.
fn field_problems<T: serde::de::DeserializeOwned>(
    value: &serde_json::Value,
) -> Vec<(Option<String>, String)> {
    let read = |v: serde_json::Value| {
        serde_json::from_value::<T>(v)
            .err()
            .map(|e| format!("Kubernetes would refuse this: {e}"))
    };
    let Some(mut rest) = value.as_object().cloned() else {
        return read(value.clone())
            .map(|e| vec![(None, e)])
            .unwrap_or_default();
    };
    let mut out = Vec::new();
    while let Some(error) = read(serde_json::Value::Object(rest.clone())) {
        // The key whose absence changes the error is the one it came from.
        let culprit = rest
            .keys()
            .find(|k| {
                let mut without = rest.clone();
                without.remove(*k);
                read(serde_json::Value::Object(without)).as_ref() != Some(&error)
            })
            .cloned();
        match culprit {
            Some(key) => {
                rest.remove(&key);
                out.push((Some(key), error));
            }
            None => {
                out.push((None, error));
                break;
            }
        }
    }
    out
}
