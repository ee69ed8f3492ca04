//! Vetoes of single fires: `firedrill skip` marks one fire of one drill, the scheduler reads the
//! marks when a fire comes due and records it `skipped` instead of running it, and `unskip` takes
//! a mark back before then. The marks live in one ConfigMap in firedrill's namespace,
//! `firedrill-skips`, labelled `firedrill.io/kind=skips`: one of that name without the label is
//! not firedrill's, and is neither followed nor replaced.
//!
//! A mark can only make firedrill do less: whoever can write that ConfigMap can veto fires, and
//! nothing more. Who marked a fire is the Kubernetes user the CLI's credentials named
//! ([`whoami`]), as the CLI saw it.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use firedrill_rollback::LABEL_KIND;
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use serde::{Deserialize, Serialize};

use crate::cluster::kubernetes::{firedrill_meta, Kube, KubeError};
use crate::config::Config;
use crate::schedule::{Calendar, FireStatus};

/// The ConfigMap the marks are kept in, in firedrill's namespace.
pub const SKIPS: &str = "firedrill-skips";
/// Its `firedrill.io/kind`: what makes a ConfigMap of that name firedrill's own.
pub const KIND_SKIPS: &str = "skips";
/// How long a mark whose fire the scheduler never handled is kept after its instant (a drill
/// removed from the file, a schedule changed): as far back as a scheduler looks for fires.
pub const KEPT: TimeDelta = TimeDelta::days(31);
/// How far ahead `skip` looks for the drill's fires.
pub const AHEAD: TimeDelta = TimeDelta::days(366);

/// One vetoed fire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skip {
    pub drill: String,
    /// The fire's scheduled instant (as `plan` shows it, UTC).
    pub scheduled: DateTime<Utc>,
    pub reason: String,
    /// The Kubernetes user who marked it, as the CLI saw it.
    pub by: String,
    /// When it was marked.
    pub marked: DateTime<Utc>,
}

impl Skip {
    /// Its key in the ConfigMap: the fire's run id (a valid key, one per fire).
    pub fn key(&self) -> String {
        crate::cluster::job::run_id(&self.drill, self.scheduled)
    }

    /// What the run record's reason says.
    pub fn describe(&self) -> String {
        format!("skipped by {}: {}", self.by, self.reason)
    }

    /// What the run record's evidence keeps.
    pub fn note(&self) -> crate::run::SkipNote {
        crate::run::SkipNote {
            by: self.by.clone(),
            reason: self.reason.clone(),
            marked: stamp(self.marked),
        }
    }
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The marks as read, with the version they were read at (every write is made at it).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Skips {
    /// By scheduled instant, then drill.
    pub marks: Vec<Skip>,
    /// Keys whose value is not a mark: kept as they are (never lost by a write), and said.
    pub unreadable: BTreeMap<String, String>,
    /// `None` when there is no ConfigMap yet.
    resource_version: Option<String>,
}

impl Skips {
    /// The marks in a ConfigMap's data.
    pub fn from_data(data: BTreeMap<String, String>) -> Self {
        let mut skips = Skips::default();
        for (key, value) in data {
            match serde_json::from_str::<Skip>(&value) {
                Ok(skip) if skip.key() == key => skips.marks.push(skip),
                _ => {
                    skips.unreadable.insert(key, value);
                }
            }
        }
        skips.sort();
        skips
    }

    fn sort(&mut self) {
        self.marks
            .sort_by(|a, b| (a.scheduled, &a.drill).cmp(&(b.scheduled, &b.drill)));
    }

    fn data(&self) -> BTreeMap<String, String> {
        let mut data = self.unreadable.clone();
        for skip in &self.marks {
            data.insert(skip.key(), serde_json::to_string(skip).unwrap_or_default());
        }
        data
    }

    /// The mark of one fire, if it has one.
    pub fn find(&self, drill: &str, scheduled: DateTime<Utc>) -> Option<&Skip> {
        self.marks
            .iter()
            .find(|s| s.drill == drill && s.scheduled == scheduled)
    }

    /// Takes the mark of one fire out; what it was.
    pub fn remove(&mut self, drill: &str, scheduled: DateTime<Utc>) -> Option<Skip> {
        let at = self
            .marks
            .iter()
            .position(|s| s.drill == drill && s.scheduled == scheduled)?;
        Some(self.marks.remove(at))
    }

