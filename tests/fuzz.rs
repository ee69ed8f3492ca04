//! Fuzzing the two readers of untrusted YAML — the drill-file loader and the cluster-snapshot
//! reader — with generated documents built to hurt: nested anchors and aliases (a "billion
//! laughs" at any width and depth), deep nesting, and mutations of both. Each must answer (valid
//! or not) without panicking, and the whole run must stay within a memory bound: the peak
//! resident memory of this process (its own test binary, one test) is read from the kernel at
//! the end. Without firedrill's limits, a single 9-by-9 alias case expands to hundreds of
//! millions of nodes, tens of gigabytes.

use std::path::Path;

use firedrill::config::Config;
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};

/// What the process may reach over the whole run: the node limit (1,000,000) costs about
/// 110 MiB at its peak; this leaves room for the test harness and allocator slack.
const PEAK_BOUND_KIB: u64 = 512 * 1024;

/// Anchored levels, each a list of `width` aliases to the level below: `width^levels` leaves.
fn alias_levels() -> impl Strategy<Value = String> {
    (1usize..12, 1usize..12, "[a-z]{1,6}", proptest::bool::ANY).prop_map(
        |(levels, width, leaf, as_mapping)| {
            let mut text = format!("l0: &l0 [{}]\n", vec![leaf; width].join(", "));
            for level in 1..levels {
                let below = vec![format!("*l{}", level - 1); width].join(", ");
                if as_mapping {
                    let entries: Vec<String> = (0..width)
                        .map(|i| format!("k{i}: *l{}", level - 1))
                        .collect();
                    text.push_str(&format!("l{level}: &l{level} {{{}}}\n", entries.join(", ")));
                } else {
                    text.push_str(&format!("l{level}: &l{level} [{below}]\n"));
                }
            }
            text
        },
    )
}

/// A large string anchored once and copied by many aliases: few nodes, much text.
fn copied_text() -> impl Strategy<Value = String> {
    (1usize..200_000, 1usize..800).prop_map(|(len, copies)| {
        format!(
            "t: &t \"{}\"\nc: [{}]\n",
            "a".repeat(len),
            vec!["*t"; copies].join(", ")
        )
    })
}

/// Anchors nested inside anchors: each keeps its own copy of everything below it.
fn nested_anchors() -> impl Strategy<Value = String> {
    (1usize..80, 1usize..30_000).prop_map(|(levels, width)| {
        let mut doc = format!("[{}]", vec!["x"; width].join(","));
        for i in 0..levels {
            doc = format!("&n{i} [{doc}]");
        }
        format!("n: {doc}\n")
    })
}

fn deep_nesting() -> impl Strategy<Value = String> {
    (1usize..400, proptest::bool::ANY).prop_map(|(depth, flow)| {
        if flow {
            format!("x: {}{}\n", "[".repeat(depth), "]".repeat(depth))
        } else {
            let mut text = String::new();
            for i in 0..depth.min(150) {
                text.push_str(&format!("{}k{i}:\n", "  ".repeat(i)));
            }
            text
        }
    })
}

/// A document placed where each reader looks: top-level keys of a drill file, and the labels
/// of an object inside a snapshot List.
fn as_drill_file(body: &str) -> String {
    format!(
        "{body}drills:\n  - {{ name: fuzz, kind: probe, schedule: \"@daily\", duration: 1m }}\n"
    )
}

fn as_snapshot(body: &str) -> String {
    let indented: String = body.lines().map(|l| format!("        {l}\n")).collect();
    format!("apiVersion: v1\nkind: List\nitems:\n  - kind: Namespace\n    metadata:\n      name: fuzz\n      labels:\n{indented}")
}

fn mutated(text: String, at: usize, cut: usize, insert: &str) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let at = at.min(chars.len());
    let end = (at + cut).min(chars.len());
    chars.splice(at..end, insert.chars());
    chars.into_iter().collect()
}

fn peak_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

#[test]
fn loader_and_snapshot_reader_answer_hostile_yaml_within_a_memory_bound() {
    let hostile = prop_oneof![
        alias_levels(),
        copied_text(),
        nested_anchors(),
        deep_nesting()
    ];
    let case = (
        hostile,
        0usize..2000,
        0usize..8,
        "[\\PC\n*&\\[\\]{}:,]{0,8}",
    );
    let mut runner = TestRunner::new(RunnerConfig {
        cases: 120,
        failure_persistence: None,
        ..RunnerConfig::default()
    });
    let refused = std::cell::Cell::new(0u32);
    runner
        .run(&case, |(body, at, cut, insert)| {
            for text in [
                as_drill_file(&body),
                mutated(as_drill_file(&body), at, cut, &insert),
            ] {
                if let Err(d) = Config::parse(&text, Path::new("fuzz.yaml")) {
                    let message = d.to_string();
                    prop_assert!(!message.is_empty());
                    if message.contains("to bound memory") {
                        refused.set(refused.get() + 1);
                    }
                }
            }
            for text in [
                as_snapshot(&body),
                mutated(as_snapshot(&body), at, cut, &insert),
            ] {
                if let Err(e) = firedrill::cluster::snapshot::parse(&text, "fuzz.yaml") {
                    prop_assert!(!e.to_string().is_empty());
                }
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    // The generator must really reach the limits, or this test proves nothing.
    let refused_by_a_limit = refused.get();
    assert!(
        refused_by_a_limit > 10,
        "only {refused_by_a_limit} cases hit a limit"
    );
    let peak = peak_kib();
    assert!(
        peak < PEAK_BOUND_KIB,
        "peak resident memory {peak} KiB is over the bound of {PEAK_BOUND_KIB} KiB"
    );
    eprintln!("{refused_by_a_limit} documents refused at a limit; peak resident memory {peak} KiB");
}
