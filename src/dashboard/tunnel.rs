//! The AI stack's Prometheus for the charts, reached by the dashboard itself: Prometheus listens
//! on the gateway VM's loopback only ([`PROMETHEUS_PORT`], no authentication of its own; the
//! deployment's ssh key is the key), so the dashboard opens an ssh local forward from a free port
//! of this machine's loopback to it ([`ssh::forward`]) the first time a deployment's charts are
//! asked for. One forward per deployment, owned by the dashboard's process: the runner passes
//! SIGINT/SIGTERM on to it and the command waits for it to end; it reads the dashboard's held
//! stdin, so it ends with the dashboard even when that is SIGKILLed. Its log is the dashboard's,
//! `DATA_DIR/dashboard/ID/prometheus-tunnel.log`, not among the deployment's logs, whose pid
//! files `up` and `down` take for children of a killed run. A forward that ended (the VM
//! rebooted, ssh gave up) is opened again on next use.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use tokio::task::JoinHandle;

use crate::ai::units::PROMETHEUS_PORT;
use crate::ops::Target;
use crate::output::Printer;
use crate::process::{Io, Output, Runner};
use crate::settings::Settings;
use crate::state::DeploymentState;
use crate::tools::ssh;

/// How long a new forward may take to listen (ssh's `ConnectTimeout` is 10 s, then the login).
const OPEN_LIMIT: Duration = Duration::from_secs(30);

/// A running forward: this machine's loopback port, and the task that runs ssh until it ends.
struct Forward {
    port: u16,
    ssh: JoinHandle<Result<Output>>,
}

/// The open forwards, by deployment id.
#[derive(Default)]
pub(crate) struct Tunnels {
    open: tokio::sync::Mutex<HashMap<String, Forward>>,
}

/// Where the charts of one deployment come from: Prometheus' base URL, and how it is reached,
/// for the page to say.
pub(crate) struct Source {
    pub(crate) url: String,
    pub(crate) via: String,
}

impl Tunnels {
    /// The Prometheus of the AI stack `state` records, through this dashboard's forward to its
    /// gateway VM (opened now when there is none, or the last one ended).
    ///
    /// Errors: not an AI stack; its app's manifest unreadable; ssh could not log in or forward
    /// (its log's last lines quoted), or did not listen within [`OPEN_LIMIT`].
    pub(crate) async fn prometheus(
        &self,
        settings: &Settings,
        printer: &Printer,
        target: &Target,
        state: &DeploymentState,
    ) -> Result<Source> {
        let spec = match state.ai_stack {
            Some(_) => target.load_app(printer, Some(state))?.manifest.ai_stack,
            None => None,
        }
        .context("this deployment is not an AI stack: it has no Prometheus")?;
        let vm = crate::ops::inspect::vm_target(state, Some(&spec.gateway.to_string()))?;
        let source = |port: u16| {
            let url = format!("http://127.0.0.1:{port}");
            Source {
                via: format!(
                    "the stack's Prometheus on its gateway VM {} (port {PROMETHEUS_PORT} of its \
                        loopback), through this dashboard's ssh tunnel at {url}",
                    vm.host
                ),
                url,
            }
        };
        let mut open = self.open.lock().await;
        if let Some(forward) = open.get(&state.id)
            && !forward.ssh.is_finished()
        {
            return Ok(source(forward.port));
        }
        if let Some(ended) = open.remove(&state.id) {
            let why = match ended.ssh.await {
                Ok(Err(e)) => format!("{e:#}"),
                _ => "ssh ended".to_string(),
            };
            tracing::debug!("the Prometheus tunnel of {} ended: {why}", state.id);
        }
        let logs = settings.data_dir.join("dashboard").join(&state.id);
        crate::files::create_private_dir(&logs)?;
        let port = free_port()?;
        let cmd = ssh::forward(&vm, port, PROMETHEUS_PORT)
            .io(Io::Log(logs.join("prometheus-tunnel.log")));
        let mut ssh = tokio::spawn(async move { Runner::real().run(&cmd).await });
        let started = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if ssh.is_finished() {
                let why = match (&mut ssh).await {
                    Ok(Err(e)) => e,
                    Ok(Ok(out)) => anyhow::anyhow!("ssh exited with {:?}", out.code),
                    Err(e) => e.into(),
                };
                return Err(why.context(format!("cannot open an ssh tunnel to {}", vm.host)));
            }
            if started.elapsed() > OPEN_LIMIT {
                ssh.abort();
                anyhow::bail!(
                    "the ssh tunnel to {} did not listen within {} s",
                    vm.host,
                    OPEN_LIMIT.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        open.insert(state.id.clone(), Forward { port, ssh });
        Ok(source(port))
    }
}

impl Drop for Tunnels {
    /// Each forward's wait is dropped: the runner sends its ssh SIGTERM, and the command waits
    /// for it to end before it exits.
    fn drop(&mut self) {
        for forward in self.open.get_mut().values() {
            forward.ssh.abort();
        }
    }
}

/// A port of this machine's loopback free now (ssh exits if it is taken by the time it binds).
fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .context("no free port on 127.0.0.1 for the Prometheus tunnel")?;
    Ok(listener.local_addr()?.port())
}
