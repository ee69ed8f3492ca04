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
