//! Route 53 through `aws-sdk-route53`: what a region failover reads before it fires, and the
//! handler of its `route53` ledger records (a health check's `inverted`, a record set's whole
//! state). Changes are UPSERTs of the exact state recorded (never a delete) and wait, bounded,
//! until Route 53 reports them `INSYNC`. Credentials come from the standard AWS chain (IRSA in a
//! cluster); the endpoint is the drill's `fault.dns.endpoint`, else `FIREDRILL_ROUTE53_ENDPOINT`,
//! else AWS's.

use std::time::Duration;

use aws_sdk_route53::config::http::HttpResponse;
use aws_sdk_route53::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_route53::types::{
    AliasTarget, Change, ChangeAction, ChangeBatch, ChangeStatus, ResourceRecord,
    ResourceRecordSet, ResourceRecordSetFailover, ResourceRecordSetRegion, RrType,
};
use aws_sdk_route53::Client;
use firedrill_experiments::region::{Dns, DnsFacts};
use firedrill_rollback::{Access, ClusterError};
use serde_json::{json, Value};

/// Overrides the Route 53 endpoint when the drill names none.
pub const ENV_ENDPOINT: &str = "FIREDRILL_ROUTE53_ENDPOINT";

/// How often a pending change is looked at.
const POLL: Duration = Duration::from_millis(500);

/// What Route 53 answered for a record (`TestDNSAnswer`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsAnswered {
    /// The DNS response code (`NOERROR`, `NXDOMAIN`, …).
    pub code: String,
    pub values: Vec<String>,
}

/// A Route 53 client for one endpoint.
#[derive(Clone, Debug)]
pub struct Route53 {
    client: Client,
}

/// A Route 53 call's error, sorted by what a caller can do about it: `action` on `resource` is
/// the IAM permission the call needed (named when it is denied).
fn error<E>(what: &str, action: &str, resource: &str, e: SdkError<E, HttpResponse>) -> ClusterError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let message = format!("{what}: {}", DisplayErrorContext(&e));
    if matches!(e, SdkError::TimeoutError(_) | SdkError::DispatchFailure(_)) {
        return ClusterError::Transient { message };
    }
    let status = e.raw_response().map(|r| r.status().as_u16());
    match (e.code().unwrap_or_default(), status) {
        ("AccessDenied" | "AccessDeniedException", _) | (_, Some(403)) => ClusterError::Forbidden {
            access: Access {
                verb: format!("route53:{action}"),
                resource: resource.to_owned(),
                namespace: None,
            },
            message,
        },
        ("NoSuchHostedZone" | "NoSuchHealthCheck" | "NoSuchChange", _) | (_, Some(404)) => {
            ClusterError::NotFound { message }
        }
        ("HealthCheckVersionMismatch", _) | (_, Some(409)) => ClusterError::Conflict { message },
        ("Throttling" | "ThrottlingException" | "PriorRequestNotComplete", _)
        | (_, Some(429 | 500..=599)) => ClusterError::Transient { message },
        _ => ClusterError::Other { message },
    }
}

impl Route53 {
    /// A client for `endpoint` (`None`: `FIREDRILL_ROUTE53_ENDPOINT`, else AWS's), with the
    /// standard credential chain. Route 53 is global: its region is us-east-1.
    pub async fn new(endpoint: Option<&str>) -> Route53 {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .http_client(http);
        let from_env = std::env::var(ENV_ENDPOINT).ok().filter(|e| !e.is_empty());
        if let Some(endpoint) = endpoint.map(str::to_owned).or(from_env) {
            loader = loader.endpoint_url(endpoint);
        }
        Route53 {
            client: Client::new(&loader.load().await),
        }
    }

    /// The SDK client (tests and tools set up zones with it).
    pub fn sdk(&self) -> &Client {
        &self.client
    }

