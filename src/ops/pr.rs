//! `pr`: one pull request's environment (`pr-N`) driven by the CI event: the event read and
//! decided by [`crate::ci_event`], then `up` (converging, so the same event twice is harmless) or
//! `down` of that environment under its lock, and a report: the URL, a markdown body for a PR
//! comment (stdout), or one JSON document (`--json`). Owns no deployment logic of its own.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

use crate::ci_event::{self, Action, Decision, PullRequest};
use crate::error::UserError;
use crate::ops::{down, resolve_app_target, take_lock, up};
use crate::output::Printer;
use crate::process::Runner;
use crate::settings::{Settings, Source};
use crate::state::{DeploymentState, Phase};

/// Flags of `pr`.
#[derive(Debug, Clone, Default)]
pub struct PrOptions {
    /// The app (as `up` takes it); default: this folder's.
    pub target: Option<String>,
    /// The event's name, instead of `GITHUB_EVENT_NAME`.
    pub event: Option<String>,
    /// The event's JSON payload, instead of the file at `GITHUB_EVENT_PATH`.
    pub payload: Option<PathBuf>,
}

/// How long `pr` waits for the environment's lock when `--lock-wait` (`lock_wait`) sets nothing:
/// another event of the same pull request is being served, and a grid `up` takes minutes.
pub const LOCK_WAIT: Duration = Duration::from_secs(30 * 60);

/// The first line of every comment body, by which a workflow finds its earlier comment to
/// replace (`<!-- tfgrid-compose pr-N -->`).
pub fn comment_marker(env: &str) -> String {
    format!("<!-- tfgrid-compose {env} -->")
}

/// What `pr` did, as `--json` prints it (docs/json-output.md, schema `pr`).
#[derive(Debug, Serialize)]
pub struct Report {
    pub schema: u32,
    pub event: String,
    /// `deploy`, `redeploy`, `destroy`; null when the event was ignored.
    pub action: Option<&'static str>,
    pub pull_request: Option<u64>,
    pub env: Option<String>,
    /// `deployed`, `redeployed`, `destroyed`, `absent` (nothing to destroy), `ignored`,
    /// `refused` (exit 2: the cap, bad input) or `failed`.
    pub outcome: &'static str,
    /// The app's `url:` on its primary address, else the primary address; null unless up.
    pub url: Option<String>,
    pub deployment_id: Option<String>,
    /// The one line that says what happened (the reason, or the error).
    pub message: String,
    /// The monthly cost line of the comment; null while none is known ([`cost_line`]).
    pub cost: Option<String>,
    /// The markdown body for a comment on the pull request; null when the event was ignored.
    pub comment: Option<String>,
}

/// `pr [TARGET]`: reads the event, acts on `pr-N`, prints the report. An ignored event is a
/// success that prints its reason; a refusal (the cap) or a failure prints the report too, then
/// returns the error (exit 2 or 1).
pub async fn pr(printer: &Printer, settings: &Settings, options: &PrOptions) -> Result<()> {
    let (name, path) = event_source(settings, options)?;
    let decision = ci_event::read(&name, &path)?;
    let (action, pull_request, trigger) = match decision {
        Decision::Ignore { reason, number } => {
            printer.status("Ignoring", &reason);
            print_report(printer, &Report::ignored(name, number, reason));
            return Ok(());
        }
        Decision::Act {
            action,
            pull_request,
            trigger,
        } => (action, pull_request, trigger),
    };
    let env = pull_request.env_name();
    let settings = environment_settings(settings, &env)?;
    printer.status(
        "Event",
        format!(
            "{trigger} on pull request #{}: {} `{env}`",
            pull_request.number,
            action.name()
        ),
    );
    let inner = printer.without_stdout();
    let result = match action {
        Action::Deploy | Action::Redeploy => {
            deploy(&inner, &settings, options, action).await.map(|()| {
                if action == Action::Deploy {
                    "deployed"
                } else {
                    "redeployed"
                }
            })
        }
        Action::Destroy => destroy(&inner, &settings, options).await,
    };
    let up = result.is_ok() && action != Action::Destroy;
    let dir = if up {
        resolve_app_target(&inner, &settings, options.target.as_deref())
            .await
            .ok()
            .map(|target| target.dir)
    } else {
        None
    };
    let state = dir.as_ref().and_then(|dir| dir.load().ok().flatten());
    let (outcome, message, hints) = outcome(&result, &env);
    let url = state.as_ref().and_then(url_of);
    let cost = match &dir {
        Some(dir) => cost_line(printer, &settings, dir).await,
        None => None,
    };
    let mut report = Report {
        schema: 1,
        event: name,
        action: Some(action.name()),
        pull_request: Some(pull_request.number),
        env: Some(env),
        outcome,
        url,
        deployment_id: state.as_ref().map(|s| s.id.clone()),
        message,
        cost,
        comment: None,
    };
    report.comment = Some(comment(&report, &pull_request, &trigger, &hints));
    if let Some(url) = &report.url {
        printer.status("Environment", format!("`{}` at {url}", env_of(&report)));
    }
    print_report(printer, &report);
    result.map(|_| ())
}

