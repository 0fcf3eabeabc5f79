//! Errors a caller branches on, and the one place that turns an error chain into hints and an
//! exit code ([`hints_for_error`], [`exit_code_for`]). Everything else uses `anyhow` with context.

use std::path::PathBuf;

use thiserror::Error;

/// Bad input in a file the user wrote: one line naming file, line, column and field.
#[derive(Debug, Error)]
#[error("{}{}: {field}: {message}", file.display(), location(*line, *column))]
pub struct InputError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Dotted path of the field (`hooks.setup`), or `(document)` when there is none.
    pub field: String,
    pub message: String,
    pub hint: Option<String>,
}

fn location(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(":{l}:{c}"),
        (Some(l), None) => format!(":{l}"),
        _ => String::new(),
    }
}

/// A child process that failed: its command line (redacted), exit code and last log lines.
#[derive(Debug, Error)]
#[error("`{command}` {}{}", status(*code), tail_text(tail))]
pub struct ProcessError {
    pub command: String,
    pub code: Option<i32>,
    pub tail: String,
    pub log: Option<PathBuf>,
}

fn status(code: Option<i32>) -> String {
    match code {
        Some(code) => format!("exited with status {code}"),
        None => "was stopped".to_string(),
    }
}

fn tail_text(tail: &str) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!("\n{tail}")
    }
}

/// The Terraform outputs do not satisfy the pattern contract.
#[derive(Debug, Error)]
#[error("pattern `{pattern}` broke its output contract: output `{output}` {problem}")]
pub struct ContractError {
    pub pattern: String,
    pub output: String,
    pub problem: String,
}

/// Another run holds the deployment's lock.
#[derive(Debug, Error)]
#[error("deployment is locked by another run ({holder})")]
pub struct LockError {
    pub holder: String,
    pub lock_file: PathBuf,
}

/// A user-facing error with a known fix.
#[derive(Debug, Error)]
#[error("{message}")]
pub struct UserError {
    pub message: String,
    pub hint: Option<String>,
}

impl UserError {
    pub fn new(message: impl Into<String>, hint: impl Into<String>) -> Self {
        UserError {
            message: message.into(),
            hint: Some(hint.into()),
        }
    }
}

/// The app registry or an app's repository could not give what `search`, `up NAME` or `update`
/// needs: the registry unreachable with no copy, a pinned commit the repository lacks. Exit 1
/// (nothing local was wrong); the hint says what to try.
#[derive(Debug, Error)]
#[error("{message}")]
pub struct CatalogError {
    pub message: String,
    pub hint: String,
}

