//! The commands that look at or into a deployment: `status`, `address`, `ssh`, `exec`, `logs`,
//! `ps`, `select`, `inspect`.

use clap::Args;

use anyhow::Result;

use super::TARGET_HELP;
use crate::ops;
use crate::output::Printer;
use crate::process::Runner;
use crate::settings::Settings;

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
pub struct LogsArgs {
    /// A phase name (`infrastructure`, `platform`, …) or a log name (`hook-setup`); with an app's
    /// or pattern's own `logs` command, its arguments (after `--` when they start with `-`).
    #[arg(value_name = "PHASE")]
    pub words: Vec<String>,
    #[arg(long, short, help = TARGET_HELP, value_name = "TARGET")]
    pub app: Option<String>,
    /// The phase logs even when the app or its pattern defines a `logs` command.
    #[arg(long)]
    pub builtin: bool,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Forget entries whose deployment folder no longer exists.
    #[arg(long)]
    pub prune: bool,
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
    pub(super) async fn run(
        self,
        printer: &Printer,
        settings: &Settings,
        verb: &str,
        json: bool,
    ) -> Result<()> {
        let target = self.app.as_deref();
        ops::commands::view(printer, settings, verb, target, self.builtin, json).await
    }
}

impl SshArgs {
    pub(super) async fn run(self, settings: &Settings) -> Result<()> {
        let (target, vm) = (self.app.as_deref(), self.vm.as_deref());
        ops::inspect::ssh(&Runner::real(), settings, target, vm, &self.command, true).await
    }
}

impl ExecArgs {
    pub(super) async fn run(self, settings: &Settings) -> Result<()> {
        let (target, vm) = (self.app.as_deref(), self.vm.as_deref());
        ops::inspect::ssh(&Runner::real(), settings, target, vm, &self.command, false).await
    }
}

impl LogsArgs {
    pub(super) async fn run(
        self,
        printer: &Printer,
        settings: &Settings,
        json: bool,
    ) -> Result<()> {
        let (target, builtin) = (self.app.as_deref(), self.builtin || json);
        ops::commands::logs(printer, settings, target, builtin, &self.words).await
    }
}
