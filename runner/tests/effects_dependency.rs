//! A dependency's `http-fault` and a region failover proven, not assumed (#25 items 1 and 2):
//! the fault proxy run for real on loopback, its own counts (`/metrics`) read by the run and
//! checked against the requests a client actually sent; Route 53's `TestDNSAnswer` asked on the
//! wire (moto does not implement it: a stand-in in front of moto answers it, from the health
//! check moto holds), and on moto itself, where the run says it could not ask.
//!
//! For each, one drill where the effect is seen and one where a stand-in ignores the fault (a
//! "kube-proxy" that keeps sending the clients to the real backends after the Service was
//! pointed at the proxy; a Route 53 that keeps answering the failed region): that one ends
//! `ineffective`, its ledger reverted, its record saying why.

mod support;

use support::effects::{assert_ineffective, effect};

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use firedrill::cluster::route53::Route53;
use firedrill::drill::faultproxy::{serve_counted, serve_metrics, Counts, Faults};
use firedrill::history::store::RunStatus;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use kube::api::{Api, PostParams};
use serde_json::json;
use support::cluster::{eventually, evicting_cluster, execute_on, one_drill, ready_pod, NS};
use tokio::net::TcpListener;

// ---- the fault proxy ----

/// An upstream that answers 200 "ok".
async fn upstream() -> SocketAddr {
    serve_http(|_request| async { (200, "ok".to_owned()) }).await
}