    /// Drops the marks more than [`KEPT`] past their instant; whether any went.
    pub fn expire(&mut self, now: DateTime<Utc>) -> bool {
        let before = self.marks.len();
        self.marks.retain(|s| s.scheduled + KEPT >= now);
        self.marks.len() != before
    }

    /// The marks of one drill.
    pub fn of_drill<'a>(&'a self, drill: &'a str) -> impl Iterator<Item = &'a Skip> + 'a {
        self.marks.iter().filter(move |s| s.drill == drill)
    }
}

/// Why marks could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SkipError {
    #[error("ConfigMap {namespace}/{SKIPS} exists but is not firedrill's (it lacks the label {LABEL_KIND}={KIND_SKIPS}): firedrill neither reads nor replaces it; rename or delete it, then try again")]
    Foreign { namespace: String },
    #[error("{0}")]
    Api(#[from] KubeError),
    #[error("ConfigMap {namespace}/{SKIPS}: five conflicting writes in a row; try again")]
    Conflict { namespace: String },
    #[error("the fire of {drill} at {} is already skipped by {} ({}); `firedrill unskip` it first to change that", stamp(.existing.scheduled), .existing.by, .existing.reason)]
    AlreadySkipped { drill: String, existing: Skip },
    #[error("the fire of {drill} at {} is not skipped: nothing to unskip ({})", stamp(*.scheduled), marked_fires(.pending))]
    NotSkipped {
        drill: String,
        scheduled: DateTime<Utc>,
        /// The drill's marks there are.
        pending: Vec<DateTime<Utc>>,
    },
}

