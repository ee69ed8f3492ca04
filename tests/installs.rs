//! Every program the tests and scripts run is installed by the suite itself.
//!
//! A fresh machine once lacked `ping` (Debian's iputils-ping): the suite passed where it was
//! written and failed in CI. This test lists the programs the code can spawn — `Command::new`
//! literals in every Rust file, and the bare words of every shell script (comments, heredocs and
//! quoted text left out) that name a program on this machine — and finds each one's Debian
//! package. A program is accounted for when its package is essential or of `required` priority
//! (on every Debian machine), when it comes with the machine image (the Rust toolchain, Python,
//! git: see the env notes), or when `scripts/services.sh`'s `PROGRAMS` table installs it.
//! Anything else fails, named with its package and where it is used.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// What every machine this suite runs on starts with, outside Debian's packages.
const MACHINE_IMAGE: &[&str] = &[
    "cargo", "rustc", "rustup", "rustfmt", "python3", "pip", "pip3", "git",
];

/// Words of the scripts that name a program on some machines but are not run as one here.
const NOT_RUN: &[(&str, &str)] = &[("postgres", "the system user of `runuser -u postgres`")];

/// Installed by scripts/test.sh from PyPI (its "tools" step) and by scripts/services.sh (moto).
const FROM_PYPI: &[&str] = &["kubernetes-validate", "moto_server", "kubectl", "checkov"];

/// Installed with `cargo install --locked` by the script that runs it (scripts/mutants.sh, which
/// is not part of the suite).
const FROM_CRATES_IO: &[&str] = &["cargo-mutants"];

fn files(dir: &Path, ext: &str, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path.is_dir() {
            if !name.starts_with('.') && name != "target" {
                files(&path, ext, found);
            }
        } else if name.ends_with(ext) {
            found.push(path);
        }
    }
}

/// `Command::new("x")` and `tokio::process::Command::new("x")` literals.
fn spawned_by_rust(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    for part in code.split("Command::new(\"").skip(1) {
        if let Some(end) = part.find('"') {
            let program = &part[..end];
            // A path to a program of the project's own (scripts/...) or an absolute one.
            let program = program.rsplit('/').next().unwrap_or(program);
            if !program.is_empty() && !program.ends_with(".sh") {
                out.push(program.to_owned());
            }
        }
    }
    out
}

/// The words of a shell script's code that could be a command: comments, heredoc bodies and
/// quoted text are dropped (but what runs inside `$(...)` in double quotes is kept).
fn words_of_shell(text: &str) -> BTreeSet<String> {
    let mut words = BTreeSet::new();
    let mut heredoc: Option<String> = None;
    for line in text.lines() {
        if let Some(end) = &heredoc {
            if line.trim() == end {
                heredoc = None;
            }
            continue;
        }
        if let Some(at) = line.find("<<") {
            let rest = line[at + 2..].trim_start_matches(['-', '~']).trim_start();
            let tag: String = rest
                .trim_start_matches(['\'', '"'])
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !tag.is_empty() {
                heredoc = Some(tag);
            }
        }
        let code: Vec<char> = strip_quotes_and_comment(line).chars().collect();
        let in_word = |c: char| c.is_ascii_alphanumeric() || "._+-".contains(c);
        let mut at = 0;
        while at < code.len() {
            if !in_word(code[at]) {
                at += 1;
                continue;
            }
            let start = at;
            while at < code.len() && in_word(code[at]) {
                at += 1;
            }
            let word: String = code[start..at].iter().collect();
            // `$name` and `${name}` are variables, `name=` an assignment (or `awk -v name=`).
            let before = start.checked_sub(1).map(|i| code[i]);
            let variable = matches!(before, Some('$'))
                || (matches!(before, Some('{')) && start >= 2 && code[start - 2] == '$');
            let assigned = code.get(at) == Some(&'=');
            if word.starts_with(|c: char| c.is_ascii_lowercase()) && !variable && !assigned {
                words.insert(word);
            }
        }
    }
    words
}