    /// Everything a fire is decided on: each region's record set and health check, and whether
    /// Route 53 reports the region healthy.
    pub async fn facts(&self, dns: &Dns) -> Result<DnsFacts, ClusterError> {
        let mut facts = DnsFacts::default();
        for (region, record) in &dns.regions {
            if let Some(set) = self
                .record_set(
                    &dns.zone,
                    &dns.name,
                    &dns.record_type,
                    &record.set_identifier,
                )
                .await?
            {
                facts.record_sets.insert(region.clone(), set);
            }
            if let Some(id) = &record.health_check {
                let check = self.health_check(id).await?.ok_or_else(|| {
                    format!("the health check {id} of region {region} does not exist")
                })?;
                facts.health_checks.insert(region.clone(), check);
                facts
                    .healthy
                    .insert(region.clone(), self.healthy(id).await?);
            }
        }
        Ok(facts)
    }

    /// Whether most of Route 53's checkers see the check's endpoint healthy.
    pub async fn healthy(&self, id: &str) -> Result<bool, ClusterError> {
        let status = self
            .client
            .get_health_check_status()
            .health_check_id(id)
            .send()
            .await
            .map_err(|e| {
                let what = format!("reading the status of health check {id}");
                error(
                    &what,
                    "GetHealthCheckStatus",
                    &format!("healthcheck/{id}"),
                    e,
                )
            })?;
        let reports: Vec<bool> = status
            .health_check_observations()
            .iter()
            .filter_map(|o| o.status_report().and_then(|r| r.status()))
            .map(|s| s.starts_with("Success"))
            .collect();
        Ok(!reports.is_empty() && reports.iter().filter(|ok| **ok).count() * 2 >= reports.len())
    }

    /// What Route 53's own name servers answer for the record now (`TestDNSAnswer`): the response
    /// code and the values. Only Route 53 is asked: resolvers that cached the record answer the
    /// old values until its TTL runs out. `Ok(None)`: this endpoint does not implement the call
    /// (it answers 404 without a Route 53 error code, as moto does).
    pub async fn answer(
        &self,
        zone: &str,
        name: &str,
        record_type: &str,
    ) -> Result<Option<DnsAnswered>, ClusterError> {
        let answer = self
            .client
            .test_dns_answer()
            .hosted_zone_id(zone)
            .record_name(name)
            .record_type(RrType::from(record_type))
            .send()
            .await;
        match answer {
            Ok(a) => Ok(Some(DnsAnswered {
                code: a.response_code().to_owned(),
                values: a.record_data().to_vec(),
            })),
            Err(e)
                if e.raw_response().map(|r| r.status().as_u16()) == Some(404)
                    && !e.code().unwrap_or_default().starts_with("NoSuch") =>
            {
                Ok(None)
            }
            Err(e) => {
                let what = format!("asking Route 53 what it answers for {name} {record_type}");
                Err(error(
                    &what,
                    "TestDNSAnswer",
                    &format!("hostedzone/{zone}"),
                    e,
                ))
            }
        }
    }

    /// A health check as a ledger records it: `inverted`, `disabled`, the version and the rest
    /// of its settings.
    pub async fn health_check(&self, id: &str) -> Result<Option<Value>, ClusterError> {
        let answer = match self
            .client
            .get_health_check()
            .health_check_id(id)
            .send()
            .await
        {
            Ok(answer) => answer,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_no_such_health_check()) =>
            {
                return Ok(None)
            }
            Err(e) => {
                let what = format!("reading health check {id}");
                return Err(error(
                    &what,
                    "GetHealthCheck",
                    &format!("healthcheck/{id}"),
                    e,
                ));
            }
        };
        let Some(check) = answer.health_check() else {
            return Ok(None);
        };
        let config = check.health_check_config();
        Ok(Some(json!({
            "inverted": config.and_then(|c| c.inverted()).unwrap_or(false),
            "disabled": config.and_then(|c| c.disabled()).unwrap_or(false),
            "version": check.health_check_version(),
            "type": config.map(|c| c.r#type().as_str().to_owned()),
            "fqdn": config.and_then(|c| c.fully_qualified_domain_name()),
            "ip": config.and_then(|c| c.ip_address()),
            "port": config.and_then(|c| c.port()),
            "path": config.and_then(|c| c.resource_path()),
            "failure_threshold": config.and_then(|c| c.failure_threshold()),
            "request_interval": config.and_then(|c| c.request_interval()),
        })))
    }

