//! A test that cannot run here says so in one way, so that a run of the suite can list every
//! skip at its end instead of leaving each in a stderr line that a passing test hides. A
//! property test's coverage line goes the same way ([`coverage`]). Shared by every test crate
//! (`tests/`, `safety/` and `rollback/` include this file by path).

#![allow(dead_code)]

use std::io::Write;

/// Names the file each skip is appended to, one `test: why` line each; scripts/test.sh sets it
/// and lists the file's lines at its end.
pub const SKIPPED_FILE: &str = "FIREDRILL_SKIPPED";

/// The test (or the part of it `why` names) cannot run here because something it needs is
/// missing. Under CI (`CI=true`) that is a failure, not a skip: scripts/test.sh provides
/// everything. Elsewhere the skip is recorded (see [`skipped`]).
pub fn skip(why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why}: under CI this fails the test instead of skipping it (scripts/test.sh provides what the tests need)");
    }
    skipped(why);
}

/// Records a skip, under CI too (for opt-in tests): a line on stderr, and `test: why` appended
/// to the file `FIREDRILL_SKIPPED` names, when it is set.
pub fn skipped(why: &str) {
    let test = current_test();
    eprintln!("skipped: {test}: {why}");
    let Some(path) = std::env::var_os(SKIPPED_FILE).filter(|p| !p.is_empty()) else {
        return;
    };
    append(
        SKIPPED_FILE,
        &path,
        &format!("{test}: {}", why.replace('\n', " ")),
    );
}

/// Names the file property tests append their coverage line to; scripts/test.sh lists it at its
/// end, where a passing test's stderr never shows.
pub const COVERAGE_FILE: &str = "FIREDRILL_COVERAGE";

/// A property test's coverage (`coverage: test (N cases): rule x%, ...`): on stderr, and appended
/// to the file `FIREDRILL_COVERAGE` names, when it is set.
pub fn coverage(line: &str) {
    eprintln!("{line}");
    if let Some(path) = std::env::var_os(COVERAGE_FILE).filter(|p| !p.is_empty()) {
        append(COVERAGE_FILE, &path, line);
    }
}

/// One write of one short line to a file opened for appending: the tests running in parallel
/// threads and processes do not interleave their lines.
fn append(variable: &str, path: &std::ffi::OsStr, line: &str) {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()))
        .unwrap_or_else(|e| {
            panic!(
                "cannot append to {variable}={}: {e}",
                std::path::Path::new(path).display()
            )
        });
}

/// `binary::test`: libtest runs each test on a thread named after it; the binary is the test
/// crate this file is compiled into.
fn current_test() -> String {
    let thread = std::thread::current();
    let name = match thread.name() {
        Some(name) if name != "main" && !name.starts_with("tokio-runtime") => name,
        _ => "(a test whose name its thread does not carry)",
    };
    format!("{}::{name}", env!("CARGO_CRATE_NAME"))
}
