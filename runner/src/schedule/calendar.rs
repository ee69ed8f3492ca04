//! The calendar: every fire of every drill in a window, and what becomes of it.
//!
//! A discrete-event simulation in time order. Each fire is ready at its scheduled instant; a
//! blackout skips it or defers it to the first free instant; when `concurrency` drills are already
//! running it waits for the earliest to end, unless that is past its deadline (then it is missed).
//! Waiting fires are served first come, first served.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use chrono_tz::Tz;

use super::blackout::{self, Blackout};
use super::cron::Cron;
use super::zone::Occurrences;

/// What the calendar needs to know of one drill.
#[derive(Clone, Debug)]
pub struct PlannedDrill<'a> {
    pub name: &'a str,
    pub cron: &'a Cron,
    pub zone: Tz,
    pub duration: Duration,
    pub deadline: Duration,
    pub defer_on_blackout: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FireStatus {
    /// Starts at its scheduled instant.
    Fires,
    /// Falls in a blackout and the drill skips blackouts.
    Skipped,
    /// Moved past one or more blackouts.
    Deferred,
    /// Waits for other drills to finish because of `concurrency`.
    Queued,
    /// Would wait past its deadline.
    Missed,
}

impl fmt::Display for FireStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FireStatus::Fires => "fires",
            FireStatus::Skipped => "skipped",
            FireStatus::Deferred => "deferred",
            FireStatus::Queued => "queued",
            FireStatus::Missed => "missed",
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fire {
    /// Index of the drill in the slice given to [`plan`].
    pub drill: usize,
    pub scheduled: DateTime<Utc>,
    /// When it actually starts; `None` when it is skipped or missed.
    pub start: Option<DateTime<Utc>>,
    pub status: FireStatus,
    pub reason: Option<String>,
}

/// Fires scheduled after the window still compete for slots with fires the window pushed past its
/// end; this much beyond the window (plus the longest deadline) is simulated too.
const LOOKAHEAD: TimeDelta = TimeDelta::days(45);

fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

