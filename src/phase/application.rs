//! Application: the app's `deployment/`, `src/`, env file, `docker-compose.yaml`, `scripts/`,
//! `config/`, `templates/` and `artifacts/latest.tar.gz` uploaded where the bash tool put them,
//! its `environment:` values written to a private file on the VM, the pattern's `scripts/` (for
//! its commands) to `/tmp/app-pattern` on the primary VM, then the hooks `setup`, `configure`,
//! `healthcheck` run over ssh, each a file run as argv (through its `#!` interpreter when it is
//! not executable), with its own log and timeout; or, when the app has
//! `deployment/playbook.yml`, that playbook in place of `setup` and `configure`. Hooks that are
//! not declared are skipped.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result};

use crate::manifest::{HookHosts, ResolvedHook};
use crate::pattern::Pattern;
use crate::pattern::compat::REMOTE_SCRIPTS;
use crate::pattern::contract::Vm;
use crate::phase::Context;
use crate::process::Io;
use crate::tools::ssh;

use crate::app_folder::{self, Entry, Lands};
pub use crate::app_folder::{
    PLAYBOOK as APP_PLAYBOOK, REMOTE_DEPLOYMENT, REMOTE_ENV_SCRIPT, REMOTE_SOURCE,
};

/// A fixed script (no user text): reads the env script named by `$1`, then runs the rest.
const WITH_ENV: &str = ". \"$1\" && shift && exec \"$@\"";

/// `env -C /tmp/app-deployment KEY=VALUE… /tmp/app-deployment/<hook>`: no shell string. With
/// `with_env`, behind `sh -c WITH_ENV sh REMOTE_ENV_SCRIPT`, which adds the app's
/// `environment:` values.
pub fn hook_argv(hook: &ResolvedHook, env: &[(String, String)], with_env: bool) -> Vec<String> {
    let mut argv = Vec::new();
    if with_env {
        argv.extend(["sh", "-c", WITH_ENV, "sh", REMOTE_ENV_SCRIPT].map(String::from));
    }
    let program = hook.interpreter.iter().cloned();
    let program = program.chain([format!("{REMOTE_DEPLOYMENT}/{}", hook.relative)]);
    argv.extend(crate::tools::remote_env::in_dir(
        REMOTE_DEPLOYMENT,
        env.iter().cloned(),
        program,
    ));
    argv
}

