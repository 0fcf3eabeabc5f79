//! A token file as the stack's services read it: again whenever it is replaced, so that
//! `projects rotate-tokens` changes a token with no restart and no refused request. Its first
//! line is the token a client sends; a server accepts every line (two while a rotation runs: the
//! one being retired and its successor). Start from [`TokenFile`].

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, Result};

/// What tells a replaced file from the one read: device, inode, size, modification time (ns).
type Stamp = (u64, u64, u64, i64, i64);

/// A token file, read again when its [`Stamp`] changes (a rename over it, as rotation writes).
#[derive(Debug)]
pub struct TokenFile {
    path: PathBuf,
    /// Each token at least this long (a server's: 16).
    min: usize,
    read: Mutex<(Option<Stamp>, Arc<Vec<String>>)>,
}

impl TokenFile {
    /// Reads `path` once.
    ///
    /// Errors: no such file, no token in it, a token shorter than `min` characters.
    pub fn open(path: &Path, min: usize) -> Result<Arc<TokenFile>> {
        let file = TokenFile {
            path: path.to_path_buf(),
            min,
            read: Mutex::new((None, Arc::new(Vec::new()))),
        };
        let stamp = stamp(path)?;
        let tokens = file.load()?;
        *file.lock() = (Some(stamp), Arc::new(tokens));
        Ok(Arc::new(file))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Option<Stamp>, Arc<Vec<String>>)> {
        self.read
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The file's tokens, each registered as a secret.
    fn load(&self) -> Result<Vec<String>> {
        let text = std::fs::read_to_string(&self.path)
            .with_context(|| format!("cannot read `{}`", self.path.display()))?;
        let tokens: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
        anyhow::ensure!(!tokens.is_empty(), "`{}` is empty", self.path.display());
        for token in &tokens {
            anyhow::ensure!(
                token.len() >= self.min,
                "a token in `{}` is shorter than {} characters",
                self.path.display(),
                self.min
            );
            crate::secrets::register(token);
        }
        Ok(tokens)
    }

    /// The tokens now in the file, first the one to send. A file that cannot be read or holds no
    /// valid token leaves the last ones read in force (the old file stays until a rename
    /// replaces it whole, so this is a file damaged by hand).
    pub fn tokens(&self) -> Arc<Vec<String>> {
        let now = stamp(&self.path).ok();
        let mut read = self.lock();
        if now.is_some()
            && now != read.0
            && let Ok(tokens) = self.load()
        {
            *read = (now, Arc::new(tokens));
        }
        read.1.clone()
    }

    /// The token a client sends: the file's first.
    pub fn current(&self) -> String {
        self.tokens().first().cloned().unwrap_or_default()
    }

    /// Whether `given` is one of the file's tokens (compared in constant time for its length).
    pub fn accepts(&self, given: &str) -> bool {
        self.tokens().iter().fold(false, |found, token| {
            let (a, b) = (given.as_bytes(), token.as_bytes());
            let same =
                a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0;
            found | same
        })
    }
}

fn stamp(path: &Path) -> Result<Stamp> {
    let m = std::fs::metadata(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    Ok((m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec()))
}

#[cfg(test)]
mod tests {
    use super::TokenFile;

    #[test]
    fn a_replaced_file_is_read_again_and_every_line_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.token");
        let (old, new) = ("o".repeat(32), "n".repeat(32));
        std::fs::write(&path, format!("{old}\n")).unwrap();
        let file = TokenFile::open(&path, 16).unwrap();
        assert!(file.accepts(&old) && !file.accepts(&new));
        // A rotation: both accepted, the new one sent; then the new one alone.
        let next = dir.path().join("t.next");
        for (text, sent, old_accepted) in [
            (format!("{old}\n{new}\n"), &old, true),
            (format!("{new}\n{old}\n"), &new, true),
            (format!("{new}\n"), &new, false),
        ] {
            std::fs::write(&next, text).unwrap();
            std::fs::rename(&next, &path).unwrap();
            assert_eq!(&file.current(), sent);
            assert!(file.accepts(&new));
            assert_eq!(file.accepts(&old), old_accepted);
        }
        assert!(!file.accepts("") && !file.accepts(&new[..31]));
        // A file damaged by hand leaves the last tokens in force.
        std::fs::write(&path, "short\n").unwrap();
        assert!(file.accepts(&new));
        assert!(TokenFile::open(&path, 16).is_err());
    }
}