fn strip_quotes_and_comment(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    let mut previous = ' ';
    while let Some(c) = chars.next() {
        match c {
            '#' if previous.is_whitespace() || previous == ';' => break,
            '\'' => {
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                }
                out.push(' ');
            }
            '"' => {
                // Keep command substitutions inside double quotes; drop the rest.
                let mut depth = 0;
                let mut last = ' ';
                for c in chars.by_ref() {
                    if depth == 0 && c == '"' && last != '\\' {
                        break;
                    }
                    if c == '(' && last == '$' {
                        depth += 1;
                        out.push(' ');
                    } else if c == ')' && depth > 0 {
                        depth -= 1;
                        out.push(' ');
                    } else if depth > 0 {
                        out.push(c);
                    }
                    last = c;
                }
                out.push(' ');
            }
            _ => out.push(c),
        }
        previous = c;
    }
    out
}

/// The programs of a script's `# Needs:` line.
fn needs(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim_start().strip_prefix("# Needs:"))
        .flat_map(|list| list.split(','))
        .filter_map(|item| item.split_whitespace().next())
        .map(|w| w.trim_end_matches('.').to_owned())
        .collect()
}

fn shell(script: &str) -> Option<String> {
    let out = Command::new("bash").args(["-c", script]).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The programs `scripts/services.sh` installs when they are missing (its PROGRAMS table).
fn installed_by_the_suite() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(root().join("scripts/services.sh")).unwrap();
    let table = text
        .split("PROGRAMS=(")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .expect("scripts/services.sh has a PROGRAMS=( program:package ... ) table");
    table
        .split_whitespace()
        .filter(|w| !w.starts_with('#'))
        .filter_map(|entry| entry.split_once(':'))
        .map(|(program, package)| (program.to_owned(), package.to_owned()))
        .collect()
}

