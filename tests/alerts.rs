//! The Prometheus alerting rules in deploy/prometheus: valid (`promtool check rules`) and doing
//! what their unit tests say (`promtool test rules`). promtool comes with Debian's prometheus
//! package, which scripts/test.sh installs.

#[path = "../runner/tests/support/skip.rs"]
mod skip;

use std::path::Path;
use std::process::Command;

fn promtool(args: &[&str]) -> Option<std::process::Output> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus");
    match Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
    {
        Ok(out) => Some(out),
        Err(_) => {
            skip::skip("promtool is not installed (apt-get install prometheus; scripts/services.sh installs it)");
            None
        }
    }
}

#[test]
fn the_rules_are_valid_and_their_unit_tests_pass() {
    for args in [
        &["check", "rules", "firedrill.rules.yaml"][..],
        &["test", "rules", "firedrill.rules.test.yaml"][..],
    ] {
        let Some(out) = promtool(args) else { return };
        assert!(
            out.status.success(),
            "promtool {}:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The PrometheusRule for the Prometheus Operator is generated from the plain rule file and
/// never drifts from it.
#[test]
fn the_prometheusrule_is_the_rule_file() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new("python3")
        .args(["scripts/gen-prometheusrule.py", "--check"])
        .current_dir(&root)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "deploy/prometheus/prometheusrule.yaml differs from firedrill.rules.yaml (run scripts/gen-prometheusrule.py):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
