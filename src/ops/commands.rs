//! App-defined commands: a verb the CLI does not know is looked up in the deployment's manifest
//! (`commands:`) and run on its primary VM over ssh. The script's words and the user's arguments
//! become one argv, quoted once by `tools::ssh::remote_command`; nothing passes through a local
//! shell. `commands` lists them.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;

use anyhow::Result;
use serde_json::json;

use crate::error::UserError;
use crate::manifest::{App, AppCommand, BUILTIN_VERBS};
use crate::ops::deployments::JSON_SCHEMA;
use crate::ops::inspect::{remote_exit, ssh_target};
use crate::ops::{Target, resolve_target};
use crate::output::Printer;
use crate::phase::application::REMOTE_DEPLOYMENT;
use crate::process::{Io, Runner};
use crate::settings::Settings;
use crate::state::DeploymentState;
use crate::tools::ssh;

fn load(printer: &Printer, settings: &Settings) -> Result<(Target, DeploymentState, App)> {
    let target = resolve_target(settings, None)?;
    let state = target.load()?;
    let app = App::load(&state.app.manifest)?;
    for warning in &app.warnings {
        printer.warn(warning);
    }
    Ok((target, state, app))
}

/// `commands`: the selected app's commands with their descriptions.
pub fn list(printer: &Printer, settings: &Settings, json: bool) -> Result<()> {
    let (_, state, app) = load(printer, settings)?;
    let commands = &app.manifest.commands;
    if json {
        let rows: Vec<_> = commands
            .iter()
            .map(|(name, c)| {
                json!({"name": name, "description": c.description, "args": c.args, "script": c.script, "allocate_tty": c.allocate_tty.unwrap_or(true), "save_to_context": c.save_to_context, "shadowed": BUILTIN_VERBS.contains(&name.as_str())})
            })
            .collect();
        printer.json_line(&json!({"schema": JSON_SCHEMA, "app": state.app.name, "env": state.env, "commands": rows}));
        return Ok(());
    }
    if commands.is_empty() {
        printer.status(
            "Empty",
            format!("app `{}` declares no commands", state.app.name),
        );
        return Ok(());
    }
    let usage: Vec<String> = commands
        .iter()
        .map(|(name, c)| {
            format!("{name} {}", c.args.clone().unwrap_or_default())
                .trim_end()
                .to_string()
        })
        .collect();
    let width = usage.iter().map(String::len).max().unwrap_or(0);
    for ((name, c), usage) in commands.iter().zip(&usage) {
        let shadowed = if BUILTIN_VERBS.contains(&name.as_str()) {
            " (shadowed by the built-in command)"
        } else {
            ""
        };
        printer.data(
            format!(
                "{usage:<width$}  {}{shadowed}",
                c.description.clone().unwrap_or_default()
            )
            .trim_end(),
        );
    }
    Ok(())
}

/// The argv run on the VM: `env -C <app folder> APP_NAME=… [CONTEXT_KEY=…] <script words…> <args…>`.
pub fn command_argv(
    state: &DeploymentState,
    command: &AppCommand,
    context: &BTreeMap<String, String>,
    args: &[String],
) -> Vec<String> {
    let mut argv = vec!["env".to_string(), "-C".into(), REMOTE_DEPLOYMENT.into()];
    argv.push(format!("APP_NAME={}", state.app.name));
    argv.push(format!("DEPLOYMENT_ID={}", state.id));
    argv.push(format!("DEPLOYMENT_ENV={}", state.env));
    for (key, value) in context {
        argv.push(format!("{}={value}", key.to_ascii_uppercase()));
    }
    argv.extend(command.script.split_whitespace().map(String::from));
    argv.extend(args.iter().cloned());
    argv
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
    let (target, state, app) = load(printer, settings).map_err(|err| {
        err.context(UserError::new(
            format!("`{verb}` is not a tfgrid-compose command, and there is no deployment to look it up in"),
            "run `tfgrid-compose --help` for the built-in commands; app commands need a deployment (`tfgrid-compose select`)",
        ))
    })?;
    let Some(command) = app.manifest.commands.get(verb) else {
        let known: Vec<&str> = app.manifest.commands.keys().map(String::as_str).collect();
        return Err(UserError::new(
            format!(
                "`{verb}` is neither a tfgrid-compose command nor a command of app `{}`",
                state.app.name
            ),
            if known.is_empty() {
                "run `tfgrid-compose --help`".to_string()
            } else {
                format!(
                    "app commands: {} (`tfgrid-compose commands` describes them)",
                    known.join(", ")
                )
            },
        )
        .into());
    };
    let context = target.dir.load_context()?;
    let remote = command_argv(&state, command, &context, args);
    let tty = command.allocate_tty.unwrap_or(true)
        && std::io::stdin().is_terminal()
        && command.save_to_context.is_none();
    let io = if command.save_to_context.is_some() {
        Io::Stdout
    } else {
        Io::Inherit
    };
    let cmd = ssh::ssh(&ssh_target(&state)?, &remote, tty).io(io);
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
        let argv = super::command_argv(&state, &command, &context, &args);
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
