//! Five-field cron expressions with Kubernetes CronJob semantics, plus the `@` macros.
//!
//! Written here rather than taken from the `cron` crate because the contract differs from it:
//! five fields (no seconds), `@quarterly`, day-of-month and day-of-week combined with OR when both
//! are restricted (as Vixie cron and Kubernetes do), and expressions that can never fire (such as
//! `0 0 30 2 *`) refused at validate time.

use std::fmt;
use std::time::Duration;

use chrono::{Datelike, NaiveDate};

/// A parsed schedule. Bit `n` of each mask means value `n` matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cron {
    text: String,
    minutes: u64,
    hours: u32,
    days_of_month: u32,
    months: u16,
    days_of_week: u8,
    dom_restricted: bool,
    dow_restricted: bool,
}

const FIELDS: [Field; 5] = [
    Field {
        name: "minute",
        min: 0,
        max: 59,
        names: &[],
    },
    Field {
        name: "hour",
        min: 0,
        max: 23,
        names: &[],
    },
    Field {
        name: "day-of-month",
        min: 1,
        max: 31,
        names: &[],
    },
    Field {
        name: "month",
        min: 1,
        max: 12,
        names: &[
            "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
        ],
    },
    Field {
        name: "day-of-week",
        min: 0,
        max: 7,
        names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
    },
];

struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    /// Names for values starting at `min` (months) or 0 (weekdays).
    names: &'static [&'static str],
}

/// Why a cron expression is refused; each says what is allowed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    #[error("unknown macro {0:?} (allowed: {ALLOWED})")]
    UnknownMacro(String),
    #[error("{text:?} has {count} field{} (allowed: {ALLOWED})", if *.count == 1 { "" } else { "s" })]
    FieldCount { text: String, count: usize },
    /// One field is wrong: `field` names it (`day-of-month`), `written` is the field as written,
    /// `allowed` its values (`1-31`, `1-12, or JAN-DEC`).
    #[error("{field} field {written:?}: {problem} (allowed: {allowed}, with *, lists a,b, ranges a-b and steps /n)")]
    Field {
        field: &'static str,
        written: String,
        problem: FieldProblem,
        allowed: String,
    },
    #[error("{0:?} can never fire: none of its months has that day of the month")]
    NeverFires(String),
}

/// What is wrong in one field of a cron expression.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FieldProblem {
    #[error("step {step} is larger than the field's range {min}-{max}")]
    StepTooLarge { step: String, min: u32, max: u32 },
    #[error("step {0:?} is not a whole number of at least 1")]
    BadStep(String),
    #[error("range {0:?} runs backwards (write the lower value first)")]
    Backwards(String),
    #[error("{0} is out of range")]
    OutOfRange(String),
    /// `hint` suggests names where the field has them (" or a name like JAN").
    #[error("{text:?} is not a number{hint}")]
    NotANumber { text: String, hint: String },
}

const ALLOWED: &str = "5 fields `minute hour day-of-month month day-of-week`, or @monthly, @quarterly, @yearly, @annually, @weekly, @daily, @hourly";

impl Cron {
    pub fn parse(text: &str) -> Result<Cron, CronError> {
        let trimmed = text.trim();
        let expanded = match trimmed {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@quarterly" => "0 0 1 1,4,7,10 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other if other.starts_with('@') => {
                return Err(CronError::UnknownMacro(other.to_owned()))
            }
            other => other,
        };
        let parts: Vec<&str> = expanded.split_whitespace().collect();
        if parts.len() != 5 {
            return Err(CronError::FieldCount {
                text: text.to_owned(),
                count: parts.len(),
            });
        }
        let mut masks = [0u64; 5];
        let mut restricted = [false; 5];
        for (i, (part, field)) in parts.iter().zip(FIELDS.iter()).enumerate() {
            let (mask, is_restricted) = field.parse(part)?;
            masks[i] = mask;
            restricted[i] = is_restricted;
        }
        // Sunday may be written 0 or 7.
        if masks[4] & (1 << 7) != 0 {
            masks[4] = (masks[4] | 1) & !(1 << 7);
        }
        let cron = Cron {
            text: trimmed.to_owned(),
            minutes: masks[0],
            hours: masks[1] as u32,
            days_of_month: masks[2] as u32,
            months: masks[3] as u16,
            days_of_week: masks[4] as u8,
            dom_restricted: restricted[2],
            dow_restricted: restricted[4],
        };
        cron.check_can_fire()?;
        Ok(cron)
    }

