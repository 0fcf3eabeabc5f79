//! App-defined commands: a verb the CLI does not know is looked up in the deployment's manifest
//! (`commands:`), then in its pattern's (`commands:` of a pattern written for the bash tool), and
//! run on its primary VM over ssh. The script's words and the user's arguments become one argv,
//! quoted once by `tools::ssh::remote_command`; nothing passes through a local shell. `logs`,
//! `status` and `address` run the app's or pattern's command of that name when there is one
//! ([`run_instead`]); `--builtin` (or `--json`) shows tfgrid-compose's own. `commands` lists them.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;

use anyhow::Result;
use serde_json::json;

use crate::app_folder::REMOTE_DEPLOYMENT;
use crate::error::UserError;
use crate::manifest::{App, AppCommand, BUILTIN_VERBS, OVERRIDABLE_VERBS};
use crate::ops::deployments::JSON_SCHEMA;
use crate::ops::inspect::{remote_exit, ssh_target};
use crate::ops::{Target, resolve_target};
use crate::output::Printer;
use crate::pattern::Pattern;
use crate::pattern::compat::REMOTE_SCRIPTS;
use crate::process::{Io, Runner};
use crate::settings::Settings;
use crate::state::DeploymentState;
use crate::tools::ssh;

/// Where a command comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    App,
    Pattern,
}

/// A command a deployment has: its declaration, and what runs on the VM, from which folder.
#[derive(Debug, Clone)]
pub struct Defined {
    pub source: Source,
    pub command: AppCommand,
    /// The program and its fixed arguments on the VM.
    pub words: Vec<String>,
    /// The folder it runs in on the VM.
    pub cwd: &'static str,
}

/// The deployment's commands: the app's, then its pattern's of other names (a pattern script
/// `scripts/x.sh` runs as `/tmp/app-pattern/x.sh`, through its `#!` interpreter when it lacks
/// the execute bit). The pattern is the one recorded in `state.yaml`, else found by name; one
/// that cannot be loaded adds nothing.
pub fn defined(
    settings: &Settings,
    app: &App,
    state: &DeploymentState,
) -> BTreeMap<String, Defined> {
    let mut all: BTreeMap<String, Defined> = app
        .manifest
        .commands
        .iter()
        .map(|(name, command)| {
            let defined = Defined {
                source: Source::App,
                command: command.clone(),
                words: command
                    .script
                    .split_whitespace()
                    .map(String::from)
                    .collect(),
                cwd: REMOTE_DEPLOYMENT,
            };
            (name.clone(), defined)
        })
        .collect();
    let pattern = Pattern::load(&state.pattern.dir)
        .ok()
        .or_else(|| crate::pattern::find(settings, &app.dir, &state.pattern.name).ok());
    for (name, command) in pattern.iter().flat_map(|p| &p.manifest.commands.0) {
        let Some(pattern) = &pattern else { break };
        let script = command.script.trim();
        let local = pattern.dir.join(script);
        let inside = std::path::Path::new(script)
            .strip_prefix("scripts")
            .unwrap_or(std::path::Path::new(script));
        let mut words = if crate::manifest::is_executable(&local) {
            Vec::new()
        } else {
            crate::manifest::shebang(&local)
        };
        words.push(format!("{REMOTE_SCRIPTS}/{}", inside.display()));
        all.entry(name.clone()).or_insert(Defined {
            source: Source::Pattern,
            command: command.clone(),
            words,
            cwd: REMOTE_SCRIPTS,
        });
    }
    all
}

fn load(
    printer: &Printer,
    settings: &Settings,
    app: Option<&str>,
) -> Result<(Target, DeploymentState, App)> {
    let target = resolve_target(settings, app)?;
    let state = target.load()?;
    let app = target.load_app(printer, Some(&state))?;
    Ok((target, state, app))
}

/// What a command with this name does next to the built-in verbs.
fn builtin_relation(name: &str) -> (bool, bool) {
    let builtin = BUILTIN_VERBS.contains(&name);
    let replaces = builtin && OVERRIDABLE_VERBS.contains(&name);
    (builtin && !replaces, replaces)
}

