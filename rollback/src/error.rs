//! Why a call to a cluster failed, sorted by what the applier and the replayer can do about it.
//! The runner's adapters (Kubernetes, Route 53) sort their errors into these kinds; the text of
//! each is the adapter's message for people, unchanged.

use std::fmt;

/// Why a [`crate::Cluster`] call failed. Every variant's `Display` is its `message` alone, so
/// what people read is what the adapter wrote.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    /// What the call names does not exist (or what holds it: a namespace, a hosted zone).
    #[error("{message}")]
    NotFound { message: String },
    /// Someone else wrote it first, or it exists already.
    #[error("{message}")]
    Conflict { message: String },
    /// The caller's rights do not allow the call: `access` is the rule it lacks.
    #[error("{message}")]
    Forbidden { access: Access, message: String },
    /// What the call names is gone for good (HTTP 410), not only absent now.
    #[error("{message}")]
    Gone { message: String },
    /// Worth trying again later: a timeout, no connection, the server busy or failing (429, 5xx).
    #[error("{message}")]
    Transient { message: String },
    /// Anything else: a malformed request or answer, a bug.
    #[error("{message}")]
    Other { message: String },
}

/// The rule a forbidden call lacked: a verb on a resource, in a namespace when it has one. For
/// Kubernetes, an RBAC verb and resource (`patch`, `deployments.apps`); for an external system,
/// its own (`route53:ChangeResourceRecordSets` on `hostedzone/Z1`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    pub verb: String,
    pub resource: String,
    pub namespace: Option<String>,
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.verb, self.resource)?;
        match &self.namespace {
            Some(ns) => write!(f, " in namespace {ns}"),
            None => Ok(()),
        }
    }
}

impl ClusterError {
    pub fn other(message: impl Into<String>) -> Self {
        ClusterError::Other {
            message: message.into(),
        }
    }

    /// The message for people.
    pub fn message(&self) -> &str {
        match self {
            ClusterError::NotFound { message }
            | ClusterError::Conflict { message }
            | ClusterError::Forbidden { message, .. }
            | ClusterError::Gone { message }
            | ClusterError::Transient { message }
            | ClusterError::Other { message } => message,
        }
    }

    /// The same kind, its message prefixed with `context: ` (what was being done).
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        let message = match &mut self {
            ClusterError::NotFound { message }
            | ClusterError::Conflict { message }
            | ClusterError::Forbidden { message, .. }
            | ClusterError::Gone { message }
            | ClusterError::Transient { message }
            | ClusterError::Other { message } => message,
        };
        *message = format!("{context}: {message}");
        self
    }

    /// A bounded label for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            ClusterError::NotFound { .. } => "not_found",
            ClusterError::Conflict { .. } => "conflict",
            ClusterError::Forbidden { .. } => "forbidden",
            ClusterError::Gone { .. } => "gone",
            ClusterError::Transient { .. } => "transient",
            ClusterError::Other { .. } => "other",
        }
    }
}

impl From<String> for ClusterError {
    fn from(message: String) -> Self {
        ClusterError::Other { message }
    }
}

impl From<&str> for ClusterError {
    fn from(message: &str) -> Self {
        ClusterError::other(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_is_the_adapters_message_and_context_keeps_the_kind() {
        let e = ClusterError::Forbidden {
            access: Access {
                verb: "patch".into(),
                resource: "deployments.apps".into(),
                namespace: Some("shop".into()),
            },
            message: "forbidden".into(),
        }
        .context("patch Deployment shop/api");
        assert_eq!(e.to_string(), "patch Deployment shop/api: forbidden");
        assert_eq!(e.label(), "forbidden");
        let ClusterError::Forbidden { access, .. } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(
            access.to_string(),
            "patch deployments.apps in namespace shop"
        );
    }
}