/// An operation failed in a way that has follow-up commands; its hints name them.
#[derive(Debug, Error)]
#[error("{message}")]
pub struct Failed {
    pub message: String,
    pub hints: Vec<String>,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// A failure whose cause a lower layer recognised in what a tool printed (the grid's errors:
/// docs/grid-errors.md): the message says what failed and what that means, the hint what to do.
#[derive(Debug, Error)]
#[error("{message}")]
pub struct Recognised {
    pub message: String,
    pub hint: String,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// `state.yaml` exists but is empty or is not a deployment's state (a crash of the disk, an
/// editor, a `: >`). `down` still destroys what the Terraform state beside it holds.
#[derive(Debug, Error)]
#[error("state file `{}` is empty or damaged: {detail}", path.display())]
pub struct DamagedState {
    pub path: std::path::PathBuf,
    pub detail: String,
    /// The Terraform working folder beside it (`StateDir::terraform_dir`).
    pub terraform_dir: std::path::PathBuf,
    /// The words after `tfgrid-compose down` that name this deployment (`StateDir::target`).
    pub target: String,
}

/// A recorded deployment whose folder (with its `state.yaml` and Terraform state) is gone.
#[derive(Debug, Error)]
#[error("the folder `{}` of deployment {id} is gone, and with it its state.yaml and Terraform \
    state", state_dir.display())]
pub struct FolderGone {
    pub id: String,
    pub pattern: String,
    pub state_dir: std::path::PathBuf,
    /// What its pattern says may still run on this machine without the folder
    /// (`down_without_state.running.what` of pattern.yaml: `local VMs`); `None` for a pattern
    /// whose resources are elsewhere (on the grid).
    pub still_running: Option<String>,
}

/// The command received SIGINT (Ctrl-C) or SIGTERM; its children were stopped first.
#[derive(Debug, Error)]
#[error("interrupted ({})", .0.name())]
pub struct Interrupted(pub Signal);

/// The two signals that stop a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT: Ctrl-C, `timeout -s INT`, `kill -INT`.
    Interrupt,
    /// SIGTERM: a cancelled CI job, `timeout`, `kill`.
    Terminate,
}

impl Signal {
    /// The exit code of a command that stopped on this signal: 128 + the signal number
    /// (130 for SIGINT, 143 for SIGTERM), as shells report it.
    pub fn exit_code(self) -> u8 {
        match self {
            Signal::Interrupt => 130,
            Signal::Terminate => 143,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }
}

/// `health`: the checks named did not hold (each printed with its figure). Exit 4.
#[derive(Debug, Error)]
#[error("unhealthy: {}", .0.join(", "))]
pub struct Unhealthy(pub Vec<String>);

/// `ssh -- cmd`: pass the remote exit code through unchanged.
#[derive(Debug, Error)]
#[error("remote command exited with status {0}")]
pub struct ExternalExit(pub i32);

/// Hints for an error chain, collected here and nowhere else.
pub fn hints_for_error(err: &anyhow::Error) -> Vec<String> {
    let mut hints = Vec::new();
    let mut last = Vec::new();
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<Failed>() {
            last.extend(e.hints.iter().cloned());
            continue;
        }
        if let Some(e) = cause.downcast_ref::<InputError>() {
            hints.extend(e.hint.clone());
        } else if let Some(e) = cause.downcast_ref::<Recognised>() {
            hints.push(e.hint.clone());
        } else if let Some(e) = cause.downcast_ref::<UserError>() {
            hints.extend(e.hint.clone());
        } else if let Some(e) = cause.downcast_ref::<CatalogError>() {
            hints.push(e.hint.clone());
        } else if let Some(e) = cause.downcast_ref::<LockError>() {
            hints.push(format!(
                "wait for it to finish, or pass `--lock-wait 10m`; if no run is alive, the lock in \
                    `{}` is released already and a retry works",
                e.lock_file.display()
            ));
        } else if let Some(e) = cause.downcast_ref::<ProcessError>() {
            if e.tail.contains("Error acquiring the state lock") {
                hints.push(
                    "another terraform run may still be working on this deployment; wait, \
                    then retry"
                        .into(),
                );
            }
            if e.tail.contains("REMOTE HOST IDENTIFICATION HAS CHANGED") {
                hints.push(host_key_hint(&e.tail));
            }
            if e.tail.contains("UNREACHABLE!") {
                hints.push(
                    "the VM did not answer ansible over ssh: check the WireGuard interface \
                    with `wg show` and `tfgrid-compose status`"
                        .into(),
                );
            }
            if let Some(log) = &e.log {
                hints.push(format!("full log at `{}`", log.display()));
            }
        } else if let Some(e) = cause.downcast_ref::<FolderGone>() {
            let id8 = crate::ids::ShortId::of(&e.id);
            if let Some(what) = &e.still_running {
                hints.push(format!(
                    "its {what} may still run: `tfgrid-compose down {id8}` finds \
                    them by the deployment's id and stops them"
                ));
            } else {
                hints.push(
                    "what was created on the grid may still be billed: `tfgrid-compose \
                    contracts` lists your twin's contracts and marks those no state holds as \
                    orphan"
                        .into(),
                );
            }
            hints.push("`tfgrid-compose ps --prune` forgets the entry".into());
        } else if let Some(e) = cause.downcast_ref::<DamagedState>() {
            hints.push(format!(
                "`tfgrid-compose down {}` still destroys what Terraform's state in `{}` \
                    holds (it is what is billed), then removes the folder",
                e.target,
                e.terraform_dir.display()
            ));
            hints.push(
                "`status` and `up --resume` need a readable state.yaml; after `down`, `up` \
                starts afresh"
                    .into(),
            );
        } else if let Some(e) = cause.downcast_ref::<ContractError>() {
            hints.push(if e.problem == "is missing" {
                format!(
                    "the pattern's infrastructure must declare `output \"{}\"` (see \
                    patterns/PATTERN_CONTRACT.md)",
                    e.output
                )
            } else {
                format!(
                    "fix `{}` in the pattern's outputs (patterns/PATTERN_CONTRACT.md says what \
                    each holds)",
                    e.output
                )
            });
        }
    }
    let path_of = |h: &str| h.split('`').nth(1).map(String::from);
    for hint in last {
        let duplicate = path_of(&hint).is_some_and(|p| {
            hints
                .iter()
                .any(|h| path_of(h).as_deref() == Some(p.as_str()))
        });
        if !duplicate {
            hints.push(hint);
        }
    }
    hints
}

/// The way out of OpenSSH's "REMOTE HOST IDENTIFICATION HAS CHANGED": the `ssh-keygen -f FILE -R
/// HOST` line ssh printed names the deployment's own known_hosts file and the host as it is
/// recorded (`[10.1.0.2]:2222` for another port). OpenSSH 9.2 prints it as
/// `  ssh-keygen -f "/path/known_hosts" -R "[127.0.0.1]:22999"`.
fn host_key_hint(tail: &str) -> String {
    let remove = tail
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("ssh-keygen -f ") && l.contains(" -R "));
    let how = remove.map_or_else(
        || "remove the old key with `ssh-keygen -f KNOWN_HOSTS -R HOST`".to_string(),
        |l| format!("forget its old key with `{l}`"),
    );
    format!(
        "if the VM was replaced at the same address (a new VM, a reinstall), {how} (this \
            deployment's own known_hosts, not yours), then run the command again (`tfgrid-compose \
            up --resume` for `up`); if it was not replaced, someone may be intercepting the \
            connection"
    )
}

