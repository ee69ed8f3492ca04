//! Speed of what users run most: validating a drill file and planning a year of fires.
//!
//! Also writes the generated files to `target/bench-data/` so that `scripts/bench.sh` can time
//! the same inputs as whole processes.

use std::hint::black_box;
use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeDelta, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use firedrill::config::Config;
use firedrill::schedule::upcoming::{calendar, Window};

/// A realistic mix: mostly monthly and weekly drills at scattered business hours, some
/// quarterly and daily ones, the example's blackouts, and every target form.
fn drill_file(drills: usize) -> String {
    let mut text = String::from(
        "timezone: Europe/Berlin\nconcurrency: 4\nblackouts:\n  - { name: year-end, from: 2026-12-20, to: 2027-01-04 }\n  - { name: weekends, weekdays: [Sat, Sun] }\n  - { name: nightly, times: \"22:00-06:00\" }\nsafety:\n  protected: [kube-system/*, monitoring/prometheus*]\n  never_target: [role=primary]\n  min_healthy:\n    - { namespace: pake-api, selector: app=pake-api, min: 2 }\n  limits: { partition: 10m, cpu: 95% }\ndrills:\n",
    );
    for i in 0..drills {
        let (minute, hour, day) = (i * 7 % 60, 8 + i % 10, 1 + i % 28);
        let (kind, schedule) = match i % 20 {
            0 => ("probe", "@daily".to_owned()),
            1..=3 => (
                "network-partition",
                format!("{minute} {hour} {day} 1,4,7,10 *"),
            ),
            4..=9 => (
                "resource-stress",
                format!("{minute} {hour} * * {}", 1 + i % 5),
            ),
            _ => ("pod-kill", format!("{minute} {hour} {day} * *")),
        };
        let targets = if kind == "probe" {
            String::new()
        } else {
            format!(
                "    targets:\n      - {{ namespace: team-{}, selector: \"app=svc-{i},tier in (web,api)\", percent: 25-50 }}\n      - {{ namespace: team-{}, selector: app=worker-{i}, count: 1 }}\n",
                i % 40,
                i % 40
            )
        };
        text.push_str(&format!(
            "  - name: drill-{i:04}\n    kind: {kind}\n    schedule: \"{schedule}\"\n    duration: {}m\n    deadline: 2h\n    on_blackout: {}\n{targets}",
            5 + i % 10,
            if i % 3 == 0 { "defer" } else { "skip" },
        ));
    }
    text
}

fn write_bench_data(name: &str, text: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-data");
    std::fs::create_dir_all(&dir).expect("create target/bench-data");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write bench data");
    path
}

fn benches(c: &mut Criterion) {
    let fifty = drill_file(50);
    write_bench_data("drills-50.yaml", &fifty);
    c.bench_function("validate 50 drills (in process)", |b| {
        b.iter(|| Config::parse(black_box(&fifty), Path::new("bench.yaml")).expect("valid"))
    });

    let thousand = drill_file(1000);
    write_bench_data("drills-1000.yaml", &thousand);
    let config = Config::parse(&thousand, Path::new("bench.yaml")).expect("valid");
    let from: DateTime<Utc> = "2026-11-23T00:00:00Z".parse().expect("instant");
    let fires = calendar(
        &config,
        from,
        Window::Until(from + TimeDelta::days(365)),
        None,
        true,
    );
    eprintln!("plan of 1000 drills over one year: {} fires", fires.len());
    c.bench_function("plan 1000 drills over one year", |b| {
        b.iter(|| {
            calendar(
                black_box(&config),
                from,
                Window::Until(from + TimeDelta::days(365)),
                None,
                true,
            )
        })
    });
}

criterion_group! {
    name = config_and_plan;
    config = Criterion::default().sample_size(10);
    targets = benches
}
criterion_main!(config_and_plan);
