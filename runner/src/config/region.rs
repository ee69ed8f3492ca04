//! `fault:` of `region-failover`.

use std::collections::BTreeMap;
use std::time::Duration;

use firedrill_experiments::region::{
    Dns, DnsMethod, Failback, Hook, HookAction, Isolate, IsolateHow, Markers, RegionFailover,
    RegionRecord, Source,
};
use firedrill_experiments::Settings;

use firedrill_reader::duration;
use firedrill_reader::read::{child, item, read_items, Fields, Reader};
use firedrill_reader::yaml::{to_json, Mark, Node, Value};

/// An AWS region's name, as Route 53 and the hook's environment take it.
fn region_name(s: &str) -> Result<String, super::NameError> {
    super::NameRules::Region.check(s)
}

fn duration_key(
    r: &mut Reader,
    f: &Fields,
    key: &str,
    default: Duration,
    max: Duration,
) -> Option<Duration> {
    match f.get(key) {
        Some(n) => r.parsed(n, &f.path_of(key), "a duration", |s| {
            duration::parse_within(s, Duration::from_secs(1), max)
        }),
        None => Some(default),
    }
}

pub(super) fn read_region_failover(
    r: &mut Reader,
    node: &Node,
    path: &str,
) -> Option<RegionFailover> {
    let f = r.fields(
        node,
        path,
        &[
            "from", "to", "dns", "isolate", "promote", "failback", "data",
        ],
    )?;
    let region = |r: &mut Reader, key: &str| {
        r.required(&f, key, "a region name, e.g. us-east-1")
            .and_then(|n| r.parsed(n, &f.path_of(key), "a region name", region_name))
    };
    let (from, to) = (region(r, "from"), region(r, "to"));
    if let (Some(a), Some(b)) = (&from, &to) {
        if a == b {
            r.error(
                f.get("to").map_or(f.mark, |n| n.mark),
                f.path_of("to"),
                "the region that takes over must differ from the one failed",
            );
        }
    }
    let dns = match f.get("dns") {
        Some(n) => read_dns(r, n, &f.path_of("dns"), from.as_deref(), to.as_deref()).map(Some),
        None => Some(None),
    };
    let isolate = match f.get("isolate") {
        Some(n) => read_isolate(r, n, &f.path_of("isolate")),
        None => Some(Vec::new()),
    };
    let promote = match f.get("promote") {
        Some(n) => read_hook(r, n, &f.path_of("promote"), false).map(|h| match h {
            Failback::Hook(h) => Some(h),
            Failback::Runbook(_) => None,
        }),
        None => Some(None),
    };
    let failback = match f.get("failback") {
        Some(n) => read_hook(r, n, &f.path_of("failback"), true).map(Some),
        None => Some(None),
    };
    let data = match f.get("data") {
        Some(n) => read_markers(r, n, &f.path_of("data")).map(Some),
        None => Some(None),
    };
    if let (Some(Some(_)), Some(None)) = (&promote, &dns) {
        r.error(
            f.get("promote").map_or(f.mark, |n| n.mark),
            f.path_of("promote"),
            "promoting the database while traffic stays on the failed region would split it in two: add `dns:` so that traffic moves first",
        );
    }
    if let (Some(None), Some(Some(_))) = (&promote, &data) {
        r.error(
            f.get("data").map_or(f.mark, |n| n.mark),
            f.path_of("data"),
            "the RPO is read on the promoted database: data markers need `promote:`",
        );
    }
    if let (Some(None), Some(isolate)) = (&dns, &isolate) {
        if isolate.is_empty() {
            r.error(
                f.mark,
                path,
                "a region failover needs `dns:`, `isolate:` or both: otherwise nothing fails over",
            );
        }
    }
    Some(RegionFailover {
        from: from?,
        to: to?,
        dns: dns?,
        isolate: isolate?,
        promote: promote?,
        failback: failback?,
        data: data?,
    })
}

/// An armed region failover must name its failback: promotion cannot be undone.
pub(super) fn check_failback(r: &mut Reader, f: &Fields, fault: Option<&Settings>) {
    if let Some(Settings::RegionFailover(rf)) = fault {
        if rf.failback.is_none() {
            r.error(
                f.get("fault").map_or(f.mark, |n| n.mark),
                child(&f.path_of("fault"), "failback"),
                "an armed region failover must say how the region comes back: promotion cannot be undone (add `failback: { runbook: https://... }` or a `command`/`job` firedrill runs)",
            );
        }
    }
}

