//! Names Kubernetes and AWS allow, checked wherever a drill file or a flag gives one: which rules
//! a name was held to, the first of them it breaks, and the name it was probably meant to be.

use std::fmt;

/// A name that breaks its rules. `Display` says what the name must be, in the words of the
/// field or flag that gave it; `flaw` says what is wrong with this one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameError {
    /// The name as written.
    pub text: String,
    pub rules: NameRules,
    pub flaw: NameFlaw,
    /// The name in lower case, with '-' for '_' and spaces, when that one keeps the rules.
    pub suggestion: Option<String>,
}

/// The rules a name is held to, by what it names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NameRules {
    /// A DNS-1123 label of at most `max` characters: a drill, a cluster, a container, firedrill's
    /// own namespace.
    Label { max: usize },
    /// A namespace a field selects by: a DNS-1123 label of at most 63 characters.
    Namespace,
    /// An object of `kind` named in a NAMESPACE/NAME field: a Service's name is a DNS-1035 label
    /// (it starts with a letter), a workload's a DNS-1123 subdomain.
    Object { kind: String },
    /// An AWS region: lowercase letters, digits and '-', at most 63 characters.
    Region,
    /// A run id given with `--run`: the run's Job name and label value, a DNS-1123 label of at
    /// most `max` characters.
    RunId { max: usize },
}

/// What is wrong with a name: the first of its rules it breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameFlaw {
    Empty,
    /// Longer than `max` characters (for a subdomain, the whole name or one of its parts).
    TooLong {
        max: usize,
    },
    /// A character not allowed where it is, at this byte offset.
    Character {
        c: char,
        at: usize,
    },
    /// The first character may not start a name of its kind ('-', or a digit for a Service).
    Starts {
        c: char,
    },
    /// The last character may not end one ('-').
    Ends {
        c: char,
    },
}

impl NameRules {
    /// The first rule `text` breaks, if it breaks one.
    pub fn flaw(&self, text: &str) -> Option<NameFlaw> {
        match self {
            NameRules::Label { max } | NameRules::RunId { max } => label_flaw(text, *max),
            NameRules::Namespace => label_flaw(text, 63),
            NameRules::Object { kind } if kind == "Service" => {
                label_flaw(text, 63).or_else(|| match text.chars().next() {
                    Some(c) if !c.is_ascii_lowercase() => Some(NameFlaw::Starts { c }),
                    _ => None,
                })
            }
            NameRules::Object { .. } => subdomain_flaw(text),
            NameRules::Region => {
                if text.is_empty() {
                    return Some(NameFlaw::Empty);
                }
                first_not(text, label_character).or_else(|| too_long(text, 63))
            }
        }
    }

    /// `text`, or why it breaks these rules.
    pub fn check(self, text: &str) -> Result<String, NameError> {
        let Some(flaw) = self.flaw(text) else {
            return Ok(text.to_owned());
        };
        let fixed = text.trim().to_ascii_lowercase().replace(['_', ' '], "-");
        // The region's message offers no other name.
        let suggestion =
            (self != NameRules::Region && fixed != text && self.flaw(&fixed).is_none())
                .then_some(fixed);
        Err(NameError {
            text: text.to_owned(),
            rules: self,
            flaw,
            suggestion,
        })
    }
}

fn label_character(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
}

fn first_not(text: &str, allowed: impl Fn(char) -> bool) -> Option<NameFlaw> {
    text.char_indices()
        .find(|(_, c)| !allowed(*c))
        .map(|(at, c)| NameFlaw::Character { c, at })
}

fn too_long(text: &str, max: usize) -> Option<NameFlaw> {
    (text.len() > max).then_some(NameFlaw::TooLong { max })
}

/// RFC 1123 label: lowercase alphanumerics and '-', starting and ending with an alphanumeric.
fn label_flaw(text: &str, max: usize) -> Option<NameFlaw> {
    if text.is_empty() {
        return Some(NameFlaw::Empty);
    }
    first_not(text, label_character)
        .or_else(|| too_long(text, max))
        .or_else(|| text.starts_with('-').then_some(NameFlaw::Starts { c: '-' }))
        .or_else(|| text.ends_with('-').then_some(NameFlaw::Ends { c: '-' }))
}

