//! Read-only commands: `status`, `address`, `ssh`, `exec`, `logs`. They read `state.yaml` only;
//! `ssh` and `exec` are the ones that touch the VM.

use std::io::IsTerminal as _;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use serde_json::json;

use crate::clock::{format_duration, format_utc, now_unix};
use crate::error::{ExternalExit, UserError};
use crate::ops::{Target, resolve_target};
use crate::output::Printer;
use crate::phase::Phase;
use crate::process::{Cmd, Io, Runner};
use crate::settings::Settings;
use crate::state::DeploymentState;
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

/// `logs [PHASE]`: the latest run's log of a phase, or the list of logs.
pub fn logs(
    printer: &Printer,
    settings: &Settings,
    app: Option<&str>,
    phase: Option<&str>,
) -> Result<()> {
    let (target, state) = load(settings, app)?;
    let Some(run) = state.runs.last() else {
        return Err(UserError::new(
            "no run has written logs yet",
            format!("run `tfgrid-compose up {}`", target.arg()),
        )
        .into());
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&run.log_dir)
        .with_context(|| format!("failed to read `{}`", run.log_dir.display()))?
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    match phase {
        None => {
            for file in files {
                printer.data(file.display().to_string());
            }
        }
        Some(name) => {
            let phase = Phase::parse(name).map(Phase::name).unwrap_or(name);
            let wanted: Vec<&PathBuf> = files
                .iter()
                .filter(|f| {
                    f.file_stem().is_some_and(|s| {
                        s.to_string_lossy() == phase
                            || s.to_string_lossy().starts_with(&format!("{phase}-"))
                    })
                })
                .collect();
            if wanted.is_empty() {
                Phase::parse(name)?;
                return Err(UserError::new(
                    format!("no `{name}` log in the latest run"),
                    "run `tfgrid-compose logs` to list the logs",
                )
                .into());
            }
            for file in wanted {
                printer.data(std::fs::read_to_string(file)?.trim_end());
            }
        }
    }
    Ok(())
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
