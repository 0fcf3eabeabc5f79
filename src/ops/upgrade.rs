//! `up --upgrade`: a running AI stack taken to the app folder's newer version (or its pattern's),
//! with a way back. In order: a backup of the projects (`projects backup`, kept in the
//! deployment's `ai-stack/` folder), a copy on each VM of what `up` replaces there (the stack's
//! configs and units, this binary, the app's `deployment/` with its hooks), `up` again from the
//! phase that what changed needs (the platform for a new pattern version, else the application),
//! then `health`'s checks ([`super::health::checks`]). When `up` or the health check fails: each VM's copy is put back and
//! the old setup hook run, the state's app and pattern records put back, the health checked
//! again, and the backup restored when the projects it holds are gone. Projects and
//! repositories live in `/var/lib/tfgrid-ai`, which neither way touches.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use crate::error::UserError;
use crate::manifest::{App, HookKind};
use crate::output::Printer;
use crate::phase::ai_stack::{REMOTE_BIN, REMOTE_CONFIG};
use crate::process::{Io, Runner};
use crate::settings::Settings;
use crate::state::{DeploymentState, Phase, Status};
use crate::tools::ssh;

use super::up::UpOptions;

/// Where each VM keeps its copy of what an upgrade replaces.
const COPY: &str = "/var/backups/tfgrid-ai-before-upgrade.tar";
/// What an upgrade replaces on a VM, relative to `/`.
const REPLACED: [&str; 3] = [
    "etc/tfgrid-ai",
    "usr/local/bin/tfgrid-compose",
    "tmp/app-deployment",
];
/// How long a stack has to become healthy after `up` or a rollback.
const HEALTHY_WITHIN: Duration = Duration::from_secs(90);
/// Each remote step.
const STEP: Duration = Duration::from_secs(300);

