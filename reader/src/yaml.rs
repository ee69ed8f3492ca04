//! A YAML document as a tree whose every node knows where it was written.
//!
//! The drill file is read into this tree first and validated second, so that every problem can be
//! reported with its line and column, and all of them at once. Built on saphyr-parser's event
//! stream; anchors and aliases are resolved here.
//!
//! Every read is bounded ([`Limits`]): input size, nesting depth and the number of nodes built,
//! aliases counted as what they expand to. A few hundred bytes of nested aliases (a "billion
//! laughs") would otherwise expand to gigabytes; here they stop at the limit with an error that
//! names it. A cluster snapshot can be read item by item ([`stream_items`]), so that memory
//! follows what the caller keeps of each item, not the size of the file.

use std::collections::HashMap;
use std::io::BufRead;

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span};

/// How much a document may hold. Exceeding any bound is an error naming it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of input.
    pub max_bytes: u64,
    /// Collections open at once.
    pub max_depth: usize,
    /// Nodes built, each alias counted as the nodes it copies. With [`stream_items`], per item.
    pub max_nodes: usize,
    /// Bytes of scalar text built, each alias counted as the text it copies. With
    /// [`stream_items`], per item.
    pub max_text: usize,
    /// What the document is, with its article, for messages ("a drill file").
    pub document: &'static str,
    /// What [`parse_within`] says of an empty input.
    pub empty: &'static str,
}

impl Limits {
    /// A drill file: 30,000 drills take about 10 MiB and 400,000 nodes.
    pub const DRILL_FILE: Limits = Limits {
        max_bytes: 32 << 20,
        max_depth: 64,
        max_nodes: 1_000_000,
        max_text: 64 << 20,
        document: "a drill file",
        empty: "the file is empty; a drill file needs at least `drills:`",
    };
    /// A saved ledger (`kubectl get configmap firedrill-ledger-RUN -o yaml`): a drill file's
    /// bounds are ample for one run's changes.
    pub const LEDGER: Limits = Limits {
        document: "a ledger ConfigMap",
        empty: "the file is empty; expected a ledger ConfigMap (save one with `kubectl get configmap firedrill-ledger-RUN -o yaml`)",
        ..Limits::DRILL_FILE
    };
    /// A `kubectl get -A -o yaml` dump: 100,000 pods take about 500 MB; one object rarely
    /// holds more than a few thousand nodes.
    pub const SNAPSHOT: Limits = Limits {
        max_bytes: 4 << 30,
        max_depth: 64,
        max_nodes: 1_000_000,
        max_text: 64 << 20,
        document: "a cluster snapshot",
        empty: "the snapshot is empty",
    };
}

/// Where a node starts: 1-based line and column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mark {
    pub line: usize,
    pub column: usize,
}

impl Mark {
    fn of(span: &Span) -> Self {
        Mark {
            line: span.start.line(),
            column: span.start.col() + 1,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A scalar and whether it was written plain (unquoted), which decides if it may be a
    /// number, a boolean or null.
    Scalar {
        text: String,
        plain: bool,
    },
    Sequence(Vec<Node>),
    Mapping(Vec<(Node, Node)>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub value: Value,
    pub mark: Mark,
}

impl Node {
    /// A plain `~`, `null` or empty scalar.
    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar { text, plain: true }
            if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// What kind of value this is, for "expected X, found Y" messages.
    pub fn describe(&self) -> String {
        match &self.value {
            Value::Sequence(_) => "a list".to_owned(),
            Value::Mapping(_) => "a mapping".to_owned(),
            Value::Scalar { .. } if self.is_null() => "nothing (null)".to_owned(),
            Value::Scalar { text, .. } => format!("{text:?}"),
        }
    }
}

/// A YAML syntax error, or a limit exceeded, with its position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    pub mark: Mark,
    pub message: String,
}

/// What building (or copying) a subtree costs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Size {
    nodes: usize,
    text: usize,
}

impl Size {
    fn plus(self, other: Size) -> Size {
        Size {
            nodes: self.nodes.saturating_add(other.nodes),
            text: self.text.saturating_add(other.text),
        }
    }

