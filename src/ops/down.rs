//! `down`: lock, take the tunnel down, `destroy` with the same variables, check that Terraform's
//! outputs are empty, and only then remove the deployment's files. A failed destroy removes
//! nothing, says so, and can be run again.

use anyhow::{Context as _, Result, bail};

use crate::error::{Failed, UserError};
use crate::manifest::Pattern;
use crate::ops::{registry, resolve_target};
use crate::output::{Event, Printer};
use crate::phase::infrastructure::tofu;
use crate::phase::network::interface_exists;
use crate::process::Runner;
use crate::settings::Settings;
use crate::state::{StateLock, Status, format_duration, format_utc, now_unix};
use crate::tools::wg;

/// Flags of `down`.
#[derive(Debug, Clone, Default)]
pub struct DownOptions {
    pub app: Option<String>,
    pub yes: bool,
}

fn confirm(printer: &Printer, question: &str) -> Result<bool> {
    let answer = crate::ops::ask(printer, &format!("{question} [y/N]"), "refusing to destroy without confirmation")?;
    Ok(matches!(answer.as_str(), "y" | "Y" | "yes"))
}

pub async fn down(printer: &Printer, settings: &Settings, runner: Runner, options: &DownOptions) -> Result<()> {
    let target = resolve_target(settings, options.app.as_deref())?;
    let state = target.load()?;
    let dir = target.dir.clone();
    let app_arg = target.arg();
    if !options.yes && !confirm(printer, &format!("destroy `{}:{}` ({}) and everything it created?", state.app.name, state.env, state.id))? {
        bail!(UserError::new("cancelled; nothing was changed", "pass `--yes` to skip the question"));
    }
    let _lock = StateLock::acquire(&dir.lock_file(), &format!("down {app_arg}"), settings.lock_wait, |holder| {
        printer.status("Blocking", format!("waiting for lock on `{}` (held by {holder})", dir.lock_file().display()));
    })?;
    let mut state = dir.load()?.context("the deployment vanished while waiting for the lock")?;
    let clock = std::time::Instant::now();
    state.status = Status::Destroying;
    dir.save(&state)?;
    let log_dir = dir.logs_dir().join(format!("{}-down", format_utc(now_unix()).replace(':', "-").trim_end_matches('Z')));
    dir.create_dir(&log_dir)?;
    let log = log_dir.join("down.log");

    let result = destroy(printer, settings, &runner, &dir, &state, &log).await;
    if let Err(err) = result {
        state.status = Status::DestroyFailed;
        state.updated_at = now_unix();
        dir.save(&state)?;
        let what = if crate::interrupt::received().is_some() { "was interrupted" } else { "failed" };
        return Err(Failed {
            message: format!("`down` of `{}` {what}; nothing was removed and the deployment is still recorded", state.app.name),
            hints: vec![format!("log at `{}`", log.display()), format!("fix the cause, then run `tfgrid-compose down {app_arg}` again")],
            source: err.into(),
        }
        .into());
    }
    dir.remove()?;
    registry(settings).remove(&state.id)?;
    printer.event(&Event::DeploymentFinished { command: "down", status: "destroyed", id: &state.id, outputs: None });
    printer.status("Destroyed", format!("`{}` ({}) in {}", state.app.name, state.id, format_duration(clock.elapsed())));
    Ok(())
}

async fn destroy(
    printer: &Printer,
    settings: &Settings,
    runner: &Runner,
    dir: &crate::state::StateDir,
    state: &crate::state::DeploymentState,
    log: &std::path::Path,
) -> Result<()> {
    if let Some(net) = &state.network {
        if interface_exists(&net.interface) {
            printer.status("Disconnecting", format!("wireguard interface `{}`", net.interface));
            runner.run(&wg::down(&net.config, log)).await.context("wg-quick down failed")?;
        }
    }
    let workdir = dir.terraform_dir();
    if !workdir.is_dir() {
        printer.status("Skipping", "destroy: infrastructure was never created");
        return Ok(());
    }
    // A pattern folder that has gone away cannot say; destroy is then tried with what we have.
    let needs_mnemonic = Pattern::load(&state.pattern.dir).is_ok_and(|p| p.needs_mnemonic());
    // the same sources, in the same order, as `up` (environment, then the file `signin` wrote, …)
    let mnemonic = if needs_mnemonic || state.grid_network.is_some() { crate::grid::mnemonic::load(settings)?.map(|l| l.phrase) } else { None };
    if needs_mnemonic && mnemonic.is_none() {
        return Err(UserError::new(
            "destroying this deployment needs the ThreeFold mnemonic, and none was found",
            "run `tfgrid-compose signin`, or set TF_VAR_mnemonic, and run `down` again",
        )
        .into());
    }
    let program = if which::which(&state.tofu).is_ok() { state.tofu.clone() } else { crate::ops::resolve_tofu(settings)? };
    let sim = crate::phase::infrastructure::sim_config(settings, state.grid_network.as_deref(), runner.is_dry_run(), &workdir)?;
    let tofu = tofu(dir, &program, mnemonic.as_deref(), settings.tofu_timeout, sim.as_deref());
    let _spinner = printer.spinner("destroy", Some(log));
    printer.status("Destroying", format!("infrastructure with `{program}` destroy"));
    runner.run(&tofu.init(log)).await.context("terraform init failed")?;
    runner.run(&tofu.destroy(log)).await.context("terraform destroy failed")?;
    let out = runner.run(&tofu.output_json(log, "{}")).await.context("terraform output failed")?;
    let outputs: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap_or(serde_json::Value::Null);
    if !outputs.as_object().is_some_and(serde_json::Map::is_empty) {
        bail!("terraform still reports outputs after destroy, so resources may remain: {}", out.stdout.trim());
    }
    Ok(())
}
