//! The ledger: one ConfigMap per run in firedrill's namespace, holding an undo record for every
//! change the run made, written before the change (write-ahead). Its labels say whose it is;
//! its annotation says when any firedrill process should revert it if the run has not.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::seal::Key;
use crate::undo::UndoRecord;
use crate::{ANNOTATION_EXPIRES_AT, LABEL_DRILL, LABEL_KIND, LABEL_RUN};

/// The value of the `format` key: what this version of firedrill writes and reads. Version 2
/// entries carry an authentication code (`mac`, see [`crate::seal`]).
pub const FORMAT: &str = "firedrill.io/ledger-v2";
/// The format firedrill wrote before entries were signed: still read, never applied
/// unattended (only by `rollback --run ID --accept-unsigned`), and written back as it was.
pub const FORMAT_UNSIGNED: &str = "firedrill.io/ledger-v1";
/// `firedrill.io/kind` of a ledger ConfigMap.
pub const KIND_LEDGER: &str = "ledger";
/// The selector every listing of ledgers uses.
pub const LEDGER_SELECTOR: &str = "app.kubernetes.io/name=firedrill,firedrill.io/kind=ledger";

/// The name of a run's ledger.
pub fn name(run: &str) -> String {
    format!("firedrill-ledger-{run}")
}

/// Where one entry stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryState {
    /// Written; the change may or may not have been made (the process may have died between).
    Intended,
    /// The change was made.
    Applied,
    /// Undone (or found already as before).
    Reverted,
    /// Changed by someone else since: left alone, on purpose.
    Left,
}

impl EntryState {
    /// Whether a revert still has to look at the entry.
    pub fn is_open(&self) -> bool {
        matches!(self, EntryState::Intended | EntryState::Applied)
    }
}

/// One change of the run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Its place in the ledger, from 1 (the `step-NNNN` key; not repeated inside the value).
    #[serde(skip)]
    pub seq: usize,
    pub undo: UndoRecord,
    pub state: EntryState,
    /// What the revert found and did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The authentication code of the undo record at this place in this run's ledger
    /// ([`Key::seal`]); absent in ledgers written before signing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
}

/// An entry this firedrill cannot read: kept as written, never dropped, reported by every revert.
#[derive(Clone, Debug, PartialEq)]
pub struct Unreadable {
    pub key: String,
    pub text: String,
    pub error: String,
}

/// The ledger of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct Ledger {
    pub run: String,
    pub drill: String,
    /// The fault kind.
    pub kind: String,
    /// RFC 3339: past it, any firedrill process reverts what is still open.
    pub expires_at: String,
    /// The Job the run executes in, if any: once it is not running, the run cannot revert
    /// itself, and the scheduler does. A run started by hand has none (only its expiry counts).
    pub job: Option<String>,
    /// RFC 3339: when the run began changing things.
    pub started: Option<String>,
    /// The workloads the run actually acted on (`Kind/namespace/name`): what `cooldown` reads
    /// from the cluster when the history is out of reach.
    pub hits: Vec<String>,
    /// The run's outcome, once it ended (`passed`, `failed`, `aborted`, `error`).
    pub outcome: Option<String>,
    /// In the order the changes were made; reverted backwards.
    pub entries: Vec<Entry>,
    pub unreadable: Vec<Unreadable>,
    /// Written before entries were signed (format v1): nothing in it can be authenticated.
    pub unsigned: bool,
    /// Where the stored copy is: `None` before the first write (which must create it: a run id
    /// is used once), else the version last read or written, so that concurrent writers (the
    /// executor, the sweep, `stop`, `rollback`) never overwrite each other unseen.
    pub resource_version: Option<String>,
}

/// Why a ConfigMap is not a ledger this firedrill can act on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("ConfigMap {name} is not a firedrill ledger ({why}); it was not touched")]
    Foreign { name: String, why: String },
    #[error(
        "ledger {name}: {key}: {why} (the ledger is kept; revert that change by hand if needed)"
    )]
    Corrupt {
        name: String,
        key: String,
        why: String,
    },
}

/// A ledger as stored: the ConfigMap's name, labels, annotations and data.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stored {
    pub name: String,
    pub resource_version: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub data: BTreeMap<String, String>,
}

fn entry_key(seq: usize) -> String {
    format!("step-{seq:04}")
}

