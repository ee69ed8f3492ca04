//! The install: every kustomize overlay under `deploy/overlays/` renders, each rendered object
//! passes `kubernetes-validate --strict` and checkov (a check that cannot be met is skipped in the
//! manifest, with its reason), and no role of any overlay grants `*`, escalation or Secret reads.
//! `scripts/check-deploy.sh` renders and checks; this test runs it and reads what it rendered.

mod support;

use std::path::Path;
use std::process::Command;

#[test]
fn every_overlay_renders_passes_its_checks_and_grants_no_wildcard_escalation_or_secrets() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = root.join("target/deploy");
    let run = Command::new("scripts/check-deploy.sh")
        .current_dir(&root)
        .output()
        .expect("scripts/check-deploy.sh runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(run.status.success(), "check-deploy failed:\n{said}");
    let overlays: Vec<String> = std::fs::read_dir(root.join("deploy/overlays"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        ["namespaced", "cluster-wide", "ha-postgres"]
            .iter()
            .all(|o| overlays.iter().any(|x| x == o)),
        "{overlays:?}"
    );
    for overlay in &overlays {
        assert!(
            said.contains(&format!("{overlay}: ")) && said.contains("0 failed"),
            "{overlay} not checked:\n{said}"
        );
        let text = std::fs::read_to_string(out.join(format!("{overlay}.yaml")))
            .unwrap_or_else(|e| panic!("{overlay} was not rendered: {e}"));
        let grants = support::rbac_grants(&text);
        assert!(grants.len() > 5, "{overlay}: no roles read ({grants:?})");
        assert_eq!(
            support::forbidden_grants(&text),
            Vec::<String>::new(),
            "{overlay}"
        );
    }
    // The check can fail: a role that may bind roles is named.
    let bad = "kind: Role\nmetadata:\n  name: x\n  namespace: y\nrules:\n  - apiGroups: [rbac.authorization.k8s.io]\n    resources: [roles]\n    verbs: [bind]\n";
    assert_eq!(
        support::forbidden_grants(bad),
        ["Role y/x: rbac.authorization.k8s.io/roles bind"]
    );
}
