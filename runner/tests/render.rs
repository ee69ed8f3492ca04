//! What firedrill renders for Kubernetes: pinned by a snapshot, and valid against the official
//! schemas (`kubernetes-validate --strict -k 1.32.0`, installed by scripts/test.sh).

#[path = "support/skip.rs"]
mod skip;

use std::path::{Path, PathBuf};
use std::process::Command;

use firedrill::cluster::job::{self, RunRef, Runtime};
use firedrill::config::Config;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// One drill of each fault kind.
fn kinds() -> Config {
    Config::load(&workspace().join("deploy/examples/kinds.yaml")).unwrap()
}

/// `plan --render` of one fire of `drill` on the example cluster, as a user runs it.
fn render(file: &str, drill: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_firedrill"))
        .args([
            "plan",
            "--config",
            file,
            "--cluster",
            "deploy/examples/cluster.yaml",
            "--drill",
            drill,
            "--at",
            "2027-01-15T15:00:00Z",
            "--render",
        ])
        .env_remove("FIREDRILL_IMAGE")
        .current_dir(workspace())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    String::from_utf8(out.stdout).unwrap()
}

/// What one fire of each fault kind would change on the example cluster, pinned: a change to
/// what firedrill creates or patches shows up in review.
#[test]
fn every_fault_kind_renders_as_pinned() {
    for drill in kinds().drills {
        insta::assert_snapshot!(
            format!("fault_{}", drill.name),
            render("deploy/examples/kinds.yaml", &drill.name)
        );
    }
}

/// Issue #26: what one fire of the example game day would change, step by step, pinned: each
/// step's changes under it, with its own run id, and the optional step the guard refuses.
#[test]
fn the_game_day_scenario_renders_as_pinned() {
    let out = Command::new(env!("CARGO_BIN_EXE_firedrill"))
        .args([
            "plan",
            "--config",
            "deploy/examples/firedrill.yaml",
            "--cluster",
            "deploy/examples/cluster.yaml",
            "--drill",
            "game-day-annual",
            "--at",
            "2027-11-12T15:00:00Z",
            "--render",
        ])
        .env_remove("FIREDRILL_IMAGE")
        .current_dir(workspace())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    insta::assert_snapshot!(String::from_utf8(out.stdout).unwrap());
}

