//! The drill file: read once, validated completely, turned into typed values.
//!
//! `load` either returns a [`Config`] that later code can trust (parsed durations, selectors,
//! schedules, zones) or every problem in the file, each with its line, column and key.

mod fault;
mod gates;
mod hook_job;
mod limits;
pub mod notify;
mod safety;
pub mod scenario;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{NaiveDate, Weekday};
use chrono_tz::Tz;
use firedrill_experiments::values::{parse_http_url, parse_selector};
use firedrill_experiments::Kind;
use firedrill_safety::{Amount, PercentRange, Policy, Selector, Target};

pub(crate) use firedrill_reader::name::{dns_label, namespace_name};
pub use firedrill_reader::name::{NameError, NameFlaw, NameRules};
use firedrill_reader::read;
use firedrill_reader::read::{child, item, Fields, Reader};
pub use firedrill_reader::read::{read_text, Diagnostic, Diagnostics, TextError};
use firedrill_reader::yaml::{self, Mark, Node};

use crate::drill::gate::{Check, Condition, SteadyProbe, Success};
use crate::schedule::{Blackout, Cron, PlannedDrill};
use firedrill_reader::duration;

/// Drill names become part of Job names (`<drill>-<instant>`), which Kubernetes caps at 63.
pub const MAX_DRILL_NAME: usize = 52;

#[derive(Clone, Debug)]
pub struct Config {
    pub source: PathBuf,
    /// Where relative store paths and the record spool live: `FIREDRILL_DATA_DIR`, else the
    /// drill file's directory (see [`Config::load`]).
    pub data_dir: PathBuf,
    pub timezone: Tz,
    pub armed: bool,
    /// The fleet name of the cluster this file drills: on every run record and pushed metric.
    pub cluster: String,
    pub namespace: String,
    pub store: Store,
    pub pushgateway: Option<url::Url>,
    pub prometheus: Option<url::Url>,
    pub alertmanager: Option<url::Url>,
    pub concurrency: u32,
    pub blackouts: Vec<Blackout>,
    pub safety: Policy,
    /// The file's receivers (`notify:`); each drill's own are in [`Drill::notify`].
    pub notify: Vec<notify::Receiver>,
    /// The file's `announce:`, each drill's unless it says otherwise ([`Drill::announce`]).
    pub announce: Duration,
    pub drills: Vec<Drill>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Store {
    Sqlite(String),
    Postgres(String),
}

impl std::fmt::Display for Store {
    /// The store as people read it: the SQLite file, or the PostgreSQL URL without its password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Store::Sqlite(file) => write!(f, "sqlite://{file}"),
            Store::Postgres(url) => match url::Url::parse(url) {
                Ok(mut u) if u.password().is_some() => {
                    let _ = u.set_password(Some("***"));
                    write!(f, "{u}")
                }
                _ => f.write_str(url),
            },
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnBlackout {
    Skip,
    Defer,
}

#[derive(Clone, Debug)]
pub struct Drill {
    pub name: String,
    pub schedule: Cron,
    pub timezone: Tz,
    pub duration: Duration,
    pub deadline: Duration,
    pub on_blackout: OnBlackout,
    pub targets: Vec<Target>,
    /// The kind's own settings (`fault:`), which say the kind (see [`Drill::kind`]).
    pub fault: firedrill_experiments::Settings,
    /// The file's policy with this drill's overrides applied.
    pub safety: Policy,
    /// Checks that must all pass before anything is injected.
    pub preflight: Vec<Check>,
    /// Conditions that end the drill early and revert it.
    pub abort_when: Vec<Condition>,
    /// Probes sampled throughout the drill for availability and latency.
    pub steady_state: Vec<SteadyProbe>,
    /// What the steady-state measurements must show for the run to pass.
    pub success: Success,
    /// Who hears of the drill's fires: the file's receivers with the drill's own.
    pub notify: Vec<notify::Receiver>,
    /// How long before each fire the announcement goes out; zero for none.
    pub announce: Duration,
    /// Where the drill is written, for messages.
    pub line: usize,
}

impl Drill {
    /// The fault kind the drill runs: the kind its settings are for.
    pub fn kind(&self) -> Kind {
        self.fault.kind()
    }
}

/// Why a file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source} (check the path given to --config)")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(Diagnostics),
}

impl Config {
    /// What the drill file names that `cluster` does not have (a zone outage's zone), each at
    /// its place in the file: `plan --cluster` says so rather than show every fire blocked.
    pub fn check_against(
        &self,
        cluster: &firedrill_safety::cluster::Cluster,
    ) -> Result<(), Diagnostics> {
        let items: Vec<Diagnostic> = self
            .drills
            .iter()
            .filter_map(|d| match &d.fault {
                firedrill_experiments::Settings::ZoneOutage(z) => {
                    firedrill_experiments::zone::unknown_zone(z, &cluster.nodes)
                }
                _ => None,
            })
            .map(|(mark, path, message)| Diagnostic {
                mark,
                path,
                message,
            })
            .collect();
        if items.is_empty() {
            return Ok(());
        }
        Err(Diagnostics {
            file: self.source.display().to_string(),
            items,
        })
    }

