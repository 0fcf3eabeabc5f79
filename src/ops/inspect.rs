//! Read-only commands: `status`, `address`, `ssh`, `exec`, `logs`. They read `state.yaml` only;
//! `ssh` and `exec` are the ones that touch the VM.

use std::io::IsTerminal as _;
use std::path::Path;

use anyhow::{Context as _, Result};
use serde_json::json;

use crate::clock::{format_duration, format_utc, now_unix};
use crate::error::{ExternalExit, UserError};
use crate::ops::{Target, resolve_target};
use crate::output::Printer;
use crate::phase::Phase;
use crate::process::{Cmd, Io, Runner};
use crate::settings::Settings;
use crate::state::{DeploymentState, PhaseStatus};
use crate::tools::ssh::{self, SshTarget};

fn load(settings: &Settings, app: Option<&str>) -> Result<(Target, DeploymentState)> {
    let target = resolve_target(settings, app)?;
    let state = target.load()?;
    Ok((target, state))
}

pub fn status(printer: &Printer, settings: &Settings, app: Option<&str>, json: bool) -> Result<()> {
    let (target, state) = load(settings, app)?;
    // A `running` left by a run that is gone is not shown as running.
    let state = state.settled(target.dir.run_alive());
    if json {
        printer.json_line(&json!({"schema": 1, "deployment": state}));
        return Ok(());
    }
    let age = now_unix().saturating_sub(state.created_at);
    printer.data(format!("deployment  {}", state.id));
    printer.data(format!("env         {}", state.env));
    printer.data(format!(
        "app         {} {}",
        state.app.name,
        state.app.version.clone().unwrap_or_default()
    ));
    printer.data(format!(
        "pattern     {} {}",
        state.pattern.name, state.pattern.version
    ));
    printer.data(format!("status      {}", state.status.as_str()));
    printer.data(format!(
        "created     {} ({} ago)",
        format_utc(state.created_at),
        format_duration(std::time::Duration::from_secs(age))
    ));
    if let Some(outputs) = &state.outputs {
        // The folder the pattern says its VMs run in on this machine (`local` only).
        let pattern = target.patterns.find(&state.pattern.name).ok();
        let vm_folder = pattern.and_then(|p| Some(p.running_folder(&state.id)?.1));
        for (index, vm) in outputs.vms().iter().enumerate() {
            let power = vm_folder
                .as_deref()
                .and_then(|dir| local_vm_power(dir, index))
                .map(|p| format!(" {p}"))
                .unwrap_or_default();
            printer.data(format!(
                "vm          {:<10} {:<16} {}{power}",
                vm.name, vm.address, vm.role
            ));
        }
    }
    if let Some(net) = &state.network {
        printer.data(format!("wireguard   {}", net.interface));
    }
    printer.data("phases");
    for phase in Phase::ALL {
        let line = match state.record(phase) {
            Some(r) => format!(
                "  {:<15} {:<8} {}",
                phase.name(),
                serde_json::to_value(r.status)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default(),
                r.duration_ms
                    .map(|ms| format_duration(std::time::Duration::from_millis(ms)))
                    .unwrap_or_default()
            ),
            None => format!("  {:<15} pending", phase.name()),
        };
        printer.data(line.trim_end());
    }
    Ok(())
}

/// The power state of VM `index` of a `local`-pattern deployment whose VMs are in `dir`
/// (`<vm_root>/<id8>`), as its supervisor records it (patterns/local/infrastructure/vm.sh
/// `machine-run`: `vm-INDEX/power` holds `booting`, `up`, `rebooting` or `off`, and
/// `vm-INDEX/boots` counts its boots): `rebooting` from the moment systemd inside ended with a
/// reboot until the new boot has finished, `starting` during the first boot, `off`; `None` when
/// up, or without these files.
fn local_vm_power(dir: &std::path::Path, index: usize) -> Option<&'static str> {
    let dir = dir.join(format!("vm-{index}"));
    let power = std::fs::read_to_string(dir.join("power")).ok()?;
    let boots: u32 = std::fs::read_to_string(dir.join("boots"))
        .ok()
        .and_then(|b| b.trim().parse().ok())
        .unwrap_or(1);
    match power.trim() {
        "rebooting" => Some("rebooting"),
        "booting" if boots > 1 => Some("rebooting"),
        "booting" => Some("starting"),
        "off" => Some("off"),
        _ => None,
    }
}

