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
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode_0600()
            .open(path)
            .with_context(|| format!("failed to open lock file `{}`", path.display()))?;
        let deadline = wait.map(|w| Instant::now() + w);
        let mut told = false;
        loop {
            match file.try_lock() {
                Ok(()) => break,
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
        file.set_len(0)?;
        file.rewind()?;
        writeln!(
            file,
            "pid {}\ncommand {command}\nsince {}",
            std::process::id(),
            format_utc(now_unix())
        )?;
        file.sync_all()?;
        Ok(StateLock { _file: Some(file) })
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
        drop(held);
        StateLock::acquire(&path, "down demo", Some(Duration::from_secs(1)), |_| {}).unwrap();
    }
}