/// The variables a hook gets on VM `index` (`vm`) of the deployment `deployment_id`: the app's
/// name and version, the deployment's and the VM's. `health` runs the `healthcheck` hook with
/// them too.
pub fn hook_env(
    app: &crate::manifest::AppManifest,
    deployment_id: &str,
    outputs: &crate::pattern::contract::PatternOutputs,
    vm: &Vm,
    index: usize,
) -> Vec<(String, String)> {
    vec![
        ("APP_NAME".into(), app.name.clone()),
        (
            "APP_VERSION".into(),
            app.version.clone().unwrap_or_default(),
        ),
        ("DEPLOYMENT_ID".into(), deployment_id.to_string()),
        ("DEPLOYMENT_NAME".into(), outputs.deployment_name.clone()),
        ("PRIMARY_IP".into(), outputs.primary_ip.clone()),
        ("VM_NAME".into(), vm.name.clone()),
        ("VM_ROLE".into(), vm.role.clone()),
        ("VM_INDEX".into(), index.to_string()),
        ("VM_IP".into(), vm.address.clone()),
        (
            "SECONDARY_IPS".into(),
            outputs
                .secondary_ips
                .iter()
                .map(|s| s.ip.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        ),
        ("PRIVATE_IPS".into(), outputs.private_ips.join(" ")),
    ]
}

/// Whether the app's playbook ([`APP_PLAYBOOK`]) takes the place of this hook (`setup` and
/// `configure`; the `healthcheck` hook still runs), as the bash tool did.
pub fn replaced_by_playbook(kind: crate::manifest::HookKind) -> bool {
    kind != crate::manifest::HookKind::Healthcheck
}

/// `ansible-playbook` on the app's playbook with the platform phase's inventory, `ansible.cfg`
/// and extra vars; the app's `environment:` values are in its environment (for
/// `lookup('env', NAME)`), never in its argv.
async fn run_playbook(ctx: &mut Context, playbook: &std::path::Path) -> Result<()> {
    let log = ctx.log("playbook");
    ctx.printer.status(
        "Running",
        format!("playbook `deployment/{APP_PLAYBOOK}` (ansible-playbook)"),
    );
    let _spinner = ctx.printer.spinner("playbook", Some(&log));
    // The pattern's group variables, beside the inventory, where ansible looks for them for any
    // playbook (the pattern's own are found beside its site.yml).
    let pattern_vars = ctx.pattern.dir.join("platform/group_vars");
    for entry in std::fs::read_dir(&pattern_vars)
        .into_iter()
        .flatten()
        .flatten()
    {
        if entry.path().is_file() {
            let text = std::fs::read(entry.path())?;
            let dest = ctx.dir.group_vars_dir();
            ctx.dir.create_dir(&dest)?;
            ctx.dir.write(&dest.join(entry.file_name()), &text, 0o600)?;
        }
    }
    let mut cmd = crate::tools::ansible::playbook(
        &ctx.dir.inventory(),
        &ctx.dir.extra_vars(),
        playbook,
        &ctx.dir.ansible_cfg(),
        &ctx.ssh_target(&ctx.outputs()?.primary_ip),
        &log,
        Duration::from_secs(3600),
    );
    for (key, value) in &ctx.environment {
        cmd = cmd.secret_env(key, value);
    }
    ctx.runner
        .run(&cmd)
        .await
        .with_context(|| format!("the app's playbook `deployment/{APP_PLAYBOOK}` failed"))?;
    Ok(())
}

/// Whether the application phase has anything to upload and run: hooks, an entry of the app
/// folder that gives it work ([`app_folder::ENTRIES`]: `deployment/` or `src/`), or the
/// pattern's `scripts/` for its commands. The one answer that validation (which then needs
/// `scp`) and the phase (which otherwise skips) share.
pub fn has_work(app_dir: &Path, pattern: &Pattern, has_hooks: bool) -> bool {
    has_hooks || app_folder::gives_work(app_dir) || has_pattern_commands(pattern)
}

/// A pattern's commands need its `scripts/` on the primary VM.
fn has_pattern_commands(pattern: &Pattern) -> bool {
    !pattern.manifest.commands.0.is_empty() && pattern.dir.join("scripts").is_dir()
}

/// Uploads the app to `vm` (`primary`: the first VM, which also gets the pattern's `scripts/`):
/// its folder's entries present ([`app_folder::ENTRIES`]), its env file and `environment:`
/// values, after clearing what an earlier run left there.
async fn upload(ctx: &Context, vm: &Vm, primary: bool, log: &Path) -> Result<()> {
    let entries = app_folder::present(&ctx.app.dir);
    let env_file = ctx.app.env_file();
    let pattern_scripts = ctx.pattern.dir.join("scripts");
    let has_commands = has_pattern_commands(&ctx.pattern);
    ctx.printer.status(
        "Uploading",
        format!("app `{}` to {}", ctx.app.manifest.name, vm.address),
    );
    let target = ctx.ssh_target(&vm.address);
    let quick = Duration::from_secs(120);
    let clean = ssh::ssh(
        &target,
        &[
            "rm",
            "-rf",
            REMOTE_DEPLOYMENT,
            REMOTE_SOURCE,
            REMOTE_SCRIPTS,
        ],
        false,
    )
    .io(Io::Log(log.to_path_buf()))
    .timeout(quick);
    ctx.runner
        .run(&clean)
        .await
        .context("failed to clear the app folders on the VM")?;
    // The app's folders, each whole to its own place.
    for entry in &entries {
        let Lands::Folder(remote) = entry.lands else {
            continue;
        };
        let local = ctx.app.dir.join(entry.path);
        ctx.runner
            .run(&ssh::upload(&target, &local, remote, log, quick))
            .await
            .with_context(|| format!("failed to upload `{}/`", entry.path))?;
    }
    // the pattern's commands run on the primary VM (ops::commands)
    if has_commands && primary {
        ctx.runner
            .run(&ssh::upload(
                &target,
                &pattern_scripts,
                REMOTE_SCRIPTS,
                log,
                quick,
            ))
            .await
            .context("failed to upload the pattern's `scripts/`")?;
    }
    // What the bash tool also put in /tmp/app-source/ and its apps' hooks copy from there
    // (tfgrid-compose-bash.md §4.7): these files and folders, and the release artifact.
    let beside: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.lands == Lands::BesideSource)
        .collect();
    let files: Vec<(&Entry, &str)> = entries
        .iter()
        .filter_map(|e| match e.lands {
            Lands::File(remote) => Some((e, remote)),
            _ => None,
        })
        .collect();
    let env_file = env_file.as_ref().filter(|p| p.is_file());
    let has_source = entries.iter().any(|e| e.path == app_folder::SOURCE);
    if (!beside.is_empty() || !files.is_empty() || env_file.is_some()) && !has_source {
        let mkdir = ssh::ssh(&target, &["mkdir", "-p", REMOTE_SOURCE], false)
            .io(Io::Log(log.to_path_buf()))
            .timeout(quick);
        ctx.runner.run(&mkdir).await?;
    }
    if !beside.is_empty() {
        let sources: Vec<std::path::PathBuf> =
            beside.iter().map(|e| ctx.app.dir.join(e.path)).collect();
        let sources: Vec<&Path> = sources.iter().map(std::path::PathBuf::as_path).collect();
        let names: Vec<&str> = beside.iter().map(|e| e.path).collect();
        ctx.runner
            .run(&ssh::upload_many(
                &target,
                &sources,
                &format!("{REMOTE_SOURCE}/"),
                log,
                quick,
            ))
            .await
            .with_context(|| format!("failed to upload the app's {}", names.join(", ")))?;
    }
    for (entry, remote) in files {
        let local = ctx.app.dir.join(entry.path);
        ctx.runner
            .run(&ssh::upload(&target, &local, remote, log, quick))
            .await
            .with_context(|| format!("failed to upload `{}`", entry.path))?;
    }
    if let Some(env_file) = env_file {
        ctx.runner
            .run(&ssh::upload(
                &target,
                env_file,
                app_folder::REMOTE_ENV_FILE,
                log,
                quick,
            ))
            .await
            .context("failed to upload the env file")?;
    }
    if !ctx.environment.is_empty() {
        // umask first: the file is private from its first byte.
        let write = [
            "sh",
            "-c",
            "umask 077 && mkdir -p \"${1%/*}\" && cat > \"$1\"",
            "sh",
            REMOTE_ENV_SCRIPT,
        ];
        let cmd = ssh::ssh(&target, &write, false)
            .io(Io::Log(log.to_path_buf()))
            .timeout(quick)
            .secret_input(crate::app_env::env_script(&ctx.environment));
        ctx.runner
            .run(&cmd)
            .await
            .context("failed to write the app's environment on the VM")?;
    }
    Ok(())
}

