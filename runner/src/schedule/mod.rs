//! When drills fire: cron schedules in IANA time zones, blackouts, deferral, concurrency and
//! deadlines (`cron`, `zone`, `blackout`, `calendar`: pure and deterministic, so `plan` shows
//! exactly what the scheduler will do), the table of upcoming fires `firedrill plan` prints
//! (`upcoming`), the scheduler that fires them as Jobs (`scheduler`), and the notices it posts
//! about them (`notify`).

pub mod blackout;
pub mod calendar;
pub mod cron;
pub mod notify;
pub mod scheduler;
pub mod upcoming;
mod zone;

pub use blackout::Blackout;
pub use calendar::{
    fires_at, plan, plan_next, Calendar, CalendarState, Fire, FireStatus, PlannedDrill,
};
pub use cron::Cron;
pub use zone::{earliest_instant, latest_instant, occurrences};
