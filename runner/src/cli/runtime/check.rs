//! `firedrill check`: the read-only checks against a cluster, as text or JSON. Exit 0 when all
//! pass, 1 when one fails or the drill file is invalid (its problems said), 2 usage or I/O, 4 no
//! cluster configured or answering.

use std::process::ExitCode;

use crate::cli::{load, CheckFormat, ClusterTarget, EXIT_ERROR, EXIT_INVALID};
use crate::cluster::kubernetes::Kube;

/// How to point firedrill at a cluster, for the error that says there is none.
const HOW: &str = "set KUBECONFIG (or ~/.kube/config) to the cluster's kubeconfig, or run `firedrill check` in a pod with firedrill's service account";

pub(super) async fn check(
    target: &ClusterTarget,
    format: CheckFormat,
    network: Option<&crate::check::canary::Canary>,
) -> Result<ExitCode, ExitCode> {
    let config = target.config.as_deref().map(load).transpose()?;
    // firedrill's namespace: --namespace, else the drill file's, else the kubeconfig context's.
    let namespace = target
        .namespace
        .clone()
        .or_else(|| config.as_ref().map(|c| c.namespace.clone()));
    let kube = Kube::connect(namespace.as_deref().unwrap_or("default"))
        .await
        .map_err(|e| {
            eprintln!("error: no cluster to check: {e}; {HOW}");
            ExitCode::from(EXIT_ERROR)
        })?;
    let kube = match namespace {
        Some(_) => kube,
        None => Kube::new(
            kube.client().clone(),
            kube.client().default_namespace().to_owned(),
        ),
    };
    let report = crate::check::run_with(&kube, config.as_ref(), network)
        .await
        .map_err(|e| {
            eprintln!("error: no cluster to check: {e}");
            ExitCode::from(EXIT_ERROR)
        })?;
    let text = match format {
        CheckFormat::Text => report.text(),
        CheckFormat::Json => {
            serde_json::to_string_pretty(&report.json()).unwrap_or_default() + "\n"
        }
    };
    let code = if report.passed() { 0 } else { EXIT_INVALID };
    Ok(crate::cli::finished(
        code,
        crate::output::to_stdout(|out| out.write_all(text.as_bytes())),
    ))
}
