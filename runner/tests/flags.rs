//! Flag combinations: every subcommand's mutually exclusive or dependent flags are refused as a
//! usage error (exit 2) whose message names both flags, before anything is read or reached. A
//! preview that acts, or a flag silently ignored in a combination, is what this file pins.

use std::io::Read;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const EXAMPLE: &str = "deploy/examples/firedrill.yaml";
const SNAPSHOT: &str = "deploy/examples/cluster.yaml";
const AT: &str = "2027-03-15T10:00:00Z";

/// A kubeconfig whose API server is a local listener that counts connections: a command that
/// reaches "the cluster" at all is caught, whatever it would have done there.
struct Trap {
    kubeconfig: PathBuf,
    connections: Arc<AtomicUsize>,
}

impl Trap {
    fn new(name: &str) -> Trap {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                counted.fetch_add(1, Ordering::SeqCst);
                let mut stream = stream;
                let _ = stream.set_read_timeout(Some(std::time::Duration::from_millis(200)));
                let _ = stream.read(&mut [0u8; 1024]);
            }
        });
        let dir =
            std::env::temp_dir().join(format!("firedrill-flags-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let kubeconfig = dir.join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: trap\n  cluster: {{server: \"http://127.0.0.1:{port}\"}}\n\
                 users:\n- name: trap\n  user: {{token: t}}\ncontexts:\n- name: trap\n  context: {{cluster: trap, user: trap}}\n\
                 current-context: trap\n"
            ),
        )
        .unwrap();
        Trap {
            kubeconfig,
            connections,
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_firedrill"))
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env("FIREDRILL_DATA_DIR", self.kubeconfig.parent().unwrap())
            .current_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."))
            .output()
            .expect("run firedrill")
    }
}

/// Each line: the arguments, and the two flags the refusal must name.
const REFUSED: &[(&[&str], &str, &str)] = &[
    // rollback: --render is an offline preview of a saved ledger, nothing else.
    (&["rollback", "--all", "--render"], "--all", "--render"),
    (
        &["rollback", "--run", "r1", "--render"],
        "--run",
        "--render",
    ),
    (
        &["rollback", "--drill", "d", "--render"],
        "--drill",
        "--render",
    ),
    (
        &["rollback", "--ledger", "l.yaml", "--render", "--all"],
        "--ledger",
        "--all",
    ),
    (
        &["rollback", "--ledger", "l.yaml", "--render", "--run", "r1"],
        "--ledger",
        "--run",
    ),
    (
        &["rollback", "--ledger", "l.yaml", "--render", "--dry-run"],
        "--render",
        "--dry-run",
    ),
    (
        &[
            "rollback",
            "--ledger",
            "l.yaml",
            "--render",
            "--namespace",
            "x",
        ],
        "--render",
        "--namespace",
    ),
    (&["rollback", "--ledger", "l.yaml"], "--ledger", "--render"),
    (&["rollback", "--render"], "--render", "--ledger"),
    (&["rollback", "--run", "r1", "--key", "k"], "--key", "--run"),
    (
        &["rollback", "--ledger", "l.yaml", "--key", "k"],
        "--ledger",
        "--render",
    ),
    (&["rollback", "--all", "--run", "r1"], "--all", "--run"),
    (&["rollback", "--all", "--drill", "d"], "--all", "--drill"),
    (
        &["rollback", "--run", "r1", "--drill", "d"],
        "--run",
        "--drill",
    ),
    // plan: --render prints YAML for one drill at one instant of one snapshot.
    (
        &[
            "plan",
            "-c",
            EXAMPLE,
            "--render",
            "--drill",
            "pod-kill-monthly",
            "--at",
            AT,
            "--cluster",
            SNAPSHOT,
            "--format",
            "json",
        ],
        "--render",
        "--format",
    ),
    (
        &[
            "plan",
            "-c",
            EXAMPLE,
            "--drill",
            "pod-kill-monthly",
            "--at",
            AT,
            "--cluster",
            SNAPSHOT,
        ],
        "--drill",
        "--render",
    ),
    (
        &["plan", "-c", EXAMPLE, "--drill", "pod-kill-monthly"],
        "--drill",
        "--render",
    ),
    (
        &[
            "plan",
            "-c",
            EXAMPLE,
            "--render",
            "--at",
            AT,
            "--cluster",
            SNAPSHOT,
        ],
        "--render",
        "--drill",
    ),
    (
        &[
            "plan",
            "-c",
            EXAMPLE,
            "--render",
            "--drill",
            "pod-kill-monthly",
            "--cluster",
            SNAPSHOT,
        ],
        "--render",
        "--at",
    ),
    (
        &[
            "plan",
            "-c",
            EXAMPLE,
            "--render",
            "--drill",
            "pod-kill-monthly",
            "--at",
            AT,
        ],
        "--render",
        "--cluster",
    ),
    (
        &["plan", "-c", EXAMPLE, "--next", "3", "--until", AT],
        "--next",
        "--until",
    ),
    (
        &["plan", "-c", EXAMPLE, "--at", AT, "--next", "3"],
        "--at",
        "--next",
    ),
    (
        &["plan", "-c", EXAMPLE, "--at", AT, "--until", AT],
        "--at",
        "--until",
    ),
    (
        &["plan", "-c", EXAMPLE, "--at", AT, "--from", AT],
        "--at",
        "--from",
    ),
    // run: --render prints the Job and creates nothing; there is nothing to wait for.
    (
        &[
            "run",
            "pod-kill-monthly",
            "-c",
            EXAMPLE,
            "--render",
            "--wait",
        ],
        "--render",
        "--wait",
    ),
];