    fn minus(self, other: Size) -> Size {
        Size {
            nodes: self.nodes - other.nodes,
            text: self.text - other.text,
        }
    }
}

enum Open {
    Sequence(Mark, usize, Size, Vec<Node>),
    Mapping(Mark, usize, Size, Vec<(Node, Node)>, Option<Node>),
}

/// Turns parser events into nodes, within limits.
struct Builder<'k> {
    limits: Limits,
    /// Anchored nodes and what each copy of them costs.
    anchors: HashMap<usize, (Node, Size)>,
    /// What the anchors hold, over the whole document: each anchor keeps a copy of its subtree,
    /// so nested anchors cost their subtrees again and again.
    anchored: Size,
    /// Whether any alias has been expanded, for the message.
    aliased: bool,
    stack: Vec<Open>,
    /// What has been built so far; sizes of subtrees are differences of it.
    built: Size,
    /// `built` when the current streamed item began: the limits apply from here.
    counted_from: Size,
    documents: usize,
    root: Option<Node>,
    /// When set, the items of the root mapping's list under this key are handed out one by one
    /// instead of being kept in the tree.
    streamed_key: Option<&'k str>,
}

/// What one event completed.
enum Completed {
    Nothing,
    /// An item of the streamed list.
    Item(Node),
}

impl<'k> Builder<'k> {
    fn new(limits: Limits, streamed_key: Option<&'k str>) -> Self {
        Builder {
            limits,
            anchors: HashMap::new(),
            anchored: Size::default(),
            aliased: false,
            stack: Vec::new(),
            built: Size::default(),
            counted_from: Size::default(),
            documents: 0,
            root: None,
            streamed_key,
        }
    }

    fn too_many(&self, mark: Mark, size: Size, what: &str) -> SyntaxError {
        let per = if self.streamed_key.is_some() && self.stack.len() >= 2 {
            " in one object"
        } else {
            ""
        };
        let (amount, unit) = if size.nodes > self.limits.max_nodes {
            (self.limits.max_nodes.to_string(), "YAML nodes")
        } else {
            (format!("{} MiB", self.limits.max_text >> 20), "of text")
        };
        let (note, fix) = if self.aliased {
            (
                " (aliases count as what they copy)",
                ": write the values out instead of nesting aliases",
            )
        } else {
            ("", "")
        };
        SyntaxError {
            mark,
            message: format!(
                "{what} more than {amount} {unit}{per}{note}; firedrill refuses it to bound memory{fix}"
            ),
        }
    }

    fn over(&self, size: Size) -> bool {
        size.nodes > self.limits.max_nodes || size.text > self.limits.max_text
    }

    /// Counts what was just built, failing past the limits.
    fn count(&mut self, size: Size, mark: Mark) -> Result<(), SyntaxError> {
        self.built = self.built.plus(size);
        let item = self.built.minus(self.counted_from);
        if self.over(item) {
            return Err(self.too_many(mark, item, "the document expands to"));
        }
        Ok(())
    }

    /// Whether a node finished now is an item of the streamed list.
    fn streaming_here(&self) -> bool {
        let Some(key) = self.streamed_key else {
            return false;
        };
        matches!(self.stack.as_slice(),
            [Open::Mapping(_, _, _, _, Some(k)), Open::Sequence(..)]
                if matches!(&k.value, Value::Scalar { text, .. } if text == key))
    }

