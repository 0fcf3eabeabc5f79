//! The commands that look at or into a deployment: `status`, `address`, `ssh`, `exec`, `logs`,
//! `ps`, `cost`, `select`, `inspect`, `health`.

use clap::Args;

use anyhow::Result;

use super::{Ctx, TARGET_HELP};
use crate::ops;
use crate::ops::journal::{self, Show, Source};
use crate::process::Runner;

/// `status` and `address`: a deployment view an app or pattern may replace with its own command.
#[derive(Debug, Args)]
pub struct ViewArgs {
    #[arg(help = TARGET_HELP, value_name = "TARGET")]
    pub app: Option<String>,
    /// Show tfgrid-compose's own view even when the app or its pattern defines this command
    /// (`--json` always does).
    #[arg(long)]
    pub builtin: bool,
}

#[derive(Debug, Args)]
pub struct SshArgs {
    #[arg(long, short, help = TARGET_HELP, value_name = "TARGET")]
    pub app: Option<String>,
    /// The VM to reach: its index (0 = primary), name (`vm1`) or address, as `address` lists
    /// them (default: the primary)
    #[arg(long, value_name = "VM")]
    pub vm: Option<String>,
    /// Command to run instead of a shell.
    #[arg(last = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    #[arg(long, short, help = TARGET_HELP, value_name = "TARGET")]
    pub app: Option<String>,
    /// The VM to run on: its index (0 = primary), name (`vm1`) or address, as `address` lists
    /// them (default: the primary)
    #[arg(long, value_name = "VM")]
    pub vm: Option<String>,
    /// The command and its arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("journal").args(["service", "unit"])))]
pub struct LogsArgs {
    /// A phase name (`infrastructure`, `platform`, …) or a log name (`hook-setup`); with an app's
    /// or pattern's own `logs` command, its arguments (after `--` when they start with `-`).
    #[arg(value_name = "PHASE", conflicts_with = "journal")]
    pub words: Vec<String>,
    #[arg(long, short, help = TARGET_HELP, value_name = "TARGET")]
    pub app: Option<String>,
    /// The phase logs even when the app or its pattern defines a `logs` command.
    #[arg(long, conflicts_with = "journal")]
    pub builtin: bool,
    /// The journal of a service of the app's AI stack (`agent`, …), on the VM that runs it.
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,
    /// The journal of a systemd unit of the app's own, on the VM `--vm` names.
    #[arg(long, value_name = "UNIT")]
    pub unit: Option<String>,
    /// With `--unit`: the VM, as `ssh --vm` takes it (default: the primary).
    #[arg(long, value_name = "VM", requires = "unit")]
    pub vm: Option<String>,
    /// With `--service`/`--unit`: the last N entries.
    #[arg(long = "lines", short = 'n', value_name = "N", requires = "journal")]
    pub lines: Option<u32>,
    /// With `--service`/`--unit`: keep printing new entries until Ctrl-C.
    #[arg(long, short, requires = "journal")]
    pub follow: bool,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Forget entries whose deployment folder no longer exists.
    #[arg(long)]
    pub prune: bool,
}

#[derive(Debug, Args)]
pub struct CostArgs {
    /// App folder or manifest path, or a recorded deployment: ID prefix, APP or APP:ENV (default:
    /// every deployment on this machine, with the total per environment)
    #[arg(value_name = "TARGET")]
    pub target: Option<String>,
}

#[derive(Debug, Args)]
pub struct SelectArgs {
    /// ID prefix, APP, APP:ENV, or an app folder.
    pub target: String,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    #[arg(help = TARGET_HELP, value_name = "TARGET", conflicts_with = "all")]
    pub app: Option<String>,
    /// Every deployment in the registry.
    #[arg(long, short)]
    pub all: bool,
}

impl ViewArgs {
    /// `status` or `address` (`verb`).
    pub(super) async fn run(self, cx: &Ctx<'_>, verb: &str) -> Result<()> {
        let target = self.app.as_deref();
        ops::commands::view(cx.printer, cx.settings, verb, target, self.builtin, cx.json).await
    }
}

impl SshArgs {
    pub(super) async fn run(self, cx: &Ctx<'_>) -> Result<()> {
        on_vm(cx, self.app, self.vm, &self.command, true).await
    }
}

impl ExecArgs {
    pub(super) async fn run(self, cx: &Ctx<'_>) -> Result<()> {
        on_vm(cx, self.app, self.vm, &self.command, false).await
    }
}

/// `ssh` (`tty`: a shell, or `-- CMD…`) and `exec` on the VM `vm` names of the deployment.
async fn on_vm(
    cx: &Ctx<'_>,
    target: Option<String>,
    vm: Option<String>,
    command: &[String],
    tty: bool,
) -> Result<()> {
    let (target, vm) = (target.as_deref(), vm.as_deref());
    ops::inspect::ssh(&Runner::real(), cx.settings, target, vm, command, tty).await
}

impl LogsArgs {
    pub(super) async fn run(self, cx: &Ctx<'_>) -> Result<()> {
        let (target, builtin) = (self.app.as_deref(), self.builtin || cx.json);
        let source = match (self.service, self.unit) {
            (Some(name), _) => Some(Source::Service(name)),
            (_, Some(unit)) => Some(Source::Unit { unit, vm: self.vm }),
            _ => None,
        };
        if let Some(source) = source {
            let (lines, follow, json) = (self.lines, self.follow, cx.json);
            let show = Show {
                lines,
                follow,
                json,
            };
            let (printer, settings) = (cx.printer, cx.settings);
            return journal::logs(printer, settings, &Runner::real(), target, &source, show).await;
        }
        ops::commands::logs(cx.printer, cx.settings, target, builtin, &self.words).await
    }
}

#[derive(Debug, Args)]
pub struct HealthArgs {
    #[arg(help = TARGET_HELP, value_name = "TARGET")]
    pub app: Option<String>,
    /// AI stack: also create a probe project, fetch its page and delete it (within 5 minutes).
    #[arg(long)]
    pub create_test: bool,
}

impl HealthArgs {
    pub(super) async fn run(self, cx: &Ctx<'_>) -> Result<()> {
        let (printer, settings, target) = (cx.printer, cx.settings, self.app.as_deref());
        let runner = Runner::real();
        ops::health::health(
            printer,
            settings,
            &runner,
            target,
            cx.json,
            self.create_test,
        )
        .await
    }
}
