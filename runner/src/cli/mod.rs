//! The command line: argument definitions and what each command does. Exit codes are a contract:
//! `validate` and `plan` exit 0 on success, 1 when the drill file (or cluster snapshot) is
//! invalid, 2 for usage or I/O errors; `execute` and `run --wait` exit with the run's outcome
//! (0 passed or dry-run, 1 failed, 2 aborted, 3 blocked, 4 error, 6 ineffective).

mod runtime;

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand, ValueEnum};
use firedrill_safety::cluster::Cluster;

use crate::cluster::snapshot::{self, SnapshotError};
use crate::config::{Config, LoadError};
use crate::schedule::upcoming::{self, Window};

#[derive(Debug, Parser)]
#[command(
    name = "firedrill",
    version,
    about = "Recurring chaos and disaster-recovery drills on Kubernetes, safe to leave unattended."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log level, in `tracing` filter syntax (e.g. `debug`, `firedrill=debug`); overrides
    /// FIREDRILL_LOG_LEVEL. Default info.
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Log format: text (readable, coloured on a terminal unless NO_COLOR is set) or json;
    /// overrides FIREDRILL_LOG. Default: text on a terminal, json otherwise.
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// How the commands that log were asked to (set once, from the command line).
pub static LOGGING: std::sync::OnceLock<(Option<String>, Option<LogFormat>)> =
    std::sync::OnceLock::new();

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a shell completion script: `source <(firedrill completions bash)`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `firedrill man | man -l -`.
    Man,
    /// Check a drill file and report every problem in it, one per line.
    Validate {
        /// The drill file.
        #[arg(long, short = 'c', value_name = "FILE")]
        config: PathBuf,
    },
    /// Show the calendar of upcoming fires and what becomes of each.
    Plan {
        /// The drill file.
        #[arg(long, short = 'c', value_name = "FILE")]
        config: PathBuf,
        /// Start of the window, RFC 3339 (default: now).
        #[arg(long, value_name = "T", value_parser = parse_instant)]
        from: Option<DateTime<Utc>>,
        /// End of the window, RFC 3339, exclusive (default: one year after --from).
        #[arg(long, value_name = "T", value_parser = parse_instant, conflicts_with = "next")]
        until: Option<DateTime<Utc>>,
        /// Show only the next N fires.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000), conflicts_with = "until", allow_negative_numbers = true)]
        next: Option<u32>,
        /// A cluster snapshot, as printed by
        /// `kubectl get pods,deployments,statefulsets,replicasets,daemonsets,poddisruptionbudgets,services,namespaces,nodes -A -o yaml`:
        /// adds to each fire the pods it would hit, the pods it leaves alone and why, or why it
        /// is blocked.
        #[arg(long, value_name = "SNAPSHOT")]
        cluster: Option<PathBuf>,
        /// Instead of the calendar, one fire of every drill at this instant (RFC 3339).
        #[arg(long, value_name = "T", value_parser = parse_instant, conflicts_with_all = ["until", "next", "from"])]
        at: Option<DateTime<Utc>>,
        /// With --render: the drill whose fire to render.
        #[arg(long, value_name = "NAME", requires = "render")]
        drill: Option<String>,
        /// Print, as YAML documents, every change one fire of --drill at --at would make to the
        /// --cluster snapshot, each with the undo record that reverts it. Needs no cluster.
        #[arg(long, requires_all = ["drill", "at", "cluster"], conflicts_with = "format")]
        render: bool,
        /// Output format of the calendar (--render prints YAML).
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Run the scheduler: one leader fires each drill as a Job at its instant.
    Scheduler {
        /// The drill file.
        #[arg(long, short = 'c', value_name = "FILE")]
        config: PathBuf,
        /// Where /metrics, /healthz and /readyz listen.
        #[arg(long, default_value = "0.0.0.0:8080", value_name = "ADDR")]
        listen: std::net::SocketAddr,
        /// This instance's name in the Lease (default: $POD_NAME, else the host name).
        #[arg(long, value_name = "ID")]
        identity: Option<String>,
        /// How often the scheduler looks at the calendar and the cluster.
        #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "DURATION", allow_hyphen_values = true)]
        tick: std::time::Duration,
    },
    /// Run one drill in this process (what a drill Job runs).
    Execute {
        /// The drill file.
        #[arg(long, short = 'c', value_name = "FILE")]
        config: PathBuf,
        /// The drill to run, by its name in the file.
        #[arg(long, value_name = "NAME")]
        drill: String,
        /// The run id: a DNS-1123 label of at most 63 characters, used once (default: a fresh
        /// manual run id from the drill, the minute and a random tail).
        #[arg(long, value_name = "ID")]
        run: Option<String>,
        /// The instant the run was scheduled for (default: now).
        #[arg(long, value_name = "T", value_parser = parse_scheduled)]
        scheduled: Option<DateTime<Utc>>,
        /// Change nothing, whatever `armed` says.
        #[arg(long)]
        dry_run: bool,
    },
    /// Start a drill now, as a Job, and print its name.
    Run {
        /// The drill's name.
        drill: String,
        /// The drill file.
        #[arg(long, short = 'c', value_name = "FILE")]
        config: PathBuf,
        /// Change nothing, whatever `armed` says.
        #[arg(long)]
        dry_run: bool,
        /// Follow the Job and exit with its outcome.
        #[arg(long, conflicts_with = "render")]
        wait: bool,
        /// Print the Job as YAML instead of creating it; needs no cluster.
        #[arg(long)]
        render: bool,
    },
    /// The leader, the kill switch, running drills and the next fires.
    Status {
        /// The drill file.
        #[arg(long, short = 'c', value_name = "FILE")]
        config: PathBuf,
    },
    /// Emergency stop: engage the kill switch, delete running drill Jobs, sweep every
    /// firedrill artifact and revert every open ledger. Needs only Kubernetes credentials (and AWS credentials to revert a region failover's DNS).
    Stop {
        #[command(flatten)]
        target: ClusterTarget,
        /// Why, for the kill switch and the people who find it.
        #[arg(long, value_name = "TEXT", default_value = "emergency stop")]
        reason: String,
    },
    /// Whether firedrill will work in this cluster, reading only: the API and its version, RBAC
    /// for every verb the drill file's kinds need (SelfSubjectAccessReview), each helper's Pod
    /// Security level, the ledger key and kill switch, the store, the Pushgateway, Prometheus
    /// and Alertmanager, the scheduler's image, Route 53. One line per check, ✓ or ✗ with the
    /// fix.
    Check {
        #[command(flatten)]
        target: ClusterTarget,
        /// Output format.
        #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
        format: CheckFormat,
        /// Also run the NetworkPolicy enforcement canary: two short-lived pods and a
        /// NetworkPolicy in firedrill's namespace, through a ledger, removed at the end.
        #[arg(long)]
        network: bool,
        /// The canary pods' image: it needs sh, httpd and nc (busybox).
        #[arg(long, value_name = "IMAGE", requires = "network", default_value = crate::check::canary::IMAGE)]
        canary_image: String,
    },
    /// Veto one fire of a drill: the scheduler records it skipped, with the reason and the
    /// Kubernetes user who asked, instead of running it. The next fires run as planned.
    #[command(group(clap::ArgGroup::new("fire").required(true).args(["at", "next"])))]
    Skip {
        /// The drill, by its name in the file.
        drill: String,
        /// The drill file (its calendar and firedrill's namespace).
        #[arg(long, short = 'c', value_name = "FILE")]
        config: PathBuf,
        /// The fire's scheduled instant, RFC 3339, as `plan` shows it (UTC column).
        #[arg(long, value_name = "T", value_parser = parse_instant)]
        at: Option<DateTime<Utc>>,
        /// The drill's next fire.
        #[arg(long)]
        next: bool,
        /// Why, for the record and the people who look.
        #[arg(long, value_name = "TEXT", required = true, value_parser = clap::builder::NonEmptyStringValueParser::new())]
        reason: String,
    },
    /// Take back a `skip` before its fire: the fire runs as planned.
    #[command(group(clap::ArgGroup::new("fire").required(true).args(["at", "next"])))]
    Unskip {
        /// The drill, by its name in the file.
        drill: String,
        /// The drill file (its calendar and firedrill's namespace).
        #[arg(long, short = 'c', value_name = "FILE")]
        config: PathBuf,
        /// The skipped fire's scheduled instant, RFC 3339.
        #[arg(long, value_name = "T", value_parser = parse_instant)]
        at: Option<DateTime<Utc>>,
        /// The drill's next fire.
        #[arg(long)]
        next: bool,
    },
    /// Release the kill switch, and say what is still in the way.
    Resume {
        #[command(flatten)]
        target: ClusterTarget,
    },
    /// Revert runs' ledgers: one run, one drill's, or all; or render a saved ledger offline.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["run", "drill", "all", "ledger"])))]
    Rollback {
        #[command(flatten)]
        target: ClusterTarget,
        /// The run whose ledger to revert.
        #[arg(long, value_name = "ID")]
        run: Option<String>,
        /// Every open ledger of this drill.
        #[arg(long, value_name = "NAME")]
        drill: Option<String>,
        /// Every open ledger.
        #[arg(long)]
        all: bool,
        /// Print what would be reverted; change nothing.
        #[arg(long, conflicts_with = "render")]
        dry_run: bool,
        /// With --run: also revert that run's ledger if it was written before ledger entries
        /// were signed (format ledger-v1), which firedrill cannot prove its own. A deliberate
        /// step after reading what the ledger names (`--dry-run` first); protected objects are
        /// still refused. The sweeper and `stop` never do this.
        #[arg(long, requires = "run", conflicts_with = "render")]
        accept_unsigned: bool,
        /// A ledger ConfigMap saved as YAML (`kubectl get configmap firedrill-ledger-RUN -o yaml`).
        #[arg(long, value_name = "FILE", requires = "render")]
        ledger: Option<PathBuf>,
        /// With --render: the ledger key, to say of each entry whether it verifies: the 32
        /// bytes of the Secret's `key` (`kubectl -n NAMESPACE get secret firedrill-ledger-key
        /// -o jsonpath='{.data.key}' | base64 -d > FILE`). Without it each entry says its
        /// signature was not checked.
        #[arg(long, value_name = "FILE", requires = "render", conflicts_with_all = ["run", "drill", "all", "dry_run", "namespace"])]
        key: Option<PathBuf>,
        /// With --ledger: print what its revert would do, entry by entry, without a cluster
        /// (--config: judged with that drill file's protected objects and declared DNS). A
        /// preview only: it cannot be combined with anything that reaches a cluster.
        #[arg(long, requires = "ledger", conflicts_with_all = ["run", "drill", "all", "dry_run", "namespace"])]
        render: bool,
    },
    /// Run the HTTP fault proxy by itself: the code dependency-failure's http-fault mode deploys
    /// in front of a Service. Answers a share of requests with error codes, resets a share of
    /// connections, delays the rest and passes them to the upstream.
    FaultProxy {
        /// Where to listen, e.g. 127.0.0.1:8080.
        #[arg(long, value_name = "ADDR")]
        listen: std::net::SocketAddr,
        /// Where passed requests go, e.g. http://127.0.0.1:9090.
        #[arg(long, value_name = "URL", value_parser = UpstreamParser)]
        upstream: url::Url,
        /// Answer a share of requests with this status instead (repeatable), e.g. 503:10%.
        #[arg(long = "error", value_name = "CODE:PERCENT", value_parser = firedrill_experiments::dependency::parse_error, allow_hyphen_values = true)]
        errors: Vec<(u16, u32)>,
        /// Delay every passed request by this much, e.g. 200ms.
        #[arg(long, value_name = "DURATION", value_parser = parse_delay, allow_hyphen_values = true)]
        delay: Option<std::time::Duration>,
        /// Reset this share of connections without an answer, e.g. 2%.
        #[arg(long, value_name = "PERCENT", value_parser = firedrill_experiments::dependency::parse_share, allow_hyphen_values = true)]
        reset: Option<u32>,
        /// After this instant (RFC 3339) pass everything unharmed.
        #[arg(long, value_name = "T", value_parser = parse_instant)]
        until: Option<DateTime<Utc>>,
        /// Serve the proxy's counts (requests answered, failed, reset, delayed) on GET /metrics
        /// at this address, e.g. 0.0.0.0:9464.
        #[arg(long, value_name = "ADDR")]
        metrics: Option<std::net::SocketAddr>,
    },
    /// The compliance report over the run history: programme adherence, per drill results,
    /// RTO/RPO against targets, evidence, trends and follow-ups, for every cluster.
    Report {
        /// The drill file (its calendar and its store).
        #[arg(long, short = 'c', value_name = "FILE")]
        config: PathBuf,
        /// Start of the period, RFC 3339, inclusive (default: one year before --until).
        #[arg(long, value_name = "T", value_parser = parse_instant)]
        since: Option<DateTime<Utc>>,
        /// End of the period, RFC 3339, exclusive (default: now).
        #[arg(long, value_name = "T", value_parser = parse_instant)]
        until: Option<DateTime<Utc>>,
        /// Only this drill.
        #[arg(long, value_name = "NAME")]
        drill: Option<String>,
        /// Only this cluster (default: every cluster in the history, side by side).
        #[arg(long, value_name = "NAME")]
        cluster: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = crate::history::report::Format::Md)]
        format: crate::history::report::Format,
        /// Write the report to this file (default: standard output).
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Runs from the history.
    History {
        /// The drill file.
        #[arg(long, short = 'c', value_name = "FILE")]
        config: PathBuf,
        /// Only this drill.
        #[arg(long, value_name = "NAME")]
        drill: Option<String>,
        /// Only runs scheduled at or after this instant (RFC 3339).
        #[arg(long, value_name = "T", value_parser = parse_instant)]
        since: Option<DateTime<Utc>>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

/// Where the on-call commands act: firedrill's namespace, from `--namespace`, else the drill
/// file's `namespace:`, else `firedrill`. The drill file, when given, also adds its
/// `safety.protected` to what no revert may touch.
#[derive(Debug, clap::Args)]
pub struct ClusterTarget {
    /// The drill file (optional: for its namespace and protected objects).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// firedrill's namespace (overrides the drill file's).
    #[arg(long, short = 'n', value_name = "NAMESPACE", value_parser = parse_namespace)]
    pub namespace: Option<String>,
}

fn parse_namespace(text: &str) -> Result<String, crate::config::NameError> {
    crate::config::dns_label(text, 63).map(|()| text.to_owned())
}

/// `--upstream`, whose errors never repeat the value given: it may hold a password.
#[derive(Clone)]
struct UpstreamParser;

impl clap::builder::TypedValueParser for UpstreamParser {
    type Value = url::Url;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<url::Url, clap::Error> {
        let text = value.to_string_lossy();
        parse_upstream(&text).map_err(|e| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("invalid value for '--upstream <URL>': {e}\n"),
            )
            .with_cmd(cmd)
        })
    }
}