/// `health`'s checks ([`super::health::checks`], without the probe project) until all hold,
/// [`HEALTHY_WITHIN`] at most.
///
/// Errors: the checks that still fail then, each with its figure, as `health` prints them.
async fn until_healthy(
    settings: &Settings,
    runner: &Runner,
    state: &DeploymentState,
    app: &App,
) -> Result<()> {
    let started = Instant::now();
    loop {
        let checks = super::health::checks(settings, runner, state, app, false).await?;
        let failed: Vec<String> = checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| format!("{}: {}", c.check, c.figure))
            .collect();
        if failed.is_empty() {
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < HEALTHY_WITHIN,
            "`health` fails: {}",
            failed.join("; ")
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Runs `argv` on every VM of the deployment.
async fn on_every_vm(
    runner: &Runner,
    state: &DeploymentState,
    argv: &[String],
    log: &std::path::Path,
) -> Result<()> {
    let count = state.outputs.as_ref().map_or(0, |o| o.vms().len());
    for vm in 0..count {
        let ssh_target = super::inspect::vm_target(state, Some(&vm.to_string()))?;
        runner
            .run(
                &ssh::ssh(&ssh_target, argv, false)
                    .io(Io::Log(log.to_path_buf()))
                    .timeout(STEP),
            )
            .await
            .with_context(|| format!("on VM {vm}"))?;
    }
    Ok(())
}

/// `up --upgrade [TARGET]`: see the module's doc.
///
/// Errors: a target that is no running AI stack, a failed backup (nothing changed then), or a
/// failed upgrade (after the rollback, whose own failure it names).
pub async fn upgrade(printer: &Printer, settings: &Settings, options: &UpOptions) -> Result<()> {
    let target = super::resolve_app_target(printer, settings, options.app.as_deref()).await?;
    let before = target.dir.load()?;
    let Some(before) = before.filter(|s| s.ai_stack.is_some() && s.status == Status::Running)
    else {
        return Err(UserError::new(
            "`up --upgrade` takes a running AI stack, and this deployment is none",
            "`tfgrid-compose up` it first; `status` shows where it stands",
        )
        .into());
    };
    let app = target.load_app(printer, None)?;
    if app.manifest.ai_stack.is_none() {
        return Err(UserError::new(
            format!(
                "app `{}` has no `ai_stack:` section any more",
                app.manifest.name
            ),
            "an upgrade keeps the stack; `down` removes it",
        )
        .into());
    }
    let pattern_name = app.manifest.pattern.clone().unwrap_or_default();
    let pattern = target.patterns.find(&pattern_name)?;
    let from = if pattern.manifest.name != before.pattern.name {
        return Err(UserError::new(
            format!(
                "the app's pattern is now `{}`, the stack runs on `{}`",
                pattern.manifest.name, before.pattern.name
            ),
            "a stack moves to another pattern with `projects backup`, `down`, `up` and \
                `projects restore`",
        )
        .into());
    } else if pattern.manifest.version == before.pattern.version {
        Phase::Application
    } else {
        Phase::Platform
    };
    let to = app.manifest.version.clone().unwrap_or_default();
    let was = before.app.version.clone().unwrap_or_default();
    let stack = target.arg();
    let runner = Runner::real();
    let log_dir = target.dir.run_log_dir(crate::clock::now_unix(), "upgrade");
    target.dir.create_dir(&log_dir)?;
    let log = log_dir.join("upgrade.log");

    // A backup first, and a copy on each VM of what `up` replaces.
    let backup = target.dir.ai_stack_dir().join(format!(
        "upgrade-backup-{}.tar.gz",
        crate::clock::now_unix()
    ));
    let flags = super::ai::AgentFlags {
        url: None,
        token_file: None,
        stack: Some(stack.clone()),
    };
    let agent = super::ai::client(settings, &flags)?;
    let projects: Vec<String> = agent.list().await?.into_iter().map(|p| p.name).collect();
    super::backup::backup(printer, &agent, Some(&backup), false).await?;
    printer.status(
        "Upgrading",
        format!(
            "`{}` {was} to {to} (pattern `{}` {} to {}), from the {} phase",
            app.manifest.name,
            pattern.manifest.name,
            before.pattern.version,
            pattern.manifest.version,
            from.name()
        ),
    );
    let mut save = vec![
        "tar".to_string(),
        "-C".into(),
        "/".into(),
        "-cpf".into(),
        COPY.into(),
    ];
    save.extend(REPLACED.map(String::from));
    on_every_vm(&runner, &before, &save, &log)
        .await
        .context("cannot keep a copy of the stack's files on the VMs before the upgrade")?;

    let upgraded = async {
        let up_options = UpOptions {
            from: Some(from),
            ..options.clone()
        };
        super::up::up(printer, settings, Runner::real(), &up_options).await?;
        let after = target.load()?;
        until_healthy(settings, &runner, &after, &app).await
    }
    .await;
    let Err(cause) = upgraded else {
        printer.status(
            "Upgraded",
            format!("`{}` to {to}, healthy", app.manifest.name),
        );
        return Ok(());
    };

    // The way back: each VM's copy, the old setup hook, the old records; then the projects.
    printer.warn(format!(
        "the upgrade failed: {cause:#}; rolling back to {was}"
    ));
    let back = async {
        let mut clear = vec!["rm".to_string(), "-rf".into()];
        clear.extend(REPLACED.map(|p| format!("/{p}")));
        on_every_vm(&runner, &before, &clear, &log).await?;
        let restore = ["tar", "-C", "/", "-xpf", COPY].map(String::from);
        on_every_vm(&runner, &before, &restore, &log).await?;
        if let Some(hook) = app.hooks()?.into_iter().find(|h| h.kind == HookKind::Setup) {
            let argv = crate::phase::application::hook_argv(&hook, &[], false);
            on_every_vm(&runner, &before, &argv, &log).await?;
        }
        let mut state = target.load()?;
        state.app = before.app.clone();
        state.pattern = before.pattern.clone();
        state.ai_stack.clone_from(&before.ai_stack);
        target.dir.save(&state)?;
        until_healthy(settings, &runner, &state, &app).await?;
        let now: Vec<String> = agent.list().await?.into_iter().map(|p| p.name).collect();
        if !projects.is_empty() && projects.iter().all(|p| !now.contains(p)) {
            super::backup::restore(printer, settings, &flags, &backup, false).await?;
        } else if let Some(gone) = projects.iter().find(|p| !now.contains(p)) {
            anyhow::bail!(
                "project `{gone}` is gone; restore it from `{}` on a stack without the others",
                backup.display()
            );
        }
        anyhow::Ok(())
    }
    .await;
    match back {
        Ok(()) => Err(UserError::new(
            format!(
                "the upgrade of `{}` to {to} failed and was rolled back to {was}: {cause:#}",
                app.manifest.name
            ),
            format!(
                "the projects are as they were (backup: `{}`); the old version's files on each VM \
                    were put back ({REMOTE_CONFIG}, {REMOTE_BIN}); see `{}`",
                backup.display(),
                log.display()
            ),
        )
        .into()),
        Err(err) => Err(UserError::new(
            format!(
                "the upgrade of `{}` to {to} failed ({cause:#}), and so did the rollback: {err:#}",
                app.manifest.name
            ),
            format!(
                "each VM keeps its copy in {COPY}; the projects' backup is `{}`; see `{}`",
                backup.display(),
                log.display()
            ),
        )
        .into()),
    }
}
