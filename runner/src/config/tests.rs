use super::*;

fn parse(text: &str) -> Result<Config, Diagnostics> {
    Config::parse(text, Path::new("test.yaml"))
}

const MINIMAL: &str =
    "drills:\n  - name: probe\n    kind: probe\n    schedule: '@daily'\n    duration: 1m\n";

#[test]
fn defaults_apply_when_the_file_is_silent() {
    let c = parse(MINIMAL).unwrap();
    assert_eq!(c.timezone, Tz::UTC);
    assert!(!c.armed);
    assert_eq!(c.namespace, "firedrill");
    assert_eq!(c.store, Store::Sqlite("firedrill.db".into()));
    assert_eq!(c.concurrency, 1);
    assert!(c.blackouts.is_empty());
    let d = &c.drills[0];
    assert_eq!(d.timezone, Tz::UTC);
    assert_eq!(d.deadline, Duration::from_secs(3600));
    assert_eq!(d.on_blackout, OnBlackout::Skip);
    assert_eq!(d.safety, Policy::default());
    assert_eq!(d.line, 2);
}

#[test]
fn the_file_zone_is_inherited_and_overridable() {
    let text = "timezone: Europe/Berlin\ndrills:\n  - {name: a, kind: probe, schedule: '@daily', duration: 1m}\n  - {name: b, kind: probe, schedule: '@daily', duration: 1m, timezone: America/New_York}\n";
    let c = parse(text).unwrap();
    assert_eq!(c.drills[0].timezone, chrono_tz::Europe::Berlin);
    assert_eq!(c.drills[1].timezone, chrono_tz::America::New_York);
}

#[test]
fn targets_read_percent_ranges_and_counts() {
    let text = r#"
drills:
  - name: kill
    kind: pod-kill
    schedule: "0 10 15 * *"
    duration: 15m
    targets:
      - { namespace: pake-api, selector: "app=pake-api,tier in (web)", percent: 25-50 }
      - { namespace: pake-ai, selector: app=worker, percent: 30 }
      - { namespace: db, selector: "!primary", count: 2 }
"#;
    let c = parse(text).unwrap();
    let t = &c.drills[0].targets;
    assert_eq!(
        t[0].amount,
        Amount::Percent(PercentRange::parse("25-50").unwrap())
    );
    assert_eq!(t[0].selector.requirements().len(), 2);
    assert_eq!(
        t[1].amount,
        Amount::Percent(PercentRange::parse("30").unwrap())
    );
    assert_eq!(t[2].amount, Amount::Count(2));
}