    /// One record set, found by name, type and set identifier, in the shape a ledger records.
    pub async fn record_set(
        &self,
        zone: &str,
        name: &str,
        record_type: &str,
        set_identifier: &str,
    ) -> Result<Option<Value>, ClusterError> {
        let answer = self
            .client
            .list_resource_record_sets()
            .hosted_zone_id(zone)
            .start_record_name(name)
            .start_record_type(RrType::from(record_type))
            .start_record_identifier(set_identifier)
            .max_items(100)
            .send()
            .await
            .map_err(|e| {
                let what = format!("listing the record sets of zone {zone}");
                error(
                    &what,
                    "ListResourceRecordSets",
                    &format!("hostedzone/{zone}"),
                    e,
                )
            })?;
        let wanted = |s: &&ResourceRecordSet| {
            same_name(s.name(), name)
                && s.r#type().as_str() == record_type
                && s.set_identifier() == Some(set_identifier)
        };
        answer
            .resource_record_sets()
            .iter()
            .find(wanted)
            .map(to_value)
            .transpose()
    }

    /// Makes `state` so for `target` (a health check or a record set, as a ledger names it):
    /// the forward change of a step and its undo alike.
    pub async fn set(&self, target: &Value, state: &Value) -> Result<(), ClusterError> {
        self.change(target, state).await.map(|_| ())
    }

    /// [`Route53::set`], saying what it changed: the health check and its version, or the
    /// record set and Route 53's change id, for the run's evidence.
    pub async fn change(&self, target: &Value, state: &Value) -> Result<String, ClusterError> {
        if let Some(id) = target.get("health_check").and_then(Value::as_str) {
            let inverted = state
                .get("inverted")
                .and_then(Value::as_bool)
                .ok_or("a health-check change must set `inverted`")?;
            let now = self
                .health_check(id)
                .await?
                .ok_or_else(|| ClusterError::NotFound {
                    message: format!("the health check {id} no longer exists"),
                })?;
            // Only if nobody changed the check since it was read.
            self.client
                .update_health_check()
                .health_check_id(id)
                .health_check_version(now["version"].as_i64().unwrap_or(1))
                .inverted(inverted)
                .send()
                .await
                .map_err(|e| {
                    let hint = if e
                        .as_service_error()
                        .is_some_and(|s| s.is_health_check_version_mismatch())
                    {
                        " (someone changed the check since it was read: read it again and decide)"
                    } else {
                        ""
                    };
                    error(
                        &format!("setting health check {id} inverted={inverted}{hint}"),
                        "UpdateHealthCheck",
                        &format!("healthcheck/{id}"),
                        e,
                    )
                })?;
            return Ok(format!(
                "health check {id}: inverted={inverted} (was version {})",
                now["version"].as_i64().unwrap_or(1)
            ));
        }
        let zone = text(target, "zone")?;
        let set = from_value(state)?;
        let change = Change::builder()
            .action(ChangeAction::Upsert)
            .resource_record_set(set)
            .build()
            .map_err(|e| e.to_string())?;
        let batch = ChangeBatch::builder()
            .comment("firedrill region failover")
            .changes(change)
            .build()
            .map_err(|e| e.to_string())?;
        let answer = self
            .client
            .change_resource_record_sets()
            .hosted_zone_id(zone)
            .change_batch(batch)
            .send()
            .await
            .map_err(|e| {
                error(
                    &format!(
                        "changing record set {} {} ({}) in zone {zone}",
                        state["name"].as_str().unwrap_or("?"),
                        state["type"].as_str().unwrap_or("?"),
                        state["set_identifier"].as_str().unwrap_or("?")
                    ),
                    "ChangeResourceRecordSets",
                    &format!("hostedzone/{zone}"),
                    e,
                )
            })?;
        let wait = Duration::from_secs(
            target
                .get("wait_seconds")
                .and_then(Value::as_u64)
                .unwrap_or(120),
        );
        let what = format!(
            "record set {} {} ({}) in zone {zone}",
            state["name"].as_str().unwrap_or("?"),
            state["type"].as_str().unwrap_or("?"),
            state["set_identifier"].as_str().unwrap_or("-")
        );
        match answer.change_info() {
            Some(info) if info.status() != &ChangeStatus::Insync => {
                self.wait_insync(info.id(), wait).await?;
                Ok(format!("{what}: change {} INSYNC", info.id()))
            }
            Some(info) => Ok(format!("{what}: change {} INSYNC", info.id())),
            None => Ok(format!("{what}: no change id returned")),
        }
    }