impl Report {
    fn ignored(event: String, number: Option<u64>, reason: String) -> Report {
        Report {
            schema: 1,
            event,
            action: None,
            pull_request: number,
            env: None,
            outcome: "ignored",
            url: None,
            deployment_id: None,
            message: reason,
            cost: None,
            comment: None,
        }
    }
}

/// The outcome's name, its one line and, for an error, its hints (secrets redacted).
fn outcome(result: &Result<&'static str>, env: &str) -> (&'static str, String, Vec<String>) {
    match result {
        Ok(outcome) => (outcome, done_message(outcome, env), Vec::new()),
        Err(err) => {
            let outcome = if crate::error::exit_code_for(err) == 2 {
                "refused"
            } else {
                "failed"
            };
            let message = crate::secrets::redact(&format!("{err:#}"));
            let hints = crate::error::hints_for_error(err)
                .iter()
                .map(|h| crate::secrets::redact(h))
                .collect();
            (
                outcome,
                message.lines().next().unwrap_or_default().to_string(),
                hints,
            )
        }
    }
}

fn env_of(report: &Report) -> &str {
    report.env.as_deref().unwrap_or_default()
}

/// The event's name and payload file: the flags, else GitHub Actions' variables.
fn event_source(settings: &Settings, options: &PrOptions) -> Result<(String, PathBuf)> {
    let name = options
        .event
        .clone()
        .or_else(|| settings.env.get(ci_event::EVENT_NAME_VAR).map(String::from));
    let path = options.payload.clone().or_else(|| {
        settings
            .env
            .get(ci_event::EVENT_PATH_VAR)
            .map(PathBuf::from)
    });
    match (name, path) {
        (Some(name), Some(path)) => Ok((name, path)),
        (name, _) => Err(UserError::new(
            format!(
                "no CI event: {} is not set",
                if name.is_none() {
                    ci_event::EVENT_NAME_VAR
                } else {
                    ci_event::EVENT_PATH_VAR
                }
            ),
            "run `pr` in a GitHub Actions workflow, or pass `--event NAME --payload FILE`",
        )
        .into()),
    }
}

/// The settings of the pull request's environment: `pr-N`, and a lock that is waited for. An
/// `--env` flag is refused (`TFGRID_COMPOSE_ENV` and the config's `env` give way silently: they
/// are meant for the other commands of a CI job).
fn environment_settings(settings: &Settings, env: &str) -> Result<Settings> {
    if matches!(settings.sources.get("env"), Some(Source::Flag(_))) {
        return Err(UserError::new(
            format!(
                "`pr` acts on the pull request's environment `{env}`, not on `--env {}`",
                settings.env_name
            ),
            "drop `--env`",
        )
        .into());
    }
    let mut settings = settings.clone();
    settings.env_name = env.to_string();
    settings
        .sources
        .insert("env", Source::Flag("pr (the pull request's number)".into()));
    if settings.lock_wait.is_none() {
        settings.lock_wait = Some(LOCK_WAIT);
    }
    Ok(settings)
}

/// `up` of the environment, converging under its lock: a new deployment, the rest of one that
/// stopped, or nothing (deploy); from infrastructure on, since a push may change anything the
/// manifest says (redeploy).
async fn deploy(
    printer: &Printer,
    settings: &Settings,
    options: &PrOptions,
    action: Action,
) -> Result<()> {
    let options = up::UpOptions {
        app: options.target.clone(),
        from: (action == Action::Redeploy).then_some(Phase::Infrastructure),
        converge: true,
        ..up::UpOptions::default()
    };
    up::up(printer, settings, Runner::real(), &options).await
}

