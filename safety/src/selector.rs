//! Kubernetes label selectors: parsing and matching, with the full set-based syntax.
//!
//! Grammar (as `kubectl -l` accepts it):
//!
//! ```text
//! selector    = "" | requirement { "," requirement }
//! requirement = key ( "=" | "==" | "!=" ) value
//!             | key ( "in" | "notin" ) "(" value { "," value } ")"
//!             | key
//!             | "!" key
//! ```
//!
//! Keys are `[prefix/]name` (prefix a DNS-1123 subdomain of at most 253 characters, name at most
//! 63 characters of alphanumerics, `-`, `_` and `.`, starting and ending with an alphanumeric);
//! values follow the name rules but may be empty. A set of values is never empty: apimachinery
//! reads `()` as the empty value, so `notin ()` would match every object; firedrill refuses it.
//! As in apimachinery, `(a,)` holds `a` and the empty value.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// What a requirement asks of one label.
/// Why a text is not a label key or value: which, and the rule it breaks.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LabelError(pub String);

impl From<String> for LabelError {
    fn from(message: String) -> Self {
        LabelError(message)
    }
}

impl From<&str> for LabelError {
    fn from(message: &str) -> Self {
        LabelError(message.to_owned())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// `key=value` or `key==value`.
    Equals(String, String),
    /// `key!=value`: also true when the key is absent.
    NotEquals(String, String),
    /// `key in (a,b)`: the key is present with one of the values.
    In(String, BTreeSet<String>),
    /// `key notin (a,b)`: the key is absent or has none of the values.
    NotIn(String, BTreeSet<String>),
    /// `key`: the key is present.
    Exists(String),
    /// `!key`: the key is absent.
    DoesNotExist(String),
}

impl Requirement {
    /// Whether a set of labels satisfies this requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Requirement::Equals(key, value) => labels.get(key) == Some(value),
            Requirement::NotEquals(key, value) => labels.get(key) != Some(value),
            Requirement::In(key, values) => labels.get(key).is_some_and(|v| values.contains(v)),
            Requirement::NotIn(key, values) => !labels.get(key).is_some_and(|v| values.contains(v)),
            Requirement::Exists(key) => labels.contains_key(key),
            Requirement::DoesNotExist(key) => !labels.contains_key(key),
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |values: &BTreeSet<String>| values.iter().cloned().collect::<Vec<_>>().join(",");
        match self {
            Requirement::Equals(k, v) => write!(f, "{k}={v}"),
            Requirement::NotEquals(k, v) => write!(f, "{k}!={v}"),
            Requirement::In(k, vs) => write!(f, "{k} in ({})", join(vs)),
            Requirement::NotIn(k, vs) => write!(f, "{k} notin ({})", join(vs)),
            Requirement::Exists(k) => write!(f, "{k}"),
            Requirement::DoesNotExist(k) => write!(f, "!{k}"),
        }
    }
}

/// A parsed label selector: all requirements must hold. The empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

impl Selector {
    /// The selector that matches every object.
    pub fn everything() -> Self {
        Self::default()
    }

