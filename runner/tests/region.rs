//! The annual drill end to end: a region failover run by the executor against the in-memory
//! cluster (isolation through the ledger), Route 53 on moto's server, and two real PostgreSQL
//! instances with streaming replication (scripts/pg-replica.sh makes the standby from the
//! primary scripts/test.sh starts). The promotion hook runs `psql … pg_promote()`; the RPO the
//! run measures is compared with the replication lag the test caused.

mod support;

use std::time::Duration;

use chrono::{DateTime, Utc};
use firedrill::route53::Route53;
use firedrill::store::RunStatus;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;
use sqlx::{Connection, Row};
use support::cluster::{evicting_cluster, execute_on, one_drill, ready_pod, watch};

fn credentials() {
    // moto accepts any signature; the chain must not go looking for instance metadata.
    std::env::set_var("AWS_ACCESS_KEY_ID", "firedrill-test");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "firedrill-test");
}

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/pg-replica.sh");

/// A standby of the test primary, destroyed when dropped.
struct Standby {
    url: String,
    port: String,
}

impl Standby {
    fn create(primary: &url::Url) -> Standby {
        let port = primary.port().expect("primary port").to_string();
        let out = std::process::Command::new(SCRIPT)
            .args(["create", &port])
            .output()
            .expect("run pg-replica.sh");
        assert!(
            out.status.success(),
            "pg-replica.sh create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let port = url::Url::parse(&url).unwrap().port().unwrap().to_string();
        Standby { url, port }
    }

    /// Cuts replication now (the walreceiver stops); returns the instants before the cut was
    /// asked and after it was seen in effect.
    async fn cut(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        let mut c = sqlx::PgConnection::connect(&self.url).await.unwrap();
        let asked = Utc::now();
        sqlx::query("ALTER SYSTEM SET primary_conninfo = ''")
            .execute(&mut c)
            .await
            .unwrap();
        sqlx::query("SELECT pg_reload_conf()")
            .execute(&mut c)
            .await
            .unwrap();
        loop {
            let receivers: i64 = sqlx::query("SELECT count(*) FROM pg_stat_wal_receiver")
                .fetch_one(&mut c)
                .await
                .unwrap()
                .get(0);
            if receivers == 0 {
                return (asked, Utc::now());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn markers(&self, table: &str, run: &str) -> i64 {
        let Ok(mut c) = sqlx::PgConnection::connect(&self.url).await else {
            return 0;
        };
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} WHERE run = $1"
        )))
        .bind(run)
        .fetch_one(&mut c)
        .await
        .map_or(0, |r| r.get(0))
    }
}

impl Drop for Standby {
    fn drop(&mut self) {
        let _ = std::process::Command::new(SCRIPT)
            .args(["destroy", &self.port])
            .output();
    }
}

/// The failed region's web pods in the in-memory cluster: what `isolate` cuts off.
async fn region_workload(client: &kube::Client) {
    let d: Deployment = serde_json::from_value(json!({
        "metadata": { "name": "web-use1", "namespace": "shop" },
        "spec": { "replicas": 2, "selector": { "matchLabels": { "app": "web" } },
                  "template": { "metadata": { "labels": { "app": "web" } } } }
    }))
    .unwrap();
    Api::<Deployment>::namespaced(client.clone(), "shop")
        .create(&PostParams::default(), &d)
        .await
        .unwrap();
    for i in 0..2 {
        let pod = ready_pod(
            "shop",
            &format!("web-use1-{i}"),
            json!({ "app": "web", "topology.kubernetes.io/region": "us-east-1" }),
            "Deployment/web-use1",
            "n1",
        );
        Api::<Pod>::namespaced(client.clone(), "shop")
            .create(&PostParams::default(), &pod)
            .await
            .unwrap();
    }
}

