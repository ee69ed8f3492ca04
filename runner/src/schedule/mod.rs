//! When drills fire: cron schedules in IANA time zones, blackouts, deferral, concurrency and
//! deadlines. Everything here is pure and deterministic, so `plan` shows exactly what the scheduler
//! will do.

pub mod blackout;
pub mod calendar;
pub mod cron;
mod zone;

pub use blackout::Blackout;
pub use calendar::{
    fires_at, plan, plan_next, Calendar, CalendarState, Fire, FireStatus, PlannedDrill,
};
pub use cron::Cron;
pub use zone::{earliest_instant, latest_instant, occurrences};
