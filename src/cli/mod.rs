//! The command line: clap definitions and dispatch to `ops`. Thin on purpose: parsing, printer
//! and settings set-up, and the mapping of errors to exit codes.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

use crate::error::{exit_code_for, hints_for_error};
use crate::ops;
use crate::output::{ColorChoice, Printer, resolve_color};
use crate::process::Runner;
use crate::settings::{Env, Overrides, Settings, vars};

mod ai;
mod catalog;
mod config;
mod dashboard;
mod deploy;
mod deployments;
mod grid;
mod pr;

pub use ai::{
    AgentArgs, CreateArgs, DeleteArgs, MonitorArgs, ProjectsArgs, ProjectsCommand, ServeArgs,
};
pub use catalog::{PatternsArgs, PatternsCommand, SearchArgs, UpdateArgs};
pub use config::{CompletionsArgs, ConfigCommand};
pub use dashboard::DashboardArgs;
pub use deploy::{DownArgs, ImportArgs, UpArgs, ValidateArgs};
pub use deployments::{
    CostArgs, ExecArgs, HealthArgs, InspectArgs, LogsArgs, PsArgs, SelectArgs, SshArgs, ViewArgs,
};
pub use grid::{ContractsArgs, FarmsArgs, NodesArgs, SigninArgs, SimCommand};
pub use pr::PrArgs;

/// Deploy applications to the ThreeFold Grid, or to local VMs, with one command.
///
/// A verb that is not built in runs the selected deployment's command of that name (its app's,
/// else its pattern's) on its VM (`tfgrid-compose commands` lists them).
#[derive(Debug, Parser)]
#[command(
    name = "tfgrid-compose",
    version,
    about,
    propagate_version = true,
    allow_external_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// The environment to act on (`default`, `staging`, `pr-123`); also TFGRID_COMPOSE_ENV.
    #[arg(long = "env", global = true, value_name = "NAME", value_parser = parse_env_name)]
    pub env_name: Option<String>,
    /// Only print errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Log what runs (-v debug, -vv trace); `RUST_LOG` overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Machine-readable output: JSON documents, or one event per line for `up`/`down`.
    #[arg(long, global = true)]
    pub json: bool,
    /// The grid network (main, test, qa, dev, or sim: the grid simulator on this machine); also
    /// TFGRID_COMPOSE_NETWORK and `network:` in the config.
    #[arg(long, global = true, value_name = "NETWORK", value_parser = parse_network)]
    pub network: Option<String>,
    /// When to use colour.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

fn parse_network(text: &str) -> Result<String, String> {
    crate::grid::proxy::check_network(text).map(|()| text.to_string())
}