fn drill(run_table: &str, primary: &str, standby: &str, probe: &url::Url, dns: &str) -> String {
    format!(
        r#"
armed: true
namespace: {ns}
drills:
  - name: region
    kind: region-failover
    schedule: "@yearly"
    duration: 2s
    fault:
      from: us-east-1
      to: eu-west-1
{dns}
      isolate:
        - namespace: shop
          selector: app=web,topology.kubernetes.io/region=us-east-1
      promote:
        command: ["psql", "{standby}", "-v", "ON_ERROR_STOP=1", "-c", "SELECT pg_promote(true, 30)"]
        timeout: 30s
      failback: {{ runbook: "https://runbooks.example.com/failback" }}
      data:
        primary: {{ url: "{primary}" }}
        promoted: {{ url: "{standby}" }}
        table: {run_table}
        every: 200ms
        lead_in: 3s
    steady_state:
      - http: {probe}
        every: 200ms
    success: {{ rto: 30s, rpo: 5m }}
"#,
        ns = support::cluster::NS,
    )
}

/// The whole drill with replication cut 1–2 s into the lead-in: the markers written after the
/// cut are lost, and the RPO the run reports is that span, within one marker interval.
#[tokio::test]
async fn a_failover_measures_the_rpo_of_a_known_replication_lag() {
    let (Some(primary), Some(moto)) = (
        support::service("FIREDRILL_TEST_POSTGRES"),
        support::service("FIREDRILL_TEST_MOTO"),
    ) else {
        return;
    };
    credentials();
    let standby = Standby::create(&primary);
    let client = evicting_cluster().await;
    region_workload(&client).await;
    let probe = support::serve(|_| (200, Duration::ZERO)).await;
    let zone = route53_zone(moto.as_str().trim_end_matches('/')).await;
    let table = support::unique("markers").replace('-', "_");
    let run = support::unique("lag");
    let text = drill(
        &table,
        primary.as_str(),
        &standby.url,
        &probe.url,
        &zone.yaml,
    );
    let (config, drill, run_ref) = one_drill(&text, &run);

    // Replication is cut once the standby holds a few of the run's markers.
    let cut = {
        let (table, run, url, port) = (
            table.clone(),
            run.clone(),
            standby.url.clone(),
            standby.port.clone(),
        );
        tokio::spawn(async move {
            let standby = Standby { url, port };
            while standby.markers(&table, &run).await < 3 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let cut = standby.cut().await;
            std::mem::forget(standby); // the test's own Standby destroys it
            cut
        })
    };
    // During the drill: the health check inverted, the region's pods cut off.
    let during = {
        let (route53, id, client) = (
            zone.route53.clone(),
            zone.use1_check.clone(),
            client.clone(),
        );
        watch(Duration::from_secs(20), move || {
            let (route53, id, client) = (route53.clone(), id.clone(), client.clone());
            async move {
                let inverted = route53.health_check(&id).await.ok()??["inverted"] == true;
                let policies = Api::<NetworkPolicy>::namespaced(client, "shop")
                    .list(&ListParams::default())
                    .await
                    .ok()?;
                (inverted && policies.items.len() == 1).then(|| policies.items[0].spec.clone())
            }
        })
    };
    let record = execute_on(&client, &config, &drill, &run_ref, None).await;
    let (asked, seen) = cut.await.unwrap();
    let isolated = during
        .await
        .unwrap()
        .expect("health check inverted and pods isolated during the drill");
    let isolated = serde_json::to_value(isolated).unwrap();
    assert_eq!(
        isolated["podSelector"]["matchLabels"]["topology.kubernetes.io/region"],
        "us-east-1"
    );
    assert_eq!(isolated["policyTypes"], json!(["Ingress", "Egress"]));

    assert_eq!(
        record.status,
        RunStatus::Passed,
        "{:?}\n{:#}",
        record.reason,
        record.evidence
    );
    let e = &record.evidence;
    assert_eq!(e["promotion"]["ok"], true, "{e:#}");
    let rpo = record.measurements.rpo_seconds.expect("RPO measured");
    let last: DateTime<Utc> = e["rpo"]["last_written"]["written_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    // Markers written before the cut was asked survived (replication keeps up within ms); those
    // after it was in effect did not. The RPO lies between, within one marker interval.
    let seconds = |from: DateTime<Utc>| (last - from).num_milliseconds() as f64 / 1000.0;
    let (most, least) = (seconds(asked), seconds(seen));
    eprintln!(
        "rpo {rpo:.3}s; lag caused: {least:.3}s..{most:.3}s; evidence {:#}",
        e["rpo"]
    );
    assert!(
        rpo >= least - 0.2 - 0.05 && rpo <= most + 0.05,
        "rpo {rpo} not within [{least} - 0.2, {most}]"
    );
    assert!(rpo > 1.0, "the lag was over a second: {rpo}");
    assert!(e["rpo"]["lost_markers"].as_i64().unwrap() >= 5, "{e:#}");
    // The promotion is in the ledger, left (nothing undoes it), saying so to every revert.
    let ledger = support::cluster::ledger_data(&client, &run).await;
    let promotion = ledger
        .values()
        .find(|v| v.contains("irreversible"))
        .expect("the promotion is in the ledger");
    assert!(
        promotion.contains("\"state\":\"left\"") || promotion.contains("state: left"),
        "{promotion}"
    );
    assert!(
        promotion.contains("promotion cannot be undone"),
        "{promotion}"
    );
    // The failback is the runbook's: said, not done.
    assert!(e["failback"]["detail"]
        .as_str()
        .unwrap()
        .contains("stays promoted in eu-west-1"));
    // Traffic back and isolation gone: DNS and Kubernetes as before.
    let check = zone
        .route53
        .health_check(&zone.use1_check)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(check["inverted"], false);
    assert!(Api::<NetworkPolicy>::namespaced(client.clone(), "shop")
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .is_empty());
    // Recovery was timed from the first fault to the probes passing after promotion.
    let rto = record.measurements.rto_seconds.expect("RTO measured");
    let promoted = e["promotion"]["seconds"].as_f64().unwrap();
    assert!(rto >= promoted, "rto {rto} < promotion {promoted}");
}

/// No lag: every acknowledged marker is on the promoted side, so the RPO is 0 (at most one
/// marker interval, should the last write still be in flight at promotion).
#[tokio::test]
async fn without_lag_the_rpo_is_zero() {
    let (Some(primary), Some(moto)) = (
        support::service("FIREDRILL_TEST_POSTGRES"),
        support::service("FIREDRILL_TEST_MOTO"),
    ) else {
        return;
    };
    credentials();
    let zone = route53_zone(moto.as_str().trim_end_matches('/')).await;
    let standby = Standby::create(&primary);
    let client = evicting_cluster().await;
    region_workload(&client).await;
    let probe = support::serve(|_| (200, Duration::ZERO)).await;
    let table = support::unique("markers").replace('-', "_");
    let run = support::unique("nolag");
    let text = drill(
        &table,
        primary.as_str(),
        &standby.url,
        &probe.url,
        &zone.yaml,
    );
    let (config, drill, run_ref) = one_drill(&text, &run);
    let record = execute_on(&client, &config, &drill, &run_ref, None).await;
    assert_eq!(
        record.status,
        RunStatus::Passed,
        "{:?}\n{:#}",
        record.reason,
        record.evidence
    );
    let rpo = record.measurements.rpo_seconds.expect("RPO measured");
    eprintln!("rpo without lag: {rpo:.3}s; {:#}", record.evidence["rpo"]);
    assert!(rpo <= 0.2, "rpo {rpo}");
    assert!(record.evidence["rpo"]["acknowledged"].as_u64().unwrap() >= 10);
}

/// A promotion that fails: the run ends as error, and DNS and isolation are reverted at once.
#[tokio::test]
async fn a_failed_promotion_is_an_error_and_everything_is_reverted() {
    let Some(moto) = support::service("FIREDRILL_TEST_MOTO") else {
        return;
    };
    credentials();
    let zone = route53_zone(moto.as_str().trim_end_matches('/')).await;
    let client = evicting_cluster().await;
    region_workload(&client).await;
    let text = format!(
        r#"
armed: true
namespace: {}
drills:
  - name: region
    kind: region-failover
    schedule: "@yearly"
    duration: 30s
    fault:
      from: us-east-1
      to: eu-west-1
{dns}
      isolate:
        - namespace: shop
          selector: app=web,topology.kubernetes.io/region=us-east-1
          how: scale-to-zero
      promote:
        command: ["sh", "-c", "echo replica not ready >&2; exit 3"]
      failback: {{ runbook: "https://runbooks.example.com/failback" }}
"#,
        support::cluster::NS,
        dns = zone.yaml
    );
    let (config, drill, run_ref) = one_drill(&text, "promote-fails");
    let started = std::time::Instant::now();
    let record = execute_on(&client, &config, &drill, &run_ref, None).await;
    assert_eq!(record.status, RunStatus::Error, "{:#}", record.evidence);
    let reason = record.reason.unwrap();
    assert!(
        reason.contains("the promotion hook failed") && reason.contains("exited with 3"),
        "{reason}"
    );
    assert!(reason.contains("replica not ready"), "{reason}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "ended early, not after 30s"
    );
    let d = Api::<Deployment>::namespaced(client, "shop")
        .get("web-use1")
        .await
        .unwrap();
    assert_eq!(d.spec.unwrap().replicas, Some(2), "scaled back exactly");
    // No failback for a promotion that did not happen.
    assert!(record.evidence.get("failback").is_none());
}

struct Route53Zone {
    route53: Route53,
    use1_check: String,
    yaml: String,
}

async fn route53_zone(endpoint: &str) -> Route53Zone {
    use aws_sdk_route53::types::{HealthCheckConfig, HealthCheckType};
    let route53 = Route53::new(Some(endpoint)).await;
    let tag = support::unique("zr");
    let zone = route53
        .sdk()
        .create_hosted_zone()
        .name(format!("{tag}.example.com"))
        .caller_reference(&tag)
        .send()
        .await
        .unwrap();
    let zone_id = zone
        .hosted_zone()
        .unwrap()
        .id()
        .trim_start_matches("/hostedzone/")
        .to_owned();
    let mut ids = Vec::new();
    let mut changes = Vec::new();
    for region in ["use1", "euw1"] {
        let check = route53
            .sdk()
            .create_health_check()
            .caller_reference(format!("{tag}-{region}"))
            .health_check_config(
                HealthCheckConfig::builder()
                    .r#type(HealthCheckType::Http)
                    .ip_address("192.0.2.1")
                    .port(80)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        let id = check.health_check().unwrap().id().to_owned();
        // Each region's record uses its check: inverting one moves traffic.
        changes.push(
            aws_sdk_route53::types::Change::builder()
                .action(aws_sdk_route53::types::ChangeAction::Create)
                .resource_record_set(
                    aws_sdk_route53::types::ResourceRecordSet::builder()
                        .name(format!("api.{tag}.example.com"))
                        .r#type(aws_sdk_route53::types::RrType::A)
                        .set_identifier(format!("{tag}-{region}"))
                        .weight(50)
                        .ttl(60)
                        .health_check_id(&id)
                        .resource_records(
                            aws_sdk_route53::types::ResourceRecord::builder()
                                .value("192.0.2.1")
                                .build()
                                .unwrap(),
                        )
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        );
        ids.push(id);
    }
    route53
        .sdk()
        .change_resource_record_sets()
        .hosted_zone_id(&zone_id)
        .change_batch(
            aws_sdk_route53::types::ChangeBatch::builder()
                .set_changes(Some(changes))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let yaml = format!(
        r#"      dns:
        zone: {zone_id}
        name: api.{tag}.example.com
        method: health-check
        endpoint: {endpoint}
        regions:
          us-east-1: {{ set_identifier: {tag}-use1, health_check: {} }}
          eu-west-1: {{ set_identifier: {tag}-euw1, health_check: {} }}"#,
        ids[0], ids[1]
    );
    Route53Zone {
        route53,
        use1_check: ids[0].clone(),
        yaml,
    }
}

/// The kill switch during the lead-in: nothing is injected, DNS and the cluster stay as they were,
/// and the run is aborted (the markers written so far are all it leaves).
#[tokio::test]
async fn the_kill_switch_during_the_lead_in_stops_the_failover_before_anything_changes() {
    let (Some(primary), Some(moto)) = (
        support::service("FIREDRILL_TEST_POSTGRES"),
        support::service("FIREDRILL_TEST_MOTO"),
    ) else {
        return;
    };
    credentials();
    let client = evicting_cluster().await;
    region_workload(&client).await;
    let probe = support::serve(|_| (200, Duration::ZERO)).await;
    let zone = route53_zone(moto.as_str().trim_end_matches('/')).await;
    let table = support::unique("markers").replace('-', "_");
    // The promoted side is never reached: the primary stands in for it.
    let text = drill(
        &table,
        primary.as_str(),
        primary.as_str(),
        &probe.url,
        &zone.yaml,
    );
    let (config, drill, run_ref) = one_drill(&text, &support::unique("ks"));
    let engage = {
        let client = client.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1200)).await;
            let switch =
                firedrill::ledger::kill_switch_config_map(support::cluster::NS, "INC-7", "on-call");
            Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(client, support::cluster::NS)
                .create(&PostParams::default(), &switch)
                .await
                .unwrap();
        })
    };
    let record = execute_on(&client, &config, &drill, &run_ref, None).await;
    engage.await.unwrap();
    assert_eq!(record.status, RunStatus::Aborted, "{:?}", record.reason);
    let reason = record.reason.unwrap();
    assert!(
        reason.contains("kill switch engaged during the lead-in")
            && reason.contains("nothing injected"),
        "{reason}"
    );
    let check = zone
        .route53
        .health_check(&zone.use1_check)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(check["inverted"], false, "DNS never touched");
    assert!(Api::<NetworkPolicy>::namespaced(client.clone(), "shop")
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(record.evidence.get("promotion").is_none());
}

/// A failback hook that fails: DNS and isolation are still reverted, and the run is an error
/// saying the database stays promoted.
#[tokio::test]
async fn a_failed_failback_is_an_error_after_the_revert() {
    let Some(moto) = support::service("FIREDRILL_TEST_MOTO") else {
        return;
    };
    credentials();
    let zone = route53_zone(moto.as_str().trim_end_matches('/')).await;
    let client = evicting_cluster().await;
    region_workload(&client).await;
    let text = format!(
        r#"
armed: true
namespace: {}
drills:
  - name: region
    kind: region-failover
    schedule: "@yearly"
    duration: 1s
    fault:
      from: us-east-1
      to: eu-west-1
{dns}
      isolate:
        - namespace: shop
          selector: app=web,topology.kubernetes.io/region=us-east-1
      promote:
        command: ["sh", "-c", "echo promoted"]
      failback:
        command: ["sh", "-c", "echo us-east-1 replica is not streaming >&2; exit 1"]
        timeout: 10s
"#,
        support::cluster::NS,
        dns = zone.yaml
    );
    let (config, drill, run_ref) = one_drill(&text, "failback-fails");
    let record = execute_on(&client, &config, &drill, &run_ref, None).await;
    assert_eq!(record.status, RunStatus::Error, "{:#}", record.evidence);
    let reason = record.reason.unwrap();
    assert!(
        reason.contains("the failback hook failed")
            && reason.contains("stays promoted in eu-west-1"),
        "{reason}"
    );
    assert!(reason.contains("not streaming"), "{reason}");
    assert_eq!(record.evidence["promotion"]["ok"], true);
    assert!(
        Api::<NetworkPolicy>::namespaced(client, "shop")
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty(),
        "isolation reverted all the same"
    );
}
