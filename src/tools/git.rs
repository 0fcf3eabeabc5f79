//! `git` argv builders for the repositories of registry apps (`catalog::checkout`): a bare copy
//! fetched from the app's repository, and one checkout per commit cloned from it. Every command
//! logs to the app's `git.log`, never asks for credentials (`GIT_TERMINAL_PROMPT=0`), refuses the
//! `ext::` transport whatever the user's git config says, and puts `--` before a URL or path
//! that came from the registry, so that none is read as an option.

use std::path::Path;
use std::time::Duration;

use crate::process::{Cmd, Io};

/// A fetch or clone of a large repository over a slow link.
const NETWORK_TIMEOUT: Duration = Duration::from_secs(600);
/// Commands that only read or write this machine's disk.
const LOCAL_TIMEOUT: Duration = Duration::from_secs(120);

/// What every call shares: the program, the safety options and the log.
fn git(log: &Path, timeout: Duration) -> Cmd {
    Cmd::new("git")
        .args(["-c", "protocol.ext.allow=never"])
        .env("GIT_TERMINAL_PROMPT", "0")
        .io(Io::Log(log.to_path_buf()))
        .timeout(timeout)
}

/// `git init --bare --quiet DIR`: the empty copy an app's repository is fetched into.
pub fn init_bare(dir: &Path, log: &Path) -> Cmd {
    git(log, LOCAL_TIMEOUT)
        .args(["init", "--bare", "--quiet", "--"])
        .arg(dir.display().to_string())
}

/// `git -C DIR fetch --quiet -- URL +refs/heads/*:refs/heads/* +refs/tags/*:refs/tags/*`: every
/// branch and tag of `url` into the bare copy `dir` (nothing is pruned, so a commit fetched once
/// stays).
pub fn fetch(dir: &Path, url: &str, log: &Path) -> Cmd {
    git(log, NETWORK_TIMEOUT)
        .arg("-C")
        .arg(dir.display().to_string())
        .args(["fetch", "--quiet", "--"])
        .arg(url)
        .args(["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"])
}

/// `git -C DIR fetch --quiet -- URL +COMMIT:refs/tfgrid-compose/COMMIT`: one commit by its id,
/// for a commit no branch or tag reaches (servers that allow it: GitHub, git's own over
/// protocol v2), kept under a ref of its own.
pub fn fetch_commit(dir: &Path, url: &str, commit: &str, log: &Path) -> Cmd {
    git(log, NETWORK_TIMEOUT)
        .arg("-C")
        .arg(dir.display().to_string())
        .args(["fetch", "--quiet", "--"])
        .arg(url)
        .arg(format!("+{commit}:refs/tfgrid-compose/{commit}"))
}

/// `git -C DIR cat-file -e COMMIT^{commit}`: exits 0 when the repository has that commit.
pub fn has_commit(dir: &Path, commit: &str, log: &Path) -> Cmd {
    git(log, LOCAL_TIMEOUT)
        .arg("-C")
        .arg(dir.display().to_string())
        .args(["cat-file", "-e"])
        .arg(format!("{commit}^{{commit}}"))
}

/// `git clone --quiet --no-checkout -- FROM TO`: a local clone (objects hard-linked) of the bare
/// copy, to check one commit out in.
pub fn clone_local(from: &Path, to: &Path, log: &Path) -> Cmd {
    git(log, LOCAL_TIMEOUT)
        .args(["clone", "--quiet", "--no-checkout", "--"])
        .arg(from.display().to_string())
        .arg(to.display().to_string())
}

/// `git -C DIR checkout --quiet --detach COMMIT`.
pub fn checkout(dir: &Path, commit: &str, log: &Path) -> Cmd {
    git(log, LOCAL_TIMEOUT)
        .arg("-C")
        .arg(dir.display().to_string())
        .args(["checkout", "--quiet", "--detach", commit])
}

/// `git -C DIR rev-parse HEAD`: the commit checked out, on stdout.
pub fn head(dir: &Path, log: &Path) -> Cmd {
    git(log, LOCAL_TIMEOUT)
        .arg("-C")
        .arg(dir.display().to_string())
        .args(["rev-parse", "HEAD"])
        .io(Io::Capture(log.to_path_buf()))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::process::{EnvValue, Io};

    const SAFE: &str = "git -c protocol.ext.allow=never";

    #[test]
    fn argv() {
        let log = Path::new("/c/git.log");
        let repo = Path::new("/c/repo.git");
        let commit = "e378a494d2bfe811d86f6d58fe3eb6b6d6aeb7df";
        assert_eq!(
            super::init_bare(repo, log).display_line(),
            format!("{SAFE} init --bare --quiet -- /c/repo.git")
        );
        assert_eq!(
            super::fetch(repo, "https://github.com/o/r", log).display_line(),
            format!(
                "{SAFE} -C /c/repo.git fetch --quiet -- https://github.com/o/r \
                 '+refs/heads/*:refs/heads/*' '+refs/tags/*:refs/tags/*'"
            )
        );
        assert_eq!(
            super::fetch_commit(repo, "https://github.com/o/r", commit, log).display_line(),
            format!(
                "{SAFE} -C /c/repo.git fetch --quiet -- https://github.com/o/r \
                 +{commit}:refs/tfgrid-compose/{commit}"
            )
        );
        assert_eq!(
            super::has_commit(repo, commit, log).display_line(),
            format!("{SAFE} -C /c/repo.git cat-file -e '{commit}^{{commit}}'")
        );
        assert_eq!(
            super::clone_local(repo, Path::new("/c/x"), log).display_line(),
            format!("{SAFE} clone --quiet --no-checkout -- /c/repo.git /c/x")
        );
        assert_eq!(
            super::checkout(Path::new("/c/x"), commit, log).display_line(),
            format!("{SAFE} -C /c/x checkout --quiet --detach {commit}")
        );
        let head = super::head(Path::new("/c/x"), log);
        assert_eq!(
            head.display_line(),
            format!("{SAFE} -C /c/x rev-parse HEAD")
        );
        assert_eq!(head.io, Io::Capture(log.to_path_buf()));
    }

    #[test]
    fn never_prompts_and_a_url_is_never_an_option() {
        let cmd = super::fetch(
            Path::new("/r"),
            "--upload-pack=touch /tmp/x",
            Path::new("/l"),
        );
        assert_eq!(
            cmd.env.get("GIT_TERMINAL_PROMPT"),
            Some(&EnvValue::Plain("0".into()))
        );
        let dashes = cmd.args.iter().position(|a| a == "--").unwrap();
        let url = cmd
            .args
            .iter()
            .position(|a| a.starts_with("--upload"))
            .unwrap();
        assert!(dashes < url);
    }
}
