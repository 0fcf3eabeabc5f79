//! `down`: lock, take the tunnel down, `destroy` with the same variables, check that Terraform's
//! outputs are empty, and only then remove the deployment's files. A failed destroy removes
//! nothing, says so, and can be run again.

use anyhow::{Context as _, Result, bail};

use crate::clock::{format_duration, now_unix};
use crate::error::{Failed, UserError};
use crate::ops::{registry, resolve_target, take_lock};
use crate::output::{Event, Printer};
use crate::pattern::Pattern;
use crate::phase::infrastructure::tofu;
use crate::phase::network::interface_exists;
use crate::process::Runner;
use crate::settings::Settings;
use crate::state::Status;
use crate::tools::wg;

/// Flags of `down`.
#[derive(Debug, Clone, Default)]
pub struct DownOptions {
    pub app: Option<String>,
    pub yes: bool,
    /// The caller holds the deployment's lock already (`pr`, which decided under it).
    pub lock_held: bool,
}

/// The deployment's lock, unless the caller holds it.
async fn lock(
    printer: &Printer,
    settings: &Settings,
    options: &DownOptions,
    dir: &crate::state::StateDir,
    command: &str,
) -> Result<Option<crate::state::StateLock>> {
    if options.lock_held {
        return Ok(None);
    }
    Ok(Some(take_lock(printer, settings, dir, command).await?))
}

fn confirm(printer: &Printer, question: &str) -> Result<bool> {
    let answer = crate::ops::ask(
        printer,
        &format!("{question} [y/N]"),
        "refusing to destroy without confirmation",
    )?;
    Ok(matches!(answer.as_str(), "y" | "Y" | "yes"))
}

pub async fn down(
    printer: &Printer,
    settings: &Settings,
    runner: Runner,
    options: &DownOptions,
) -> Result<()> {
    let target = resolve_target(settings, options.app.as_deref())?;
    let state = match target.load() {
        Ok(state) => state,
        Err(err) if err.chain().any(|c| c.is::<crate::error::DamagedState>()) => {
            return down_damaged(printer, settings, runner, options, &target, err).await;
        }
        Err(err) if err.downcast_ref::<crate::error::FolderGone>().is_some() => {
            return down_gone(printer, settings, runner, options, err).await;
        }
        Err(err) => return Err(err),
    };
    let dir = target.dir.clone();
    refuse_moved(&dir, &state)?;
    let app_arg = target.arg();
    if !options.yes
        && !confirm(
            printer,
            &format!(
                "destroy `{}:{}` ({}) and everything it created?",
                state.app.name, state.env, state.id
            ),
        )?
    {
        bail!(UserError::new(
            "cancelled; nothing was changed",
            "pass `--yes` to skip the question"
        ));
    }
    let _lock = lock(printer, settings, options, &dir, &format!("down {app_arg}")).await?;
    let mut state = dir
        .load()?
        .context("the deployment vanished while waiting for the lock")?;
    let clock = std::time::Instant::now();
    state.status = Status::Destroying;
    // What is paid for goes first: a record that cannot be written (a full disk) does not stop
    // the destroy; `ps` reads a `destroying` that no run holds as `destroy-failed` anyway.
    record(printer, &dir, &state);
    let log_dir = dir.run_log_dir(now_unix(), "down");
    dir.create_dir(&log_dir)?;
    let log = log_dir.join("down.log");

    let result = destroy(
        printer,
        settings,
        &runner,
        &dir,
        &Teardown::of(&state),
        &log,
    )
    .await;
    if let Err(err) = result {
        state.status = Status::DestroyFailed;
        state.updated_at = now_unix();
        record(printer, &dir, &state);
        let what = if crate::interrupt::received().is_some() {
            "was interrupted"
        } else {
            "failed"
        };
        let again = if crate::interrupt::received().is_some() {
            format!("run `tfgrid-compose down {app_arg}` again to finish")
        } else {
            format!("fix the cause, then run `tfgrid-compose down {app_arg}` again")
        };
        return Err(Failed {
            message: format!(
                "`down` of `{}` {what}; its folder and record are kept (status destroy-failed)",
                state.app.name
            ),
            hints: vec![format!("log at `{}`", log.display()), again],
            source: err.into(),
        }
        .into());
    }
    dir.remove()?;
    registry(settings).remove(&state.id)?;
    printer.event(&Event::DeploymentFinished {
        command: "down",
        status: "destroyed",
        id: Some(&state.id),
        outputs: None,
    });
    printer.status(
        "Destroyed",
        format!(
            "`{}` ({}) in {}",
            state.app.name,
            state.id,
            format_duration(clock.elapsed())
        ),
    );
    Ok(())
}