fn example() -> Config {
    Config::load(&workspace().join("deploy/examples/firedrill.yaml"))
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_rendered_job_is_pinned() {
    let config = example();
    let drill = config.drill("pod-kill-monthly").unwrap();
    let scheduled = "2027-01-15T15:00:00Z".parse().unwrap();
    let run = RunRef {
        drill: drill.name.clone(),
        run: job::run_id(&drill.name, scheduled),
        scheduled,
        dry_run: false,
    };
    let runtime = Runtime {
        image: "ghcr.io/example/firedrill:0.1.0".into(),
        config_map: "firedrill-config".into(),
        service_account: "firedrill".into(),
    };
    insta::assert_snapshot!(job::to_yaml(&job::render(&config, drill, &run, &runtime)));
}

/// `kubernetes-validate` on `files`; `None` when it is not installed outside CI.
fn validate(files: &[PathBuf]) -> Option<std::process::Output> {
    let found = Command::new("kubernetes-validate")
        .arg("--version")
        .output()
        .is_ok();
    if !found {
        skip::skip("kubernetes-validate is not installed (pip install kubernetes-validate; scripts/test.sh installs it)");
        return None;
    }
    Some(
        Command::new("kubernetes-validate")
            .args(["--strict", "-k", "1.32.0"])
            .args(files)
            .output()
            .expect("run kubernetes-validate"),
    )
}

#[test]
fn every_rendered_object_passes_the_official_schemas() {
    let dir = std::env::temp_dir().join(format!("firedrill-render-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut files = Vec::new();
    // Every example drill, rendered by the binary as users run it, armed and dry-run.
    for drill in example().drills {
        for dry_run in [false, true] {
            let mut args = vec![
                "run",
                drill.name.as_str(),
                "--config",
                "deploy/examples/firedrill.yaml",
                "--render",
            ];
            if dry_run {
                args.push("--dry-run");
            }
            let out = Command::new(env!("CARGO_BIN_EXE_firedrill"))
                .args(&args)
                .current_dir(workspace())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let file = dir.join(format!("{}-{dry_run}.yaml", drill.name));
            std::fs::write(&file, &out.stdout).unwrap();
            files.push(file);
        }
    }
    // The Events a drill leaves on what it touches (a pod, and a node: cluster-scoped).
    for (i, target) in [
        firedrill_rollback::ObjectRef::namespaced(
            firedrill_rollback::ObjectKind::Pod,
            "pake-api",
            "api-1",
        ),
        firedrill_rollback::ObjectRef::node("node-1"),
    ]
    .iter()
    .enumerate()
    {
        let mut event = serde_json::to_value(firedrill::cluster::ledger::victim_event(
            target,
            "FiredrillFault",
            "firedrill drill d (run r): evict Pod pake-api/api-1",
        ))
        .unwrap();
        event["apiVersion"] = "v1".into();
        event["kind"] = "Event".into();
        let file = dir.join(format!("event-{i}.yaml"));
        std::fs::write(&file, firedrill_reader::yaml::emit(&event)).unwrap();
        files.push(file);
    }
    // The ledger and the kill switch, as firedrill writes them, and the example ledger.
    let mut ledger = firedrill_rollback::Ledger::new(
        "pod-kill-monthly-trosc0",
        "pod-kill-monthly",
        "pod-kill",
        "2027-01-15T16:25:00Z",
    );
    ledger.job = Some("pod-kill-monthly-trosc0".into());
    ledger.push(
        firedrill_rollback::UndoRecord::Uncordon {
            node: "node-1".into(),
            was_unschedulable: false,
        },
        &firedrill_rollback::Key::from_bytes(&[7; 32]).unwrap(),
    );
    for (name, object) in [
        (
            "ledger.yaml",
            serde_json::to_value(firedrill::cluster::ledger::ledger_config_map(
                "chaos-testing",
                &ledger,
            ))
            .unwrap(),
        ),
        (
            "kill-switch.yaml",
            serde_json::to_value(firedrill::cluster::ledger::kill_switch_config_map(
                "chaos-testing",
                "INC-1",
                "ana",
            ))
            .unwrap(),
        ),
    ] {
        let mut object = object;
        object["apiVersion"] = "v1".into();
        object["kind"] = "ConfigMap".into();
        let file = dir.join(name);
        std::fs::write(&file, firedrill_reader::yaml::emit(&object)).unwrap();
        files.push(file);
    }
    files.push(workspace().join("deploy/examples/ledger.yaml"));
    // What network-partition creates, with every kind of peer.
    let partition = firedrill_experiments::NetworkPartition {
        direction: firedrill_experiments::Direction::Both,
        allow: vec![
            firedrill_experiments::Peer::Namespace("monitoring".into()),
            firedrill_experiments::Peer::Pods([("app".to_owned(), "gateway".to_owned())].into()),
            firedrill_experiments::Peer::Cidr("10.0.0.0/8".into()),
        ],
        allow_dns: true,
    };
    let file = dir.join("network-policy.yaml");
    std::fs::write(
        &file,
        firedrill_reader::yaml::emit(&firedrill_experiments::network_policy(
            "cut-1", "pake-api", &partition,
        )),
    )
    .unwrap();
    files.push(file);
    // Every object `plan --render` shows a fire of an example drill (and of each fault kind)
    // would create.
    for (file, drill) in example()
        .drills
        .into_iter()
        .map(|d| ("deploy/examples/firedrill.yaml", d.name))
        .chain(
            kinds()
                .drills
                .into_iter()
                .map(|d| ("deploy/examples/kinds.yaml", d.name)),
        )
    {
        let text = render(file, &drill);
        for (i, doc) in text.split("---\n").skip(1).enumerate() {
            let doc = firedrill_reader::yaml::to_json(&firedrill_reader::yaml::parse(doc).unwrap());
            if doc["change"]["op"] == "create" {
                let file = dir.join(format!("render-{drill}-{i}.yaml"));
                std::fs::write(
                    &file,
                    firedrill_reader::yaml::emit(&doc["change"]["object"]),
                )
                .unwrap();
                files.push(file);
            }
        }
    }
    // The Job a region failover's promotion hook creates, from the example drill's spec.
    for drill in example().drills {
        if let firedrill_experiments::Settings::RegionFailover(rf) = &drill.fault {
            let Some(firedrill_experiments::region::Hook {
                action: firedrill_experiments::region::HookAction::Job(spec),
                ..
            }) = &rf.promote
            else {
                panic!("the example region failover promotes with a Job");
            };
            let job = firedrill::drill::region::hook_job(
                "chaos-testing",
                spec,
                &firedrill::drill::region::HookContext {
                    phase: "promote",
                    run: "region-failover-annual-trosc0",
                    drill: &drill.name,
                    from: &rf.from,
                    to: &rf.to,
                },
            );
            let file = dir.join("hook-job.yaml");
            std::fs::write(&file, firedrill_reader::yaml::emit(&job)).unwrap();
            files.push(file);
        }
    }
    // And the deployment manifests.
    for entry in std::fs::read_dir(workspace().join("deploy/kubernetes")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|x| x == "yaml") && !path.ends_with("kustomization.yaml") {
            files.push(path);
        }
    }
    assert!(files.len() >= 12, "{files:?}");
    let Some(out) = validate(&files) else { return };
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{report}");
    assert!(!report.contains("ERROR"), "{report}");
    let _ = std::fs::remove_dir_all(Path::new(&dir));
}

/// Issue #22: the scope a revert is held to is derived from the planners, so every undo record
/// a fire of each fault kind plans is in it (else `apply` would refuse the drill's own steps).
/// The one exception is a region failover planned without Route 53, whose DNS states are
/// placeholders read when the drill fires; a plan never writes them to a ledger.
#[test]
fn every_undo_record_the_planners_write_is_within_the_scope() {
    let config = kinds();
    let scope = firedrill::cluster::ledger::scope_of(&config);
    let mut checked = 0;
    for drill in &config.drills {
        let text = render("deploy/examples/kinds.yaml", &drill.name);
        for doc in text.split("---\n").skip(1) {
            let node =
                firedrill_reader::yaml::parse_within(doc, firedrill_reader::yaml::Limits::LEDGER)
                    .unwrap_or_else(|e| panic!("{doc}: {}", e.message));
            let json = firedrill_reader::yaml::to_json(&node);
            let undo: firedrill_rollback::UndoRecord =
                serde_json::from_value(json["undo"].clone()).unwrap();
            if let firedrill_rollback::UndoRecord::External { record, .. } = &undo {
                if record["prior"]
                    .as_str()
                    .is_some_and(|p| p.contains("read from Route 53"))
                {
                    continue;
                }
            }
            if let Err(why) = firedrill_rollback::within(&undo, &scope) {
                panic!("{}: {why}\n{doc}", drill.name);
            }
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} undo records planned");
    println!(
        "{checked} undo records of {} drills within scope",
        config.drills.len()
    );
}

/// A region failover run as a scenario's step writes its ledger under the scenario's name: the
/// scope a revert is held to declares its Route 53 records for that name, as for a drill.
#[test]
fn a_scenario_s_region_failover_step_declares_its_records_for_the_revert() {
    let mut config = example();
    let region = config
        .drills
        .iter()
        .position(|d| d.kind() == firedrill_experiments::Kind::RegionFailover)
        .expect("the example has a region failover");
    let region = config.drills.remove(region);
    assert!(
        firedrill::cluster::ledger::scope_of(&config)
            .dns
            .unwrap()
            .is_empty(),
        "the example declares Route 53 records only in its region failover"
    );
    let mut game_day = config.drills[0].clone();
    game_day.name = "game-day".into();
    game_day.fault =
        firedrill_experiments::Settings::Scenario(Box::new(firedrill_experiments::Scenario {
            steps: vec![firedrill_experiments::ScenarioStep {
                name: "failover".into(),
                targets: Vec::new(),
                fault: region.fault.clone(),
                after: Vec::new(),
                delay: std::time::Duration::ZERO,
                when: None,
                optional: false,
                rto: None,
                line: 1,
            }],
        }));
    config.drills.push(game_day);
    let declared = firedrill::cluster::ledger::scope_of(&config).dns.unwrap();
    assert_eq!(declared.len(), 1, "{declared:?}");
    assert_eq!(declared[0].drill, "game-day");
    assert_eq!(declared[0].name, "api.pake.example.com.");
}