fn read_dns(
    r: &mut Reader,
    node: &Node,
    path: &str,
    from: Option<&str>,
    to: Option<&str>,
) -> Option<Dns> {
    let f = r.fields(
        node,
        path,
        &[
            "zone", "name", "type", "method", "regions", "wait", "endpoint",
        ],
    )?;
    let zone = r
        .required(&f, "zone", "the hosted zone id, e.g. Z0123456789ABCDEFGHIJ")
        .and_then(|n| {
            r.parsed(n, &f.path_of("zone"), "a hosted zone id", |s| {
                let id = s.trim_start_matches("/hostedzone/");
                if !id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    Ok(id.to_owned())
                } else {
                    Err(format!("{s:?} is not a hosted zone id (letters and digits, e.g. Z0123456789ABCDEFGHIJ)"))
                }
            })
        });
    let name = r
        .required(&f, "name", "the record name, e.g. api.example.com")
        .and_then(|n| {
            r.parsed(n, &f.path_of("name"), "a DNS name", |s| {
                let name = s.trim_end_matches('.');
                let ok = !name.is_empty()
                    && name.len() <= 253
                    && name.split('.').all(|l| {
                        !l.is_empty()
                            && l.len() <= 63
                            && l.bytes().all(|b| {
                                b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'*'
                            })
                    });
                if ok {
                    Ok(format!("{name}."))
                } else {
                    Err(format!("{s:?} is not a DNS name"))
                }
            })
        });
    let record_type = match f.get("type") {
        Some(n) => r.parsed(n, &f.path_of("type"), "a record type", |s| match s {
            "A" | "AAAA" | "CNAME" | "TXT" => Ok(s.to_owned()),
            _ => Err(format!(
                "{s:?} is not a record type firedrill fails over (allowed: A, AAAA, CNAME, TXT)"
            )),
        }),
        None => Some("A".to_owned()),
    };
    let method = r
        .required(&f, "method", "health-check or weights")
        .and_then(|n| {
            r.parsed(n, &f.path_of("method"), "a method", |s| match s {
                "health-check" => Ok(DnsMethod::HealthCheck),
                "weights" => Ok(DnsMethod::Weights),
                _ => Err(format!(
                    "{s:?} is not a method (allowed: health-check, weights; firedrill never deletes records)"
                )),
            })
        });
    let regions = r
        .required(
            &f,
            "regions",
            "each region's record: {REGION: {set_identifier: ID, health_check: ID}}",
        )
        .and_then(|n| read_regions(r, n, &f.path_of("regions")));
    let wait = duration_key(
        r,
        &f,
        "wait",
        Duration::from_secs(120),
        Duration::from_secs(1800),
    );
    let endpoint = match f.get("endpoint") {
        Some(n) => r
            .parsed(n, &f.path_of("endpoint"), "a URL", |s| {
                firedrill_experiments::values::parse_http_url(s)
                    .map(|u| u.to_string().trim_end_matches('/').to_owned())
            })
            .map(Some),
        None => Some(None),
    };
    if let (Some(regions), Some(method)) = (&regions, method) {
        check_regions(r, &f, regions, method, from, to);
    }
    Some(Dns {
        zone: zone?,
        name: name?,
        record_type: record_type?,
        method: method?,
        regions: regions?,
        wait: wait?,
        endpoint: endpoint?,
    })
}

