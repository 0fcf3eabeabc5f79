//! `create`, `projects`, `monitor`, `delete` (clients of the agent API) and `serve gateway|agent`.

use std::time::Instant;

use anyhow::Result;
use serde_json::json;

use crate::ai::api::{Event, Health, ProjectEvents, ProjectStatus};
use crate::ai::client::AgentClient;
use crate::error::{Failed, UserError};
use crate::output::{Printer, plural};
use crate::settings::Settings;

/// Where the agent is and its token: flags, then `TFGRID_COMPOSE_AGENT_URL` and
/// `TFGRID_COMPOSE_AGENT_TOKEN` / `TFGRID_COMPOSE_AGENT_TOKEN_FILE` (a standalone setup), then the
/// AI-stack deployment named by `--stack`, else the only deployment that has one.
pub struct AgentFlags {
    pub url: Option<String>,
    pub token_file: Option<std::path::PathBuf>,
    pub stack: Option<String>,
}

pub fn client(settings: &Settings, flags: &AgentFlags) -> Result<AgentClient> {
    let url = flags.url.clone().or_else(|| settings.agent_url.clone());
    let Some(url) = url else {
        let (url, file) = deployed_stack(settings, flags.stack.as_deref())?;
        return client_of_file(&url, &file);
    };
    let file = flags
        .token_file
        .clone()
        .or_else(|| settings.agent_token_file.clone());
    let token = match (file, settings.agent_token.as_deref()) {
        (Some(file), _) => return client_of_file(&url, &file),
        (None, Some(token)) => {
            crate::secrets::register(token);
            token.to_string()
        }
        (None, None) => {
            return Err(UserError::new(
                "the agent's token is not set",
                "set TFGRID_COMPOSE_AGENT_TOKEN or pass --agent-token-file FILE",
            )
            .into());
        }
    };
    AgentClient::new(&url, &token)
}

/// The agent of the AI-stack deployment `target` (an id, as the dashboard names it).
///
/// Errors: the target resolves to nothing, or its deployment has no AI stack.
pub fn stack_client(settings: &Settings, target: &str) -> Result<AgentClient> {
    let (url, file) = deployed_stack(settings, Some(target))?;
    client_of_file(&url, &file)
}

/// A client whose token file is read again when replaced (`projects rotate-tokens`).
fn client_of_file(url: &str, file: &std::path::Path) -> Result<AgentClient> {
    AgentClient::with_token_file(url, file)
        .map_err(|e| UserError::new(format!("{e:#}"), "pass the agent's token file").into())
}