pub fn address(
    printer: &Printer,
    settings: &Settings,
    app: Option<&str>,
    json: bool,
) -> Result<()> {
    let (target, state) = load(settings, app)?;
    let outputs = state.outputs.as_ref().ok_or_else(|| {
        UserError::new(
            "the deployment has no addresses yet",
            format!(
                "finish it with `tfgrid-compose up --resume {}`",
                target.arg()
            ),
        )
    })?;
    if json {
        printer.json_line(&json!({"schema": 1, "primary_ip": outputs.primary_ip, "primary_ip_type": outputs.primary_ip_type, "vms": outputs.vms().iter().map(|v| json!({"name": v.name, "ip": v.address, "role": v.role})).collect::<Vec<_>>(), "mycelium_ip": outputs.mycelium_ip}));
        return Ok(());
    }
    printer.data(&outputs.primary_ip);
    for vm in outputs.vms().iter().skip(1) {
        printer.data(format!("{} {} {}", vm.address, vm.name, vm.role));
    }
    Ok(())
}

pub fn ssh_target(state: &DeploymentState) -> Result<SshTarget> {
    let outputs = state.outputs.as_ref().context(
        "the deployment has no address yet; finish it with `tfgrid-compose up --resume`",
    )?;
    Ok(SshTarget {
        host: outputs.primary_ip.clone(),
        port: state.ssh.port,
        user: state.ssh.user.clone(),
        identity: state.ssh.identity.clone(),
        known_hosts: state.ssh.known_hosts.clone(),
        strict: true,
        control_dir: None,
    })
}

/// The ssh target of the deployment's VM `vm` names: an index (0 = primary), a name (`vm1`) or
/// an address of `address`'s list; `None` is the primary. Another is a [`UserError`] listing them.
pub fn vm_target(state: &DeploymentState, vm: Option<&str>) -> Result<SshTarget> {
    let mut target = ssh_target(state)?;
    if let Some(wanted) = vm {
        let vms = state.outputs.as_ref().map(|o| o.vms()).unwrap_or_default();
        let found = vms
            .iter()
            .enumerate()
            .find(|(i, v)| i.to_string() == wanted || v.name == wanted || v.address == wanted);
        let Some((_, found)) = found else {
            let list: Vec<String> = vms
                .iter()
                .enumerate()
                .map(|(i, v)| format!("{i} {} {}", v.name, v.address))
                .collect();
            return Err(UserError::new(
                format!(
                    "--vm: no VM `{}` in this deployment; it has: {}",
                    wanted.escape_default(),
                    list.join(", ")
                ),
                "give an index, a name or an address that `tfgrid-compose address` lists",
            )
            .into());
        };
        target.host = found.address.clone();
    }
    Ok(target)
}

/// `ssh [--vm VM] [-- CMD…]` and `exec [--vm VM] CMD…`: the remote exit code becomes ours. `vm`
/// is an index (0 = primary), a name (`vm1`) or an address of `address`'s list; another is a
/// [`UserError`] listing them.
pub async fn ssh(
    runner: &Runner,
    settings: &Settings,
    app: Option<&str>,
    vm: Option<&str>,
    command: &[String],
    tty: bool,
) -> Result<()> {
    let (_, state) = load(settings, app)?;
    let target = vm_target(&state, vm)?;
    let tty = tty && std::io::stdin().is_terminal();
    let cmd: Cmd = ssh::ssh(&target, command, tty && !command.is_empty()).io(Io::Inherit);
    let out = runner.status(&cmd).await?;
    remote_exit(&out)
}

/// A remote command's exit code as ours: 0 is success, any other code is passed through, and a
/// command stopped by a signal counts as 1.
pub fn remote_exit(out: &crate::process::Output) -> Result<()> {
    match out.code {
        Some(0) => Ok(()),
        Some(code) => Err(ExternalExit(code).into()),
        None => Err(ExternalExit(1).into()),
    }
}