fn rfc3339(t: DateTime<Utc>, zone: Tz) -> String {
    t.with_timezone(&zone)
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Every fire scheduled in `[from, until)`, in order of scheduled instant then drill, with what
/// becomes of it. `blackout_zone` is the zone blackouts are written in (the file's).
pub fn plan(
    drills: &[PlannedDrill],
    blackout_zone: Tz,
    blackouts: &[Blackout],
    concurrency: usize,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Vec<Fire> {
    let longest_deadline = drills.iter().map(|d| d.deadline).max().unwrap_or_default();
    let horizon = until
        .checked_add_signed(LOOKAHEAD + delta(longest_deadline))
        .unwrap_or(until);
    let mut fires = simulate(
        drills,
        blackout_zone,
        blackouts,
        concurrency.max(1),
        from,
        horizon,
        None,
    );
    fires.retain(|f| f.scheduled < until);
    fires
}

/// The first `n` fires from `from` on (searching no further than `until`), each with the fate
/// it has in the whole calendar. The simulation stops as soon as those `n` are decided, so the
/// cost follows `n` and the drills, not a year of fires.
pub fn plan_next(
    drills: &[PlannedDrill],
    blackout_zone: Tz,
    blackouts: &[Blackout],
    concurrency: usize,
    from: DateTime<Utc>,
    n: usize,
    until: DateTime<Utc>,
) -> Vec<Fire> {
    let mut fires = simulate(
        drills,
        blackout_zone,
        blackouts,
        concurrency.max(1),
        from,
        until,
        Some(n),
    );
    fires.truncate(n);
    fires
}

/// A fire waiting to start: (ready at, due at, drill, fire). Earliest ready first; ties go to
/// whoever was due first, then to the drill written first.
type Ready = Reverse<(DateTime<Utc>, DateTime<Utc>, usize, usize)>;

/// What has happened to a fire so far, while it waits.
struct Waiting {
    /// Taken up at least once (its drill's next fire is then queued).
    taken: bool,
    /// Its place among fires in scheduled order, given when first taken up.
    rank: usize,
    /// The instant it should start if nothing else were running (scheduled, or after deferral).
    due: Option<DateTime<Utc>>,
    deferred_past: Vec<String>,
    waited_for: Option<usize>,
}

impl Default for Waiting {
    fn default() -> Self {
        Waiting {
            taken: false,
            rank: usize::MAX,
            due: None,
            deferred_past: Vec::new(),
            waited_for: None,
        }
    }
}

/// Fires in time order, generated lazily from each drill's schedule up to `horizon`. With
/// `first`, stops once the first that many fires (in scheduled order) are decided. Returns the
/// fires in order of scheduled instant then drill.
fn simulate(
    drills: &[PlannedDrill],
    blackout_zone: Tz,
    blackouts: &[Blackout],
    concurrency: usize,
    from: DateTime<Utc>,
    horizon: DateTime<Utc>,
    first: Option<usize>,
) -> Vec<Fire> {
    let mut sources: Vec<Occurrences> = drills
        .iter()
        .map(|d| Occurrences::new(d.cron, d.zone, from, horizon))
        .collect();
    let mut fires: Vec<Fire> = Vec::new();
    let mut waiting: Vec<Waiting> = Vec::new();
    let mut ready: BinaryHeap<Ready> = BinaryHeap::new();
    // A drill's next fire enters the queue when its previous one is first taken up: fresh fires
    // then come out in (scheduled, drill) order, exactly as if all had been queued up front.
    let enqueue_next = |drill: usize,
                        sources: &mut Vec<Occurrences>,
                        fires: &mut Vec<Fire>,
                        waiting: &mut Vec<Waiting>,
                        ready: &mut BinaryHeap<Ready>| {
        if let Some(scheduled) = sources[drill].next() {
            let i = fires.len();
            fires.push(Fire {
                drill,
                scheduled,
                start: None,
                status: FireStatus::Fires,
                reason: None,
            });
            waiting.push(Waiting::default());
            ready.push(Reverse((scheduled, scheduled, drill, i)));
        }
    };
    for drill in 0..drills.len() {
        enqueue_next(drill, &mut sources, &mut fires, &mut waiting, &mut ready);
    }
    // With `first`: the fires taken up fresh so far (in scheduled order) and how many of the
    // first `first` of them are still undecided.
    let mut fresh_taken = 0usize;
    let mut undecided = 0usize;
    // (end, drill) of the runs in progress.
    let mut running: BinaryHeap<Reverse<(DateTime<Utc>, usize)>> = BinaryHeap::new();
    let wanted = |i: usize, waiting: &[Waiting]| first.is_some_and(|n| waiting[i].rank < n);

    while let Some(Reverse((t, due, drill_index, i))) = ready.pop() {
        if !waiting[i].taken {
            waiting[i].taken = true;
            waiting[i].rank = fresh_taken;
            fresh_taken += 1;
            if wanted(i, &waiting) {
                undecided += 1;
            }
            enqueue_next(
                drill_index,
                &mut sources,
                &mut fires,
                &mut waiting,
                &mut ready,
            );
        }
        let decided = simulate_step(
            drills,
            blackout_zone,
            blackouts,
            concurrency,
            (t, due, drill_index, i),
            &mut fires,
            &mut waiting,
            &mut ready,
            &mut running,
        );
        if decided && wanted(i, &waiting) {
            undecided -= 1;
            if first.is_some_and(|n| fresh_taken >= n) && undecided == 0 {
                break;
            }
        }
    }
    fires.sort_by_key(|f| (f.scheduled, f.drill));
    fires
}

/// Takes up one fire at instant `t`: it starts, is skipped or missed (true: decided), or waits
/// (re-queued: false).
#[allow(clippy::too_many_arguments)]
fn simulate_step(
    drills: &[PlannedDrill],
    blackout_zone: Tz,
    blackouts: &[Blackout],
    concurrency: usize,
    (t, due, drill_index, i): (DateTime<Utc>, DateTime<Utc>, usize, usize),
    fires: &mut [Fire],
    waiting: &mut [Waiting],
    ready: &mut BinaryHeap<Ready>,
    running: &mut BinaryHeap<Reverse<(DateTime<Utc>, usize)>>,
) -> bool {
    let drill = &drills[drill_index];
    let state = &mut waiting[i];
    let covering = blackout::covering(blackout_zone, blackouts, t);
    if !covering.is_empty() {
        let names: Vec<&str> = covering.iter().map(|(b, _)| b.name.as_str()).collect();
        let waited = state
            .waited_for
            .map(|w| {
                format!(
                    "waited for {} until {}, ",
                    drills[w].name,
                    rfc3339(t, drill.zone)
                )
            })
            .unwrap_or_default();
        if !drill.defer_on_blackout {
            fires[i].status = FireStatus::Skipped;
            fires[i].reason = Some(format!("{waited}in blackout {}", names.join(", ")));
            return true;
        }
        match blackout::first_free(blackout_zone, blackouts, t) {
            Some((free, passed)) => {
                for name in passed {
                    if !state.deferred_past.contains(&name) {
                        state.deferred_past.push(name);
                    }
                }
                state.due = Some(free);
                ready.push(Reverse((free, free, drill_index, i)));
                return false;
            }
            None => {
                fires[i].status = FireStatus::Skipped;
                fires[i].reason = Some(format!(
                    "{waited}in blackout {}, and blackouts leave no free instant to defer to",
                    names.join(", ")
                ));
                return true;
            }
        }
    }

    while running.peek().is_some_and(|Reverse((end, _))| *end <= t) {
        running.pop();
    }
    let deferred = (!state.deferred_past.is_empty())
        .then(|| format!("deferred past blackout {}", state.deferred_past.join(", ")));
    if running.len() < concurrency {
        running.push(Reverse((t + delta(drill.duration), drill_index)));
        let fire = &mut fires[i];
        fire.start = Some(t);
        let waited = state
            .waited_for
            .map(|w| format!("waits for {} (concurrency {concurrency})", drills[w].name));
        (fire.status, fire.reason) = match (deferred, waited) {
            (None, None) => (FireStatus::Fires, None),
            (Some(d), None) => (FireStatus::Deferred, Some(d)),
            (None, Some(w)) => (FireStatus::Queued, Some(w)),
            (Some(d), Some(w)) => (FireStatus::Queued, Some(format!("{d}; then {w}"))),
        };
        return true;
    }
    // `concurrency` is at least one, so a full slot list has a first to end.
    let Some(&Reverse((free_at, blocker))) = running.peek() else {
        return false;
    };
    let due = state.due.unwrap_or(due);
    if free_at - due > delta(drill.deadline) {
        let fire = &mut fires[i];
        fire.status = FireStatus::Missed;
        fire.reason = Some(format!(
            "{}would wait for {} until {}, past its deadline of {}",
            deferred.map(|d| format!("{d}; then ")).unwrap_or_default(),
            drills[blocker].name,
            rfc3339(free_at, drill.zone),
            crate::duration::format(drill.deadline)
        ));
        return true;
    }
    state.waited_for = Some(blocker);
    state.due = Some(due);
    ready.push(Reverse((free_at, due, drill_index, i)));
    false
}

/// One fire of every drill at `at`, as if scheduled then: blackouts apply (skip, or defer to
/// the first free instant); other drills' runs are not considered.
pub fn fires_at(
    drills: &[PlannedDrill],
    blackout_zone: Tz,
    blackouts: &[Blackout],
    at: DateTime<Utc>,
) -> Vec<Fire> {
    let covering: Vec<&str> = blackout::covering(blackout_zone, blackouts, at)
        .iter()
        .map(|(b, _)| b.name.as_str())
        .collect();
    drills
        .iter()
        .enumerate()
        .map(|(index, drill)| {
            let mut fire = Fire {
                drill: index,
                scheduled: at,
                start: Some(at),
                status: FireStatus::Fires,
                reason: None,
            };
            if covering.is_empty() {
                return fire;
            }
            if drill.defer_on_blackout {
                if let Some((free, passed)) = blackout::first_free(blackout_zone, blackouts, at) {
                    fire.start = Some(free);
                    fire.status = FireStatus::Deferred;
                    fire.reason = Some(format!("deferred past blackout {}", passed.join(", ")));
                    return fire;
                }
            }
            fire.start = None;
            fire.status = FireStatus::Skipped;
            fire.reason = Some(format!("in blackout {}", covering.join(", ")));
            fire
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    struct Fixture {
        crons: Vec<Cron>,
        specs: Vec<(&'static str, u64, u64, bool)>,
    }

    impl Fixture {
        /// (name, cron, duration minutes, deadline minutes, defer)
        fn new(drills: &[(&'static str, &str, u64, u64, bool)]) -> Self {
            Fixture {
                crons: drills.iter().map(|d| Cron::parse(d.1).unwrap()).collect(),
                specs: drills.iter().map(|d| (d.0, d.2, d.3, d.4)).collect(),
            }
        }

        fn drills(&self) -> Vec<PlannedDrill<'_>> {
            self.crons
                .iter()
                .zip(&self.specs)
                .map(|(cron, (name, duration, deadline, defer))| PlannedDrill {
                    name,
                    cron,
                    zone: chrono_tz::Europe::Berlin,
                    duration: Duration::from_secs(duration * 60),
                    deadline: Duration::from_secs(deadline * 60),
                    defer_on_blackout: *defer,
                })
                .collect()
        }
    }

    fn summary(drills: &[PlannedDrill], fires: &[Fire]) -> Vec<String> {
        fires
            .iter()
            .map(|f| {
                format!(
                    "{} {} {} {}",
                    drills[f.drill].name,
                    f.status,
                    f.start
                        .map(|s| rfc3339(s, chrono_tz::Europe::Berlin))
                        .unwrap_or_else(|| "-".into()),
                    f.reason.clone().unwrap_or_default()
                )
            })
            .collect()
    }

    #[test]
    fn concurrency_queues_then_misses_past_the_deadline() {
        let fx = Fixture::new(&[
            ("a", "0 10 15 * *", 30, 60, false),
            ("b", "0 10 15 * *", 20, 60, false),
            ("c", "10 10 15 * *", 30, 30, false),
        ]);
        let drills = fx.drills();
        let fires = plan(
            &drills,
            chrono_tz::Europe::Berlin,
            &[],
            1,
            utc("2026-12-01T00:00:00Z"),
            utc("2027-01-01T00:00:00Z"),
        );
        assert_eq!(
            summary(&drills, &fires),
            vec![
                "a fires 2026-12-15T10:00:00+01:00 ",
                "b queued 2026-12-15T10:30:00+01:00 waits for a (concurrency 1)",
                // c is due 10:10; a ends 10:30, b ends 10:50: 40 minutes late > 30.
                "c missed - would wait for b until 2026-12-15T10:50:00+01:00, past its deadline of 30m",
            ]
        );
        let two = plan(
            &drills,
            chrono_tz::Europe::Berlin,
            &[],
            2,
            utc("2026-12-01T00:00:00Z"),
            utc("2027-01-01T00:00:00Z"),
        );
        assert_eq!(
            summary(&drills, &two)[2],
            "c queued 2026-12-15T10:20:00+01:00 waits for b (concurrency 2)"
        );
    }

    #[test]
    fn blackouts_skip_or_defer_and_queued_fires_respect_them() {
        let fx = Fixture::new(&[
            ("skipper", "0 12 * * SAT", 10, 60, false),
            ("deferrer", "0 12 * * SAT", 10, 60, true),
        ]);
        let drills = fx.drills();
        let weekends = Blackout {
            name: "weekends".into(),
            dates: None,
            weekdays: Some(0b110_0000),
            times: None,
        };
        let fires = plan(
            &drills,
            chrono_tz::Europe::Berlin,
            &[weekends],
            1,
            utc("2026-11-27T00:00:00Z"),
            utc("2026-12-01T00:00:00Z"),
        );
        assert_eq!(
            summary(&drills, &fires),
            vec![
                "skipper skipped - in blackout weekends",
                "deferrer deferred 2026-11-30T00:00:00+01:00 deferred past blackout weekends",
            ]
        );
    }

    #[test]
    fn a_queued_fire_that_lands_in_a_blackout_is_skipped_or_deferred() {
        let fx = Fixture::new(&[
            ("long", "0 21 * * FRI", 180, 60, false),
            ("skipper", "0 22 * * FRI", 10, 240, false),
        ]);
        let drills = fx.drills();
        let nightly_sat = Blackout {
            name: "saturday".into(),
            dates: None,
            weekdays: Some(1 << 5),
            times: None,
        };
        let fires = plan(
            &drills,
            chrono_tz::Europe::Berlin,
            &[nightly_sat],
            1,
            utc("2026-11-27T00:00:00Z"),
            utc("2026-11-28T00:00:00Z"),
        );
        assert_eq!(
            summary(&drills, &fires)[1],
            "skipper skipped - waited for long until 2026-11-28T00:00:00+01:00, in blackout saturday"
        );
    }

    #[test]
    fn same_instant_ties_go_to_the_first_drill_in_the_file() {
        let fx = Fixture::new(&[
            ("first", "@daily", 5, 60, false),
            ("second", "@daily", 5, 60, false),
        ]);
        let drills = fx.drills();
        let day = NaiveDate::from_ymd_opt(2027, 1, 1).unwrap();
        let from = day.and_hms_opt(0, 0, 0).unwrap().and_utc();
        let fires = plan(
            &drills,
            chrono_tz::UTC,
            &[],
            1,
            from,
            from + TimeDelta::days(1),
        );
        let s = summary(&drills, &fires);
        assert!(s[0].starts_with("first fires"), "{s:?}");
        assert!(s[1].starts_with("second queued"), "{s:?}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, ..Default::default() })]

        /// `--next N` stops early, yet every fire it shows has the fate the full calendar gives.
        #[test]
        fn the_next_n_fires_are_the_first_n_of_the_calendar(
            specs in proptest::collection::vec(
                (0u32..4, 8u32..12, 1u32..29, 5u64..240, 0u64..120, proptest::bool::ANY),
                1..7,
            ),
            concurrency in 1usize..3,
            n in 1usize..40,
            with_blackout in proptest::bool::ANY,
        ) {
            let crons: Vec<String> = specs
                .iter()
                .map(|(m, h, d, ..)| match m {
                    0 => format!("{} {h} {d} * *", m * 15),
                    1 => format!("30 {h} * * {}", d % 7),
                    2 => format!("0 {h} * * *"),
                    _ => format!("{} {h} {d},{} * *", m * 10, (d + 7) % 28 + 1),
                })
                .collect();
            let specs: Vec<(&'static str, &str, u64, u64, bool)> = specs
                .iter()
                .zip(&crons)
                .enumerate()
                .map(|(i, ((_, _, _, duration, deadline, defer), cron))| {
                    (["a", "b", "c", "d", "e", "f", "g"][i], cron.as_str(), *duration, *deadline, *defer)
                })
                .collect();
            let fx = Fixture::new(&specs);
            let drills = fx.drills();
            let blackouts = if with_blackout {
                vec![Blackout {
                    name: "weekends".into(),
                    dates: None,
                    weekdays: Some(0b110_0000),
                    times: None,
                }]
            } else {
                Vec::new()
            };
            let from = utc("2026-11-20T09:00:00Z");
            let year = plan(&drills, chrono_tz::Europe::Berlin, &blackouts, concurrency, from, utc("2028-01-01T00:00:00Z"));
            let next = plan_next(&drills, chrono_tz::Europe::Berlin, &blackouts, concurrency, from, n, utc("2030-01-01T00:00:00Z"));
            // The year may hold fewer than n; past its end `next` may show more.
            let k = n.min(year.len());
            proptest::prop_assert!(next.len() >= k);
            proptest::prop_assert_eq!(&next[..k], &year[..k]);
        }
    }
}
