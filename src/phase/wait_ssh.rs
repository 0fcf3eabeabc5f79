//! Wait for SSH: every VM at once, TCP connect polling with a short back-off (100 ms doubling to
//! 2 s) until port 22 answers, then a login that also learns or checks the host key and stays as
//! the VM's connection master ([`Masters`]) for the rest of `up`. A changed host key or ssh
//! refusing its own options ends the wait at once: time cannot fix them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use tokio::task::{JoinHandle, JoinSet};

use crate::error::UserError;
use crate::phase::Context;
use crate::process::{Io, Output, Runner};
use crate::tools::ssh::{self, SshTarget};

/// How long one login may take before it is given up and tried again (ssh's `ConnectTimeout`
/// is 10 s, then the key exchange and the login).
const LOGIN_LIMIT: Duration = Duration::from_secs(30);

/// How often a login's socket is looked for.
const SOCKET_POLL: Duration = Duration::from_millis(5);

/// The longest folder a master's socket may live in: a Unix socket's path holds at most 107
/// bytes (`sun_path`, unix(7)), and ssh binds `DIR/HOST.` plus 16 random characters first, then
/// renames it (`muxserver_listen` in OpenSSH's mux.c); HOST is an address, 39 bytes at most.
const SOCKET_DIR_MAX: usize = 107 - 17 - 1 - 39;

/// A running master: the wait of the runner's `ssh`, which ends when the master does.
pub type Master = JoinHandle<Result<Output>>;

/// A command's ssh connection masters ([`ssh::master`]), one per VM it logged in to: `up`'s,
/// from wait-ssh on, which the later phases' ssh, scp and ansible share through
/// [`SshTarget::control_dir`]; `health`'s, which its checks share. The sockets live in a
/// private folder under the temporary directory, as a deployment's own folder may be too long
/// for a socket's path. Dropping
/// `Masters` stops each master (the runner sends it SIGTERM; the command waits for it before it
/// exits) and removes the folder.
#[derive(Default)]
pub struct Masters {
    dir: Option<tempfile::TempDir>,
    running: Vec<Master>,
}

impl Masters {
    /// The sockets' folder, once wait-ssh made one.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_ref().map(tempfile::TempDir::path)
    }

    /// Keeps `master` (if the login stayed) until these masters are dropped.
    pub fn keep(&mut self, master: Option<Master>) {
        self.running.extend(master);
    }

    /// Logs in to every target at once ([`log_in`], each with its log), keeping each login that
    /// stays; per target, in order, how long its login took, or why it failed (a target that
    /// could not be named fails as given).
    pub async fn log_in_all(
        &mut self,
        runner: &Runner,
        targets: Vec<Result<(SshTarget, PathBuf)>>,
    ) -> Vec<Result<Duration>> {
        let logins = targets.into_iter().map(|target| async move {
            let (target, log) = target?;
            let started = Instant::now();
            let master = log_in(runner, &target, &log).await?;
            Ok((started.elapsed(), master))
        });
        futures_util::future::join_all(logins)
            .await
            .into_iter()
            .map(|login| {
                login.map(|(took, master)| {
                    self.keep(master);
                    took
                })
            })
            .collect()
    }

    /// Makes the sockets' folder (mode 0700) unless there is one. None when the temporary
    /// directory cannot hold one or its path is too long for a socket: then every ssh logs in
    /// on its own, as it would without masters.
    pub fn make_dir(&mut self) -> Option<PathBuf> {
        self.try_make_dir()
            .map_err(|why| tracing::debug!("{why}"))
            .ok()
    }

    /// [`Masters::make_dir`], or why there is none (a line for the user).
    fn try_make_dir(&mut self) -> Result<PathBuf, String> {
        if self.dir.is_none() {
            let dir = tempfile::Builder::new()
                .prefix("tfgc-ssh.")
                .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
                .tempdir()
                .map_err(|e| format!("ssh logins are not shared: no temporary folder: {e}"))?;
            if dir.path().as_os_str().len() > SOCKET_DIR_MAX {
                return Err(format!(
                    "ssh logins are not shared: the temporary folder `{}` is too long for a \
                    socket's path (at most {SOCKET_DIR_MAX} bytes); a shorter TMPDIR shares them",
                    dir.path().display()
                ));
            }
            self.dir = Some(dir);
        }
        Ok(self.dir().map(Path::to_path_buf).unwrap_or_default())
    }
}

