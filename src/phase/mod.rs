//! The phases of `up`, a closed enum in the order they run, and the [`Context`] they share.
//! [`run_from`] drives them: each phase is journaled as running, then done or failed, and the state
//! is saved after every step, so `up --resume` continues exactly where a run stopped.

pub mod ai_stack;
pub mod application;
pub mod infrastructure;
pub mod network;
pub mod platform;
pub mod verify;
pub mod wait_ssh;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context as _, Result};

use crate::clock::format_duration;
use crate::manifest::{App, ResolvedHook};
use crate::output::{Event, Printer};
use crate::pattern::Pattern;
use crate::process::Runner;
use crate::settings::Settings;
use crate::state::{DeploymentState, StateDir, Status};
use crate::tools::ssh::SshTarget;

pub use crate::state::Phase;

/// Everything the phases share during one `up`.
pub struct Context {
    pub printer: Printer,
    pub runner: Runner,
    pub settings: Settings,
    pub app: App,
    pub pattern: Pattern,
    pub dir: StateDir,
    pub state: DeploymentState,
    /// Values for the pattern's variables (built-ins added by the infrastructure phase).
    pub variables: BTreeMap<String, serde_json::Value>,
    pub mnemonic: Option<String>,
    pub hooks: Vec<ResolvedHook>,
    /// The app's `environment:` values for its hooks (some may be secrets).
    pub environment: Vec<(String, String)>,
    /// This run's log folder.
    pub log_dir: PathBuf,
    /// The logs [`Context::log`] named during the running phase: the journal records those
    /// that exist when it ends, so the phase that writes a file is the one owner of its name.
    pub named_logs: std::sync::Mutex<Vec<PathBuf>>,
    /// `--node`: every placement on this node.
    pub node_flag: Option<u64>,
    /// Flags, then the manifest's `node_filter:`, then the config file's.
    pub node_filter: crate::grid::select::NodeFilter,
    /// The VMs' ssh connection masters, from wait-ssh on: [`Context::ssh_target`] shares them.
    pub masters: wait_ssh::Masters,
}

impl Context {
    /// `logs/<run>/<name>.log`, recorded in the running phase's journal entry when the phase
    /// ends (if it was written).
    pub fn log(&self, name: &str) -> PathBuf {
        let path = self.log_dir.join(format!("{name}.log"));
        let mut named = self
            .named_logs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !named.contains(&path) {
            named.push(path.clone());
        }
        path
    }

    /// How to reach a VM at `address` over ssh.
    pub fn ssh_target(&self, address: &str) -> SshTarget {
        SshTarget {
            host: address.to_string(),
            port: self.state.ssh.port,
            user: self.state.ssh.user.clone(),
            identity: self.state.ssh.identity.clone(),
            known_hosts: self.state.ssh.known_hosts.clone(),
            strict: self.state.ssh.pinned,
            control_dir: self.masters.dir().map(std::path::Path::to_path_buf),
        }
    }

    pub fn save(&self) -> Result<()> {
        self.dir.save(&self.state)
    }

    pub fn outputs(&self) -> Result<&crate::pattern::contract::PatternOutputs> {
        self.state.outputs.as_ref().context(
            "the infrastructure phase recorded no outputs; run \
            `tfgrid-compose up --from infrastructure`",
        )
    }
}

/// Runs the phases from `start` to the end, journaling and saving after each step.
pub async fn run_from(ctx: &mut Context, start: Phase) -> Result<()> {
    ctx.state.reset_from(start);
    ctx.state.status = Status::Deploying;
    // `--resume`, `--from`: what ran before (validation runs every time)
    for phase in Phase::ALL
        .into_iter()
        .filter(|p| *p != Phase::Validate && *p < start)
    {
        ctx.printer.event(&Event::PhaseSkipped {
            phase: phase.name(),
        });
    }
    for phase in Phase::ALL.into_iter().filter(|p| *p >= start) {
        if let Err(interrupted) = crate::interrupt::check() {
            ctx.state.status = Status::Interrupted;
            ctx.save()?;
            return Err(anyhow::Error::new(interrupted)
                .context(format!("stopped before the {} phase", phase.name())));
        }
        if phase == Phase::Validate {
            // Validation ran before the lock was taken; journal it.
            ctx.state.start_phase(phase);
            ctx.state
                .finish_phase(phase, std::time::Duration::ZERO, None, Vec::new());
            ctx.save()?;
            continue;
        }
        ctx.state.start_phase(phase);
        ctx.save()
            .with_context(|| format!("{} phase: cannot record that it starts", phase.name()))?;
        ctx.printer.event(&Event::PhaseStarted {
            phase: phase.name(),
        });
        let started = Instant::now();
        let result =
            crate::interrupt::stoppable(run_one(ctx, phase), std::time::Duration::from_millis(500))
                .await;
        let elapsed = started.elapsed();
        // A phase that failed after a signal arrived failed because of it (its child was stopped).
        let interrupted = result.is_err() && crate::interrupt::received().is_some();
        let error = result.as_ref().err().map(|e| format!("{e:#}"));
        let logs = std::mem::take(
            ctx.named_logs
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        ctx.state.finish_phase(phase, elapsed, error, logs);
        if interrupted {
            ctx.state.interrupt_phase(phase);
            ctx.state.status = Status::Interrupted;
        } else if result.is_err() {
            ctx.state.status = Status::Failed;
        }
        if let Err(save) = ctx.save() {
            let save = save.context(format!("{} phase: cannot record its end", phase.name()));
            // The phase's own error says more (it may be the same full disk); `ps` and `status`
            // do not take the `running` left on disk for a run, as no run holds the lock.
            if result.is_ok() {
                return Err(save);
            }
            ctx.printer.warn(format!("{save:#}"));
        }
        ctx.printer.event(&Event::PhaseFinished {
            phase: phase.name(),
            duration_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            ok: result.is_ok(),
        });
        if let Err(err) = result {
            let what = if interrupted { "interrupted" } else { "failed" };
            return Err(err.context(format!(
                "{} phase {what} after {}",
                phase.name(),
                format_duration(elapsed)
            )));
        }
    }
    Ok(())
}

async fn run_one(ctx: &mut Context, phase: Phase) -> Result<()> {
    if matches!(phase, Phase::Platform | Phase::Application | Phase::Verify)
        && ctx.masters.dir().is_none()
    {
        wait_ssh::share_logins(ctx).await;
    }
    match phase {
        Phase::Validate => Ok(()),
        Phase::Infrastructure => infrastructure::run(ctx).await,
        Phase::Network => network::run(ctx).await,
        Phase::WaitSsh => wait_ssh::run(ctx).await,
        Phase::Platform => platform::run(ctx).await,
        Phase::Application => application::run(ctx).await,
        Phase::Verify => verify::run(ctx).await,
        Phase::Finalize => verify::finalize(ctx),
    }
}