fn entry_seq(key: &str) -> Option<usize> {
    key.strip_prefix("step-")
        .filter(|n| n.len() >= 4 && n.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.parse().ok())
        .filter(|&n| n > 0)
}

impl Ledger {
    pub fn new(run: &str, drill: &str, kind: &str, expires_at: &str) -> Self {
        Ledger {
            run: run.to_owned(),
            drill: drill.to_owned(),
            kind: kind.to_owned(),
            expires_at: expires_at.to_owned(),
            job: None,
            started: None,
            hits: Vec::new(),
            outcome: None,
            entries: Vec::new(),
            unreadable: Vec::new(),
            unsigned: false,
            resource_version: None,
        }
    }

    /// Takes in what another writer stored meanwhile: entries this copy lacks, and for each
    /// entry the further of the two states (a revert done elsewhere stays done; a change made
    /// here stays recorded).
    pub fn merge(&mut self, other: &Ledger) {
        fn rank(state: &EntryState) -> u8 {
            match state {
                EntryState::Intended => 0,
                EntryState::Applied => 1,
                EntryState::Reverted | EntryState::Left => 2,
            }
        }
        for theirs in &other.entries {
            match self.entries.iter_mut().find(|e| e.seq == theirs.seq) {
                Some(mine) if rank(&theirs.state) > rank(&mine.state) => *mine = theirs.clone(),
                Some(_) => {}
                None => self.entries.push(theirs.clone()),
            }
        }
        self.entries.sort_by_key(|e| e.seq);
        for u in &other.unreadable {
            if !self.unreadable.iter().any(|m| m.key == u.key) {
                self.unreadable.push(u.clone());
            }
        }
        if self.outcome.is_none() {
            self.outcome.clone_from(&other.outcome);
        }
        if self.hits.is_empty() {
            self.hits.clone_from(&other.hits);
        }
        self.resource_version.clone_from(&other.resource_version);
    }

    pub fn name(&self) -> String {
        name(&self.run)
    }

    /// Adds an entry for a change about to be made, as `Intended`, sealed with `key`; returns
    /// its index.
    pub fn push(&mut self, undo: UndoRecord, key: &Key) -> usize {
        let seq = self
            .entries
            .iter()
            .map(|e| e.seq)
            .chain(self.unreadable.iter().filter_map(|u| entry_seq(&u.key)))
            .max()
            .unwrap_or(0)
            + 1;
        let mac = Some(key.seal(&self.run, &self.drill, seq, &undo));
        self.entries.push(Entry {
            seq,
            undo,
            state: EntryState::Intended,
            note: None,
            mac,
        });
        self.entries.len() - 1
    }

    /// Whether anything is still to revert (or could not be read, so cannot be known undone).
    pub fn is_open(&self) -> bool {
        !self.unreadable.is_empty() || self.entries.iter().any(|e| e.state.is_open())
    }

    /// The ConfigMap's contents.
    pub fn to_stored(&self) -> Stored {
        let labels = BTreeMap::from([
            ("app.kubernetes.io/name".to_owned(), "firedrill".to_owned()),
            (LABEL_KIND.to_owned(), KIND_LEDGER.to_owned()),
            (LABEL_RUN.to_owned(), self.run.clone()),
            (LABEL_DRILL.to_owned(), self.drill.clone()),
        ]);
        let annotations = BTreeMap::from([
            (ANNOTATION_EXPIRES_AT.to_owned(), self.expires_at.clone()),
            ("firedrill.io/fault".to_owned(), self.kind.clone()),
        ]);
        let mut data = BTreeMap::from([
            (
                "format".to_owned(),
                if self.unsigned {
                    FORMAT_UNSIGNED
                } else {
                    FORMAT
                }
                .to_owned(),
            ),
            ("run".to_owned(), self.run.clone()),
            ("drill".to_owned(), self.drill.clone()),
            ("kind".to_owned(), self.kind.clone()),
        ]);
        if let Some(job) = &self.job {
            data.insert("job".to_owned(), job.clone());
        }
        if let Some(started) = &self.started {
            data.insert("started".to_owned(), started.clone());
        }
        if !self.hits.is_empty() {
            data.insert(
                "hits".to_owned(),
                serde_json::to_string(&self.hits).unwrap_or_default(),
            );
        }
        if let Some(outcome) = &self.outcome {
            data.insert("outcome".to_owned(), outcome.clone());
        }
        for entry in &self.entries {
            data.insert(
                entry_key(entry.seq),
                serde_json::to_string(entry).unwrap_or_default(),
            );
        }
        for u in &self.unreadable {
            data.insert(u.key.clone(), u.text.clone());
        }
        Stored {
            name: self.name(),
            resource_version: self.resource_version.clone(),
            labels,
            annotations,
            data,
        }
    }

