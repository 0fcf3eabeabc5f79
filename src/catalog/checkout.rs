//! One registry app's pinned commit on disk, in the cache folder:
//!
//! - `<cache>/apps/<name>/repo.git/`: a bare copy of the app's repository, fetched again
//!   (never cloned again) when a commit is missing or on `update NAME`;
//! - `<cache>/apps/<name>/<commit>/`: a checkout of exactly that commit, made once (in a
//!   temporary folder, then renamed) and never moved to another commit, so a deployment made
//!   from it keeps its files whatever the registry pins later;
//! - `<cache>/apps/<name>/git.log`: what git printed; `lock`: one fetch at a time.
//!
//! A commit the repository does not have after a second fetch is refused: nothing else (a
//! branch head) is ever deployed in its place. Start from [`checkout`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result};

use crate::error::CatalogError;
use crate::output::Printer;
use crate::process::Runner;
use crate::state::StateLock;
use crate::tools::git;

/// How long to wait for another command fetching the same app.
const LOCK_WAIT: Duration = Duration::from_secs(600);

/// `<cache>/apps/<name>/`: everything cached of one app.
pub fn app_dir(cache_dir: &Path, name: &str) -> PathBuf {
    cache_dir.join("apps").join(name)
}

/// The checkout of `commit` of app `name`.
pub fn commit_dir(cache_dir: &Path, name: &str, commit: &str) -> PathBuf {
    app_dir(cache_dir, name).join(commit)
}

/// What to check out: an app's repository and the commit the registry pins.
#[derive(Debug, Clone, Copy)]
pub struct Pin<'a> {
    pub name: &'a str,
    pub repo: &'a str,
    pub commit: &'a str,
}

/// Puts `pin.commit` of `pin.repo` on disk and returns its folder. The bare copy is fetched when
/// it lacks the commit, or first when `refresh` (`update NAME`); a commit still missing is
/// fetched by its id once more, then refused.
///
/// Errors: [`CatalogError`] for a missing commit or a checkout at another commit; a
/// [`crate::error::ProcessError`] (with `git.log`'s tail) when git fails.
pub async fn checkout(
    printer: &Printer,
    runner: &Runner,
    cache_dir: &Path,
    pin: Pin<'_>,
    refresh: bool,
) -> Result<PathBuf> {
    let dir = app_dir(cache_dir, pin.name);
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("failed to create `{}`", dir.display()))?;
    let _lock = StateLock::acquire(
        &dir.join("lock"),
        &format!("fetch {}", pin.name),
        Some(LOCK_WAIT),
        |holder| {
            printer.status(
                "Blocking",
                format!("waiting for another fetch of `{}` ({holder})", pin.name),
            );
        },
    )?;
    let log = dir.join("git.log");
    let bare = dir.join("repo.git");
    let mut fetched = false;
    if !bare.join("HEAD").is_file() {
        runner.run(&git::init_bare(&bare, &log)).await?;
        fetch(printer, runner, &bare, pin, &log).await?;
        fetched = true;
    } else if refresh {
        fetch(printer, runner, &bare, pin, &log).await?;
        fetched = true;
    }
    if !has_commit(runner, &bare, pin.commit, &log).await? {
        if !fetched {
            fetch(printer, runner, &bare, pin, &log).await?;
        }
        if !has_commit(runner, &bare, pin.commit, &log).await? {
            // Not on any branch or tag: ask for it by id (a failure here is the answer).
            runner
                .status(&git::fetch_commit(&bare, pin.repo, pin.commit, &log))
                .await?;
        }
        if !has_commit(runner, &bare, pin.commit, &log).await? {
            return Err(CatalogError {
                message: format!(
                    "the app registry pins `{}` to commit {}, which {} does not have (fetched \
                        twice)",
                    pin.name, pin.commit, pin.repo
                ),
                hint:
                    "the registry and the repository are out of step (a force-push, a commit not \
                    pushed yet); tfgrid-compose deploys only the pinned commit, never a branch \
                    head: try `tfgrid-compose update` later, or deploy a folder of your own"
                        .into(),
            }
            .into());
        }
    }
    let target = commit_dir(cache_dir, pin.name, pin.commit);
    if !target.is_dir() {
        printer.status(
            "Checking out",
            format!("`{}` at {}", pin.name, short(pin.commit)),
        );
        make_checkout(runner, &bare, &target, pin.commit, &log).await?;
    }
    let head = runner.run(&git::head(&target, &log)).await?.stdout;
    if head.trim() != pin.commit {
        return Err(CatalogError {
            message: format!(
                "the checkout `{}` is at commit {}, not at {}",
                target.display(),
                head.trim(),
                pin.commit
            ),
            hint: format!(
                "something changed it by hand: remove `{}` and run the command again",
                target.display()
            ),
        }
        .into());
    }
    Ok(target)
}

/// The first 12 hex digits of a commit id, as `git log --abbrev=12` shows it (a hand-edited
/// `state.yaml` may hold anything: the cut never falls inside a character).
pub fn short(commit: &str) -> &str {
    commit
        .char_indices()
        .nth(12)
        .map_or(commit, |(end, _)| &commit[..end])
}

async fn fetch(
    printer: &Printer,
    runner: &Runner,
    bare: &Path,
    pin: Pin<'_>,
    log: &Path,
) -> Result<()> {
    printer.status("Fetching", pin.repo);
    runner
        .run(&git::fetch(bare, pin.repo, log))
        .await
        .with_context(|| format!("failed to fetch `{}` (app `{}`)", pin.repo, pin.name))?;
    Ok(())
}

async fn has_commit(runner: &Runner, bare: &Path, commit: &str, log: &Path) -> Result<bool> {
    Ok(runner
        .status(&git::has_commit(bare, commit, log))
        .await?
        .code
        == Some(0))
}

/// Clones the bare copy into a temporary folder beside `target`, checks `commit` out there and
/// renames it to `target`: a checkout folder exists only complete.
async fn make_checkout(
    runner: &Runner,
    bare: &Path,
    target: &Path,
    commit: &str,
    log: &Path,
) -> Result<()> {
    let parent = target.parent().unwrap_or(Path::new("."));
    let temporary = parent.join(format!(".{}.{}", short(commit), crate::ids::random_hex(4)?));
    let made = async {
        runner.run(&git::clone_local(bare, &temporary, log)).await?;
        runner.run(&git::checkout(&temporary, commit, log)).await?;
        std::fs::rename(&temporary, target).with_context(|| {
            format!(
                "failed to rename `{}` to `{}`",
                temporary.display(),
                target.display()
            )
        })
    }
    .await;
    if made.is_err() {
        let _ = std::fs::remove_dir_all(&temporary);
    }
    made
}