pub async fn run(ctx: &mut Context) -> Result<()> {
    let vms = ctx.outputs()?.vms();
    if !has_work(&ctx.app.dir, &ctx.pattern, !ctx.hooks.is_empty()) {
        ctx.printer.status(
            "Skipping",
            "application: no hooks, no `deployment/`, no `src/` and no pattern commands",
        );
        return Ok(());
    }
    let everywhere = ctx.hooks.iter().any(|h| h.hosts == HookHosts::All);
    let targets: Vec<(usize, Vm)> = vms
        .into_iter()
        .enumerate()
        .filter(|(i, _)| everywhere || *i == 0)
        .collect();
    let log = ctx.log("application");
    for (index, vm) in &targets {
        upload(ctx, vm, *index == 0, &log).await?;
    }
    if let Some(stack) = ctx.app.manifest.ai_stack.clone() {
        crate::phase::ai_stack::deploy(ctx, &stack).await?;
    }
    let mut hooks = ctx.hooks.clone();
    let playbook = app_folder::in_deployment(&ctx.app.dir, APP_PLAYBOOK);
    if playbook.is_file() {
        run_playbook(ctx, &playbook).await?;
        hooks.retain(|h| !replaced_by_playbook(h.kind));
    }
    for hook in &hooks {
        for (index, vm) in &targets {
            if hook.hosts == HookHosts::Primary && *index != 0 {
                continue;
            }
            let name = hook.kind.name();
            let hook_log = if targets.len() > 1 {
                ctx.log(&format!("hook-{name}-{}", vm.name))
            } else {
                ctx.log(&format!("hook-{name}"))
            };
            let verb = if name == "healthcheck" {
                "Verifying"
            } else {
                "Running"
            };
            ctx.printer.status(
                verb,
                format!("hook `deployment/{}` on {}", hook.relative, vm.address),
            );
            let _spinner = ctx.printer.spinner(name, Some(&hook_log));
            let with_env = !ctx.environment.is_empty();
            let env = hook_env(&ctx.app.manifest, &ctx.state.id, ctx.outputs()?, vm, *index);
            let argv = hook_argv(hook, &env, with_env);
            let cmd = ssh::ssh(&ctx.ssh_target(&vm.address), &argv, false)
                .io(Io::Log(hook_log.clone()))
                .timeout(Duration::from_secs(hook.timeout_secs));
            if let Err(err) = ctx.runner.run(&cmd).await {
                if hook.optional {
                    ctx.printer.warn(format!(
                        "optional hook `{name}` failed on {} (see `{}`)",
                        vm.address,
                        hook_log.display()
                    ));
                    continue;
                }
                return Err(err).with_context(|| format!("hook `{name}` failed on {}", vm.address));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::app_folder;
    use crate::manifest::{HookHosts, HookKind, ResolvedHook};
    use crate::pattern::Pattern;
    use crate::tools::ssh::remote_command;

    /// An app with neither hooks nor `deployment/` nor `src/` still has work (and so needs `scp`)
    /// on a pattern with commands, whose `scripts/` go to the primary VM; on one without, none.
    #[test]
    fn pattern_commands_alone_are_work_for_the_application_phase() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let bare = tempfile::tempdir().unwrap();
        let with_commands = Pattern::load(&root.join("tests/fixtures/patterns/bash-vm")).unwrap();
        assert!(!with_commands.manifest.commands.0.is_empty());
        assert!(super::has_work(bare.path(), &with_commands, false));
        let without = Pattern::load(&root.join("patterns/local")).unwrap();
        assert!(!super::has_work(bare.path(), &without, false));
        assert!(super::has_work(bare.path(), &without, true));
        std::fs::create_dir(bare.path().join("src")).unwrap();
        assert!(super::has_work(bare.path(), &without, false));
    }

    /// Validation (`has_work`, which decides whether `up` needs `scp`) and the phase (which
    /// uploads the entries [`app_folder::present`] finds) read one table: an app with only one
    /// entry has exactly that entry to upload, and needs the phase exactly when the entry gives
    /// work; an empty app has neither.
    #[test]
    fn validation_and_the_phase_agree_on_each_app_folder_entry() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let without = Pattern::load(&root.join("patterns/local")).unwrap();
        for entry in app_folder::ENTRIES {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(entry.path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            match entry.lands {
                app_folder::Lands::Folder(_) => std::fs::create_dir(&path).unwrap(),
                _ => std::fs::write(&path, "x").unwrap(),
            }
            assert_eq!(app_folder::present(dir.path()), [entry], "{}", entry.path);
            assert_eq!(
                super::has_work(dir.path(), &without, false),
                entry.gives_work,
                "{}",
                entry.path
            );
        }
        let empty = tempfile::tempdir().unwrap();
        assert!(app_folder::present(empty.path()).is_empty());
        assert!(!super::has_work(empty.path(), &without, false));
    }

    #[test]
    fn hooks_run_as_argv_with_quoted_env() {
        let hook = ResolvedHook {
            kind: HookKind::Setup,
            relative: "setup.sh".into(),
            optional: false,
            timeout_secs: 5,
            hosts: HookHosts::Primary,
            interpreter: Vec::new(),
        };
        let argv = super::hook_argv(
            &hook,
            &[("APP_NAME".into(), "it's; rm -rf /".into())],
            false,
        );
        assert_eq!(
            argv,
            [
                "env",
                "-C",
                "/tmp/app-deployment",
                "APP_NAME=it's; rm -rf /",
                "/tmp/app-deployment/setup.sh"
            ]
        );
        assert_eq!(
            remote_command(&argv),
            r"'env' '-C' '/tmp/app-deployment' 'APP_NAME=it'\''s; rm -rf /' '/tmp/app-deployment/setup.sh'"
        );
        let wrapped = super::hook_argv(&hook, &[], true);
        assert_eq!(
            wrapped[..5],
            ["sh", "-c", super::WITH_ENV, "sh", super::REMOTE_ENV_SCRIPT]
        );
    }

    /// The wrapper, run by a real `/bin/sh` as ssh would run it, exports the env script's values
    /// to the hook, quotes and all.
    #[test]
    fn the_env_wrapper_runs_under_a_real_shell() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("env");
        let value = "it's \"$(touch pwned)\" `id` \\ $HOME";
        std::fs::write(
            &script,
            crate::app_env::env_script(&[("V".into(), value.into())]),
        )
        .unwrap();
        let argv = [
            "sh",
            "-c",
            super::WITH_ENV,
            "sh",
            script.to_str().unwrap(),
            "printenv",
            "V",
        ];
        let line = remote_command(&argv);
        let out = crate::process::Runner::real();
        let cmd = crate::process::Cmd::new("sh")
            .args(["-c", &line])
            .cwd(dir.path())
            .io(crate::process::Io::Capture(dir.path().join("log")));
        let rt = tokio::runtime::Runtime::new().unwrap();
        let output = rt.block_on(out.run(&cmd)).unwrap();
        assert_eq!(output.stdout, format!("{value}\n"));
        assert!(!dir.path().join("pwned").exists());
    }
}