/// Saves `state`, or says why it could not (the destroy goes on either way).
fn record(printer: &Printer, dir: &crate::state::StateDir, state: &crate::state::DeploymentState) {
    if let Err(err) = dir.save(state) {
        printer.warn(format!(
            "{:#}; going on with the destroy",
            err.context(format!("cannot record status `{}`", state.status.as_str()))
        ));
    }
}

/// What `destroy` needs to know about a deployment: from its `state.yaml`, or, when that is
/// damaged, from the files beside it.
struct Teardown {
    /// WireGuard interfaces and their configs.
    tunnels: Vec<(String, std::path::PathBuf)>,
    pattern_dir: Option<std::path::PathBuf>,
    grid_network: Option<String>,
    /// The recorded tofu program, if any.
    tofu: Option<String>,
}

impl Teardown {
    fn of(state: &crate::state::DeploymentState) -> Teardown {
        Teardown {
            tunnels: state
                .network
                .iter()
                .map(|n| (n.interface.clone(), n.config.clone()))
                .collect(),
            pattern_dir: Some(state.pattern.dir.clone()),
            grid_network: state.grid_network.clone(),
            tofu: Some(state.tofu.clone()),
        }
    }

    /// From the files a deployment's folder holds: the WireGuard configs in `wg/`, and the grid
    /// network from the variables file `up` gave Terraform.
    fn from_files(dir: &crate::state::StateDir) -> Teardown {
        let tunnels = std::fs::read_dir(dir.wg_dir())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "conf"))
            .filter_map(|p| Some((p.file_stem()?.to_str()?.to_string(), p.clone())))
            .collect();
        let grid_network = recorded_variable(dir, "tfgrid_network");
        Teardown {
            tunnels,
            pattern_dir: None,
            grid_network,
            tofu: None,
        }
    }
}

/// A string variable of the variables file `up` gave Terraform, if it is there.
fn recorded_variable(dir: &crate::state::StateDir, name: &str) -> Option<String> {
    let vars = std::fs::read_to_string(dir.var_file()).ok()?;
    serde_json::from_str::<serde_json::Value>(&vars)
        .ok()?
        .get(name)?
        .as_str()
        .map(String::from)
}

/// A folder app whose folder was moved since `up`: its Terraform state and WireGuard config name
/// files under the old path (a local-exec destroy step, `wg-quick down FILE`), so a destroy from
/// the new place would stop halfway and leave what runs. Refused before anything is touched.
fn refuse_moved(dir: &crate::state::StateDir, state: &crate::state::DeploymentState) -> Result<()> {
    let Some(now) = dir.app_dir().filter(|_| state.app.origin.is_none()) else {
        return Ok(());
    };
    let (now, then) = (
        crate::files::real_path(now),
        crate::files::real_path(&state.app.dir),
    );
    if now == then {
        return Ok(());
    }
    let (now, then) = (
        crate::process::display_path(&now),
        crate::process::display_path(&then),
    );
    Err(UserError::new(
        format!(
            "deployment {} (`{}:{}`) was made in {then} and its folder is now {now}: its \
                Terraform state and WireGuard config name files there, so nothing was destroyed",
            crate::ids::ShortId::of(&state.id),
            state.app.name,
            state.env
        ),
        format!("move the folder back (`mv {now} {then}`), then run `tfgrid-compose down {then}`"),
    )
    .into())
}