#[test]
fn every_conflicting_or_dependent_pair_is_a_usage_error_naming_both_flags() {
    let trap = Trap::new("pairs");
    for (args, first, second) in REFUSED {
        let out = trap.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            out.stdout.is_empty(),
            "{args:?} printed {:?}",
            String::from_utf8_lossy(&out.stdout)
        );
        for flag in [first, second] {
            assert!(
                stderr.contains(flag),
                "{args:?}: the refusal does not name {flag}: {stderr}"
            );
        }
    }
    assert_eq!(
        trap.connections.load(Ordering::SeqCst),
        0,
        "a refused combination reached the API server"
    );
}

/// A namespace that cannot exist is refused before anything is reached, with the fix.
#[test]
fn an_impossible_namespace_is_a_usage_error() {
    let trap = Trap::new("namespace");
    for command in ["stop", "resume"] {
        let out = trap.run(&[command, "--namespace", "Chaos_Testing"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {err}");
        assert!(
            err.contains("is not a DNS-1123 label") && err.contains("--namespace"),
            "{err}"
        );
    }
    let out = trap.run(&["rollback", "--all", "-n", "UPPER"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(trap.connections.load(Ordering::SeqCst), 0);
}

/// The regression itself: a preview of a cluster-wide rollback neither reverts nor even connects.
#[test]
fn rollback_render_never_reaches_the_cluster() {
    let trap = Trap::new("render");
    for which in [
        &["--all"][..],
        &["--run", "r1"],
        &["--drill", "pod-kill-monthly"],
    ] {
        let mut args = vec!["rollback"];
        args.extend_from_slice(which);
        args.push("--render");
        let out = trap.run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    assert_eq!(trap.connections.load(Ordering::SeqCst), 0);
    // The trap does catch a command that goes to the API: the same selection without --render.
    let real = trap.run(&["rollback", "--all", "--dry-run"]);
    assert_ne!(real.status.code(), Some(0));
    assert!(
        trap.connections.load(Ordering::SeqCst) > 0,
        "the trap saw no connection from a real rollback: {}",
        String::from_utf8_lossy(&real.stderr)
    );
}

/// The combinations that do apply stay accepted (the refusals above are not a blanket no).
#[test]
fn combinations_that_apply_are_accepted() {
    let trap = Trap::new("accepted");
    for args in [
        &[
            "plan",
            "-c",
            EXAMPLE,
            "--at",
            AT,
            "--cluster",
            SNAPSHOT,
            "--format",
            "json",
        ][..],
        &[
            "plan", "-c", EXAMPLE, "--from", AT, "--next", "2", "--format", "json",
        ],
        &[
            "plan",
            "-c",
            EXAMPLE,
            "--render",
            "--drill",
            "pod-kill-monthly",
            "--at",
            AT,
            "--cluster",
            SNAPSHOT,
        ],
        &[
            "run",
            "pod-kill-monthly",
            "-c",
            EXAMPLE,
            "--render",
            "--dry-run",
        ],
        // A drill file only bounds what the preview's revert may do: read, never a way out.
        &[
            "rollback",
            "--ledger",
            "deploy/examples/ledger.yaml",
            "--render",
            "--config",
            EXAMPLE,
        ],
        &[
            "rollback",
            "--ledger",
            "deploy/examples/ledger.yaml",
            "--render",
        ],
    ] {
        let out = trap.run(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.stdout.is_empty(), "{args:?}");
    }
    assert_eq!(trap.connections.load(Ordering::SeqCst), 0);
}