    /// Reads a stored ledger. A ConfigMap that is not one is an error and is never acted on; an
    /// entry that cannot be read is kept aside as [`Unreadable`], so the rest can still be
    /// reverted and nothing is lost.
    pub fn from_stored(stored: &Stored) -> Result<Ledger, LedgerError> {
        let foreign = |why: String| LedgerError::Foreign {
            name: stored.name.clone(),
            why,
        };
        let unsigned = match stored.data.get("format").map(String::as_str) {
            Some(FORMAT) => false,
            Some(FORMAT_UNSIGNED) => true,
            Some(other) => {
                return Err(foreign(format!(
                    "format {other:?}, this firedrill reads {FORMAT:?} and {FORMAT_UNSIGNED:?}; use the firedrill that wrote it"
                )))
            }
            None => return Err(foreign("no `format` key".to_owned())),
        };
        let field = |key: &str| {
            stored
                .data
                .get(key)
                .filter(|v| !v.is_empty())
                .cloned()
                .ok_or_else(|| LedgerError::Corrupt {
                    name: stored.name.clone(),
                    key: key.to_owned(),
                    why: "missing".to_owned(),
                })
        };
        let run = field("run")?;
        if stored.name != name(&run) {
            return Err(foreign(format!(
                "it names run {run:?}, whose ledger would be {}",
                name(&run)
            )));
        }
        // What the ledger says about itself is for people; only `run` decides what it is. A
        // damaged description must not keep its undo records from being reverted.
        let described = |key: &str| field(key).unwrap_or_else(|_| "(unknown)".to_owned());
        let mut ledger = Ledger::new(
            &run,
            &described("drill"),
            &described("kind"),
            stored
                .annotations
                .get(ANNOTATION_EXPIRES_AT)
                .map(String::as_str)
                .unwrap_or(""),
        );
        ledger.resource_version.clone_from(&stored.resource_version);
        ledger.unsigned = unsigned;
        ledger.job = stored.data.get("job").filter(|j| !j.is_empty()).cloned();
        ledger.started = stored
            .data
            .get("started")
            .filter(|j| !j.is_empty())
            .cloned();
        ledger.outcome = stored
            .data
            .get("outcome")
            .filter(|j| !j.is_empty())
            .cloned();
        // Unreadable hits only cost cooldown its memory of this run, never the revert.
        ledger.hits = stored
            .data
            .get("hits")
            .and_then(|h| serde_json::from_str(h).ok())
            .unwrap_or_default();
        // BTreeMap order is key order, and keys are zero-padded: the order the changes were made.
        for (key, text) in stored.data.iter().filter(|(k, _)| k.starts_with("step-")) {
            let Some(seq) = entry_seq(key) else {
                ledger.unreadable.push(Unreadable {
                    key: key.clone(),
                    text: text.clone(),
                    error: "not a step key (step-NNNN)".to_owned(),
                });
                continue;
            };
            match serde_json::from_str::<Entry>(text) {
                Ok(mut entry) => {
                    entry.seq = seq;
                    ledger.entries.push(entry);
                }
                Err(e) => ledger.unreadable.push(Unreadable {
                    key: key.clone(),
                    text: text.clone(),
                    error: unknown_record_hint(text, &e.to_string()),
                }),
            }
        }
        ledger.entries.sort_by_key(|e| e.seq);
        Ok(ledger)
    }
}

/// Says "unknown undo record type X" plainly when that is what serde found.
fn unknown_record_hint(text: &str, error: &str) -> String {
    let kind = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| {
            v.pointer("/undo/type")
                .and_then(|t| t.as_str())
                .map(str::to_owned)
        });
    match kind {
        Some(kind) if error.contains(&format!("unknown variant `{kind}`")) => format!(
            "unknown undo record type {kind:?}: written by a newer firedrill? Use it, or undo that change by hand"
        ),
        _ => format!("not a readable undo record: {error}"),
    }
}
