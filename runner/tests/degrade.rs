//! network-degrade's helper for real: the script the helper pod runs (experiments/src/degrade.sh),
//! driven by the environment firedrill gives the pod, and measured with real traffic in network
//! namespaces this test makes (scripts/degrade-check.sh: loss, partition, rate, removal on a
//! signal and at the deadline, a SIGKILLed helper's loss still ending at the deadline, and the
//! three capabilities it keeps). This kernel has no netem: the delay is checked as the command it
//! builds, and its failure as leaving nothing behind.

mod support;

use std::process::Command;
use std::time::Duration;

use firedrill_experiments::degrade::{script_env, NetworkDegrade};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// What the check needs of this machine; missing under CI is a failure, not a skip.
fn can_make_namespaces() -> bool {
    let missing: Vec<&str> = ["ip", "nft", "tc", "ping", "setpriv", "python3"]
        .into_iter()
        .filter(|tool| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .status()
                .is_ok_and(|s| s.success())
        })
        .collect();
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if missing.is_empty() && root {
        return true;
    }
    let why = format!("network namespaces need root and {missing:?} (scripts/services.sh installs them: its PROGRAMS table)");
    support::skip(&why);
    false
}

#[test]
fn the_pods_environment_drives_the_script() {
    let settings = NetworkDegrade {
        delay: Some(Duration::from_millis(100)),
        jitter: Some(Duration::from_millis(20)),
        loss: 5,
        rate: Some("10mbit".into()),
        ..NetworkDegrade::default()
    };
    let out = Command::new("sh")
        .arg("-c")
        .arg(firedrill_experiments::degrade::DEGRADE_SCRIPT)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(script_env(&settings, Duration::from_secs(600)))
        .env("DRY_RUN", "1")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for command in [
        "tc qdisc add dev eth0 root handle fd01: netem delay 100ms 20ms",
        "tc qdisc add dev eth0 parent fd01:1 handle fd02: tbf rate 10mbit",
        "numgen random mod 100 < 5 counter drop",
        "timeout 600s",
        // What it removes afterwards: exactly what it added.
        "nft delete table netdev firedrill",
        "tc qdisc del dev eth0 root",
    ] {
        assert!(said.contains(command), "{command:?} not in:\n{said}");
    }
}

#[test]
fn the_helper_degrades_real_traffic_and_removes_exactly_what_it_added() {
    if !can_make_namespaces() {
        return;
    }
    let out = Command::new("bash")
        .arg(format!("{ROOT}/scripts/degrade-check.sh"))
        .env("SCRIPT", format!("{ROOT}/experiments/src/degrade.sh"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    eprintln!("{said}");
    assert!(
        out.status.success(),
        "{said}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains(" 0 failed"), "{said}");
    for shown in [
        "30%",      // loss measured against what was asked
        "100%",     // a partition
        "netem",    // the delay command, where the kernel lacks netem
        "SIGTERM",  // removal when the pod is deleted
        "deadline", // removal when its time is up
        "3 caps",   // NET_ADMIN, SYS_ADMIN, SYS_PTRACE and no more
    ] {
        assert!(said.contains(shown), "{shown:?} not in:\n{said}");
    }
}
