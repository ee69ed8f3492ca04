//! Where a command's output goes, and the truth about whether it got there.
//!
//! Two rules. A failed write is an error the command exits non-zero with (a closed pipe, as in
//! `firedrill plan | head`, is the reader's choice and ends quietly). And `--output PATH` writes
//! what the path names and nothing else: a regular file (a symlink's target included) is
//! replaced whole or not at all; a device or FIFO is written straight into, never replaced by a
//! regular file; a directory is refused.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Why `--output` could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("{path} is a directory (name a file inside it)")]
    Directory { path: PathBuf },
    #[error("{path}: more than {MAX_LINKS} symbolic links in a row (a loop?)")]
    Links { path: PathBuf },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

const MAX_LINKS: usize = 40;

/// Whether a write failed because the reader went away (`| head`): not worth an error.
pub fn closed_pipe(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::BrokenPipe
}

/// Writes to standard output through a buffer and says whether everything arrived: `Ok` also
/// when the reader closed the pipe. When standard output is a regular file, its data are synced,
/// so that a full disk that the page cache hid still comes out here.
pub fn to_stdout(write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> io::Result<()> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let result = write(&mut out).and_then(|()| out.flush());
    drop(out);
    match result {
        Err(e) if closed_pipe(&e) => Ok(()),
        Err(e) => Err(e),
        Ok(()) => sync_if_file(&stdout),
    }
}

fn sync_if_file(stdout: &io::Stdout) -> io::Result<()> {
    use std::os::fd::AsFd;
    let Ok(fd) = stdout.as_fd().try_clone_to_owned() else {
        return Ok(());
    };
    let file = File::from(fd);
    match file.metadata() {
        Ok(m) if m.is_file() => file.sync_data(),
        _ => Ok(()),
    }
}

/// Standard output for commands that must finish their work whatever happens to their output
/// (`stop`, `rollback`): lines never panic, the first failure is kept for the exit code, and
/// after a failure nothing more is attempted.
#[derive(Debug, Default)]
pub struct Lines {
    failed: Option<io::Error>,
    closed: bool,
}

impl Lines {
    pub fn new() -> Lines {
        Lines::default()
    }

    pub fn line(&mut self, text: impl std::fmt::Display) {
        self.put(format_args!("{text}\n"));
    }

    /// Text as it is (no newline added).
    pub fn text(&mut self, text: &str) {
        self.put(format_args!("{text}"));
    }

    fn put(&mut self, args: std::fmt::Arguments<'_>) {
        if self.failed.is_some() || self.closed {
            return;
        }
        let mut out = io::stdout().lock();
        match out.write_fmt(args).and_then(|()| out.flush()) {
            Ok(()) => {}
            Err(e) if closed_pipe(&e) => self.closed = true,
            Err(e) => self.failed = Some(e),
        }
    }

    /// The first failure, if any (a closed pipe is none).
    pub fn finish(self) -> io::Result<()> {
        match self.failed {
            Some(e) => Err(e),
            None if self.closed => Ok(()),
            None => sync_if_file(&io::stdout()),
        }
    }
}

/// Writes `--output PATH`: see the module's rules.
pub fn to_path(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<(), OutputError> {
    let target = follow_links(path)?;
    let failed = |source: io::Error| OutputError::Write {
        path: target.clone(),
        source,
    };
    match std::fs::metadata(&target) {
        Ok(m) if m.is_dir() => Err(OutputError::Directory { path: target }),
        Ok(m) if !m.is_file() => {
            // A device or FIFO: written into as it is; it cannot be replaced, nor truncated.
            let file = OpenOptions::new()
                .write(true)
                .open(&target)
                .map_err(failed)?;
            let mut out = io::BufWriter::with_capacity(1 << 20, file);
            write(&mut out).and_then(|()| out.flush()).map_err(failed)
        }
        Ok(m) => replace(&target, Some(m.permissions()), write).map_err(failed),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            replace(&target, None, write).map_err(failed)
        }
        Err(e) => Err(failed(e)),
    }
}