/// What the regions' records must say for the failover to be safe: a record for each region
/// named, a health check where one is needed, a record and a health check of each region's own.
fn check_regions(
    r: &mut Reader,
    f: &Fields,
    regions: &BTreeMap<String, RegionRecord>,
    method: DnsMethod,
    from: Option<&str>,
    to: Option<&str>,
) {
    for (key, region) in [("from", from), ("to", to)] {
        if let Some(region) = region.filter(|g| !regions.contains_key(*g)) {
            r.error(
                f.get("regions").map_or(f.mark, |n| n.mark),
                f.path_of("regions"),
                format!("fault.{key} is {region}, which has no record here (add {region}: {{set_identifier: ..}})"),
            );
        }
    }
    if let Some(g) = to.and_then(|g| regions.get(g).map(|rec| (g, rec))) {
        if g.1.health_check.is_none() {
            r.error(
                f.get("regions").map_or(f.mark, |n| n.mark),
                format!("{}.{}.health_check", f.path_of("regions"), g.0),
                "the region that takes over needs its Route 53 health check: without it firedrill cannot prove the region is healthy before sending traffic there",
            );
        }
    }
    check_records_distinct(r, f, regions);
    let check = |g: Option<&str>| g.and_then(|g| regions.get(g)?.health_check.as_deref());
    let shared = check(from).filter(|c| from != to && check(to) == Some(*c));
    if let (Some(shared), Some(to)) = (shared, to) {
        r.error(
            region_mark(f, to, "health_check"),
            format!("{}.{to}.health_check", f.path_of("regions")),
            format!(
                "{to} and {} share the health check {shared}: failing (or inverting) it takes both regions out, and it cannot prove the region that takes over healthy (give each region its own check)",
                from.unwrap_or_default()
            ),
        );
    }
    if let Some(g) = from.and_then(|g| regions.get(g).map(|rec| (g, rec))) {
        if method == DnsMethod::HealthCheck && g.1.health_check.is_none() {
            r.error(
                f.get("regions").map_or(f.mark, |n| n.mark),
                format!("{}.{}.health_check", f.path_of("regions"), g.0),
                "method health-check inverts the failed region's health check: name it",
            );
        }
    }
}

/// One record per region: a record two regions share would be failed over and taken over at
/// once (`plan --render` set the one record's weight to 0: traffic nowhere).
fn check_records_distinct(r: &mut Reader, f: &Fields, regions: &BTreeMap<String, RegionRecord>) {
    // In the order the file writes them, so that the second is the one said.
    let mut written: Vec<(&String, &RegionRecord)> = regions.iter().collect();
    written.sort_by_key(|(region, _)| {
        let mark = region_mark(f, region, "set_identifier");
        (mark.line, mark.column)
    });
    let mut first: BTreeMap<&str, &str> = BTreeMap::new();
    for (region, record) in written {
        match first.get(record.set_identifier.as_str()) {
            Some(other) => r.error(
                region_mark(f, region, "set_identifier"),
                format!("{}.{region}.set_identifier", f.path_of("regions")),
                format!(
                    "{region} and {other} name the same record (set_identifier {}): each region needs its own record set, or failing one over moves the other's traffic too",
                    record.set_identifier
                ),
            ),
            None => {
                first.insert(&record.set_identifier, region);
            }
        }
    }
}

/// Where `regions.REGION.KEY` is written, or the nearest enclosing node that is.
fn region_mark(f: &Fields, region: &str, key: &str) -> Mark {
    f.get("regions")
        .map_or(f.mark, |n| locate(n, &[region, key]).mark)
}

fn read_regions(r: &mut Reader, node: &Node, path: &str) -> Option<BTreeMap<String, RegionRecord>> {
    let Value::Mapping(entries) = &node.value else {
        r.error(
            node.mark,
            path,
            format!(
                "expected a mapping of region names, found {}",
                node.describe()
            ),
        );
        return None;
    };
    let mut regions = BTreeMap::new();
    let mut ok = true;
    for (key, value) in entries {
        let Value::Scalar { text, .. } = &key.value else {
            r.error(key.mark, path, "a region name must be a plain name");
            ok = false;
            continue;
        };
        let at = format!("{path}.{text}");
        let Some(name) = r.parsed(key, &at, "a region name", region_name) else {
            ok = false;
            continue;
        };
        let Some(f) = r.fields(value, &at, &["set_identifier", "health_check"]) else {
            ok = false;
            continue;
        };
        let id = |s: &str| {
            if !s.is_empty() && s.len() <= 128 && !s.chars().any(char::is_whitespace) {
                Ok(s.to_owned())
            } else {
                Err(format!("{s:?} is not an identifier"))
            }
        };
        let set_identifier = r
            .required(&f, "set_identifier", "the record set's SetIdentifier")
            .and_then(|n| r.parsed(n, &f.path_of("set_identifier"), "an identifier", id));
        let health_check = match f.get("health_check") {
            Some(n) => r
                .parsed(n, &f.path_of("health_check"), "a health check id", id)
                .map(Some),
            None => Some(None),
        };
        match (set_identifier, health_check) {
            (Some(set_identifier), Some(health_check)) => {
                regions.insert(
                    name,
                    RegionRecord {
                        set_identifier,
                        health_check,
                    },
                );
            }
            _ => ok = false,
        }
    }
    if regions.len() < 2 && ok {
        r.error(
            node.mark,
            path,
            "name at least two regions: the one failed and the one that takes over",
        );
        ok = false;
    }
    ok.then_some(regions)
}