#[test]
fn drill_safety_replaces_settings_and_extends_lists() {
    let text = r#"
safety:
  protected: [kube-system/*]
  never_target: [role=primary]
  max_targets: 5
  cooldown: 24h
  limits: { partition: 10m, cpu: 95% }
drills:
  - name: a
    kind: probe
    schedule: "@daily"
    duration: 1m
    safety:
      protected: [database/*]
      max_targets: 2
      limits: { cpu: 80% }
  - name: b
    kind: probe
    schedule: "@daily"
    duration: 1m
"#;
    let c = parse(text).unwrap();
    let a = &c.drills[0].safety;
    assert_eq!(
        a.protected
            .iter()
            .map(|g| g.to_string())
            .collect::<Vec<_>>(),
        ["kube-system/*", "database/*"]
    );
    assert_eq!(a.never_target.len(), 1);
    assert_eq!(a.max_targets, 2);
    assert_eq!(a.cooldown, Duration::from_secs(86_400));
    assert_eq!(a.limits.partition, Some(Duration::from_secs(600)));
    assert_eq!(a.limits.cpu.map(|p| p.to_string()), Some("80%".to_owned()));
    assert_eq!(c.drills[1].safety, c.safety);
    assert_eq!(c.safety.max_targets, 5);
}

#[test]
fn a_partition_within_the_limit_is_valid_and_beyond_it_is_not() {
    let drill = |duration: &str| {
        format!(
            "safety: {{limits: {{partition: 10m}}}}\ndrills:\n  - name: p\n    kind: network-partition\n    schedule: '@monthly'\n    duration: {duration}\n    targets: [{{namespace: a, selector: app=a, count: 1}}]\n"
        )
    };
    assert!(parse(&drill("10m")).is_ok());
    let err = parse(&drill("11m")).unwrap_err().to_string();
    assert_eq!(
        err,
        "test.yaml:6:15: drills[0].duration: a partition of 11m exceeds safety.limits.partition 10m (shorten the drill or raise the limit)"
    );
}

#[test]
fn blackouts_read_every_form() {
    let text = r#"
blackouts:
  - { name: freeze, from: 2026-12-20, to: 2027-01-04 }
  - { name: weekends, weekdays: [Sat, Sun] }
  - { name: nightly, times: "22:00-06:00" }
  - { name: friday-evening, weekdays: [fri], times: "17:00-24:00" }
drills:
  - { name: a, kind: probe, schedule: "@daily", duration: 1m }
"#;
    let c = parse(text).unwrap();
    let b = &c.blackouts;
    assert_eq!(
        b[0].dates.map(|d| d.0.to_string()),
        Some("2026-12-20".into())
    );
    assert_eq!(b[1].weekdays, Some(0b110_0000));
    assert_eq!(b[2].times, Some((1320, 360)));
    assert_eq!(b[3].times, Some((1020, 1440)));
    assert_eq!(b[3].weekdays, Some(1 << 4));
}

#[test]
fn store_and_endpoint_urls() {
    assert_eq!(
        parse_store("postgres://fd@db/firedrill"),
        Ok(Store::Postgres("postgres://fd@db/firedrill".into()))
    );
    assert_eq!(
        parse_store("sqlite:///var/lib/firedrill.db"),
        Ok(Store::Sqlite("/var/lib/firedrill.db".into()))
    );
    assert!(parse_store("sqlite://").is_err());
    assert!(parse_http_url("ftp://x").is_err());
    assert!(parse_http_url("http://prometheus.monitoring.svc:9090").is_ok());
}

#[test]
fn drill_names_fit_job_names() {
    assert!(dns_label(&"a".repeat(MAX_DRILL_NAME), MAX_DRILL_NAME).is_ok());
    assert!(dns_label(&"a".repeat(MAX_DRILL_NAME + 1), MAX_DRILL_NAME).is_err());
    assert!(dns_label("-a", 63).is_err());
    assert!(dns_label("a_b", 63).is_err());
}

#[test]
fn errors_are_sorted_by_position_and_all_reported() {
    let text = "drills:\n  - name: B\n    kind: nope\n    schedule: x\n    duration: 0s\n";
    let err = parse(text).unwrap_err();
    let lines: Vec<usize> = err.items.iter().map(|d| d.mark.line).collect();
    assert_eq!(lines, [2, 3, 4, 5]);
}

#[test]
fn a_gate_that_can_never_pass_or_always_breaches_is_refused() {
    let drill = |gates: &str| {
        format!(
            "prometheus: http://prometheus:9090\ndrills:\n  - name: p\n    kind: probe\n    schedule: '@daily'\n    duration: 1m\n{gates}"
        )
    };
    // Preflight passes within [min, max]: min above max never passes.
    let err = parse(&drill("    preflight: [{promql: up, min: 5, max: 1}]\n"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "test.yaml:7:35: drills[0].preflight[0].min: min 5 is above max 1, so the check can never pass (it passes when min <= value <= max; swap them)"
    );
    // An abort condition breaches below `below` or above `above`: below above `above` always does.
    let err = parse(&drill(
        "    abort_when: [{promql: errors, below: 0.5, above: 0.25}]\n",
    ))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("drills[0].abort_when[0].below: below 0.5 is above `above` 0.25, so every value breaches and the drill would always abort"),
        "{err}"
    );
    // Equal bounds are a narrow gate, not an impossible one.
    assert!(parse(&drill("    preflight: [{promql: up, min: 1, max: 1}]\n")).is_ok());
    assert!(parse(&drill(
        "    abort_when: [{promql: errors, below: 0.25, above: 0.25}]\n"
    ))
    .is_ok());
}

#[test]
fn merge_keys_are_said_to_be_unsupported_wherever_they_are() {
    let text = "drills:\n  - &a {name: a, kind: probe, schedule: '@daily', duration: 1m}\n  - <<: *a\n    name: b\n";
    let err = parse(text).unwrap_err();
    let first = &err.items[0];
    assert_eq!(
        (first.mark.line, first.path.as_str(), first.message.as_str()),
        (
            3,
            "drills[1].<<",
            "merge keys (<<) are not supported; write the keys out"
        )
    );
    assert!(!err.to_string().contains("unknown key"), "{err}");
    // A quoted "<<" is an ordinary (unknown) key, not a merge.
    let err = parse("'<<': 1\ndrills: []\n").unwrap_err().to_string();
    assert!(err.contains("<<: unknown key"), "{err}");
}

/// A drill's kind is its settings' kind: a kind read with no `fault:` runs on that kind's
/// defaults or asks for `fault:`; settings of another kind are refused at their line.
#[test]
fn a_drill_runs_the_kind_it_names_and_only_that_kind_s_settings() {
    let drill = |kind: Kind, fault: &str| {
        let targets = if kind.needs_pod_targets() {
            "    targets: [{namespace: api, selector: app=api, count: 1}]\n"
        } else {
            ""
        };
        format!("drills:\n  - name: d\n    kind: {kind}\n    schedule: '@daily'\n    duration: 1m\n{targets}{fault}")
    };
    for kind in Kind::ALL {
        match parse(&drill(kind, "")) {
            Ok(c) => assert_eq!(c.drills[0].kind(), kind),
            // A scenario's faults are its steps'.
            Err(err) if kind == Kind::Scenario => assert!(
                err.to_string()
                    .contains("drills[0].steps: missing (required: "),
                "{err}"
            ),
            Err(err) => assert!(
                firedrill_experiments::Settings::default_for(kind).is_none()
                    && err
                        .to_string()
                        .contains("drills[0].fault: missing (required: "),
                "{kind}: {err}"
            ),
        }
    }
    let err = parse(&drill(Kind::PodKill, "    fault: {container: api}\n"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "test.yaml:7:13: drills[0].fault.container: unknown key (allowed here: force, grace_period, waves, interval)"
    );
    let err = parse(&drill(Kind::Probe, "    fault: {waves: 2}\n"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "test.yaml:6:12: drills[0].fault: kind probe takes no `fault:` settings (it only observes)"
    );
}