/// RFC 1123 subdomain: dot-separated labels, at most 253 characters (a Deployment's name). A
/// part that is empty, or starts or ends badly, inside the name is a character out of place.
fn subdomain_flaw(text: &str) -> Option<NameFlaw> {
    if text.is_empty() {
        return Some(NameFlaw::Empty);
    }
    if let Some(flaw) =
        first_not(text, |c| label_character(c) || c == '.').or_else(|| too_long(text, 253))
    {
        return Some(flaw);
    }
    let mut offset = 0;
    for part in text.split('.') {
        // Where the part ends: at the dot after it, or at the end of the name.
        let end = offset + part.len();
        let flaw = match label_flaw(part, 63) {
            // An empty part: a dot that starts the name, ends it, or follows another.
            Some(NameFlaw::Empty) if offset == 0 => Some(NameFlaw::Starts { c: '.' }),
            Some(NameFlaw::Empty) if end == text.len() => Some(NameFlaw::Ends { c: '.' }),
            Some(NameFlaw::Empty) => Some(NameFlaw::Character { c: '.', at: offset }),
            Some(NameFlaw::Starts { c }) if offset > 0 => {
                Some(NameFlaw::Character { c, at: offset })
            }
            Some(NameFlaw::Ends { c }) if end < text.len() => {
                Some(NameFlaw::Character { c, at: end - 1 })
            }
            flaw => flaw,
        };
        if flaw.is_some() {
            return flaw;
        }
        offset = end + 1;
    }
    None
}

impl std::error::Error for NameError {}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = &self.text;
        match &self.rules {
            NameRules::Label { max } => write!(
                f,
                "{text:?} is not a DNS-1123 label (lowercase letters, digits and '-', starting and ending with a letter or digit, at most {max} characters)"
            )?,
            NameRules::RunId { max } => write!(
                f,
                "--run names the run's Job and labels, so it must be a DNS-1123 label: {text:?} is not a DNS-1123 label (lowercase letters, digits and '-', starting and ending with a letter or digit, at most {max} characters)"
            )?,
            NameRules::Namespace => write!(
                f,
                "namespace {text:?} can never match a Kubernetes namespace (namespaces are lower-case DNS labels: a-z, 0-9 and '-', starting and ending with a letter or digit, at most 63 characters)"
            )?,
            NameRules::Object { kind } => {
                let rules = if kind == "Service" {
                    "Service names are lower-case DNS labels: a-z, 0-9 and '-', starting with a letter and ending with a letter or digit, at most 63 characters"
                } else {
                    "workload names are lower-case DNS names: a-z, 0-9, '-' and '.', each part starting and ending with a letter or digit, at most 253 characters"
                };
                write!(
                    f,
                    "name {text:?} can never match a Kubernetes {kind} ({rules})"
                )?;
            }
            NameRules::Region => write!(
                f,
                "{text:?} is not a region name (lowercase letters, digits and '-', e.g. us-east-1)"
            )?,
        }
        match &self.suggestion {
            Some(fixed) => write!(f, "; did you mean {fixed:?}?"),
            None => Ok(()),
        }
    }
}

/// A DNS-1123 label of at most `max` characters.
pub fn dns_label(text: &str, max: usize) -> Result<(), NameError> {
    NameRules::Label { max }.check(text).map(drop)
}

/// A namespace, in every field that names one: a name that no namespace can have would make the
/// field match nothing, silently.
pub fn namespace_name(text: &str) -> Result<String, NameError> {
    NameRules::Namespace.check(text)
}