    /// Parses the `kubectl -l` syntax.
    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        Parser::new(text).selector()
    }

    /// Builds a selector from `matchLabels`-style equalities.
    pub fn from_labels<'a>(labels: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let requirements = labels
            .into_iter()
            .map(|(k, v)| Requirement::Equals(k.to_owned(), v.to_owned()))
            .collect();
        Self { requirements }
    }

    /// Adds a requirement (used for `matchExpressions`).
    pub fn with(mut self, requirement: Requirement) -> Self {
        self.requirements.push(requirement);
        self
    }

    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    pub fn is_everything(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether a set of labels satisfies every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

/// Why a selector did not parse. `column` is 1-based, in characters, within the selector text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message} at column {column} of selector {text:?}")]
pub struct SelectorError {
    pub text: String,
    pub column: usize,
    pub message: String,
}

struct Parser<'a> {
    text: &'a str,
    chars: Vec<char>,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text,
            chars: text.chars().collect(),
            pos: 0,
        }
    }

    fn error(&self, at: usize, message: impl Into<String>) -> SelectorError {
        SelectorError {
            text: self.text.to_owned(),
            column: at + 1,
            message: message.into(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn selector(mut self) -> Result<Selector, SelectorError> {
        let mut requirements = Vec::new();
        self.skip_spaces();
        if self.peek().is_none() {
            return Ok(Selector { requirements });
        }
        loop {
            requirements.push(self.requirement()?);
            self.skip_spaces();
            match self.peek() {
                None => return Ok(Selector { requirements }),
                Some(',') => self.pos += 1,
                Some(c) => {
                    return Err(self.error(
                        self.pos,
                        format!("expected ',' between requirements, found {c:?}"),
                    ))
                }
            }
        }
    }

    /// A run of characters that may form a key or value (validated afterwards).
    fn word(&mut self) -> (usize, String) {
        self.skip_spaces();
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '/') {
                self.pos += 1;
            } else {
                break;
            }
        }
        (start, self.chars[start..self.pos].iter().collect())
    }

    fn key(&mut self) -> Result<String, SelectorError> {
        let (start, key) = self.word();
        if key.is_empty() {
            let found = match self.peek() {
                Some(c) => format!("found {c:?}"),
                None => "found the end".to_owned(),
            };
            return Err(self.error(start, format!("expected a label key, {found}")));
        }
        validate_key(&key).map_err(|m| self.error(start, m.0))?;
        Ok(key)
    }

    fn value(&mut self) -> Result<String, SelectorError> {
        let (start, value) = self.word();
        validate_value(&value).map_err(|m| self.error(start, m.0))?;
        Ok(value)
    }

    fn requirement(&mut self) -> Result<Requirement, SelectorError> {
        self.skip_spaces();
        if self.eat('!') {
            return Ok(Requirement::DoesNotExist(self.key()?));
        }
        let key = self.key()?;
        self.skip_spaces();
        let op_at = self.pos;
        match self.peek() {
            None | Some(',') => Ok(Requirement::Exists(key)),
            Some('=') => {
                self.pos += 1;
                self.eat('=');
                Ok(Requirement::Equals(key, self.value()?))
            }
            Some('!') => {
                self.pos += 1;
                if !self.eat('=') {
                    return Err(self.error(op_at, "expected '!=' after the key"));
                }
                Ok(Requirement::NotEquals(key, self.value()?))
            }
            Some(_) => {
                let (_, word) = self.word();
                match word.as_str() {
                    "in" => Ok(Requirement::In(key, self.value_set()?)),
                    "notin" => Ok(Requirement::NotIn(key, self.value_set()?)),
                    _ => Err(self.error(
                        op_at,
                        "expected one of '=', '==', '!=', 'in', 'notin', ',' or the end after the key",
                    )),
                }
            }
        }
    }

    fn value_set(&mut self) -> Result<BTreeSet<String>, SelectorError> {
        self.skip_spaces();
        if !self.eat('(') {
            return Err(self.error(self.pos, "expected '(' to open the set of values"));
        }
        let mut values = BTreeSet::new();
        self.skip_spaces();
        if self.peek() == Some(')') {
            // The API server refuses an empty set: `notin ()` would match every object.
            return Err(self.error(
                self.pos,
                "the set of values after 'in' or 'notin' may not be empty (firedrill is stricter than kubectl here: `notin ()` would match every object)",
            ));
        }
        loop {
            values.insert(self.value()?);
            self.skip_spaces();
            if self.eat(')') {
                return Ok(values);
            }
            if !self.eat(',') {
                return Err(self.error(self.pos, "expected ',' or ')' in the set of values"));
            }
        }
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// The rules for a label name, and for a non-empty label value.
fn validate_name(name: &str, what: &str) -> Result<(), LabelError> {
    if name.len() > 63 {
        return Err(format!("{what} {name:?} is longer than 63 characters").into());
    }
    if !name.chars().all(is_name_char) {
        return Err(
            format!("{what} {name:?} may contain only letters, digits, '-', '_' and '.'").into(),
        );
    }
    let first = name.chars().next();
    let last = name.chars().last();
    if !first.is_some_and(|c| c.is_ascii_alphanumeric())
        || !last.is_some_and(|c| c.is_ascii_alphanumeric())
    {
        return Err(format!("{what} {name:?} must start and end with a letter or digit").into());
    }
    Ok(())
}

/// `[prefix/]name`, as Kubernetes allows for label keys.
pub fn validate_key(key: &str) -> Result<(), LabelError> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        let ok = !prefix.is_empty()
            && prefix.len() <= 253
            && prefix.split('.').all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !part.starts_with('-')
                    && !part.ends_with('-')
            });
        if !ok {
            let lower = prefix.to_ascii_lowercase();
            let hint = if lower != prefix && validate_key(&format!("{lower}/{name}")).is_ok() {
                format!("; did you mean {lower:?}?")
            } else {
                String::new()
            };
            return Err(format!(
                "label key prefix {prefix:?} must be a lowercase DNS subdomain (e.g. example.com){hint}"
            ).into());
        }
    }
    if name.is_empty() {
        return Err(format!("label key {key:?} has an empty name").into());
    }
    validate_name(name, "label key")
}

