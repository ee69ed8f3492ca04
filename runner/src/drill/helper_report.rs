//! What a helper pod says it applied and measured (network-degrade's degrade.sh, resource-stress's
//! stress.sh): `firedrill: effect KEY ...` lines on its log, ended by `firedrill: effect end`, and
//! how the runner judges them against what the drill asked. A number the helper could not
//! measure is said so ("not measured: why") and is never taken as seen.

use std::time::Duration;

use firedrill_experiments::StressLoad;

/// The share of a configured delay the round-trip must grow by (jitter and a busy node make
/// it vary around the delay; loss on the same path may take a reply).
const DELAY_SEEN: f64 = 0.8;
/// The share of a CPU load stress-ng must be seen to use (`--cpu-load` sleeps to hold its share;
/// a busy node gives it less: runner/tests/stress.rs).
const CPU_SEEN: f64 = 0.6;
/// The share of the memory asked stress-ng must be seen to hold.
const MEMORY_SEEN: f64 = 0.7;
/// What io stress must be seen to move through write and read calls, per `--hdd` worker, in
/// kB a second: no rate is asked (the load is the workers), so this is a floor that tells
/// workers doing I/O from workers that failed or stalled (a worker on an idle disk writes
/// hundreds of MB/s; one throttled to a crawl by the node's I/O limits falls under it).
const IO_SEEN_KB_PER_WORKER: f64 = 1024.0;

/// What a report shows against what was asked: seen (and what), or not (and what instead).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Judged {
    Seen(String),
    NotSeen(String),
}

/// A round-trip as the helper reported it: measured, or why not (never a number it lacks).
#[derive(Clone, Debug, PartialEq)]
enum Rtt {
    Measured { ms: f64, to: String },
    NotMeasured(String),
}

impl Rtt {
    fn said(&self) -> String {
        match self {
            Rtt::Measured { ms, .. } => format!("{ms} ms"),
            Rtt::NotMeasured(why) => format!("not measured: {why}"),
        }
    }
}

/// A helper's report, as read from its log.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// `(key, the rest of the line)`, in order.
    lines: Vec<(String, String)>,
    /// It said `effect end`: nothing more is coming.
    pub complete: bool,
}

impl Report {
    /// The report in a helper's log (any other line is skipped).
    pub fn parse(log: &str) -> Report {
        let mut report = Report::default();
        for line in log.lines() {
            let Some(said) = line.trim_end().strip_prefix("firedrill: effect ") else {
                continue;
            };
            let (key, rest) = said.split_once(' ').unwrap_or((said, ""));
            if key == "end" {
                report.complete = true;
                break;
            }
            report.lines.push((key.to_owned(), rest.trim().to_owned()));
        }
        report
    }

    fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.lines
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn first(&self, key: &str) -> Option<&str> {
        self.lines
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A round-trip (`before` or `during`).
    fn rtt(&self, when: &str) -> Rtt {
        let Some(said) = self
            .all("rtt")
            .find_map(|v| v.strip_prefix(when)?.strip_prefix(' '))
        else {
            return Rtt::NotMeasured("not reported".to_owned());
        };
        if let Some(why) = said.strip_prefix("not measured: ") {
            return Rtt::NotMeasured(why.to_owned());
        }
        let measured = said
            .split_once(" ms")
            .and_then(|(ms, rest)| Some((ms.parse().ok()?, rest.trim().to_owned())));
        match measured {
            Some((ms, to)) => Rtt::Measured { ms, to },
            None => Rtt::NotMeasured(format!("unreadable: {said}")),
        }
    }
}

/// What network-degrade asked of one helper.
#[derive(Clone, Copy, Debug)]
pub struct Asked<'a> {
    pub delay: Option<Duration>,
    pub loss: u32,
    pub rate: Option<&'a str>,
}

