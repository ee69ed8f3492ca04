//! The annual drill end to end: a region failover run by the executor against the in-memory
//! cluster (isolation through the ledger), Route 53 on moto's server, and two real PostgreSQL
//! instances with streaming replication (scripts/pg-replica.sh makes the standby from the
//! primary scripts/test.sh starts). The promotion hook runs `psql … pg_promote()`. The RPO the
//! run measures is checked against an oracle of the test's own: the run's markers as both
//! databases hold them, read by the test, the instant the standby says its promotion began,
//! and the replication lag the test caused; nothing the run reports about itself.

mod support;

use std::time::Duration;

use chrono::{DateTime, Utc};
use firedrill::cluster::route53::Route53;
use firedrill::history::store::RunStatus;
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

/// A run's markers as one database holds them, read by the test: (seq, written_at_ms) by seq.
/// `runs` are the run names the rows may carry.
async fn markers_in(url: &str, table: &str, runs: &[&str]) -> Vec<(i64, i64)> {
    let mut c = sqlx::PgConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
    let runs: Vec<String> = runs.iter().map(|r| (*r).to_owned()).collect();
    // The table name is the test's own (letters, digits and underscores).
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT seq, written_at_ms FROM {table} WHERE run = ANY($1) ORDER BY seq"
    )))
    .bind(runs)
    .fetch_all(&mut c)
    .await
    .unwrap_or_else(|e| panic!("read {table} on {url}: {e}"))
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

/// The instant (ms since the epoch) the standby's own clock says the promotion hook's
/// `pg_promote` began: its `query_start` in `pg_stat_activity`, polled while it runs (it waits
/// for the end of recovery, so for 100 ms at least). `None` when the standby left recovery
/// without the query ever being seen, or nothing happened within `within`.
fn promotion_started(url: String, within: Duration) -> tokio::task::JoinHandle<Option<i64>> {
    tokio::spawn(async move {
        let mut c = sqlx::PgConnection::connect(&url).await.ok()?;
        let until = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < until {
            let row = sqlx::query(
                "SELECT pg_is_in_recovery(), (SELECT (extract(epoch FROM query_start) * 1000)::bigint \
                 FROM pg_stat_activity WHERE query LIKE '%pg\\_promote(%' AND pid <> pg_backend_pid() \
                 ORDER BY query_start LIMIT 1)",
            )
            .fetch_one(&mut c)
            .await
            .ok()?;
            let (recovering, started): (bool, Option<i64>) = (row.get(0), row.get(1));
            if started.is_some() || !recovering {
                return started;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        None
    })
}

/// What the test's oracle found, for the assertion messages.
#[derive(Debug)]
struct Oracle {
    /// The run's markers the primary acknowledged (seq, written_at_ms).
    primary: Vec<(i64, i64)>,
    /// Those on the promoted side.
    promoted: Vec<(i64, i64)>,
    /// When the standby says the promotion began (ms).
    promotion: i64,
}

impl Oracle {
    async fn read(
        primary: (&str, &[&str]),
        promoted: &str,
        table: &str,
        run: &str,
        promotion: Option<i64>,
    ) -> Oracle {
        let oracle = Oracle {
            primary: markers_in(primary.0, table, primary.1).await,
            promoted: markers_in(promoted, table, &[run]).await,
            promotion: promotion.expect("the promotion was seen running on the standby"),
        };
        let (Some(first), Some(_)) = (oracle.primary.first(), oracle.promoted.last()) else {
            panic!("markers on both sides: {oracle:?}");
        };
        // Markers are written before the promotion, the first of them 3 s (the lead-in) before.
        assert!(
            oracle.promotion - first.1 >= 3000,
            "lead-in too short: {oracle:?}"
        );
        // What survived is what the primary acknowledged, from the first marker on, with no gap.
        assert_eq!(
            oracle.promoted[..],
            oracle.primary[..oracle.promoted.len()],
            "the promoted side holds a prefix of the primary's markers"
        );
        oracle
    }

    fn last_written(&self) -> (i64, i64) {
        *self.primary.last().unwrap()
    }

    fn newest_survived(&self) -> (i64, i64) {
        *self.promoted.last().unwrap()
    }

    /// The RPO the databases give: the newest marker the primary acknowledged minus the
    /// newest that survived on the promoted side.
    fn rpo(&self) -> f64 {
        (self.last_written().1 - self.newest_survived().1) as f64 / 1000.0
    }

    /// The run's figures against the oracle: the markers were written until the promotion began
    /// (within one interval, `every`, and the time from the writer's stop to the hook's query:
    /// about 0.1 s, allowed 0.5 s on a loaded machine; a writer that stops after the lead-in
    /// stops seconds before, with Route 53 slowed), and the run's RPO and lost markers are what
    /// the databases say.
    fn check(&self, record: &firedrill::history::store::RunRecord, every: f64) {
        let e = &record.evidence.to_value();
        let rpo = record.measurements.rpo_seconds.expect("RPO measured");
        let written = self.last_written().1;
        assert!(
            written <= self.promotion,
            "a marker written after the promotion began: {self:?}"
        );
        let before = (self.promotion - written) as f64 / 1000.0;
        assert!(
            before <= every + 0.5,
            "the markers stopped {before:.3}s before the promotion began, more than {every}s (one \
             interval) and 0.5s: the writer must write until promotion (last written {written} ms, \
             promotion {} ms)",
            self.promotion
        );
        assert!(
            (rpo - self.rpo()).abs() <= 0.002,
            "the run measured {rpo}s, the databases give {}s (last acknowledged {:?}, newest \
             survived {:?}); run evidence {:#}",
            self.rpo(),
            self.last_written(),
            self.newest_survived(),
            e["rpo"]
        );
        assert_eq!(
            e["rpo"]["lost_markers"].as_i64(),
            Some(self.last_written().0 - self.newest_survived().0),
            "{:#}",
            e["rpo"]
        );
    }
}

/// How long the slowed Route 53 holds each request (see [`slow_proxy`]).
const ROUTE53_DELAY: Duration = Duration::from_millis(250);

/// A loopback TCP proxy to `target` (`http://host:port`) that holds each chunk a client sends
/// for `delay`: Route 53 answering in the 100 ms or more the real one takes, not in moto's
/// instant. It puts time between the end of the lead-in and the promotion (Route 53 is read and
/// changed in between), so a marker writer that stops early is seen to.
async fn slow_proxy(target: &str, delay: Duration) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let target = url::Url::parse(target).unwrap();
    let target = format!(
        "{}:{}",
        target.host_str().unwrap(),
        target.port_or_known_default().unwrap()
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let target = target.clone();
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(&target).await else {
                    return;
                };
                let (mut from_client, mut to_client) = client.into_split();
                let (mut from_server, mut to_server) = server.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
                    let _ = to_client.shutdown().await;
                });
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = from_client.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    tokio::time::sleep(delay).await;
                    if to_server.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                let _ = to_server.shutdown().await;
            });
        }
    });
    url
}