    pub fn load(path: &Path) -> Result<Config, LoadError> {
        // Read no further than the limit: a device or a pipe has no size to check up front.
        let text =
            read::read_text(path, yaml::Limits::DRILL_FILE.max_bytes).map_err(|e| match e {
                read::TextError::Io(source) => LoadError::Io {
                    path: path.display().to_string(),
                    source,
                },
                read::TextError::TooLarge { .. } => LoadError::Invalid(Config::too_large(path)),
                e @ read::TextError::NotUtf8 { mark, .. } => LoadError::Invalid(Diagnostics {
                    file: path.display().to_string(),
                    items: vec![Diagnostic {
                        mark,
                        path: "(file)".to_owned(),
                        message: format!("{e}; save the drill file as UTF-8"),
                    }],
                }),
            })?;
        let mut config = Config::parse(&text, path).map_err(LoadError::Invalid)?;
        // A store URL with a password belongs in a Secret, not in the drill file's ConfigMap.
        if let Some(url) = std::env::var("FIREDRILL_STORE")
            .ok()
            .filter(|u| !u.is_empty())
        {
            config.store = parse_store(&url).map_err(|message| {
                LoadError::Invalid(Diagnostics {
                    file: "FIREDRILL_STORE".to_owned(),
                    items: vec![Diagnostic {
                        mark: Mark { line: 1, column: 1 },
                        path: "(environment)".to_owned(),
                        message: redact_password(&message, &url),
                    }],
                })
            })?;
        }
        config.settle_paths(
            std::env::var_os("FIREDRILL_DATA_DIR")
                .filter(|d| !d.is_empty())
                .map(PathBuf::from),
        );
        Ok(config)
    }

    /// Anchors relative paths: a relative SQLite store is a file in the data directory — which
    /// is `data_dir` when given, else the drill file's directory — never in whatever directory
    /// the command happens to run from.
    pub fn settle_paths(&mut self, data_dir: Option<PathBuf>) {
        let base = data_dir.unwrap_or_else(|| match self.source.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        });
        let base = std::path::absolute(&base)
            .or_else(|_| std::path::absolute("."))
            .unwrap_or(base);
        if let Store::Sqlite(file) = &self.store {
            if Path::new(file).is_relative() {
                self.store = Store::Sqlite(base.join(file).display().to_string());
            }
        }
        self.data_dir = base;
    }

    /// The spool for records no store or cluster took: in the data directory
    /// (`FIREDRILL_DATA_DIR`, else the drill file's directory), whatever the store. Never beside
    /// an absolute SQLite path: the store's directory is the one place known to have just failed.
    pub fn spool_dir(&self) -> PathBuf {
        self.data_dir.join("firedrill-spool")
    }

    fn too_large(path: &Path) -> Diagnostics {
        Diagnostics {
            file: path.display().to_string(),
            items: vec![Diagnostic {
                mark: Mark { line: 1, column: 1 },
                path: "(file)".to_owned(),
                message: format!(
                    "the file is larger than the limit of {} MiB for a drill file",
                    yaml::Limits::DRILL_FILE.max_bytes >> 20
                ),
            }],
        }
    }

