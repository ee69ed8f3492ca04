//! Typed reads from the positioned YAML tree. Every read that fails records a diagnostic and
//! returns `None`, so validation goes on and reports every problem in the file at once.

use std::fmt;

use crate::yaml::{Mark, Node, Value};

/// One problem in a drill file: where, which key, what is wrong and what is allowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub mark: Mark,
    pub path: String,
    pub message: String,
}

/// Every problem found in one file, in the order they appear in it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct Diagnostics {
    pub file: String,
    pub items: Vec<Diagnostic>,
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.items.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(
                f,
                "{}:{}:{}: {}: {}",
                self.file, d.mark.line, d.mark.column, d.path, d.message
            )?;
        }
        Ok(())
    }
}

/// Collects diagnostics while the file is read.
#[derive(Default)]
pub struct Reader {
    pub diagnostics: Vec<Diagnostic>,
}

pub fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

pub fn item(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

/// The keys of one mapping, checked against the keys allowed there.
pub struct Fields<'a> {
    entries: Vec<(&'a str, &'a Node)>,
    pub mark: Mark,
    pub path: String,
}

impl<'a> Fields<'a> {
    /// The value of `key`, or `None` when it is absent or written as null.
    pub fn get(&self, key: &str) -> Option<&'a Node> {
        self.entries
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
            .filter(|v| !v.is_null())
    }

    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub fn path_of(&self, key: &str) -> String {
        child(&self.path, key)
    }
}

impl Reader {
    pub fn error(&mut self, mark: Mark, path: impl Into<String>, message: impl Into<String>) {
        self.diagnostics.push(Diagnostic {
            mark,
            path: path.into(),
            message: message.into(),
        });
    }

    /// Reports that `node` is not what was expected ("expected {what}, found ..."); `None`, for
    /// the reader to return.
    pub fn mismatch<T>(&mut self, node: &Node, path: &str, what: &str) -> Option<T> {
        self.error(
            node.mark,
            path,
            format!("expected {what}, found {}", node.describe()),
        );
        None
    }

    /// Reads a mapping whose keys must be among `allowed`. Unknown and repeated keys are reported
    /// (with the closest allowed key as a suggestion); the known ones are returned.
    pub fn fields<'a>(
        &mut self,
        node: &'a Node,
        path: &str,
        allowed: &[&str],
    ) -> Option<Fields<'a>> {
        let Value::Mapping(entries) = &node.value else {
            let path = if path.is_empty() { "(top level)" } else { path };
            let what = format!("a mapping with keys {}", allowed.join(", "));
            return self.mismatch(node, path, &what);
        };
        let mut known: Vec<(&'a str, &'a Node)> = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            let Value::Scalar { text, .. } = &key.value else {
                self.error(
                    key.mark,
                    path,
                    "a key must be a plain name, not a list or mapping",
                );
                continue;
            };
            let key_path = child(path, text);
            if !allowed.contains(&text.as_str()) {
                let hint = suggestion(text, allowed)
                    .map(|s| format!("did you mean `{s}`? "))
                    .unwrap_or_default();
                self.error(
                    key.mark,
                    key_path,
                    format!("unknown key ({hint}allowed here: {})", allowed.join(", ")),
                );
            } else if known.iter().any(|(k, _)| k == text) {
                self.error(
                    key.mark,
                    key_path,
                    "key given twice (keep one; YAML would silently use the last)",
                );
            } else {
                known.push((text.as_str(), value));
            }
        }
        Some(Fields {
            entries: known,
            mark: node.mark,
            path: path.to_owned(),
        })
    }

    /// A key that must be present.
    pub fn required<'a>(&mut self, fields: &Fields<'a>, key: &str, what: &str) -> Option<&'a Node> {
        let found = fields.get(key);
        if found.is_none() {
            self.error(
                fields.mark,
                fields.path_of(key),
                format!("missing (required: {what})"),
            );
        }
        found
    }

    /// A scalar's text; `what` names what is allowed, for the error.
    pub fn text<'a>(&mut self, node: &'a Node, path: &str, what: &str) -> Option<&'a str> {
        match &node.value {
            Value::Scalar { text, .. } if !node.is_null() => Some(text),
            _ => self.mismatch(node, path, what),
        }
    }

    /// A scalar parsed by `parse`, whose error message says what is wrong and what is allowed.
    pub fn parsed<T, E: std::fmt::Display>(
        &mut self,
        node: &Node,
        path: &str,
        what: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        let text = self.text(node, path, what)?;
        match parse(text) {
            Ok(value) => Some(value),
            Err(message) => {
                self.error(node.mark, path, message.to_string());
                None
            }
        }
    }

    /// A whole number in `min..=max`, written unquoted.
    pub fn integer(&mut self, node: &Node, path: &str, min: u64, max: u64) -> Option<u64> {
        let what = format!("a whole number from {min} to {max}");
        match &node.value {
            Value::Scalar { text, plain: true } if !node.is_null() => match text.parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => Some(n),
                Ok(n) => {
                    self.error(
                        node.mark,
                        path,
                        format!("{n} is out of range (allowed: {what})"),
                    );
                    None
                }
                Err(_) => self.mismatch(node, path, &what),
            },
            _ => self.mismatch(node, path, &what),
        }
    }

    /// `true` or `false`, unquoted. YAML 1.1's yes/no/on/off are refused: they surprise people.
    pub fn boolean(&mut self, node: &Node, path: &str) -> Option<bool> {
        match &node.value {
            Value::Scalar { text, plain: true } => match text.as_str() {
                "true" | "True" | "TRUE" => Some(true),
                "false" | "False" | "FALSE" => Some(false),
                _ => self.mismatch(node, path, "true or false"),
            },
            _ => self.mismatch(node, path, "true or false (unquoted)"),
        }
    }

    /// A list. `what` describes its items, for the error.
    pub fn list<'a>(&mut self, node: &'a Node, path: &str, what: &str) -> Option<&'a [Node]> {
        match &node.value {
            Value::Sequence(items) => Some(items),
            _ => self.mismatch(node, path, &format!("a list of {what}")),
        }
    }
}

