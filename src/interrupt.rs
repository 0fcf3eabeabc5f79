//! Interrupts: SIGINT (Ctrl-C) and SIGTERM (a cancelled CI job, `timeout`, systemd) end a command
//! the same orderly way. [`install`] turns both into one flag for the whole command; the runner
//! ([`crate::process`]) passes the signal on to each child it started, exactly once, waits for it
//! (at most [`grace`], then SIGTERM, then SIGKILL to the child's whole process group), and answers
//! [`Interrupted`]; the phases record themselves as interrupted and `up`/`down` release their lock
//! only after that. A second signal says what is still being waited for.
//!
//! Children in their own process group (every child whose output goes to a log) never see the
//! terminal's Ctrl-C, so the runner always passes it on; a child that shares the terminal (an
//! interactive `ssh`, `exec`) got the terminal's SIGINT itself and is only waited for.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::error::Interrupted;
use crate::output::Printer;

pub use crate::error::Signal;
pub use crate::output::Waiting;

/// The signal as `nix` names it, to pass it on.
pub(crate) fn nix_signal(signal: Signal) -> nix::sys::signal::Signal {
    match signal {
        Signal::Interrupt => nix::sys::signal::Signal::SIGINT,
        Signal::Terminate => nix::sys::signal::Signal::SIGTERM,
    }
}

/// How long a child may take to stop after the signal was passed on, before it gets SIGTERM.
/// Terraform stops gracefully on SIGINT: it finishes the calls in flight and writes its state,
/// which on the grid can take a minute; killing it earlier can leave a contract it never recorded.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(120);

/// How long a child may take to stop after SIGTERM, before SIGKILL.
pub const TERM_GRACE: Duration = Duration::from_secs(10);

struct Shared {
    signal: tokio::sync::watch::Sender<Option<Signal>>,
    /// Running children by pid: what they are and when the signal reached them.
    children: Mutex<BTreeMap<u32, Child>>,
    grace: Mutex<Duration>,
}

struct Child {
    what: String,
    /// Whether the child leads its own process group (else it shares the terminal's).
    own_group: bool,
    signalled_at: Option<Instant>,
    /// Its wait was dropped before it ended (see [`Registered`]'s `Drop`).
    abandoned: bool,
    /// Its [`pid_file`], removed when the child is known to be gone.
    pid_file: Option<std::path::PathBuf>,
}

impl Child {
    /// The child is gone (or was sent SIGKILL): its pid file names no one any more.
    fn forget(&self) {
        if let Some(file) = &self.pid_file {
            let _ = std::fs::remove_file(file);
        }
    }
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| Shared {
        signal: tokio::sync::watch::Sender::new(None),
        children: Mutex::new(BTreeMap::new()),
        grace: Mutex::new(DEFAULT_GRACE),
    })
}

/// Listens for SIGINT and SIGTERM for the rest of the process. The first one is recorded (see
/// [`received`]); every later one prints what the command is still waiting for.
///
/// Errors: the signal handlers cannot be registered.
pub fn install(printer: Printer) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    tokio::spawn(async move {
        loop {
            let sig = tokio::select! {
                _ = int.recv() => Signal::Interrupt,
                _ = term.recv() => Signal::Terminate,
            };
            let first = shared().signal.send_if_modified(|s| {
                if s.is_none() {
                    *s = Some(sig);
                    true
                } else {
                    false
                }
            });
            let waiting = waiting_for();
            let list = waiting
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            if first {
                let detail = if waiting.is_empty() {
                    String::new()
                } else {
                    format!("; stopping {list}")
                };
                printer.warn(format!("{} received{detail}", sig.name()));
            } else if waiting.is_empty() {
                printer.warn(format!(
                    "{} received again; finishing the state files",
                    sig.name()
                ));
            } else {
                printer.warn(format!(
                    "{} received again; still waiting for {list} to stop",
                    sig.name()
                ));
            }
            printer.event(&crate::output::Event::Interrupt {
                signal: sig.name(),
                first,
                waiting_for: waiting,
            });
        }
    });
    Ok(())
}