/// Label values: empty, or a name of at most 63 characters.
pub fn validate_value(value: &str) -> Result<(), LabelError> {
    if value.is_empty() {
        return Ok(());
    }
    validate_name(value, "label value")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn sel(text: &str) -> Selector {
        Selector::parse(text).unwrap_or_else(|e| panic!("{text:?} should parse: {e}"))
    }

    #[test]
    fn selectors_built_in_code_match_as_parsed_ones() {
        let api = labels(&[("app", "api"), ("tier", "web")]);
        let everything = Selector::everything();
        assert!(everything.is_everything() && everything.matches(&api));
        assert!(everything.matches(&labels(&[])));
        let built = Selector::from_labels([("app", "api")]);
        assert!(!built.is_everything());
        assert_eq!(built, sel("app=api"));
        assert!(built.matches(&api) && !built.matches(&labels(&[("app", "db")])));
        let more = built.with(Requirement::Equals("tier".into(), "db".into()));
        assert_eq!(more, sel("app=api,tier=db"));
        assert!(!more.matches(&api));
        assert_eq!(more.requirements().len(), 2);
    }

    #[test]
    fn label_names_and_values_follow_kubernetes_rules_at_their_edges() {
        assert!(validate_name(&"a".repeat(63), "value").is_ok());
        assert!(validate_name(&"a".repeat(64), "value")
            .unwrap_err()
            .0
            .contains("longer than 63"));
        assert!(validate_name("a_b.c-9", "value").is_ok());
        for bad in ["a b", "a/b", "a:b", "a@b", "é"] {
            assert!(validate_name(bad, "value").is_err(), "{bad:?}");
        }
        // A prefix is a DNS subdomain: digits are letters there too.
        for key in ["k8s.io/app", "app.kubernetes.io/name", "a1/b", "x-2.y/z"] {
            assert!(validate_key(key).is_ok(), "{key}");
        }
        for key in ["K8s.io/app", "a_b/c", "-a/b", "a-/b", "a..b/c"] {
            assert!(validate_key(key).is_err(), "{key}");
        }
    }

    #[test]
    fn every_operator_matches_as_kubernetes_does() {
        let api = labels(&[("app", "api"), ("tier", "web")]);
        let db = labels(&[("app", "postgresql"), ("role", "primary")]);
        let bare = labels(&[]);
        let cases: &[(&str, [bool; 3])] = &[
            ("app=api", [true, false, false]),
            ("app==api", [true, false, false]),
            ("app!=api", [false, true, true]),
            ("app in (api, postgresql)", [true, true, false]),
            ("app notin (api)", [false, true, true]),
            ("role", [false, true, false]),
            ("!role", [true, false, true]),
            ("app in (api,)", [true, false, false]),
            ("app=api,tier=web", [true, false, false]),
            ("app,!role", [true, false, false]),
            ("role=", [false, false, false]),
            ("role!=", [true, true, true]),
            ("", [true, true, true]),
        ];
        for (text, expected) in cases {
            let s = sel(text);
            let got = [s.matches(&api), s.matches(&db), s.matches(&bare)];
            assert_eq!(&got, expected, "selector {text:?}");
        }
    }

    #[test]
    fn prefixed_keys_and_spacing() {
        let s = sel("  firedrill.io/enabled = true ,  app.kubernetes.io/name in (a,b) ");
        assert_eq!(s.requirements().len(), 2);
        assert!(s.matches(&labels(&[
            ("firedrill.io/enabled", "true"),
            ("app.kubernetes.io/name", "b")
        ])));
        assert_eq!(
            s.to_string(),
            "firedrill.io/enabled=true,app.kubernetes.io/name in (a,b)"
        );
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "a=b",
            "a!=b",
            "a in (x,y)",
            "a notin (x)",
            "a",
            "!a",
            "x/y=z,w",
        ] {
            assert_eq!(sel(&sel(text).to_string()), sel(text));
        }
    }

    #[test]
    fn malformed_selectors_say_where() {
        let cases: &[(&str, usize, &str)] = &[
            ("app=", 0, ""), // empty value is allowed: checked below as Ok
            ("=api", 1, "expected a label key"),
            ("app=api,", 9, "expected a label key"),
            ("app in api", 8, "expected '('"),
            ("app in (a,b", 12, "expected ',' or ')'"),
            ("app ~ api", 5, "expected one of"),
            ("app=api tier=web", 9, "expected ','"),
            ("app=-api", 5, "must start and end"),
            ("App/x=1", 1, "prefix"),
            ("app!api", 4, "expected '!='"),
            ("!", 2, "expected a label key"),
            ("app=a b", 7, "expected ','"),
            ("app=a$", 6, "expected ','"),
            ("app in ()", 9, "may not be empty"),
            ("app notin ( )", 13, "may not be empty"),
        ];
        for (text, column, message) in cases {
            match Selector::parse(text) {
                Ok(_) if message.is_empty() => {}
                Ok(s) => panic!("{text:?} parsed as {s:?}"),
                Err(e) => {
                    assert!(e.message.contains(message), "{text:?}: {e}");
                    assert_eq!(e.column, *column, "{text:?}: {e}");
                }
            }
        }
        let long = format!("app={}", "x".repeat(64));
        assert!(Selector::parse(&long)
            .unwrap_err()
            .message
            .contains("longer than 63"));
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(text in "\\PC{0,40}") {
            let _ = Selector::parse(&text);
        }

        #[test]
        fn parsing_selector_like_text_never_panics(text in "[a-z!=(), /.-]{0,30}") {
            if let Ok(s) = Selector::parse(&text) {
                // Whatever parses must print as something that parses to the same selector.
                proptest::prop_assert_eq!(Selector::parse(&s.to_string()).ok(), Some(s));
            }
        }
    }
}
