//! `notify:` and `announce:`: who hears about a drill, and how long before it fires.
//!
//! A receiver's URL usually comes from the environment (`url_env`), so that it can come from a
//! Secret; a literal `url:` is allowed for receivers with nothing secret in their address. Either
//! way only http(s) is accepted: a literal one is checked here, at file:line:col; one from the
//! environment is checked when the scheduler starts (see [`Receiver::resolve`]).

use std::time::Duration;

use firedrill_experiments::values::parse_http_url;
use firedrill_reader::duration;
use firedrill_reader::read::{child, read_items, Reader};
use firedrill_reader::yaml::Node;

use super::dns_label;

/// How long before each fire the announcement goes out when the file does not say.
pub const DEFAULT_ANNOUNCE: Duration = Duration::from_secs(15 * 60);
/// The longest `announce:` accepted: a week ahead.
const LONGEST_ANNOUNCE: Duration = Duration::from_secs(7 * 86_400);

/// What a receiver hears about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Event {
    /// Before the fire, `announce:` ahead.
    Announce,
    /// The scheduler created the fire's Job.
    Start,
    /// The run's record says how it ended.
    Outcome,
}

impl Event {
    pub const ALL: [Event; 3] = [Event::Announce, Event::Start, Event::Outcome];

    pub fn as_str(self) -> &'static str {
        match self {
            Event::Announce => "announce",
            Event::Start => "start",
            Event::Outcome => "outcome",
        }
    }
}

/// The body a receiver is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `{text, blocks}`, as Slack's incoming webhooks (and Mattermost, Rocket.Chat) take it.
    Slack,
    /// A CloudEvents-shaped JSON object (structured mode, `application/cloudevents+json`).
    Generic,
}

/// Where a receiver's URL comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Address {
    /// The named environment variable, read when the scheduler starts.
    Env(String),
    /// Written in the file (checked to be http(s) when read).
    Url(url::Url),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receiver {
    /// Names the receiver in logs and in `/metrics` labels.
    pub name: String,
    pub address: Address,
    pub format: Format,
    /// What it hears about (every event unless the file says).
    pub events: Vec<Event>,
}

/// Why a receiver's URL cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AddressError {
    #[error("notify receiver {receiver:?}: environment variable {var} is not set, so it is sent nothing (set it, e.g. from a Secret: env[].valueFrom.secretKeyRef)")]
    Unset { receiver: String, var: String },
    #[error("notify receiver {receiver:?}: environment variable {var} does not hold an http(s) URL: {problem}")]
    NotHttp {
        receiver: String,
        var: String,
        problem: String,
    },
}

impl Receiver {
    pub fn hears(&self, event: Event) -> bool {
        self.events.contains(&event)
    }

    /// The URL to post to, with `env` looking up the environment.
    pub fn resolve(&self, env: impl Fn(&str) -> Option<String>) -> Result<url::Url, AddressError> {
        match &self.address {
            Address::Url(url) => Ok(url.clone()),
            Address::Env(var) => {
                let value = env(var).filter(|v| !v.trim().is_empty()).ok_or_else(|| {
                    AddressError::Unset {
                        receiver: self.name.clone(),
                        var: var.clone(),
                    }
                })?;
                // The value is a secret: the message names the variable, never what it holds.
                parse_http_url(value.trim()).map_err(|_| AddressError::NotHttp {
                    receiver: self.name.clone(),
                    var: var.clone(),
                    problem: "not a URL with an http or https scheme and a host".to_owned(),
                })
            }
        }
    }
}

const RECEIVER_KEYS: &[&str] = &["name", "url_env", "url", "format", "events"];

/// A `notify:` list at `path`: every receiver, each problem at its place; names unique (checked
/// even for receivers with other problems, so a duplicate is reported with them).
pub(super) fn read_receivers(r: &mut Reader, node: &Node, path: &str) -> Option<Vec<Receiver>> {
    let mut ok = true;
    if let firedrill_reader::yaml::Value::Sequence(items) = &node.value {
        for (i, item) in items.iter().enumerate() {
            let Some(name) = super::drill_name(item) else {
                continue;
            };
            if items[..i]
                .iter()
                .any(|o| super::drill_name(o) == Some(name))
            {
                r.error(
                    super::name_mark(item),
                    child(&firedrill_reader::read::item(path, i), "name"),
                    format!("receiver name {name:?} is used twice (names must be unique)"),
                );
                ok = false;
            }
        }
    }
    let receivers = read_items(r, node, path, "notify receivers", read_receiver)?;
    ok.then_some(receivers)
}

