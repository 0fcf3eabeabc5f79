//! `up` (and `validate`): everything is checked before anything is written, then the state folder
//! is created, the lock taken, and the phases run from the first unfinished one.

use anyhow::Result;

use crate::clock::now_unix;
use crate::error::Failed;
use crate::error::UserError;
use crate::manifest::{App, ResolvedHook};
use crate::ops::{Target, registry, resolve_tofu, take_lock};
use crate::output::{Printer, plural};
use crate::pattern::Pattern;
use crate::pattern::compat;
use crate::phase::{self, Context, Phase};
use crate::process::Runner;
use crate::settings::Settings;
use crate::state::{
    AppRecord, DeploymentState, PatternRecord, RunRecord, SCHEMA_VERSION, SshRecord, StateLock,
    Status,
};
use crate::tools::require_tool;

/// Flags of `up`.
#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    /// App folder, manifest path, or a recorded deployment (`ID`, `APP[:ENV]`).
    pub app: Option<String>,
    pub pattern: Option<String>,
    pub resume: bool,
    pub from: Option<Phase>,
    pub dry_run: bool,
    /// `--node`: every VM on this grid node.
    pub node: Option<u64>,
    /// Node filter flags.
    pub filter: crate::grid::select::NodeFilter,
    /// Bring the environment up whatever it holds, decided under the lock (`pr`): none → a new
    /// deployment; one that exists → its first unfinished phase, or `from` when that is earlier;
    /// one that is up with no `from` → nothing.
    pub converge: bool,
}

/// What the validate phase found; nothing is written while building it.
pub struct Validated {
    pub app: App,
    pub pattern: Pattern,
    pub variables: std::collections::BTreeMap<String, serde_json::Value>,
    pub hooks: Vec<ResolvedHook>,
    pub tofu: String,
    pub mnemonic: Option<String>,
    /// The app's `environment:` values and the bash tool's names for them, for the hooks.
    pub environment: Vec<(String, String)>,
    /// Every warning printed (the manifest's, then the variables'); `validate --strict` fails on
    /// any.
    pub warnings: Vec<String>,
}

/// `validate TARGET`: the validate phase alone, creating nothing; with `strict`, a warning
/// (an unknown manifest key, …) fails it too.
pub async fn check(
    printer: &Printer,
    settings: &Settings,
    target: Option<&str>,
    strict: bool,
) -> Result<()> {
    let target = crate::ops::resolve_app_target(printer, settings, target).await?;
    let valid = validate(printer, settings, target.load_app(printer, None)?, None)?;
    if strict && !valid.warnings.is_empty() {
        return Err(UserError::new(
            format!(
                "{} warning{} and --strict",
                valid.warnings.len(),
                plural(valid.warnings.len())
            ),
            "fix what the warnings name, or drop --strict",
        )
        .into());
    }
    printer.status("Valid", "manifest, pattern, tools and credentials");
    crate::ops::cost::print_planned(printer, settings, &valid).await
}

