//! resource-stress for real: the stress-ng command each stress pod runs, run here for a few
//! seconds with the load a drill asks for. The load is read from /proc (CPU time of stress-ng and
//! its workers, their resident memory), and the command ends by itself.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use firedrill_experiments::node::{stress_args, Load};
use firedrill_experiments::{Resource, ResourceStress};

/// stress-ng from `scripts/test.sh`; missing under CI is a failure.
fn stress_ng() -> Option<String> {
    let found = Command::new("stress-ng")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        support::skip("stress-ng is not installed (scripts/services.sh installs it)");
        return None;
    }
    Some("stress-ng".into())
}

/// (pid, parent pid, utime + stime in ticks, resident kB) of every process.
fn processes() -> Vec<(u32, u32, u64, u64)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The command name may hold spaces: fields start after its closing parenthesis.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        // After the name: state(0) ppid(1) ... utime(11) stime(12) ... rss pages(21).
        let ppid = field(1) as u32;
        let ticks = field(11) + field(12);
        let rss_kb = field(21) * 4;
        out.push((pid, ppid, ticks, rss_kb));
    }
    out
}

/// CPU ticks and resident kB of `root` and all its descendants (stress-ng forks its workers,
/// and some workers fork again).
fn tree(root: u32) -> (u64, u64) {
    let all = processes();
    let mut family = vec![root];
    loop {
        let more: Vec<u32> = all
            .iter()
            .filter(|(pid, ppid, _, _)| family.contains(ppid) && !family.contains(pid))
            .map(|(pid, ..)| *pid)
            .collect();
        if more.is_empty() {
            break;
        }
        family.extend(more);
    }
    all.iter()
        .filter(|(pid, ..)| family.contains(pid))
        .fold((0, 0), |(t, r), (_, _, ticks, rss)| (t + ticks, r + rss))
}

/// One stress at a time: two at once would share the CPUs and skew each other's reading.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn online_cpus() -> f64 {
    std::thread::available_parallelism().map_or(1, |n| n.get()) as f64
}

fn settings(resource: Resource) -> ResourceStress {
    ResourceStress {
        resource,
        ..ResourceStress::default()
    }
}

/// Runs the pod's command for `seconds`; returns what `sample` saw and how long it ran.
fn run(args: &[String], seconds: u64, sample: impl FnOnce(u32)) -> Duration {
    let started = Instant::now();
    let mut child = Command::new("stress-ng")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    sample(child.id());
    // It must end by itself (its --timeout), not be killed: wait a bounded time.
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "stress-ng exited with {status}");
            return started.elapsed();
        }
        if started.elapsed() > Duration::from_secs(seconds + 10) {
            let _ = child.kill();
            panic!("stress-ng did not end by itself within {seconds}s + 10s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_cpu_stress_command_loads_each_cpu_as_asked_and_ends_by_itself() {
    if stress_ng().is_none() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let args = stress_args(
        &settings(Resource::Cpu),
        Load {
            percent: 50,
            seconds: 5,
        },
    );
    assert_eq!(args[..4], ["--cpu", "0", "--cpu-load", "50"]);
    let mut used = 0.0;
    let took = run(&args, 5, |pid| {
        // Let the workers start, then measure two seconds of their CPU time.
        std::thread::sleep(Duration::from_millis(1500));
        let (t0, at0) = (tree(pid).0, Instant::now());
        std::thread::sleep(Duration::from_secs(2));
        let (t1, at1) = (tree(pid).0, Instant::now());
        used = (t1 - t0) as f64 / 100.0 / (at1 - at0).as_secs_f64();
    });
    let want = 0.5 * online_cpus();
    eprintln!(
        "cpu load 50% on {} CPUs: {used:.2} CPUs busy (want {want:.2}); ran {took:?}",
        online_cpus()
    );
    // stress-ng's --cpu-load sleeps to hold the share; a busy 2-core machine may give less.
    assert!(
        (0.6 * want..=1.15 * want).contains(&used),
        "{used:.2} CPUs busy, want {want:.2}"
    );
    assert!(
        took >= Duration::from_secs(5) && took < Duration::from_secs(9),
        "{took:?}"
    );
}

#[test]
fn the_memory_stress_command_holds_the_share_it_asks_for_and_ends_by_itself() {
    if stress_ng().is_none() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let args = stress_args(
        &settings(Resource::Memory),
        Load {
            percent: 2,
            seconds: 4,
        },
    );
    assert_eq!(
        args[..6],
        [
            "--vm",
            "1",
            "--vm-bytes",
            "2%",
            "--vm-keep",
            "--vm-populate"
        ]
    );
    // stress-ng takes a percentage of the free memory (MemFree), not of MemAvailable.
    let free_kb: u64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("MemFree:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    // The most it held at once, sampled until it ends.
    let mut resident = 0;
    run(&args, 4, |pid| {
        let until = Instant::now() + Duration::from_millis(3500);
        while Instant::now() < until {
            resident = resident.max(tree(pid).1);
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let want = free_kb / 50;
    eprintln!("memory 2% of {free_kb} kB free: {resident} kB resident (want {want} kB)");
    assert!(
        resident as f64 >= 0.7 * want as f64 && resident as f64 <= 1.5 * want as f64 + 65_536.0,
        "{resident} kB resident, want about {want} kB"
    );
}
