//! The caps of the drill file's `safety.limits` that a drill's settings can already break before
//! it runs: a breach is a diagnostic, which fails the whole file.

use std::time::Duration;

use firedrill_experiments::Kind;
use firedrill_reader::duration;
use firedrill_reader::read::{child, Fields, Reader};
use firedrill_safety::Policy;

/// Caps from `safety.limits` that today's drill settings can already break. A breach is recorded
/// as a diagnostic, which fails the whole file.
pub(super) fn check_limits(
    r: &mut Reader,
    f: &Fields,
    path: &str,
    kind: Kind,
    duration: Duration,
    safety: &Policy,
    fault: Option<&firedrill_experiments::Settings>,
) {
    if let Some(cap) = partition_over(kind, duration, safety, fault) {
        r.error(
            f.get("duration").map_or(f.mark, |n| n.mark),
            child(path, "duration"),
            format!(
                "a partition of {} exceeds safety.limits.partition {} (shorten the drill or raise the limit)",
                duration::format(duration),
                duration::format(cap)
            ),
        );
    }
    check_fault_limits(r, f, path, duration, safety, fault);
}

/// `safety.limits.partition`, when a fault of `kind` that partitions (a loss of 100% is a
/// partition too) would stay in place `duration`, longer than it.
pub(super) fn partition_over(
    kind: Kind,
    duration: Duration,
    safety: &Policy,
    fault: Option<&firedrill_experiments::Settings>,
) -> Option<Duration> {
    let partitions = kind == Kind::NetworkPartition
        || matches!(fault, Some(firedrill_experiments::Settings::NetworkDegrade(d)) if d.loss == 100);
    safety
        .limits
        .partition
        .filter(|cap| partitions && duration > *cap)
}

/// The caps of `safety.limits` on a fault's own settings (a stress's load and ramp, a
/// dependency's error rate), for a fault in place `duration`.
pub(super) fn check_fault_limits(
    r: &mut Reader,
    f: &Fields,
    path: &str,
    duration: Duration,
    safety: &Policy,
    fault: Option<&firedrill_experiments::Settings>,
) {
    use firedrill_experiments::{Mode, Resource, Settings};
    let at_fault = |r: &mut Reader, key: &str, message: String| {
        let mark = f.get("fault").map_or(f.mark, |n| n.mark);
        r.error(mark, child(&child(path, "fault"), key), message);
    };
    match fault {
        Some(Settings::ResourceStress(s)) => {
            if let Some(ramp) = s.ramp.filter(|ramp| ramp.over >= duration) {
                at_fault(
                    r,
                    "ramp",
                    format!(
                        "a ramp over {} does not reach its top load within the drill's {} (climb faster or lengthen the drill)",
                        duration::format(ramp.over),
                        duration::format(duration)
                    ),
                );
            }
            let (cap, name) = match s.resource {
                Resource::Cpu => (safety.limits.cpu, "cpu"),
                Resource::Memory => (safety.limits.memory, "memory"),
                Resource::Io => (None, "io"),
            };
            let top = s.ramp.map_or(s.load, |ramp| ramp.from.max(ramp.to));
            if let Some(cap) = cap.filter(|cap| top * 100 > cap.hundredths()) {
                at_fault(
                    r,
                    if s.ramp.is_some() { "ramp" } else { "load" },
                    format!("a {name} load of {top}% exceeds safety.limits.{name} {cap} (lower the load or raise the limit)"),
                );
            }
        }
        Some(Settings::DependencyFailure(s)) => {
            if let (Mode::HttpFault(http), Some(cap)) = (&s.mode, safety.limits.error_rate) {
                if http.failing() > cap.hundredths() {
                    at_fault(
                        r,
                        "http",
                        format!(
                            "errors and resets of {} exceed safety.limits.error_rate {cap} (lower the shares or raise the limit)",
                            firedrill_experiments::percent(http.failing())
                        ),
                    );
                }
            }
        }
        _ => {}
    }
}
