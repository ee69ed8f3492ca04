//! A YAML document as a tree whose every node knows where it was written.
//!
//! The drill file is read into this tree first and validated second, so that every problem can be
//! reported with its line and column, and all of them at once. Built on saphyr-parser's event
//! stream; anchors and aliases are resolved here.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

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

/// A YAML syntax error with its position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    pub mark: Mark,
    pub message: String,
}

enum Open {
    Sequence(Mark, usize, Vec<Node>),
    Mapping(Mark, usize, Vec<(Node, Node)>, Option<Node>),
}

/// Parses exactly one YAML document. An empty file is an error: there is nothing to run.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut stack: Vec<Open> = Vec::new();
    let mut documents = 0;
    let mut root: Option<Node> = None;

    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| SyntaxError {
            mark: Mark {
                line: e.marker().line(),
                column: e.marker().col() + 1,
            },
            message: format!("{} (the file is not valid YAML)", e.info()),
        })?;
        let mark = Mark::of(&span);
        let finished = match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(SyntaxError {
                        mark,
                        message: "a drill file holds one YAML document; remove the second `---`"
                            .to_owned(),
                    });
                }
                None
            }
            Event::Scalar(text, style, anchor, _tag) => Some((
                Node {
                    value: Value::Scalar {
                        text: text.into_owned(),
                        plain: style == ScalarStyle::Plain,
                    },
                    mark,
                },
                anchor,
            )),
            Event::Alias(id) => match anchors.get(&id) {
                Some(node) => Some((
                    Node {
                        value: node.value.clone(),
                        mark,
                    },
                    0,
                )),
                None => {
                    return Err(SyntaxError {
                        mark,
                        message: "alias to an unknown anchor (define `&name` before using `*name`)"
                            .to_owned(),
                    })
                }
            },
            Event::SequenceStart(anchor, _) => {
                stack.push(Open::Sequence(mark, anchor, Vec::new()));
                None
            }
            Event::MappingStart(anchor, _) => {
                stack.push(Open::Mapping(mark, anchor, Vec::new(), None));
                None
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Open::Sequence(mark, anchor, items)) => Some((
                    Node {
                        value: Value::Sequence(items),
                        mark,
                    },
                    anchor,
                )),
                Some(Open::Mapping(mark, anchor, entries, _)) => Some((
                    Node {
                        value: Value::Mapping(entries),
                        mark,
                    },
                    anchor,
                )),
                None => None,
            },
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => None,
        };
        let Some((node, anchor)) = finished else {
            continue;
        };
        if anchor != 0 {
            anchors.insert(anchor, node.clone());
        }
        match stack.last_mut() {
            Some(Open::Sequence(_, _, items)) => items.push(node),
            Some(Open::Mapping(_, _, entries, pending_key)) => match pending_key.take() {
                Some(key) => entries.push((key, node)),
                None => *pending_key = Some(node),
            },
            None => root = Some(node),
        }
    }
    root.ok_or(SyntaxError {
        mark: Mark { line: 1, column: 1 },
        message: "the file is empty; a drill file needs at least `drills:`".to_owned(),
    })
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