/// Documented exit codes (docs/exit-codes.md):
/// - 0 success
/// - 1 an operation failed (a phase, a tool, a destroy); state says where, `--resume` continues
/// - 2 bad usage or bad input (flags, manifest, config, unknown target), or a question that
///   cannot be asked because stdin is not a terminal; nothing was changed
/// - 3 another run holds the deployment's lock
/// - 4 `health`: a check did not hold
/// - 130 interrupted by SIGINT (Ctrl-C), 143 by SIGTERM, after the children stopped
/// - `ssh`, `exec` and app commands: the remote command's own code.
pub fn exit_code_for(err: &anyhow::Error) -> u8 {
    if let Some(Interrupted(signal)) = err.downcast_ref::<Interrupted>() {
        return signal.exit_code();
    }
    for cause in err.chain() {
        if let Some(Interrupted(signal)) = cause.downcast_ref::<Interrupted>() {
            return signal.exit_code();
        }
        if let Some(ExternalExit(code)) = cause.downcast_ref::<ExternalExit>() {
            return u8::try_from(*code).unwrap_or(1);
        }
    }
    if err.downcast_ref::<Failed>().is_some() {
        return 1;
    }
    if err.downcast_ref::<Unhealthy>().is_some() {
        return 4;
    }
    for cause in err.chain() {
        if cause.downcast_ref::<LockError>().is_some() {
            return 3;
        }
        if cause.downcast_ref::<InputError>().is_some()
            || cause.downcast_ref::<UserError>().is_some()
        {
            return 2;
        }
    }
    1
}

#[cfg(test)]
mod tests {
    use super::{FolderGone, hints_for_error};

    /// The hint for a gone folder says what may still run in the words the pattern gave the
    /// error, whatever the pattern is called; without them, what may be billed on the grid.
    #[test]
    fn a_gone_folder_hints_from_what_its_pattern_says_runs() {
        let gone = |pattern: &str, still_running: Option<&str>| {
            hints_for_error(&anyhow::Error::from(FolderGone {
                id: "0123abcd89ef4567".into(),
                pattern: pattern.into(),
                state_dir: "/srv/app/.tfgrid-compose/default".into(),
                still_running: still_running.map(String::from),
            }))
        };
        let hints = gone("my-vms", Some("local VMs"));
        assert!(
            hints[0].starts_with("its local VMs may still run: `tfgrid-compose down 0123abcd`"),
            "{hints:?}"
        );
        let hints = gone("local", None);
        assert!(hints[0].contains("may still be billed"), "{hints:?}");
    }
}