/// Whether a degrade helper's report shows what was asked: the qdisc (netem for a delay, tbf
/// for a rate) and the nft drop rules (for loss) in place, and, where the round-trip was
/// measured before and during, a delay grown by most of what was asked.
pub fn judge_degrade(report: &Report, asked: Asked<'_>) -> Judged {
    let qdiscs: Vec<&str> = report.all("qdisc").collect();
    let nft = report.first("nft").filter(|n| *n != "none");
    let mut seen = Vec::new();
    let mut missing = Vec::new();
    let root = qdiscs.first().copied().unwrap_or("none");
    if let Some(delay) = asked.delay {
        match qdiscs
            .iter()
            .find(|q| q.contains("netem") && q.contains("delay"))
        {
            Some(q) => seen.push(format!("qdisc {q}")),
            None => missing.push(format!(
                "no netem delay of {}ms in the qdiscs (root: {root})",
                delay.as_millis()
            )),
        }
    }
    if let Some(rate) = asked.rate {
        match qdiscs.iter().find(|q| q.contains("tbf")) {
            Some(q) => seen.push(format!("qdisc {q}")),
            None => missing.push(format!("no tbf rate {rate} in the qdiscs (root: {root})")),
        }
    }
    if asked.loss > 0 {
        match nft.filter(|n| n.contains("drop")) {
            Some(_) => seen.push(format!(
                "nft drop rules for {}% loss in place (table {})",
                asked.loss,
                nft.and_then(|n| n.strip_prefix("table "))
                    .and_then(|n| n.split(" {").next())
                    .unwrap_or("?")
            )),
            None => missing.push(format!(
                "no nft drop rule for {}% loss (nft: {})",
                asked.loss,
                nft.unwrap_or("none")
            )),
        }
    }
    // The round-trip, where it could be measured both times.
    match (report.rtt("before"), report.rtt("during")) {
        (Rtt::Measured { ms: before, to }, Rtt::Measured { ms: during, .. }) => {
            let want = asked
                .delay
                .map(|d| before + DELAY_SEEN * d.as_secs_f64() * 1000.0);
            let said = format!("round-trip {before} ms before, {during} ms during ({to})");
            match want {
                Some(want) if during < want => missing.push(format!(
                    "{said}: not the {}ms delay asked (want at least {want:.1} ms)",
                    asked.delay.map_or(0, |d| d.as_millis())
                )),
                _ => seen.push(said),
            }
        }
        (before, during) => seen.push(format!(
            "round-trip not compared (before: {}; during: {})",
            before.said(),
            during.said()
        )),
    }
    match missing.is_empty() {
        true => Judged::Seen(seen.join(", ")),
        false => Judged::NotSeen(
            missing
                .into_iter()
                .chain(seen)
                .collect::<Vec<_>>()
                .join(", "),
        ),
    }
}

/// Whether a stress pod's report shows the load asked, within a tolerance below it (more than
/// asked is still the fault in effect).
pub fn judge_stress(report: &Report, load: StressLoad) -> Judged {
    let key = match load {
        StressLoad::Cpu(_) => "cpu",
        StressLoad::Memory(_) => "memory",
        StressLoad::Io { .. } => "io",
    };
    let Some(said) = report.first(key) else {
        return Judged::NotSeen(format!("the stress pod reported no {key} measurement"));
    };
    if let Some(why) = said.strip_prefix("not measured: ") {
        return Judged::NotSeen(format!("{key} not measured: {why}"));
    }
    let field = |name: &str, unit: &str| -> Option<f64> {
        said.split_whitespace()
            .find_map(|w| w.strip_prefix(name)?.strip_suffix(unit)?.parse().ok())
    };
    match load {
        StressLoad::Cpu(percent) => {
            let Some(share) = field("stress-ng=", "%") else {
                return Judged::NotSeen(format!("unreadable cpu measurement: {said}"));
            };
            let seen = format!("stress-ng used {share}% of each CPU, asked {percent}% ({said})");
            match share >= CPU_SEEN * f64::from(percent) {
                true => Judged::Seen(seen),
                false => Judged::NotSeen(format!(
                    "{seen}: under {:.0}% of the load asked",
                    CPU_SEEN * 100.0
                )),
            }
        }
        StressLoad::Memory(percent) => {
            let (Some(held), Some(asked)) = (field("held=", "kB"), field("asked=", "kB")) else {
                return Judged::NotSeen(format!("unreadable memory measurement: {said}"));
            };
            let seen = format!(
                "stress-ng held {held} kB, asked {asked} kB ({percent}% of the memory free)"
            );
            match held >= MEMORY_SEEN * asked {
                true => Judged::Seen(seen),
                false => Judged::NotSeen(format!(
                    "{seen}: under {:.0}% of what was asked",
                    MEMORY_SEEN * 100.0
                )),
            }
        }
        StressLoad::Io { workers } => judge_io(said, workers, field),
    }
}