/// The path a chain of symbolic links ends at (which may not exist yet).
fn follow_links(path: &Path) -> Result<PathBuf, OutputError> {
    let mut at = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => {
                let link = std::fs::read_link(&at).map_err(|source| OutputError::Write {
                    path: at.clone(),
                    source,
                })?;
                at = match at.parent() {
                    Some(dir) if link.is_relative() => dir.join(link),
                    _ => link,
                };
            }
            _ => return Ok(at),
        }
    }
    Err(OutputError::Links {
        path: path.to_path_buf(),
    })
}

/// Whole or not at all: written beside the file, synced, then renamed over it.
fn replace(
    target: &Path,
    permissions: Option<std::fs::Permissions>,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let name = target
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "names no file"))?;
    let partial = target.with_file_name(format!(
        ".{}.partial-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let made = (|| {
        // create_new: never write through something already at the partial name.
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&partial)?;
        if let Some(permissions) = permissions {
            file.set_permissions(permissions)?;
        }
        let mut out = io::BufWriter::with_capacity(1 << 20, file);
        write(&mut out)?;
        let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.sync_all()?;
        std::fs::rename(&partial, target)
    })();
    if made.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    made
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt;

    fn dir(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("firedrill-output-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn hello(out: &mut dyn Write) -> io::Result<()> {
        out.write_all(b"hello\n")
    }

    #[test]
    fn a_regular_file_is_replaced_whole_keeping_its_mode() {
        use std::os::unix::fs::PermissionsExt;
        let d = dir("regular");
        let file = d.join("report.md");
        std::fs::write(&file, "old").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        to_path(&file, hello).unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "hello\n");
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        assert_eq!(
            std::fs::read_dir(&d).unwrap().count(),
            1,
            "a partial file was left"
        );
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_partial() {
        let d = dir("failed");
        let file = d.join("report.md");
        std::fs::write(&file, "old").unwrap();
        let e = to_path(&file, |out| {
            out.write_all(b"half")?;
            Err(io::Error::other("disk full"))
        })
        .unwrap_err();
        assert!(e.to_string().contains("disk full"), "{e}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "old");
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1);
    }

    #[test]
    fn a_symlink_is_kept_and_its_target_written() {
        let d = dir("link");
        let real = d.join("real.md");
        std::fs::write(&real, "old").unwrap();
        let link = d.join("link.md");
        std::os::unix::fs::symlink("real.md", &link).unwrap();
        to_path(&link, hello).unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "hello\n");
        // A dangling link: its target is created, the link stays.
        let dangling = d.join("dangling.md");
        std::os::unix::fs::symlink("new.md", &dangling).unwrap();
        to_path(&dangling, hello).unwrap();
        assert!(std::fs::symlink_metadata(&dangling)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(
            std::fs::read_to_string(d.join("new.md")).unwrap(),
            "hello\n"
        );
        // A loop is refused, not followed forever.
        std::os::unix::fs::symlink("loop-b", d.join("loop-a")).unwrap();
        std::os::unix::fs::symlink("loop-a", d.join("loop-b")).unwrap();
        assert!(matches!(
            to_path(&d.join("loop-a"), hello),
            Err(OutputError::Links { .. })
        ));
    }

    #[test]
    fn a_directory_is_refused() {
        let d = dir("directory");
        let e = to_path(&d, hello).unwrap_err();
        assert!(matches!(e, OutputError::Directory { .. }), "{e}");
        assert!(e.to_string().contains("is a directory"));
    }

    #[test]
    fn a_device_is_written_into_never_replaced() {
        to_path(Path::new("/dev/null"), hello).unwrap();
        let kind = std::fs::metadata("/dev/null").unwrap().file_type();
        assert!(kind.is_char_device());
        let e = to_path(Path::new("/dev/full"), hello).unwrap_err();
        assert!(e.to_string().contains("/dev/full"), "{e}");
        assert!(std::fs::metadata("/dev/full")
            .unwrap()
            .file_type()
            .is_char_device());
    }

    #[test]
    fn a_fifo_is_written_into() {
        let d = dir("fifo");
        let fifo = d.join("pipe");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
        };
        to_path(&fifo, hello).unwrap();
        assert_eq!(reader.join().unwrap(), "hello\n");
        assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    }
}