/// The children still running.
fn waiting_for() -> Vec<Waiting> {
    let grace = grace();
    let Ok(children) = shared().children.lock() else {
        return Vec::new();
    };
    children
        .iter()
        .map(|(pid, child)| Waiting {
            what: child.what.clone(),
            pid: *pid,
            force_in_s: child
                .signalled_at
                .map(|at| grace.saturating_sub(at.elapsed()).as_secs()),
        })
        .collect()
}

/// The first SIGINT or SIGTERM this command received, if any.
pub fn received() -> Option<Signal> {
    *shared().signal.borrow()
}

/// `Err(Interrupted)` once a signal arrived: long work checks it between steps.
pub fn check() -> Result<(), Interrupted> {
    received().map_or(Ok(()), |s| Err(Interrupted(s)))
}

/// Resolves when the first signal arrives (at once if it already did); never without one.
pub async fn wait() -> Signal {
    let mut rx = shared().signal.subscribe();
    let signal = rx.wait_for(Option::is_some).await.ok().and_then(|s| *s);
    match signal {
        Some(signal) => signal,
        None => std::future::pending().await,
    }
}

/// The grace period children get after the signal (`stop_grace` setting).
pub fn grace() -> Duration {
    shared().grace.lock().map_or(DEFAULT_GRACE, |g| *g)
}

pub fn set_grace(grace: Duration) {
    if let Ok(mut g) = shared().grace.lock() {
        *g = grace;
    }
}

/// Runs `work` to its end, unless a signal arrives: then `work` goes on while a child it started
/// is stopping (the runner ends it within the grace periods and answers [`Interrupted`]) and
/// `settle` more to write its state, and is dropped after that. Work with nothing to stop (a wait
/// loop, a `--follow`) so ends at once.
///
/// Errors: `work`'s own, or [`Interrupted`] when it was dropped.
pub async fn stoppable<T>(
    work: impl std::future::Future<Output = anyhow::Result<T>>,
    settle: Duration,
) -> anyhow::Result<T> {
    tokio::pin!(work);
    let signal = tokio::select! {
        result = &mut work => return result,
        signal = wait() => signal,
    };
    let settled = async {
        loop {
            while children_running() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            tokio::time::sleep(settle).await;
            if !children_running() {
                break;
            }
        }
    };
    tokio::select! {
        result = &mut work => result,
        () = settled => Err(Interrupted(signal).into()),
        () = tokio::time::sleep(grace() + TERM_GRACE * 2) => Err(Interrupted(signal).into()),
    }
}

/// Whether any child the runner started is still running (entries of children whose wait was
/// dropped are kept until the process is gone).
pub fn children_running() -> bool {
    shared().children.lock().is_ok_and(|mut c| {
        c.retain(|pid, child| {
            let keep = !child.abandoned || live(*pid);
            if !keep {
                child.forget();
            }
            keep
        });
        !c.is_empty()
    })
}

