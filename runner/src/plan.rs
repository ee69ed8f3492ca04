//! `firedrill plan`: the calendar of upcoming fires, as a table for people or JSON for tools.

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde::Serialize;

use crate::config::Config;
use crate::duration;
use crate::schedule::{self, Fire, FireStatus};

/// How far `plan` looks when neither `--until` nor `--next` is given.
pub const DEFAULT_WINDOW: TimeDelta = TimeDelta::days(366);
/// How far `--next` searches for fires before giving up.
const MAX_SEARCH: TimeDelta = TimeDelta::days(100 * 366);

/// How much of the calendar to show.
#[derive(Clone, Copy, Debug)]
pub enum Window {
    Until(DateTime<Utc>),
    Next(usize),
}

/// One fire as `plan --format json` prints it. Field names are a contract.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlannedFire {
    pub drill: String,
    pub kind: String,
    pub scheduled: String,
    pub local: String,
    pub timezone: String,
    pub start: Option<String>,
    /// `start` in the drill's zone.
    pub start_local: Option<String>,
    pub duration_seconds: u64,
    pub status: FireStatus,
    pub reason: Option<String>,
}

fn rfc3339_utc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The fires of `config` from `from` on, as far as `window` says.
pub fn calendar(config: &Config, from: DateTime<Utc>, window: Window) -> Vec<PlannedFire> {
    let drills = config.planned_drills();
    let run = |until: DateTime<Utc>| {
        schedule::plan(
            &drills,
            config.timezone,
            &config.blackouts,
            config.concurrency as usize,
            from,
            until,
        )
    };
    let fires: Vec<Fire> = match window {
        Window::Until(until) => run(until),
        Window::Next(n) => {
            // Widen the window until it holds n fires. `plan` simulates past the window's end,
            // so the fires near the end have the same fate as in a longer window.
            let mut span = TimeDelta::days(32);
            let mut fires = run(from + span);
            while fires.len() < n && span < MAX_SEARCH {
                span = span * 4;
                fires = run(from
                    .checked_add_signed(span)
                    .unwrap_or(DateTime::<Utc>::MAX_UTC));
            }
            fires.truncate(n);
            fires
        }
    };
    fires
        .into_iter()
        .map(|f| {
            let drill = &config.drills[f.drill];
            PlannedFire {
                drill: drill.name.clone(),
                kind: drill.kind.to_string(),
                scheduled: rfc3339_utc(f.scheduled),
                local: f
                    .scheduled
                    .with_timezone(&drill.timezone)
                    .to_rfc3339_opts(SecondsFormat::Secs, true),
                timezone: drill.timezone.name().to_owned(),
                start: f.start.map(rfc3339_utc),
                start_local: f.start.map(|s| {
                    s.with_timezone(&drill.timezone)
                        .to_rfc3339_opts(SecondsFormat::Secs, true)
                }),
                duration_seconds: drill.duration.as_secs(),
                status: f.status,
                reason: f.reason,
            }
        })
        .collect()
}

pub fn render_json(fires: &[PlannedFire]) -> String {
    serde_json::to_string_pretty(fires).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// A plain-text table, one fire per line, columns aligned.
pub fn render_table(fires: &[PlannedFire]) -> String {
    let header = [
        "DRILL", "KIND", "LOCAL", "UTC", "DURATION", "STATUS", "START", "REASON",
    ];
    let rows: Vec<[String; 8]> = fires
        .iter()
        .map(|f| {
            [
                f.drill.clone(),
                f.kind.clone(),
                f.local.clone(),
                f.scheduled.clone(),
                duration::format(std::time::Duration::from_secs(f.duration_seconds)),
                f.status.to_string(),
                match (&f.start, &f.start_local) {
                    (Some(s), _) if *s == f.scheduled => "on time".to_owned(),
                    (_, Some(local)) => local.clone(),
                    _ => "-".to_owned(),
                },
                f.reason.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&header.map(str::to_owned));
    for row in &rows {
        line(row);
    }
    if rows.is_empty() {
        out.push_str("(no fires in this window)\n");
    }
    out
}
