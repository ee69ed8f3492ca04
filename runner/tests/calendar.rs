//! Long calendars as users ask for them: `plan` over a century of every-minute fires is written
//! as it is made, so a reader that stops early (`| head`) ends it, and a write that fails is an
//! error, not a silent exit 0.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn every_minute() -> tempfile_dir::Dir {
    let dir = tempfile_dir::Dir::new("calendar");
    std::fs::write(
        dir.path().join("firedrill.yaml"),
        "drills:\n  - { name: every-minute, kind: probe, schedule: \"* * * * *\", duration: 30s }\n",
    )
    .unwrap();
    dir
}

/// A scratch directory removed at the end of the test.
mod tempfile_dir {
    use std::path::{Path, PathBuf};

    pub struct Dir(PathBuf);

    impl Dir {
        pub fn new(name: &str) -> Self {
            let path = std::env::temp_dir().join(format!(
                "firedrill-test-{name}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            std::fs::create_dir_all(&path).unwrap();
            Dir(path)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

const CENTURY: [&str; 4] = [
    "--from",
    "2027-01-01T00:00:00Z",
    "--until",
    "2127-01-01T00:00:00Z",
];

#[test]
fn a_plan_whose_reader_stops_early_ends_quietly() {
    let dir = every_minute();
    // 52 million fires: a plan made whole before it is written would not end in any time
    // this test waits (nor in the memory of this machine).
    let mut child = Command::new(env!("CARGO_BIN_EXE_firedrill"))
        .args(["plan", "--config"])
        .arg(dir.path().join("firedrill.yaml"))
        .args(CENTURY)
        .args(["--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut head = [0u8; 200];
    stdout.read_exact(&mut head).unwrap();
    assert!(String::from_utf8_lossy(&head).starts_with("[\n  {\n    \"drill\": \"every-minute\""));
    // What `| head` does: read enough, then close the pipe.
    drop(stdout);
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("plan went on writing to a closed pipe");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(stderr, "", "a closed pipe is not an error to report");
}

#[test]
fn a_plan_that_cannot_be_written_fails_and_says_why() {
    let dir = every_minute();
    for format in ["table", "json"] {
        let out = Command::new(env!("CARGO_BIN_EXE_firedrill"))
            .args(["plan", "--config"])
            .arg(dir.path().join("firedrill.yaml"))
            .args([
                "--from",
                "2027-01-01T00:00:00Z",
                "--until",
                "2027-01-02T00:00:00Z",
            ])
            .args(["--format", format])
            .stdout(std::fs::File::create("/dev/full").unwrap())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{format}: {stderr}");
        assert!(
            stderr.contains("cannot write to standard output: No space left on device"),
            "{format}: {stderr}"
        );
    }
}

mod support;

/// A scheduler with an hourly drill on an in-memory cluster (whose Jobs never end: five slots
/// keep a fire from waiting for one), its history in `dir`.
async fn hourly_scheduler(dir: &std::path::Path) -> firedrill::schedule::scheduler::Scheduler {
    let config = firedrill::config::Config::parse(
        &format!(
            "namespace: {}\nstore: sqlite://{}\nconcurrency: 5\ndrills:\n  - {{ name: hourly, kind: probe, schedule: \"0 * * * *\", duration: 1m, deadline: 10m }}\n",
            support::cluster::NS,
            dir.join("history.db").display()
        ),
        std::path::Path::new("hourly.yaml"),
    )
    .unwrap();
    let client = kube_fake_client::ClientBuilder::new()
        .with_status_subresource::<k8s_openapi::api::batch::v1::Job>()
        .build()
        .await
        .unwrap();
    let store = firedrill::history::store::Store::open(&config.store, &config.cluster)
        .await
        .unwrap();
    firedrill::schedule::scheduler::Scheduler::new(
        config,
        firedrill::cluster::kubernetes::Kube::new(client, support::cluster::NS),
        store,
        firedrill::cluster::job::Runtime {
            image: "firedrill:test".into(),
            config_map: "firedrill-config".into(),
            service_account: "firedrill".into(),
        },
        "scheduler-a",
    )
}

fn at(text: &str) -> chrono::DateTime<chrono::Utc> {
    text.parse().unwrap()
}

#[tokio::test]
async fn a_scheduler_tick_looks_only_at_the_fires_due_since_the_last() {
    let dir = tempfile_dir::Dir::new("scheduler");
    let mut scheduler = hourly_scheduler(dir.path()).await;
    let first = scheduler.tick(at("2027-01-01T00:00:30Z")).await.unwrap();
    assert!(first.leader, "{first:?}");
    assert_eq!(first.fired.len(), 1, "{first:?}");
    // Down for 40 days: the first tick back records what it missed since, as far back as it
    // looks (31 days; fires before are the report's to call unaccounted).
    let back = scheduler.tick(at("2027-02-10T00:00:05Z")).await.unwrap();
    assert!(back.not_fired.len() > 24 * 31, "{}", back.not_fired.len());
    // From then on a tick looks at what came due since the last one, not at a month of fires
    // it has handled: nothing between two fires, the one fire when its hour comes.
    for (now, fires) in [
        ("2027-02-10T00:00:10Z", 0),
        ("2027-02-10T00:30:00Z", 0),
        ("2027-02-10T00:59:55Z", 0),
        ("2027-02-10T01:00:00Z", 1),
        ("2027-02-10T01:00:05Z", 0),
    ] {
        let report = scheduler.tick(at(now)).await.unwrap();
        assert_eq!(report.considered, fires, "{now}: {report:?}");
    }
}