fn read_receiver(r: &mut Reader, node: &Node, path: &str) -> Option<Receiver> {
    let f = r.fields(node, path, RECEIVER_KEYS)?;
    let name = r
        .required(&f, "name", "a name for the receiver (a DNS-1123 label)")
        .and_then(|n| {
            r.parsed(n, &child(path, "name"), "a DNS-1123 label", |s| {
                dns_label(s, 63).map(|()| s.to_owned())
            })
        });
    let address = match (f.get("url_env"), f.get("url")) {
        (Some(_), Some(n)) => {
            r.error(
                n.mark,
                child(path, "url"),
                "give either `url_env` or `url`, not both",
            );
            None
        }
        (Some(n), None) => r
            .parsed(
                n,
                &child(path, "url_env"),
                "an environment variable name",
                env_name,
            )
            .map(Address::Env),
        (None, Some(n)) => r
            .parsed(n, &child(path, "url"), "an http(s) URL", parse_http_url)
            .map(Address::Url),
        (None, None) => {
            r.error(
                f.mark,
                child(path, "url_env"),
                "missing (name the environment variable holding the webhook URL, e.g. `url_env: SLACK_WEBHOOK_URL`, or write `url:`)",
            );
            None
        }
    };
    let format = match f.get("format") {
        Some(n) => r.parsed(n, &child(path, "format"), "slack or generic", |s| match s {
            "slack" => Ok(Format::Slack),
            "generic" => Ok(Format::Generic),
            _ => Err(format!("{s:?} is not allowed (allowed: slack, generic)")),
        }),
        None => Some(Format::Generic),
    };
    let events = match f.get("events") {
        Some(n) => read_events(r, n, &child(path, "events")),
        None => Some(Event::ALL.to_vec()),
    };
    Some(Receiver {
        name: name?,
        address: address?,
        format: format?,
        events: events?,
    })
}

fn read_events(r: &mut Reader, node: &Node, path: &str) -> Option<Vec<Event>> {
    let events = read_items(r, node, path, "events", |r, n, at| {
        r.parsed(n, at, "an event", |s| {
            Event::ALL
                .into_iter()
                .find(|e| e.as_str() == s)
                .ok_or_else(|| format!("{s:?} is not an event (allowed: announce, start, outcome)"))
        })
    })?;
    if events.is_empty() {
        r.error(
            node.mark,
            path,
            "empty list (name at least one of announce, start, outcome, or leave out `events` for all)",
        );
        return None;
    }
    let mut events = events;
    events.sort();
    events.dedup();
    Some(events)
}

/// `announce:` at `path`: a duration from 0 (no announcement) to a week.
pub(super) fn read_announce(r: &mut Reader, node: &Node, path: &str) -> Option<Duration> {
    r.parsed(node, path, "a duration such as 15m, or 0 for none", |s| {
        if s.trim() == "0" {
            return Ok(Duration::ZERO);
        }
        duration::parse_within(s, Duration::ZERO, LONGEST_ANNOUNCE)
    })
}

/// A `url_env:` that is no environment variable name.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not an environment variable name (letters, digits and _, not starting with a digit, e.g. SLACK_WEBHOOK_URL)")]
struct NotEnvName(String);

/// An environment variable name as a shell and a Pod spec accept it.
fn env_name(text: &str) -> Result<String, NotEnvName> {
    let mut chars = text.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Ok(text.to_owned());
    }
    Err(NotEnvName(text.to_owned()))
}

/// The receivers of a drill: the file's, with the drill's own added; a drill's receiver named
/// like one of the file's takes its place (to send it other events, or elsewhere).
pub(super) fn for_drill(file: &[Receiver], drill: Option<Vec<Receiver>>) -> Vec<Receiver> {
    let Some(own) = drill else {
        return file.to_vec();
    };
    let mut all: Vec<Receiver> = file
        .iter()
        .filter(|f| !own.iter().any(|o| o.name == f.name))
        .cloned()
        .collect();
    all.extend(own);
    all
}