/// The promotion hook: `pg_promote` on the standby, waiting for it.
fn promote_standby(standby: &str) -> Vec<String> {
    [
        "psql",
        standby,
        "-v",
        "ON_ERROR_STOP=1",
        "-c",
        "SELECT pg_promote(true, 30)",
    ]
    .map(str::to_owned)
    .to_vec()
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

/// The drill; `promote` is the promotion hook's command.
fn drill(
    run_table: &str,
    (primary, standby): (&str, &str),
    promote: &[String],
    probe: &url::Url,
    dns: &str,
) -> String {
    let promote = serde_json::to_string(promote).unwrap();
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
        command: {promote}
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

/// The whole drill with replication cut a few markers into the lead-in: the markers written after
/// the cut are lost, and the RPO the run reports is what the two databases say was lost. Route 53
/// answers as slowly as the real one, so the writer has markers to write between the lead-in and
/// the promotion.
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
    // A run id is a DNS label, as a Job name gives it: the objects it names must be too.
    let run = support::unique("lag").replace('_', "-");
    let route53 = slow_proxy(&zone.endpoint, ROUTE53_DELAY).await;
    let text = drill(
        &table,
        (primary.as_str(), &standby.url),
        &promote_standby(&standby.url),
        &probe.url,
        &zone.yaml_through(&route53),
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
    let promotion = promotion_started(standby.url.clone(), Duration::from_secs(60));
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
        record.evidence.to_value()
    );
    let e = &record.evidence.to_value();
    assert_eq!(e["promotion"]["ok"], true, "{e:#}");
    let rpo = record.measurements.rpo_seconds.expect("RPO measured");
    // The oracle: the markers as the databases hold them, and when the standby began promoting.
    let oracle = Oracle::read(
        (primary.as_str(), &[run.as_str()]),
        &standby.url,
        &table,
        &run,
        promotion.await.unwrap(),
    )
    .await;
    let (asked, seen) = (asked.timestamp_millis(), seen.timestamp_millis());
    eprintln!(
        "rpo {rpo:.3}s, the databases give {:.3}s; replication cut at {asked}..{seen} ms, promotion \
         began at {} ms; last acknowledged {:?}, newest survived {:?} (seq, ms)",
        oracle.rpo(),
        oracle.promotion,
        oracle.last_written(),
        oracle.newest_survived()
    );
    // Markers written before the cut was asked survived (replication keeps up within ms): the
    // newest survivor is at most one interval older; none written after the cut was in effect did.
    let survived = oracle.newest_survived().1;
    assert!(
        survived >= asked - 200 - 50 && survived <= seen,
        "the newest marker on the promoted side ({survived}) is not the cut's ({asked}..{seen})"
    );
    oracle.check(&record, 0.2);
    assert!(oracle.rpo() > 1.0, "the lag was over a second: {oracle:?}");
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
/// marker interval, should the last write not have reached the standby at promotion). Route 53
/// is slowed as in the test above. Once promoted, the hook leaves only the first of the run's
/// markers under its name on the old primary (the others are renamed, as a fenced primary may
/// lose or change anything): markers read from the primary instead of the promoted side would
/// give a loss of everything written.
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
    let run = support::unique("nolag").replace('_', "-");
    // Promotes, then renames all but the run's first marker on the old primary.
    let fenced = format!("{run}_fenced");
    let promote = promote_standby(&standby.url)
        .iter()
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let promote = [
        "sh".to_owned(),
        "-c".to_owned(),
        format!(
            "{promote} && psql '{primary}' -v ON_ERROR_STOP=1 -c \"UPDATE {table} SET run = '{fenced}' WHERE run = '{run}' AND seq > 1\""
        ),
    ];
    let route53 = slow_proxy(&zone.endpoint, ROUTE53_DELAY).await;
    let text = drill(
        &table,
        (primary.as_str(), &standby.url),
        &promote,
        &probe.url,
        &zone.yaml_through(&route53),
    );
    let (config, drill, run_ref) = one_drill(&text, &run);
    let promotion = promotion_started(standby.url.clone(), Duration::from_secs(60));
    let record = execute_on(&client, &config, &drill, &run_ref, None).await;
    assert_eq!(
        record.status,
        RunStatus::Passed,
        "{:?}\n{:#}",
        record.reason,
        record.evidence.to_value()
    );
    let rpo = record.measurements.rpo_seconds.expect("RPO measured");
    let oracle = Oracle::read(
        (primary.as_str(), &[run.as_str(), fenced.as_str()]),
        &standby.url,
        &table,
        &run,
        promotion.await.unwrap(),
    )
    .await;
    eprintln!(
        "rpo without lag: {rpo:.3}s, the databases give {:.3}s; {} markers acknowledged, {} on \
         the promoted side",
        oracle.rpo(),
        oracle.primary.len(),
        oracle.promoted.len()
    );
    // The hook did rename them on the primary: the test can tell the two sides apart.
    assert_eq!(
        markers_in(primary.as_str(), &table, &[run.as_str()])
            .await
            .len(),
        1,
        "the old primary keeps one marker under the run's name"
    );
    assert!(oracle.primary.len() >= 10, "{oracle:?}");
    assert!(oracle.rpo() <= 0.2, "{oracle:?}");
    oracle.check(&record, 0.2);
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
    assert_eq!(
        record.status,
        RunStatus::Error,
        "{:#}",
        record.evidence.to_value()
    );
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
    assert!(record.evidence.to_value().get("failback").is_none());
}

struct Route53Zone {
    route53: Route53,
    use1_check: String,
    /// The drill's `dns:` block, which reaches Route 53 at `endpoint`.
    yaml: String,
    endpoint: String,
}

impl Route53Zone {
    /// The drill's `dns:` block reaching Route 53 through `endpoint` instead.
    fn yaml_through(&self, endpoint: &str) -> String {
        let (from, to) = (
            format!("endpoint: {}\n", self.endpoint),
            format!("endpoint: {endpoint}\n"),
        );
        assert!(self.yaml.contains(&from), "{}", self.yaml);
        self.yaml.replace(&from, &to)
    }
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
        endpoint: endpoint.to_owned(),
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
        (primary.as_str(), primary.as_str()),
        &promote_standby(primary.as_str()),
        &probe.url,
        &zone.yaml,
    );
    let (config, drill, run_ref) = one_drill(&text, &support::unique("ks").replace('_', "-"));
    let engage = {
        let client = client.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1200)).await;
            let switch = firedrill::cluster::ledger::kill_switch_config_map(
                support::cluster::NS,
                "INC-7",
                "on-call",
            );
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
    assert!(record.evidence.to_value().get("promotion").is_none());
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
    assert_eq!(
        record.status,
        RunStatus::Error,
        "{:#}",
        record.evidence.to_value()
    );
    let reason = record.reason.unwrap();
    assert!(
        reason.contains("the failback hook failed")
            && reason.contains("stays promoted in eu-west-1"),
        "{reason}"
    );
    assert!(reason.contains("not streaming"), "{reason}");
    assert_eq!(record.evidence.to_value()["promotion"]["ok"], true);
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