fn marked_fires(marks: &[DateTime<Utc>]) -> String {
    if marks.is_empty() {
        "the drill has no skipped fire".to_owned()
    } else {
        format!(
            "its skipped fires: {}",
            marks
                .iter()
                .map(|t| stamp(*t))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

fn config_maps(kube: &Kube) -> Api<ConfigMap> {
    Api::namespaced(kube.client().clone(), kube.namespace())
}

fn api_error(kube: &Kube, verb: &str, e: kube::Error) -> SkipError {
    SkipError::Api(KubeError::Api {
        action: format!("{verb} ConfigMap {}/{SKIPS}", kube.namespace()),
        source: Box::new(e),
    })
}

/// The marks in the cluster: none when there is no ConfigMap; an error for one that is not
/// firedrill's.
pub async fn read(kube: &Kube) -> Result<Skips, SkipError> {
    let cm = config_maps(kube)
        .get_opt(SKIPS)
        .await
        .map_err(|e| api_error(kube, "read", e))?;
    let Some(cm) = cm else {
        return Ok(Skips::default());
    };
    let own = cm
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL_KIND))
        .is_some_and(|k| k == KIND_SKIPS);
    if !own {
        return Err(SkipError::Foreign {
            namespace: kube.namespace().to_owned(),
        });
    }
    let mut skips = Skips::from_data(cm.data.unwrap_or_default());
    skips.resource_version = cm.metadata.resource_version;
    Ok(skips)
}

/// Changes the marks with `change`, written at the version read (created when there is no
/// ConfigMap), read and changed again on a conflict, five times at most. Marks more than
/// [`KEPT`] past are dropped on the way. Nothing is written when `change` fails, or when nothing
/// changed.
pub async fn change<T>(
    kube: &Kube,
    now: DateTime<Utc>,
    mut change: impl FnMut(&mut Skips) -> Result<T, SkipError>,
) -> Result<T, SkipError> {
    for _ in 0..5 {
        let mut skips = read(kube).await?;
        let before = skips.clone();
        skips.expire(now);
        let out = change(&mut skips)?;
        if skips == before {
            return Ok(out);
        }
        let mut cm = ConfigMap {
            metadata: firedrill_meta(SKIPS, kube.namespace()),
            data: Some(skips.data()),
            ..Default::default()
        };
        cm.metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert(LABEL_KIND.to_owned(), KIND_SKIPS.to_owned());
        let written = match &skips.resource_version {
            None => config_maps(kube).create(&PostParams::default(), &cm).await,
            Some(version) => {
                cm.metadata.resource_version = Some(version.clone());
                config_maps(kube)
                    .replace(SKIPS, &PostParams::default(), &cm)
                    .await
            }
        };
        match written {
            Ok(_) => return Ok(out),
            // Written by someone else since it was read (or created meanwhile): again.
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => {
                let verb = if skips.resource_version.is_none() {
                    "create"
                } else {
                    "update"
                };
                return Err(api_error(kube, verb, e));
            }
        }
    }
    Err(SkipError::Conflict {
        namespace: kube.namespace().to_owned(),
    })
}

/// Marks one fire skipped. A fire marked already is refused (its mark says by whom).
pub async fn mark(kube: &Kube, skip: &Skip, now: DateTime<Utc>) -> Result<(), SkipError> {
    change(kube, now, |skips| {
        if let Some(existing) = skips.find(&skip.drill, skip.scheduled) {
            return Err(SkipError::AlreadySkipped {
                drill: skip.drill.clone(),
                existing: existing.clone(),
            });
        }
        skips.marks.push(skip.clone());
        skips.sort();
        Ok(())
    })
    .await
}

/// Takes one fire's mark back; what it was. A fire not marked is an error naming the drill's
/// marks.
pub async fn unmark(
    kube: &Kube,
    drill: &str,
    scheduled: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Skip, SkipError> {
    change(kube, now, |skips| {
        skips
            .remove(drill, scheduled)
            .ok_or_else(|| SkipError::NotSkipped {
                drill: drill.to_owned(),
                scheduled,
                pending: skips.of_drill(drill).map(|s| s.scheduled).collect(),
            })
    })
    .await
}

/// The Kubernetes user the credentials are, from a SelfSubjectReview; when the API refuses one,
/// `unknown (SelfSubjectReview refused: ...)` (a veto is not refused for it).
pub async fn whoami(kube: &Kube) -> String {
    let api: Api<SelfSubjectReview> = Api::all(kube.client().clone());
    match api
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
    {
        Ok(review) => review
            .status
            .and_then(|s| s.user_info)
            .and_then(|u| u.username)
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "unknown (SelfSubjectReview named no user)".to_owned()),
        Err(e) => format!("unknown (SelfSubjectReview refused: {e})"),
    }
}

/// Why `skip` or `unskip` was given no fire it can act on: a usage error.
#[derive(Debug, thiserror::Error)]
pub enum ChoiceError {
    #[error("no drill {drill} in {file} (its drills: {known})")]
    UnknownDrill {
        drill: String,
        file: String,
        known: String,
    },
    #[error("{drill} has no fire at {} ({why}); its next fires: {}", stamp(*.at), fires(.next))]
    NotAFire {
        drill: String,
        at: DateTime<Utc>,
        why: String,
        next: Vec<DateTime<Utc>>,
    },
    #[error("{drill} has no fire within a year")]
    NoFire { drill: String },
}

fn fires(next: &[DateTime<Utc>]) -> String {
    if next.is_empty() {
        "none within a year".to_owned()
    } else {
        next.iter()
            .map(|t| stamp(*t))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The fire `skip DRILL --at T` or `--next` means: `at` must be one of the drill's fires after
/// `now` within a year that the calendar lets start (not skipped for a blackout, not missed);
/// without `at`, the first such fire.
pub fn choose(
    config: &Config,
    drill: &str,
    at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, ChoiceError> {
    let index = known(config, drill)?;
    let calendar = Calendar::<()>::window(
        config.planned_drills(),
        config.timezone,
        &config.blackouts,
        config.concurrency as usize,
        now,
        now + AHEAD,
    );
    for (fire, _) in calendar {
        if fire.drill != index || fire.scheduled <= now {
            continue;
        }
        let starts = !matches!(fire.status, FireStatus::Skipped | FireStatus::Missed);
        match at {
            None if starts => return Ok(fire.scheduled),
            Some(at) if fire.scheduled == at => {
                if starts {
                    return Ok(at);
                }
                let why = format!(
                    "it is {} anyway: {}",
                    fire.status,
                    fire.reason.unwrap_or_default()
                );
                return Err(not_a_fire(config, index, drill, at, why, now));
            }
            Some(at) if fire.scheduled > at => break,
            _ => {}
        }
    }
    match at {
        None => Err(ChoiceError::NoFire {
            drill: drill.to_owned(),
        }),
        Some(at) => {
            let why = if at <= now {
                "that is not ahead".to_owned()
            } else if at > now + AHEAD {
                "more than a year ahead".to_owned()
            } else {
                "not an instant of its schedule".to_owned()
            };
            Err(not_a_fire(config, index, drill, at, why, now))
        }
    }
}

fn not_a_fire(
    config: &Config,
    index: usize,
    drill: &str,
    at: DateTime<Utc>,
    why: String,
    now: DateTime<Utc>,
) -> ChoiceError {
    let next = Calendar::<()>::window(
        config.planned_drills(),
        config.timezone,
        &config.blackouts,
        config.concurrency as usize,
        now,
        now + AHEAD,
    )
    .map(|(f, _)| f)
    .filter(|f| f.drill == index && f.scheduled > now)
    .filter(|f| !matches!(f.status, FireStatus::Skipped | FireStatus::Missed))
    .take(3)
    .map(|f| f.scheduled)
    .collect();
    ChoiceError::NotAFire {
        drill: drill.to_owned(),
        at,
        why,
        next,
    }
}

/// The drill's index in the file, or the usage error naming the drills there are.
pub fn known(config: &Config, drill: &str) -> Result<usize, ChoiceError> {
    config
        .drills
        .iter()
        .position(|d| d.name == drill)
        .ok_or_else(|| ChoiceError::UnknownDrill {
            drill: drill.to_owned(),
            file: config.source.display().to_string(),
            known: config
                .drills
                .iter()
                .map(|d| d.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn config() -> Config {
        Config::parse(
            r#"
blackouts:
  - { name: weekends, weekdays: [Sat, Sun] }
drills:
  - { name: daily, kind: probe, schedule: "0 10 * * *", duration: 2s }
  - { name: other, kind: probe, schedule: "0 12 * * *", duration: 2s }
"#,
            std::path::Path::new("skips.yaml"),
        )
        .unwrap()
    }

    #[test]
    fn the_next_fire_or_one_named_and_nothing_else() {
        let c = config();
        // Friday 2027-01-15 11:00: the next start is Monday's (the weekend's are skipped).
        let now = utc("2027-01-15T11:00:00Z");
        assert_eq!(
            choose(&c, "daily", None, now).unwrap(),
            utc("2027-01-18T10:00:00Z")
        );
        assert_eq!(
            choose(&c, "daily", Some(utc("2027-01-19T10:00:00Z")), now).unwrap(),
            utc("2027-01-19T10:00:00Z")
        );
        let e = choose(&c, "daily", Some(utc("2027-01-19T10:30:00Z")), now).unwrap_err();
        assert_eq!(
            e.to_string(),
            "daily has no fire at 2027-01-19T10:30:00Z (not an instant of its schedule); its next fires: 2027-01-18T10:00:00Z, 2027-01-19T10:00:00Z, 2027-01-20T10:00:00Z"
        );
        let e = choose(&c, "daily", Some(utc("2027-01-16T10:00:00Z")), now).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("daily has no fire at 2027-01-16T10:00:00Z (it is skipped anyway: in blackout weekends)"),
            "{e}"
        );
        let e = choose(&c, "daily", Some(utc("2027-01-14T10:00:00Z")), now).unwrap_err();
        assert!(e.to_string().contains("(that is not ahead)"), "{e}");
        let e = choose(&c, "nightly", None, now).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no drill nightly in skips.yaml (its drills: daily, other)"
        );
    }

    #[test]
    fn marks_round_trip_keep_what_they_cannot_read_and_expire() {
        let skip = Skip {
            drill: "daily".into(),
            scheduled: utc("2027-01-18T10:00:00Z"),
            reason: "INC-7: \"the\" database is failing over".into(),
            by: "ana@example.com".into(),
            marked: utc("2027-01-15T11:00:00Z"),
        };
        let mut data = BTreeMap::from([("stray".to_owned(), "not a mark".to_owned())]);
        data.insert(skip.key(), serde_json::to_string(&skip).unwrap());
        let mut skips = Skips::from_data(data.clone());
        assert_eq!(skips.marks, std::slice::from_ref(&skip));
        assert_eq!(skips.data(), data, "written back as read");
        assert_eq!(
            skip.describe(),
            "skipped by ana@example.com: INC-7: \"the\" database is failing over"
        );
        assert!(!skips.expire(utc("2027-02-18T10:00:00Z")));
        assert!(skips.expire(utc("2027-02-18T10:00:01Z")));
        assert!(skips.marks.is_empty() && skips.unreadable.len() == 1);
        // A mark filed under another fire's key is not that fire's.
        let moved = BTreeMap::from([(
            "daily-other".to_owned(),
            serde_json::to_string(&skip).unwrap(),
        )]);
        assert!(Skips::from_data(moved).marks.is_empty());
    }
}