    /// Waits until the change is `INSYNC`, at most `wait`.
    pub async fn wait_insync(&self, id: &str, wait: Duration) -> Result<(), ClusterError> {
        let until = tokio::time::Instant::now() + wait;
        loop {
            let answer = self.client.get_change().id(id).send().await.map_err(|e| {
                let what = format!("reading change {id}");
                error(&what, "GetChange", &format!("change/{id}"), e)
            })?;
            if answer.change_info().map(|i| i.status()) == Some(&ChangeStatus::Insync) {
                return Ok(());
            }
            if tokio::time::Instant::now() + POLL > until {
                return Err(ClusterError::Transient {
                    message: format!(
                    "the change {id} was not INSYNC after {}s (fault.dns.wait); it may still apply",
                    wait.as_secs()
                ),
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The state now of what a ledger record names.
    pub async fn read(&self, target: &Value) -> Result<Option<Value>, ClusterError> {
        if let Some(id) = target.get("health_check").and_then(Value::as_str) {
            return self.health_check(id).await;
        }
        self.record_set(
            text(target, "zone")?,
            text(target, "name")?,
            text(target, "type")?,
            text(target, "set_identifier")?,
        )
        .await
    }
}

/// The handlers of changes outside Kubernetes, by `system`, with one client per endpoint.
#[derive(Clone, Default)]
pub struct Externals {
    route53: std::sync::Arc<tokio::sync::Mutex<std::collections::HashMap<Option<String>, Route53>>>,
    /// What each change did (Route 53 change ids), until [`Externals::take_changes`].
    changes: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Externals {
    async fn route53(&self, system: &str, target: &Value) -> Result<Route53, ClusterError> {
        if system != firedrill_experiments::region::ROUTE53 {
            return Err(ClusterError::other(format!(
                "no handler for changes in {system} in this version of firedrill; undo it by hand"
            )));
        }
        let endpoint = target
            .get("endpoint")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let mut clients = self.route53.lock().await;
        if let Some(client) = clients.get(&endpoint) {
            return Ok(client.clone());
        }
        let client = Route53::new(endpoint.as_deref()).await;
        clients.insert(endpoint, client.clone());
        Ok(client)
    }

    /// The state now of what a record names.
    pub async fn read(&self, system: &str, target: &Value) -> Result<Option<Value>, ClusterError> {
        self.route53(system, target).await?.read(target).await
    }

    /// Carries out an external operation's action (`{target, set}`).
    pub async fn apply(&self, system: &str, action: &Value) -> Result<(), ClusterError> {
        let target = action.get("target").unwrap_or(&Value::Null);
        let state = action
            .get("set")
            .ok_or_else(|| format!("the {system} change says nothing to set"))?;
        let done = self
            .route53(system, target)
            .await?
            .change(target, state)
            .await?;
        if let Ok(mut changes) = self.changes.lock() {
            changes.push(done);
        }
        Ok(())
    }

    /// The changes made since the last call, each with its Route 53 change id.
    pub fn take_changes(&self) -> Vec<String> {
        self.changes
            .lock()
            .map(|mut c| std::mem::take(&mut *c))
            .unwrap_or_default()
    }
}

fn text<'v>(value: &'v Value, key: &str) -> Result<&'v str, ClusterError> {
    value
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| {
            ClusterError::other(format!("a route53 ledger record has no `{key}` in its target (the entry is damaged: restore that record by hand)"))
        })
}

/// Route 53 answers names with the trailing dot and may escape characters; compare loosely.
fn same_name(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

/// A record set as a ledger records it. Routing firedrill cannot restore exactly (geolocation,
/// CIDR, geoproximity, multivalue, traffic policies) is refused, so nothing it changes is lost.
fn to_value(set: &ResourceRecordSet) -> Result<Value, ClusterError> {
    let unsupported = [
        (set.geo_location().is_some(), "geolocation"),
        (set.cidr_routing_config().is_some(), "CIDR routing"),
        (set.geo_proximity_location().is_some(), "geoproximity"),
        (set.multi_value_answer().is_some(), "multivalue answer"),
        (
            set.traffic_policy_instance_id().is_some(),
            "a traffic policy",
        ),
    ];
    if let Some((_, what)) = unsupported.iter().find(|(has, _)| *has) {
        return Err(ClusterError::other(format!(
            "the record set {} {} uses {what}, which firedrill cannot restore exactly; use fault.dns.method health-check",
            set.name(),
            set.r#type().as_str()
        )));
    }
    Ok(json!({
        "name": set.name(),
        "type": set.r#type().as_str(),
        "set_identifier": set.set_identifier(),
        "weight": set.weight(),
        "region": set.region().map(|r| r.as_str()),
        "failover": set.failover().map(|f| f.as_str()),
        "ttl": set.ttl(),
        // In a stable order: Route 53 does not promise one, and a revert compares them.
        "records": sorted(set.resource_records().iter().map(|r| r.value()).collect()),
        "alias": set.alias_target().map(|a| json!({
            "zone": a.hosted_zone_id(),
            "dns_name": a.dns_name(),
            "evaluate_target_health": a.evaluate_target_health(),
        })),
        "health_check_id": set.health_check_id(),
    }))
}

fn sorted(mut values: Vec<&str>) -> Vec<&str> {
    values.sort_unstable();
    values
}

/// The record set a recorded state describes.
fn from_value(state: &Value) -> Result<ResourceRecordSet, ClusterError> {
    let opt = |key: &str| state.get(key).and_then(Value::as_str);
    let mut set = ResourceRecordSet::builder()
        .name(text(state, "name")?)
        .r#type(RrType::from(text(state, "type")?))
        .set_identifier(text(state, "set_identifier")?);
    if let Some(w) = state.get("weight").and_then(Value::as_i64) {
        set = set.weight(w);
    }
    if let Some(r) = opt("region") {
        set = set.region(ResourceRecordSetRegion::from(r));
    }
    if let Some(f) = opt("failover") {
        set = set.failover(ResourceRecordSetFailover::from(f));
    }
    if let Some(ttl) = state.get("ttl").and_then(Value::as_i64) {
        set = set.ttl(ttl);
    }
    for value in state
        .get("records")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        set = set.resource_records(
            ResourceRecord::builder()
                .value(value)
                .build()
                .map_err(|e| e.to_string())?,
        );
    }
    if let Some(alias) = state.get("alias").filter(|a| !a.is_null()) {
        set = set.alias_target(
            AliasTarget::builder()
                .hosted_zone_id(text(alias, "zone")?)
                .dns_name(text(alias, "dns_name")?)
                .evaluate_target_health(
                    alias
                        .get("evaluate_target_health")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                )
                .build()
                .map_err(|e| e.to_string())?,
        );
    }
    if let Some(id) = opt("health_check_id") {
        set = set.health_check_id(id);
    }
    set.build().map_err(|e| ClusterError::other(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_set_survives_the_round_trip_through_the_ledger() {
        let state = json!({
            "name": "api.example.com.", "type": "A", "set_identifier": "use1", "weight": 100,
            "region": null, "failover": null, "ttl": 60, "records": ["192.0.2.1", "192.0.2.2"],
            "alias": null, "health_check_id": "hc-1",
        });
        let set = from_value(&state).unwrap();
        assert_eq!(to_value(&set).unwrap(), state);
        let alias = json!({
            "name": "www.example.com.", "type": "A", "set_identifier": "euw1", "weight": null,
            "region": null, "failover": "SECONDARY", "ttl": null, "records": [],
            "alias": { "zone": "Z2", "dns_name": "lb.eu.example.com.", "evaluate_target_health": true },
            "health_check_id": null,
        });
        assert_eq!(to_value(&from_value(&alias).unwrap()).unwrap(), alias);
    }
}
