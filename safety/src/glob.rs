//! `namespace/name` globs for protected workloads, e.g. `kube-system/*` or `monitoring/prometheus*`.

use std::fmt;

/// Why a text is not a `namespace/name` glob, with the spelling that would be, when there is one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct GlobError(pub String);

impl From<String> for GlobError {
    fn from(message: String) -> Self {
        GlobError(message)
    }
}

impl From<&str> for GlobError {
    fn from(message: &str) -> Self {
        GlobError(message.to_owned())
    }
}

/// A glob over `namespace/name`. `*` matches any run of characters (never `/`), `?` one character.
/// A pattern without `/` is a namespace pattern and protects everything in the matching namespaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamespacedGlob {
    namespace: String,
    name: String,
}

impl NamespacedGlob {
    /// Parses `namespace/name` or `namespace`. The error says what is allowed.
    ///
    /// A part that no Kubernetes name can match (upper case, `_`, a namespace with `.`, a literal
    /// that starts or ends with `-`, more literal characters than a name may have) is an error:
    /// such a glob would protect nothing while reading as if it did. The error suggests the
    /// lower-case spelling when that would be a valid glob.
    pub fn parse(text: &str) -> Result<Self, GlobError> {
        let (namespace, name) = text.split_once('/').unwrap_or((text, "*"));
        if namespace.is_empty() || name.is_empty() || name.contains('/') {
            return Err(format!(
                "{text:?} is not a glob of the form namespace/name (e.g. kube-system/* or monitoring/prometheus*)"
            ).into());
        }
        let problem =
            part_problem(namespace, Part::Namespace).or_else(|| part_problem(name, Part::Name));
        if let Some(problem) = problem {
            let fixed = text.to_ascii_lowercase().replace('_', "-");
            let hint = if fixed != text && Self::parse(&fixed).is_ok() {
                format!("; did you mean {fixed:?}?")
            } else {
                String::new()
            };
            return Err(format!("{text:?}: {problem}{hint}").into());
        }
        Ok(Self {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        })
    }

    /// Whether the object `namespace/name` is covered.
    pub fn matches(&self, namespace: &str, name: &str) -> bool {
        wildcard(&self.namespace, namespace) && wildcard(&self.name, name)
    }

    /// Whether the glob covers every object in `namespace`.
    pub fn covers_namespace(&self, namespace: &str) -> bool {
        self.name.chars().all(|c| c == '*') && wildcard(&self.namespace, namespace)
    }
}

impl fmt::Display for NamespacedGlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Namespace,
    Name,
}

impl Part {
    /// What the part is called, what Kubernetes names it stands for and their rules.
    fn describe(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Part::Namespace => (
                "namespace",
                "a Kubernetes namespace",
                "namespaces are lower-case DNS labels: a-z, 0-9 and '-', at most 63 characters",
            ),
            Part::Name => (
                "name",
                "a Kubernetes name",
                "pods and workloads have lower-case DNS names: a-z, 0-9, '-' and '.', at most 253 characters",
            ),
        }
    }
}

/// Why no Kubernetes name can match `pattern`, if none can, as "namespace \"X\" can never
/// match ...". Names start and end with a letter or digit; `*` and `?` stand for any run of
/// characters and any one character, so they may stand for those too.
fn part_problem(pattern: &str, part: Part) -> Option<String> {
    let (dot, max) = match part {
        Part::Namespace => (false, 63),
        Part::Name => (true, 253),
    };
    let allowed = |c: char| {
        c.is_ascii_lowercase()
            || c.is_ascii_digit()
            || matches!(c, '-' | '*' | '?')
            || (dot && c == '.')
    };
    let first = pattern.chars().next();
    let last = pattern.chars().last();
    let literal_edge = |c: Option<char>| c.filter(|c| matches!(c, '-' | '.'));
    let least = pattern.chars().filter(|&c| c != '*').count();
    let reason = if let Some(bad) = pattern.chars().find(|&c| !allowed(c)) {
        if bad.is_ascii_uppercase() {
            "it has upper case".to_owned()
        } else {
            format!("it has {bad:?}")
        }
    } else if let Some(c) = literal_edge(first) {
        format!("it starts with {c:?}")
    } else if let Some(c) = literal_edge(last) {
        format!("it ends with {c:?}")
    } else if let Some(pair) = ["..", ".-", "-."]
        .into_iter()
        .find(|pair| dot && pattern.contains(pair))
    {
        // Each dot-separated label of a DNS name starts and ends with a letter or digit.
        format!("it has {pair:?}")
    } else if least > max {
        format!("it needs at least {least} characters")
    } else {
        return None;
    };
    let (called, matches, rules) = part.describe();
    Some(format!(
        "{called} {pattern:?} can never match {matches}: {reason} ({rules}; a glob adds * and ?)"
    ))
}

