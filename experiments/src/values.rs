//! The values kinds' settings (and the rest of the drill file) are written in: durations within
//! bounds, whole percentages, CIDRs, label selectors, http(s) URLs and helper images. A parser's
//! error is a message for a person; the reader places it at file:line:col.

use std::collections::BTreeMap;
use std::time::Duration;

use firedrill_reader::duration;
use firedrill_reader::read::{Fields, Reader};
use firedrill_reader::yaml::Node;
use firedrill_safety::Selector;

/// A duration from zero to `max`.
pub fn within(r: &mut Reader, node: &Node, path: &str, max: Duration) -> Option<Duration> {
    r.parsed(node, path, "a duration", |s| {
        duration::parse_within(s, Duration::ZERO, max)
    })
}

/// The optional `image` key of a kind whose helper pod runs an image: the one given (`what` says
/// what it must hold), else the kind's `default`.
pub fn read_image(r: &mut Reader, f: &Fields, what: &str, default: &str) -> Option<String> {
    match f.get("image") {
        Some(n) => r.text(n, &f.path_of("image"), what).map(str::to_owned),
        None => Some(default.to_owned()),
    }
}

/// A whole percentage from 1% to 100%.
// Result<_, String>: the message for a person is the whole point: placed at file:line:col by the
// reader.
pub fn load_percent(text: &str) -> Result<u32, String> {
    let whole = || format!("{text:?} is not a whole percentage from 1% to 100% (e.g. 80%)");
    let p = firedrill_safety::Percent::parse(text, false).map_err(|_| whole())?;
    if p.hundredths() == 0 || p.hundredths() % 100 != 0 || p.hundredths() > 10_000 {
        return Err(whole());
    }
    Ok(p.hundredths() / 100)
}

/// A label selector in Kubernetes's syntax.
// Result<_, String>: the message for a person is the whole point: placed at file:line:col by the
// reader (the selector's own error, with the syntax to write).
pub fn parse_selector(text: &str) -> Result<Selector, String> {
    Selector::parse(text).map_err(|e| {
        format!(
            "{} (Kubernetes selector syntax: key=value, key!=value, key in (a,b), key notin (a,b), key, !key; comma-separated)",
            e
        )
    })
}

/// A selector of equal labels only (what a NetworkPolicy peer can select by).
// Result<_, String>: the message for a person is the whole point: placed at file:line:col by the
// reader.
pub fn equal_labels(s: &str) -> Result<BTreeMap<String, String>, String> {
    let selector = parse_selector(s)?;
    let mut labels = BTreeMap::new();
    for req in selector.requirements() {
        match req {
            firedrill_safety::Requirement::Equals(k, v) => {
                labels.insert(k.clone(), v.clone());
            }
            other => {
                return Err(format!(
                    "`{other}` is not key=value: a NetworkPolicy peer selects by equal labels only"
                ))
            }
        }
    }
    if labels.is_empty() {
        return Err(
            "an empty selector would select every pod of the namespace; name the pods".into(),
        );
    }
    Ok(labels)
}

// Result<_, String>: the message for a person is the whole point: placed at file:line:col by the
// reader.
pub fn cidr(s: &str) -> Result<String, String> {
    let bad = || format!("{s:?} is not a CIDR (write e.g. 10.0.0.0/8 or fd00::/8)");
    let (ip, prefix) = s.split_once('/').ok_or_else(bad)?;
    let ip: std::net::IpAddr = ip.parse().map_err(|_| bad())?;
    let prefix: u8 = prefix.parse().map_err(|_| bad())?;
    if prefix > if ip.is_ipv4() { 32 } else { 128 } {
        return Err(bad());
    }
    Ok(s.to_owned())
}

/// An http(s) URL with a host.
// Result<_, String>: the message for a person is the whole point: placed at file:line:col by the
// reader.
pub fn parse_http_url(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|e| {
        format!("{text:?} is not a URL: {e} (write e.g. http://service.namespace.svc:8080/path)")
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!(
            "{text:?} is not an http(s) URL with a host (write e.g. http://service.namespace.svc:8080/path)"
        ));
    }
    Ok(url)
}
