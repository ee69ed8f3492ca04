//! The spool: records that could not reach the store, kept on disk until a start replays them.

use super::{RunRecord, Store};

/// Records that could not reach the store or the cluster, one JSON file per run, kept in the
/// data directory until a later start replays them into it. A record is never only on stdout.
pub struct Spool {
    pub dir: std::path::PathBuf,
}

impl Spool {
    pub fn new(dir: impl Into<std::path::PathBuf>) -> Self {
        Spool { dir: dir.into() }
    }

    /// Writes the record (atomically: a temporary file linked into place) and returns its
    /// path. Never replaces a file: a second record under the same id gets a name of its own.
    /// A record marked `conflict` (its id already names another run in the store) is kept for a
    /// person and never replayed.
    pub fn write(&self, run: &RunRecord, conflict: bool) -> std::io::Result<std::path::PathBuf> {
        let fail = |e: std::io::Error| {
            std::io::Error::new(e.kind(), format!("spool {}: {e}", self.dir.display()))
        };
        std::fs::create_dir_all(&self.dir).map_err(fail)?;
        let partial = self
            .dir
            .join(format!(".{}.{}.partial", run.id, std::process::id()));
        let text = serde_json::to_vec_pretty(run).map_err(std::io::Error::other)?;
        std::fs::write(&partial, text).map_err(fail)?;
        let marker = if conflict { ".conflict" } else { "" };
        for n in 0..1000 {
            let name = match n {
                0 => format!("{}{marker}.json", run.id),
                n => format!("{}{marker}.{n}.json", run.id),
            };
            let path = self.dir.join(name);
            // A hard link fails when the name is taken, where a rename would replace.
            match std::fs::hard_link(&partial, &path) {
                Ok(()) => {
                    let _ = std::fs::remove_file(&partial);
                    return Ok(path);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    let _ = std::fs::remove_file(&partial);
                    return Err(fail(e));
                }
            }
        }
        let _ = std::fs::remove_file(&partial);
        Err(fail(std::io::Error::other(
            "1,000 records under one run id",
        )))
    }

    /// Replaces the spooled record at `path` (one [`Spool::write`] returned) with `run`, a later
    /// word of the same run, atomically. A record moved into the store meanwhile is not put back.
    pub fn replace(&self, path: &std::path::Path, run: &RunRecord) -> std::io::Result<()> {
        if !path.exists() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{} was moved into the store meanwhile", path.display()),
            ));
        }
        let partial = self
            .dir
            .join(format!(".{}.{}.partial", run.id, std::process::id()));
        let text = serde_json::to_vec_pretty(run).map_err(std::io::Error::other)?;
        std::fs::write(&partial, text)
            .and_then(|()| std::fs::rename(&partial, path))
            .inspect_err(|_| {
                let _ = std::fs::remove_file(&partial);
            })
    }

    /// The records waiting to be moved into the store (conflicts, kept for a person, aside).
    pub fn waiting(&self) -> Vec<std::path::PathBuf> {
        let mut paths = self.records();
        paths.retain(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().contains(".conflict."))
        });
        paths
    }

    /// Every record file in the spool, in name order.
    fn records(&self) -> Vec<std::path::PathBuf> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut paths: Vec<std::path::PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .filter(|p| {
                !p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect();
        paths.sort();
        paths
    }

    /// Moves every spooled record into the store; a record that cannot be read or stored stays
    /// (and is named in the log). Returns how many were moved.
    pub async fn replay(&self, store: &Store) -> usize {
        let mut moved = 0;
        for path in self.records() {
            let run = match std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|bytes| {
                    serde_json::from_slice::<RunRecord>(&bytes).map_err(|e| e.to_string())
                }) {
                Ok(run) => run,
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "a spooled record cannot be read; it stays in the spool");
                    continue;
                }
            };
            match store.record_run(&run).await {
                Ok(()) => match std::fs::remove_file(&path) {
                    Ok(()) => {
                        tracing::info!(run = %run.id, path = %path.display(), "replayed a spooled record into the store");
                        moved += 1;
                    }
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "stored a spooled record but cannot remove its file")
                    }
                },
                Err(e) => {
                    tracing::error!(run = %run.id, path = %path.display(), error = %e, "a spooled record cannot be stored; it stays in the spool");
                }
            }
        }
        moved
    }
}