    /// Validates `text` as if read from `path` (which only names the file in messages).
    pub fn parse(text: &str, path: &Path) -> Result<Config, Diagnostics> {
        let fail = |items: Vec<Diagnostic>| Diagnostics {
            file: path.display().to_string(),
            items,
        };
        let mut root = yaml::parse(text).map_err(|e| {
            fail(vec![Diagnostic {
                mark: e.mark,
                path: "(yaml)".to_owned(),
                message: e.message,
            }])
        })?;
        let mut reader = Reader::default();
        read::strip_merge_keys(&mut reader, &mut root, "");
        let config = read_config(&mut reader, &root, path);
        match config {
            Some(config) if reader.diagnostics.is_empty() => Ok(config),
            _ => {
                let mut items = reader.diagnostics;
                items.sort_by_key(|d| (d.mark.line, d.mark.column));
                if items.is_empty() {
                    // Defensive: a read that failed without saying why must still fail loudly.
                    items.push(Diagnostic {
                        mark: root.mark,
                        path: "(file)".to_owned(),
                        message: "the file could not be read as a drill file".to_owned(),
                    });
                }
                Err(fail(items))
            }
        }
    }

    pub fn drill(&self, name: &str) -> Option<&Drill> {
        self.drills.iter().find(|d| d.name == name)
    }

    /// The drills as the calendar sees them.
    pub fn planned_drills(&self) -> Vec<PlannedDrill<'_>> {
        self.drills
            .iter()
            .map(|d| PlannedDrill {
                name: &d.name,
                cron: &d.schedule,
                zone: d.timezone,
                duration: d.duration,
                deadline: d.deadline,
                defer_on_blackout: d.on_blackout == OnBlackout::Defer,
            })
            .collect()
    }
}

const TOP_KEYS: &[&str] = &[
    "timezone",
    "armed",
    "cluster",
    "namespace",
    "store",
    "pushgateway",
    "prometheus",
    "alertmanager",
    "concurrency",
    "blackouts",
    "safety",
    "notify",
    "announce",
    "drills",
];

fn read_config(r: &mut Reader, root: &Node, path: &Path) -> Option<Config> {
    let f = r.fields(root, "", TOP_KEYS)?;
    let timezone = match f.get("timezone") {
        Some(node) => r.parsed(node, "timezone", "an IANA time zone name", parse_zone),
        None => Some(Tz::UTC),
    };
    let armed = f
        .get("armed")
        .map_or(Some(false), |n| r.boolean(n, "armed"));
    let cluster = match f.get("cluster") {
        Some(node) => r.parsed(node, "cluster", "a cluster name", |s| {
            dns_label(s, 63).map(|()| s.to_owned())
        }),
        None => Some(crate::run::DEFAULT_CLUSTER.to_owned()),
    };
    let namespace = match f.get("namespace") {
        Some(node) => r.parsed(node, "namespace", "a namespace name", |s| {
            dns_label(s, 63).map(|()| s.to_owned())
        }),
        None => Some("firedrill".to_owned()),
    };
    let store = match f.get("store") {
        Some(node) => r.parsed(node, "store", "a store URL", parse_store),
        None => Some(Store::Sqlite("firedrill.db".to_owned())),
    };
    let mut endpoint = |key: &str| match f.get(key) {
        Some(node) => r
            .parsed(node, key, "an http(s) URL", parse_http_url)
            .map(Some),
        None => Some(None),
    };
    let pushgateway = endpoint("pushgateway");
    let prometheus = endpoint("prometheus");
    let alertmanager = endpoint("alertmanager");
    let concurrency = f
        .get("concurrency")
        .map_or(Some(1), |n| r.integer(n, "concurrency", 1, 100));
    let blackouts = read_blackouts(r, &f);
    // Drills are read even when the file's policy has problems, against what of it could be
    // read: every problem in one pass.
    let (policy, policy_ok) = match f.get("safety") {
        Some(node) => safety::read_policy_partly(r, node, "safety", &Policy::default()),
        None => (Policy::default(), true),
    };
    let notify = match f.get("notify") {
        Some(node) => notify::read_receivers(r, node, "notify"),
        None => Some(Vec::new()),
    };
    let announce = match f.get("announce") {
        Some(node) => notify::read_announce(r, node, "announce"),
        None => Some(notify::DEFAULT_ANNOUNCE),
    };
    let drills = match r.required(&f, "drills", "a list of drills") {
        Some(node) => {
            let defaults = DrillDefaults {
                notify: notify.as_deref().unwrap_or_default(),
                announce: announce.unwrap_or(notify::DEFAULT_ANNOUNCE),
                zone: timezone.unwrap_or(Tz::UTC),
                armed: armed.unwrap_or(false),
                policy: &policy,
                endpoints: gates::Endpoints {
                    prometheus: f.has("prometheus"),
                    alertmanager: f.has("alertmanager"),
                },
            };
            read_drills(r, node, &defaults)
        }
        None => None,
    };
    Some(Config {
        source: path.to_path_buf(),
        data_dir: path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
        timezone: timezone?,
        armed: armed?,
        cluster: cluster?,
        namespace: namespace?,
        store: store?,
        pushgateway: pushgateway?,
        prometheus: prometheus?,
        alertmanager: alertmanager?,
        concurrency: concurrency? as u32,
        blackouts: blackouts?,
        safety: policy_ok.then_some(policy)?,
        notify: notify?,
        announce: announce?,
        drills: drills?,
    })
}