fn read_isolate(r: &mut Reader, node: &Node, path: &str) -> Option<Vec<Isolate>> {
    read_items(
        r,
        node,
        path,
        "{namespace: NS, selector: LABELS, how: network-policy | scale-to-zero}",
        |r, n, at| {
            let f = r.fields(n, at, &["namespace", "selector", "how"])?;
            let namespace = r
                .required(&f, "namespace", "the namespace of the region's workloads")
                .and_then(|n| {
                    r.parsed(
                        n,
                        &f.path_of("namespace"),
                        "a namespace",
                        super::namespace_name,
                    )
                });
            let selector = r
                .required(
                    &f,
                    "selector",
                    "the labels of the region's pods, e.g. topology.kubernetes.io/region=us-east-1",
                )
                .and_then(|n| {
                    r.parsed(
                        n,
                        &f.path_of("selector"),
                        "key=value labels",
                        firedrill_experiments::values::equal_labels,
                    )
                });
            let how = match f.get("how") {
                Some(n) => r.parsed(n, &f.path_of("how"), "how to isolate", |s| match s {
                    "network-policy" => Ok(IsolateHow::NetworkPolicy),
                    "scale-to-zero" => Ok(IsolateHow::ScaleToZero),
                    _ => Err(format!(
                        "{s:?} is not allowed (allowed: network-policy, scale-to-zero)"
                    )),
                }),
                None => Some(IsolateHow::NetworkPolicy),
            };
            Some(Isolate {
                namespace: namespace?,
                selector: selector?,
                how: how?,
            })
        },
    )
}

/// A hook: `command` (argv) or `job` (a Job's spec), with `timeout`; for `failback`, also
/// `runbook` (a link people follow).
fn read_hook(r: &mut Reader, node: &Node, path: &str, failback: bool) -> Option<Failback> {
    let keys: &[&str] = if failback {
        &["command", "job", "runbook", "timeout"]
    } else {
        &["command", "job", "timeout"]
    };
    let f = r.fields(node, path, keys)?;
    let given: Vec<&str> = ["command", "job", "runbook"]
        .into_iter()
        .filter(|k| f.has(k))
        .collect();
    let timeout = duration_key(
        r,
        &f,
        "timeout",
        Duration::from_secs(600),
        Duration::from_secs(3 * 3600),
    );
    if given.len() != 1 {
        r.error(
            f.mark,
            path,
            if failback {
                "give exactly one of `command` (argv), `job` (a Job spec) or `runbook` (a link)"
            } else {
                "give exactly one of `command` (argv) or `job` (a Job spec)"
            },
        );
        return None;
    }
    let hook = match given[0] {
        "runbook" => {
            let n = f.get("runbook")?;
            return r
                .parsed(n, &f.path_of("runbook"), "a link", |s| {
                    if s.starts_with("https://")
                        || s.starts_with("http://")
                        || s.starts_with("runbooks/")
                    {
                        Ok(s.to_owned())
                    } else {
                        Err(format!(
                            "{s:?} is not a link (write an https:// URL or a runbooks/ path)"
                        ))
                    }
                })
                .map(Failback::Runbook)
                .filter(|_| timeout.is_some());
        }
        "command" => {
            let key = f.path_of("command");
            let n = f.get("command")?;
            let items = r.list(
                n,
                &key,
                "argv, e.g. [\"psql\", \"-c\", \"select pg_promote()\"]",
            )?;
            if items.is_empty() {
                r.error(n.mark, key, "the command is empty");
                return None;
            }
            let argv: Vec<Option<String>> = items
                .iter()
                .enumerate()
                .map(|(i, a)| r.text(a, &item(&key, i), "an argument").map(str::to_owned))
                .collect();
            HookAction::Command(argv.into_iter().collect::<Option<Vec<String>>>()?)
        }
        _ => HookAction::Job(read_job(r, f.get("job")?, &f.path_of("job"))?),
    };
    Some(Failback::Hook(Hook {
        action: hook,
        timeout: timeout?,
    }))
}

