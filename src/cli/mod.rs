//! The command line: clap definitions and dispatch to `ops`. Thin on purpose: parsing, printer
//! and settings set-up, and the mapping of errors to exit codes.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::error::{exit_code_for, hints_for_error};
use crate::ops::{self, down::DownOptions, up::UpOptions};
use crate::output::{ColorChoice, Printer, resolve_color};
use crate::phase::Phase;
use crate::process::Runner;
use crate::settings::{Env, Settings, parse_duration};

/// Deploy applications to the ThreeFold Grid, or to local VMs, with one command.
#[derive(Debug, Parser)]
#[command(name = "tfgrid-compose", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Only print errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Log what runs (-v debug, -vv trace); `RUST_LOG` overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Machine-readable output: JSON documents, or one event per line for `up`/`down`.
    #[arg(long, global = true)]
    pub json: bool,
    /// When to use colour.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Deploy an app: validate, infrastructure, network, wait-ssh, platform, application, verify.
    Up(UpArgs),
    /// Destroy a deployment and, only once that succeeded, forget it.
    Down(DownArgs),
    /// Run the validate phase only: manifest, pattern, tools, credentials. Creates nothing.
    Validate(AppArg),
    /// Show a deployment: status, addresses, phase journal.
    Status(AppArg),
    /// Print the deployment's addresses, primary first.
    Address(AppArg),
    /// Open a shell on the primary VM, or run `-- CMD…` there (its exit code is passed through).
    Ssh(SshArgs),
    /// Run a command on the primary VM (each argument arrives as one argument).
    Exec(ExecArgs),
    /// Print the latest run's log of a phase, or list the logs.
    Logs(LogsArgs),
}

#[derive(Debug, Args)]
pub struct AppArg {
    /// App folder or manifest path (default: `app:` of `.tfgrid-compose.yaml`, or this folder).
    pub app: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// App folder or manifest path (default: `app:` of `.tfgrid-compose.yaml`, or this folder).
    pub app: Option<PathBuf>,
    /// Pattern to deploy on, instead of the manifest's `pattern:`.
    #[arg(long)]
    pub pattern: Option<String>,
    /// Continue a deployment from the first phase that did not finish.
    #[arg(long, conflicts_with = "from")]
    pub resume: bool,
    /// Run again from this phase (of a deployment that reached it).
    #[arg(long, value_enum)]
    pub from: Option<Phase>,
    /// Print the commands `up` would run, run nothing, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// How long to wait for SSH on every VM (default 5m).
    #[arg(long, value_parser = parse_duration)]
    pub ssh_timeout: Option<Duration>,
    /// Wait this long for another run's lock instead of failing at once.
    #[arg(long, value_parser = parse_duration)]
    pub lock_wait: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// App folder or manifest path.
    pub app: Option<PathBuf>,
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(short, long)]
    pub yes: bool,
    /// Wait this long for another run's lock instead of failing at once.
    #[arg(long, value_parser = parse_duration)]
    pub lock_wait: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct SshArgs {
    /// App folder or manifest path.
    #[arg(long, short)]
    pub app: Option<PathBuf>,
    /// Command to run instead of a shell.
    #[arg(last = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// App folder or manifest path.
    #[arg(long, short)]
    pub app: Option<PathBuf>,
    /// The command and its arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// A phase name (`infrastructure`, `platform`, …) or a log name (`hook-setup`).
    pub phase: Option<String>,
    /// App folder or manifest path.
    #[arg(long, short)]
    pub app: Option<PathBuf>,
}

fn init_tracing(verbose: u8, env: &Env) {
    let default = match verbose {
        0 => return,
        1 => "tfgrid_compose=debug",
        _ => "tfgrid_compose=trace",
    };
    let filter = env.get("RUST_LOG").unwrap_or(default);
    let _ = tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::new(filter)).with_writer(std::io::stderr).without_time().try_init();
}

/// Parses the command line, runs the command, and returns the documented exit code.
pub async fn main() -> ExitCode {
    let cli = Cli::parse();
    let env = Env::from_process();
    init_tracing(cli.verbose, &env);
    let color = resolve_color(
        cli.color,
        env.get("NO_COLOR").is_some(),
        env.get("FORCE_COLOR").is_some() || env.get("CLICOLOR_FORCE").is_some_and(|v| v != "0"),
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
    );
    let printer = Printer::new(color, cli.quiet, cli.json, cli.verbose > 0);
    let result = tokio::select! {
        result = run(cli, env, &printer) => result,
        _ = tokio::signal::ctrl_c() => Err(crate::error::Interrupted.into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let code = exit_code_for(&err);
            if !err.chain().any(|c| c.downcast_ref::<crate::error::ExternalExit>().is_some()) {
                printer.error(&err, &hints_for_error(&err));
            }
            ExitCode::from(code)
        }
    }
}

async fn run(cli: Cli, env: Env, printer: &Printer) -> anyhow::Result<()> {
    let (ssh_timeout, lock_wait) = match &cli.command {
        Command::Up(a) => (a.ssh_timeout, a.lock_wait),
        Command::Down(a) => (None, a.lock_wait),
        _ => (None, None),
    };
    let settings = Settings::resolve(env, ssh_timeout, lock_wait)?;
    match cli.command {
        Command::Up(args) => {
            let runner = if args.dry_run { dry_runner(printer) } else { Runner::real() };
            let options = UpOptions { app: args.app, pattern: args.pattern, resume: args.resume, from: args.from, dry_run: args.dry_run };
            ops::up::up(printer, &settings, runner, &options).await
        }
        Command::Down(args) => ops::down::down(printer, &settings, Runner::real(), &DownOptions { app: args.app, yes: args.yes }).await,
        Command::Validate(args) => {
            ops::up::validate(printer, &settings, args.app.as_deref(), None)?;
            printer.status("Valid", "manifest, pattern, tools and credentials");
            Ok(())
        }
        Command::Status(args) => ops::inspect::status(printer, args.app.as_deref(), cli.json),
        Command::Address(args) => ops::inspect::address(printer, args.app.as_deref(), cli.json),
        Command::Ssh(args) => ops::inspect::ssh(&Runner::real(), args.app.as_deref(), &args.command, true).await,
        Command::Exec(args) => ops::inspect::ssh(&Runner::real(), args.app.as_deref(), &args.command, false).await,
        Command::Logs(args) => ops::inspect::logs(printer, args.app.as_deref(), args.phase.as_deref()),
    }
}

/// `--dry-run`: a runner that prints each command instead of running it.
fn dry_runner(printer: &Printer) -> Runner {
    let printer = printer.clone();
    Runner::dry_run().observe(move |cmd| {
        if printer.json() {
            printer.event(&crate::output::Event::Command { program: &cmd.program, args: &cmd.args });
        } else {
            printer.data(format!("$ {cmd}"));
        }
    })
}
