//! Every `firedrill ...` command in `runbooks/` (and the README) is one the binary accepts: each is run through the
//! real command-line parser (clap), so a renamed flag breaks this test, not a 3 a.m. page.

use std::path::PathBuf;

use clap::Parser;
use firedrill::cli::Cli;

/// The `firedrill` command lines of a Markdown file: in code blocks, joined across `\` line ends,
/// without trailing `# comments`.
fn commands(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_code = false;
    let mut pending = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if !in_code {
            continue;
        }
        let line = line.split(" # ").next().unwrap_or("").trim();
        if !pending.is_empty() {
            pending.push(' ');
        }
        pending.push_str(line.trim_end_matches('\\').trim());
        if line.ends_with('\\') {
            continue;
        }
        if pending.starts_with("firedrill ") {
            out.push(std::mem::take(&mut pending));
        }
        pending.clear();
    }
    out
}

/// Splits a command line as a shell would, for the quoting runbooks use.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut started = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                started = true;
            }
            (None, c) if c.is_whitespace() => {
                if started || !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            (None, c) => word.push(c),
        }
    }
    if started || !word.is_empty() {
        out.push(word);
    }
    out
}

#[test]
fn every_runbook_command_parses() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("runbooks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    // The README's commands too: what a newcomer copies must work.
    files.push(root.join("README.md"));
    let mut checked = 0;
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        for line in commands(&text) {
            // `$(...)` is the shell's; any instant stands in for it.
            let line = line.replace(
                "\"$(date -u -d '-1 day' +%Y-%m-%dT%H:%M:%SZ)\"",
                "2027-01-01T00:00:00Z",
            );
            if let Err(e) = Cli::try_parse_from(words(&line)) {
                panic!("{}: `{line}` does not parse:\n{e}", path.display());
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 20,
        "only {checked} commands found in runbooks/ and the README"
    );
    // A mistyped flag is caught: the check is real.
    assert!(Cli::try_parse_from(words("firedrill stop --namespce x")).is_err());
}
