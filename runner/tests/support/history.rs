//! A seeded run history: every fire a drill file's calendar plans over a period, on several
//! clusters, with outcomes drawn from a fixed seed (mostly passed; some failed on a breached
//! RTO, aborted by an abort condition, blocked, missed, errored with a failed rollback, or with
//! no record at all), written through the store as the scheduler and the Jobs write them.
//! Shared by the report tests and the report benchmark.

#![allow(dead_code)]

use chrono::{DateTime, TimeDelta, Utc};
use firedrill::config::Config;
use firedrill::history::store::{FireRecord, Store};
use firedrill::run::{Hit, Measurements, RunRecord, RunStatus};
use firedrill::schedule::{self, FireStatus};
use serde_json::json;

/// What the seeder decided, to check the report against.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Seeded {
    pub planned: u32,
    pub runs: u32,
    pub passed: u32,
    pub failed: u32,
    pub aborted: u32,
    pub error: u32,
    pub blocked: u32,
    pub skipped: u32,
    pub missed: u32,
    pub unaccounted: u32,
    pub manual: u32,
}

/// A small, fixed, portable hash (FNV-1a) of a fire: the same outcomes on every machine.
fn draw(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain([0]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Seeds `clusters` with the calendar of `config` over `[since, until)`. `store_for` opens the
/// store as one cluster's scheduler would.
pub async fn seed(
    config: &Config,
    clusters: &[&str],
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    stores: &[Store],
) -> Seeded {
    let drills = config.planned_drills();
    let fires = schedule::plan(
        &drills,
        config.timezone,
        &config.blackouts,
        config.concurrency as usize,
        since,
        until,
    );
    let mut seeded = Seeded::default();
    for (cluster, store) in clusters.iter().zip(stores) {
        // Each cluster's scheduler planned every drill before the period began: its first
        // record of each is a fire a week before (outside the period, so in no report of it).
        for drill in &config.drills {
            store
                .record_fire(&FireRecord {
                    drill: drill.name.clone(),
                    scheduled: since - TimeDelta::days(7),
                    status: "skipped".to_owned(),
                    reason: Some("seeded: the scheduler ran before the period".to_owned()),
                    run: None,
                })
                .await
                .unwrap();
        }
        for fire in &fires {
            let drill = &config.drills[fire.drill];
            seeded.planned += 1;
            let at = fire.scheduled.timestamp().to_string();
            let h = draw(&[cluster, &drill.name, &at]);
            let id = firedrill::cluster::job::run_id(&drill.name, fire.scheduled);
            let record_fire =
                |status: &str, reason: Option<String>, run: Option<String>| FireRecord {
                    drill: drill.name.clone(),
                    scheduled: fire.scheduled,
                    status: status.to_owned(),
                    reason,
                    run,
                };
            if fire.status == FireStatus::Skipped {
                seeded.skipped += 1;
                store
                    .record_fire(&record_fire("skipped", fire.reason.clone(), None))
                    .await
                    .unwrap();
                continue;
            }
            let roll = h % 100;
            if roll < 3 {
                // The scheduler was down: nothing recorded.
                seeded.unaccounted += 1;
                continue;
            }
            if roll < 6 {
                seeded.missed += 1;
                let reason = "due at the fire's instant, the scheduler could only fire it 2h later: past its deadline of 1h".to_owned();
                store
                    .record_fire(&record_fire(
                        "missed",
                        Some(reason.clone()),
                        Some(id.clone()),
                    ))
                    .await
                    .unwrap();
                store
                    .record_run(&RunRecord {
                        cluster: (*cluster).to_owned(),
                        id,
                        drill: drill.name.clone(),
                        kind: drill.kind().to_string(),
                        scheduled: fire.scheduled,
                        started: None,
                        ended: Some(fire.scheduled + TimeDelta::hours(2)),
                        status: RunStatus::Missed,
                        reason: Some(reason),
                        targets: Vec::new(),
                        measurements: Measurements::default(),
                        evidence: Box::new(firedrill::run::Evidence::from_value(
                            &json!({ "fired_by": "scheduler", "job": { "name": null } }),
                        )),
                    })
                    .await
                    .unwrap();
                seeded.runs += 1;
                continue;
            }
            store
                .record_fire(&record_fire("fired", fire.reason.clone(), Some(id.clone())))
                .await
                .unwrap();
            let status = match roll {
                6..=9 => RunStatus::Blocked,
                10..=15 => RunStatus::Failed,
                16..=18 => RunStatus::Aborted,
                19 => RunStatus::Error,
                _ => RunStatus::Passed,
            };
            let start = fire.start.unwrap_or(fire.scheduled) + TimeDelta::seconds(2);
            store
                .record_run(&run(cluster, drill, &id, fire.scheduled, start, status, h))
                .await
                .unwrap();
            seeded.runs += 1;
            match status {
                RunStatus::Blocked => seeded.blocked += 1,
                RunStatus::Failed => seeded.failed += 1,
                RunStatus::Aborted => seeded.aborted += 1,
                RunStatus::Error => seeded.error += 1,
                _ => seeded.passed += 1,
            }
        }
        // One manual run per cluster, outside the calendar.
        if let Some(drill) = config.drills.first() {
            let at = since + TimeDelta::days(40) + TimeDelta::hours(3);
            let id = format!("{}-mmanual{}", drill.name, &cluster[..2]);
            // Recorded before the executor kept its Job and Event: the report says so.
            let mut manual = run(cluster, drill, &id, at, at, RunStatus::Passed, 7);
            manual.evidence.job = None;
            manual.evidence.event = None;
            store.record_run(&manual).await.unwrap();
            seeded.manual += 1;
            seeded.runs += 1;
        }
    }
    seeded
}

/// One finished run as the executor records it, its figures drawn from `h`.
pub fn run(
    cluster: &str,
    drill: &firedrill::config::Drill,
    id: &str,
    scheduled: DateTime<Utc>,
    start: DateTime<Utc>,
    status: RunStatus,
    h: u64,
) -> RunRecord {
    let seconds = |d: Option<std::time::Duration>| d.map(|d| d.as_secs_f64());
    let success = &drill.success;
    let criteria = json!({
        "availability": success.availability.map(|a| a.as_fraction()),
        "latency_p95_seconds": seconds(success.p95),
        "rto_seconds": seconds(success.rto),
        "rpo_seconds": seconds(success.rpo),
    });
    let acted = !matches!(status, RunStatus::Blocked);
    let frac =
        |shift: u32, lo: f64, hi: f64| lo + (hi - lo) * ((h >> shift) % 1000) as f64 / 1000.0;
    // A failed run missed its RTO (when it has one) or its availability.
    let rto = success.rto.filter(|_| acted).map(|t| {
        let t = t.as_secs_f64();
        if status == RunStatus::Failed {
            t * frac(8, 1.1, 1.6)
        } else {
            t * frac(8, 0.2, 0.8)
        }
    });
    let rpo = success
        .rpo
        .filter(|_| acted)
        .map(|t| t.as_secs_f64() * frac(18, 0.0, 0.4));
    let availability = acted.then(|| {
        if status == RunStatus::Failed && success.rto.is_none() {
            frac(28, 0.80, 0.94)
        } else {
            frac(28, 0.97, 0.9999)
        }
    });
    let ns = drill
        .targets
        .first()
        .map_or("default", |t| t.namespace.as_str())
        .to_owned();
    let pod = format!(
        "{}-{:05x}",
        drill.name.split('-').next().unwrap_or("pod"),
        h & 0xfffff
    );
    let mut evidence = json!({
        "fired_by": "scheduler",
        "job": { "name": id },
        "armed": true,
        "dry_run": false,
        "criteria": criteria,
        "preflight": [{ "check": "promql `sum(up{job=\"api\"})`", "passed": status != RunStatus::Blocked, "detail": "1 series" }],
        "excluded": [{ "namespace": ns, "name": format!("{ns}-canary-0"), "reason": "protected by safety.protected" }],
    });
    let ended =
        start + TimeDelta::from_std(drill.duration).unwrap_or_default() + TimeDelta::seconds(30);
    let reason = match status {
        RunStatus::Blocked => Some("preflight gate failed: promql `sum(up{job=\"api\"})` returned no series".to_owned()),
        RunStatus::Failed => Some(match rto {
            Some(r) => format!("recovery took {r:.1}s, more than the RTO of {}", success.rto.map(firedrill_reader::duration::format).unwrap_or_default()),
            None => format!("availability {:.2}% is below 95%", availability.unwrap_or(0.0) * 100.0),
        }),
        RunStatus::Aborted => Some("abort condition breached: promql `error_ratio > 0.05` = 0.08".to_owned()),
        RunStatus::Error => Some(format!("REVERT FAILED: restore Deployment/{ns}/{pod}: the API server did not answer; the ledger firedrill-ledger-{id} stays open: firedrill rollback --run {id}")),
        _ => None,
    };
    if acted {
        let ledger = format!("firedrill-ledger-{id}");
        let mut injected = json!({ "ledger": ledger, "changed": [format!("delete Pod/{ns}/{pod}")], "refused": [] });
        if drill.kind().to_string() == "region-failover" {
            injected["dns_changes"] = json!([format!("record set api.pake.example.com A (us-east-1) in zone Z123: change /change/C{:X} INSYNC", h & 0xffffff)]);
        }
        evidence["injected"] = injected;
        if status == RunStatus::Error {
            evidence["revert_error"] = json!(format!(
                "restore Deployment/{ns}/{pod}: the API server did not answer"
            ));
        } else {
            evidence["reverted"] = json!([format!("ledger {ledger}: 1 reverted, 0 left")]);
        }
        evidence["samples"] = json!({ "sent": 900, "available": (availability.unwrap_or(1.0) * 900.0).round(), "answered": 900 });
        evidence["timeline"] = json!([
            { "at": stamp(start), "seconds": 0.0, "event": format!("delete Pod/{ns}/{pod}") },
            { "at": stamp(start + TimeDelta::milliseconds((rto.unwrap_or(20.0) * 1000.0) as i64)), "seconds": rto.unwrap_or(20.0), "event": "recovered" },
        ]);
        if status == RunStatus::Aborted {
            evidence["abort"] = json!({ "cause": "abort-condition" });
        }
    }
    // The Event on its Job, as the executor records what became of it: created, except where the
    // API server was not answering (the runs in error).
    evidence["event"] = if status == RunStatus::Error {
        json!({ "not_created": format!("create Event for Job firedrill/{id}: the API server did not answer") })
    } else {
        json!({ "created": format!(
            "Job/firedrill/{id}: {} {}: {status}: {}",
            if status == RunStatus::Passed { "Normal" } else { "Warning" },
            firedrill::drill::executor::drill_event_reason(status),
            reason.as_deref().unwrap_or("all criteria met")
        ) })
    };
    RunRecord {
        cluster: cluster.to_owned(),
        id: id.to_owned(),
        drill: drill.name.clone(),
        kind: drill.kind().to_string(),
        scheduled,
        started: Some(start),
        ended: Some(ended),
        status,
        reason,
        targets: if acted {
            vec![Hit {
                namespace: ns.clone(),
                name: pod,
                owner: None,
            }]
        } else {
            Vec::new()
        },
        measurements: Measurements {
            availability,
            latency_p50_seconds: availability.map(|_| frac(38, 0.01, 0.05)),
            latency_p95_seconds: availability.map(|_| frac(40, 0.05, 0.4)),
            latency_p99_seconds: availability.map(|_| frac(42, 0.2, 0.9)),
            requests: availability.map(|_| 900),
            rto_seconds: rto,
            rpo_seconds: rpo,
        },
        evidence: Box::new(firedrill::run::Evidence::from_value(&evidence)),
    }
}