    fn event(&mut self, event: Event, span: Span) -> Result<Completed, SyntaxError> {
        let mark = Mark::of(&span);
        let finished = match event {
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(SyntaxError {
                        mark,
                        message: format!(
                            "{} holds one YAML document; remove the second `---`",
                            self.limits.document
                        ),
                    });
                }
                None
            }
            Event::Scalar(text, style, anchor, _tag) => {
                let size = Size {
                    nodes: 1,
                    text: text.len(),
                };
                self.count(size, mark)?;
                Some((
                    Node {
                        value: Value::Scalar {
                            text: text.into_owned(),
                            plain: style == ScalarStyle::Plain,
                        },
                        mark,
                    },
                    anchor,
                    size,
                ))
            }
            Event::Alias(id) => {
                let Some((_, size)) = self.anchors.get(&id) else {
                    return Err(SyntaxError {
                        mark,
                        message: "alias to an unknown anchor (define `&name` before using `*name`)"
                            .to_owned(),
                    });
                };
                // Counted before copying, so a bomb stops before it allocates.
                let size = *size;
                self.aliased = true;
                self.count(size, mark)?;
                let value = self.anchors[&id].0.value.clone();
                Some((Node { value, mark }, 0, size))
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if self.stack.len() >= self.limits.max_depth {
                    return Err(SyntaxError {
                        mark,
                        message: format!(
                            "nested deeper than {} levels; firedrill refuses it to bound memory",
                            self.limits.max_depth
                        ),
                    });
                }
                self.count(Size { nodes: 1, text: 0 }, mark)?;
                let before = self.built.minus(Size { nodes: 1, text: 0 });
                self.stack
                    .push(if matches!(event, Event::SequenceStart(..)) {
                        Open::Sequence(mark, anchor, before, Vec::new())
                    } else {
                        Open::Mapping(mark, anchor, before, Vec::new(), None)
                    });
                None
            }
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Open::Sequence(mark, anchor, before, items)) => Some((
                    Node {
                        value: Value::Sequence(items),
                        mark,
                    },
                    anchor,
                    self.built.minus(before),
                )),
                Some(Open::Mapping(mark, anchor, before, entries, _)) => Some((
                    Node {
                        value: Value::Mapping(entries),
                        mark,
                    },
                    anchor,
                    self.built.minus(before),
                )),
                None => None,
            },
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => None,
        };
        let Some((node, anchor, size)) = finished else {
            return Ok(Completed::Nothing);
        };
        if anchor != 0 {
            // The anchor keeps its own copy: counted, over the whole document.
            self.anchored = self.anchored.plus(size);
            if self.over(self.anchored) {
                return Err(self.too_many(mark, self.anchored, "anchors hold"));
            }
            self.anchors.insert(anchor, (node.clone(), size));
        }
        if self.streaming_here() {
            self.counted_from = self.built;
            return Ok(Completed::Item(node));
        }
        match self.stack.last_mut() {
            Some(Open::Sequence(_, _, _, items)) => items.push(node),
            Some(Open::Mapping(_, _, _, entries, pending_key)) => match pending_key.take() {
                Some(key) => entries.push((key, node)),
                None => *pending_key = Some(node),
            },
            None => self.root = Some(node),
        }
        Ok(Completed::Nothing)
    }

    fn finish(self, empty: &str) -> Result<Node, SyntaxError> {
        self.root.ok_or(SyntaxError {
            mark: Mark { line: 1, column: 1 },
            message: empty.to_owned(),
        })
    }
}

fn scan_error(e: &ScanError) -> SyntaxError {
    let message = if e.info().contains("recursion limit") {
        // The parser's own bound on nested flow collections (`[[[...`), reached before ours.
        "nested too deeply (the YAML parser stops at 256 levels of [ ] and { }); firedrill refuses it to bound memory".to_owned()
    } else {
        format!("{} (the file is not valid YAML)", e.info())
    };
    SyntaxError {
        mark: Mark {
            line: e.marker().line(),
            column: e.marker().col() + 1,
        },
        message,
    }
}

fn too_large(max_bytes: u64, size: u64) -> SyntaxError {
    SyntaxError {
        mark: Mark { line: 1, column: 1 },
        message: format!(
            "the input is {size} bytes, over the limit of {} MiB; firedrill refuses it to bound memory",
            max_bytes >> 20
        ),
    }
}

/// Parses exactly one YAML document within the drill file's limits. An empty file is an error:
/// there is nothing to run.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    parse_within(text, Limits::DRILL_FILE)
}

