//! region failover: whether Route 53 answers for the record with the region taking over, asked
//! with `TestDNSAnswer` (what Route 53's own name servers answer). Only Route 53 can be asked:
//! a resolver that cached the record keeps answering the failed region until the TTL runs out,
//! and no resolver is asked.

use firedrill_experiments::DnsAnswer;
use firedrill_rollback::ClusterError;

use super::Look;
use crate::cluster::route53::{DnsAnswered, Route53};

/// Why the answer cannot tell which region serves, if it cannot (said before the fault).
pub(super) fn cannot_tell(dns: &DnsAnswer) -> Option<String> {
    if dns.answers.is_empty() {
        return Some(format!(
            "not checked: the record set of {} holds no values firedrill read (an alias?), so no answer can be told to be its",
            dns.to
        ));
    }
    if dns.failed_answers.is_empty() {
        return Some(format!(
            "not checked: the record sets of {} and {} hold the same values ({}), so no answer can tell them apart",
            dns.from,
            dns.to,
            dns.answers.join(", ")
        ));
    }
    None
}

/// One question to Route 53: what it answers, judged.
pub(super) async fn look(dns: &DnsAnswer) -> Result<Look, ClusterError> {
    let route53 = Route53::new(dns.endpoint.as_deref()).await;
    let answered = route53
        .answer(&dns.zone, &dns.name, &dns.record_type)
        .await?;
    Ok(match answered {
        None => Look::Unchecked(format!(
            "not checked: Route 53 at {} does not implement TestDNSAnswer (moto does not), so what it answers could not be asked",
            dns.endpoint.as_deref().unwrap_or("AWS")
        )),
        Some(answered) => judge(dns, &answered),
    })
}

/// Whether `answered` is the region taking over's.
pub(super) fn judge(dns: &DnsAnswer, answered: &DnsAnswered) -> Look {
    let said = format!(
        "Route 53 answers {} {} with {} ({})",
        dns.name,
        dns.record_type,
        match answered.values.is_empty() {
            true => "nothing".to_owned(),
            false => answered.values.join(", "),
        },
        answered.code
    );
    let theirs = |v: &String| dns.answers.contains(v);
    let failed: Vec<&String> = answered
        .values
        .iter()
        .filter(|v| dns.failed_answers.contains(v))
        .collect();
    match (answered.values.iter().any(theirs), failed.is_empty()) {
        (true, true) => Look::Seen(format!("{said}: {}'s", dns.to)),
        (_, false) => Look::Not(format!("{said}: still {}'s", dns.from)),
        (false, true) => Look::Not(format!(
            "{said}: not {}'s ({})",
            dns.to,
            dns.answers.join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dns() -> DnsAnswer {
        DnsAnswer {
            zone: "Z1".into(),
            name: "api.example.com.".into(),
            record_type: "A".into(),
            endpoint: None,
            to: "eu-west-1".into(),
            answers: vec!["198.51.100.7".into()],
            from: "us-east-1".into(),
            failed_answers: vec!["192.0.2.1".into()],
        }
    }

    fn answered(values: &[&str]) -> DnsAnswered {
        DnsAnswered {
            code: "NOERROR".into(),
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    #[test]
    fn the_answer_of_the_region_taking_over_is_the_fault() {
        assert!(matches!(
            judge(&dns(), &answered(&["198.51.100.7"])),
            Look::Seen(_)
        ));
        let Look::Not(why) = judge(&dns(), &answered(&["192.0.2.1"])) else {
            panic!()
        };
        assert!(why.ends_with("still us-east-1's"), "{why}");
        let Look::Not(why) = judge(&dns(), &answered(&[])) else {
            panic!()
        };
        assert!(why.contains("with nothing"), "{why}");
    }

    #[test]
    fn regions_that_answer_alike_cannot_be_told_apart() {
        let mut same = dns();
        same.failed_answers.clear();
        assert!(cannot_tell(&same).unwrap().contains("same values"));
        assert!(cannot_tell(&dns()).is_none());
    }
}
