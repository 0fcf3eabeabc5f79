//! `up`, `down`, `validate` and `import`: the commands that create, check, destroy or adopt a
//! deployment.

use std::time::Duration;

use clap::Args;

use anyhow::Result;

use super::{Ctx, TARGET_HELP};
use crate::ops::{self, down::DownOptions, import::ImportOptions, up::UpOptions};
use crate::output::Printer;
use crate::phase::Phase;
use crate::process::Runner;
use crate::settings::parse_duration;

/// What `up` deploys: a target, or a registry app's name.
pub(super) const UP_TARGET_HELP: &str = "App folder or manifest path, a recorded deployment (ID prefix, APP \
    or APP:ENV), or the name of an app in the app registry (`tfgrid-compose search`), deployed at \
    the commit the registry pins (default: the selection in `.tfgrid-compose.yaml`, this folder's \
    app, or the only deployment)";

#[derive(Debug, Args)]
pub struct UpArgs {
    #[arg(help = UP_TARGET_HELP, value_name = "TARGET")]
    pub app: Option<String>,
    /// Pattern to deploy on, instead of the manifest's `pattern:`.
    #[arg(long)]
    pub pattern: Option<String>,
    /// Continue a deployment from the first phase that did not finish.
    #[arg(long, conflicts_with = "from")]
    pub resume: bool,
    /// Run again from this phase (of a deployment that reached it).
    #[arg(long, value_enum)]
    pub from: Option<Phase>,
    /// Take a running AI stack to the app folder's version: a backup first, then what changed,
    /// `health`'s checks, and the old version back when they fail (docs/ai-stack.md).
    #[arg(long, conflicts_with_all = ["resume", "from", "dry_run"])]
    pub upgrade: bool,
    /// Print the commands `up` would run, run nothing, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// How long to wait for SSH on every VM (default 5m).
    #[arg(long, value_parser = parse_duration)]
    pub ssh_timeout: Option<Duration>,
    /// Wait this long for another run's lock instead of failing at once.
    #[arg(long, value_parser = parse_duration)]
    pub lock_wait: Option<Duration>,
    /// Put every VM on this grid node; skips node selection.
    #[arg(long, value_name = "ID")]
    pub node: Option<u64>,
    #[command(flatten)]
    pub filter: crate::grid::select::NodeFilter,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    #[arg(help = TARGET_HELP, value_name = "TARGET")]
    pub app: Option<String>,
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(short, long)]
    pub yes: bool,
    /// Wait this long for another run's lock instead of failing at once.
    #[arg(long, value_parser = parse_duration)]
    pub lock_wait: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[arg(help = TARGET_HELP, value_name = "TARGET")]
    pub app: Option<String>,
    /// Fail (exit 2) on any warning, such as an unknown manifest key: for CI.
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The bash tool's state folder of one deployment (`~/.config/tfgrid-compose/state/<id>`,
    /// with `state.yaml` and `terraform/terraform.tfstate`).
    #[arg(value_name = "PATH")]
    pub path: std::path::PathBuf,
    /// The app's folder, when the recorded `app_dir` is gone or moved.
    #[arg(long, value_name = "DIR")]
    pub app: Option<std::path::PathBuf>,
}

/// `--dry-run`: a runner that prints each command instead of running it.
fn dry_runner(printer: &Printer) -> Runner {
    let printer = printer.clone();
    Runner::dry_run().observe(move |cmd| {
        if printer.json() {
            printer.event(&crate::output::Event::Command {
                program: &cmd.program,
                args: &cmd.args,
            });
        } else {
            printer.data(format!("$ {cmd}"));
        }
    })
}

impl UpArgs {
    pub(super) async fn run(self, cx: &Ctx<'_>) -> Result<()> {
        let runner = if self.dry_run {
            dry_runner(cx.printer)
        } else {
            Runner::real()
        };
        let options = UpOptions {
            app: self.app,
            pattern: self.pattern,
            resume: self.resume,
            from: self.from,
            dry_run: self.dry_run,
            node: self.node,
            filter: self.filter,
            converge: false,
        };
        if self.upgrade {
            return ops::upgrade::upgrade(cx.printer, cx.settings, &options).await;
        }
        ops::up::up(cx.printer, cx.settings, runner, &options).await
    }
}

impl DownArgs {
    pub(super) async fn run(self, cx: &Ctx<'_>) -> Result<()> {
        let options = DownOptions {
            app: self.app,
            yes: self.yes,
            lock_held: false,
        };
        ops::down::down(cx.printer, cx.settings, Runner::real(), &options).await
    }
}

impl ImportArgs {
    pub(super) fn run(self, cx: &Ctx<'_>) -> Result<()> {
        let options = ImportOptions {
            path: self.path,
            app: self.app,
        };
        ops::import::import(cx.printer, cx.settings, &options)
    }
}