#[test]
fn every_program_the_tests_and_scripts_run_is_installed_by_the_suite() {
    if shell("command -v dpkg-query").is_none() {
        panic!("this check reads Debian's package database (dpkg-query): run it on Debian");
    }
    let root = root();
    // Where each candidate is used.
    let mut used: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut rust = Vec::new();
    for dir in [
        "runner",
        "tests",
        "reader",
        "safety",
        "experiments",
        "rollback",
    ] {
        files(&root.join(dir), ".rs", &mut rust);
    }
    for file in &rust {
        let text = std::fs::read_to_string(file).unwrap();
        for program in spawned_by_rust(&text) {
            let at = file.strip_prefix(&root).unwrap().display().to_string();
            used.entry(program).or_default().insert(at);
        }
    }
    let mut scripts = Vec::new();
    for dir in ["scripts", "experiments", ".ci", "deploy"] {
        files(&root.join(dir), ".sh", &mut scripts);
    }
    scripts.push(root.join(".ci/run"));
    assert!(scripts.iter().any(|s| s.ends_with("degrade-check.sh")));
    // What a script says it needs (`# Needs: a, b (note), c`) must be there even where this
    // machine lacks it: the words below are only what this machine has.
    let mut declared: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &scripts {
        let text = std::fs::read_to_string(file).unwrap();
        let at = file.strip_prefix(&root).unwrap().display().to_string();
        for program in needs(&text) {
            declared.entry(program).or_default().insert(at.clone());
        }
        for word in words_of_shell(&text) {
            let at = file.strip_prefix(&root).unwrap().display().to_string();
            used.entry(word).or_default().insert(at);
        }
    }

    let installed = installed_by_the_suite();
    let mut unaccounted = Vec::new();
    for (program, files) in declared.iter().chain(
        used.iter()
            .filter(|(_, files)| files.iter().any(|f| f.ends_with(".rs"))),
    ) {
        let known = installed.contains_key(program)
            || MACHINE_IMAGE.contains(&program.as_str())
            || FROM_PYPI.contains(&program.as_str())
            || FROM_CRATES_IO.contains(&program.as_str());
        if !known && shell(&format!("type -P -- {program}")).is_none() {
            unaccounted.push(format!(
                "{program} (not on this machine and not installed by the suite), needed by {files:?}"
            ));
        }
    }
    let mut checked = 0;
    for (program, files) in &used {
        if NOT_RUN.iter().any(|(word, _)| word == program) {
            continue;
        }
        let is_builtin = shell(&format!("type -t -- {program}")).is_some_and(|t| t != "file");
        let Some(path) = shell(&format!("type -P -- {program}")) else {
            // Not a program on this machine: a word of the script's own (a function, a
            // variable, a message) or a program the suite failed to install, which the tests
            // that run it report themselves.
            continue;
        };
        if is_builtin && !files.iter().any(|f| f.ends_with(".rs")) {
            continue;
        }
        checked += 1;
        if installed.contains_key(program)
            || MACHINE_IMAGE.contains(&program.as_str())
            || FROM_PYPI.contains(&program.as_str())
            || FROM_CRATES_IO.contains(&program.as_str())
        {
            continue;
        }
        let real = std::fs::canonicalize(&path).unwrap_or_else(|_| PathBuf::from(&path));
        // Debian registers /bin/x for what a merged /usr finds at /usr/bin/x.
        let unmerged = |p: &str| p.strip_prefix("/usr").map(str::to_owned);
        let real = real.display().to_string();
        let package = [
            Some(path.clone()),
            unmerged(&path),
            Some(real.clone()),
            unmerged(&real),
        ]
        .into_iter()
        .flatten()
        .find_map(|p| {
            shell(&format!(
                "dpkg -S -- {p} 2>/dev/null | grep -v '^diversion' | head -n 1 | cut -d: -f1"
            ))
            .filter(|p| !p.is_empty())
        });
        let Some(package) = package else {
            unaccounted.push(format!(
                "{program} ({path}, in no Debian package and not from the machine image), used in {files:?}"
            ));
            continue;
        };
        let package = package
            .split(',')
            .next()
            .unwrap_or(&package)
            .trim()
            .to_owned();
        let standing = shell(&format!(
            "dpkg-query -W -f='${{Essential}} ${{Priority}}' -- {package}"
        ))
        .unwrap_or_default();
        if standing.starts_with("yes") || standing.ends_with("required") {
            continue;
        }
        unaccounted.push(format!(
            "{program} (Debian package {package}, \"{standing}\": a fresh machine may lack it), used in {files:?}"
        ));
    }
    assert!(
        checked > 20,
        "only {checked} programs found: is the scan broken?"
    );
    assert!(
        unaccounted.is_empty(),
        "programs the suite runs but does not install; add each to PROGRAMS in scripts/services.sh:\n  {}",
        unaccounted.join("\n  ")
    );
}

#[test]
fn the_scan_finds_commands_and_skips_comments_heredocs_and_quotes() {
    let script = "#!/bin/sh\n# ping is only mentioned here\nip netns exec a ping -c 1 x | grep -q ttl\necho \"curl says $(wc -l <f)\"\ncat <<'EOF'\nnft inside a heredoc\nEOF\nstress-ng --cpu 1 # tc in a comment\n";
    let words = words_of_shell(script);
    for present in ["ip", "ping", "grep", "wc", "stress-ng", "cat"] {
        assert!(words.contains(present), "{present} missing from {words:?}");
    }
    let words = {
        let mut all = words;
        all.extend(words_of_shell(
            "local size=$3 dir\nawk -v w=\"$5\" x \"${file}\" $name\n",
        ));
        all
    };
    assert!(words.contains("dir") && words.contains("awk"));
    for absent in [
        "curl",
        "nft",
        "tc",
        "mentioned",
        "size",
        "w",
        "file",
        "name",
    ] {
        assert!(!words.contains(absent), "{absent} in {words:?}");
    }
    assert_eq!(
        spawned_by_rust("Command::new(\"ping\").arg(x); tokio::process::Command::new(\"/usr/bin/time\"); Command::new(\"scripts/x.sh\")"),
        vec!["ping".to_owned(), "time".to_owned()]
    );
}