/// A hook's Job spec, with every problem Kubernetes would refuse it for reported now, before
/// DNS has moved: each field of the Job, of its pod template and of each container is checked
/// on its own, so that all of them show in one pass (a whole-Job check stops at the first).
fn read_job(r: &mut Reader, node: &Node, path: &str) -> Option<serde_json::Value> {
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
        let mark = locate(self.node, &keys).mark;
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

/// The node at `keys` (mapping keys, or list indexes) under `node`, or the deepest one found.
fn locate<'n>(node: &'n Node, keys: &[&str]) -> &'n Node {
    let mut at = node;
    for key in keys {
        let next = match &at.value {
            Value::Mapping(entries) => entries
                .iter()
                .find(|(k, _)| matches!(&k.value, Value::Scalar { text, .. } if text == key))
                .map(|(_, v)| v),
            Value::Sequence(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
            Value::Scalar { .. } => None,
        };
        match next {
            Some(next) => at = next,
            None => break,
        }
    }
    at
}

fn read_source(r: &mut Reader, node: &Node, path: &str) -> Option<Source> {
    let f = r.fields(node, path, &["url", "url_env"])?;
    match (f.get("url"), f.get("url_env")) {
        (Some(n), None) => r.parsed(n, &f.path_of("url"), "a PostgreSQL URL", |s| {
            // Never echoed: it may hold a password.
            let url = url::Url::parse(s).map_err(|e| format!("this is not a URL ({e}); write postgres://USER@HOST:PORT/DATABASE"))?;
            if !matches!(url.scheme(), "postgres" | "postgresql") {
                return Err(format!("a {}:// URL is not a postgres:// URL", url.scheme()));
            }
            if url.password().is_some() || url.query_pairs().any(|(k, _)| k == "password") {
                return Err("the URL holds a password: put it in a Secret and name its environment variable with `url_env`".into());
            }
            Ok(Source::Url(s.to_owned()))
        }),
        (None, Some(n)) => r.parsed(n, &f.path_of("url_env"), "an environment variable name", |s| {
            if !s.is_empty() && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_') {
                Ok(Source::Env(s.to_owned()))
            } else {
                Err("this is not an environment variable name (A-Z, 0-9, _; the variable holds the URL, not the URL itself)".to_owned())
            }
        }),
        _ => {
            r.error(f.mark, path, "give exactly one of `url` (no password) or `url_env` (a variable set from a Secret)");
            None
        }
    }
}

fn read_markers(r: &mut Reader, node: &Node, path: &str) -> Option<Markers> {
    let f = r.fields(
        node,
        path,
        &["primary", "promoted", "table", "every", "lead_in"],
    )?;
    let primary = r
        .required(&f, "primary", "{url_env: VAR} of the database written to")
        .and_then(|n| read_source(r, n, &f.path_of("primary")));
    let promoted = r
        .required(&f, "promoted", "{url_env: VAR} of the database promoted")
        .and_then(|n| read_source(r, n, &f.path_of("promoted")));
    let table = match f.get("table") {
        Some(n) => r.parsed(n, &f.path_of("table"), "a table name", |s| {
            let ok = s.split('.').count() <= 2
                && s.split('.').all(|p| {
                    !p.is_empty()
                        && p.len() <= 63
                        && p.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
                        && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                });
            if ok {
                Ok(s.to_owned())
            } else {
                Err(format!("{s:?} is not a table name (lowercase letters, digits and _, optionally schema.table)"))
            }
        }),
        None => Some("firedrill_markers".to_owned()),
    };
    let every = match f.get("every") {
        Some(n) => r.parsed(n, &f.path_of("every"), "a duration", |s| {
            duration::parse_within(s, Duration::from_millis(100), Duration::from_secs(60))
        }),
        None => Some(Duration::from_secs(1)),
    };
    let lead_in = duration_key(
        r,
        &f,
        "lead_in",
        Duration::from_secs(10),
        Duration::from_secs(600),
    );
    Some(Markers {
        primary: primary?,
        promoted: promoted?,
        table: table?,
        every: every?,
        lead_in: lead_in?,
    })
}
