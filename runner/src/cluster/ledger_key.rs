//! The ledger key in the cluster: a Secret in firedrill's namespace, read by name only. The
//! scheduler and the drill Jobs (which sign the entries they write) create it when it is absent;
//! `stop` and `rollback` only read it, with the caller's credentials, and apply nothing from a
//! ledger when they cannot (ARCHITECTURE.md, principle 9).

use std::collections::BTreeMap;

use firedrill_rollback::Key;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use kube::api::{Api, PostParams};

use crate::cluster::kubernetes::{firedrill_meta, Kube};

/// The Secret that holds the ledger key, in firedrill's namespace.
pub const KEY_SECRET: &str = "firedrill-ledger-key";
/// The Secret's data key.
pub const KEY_FIELD: &str = "key";

/// Why the ledger key is not at hand. Each says what to do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error(
        "cannot read Secret {namespace}/{KEY_SECRET} (the ledger key, which proves ledger entries are firedrill's own): forbidden. \
         Run this with firedrill's ServiceAccount's rights, or grant yours `get` on that one Secret by name: \
         kubectl -n {namespace} create role firedrill-ledger-key-reader --verb=get --resource=secrets --resource-name={KEY_SECRET} \
         && kubectl -n {namespace} create rolebinding firedrill-ledger-key-reader --role=firedrill-ledger-key-reader --user=YOU"
    )]
    Forbidden { namespace: String },
    #[error(
        "Secret {namespace}/{KEY_SECRET} (the ledger key) does not exist, so no ledger entry in {namespace} can be verified: \
         it is created when the scheduler or a drill Job first starts. If it was deleted, every open ledger needs a person: see runbooks/ledger-unverified.md"
    )]
    Missing { namespace: String },
    #[error("Secret {namespace}/{KEY_SECRET}, key `{KEY_FIELD}`: {why}")]
    Invalid { namespace: String, why: String },
    #[error("cannot {verb} Secret {namespace}/{KEY_SECRET} (the ledger key): {error}")]
    Api {
        namespace: String,
        verb: &'static str,
        error: String,
    },
}

fn secrets(kube: &Kube) -> Api<Secret> {
    Api::namespaced(kube.client().clone(), kube.namespace())
}

fn api_error(kube: &Kube, verb: &'static str, e: kube::Error) -> KeyError {
    let namespace = kube.namespace().to_owned();
    match e {
        kube::Error::Api(s) if s.code == 403 && verb == "get" => KeyError::Forbidden { namespace },
        e => KeyError::Api {
            namespace,
            verb,
            error: e.to_string(),
        },
    }
}

fn from_secret(kube: &Kube, secret: &Secret) -> Result<Key, KeyError> {
    let invalid = |why: String| KeyError::Invalid {
        namespace: kube.namespace().to_owned(),
        why,
    };
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(KEY_FIELD))
        .ok_or_else(|| invalid("missing".to_owned()))?;
    Key::from_bytes(&bytes.0).map_err(|e| invalid(e.to_string()))
}

/// Reads the key (one GET, by name): what `stop` and `rollback` do.
pub async fn read(kube: &Kube) -> Result<Key, KeyError> {
    match secrets(kube).get_opt(KEY_SECRET).await {
        Ok(Some(secret)) => from_secret(kube, &secret),
        Ok(None) => Err(KeyError::Missing {
            namespace: kube.namespace().to_owned(),
        }),
        Err(e) => Err(api_error(kube, "get", e)),
    }
}

/// Reads the key, creating it first if it is absent: what the scheduler and a drill Job do.
/// Two processes creating it at once agree: the second finds the first's.
pub async fn read_or_create(kube: &Kube) -> Result<Key, KeyError> {
    match read(kube).await {
        Err(KeyError::Missing { .. }) => {}
        other => return other,
    }
    let (key, bytes) = Key::generate().map_err(|e| KeyError::Invalid {
        namespace: kube.namespace().to_owned(),
        why: e.to_string(),
    })?;
    match secrets(kube)
        .create(
            &PostParams::default(),
            &key_secret(kube.namespace(), &bytes),
        )
        .await
    {
        Ok(_) => {
            tracing::info!(namespace = %kube.namespace(), secret = KEY_SECRET, key = %key.id(), "created the ledger key");
            Ok(key)
        }
        Err(kube::Error::Api(s)) if s.code == 409 => read(kube).await,
        Err(e) => Err(api_error(kube, "create", e)),
    }
}

/// The Secret as firedrill creates it.
pub fn key_secret(namespace: &str, bytes: &[u8]) -> Secret {
    Secret {
        metadata: firedrill_meta(KEY_SECRET, namespace),
        type_: Some("Opaque".to_owned()),
        immutable: Some(true),
        data: Some(BTreeMap::from([(
            KEY_FIELD.to_owned(),
            ByteString(bytes.to_vec()),
        )])),
        ..Default::default()
    }
}