/// `down` of the environment under its lock, taken here first, so that a deploy of the same
/// pull request that runs now finishes before; nothing to destroy is a success (`absent`).
async fn destroy(
    printer: &Printer,
    settings: &Settings,
    options: &PrOptions,
) -> Result<&'static str> {
    let target = resolve_app_target(printer, settings, options.target.as_deref()).await?;
    let dir = &target.dir;
    if !dir.root.exists() {
        printer.status(
            "Absent",
            format!("`{}`: nothing to destroy", settings.env_name),
        );
        return Ok("absent");
    }
    let lock = take_lock(
        printer,
        settings,
        dir,
        &format!("pr destroy {}", target.arg()),
    )
    .await?;
    if !dir.exists() {
        // A folder with nothing but the lock (one this wait made again after a `down`) goes.
        if std::fs::read_dir(&dir.root)
            .is_ok_and(|entries| entries.flatten().all(|e| e.file_name() == "lock"))
        {
            dir.remove()?;
        }
        drop(lock);
        printer.status(
            "Absent",
            format!("`{}`: nothing to destroy", settings.env_name),
        );
        return Ok("absent");
    }
    let down_options = down::DownOptions {
        app: options.target.clone(),
        yes: true,
        lock_held: true,
    };
    down::down(printer, settings, Runner::real(), &down_options).await?;
    drop(lock);
    Ok("destroyed")
}

fn done_message(outcome: &str, env: &str) -> String {
    match outcome {
        "deployed" | "redeployed" => format!("`{env}` is up"),
        "destroyed" => format!("`{env}` was destroyed"),
        _ => format!("`{env}` does not exist: nothing to destroy"),
    }
}

/// The app's `url:` on the primary address, else that address.
fn url_of(state: &DeploymentState) -> Option<String> {
    let ip = &state.outputs.as_ref()?.primary_ip;
    let template = crate::manifest::App::load(&state.app.manifest)
        .ok()
        .and_then(|app| app.manifest.url);
    Some(template.map_or_else(|| ip.clone(), |t| crate::phase::verify::app_url(&t, ip)))
}

/// The comment's cost line (`$X.XX/month (N TFT)`) for a deployment that is up, from what its
/// Terraform state holds at the network's figures ([`super::cost::deployment_estimate`]): the
/// one place where the cost of what runs enters the comment and the report. None when it holds
/// no contract; when the figures cannot be read, a warning and None (the environment is up all
/// the same).
pub async fn cost_line(
    printer: &Printer,
    settings: &Settings,
    dir: &crate::state::StateDir,
) -> Option<String> {
    match super::cost::deployment_estimate(settings, &dir.root).await {
        Ok(estimate) => estimate.map(|e| {
            format!(
                "${:.2}/month ({:.2} TFT), estimated by `tfgrid-compose cost`",
                e.usd_per_month, e.tft_per_month
            )
        }),
        Err(err) => {
            printer.warn(format!("the environment's cost is unknown: {err:#}"));
            None
        }
    }
}

/// The markdown body of the comment on the pull request.
fn comment(report: &Report, pull_request: &PullRequest, trigger: &str, hints: &[String]) -> String {
    let env = env_of(report);
    let mut lines = vec![comment_marker(env)];
    let head = match report.outcome {
        "deployed" | "redeployed" => format!("### Environment `{env}` is up"),
        "destroyed" => format!("### Environment `{env}` was destroyed"),
        "absent" => format!("### Environment `{env}`: nothing to destroy"),
        "refused" => format!("### Environment `{env}` was not deployed"),
        _ => format!("### Environment `{env}` failed"),
    };
    lines.push(head);
    lines.push(String::new());
    if let Some(url) = &report.url {
        lines.push(format!("- URL: {url}"));
    }
    if let Some(cost) = &report.cost {
        lines.push(format!("- Cost: {cost}"));
    }
    if let Some(id) = &report.deployment_id {
        lines.push(format!("- Deployment: `{id}`"));
    }
    if !matches!(
        report.outcome,
        "deployed" | "redeployed" | "destroyed" | "absent"
    ) {
        lines.push(format!("- Error: {}", report.message));
        for hint in hints {
            lines.push(format!("- Hint: {hint}"));
        }
    }
    let commit = pull_request
        .head_sha
        .as_deref()
        .map(|sha| format!(" at `{}`", &sha[..sha.len().min(8)]))
        .unwrap_or_default();
    lines.push(format!(
        "- Triggered by {trigger} on #{}{commit}",
        pull_request.number
    ));
    if pull_request.draft && report.outcome != "destroyed" {
        lines.push(
            "- This pull request is a draft: pushes do not redeploy it; comment `/redeploy`".into(),
        );
    }
    lines.join("\n") + "\n"
}

fn print_report(printer: &Printer, report: &Report) {
    if printer.json() {
        printer.json_line(report);
    } else if let Some(comment) = &report.comment {
        printer.data(comment.trim_end());
    }
}