// Result<_, String>: the message for a person is the whole point: clap prints it after the flag
// (the value shown without its password).
fn parse_upstream(text: &str) -> Result<url::Url, String> {
    // Shown without its password, if it has one.
    let shown = crate::drill::faultproxy::redacted_text(text);
    let url = url::Url::parse(text)
        .map_err(|e| format!("{shown:?} is not a URL ({e}); write e.g. http://127.0.0.1:9090"))?;
    if url.scheme() != "http" {
        return Err(format!(
            "{shown:?}: the proxy speaks plain HTTP to its upstream (write http://...)"
        ));
    }
    Ok(url)
}

fn parse_delay(
    text: &str,
) -> Result<std::time::Duration, firedrill_reader::duration::DurationError> {
    firedrill_reader::duration::parse_within(
        text,
        std::time::Duration::ZERO,
        std::time::Duration::from_secs(60),
    )
}

fn parse_duration(
    text: &str,
) -> Result<std::time::Duration, firedrill_reader::duration::DurationError> {
    firedrill_reader::duration::parse_within(
        text,
        std::time::Duration::from_millis(100),
        std::time::Duration::from_secs(300),
    )
}

/// `check`'s output: a line per check, or a JSON document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

// Result<_, String>: the message for a person is the whole point: clap prints it after the flag it
// names.
fn parse_instant(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            format!("{text:?} is not an RFC 3339 instant ({e}); write e.g. 2027-01-01T00:00:00Z")
        })
}