/// `commands`: the selected deployment's commands (the app's and its pattern's) with their
/// descriptions.
pub fn list(printer: &Printer, settings: &Settings, json: bool) -> Result<()> {
    let (_, state, app) = load(printer, settings, None)?;
    let commands = defined(settings, &app, &state);
    if json {
        let rows: Vec<_> = commands
            .iter()
            .map(|(name, d)| {
                let c = &d.command;
                let (shadowed, replaces) = builtin_relation(name);
                json!({"name": name, "source": d.source, "description": c.description, "args": c.args, "script": c.script, "allocate_tty": c.allocate_tty.unwrap_or(true), "save_to_context": c.save_to_context, "shadowed": shadowed, "replaces_builtin": replaces})
            })
            .collect();
        printer.json_line(&json!({"schema": JSON_SCHEMA, "app": state.app.name, "env": state.env, "commands": rows}));
        return Ok(());
    }
    if commands.is_empty() {
        printer.status(
            "Empty",
            format!(
                "app `{}` and pattern `{}` declare no commands",
                state.app.name, state.pattern.name
            ),
        );
        return Ok(());
    }
    let usage: Vec<String> = commands
        .iter()
        .map(|(name, d)| {
            format!("{name} {}", d.command.args.clone().unwrap_or_default())
                .trim_end()
                .to_string()
        })
        .collect();
    let width = usage.iter().map(String::len).max().unwrap_or(0);
    for ((name, d), usage) in commands.iter().zip(&usage) {
        let note = match builtin_relation(name) {
            (true, _) => " (shadowed by the built-in command)".to_string(),
            (_, true) => format!(
                " (runs for `tfgrid-compose {name}`; `{name} --builtin` shows the built-in)"
            ),
            _ => String::new(),
        };
        let from = if d.source == Source::Pattern {
            format!(" [pattern {}]", state.pattern.name)
        } else {
            String::new()
        };
        printer.data(
            format!(
                "{usage:<width$}  {}{from}{note}",
                d.command.description.clone().unwrap_or_default()
            )
            .trim_end(),
        );
    }
    Ok(())
}

/// The argv run on the VM: `env -C <folder> APP_NAME=… [CONTEXT_KEY=…] <words…> <args…>`.
pub fn command_argv(
    state: &DeploymentState,
    cwd: &str,
    words: &[String],
    context: &BTreeMap<String, String>,
    args: &[String],
) -> Vec<String> {
    let vars = [
        ("APP_NAME".to_string(), state.app.name.clone()),
        ("DEPLOYMENT_ID".into(), state.id.clone()),
        ("DEPLOYMENT_ENV".into(), state.env.clone()),
    ];
    let context = context
        .iter()
        .map(|(key, value)| (key.to_ascii_uppercase(), value.clone()));
    let program = words.iter().chain(args).cloned();
    crate::tools::remote_env::in_dir(cwd, vars.into_iter().chain(context), program)
}

/// For `logs`, `status` and `address` ([`OVERRIDABLE_VERBS`]): runs the app's or pattern's
/// command of that name on the deployment `app` names, when it has one, and says so (`true`).
/// `false` with `builtin` (`--builtin`, `--json`), when there is none, or when the deployment's
/// manifest cannot be loaded: the built-in runs then, as it reads `state.yaml` only.
pub async fn run_instead(
    printer: &Printer,
    settings: &Settings,
    runner: &Runner,
    verb: &str,
    app: Option<&str>,
    builtin: bool,
    args: &[String],
) -> Result<bool> {
    if builtin {
        return Ok(false);
    }
    let Ok((target, state, app)) = load(printer, settings, app) else {
        return Ok(false);
    };
    let mut commands = defined(settings, &app, &state);
    let Some(command) = commands.remove(verb) else {
        return Ok(false);
    };
    execute(printer, runner, &target, &state, &command, args).await?;
    Ok(true)
}

/// `status` and `address`: the app's or pattern's own command of that name when it has one
/// (unless `builtin`, which `--json` implies), else the built-in view.
pub async fn view(
    printer: &Printer,
    settings: &Settings,
    verb: &str,
    target: Option<&str>,
    builtin: bool,
    json: bool,
) -> Result<()> {
    let runner = Runner::real();
    let builtin = builtin || json;
    if run_instead(printer, settings, &runner, verb, target, builtin, &[]).await? {
        return Ok(());
    }
    if verb == "status" {
        crate::ops::inspect::status(printer, settings, target, json)
    } else {
        crate::ops::inspect::address(printer, settings, target, json)
    }
}

