//! Reading a `region-failover`'s `fault:`: the regions, the DNS records and their health checks,
//! what is isolated, the promotion and failback hooks and the RPO markers, each problem at its
//! line. A hook's Job spec is checked by the caller's [`JobSpecCheck`]: against Kubernetes's own
//! types, which this crate does not link.

use std::collections::BTreeMap;
use std::time::Duration;

use firedrill_reader::duration;
use firedrill_reader::name::{namespace_name, NameError, NameRules};
use firedrill_reader::read::{item, read_items, Fields, Reader};
use firedrill_reader::yaml::{self, Mark, Node, Value};

use super::{
    Dns, DnsMethod, Failback, Hook, HookAction, Isolate, IsolateHow, Markers, RegionFailover,
    RegionRecord, Source,
};
use crate::values::{equal_labels, parse_http_url};

/// Checks a hook's `job:` (a Job spec as written) and returns it as JSON, or reports every
/// problem Kubernetes would refuse it for (at its line) and returns `None`. The runner's drill
/// file reader passes its check, which holds Kubernetes's types.
pub type JobSpecCheck = fn(&mut Reader, &Node, &str) -> Option<serde_json::Value>;

/// An AWS region's name, as Route 53 and the hook's environment take it.
fn region_name(s: &str) -> Result<String, NameError> {
    NameRules::Region.check(s)
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

impl RegionFailover {
    /// `fault:` of a region-failover, every problem reported at its line; `job_spec` checks a
    /// hook's Job spec (see [`JobSpecCheck`]).
    pub fn read(r: &mut Reader, node: &Node, path: &str, job_spec: JobSpecCheck) -> Option<Self> {
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
            Some(n) => read_hook(r, n, &f.path_of("promote"), false, job_spec).map(|h| match h {
                Failback::Hook(h) => Some(h),
                Failback::Runbook(_) => None,
            }),
            None => Some(None),
        };
        let failback = match f.get("failback") {
            Some(n) => read_hook(r, n, &f.path_of("failback"), true, job_spec).map(Some),
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
                parse_http_url(s).map(|u| u.to_string().trim_end_matches('/').to_owned())
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
        .map_or(f.mark, |n| yaml::locate(n, &[region, key]).mark)
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
                .and_then(|n| r.parsed(n, &f.path_of("namespace"), "a namespace", namespace_name));
            let selector = r
                .required(
                    &f,
                    "selector",
                    "the labels of the region's pods, e.g. topology.kubernetes.io/region=us-east-1",
                )
                .and_then(|n| {
                    r.parsed(n, &f.path_of("selector"), "key=value labels", equal_labels)
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
fn read_hook(
    r: &mut Reader,
    node: &Node,
    path: &str,
    failback: bool,
    job_spec: JobSpecCheck,
) -> Option<Failback> {
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
        _ => HookAction::Job(job_spec(r, f.get("job")?, &f.path_of("job"))?),
    };
    Some(Failback::Hook(Hook {
        action: hook,
        timeout: timeout?,
    }))
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
