//! Against a real cluster, when `FIREDRILL_E2E_KUBECONFIG` names a kubeconfig (see the README's
//! kind recipe). Without it these tests say so and do nothing: no cluster can run on CI machines.

#[path = "support/skip.rs"]
mod skip;

use firedrill::cluster::job::{self, RunRef, Runtime};
use firedrill::cluster::kubernetes::Kube;
use firedrill::config::Config;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};

async fn cluster() -> Option<kube::Client> {
    let Ok(path) = std::env::var("FIREDRILL_E2E_KUBECONFIG") else {
        // Opt-in under CI too: no cluster can run on CI machines.
        skip::skipped(
            "FIREDRILL_E2E_KUBECONFIG is not set (real-cluster tests are opt-in: the README's kind recipe)",
        );
        return None;
    };
    firedrill::drill::gate::install_tls_provider();
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).expect("read the kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("kubeconfig");
    Some(kube::Client::try_from(config).expect("client"))
}

fn example() -> Config {
    Config::load(
        &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../deploy/examples/firedrill.yaml"),
    )
    .unwrap()
}

#[tokio::test]
async fn the_api_server_accepts_every_rendered_job() {
    let Some(client) = cluster().await else {
        return;
    };
    let config = example();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    if namespaces
        .get_opt(&config.namespace)
        .await
        .unwrap()
        .is_none()
    {
        let ns: Namespace =
            serde_json::from_value(serde_json::json!({ "metadata": { "name": config.namespace } }))
                .unwrap();
        namespaces
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
    }
    let jobs: Api<Job> = Api::namespaced(client, &config.namespace);
    for drill in &config.drills {
        let now = chrono::Utc::now();
        let run = RunRef {
            drill: drill.name.clone(),
            run: job::manual_run_id(&drill.name, now),
            scheduled: now,
            dry_run: true,
        };
        let rendered = job::render(&config, drill, &run, &Runtime::from_env());
        // Server-side dry run: full admission and validation, nothing persisted.
        let params = PostParams {
            dry_run: true,
            ..PostParams::default()
        };
        jobs.create(&params, &rendered)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", drill.name));
    }
}

#[tokio::test]
async fn the_lease_and_the_kill_switch_on_a_real_api_server() {
    let Some(client) = cluster().await else {
        return;
    };
    let config = example();
    let kube = Kube::new(client, &config.namespace);
    let identity = format!("e2e-{}", std::process::id());
    let now = chrono::Utc::now();
    // Whoever holds it, a fresh identity either takes an expired Lease or is refused a live one;
    // renewing what it holds always works.
    let mut seen = firedrill::cluster::kubernetes::Seen::default();
    if kube.lead(&identity, 5, now, &mut seen).await.unwrap() {
        assert!(kube
            .lead(&identity, 5, now + chrono::TimeDelta::seconds(1), &mut seen)
            .await
            .unwrap());
        assert_eq!(kube.leader().await.unwrap().map(|l| l.0), Some(identity));
    }
    // Reading the kill switch works with the same credentials (engaged or not).
    kube.kill_switch().await.unwrap();
}

/// `check --network` on a real cluster: the canary's pods run (busybox, `restricted`), its
/// verdict is one of the two a plugin can give, and nothing of it is left. Needs firedrill's
/// namespace (the example's) and pulls busybox:1.36.
#[tokio::test]
async fn the_network_canary_gives_a_verdict_and_leaves_nothing() {
    let Some(client) = cluster().await else {
        return;
    };
    let config = example();
    let kube = Kube::new(client.clone(), &config.namespace);
    firedrill::cluster::ledger_key::read_or_create(&kube)
        .await
        .expect("the ledger key");
    let line = firedrill::check::canary::run(&kube, &Default::default()).await;
    assert_eq!(line.check, "network");
    assert!(
        line.passed || line.what.starts_with("NetworkPolicy is NOT enforced"),
        "{line:?}"
    );
    assert!(line.what.contains(", removed"), "{line:?}");
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client, &config.namespace);
    let left = pods
        .list(&kube::api::ListParams::default().labels("firedrill.io/drill=firedrill-check"))
        .await
        .unwrap();
    assert!(
        left.items
            .iter()
            .all(|p| p.metadata.deletion_timestamp.is_some()),
        "{:?}",
        left.items
    );
}