impl Drop for Masters {
    fn drop(&mut self) {
        for master in &self.running {
            master.abort();
        }
    }
}

/// Next delay of the back-off: ×1.5 from 100 ms, capped at 2 s.
pub fn next_delay(current: Duration) -> Duration {
    (current * 3 / 2).min(Duration::from_secs(2))
}

/// Polls `host:port` until a TCP connection succeeds or `deadline` passes.
pub async fn wait_for_port(host: &str, port: u16, deadline: Instant) -> Result<u32> {
    let mut delay = Duration::from_millis(100);
    let mut attempts = 0;
    let address = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    loop {
        attempts += 1;
        let connect = tokio::time::timeout(
            Duration::from_secs(2),
            tokio::net::TcpStream::connect(&address),
        )
        .await;
        if let Ok(Ok(_stream)) = connect {
            return Ok(attempts);
        }
        if Instant::now() + delay > deadline {
            bail!("{address} did not accept a TCP connection ({attempts} attempts)");
        }
        tokio::time::sleep(delay).await;
        delay = next_delay(delay);
    }
}

/// Logs in to `target` with [`ssh::master`] and waits until its socket is there (the master is
/// running and stays: returned) or ssh ended (an error, or exit 0: a login that did not stay).
/// With no sockets' folder, `ssh … true` is the login.
///
/// Errors: ssh failed (its log's tail); it did not log in within [`LOGIN_LIMIT`].
async fn log_in(runner: &Runner, target: &SshTarget, log: &Path) -> Result<Option<Master>> {
    let Some(socket) = target.control_socket() else {
        let probe = ssh::ssh(target, &["true"], false)
            .io(Io::Log(log.to_path_buf()))
            .timeout(LOGIN_LIMIT);
        return runner.run(&probe).await.map(|_| None);
    };
    let cmd = ssh::master(target).io(Io::Log(log.to_path_buf()));
    let runner = runner.clone();
    let mut master = tokio::spawn(async move { runner.run(&cmd).await });
    let started = Instant::now();
    let limit = started + LOGIN_LIMIT;
    loop {
        if socket.exists() {
            // what the log's reader would otherwise not know: ssh prints nothing on success
            let note = format!(
                "# logged in after {} ms; this login stays as the connection master that this \
                command's other ssh, scp and ansible connections to {} share, until it ends\n",
                started.elapsed().as_millis(),
                target.host
            );
            if let Err(e) = std::fs::OpenOptions::new()
                .append(true)
                .open(log)
                .and_then(|mut f| std::io::Write::write_all(&mut f, note.as_bytes()))
            {
                tracing::debug!("cannot note the login in {}: {e}", log.display());
            }
            return Ok(Some(master));
        }
        if master.is_finished() {
            return (&mut master).await?.map(|_| None);
        }
        if Instant::now() > limit {
            master.abort();
            bail!(
                "ssh to {} did not log in within {} s",
                target.host,
                LOGIN_LIMIT.as_secs()
            );
        }
        tokio::time::sleep(SOCKET_POLL).await;
    }
}

async fn wait_one(
    runner: Runner,
    target: SshTarget,
    log: std::path::PathBuf,
    deadline: Instant,
) -> Result<Option<Master>> {
    if runner.is_real() {
        wait_for_port(&target.host, target.port, deadline).await?;
    }
    let mut delay = Duration::from_millis(100);
    loop {
        let result = log_in(&runner, &target, &log).await;
        match result {
            Ok(master) => return Ok(master),
            Err(err) => {
                crate::interrupt::check()?;
                let text = format!("{err:#}");
                if text.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
                    || text.contains("Host key verification failed")
                {
                    return Err(err.context(format!(
                        "host key of {} does not match the one pinned in `{}`",
                        target.host,
                        target.known_hosts.display()
                    )));
                }
                // ssh refusing its own command line (`command-line line 0: …` from OpenSSH's
                // option parser) is not a VM still booting: no wait can fix it
                if text.contains("command-line line ") || text.contains("command-line: line ") {
                    return Err(err.context(format!(
                        "ssh refused the options it was given for {}; waiting cannot fix that",
                        target.host
                    )));
                }
                if Instant::now() + delay > deadline {
                    return Err(
                        err.context(format!("ssh to {} did not succeed in time", target.host))
                    );
                }
            }
        }
        tokio::time::sleep(delay).await;
        delay = next_delay(delay);
    }
}