/// A list whose items `read` reads, each at its own path (`path[i]`); `None` when the node is not
/// a list or any item could not be read, after every item has been read (so every problem is
/// reported). `what` describes the items, for the error.
pub fn read_items<T>(
    r: &mut Reader,
    node: &Node,
    path: &str,
    what: &str,
    mut read: impl FnMut(&mut Reader, &Node, &str) -> Option<T>,
) -> Option<Vec<T>> {
    let items = r.list(node, path, what)?;
    let mut out = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, n) in items.iter().enumerate() {
        match read(r, n, &item(path, i)) {
            Some(v) => out.push(v),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// Why a file named on the command line (a drill file, a saved ledger) could not be read as text.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// More than the limit: read no further (a device such as /dev/zero, or a pipe, never ends).
    #[error("the file is larger than the limit of {} MiB", .max >> 20)]
    TooLarge { max: u64 },
    #[error("not UTF-8 text (invalid byte at offset {offset})")]
    NotUtf8 { mark: Mark, offset: usize },
}

/// Reads a whole file as UTF-8 text of at most `max` bytes, and not a byte more: a device or a
/// pipe has no size to check up front, so the limit is counted as it is read.
pub fn read_text(path: &std::path::Path, max: u64) -> Result<String, TextError> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(max + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(TextError::TooLarge { max });
    }
    String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let before = &e.as_bytes()[..offset];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let column = offset
            - before
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |p| p + 1)
            + 1;
        TextError::NotUtf8 {
            mark: Mark { line, column },
            offset,
        }
    })
}

/// Reports every YAML merge key (`<<: *base`) and drops it, so that the keys written beside it
/// are still read. Merging is a YAML 1.1 extension that the parser does not apply; read as a
/// plain key it would be an "unknown key" that hides what was meant.
pub fn strip_merge_keys(r: &mut Reader, node: &mut Node, path: &str) {
    match &mut node.value {
        Value::Scalar { .. } => {}
        Value::Sequence(items) => {
            for (i, n) in items.iter_mut().enumerate() {
                strip_merge_keys(r, n, &item(path, i));
            }
        }
        Value::Mapping(entries) => {
            entries.retain(|(key, _)| {
                let merge =
                    matches!(&key.value, Value::Scalar { text, plain: true } if text == "<<");
                if merge {
                    r.error(
                        key.mark,
                        child(path, "<<"),
                        "merge keys (<<) are not supported; write the keys out",
                    );
                }
                !merge
            });
            for (key, value) in entries.iter_mut() {
                let at = match &key.value {
                    Value::Scalar { text, .. } => child(path, text),
                    _ => path.to_owned(),
                };
                strip_merge_keys(r, value, &at);
            }
        }
    }
}

/// The allowed key closest to a misspelt one, when it is close enough to be a likely typo.
fn suggestion<'a>(key: &str, allowed: &[&'a str]) -> Option<&'a str> {
    allowed
        .iter()
        .map(|a| (strsim::damerau_levenshtein(key, a), *a))
        .filter(|(d, a)| *d <= 2.max(a.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, a)| a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml;

    #[test]
    fn unknown_keys_suggest_the_closest_allowed_one() {
        let doc = yaml::parse("schedul: x\nbogus: 1\nname: a\nname: b\n").unwrap();
        let mut r = Reader::default();
        let fields = r
            .fields(&doc, "drills[0]", &["name", "schedule", "kind"])
            .unwrap();
        assert!(fields.has("name"));
        let messages: Vec<String> = r
            .diagnostics
            .iter()
            .map(|d| format!("{}:{} {} {}", d.mark.line, d.mark.column, d.path, d.message))
            .collect();
        assert!(
            messages[0].starts_with("1:1 drills[0].schedul unknown key (did you mean `schedule`?"),
            "{messages:?}"
        );
        assert!(
            messages[1].starts_with("2:1 drills[0].bogus unknown key (allowed here"),
            "{messages:?}"
        );
        assert!(messages[2].contains("given twice"), "{messages:?}");
    }

    #[test]
    fn scalars_are_typed_strictly() {
        let doc = yaml::parse("a: '3'\nb: yes\nc: 300\nd: [1]\n").unwrap();
        let mut r = Reader::default();
        let f = r.fields(&doc, "", &["a", "b", "c", "d"]).unwrap();
        assert_eq!(r.integer(f.get("a").unwrap(), "a", 1, 10), None);
        assert_eq!(r.boolean(f.get("b").unwrap(), "b"), None);
        assert_eq!(r.integer(f.get("c").unwrap(), "c", 1, 100), None);
        assert_eq!(r.text(f.get("d").unwrap(), "d", "a name"), None);
        let m: Vec<&str> = r.diagnostics.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(m[0], "expected a whole number from 1 to 10, found \"3\"");
        assert_eq!(m[1], "expected true or false, found \"yes\"");
        assert_eq!(
            m[2],
            "300 is out of range (allowed: a whole number from 1 to 100)"
        );
        assert_eq!(m[3], "expected a name, found a list");
    }
}