/// The validate phase: manifest, pattern, variables, hooks, tools and credentials.
pub fn validate(
    printer: &Printer,
    settings: &Settings,
    app: App,
    pattern_flag: Option<&str>,
) -> Result<Validated> {
    let pattern_name = app.pattern_name(pattern_flag)?;
    let pattern = crate::pattern::find(settings, &app.dir, &pattern_name)?;
    let (mut variables, mut warnings) = app.variables(&pattern)?;
    let bash_values = compat::app_values(
        &pattern,
        app.manifest.network.as_ref(),
        app.manifest.nodes.as_ref(),
        &variables,
    )
    .map_err(|(field, problem)| {
        let field: Vec<&str> = field.iter().map(String::as_str).collect();
        app.error(
            &field,
            problem,
            format!(
                "pattern `{}` takes the bash tool's network variables (see docs/patterns.md)",
                pattern.manifest.name
            ),
        )
    })?;
    variables.extend(bash_values);
    grid_network(settings, &pattern, &mut variables)?;
    let unfilled = compat::unfilled(&pattern, &variables);
    if !unfilled.is_empty() {
        return Err(UserError::new(
            format!(
                "pattern `{}` needs a value for {}, which has no default and nothing here fills",
                pattern.manifest.name,
                unfilled.join(", ")
            ),
            format!(
                "set {} under `config:` in `{}`",
                unfilled.join(", "),
                app.file.display()
            ),
        )
        .into());
    }
    let explicit = !matches!(
        settings.sources.get("network"),
        None | Some(crate::settings::Source::Default)
    );
    if explicit && !pattern.manifest.variables.contains_key("tfgrid_network") {
        warnings.push(format!(
            "pattern `{}` is not a grid pattern: the network `{}` is not used (deploy on a grid \
                pattern with `--pattern single-vm`, for example)",
            pattern.manifest.name, settings.network
        ));
    }
    for warning in &warnings {
        printer.warn(warning);
    }
    let hooks = app.hooks()?;
    let replaced: Vec<&str> = hooks
        .iter()
        .filter(|h| crate::phase::application::replaced_by_playbook(h.kind))
        .map(|h| h.kind.name())
        .collect();
    let playbook = crate::phase::application::APP_PLAYBOOK;
    if !replaced.is_empty() && crate::app_folder::in_deployment(&app.dir, playbook).is_file() {
        printer.status(
            "Note",
            format!(
                "`deployment/{playbook}` runs in place of the hook{} {} (as the bash tool did)",
                plural(replaced.len()),
                replaced.join(", ")
            ),
        );
    }
    app.check_pattern_requires(&pattern, &hooks)?;
    printer.status(
        "Validating",
        format!(
            "app `{}` against pattern `{}` {}",
            app.manifest.name, pattern.manifest.name, pattern.manifest.version
        ),
    );
    let tofu = resolve_tofu(settings)?;
    require_tool(
        "ssh",
        "every phase after infrastructure talks to the VMs over ssh",
    )?;
    require_tool(
        "ansible-playbook",
        "the platform phase runs the pattern's playbook",
    )?;
    if phase::application::has_work(&app.dir, &pattern, !hooks.is_empty()) {
        require_tool("scp", "the application phase uploads the app")?;
    }
    check_ssh_paths(settings, &app)?;
    for tool in &pattern.manifest.host_tools {
        require_tool(
            tool,
            &format!(
                "pattern `{}` runs it on this machine",
                pattern.manifest.name
            ),
        )?;
    }
    if pattern.manifest.needs_root && !is_root() {
        return Err(UserError::new(
            format!(
                "pattern `{}` must run as root (it creates network namespaces and mounts)",
                pattern.manifest.name
            ),
            "run the command with sudo, or as root",
        )
        .into());
    }
    let mnemonic = if pattern.needs_mnemonic() {
        Some(load_mnemonic(printer, settings)?)
    } else {
        None
    };
    if let Some(filter) = &app.manifest.node_filter {
        check_filter(&app, filter)?;
    }
    let environment = app_environment(settings, &app)?;
    let warnings = app.warnings.iter().cloned().chain(warnings).collect();
    Ok(Validated {
        app,
        pattern,
        variables,
        hooks,
        tofu,
        mnemonic,
        environment,
        warnings,
    })
}

/// The folder and key ssh will be given can be written in an ssh option, and the key can be used
/// without a prompt ([`crate::ssh_key::check`]); without a key set, ssh-keygen makes one.
fn check_ssh_paths(settings: &Settings, app: &App) -> Result<()> {
    let paths = std::iter::once(("app folder", &app.dir))
        .chain(settings.ssh_key.as_ref().map(|key| ("ssh key", key)));
    for (what, path) in paths {
        if let Some(problem) = crate::tools::ssh::config_path_problem(path) {
            return Err(UserError::new(
                format!("the {what} `{}` {problem}", path.display()),
                format!("move the {what} to a path without it"),
            )
            .into());
        }
    }
    let Some(key) = &settings.ssh_key else {
        return require_tool("ssh-keygen", "each deployment gets its own ssh key");
    };
    let setting = match settings.sources.get("ssh_key") {
        Some(crate::settings::Source::Env(var)) => var.clone(),
        Some(crate::settings::Source::Config(file)) => {
            format!("`ssh_key` in `{}`", file.display())
        }
        _ => "`ssh_key`".to_string(),
    };
    crate::ssh_key::check(&settings.env, key, &setting)?;
    Ok(())
}

