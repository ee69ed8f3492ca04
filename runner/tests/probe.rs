//! `firedrill execute` as a drill Job runs it, on a `probe` drill against a local HTTP server that
//! fails 10% of requests and adds latency: what it records must match what the server did, and
//! the exit code must say how the run went.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::{refused_url, serve, unique};

/// Every tenth answer is a 500; answers take 20, 30, 40, 50, 60 ms in turn.
async fn flaky_server() -> url::Url {
    let server = serve(|n| {
        (
            if n % 10 == 9 { 500 } else { 200 },
            Duration::from_millis(20 + (n % 5) * 10),
        )
    })
    .await;
    let url = server.url.clone();
    std::mem::forget(server);
    url
}

fn write_config(dir: &Path, armed: bool, extra: &str, probe: &url::Url) -> PathBuf {
    let text = format!(
        r#"armed: {armed}
store: sqlite://{store}
drills:
  - name: api-probe
    kind: probe
    schedule: "@daily"
    duration: 3s
    steady_state:
      - http: {probe}
        every: 20ms
{extra}"#,
        store = dir.join("history.db").display()
    );
    let path = dir.join("firedrill.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

struct Ran {
    code: Option<i32>,
    record: Value,
    stderr: String,
}

/// Runs `execute` of the `api-probe` drill as a Job would (no cluster), in a blocking thread so
/// the test's HTTP server keeps answering.
async fn execute(config: &Path) -> Ran {
    let config = config.display().to_string();
    firedrill(
        args(&["execute", "--config", &config, "--drill", "api-probe"]),
        std::env::current_dir().unwrap(),
    )
    .await
}

fn temp() -> PathBuf {
    let dir = std::env::temp_dir().join(unique("firedrill-probe"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_measures_what_the_server_did() {
    let url = flaky_server().await;
    let dir = temp();
    let config = write_config(
        &dir,
        true,
        "    success:\n      availability: 85%\n      p95: 500ms\n",
        &url,
    );
    let ran = execute(&config).await;
    assert_eq!(ran.code, Some(0), "{}\n{}", ran.record, ran.stderr);
    let r = &ran.record;
    assert_eq!(r["status"], "passed", "{r}");
    let m = &r["measurements"];
    // A request every 20ms for 3s: about 150 (scheduling on a busy 2-core machine may drop a few).
    let requests = m["requests"].as_u64().unwrap();
    assert!((120..=151).contains(&requests), "{m}");
    // 10% fail: availability 0.90 within 0.02.
    let availability = m["availability"].as_f64().unwrap();
    assert!((availability - 0.90).abs() <= 0.02, "{m}");
    // Server-side delays cycle 20..60ms: the median answer takes 40ms plus loopback overhead,
    // p95 and p99 60ms plus overhead; tolerance 25ms for a loaded machine.
    let ms = |key: &str| m[key].as_f64().unwrap() * 1000.0;
    assert!((40.0..65.0).contains(&ms("latency_p50_seconds")), "{m}");
    assert!((60.0..85.0).contains(&ms("latency_p95_seconds")), "{m}");
    assert!((60.0..85.0).contains(&ms("latency_p99_seconds")), "{m}");
    // The first probe went out within a second of the process starting.
    let first = ran
        .stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["message"] == "first probe")
        .unwrap_or_else(|| panic!("no first-probe log:\n{}", ran.stderr));
    assert!(
        first["since_process_start_ms"].as_u64().unwrap() < 1000,
        "{first}"
    );

    // The history has it.
    let out = Command::new(env!("CARGO_BIN_EXE_firedrill"))
        .args(["history", "--format", "json", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let history: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(history[0]["id"], r["id"]);
    assert_eq!(history[0]["status"], "passed");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_say_how_the_run_went() {
    let url = flaky_server().await;
    let refused = refused_url().await;

    // 1: the criteria are not met.
    let dir = temp();
    let ran = execute(&write_config(
        &dir,
        true,
        "    success:\n      availability: 99%\n",
        &url,
    ))
    .await;
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    assert_eq!(ran.record["status"], "failed");
    assert!(
        ran.record["reason"]
            .as_str()
            .unwrap()
            .starts_with("availability 9"),
        "{}",
        ran.record
    );

    // 2: an abort condition breaches (the endpoint refuses connections, twice in a row).
    let dir = temp();
    let abort = format!(
        "    abort_when:\n      - http: {refused}\n        failures: 2\n        interval: 100ms\n"
    );
    let ran = execute(&write_config(&dir, true, &abort, &url)).await;
    assert_eq!(ran.code, Some(2), "{}", ran.stderr);
    assert_eq!(ran.record["status"], "aborted");
    assert!(
        ran.record["reason"]
            .as_str()
            .unwrap()
            .contains("(2 times in a row)"),
        "{}",
        ran.record
    );

    // 3: a preflight gate fails; nothing runs.
    let dir = temp();
    let gate = format!("    preflight:\n      - http: {refused}\n");
    let ran = execute(&write_config(&dir, true, &gate, &url)).await;
    assert_eq!(ran.code, Some(3), "{}", ran.stderr);
    assert_eq!(ran.record["status"], "blocked");
    assert!(
        ran.record["reason"]
            .as_str()
            .unwrap()
            .starts_with("preflight failed: GET"),
        "{}",
        ran.record
    );
    assert!(ran.record["measurements"].as_object().unwrap().is_empty());

    // 0 and dry-run: not armed, everything runs but mutations.
    let dir = temp();
    let ran = execute(&write_config(
        &dir,
        false,
        "    success:\n      availability: 99%\n",
        &url,
    ))
    .await;
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert_eq!(ran.record["status"], "dry-run");
    assert!(
        ran.record["reason"]
            .as_str()
            .unwrap()
            .starts_with("dry run, nothing injected; availability"),
        "{}",
        ran.record
    );
    assert!(ran.record["measurements"]["availability"].is_f64());
}

/// Runs the binary with `args` (no cluster), in `cwd`, waiting in a blocking thread.
async fn firedrill(args: Vec<String>, cwd: PathBuf) -> Ran {
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_firedrill"))
            .args(&args)
            .current_dir(cwd)
            .env("KUBECONFIG", "/nonexistent")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env_remove("FIREDRILL_DATA_DIR")
            .env("FIREDRILL_LOG", "json")
            .output()
            .expect("run firedrill")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    Ran {
        code: out.status.code(),
        record: serde_json::from_str(stdout.lines().last().unwrap_or("null"))
            .unwrap_or(Value::Null),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_whose_every_request_failed_never_passes() {
    let refused = refused_url().await;
    let dir = temp();
    // No `success:` section: steady state must still hold (the default availability floor).
    let ran = execute(&write_config(&dir, true, "", &refused)).await;
    assert_eq!(ran.code, Some(1), "{}\n{}", ran.record, ran.stderr);
    assert_eq!(ran.record["status"], "failed");
    assert_eq!(ran.record["measurements"]["availability"], 0.0);
    let reason = ran.record["reason"].as_str().unwrap();
    assert!(
        reason.contains("is below 95% (the default; set success.availability to change it)"),
        "{reason}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_ids_are_validated_and_never_merge_two_runs() {
    let url = flaky_server().await;
    let dir = temp();
    let config = dir.join("firedrill.yaml");
    std::fs::write(
        &config,
        format!(
            "store: sqlite://history.db\ndrills:\n  - {{ name: first, kind: probe, schedule: \"@daily\", duration: 1s, steady_state: [{{ http: \"{url}\", every: 100ms }}] }}\n  - {{ name: second, kind: probe, schedule: \"@daily\", duration: 1s, steady_state: [{{ http: \"{url}\", every: 100ms }}] }}\n"
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let execute = |drill: &str, run: Option<&str>| {
        let mut a = args(&["execute", "--config", &config, "--drill", drill]);
        if let Some(run) = run {
            a.extend(args(&["--run", run]));
        }
        firedrill(a, dir.clone())
    };
    for bad in ["", "../../etc/passwd; DROP TABLE runs;--", "Has-Upper"] {
        let ran = execute("first", Some(bad)).await;
        assert_eq!(ran.code, Some(2), "{bad:?}: {}", ran.stderr);
        assert!(ran.stderr.contains("--run"), "{}", ran.stderr);
    }
    let ran = execute("first", Some("drill-x1")).await;
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    // The same id for another drill is refused before anything runs; the record stays whole.
    let ran = execute("second", Some("drill-x1")).await;
    assert_eq!(ran.code, Some(2), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("run drill-x1 is already recorded"),
        "{}",
        ran.stderr
    );
    // Two runs in quick succession without --run get two ids and two records.
    let (a, b) = tokio::join!(execute("first", None), execute("first", None));
    assert_ne!(a.record["id"], b.record["id"]);
    let out = Command::new(env!("CARGO_BIN_EXE_firedrill"))
        .args(["history", "--format", "json", "--config", &config])
        .current_dir("/")
        .output()
        .unwrap();
    let runs: Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 3, "{runs:?}");
    let x1 = runs.iter().find(|r| r["id"] == "drill-x1").unwrap();
    assert_eq!(x1["drill"], "first", "the record kept its drill");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_no_store_takes_is_spooled_and_replayed_and_a_lost_one_is_loud() {
    let url = flaky_server().await;
    let dir = temp();
    let write = |store: &str| {
        let path = dir.join("firedrill.yaml");
        std::fs::write(
            &path,
            format!("store: sqlite://{store}\ndrills:\n  - {{ name: api-probe, kind: probe, schedule: \"@daily\", duration: 1s, steady_state: [{{ http: \"{url}\", every: 100ms }}] }}\n"),
        )
        .unwrap();
        path.display().to_string()
    };
    // The store's path is a directory: the store cannot open, there is no cluster.
    std::fs::create_dir_all(dir.join("history.db")).unwrap();
    let config = write("history.db");
    let run = |config: String| {
        firedrill(
            args(&["execute", "--config", &config, "--drill", "api-probe"]),
            PathBuf::from("/"),
        )
    };
    let spooled = run(config.clone()).await;
    assert_eq!(spooled.code, Some(0), "{}", spooled.stderr);
    assert!(
        spooled.stderr.contains("it is spooled"),
        "{}",
        spooled.stderr
    );
    assert!(
        !spooled.stderr.contains("left in the cluster"),
        "{}",
        spooled.stderr
    );
    let id = spooled.record["id"].as_str().unwrap().to_owned();
    let file = dir.join("firedrill-spool").join(format!("{id}.json"));
    assert!(file.exists(), "{}", file.display());

    // The store works again: the next start replays the spool into it.
    std::fs::remove_dir_all(dir.join("history.db")).unwrap();
    let next = run(config.clone()).await;
    assert_eq!(next.code, Some(0), "{}", next.stderr);
    assert!(
        !file.exists(),
        "the spooled record was moved into the store"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_firedrill"))
        .args(["history", "--format", "json", "--config", &config])
        .output()
        .unwrap();
    let runs: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        runs.as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == id.as_str()),
        "{runs}"
    );

    // Nothing can keep it: not the store, the cluster or the spool (a file where the spool's
    // directory goes). Exit 5, said in the log.
    std::fs::write(dir.join("blocker"), "a file where a directory should be").unwrap();
    std::fs::remove_dir_all(dir.join("firedrill-spool")).unwrap();
    std::fs::write(dir.join("firedrill-spool"), "a file where the spool goes").unwrap();
    let config = write("blocker/history.db");
    let lost = run(config).await;
    assert_eq!(lost.code, Some(5), "{}", lost.stderr);
    assert!(lost.stderr.contains("RECORD NOT KEPT"), "{}", lost.stderr);
    assert_eq!(
        lost.record["drill"], "api-probe",
        "the record is still on stdout"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// The spool lives in FIREDRILL_DATA_DIR when it is set, whatever the store: with an absolute
/// store that cannot be opened (`/proc` takes no file), the record is kept in the data
/// directory's spool and `execute` exits with the run's outcome, not 5 (the spool used to go
/// beside the store, where it failed too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spool_is_in_the_data_directory_whatever_the_store() {
    let url = flaky_server().await;
    let dir = temp();
    let data = temp();
    let config = dir.join("firedrill.yaml");
    std::fs::write(
        &config,
        format!("store: sqlite:///proc/firedrill-nowhere.db\ndrills:\n  - {{ name: api-probe, kind: probe, schedule: \"@daily\", duration: 1s, steady_state: [{{ http: \"{url}\", every: 100ms }}] }}\n"),
    )
    .unwrap();
    let out = tokio::task::spawn_blocking({
        let (config, data) = (config.clone(), data.clone());
        move || {
            Command::new(env!("CARGO_BIN_EXE_firedrill"))
                .args(["execute", "--drill", "api-probe", "--config"])
                .arg(&config)
                .current_dir("/")
                .env("KUBECONFIG", "/nonexistent")
                .env_remove("KUBERNETES_SERVICE_HOST")
                .env("FIREDRILL_DATA_DIR", &data)
                .env("FIREDRILL_LOG", "json")
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let record: Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    let id = record["id"].as_str().unwrap();
    let spooled = data.join("firedrill-spool").join(format!("{id}.json"));
    assert!(spooled.is_file(), "{}: {stderr}", spooled.display());
    assert!(
        !dir.join("firedrill-spool").exists(),
        "not beside the drill file when the data directory is set"
    );
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relative_store_belongs_to_the_drill_file_not_the_working_directory() {
    let url = flaky_server().await;
    let dir = temp();
    let elsewhere = temp();
    let config = dir.join("firedrill.yaml");
    std::fs::write(
        &config,
        format!("store: sqlite://relative.db\ndrills:\n  - {{ name: api-probe, kind: probe, schedule: \"@daily\", duration: 1s, steady_state: [{{ http: \"{url}\", every: 100ms }}] }}\n"),
    )
    .unwrap();
    let config = config.display().to_string();
    // No history yet: said, with the file, and nothing is created.
    let none = firedrill(args(&["history", "--config", &config]), elsewhere.clone()).await;
    assert_eq!(none.code, Some(4), "{}", none.stderr);
    assert!(
        none.stderr.contains(&format!(
            "no run history at {}",
            dir.join("relative.db").display()
        )),
        "{}",
        none.stderr
    );
    assert!(!dir.join("relative.db").exists() && !elsewhere.join("relative.db").exists());

    let ran = firedrill(
        args(&["execute", "--config", &config, "--drill", "api-probe"]),
        elsewhere.clone(),
    )
    .await;
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert!(dir.join("relative.db").exists(), "beside the drill file");
    assert!(
        !elsewhere.join("relative.db").exists(),
        "not in the working directory"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_firedrill"))
        .args(["history", "--config", &config])
        .current_dir("/")
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains(ran.record["id"].as_str().unwrap()),
        "{table}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("history from sqlite://"),
        "history says which file it reads"
    );
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(elsewhere);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_directory_names_and_an_empty_data_dir_keep_the_store_beside_the_file() {
    let url = flaky_server().await;
    let dir = temp().join("100%?x=1#frag");
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("firedrill.yaml");
    std::fs::write(
        &config,
        format!("store: sqlite://h.db\ndrills:\n  - {{ name: api-probe, kind: probe, schedule: \"@daily\", duration: 1s, steady_state: [{{ http: \"{url}\", every: 100ms }}] }}\n"),
    )
    .unwrap();
    let out = tokio::task::spawn_blocking({
        let config = config.clone();
        move || {
            Command::new(env!("CARGO_BIN_EXE_firedrill"))
                .args(["execute", "--drill", "api-probe", "--config"])
                .arg(&config)
                .current_dir("/")
                .env("KUBECONFIG", "/nonexistent")
                .env_remove("KUBERNETES_SERVICE_HOST")
                .env("FIREDRILL_DATA_DIR", "")
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        dir.join("h.db").is_file(),
        "the store is beside the drill file"
    );
    assert!(!dir.join("firedrill-spool").exists(), "nothing was spooled");
    let _ = std::fs::remove_dir_all(dir.parent().unwrap());
}