/// Waits until every child the runner started has stopped, at most `limit`; then sends SIGKILL
/// to the process group of each one left, so that none outlives the command. A child whose wait
/// was dropped (it was sent SIGTERM then: an ssh connection master, a tunnel) has its pid file
/// removed once it has ended, so that only a killed command leaves one.
pub async fn drain(limit: Duration) {
    let deadline = Instant::now() + limit;
    while children_running() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let left: Vec<(u32, bool)> = shared()
        .children
        .lock()
        .map(|c| {
            c.iter()
                .map(|(pid, c)| {
                    c.forget();
                    (*pid, c.own_group)
                })
                .collect()
        })
        .unwrap_or_default();
    for (pid, own_group) in left {
        if own_group {
            kill_group(pid, nix::sys::signal::Signal::SIGKILL);
        } else {
            kill_one(pid, nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// A running child, registered while its guard lives. A guard dropped before [`Registered::ended`]
/// means the wait was cancelled while the child ran: the child is sent SIGTERM (Terraform stops
/// gracefully on it) and stays listed until it is gone, so [`drain`] still waits for it.
pub(crate) struct Registered {
    pid: u32,
    own_group: bool,
    ended: bool,
}

/// `pid_file`: the child's [`pid_file`], removed once it has ended (waited for, or found gone
/// after its wait was dropped), so that only a killed command leaves one.
pub(crate) fn register(
    pid: u32,
    what: String,
    own_group: bool,
    pid_file: Option<std::path::PathBuf>,
) -> Registered {
    if let Ok(mut children) = shared().children.lock() {
        children.insert(
            pid,
            Child {
                what,
                own_group,
                signalled_at: None,
                abandoned: false,
                pid_file,
            },
        );
    }
    Registered {
        pid,
        own_group,
        ended: false,
    }
}

impl Registered {
    pub(crate) fn signalled(&self) {
        if let Ok(mut children) = shared().children.lock()
            && let Some(child) = children.get_mut(&self.pid)
        {
            child.signalled_at = Some(Instant::now());
        }
    }

    /// The child was waited for.
    pub(crate) fn ended(mut self) {
        self.ended = true;
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        let Ok(mut children) = shared().children.lock() else {
            return;
        };
        if self.ended {
            if let Some(child) = children.remove(&self.pid) {
                child.forget();
            }
            return;
        }
        if let Some(child) = children.get_mut(&self.pid) {
            child.abandoned = true;
        }
        drop(children);
        if self.own_group {
            kill_group(self.pid, nix::sys::signal::Signal::SIGTERM);
        } else {
            kill_one(self.pid, nix::sys::signal::Signal::SIGTERM);
        }
    }
}

/// Sends `signal` to the process group led by `pid` (the child was started as its leader);
/// a group that is gone already is not an error.
pub(crate) fn kill_group(pid: u32, signal: nix::sys::signal::Signal) {
    let Ok(pid) = i32::try_from(pid) else { return };
    if let Err(e) = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), signal)
        && e != nix::errno::Errno::ESRCH
    {
        tracing::warn!("could not send {signal} to process group {pid}: {e}");
    }
}

/// Sends `signal` to the one process `pid`.
pub(crate) fn kill_one(pid: u32, signal: nix::sys::signal::Signal) {
    let Ok(pid) = i32::try_from(pid) else { return };
    if let Err(e) = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal)
        && e != nix::errno::Errno::ESRCH
    {
        tracing::warn!("could not send {signal} to process {pid}: {e}");
    }
}

/// `<log>.<pid>.pid`: the file a running child leaves beside its log (its program, what it is
/// doing, then the pid of the command that started it), removed when it ends.
pub fn pid_file(log: &std::path::Path, pid: u32) -> std::path::PathBuf {
    let mut name = log.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{pid}.pid"));
    log.with_file_name(name)
}

/// Stops the children a SIGKILLed run of this deployment left running (their pid files under
/// `logs_dir/*/`; one whose starting command still runs is left alone): each is given 5 s to
/// end on its own, then SIGINT (Terraform writes its state),
/// [`grace`], SIGTERM, 10 s, SIGKILL, to its process group. A pid file whose process is gone, is
/// now another program, or started after the file was written (its pid reused), is just
/// removed. Call it holding the deployment's lock.
pub async fn stop_orphans(logs_dir: &std::path::Path, printer: &Printer) {
    use nix::sys::signal::Signal as Sig;
    let files: Vec<std::path::PathBuf> = std::fs::read_dir(logs_dir)
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|run| {
            std::fs::read_dir(run.path())
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
        })
        .filter(|p| p.extension().is_some_and(|e| e == "pid"))
        .collect();
    for file in files {
        let pid = file
            .file_stem()
            .and_then(|s| std::path::Path::new(s).extension())
            .and_then(|p| p.to_str()?.parse::<u32>().ok());
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let mut lines = text.lines();
        let (program, what) = (
            lines.next().unwrap_or_default(),
            lines.next().unwrap_or_default(),
        );
        // The command that started it (a third line since it was written), still running: not
        // an orphan but another command's child (a second dashboard's tunnel).
        let owner = lines.next().and_then(|l| l.trim().parse::<u32>().ok());
        if owner.is_some_and(|o| o != std::process::id() && runs(o, env!("CARGO_PKG_NAME"))) {
            continue;
        }
        let written = std::fs::metadata(&file).and_then(|m| m.modified()).ok();
        if let Some(pid) = pid.filter(|pid| runs(*pid, program) && !started_after(*pid, written)) {
            printer.warn(format!(
                "`{what}` (pid {pid}) of an earlier run that was killed is still \
                running; stopping it first"
            ));
            let deadline = |d: Duration| Instant::now() + d;
            let wait_until = |until: Instant| async move {
                while runs(pid, program) && Instant::now() < until {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                !runs(pid, program)
            };
            if !wait_until(deadline(Duration::from_secs(5))).await {
                kill_group(pid, Sig::SIGINT);
                if !wait_until(deadline(grace())).await {
                    kill_group(pid, Sig::SIGTERM);
                    if !wait_until(deadline(TERM_GRACE)).await {
                        kill_group(pid, Sig::SIGKILL);
                    }
                }
            }
        }
        let _ = std::fs::remove_file(&file);
    }
}

/// Whether `pid` is a process that has not ended: it exists and is not a zombie (its state in
/// `/proc/PID/stat`, after the command's closing parenthesis, is not `Z`; proc(5)).
pub fn live(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z'))
    })
}

