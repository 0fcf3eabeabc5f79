//! `logs --service NAME` and `logs --unit UNIT`: the journal of a systemd unit on a deployment's
//! VM, read over the deployment's ssh with `journalctl -u` as the VM's operator would. Which VM
//! runs an AI-stack service comes from the app's `ai_stack:` section
//! ([`crate::phase::ai_stack::vm_of`], which also places the units), a service's unit names from
//! the units themselves ([`crate::phase::ai_stack::unit_names`]). The remote command is quoted
//! once by `tools::ssh::remote_command`; with `--follow` it runs until Ctrl-C or SIGTERM, which
//! stop the local ssh (the runner passes SIGTERM on), and journalctl on the VM ends when its
//! output closes with the connection.

use anyhow::Result;
use clap::ValueEnum as _;

use crate::ai::units::Service;
use crate::error::UserError;
use crate::ops::inspect::{remote_exit, vm_target};
use crate::ops::resolve_target;
use crate::output::Printer;
use crate::phase::ai_stack::{unit_names, vm_of};
use crate::process::{Io, Runner};
use crate::settings::Settings;
use crate::state::DeploymentState;
use crate::tools::ssh;

/// Whose journal to read.
#[derive(Debug, Clone)]
pub enum Source {
    /// An AI-stack service by its name (`agent`), on the VM that runs it.
    Service(String),
    /// A unit of the app's own (`myapp.service`), on the VM `--vm` names (default: the primary).
    Unit { unit: String, vm: Option<String> },
}

/// What to show of the journal.
#[derive(Debug, Clone, Copy, Default)]
pub struct Show {
    /// `-n N`: the last N entries (journalctl's default: all, or 10 with `follow`).
    pub lines: Option<u32>,
    /// `-f`: keep printing new entries until interrupted.
    pub follow: bool,
    /// `-o json`: one JSON object per entry (journalctl's fields), one per line.
    pub json: bool,
}

/// The argv run on the VM: `journalctl -u UNIT… --no-pager [-n N] [-f] [-o json]`.
pub fn journalctl_argv(units: &[String], show: Show) -> Vec<String> {
    let mut argv = vec!["journalctl".to_string()];
    for unit in units {
        argv.extend(["-u".to_string(), unit.clone()]);
    }
    argv.push("--no-pager".into());
    if let Some(n) = show.lines {
        argv.extend(["-n".to_string(), n.to_string()]);
    }
    if show.follow {
        argv.push("-f".into());
    }
    if show.json {
        argv.extend(["-o".to_string(), "json".to_string()]);
    }
    argv
}

/// The services of the deployment's AI stack, with their VMs: `gateway (VM 0), …`.
fn placed(spec: &crate::stack::StackSpec) -> String {
    Service::ALL
        .iter()
        .filter_map(|s| vm_of(spec, *s).map(|vm| format!("{s} (VM {vm})")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The units and the VM (as `--vm` takes it) of service `name` of the deployment `state`.
fn service_units(
    printer: &Printer,
    target: &crate::ops::Target,
    state: &DeploymentState,
    name: &str,
) -> Result<(Vec<String>, String)> {
    let all: Vec<&str> = Service::ALL.iter().map(|s| s.name()).collect();
    let Ok(service) = Service::from_str(name, false) else {
        return Err(UserError::new(
            format!(
                "--service: `{}` is not a service of the AI stack; its services: {}",
                name.escape_default(),
                all.join(", ")
            ),
            "give one of those; `--unit UNIT` reads the journal of any other unit",
        )
        .into());
    };
    let app = target.load_app(printer, Some(state))?;
    let Some(spec) = &app.manifest.ai_stack else {
        return Err(UserError::new(
            format!(
                "--service: app `{}` has no AI stack (`ai_stack:`), so no service `{service}`",
                state.app.name
            ),
            "`tfgrid-compose logs --unit UNIT [--vm VM]` reads the journal of the app's own units",
        )
        .into());
    };
    let Some(vm) = vm_of(spec, service) else {
        return Err(UserError::new(
            format!(
                "--service: `{service}` does not run in this deployment; it runs: {}",
                placed(spec)
            ),
            "the local LLM runs only when `ai_stack.llm` names no provider",
        )
        .into());
    };
    Ok((unit_names(service), vm.to_string()))
}

/// `logs --service NAME` or `logs --unit UNIT [--vm VM]` of the deployment `app` names: runs
/// `journalctl` on the VM over ssh, its output on ours; its exit code becomes ours.
pub async fn logs(
    printer: &Printer,
    settings: &Settings,
    runner: &Runner,
    app: Option<&str>,
    source: &Source,
    show: Show,
) -> Result<()> {
    let target = resolve_target(settings, app)?;
    let state = target.load()?;
    let (units, vm) = match source {
        Source::Service(name) => {
            let (units, vm) = service_units(printer, &target, &state, name)?;
            (units, Some(vm))
        }
        Source::Unit { unit, vm } => (vec![unit.clone()], vm.clone()),
    };
    let ssh_target = vm_target(&state, vm.as_deref())?;
    let remote = journalctl_argv(&units, show);
    let cmd = ssh::ssh(&ssh_target, &remote, false).io(Io::Inherit);
    let out = runner.status(&cmd).await?;
    remote_exit(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_options_follow_the_units() {
        let units = vec!["tfgrid-ai-agent.service".to_string()];
        let show = Show {
            lines: Some(5),
            follow: true,
            json: true,
        };
        assert_eq!(
            journalctl_argv(&units, show),
            [
                "journalctl",
                "-u",
                "tfgrid-ai-agent.service",
                "--no-pager",
                "-n",
                "5",
                "-f",
                "-o",
                "json"
            ]
        );
    }
}
