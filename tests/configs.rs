//! The corpus of bad drill files: each must be answered with exactly the diagnostics in its
//! `.expected` file (every problem, with file, line, column and key), and never with a panic;
//! one with a cluster snapshot in `bad/snapshots/` is checked against that cluster too.
//! The good examples must validate.

use std::path::{Path, PathBuf};

use firedrill::config::Config;

fn corpus(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_bad_file_gets_its_expected_diagnostics() {
    let files = corpus("configs/bad");
    assert!(files.len() >= 10, "the corpus shrank: {files:?}");
    let mut failures = Vec::new();
    for file in &files {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .expect("file name");
        let text = std::fs::read_to_string(file).expect("read corpus file");
        let expected_path = file.with_extension("expected");
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|_| panic!("{} has no {}", name, expected_path.display()));
        // A file with a cluster snapshot beside it (`snapshots/<name>`) is also checked against
        // that cluster, as `plan --cluster` checks it.
        let snapshot = file.parent().map(|d| d.join("snapshots").join(name));
        let cluster = snapshot
            .filter(|s| s.exists())
            .map(|s| firedrill::cluster::snapshot::load(&s).unwrap_or_else(|e| panic!("{e}")));
        let got = match (Config::parse(&text, Path::new(name)), cluster) {
            (Ok(config), Some(cluster)) => match config.check_against(&cluster) {
                Ok(()) => format!("{name}: unexpectedly valid against its snapshot"),
                Err(diagnostics) => diagnostics.to_string(),
            },
            (Ok(_), None) => format!("{name}: unexpectedly valid"),
            (Err(diagnostics), _) => diagnostics.to_string(),
        };
        if got.trim_end() != expected.trim_end() {
            failures.push(format!("--- {name}\nexpected:\n{expected}\ngot:\n{got}\n"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_example_files_are_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples/firedrill.yaml");
    let config = Config::load(&root).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = config.drills.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "pod-kill-monthly",
            "network-partition-quarterly",
            "resource-stress-quarterly",
            "dependency-failure-quarterly",
            "region-failover-annual",
            "game-day-annual"
        ]
    );
    assert!(!config.armed, "the example must stay a dry run");
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    fn example() -> String {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples/firedrill.yaml");
        std::fs::read_to_string(root).expect("example file")
    }

    fn load(text: &str) {
        // Valid or not, loading must return, never panic.
        let _ = Config::parse(text, Path::new("fuzz.yaml"));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn on_arbitrary_text(text in "\\PC{0,400}") {
            load(&text);
        }

        #[test]
        fn on_yaml_shaped_text(text in "([a-z_]{1,10}: [-a-z0-9@*/%:\" ]{0,20}\n( {2,6}- )?){0,12}") {
            load(&text);
        }

        #[test]
        fn on_mutated_examples(
            cut_at in 0usize..4000,
            cut_len in 0usize..40,
            insert in "[\\PC\n]{0,12}",
        ) {
            let text = example();
            let mut chars: Vec<char> = text.chars().collect();
            let at = cut_at.min(chars.len());
            let end = (at + cut_len).min(chars.len());
            chars.splice(at..end, insert.chars());
            load(&chars.into_iter().collect::<String>());
        }

        #[test]
        fn on_line_swaps(a in 0usize..120, b in 0usize..120) {
            let text = example();
            let mut lines: Vec<&str> = text.lines().collect();
            let n = lines.len();
            lines.swap(a % n, b % n);
            load(&lines.join("\n"));
        }
    }
}

/// ARCHITECTURE.md, principle 3: the guard stays pure. Its manifest may name no Kubernetes client, HTTP
/// library or async runtime: only the two it has, each looked at when it came.
#[test]
fn the_safety_crate_depends_on_nothing_impure() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../safety/Cargo.toml"))
            .expect("safety/Cargo.toml");
    let dependencies = manifest
        .split("[dependencies]")
        .nth(1)
        .and_then(|rest| rest.split("\n[").next())
        .expect("a [dependencies] section");
    let names: Vec<&str> = dependencies
        .lines()
        .filter_map(|l| l.split(['=', '.']).next())
        .map(str::trim)
        .filter(|n| !n.is_empty() && !n.starts_with('#'))
        .collect();
    // foldhash: a hasher for the guard's own maps (pure: no I/O, no runtime).
    assert_eq!(
        names,
        ["foldhash", "thiserror"],
        "safety/ must stay pure; it depends on {names:?}"
    );
}