/// `logs`: the app's or pattern's own `logs` command with `words` as its arguments when it has
/// one (unless `builtin`), else the log of the phase or log `words` names, or the list of logs.
pub async fn logs(
    printer: &Printer,
    settings: &Settings,
    target: Option<&str>,
    builtin: bool,
    words: &[String],
) -> Result<()> {
    let runner = Runner::real();
    if run_instead(printer, settings, &runner, "logs", target, builtin, words).await? {
        return Ok(());
    }
    if words.len() > 1 {
        return Err(UserError::new(
            "`logs` takes one phase or log name",
            "run `tfgrid-compose logs` to list the logs",
        )
        .into());
    }
    crate::ops::inspect::logs(printer, settings, target, words.first().map(String::as_str))
}

/// Runs an app command; its exit code becomes ours.
pub async fn run(
    printer: &Printer,
    settings: &Settings,
    runner: &Runner,
    argv: &[String],
) -> Result<()> {
    let Some((verb, args)) = argv.split_first() else {
        return Err(UserError::new("no command given", "run `tfgrid-compose --help`").into());
    };
    let (target, state, app) =
        load(printer, settings, None).map_err(|err| {
            err.context(UserError::new(
            format!("`{verb}` is not a tfgrid-compose command, and there is no deployment to look \
                it up in"),
            "run `tfgrid-compose --help` for the built-in commands; app commands need a deployment \
                (`tfgrid-compose select`)",
        ))
        })?;
    let mut commands = defined(settings, &app, &state);
    let Some(command) = commands.remove(verb) else {
        let known: Vec<&str> = commands.keys().map(String::as_str).collect();
        return Err(UserError::new(
            format!(
                "`{verb}` is neither a tfgrid-compose command nor a command of app `{}` or pattern \
                    `{}`",
                state.app.name, state.pattern.name
            ),
            if known.is_empty() {
                "run `tfgrid-compose --help`".to_string()
            } else {
                format!(
                    "the deployment's commands: {} (`tfgrid-compose commands` describes them)",
                    known.join(", ")
                )
            },
        )
        .into());
    };
    execute(printer, runner, &target, &state, &command, args).await
}

/// Runs a defined command on the primary VM; its exit code becomes ours. With
/// `save_to_context`, its output is saved for later commands of the deployment.
async fn execute(
    printer: &Printer,
    runner: &Runner,
    target: &Target,
    state: &DeploymentState,
    defined: &Defined,
    args: &[String],
) -> Result<()> {
    let command = &defined.command;
    let context = target.dir.load_context()?;
    let remote = command_argv(state, defined.cwd, &defined.words, &context, args);
    let tty = command.allocate_tty.unwrap_or(true)
        && std::io::stdin().is_terminal()
        && command.save_to_context.is_none();
    let io = if command.save_to_context.is_some() {
        Io::Stdout
    } else {
        Io::Inherit
    };
    let cmd = ssh::ssh(&ssh_target(state)?, &remote, tty).io(io);
    let out = runner.status(&cmd).await?;
    remote_exit(&out)?;
    if let Some(key) = &command.save_to_context {
        let value = out.stdout.trim();
        printer.data(value);
        if !value.is_empty() {
            let mut context = context;
            context.insert(key.clone(), value.to_string());
            target.dir.save_context(&context)?;
            printer.status(
                "Saved",
                format!(
                    "`{key}` for later commands of {}:{}",
                    state.app.name, state.env
                ),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::manifest::AppCommand;
    use crate::tools::ssh::remote_command;

    #[test]
    fn each_user_argument_stays_one_word() {
        let state: crate::state::DeploymentState =
            serde_yaml::from_str(include_str!("../../tests/fixtures/state-minimal.yaml")).unwrap();
        let command = AppCommand {
            script: "/opt/app/run.sh publish".into(),
            ..AppCommand::default()
        };
        let context = [("active_project".to_string(), "my site".to_string())].into();
        let args = vec!["a b".to_string(), "$(id); rm -rf /\n'x'".to_string()];
        let words: Vec<String> = command
            .script
            .split_whitespace()
            .map(String::from)
            .collect();
        let argv = super::command_argv(&state, "/tmp/app-deployment", &words, &context, &args);
        assert_eq!(
            &argv[argv.len() - 4..],
            ["/opt/app/run.sh", "publish", "a b", "$(id); rm -rf /\n'x'"]
        );
        assert!(argv.contains(&"ACTIVE_PROJECT=my site".to_string()));
        let line = remote_command(&argv);
        assert!(
            line.ends_with(
                r"'a b' '$(id); rm -rf /
'\''x'\'''"
            ),
            "{line}"
        );
    }
}