/// A loopback HTTP server answering each request with `answer(request)`.
async fn serve_http<F, Fut>(answer: F) -> SocketAddr
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = (u16, String)> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let answer = answer.clone();
                    async move {
                        let (status, body) = answer(request).await;
                        Ok::<_, std::convert::Infallible>(
                            Response::builder()
                                .status(status)
                                .body(Full::new(Bytes::from(body)))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// One proxy for real, as `firedrill fault-proxy --metrics` runs it: (its address, its
/// `/metrics` address).
async fn proxy(upstream: SocketAddr, faults: Faults) -> (SocketAddr, SocketAddr) {
    let (listener, metrics) = (
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
    );
    let at = (
        listener.local_addr().unwrap(),
        metrics.local_addr().unwrap(),
    );
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    std::mem::forget(stop_tx);
    let mut registry = prometheus_client::registry::Registry::default();
    let counts = Counts::register(&mut registry);
    let upstream = url::Url::parse(&format!("http://{upstream}")).unwrap();
    tokio::spawn(serve_metrics(metrics, Arc::new(registry), stop.clone()));
    tokio::spawn(async move { serve_counted(listener, upstream, faults, counts, stop).await });
    at
}

fn faults() -> Faults {
    Faults {
        errors: vec![(503, 1000), (429, 500)],
        reset: 500,
        delay: Some(Duration::from_millis(5)),
        until: None,
    }
}

fn client() -> reqwest::Client {
    firedrill::drill::gate::install_tls_provider();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// What a client got back, by its own count.
#[derive(Debug, Default)]
struct Sent {
    sent: AtomicU64,
    ok: AtomicU64,
    injected: AtomicU64,
    reset: AtomicU64,
}

impl Sent {
    async fn one(&self, client: &reqwest::Client, to: SocketAddr) {
        self.sent.fetch_add(1, Ordering::SeqCst);
        match client.get(format!("http://{to}/x")).send().await {
            Ok(r) if r.status() == 200 => self.ok.fetch_add(1, Ordering::SeqCst),
            Ok(r) if r.status() == 503 || r.status() == 429 => {
                self.injected.fetch_add(1, Ordering::SeqCst)
            }
            Ok(r) => panic!("unexpected {}", r.status()),
            Err(_) => self.reset.fetch_add(1, Ordering::SeqCst),
        };
    }
}

/// `firedrill_fault_proxy_{name}_total` as the proxy at `metrics` serves it.
async fn counter(metrics: SocketAddr, name: &str) -> u64 {
    let text = client()
        .get(format!("http://{metrics}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let name = format!("firedrill_fault_proxy_{name}_total ");
    text.lines()
        .find_map(|l| l.strip_prefix(name.as_str()))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        .trim()
        .parse()
        .unwrap()
}

/// Must show 2: the proxy's counts are the requests a client actually sent, to the request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxys_counts_are_the_requests_actually_sent() {
    let (at, metrics) = proxy(upstream().await, faults()).await;
    let sent = Arc::new(Sent::default());
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let sent = sent.clone();
        tasks.spawn(async move {
            let client = client();
            for _ in 0..100 {
                sent.one(&client, at).await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let get = |a: &AtomicU64| a.load(Ordering::SeqCst);
    assert_eq!(counter(metrics, "requests").await, get(&sent.sent));
    assert_eq!(counter(metrics, "failed").await, get(&sent.injected));
    assert_eq!(counter(metrics, "reset").await, get(&sent.reset));
    assert_eq!(
        counter(metrics, "answered").await,
        get(&sent.ok) + get(&sent.injected)
    );
    // Every request passed on was held for the delay.
    assert_eq!(counter(metrics, "delayed").await, get(&sent.ok));
    eprintln!("800 sent: {sent:?}");
    // Only /metrics is served there.
    let other = client()
        .get(format!("http://{metrics}/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
}

async fn node(client: &kube::Client, name: &str) {
    let node: Node = serde_json::from_value(json!({ "metadata": { "name": name },
        "status": { "conditions": [{ "type": "Ready", "status": "True" }],
            "allocatable": { "cpu": "4", "memory": "16Gi" } } }))
    .unwrap();
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &node)
        .await
        .unwrap();
}

/// `apps/web` (the dependency's clients) with two ready pods, and the Service `ai/gateway`.
async fn web_and_gateway(client: &kube::Client) {
    node(client, "n1").await;
    let d: Deployment = serde_json::from_value(json!({
        "metadata": { "name": "web", "namespace": "apps" },
        "spec": { "replicas": 2, "selector": { "matchLabels": { "app": "web" } }, "template": { "metadata": { "labels": { "app": "web" } } } }
    }))
    .unwrap();
    Api::<Deployment>::namespaced(client.clone(), "apps")
        .create(&PostParams::default(), &d)
        .await
        .unwrap();
    for i in 0..2 {
        let pod = ready_pod(
            "apps",
            &format!("web-{i}"),
            json!({ "app": "web" }),
            "Deployment/web",
            "n1",
        );
        Api::<Pod>::namespaced(client.clone(), "apps")
            .create(&PostParams::default(), &pod)
            .await
            .unwrap();
    }
    let gateway: Service = serde_json::from_value(json!({
        "metadata": { "name": "gateway", "namespace": "ai" },
        "spec": { "selector": { "app": "gateway" }, "ports": [{ "name": "http", "port": 80, "targetPort": 8000 }] }
    }))
    .unwrap();
    Api::<Service>::namespaced(client.clone(), "ai")
        .create(&PostParams::default(), &gateway)
        .await
        .unwrap();
}

/// Stands in for the Deployment controller: once the proxy's Deployment is made, two pods of it,
/// ready, each one of the `proxies` run for real (its IP loopback, its port named
/// `proxy-metrics` the one its counts are served on).
fn proxy_pods(client: kube::Client, run: &'static str, proxies: Vec<(SocketAddr, SocketAddr)>) {
    tokio::spawn(async move {
        let deployments = Api::<Deployment>::namespaced(client.clone(), "ai");
        let name = format!("firedrill-proxy-{run}");
        eventually(Duration::from_secs(5), || {
            let (deployments, name) = (deployments.clone(), name.clone());
            async move { deployments.get_opt(&name).await.unwrap() }
        })
        .await;
        for (i, (at, metrics)) in proxies.into_iter().enumerate() {
            let mut pod = serde_json::to_value(ready_pod(
                "ai",
                &format!("{name}-{i}"),
                json!({ "firedrill.io/proxy": run }),
                &format!("Deployment/{name}"),
                "n1",
            ))
            .unwrap();
            pod["spec"]["containers"][0]["ports"] = json!([
                { "containerPort": at.port() },
                { "containerPort": metrics.port(), "name": "proxy-metrics" },
            ]);
            pod["status"]["podIP"] = json!("127.0.0.1");
            let pod: Pod = serde_json::from_value(pod).unwrap();
            Api::<Pod>::namespaced(client.clone(), "ai")
                .create(&PostParams::default(), &pod)
                .await
                .unwrap();
        }
    });
}

/// Stands in for kube-proxy and the dependency's clients: requests to the Service go to the
/// proxies once its selector names them (when `follows`), else to the real backend, until
/// `stop`.
fn clients(
    client: kube::Client,
    follows: bool,
    backend: SocketAddr,
    proxies: Vec<SocketAddr>,
    sent: Arc<Sent>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let services = Api::<Service>::namespaced(client, "ai");
        let http = self::client();
        let mut n = 0;
        while !stop.load(Ordering::SeqCst) {
            let swapped = services
                .get("gateway")
                .await
                .unwrap()
                .spec
                .and_then(|s| s.selector)
                .is_some_and(|s| s.contains_key("firedrill.io/proxy"));
            if swapped && follows {
                n += 1;
                sent.one(&http, proxies[n % proxies.len()]).await;
            } else {
                let _ = http.get(format!("http://{backend}/x")).send().await;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    })
}

/// The number after `word` in `text` ("took 120 requests" → 120).
fn number_after(text: &str, word: &str) -> u64 {
    let rest = &text[text
        .find(word)
        .unwrap_or_else(|| panic!("no {word:?} in {text}"))
        + word.len()..];
    rest.split(|c: char| !c.is_ascii_digit())
        .find(|s| !s.is_empty())
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_fault_seen_in_the_proxys_counts_and_ineffective_when_the_service_swap_is_ignored() {
    let fault = "    targets: [{ namespace: apps, selector: app=web, count: 1 }]\n    fault:\n      dependency: { service: ai/gateway }\n      mode: http-fault\n      http: { errors: [\"503:10%\", \"429:5%\"], reset: 5%, delay: 5ms }\n";
    for (follows, run) in [(true, "ai-seen"), (false, "ai-ignored")] {
        let client = evicting_cluster().await;
        web_and_gateway(&client).await;
        let backend = upstream().await;
        let proxies = vec![
            proxy(backend, faults()).await,
            proxy(backend, faults()).await,
        ];
        proxy_pods(client.clone(), run, proxies.clone());
        let (sent, stop) = (Arc::new(Sent::default()), Arc::new(AtomicBool::new(false)));
        let traffic = clients(
            client.clone(),
            follows,
            backend,
            proxies.iter().map(|(at, _)| *at).collect(),
            sent.clone(),
            stop.clone(),
        );
        let text = format!(
            "armed: true\nnamespace: {NS}\nsafety: {{ min_pod_age: 5m, limits: {{ error_rate: 25% }} }}\ndrills:\n  - name: ai\n    kind: dependency-failure\n    schedule: \"@monthly\"\n    duration: 3s\n{fault}"
        );
        let (config, drill, r) = one_drill(&text, run);
        let record = execute_on(&client, &config, &drill, &r, Some(Vec::new())).await;
        stop.store(true, Ordering::SeqCst);
        traffic.await.unwrap();
        let e = effect(&record);
        eprintln!("{run}: {e:?}; the clients: {sent:?}");
        assert!(
            e.how
                .contains("the fault proxy's own counts (GET /metrics on each of its pods)"),
            "{e:?}"
        );
        if follows {
            assert_eq!(record.status, RunStatus::Passed, "{record:#?}");
            assert_eq!(e.observed, Some(true), "{e:?}");
            assert!(e.what.contains("the fault proxy (2 pods) took "), "{e:?}");
            // What the run read is what the clients had sent by then.
            let (requests, failed, reset) = (
                number_after(&e.what, "took "),
                number_after(&e.what, "failed "),
                number_after(&e.what, "reset "),
            );
            let delayed = number_after(&e.what, "delayed ");
            assert!(failed + reset + delayed > 0, "{e:?}");
            assert!(
                requests <= sent.sent.load(Ordering::SeqCst),
                "{e:?} {sent:?}"
            );
            assert!(
                failed <= sent.injected.load(Ordering::SeqCst),
                "{e:?} {sent:?}"
            );
            assert!(reset <= sent.reset.load(Ordering::SeqCst), "{e:?} {sent:?}");
            // And the proxies' own counts at the end are what the clients sent, to the request.
            let mut total = 0;
            for (_, metrics) in &proxies {
                total += counter(*metrics, "requests").await;
            }
            assert_eq!(total, sent.sent.load(Ordering::SeqCst));
        } else {
            assert_ineffective(
                &client,
                &record,
                "the fault proxy behind Service ai/gateway faulting not seen by the end of the drill",
            )
            .await;
            assert!(
                record.reason.as_deref().unwrap().contains(
                    "the fault proxy took no request: nothing reached it through the Service"
                ),
                "{:?}",
                record.reason
            );
        }
        // The Service selects its own pods again either way.
        let selector = Api::<Service>::namespaced(client.clone(), "ai")
            .get("gateway")
            .await
            .unwrap()
            .spec
            .unwrap()
            .selector
            .unwrap();
        assert_eq!(selector.get("app").map(String::as_str), Some("gateway"));
        assert!(!selector.contains_key("firedrill.io/proxy"));
    }
}

// ---- region failover ----

fn credentials() {
    // moto accepts any signature; the chain must not go looking for instance metadata.
    std::env::set_var("AWS_ACCESS_KEY_ID", "firedrill-test");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "firedrill-test");
}

const USE1: &str = "192.0.2.1";
const EUW1: &str = "198.51.100.7";

/// A zone on moto with one weighted A record per region, each with its own value and health
/// check: (the drill's `dns:` block reaching Route 53 at `endpoint`, the zone id, the name,
/// us-east-1's health check).
async fn zone(moto: &str, endpoint: &str) -> (String, String, String, String) {
    use aws_sdk_route53::types::{
        Change, ChangeAction, ChangeBatch, HealthCheckConfig, HealthCheckType, ResourceRecord,
        ResourceRecordSet, RrType,
    };
    let route53 = Route53::new(Some(moto)).await;
    let tag = support::unique("ed");
    let zone = route53
        .sdk()
        .create_hosted_zone()
        .name(format!("{tag}.example.com"))
        .caller_reference(&tag)
        .send()
        .await
        .unwrap();
    let zone = zone
        .hosted_zone()
        .unwrap()
        .id()
        .trim_start_matches("/hostedzone/")
        .to_owned();
    let name = format!("api.{tag}.example.com");
    let (mut ids, mut changes) = (Vec::new(), Vec::new());
    for (region, value) in [("use1", USE1), ("euw1", EUW1)] {
        let check = route53
            .sdk()
            .create_health_check()
            .caller_reference(format!("{tag}-{region}"))
            .health_check_config(
                HealthCheckConfig::builder()
                    .r#type(HealthCheckType::Http)
                    .ip_address(value)
                    .port(80)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        let id = check.health_check().unwrap().id().to_owned();
        let set = ResourceRecordSet::builder()
            .name(&name)
            .r#type(RrType::A)
            .set_identifier(format!("{tag}-{region}"))
            .weight(50)
            .ttl(60)
            .health_check_id(&id)
            .resource_records(ResourceRecord::builder().value(value).build().unwrap())
            .build()
            .unwrap();
        changes.push(
            Change::builder()
                .action(ChangeAction::Create)
                .resource_record_set(set)
                .build()
                .unwrap(),
        );
        ids.push(id);
    }
    route53
        .sdk()
        .change_resource_record_sets()
        .hosted_zone_id(&zone)
        .change_batch(
            ChangeBatch::builder()
                .set_changes(Some(changes))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let yaml = format!(
        "      dns:\n        zone: {zone}\n        name: {name}\n        method: health-check\n        endpoint: {endpoint}\n        regions:\n          us-east-1: {{ set_identifier: {tag}-use1, health_check: {} }}\n          eu-west-1: {{ set_identifier: {tag}-euw1, health_check: {} }}\n",
        ids[0], ids[1]
    );
    (yaml, zone, name, ids[0].clone())
}

/// What a `TestDNSAnswer` stand-in was asked: each request's query.
type Asked = Arc<Mutex<Vec<String>>>;

/// Route 53 on the wire: `GET /2013-04-01/testdnsanswer` answered by the stand-in (moto lacks
/// it) with us-east-1's value while its health check (on moto) is not inverted and eu-west-1's
/// once it is, or (`follows` false: a Route 53 whose answers never moved) us-east-1's always;
/// every other call passed on to moto as it came.
async fn route53_with_answers(moto: String, check: String, follows: bool, asked: Asked) -> String {
    let addr = serve_http(move |request: Request<Incoming>| {
        let (moto, check, asked) = (moto.clone(), check.clone(), asked.clone());
        async move {
            if request.uri().path().ends_with("/testdnsanswer") {
                let query = request.uri().query().unwrap_or_default().to_owned();
                asked.lock().unwrap().push(query.clone());
                let inverted = Route53::new(Some(&moto))
                    .await
                    .health_check(&check)
                    .await
                    .unwrap()
                    .unwrap()["inverted"]
                    == json!(true);
                let value = if inverted && follows { EUW1 } else { USE1 };
                let name = query
                    .split('&')
                    .find_map(|p| p.strip_prefix("recordname="))
                    .unwrap_or_default()
                    .to_owned();
                return (200, format!(
                    r#"<?xml version="1.0" encoding="UTF-8"?>
<TestDNSAnswerResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><Nameserver>ns-1.awsdns-01.org</Nameserver><RecordName>{name}</RecordName><RecordType>A</RecordType><RecordData><RecordDataEntry>{value}</RecordDataEntry></RecordData><ResponseCode>NOERROR</ResponseCode><Protocol>UDP</Protocol></TestDNSAnswerResponse>"#
                ));
            }
            let (parts, body) = request.into_parts();
            let body = body.collect().await.unwrap().to_bytes();
            let path = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
            let mut forward = client().request(parts.method, format!("{moto}{path}")).body(body);
            for (name, value) in &parts.headers {
                if name != "host" {
                    forward = forward.header(name, value);
                }
            }
            let answer = forward.send().await.unwrap();
            (answer.status().as_u16(), answer.text().await.unwrap())
        }
    })
    .await;
    format!("http://{addr}")
}

fn failover(dns: &str) -> String {
    format!(
        "armed: true\nnamespace: {NS}\ndrills:\n  - name: region\n    kind: region-failover\n    schedule: \"@yearly\"\n    duration: 2s\n    fault:\n      from: us-east-1\n      to: eu-west-1\n      failback: {{ runbook: \"https://runbooks.example.com/failback\" }}\n{dns}"
    )
}

async fn inverted(moto: &str, check: &str) -> bool {
    Route53::new(Some(moto))
        .await
        .health_check(check)
        .await
        .unwrap()
        .unwrap()["inverted"]
        == json!(true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn region_failover_seen_in_route53s_answer_and_ineffective_when_it_keeps_answering_the_failed_region(
) {
    let Some(moto) = support::service("FIREDRILL_TEST_MOTO") else {
        return;
    };
    let moto = moto.as_str().trim_end_matches('/').to_owned();
    credentials();
    for (follows, run) in [(true, "dns-seen"), (false, "dns-ignored")] {
        let asked = Asked::default();
        // The zone is made on moto first, to know the check the stand-in reads.
        let (yaml, zone_id, name, check) = zone(&moto, "ENDPOINT").await;
        let endpoint =
            route53_with_answers(moto.clone(), check.clone(), follows, asked.clone()).await;
        let yaml = yaml.replace("ENDPOINT", &endpoint);
        let client = evicting_cluster().await;
        let (config, drill, r) = one_drill(&failover(&yaml), run);
        let record = execute_on(&client, &config, &drill, &r, None).await;
        let e = effect(&record);
        eprintln!("{run}: {e:?}");
        assert!(
            e.how.contains("Route 53's TestDNSAnswer for the record"),
            "{e:?}"
        );
        assert!(e.how.contains("resolvers are not asked"), "{e:?}");
        if follows {
            assert_eq!(record.status, RunStatus::Passed, "{record:#?}");
            assert_eq!(e.observed, Some(true), "{e:?}");
            assert!(
                e.what.contains(&format!(
                    "Route 53 answers {name}. A with {EUW1} (NOERROR): eu-west-1's"
                )),
                "{e:?}"
            );
        } else {
            assert_ineffective(
                &client,
                &record,
                &format!(
                    "Route 53 answering {name}. A with eu-west-1 not seen by the end of the drill"
                ),
            )
            .await;
            assert!(
                record
                    .reason
                    .as_deref()
                    .unwrap()
                    .contains(&format!("with {USE1} (NOERROR): still us-east-1's")),
                "{:?}",
                record.reason
            );
        }
        // Asked on the wire for the record, of the zone, by name and type.
        let asked = asked.lock().unwrap().clone();
        assert!(!asked.is_empty());
        for query in &asked {
            for part in [
                format!("hostedzoneid={zone_id}"),
                format!("recordname={name}."),
                "recordtype=A".to_owned(),
            ] {
                assert!(query.split('&').any(|p| p == part), "{part} not in {query}");
            }
        }
        // The health check is back either way.
        assert!(!inverted(&moto, &check).await);
    }
}

/// moto does not implement TestDNSAnswer: the run says it could not ask, counts it neither way,
/// and is judged as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_moto_the_answer_is_not_checked_and_the_run_says_why() {
    let Some(moto) = support::service("FIREDRILL_TEST_MOTO") else {
        return;
    };
    let moto = moto.as_str().trim_end_matches('/').to_owned();
    credentials();
    let (yaml, _, _, check) = zone(&moto, &moto).await;
    let client = evicting_cluster().await;
    let (config, drill, r) = one_drill(&failover(&yaml), "dns-moto");
    let record = execute_on(&client, &config, &drill, &r, None).await;
    assert_eq!(record.status, RunStatus::Passed, "{record:#?}");
    let e = effect(&record);
    assert_eq!(e.observed, None, "{e:?}");
    assert!(e.how.starts_with("not checked ("), "{e:?}");
    assert_eq!(
        e.what,
        format!("not checked: Route 53 at {moto} does not implement TestDNSAnswer (moto does not), so what it answers could not be asked")
    );
    assert!(!inverted(&moto, &check).await);
}
