//! Blackouts: wall-clock windows, in the file's time zone, in which no drill may start.
//!
//! A blackout is any combination of a date range, weekdays and a daily time window. Each given
//! part must hold. A time window that crosses midnight (`22:00-06:00`) belongs to the day it
//! starts on: with `weekdays: [Fri]` it covers Friday 22:00 to Saturday 06:00.

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};
use chrono_tz::Tz;

use super::zone::latest_instant;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blackout {
    pub name: String,
    /// Inclusive date range.
    pub dates: Option<(NaiveDate, NaiveDate)>,
    /// Bit `n` set: day `n` days from Monday is covered.
    pub weekdays: Option<u8>,
    /// Minutes after midnight, `from` inclusive, `to` exclusive; `to` may be 1440 (24:00). When
    /// `to <= from` the window crosses midnight.
    pub times: Option<(u32, u32)>,
}

/// How far a single blackout's contiguous days are followed before giving up.
const MAX_CONTIGUOUS_DAYS: u32 = 4000;
/// How many blackout windows a deferral may pass through.
const MAX_DEFER_STEPS: usize = 10_000;

impl Blackout {
    fn day_ok(&self, day: NaiveDate) -> bool {
        self.dates.is_none_or(|(from, to)| from <= day && day <= to)
            && self
                .weekdays
                .is_none_or(|mask| mask & (1 << day.weekday().num_days_from_monday()) != 0)
    }

    /// The end of the window covering `local`, or `None` when `local` is not covered.
    pub fn window_end(&self, local: NaiveDateTime) -> Option<NaiveDateTime> {
        let day = local.date();
        let minute = local.hour() * 60 + local.minute();
        let at = |day: NaiveDate, minutes: u32| {
            day.and_time(NaiveTime::MIN) + chrono::TimeDelta::minutes(i64::from(minutes))
        };
        match self.times {
            None => {
                if !self.day_ok(day) {
                    return None;
                }
                let mut end = day + Days::new(1);
                for _ in 0..MAX_CONTIGUOUS_DAYS {
                    if !self.day_ok(end) {
                        break;
                    }
                    end = end + Days::new(1);
                }
                Some(at(end, 0))
            }
            Some((from, to)) if from < to => {
                (self.day_ok(day) && from <= minute && minute < to).then(|| at(day, to))
            }
            Some((from, to)) => {
                if self.day_ok(day) && minute >= from {
                    Some(at(day + Days::new(1), to))
                } else {
                    let yesterday = day.pred_opt()?;
                    (self.day_ok(yesterday) && minute < to).then(|| at(day, to))
                }
            }
        }
    }
}

/// The blackouts covering instant `t`, with the instant each one's window ends.
pub fn covering(
    zone: Tz,
    blackouts: &[Blackout],
    t: DateTime<Utc>,
) -> Vec<(&Blackout, DateTime<Utc>)> {
    if blackouts.is_empty() {
        return Vec::new();
    }
    let local = t.with_timezone(&zone).naive_local();
    blackouts
        .iter()
        .filter_map(|b| {
            b.window_end(local)
                .map(|end| (b, latest_instant(zone, end)))
        })
        .collect()
}