fn parse_env_name(text: &str) -> Result<String, String> {
    crate::settings::check_env_name(text).map(|()| text.to_string())
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Deploy an app: validate, infrastructure, network, wait-ssh, platform, application, verify.
    Up(UpArgs),
    /// Destroy a deployment and, only once that succeeded, forget it.
    Down(DownArgs),
    /// Run the validate phase only: manifest, pattern, tools, credentials. Creates nothing.
    Validate(ValidateArgs),
    /// Deploy, redeploy or destroy a pull request's environment (`pr-N`) as its CI event asks:
    /// GITHUB_EVENT_NAME and the payload at GITHUB_EVENT_PATH, or `--event` and `--payload`.
    Pr(PrArgs),
    /// Take a deployment the bash tool made (its state folder) under management.
    Import(ImportArgs),
    /// Show a deployment: status, addresses, phase journal (or run the app's or pattern's own
    /// `status` command, when it has one).
    Status(ViewArgs),
    /// Print the deployment's addresses, primary first (or run the app's or pattern's own
    /// `address` command, when it has one).
    Address(ViewArgs),
    /// Open a shell on the primary VM, or run `-- CMD…` there (its exit code is passed through).
    Ssh(SshArgs),
    /// Run a command on the primary VM (each argument arrives as one argument).
    Exec(ExecArgs),
    /// Print every log a phase (or one log: `hook-setup`) wrote in its latest run, as the journal
    /// records them, or list them (or run the app's or pattern's own `logs` command with the
    /// arguments, when it has one); with `--service` or `--unit`, a unit's journal on its VM.
    Logs(LogsArgs),
    /// List every deployment made on this machine.
    Ps(PsArgs),
    /// What a deployment costs a month and a year (what it runs, or before `up`, what it will
    /// run), or, with no target, every deployment's cost and the total per environment.
    Cost(CostArgs),
    /// Select the deployment that commands without a target act on (in `.tfgrid-compose.yaml`).
    Select(SelectArgs),
    /// Forget the selection made by `select`.
    Unselect,
    /// Everything recorded about a deployment (or all of them), secrets redacted.
    Inspect(InspectArgs),
    /// Check a running deployment, one line per check with its figure: VMs reachable, units
    /// active, disks; an AI stack's metrics targets, backup age, API p95 and agent; the app's
    /// healthcheck hook and url (exit 4: unhealthy; -q: only the failing checks).
    Health(HealthArgs),
    /// List the selected app's own commands.
    Commands,
    /// Search the app registry: apps whose name, description or tags contain every word.
    Search(SearchArgs),
    /// Fetch the app registry now; with NAME, also that app's repository and pinned commit.
    Update(UpdateArgs),
    /// List the patterns, show one, or check a pattern folder statically.
    Patterns(PatternsArgs),
    /// List grid nodes that can take a deployment, best first, or show one node.
    Nodes(NodesArgs),
    /// List the grid's farms with their free public IPv4 addresses.
    Farms(FarmsArgs),
    /// List the signed-in twin's contracts; marks those no deployment on this machine knows.
    Contracts(ContractsArgs),
    /// The grid simulator (`--network sim`): its Terraform config, status and reset.
    #[command(subcommand)]
    Sim(SimCommand),
    /// Store the ThreeFold mnemonic (asked without echo, or read from stdin), or check it.
    Signin(SigninArgs),
    /// Remove the mnemonic stored by `signin`.
    Signout,
    /// AI stack: turn a sentence into a project in a git repository, live behind the gateway.
    Create(CreateArgs),
    /// AI stack: list the projects, or back them up into one archive and restore them.
    Projects(ProjectsArgs),
    /// AI stack: a project's status, steps and recent events.
    Monitor(MonitorArgs),
    /// AI stack: remove a project's route, published files, repository and record.
    Delete(DeleteArgs),
    /// Run an AI-stack service in the foreground: `gateway`, `agent` or `git`.
    Serve(ServeArgs),
    /// A web dashboard of this machine's deployments, on 127.0.0.1 behind a printed token.
    Dashboard(DashboardArgs),
    /// Show the resolved configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
    /// Print the man page (roff).
    Man,
    /// An app- or pattern-defined command, run on the deployment's VM.
    #[command(external_subcommand)]
    External(Vec<String>),
}

/// What a command acts on.
const TARGET_HELP: &str = "App folder or manifest path, or a recorded deployment: ID prefix, APP \
    or APP:ENV (default: the selection in `.tfgrid-compose.yaml`, this folder's app, or the only \
    deployment)";

fn init_tracing(verbose: u8, env: &Env) {
    let default = match verbose {
        0 => return,
        1 => "tfgrid_compose=debug",
        _ => "tfgrid_compose=trace",
    };
    let filter = env.get("RUST_LOG").unwrap_or(default);
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .without_time()
        .try_init();
}

/// Parses the command line, runs the command, and returns the documented exit code.
pub async fn main() -> ExitCode {
    let cli = Cli::parse();
    let env = Env::from_process();
    crate::grid::mnemonic::register_env_secrets(&env);
    init_tracing(cli.verbose, &env);
    let color = resolve_color(
        cli.color,
        env.get(vars::NO_COLOR).is_some(),
        env.get(vars::FORCE_COLOR).is_some()
            || env.get(vars::CLICOLOR_FORCE).is_some_and(|v| v != "0"),
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
    );
    let printer = Printer::new(color, cli.quiet, cli.json, cli.verbose > 0);
    // The services and the simulator's provider stop on signals their own way (a provider
    // ignores SIGINT as go-plugin's do: Terraform stops it); every other command stops its
    // children first, records where it was, then exits 130 (SIGINT) or 143 (SIGTERM).
    let own_signals = matches!(
        cli.command,
        Command::Serve(_) | Command::Sim(SimCommand::Provider { .. })
    );
    let result = if own_signals {
        run(cli, env, &printer).await
    } else {
        if let Err(e) = crate::interrupt::install(printer.clone()) {
            printer.warn(format!("cannot handle SIGINT/SIGTERM: {e}"));
        }
        let result =
            crate::interrupt::stoppable(run(cli, env, &printer), std::time::Duration::from_secs(3))
                .await;
        if let Some(signal) = crate::interrupt::received() {
            crate::interrupt::drain(crate::interrupt::grace() + crate::interrupt::TERM_GRACE).await;
            // An error that is not the interruption itself (a child that failed on the signal)
            // still ends the command as interrupted.
            match result {
                Err(err) if err.chain().any(|c| c.is::<crate::error::Interrupted>()) => Err(err),
                Err(err) => Err(err.context(crate::error::Interrupted(signal))),
                Ok(()) => Ok(()),
            }
        } else {
            // What the command still has running, its wait dropped (an ssh connection master,
            // sent SIGTERM then), ends before it does, its pid file removed.
            crate::interrupt::drain(crate::interrupt::TERM_GRACE).await;
            result
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let code = exit_code_for(&err);
            if !err
                .chain()
                .any(|c| c.downcast_ref::<crate::error::ExternalExit>().is_some())
            {
                printer.error(&err, &hints_for_error(&err));
            }
            ExitCode::from(code)
        }
    }
}

