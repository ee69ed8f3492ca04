//! Wall-clock times to instants, with the DST rules of the drill file:
//! a time inside a spring-forward gap happens at the first instant after the gap, and a time that
//! occurs twice (fall back) happens once, at its first occurrence.

use chrono::{DateTime, Days, LocalResult, NaiveDate, NaiveDateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

use super::cron::Cron;

/// The longest gap any zone has ever skipped is well under a day; searching further is a bug.
const MAX_GAP_MINUTES: i64 = 24 * 60;

fn resolve(zone: Tz, local: NaiveDateTime, latest: bool) -> DateTime<Utc> {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(a, b) => {
            let (a, b) = (a.with_timezone(&Utc), b.with_timezone(&Utc));
            if latest {
                a.max(b)
            } else {
                a.min(b)
            }
        }
        LocalResult::None => {
            // Inside a gap: the first wall-clock minute that exists again is the transition.
            (1..=MAX_GAP_MINUTES)
                .find_map(|m| {
                    zone.from_local_datetime(&(local + TimeDelta::minutes(m)))
                        .earliest()
                })
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(|| local.and_utc())
        }
    }
}

/// The instant a wall-clock time happens, per the drill file's DST rules.
pub fn earliest_instant(zone: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    resolve(zone, local, false)
}

/// The last instant a wall-clock time happens: used for the ends of blackouts, so that a repeated
/// hour stays covered.
pub fn latest_instant(zone: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    resolve(zone, local, true)
}

