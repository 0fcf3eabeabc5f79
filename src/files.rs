//! Files this tool writes: atomically (temp file, fsync, rename), with their mode, and private
//! folders (0700). Every state, registry, config and secret file goes through here.

use std::fs::File;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::Path;

use anyhow::{Context as _, Result};

/// Creates a folder and its parents, mode 0700.
///
/// Errors: [`write_failed`] naming the folder.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| write_failed(dir, "create", e))
}

/// Atomic write: `tempfile` in the target's folder, write, `sync_all`, chmod, `persist`.
///
/// Errors: [`write_failed`] naming `path` (never the temp file), whichever step failed; the
/// temp file is removed and `path` is left as it was.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().context("path has no parent folder")?;
    let failed = |e| write_failed(path, "write", e);
    let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(failed)?;
    temp.as_file_mut().write_all(contents).map_err(failed)?;
    temp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(failed)?;
    temp.as_file().sync_all().map_err(failed)?;
    temp.persist(path).map_err(|e| failed(e.error))?;
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Atomic symlink: a link to `target` made under a temporary name in `link`'s folder
/// (`tempfile`), then renamed over `link`, so `link` is at every moment the old link or the new.
///
/// Errors: [`write_failed`] naming `link`; `link` is left as it was.
pub fn symlink_atomic(link: &Path, target: &Path) -> Result<()> {
    let dir = link.parent().context("path has no parent folder")?;
    let failed = |e| write_failed(link, "write", e);
    let temp = tempfile::Builder::new()
        .make_in(dir, |path| std::os::unix::fs::symlink(target, path))
        .map_err(failed)?;
    temp.persist(link).map_err(|e| failed(e.error))?;
    Ok(())
}

/// The error of a failed write (`verb`: `write`, `create`) of `path`: "cannot write `path`", the
/// cause (`No space left on device`, `Read-only file system`, `Permission denied`) as its source,
/// and a hint for each of those causes.
pub fn write_failed(path: &Path, verb: &str, cause: std::io::Error) -> anyhow::Error {
    use std::io::ErrorKind;
    let dir = path.parent().unwrap_or(path).display();
    let hint = match cause.kind() {
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded => Some(format!(
            "the disk that holds `{dir}` is full: free some space there (`df -h {dir}` shows \
            it), then run the command again"
        )),
        ErrorKind::ReadOnlyFilesystem => Some(format!(
            "`{dir}` is on a read-only filesystem: remount it read-write, or work from a copy of \
            the app folder on a writable disk"
        )),
        ErrorKind::PermissionDenied => Some(format!(
            "this user may not write in `{dir}`: check its owner and mode (`ls -ld {dir}`)"
        )),
        _ => None,
    };
    crate::error::Failed {
        message: format!("cannot {verb} `{}`", path.display()),
        hints: hint.into_iter().collect(),
        source: Box::new(os_cause(cause)),
    }
    .into()
}

/// The operating system's error of `cause`: `tempfile` wraps it with the temp file's path, which
/// is not the file the user knows, and keeps only its kind.
fn os_cause(cause: std::io::Error) -> std::io::Error {
    use nix::errno::Errno;
    use std::io::ErrorKind;
    if cause.raw_os_error().is_some() {
        return cause;
    }
    let errno = match cause.kind() {
        ErrorKind::StorageFull => Errno::ENOSPC,
        ErrorKind::QuotaExceeded => Errno::EDQUOT,
        ErrorKind::ReadOnlyFilesystem => Errno::EROFS,
        ErrorKind::PermissionDenied => Errno::EACCES,
        _ => return cause,
    };
    std::io::Error::from_raw_os_error(errno as i32)
}

/// Writes `contents` (atomically, with `mode`) unless the file holds them already.
pub fn write_if_changed(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    if std::fs::read(path).is_ok_and(|old| old == contents) {
        return Ok(());
    }
    write_atomic(path, contents, mode)
}

/// Reads a secret from a file (a token, an API key): the first line, trimmed; the value is
/// registered with [`crate::secrets`] so that nothing prints it.
///
/// Errors: the file cannot be read, or is empty.
pub fn read_secret(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read `{}`", path.display()))?;
    let secret = text.lines().next().unwrap_or_default().trim().to_string();
    anyhow::ensure!(!secret.is_empty(), "`{}` is empty", path.display());
    crate::secrets::register(&secret);
    Ok(secret)
}

/// Copies the folder `from` into `to` (created as needed), file by file through a temp file and
/// a rename, so a reader never sees half a file; entries whose name `skip` accepts are left out
/// at every depth.
///
/// Errors: a folder that cannot be read, a file that cannot be copied.
pub fn copy_tree(from: &Path, to: &Path, skip: &dyn Fn(&str) -> bool) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("failed to create `{}`", to.display()))?;
    for entry in
        std::fs::read_dir(from).with_context(|| format!("failed to read `{}`", from.display()))?
    {
        let entry = entry?;
        let name = entry.file_name();
        let lossy = name.to_string_lossy();
        if skip(&lossy) {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target, skip)?;
        } else {
            let temp = to.join(format!(".{lossy}.tmp"));
            std::fs::copy(entry.path(), &temp)
                .with_context(|| format!("failed to copy `{}`", entry.path().display()))?;
            std::fs::rename(&temp, &target)?;
        }
    }
    Ok(())
}

/// The real folder or file `path` leads to now: absolute, every symlink resolved
/// (`canonicalize`); a path that does not exist (yet) is made absolute only. A deployment is
/// recorded by its real folder, so that a symlink later pointed elsewhere cannot lead a command
/// given its id to another deployment.
pub fn real_path(path: &Path) -> std::path::PathBuf {
    std::fs::canonicalize(path)
        .or_else(|_| std::path::absolute(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::write_atomic;

    #[test]
    fn atomic_write_sets_mode() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write_atomic(&path, b"one", 0o600).unwrap();
        write_atomic(&path, b"two", 0o600).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        assert_eq!(path.metadata().unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left behind"
        );
    }
}