fn read_blackouts(r: &mut Reader, f: &Fields) -> Option<Vec<Blackout>> {
    let Some(node) = f.get("blackouts") else {
        return Some(Vec::new());
    };
    let items = r.list(node, "blackouts", "blackouts")?;
    let mut out = Vec::new();
    let mut ok = true;
    for (i, node) in items.iter().enumerate() {
        let path = item("blackouts", i);
        match read_blackout(r, node, &path) {
            Some(b) => {
                if out.iter().any(|o: &Blackout| o.name == b.name) {
                    r.error(
                        node.mark,
                        child(&path, "name"),
                        format!(
                            "blackout name {:?} is used twice (names must be unique)",
                            b.name
                        ),
                    );
                    ok = false;
                }
                out.push(b);
            }
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn read_blackout(r: &mut Reader, node: &Node, path: &str) -> Option<Blackout> {
    let f = r.fields(node, path, &["name", "from", "to", "weekdays", "times"])?;
    let name = r
        .required(&f, "name", "a name for the blackout")
        .and_then(|n| r.text(n, &child(path, "name"), "a name"))
        .map(str::to_owned);
    let date = |r: &mut Reader, key: &str| {
        f.get(key).map(|n| {
            r.parsed(n, &child(path, key), "a date YYYY-MM-DD", |s| {
                NaiveDate::parse_from_str(s, "%Y-%m-%d")
                    .map_err(|_| format!("{s:?} is not a date (write YYYY-MM-DD, e.g. 2026-12-20)"))
            })
        })
    };
    let from = date(r, "from");
    let to = date(r, "to");
    let dates = match (from, to) {
        (None, None) => Some(None),
        (Some(from), Some(to)) => match (from, to) {
            (Some(from), Some(to)) if from > to => {
                r.error(
                    f.get("from").map_or(f.mark, |n| n.mark),
                    child(path, "from"),
                    format!("{from} is after `to` {to} (dates are inclusive; write the earlier date in `from`)"),
                );
                None
            }
            (Some(from), Some(to)) => Some(Some((from, to))),
            _ => None,
        },
        (Some(_), None) | (None, Some(_)) => {
            let missing = if f.has("from") { "to" } else { "from" };
            r.error(
                f.mark,
                child(path, missing),
                "missing (a date range needs both `from` and `to`)",
            );
            None
        }
    };
    let weekdays = match f.get("weekdays") {
        None => Some(None),
        Some(node) => read_weekdays(r, node, &child(path, "weekdays")).map(Some),
    };
    let times = match f.get("times") {
        None => Some(None),
        Some(node) => r
            .parsed(
                node,
                &child(path, "times"),
                "a time window HH:MM-HH:MM",
                parse_times,
            )
            .map(Some),
    };
    if !f.has("from") && !f.has("to") && !f.has("weekdays") && !f.has("times") {
        r.error(
            f.mark,
            path,
            "a blackout needs at least one of `from`/`to`, `weekdays` or `times`",
        );
        return None;
    }
    Some(Blackout {
        name: name?,
        dates: dates?,
        weekdays: weekdays?,
        times: times?,
    })
}

fn read_weekdays(r: &mut Reader, node: &Node, path: &str) -> Option<u8> {
    let items = r.list(node, path, "weekdays such as Sat, Sun")?;
    if items.is_empty() {
        r.error(
            node.mark,
            path,
            "empty list (name at least one weekday, e.g. [Sat, Sun])",
        );
        return None;
    }
    let mut mask = 0u8;
    let mut ok = true;
    for (i, n) in items.iter().enumerate() {
        match r.parsed(n, &item(path, i), "a weekday", |s| {
            s.parse::<Weekday>().map_err(|_| {
                format!("{s:?} is not a weekday (allowed: Mon, Tue, Wed, Thu, Fri, Sat, Sun)")
            })
        }) {
            Some(day) => mask |= 1 << day.num_days_from_monday(),
            None => ok = false,
        }
    }
    ok.then_some(mask)
}

/// `HH:MM-HH:MM`; the end may be `24:00`; a window may cross midnight.
// Result<_, String>: the message for a person is the whole point: placed at file:line:col by the
// reader.
fn parse_times(text: &str) -> Result<(u32, u32), String> {
    let bad = || format!("{text:?} is not a time window (write HH:MM-HH:MM, e.g. \"22:00-06:00\")");
    let (a, b) = text.split_once('-').ok_or_else(bad)?;
    let minutes = |s: &str, allow_24: bool| -> Option<u32> {
        let (h, m) = s.trim().split_once(':')?;
        if h.len() != 2 || m.len() != 2 {
            return None;
        }
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        match (h, m) {
            (24, 0) if allow_24 => Some(1440),
            (0..=23, 0..=59) => Some(h * 60 + m),
            _ => None,
        }
    };
    let from = minutes(a, false).ok_or_else(bad)?;
    let to = minutes(b, true).ok_or_else(bad)?;
    if from == to || (from == 0 && to == 1440) {
        return Err(format!(
            "{text:?} is empty or the whole day (to black out whole days, leave out `times`)"
        ));
    }
    Ok((from, if to == 1440 && from > 0 { 1440 } else { to }))
}

const DRILL_KEYS: &[&str] = &[
    "name",
    "kind",
    "schedule",
    "timezone",
    "duration",
    "deadline",
    "on_blackout",
    "targets",
    "fault",
    "safety",
    "preflight",
    "abort_when",
    "steady_state",
    "success",
    "notify",
    "announce",
    "steps",
];

/// What every drill inherits from the file.
struct DrillDefaults<'a> {
    zone: Tz,
    /// The file's `armed`: an armed region failover must name its failback.
    armed: bool,
    policy: &'a Policy,
    endpoints: gates::Endpoints,
    notify: &'a [notify::Receiver],
    announce: Duration,
}

fn read_drills(r: &mut Reader, node: &Node, defaults: &DrillDefaults) -> Option<Vec<Drill>> {
    let items = r.list(node, "drills", "drills")?;
    if items.is_empty() {
        r.error(
            node.mark,
            "drills",
            "empty list (a drill file declares at least one drill)",
        );
        return None;
    }
    let mut drills: Vec<Drill> = Vec::new();
    // Names seen so far and the line of their first drill; checked even for drills with other
    // errors, so a duplicate is reported with them.
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(items.len());
    let mut ok = true;
    for (i, node) in items.iter().enumerate() {
        let path = item("drills", i);
        if let Some(name) = drill_name(node) {
            if let Some(first) = seen.get(name) {
                r.error(
                    name_mark(node),
                    child(&path, "name"),
                    format!(
                        "drill name {name:?} is already used at line {first} (names must be unique)"
                    ),
                );
                ok = false;
            } else {
                seen.insert(name, node.mark.line);
            }
        }
        match read_drill(r, node, &path, defaults) {
            Some(drill) => drills.push(drill),
            None => ok = false,
        }
    }
    ok.then_some(drills)
}

/// The `name` a drill is written with, if it is a plain scalar.
fn drill_name(node: &Node) -> Option<&str> {
    let yaml::Value::Mapping(entries) = &node.value else {
        return None;
    };
    entries
        .iter()
        .find_map(|(k, v)| match (&k.value, &v.value) {
            (yaml::Value::Scalar { text: key, .. }, yaml::Value::Scalar { text, .. })
                if key == "name" && !v.is_null() =>
            {
                Some(text.as_str())
            }
            _ => None,
        })
}

fn name_mark(node: &Node) -> Mark {
    if let yaml::Value::Mapping(entries) = &node.value {
        for (k, v) in entries {
            if matches!(&k.value, yaml::Value::Scalar { text, .. } if text == "name") {
                return v.mark;
            }
        }
    }
    node.mark
}

fn read_drill(r: &mut Reader, node: &Node, path: &str, defaults: &DrillDefaults) -> Option<Drill> {
    let (zone, policy) = (defaults.zone, defaults.policy);
    let f = r.fields(node, path, DRILL_KEYS)?;
    let at = |key: &str| child(path, key);
    let name = r.required(&f, "name", "a DNS-1123 label").and_then(|n| {
        r.parsed(n, &at("name"), "a DNS-1123 label", |s| {
            dns_label(s, MAX_DRILL_NAME).map(|()| s.to_owned())
        })
    });
    let kind = r
        .required(&f, "kind", &format!("one of {}", Kind::allowed()))
        .and_then(|n| r.parsed(n, &at("kind"), "a kind", |s| s.parse::<Kind>()));
    let schedule = r
        .required(
            &f,
            "schedule",
            "a 5-field cron expression or @monthly, @quarterly, ...",
        )
        .and_then(|n| r.parsed(n, &at("schedule"), "a cron expression", Cron::parse));
    let timezone = match f.get("timezone") {
        Some(n) => r.parsed(n, &at("timezone"), "an IANA time zone name", parse_zone),
        None => Some(zone),
    };
    let duration = r
        .required(&f, "duration", "a duration from 1s to 24h, e.g. 15m")
        .and_then(|n| {
            r.parsed(n, &at("duration"), "a duration", |s| {
                duration::parse_within(s, Duration::from_secs(1), Duration::from_secs(86_400))
            })
        });
    let deadline = match f.get("deadline") {
        Some(n) => r.parsed(n, &at("deadline"), "a duration", |s| {
            duration::parse_within(s, Duration::ZERO, Duration::from_secs(31 * 86_400))
        }),
        None => Some(Duration::from_secs(3600)),
    };
    let on_blackout = match f.get("on_blackout") {
        Some(n) => r.parsed(n, &at("on_blackout"), "skip or defer", |s| match s {
            "skip" => Ok(OnBlackout::Skip),
            "defer" => Ok(OnBlackout::Defer),
            _ => Err(format!("{s:?} is not allowed (allowed: skip, defer)")),
        }),
        None => Some(OnBlackout::Skip),
    };
    let safety = match f.get("safety") {
        Some(n) => safety::read_policy(r, n, &at("safety"), policy),
        None => Some(policy.clone()),
    };
    let around = scenario::Around {
        drill: name.as_deref(),
        duration,
        safety: safety.as_ref(),
        armed: defaults.armed,
    };
    let (targets, fault) = targets_and_fault(r, &f, path, kind, &around);
    let preflight = match f.get("preflight") {
        Some(n) => gates::read_preflight(r, n, &at("preflight"), &defaults.endpoints),
        None => Some(Vec::new()),
    };
    let abort_when = match f.get("abort_when") {
        Some(n) => gates::read_abort_when(r, n, &at("abort_when"), &defaults.endpoints),
        None => Some(Vec::new()),
    };
    let steady_state = match f.get("steady_state") {
        Some(n) => gates::read_steady_state(r, n, &at("steady_state")),
        None => Some(Vec::new()),
    };
    let success = match f.get("success") {
        Some(n) => gates::read_success(r, n, &at("success")),
        None => Some(Success::default()),
    };
    gates::check_success(
        r,
        &f,
        success.as_ref(),
        kind,
        steady_state.as_deref(),
        fault.as_ref(),
    );
    let receivers = match f.get("notify") {
        Some(n) => notify::read_receivers(r, n, &at("notify"))
            .map(|own| notify::for_drill(defaults.notify, Some(own))),
        None => Some(notify::for_drill(defaults.notify, None)),
    };
    let announce = match f.get("announce") {
        Some(n) => notify::read_announce(r, n, &at("announce")),
        None => Some(defaults.announce),
    };
    let success = match (success, &steady_state) {
        (Some(s), Some(probes)) if !probes.is_empty() => Some(s.with_default_availability()),
        (success, _) => success,
    };
    if let (Some(kind), Some(duration), Some(safety)) = (kind, duration, &safety) {
        limits::check_limits(r, &f, path, kind, duration, safety, fault.as_ref());
    }
    if let (Some(cron), Some(duration)) = (&schedule, duration) {
        check_keeps_up(r, &f, path, cron, duration);
    }
    // Settings are read only for a kind that was read, and are of that kind.
    debug_assert_eq!(fault.as_ref().map(|s| s.kind()), fault.as_ref().and(kind));
    Some(Drill {
        name: name?,
        schedule: schedule?,
        timezone: timezone?,
        duration: duration?,
        deadline: deadline?,
        on_blackout: on_blackout?,
        targets: targets?,
        fault: fault?,
        safety: safety?,
        preflight: preflight?,
        abort_when: abort_when?,
        steady_state: steady_state?,
        success: success?,
        notify: receivers?,
        announce: announce?,
        line: node.mark.line,
    })
}

/// A drill's `targets:` and `fault:` (an armed region failover's with its failback); a
/// scenario's are its steps' (it has none of its own), and only a scenario has `steps:`.
fn targets_and_fault(
    r: &mut Reader,
    f: &Fields,
    path: &str,
    kind: Option<Kind>,
    around: &scenario::Around,
) -> (Option<Vec<Target>>, Option<firedrill_experiments::Settings>) {
    if kind == Some(Kind::Scenario) {
        return (Some(Vec::new()), scenario::read(r, f, around));
    }
    if let Some(n) = f.get("steps") {
        r.error(
            n.mark,
            child(path, "steps"),
            "`steps:` belong to a scenario (write `kind: scenario` and give each step its own kind, targets and fault, or remove `steps`)",
        );
    }
    let fault = fault::read_settings(r, f, kind);
    if around.armed {
        fault::check_failback(r, f, fault.as_ref());
    }
    (read_targets(r, f, path, kind), fault)
}

/// A drill that lasts longer than the shortest gap between its fires can never keep up: each
/// run would still be going when the next is due.
fn check_keeps_up(r: &mut Reader, f: &Fields, path: &str, cron: &Cron, duration: Duration) {
    if let Some(gap) = cron.shortest_gap().filter(|gap| duration > *gap) {
        r.error(
            f.get("duration").map_or(f.mark, |n| n.mark),
            child(path, "duration"),
            format!(
                "{} is longer than the shortest gap between the drill's fires ({} with schedule {:?}): each run would still be going when the next is due, so it could never keep up (shorten it to at most {}, or fire less often)",
                duration::format(duration),
                duration::format(gap),
                cron.text(),
                duration::format(gap)
            ),
        );
    }
}

fn read_targets(r: &mut Reader, f: &Fields, path: &str, kind: Option<Kind>) -> Option<Vec<Target>> {
    let key = child(path, "targets");
    let Some(node) = f.get("targets") else {
        return match kind {
            Some(k) if k.needs_pod_targets() => {
                r.required(f, "targets", &format!("a list of targets for kind {k}"));
                None
            }
            _ => Some(Vec::new()),
        };
    };
    if let Some(k) = kind.filter(|k| !k.needs_pod_targets()) {
        r.error(
            node.mark,
            key,
            format!("kind {k} does not take pod targets (remove `targets`)"),
        );
        return None;
    }
    let items = r.list(node, &key, "targets")?;
    if items.is_empty() {
        r.error(node.mark, key, "empty list (name at least one target)");
        return None;
    }
    let mut out = Vec::new();
    let mut ok = true;
    for (i, node) in items.iter().enumerate() {
        match read_target(r, node, &item(&key, i)) {
            Some(t) => out.push(t),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn read_target(r: &mut Reader, node: &Node, path: &str) -> Option<Target> {
    let f = r.fields(
        node,
        path,
        &["namespace", "selector", "all", "percent", "count"],
    )?;
    let namespace = required_namespace(r, &f, path);
    let all = match f.get("all") {
        Some(n) => r.boolean(n, &child(path, "all")),
        None => Some(false),
    };
    // An empty selector matches every pod of the namespace; that must be said, not implied.
    let selector = match (f.get("selector"), all) {
        (Some(n), Some(true)) => {
            r.error(
                n.mark,
                child(path, "selector"),
                "give either `selector` or `all: true`, not both",
            );
            None
        }
        (None, Some(true)) => Some(Selector::everything()),
        (None, _) => {
            r.required(
                &f,
                "selector",
                "a label selector such as app=api, or `all: true` for every pod of the namespace",
            );
            None
        }
        (Some(n), _) => r
            .parsed(
                n,
                &child(path, "selector"),
                "a label selector",
                parse_selector,
            )
            .and_then(|selector| {
                if selector.is_everything() {
                    r.error(
                        n.mark,
                        child(path, "selector"),
                        "an empty selector would match every pod in the namespace (name the pods, e.g. app=api, or write `all: true` instead of `selector` if every pod is meant)",
                    );
                    return None;
                }
                Some(selector)
            }),
    };
    let amount = match (f.get("percent"), f.get("count")) {
        (Some(_), Some(n)) => {
            r.error(
                n.mark,
                child(path, "count"),
                "give either `percent` or `count`, not both",
            );
            None
        }
        (Some(n), None) => r
            .parsed(n, &child(path, "percent"), "a percentage or range", |s| {
                PercentRange::parse(s).map_err(|e| e.to_string())
            })
            .map(Amount::Percent),
        (None, Some(n)) => r
            .integer(n, &child(path, "count"), 1, 10_000)
            .map(|c| Amount::Count(c as u32)),
        (None, None) => {
            r.error(
                f.mark,
                child(path, "percent"),
                "missing (give `percent: 25-50` or `count: N`)",
            );
            None
        }
    };
    Some(Target {
        namespace: namespace?,
        selector: selector?,
        amount: amount?,
    })
}

// Result<_, String>: the message for a person is the whole point: placed at file:line:col by the
// reader, with the zone meant.
fn parse_zone(text: &str) -> Result<Tz, String> {
    text.parse::<Tz>().map_err(|_| {
        // Names are case-sensitive: "utc" is UTC written in the wrong case.
        if let Some(zone) = chrono_tz::TZ_VARIANTS
            .iter()
            .find(|z| z.name().eq_ignore_ascii_case(text))
        {
            return format!(
                "unknown time zone {text:?} (did you mean {}? zone names are case-sensitive)",
                zone.name()
            );
        }
        let closest = chrono_tz::TZ_VARIANTS
            .iter()
            .map(|z| (strsim::levenshtein(text, z.name()), z.name()))
            .min_by_key(|(d, _)| *d)
            // A suggestion must share most of its letters with what was written: "42" is no
            // misspelling of "GB".
            .filter(|(d, name)| *d <= 3 && *d * 2 < name.len().max(text.len()) && text.chars().any(char::is_alphabetic))
            .map(|(_, name)| format!("did you mean {name}? "))
            .unwrap_or_default();
        format!("unknown time zone {text:?} ({closest}use an IANA name such as Europe/Berlin, America/New_York or UTC)")
    })
}

// Result<_, String>: the message for a person is the whole point: placed at file:line:col by the
// reader, or at FIREDRILL_STORE with its password starred out.
fn parse_store(text: &str) -> Result<Store, String> {
    if let Some(rest) = text
        .strip_prefix("sqlite://")
        .or_else(|| text.strip_prefix("sqlite:"))
    {
        if rest.is_empty() {
            return Err(format!(
                "{text:?} names no file (write e.g. sqlite://firedrill.db)"
            ));
        }
        return Ok(Store::Sqlite(rest.to_owned()));
    }
    if text.starts_with("postgres://") || text.starts_with("postgresql://") {
        url::Url::parse(text)
            .map_err(|e| format!("{text:?} is not a valid PostgreSQL URL: {e}"))?;
        return Ok(Store::Postgres(text.to_owned()));
    }
    Err(format!(
        "{text:?} is not a store (allowed: sqlite://FILE or postgres://USER@HOST/DB)"
    ))
}

/// `message` with the password of `url` starred out.
fn redact_password(message: &str, url: &str) -> String {
    match url::Url::parse(url)
        .ok()
        .and_then(|u| u.password().map(str::to_owned))
    {
        Some(password) if !password.is_empty() => message.replace(&password, "***"),
        _ => message.to_owned(),
    }
}

/// The required `namespace` key of a mapping at `path` that names pods by namespace and
/// selector (a drill's target, a `min_healthy` rule).
fn required_namespace(r: &mut Reader, f: &Fields, path: &str) -> Option<String> {
    r.required(f, "namespace", "a namespace name")
        .and_then(|n| {
            r.parsed(
                n,
                &child(path, "namespace"),
                "a namespace name",
                namespace_name,
            )
        })
}

#[cfg(test)]
mod tests;
