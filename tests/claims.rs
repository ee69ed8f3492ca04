//! The hand-written claim bugs of `scripts/mutants.sh` (`tests/mutants/claims/*.patch`) still
//! apply to the tree. Mutation testing is not part of the suite, so a patch that no longer
//! applies (a file moved, the code around it changed) would otherwise rot unseen until someone
//! runs it; here it fails by name, with git's reason.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn every_claim_bug_still_applies_to_the_tree() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = root.join("tests/mutants/claims");
    let mut patches: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/mutants/claims")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "patch"))
        .collect();
    patches.sort();
    assert!(!patches.is_empty(), "no claim patches in {}", dir.display());
    let mut stale = Vec::new();
    for patch in &patches {
        let out = Command::new("git")
            .args(["apply", "--check"])
            .arg(patch)
            .current_dir(&root)
            .output()
            .expect("git runs");
        if !out.status.success() {
            stale.push(format!(
                "{}: {}",
                patch.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    assert!(
        stale.is_empty(),
        "claim patches that no longer apply (regenerate them against the tree):\n{}",
        stale.join("\n")
    );
}