/// `execute --scheduled`: a run is scheduled for now or earlier; an instant more than a day
/// ahead (clock skew is seconds) is a typo that would be recorded as the run's schedule.
// Result<_, String>: the message for a person is the whole point: clap prints it after the flag it
// names.
fn parse_scheduled(text: &str) -> Result<DateTime<Utc>, String> {
    let at = parse_instant(text)?;
    if at - Utc::now() > chrono::TimeDelta::days(1) {
        return Err(format!(
            "{text:?} is more than a day in the future; a run's scheduled instant is now or earlier (leave out --scheduled for now)"
        ));
    }
    Ok(at)
}

const EXIT_INVALID: u8 = 1;
const EXIT_USAGE: u8 = 2;
/// An error that is not the drill's outcome (no cluster, no store, ...).
const EXIT_ERROR: u8 = 4;

pub fn run(cli: Cli) -> ExitCode {
    let _ = LOGGING.set((cli.log_level.clone(), cli.log_format));
    match cli.command {
        command @ (Command::Scheduler { .. }
        | Command::Execute { .. }
        | Command::Run { .. }
        | Command::Status { .. }
        | Command::Stop { .. }
        | Command::Skip { .. }
        | Command::Unskip { .. }
        | Command::Resume { .. }
        | Command::Check { .. }
        | Command::Rollback { .. }
        | Command::FaultProxy { .. }
        | Command::History { .. }
        | Command::Report { .. }) => runtime::run(command),
        Command::Completions { shell } => completions(shell),
        Command::Man => manual(),
        Command::Validate { config } => validate(&config),
        Command::Plan {
            config,
            from,
            until,
            next,
            cluster,
            at,
            drill,
            render,
            format,
        } => {
            let c = match load(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let snapshot = match load_snapshot(cluster.as_deref()) {
                Ok(snapshot) => snapshot,
                Err(code) => return code,
            };
            let skips = snapshot.as_ref().and_then(|s| s.skips(&c.namespace));
            for key in skips.iter().flat_map(|s| s.unreadable.keys()) {
                eprintln!("note: the snapshot's {} holds {key}, which is not a veto firedrill wrote: it is not followed", crate::cluster::skips::SKIPS);
            }
            let snapshot = snapshot.map(|s| s.cluster);
            if let Some(Err(problems)) = snapshot.as_ref().map(|s| c.check_against(s)) {
                return invalid(&problems);
            }
            if let (true, Some(name), Some(at), Some(snapshot)) = (render, &drill, at, &snapshot) {
                return render_fire(&c, snapshot, name, at);
            }
            let from = from.or(at).unwrap_or_else(Utc::now);
            let seen = Seen {
                cluster: snapshot.as_ref(),
                skips: skips.as_ref(),
            };
            match plan_window(from, until, next, at) {
                Ok(window) => write_calendar(&c, from, window, seen, format),
                Err(code) => code,
            }
        }
    }
}

/// `completions`: the shell's completion script on standard output.
fn completions(shell: clap_complete::Shell) -> ExitCode {
    let mut command = <Cli as clap::CommandFactory>::command();
    // clap_complete writes with `write_all(..).expect(..)`: it gets a buffer, never the
    // terminal, so a full standard output is an error here rather than a panic there.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "firedrill", &mut script);
    delivered(crate::output::to_stdout(|out| out.write_all(&script)))
}

/// `man`: one page: the summary, a list of the commands pointing to their sections below
/// (clap_mangen's own list names a page per command, firedrill-plan(1), that does not exist),
/// then one section per command.
fn manual() -> ExitCode {
    let command = <Cli as clap::CommandFactory>::command();
    let mut out = Vec::new();
    let man = clap_mangen::Man::new(command.clone());
    let head = man
        .render_title(&mut out)
        .and_then(|()| man.render_name_section(&mut out))
        .and_then(|()| man.render_synopsis_section(&mut out))
        .and_then(|()| man.render_description_section(&mut out))
        .and_then(|()| man.render_options_section(&mut out));
    if let Err(e) = head {
        eprintln!("error: cannot render the manual page: {e}");
        return ExitCode::from(EXIT_USAGE);
    }
    out.extend_from_slice(b".SH COMMANDS\n");
    for sub in command.get_subcommands().filter(|c| c.get_name() != "help") {
        let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
        out.extend_from_slice(
            format!(
                ".TP\n\\fBfiredrill {}\\fR\n{} (section FIREDRILL {} below)\n",
                sub.get_name(),
                about.replace('\\', "\\\\").trim_end_matches('.'),
                sub.get_name().to_uppercase()
            )
            .as_bytes(),
        );
    }
    for sub in command.get_subcommands().filter(|c| c.get_name() != "help") {
        let name = sub.get_name().to_owned();
        let sub = sub.clone().bin_name(format!("firedrill {name}"));
        let page = clap_mangen::Man::new(sub);
        out.extend_from_slice(format!(".SH \"FIREDRILL {}\"\n", name.to_uppercase()).as_bytes());
        let _ = page.render_description_section(&mut out);
        let _ = page.render_synopsis_section(&mut out);
        let _ = page.render_options_section(&mut out);
    }
    delivered(crate::output::to_stdout(|stdout| stdout.write_all(&out)))
}

/// `validate`: the drill file's verdict, with how many drills and whether it is armed.
fn validate(config: &std::path::Path) -> ExitCode {
    match load(config) {
        Ok(c) => delivered(crate::output::to_stdout(|out| {
            // Receivers' URLs come from the scheduler's environment (a Secret), not this one's.
            for problem in crate::schedule::notify::check_addresses(
                &c,
                &crate::schedule::notify::process_env(),
            ) {
                eprintln!("note: {problem} (where the scheduler runs)");
            }
            writeln!(
                out,
                "{}: valid ({} drill{}, {})",
                config.display(),
                c.drills.len(),
                if c.drills.len() == 1 { "" } else { "s" },
                if c.armed {
                    "armed"
                } else {
                    "not armed: dry-run only"
                }
            )
        })),
        Err(code) => code,
    }
}

/// `plan --cluster`: the snapshot, if one is named; when it cannot be read, what is wrong is
/// said and the exit code chosen (2 unreadable, 1 invalid).
fn load_snapshot(path: Option<&std::path::Path>) -> Result<Option<snapshot::Snapshot>, ExitCode> {
    path.map(snapshot::load_snapshot).transpose().map_err(|e| {
        eprintln!("{e}");
        ExitCode::from(match e {
            SnapshotError::Io { .. } => EXIT_USAGE,
            SnapshotError::Invalid { .. } => EXIT_INVALID,
        })
    })
}

/// `plan --render --drill D --at T --cluster C`: the objects that one fire would create.
fn render_fire(c: &Config, snapshot: &Cluster, name: &str, at: DateTime<Utc>) -> ExitCode {
    match upcoming::render_fire(c, snapshot, name, at) {
        Ok(text) => {
            let written = crate::output::to_stdout(|out| out.write_all(text.as_bytes()));
            for note in upcoming::notes(c, &std::collections::BTreeSet::from([name])) {
                eprintln!("note: {note}");
            }
            delivered(written)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// Which fires `plan` shows: one instant, up to an end, the next N, or by default a year; an
/// end not after the start is a usage error (said, exit 2).
fn plan_window(
    from: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
    next: Option<u32>,
    at: Option<DateTime<Utc>>,
) -> Result<Window, ExitCode> {
    Ok(match (until, next, at) {
        (_, _, Some(at)) => Window::At(at),
        (Some(until), _, _) if until <= from => {
            eprintln!("error: --until {until} is not after --from {from}");
            return Err(ExitCode::from(EXIT_USAGE));
        }
        (Some(until), _, _) => Window::Until(until),
        (None, Some(n), _) => Window::Next(n as usize),
        (None, None, None) => Window::Until(from + upcoming::DEFAULT_WINDOW),
    })
}

/// What `plan --cluster` read of the cluster: its objects, and the fires people vetoed.
#[derive(Clone, Copy)]
struct Seen<'a> {
    cluster: Option<&'a Cluster>,
    skips: Option<&'a crate::cluster::skips::Skips>,
}

/// `plan`'s calendar, as a table or JSON, then a note per drill it showed that needs one.
fn write_calendar(
    c: &Config,
    from: DateTime<Utc>,
    window: Window,
    seen: Seen,
    format: Format,
) -> ExitCode {
    // Written as the calendar is made: ten years of fires are never held.
    let fires = || {
        upcoming::fires(
            c,
            from,
            window,
            seen.cluster,
            seen.skips,
            format == Format::Json,
        )
    };
    let mut fired = std::collections::BTreeSet::new();
    let written = crate::output::to_stdout(|mut out| {
        fired = match format {
            Format::Table => upcoming::write_table(fires, &mut out)?,
            Format::Json => upcoming::write_json(fires(), &mut out)?,
        };
        Ok(())
    });
    for note in upcoming::notes(c, &fired.iter().map(String::as_str).collect()) {
        eprintln!("note: {note}");
    }
    delivered(written)
}

/// The exit code of a command whose work is its output: 0 when all of it arrived (or the reader
/// closed the pipe, its choice), else the error said and exit 2.
fn delivered(written: std::io::Result<()>) -> ExitCode {
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => ExitCode::from(output_failed(&e)),
    }
}

/// A command's own exit code, unless its output did not arrive: then that is said, and a
/// success becomes exit 2 (a failure keeps its own code, which says more).
fn finished(code: u8, written: std::io::Result<()>) -> ExitCode {
    match written {
        Ok(()) => ExitCode::from(code),
        Err(e) => {
            let failed = output_failed(&e);
            ExitCode::from(if code == 0 { failed } else { code })
        }
    }
}

/// Says that standard output failed; the exit code for it.
fn output_failed(e: &std::io::Error) -> u8 {
    eprintln!("error: cannot write to standard output: {e}");
    EXIT_USAGE
}

/// Loads the file, printing what is wrong and choosing the exit code when it cannot.
fn load(path: &std::path::Path) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|e| {
        eprintln!("{e}");
        match e {
            LoadError::Io { .. } => ExitCode::from(EXIT_USAGE),
            LoadError::Invalid(d) => problems_found(&d),
        }
    })
}

/// A drill file that does not hold against the cluster snapshot: its problems, and exit 1.
fn invalid(problems: &firedrill_reader::read::Diagnostics) -> ExitCode {
    eprintln!("{problems}");
    problems_found(problems)
}

fn problems_found(d: &firedrill_reader::read::Diagnostics) -> ExitCode {
    eprintln!(
        "{} problem{} found",
        d.items.len(),
        if d.items.len() == 1 { "" } else { "s" }
    );
    ExitCode::from(EXIT_INVALID)
}