/// The name of an object of `kind` (Service, Deployment, StatefulSet) in a NAMESPACE/NAME field.
pub fn object_name(text: &str, kind: &str) -> Result<String, NameError> {
    NameRules::Object {
        kind: kind.to_owned(),
    }
    .check(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flaw(rules: NameRules, text: &str) -> Option<NameFlaw> {
        rules.flaw(text)
    }

    #[test]
    fn each_flaw_is_the_first_rule_broken() {
        let label = NameRules::Label { max: 5 };
        assert_eq!(flaw(label.clone(), "abc-1"), None);
        assert_eq!(flaw(label.clone(), ""), Some(NameFlaw::Empty));
        assert_eq!(
            flaw(label.clone(), "abcdef"),
            Some(NameFlaw::TooLong { max: 5 })
        );
        assert_eq!(
            flaw(label.clone(), "a_b"),
            Some(NameFlaw::Character { c: '_', at: 1 })
        );
        assert_eq!(flaw(label.clone(), "-a"), Some(NameFlaw::Starts { c: '-' }));
        assert_eq!(flaw(label, "a-"), Some(NameFlaw::Ends { c: '-' }));
        let service = NameRules::Object {
            kind: "Service".into(),
        };
        assert_eq!(flaw(service.clone(), "api"), None);
        assert_eq!(flaw(service, "1api"), Some(NameFlaw::Starts { c: '1' }));
        let workload = NameRules::Object {
            kind: "Deployment".into(),
        };
        assert_eq!(flaw(workload.clone(), "1api.v2"), None);
        assert_eq!(
            flaw(workload.clone(), "api..v2"),
            Some(NameFlaw::Character { c: '.', at: 4 })
        );
        assert_eq!(
            flaw(workload.clone(), "api-.v2"),
            Some(NameFlaw::Character { c: '-', at: 3 })
        );
        assert_eq!(
            flaw(workload.clone(), "api.-v2"),
            Some(NameFlaw::Character { c: '-', at: 4 })
        );
        assert_eq!(
            flaw(workload.clone(), "api."),
            Some(NameFlaw::Ends { c: '.' })
        );
        assert_eq!(
            flaw(workload.clone(), ".api"),
            Some(NameFlaw::Starts { c: '.' })
        );
        assert_eq!(flaw(workload.clone(), ""), Some(NameFlaw::Empty));
        assert_eq!(
            flaw(workload, &"a".repeat(64)),
            Some(NameFlaw::TooLong { max: 63 })
        );
        assert_eq!(flaw(NameRules::Region, "us-east-1"), None);
        assert_eq!(flaw(NameRules::Region, "-us-"), None);
        assert_eq!(
            flaw(NameRules::Region, "US"),
            Some(NameFlaw::Character { c: 'U', at: 0 })
        );
    }

    #[test]
    fn messages_say_what_the_name_must_be() {
        assert_eq!(
            dns_label("My_Drill", 40).unwrap_err().to_string(),
            "\"My_Drill\" is not a DNS-1123 label (lowercase letters, digits and '-', starting and ending with a letter or digit, at most 40 characters); did you mean \"my-drill\"?"
        );
        assert_eq!(
            namespace_name("-x").unwrap_err().to_string(),
            "namespace \"-x\" can never match a Kubernetes namespace (namespaces are lower-case DNS labels: a-z, 0-9 and '-', starting and ending with a letter or digit, at most 63 characters)"
        );
        assert_eq!(
            object_name("Api", "Service").unwrap_err().to_string(),
            "name \"Api\" can never match a Kubernetes Service (Service names are lower-case DNS labels: a-z, 0-9 and '-', starting with a letter and ending with a letter or digit, at most 63 characters); did you mean \"api\"?"
        );
        assert_eq!(
            NameRules::Region.check("US East").unwrap_err().to_string(),
            "\"US East\" is not a region name (lowercase letters, digits and '-', e.g. us-east-1)"
        );
        assert_eq!(
            NameRules::RunId { max: 63 }.check("A").unwrap_err().to_string(),
            "--run names the run's Job and labels, so it must be a DNS-1123 label: \"A\" is not a DNS-1123 label (lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters); did you mean \"a\"?"
        );
    }
}