/// Whether process `pid` started more than a second after `time` (the pid file naming it was
/// written then, so the pid is another process's now): its start in `/proc/PID/stat` (field 22,
/// clock ticks since boot) after `btime` of `/proc/stat` (boot, whole seconds; proc(5)).
fn started_after(pid: u32, time: Option<std::time::SystemTime>) -> bool {
    let Some(time) = time else { return false };
    let started = || -> Option<std::time::SystemTime> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // the fields after the command's closing parenthesis start at field 3
        let ticks: u64 = stat
            .rsplit(')')
            .next()?
            .split_whitespace()
            .nth(19)?
            .parse()
            .ok()?;
        let boot: u64 = std::fs::read_to_string("/proc/stat")
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("btime "))?
            .trim()
            .parse()
            .ok()?;
        let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok()??;
        let hz = u64::try_from(hz).ok().filter(|h| *h > 0)?;
        Some(
            std::time::UNIX_EPOCH
                + Duration::from_secs(boot)
                + Duration::from_millis(ticks * 1000 / hz),
        )
    };
    started().is_some_and(|started| started > time + Duration::from_secs(1))
}

/// Whether `pid` is a live (not zombie) process running `program`.
fn runs(pid: u32, program: &str) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let zombie = !live(pid);
    // argv[0], or argv[1] for a script run by its interpreter (`python3 …/terraform`).
    let base = |p: &str| p.rsplit('/').next().unwrap_or(p).to_string();
    let named = cmdline
        .split(|b| *b == 0)
        .take(2)
        .any(|arg| base(&String::from_utf8_lossy(arg)) == base(program));
    !zombie && !program.is_empty() && named
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use super::started_after;

    /// A pid file written after its process started names it; one written before a process
    /// with that pid started names another, whose pid was reused.
    #[test]
    fn a_process_started_after_its_pid_file_is_another() {
        let me = std::process::id();
        assert!(!started_after(me, Some(SystemTime::now())));
        assert!(started_after(me, Some(UNIX_EPOCH)));
        let boot_ago = SystemTime::now() - Duration::from_secs(60 * 60 * 24 * 365);
        assert!(started_after(me, Some(boot_ago)));
        assert!(!started_after(me, None));
    }
}