/// The app's `environment:` from the process environment, its env file and the defaults, with
/// the git identity of the bash tool's `credentials.yaml` (see [`crate::app_env`]).
pub(crate) fn app_environment(settings: &Settings, app: &App) -> Result<Vec<(String, String)>> {
    let process = |name: &str| settings.env.get(name).map(String::from);
    let env_file = match app.env_file().filter(|p| p.is_file()) {
        Some(path) => crate::env_file::read(&path, &process)?,
        None => Default::default(),
    };
    let credentials = crate::credentials::credentials_file(&settings.config_file);
    let git = crate::credentials::Credentials::load(&credentials)?.git();
    let sources = crate::app_env::Sources {
        process: &process,
        env_file,
        git,
    };
    Ok(app.environment(&sources)?)
}

/// The grid network goes to a pattern's `tfgrid_network` variable. An explicit `--network`
/// (or env/config) that contradicts the manifest's `config.tfgrid_network` is an error.
fn grid_network(
    settings: &Settings,
    pattern: &Pattern,
    variables: &mut std::collections::BTreeMap<String, serde_json::Value>,
) -> Result<()> {
    const VAR: &str = "tfgrid_network";
    if !pattern.manifest.variables.contains_key(VAR) {
        return Ok(());
    }
    let explicit = !matches!(
        settings.sources.get("network"),
        None | Some(crate::settings::Source::Default)
    );
    match variables.get(VAR).and_then(|v| v.as_str()) {
        Some(manifest) if explicit && manifest != settings.network => Err(UserError::new(
            format!(
                "the manifest sets config.tfgrid_network: {manifest}, but the network is `{}` ({})",
                settings.network,
                settings
                    .sources
                    .get("network")
                    .map(ToString::to_string)
                    .unwrap_or_default()
            ),
            "use one network: drop `config.tfgrid_network` from the manifest, or the other setting",
        )
        .into()),
        Some(_) => Ok(()),
        None => {
            variables.insert(VAR.into(), settings.network.clone().into());
            Ok(())
        }
    }
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The mnemonic in the documented order (`TF_VAR_mnemonic`, the file `signin` wrote,
/// `~/.config/threefold/mnemonic`, `./.tfgrid-mnemonic`), checked as a BIP-39 phrase.
fn load_mnemonic(printer: &Printer, settings: &Settings) -> Result<String> {
    let Some(loaded) = crate::grid::mnemonic::load(settings)? else {
        return Err(UserError::new(
            "this pattern needs a ThreeFold mnemonic and none was found",
            "run `tfgrid-compose signin`, or set TF_VAR_mnemonic (see docs/credentials.md)",
        )
        .into());
    };
    if loaded.too_open
        && let crate::settings::Source::Config(path) = &loaded.source
    {
        printer.warn(crate::grid::mnemonic::too_open_warning(path));
    }
    Ok(loaded.phrase)
}

/// Percentages within 0..=100 and a non-negative uptime in the manifest's `node_filter:`.
fn check_filter(app: &App, filter: &crate::grid::select::NodeFilter) -> Result<()> {
    for (key, value, max) in [
        ("max_cpu_usage", filter.max_cpu_usage, 100.0),
        ("max_disk_usage", filter.max_disk_usage, 100.0),
        ("max_memory_usage", filter.max_memory_usage, 100.0),
        ("min_uptime_days", filter.min_uptime_days, f64::MAX),
    ] {
        if let Some(v) = value.filter(|v| !(0.0..=max).contains(v)) {
            return Err(app
                .error(
                    &["node_filter", key],
                    format!("{v} is out of range"),
                    "percentages are 0-100; days are 0 or more",
                )
                .into());
        }
    }
    Ok(())
}

/// `max_environments` (manifest, else config): refuses a new environment when the app already
/// has that many recorded on this machine.
fn check_environment_cap(settings: &Settings, valid: &Validated, target: &Target) -> Result<()> {
    let Some(cap) = valid
        .app
        .manifest
        .max_environments
        .or(settings.max_environments)
    else {
        return Ok(());
    };
    let app_dir = crate::files::real_path(&valid.app.dir);
    let (entries, _) = registry(settings).list()?;
    let mut others: Vec<String> = entries
        .iter()
        .filter(|e| e.app_dir == app_dir && e.env != target.env && !e.missing())
        .map(|e| e.env.clone())
        .collect();
    others.sort();
    if others.len() >= cap as usize {
        let source = if valid.app.manifest.max_environments.is_some() {
            valid.app.file.display().to_string()
        } else {
            settings
                .sources
                .get("max_environments")
                .map(ToString::to_string)
                .unwrap_or_default()
        };
        return Err(UserError::new(
            format!(
                "`{}` may have at most {cap} environment{} at once ({source}); it has {}: {}",
                valid.app.manifest.name,
                plural(cap),
                others.len(),
                others.join(", ")
            ),
            format!(
                "remove one first (`tfgrid-compose down {} --env {}`), or raise `max_environments`",
                crate::process::display_path(&valid.app.dir),
                others.first().map_or("ENV", String::as_str)
            ),
        )
        .into());
    }
    Ok(())
}

/// How an `up` ended, learnt as it runs, for its `deployment-finished` event.
#[derive(Debug, Default)]
struct Ending {
    /// Once the deployment is known (new or recorded).
    id: Option<String>,
    /// The deployment's status once phases ran, or when there was nothing to resume.
    status: Option<Status>,
    /// The outputs of a deployment that is up.
    outputs: Option<serde_json::Value>,
}

/// `up`: validate, take the lock, stop what a killed run left, then run the phases from the first
/// unfinished one, journaling each. With `--json`, `deployment-finished` is its last event in
/// every outcome (docs/json-output.md): up, failed, interrupted, or refused before a deployment
/// existed.
pub async fn up(
    printer: &Printer,
    settings: &Settings,
    runner: Runner,
    options: &UpOptions,
) -> Result<()> {
    let mut ending = Ending::default();
    // A signal while no child runs (validation, the lock wait) ends the work here, before the
    // command's own limit drops it, so that the event below is written then too.
    let result = crate::interrupt::stoppable(
        up_recorded(printer, settings, runner, options, &mut ending),
        std::time::Duration::from_millis(2500),
    )
    .await;
    let status = match (&result, ending.status) {
        (Err(err), _)
            if crate::interrupt::received().is_some()
                || err.chain().any(|c| c.is::<crate::error::Interrupted>()) =>
        {
            "interrupted"
        }
        (_, Some(status)) => status.as_str(),
        (Ok(()), None) => Status::Running.as_str(),
        (Err(err), None) if crate::error::exit_code_for(err) == 2 => "refused",
        (Err(_), None) => Status::Failed.as_str(),
    };
    printer.event(&crate::output::Event::DeploymentFinished {
        command: "up",
        status,
        id: ending.id.as_deref(),
        outputs: ending.outputs.as_ref().filter(|_| result.is_ok()),
    });
    result
}

async fn up_recorded(
    printer: &Printer,
    settings: &Settings,
    runner: Runner,
    options: &UpOptions,
    ending: &mut Ending,
) -> Result<()> {
    let target = crate::ops::resolve_app_target(printer, settings, options.app.as_deref()).await?;
    let valid = validate(
        printer,
        settings,
        target.load_app(printer, None)?,
        options.pattern.as_deref(),
    )?;
    let mut dir = target.dir.clone();
    dir.dry_run = options.dry_run;
    let app_arg = Target {
        app: valid.app.dir.clone(),
        ..target.clone()
    }
    .arg();
    let existing = target.dir.load()?;
    if !options.converge {
        check_continuation(
            existing.as_ref(),
            options,
            &valid.app.manifest.name,
            &app_arg,
        )?;
    }
    if existing.is_none() {
        check_environment_cap(settings, &valid, &target)?;
        crate::ops::cost::check_budget(settings, &valid, &target.env).await?;
    }
    if options.dry_run {
        crate::ops::cost::print_planned(printer, settings, &valid).await?;
    }
    let _lock = lock(printer, settings, &dir, options.dry_run, &app_arg).await?;
    // Re-read under the lock: another run may have changed it.
    let existing = if options.dry_run {
        existing
    } else {
        dir.load()?
    };
    let existed = existing.is_some();
    let mut state = match existing {
        // A folder moved with its deployment: recorded where it is now.
        Some(mut state) if state.app.origin.is_none() => {
            state.app = AppRecord::of(&valid.app, None)?;
            state
        }
        Some(state) => state,
        None => new_state(settings, &valid, &target, &dir)?,
    };
    if state.pattern.name != valid.pattern.manifest.name {
        return Err(UserError::new(
            format!(
                "this deployment uses pattern `{}`, not `{}`",
                state.pattern.name, valid.pattern.manifest.name
            ),
            format!("remove it first with `tfgrid-compose down {app_arg}`"),
        )
        .into());
    }
    ending.id = Some(state.id.clone());
    let Some(start) = first_phase(printer, &state, options)? else {
        ending.status = Some(state.status);
        ending.outputs = outputs_json(&state);
        return Ok(());
    };
    if options.resume || options.from.is_some() || (options.converge && existed) {
        printer.status(
            "Resuming",
            format!("deployment {} from phase `{}`", state.id, start.name()),
        );
    }
    let log_dir = start_run(&dir, &mut state, "up")?;
    // Flags, then the manifest's `node_filter:`, then the config file's.
    let node_filter = options
        .filter
        .clone()
        .or(&valid.app.manifest.node_filter.clone().unwrap_or_default())
        .or(&settings.node_filter);
    let mut ctx = Context {
        printer: printer.clone(),
        runner,
        settings: settings.clone(),
        app: valid.app,
        pattern: valid.pattern,
        dir,
        state,
        variables: valid.variables,
        mnemonic: valid.mnemonic,
        hooks: valid.hooks,
        environment: valid.environment,
        log_dir,
        named_logs: Default::default(),
        masters: Default::default(),
        node_flag: options.node,
        node_filter,
    };
    let clock = std::time::Instant::now();
    let result = phase::run_from(&mut ctx, start).await;
    ending.status = Some(ctx.state.status);
    ending.outputs = outputs_json(&ctx.state);
    match result {
        Ok(()) => {
            ctx.printer.status(
                "Done",
                format!("in {}", crate::clock::format_duration(clock.elapsed())),
            );
            Ok(())
        }
        Err(err) if options.dry_run => Err(err),
        Err(err) => Err(stopped(&ctx, &app_arg, err)),
    }
}

/// `up` on a deployment that exists needs `--resume` or `--from`; `--resume` needs one; `--from`
/// past infrastructure needs something deployed.
fn check_continuation(
    existing: Option<&DeploymentState>,
    options: &UpOptions,
    name: &str,
    app_arg: &str,
) -> Result<()> {
    let continuing = options.resume || options.from.is_some();
    if let Some(state) = existing.filter(|_| !continuing) {
        return Err(UserError::new(
            format!(
                "`{name}` is already deployed here (status {})",
                state.status.as_str()
            ),
            format!(
                "continue it with `tfgrid-compose up --resume {app_arg}`, or remove it with \
                `tfgrid-compose down {app_arg}`"
            ),
        )
        .into());
    }
    if existing.is_none() && options.resume {
        return Err(UserError::new(
            format!("there is no deployment of `{name}` to resume"),
            format!("start one with `tfgrid-compose up {app_arg}`"),
        )
        .into());
    }
    if let (None, Some(from)) = (existing, options.from)
        && from > Phase::Infrastructure
    {
        return Err(UserError::new(
            format!(
                "cannot start at `{}`: nothing was deployed yet",
                from.name()
            ),
            format!("run `tfgrid-compose up {app_arg}`"),
        )
        .into());
    }
    Ok(())
}

/// The deployment's lock (none for a dry run), then the tools a killed run left running are
/// stopped.
async fn lock(
    printer: &Printer,
    settings: &Settings,
    dir: &crate::state::StateDir,
    dry_run: bool,
    app_arg: &str,
) -> Result<StateLock> {
    if dry_run {
        return Ok(StateLock::none());
    }
    dir.create_dir(&dir.root)?;
    let lock = take_lock(printer, settings, dir, &format!("up {app_arg}")).await?;
    Ok(lock)
}

/// The state of a deployment that starts now.
fn new_state(
    settings: &Settings,
    valid: &Validated,
    target: &Target,
    dir: &crate::state::StateDir,
) -> Result<DeploymentState> {
    let identity = settings
        .ssh_key
        .clone()
        .unwrap_or_else(|| dir.default_identity());
    Ok(DeploymentState {
        schema_version: SCHEMA_VERSION,
        id: crate::ids::new_id(),
        env: target.env.clone(),
        app: AppRecord::of(&valid.app, target.origin.clone())?,
        pattern: PatternRecord {
            name: valid.pattern.manifest.name.clone(),
            version: valid.pattern.manifest.version.clone(),
            dir: std::path::absolute(&valid.pattern.dir)?,
        },
        status: Status::Deploying,
        created_at: now_unix(),
        updated_at: now_unix(),
        tofu: valid.tofu.clone(),
        ssh: SshRecord {
            identity,
            known_hosts: dir.known_hosts(),
            port: settings.ssh_port,
            user: "root".into(),
            pinned: false,
        },
        journal: Vec::new(),
        outputs: None,
        network: None,
        placement: Vec::new(),
        excluded_nodes: Vec::new(),
        runs: Vec::new(),
        ai_stack: None,
        grid_network: valid
            .pattern
            .manifest
            .variables
            .contains_key("tfgrid_network")
            .then(|| settings.network.clone()),
        ip_range: None,
    })
}

/// `--from`, else the first phase not done; `None` when everything is done already.
fn first_phase(
    printer: &Printer,
    state: &DeploymentState,
    options: &UpOptions,
) -> Result<Option<Phase>> {
    Ok(Some(match options.from {
        // Converging never fails on the order: an earlier phase than asked is run again first.
        Some(from) if options.converge => from.min(state.first_unfinished().unwrap_or(from)),
        Some(from) => {
            let first = state.first_unfinished().unwrap_or(Phase::Finalize);
            if from > first {
                return Err(UserError::new(
                    format!(
                        "cannot start at `{}`: phase `{}` has not finished",
                        from.name(),
                        first.name()
                    ),
                    format!(
                        "use `--resume`, or `--from {}` or an earlier phase",
                        first.name()
                    ),
                )
                .into());
            }
            from
        }
        None => match state.first_unfinished() {
            Some(phase) => phase,
            None => {
                printer.status(
                    "Fresh",
                    format!("`{}` is up already; nothing to resume", state.app.name),
                );
                return Ok(None);
            }
        },
    }))
}

/// Records a run of `command` in `state` and creates its log folder.
fn start_run(
    dir: &crate::state::StateDir,
    state: &mut DeploymentState,
    command: &str,
) -> Result<std::path::PathBuf> {
    let started = now_unix();
    let log_dir = dir.run_log_dir(started, command);
    let id = log_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.create_dir(&log_dir)?;
    state.runs.push(RunRecord {
        id,
        command: command.into(),
        started_at: started,
        log_dir: log_dir.clone(),
    });
    Ok(log_dir)
}

/// The recorded outputs as the `deployment-finished` event carries them (no `wg_config`).
fn outputs_json(state: &DeploymentState) -> Option<serde_json::Value> {
    state
        .outputs
        .as_ref()
        .and_then(|o| serde_json::to_value(o).ok())
}

/// The error of an `up` that stopped: where it is recorded, the phase's log, how to go on.
fn stopped(ctx: &Context, app_arg: &str, err: anyhow::Error) -> anyhow::Error {
    let mut hints = Vec::new();
    if let Some(failed) = ctx.state.journal.iter().find(|r| {
        matches!(
            r.status,
            crate::state::PhaseStatus::Failed | crate::state::PhaseStatus::Interrupted
        )
    }) && !failed.logs.is_empty()
    {
        let logs: Vec<String> = failed
            .logs
            .iter()
            .map(|l| format!("`{}`", l.display()))
            .collect();
        hints.push(format!("phase log at {}", logs.join(", ")));
    }
    hints.push(if ctx.state.status == Status::Interrupted {
        format!("continue with `tfgrid-compose up --resume {app_arg}`")
    } else {
        format!("fix the cause, then continue with `tfgrid-compose up --resume {app_arg}`")
    });
    hints.push(format!(
        "or remove everything created so far with `tfgrid-compose down {app_arg}`"
    ));
    let message = format!(
        "`up` of `{}` stopped; the deployment is recorded in `{}`",
        ctx.app.manifest.name,
        ctx.dir.state_file().display()
    );
    Failed {
        message,
        hints,
        source: err.into(),
    }
    .into()
}