/// Before the first phase that uses ssh in a run that did not wait for it (`--resume`, `--from`,
/// `up --upgrade`): one login per VM, all at once, each kept as its connection master as
/// wait-ssh's would be. A VM that does not take one gets none: its phase's own ssh says why.
pub async fn share_logins(ctx: &mut Context) {
    if ctx.masters.make_dir().is_none() {
        return;
    }
    let Ok(outputs) = ctx.outputs() else { return };
    let targets = outputs
        .vms()
        .iter()
        .map(|vm| {
            Ok((
                ctx.ssh_target(&vm.address),
                ctx.log(&format!("ssh-{}", vm.name)),
            ))
        })
        .collect();
    let runner = ctx.runner.clone();
    for failed in ctx
        .masters
        .log_in_all(&runner, targets)
        .await
        .into_iter()
        .flat_map(Result::err)
    {
        tracing::debug!("no shared ssh login: {failed:#}");
    }
}

pub async fn run(ctx: &mut Context) -> Result<()> {
    let vms = ctx.outputs()?.vms();
    // An address recorded before the outputs were checked (an older state.yaml, one edited by
    // hand) would be polled until the timeout; a dry run's are placeholders.
    if let Some(vm) = vms
        .iter()
        .find(|v| v.address.parse::<std::net::IpAddr>().is_err())
        .filter(|_| !ctx.runner.is_dry_run())
    {
        return Err(UserError::new(
            format!(
                "VM `{}` has the address `{}` in `{}`, which is not an IP address",
                vm.name,
                vm.address,
                ctx.dir.state_file().display()
            ),
            "read the outputs again with `tfgrid-compose up --from infrastructure` (the \
                pattern's outputs carry bare addresses: patterns/PATTERN_CONTRACT.md)",
        )
        .into());
    }
    let deadline = Instant::now() + ctx.settings.ssh_timeout;
    ctx.printer.status(
        "Waiting",
        format!(
            "for SSH on {}",
            vms.iter()
                .map(|v| v.address.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    let started = Instant::now();
    if let Err(why) = ctx.masters.try_make_dir() {
        ctx.printer.warn(why);
    }
    let mut set = JoinSet::new();
    for vm in &vms {
        let log = ctx.log(&format!("wait-ssh-{}", vm.name));
        set.spawn(wait_one(
            ctx.runner.clone(),
            ctx.ssh_target(&vm.address),
            log,
            deadline,
        ));
    }
    let mut failures = Vec::new();
    while let Some(joined) = set.join_next().await {
        match joined? {
            Ok(master) => ctx.masters.keep(master),
            Err(err) => failures.push(err),
        }
    }
    // The first failure keeps its type (its hints: a changed host key, the log), the others are
    // named in its context.
    if !failures.is_empty() {
        let first = failures.remove(0);
        if failures.is_empty() {
            return Err(first);
        }
        let others: Vec<String> = failures.iter().map(|e| format!("{e:#}")).collect();
        return Err(first.context(format!(
            "{} VMs did not answer over ssh; besides the one below: {}",
            others.len() + 1,
            others.join("\n")
        )));
    }
    ctx.printer.status(
        "Reached",
        format!(
            "{} VM{} over SSH in {}",
            vms.len(),
            if vms.len() == 1 { "" } else { "s" },
            crate::clock::format_duration(started.elapsed())
        ),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{next_delay, wait_for_port};

    #[test]
    fn backoff_is_short_and_capped() {
        let mut d = Duration::from_millis(100);
        let mut seen = vec![];
        for _ in 0..10 {
            seen.push(d.as_millis());
            d = next_delay(d);
        }
        assert_eq!(seen[..4], [100, 150, 225, 337]);
        assert_eq!(*seen.last().unwrap(), 2000);
    }

    #[tokio::test]
    async fn port_poll_sees_a_late_listener() {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = probe.local_addr().unwrap().port();
        drop(probe);
        let late = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_secs(3)).await;
            drop(listener);
        });
        let attempts = wait_for_port("127.0.0.1", port, Instant::now() + Duration::from_secs(5))
            .await
            .unwrap();
        assert!(attempts >= 2);
        late.abort();
        let err = wait_for_port(
            "127.0.0.1",
            port,
            Instant::now() + Duration::from_millis(200),
        )
        .await;
        assert!(err.is_err());
    }
}