/// `down` of a deployment whose folder is gone: its Terraform state went with it. A pattern
/// that can find its resources without it declares how (`down_without_state:` in pattern.yaml;
/// the local pattern's VMs are named by the deployment's id); for any other, `err` stands.
async fn down_gone(
    printer: &Printer,
    settings: &Settings,
    runner: Runner,
    options: &DownOptions,
    err: anyhow::Error,
) -> Result<()> {
    let Some(gone) = err.downcast_ref::<crate::error::FolderGone>() else {
        return Err(err);
    };
    let Ok(pattern) = crate::pattern::find(settings, &gone.state_dir, &gone.pattern) else {
        return Err(err);
    };
    let Some(down) = &pattern.manifest.down_without_state else {
        return Err(err);
    };
    let id8 = crate::ids::ShortId::of(&gone.id).to_string();
    printer.warn(format!(
        "{err}; the {} pattern's resources are found by the deployment's id ({id8})",
        pattern.manifest.name
    ));
    if !options.yes
        && !confirm(
            printer,
            &format!("stop every {} of deployment {id8}?", down.what),
        )?
    {
        bail!(UserError::new(
            "cancelled; nothing was changed",
            "pass `--yes` to skip the question"
        ));
    }
    // The deployment's own folder is gone: this run's log goes under the data folder, named as
    // every run's log folder is.
    let log_dir = crate::state::StateDir::at(settings.data_dir.clone())
        .run_log_dir(now_unix(), &format!("down-{id8}"));
    crate::files::create_private_dir(&log_dir)?;
    let log = log_dir.join("down.log");
    let cmd = crate::process::Cmd::new("bash")
        .args(down.argv(&pattern.dir, &id8, &pattern.manifest.variables))
        .io(crate::process::Io::Log(log.clone()))
        .timeout(std::time::Duration::from_secs(120));
    printer.status("Destroying", format!("{} of {id8}", down.what));
    runner.run(&cmd).await.map_err(|e| Failed {
        message: format!("could not stop the {} of {id8}", down.what),
        hints: vec![format!("log at `{}`", log.display())],
        source: e.into(),
    })?;
    registry(settings).remove(&gone.id)?;
    printer.status(
        "Destroyed",
        format!("deployment {id8} (its folder was gone)"),
    );
    Ok(())
}

/// `down` of a deployment whose `state.yaml` is empty or damaged: Terraform's state is the truth
/// about what is billed, so destroy from it, then remove the folder and its registry entries.
async fn down_damaged(
    printer: &Printer,
    settings: &Settings,
    runner: Runner,
    options: &DownOptions,
    target: &crate::ops::Target,
    err: anyhow::Error,
) -> Result<()> {
    let dir = target.dir.clone();
    // Named by its id, the deployment must be the one whose variables `up` wrote here.
    // (`deployment_id`, when the pattern declares it: what a damaged state.yaml leaves to say
    // whose folder this is).
    if let Some(refusal) = recorded_variable(&dir, "deployment_id")
        .and_then(|found| dir.not_expected(&found, "its state.yaml damaged"))
    {
        return Err(refusal.into());
    }
    let tfstate = dir.tfstate();
    if !tfstate.is_file() {
        return Err(Failed {
            message: format!(
                "{err:#}; and there is no Terraform state beside it, so nothing \
                recorded here can be destroyed"
            ),
            hints: vec![
                "if the deployment reached the grid, `tfgrid-compose contracts` lists what your \
                    twin still pays for (contracts no state holds are marked orphan)"
                    .into(),
                format!("remove `{}` to forget the deployment", dir.root.display()),
            ],
            source: "no terraform.tfstate".into(),
        }
        .into());
    }
    printer.warn(format!(
        "{err:#}; destroying what Terraform's state in `{}` holds",
        dir.terraform_dir().display()
    ));
    if !options.yes
        && !confirm(
            printer,
            &format!(
                "destroy everything Terraform's state in `{}` holds?",
                dir.terraform_dir().display()
            ),
        )?
    {
        bail!(UserError::new(
            "cancelled; nothing was changed",
            "pass `--yes` to skip the question"
        ));
    }
    let _lock = lock(
        printer,
        settings,
        options,
        &dir,
        &format!("down {}", target.arg()),
    )
    .await?;
    let clock = std::time::Instant::now();
    let log_dir = dir.run_log_dir(now_unix(), "down");
    dir.create_dir(&log_dir)?;
    let log = log_dir.join("down.log");
    if let Err(err) = destroy(
        printer,
        settings,
        &runner,
        &dir,
        &Teardown::from_files(&dir),
        &log,
    )
    .await
    {
        return Err(Failed {
            message: "`down` from Terraform's state failed; the folder is kept".into(),
            hints: vec![
                format!("log at `{}`", log.display()),
                format!(
                    "fix the cause, then run `tfgrid-compose down {}` again",
                    target.arg()
                ),
            ],
            source: err.into(),
        }
        .into());
    }
    dir.remove()?;
    let reg = registry(settings);
    let (entries, _) = reg.list()?;
    for entry in entries.iter().filter(|e| {
        e.state_dir == dir.root || std::path::absolute(&dir.root).is_ok_and(|a| a == e.state_dir)
    }) {
        reg.remove(&entry.id)?;
    }
    printer.status(
        "Destroyed",
        format!(
            "what Terraform's state in `{}` held, in {}",
            dir.root.display(),
            format_duration(clock.elapsed())
        ),
    );
    Ok(())
}

