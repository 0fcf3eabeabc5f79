//! The commands that look at or into a deployment: `status`, `address`, `ssh`, `exec`, `logs`,
//! `ps`, `select`, `inspect`.

use clap::Args;

use super::TARGET_HELP;
use crate::ops;
use crate::output::Printer;
use crate::process::Runner;
use crate::settings::Settings;

#[derive(Debug, Args)]
pub struct TargetArg {
    #[arg(help = TARGET_HELP, value_name = "TARGET")]
    pub app: Option<String>,
}

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

/// `status` and `address`: the app's or pattern's own command of that name when it has one
/// (unless `--builtin` or `--json`), else the built-in view.
pub(super) async fn view(
    printer: &Printer,
    settings: &Settings,
    verb: &str,
    args: &ViewArgs,
    json: bool,
) -> anyhow::Result<()> {
    let target = args.app.as_deref();
    let builtin = args.builtin || json;
    let runner = Runner::real();
    if ops::commands::run_instead(printer, settings, &runner, verb, target, builtin, &[]).await? {
        return Ok(());
    }
    if verb == "status" {
        ops::inspect::status(printer, settings, target, json)
    } else {
        ops::inspect::address(printer, settings, target, json)
    }
}
