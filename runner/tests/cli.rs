//! The `firedrill` binary as users run it: output, exit codes and the `plan` JSON contract.

#[path = "support/skip.rs"]
mod skip;

use std::path::PathBuf;
use std::process::{Command, Output};

fn firedrill(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_firedrill"))
        .args(args)
        .current_dir(workspace())
        .output()
        .expect("run firedrill")
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const EXAMPLE: &str = "deploy/examples/firedrill.yaml";

#[test]
fn validate_exit_codes() {
    let ok = firedrill(&["validate", "--config", EXAMPLE]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    assert!(text(&ok.stdout).contains("valid (6 drills, not armed: dry-run only)"));

    let bad = firedrill(&["validate", "--config", "tests/configs/bad/many-errors.yaml"]);
    assert_eq!(bad.status.code(), Some(1));
    let stderr = text(&bad.stderr);
    let problems: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("tests/configs/bad/many-errors.yaml:"))
        .collect();
    assert_eq!(problems.len(), 11, "{stderr}");
    assert!(stderr.ends_with("11 problems found\n"), "{stderr}");

    let missing = firedrill(&["validate", "--config", "no/such/file.yaml"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("cannot read no/such/file.yaml"));

    let usage = firedrill(&["validate"]);
    assert_eq!(usage.status.code(), Some(2));
}

#[test]
fn plan_json_has_the_contracted_fields() {
    let out = firedrill(&[
        "plan",
        "--config",
        EXAMPLE,
        "--from",
        "2027-05-01T00:00:00Z",
        "--until",
        "2027-06-01T00:00:00Z",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let fires: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON array");
    let fires = fires.as_array().expect("array");
    assert_eq!(fires.len(), 2);
    // 15 May 2027 is a Saturday: the pod kill defers past the weekend and the nightly batch.
    let kill = &fires[0];
    assert_eq!(kill["drill"], "pod-kill-monthly");
    assert_eq!(kill["kind"], "pod-kill");
    assert_eq!(kill["scheduled"], "2027-05-15T14:00:00Z");
    assert_eq!(kill["local"], "2027-05-15T10:00:00-04:00");
    assert_eq!(kill["start"], "2027-05-17T10:00:00Z");
    assert_eq!(kill["duration_seconds"], 900);
    assert_eq!(kill["status"], "deferred");
    assert_eq!(
        kill["reason"],
        "deferred past blackout weekends, nightly-batch"
    );
    for field in [
        "drill",
        "kind",
        "scheduled",
        "local",
        "start",
        "duration_seconds",
        "status",
        "reason",
    ] {
        assert!(fires[1].get(field).is_some(), "missing {field}");
    }
}

#[test]
fn plan_next_and_window_errors() {
    let out = firedrill(&[
        "plan",
        "--config",
        EXAMPLE,
        "--from",
        "2026-11-23T00:00:00Z",
        "--next",
        "3",
        "--format",
        "json",
    ]);
    let fires: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(fires.as_array().map(Vec::len), Some(3));

    let backwards = firedrill(&[
        "plan",
        "--config",
        EXAMPLE,
        "--from",
        "2027-01-01T00:00:00Z",
        "--until",
        "2026-01-01T00:00:00Z",
    ]);
    assert_eq!(backwards.status.code(), Some(2));
    assert!(text(&backwards.stderr).contains("is not after --from"));

    let bad_time = firedrill(&["plan", "--config", EXAMPLE, "--from", "tomorrow"]);
    assert_eq!(bad_time.status.code(), Some(2));
    assert!(text(&bad_time.stderr).contains("not an RFC 3339 instant"));

    let invalid = firedrill(&["plan", "--config", "tests/configs/bad/bad-cron.yaml"]);
    assert_eq!(invalid.status.code(), Some(1));
}

#[test]
fn plan_table_of_the_example_year() {
    let out = firedrill(&[
        "plan",
        "--config",
        EXAMPLE,
        "--from",
        "2026-11-23T00:00:00Z",
    ]);
    assert_eq!(out.status.code(), Some(0));
    insta::assert_snapshot!(text(&out.stdout));
}

const CLUSTER: &str = "deploy/examples/cluster.yaml";

#[test]
fn plan_against_a_cluster_snapshot_names_every_target_and_exclusion() {
    let args = [
        "plan",
        "--config",
        EXAMPLE,
        "--cluster",
        CLUSTER,
        "--at",
        "2026-11-23T15:05:00Z",
        "--format",
        "json",
    ];
    let out = firedrill(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        out.stdout,
        firedrill(&args).stdout,
        "the same fire must pick the same pods"
    );
    let fires: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let by_drill = |name: &str| {
        fires
            .as_array()
            .and_then(|a| a.iter().find(|f| f["drill"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("no fire of {name}"))
    };
    let kill = by_drill("pod-kill-monthly");
    let targets = kill["targets"].as_array().expect("targets");
    assert!(!targets.is_empty());
    for t in targets {
        assert!(
            t["namespace"].is_string() && t["name"].is_string() && t["owner"].is_string(),
            "{t}"
        );
        assert_ne!(t["namespace"], "kube-system");
        assert!(!t["name"]
            .as_str()
            .unwrap_or("")
            .starts_with("pake-postgresql-primary"));
    }
    let reasons: Vec<String> = kill["excluded"]
        .as_array()
        .expect("excluded")
        .iter()
        .map(|e| {
            format!(
                "{}/{}: {}",
                e["namespace"].as_str().unwrap_or(""),
                e["name"].as_str().unwrap_or(""),
                e["reason"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert!(
        reasons.contains(
            &"pake-api/pake-api-7d9f8c6b5-b6c1z: only 5m old; safety.min_pod_age is 10m".to_owned()
        ),
        "{reasons:#?}"
    );
    assert!(reasons.iter().any(|r| r.contains("PodDisruptionBudget pake-ai/pake-ai-worker (maxUnavailable 1, 4 of 5 healthy) allows no more disruptions")), "{reasons:#?}");
    assert!(kill["blocked"].is_null());

    let stress = by_drill("resource-stress-quarterly");
    assert!(stress["targets"].as_array().is_some_and(Vec::is_empty));
    assert!(stress["blocked"]
        .as_str()
        .unwrap_or("")
        .starts_with("nothing may be touched: all 5 matching pods are excluded"));

    // A region failover's hits are the pods it cuts off (this cluster is the failed region's).
    let region = by_drill("region-failover-annual");
    let cut = region["targets"].as_array().expect("targets");
    assert!(
        !cut.is_empty() && cut.iter().all(|t| t["namespace"] == "pake-api"),
        "{region}"
    );
    assert!(region["blocked"].is_null(), "{region}");
}

/// Issue #26: a scenario fire shows every step in the order it would start, with what it
/// waits for, and (with a cluster) what it would hit, each step judged on the cluster as the
/// steps before it would leave it.
#[test]
fn plan_shows_every_step_of_a_scenario_judged_step_by_step() {
    let plan = |config: &str, format: &str| {
        firedrill(&[
            "plan",
            "--config",
            config,
            "--cluster",
            CLUSTER,
            "--at",
            "2027-11-12T15:00:00Z",
            "--format",
            format,
        ])
    };
    let out = plan(EXAMPLE, "json");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let fires: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let game_day = fires
        .as_array()
        .and_then(|a| a.iter().find(|f| f["drill"] == "game-day-annual"))
        .cloned()
        .expect("the game day fires");
    assert_eq!(game_day["kind"], "scenario");
    assert!(game_day["blocked"].is_null(), "{game_day}");
    let steps = game_day["steps"].as_array().expect("steps");
    let names: Vec<&str> = steps.iter().filter_map(|s| s["name"].as_str()).collect();
    // The api-kill waits for a recovery: after the two that wait for the injection.
    assert_eq!(
        names,
        ["replica-down", "cache-cut", "ai-stress", "api-kill"]
    );
    let step = |name: &str| steps.iter().find(|s| s["name"] == name).unwrap();
    assert_eq!(step("replica-down")["after"], serde_json::json!([]));
    assert_eq!(
        step("cache-cut")["after"],
        serde_json::json!(["replica-down injected"])
    );
    assert_eq!(step("ai-stress")["delay_seconds"], 30);
    assert_eq!(
        step("api-kill")["after"],
        serde_json::json!(["replica-down recovered"])
    );
    assert_eq!(step("api-kill")["when"], "replica-down rto_under 5m");
    // The optional step is refused on this cluster (its PodDisruptionBudget); the game day
    // goes on.
    assert_eq!(step("ai-stress")["optional"], true);
    assert!(step("ai-stress")["blocked"].is_string());
    // What the cache cut holds is not the API kill's to take.
    let pods = |name: &str| -> Vec<String> {
        step(name)["targets"]
            .as_array()
            .expect("targets")
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let (cut, kill) = (pods("cache-cut"), pods("api-kill"));
    assert_eq!((cut.len(), kill.len()), (1, 1));
    assert!(!kill.contains(&cut[0]), "{cut:?} {kill:?}");
    let all = game_day["targets"].as_array().expect("targets").len();
    assert_eq!(all, pods("replica-down").len() + 2);

    // The same steps with the cache cut taking half the API pods: each alone within
    // min_healthy 2 of 4, together not; the API kill would be refused and end the scenario.
    let dir = std::env::temp_dir().join(format!("firedrill-scenario-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let greedy = dir.join("firedrill.yaml");
    let text_of = std::fs::read_to_string(workspace().join(EXAMPLE)).unwrap();
    let cut_half = text_of.replacen(
        "{ namespace: pake-api, selector: app=pake-api, percent: 25 }",
        "{ namespace: pake-api, selector: app=pake-api, percent: 50 }",
        1,
    );
    assert_ne!(cut_half, text_of);
    std::fs::write(&greedy, cut_half).unwrap();
    let out = plan(greedy.to_str().unwrap(), "json");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let fires: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let game_day = fires
        .as_array()
        .and_then(|a| a.iter().find(|f| f["drill"] == "game-day-annual"))
        .cloned()
        .unwrap();
    let blocked = game_day["blocked"].as_str().unwrap_or_default();
    assert!(
        blocked.starts_with("step api-kill would be refused")
            && blocked.contains("the scenario would end blocked there"),
        "{blocked}"
    );
    let kill = game_day["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "api-kill"))
        .cloned()
        .unwrap();
    assert!(
        kill["excluded"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["reason"]
                == "would leave Deployment/pake-api/pake-api with 1 ready pod; min_healthy is 2"
                || e["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("this scenario's steps matched allows"))),
        "{kill}"
    );
    // The table shows each step under its fire.
    let out = plan(greedy.to_str().unwrap(), "table");
    let table = text(&out.stdout);
    let kill = table
        .lines()
        .find(|l| l.starts_with("  - api-kill"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        kill.contains("after replica-down recovered +1m")
            && kill.contains("blocked")
            && kill.contains("only if replica-down rto_under 5m"),
        "{kill}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_snapshot_is_an_invalid_input() {
    let dir = std::env::temp_dir().join(format!("firedrill-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bad = dir.join("bad-cluster.yaml");
    std::fs::write(&bad, "kind: List\nitems:\n  - kind: Deployment\n    metadata: {name: api, namespace: x}\n    spec: {replicas: -1}\n").expect("write");
    let out = firedrill(&[
        "plan",
        "--config",
        EXAMPLE,
        "--cluster",
        bad.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("bad-cluster.yaml:3:5: Deployment x/api: spec.replicas: expected a whole number, found -1"), "{}", text(&out.stderr));
    let missing = firedrill(&[
        "plan",
        "--config",
        EXAMPLE,
        "--cluster",
        "no/such/cluster.yaml",
    ]);
    assert_eq!(missing.status.code(), Some(2));
}

/// Issue #21: a snapshot that lists a pod twice counted it twice toward its budgets.
#[test]
fn a_snapshot_that_lists_an_object_twice_is_refused_naming_both_lines() {
    let dir = std::env::temp_dir().join(format!("firedrill-cli-twice-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let snapshot = dir.join("twice.yaml");
    let pod = "  - kind: Pod\n    metadata: {name: api-0, namespace: pake-api, uid: u-1, labels: {app: pake-api}}\n    status: {phase: Running}\n";
    std::fs::write(&snapshot, format!("kind: List\nitems:\n{pod}{pod}")).expect("write");
    let path = snapshot.to_str().expect("utf-8 path");
    let out = firedrill(&["plan", "--config", EXAMPLE, "--cluster", path]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(&format!(
            "{path}:6:5: Pod pake-api/api-0 is listed twice, at {path}:3 and at {path}:6 (the same uid)"
        )),
        "{}",
        text(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue #21: an empty saved ledger was answered as if it were an empty drill file.
#[test]
fn an_empty_ledger_file_is_called_a_ledger() {
    let dir = std::env::temp_dir().join(format!("firedrill-cli-ledger-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let empty = dir.join("ledger.yaml");
    std::fs::write(&empty, "").expect("write");
    let out = firedrill(&[
        "rollback",
        "--ledger",
        empty.to_str().expect("utf-8 path"),
        "--render",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("1:1: the file is empty; expected a ledger ConfigMap (save one with `kubectl get configmap firedrill-ledger-RUN -o yaml`)"),
        "{stderr}"
    );
    assert!(!stderr.contains("drills:"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue #21: `execute --scheduled` decades ahead was accepted and recorded.
#[test]
fn a_scheduled_instant_far_ahead_is_a_usage_error_naming_the_flag() {
    let run = |at: &str| {
        firedrill(&[
            "execute",
            "--config",
            EXAMPLE,
            "--drill",
            "pod-kill-monthly",
            "--dry-run",
            "--scheduled",
            at,
        ])
    };
    let out = run("2066-01-01T00:00:00Z");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("--scheduled"), "{stderr}");
    assert!(
        stderr.contains("\"2066-01-01T00:00:00Z\" is more than a day in the future"),
        "{stderr}"
    );
}

#[test]
fn hostile_and_wrong_inputs_to_plan_are_refused_with_their_reason() {
    let dir = std::env::temp_dir().join(format!("firedrill-cli-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        path.to_str().expect("utf-8 path").to_owned()
    };
    let mut bomb = String::from("a: &a [x,x,x,x,x,x,x,x,x]\n");
    for (name, previous) in ["b", "c", "d", "e", "f", "g", "h", "i"]
        .iter()
        .zip(["a", "b", "c", "d", "e", "f", "g", "h"])
    {
        bomb.push_str(&format!(
            "{name}: &{name} [{}]\n",
            vec![format!("*{previous}"); 9].join(",")
        ));
    }
    let cases = [
        (write("bomb.yaml", &bomb), "to bound memory"),
        (
            write("empty.yaml", ""),
            "the snapshot is empty; expected the output of `kubectl get",
        ),
        (
            write("configmap.yaml", "kind: ConfigMap\nmetadata: {name: c}\n"),
            "found a single ConfigMap",
        ),
        (EXAMPLE.to_owned(), "found a drill file"),
    ];
    for (snapshot, message) in &cases {
        let out = firedrill(&[
            "plan",
            "--config",
            EXAMPLE,
            "--cluster",
            snapshot,
            "--at",
            "2027-01-15T10:00:00Z",
        ]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{snapshot}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(message),
            "{snapshot}: {}",
            text(&out.stderr)
        );
    }
    let out = firedrill(&["validate", "--config", &cases[0].0]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("more than 1000000 YAML nodes"),
        "{}",
        text(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn help_says_what_every_option_is() {
    let plan = text(&firedrill(&["plan", "--help"]).stdout);
    assert!(
        plan.contains("kubectl get pods,deployments,statefulsets,replicasets,daemonsets,poddisruptionbudgets,services,namespaces,nodes -A -o yaml"),
        "the resource list is one word: {plan}"
    );
    let execute = text(&firedrill(&["execute", "--help"]).stdout);
    let line = |text: &str, flag: &str, says: &str| {
        text.lines()
            .any(|l| l.trim_start().starts_with(flag) && l.contains(says))
    };
    assert!(
        line(&execute, "--drill <NAME>", "The drill to run"),
        "{execute}"
    );
    let history = text(&firedrill(&["history", "--help"]).stdout);
    assert!(
        line(&history, "--format <FORMAT>", "Output format"),
        "{history}"
    );
}

#[test]
fn endless_or_non_utf8_inputs_are_refused_with_where() {
    let out = firedrill(&["validate", "--config", "/dev/zero"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("larger than the limit of 32 MiB"),
        "{}",
        text(&out.stderr)
    );
    let dir = std::env::temp_dir().join(format!("firedrill-cli-utf8-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let latin1 = dir.join("latin1.yaml");
    std::fs::write(&latin1, b"drills:\n  - name: caf\xe9\n").expect("write");
    let out = firedrill(&["validate", "--config", latin1.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr)
            .contains("latin1.yaml:2:14: (file): not UTF-8 text (invalid byte at offset 21)"),
        "{}",
        text(&out.stderr)
    );
    let out = firedrill(&[
        "plan",
        "--config",
        EXAMPLE,
        "--cluster",
        latin1.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("not UTF-8 text (invalid byte at offset 21)"),
        "{}",
        text(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn plan_render_shows_every_change_a_fire_would_make_with_its_undo() {
    let render = |drill: &str| {
        firedrill(&[
            "plan",
            "--config",
            EXAMPLE,
            "--cluster",
            "deploy/examples/cluster.yaml",
            "--drill",
            drill,
            "--at",
            "2027-01-15T15:00:00Z",
            "--render",
        ])
    };
    let out = render("network-partition-quarterly");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert_eq!(
        shown.matches("---\n").count(),
        3,
        "two pods labelled, one policy: {shown}"
    );
    assert!(
        shown.contains("kind: NetworkPolicy") && shown.contains("type: delete-created"),
        "{shown}"
    );
    assert!(
        shown.contains("firedrill.io/expires-at: \"2027-01-15T15:20:00Z\""),
        "{shown}"
    );
    let out = render("pod-kill-monthly");
    let shown = text(&out.stdout);
    assert_eq!(shown.matches("op: kill").count(), 3, "{shown}");
    assert!(
        shown.contains("evict: true") && shown.contains("type: recreated"),
        "{shown}"
    );
    // A scenario: each step's changes under it, with its own run (and ledger) id.
    let out = firedrill(&[
        "plan",
        "--config",
        EXAMPLE,
        "--cluster",
        "deploy/examples/cluster.yaml",
        "--drill",
        "game-day-annual",
        "--at",
        "2027-11-12T15:00:00Z",
        "--render",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    for step in ["replica-down", "cache-cut", "api-kill"] {
        assert!(shown.contains(&format!("step: {step}\n")), "{shown}");
        assert!(
            shown.contains(&format!("run game-day-annual-u76700-{step}:")),
            "{shown}"
        );
    }
    assert!(
        shown.contains("# optional: the scenario would go on without this step"),
        "{shown}"
    );
    let out = render("no-such-drill");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no drill named \"no-such-drill\""),
        "{}",
        text(&out.stderr)
    );
    let out = firedrill(&["plan", "--config", EXAMPLE, "--render"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "--render needs --drill, --at and --cluster"
    );
}

/// A command run with no cluster reachable, its data in a directory of its own.
fn without_cluster(args: &[&str]) -> Output {
    let data = std::env::temp_dir().join(format!("firedrill-cli-data-{}", std::process::id()));
    std::fs::create_dir_all(&data).unwrap();
    Command::new(env!("CARGO_BIN_EXE_firedrill"))
        .args(args)
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("FIREDRILL_DATA_DIR", &data)
        .current_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."))
        .output()
        .expect("run firedrill")
}

#[test]
fn completions_load_in_bash_and_complete_commands_and_flags() {
    let script = format!(
        r#"source <("{bin}" completions bash) || exit 9
complete -p firedrill || exit 8
COMP_WORDS=(firedrill pl); COMP_CWORD=1; _firedrill firedrill pl firedrill; echo "words: ${{COMPREPLY[*]}}"
COMP_WORDS=(firedrill plan --cl); COMP_CWORD=2; _firedrill firedrill --cl plan; echo "flags: ${{COMPREPLY[*]}}""#,
        bin = env!("CARGO_BIN_EXE_firedrill")
    );
    let out = Command::new("bash").args(["-c", &script]).output().unwrap();
    let said = text(&out.stdout);
    assert!(out.status.success(), "{said}{}", text(&out.stderr));
    assert!(said.contains("-F _firedrill firedrill"), "{said}");
    assert!(
        said.lines()
            .any(|l| l.starts_with("words: ") && l.contains("plan")),
        "{said}"
    );
    assert!(
        said.lines()
            .any(|l| l.starts_with("flags: ") && l.contains("--cluster")),
        "{said}"
    );
    for (shell, marker) in [
        ("zsh", "#compdef firedrill"),
        ("fish", "complete -c firedrill"),
    ] {
        let out = firedrill(&["completions", shell]);
        assert!(
            out.status.success() && text(&out.stdout).contains(marker),
            "{shell}"
        );
    }
}

#[test]
fn the_man_page_renders() {
    let page = firedrill(&["man"]);
    assert!(page.status.success());
    let groff = Command::new("groff").arg("--version").output();
    if groff.is_err() {
        skip::skip("the rendering: groff is not installed (scripts/services.sh installs it)");
        return;
    }
    let mut render = Command::new("groff")
        .args(["-man", "-Tutf8", "-P-cbou", "-ww"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut render.stdin.take().unwrap(), &page.stdout).unwrap();
    let out = render.wait_with_output().unwrap();
    let rendered = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // It refers to no page that does not exist: the commands are sections of this one.
    let raw = text(&page.stdout);
    assert!(
        !raw.contains("firedrill\\-plan(1)") && !raw.contains("(1)"),
        "{raw}"
    );
    for shown in [
        "NAME",
        "SYNOPSIS",
        "COMMANDS",
        "firedrill plan",
        "section FIREDRILL PLAN below",
        "FIREDRILL STOP",
        "FIREDRILL ROLLBACK",
        "--log-level",
        "--dry-run",
    ] {
        assert!(
            rendered.contains(shown),
            "{shown:?} not in the rendered page"
        );
    }
}

#[test]
fn log_flags_choose_the_format_and_the_level() {
    // A drill file with no Pushgateway: nothing to wait for.
    let dir = std::env::temp_dir().join(format!("firedrill-logs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("drills.yaml");
    std::fs::write(
        &file,
        "drills:\n  - { name: kill, kind: pod-kill, schedule: \"@monthly\", duration: 1m, targets: [{ namespace: a, selector: app=a, count: 1 }] }\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let args = ["execute", "--config", file, "--drill", "kill", "--dry-run"];
    let json = without_cluster(&[&["--log-format", "json"][..], &args[..]].concat());
    let lines: Vec<serde_json::Value> = text(&json.stderr)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["message"] == "run started"),
        "{lines:?}"
    );
    // Text, at warn: no info line, and never colour off a terminal.
    let quiet = without_cluster(
        &[
            &["--log-format", "text", "--log-level", "warn"][..],
            &args[..],
        ]
        .concat(),
    );
    let said = text(&quiet.stderr);
    assert!(
        said.contains("WARN") && !said.contains("run started"),
        "{said}"
    );
    assert!(
        !said.contains('\u{1b}'),
        "no colour when stderr is not a terminal: {said:?}"
    );
    assert!(!said.trim_start().starts_with('{'), "{said}");
    // The environment's settings are checked as the flags are: a bad one is said, not ignored.
    let mut env = Command::new(env!("CARGO_BIN_EXE_firedrill"));
    env.args(args)
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("FIREDRILL_DATA_DIR", &dir)
        .env("FIREDRILL_LOG", "xml")
        .env("FIREDRILL_LOG_LEVEL", "firedrill=[[");
    let said = text(&env.output().unwrap().stderr);
    assert!(
        said.contains("warning: FIREDRILL_LOG=\"xml\" is not a log format (allowed: json, text)"),
        "{said}"
    );
    assert!(
        said.contains("warning: FIREDRILL_LOG_LEVEL=\"firedrill=[[\" is not a filter"),
        "{said}"
    );
}

#[test]
fn status_without_a_cluster_still_shows_the_next_fires() {
    let out = without_cluster(&["status", "--config", EXAMPLE]);
    assert_eq!(out.status.code(), Some(4), "no cluster: exit 4");
    let said = text(&out.stdout);
    assert!(
        said.contains("leader:       unknown (no cluster)"),
        "{said}"
    );
    assert!(
        said.contains("next fires:") && said.contains("pod-kill-monthly"),
        "{said}"
    );
    assert!(
        text(&out.stderr).contains("no usable kubeconfig"),
        "{}",
        text(&out.stderr)
    );
}

/// Output that did not arrive is a failed command: each printing command with its standard output
/// on `/dev/full` says so and exits 2 (never 0, never a panic); a closed pipe ends quietly.
#[test]
fn lost_output_is_a_failed_command_and_a_closed_pipe_is_not() {
    let commands: [&[&str]; 8] = [
        &["validate", "--config", EXAMPLE],
        &[
            "plan",
            "--config",
            EXAMPLE,
            "--from",
            "2027-01-01T00:00:00Z",
        ],
        &[
            "plan",
            "--config",
            EXAMPLE,
            "--from",
            "2027-01-01T00:00:00Z",
            "--format",
            "json",
        ],
        &[
            "plan",
            "--config",
            EXAMPLE,
            "--cluster",
            "deploy/examples/cluster.yaml",
            "--drill",
            "pod-kill-monthly",
            "--at",
            "2027-03-15T10:00:00Z",
            "--render",
        ],
        &["man"],
        &["completions", "bash"],
        &["run", "pod-kill-monthly", "--config", EXAMPLE, "--render"],
        &[
            "rollback",
            "--ledger",
            "deploy/examples/ledger.yaml",
            "--render",
        ],
    ];
    for args in commands {
        let full = Command::new(env!("CARGO_BIN_EXE_firedrill"))
            .args(args)
            .current_dir(workspace())
            .stdout(std::fs::File::create("/dev/full").unwrap())
            .output()
            .expect("run firedrill");
        let err = text(&full.stderr);
        assert_eq!(full.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("cannot write to standard output: No space left on device"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        // The same command into a pipe its reader closes at once: quiet, and not a failure.
        let mut child = Command::new(env!("CARGO_BIN_EXE_firedrill"))
            .args(args)
            .current_dir(workspace())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run firedrill");
        drop(child.stdout.take());
        let closed = child.wait_with_output().unwrap();
        let err = text(&closed.stderr);
        assert_eq!(
            closed.status.code(),
            Some(0),
            "{args:?} into a closed pipe: {err}"
        );
        assert!(
            !err.contains("panicked") && !err.contains("error:"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn check_without_a_cluster_exits_4_and_says_how_to_name_one() {
    let out = without_cluster(&["check", "--config", EXAMPLE]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let said = text(&out.stderr);
    assert!(said.contains("error: no cluster to check: "), "{said}");
    assert!(
        said.contains("set KUBECONFIG (or ~/.kube/config)"),
        "{said}"
    );
    assert!(said.contains("firedrill's service account"), "{said}");
    assert_eq!(text(&out.stdout), "", "no checks printed");

    // A kubeconfig whose API server does not answer: the same exit, naming KUBECONFIG.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = std::env::temp_dir().join(format!("firedrill-cli-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: gone\n  cluster: {{server: \"http://127.0.0.1:{port}\"}}\n\
             users:\n- name: gone\n  user: {{token: t}}\ncontexts:\n- name: gone\n  context: {{cluster: gone, user: gone}}\n\
             current-context: gone\n"
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_firedrill"))
        .args(["check", "--format", "json"])
        .env("KUBECONFIG", &kubeconfig)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .current_dir(workspace())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let said = text(&out.stderr);
    assert!(
        said.contains("error: no cluster to check: the Kubernetes API does not answer (")
            && said.contains("check KUBECONFIG"),
        "{said}"
    );
}

#[test]
fn check_with_an_invalid_drill_file_exits_1_with_every_problem_before_any_cluster() {
    let out = without_cluster(&["check", "--config", "tests/configs/bad/many-errors.yaml"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let said = text(&out.stderr);
    let problems = said
        .lines()
        .filter(|l| l.starts_with("tests/configs/bad/many-errors.yaml:"))
        .count();
    assert_eq!(problems, 11, "{said}");
    assert!(said.ends_with("11 problems found\n"), "{said}");
    assert!(
        !said.contains("no cluster"),
        "the file is judged first: {said}"
    );
}

/// `skip` and `unskip` check what they are given against the drill file before any cluster is
/// reached: an unknown drill (the file's are named), an instant that is not one of the drill's
/// fires ahead (its next fires are named), `--at` with `--next` or neither, no or an empty
/// `--reason` are usage errors (exit 2); a good request without a cluster exits 4.
#[test]
fn skip_and_unskip_refuse_bad_input_before_reaching_a_cluster() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["skip", "pod-kill-weekly", "--config", EXAMPLE, "--next", "--reason", "INC-7"],
            "error: no drill pod-kill-weekly in deploy/examples/firedrill.yaml (its drills: pod-kill-monthly, network-partition-quarterly, resource-stress-quarterly, dependency-failure-quarterly, region-failover-annual, game-day-annual)",
        ),
        (
            &["skip", "pod-kill-monthly", "--config", EXAMPLE, "--at", "2020-01-15T10:00:00Z", "--reason", "INC-7"],
            "error: pod-kill-monthly has no fire at 2020-01-15T10:00:00Z (that is not ahead); its next fires: ",
        ),
        (
            &["skip", "pod-kill-monthly", "--config", EXAMPLE, "--at", "2999-01-15T10:00:00Z", "--reason", "INC-7"],
            "error: pod-kill-monthly has no fire at 2999-01-15T10:00:00Z (more than a year ahead); its next fires: ",
        ),
        (
            &["skip", "pod-kill-monthly", "--config", EXAMPLE, "--at", "2027-01-15T10:00:00Z", "--next", "--reason", "INC-7"],
            "cannot be used with",
        ),
        (
            &["skip", "pod-kill-monthly", "--config", EXAMPLE, "--reason", "INC-7"],
            "the following required arguments were not provided",
        ),
        (
            &["skip", "pod-kill-monthly", "--config", EXAMPLE, "--next"],
            "--reason <TEXT>",
        ),
        (
            &["skip", "pod-kill-monthly", "--config", EXAMPLE, "--next", "--reason", ""],
            "a value is required for '--reason <TEXT>'",
        ),
        (
            &["unskip", "pod-kill-weekly", "--config", EXAMPLE, "--at", "2027-01-15T10:00:00Z"],
            "error: no drill pod-kill-weekly in deploy/examples/firedrill.yaml",
        ),
        (
            &["unskip", "pod-kill-monthly", "--config", EXAMPLE],
            "the following required arguments were not provided",
        ),
    ];
    for (args, said) in cases {
        let out = without_cluster(args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(said), "{args:?}: {stderr}");
    }
    // The fires named are the drill's next three, each an instant `--at` takes.
    let out = without_cluster(&[
        "skip",
        "pod-kill-monthly",
        "--config",
        EXAMPLE,
        "--at",
        "2020-01-15T10:00:00Z",
        "--reason",
        "x",
    ]);
    let stderr = text(&out.stderr);
    let named = stderr.trim_end().rsplit("its next fires: ").next().unwrap();
    assert_eq!(named.split(", ").count(), 3, "{stderr}");
    let first = named.split(", ").next().unwrap();
    let out = without_cluster(&[
        "skip",
        "pod-kill-monthly",
        "--config",
        EXAMPLE,
        "--at",
        first,
        "--reason",
        "x",
    ]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let out = without_cluster(&["unskip", "pod-kill-monthly", "--config", EXAMPLE, "--next"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
}

/// `plan --cluster` marks the fires people vetoed (#26 item 5): a snapshot that lists
/// `firedrill-skips` as firedrill writes it (in the drill file's namespace, labelled
/// `firedrill.io/kind=skips`) shows each vetoed fire skipped, with who and why, in the table and
/// the JSON, and judges it not (it hits nothing); a ConfigMap of that name without the label, or
/// a snapshot without it, changes nothing.
#[test]
fn plan_against_a_snapshot_with_vetoes_shows_the_vetoed_fires_skipped_with_who_and_why() {
    use chrono::{DateTime, Utc};
    let dir = std::env::temp_dir().join(format!("firedrill-cli-skips-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let example = std::fs::read_to_string(workspace().join(CLUSTER)).expect("example cluster");
    // The first fires of the year, without vetoes: pod-kill-monthly's first is vetoed below.
    let plain = firedrill(&[
        "plan",
        "--config",
        EXAMPLE,
        "--format",
        "json",
        "--from",
        "2027-01-01T00:00:00Z",
        "--next",
        "6",
    ]);
    let fires: serde_json::Value = serde_json::from_slice(&plain.stdout).expect("JSON");
    let fire = fires
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["drill"] == "pod-kill-monthly")
        .expect("a pod-kill fire")
        .clone();
    assert_eq!(fire["status"], "fires", "{fire}");
    let scheduled: DateTime<Utc> = fire["scheduled"].as_str().unwrap().parse().unwrap();
    let mark = |drill: &str, at: DateTime<Utc>| {
        let key = firedrill::cluster::job::run_id(drill, at);
        let value = serde_json::json!({ "drill": drill, "scheduled": at, "reason": "customer demo",
            "by": "alice@example.com", "marked": "2026-12-30T09:00:00Z" });
        format!("      {key}: '{value}'\n")
    };
    let at: DateTime<Utc> = "2026-11-23T15:05:00Z".parse().unwrap();
    let skips = |labels: &str| {
        format!(
            "- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: firedrill-skips\n    namespace: chaos-testing\n    labels: {{{labels}}}\n  data:\n{}{}",
            mark("pod-kill-monthly", scheduled),
            mark("pod-kill-monthly", at)
        )
    };
    let write = |name: &str, extra: &str| {
        let path = dir.join(name);
        std::fs::write(&path, format!("{example}{extra}")).expect("write");
        path.to_str().expect("utf-8 path").to_owned()
    };
    let vetoed = write("vetoed.yaml", &skips("firedrill.io/kind: skips"));
    let foreign = write("foreign.yaml", &skips("app: other"));
    let plan = |snapshot: &str, more: &[&str]| {
        let mut args = vec!["plan", "--config", EXAMPLE, "--cluster", snapshot];
        args.extend(more);
        let out = firedrill(&args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let calendar = [
        "--format",
        "json",
        "--from",
        "2027-01-01T00:00:00Z",
        "--next",
        "6",
    ];
    let by_drill = |json: &str, drill: &str| -> serde_json::Value {
        let fires: serde_json::Value = serde_json::from_str(json).expect("JSON");
        fires
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["drill"] == drill)
            .cloned()
            .unwrap_or_else(|| panic!("no fire of {drill}: {json}"))
    };

    // The calendar: the vetoed fire skipped, with who and why, not judged; the others as before.
    let json = plan(&vetoed, &calendar);
    let kill = by_drill(&json, "pod-kill-monthly");
    assert_eq!(kill["scheduled"], fire["scheduled"]);
    assert_eq!(kill["status"], "skipped", "{kill}");
    assert_eq!(
        kill["reason"],
        "skipped by alice@example.com: customer demo"
    );
    assert!(
        kill["start"].is_null() && kill.get("targets").is_none(),
        "{kill}"
    );
    let unvetoed = plan(&foreign, &calendar);
    assert_eq!(by_drill(&unvetoed, "pod-kill-monthly")["status"], "fires");
    assert!(by_drill(&unvetoed, "pod-kill-monthly")["targets"].is_array());
    // Nothing else changed.
    let others = |json: &str| -> Vec<serde_json::Value> {
        let fires: serde_json::Value = serde_json::from_str(json).unwrap();
        fires
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["drill"] != "pod-kill-monthly")
            .cloned()
            .collect()
    };
    assert_eq!(others(&json), others(&unvetoed));
    // Without the ConfigMap: as with a foreign one.
    assert_eq!(plan(CLUSTER, &calendar), unvetoed);

    // One fire at an instant (`--at`), in the table: skipped, with who and why.
    let table = plan(&vetoed, &["--at", "2026-11-23T15:05:00Z"]);
    let line = table
        .lines()
        .find(|l| l.starts_with("pod-kill-monthly"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(line.contains("skipped"), "{table}");
    assert!(
        line.contains("skipped by alice@example.com: customer demo"),
        "{table}"
    );
    let table = plan(&foreign, &["--at", "2026-11-23T15:05:00Z"]);
    let line = table
        .lines()
        .find(|l| l.starts_with("pod-kill-monthly"))
        .unwrap();
    assert!(!line.contains("skipped"), "{table}");
    let _ = std::fs::remove_dir_all(&dir);
}