/// Every instant in `[from, until)` at which `cron` fires in `zone`, in order, each once.
pub fn occurrences(
    cron: &Cron,
    zone: Tz,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Vec<DateTime<Utc>> {
    Occurrences::new(cron, zone, from, until).collect()
}

/// [`occurrences`], lazily: a day is looked at only when the instants before it are taken, so
/// the next fire of a drill costs the days up to it, not the whole window. It keeps its own copy
/// of the schedule, so a calendar can be kept from one scheduler tick to the next.
#[derive(Clone, Debug)]
pub struct Occurrences {
    cron: Cron,
    zone: Tz,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    times: Vec<(u32, u32)>,
    day: NaiveDate,
    last_day: NaiveDate,
    /// The instants of the day looked at last, not yet handed out (in reverse).
    pending: Vec<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
}

impl Occurrences {
    pub fn new(cron: &Cron, zone: Tz, from: DateTime<Utc>, until: DateTime<Utc>) -> Self {
        // A day early and a day late, so that gaps and offsets at the window's edges are covered.
        let day = from.with_timezone(&zone).date_naive() - Days::new(1);
        let last_day = until.with_timezone(&zone).date_naive() + Days::new(1);
        Occurrences {
            cron: cron.clone(),
            zone,
            from,
            until,
            times: cron.times_of_day().collect(),
            day,
            last_day: if from >= until {
                day - Days::new(1)
            } else {
                last_day
            },
            pending: Vec::new(),
            last: None,
        }
    }
}

impl Iterator for Occurrences {
    type Item = DateTime<Utc>;

    fn next(&mut self) -> Option<DateTime<Utc>> {
        loop {
            if let Some(at) = self.pending.pop() {
                if at >= self.from && at < self.until && self.last != Some(at) {
                    self.last = Some(at);
                    return Some(at);
                }
                continue;
            }
            if self.day > self.last_day {
                return None;
            }
            let day = self.day;
            if !self.cron.matches_month(chrono::Datelike::month(&day)) {
                self.day = first_of_next_month(day);
                continue;
            }
            self.day = day + Days::new(1);
            if self.cron.matches_date(day) {
                for &(hour, minute) in self.times.iter().rev() {
                    if let Some(local) = day.and_hms_opt(hour, minute, 0) {
                        self.pending.push(earliest_instant(self.zone, local));
                    }
                }
            }
        }
    }
}

fn first_of_next_month(day: NaiveDate) -> NaiveDate {
    use chrono::Datelike;
    let (y, m) = if day.month() == 12 {
        (day.year() + 1, 1)
    } else {
        (day.year(), day.month() + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(NaiveDate::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn fires(expr: &str, zone: &str, from: &str, until: &str) -> Vec<String> {
        let cron = Cron::parse(expr).unwrap();
        let zone: Tz = zone.parse().unwrap();
        occurrences(&cron, zone, utc(from), utc(until))
            .into_iter()
            .map(|t| t.with_timezone(&zone).to_rfc3339())
            .collect()
    }

    #[test]
    fn berlin_spring_forward_fires_at_the_end_of_the_gap() {
        // 2027-03-28: 02:00 CET jumps to 03:00 CEST. 02:30 does not exist.
        let got = fires(
            "30 2 * * *",
            "Europe/Berlin",
            "2027-03-27T00:00:00Z",
            "2027-03-30T00:00:00Z",
        );
        assert_eq!(
            got,
            vec![
                "2027-03-27T02:30:00+01:00",
                "2027-03-28T03:00:00+02:00",
                "2027-03-29T02:30:00+02:00"
            ]
        );
        // Several times inside the gap still fire once.
        let got = fires(
            "0,15,30,45 2 28 3 *",
            "Europe/Berlin",
            "2027-03-27T00:00:00Z",
            "2027-03-30T00:00:00Z",
        );
        assert_eq!(got, vec!["2027-03-28T03:00:00+02:00"]);
    }

    #[test]
    fn berlin_fall_back_fires_once_at_the_first_occurrence() {
        // 2026-10-25: 03:00 CEST goes back to 02:00 CET; 02:30 happens twice.
        let got = fires(
            "30 2 * * *",
            "Europe/Berlin",
            "2026-10-24T00:00:00Z",
            "2026-10-27T00:00:00Z",
        );
        assert_eq!(
            got,
            vec![
                "2026-10-24T02:30:00+02:00",
                "2026-10-25T02:30:00+02:00",
                "2026-10-26T02:30:00+01:00"
            ]
        );
    }

    #[test]
    fn new_york_both_ways() {
        // 2027-03-14 02:00 EST -> 03:00 EDT; 2026-11-01 02:00 EDT -> 01:00 EST.
        let spring = fires(
            "30 2 14 3 *",
            "America/New_York",
            "2027-03-01T00:00:00Z",
            "2027-04-01T00:00:00Z",
        );
        assert_eq!(spring, vec!["2027-03-14T03:00:00-04:00"]);
        let fall = fires(
            "30 1 1 11 *",
            "America/New_York",
            "2026-10-01T00:00:00Z",
            "2026-12-01T00:00:00Z",
        );
        assert_eq!(fall, vec!["2026-11-01T01:30:00-04:00"]);
        // Every half hour across the fall-back night: 01:00 and 01:30 once each, no repeats.
        let night = fires(
            "*/30 0-3 1 11 *",
            "America/New_York",
            "2026-11-01T00:00:00Z",
            "2026-11-02T00:00:00Z",
        );
        assert_eq!(
            night,
            vec![
                "2026-11-01T00:00:00-04:00",
                "2026-11-01T00:30:00-04:00",
                "2026-11-01T01:00:00-04:00",
                "2026-11-01T01:30:00-04:00",
                "2026-11-01T02:00:00-05:00",
                "2026-11-01T02:30:00-05:00",
                "2026-11-01T03:00:00-05:00",
                "2026-11-01T03:30:00-05:00",
            ]
        );
    }

    #[test]
    fn leap_day_fires_only_in_leap_years() {
        let got = fires(
            "0 12 29 2 *",
            "UTC",
            "2026-01-01T00:00:00Z",
            "2037-01-01T00:00:00Z",
        );
        assert_eq!(
            got,
            vec![
                "2028-02-29T12:00:00+00:00",
                "2032-02-29T12:00:00+00:00",
                "2036-02-29T12:00:00+00:00"
            ]
        );
    }

    #[test]
    fn window_is_half_open() {
        let got = fires(
            "@monthly",
            "UTC",
            "2027-01-01T00:00:00Z",
            "2027-03-01T00:00:00Z",
        );
        assert_eq!(
            got,
            vec!["2027-01-01T00:00:00+00:00", "2027-02-01T00:00:00+00:00"]
        );
    }
}
