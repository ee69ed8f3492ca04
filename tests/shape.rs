//! The tree shows the architecture (#23, ARCHITECTURE.md): measured on the source itself.
//!
//! Non-test code only (`#[cfg(test)]` items, `tests/` and `benches/` left out), with comments and
//! the text of string and character literals blanked before anything is counted, this test
//! measures what the issue asks of the tree and prints it (`cargo test -p firedrill-tests --test
//! shape -- --nocapture`):
//!
//! - the modules each crate's modules import (`crate::x`, and `firedrill_*` crates), the import
//!   circles among them, and the arrows that point up ARCHITECTURE.md's layers;
//! - every file's non-test lines, and the longest non-test functions;
//! - every `Result<_, String>` in non-test code, each with a comment above its function saying why
//!   a message for a person is the whole point.
//!
//! Each rule is a ratchet: what breaks it today is listed below by name, a new breach fails, and
//! so does a listed one that no longer breaks it (so the lists only shrink).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

const CRATES: &[(&str, &str)] = &[
    ("runner", "firedrill"),
    ("safety", "firedrill_safety"),
    ("experiments", "firedrill_experiments"),
    ("rollback", "firedrill_rollback"),
    ("reader", "firedrill_reader"),
];

/// Folders of `runner/src` that group modules by concern (ARCHITECTURE.md): a file in one belongs
/// to the module one level further down (`firedrill::cluster::kubernetes`), its `mod.rs` to the
/// folder.
const GROUPS: &[&str] = &["cluster", "drill", "history", "schedule"];

/// ARCHITECTURE.md's layers: a module may import its own layer and those below, never one above.
/// Every module is listed (a new one must be placed, or the test fails).
const LAYERS: &[(usize, &[&str])] = &[
    (
        0,
        &[
            "firedrill_safety",
            "firedrill_safety::capacity",
            "firedrill_safety::cluster",
            "firedrill_safety::glob",
            "firedrill_safety::nodes",
            "firedrill_safety::policy",
            "firedrill_safety::quantity",
            "firedrill_safety::scenario",
            "firedrill_safety::selector",
            "firedrill_safety::target",
            "firedrill_safety::verdict",
            "firedrill_rollback",
            "firedrill_rollback::error",
            "firedrill_rollback::ledger",
            "firedrill_rollback::object",
            "firedrill_rollback::preview",
            "firedrill_rollback::replay",
            "firedrill_rollback::scope",
            "firedrill_rollback::seal",
            "firedrill_rollback::undo",
            "firedrill_reader",
            "firedrill_reader::duration",
            "firedrill_reader::name",
            "firedrill_reader::read",
            "firedrill_reader::yaml",
        ],
    ),
    (
        1,
        &[
            "firedrill_experiments",
            "firedrill_experiments::choose",
            "firedrill_experiments::container",
            "firedrill_experiments::degrade",
            "firedrill_experiments::dependency",
            "firedrill_experiments::fault",
            "firedrill_experiments::kind",
            "firedrill_experiments::node",
            "firedrill_experiments::partition",
            "firedrill_experiments::plan",
            "firedrill_experiments::pod",
            "firedrill_experiments::region",
            "firedrill_experiments::scenario",
            "firedrill_experiments::values",
        ],
    ),
    (
        2,
        &[
            "firedrill::output",
            "firedrill::run",
            "firedrill::schedule",
            "firedrill::schedule::blackout",
            "firedrill::schedule::calendar",
            "firedrill::schedule::cron",
            "firedrill::schedule::zone",
            "firedrill::drill::gate",
            "firedrill::drill::faultproxy",
            "firedrill::drill::helper_report",
        ],
    ),
    (3, &["firedrill::config"]),
    (
        4,
        &[
            "firedrill::cluster",
            "firedrill::cluster::access",
            "firedrill::cluster::job",
            "firedrill::cluster::kubernetes",
            "firedrill::cluster::ledger",
            "firedrill::cluster::ledger_key",
            "firedrill::cluster::route53",
            "firedrill::cluster::skips",
            "firedrill::cluster::snapshot",
            "firedrill::drill::effect",
            "firedrill::drill::region",
            "firedrill::history",
            "firedrill::history::metrics",
            "firedrill::history::pushgateway",
            "firedrill::history::store",
        ],
    ),
    (
        5,
        &[
            "firedrill::check",
            "firedrill::drill",
            "firedrill::drill::executor",
            "firedrill::drill::failover",
            "firedrill::drill::lifecycle",
            "firedrill::drill::record",
            "firedrill::drill::scenario",
            "firedrill::drill::state",
            "firedrill::history::report",
            "firedrill::schedule::notify",
            "firedrill::schedule::scheduler",
            "firedrill::schedule::upcoming",
        ],
    ),
    (6, &["firedrill", "firedrill::cli"]),
];