/// The first instant at or after `t` that lies in no blackout, and the names of the blackouts
/// passed through on the way. `None` when blackouts cover everything the search can reach.
pub fn first_free(
    zone: Tz,
    blackouts: &[Blackout],
    mut t: DateTime<Utc>,
) -> Option<(DateTime<Utc>, Vec<String>)> {
    let mut passed: Vec<String> = Vec::new();
    for _ in 0..MAX_DEFER_STEPS {
        let covering = covering(zone, blackouts, t);
        if covering.is_empty() {
            return Some((t, passed));
        }
        let mut next = t;
        for (b, end) in covering {
            if !passed.contains(&b.name) {
                passed.push(b.name.clone());
            }
            next = next.max(end);
        }
        // A window always ends after the instant it covers; guard against a zone oddity anyway.
        t = if next > t {
            next
        } else {
            t + chrono::TimeDelta::minutes(1)
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn blackout(name: &str) -> Blackout {
        Blackout {
            name: name.into(),
            dates: None,
            weekdays: None,
            times: None,
        }
    }

    const SAT_SUN: u8 = 0b110_0000;
    const BERLIN: Tz = chrono_tz::Europe::Berlin;

    #[test]
    fn nightly_window_crosses_midnight() {
        let nightly = Blackout {
            times: Some((22 * 60, 6 * 60)),
            ..blackout("nightly")
        };
        let list = [nightly];
        let covered = |t: &str| !covering(BERLIN, &list, utc(t)).is_empty();
        assert!(covered("2026-11-23T22:00:00+01:00"));
        assert!(covered("2026-11-24T03:00:00+01:00"));
        assert!(!covered("2026-11-24T06:00:00+01:00"));
        assert!(!covered("2026-11-24T21:59:00+01:00"));
        assert_eq!(
            first_free(BERLIN, &list, utc("2026-11-23T23:30:00+01:00")),
            Some((utc("2026-11-24T06:00:00+01:00"), vec!["nightly".to_owned()]))
        );
    }

    #[test]
    fn crossing_window_with_weekdays_belongs_to_its_start_day() {
        let friday_night = Blackout {
            weekdays: Some(1 << 4),
            times: Some((22 * 60, 6 * 60)),
            ..blackout("friday-night")
        };
        let list = [friday_night];
        let covered = |t: &str| !covering(BERLIN, &list, utc(t)).is_empty();
        assert!(covered("2026-11-27T23:00:00+01:00")); // Friday night
        assert!(covered("2026-11-28T05:00:00+01:00")); // early Saturday
        assert!(!covered("2026-11-27T05:00:00+01:00")); // early Friday: Thursday's night is open
        assert!(!covered("2026-11-28T23:00:00+01:00")); // Saturday night
    }

    #[test]
    fn year_end_freeze_crosses_the_year() {
        let freeze = Blackout {
            dates: Some((date("2026-12-20"), date("2027-01-04"))),
            ..blackout("year-end-freeze")
        };
        let list = [freeze];
        assert!(!covering(BERLIN, &list, utc("2026-12-31T23:59:00+01:00")).is_empty());
        assert!(!covering(BERLIN, &list, utc("2027-01-04T23:59:00+01:00")).is_empty());
        assert!(covering(BERLIN, &list, utc("2027-01-05T00:00:00+01:00")).is_empty());
        assert!(covering(BERLIN, &list, utc("2026-12-19T23:59:00+01:00")).is_empty());
        assert_eq!(
            first_free(BERLIN, &list, utc("2027-01-01T00:00:00+01:00")).map(|f| f.0),
            Some(utc("2027-01-05T00:00:00+01:00"))
        );
    }

    #[test]
    fn defer_chains_through_adjacent_blackouts() {
        // The freeze ends on Friday 2027-01-08; the weekend follows; Monday mornings are nightly.
        let list = [
            Blackout {
                dates: Some((date("2026-12-20"), date("2027-01-08"))),
                ..blackout("freeze")
            },
            Blackout {
                weekdays: Some(SAT_SUN),
                ..blackout("weekends")
            },
            Blackout {
                times: Some((22 * 60, 6 * 60)),
                ..blackout("nightly")
            },
        ];
        let (at, passed) = first_free(BERLIN, &list, utc("2027-01-01T10:00:00+01:00")).unwrap();
        assert_eq!(at, utc("2027-01-11T06:00:00+01:00"));
        assert_eq!(passed, vec!["freeze", "weekends", "nightly"]);
    }

    #[test]
    fn a_blackout_covering_everything_has_no_free_instant() {
        let list = [Blackout {
            weekdays: Some(0b111_1111),
            ..blackout("always")
        }];
        assert_eq!(
            first_free(BERLIN, &list, utc("2027-01-01T10:00:00+01:00")),
            None
        );
    }

    #[test]
    fn blackout_end_inside_a_repeated_hour_takes_the_second_occurrence() {
        // Berlin falls back on 2026-10-25: 02:00-03:00 happens twice. A window ending 02:30
        // keeps the whole repeated half hour covered.
        let list = [Blackout {
            times: Some((60, 150)),
            ..blackout("early")
        }];
        let (at, _) = first_free(BERLIN, &list, utc("2026-10-25T01:30:00+02:00")).unwrap();
        assert_eq!(at, utc("2026-10-25T02:30:00+01:00"));
    }
}
