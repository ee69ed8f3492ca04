//! `namespace/name` globs for protected workloads, e.g. `kube-system/*` or `monitoring/prometheus*`.

use std::fmt;

/// A glob over `namespace/name`. `*` matches any run of characters (never `/`), `?` one character.
/// A pattern without `/` is a namespace pattern and protects everything in the matching namespaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamespacedGlob {
    namespace: String,
    name: String,
}

impl NamespacedGlob {
    /// Parses `namespace/name` or `namespace`. The error says what is allowed.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (namespace, name) = text.split_once('/').unwrap_or((text, "*"));
        if namespace.is_empty() || name.is_empty() || name.contains('/') {
            return Err(format!(
                "{text:?} is not a glob of the form namespace/name (e.g. kube-system/* or monitoring/prometheus*)"
            ));
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '*' | '?');
        if let Some(bad) = text.chars().find(|&c| c != '/' && !allowed(c)) {
            return Err(format!(
                "{text:?} contains {bad:?}; globs use letters, digits, '-', '.', '*' and '?'"
            ));
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
    fn bad_globs_are_explained() {
        for bad in ["", "/x", "ns/", "a/b/c", "ns/na me", "ns/[ab]"] {
            let err = NamespacedGlob::parse(bad).unwrap_err();
            assert!(err.contains("glob"), "{bad:?}: {err}");
        }
    }

    proptest::proptest! {
        #[test]
        fn a_literal_pattern_matches_only_itself(a in "[a-z]{1,8}", b in "[a-z]{1,8}") {
            proptest::prop_assert_eq!(wildcard(&a, &b), a == b);
            proptest::prop_assert!(wildcard("*", &b));
        }
    }
}