/// Longest a non-test function may be without a comment above it saying why it is long (one
/// that contains "long because").
const LONGEST_FUNCTION: usize = 120;
/// Longest a file's non-test code may be.
const LONGEST_FILE: usize = 1000;

/// Files over [`LONGEST_FILE`] non-test lines today (ratchet).
const KNOWN_LONG_FILES: &[&str] = &[];

/// Functions over [`LONGEST_FUNCTION`] lines without a reason today (ratchet): `path::name`.
const KNOWN_LONG_FUNCTIONS: &[&str] = &[];

/// Import circles today (ratchet): each as its modules, sorted, joined by " ".
const KNOWN_CIRCLES: &[&str] = &[];

/// Most `Result<_, String>` allowed in non-test code (ratchet; the issue's target is under 15).
/// Each must also say why: see [`JUSTIFIED`].
const MOST_STRING_RESULTS: usize = 13;

/// What a comment above a function with a `Result<_, String>` must contain: the string is there
/// because a message for a person is the whole point (clap prints it, the config reader places it
/// at file:line:col), not because nobody typed the error.
const JUSTIFIED: &str = "message for a person";

/// One source file, as lines of code with comments and literal text blanked.
struct Source {
    /// Relative to the workspace root.
    path: String,
    /// `firedrill_experiments::plan`-style: the crate and the top module the file belongs to.
    module: String,
    /// Every line, blanked; `None` for lines of test-only items.
    code: Vec<Option<String>>,
    /// The original lines (for comments).
    lines: Vec<String>,
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The text with comments and the contents of string and char literals replaced by spaces
/// (newlines kept), so braces, angle brackets and `fn` are only counted in code.
fn blank(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let keep_newlines = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(keep_newlines(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r'
            && (next == Some('"') || next == Some('#'))
            && !chars
                .get(i.wrapping_sub(1))
                .is_some_and(|p| p.is_alphanumeric() || *p == '_')
        {
            // A raw string: r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            out.push_str(&" ".repeat(j - i + 1));
            i = j + 1;
            loop {
                if i >= chars.len() {
                    break;
                }
                if chars[i] == '"' && (0..hashes).all(|h| chars.get(i + 1 + h) == Some(&'#')) {
                    out.push_str(&" ".repeat(1 + hashes));
                    i += 1 + hashes;
                    break;
                }
                out.push(keep_newlines(chars[i]));
                i += 1;
            }
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < chars.len() {
                    out.push(keep_newlines(chars[i]));
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{..}'), or a lifetime ('a), which is left alone.
            let close = if next == Some('\\') {
                chars[i + 2..]
                    .iter()
                    .position(|&c| c == '\'')
                    .map(|p| i + 2 + p)
            } else if chars.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match close {
                Some(end) => {
                    out.push_str(&" ".repeat(end - i + 1));
                    i = end + 1;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn depth_change(line: &str) -> i64 {
    line.chars()
        .map(|c| match c {
            '{' => 1,
            '}' => -1,
            _ => 0,
        })
        .sum()
}

/// The blanked lines with the lines of `#[cfg(test)]` items set to `None`.
fn without_tests(blanked: &str) -> Vec<Option<String>> {
    let mut out = Vec::new();
    let mut skipping: Option<(i64, bool)> = None; // (depth it started at, a block was opened)
    let mut depth = 0i64;
    for line in blanked.lines() {
        let before = depth;
        depth += depth_change(line);
        if let Some((start, opened)) = skipping.as_mut() {
            out.push(None);
            if depth > *start || line.contains('{') {
                *opened = true;
            }
            if (*opened && depth <= *start) || (!*opened && line.trim_end().ends_with(';')) {
                skipping = None;
            }
            continue;
        }
        if line.trim_start().starts_with("#[cfg(test)]") {
            skipping = Some((before, depth > before));
            out.push(None);
            continue;
        }
        out.push(Some(line.to_owned()));
    }
    out
}

fn sources() -> Vec<Source> {
    let mut out = Vec::new();
    for (dir, name) in CRATES {
        let src = root().join(dir).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file).expect("a source file");
            let relative = file.strip_prefix(&src).unwrap();
            let top = relative
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_owned();
            let top = if matches!(top.as_str(), "lib" | "main") {
                String::new()
            } else if *dir == "runner" && GROUPS.contains(&top.as_str()) {
                match relative.components().nth(1) {
                    Some(c) if c.as_os_str() != "mod.rs" => format!(
                        "{top}::{}",
                        c.as_os_str().to_string_lossy().trim_end_matches(".rs")
                    ),
                    _ => top,
                }
            } else {
                top
            };
            let path = format!("{dir}/src/{}", relative.display());
            // A file named `tests.rs` is a test module by the workspace's convention.
            let blanked = blank(&text);
            let code = if relative.file_name().is_some_and(|f| f == "tests.rs") {
                vec![None; blanked.lines().count()]
            } else {
                without_tests(&blanked)
            };
            out.push(Source {
                path,
                module: if top.is_empty() {
                    (*name).to_owned()
                } else {
                    format!("{name}::{top}")
                },
                code,
                lines: text.lines().map(str::to_owned).collect(),
            });
        }
    }
    out
}

fn code_lines(source: &Source) -> usize {
    source
        .code
        .iter()
        .flatten()
        .filter(|l| !l.trim().is_empty())
        .count()
}

/// A non-test function: where it is, its name, its length in lines, whether a comment above
/// says why it is long.
struct Function {
    path: String,
    name: String,
    lines: usize,
    explained: bool,
}

fn functions(source: &Source) -> Vec<Function> {
    let mut out = Vec::new();
    for (start, line) in source.code.iter().enumerate() {
        let Some(line) = line else { continue };
        let Some(at) = find_word(line, "fn") else {
            continue;
        };
        let name: String = line[at + 2..]
            .trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() {
            continue; // `fn(` as a type
        }
        // The body: from the first `{` after the signature to the brace that closes it; a `;`
        // first means a declaration without one.
        let mut depth = 0i64;
        let mut opened = false;
        let mut end = None;
        'lines: for (n, l) in source.code.iter().enumerate().skip(start) {
            let Some(l) = l else { break };
            let text = if n == start { &l[at..] } else { &l[..] };
            for c in text.chars() {
                match c {
                    ';' if !opened && depth == 0 => break 'lines,
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => {
                        depth -= 1;
                        if opened && depth == 0 {
                            end = Some(n);
                            break 'lines;
                        }
                    }
                    _ => {}
                }
            }
        }
        let Some(end) = end else { continue };
        let explained = source.lines[..start]
            .iter()
            .rev()
            .take_while(|l| {
                let t = l.trim_start();
                t.starts_with("//") || t.starts_with("#[")
            })
            .any(|l| l.to_lowercase().contains("long because"));
        out.push(Function {
            path: source.path.clone(),
            name,
            lines: end - start + 1,
            explained,
        });
    }
    out
}

fn find_word(line: &str, word: &str) -> Option<usize> {
    let bytes = line.as_bytes();
    let mut from = 0;
    while let Some(p) = line[from..].find(word) {
        let at = from + p;
        let before = at.checked_sub(1).map(|i| bytes[i]);
        let after = bytes.get(at + word.len()).copied();
        let boundary = |b: Option<u8>| b.is_none_or(|b| !(b.is_ascii_alphanumeric() || b == b'_'));
        if boundary(before) && boundary(after) {
            return Some(at);
        }
        from = at + word.len();
    }
    None
}

/// Every `Result<T, String>` in non-test code, as `path:line`, followed by ` (unjustified)` when
/// no comment above its function says why (see [`justified`]).
fn string_results(source: &Source) -> Vec<String> {
    let mut out = Vec::new();
    for (n, line) in source.code.iter().enumerate() {
        let Some(line) = line else { continue };
        let mut from = 0;
        while let Some(p) = line[from..].find("Result<") {
            let open = from + p + "Result".len();
            from = open + 1;
            let mut depth = 0;
            let mut comma = None;
            let mut close = None;
            for (i, c) in line[open..].char_indices() {
                match c {
                    '<' | '(' | '[' => depth += 1,
                    '>' | ')' | ']' => {
                        depth -= 1;
                        if depth == 0 {
                            close = Some(open + i);
                            break;
                        }
                    }
                    ',' if depth == 1 => comma = Some(open + i),
                    _ => {}
                }
            }
            if let (Some(comma), Some(close)) = (comma, close) {
                if line[comma + 1..close].trim() == "String" {
                    let why = if justified(source, n) {
                        ""
                    } else {
                        " (unjustified)"
                    };
                    out.push(format!("{}:{}{why}", source.path, n + 1));
                }
            }
        }
    }
    out
}

/// Whether the `Result<_, String>` on line `n` (0-based) says why: the comments and attributes
/// right above the function it belongs to (the nearest `fn` at or above it) contain [`JUSTIFIED`].
fn justified(source: &Source, n: usize) -> bool {
    let Some(start) = (0..=n).rev().find(|&i| {
        source.code[i]
            .as_deref()
            .is_some_and(|l| find_word(l, "fn").is_some())
    }) else {
        return false;
    };
    source.lines[..start]
        .iter()
        .rev()
        .take_while(|l| {
            let t = l.trim_start();
            t.starts_with("//") || t.starts_with("#[")
        })
        .any(|l| l.contains(JUSTIFIED))
}

/// The modules of this workspace a file's non-test code names: `crate::x` (within its crate) and
/// `firedrill_y::x` (another crate).
fn imports(source: &Source) -> BTreeSet<String> {
    let own = source.module.split("::").next().unwrap();
    let mut out = BTreeSet::new();
    for line in source.code.iter().flatten() {
        for (prefix, krate) in std::iter::once(("crate::", own.to_owned())).chain(
            CRATES
                .iter()
                .map(|(_, name)| (*name, (*name).to_owned()))
                .filter(|(name, _)| *name != own),
        ) {
            let mut from = 0;
            while let Some(p) = line[from..].find(prefix) {
                let at = from + p;
                from = at + prefix.len();
                if at > 0 {
                    let b = line.as_bytes()[at - 1];
                    if b.is_ascii_alphanumeric() || b == b'_' {
                        continue;
                    }
                }
                // `firedrill` is not `firedrill_safety`.
                if line[from..]
                    .bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
                {
                    continue;
                }
                let rest = line[from..].trim_start_matches("::");
                let next: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                let module = if next.is_empty() {
                    krate.clone()
                } else if krate == "firedrill" && GROUPS.contains(&next.as_str()) {
                    // A module of the folder, or the folder's own `mod.rs`.
                    let inner: String = rest[next.len()..]
                        .strip_prefix("::")
                        .unwrap_or("")
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    let folder = root().join("runner/src").join(&next);
                    if !inner.is_empty()
                        && (folder.join(format!("{inner}.rs")).is_file()
                            || folder.join(&inner).join("mod.rs").is_file())
                    {
                        format!("{krate}::{next}::{inner}")
                    } else {
                        format!("{krate}::{next}")
                    }
                } else {
                    format!("{krate}::{next}")
                };
                out.insert(module);
            }
        }
    }
    out
}

/// Strongly connected components of more than one module (Tarjan).
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.graph.contains_key(w) {
                continue;
            }
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.found.push(component);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.found.sort();
    s.found
}

/// Checks a ratchet: what breaks the rule now equals the known list.
fn ratchet(rule: &str, now: &BTreeSet<String>, known: &[&str], problems: &mut Vec<String>) {
    let known: BTreeSet<String> = known.iter().map(|s| (*s).to_owned()).collect();
    for new in now.difference(&known) {
        problems.push(format!("{rule}: {new} (new)"));
    }
    for fixed in known.difference(now) {
        problems.push(format!(
            "{rule}: {fixed} is listed but no longer breaks it: take it off the list in tests/shape.rs"
        ));
    }
}

#[test]
fn the_tree_keeps_its_shape() {
    let sources = sources();
    let mut problems = Vec::new();

    // Imports between modules, and their circles.
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for source in &sources {
        let node = graph.entry(source.module.clone()).or_default();
        for import in imports(source) {
            if import != source.module {
                node.insert(import);
            }
        }
    }
    let found = circles(&graph);
    println!("import circles: {}", found.len());
    for circle in &found {
        println!("  {}", circle.join(" "));
    }
    let found: BTreeSet<String> = found.iter().map(|c| c.join(" ")).collect();
    ratchet("import circle", &found, KNOWN_CIRCLES, &mut problems);

    // Arrows up the layers.
    let layer: BTreeMap<&str, usize> = LAYERS
        .iter()
        .flat_map(|(n, modules)| modules.iter().map(move |m| (*m, *n)))
        .collect();
    let mut upward = Vec::new();
    // Another crate's items (`firedrill_rollback::Key`) are in that crate's layer.
    let layer_of = |module: &str| {
        layer.get(module).copied().or_else(|| {
            let (krate, _) = module.split_once("::")?;
            (krate != "firedrill").then(|| layer.get(krate).copied())?
        })
    };
    for (from, to) in graph.iter() {
        let Some(own) = layer_of(from) else {
            problems.push(format!(
                "module {from} is in no layer: place it in LAYERS (tests/shape.rs) and ARCHITECTURE.md"
            ));
            continue;
        };
        for target in to {
            match layer_of(target) {
                Some(theirs) if theirs > own => upward.push(format!("{from} -> {target}")),
                Some(_) => {}
                None => problems.push(format!(
                    "module {target} (imported by {from}) is in no layer: place it in LAYERS"
                )),
            }
        }
    }
    println!("arrows up the layers: {}", upward.len());
    for arrow in &upward {
        println!("  {arrow}");
        problems.push(format!("an import points up the layers: {arrow}"));
    }

    // Files.
    let mut files: Vec<(usize, &str)> = sources
        .iter()
        .map(|s| (code_lines(s), s.path.as_str()))
        .collect();
    files.sort_by(|a, b| b.cmp(a));
    println!("longest files (non-test code lines):");
    for (lines, path) in files.iter().take(10) {
        println!("  {lines:>5}  {path}");
    }
    let long_files: BTreeSet<String> = files
        .iter()
        .filter(|(lines, _)| *lines > LONGEST_FILE)
        .map(|(_, path)| (*path).to_owned())
        .collect();
    ratchet(
        &format!("file over {LONGEST_FILE} lines of non-test code"),
        &long_files,
        KNOWN_LONG_FILES,
        &mut problems,
    );

    // Functions.
    let mut all: Vec<Function> = sources.iter().flat_map(functions).collect();
    all.sort_by_key(|f| std::cmp::Reverse(f.lines));
    println!("longest functions (non-test):");
    for f in all.iter().take(10) {
        let why = if f.explained { "  (says why)" } else { "" };
        println!("  {:>5}  {}::{}{why}", f.lines, f.path, f.name);
    }
    let long_functions: BTreeSet<String> = all
        .iter()
        .filter(|f| f.lines > LONGEST_FUNCTION && !f.explained)
        .map(|f| format!("{}::{}", f.path, f.name))
        .collect();
    ratchet(
        &format!("function over {LONGEST_FUNCTION} lines without a comment saying why it is long"),
        &long_functions,
        KNOWN_LONG_FUNCTIONS,
        &mut problems,
    );

    // String errors.
    let strings: Vec<String> = sources.iter().flat_map(string_results).collect();
    println!("Result<_, String> in non-test code: {}", strings.len());
    for s in &strings {
        println!("  {s}");
    }
    if strings.len() > MOST_STRING_RESULTS {
        problems.push(format!(
            "{} Result<_, String> in non-test code, more than {MOST_STRING_RESULTS}",
            strings.len()
        ));
    }
    let unjustified: Vec<&String> = strings
        .iter()
        .filter(|s| s.ends_with("(unjustified)"))
        .collect();
    if !unjustified.is_empty() {
        problems.push(format!(
            "Result<_, String> without a comment above its function saying why a {JUSTIFIED} is the whole point (or type the error): {}",
            unjustified.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        ));
    }
    println!("executor.rs: {} non-test lines", {
        sources
            .iter()
            .find(|s| s.path == "runner/src/drill/executor.rs")
            .map_or(0, code_lines)
    });

    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn blanking_keeps_only_code() {
    let text =
        "let a = \"{ // not code\"; // {\nlet b = '{'; let c: &'static str = r#\"}\"#; /* { */ x\n";
    let blanked = blank(text);
    assert_eq!(depth_change(&blanked), 0, "{blanked}");
    assert!(blanked.contains("'static"));
    assert!(blanked.contains(" x"));
    assert_eq!(blanked.lines().count(), 2);
}

#[test]
fn test_items_are_left_out() {
    let text = "fn a() {}\n#[cfg(test)]\nmod tests {\n    fn b() {\n    }\n}\nfn c() {}\n#[cfg(test)]\nuse x;\nfn d() {}\n";
    let code = without_tests(&blank(text));
    let kept: Vec<&str> = code.iter().flatten().map(|s| s.trim()).collect();
    assert_eq!(kept, ["fn a() {}", "fn c() {}", "fn d() {}"]);
}

#[test]
fn a_string_error_says_why() {
    let text = "// Result<_, String>: the message for a person is the whole point: clap prints it.\n#[inline]\nfn a(s: &str)\n    -> Result<u8, String> {\n    todo!()\n}\n/// Parses.\nfn b() -> Result<u8, String> {\n    todo!()\n}\n";
    let source = Source {
        path: "x.rs".to_owned(),
        module: "x".to_owned(),
        code: without_tests(&blank(text)),
        lines: text.lines().map(str::to_owned).collect(),
    };
    assert_eq!(string_results(&source), ["x.rs:4", "x.rs:8 (unjustified)"]);
}