async fn destroy(
    printer: &Printer,
    settings: &Settings,
    runner: &Runner,
    dir: &crate::state::StateDir,
    plan: &Teardown,
    log: &std::path::Path,
) -> Result<()> {
    let workdir = dir.terraform_dir();
    let infrastructure = workdir.is_dir();
    // A pattern folder that has gone away cannot say; destroy is then tried with what we have.
    let needs_mnemonic = match plan
        .pattern_dir
        .as_deref()
        .and_then(|d| Pattern::load(d).ok())
    {
        Some(pattern) => pattern.needs_mnemonic(),
        None => plan.grid_network.is_some(),
    };
    // the same sources, in the same order, as `up` (environment, then the file `signin` wrote, …)
    // Checked before the tunnel goes down: a `down` refused for want of it leaves the
    // deployment reachable, as it was.
    let mnemonic = if infrastructure && (needs_mnemonic || plan.grid_network.is_some()) {
        crate::grid::mnemonic::load(settings)?.map(|l| l.phrase)
    } else {
        None
    };
    if infrastructure && needs_mnemonic && mnemonic.is_none() {
        return Err(UserError::new(
            "destroying this deployment needs the ThreeFold mnemonic, and none was found",
            "run `tfgrid-compose signin`, or set TF_VAR_mnemonic, and run `down` again",
        )
        .into());
    }
    for (interface, config) in &plan.tunnels {
        if interface_exists(interface) {
            printer.status(
                "Disconnecting",
                format!("wireguard interface `{interface}`"),
            );
            runner
                .run(&wg::down(config, log))
                .await
                .context("wg-quick down failed")?;
        }
    }
    if !infrastructure {
        printer.status("Skipping", "destroy: infrastructure was never created");
        return Ok(());
    }
    let program = match plan.tofu.as_deref().filter(|t| which::which(t).is_ok()) {
        Some(tofu) => tofu.to_string(),
        None => crate::ops::resolve_tofu(settings)?,
    };
    let sim = crate::phase::infrastructure::sim_config(
        settings,
        plan.grid_network.as_deref(),
        runner.is_dry_run(),
        &workdir,
    )?;
    let tofu = tofu(
        dir,
        &program,
        mnemonic.as_deref(),
        settings.tofu_timeout,
        sim.as_deref(),
    );
    let _spinner = printer.spinner("destroy", Some(log));
    printer.status(
        "Destroying",
        format!("infrastructure with `{program}` destroy"),
    );
    runner
        .run(&tofu.init(log))
        .await
        .context("terraform init failed")?;
    runner
        .run(&tofu.destroy(log))
        .await
        .map_err(|e| crate::grid::errors::explained(e, "terraform destroy failed"))?;
    let out = runner
        .run(&tofu.output_json(log, "{}"))
        .await
        .context("terraform output failed")?;
    let outputs: serde_json::Value =
        serde_json::from_str(out.stdout.trim()).unwrap_or(serde_json::Value::Null);
    if !outputs.as_object().is_some_and(serde_json::Map::is_empty) {
        bail!(
            "terraform still reports outputs after destroy, so resources may remain: {}",
            out.stdout.trim()
        );
    }
    Ok(())
}
