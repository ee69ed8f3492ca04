//! The calendar: every fire of every drill in a window, and what becomes of it.
//!
//! A discrete-event simulation in time order. Each fire is ready at its scheduled instant; a
//! blackout skips it or defers it to the first free instant; when `concurrency` drills are already
//! running it waits for the earliest to end, unless that is past its deadline (then it is missed).
//! Waiting fires are served first come, first served.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
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

impl FireStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            FireStatus::Fires => "fires",
            FireStatus::Skipped => "skipped",
            FireStatus::Deferred => "deferred",
            FireStatus::Queued => "queued",
            FireStatus::Missed => "missed",
        }
    }
}

impl fmt::Display for FireStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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
/// end; this much beyond the window (plus the longest deadline) is simulated too, as far as the
/// fires in the window need it.
const LOOKAHEAD: TimeDelta = TimeDelta::days(45);

fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

fn rfc3339(t: DateTime<Utc>, zone: Tz) -> String {
    t.with_timezone(&zone)
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Every fire scheduled in `[from, until)`, in order of scheduled instant then drill, with what
/// becomes of it. `blackout_zone` is the zone blackouts are written in (the file's). All of it at
/// once: a long window is better read from a [`Calendar`], which holds only the fires in flight.
pub fn plan(
    drills: &[PlannedDrill],
    blackout_zone: Tz,
    blackouts: &[Blackout],
    concurrency: usize,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Vec<Fire> {
    Calendar::<()>::window(
        drills.to_vec(),
        blackout_zone,
        blackouts,
        concurrency,
        from,
        until,
    )
    .map(|(fire, _)| fire)
    .collect()
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
    Calendar::<()>::open(
        drills.to_vec(),
        blackout_zone,
        blackouts,
        concurrency,
        from,
        until,
    )
    .take(n)
    .map(|(fire, _)| fire)
    .collect()
}

/// A fire waiting to start: (ready at, due at, drill, scheduled). Earliest ready first; ties go
/// to whoever was due first, then to the drill written first, then to the drill's earlier fire.
type Ready = Reverse<(DateTime<Utc>, DateTime<Utc>, usize, DateTime<Utc>)>;

/// A fire's place in the calendar's order: (scheduled, drill).
type Key = (DateTime<Utc>, usize);

/// What has happened to a fire so far, while it waits.
#[derive(Clone, Debug)]
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

/// How far a held fire is.
#[derive(Clone, Debug)]
enum Decided<V> {
    No,
    /// It starts at the instant being simulated; its note is taken once nothing else can start
    /// then.
    Starting,
    /// Decided and noted: it can be handed out once every fire before it is.
    Yes(Option<V>),
}

#[derive(Clone, Debug)]
struct Held<V> {
    fire: Fire,
    waiting: Waiting,
    decided: Decided<V>,
}

/// Where a [`Calendar`] is, without what it reads (the drills, the blackouts): kept between two
/// scheduler ticks and resumed with [`Calendar::resume`] on the same drills.
#[derive(Clone, Debug)]
pub struct CalendarState<V = ()> {
    sources: Vec<Occurrences>,
    /// Every fire taken from the sources and not yet handed out: the ones waiting, and the ones
    /// decided before a fire scheduled earlier is.
    held: BTreeMap<Key, Held<V>>,
    ready: BinaryHeap<Ready>,
    /// (end, drill) of the runs in progress.
    running: BinaryHeap<Reverse<(DateTime<Utc>, usize)>>,
    /// The fires that start at `starting_at`, in the order they were decided.
    starting: Vec<Key>,
    starting_at: DateTime<Utc>,
    /// How many fires were taken up so far.
    taken: usize,
    /// Fires scheduled at or after this are not handed out.
    stop: DateTime<Utc>,
}

impl<V> CalendarState<V> {
    /// A drill's next fire enters the queue when its previous one is first taken up: fresh fires
    /// then come out in (scheduled, drill) order, exactly as if all had been queued up front, and
    /// every drill has its next fire held, so nothing not yet taken can come before a held one.
    fn enqueue_next(&mut self, drill: usize) {
        if let Some(scheduled) = self.sources[drill].next() {
            self.held.insert(
                (scheduled, drill),
                Held {
                    fire: Fire {
                        drill,
                        scheduled,
                        start: None,
                        status: FireStatus::Fires,
                        reason: None,
                    },
                    waiting: Waiting::default(),
                    decided: Decided::No,
                },
            );
            self.ready
                .push(Reverse((scheduled, scheduled, drill, scheduled)));
        }
    }
}

/// What a caller notes of each fire that starts, told in the order fires start (ties in
/// calendar order) with the fire's place in the calendar; `None` notes nothing.
type Note<'a, V> = Box<dyn FnMut(&Fire, usize) -> Option<V> + 'a>;

/// The calendar as a stream: a discrete-event simulation that runs only as far as the next fire
/// to hand out needs, and holds only the fires in flight, never the period's. Hands out every
/// fire in order of scheduled instant then drill, with what becomes of it and the caller's note.
pub struct Calendar<'a, V = ()> {
    drills: Vec<PlannedDrill<'a>>,
    blackout_zone: Tz,
    blackouts: &'a [Blackout],
    concurrency: usize,
    note: Option<Note<'a, V>>,
    state: CalendarState<V>,
}

impl<'a, V> Calendar<'a, V> {
    /// The fires scheduled in `[from, until)`. Fires after the window are simulated too, as far
    /// as they can still take a slot from one in it.
    pub fn window(
        drills: Vec<PlannedDrill<'a>>,
        blackout_zone: Tz,
        blackouts: &'a [Blackout],
        concurrency: usize,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Self {
        let longest_deadline = drills.iter().map(|d| d.deadline).max().unwrap_or_default();
        let horizon = until
            .checked_add_signed(LOOKAHEAD + delta(longest_deadline))
            .unwrap_or(until);
        let state = Self::start(&drills, from, horizon, until);
        Self::resume(drills, blackout_zone, blackouts, concurrency, state)
    }

    /// Every fire from `from` on, scheduled before `until` (the furthest it searches).
    pub fn open(
        drills: Vec<PlannedDrill<'a>>,
        blackout_zone: Tz,
        blackouts: &'a [Blackout],
        concurrency: usize,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Self {
        let state = Self::start(&drills, from, until, until);
        Self::resume(drills, blackout_zone, blackouts, concurrency, state)
    }

    /// Goes on where [`Calendar::into_state`] left off; `drills`, the blackouts and the
    /// concurrency must be the ones it was made with.
    pub fn resume(
        drills: Vec<PlannedDrill<'a>>,
        blackout_zone: Tz,
        blackouts: &'a [Blackout],
        concurrency: usize,
        state: CalendarState<V>,
    ) -> Self {
        Calendar {
            drills,
            blackout_zone,
            blackouts,
            concurrency: concurrency.max(1),
            note: None,
            state,
        }
    }

    fn start(
        drills: &[PlannedDrill],
        from: DateTime<Utc>,
        horizon: DateTime<Utc>,
        stop: DateTime<Utc>,
    ) -> CalendarState<V> {
        let mut state = CalendarState {
            sources: drills
                .iter()
                .map(|d| Occurrences::new(d.cron, d.zone, from, horizon))
                .collect(),
            held: BTreeMap::new(),
            ready: BinaryHeap::new(),
            running: BinaryHeap::new(),
            starting: Vec::new(),
            starting_at: from,
            taken: 0,
            stop,
        };
        for drill in 0..drills.len() {
            state.enqueue_next(drill);
        }
        state
    }

    /// Notes each fire that starts, in the order fires start (as a cooldown sees them).
    pub fn noting(mut self, note: impl FnMut(&Fire, usize) -> Option<V> + 'a) -> Self {
        self.note = Some(Box::new(note));
        self
    }

    /// Where it is, to [`Calendar::resume`] later.
    pub fn into_state(self) -> CalendarState<V> {
        self.state
    }

    /// How many fires it holds now: the ones in flight, never the period's.
    pub fn held(&self) -> usize {
        self.state.held.len()
    }

    /// The next fire, if it is scheduled before `limit`; the simulation goes only as far as
    /// deciding it takes.
    pub fn next_before(&mut self, limit: DateTime<Utc>) -> Option<(Fire, Option<V>)> {
        let limit = limit.min(self.state.stop);
        loop {
            match self.state.held.first_key_value() {
                None => return None,
                Some((key, _)) if key.0 >= limit => return None,
                Some((_, held)) if matches!(held.decided, Decided::Yes(_)) => {
                    let (_, held) = self.state.held.pop_first()?;
                    let Decided::Yes(note) = held.decided else {
                        return None;
                    };
                    return Some((held.fire, note));
                }
                Some(_) => {}
            }
            if !self.step() {
                // Only a fire nothing will ever decide could be left: hand out none rather
                // than loop.
                return None;
            }
        }
    }

    /// One event of the simulation; false when nothing is left to happen.
    fn step(&mut self) -> bool {
        let Some(&Reverse((t, due, drill, scheduled))) = self.state.ready.peek() else {
            if self.state.starting.is_empty() {
                return false;
            }
            self.note_starting();
            return true;
        };
        // Time moves on: nothing else can start at the instant before, so its fires are noted.
        if !self.state.starting.is_empty() && t > self.state.starting_at {
            self.note_starting();
            return true;
        }
        self.state.ready.pop();
        let key = (scheduled, drill);
        let state = &mut self.state;
        let fresh = match state.held.get_mut(&key) {
            Some(held) if !held.waiting.taken => {
                held.waiting.taken = true;
                held.waiting.rank = state.taken;
                state.taken += 1;
                true
            }
            Some(_) => false,
            None => return true,
        };
        if fresh {
            state.enqueue_next(drill);
        }
        let CalendarState {
            held,
            ready,
            running,
            starting,
            starting_at,
            ..
        } = state;
        let Some(h) = held.get_mut(&key) else {
            return true;
        };
        let decided = simulate_step(
            &self.drills,
            self.blackout_zone,
            self.blackouts,
            self.concurrency,
            (t, due, drill, scheduled),
            &mut h.fire,
            &mut h.waiting,
            ready,
            running,
        );
        if decided {
            if h.fire.start.is_some() {
                h.decided = Decided::Starting;
                starting.push(key);
                *starting_at = t;
            } else {
                h.decided = Decided::Yes(None);
            }
        }
        true
    }

    /// Notes the fires that start at `starting_at`, in calendar order.
    fn note_starting(&mut self) {
        let mut keys = std::mem::take(&mut self.state.starting);
        keys.sort_unstable();
        for key in &keys {
            if let Some(held) = self.state.held.get_mut(key) {
                let note = match &mut self.note {
                    Some(note) => note(&held.fire, held.waiting.rank),
                    None => None,
                };
                held.decided = Decided::Yes(note);
            }
        }
        keys.clear();
        self.state.starting = keys;
    }
}

impl<V> Iterator for Calendar<'_, V> {
    type Item = (Fire, Option<V>);

    fn next(&mut self) -> Option<Self::Item> {
        self.next_before(DateTime::<Utc>::MAX_UTC)
    }
}

/// Takes up one fire at instant `t`: it starts, is skipped or missed (true: decided), or waits
/// (re-queued: false).
#[allow(clippy::too_many_arguments)]
fn simulate_step(
    drills: &[PlannedDrill],
    blackout_zone: Tz,
    blackouts: &[Blackout],
    concurrency: usize,
    (t, due, drill_index, scheduled): (DateTime<Utc>, DateTime<Utc>, usize, DateTime<Utc>),
    fire: &mut Fire,
    state: &mut Waiting,
    ready: &mut BinaryHeap<Ready>,
    running: &mut BinaryHeap<Reverse<(DateTime<Utc>, usize)>>,
) -> bool {
    let drill = &drills[drill_index];
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
            fire.status = FireStatus::Skipped;
            fire.reason = Some(format!("{waited}in blackout {}", names.join(", ")));
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
                ready.push(Reverse((free, free, drill_index, scheduled)));
                return false;
            }
            None => {
                fire.status = FireStatus::Skipped;
                fire.reason = Some(format!(
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
        fire.status = FireStatus::Missed;
        fire.reason = Some(format!(
            "{}would wait for {} until {}, past its deadline of {}",
            deferred.map(|d| format!("{d}; then ")).unwrap_or_default(),
            drills[blocker].name,
            rfc3339(free_at, drill.zone),
            firedrill_reader::duration::format(drill.deadline)
        ));
        return true;
    }
    state.waited_for = Some(blocker);
    state.due = Some(due);
    ready.push(Reverse((free_at, due, drill_index, scheduled)));
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

    #[test]
    fn a_calendar_holds_the_fires_in_flight_not_the_period() {
        // Two every-minute drills on one slot: the second queues, then misses, all month long.
        let fx = Fixture::new(&[
            ("a", "* * * * *", 1, 1, false),
            ("b", "* * * * *", 1, 2, true),
        ]);
        let weekends = [Blackout {
            name: "weekends".into(),
            dates: None,
            weekdays: Some(0b110_0000),
            times: None,
        }];
        let from = utc("2027-01-01T00:00:00Z");
        let until = utc("2027-02-01T00:00:00Z");
        let mut calendar = Calendar::<()>::window(
            fx.drills(),
            chrono_tz::Europe::Berlin,
            &weekends,
            1,
            from,
            until,
        );
        let (mut fires, mut most, mut last) = (0usize, 0usize, None);
        while let Some((fire, _)) = calendar.next() {
            most = most.max(calendar.held());
            assert!(
                last < Some((fire.scheduled, fire.drill)),
                "in calendar order"
            );
            last = Some((fire.scheduled, fire.drill));
            fires += 1;
        }
        assert_eq!(fires, 2 * 31 * 24 * 60);
        // What is in flight at worst: a weekend's fires, deferred (b) or decided behind them
        // (a, skipped), of the month's 89,280.
        let weekend = 2 * 2 * 24 * 60;
        assert!(most <= weekend + 8, "held up to {most} fires at once");
    }

    #[test]
    fn a_resumed_calendar_goes_on_as_if_never_stopped() {
        let fx = Fixture::new(&[
            ("long", "0 21 * * FRI", 180, 60, true),
            ("skipper", "0 22 * * FRI", 10, 240, false),
            ("hourly", "15 * * * *", 20, 10, true),
        ]);
        let nightly = [Blackout {
            name: "nightly".into(),
            dates: None,
            weekdays: None,
            times: Some((22 * 60, 6 * 60)),
        }];
        let (from, until) = (utc("2026-11-01T00:00:00Z"), utc("2027-01-01T00:00:00Z"));
        let whole = plan(
            &fx.drills(),
            chrono_tz::Europe::Berlin,
            &nightly,
            1,
            from,
            until,
        );
        let mut calendar = Calendar::<()>::window(
            fx.drills(),
            chrono_tz::Europe::Berlin,
            &nightly,
            1,
            from,
            until,
        );
        let mut pieces = Vec::new();
        // Stopped and resumed at every tick of a scheduler that looks every 7 hours.
        let mut tick = from;
        while tick < until + TimeDelta::days(1) {
            tick += TimeDelta::hours(7);
            while let Some((fire, _)) = calendar.next_before(tick) {
                pieces.push(fire);
            }
            let state = calendar.into_state();
            calendar = Calendar::resume(fx.drills(), chrono_tz::Europe::Berlin, &nightly, 1, state);
        }
        assert!(whole.len() > 1000);
        assert_eq!(pieces, whole);
    }

    #[test]
    fn notes_are_taken_in_the_order_fires_start() {
        let fx = Fixture::new(&[
            ("a", "0 10 15 * *", 30, 60, false),
            ("b", "0 10 15 * *", 20, 60, false),
            ("c", "5 10 15 * *", 5, 60, false),
        ]);
        let mut order = Vec::new();
        let fires: Vec<(Fire, Option<String>)> = Calendar::window(
            fx.drills(),
            chrono_tz::UTC,
            &[],
            1,
            utc("2026-12-01T00:00:00Z"),
            utc("2027-01-01T00:00:00Z"),
        )
        .noting(|fire, rank| {
            order.push(format!("{} {rank}", ["a", "b", "c"][fire.drill]));
            Some(format!("{:?}", fire.start))
        })
        .collect();
        // a starts 10:00, b waits for it (10:30), c for b (10:50): start order, with each
        // fire's place in the calendar (c is scheduled last).
        assert_eq!(order, ["a 0", "b 1", "c 2"]);
        assert_eq!(fires.len(), 3);
        assert!(fires
            .iter()
            .all(|(f, note)| note.as_deref() == Some(format!("{:?}", f.start).as_str())));
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
