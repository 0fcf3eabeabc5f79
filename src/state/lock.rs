//! The one exclusive lock of a deployment (`.tfgrid-compose/<env>/lock`), held for a whole `up`
//! or `down`; the lock file names its holder.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, Write as _};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use crate::clock::{format_utc, now_unix};
use crate::error::LockError;

/// The exclusive lock of a deployment, held until dropped. The lock file names its holder.
#[derive(Debug)]
pub struct StateLock {
    _file: Option<File>,
}

impl StateLock {
    /// A lock that locks nothing (dry runs).
    pub fn none() -> StateLock {
        StateLock { _file: None }
    }

    /// Takes the lock at once, or waits up to `wait` for it.
    pub fn acquire(
        path: &Path,
        command: &str,
        wait: Option<Duration>,
        mut on_wait: impl FnMut(&str),
    ) -> Result<StateLock> {
        let open = || {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode_0600()
                .open(path)
                .with_context(|| format!("failed to open lock file `{}`", path.display()))
        };
        let mut file = open()?;
        let deadline = wait.map(|w| Instant::now() + w);
        let mut told = false;
        loop {
            match file.try_lock() {
                Ok(()) if names(path, &file) => break,
                // The holder removed the folder (a finished `down`) or replaced the file while
                // this run waited: the lock that counts is the one on the file the path names now.
                Ok(()) => {
                    if let Some(parent) = path.parent() {
                        crate::files::create_private_dir(parent)?;
                    }
                    file = open()?;
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    let mut holder = String::new();
                    let _ = file.rewind();
                    let _ = file.read_to_string(&mut holder);
                    let holder = holder.trim().replace('\n', ", ");
                    let holder = if holder.is_empty() {
                        "unknown holder".to_string()
                    } else {
                        holder
                    };
                    match deadline {
                        Some(deadline) if Instant::now() < deadline => {
                            if !told {
                                on_wait(&holder);
                                told = true;
                            }
                            std::thread::sleep(Duration::from_millis(100));
                        }
                        _ => {
                            return Err(LockError {
                                holder,
                                lock_file: path.to_path_buf(),
                            }
                            .into());
                        }
                    }
                }
                Err(std::fs::TryLockError::Error(err)) => {
                    return Err(err)
                        .with_context(|| format!("failed to lock `{}`", path.display()));
                }
            }
        }
        // The note names the holder for a waiting run; the lock is the flock alone, so a note
        // that cannot be written (a full disk, where `down` must still run) is only logged.
        let note = file.set_len(0).and_then(|()| {
            file.rewind()?;
            writeln!(
                file,
                "pid {}\ncommand {command}\nsince {}",
                std::process::id(),
                format_utc(now_unix())
            )?;
            file.sync_all()
        });
        if let Err(e) = note {
            tracing::warn!("cannot name the holder in `{}`: {e}", path.display());
        }
        Ok(StateLock { _file: Some(file) })
    }
}

/// Whether a live process holds the lock at `path` now (false when there is no lock file), found
/// without taking the lock, so a run that starts meanwhile is never refused: the kernel's table of
/// locks (`/proc/locks`: `N: FLOCK ADVISORY WRITE PID MAJ:MIN:INODE START END`; proc(5)) gives
/// the holders of flocks on files with the lock file's inode number, and one of them holds it
/// when it has the lock file itself open (`/proc/PID/fd`, compared by `stat`'s device and inode:
/// the table's device is not `stat`'s on btrfs subvolumes and overlayfs). A holder whose open
/// files cannot be read (another user's) counts as holding it.
///
/// A `running` phase or a `deploying` status in a `state.yaml` whose lock nobody holds was left
/// by a run that ended without recording its end (killed, or its last save failed on a full
/// disk).
pub(super) fn is_held(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    let inode = meta.ino().to_string();
    let Ok(table) = std::fs::read_to_string("/proc/locks") else {
        return false;
    };
    let same_file = |m: std::fs::Metadata| m.dev() == meta.dev() && m.ino() == meta.ino();
    table.lines().any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // Lines of waiters have `->` after the number; they hold nothing.
        if fields.get(1) != Some(&"FLOCK")
            || fields.get(5).and_then(|id| id.rsplit(':').next()) != Some(inode.as_str())
        {
            return false;
        }
        let Some(pid) = fields.get(4) else {
            return false;
        };
        match std::fs::read_dir(format!("/proc/{pid}/fd")) {
            Ok(fds) => fds
                .flatten()
                .any(|fd| std::fs::metadata(fd.path()).is_ok_and(same_file)),
            Err(_) => true,
        }
    })
}

/// Whether `path` still names the open `file` (same device and inode).
fn names(path: &Path, file: &File) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    match (std::fs::metadata(path), file.metadata()) {
        (Ok(named), Ok(open)) => named.dev() == open.dev() && named.ino() == open.ino(),
        _ => false,
    }
}

trait Mode0600 {
    fn mode_0600(&mut self) -> &mut Self;
}

impl Mode0600 for OpenOptions {
    fn mode_0600(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt as _;
        self.mode(0o600)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::StateLock;

    #[test]
    fn lock_is_exclusive_and_names_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let held = StateLock::acquire(&path, "up demo", None, |_| {}).unwrap();
        let err = StateLock::acquire(&path, "down demo", None, |_| {}).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("command up demo"), "{text}");
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        assert!(super::is_held(&path));
        drop(held);
        assert!(!super::is_held(&path));
        StateLock::acquire(&path, "down demo", Some(Duration::from_secs(1)), |_| {}).unwrap();
    }

    /// A run that waited while the holder removed the folder (a `down` that finished) locks the
    /// file the path names afterwards, never the removed one, so a third run cannot take the
    /// lock beside it.
    #[test]
    fn a_lock_whose_folder_was_removed_meanwhile_is_taken_on_the_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("pr-7");
        std::fs::create_dir(&folder).unwrap();
        let path = folder.join("lock");
        let held = StateLock::acquire(&path, "down demo", None, |_| {}).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let path = path.clone();
            std::thread::spawn(move || {
                StateLock::acquire(&path, "up demo", Some(Duration::from_secs(60)), |_| {
                    tx.send(()).unwrap();
                })
                .unwrap()
            })
        };
        rx.recv().unwrap();
        std::fs::remove_dir_all(&folder).unwrap();
        drop(held);
        let taken = waiter.join().unwrap();
        assert!(path.is_file(), "the folder and lock file are made again");
        let err = StateLock::acquire(&path, "up other", None, |_| {}).unwrap_err();
        assert!(err.to_string().contains("command up demo"), "{err}");
        drop(taken);
    }
}