/// Iterative wildcard matching with single-star backtracking: linear in practice, never recursive.
/// Works on bytes: patterns are ASCII (checked at parse time) and Kubernetes names are too.
fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_namespace_and_name() {
        let g = NamespacedGlob::parse("monitoring/prometheus*").unwrap();
        assert!(g.matches("monitoring", "prometheus"));
        assert!(g.matches("monitoring", "prometheus-server-0"));
        assert!(!g.matches("monitoring", "grafana"));
        assert!(!g.matches("monitoring2", "prometheus"));
        assert!(!g.covers_namespace("monitoring"));

        let all = NamespacedGlob::parse("kube-system/*").unwrap();
        assert!(all.matches("kube-system", "etcd-node1"));
        assert!(all.covers_namespace("kube-system"));
        assert_eq!(NamespacedGlob::parse("kube-system").unwrap(), all);

        let q = NamespacedGlob::parse("db?/pg-*-primary*").unwrap();
        assert!(q.matches("db1", "pg-eu-primary-0"));
        assert!(!q.matches("db", "pg-eu-primary-0"));
        assert!(!q.matches("db1", "pg-eu-replica-0"));
    }

    #[test]
    fn a_glob_no_kubernetes_name_can_match_is_refused_with_the_fix() {
        // Issue #21: this protected nothing, and pake-api's pods were still targeted.
        assert_eq!(
            NamespacedGlob::parse("PAKE-API/*").unwrap_err().0,
            "\"PAKE-API/*\": namespace \"PAKE-API\" can never match a Kubernetes namespace: it has upper case (namespaces are lower-case DNS labels: a-z, 0-9 and '-', at most 63 characters; a glob adds * and ?); did you mean \"pake-api/*\"?"
        );
        assert_eq!(
            NamespacedGlob::parse("monitoring/Prometheus_Server*").unwrap_err().0,
            "\"monitoring/Prometheus_Server*\": name \"Prometheus_Server*\" can never match a Kubernetes name: it has upper case (pods and workloads have lower-case DNS names: a-z, 0-9, '-' and '.', at most 253 characters; a glob adds * and ?); did you mean \"monitoring/prometheus-server*\"?"
        );
        let never = [
            ("PAKE-API", "namespace \"PAKE-API\""),
            ("pake_api/*", "namespace \"pake_api\""),
            ("pake.api/*", "it has '.'"),
            ("-api/*", "it starts with '-'"),
            ("api-/*", "it ends with '-'"),
            ("api/web.", "it ends with '.'"),
            ("api/web..0", "it has \"..\""),
            ("api/web-.0", "it has \"-.\""),
            ("api/we b", "it has ' '"),
            ("api/[ab]", "it has '['"),
            // A wildcard may stand for the first or last character, a literal '-' may not.
            ("api/*-", "it ends with '-'"),
            ("api/-*", "it starts with '-'"),
        ];
        for (glob, why) in never {
            let err = NamespacedGlob::parse(glob).unwrap_err().0;
            assert!(
                err.contains("can never match") && err.contains(why),
                "{glob:?}: {err}"
            );
        }
        let long = format!("{}*/*", "a".repeat(64));
        assert!(NamespacedGlob::parse(&long)
            .unwrap_err()
            .0
            .contains("at least 64 characters"));
        // Exactly the longest name there can be is fine, in both parts.
        let longest = format!("{}*/{}", "a".repeat(63), "b".repeat(253));
        assert!(NamespacedGlob::parse(&longest).is_ok(), "{longest}");
        let over = format!("a/{}", "b".repeat(254));
        assert!(NamespacedGlob::parse(&over)
            .unwrap_err()
            .0
            .contains("at least 254 characters"));
        // A suggestion is made only when it is itself a valid glob.
        assert!(!NamespacedGlob::parse("API./*")
            .unwrap_err()
            .0
            .contains("did you mean"));
    }

    #[test]
    fn wildcards_the_syntax_allows_stay_allowed() {
        for glob in [
            "*",
            "*/*",
            "kube-*",
            "*-system/*",
            "db?/pg-*-primary*",
            "api/*.web-?",
            "?/?",
            "api/web-*.0",
        ] {
            assert!(NamespacedGlob::parse(glob).is_ok(), "{glob:?}");
        }
    }

    #[test]
    fn bad_globs_are_explained() {
        for bad in ["", "/x", "ns/", "a/b/c", "ns/na me", "ns/[ab]"] {
            let err = NamespacedGlob::parse(bad).unwrap_err().0;
            assert!(err.contains("glob"), "{bad:?}: {err}");
        }
    }

    /// A DNS-1123 subdomain (`label` only: a DNS-1123 label).
    fn dns_name(text: &str, label: bool) -> bool {
        let max = if label { 63 } else { 253 };
        text.len() <= max
            && (!label || !text.contains('.'))
            && text.split('.').all(|l| {
                !l.is_empty()
                    && l.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            })
    }

    proptest::proptest! {
        /// Whatever glob parses matches some real Kubernetes object: its wildcards filled with
        /// `a` give a namespace and a name Kubernetes accepts, and the glob matches them.
        #[test]
        fn every_glob_that_parses_can_match_something(text in "[a-zA-Z0-9._*?-]{1,12}(/[a-zA-Z0-9._*?-]{1,12})?") {
            if let Ok(glob) = NamespacedGlob::parse(&text) {
                let fill = |p: &str| p.replace(['*', '?'], "a");
                let (namespace, name) = (fill(&glob.namespace), fill(&glob.name));
                proptest::prop_assert!(dns_name(&namespace, true), "{text:?} -> {namespace:?}");
                proptest::prop_assert!(dns_name(&name, false), "{text:?} -> {name:?}");
                proptest::prop_assert!(glob.matches(&namespace, &name));
            }
        }

        #[test]
        fn a_literal_pattern_matches_only_itself(a in "[a-z]{1,8}", b in "[a-z]{1,8}") {
            proptest::prop_assert_eq!(wildcard(&a, &b), a == b);
            proptest::prop_assert!(wildcard("*", &b));
        }
    }
}