/// The agent URL and token file of an AI-stack deployment, from its `state.yaml`.
fn deployed_stack(
    settings: &Settings,
    target: Option<&str>,
) -> Result<(String, std::path::PathBuf)> {
    let of = |dir: &crate::state::StateDir| -> Result<Option<(String, std::path::PathBuf)>> {
        Ok(dir
            .load()?
            .and_then(|s| s.ai_stack)
            .map(|r| (r.agent_api, dir.agent_token_file())))
    };
    if let Some(target) = target {
        let found = super::resolve_target(settings, Some(target))?;
        return of(&found.dir)?.ok_or_else(|| {
            UserError::new(
                format!("`{target}` has no deployed AI stack"),
                "`tfgrid-compose up` an app with an `ai_stack:` section first (see \
                    examples/ai-stack)",
            )
            .into()
        });
    }
    let (entries, _) = super::registry(settings).list()?;
    let mut stacks = Vec::new();
    for entry in entries.iter().filter(|e| {
        crate::state::StateDir::at(e.state_dir.clone())
            .agent_token_file()
            .is_file()
    }) {
        if let Some(found) = of(&crate::state::StateDir::at(entry.state_dir.clone()))? {
            stacks.push((format!("{}:{}", entry.app, entry.env), found));
        }
    }
    match stacks.len() {
        1 => Ok(stacks.remove(0).1),
        0 => Err(UserError::new(
            "no AI-stack agent is configured",
            "`tfgrid-compose up` an app with `ai_stack:` (examples/ai-stack), or pass --agent-url \
                URL and the token (or set TFGRID_COMPOSE_AGENT_URL and TFGRID_COMPOSE_AGENT_TOKEN)",
        )
        .into()),
        _ => Err(UserError::new(
            format!(
                "{} AI-stack deployments: {}",
                stacks.len(),
                stacks
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "pick one with --stack APP[:ENV]",
        )
        .into()),
    }
}

/// What the seed prints as a step starts.
fn announce(step: &str) -> Option<(&'static str, &'static str)> {
    match step {
        "generate" => Some(("Generating", "code with AI…")),
        "commit" => Some(("Creating", "Git repository…")),
        "publish" => Some(("Deploying", "to gateway…")),
        "verify" => Some(("Verifying", "the live site…")),
        _ => None,
    }
}

pub async fn create(
    printer: &Printer,
    agent: &AgentClient,
    prompt: &str,
    name: Option<&str>,
    wait: bool,
) -> Result<()> {
    let clock = Instant::now();
    let project = agent.create(prompt, name).await?;
    let (id, name) = (project.id.clone(), project.name.clone());
    if printer.json() {
        printer.json_line(&json!({"event": "queued", "project": project}));
    } else {
        printer.status("Queued", format!("project `{name}` ({id})"));
    }
    if !wait {
        if !printer.json() {
            printer.status(
                "Follow",
                format!("with `tfgrid-compose monitor {name} --follow`"),
            );
        }
        return Ok(());
    }
    let (end, tokens) = follow(printer, agent, &id, 0).await?;
    let project = end.project;
    let elapsed = clock.elapsed();
    if project.status == ProjectStatus::Live {
        if printer.json() {
            printer.json_line(&json!({"event": "created", "project": project, "duration_ms": elapsed.as_millis() as u64,
                "tokens": {"in": tokens.input, "cached": tokens.cached, "out": tokens.output}}));
        } else {
            let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
            printer.data(format!("Project created: {name}"));
            printer.data(format!("Repository: {}", or_dash(&project.repo_url)));
            printer.data(format!("Live site:  {}", or_dash(&project.live_url)));
            printer.data(format!(
                "Duration:   {}",
                crate::clock::format_duration(elapsed)
            ));
            let cached = tokens
                .cached
                .map(|c| format!(" ({c} of them from the prompt cache)"))
                .unwrap_or_default();
            printer.data(format!(
                "Tokens:     {} in{cached}, {} out",
                tokens.input, tokens.output
            ));
        }
        return Ok(());
    }
    let error = project
        .error
        .clone()
        .unwrap_or_else(|| "unknown error".into());
    Err(Failed {
        message: format!("project `{name}` failed"),
        hints: vec![
            if project.undone.is_empty() {
                "nothing had to be undone".into()
            } else {
                format!("undone: {}", project.undone.join(", "))
            },
            format!("see every step with `tfgrid-compose monitor {name}`"),
        ],
        source: anyhow::anyhow!(error).into(),
    }
    .into())
}

/// The LLM tokens of a create's answers, summed from its `llm done` events.
#[derive(Default)]
struct Tokens {
    input: u64,
    /// Of `input`, taken from the server's prompt cache; `None` when no answer said.
    cached: Option<u64>,
    output: u64,
}

impl Tokens {
    fn add(&mut self, event: &Event) {
        let Some(data) = event
            .data
            .as_ref()
            .filter(|_| (event.step.as_str(), event.status.as_str()) == ("llm", "done"))
        else {
            return;
        };
        self.input += data["tokens_in"].as_u64().unwrap_or(0);
        self.output += data["tokens_out"].as_u64().unwrap_or(0);
        if let Some(cached) = data["tokens_cached"].as_u64() {
            self.cached = Some(self.cached.unwrap_or(0) + cached);
        }
    }
}

/// Prints events as they come until the project leaves the pipeline; returns the last answer
/// and the tokens of the answers seen.
async fn follow(
    printer: &Printer,
    agent: &AgentClient,
    id: &str,
    mut after: i64,
) -> Result<(ProjectEvents, Tokens)> {
    let mut shown = Shown::default();
    let mut tokens = Tokens::default();
    loop {
        let answer = agent.events(id, after, 25).await?;
        for event in &answer.events {
            after = after.max(event.seq);
            tokens.add(event);
            print_event(printer, event, &mut shown);
        }
        if !answer.project.status.is_active() {
            return Ok((answer, tokens));
        }
    }
}

/// How often a line of generation progress is printed when stderr is not a terminal (on a
/// terminal a spinner shows every report).
const PROGRESS_LINE_EVERY: std::time::Duration = std::time::Duration::from_secs(15);

/// What the terminal shows of a generation in progress.
#[derive(Default)]
struct Shown {
    spinner: Option<crate::output::Spinner>,
    last_line: Option<Instant>,
}

/// One event: a `--json` line `{event: "step", step, status, message, at, data?}`, or a status
/// line; `llm progress` events drive a spinner on a terminal.
fn print_event(printer: &Printer, event: &Event, shown: &mut Shown) {
    if printer.json() {
        let mut line = json!({"event": "step", "step": event.step, "status": event.status, "message": event.message, "at": event.at});
        if let Some(data) = &event.data {
            line["data"] = data.clone();
        }
        printer.json_line(&line);
        return;
    }
    let (step, status, message) = (
        event.step.as_str(),
        event.status.as_str(),
        event.message.as_str(),
    );
    if (step, status) == ("llm", "progress") {
        if shown.spinner.is_none() {
            shown.spinner = printer.spinner("Generating", None);
        }
        if let Some(spinner) = &shown.spinner {
            spinner.set_message(message);
        } else if shown
            .last_line
            .is_none_or(|t| t.elapsed() >= PROGRESS_LINE_EVERY)
        {
            shown.last_line = Some(Instant::now());
            printer.status("Generating", message);
        }
        return;
    }
    // A line printed under a spinner garbles it: the spinner goes first.
    shown.spinner = None;
    match (step, status, announce(step)) {
        (_, "started", Some((verb, text))) => printer.status(verb, text),
        ("llm", "started", _) => printer.status("Asking", message),
        ("llm", "done", _) => printer.status("Generated", message),
        ("llm", "note", _) => printer.status("Note", message),
        ("generate", "restart", _) => printer.status("Restarting", message),
        ("check", "note", _) => printer.status("Repaired", message),
        // The last attempt's site is kept when only the meaning check found fault with it.
        ("check", "done", _) if message.contains("kept although") => {
            printer.warn(format!("check: {message}"));
        }
        (_, "failed", _) => printer.warn(format!("{step}: {message}")),
        _ => tracing::debug!(step, status, message, "event"),
    }
}

pub async fn projects(printer: &Printer, agent: &AgentClient, json: bool) -> Result<()> {
    let list = agent.list().await?;
    if json {
        printer.json_line(&json!({"schema": 1, "projects": list}));
        return Ok(());
    }
    if list.is_empty() {
        printer.status(
            "Empty",
            "no projects yet; make one with `tfgrid-compose create \"a portfolio website\"`",
        );
        return Ok(());
    }
    printer.raw(projects_table(&list).as_bytes());
    Ok(())
}

/// `projects`' table: ID, NAME, STATUS, LIVE, each column as wide as its longest cell.
fn projects_table(list: &[crate::ai::api::Project]) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|p| {
            vec![
                p.id.clone(),
                p.name.clone(),
                p.status.to_string(),
                p.live_url.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    crate::output::table(&["ID", "NAME", "STATUS", "LIVE"], &rows)
}

pub async fn monitor(
    printer: &Printer,
    agent: &AgentClient,
    key: &str,
    follow_on: bool,
    json: bool,
) -> Result<()> {
    let doc = agent.show(key).await?;
    let project = &doc.project;
    // The providers as the agent sees them; an agent without them is still monitored.
    let health = agent.health().await.ok();
    if json && !follow_on {
        let mut out = json!({"schema": 1, "project": project, "events": doc.events});
        if let Some(health) = &health {
            out["llm_strategy"] = health.llm_strategy.clone().into();
            out["llm"] = serde_json::to_value(&health.llm)?;
        }
        printer.json_line(&out);
        return Ok(());
    }
    if !json {
        printer.data(format!("project   {} ({})", project.name, project.id));
        printer.data(format!("status    {}", project.status));
        printer.data(format!("prompt    {}", project.prompt));
        for (value, label) in [
            (&project.repo_url, "repo      "),
            (&project.live_url, "live      "),
            (&project.error, "error     "),
        ] {
            if let Some(v) = value {
                printer.data(format!("{label}{v}"));
            }
        }
        if !project.undone.is_empty() {
            printer.data(format!("undone    {}", project.undone.join(", ")));
        }
        if let Some(health) = &health {
            print_providers(printer, health);
        }
        printer.data("steps");
    }
    let last = doc.events.last().map_or(0, |e| e.seq);
    let mut shown = Shown::default();
    if json {
        for event in &doc.events {
            print_event(printer, event, &mut shown);
        }
    } else {
        for event in crate::ai::api::listed(&doc.events) {
            printer.data(format!(
                "  {} {:<9} {:<8} {}",
                crate::clock::format_utc(event.at),
                event.step,
                event.status,
                event.message
            ));
        }
    }
    if follow_on && project.status.is_active() {
        let (end, _) = follow(printer, agent, &project.id, last).await?;
        printer.status("Finished", format!("status {}", end.project.status));
    }
    Ok(())
}

/// `llm       STRATEGY`, then a line per provider: health, answers, errors, tokens, time.
fn print_providers(printer: &Printer, health: &Health) {
    printer.data(format!("llm       {}", health.llm_strategy));
    for p in &health.llm {
        let s = &p.stats;
        let up = match s.healthy {
            Some(true) => "up".to_string(),
            Some(false) => format!("down ({})", s.probe_error.as_deref().unwrap_or("?")),
            None => "not probed yet".to_string(),
        };
        let mut line = format!(
            "  {}  {up}; {} of {} request{} answered, {} error{} ({} timed out); tokens {} in, \
             {} out",
            p.provider,
            s.answers,
            s.requests,
            plural(s.requests),
            s.errors,
            plural(s.errors),
            s.timeouts,
            s.tokens_in,
            s.tokens_out,
        );
        if let Some(each) = s.mean_latency() {
            line.push_str(&format!(
                "; {} per answer",
                crate::clock::format_duration(each)
            ));
        }
        line.push_str(&format!("; response_format {}", p.response_format));
        if let Some(error) = &s.last_error {
            line.push_str(&format!("; last error: {error}"));
        }
        printer.data(line);
    }
}

pub async fn delete(printer: &Printer, agent: &AgentClient, key: &str, yes: bool) -> Result<()> {
    let doc = agent.show(key).await?;
    let name = doc.project.name.clone();
    if !yes {
        let question = format!(
            "this removes the route, the published files, the repository and the record of \
                `{name}`; type its name to confirm"
        );
        if crate::ops::ask(
            printer,
            &question,
            &format!("deleting `{name}` needs confirmation"),
        )? != name
        {
            return Err(UserError::new(
                "not confirmed; nothing was removed",
                "type the exact project name, or pass --yes",
            )
            .into());
        }
    }
    let (ok, report) = agent.delete(key).await?;
    for what in &report.removed {
        printer.status("Removed", format!("{what} of `{name}`"));
    }
    if ok {
        return Ok(());
    }
    let failed: Vec<String> = report
        .failed
        .iter()
        .map(|f| format!("{}: {}", f.what, f.error))
        .collect();
    Err(Failed {
        message: format!("`{name}` was only partly removed"),
        hints: vec![
            format!("still there: {}", failed.join("; ")),
            format!("run `tfgrid-compose delete {name} --yes` again once the cause is fixed"),
        ],
        source: anyhow::anyhow!("{} part{} failed", failed.len(), plural(failed.len())).into(),
    }
    .into())
}

/// `serve gateway|agent|git --config FILE`: logs structured lines on stderr.
pub async fn serve(service: crate::ai::units::Service, config: &std::path::Path) -> Result<()> {
    use crate::ai::units::Service;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
    match service {
        Service::Gateway => crate::ai::gateway::run(crate::ai::load_config(config)?).await,
        Service::Git => crate::ai::gitserver::run(crate::ai::load_config(config)?).await,
        Service::Agent => crate::ai::agent::run(crate::ai::load_config(config)?).await,
        Service::Llm | Service::Monitoring => Err(crate::error::UserError::new(
            format!("`{service}` is served by its own programs, not by `serve`"),
            format!("it runs as {}", service.main_unit()),
        )
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use crate::ai::api::{Project, ProjectStatus};

    fn project(name: &str, status: ProjectStatus, live: Option<&str>) -> Project {
        Project {
            id: format!("{name:.16}"),
            name: name.into(),
            prompt: String::new(),
            status,
            error: None,
            repo_url: None,
            live_url: live.map(str::to_string),
            undone: vec![],
            created: vec![],
            attempts: 1,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn projects_line_up_under_their_header() {
        let table = super::projects_table(&[
            project("todo-list-app", ProjectStatus::Live, Some("http://x/todo")),
            project("a", ProjectStatus::Generating, None),
        ]);
        let lines: Vec<&str> = table.lines().collect();
        let column = |line: &str, word: &str| line.find(word).unwrap();
        let live = column(lines[0], "LIVE");
        assert_eq!(column(lines[1], "http://x/todo"), live, "{table}");
        assert_eq!(column(lines[2], "-"), live, "{table}");
        let status = column(lines[0], "STATUS");
        assert_eq!(column(lines[1], "live"), status, "{table}");
        assert_eq!(column(lines[2], "generating"), status, "{table}");
    }
}