    /// Refuses day-of-month and month combinations that never occur, such as the 30th of
    /// February, unless a day-of-week alternative makes the schedule fire anyway.
    fn check_can_fire(&self) -> Result<(), CronError> {
        if self.dow_restricted && self.dom_restricted {
            return Ok(());
        }
        if !self.dom_restricted {
            return Ok(());
        }
        let longest = |month: u32| match month {
            2 => 29,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        let possible = (1..=12)
            .filter(|m| self.months & (1 << m) != 0)
            .any(|m| (1..=longest(m)).any(|d| self.days_of_month & (1 << d) != 0));
        if possible {
            Ok(())
        } else {
            Err(CronError::NeverFires(self.text.clone()))
        }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether any time on `date` matches.
    pub fn matches_date(&self, date: NaiveDate) -> bool {
        if self.months & (1 << date.month()) == 0 {
            return false;
        }
        let dom = self.days_of_month & (1 << date.day()) != 0;
        let dow = self.days_of_week & (1 << date.weekday().num_days_from_sunday()) != 0;
        if self.dom_restricted && self.dow_restricted {
            dom || dow
        } else {
            dom && dow
        }
    }

    pub fn matches_month(&self, month: u32) -> bool {
        self.months & (1 << month) != 0
    }

    /// The matching (hour, minute) pairs of a day, in order.
    pub fn times_of_day(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        (0..24u32)
            .filter(|h| self.hours & (1 << h) != 0)
            .flat_map(move |h| {
                (0..60u32)
                    .filter(|m| self.minutes & (1 << m) != 0)
                    .map(move |m| (h, m))
            })
    }
}

impl Cron {
    /// The shortest time between two of its fires on the wall clock, when it is under a day
    /// (no drill lasts longer): between two times of a day, or from the last time of a day to
    /// the first of the next when two days in a row match. A DST change may shorten one gap a
    /// year by its shift; the calendar queues that run like any other.
    pub fn shortest_gap(&self) -> Option<Duration> {
        const DAY: u32 = 24 * 60;
        let times: Vec<u32> = self.times_of_day().map(|(h, m)| h * 60 + m).collect();
        let (&first, &last) = (times.first()?, times.last()?);
        let within = times.windows(2).map(|w| w[1] - w[0]).min();
        let overnight = DAY - (last - first);
        let shortest = match within {
            Some(within) if within <= overnight => within,
            // (One time a day is a day apart: no need to look.)
            _ if overnight < DAY && self.two_days_in_a_row() => overnight,
            within => within?,
        };
        (shortest < DAY).then(|| Duration::from_secs(u64::from(shortest) * 60))
    }

    /// Whether two days in a row ever both match. Which days do depends on the weekday and leap
    /// years of each date: 28 years hold every combination (2001 to 2028 cross no century).
    fn two_days_in_a_row(&self) -> bool {
        let Some(start) = NaiveDate::from_ymd_opt(2001, 1, 1) else {
            return false;
        };
        let mut previous = false;
        for day in start.iter_days().take(28 * 366) {
            let matches = self.matches_date(day);
            if matches && previous {
                return true;
            }
            previous = matches;
        }
        false
    }
}

impl fmt::Display for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Field {
    /// The mask of one field, and whether it is restricted (anything but a bare `*` or `?`).
    fn parse(&self, text: &str) -> Result<(u64, bool), CronError> {
        if text == "*" || text == "?" {
            return Ok((self.range_mask(self.min, self.max, 1), false));
        }
        let mut mask = 0;
        for element in text.split(',') {
            mask |= self.element(element, text)?;
        }
        Ok((mask, true))
    }

    fn range_mask(&self, low: u32, high: u32, step: u32) -> u64 {
        (low..=high)
            .step_by(step as usize)
            .fold(0, |m, v| m | 1 << v)
    }

    fn element(&self, element: &str, whole: &str) -> Result<u64, CronError> {
        let (range, step) = match element.split_once('/') {
            Some((range, step)) => {
                let digits = !step.is_empty() && step.bytes().all(|b| b.is_ascii_digit());
                let step: u32 = step.parse().ok().filter(|s| *s >= 1).ok_or_else(|| {
                    let what = if digits && step.trim_start_matches('0').len() > 2 {
                        FieldProblem::StepTooLarge {
                            step: step.to_owned(),
                            min: self.min,
                            max: self.max,
                        }
                    } else {
                        FieldProblem::BadStep(step.to_owned())
                    };
                    self.error(whole, what)
                })?;
                (range, Some(step))
            }
            None => (element, None),
        };
        let (low, high) = if range == "*" || range == "?" {
            (self.min, self.max)
        } else if let Some((a, b)) = range.split_once('-') {
            (self.value(a, whole)?, self.value(b, whole)?)
        } else {
            let v = self.value(range, whole)?;
            // `5/15` means from 5 to the end in steps of 15.
            (v, if step.is_some() { self.max } else { v })
        };
        if low > high {
            return Err(self.error(whole, FieldProblem::Backwards(range.to_owned())));
        }
        Ok(self.range_mask(low, high, step.unwrap_or(1)))
    }

    fn value(&self, text: &str, whole: &str) -> Result<u32, CronError> {
        let by_name = self
            .names
            .iter()
            .position(|n| n.eq_ignore_ascii_case(text))
            .map(|i| i as u32 + if self.name == "month" { 1 } else { 0 });
        let value = match by_name {
            Some(v) => v,
            None => text.parse::<u32>().map_err(|_| {
                let what = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
                    FieldProblem::OutOfRange(text.to_owned())
                } else {
                    FieldProblem::NotANumber {
                        text: text.to_owned(),
                        hint: self.names_hint(),
                    }
                };
                self.error(whole, what)
            })?,
        };
        if value < self.min || value > self.max {
            return Err(self.error(whole, FieldProblem::OutOfRange(value.to_string())));
        }
        Ok(value)
    }

    fn names_hint(&self) -> String {
        match self.names.first() {
            Some(first) => format!(" or a name like {}", first.to_uppercase()),
            None => String::new(),
        }
    }

    fn error(&self, whole: &str, problem: FieldProblem) -> CronError {
        let max = if self.name == "day-of-week" {
            "6 (or 7 for Sunday), or SUN-SAT".to_owned()
        } else if self.name == "month" {
            "12, or JAN-DEC".to_owned()
        } else {
            self.max.to_string()
        };
        CronError::Field {
            field: self.name,
            written: whole.to_owned(),
            problem,
            allowed: format!("{}-{max}", self.min),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn macros_expand_as_documented() {
        let q = Cron::parse("@quarterly").unwrap();
        let fires: Vec<u32> = (1..=12)
            .filter(|m| q.matches_date(date(2027, *m, 1)))
            .collect();
        assert_eq!(fires, vec![1, 4, 7, 10]);
        assert!(!q.matches_date(date(2027, 1, 2)));
        assert_eq!(q.times_of_day().collect::<Vec<_>>(), vec![(0, 0)]);

        let weekly = Cron::parse("@weekly").unwrap();
        assert!(weekly.matches_date(date(2026, 11, 29))); // a Sunday
        assert!(!weekly.matches_date(date(2026, 11, 30)));
        assert_eq!(
            Cron::parse("@yearly"),
            Cron::parse("@annually").map(|c| Cron {
                text: "@yearly".into(),
                ..c
            })
        );
    }

    #[test]
    fn day_of_month_and_week_combine_like_cron() {
        // Both restricted: the 13th OR any Friday.
        let either = Cron::parse("0 0 13 * 5").unwrap();
        assert!(either.matches_date(date(2026, 11, 13))); // Friday the 13th
        assert!(either.matches_date(date(2026, 11, 6))); // a Friday
        assert!(either.matches_date(date(2026, 12, 13))); // a Sunday, the 13th
        assert!(!either.matches_date(date(2026, 12, 14)));
        // Only day-of-week restricted: every Friday and nothing else.
        let fridays = Cron::parse("0 0 * * FRI").unwrap();
        assert!(fridays.matches_date(date(2026, 11, 6)));
        assert!(!fridays.matches_date(date(2026, 11, 13 + 1)));
        // A step counts as a restriction, as in Kubernetes.
        let stepped = Cron::parse("0 0 */10 * 1").unwrap();
        assert!(stepped.matches_date(date(2026, 11, 11))); // the 11th (1, 11, 21, 31)
        assert!(stepped.matches_date(date(2026, 11, 2))); // a Monday
    }

    #[test]
    fn lists_ranges_steps_and_names() {
        let c = Cron::parse("5/20 9-17/4 1,15 jan-MAR,Dec mon-fri").unwrap();
        assert_eq!(
            c.times_of_day().collect::<Vec<_>>(),
            vec![
                (9, 5),
                (9, 25),
                (9, 45),
                (13, 5),
                (13, 25),
                (13, 45),
                (17, 5),
                (17, 25),
                (17, 45)
            ]
        );
        assert!(c.matches_month(12) && c.matches_month(2) && !c.matches_month(4));
        assert_eq!(Cron::parse("0 0 * * 7").unwrap().days_of_week, 1);
        assert_eq!(Cron::parse("0 0 * * 0,7").unwrap().days_of_week, 1);
    }

    #[test]
    fn leap_day_is_allowed_and_impossible_days_are_not() {
        let leap = Cron::parse("0 12 29 2 *").unwrap();
        assert!(leap.matches_date(date(2028, 2, 29)));
        let err = Cron::parse("0 0 30 2 *").unwrap_err();
        assert_eq!(err, CronError::NeverFires("0 0 30 2 *".into()));
        assert!(err.to_string().contains("can never fire"), "{err}");
        assert!(Cron::parse("0 0 31 4,6 *").is_err());
        // With a weekday alternative it fires on those weekdays.
        assert!(Cron::parse("0 0 30 2 1").is_ok());
    }

    #[test]
    fn bad_expressions_name_the_field() {
        let cases = [
            (
                "0 10 32 * *",
                "day-of-month field \"32\": 32 is out of range (allowed: 1-31",
            ),
            ("60 * * * *", "minute field \"60\": 60 is out of range"),
            ("* * * 13 *", "month field \"13\""),
            ("* * * * 8", "day-of-week field \"8\""),
            (
                "* * * * funday",
                "\"funday\" is not a number or a name like SUN",
            ),
            ("*/0 * * * *", "step \"0\" is not a whole number"),
            (
                "*/99999999999999999999 * * * *",
                "step 99999999999999999999 is larger than the field's range 0-59",
            ),
            ("99999999999 * * * *", "99999999999 is out of range"),
            ("5-1 * * * *", "runs backwards"),
            ("0 10 15 *", "has 4 fields"),
            ("@fortnightly", "unknown macro"),
            ("", "has 0 fields"),
            ("1,,2 * * * *", "\"\" is not a number"),
        ];
        for (text, expected) in cases {
            let err = Cron::parse(text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
    }

    #[test]
    fn the_shortest_gap_between_fires() {
        let gap = |text: &str| Cron::parse(text).unwrap().shortest_gap();
        let minutes = |m: u64| Some(Duration::from_secs(m * 60));
        assert_eq!(gap("* * * * *"), minutes(1));
        assert_eq!(gap("*/15 * * * *"), minutes(15));
        assert_eq!(gap("0 9,17 * * *"), minutes(8 * 60));
        assert_eq!(gap("*/30 9-17 * * MON-FRI"), minutes(30));
        // Late at night and early the next morning.
        assert_eq!(gap("0 1,23 * * *"), minutes(2 * 60));
        // Late Friday, early Saturday: two days in a row.
        assert_eq!(gap("0 1,23 * * FRI,SAT"), minutes(2 * 60));
        // Late Monday, early Wednesday: never on consecutive days, so the day's own gap.
        assert_eq!(gap("0 1,23 * * MON,WED"), minutes(22 * 60));
        // The 28th of February then the 1st of March, both in the schedule.
        assert_eq!(gap("0 0,22 1,28 2,3 *"), minutes(2 * 60));
        // A day or more apart: no drill is longer.
        assert_eq!(gap("@daily"), None);
        assert_eq!(gap("0 10 15 * *"), None);
        assert_eq!(gap("0 0 1 * *"), None);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "[0-9*/,\\- a-zA-Z@?]{0,30}") {
            let _ = Cron::parse(&text);
        }
    }
}