/// Parses exactly one YAML document within `limits`.
pub fn parse_within(text: &str, limits: Limits) -> Result<Node, SyntaxError> {
    if text.len() as u64 > limits.max_bytes {
        return Err(too_large(limits.max_bytes, text.len() as u64));
    }
    let mut builder = Builder::new(limits, None);
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| scan_error(&e))?;
        builder.event(event, span)?;
    }
    builder.finish(limits.empty)
}

/// Reads one YAML document from `input`, handing each item of the root mapping's list under
/// `key` to `on_item` as soon as it is complete, and returns the root without those items.
/// The node limit applies to each item (and to the rest of the document); `on_item` errors are
/// the caller's to collect, so reading goes on.
pub fn stream_items<R: BufRead>(
    input: R,
    limits: Limits,
    key: &str,
    empty: &str,
    mut on_item: impl FnMut(Node),
) -> Result<Node, StreamError> {
    let mut chars = Chars::new(input, limits.max_bytes);
    let mut builder = Builder::new(limits, Some(key));
    let mut failure: Option<SyntaxError> = None;
    {
        let parser = Parser::new_from_iter(chars.by_ref());
        for event in parser {
            let result = event
                .map_err(|e| scan_error(&e))
                .and_then(|(event, span)| builder.event(event, span));
            match result {
                Ok(Completed::Item(node)) => on_item(node),
                Ok(Completed::Nothing) => {}
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
    }
    // A read error or an oversized input ends the character stream early; it is the real cause
    // of whatever the parser said about the truncated text.
    if let Some(e) = chars.error.take() {
        return Err(e);
    }
    if let Some(e) = failure {
        return Err(StreamError::Syntax(e));
    }
    builder.finish(empty).map_err(StreamError::Syntax)
}

/// Why a streamed document could not be read.
#[derive(Debug)]
pub enum StreamError {
    Io(std::io::Error),
    Syntax(SyntaxError),
}

/// The characters of a UTF-8 byte stream, read a buffer at a time, stopping (with an error
/// kept for later) at a read error, invalid UTF-8 or `max_bytes`.
struct Chars<R> {
    input: R,
    max_bytes: u64,
    read: u64,
    /// Decoded characters not yet handed out, and where the next one is.
    decoded: String,
    at: usize,
    /// Bytes of a character split across two reads.
    partial: Vec<u8>,
    error: Option<StreamError>,
}

impl<R: BufRead> Chars<R> {
    fn new(input: R, max_bytes: u64) -> Self {
        Chars {
            input,
            max_bytes,
            read: 0,
            decoded: String::new(),
            at: 0,
            partial: Vec::new(),
            error: None,
        }
    }

    /// Decodes the next buffer; false at the end or on an error.
    fn refill(&mut self) -> bool {
        loop {
            let chunk = match self.input.fill_buf() {
                Ok(chunk) => chunk,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.error = Some(StreamError::Io(e));
                    return false;
                }
            };
            if chunk.is_empty() {
                if !self.partial.is_empty() {
                    self.error = Some(StreamError::Syntax(SyntaxError {
                        mark: Mark { line: 1, column: 1 },
                        message: "not UTF-8 text (it ends inside a character); save it as UTF-8"
                            .to_owned(),
                    }));
                }
                return false;
            }
            let n = chunk.len();
            self.read += n as u64;
            if self.read > self.max_bytes {
                self.error = Some(StreamError::Syntax(too_large(self.max_bytes, self.read)));
                return false;
            }
            self.partial.extend_from_slice(chunk);
            self.input.consume(n);
            let valid = match std::str::from_utf8(&self.partial) {
                Ok(_) => self.partial.len(),
                Err(e) if e.error_len().is_none() => e.valid_up_to(),
                Err(e) => {
                    let at = self.read as usize - self.partial.len() + e.valid_up_to();
                    self.error = Some(StreamError::Syntax(SyntaxError {
                        mark: Mark { line: 1, column: 1 },
                        message: format!(
                            "not UTF-8 text (invalid byte at offset {at}); save it as UTF-8"
                        ),
                    }));
                    return false;
                }
            };
            let rest = self.partial.split_off(valid);
            self.decoded.clear();
            self.decoded
                .push_str(std::str::from_utf8(&self.partial).unwrap_or_default());
            self.partial = rest;
            self.at = 0;
            if !self.decoded.is_empty() {
                return true;
            }
        }
    }
}

impl<R: BufRead> Iterator for Chars<R> {
    type Item = char;

    fn next(&mut self) -> Option<char> {
        if self.at >= self.decoded.len() && (self.error.is_some() || !self.refill()) {
            return None;
        }
        let c = self.decoded[self.at..].chars().next()?;
        self.at += c.len_utf8();
        Some(c)
    }
}

/// The node as JSON, with YAML 1.2 core-schema typing for plain scalars (null, booleans,
/// integers, floats); quoted scalars stay strings. Used to read Kubernetes objects.
pub fn to_json(node: &Node) -> serde_json::Value {
    use serde_json::Value as J;
    match &node.value {
        Value::Scalar { text, plain: false } => J::String(text.clone()),
        Value::Scalar { text, plain: true } => match text.as_str() {
            "" | "~" | "null" | "Null" | "NULL" => J::Null,
            "true" | "True" | "TRUE" => J::Bool(true),
            "false" | "False" | "FALSE" => J::Bool(false),
            t => {
                if let Ok(i) = t.parse::<i64>() {
                    J::from(i)
                } else if let Some(f) = t
                    .parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite() && t.chars().any(|c| c.is_ascii_digit()))
                {
                    J::from(f)
                } else {
                    J::String(t.to_owned())
                }
            }
        },
        Value::Sequence(items) => J::Array(items.iter().map(to_json).collect()),
        Value::Mapping(entries) => J::Object(
            entries
                .iter()
                .map(|(k, v)| {
                    let key = match &k.value {
                        Value::Scalar { text, .. } => text.clone(),
                        _ => String::new(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
    }
}

/// Writes a JSON value as block-style YAML, for objects people read (`run --render`). Strings are
/// written plain when that is unambiguous and double-quoted (JSON escaping, valid YAML) otherwise.
pub fn emit(value: &serde_json::Value) -> String {
    let mut out = String::new();
    emit_into(&mut out, value, 0, false);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

fn plain_is_safe(text: &str) -> bool {
    let reserved = [
        "true", "false", "null", "yes", "no", "on", "off", "y", "n", "~", "True", "False", "Null",
        "NULL", "TRUE", "FALSE", "Yes", "No", "On", "Off", "YES", "NO", "ON", "OFF",
    ];
    !text.is_empty()
        && !reserved.contains(&text)
        && text.parse::<f64>().is_err()
        && text
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '/' || c == '_')
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ':' | '='))
        && !text.ends_with(':')
        && !text.contains(": ")
}

fn scalar(value: &serde_json::Value) -> Option<String> {
    use serde_json::Value as J;
    match value {
        J::Null => Some("null".into()),
        J::Bool(b) => Some(b.to_string()),
        J::Number(n) => Some(n.to_string()),
        J::String(s) if plain_is_safe(s) => Some(s.clone()),
        J::String(s) => Some(serde_json::Value::String(s.clone()).to_string()),
        J::Array(a) if a.is_empty() => Some("[]".into()),
        J::Object(o) if o.is_empty() => Some("{}".into()),
        _ => None,
    }
}

fn emit_into(out: &mut String, value: &serde_json::Value, indent: usize, in_list: bool) {
    use serde_json::Value as J;
    let pad = " ".repeat(indent);
    match value {
        J::Object(map) if !map.is_empty() => {
            for (i, (key, v)) in map.iter().enumerate() {
                // The first key of a list item shares the line with its dash.
                if !(in_list && i == 0) {
                    out.push_str(&pad);
                }
                let key = scalar(&J::String(key.clone())).unwrap_or_default();
                match scalar(v) {
                    Some(text) => out.push_str(&format!("{key}: {text}\n")),
                    None => {
                        out.push_str(&format!("{key}:\n"));
                        let child = if v.is_array() { indent } else { indent + 2 };
                        emit_into(out, v, child, false);
                    }
                }
            }
        }
        J::Array(items) if !items.is_empty() => {
            for item in items {
                out.push_str(&format!("{pad}- "));
                match scalar(item) {
                    Some(text) => out.push_str(&format!("{text}\n")),
                    None if item.is_object() => emit_into(out, item, indent + 2, true),
                    None => {
                        out.push('\n');
                        emit_into(out, item, indent + 2, false);
                    }
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar(other).unwrap_or_default())),
    }
}

/// The node at `keys` (mapping keys, or list indexes) under `node`, or the deepest one found.
pub fn locate<'n>(node: &'n Node, keys: &[&str]) -> &'n Node {
    let mut at = node;
    for key in keys {
        let next = match &at.value {
            Value::Mapping(entries) => entries
                .iter()
                .find(|(k, _)| matches!(&k.value, Value::Scalar { text, .. } if text == key))
                .map(|(_, v)| v),
            Value::Sequence(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
            Value::Scalar { .. } => None,
        };
        match next {
            Some(next) => at = next,
            None => break,
        }
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(node: &Node) -> &str {
        match &node.value {
            Value::Scalar { text, .. } => text,
            other => panic!("not a scalar: {other:?}"),
        }
    }

    #[test]
    fn nodes_carry_their_positions() {
        let doc = parse("a: 1\nlist:\n  - x\n  - 'y'\nmap: {k: v}\n").unwrap();
        let Value::Mapping(entries) = &doc.value else {
            panic!()
        };
        assert_eq!(scalar(&entries[0].0), "a");
        assert_eq!(entries[0].1.mark, Mark { line: 1, column: 4 });
        let Value::Sequence(items) = &entries[1].1.value else {
            panic!()
        };
        assert_eq!(items[1].mark, Mark { line: 4, column: 5 });
        assert_eq!(
            items[1].value,
            Value::Scalar {
                text: "y".into(),
                plain: false
            }
        );
        assert_eq!(entries[2].1.mark, Mark { line: 5, column: 6 });
    }

    #[test]
    fn aliases_resolve_to_their_anchor() {
        let doc = parse("base: &b {x: 1}\ncopy: *b\n").unwrap();
        let Value::Mapping(entries) = &doc.value else {
            panic!()
        };
        assert_eq!(entries[0].1.value, entries[1].1.value);
        assert_eq!(entries[1].1.mark.line, 2);
    }

    #[test]
    fn emitted_yaml_reads_back_as_the_same_value() {
        let value = serde_json::json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": { "name": "a-b", "labels": { "firedrill.io/run": "x-1" }, "annotations": {} },
            "spec": {
                "backoffLimit": 0,
                "args": ["execute", "--config", "/etc/firedrill/firedrill.yaml", "true", "", "a: b", "10"],
                "nested": [[1, 2], [], { "k": null }],
                "containers": [{ "name": "executor", "env": [{ "name": "A", "value": "2026-11-23T10:00:00Z" }] }],
                "quote": "say \"hi\"\nthere",
                "flag": true,
                "ratio": 0.5,
            }
        });
        let text = emit(&value);
        assert!(
            text.starts_with("apiVersion: batch/v1\nkind: Job\n"),
            "{text}"
        );
        assert_eq!(to_json(&parse(&text).unwrap()), value, "{text}");
    }

    #[test]
    fn syntax_errors_and_empty_files_are_positioned() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.mark.line >= 1, "{err:?}");
        assert!(parse("").unwrap_err().message.contains("empty"));
        assert!(parse("a: 1\n---\nb: 2\n")
            .unwrap_err()
            .message
            .contains("one YAML document"));
        let err = parse("a: *nope\n").unwrap_err();
        assert_eq!(err.mark.line, 1);
    }
}