/// The flags that override settings, wherever the command line has them.
fn overrides(cli: &Cli) -> Overrides {
    let (ssh_timeout, lock_wait) = match &cli.command {
        Command::Up(a) => (a.ssh_timeout, a.lock_wait),
        Command::Down(a) => (None, a.lock_wait),
        Command::Pr(a) => (None, a.lock_wait),
        _ => (None, None),
    };
    Overrides {
        ssh_timeout,
        lock_wait,
        env_name: cli.env_name.clone(),
        network: cli.network.clone(),
    }
}

/// What each command's `run` is given: the printer, the settings resolved once, and `--json`.
struct Ctx<'a> {
    printer: &'a Printer,
    settings: &'a Settings,
    json: bool,
}

/// Resolves the settings and hands the command to its family's module (or straight to `ops`).
async fn run(cli: Cli, env: Env, printer: &Printer) -> anyhow::Result<()> {
    let settings = &Settings::resolve(env, &overrides(&cli))?;
    crate::interrupt::set_grace(settings.stop_grace);
    let json = cli.json;
    let cx = &Ctx {
        printer,
        settings,
        json,
    };
    match cli.command {
        Command::Up(args) => args.run(cx).await,
        Command::Down(args) => args.run(cx).await,
        Command::Import(args) => args.run(cx),
        Command::Pr(args) => args.run(cx).await,
        Command::Validate(args) => {
            ops::up::check(printer, settings, args.app.as_deref(), args.strict).await
        }
        Command::Status(args) => args.run(cx, "status").await,
        Command::Address(args) => args.run(cx, "address").await,
        Command::Ssh(args) => args.run(cx).await,
        Command::Exec(args) => args.run(cx).await,
        Command::Logs(args) => args.run(cx).await,
        Command::Ps(args) => ops::deployments::ps(printer, settings, args.prune, json).await,
        Command::Cost(args) => {
            ops::cost::cost(printer, settings, args.target.as_deref(), json).await
        }
        Command::Select(args) => ops::deployments::select(printer, settings, &args.target),
        Command::Unselect => ops::deployments::unselect(printer),
        Command::Inspect(args) => {
            ops::deployments::inspect(printer, settings, args.app.as_deref(), args.all, json).await
        }
        Command::Health(args) => args.run(cx).await,
        Command::Commands => ops::commands::list(printer, settings, json),
        Command::Search(args) => {
            ops::catalog::search(printer, settings, &args.words, &args.tags, json).await
        }
        Command::Update(args) => {
            ops::catalog::update(printer, settings, args.name.as_deref(), json).await
        }
        Command::Patterns(args) => args.run(cx).await,
        Command::Nodes(args) => args.run(cx).await,
        Command::Farms(args) => {
            ops::grid::farms(printer, settings, args.name.as_deref(), json).await
        }
        Command::Contracts(args) => ops::sim::contracts(printer, settings, args.twin, json).await,
        Command::Sim(command) => command.run(cx).await,
        Command::Signin(args) if args.check => ops::grid::signin_check(printer, settings, json),
        Command::Signin(_) => ops::grid::signin(printer, settings),
        Command::Signout => ops::grid::signout(printer, settings),
        Command::Create(args) => args.run(cx).await,
        Command::Projects(args) => args.run(cx).await,
        Command::Monitor(args) => args.run(cx).await,
        Command::Delete(args) => args.run(cx).await,
        Command::Serve(args) => ops::ai::serve(args.service, &args.config).await,
        Command::Dashboard(args) => args.run(cx).await,
        Command::Config(ConfigCommand::Show) => ops::config::show(printer, settings, json),
        Command::Completions(args) => {
            args.run(printer);
            Ok(())
        }
        Command::Man => config::man(printer),
        Command::External(argv) => {
            ops::commands::run(printer, settings, &Runner::real(), &argv).await
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    #[test]
    fn builtin_verbs_match_the_clap_definition() {
        let mut names: Vec<String> = super::Cli::command()
            .get_subcommands()
            .map(|c| c.get_name().to_string())
            .collect();
        names.push("help".into());
        names.sort();
        let mut listed: Vec<String> = crate::manifest::BUILTIN_VERBS
            .iter()
            .map(|s| (*s).to_string())
            .collect();
        listed.sort();
        assert_eq!(names, listed);
    }

    #[test]
    fn clap_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