/// `logs [NAME]`: the log files the journal records, each phase's from the latest run that
/// reached it (the one owner of which files a phase wrote): those of the phase `NAME`, or the log
/// `NAME` (`hook-setup`, and the same hook's per-VM `hook-setup-vm0`, …), or with no name the
/// list of them all. Several files are printed each under a `==> PATH <==` line, as `tail` does.
///
/// Errors: no phase has recorded a log; `NAME` a phase that has not run, is still running (its
/// files are recorded when it ends) or wrote no log; `NAME` neither a phase nor a recorded log;
/// a recorded file since removed.
pub fn logs(
    printer: &Printer,
    settings: &Settings,
    app: Option<&str>,
    name: Option<&str>,
) -> Result<()> {
    let (target, state) = load(settings, app)?;
    let recorded: Vec<(Phase, &Path)> = state
        .journal
        .iter()
        .flat_map(|r| r.logs.iter().map(move |log| (r.phase, log.as_path())))
        .collect();
    let list_hint = format!(
        "`tfgrid-compose logs --app {}` lists the logs the phases wrote",
        target.arg()
    );
    let Some(name) = name else {
        if recorded.is_empty() {
            return Err(UserError::new(
                format!("no phase of {} has recorded a log yet", state.label()),
                format!("run `tfgrid-compose up {}`", target.arg()),
            )
            .into());
        }
        // Each log with the phase that wrote it and the name `logs NAME` takes (its file's stem).
        let rows: Vec<Vec<String>> = recorded
            .iter()
            .map(|(phase, log)| {
                vec![
                    phase.name().to_string(),
                    log.file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    log.display().to_string(),
                ]
            })
            .collect();
        printer.data(crate::output::table(&["PHASE", "NAME", "FILE"], &rows).trim_end());
        return Ok(());
    };
    let wanted = match Phase::parse(name) {
        Ok(phase) => phase_logs(&state, &recorded, phase, list_hint)?,
        Err(unknown) => {
            let logs = named_logs(&state, &recorded, name);
            if logs.is_empty() {
                return Err(UserError::new(
                    format!(
                        "`{name}` is neither a phase nor a log a phase of {} wrote",
                        state.label()
                    ),
                    format!("{}; {list_hint}", unknown.hint.unwrap_or_default()),
                )
                .into());
            }
            logs
        }
    };
    for log in &wanted {
        if !log.is_file() {
            return Err(UserError::new(
                format!("the log `{}` is no longer there", log.display()),
                format!(
                    "a phase writes its logs again when it runs: `tfgrid-compose up --from PHASE {}`",
                    target.arg()
                ),
            )
            .into());
        }
        if wanted.len() > 1 {
            printer.data(format!("==> {} <==", log.display()));
        }
        let text = std::fs::read_to_string(log)
            .with_context(|| format!("failed to read the log `{}`", log.display()))?;
        printer.data(text.trim_end());
    }
    Ok(())
}

/// The files the journal records for `phase`; none is an error saying why (the phase has not
/// run, is running, or wrote none), with `list_hint` or where a running phase's files are.
fn phase_logs<'a>(
    state: &DeploymentState,
    recorded: &[(Phase, &'a Path)],
    phase: Phase,
    list_hint: String,
) -> Result<Vec<&'a Path>> {
    let logs: Vec<&Path> = recorded
        .iter()
        .filter(|(p, _)| *p == phase)
        .map(|(_, log)| *log)
        .collect();
    if !logs.is_empty() {
        return Ok(logs);
    }
    let (name, label) = (phase.name(), state.label());
    let (message, hint) = match state.record(phase).map(|r| r.status) {
        None => (
            format!("the `{name}` phase of {label} has not run"),
            list_hint,
        ),
        Some(PhaseStatus::Running) => (
            format!("the `{name}` phase of {label} is running; its logs are recorded when it ends"),
            state.runs.last().map_or(list_hint, |run| {
                format!("meanwhile its files are in `{}`", run.log_dir.display())
            }),
        ),
        Some(_) => (
            format!("the `{name}` phase of {label} wrote no log"),
            list_hint,
        ),
    };
    Err(UserError::new(message, hint).into())
}

/// The recorded files named `NAME.log`, or `NAME-VM.log` for a VM of the deployment (a hook
/// run on several VMs writes one each).
fn named_logs<'a>(
    state: &DeploymentState,
    recorded: &[(Phase, &'a Path)],
    name: &str,
) -> Vec<&'a Path> {
    let vms: Vec<String> = state
        .outputs
        .as_ref()
        .map(|o| o.vms().into_iter().map(|vm| vm.name).collect())
        .unwrap_or_default();
    let named = |log: &Path| {
        log.file_stem()
            .and_then(|s| s.to_str())
            .is_some_and(|stem| {
                stem == name
                    || stem
                        .strip_prefix(name)
                        .and_then(|rest| rest.strip_prefix('-'))
                        .is_some_and(|vm| vms.iter().any(|v| v == vm))
            })
    };
    recorded
        .iter()
        .map(|(_, log)| *log)
        .filter(|log| named(log))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::local_vm_power;

    #[test]
    fn a_local_vm_between_boots_is_rebooting() {
        let dir = tempfile::tempdir().unwrap();
        let vm = dir.path().join("vm-1");
        std::fs::create_dir(&vm).unwrap();
        let power = |power: &str, boots: &str| {
            std::fs::write(vm.join("power"), format!("{power}\n")).unwrap();
            std::fs::write(vm.join("boots"), format!("{boots}\n")).unwrap();
            local_vm_power(dir.path(), 1)
        };
        assert_eq!(power("booting", "1"), Some("starting"));
        assert_eq!(power("up", "1"), None);
        assert_eq!(power("rebooting", "1"), Some("rebooting"));
        assert_eq!(power("booting", "2"), Some("rebooting"));
        assert_eq!(power("up", "2"), None);
        assert_eq!(power("off", "2"), Some("off"));
        assert_eq!(local_vm_power(dir.path(), 0), None, "no such VM");
    }
}