/// io stress: stress-ng's processes wrote and read (through the calls, /proc/PID/io's wchar and
/// rchar) at least the floor for its workers; what reached the storage layer is said beside.
fn judge_io(said: &str, workers: u32, field: impl Fn(&str, &str) -> Option<f64>) -> Judged {
    let (Some(written), Some(read)) = (field("written=", "kB/s"), field("read=", "kB/s")) else {
        return Judged::NotSeen(format!("unreadable io measurement: {said}"));
    };
    let floor = IO_SEEN_KB_PER_WORKER * f64::from(workers);
    let seen = format!(
        "stress-ng wrote {written} kB/s and read {read} kB/s with {workers} workers ({said})"
    );
    match written + read >= floor {
        true => Judged::Seen(seen),
        false => Judged::NotSeen(format!(
            "{seen}: under {floor} kB/s ({IO_SEEN_KB_PER_WORKER} kB/s a worker)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEGRADED: &str = "firedrill: effect rtt before 0.066 ms to 10.98.0.2 (5 of 5 answered)
firedrill: + tc qdisc add dev eth0 root handle fd01: netem delay 100ms
firedrill: applied; waiting until 1796624065
firedrill: effect rtt during 100.2 ms to 10.98.0.2 (5 of 5 answered)
firedrill: effect qdisc qdisc netem fd01: root refcnt 2 limit 1000 delay 100ms
firedrill: effect nft none
firedrill: effect end
firedrill: deadline 1796624065 reached: removing the degradation
";

    fn judged_seen(j: Judged) -> String {
        match j {
            Judged::Seen(s) => s,
            Judged::NotSeen(s) => panic!("not seen: {s}"),
        }
    }

    fn not_seen(j: Judged) -> String {
        match j {
            Judged::NotSeen(s) => s,
            Judged::Seen(s) => panic!("seen: {s}"),
        }
    }

    fn asked(delay_ms: u64) -> Asked<'static> {
        Asked {
            delay: Some(Duration::from_millis(delay_ms)),
            loss: 0,
            rate: None,
        }
    }

    #[test]
    fn a_delay_is_seen_in_the_qdisc_and_the_round_trip() {
        let report = Report::parse(DEGRADED);
        assert!(report.complete);
        let seen = judged_seen(judge_degrade(&report, asked(100)));
        assert!(seen.contains("qdisc netem fd01: root"), "{seen}");
        assert!(
            seen.contains("round-trip 0.066 ms before, 100.2 ms during (to 10.98.0.2"),
            "{seen}"
        );
        // A round-trip that did not grow by most of the delay is not the delay asked.
        let slow = DEGRADED.replace("during 100.2 ms", "during 3.5 ms");
        let why = not_seen(judge_degrade(&Report::parse(&slow), asked(100)));
        assert!(
            why.contains("not the 100ms delay asked (want at least 80.1 ms)"),
            "{why}"
        );
    }

    #[test]
    fn what_is_missing_is_said_and_what_was_not_measured_is_never_a_number() {
        let none = "firedrill: effect rtt before not measured: ping is not in this image\n\
firedrill: effect rtt during not measured: ping is not in this image\n\
firedrill: effect qdisc qdisc noqueue 0: root refcnt 2\nfiredrill: effect nft none\nfiredrill: effect end\n";
        let why = not_seen(judge_degrade(
            &Report::parse(none),
            Asked {
                delay: Some(Duration::from_millis(50)),
                loss: 30,
                rate: Some("1mbit"),
            },
        ));
        for said in [
            "no netem delay of 50ms in the qdiscs (root: qdisc noqueue 0: root refcnt 2)",
            "no tbf rate 1mbit",
            "no nft drop rule for 30% loss (nft: none)",
            "round-trip not compared (before: not measured: ping is not in this image;",
        ] {
            assert!(why.contains(said), "{said:?} not in {why}");
        }
        // Nothing said yet: incomplete.
        assert!(!Report::parse("firedrill: effect rtt before 1 ms to x\n").complete);
    }

    #[test]
    fn a_stress_is_seen_within_its_tolerance_below_the_load_asked() {
        let cpu = |share: &str| {
            Report::parse(&format!(
                "stress-ng: info: [1] dispatching hogs: 2 cpu\nfiredrill: effect cpu stress-ng={share}% (0.97 of 2 CPUs) node=58% over=3s\nfiredrill: effect end\n"
            ))
        };
        let seen = judged_seen(judge_stress(&cpu("48.5"), StressLoad::Cpu(50)));
        assert!(
            seen.starts_with("stress-ng used 48.5% of each CPU, asked 50%"),
            "{seen}"
        );
        let why = not_seen(judge_stress(&cpu("6.2"), StressLoad::Cpu(80)));
        assert!(why.ends_with("under 60% of the load asked"), "{why}");
        let memory = Report::parse(
            "firedrill: effect memory held=120244kB asked=93338kB (2% of 4666920kB free)\nfiredrill: effect end\n",
        );
        let _ = judged_seen(judge_stress(&memory, StressLoad::Memory(2)));
        let unmeasured = Report::parse(
            "firedrill: effect cpu not measured: stress-ng ended within 1 s\nfiredrill: effect end\n",
        );
        assert_eq!(
            not_seen(judge_stress(&unmeasured, StressLoad::Cpu(50))),
            "cpu not measured: stress-ng ended within 1 s"
        );
    }
}
