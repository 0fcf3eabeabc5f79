//! The AI-stack pages of a deployment: its projects (status, live URL, repository), a `create`
//! form whose project page follows the pipeline's events, `delete`, the LLM providers (health,
//! strategy, tokens, latency, errors) and charts of the stack's Prometheus series. Each calls
//! the agent through [`crate::ops::ai::stack_client`], the CLI's own client.

use askama::Template;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect};
use futures_util::StreamExt as _;

use super::Shared;
use super::pages::{Page, PageError, render, target};
use crate::ai::api::{Project, ProjectStatus};
use crate::ai::client::AgentClient;
use crate::error::UserError;

/// The deployment's label and its agent's client.
fn agent(app: &Shared, id: &str) -> anyhow::Result<(String, AgentClient)> {
    let (_, state) = target(app, id)?;
    Ok((
        state.label(),
        crate::ops::ai::stack_client(&app.settings, id)?,
    ))
}

/// An agent that did not answer is the stack's trouble, not the dashboard's: 502.
fn upstream(err: anyhow::Error) -> PageError {
    PageError(StatusCode::BAD_GATEWAY, err)
}

fn status_name(status: ProjectStatus) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn terminal(status: ProjectStatus) -> bool {
    matches!(
        status,
        ProjectStatus::Live | ProjectStatus::Failed | ProjectStatus::Deleted
    )
}

pub(crate) struct ProjectRow {
    id: String,
    name: String,
    status: String,
    live_url: String,
    repo_url: String,
}

impl ProjectRow {
    fn of(p: &Project) -> ProjectRow {
        ProjectRow {
            id: p.id.clone(),
            name: p.name.clone(),
            status: status_name(p.status),
            live_url: p.live_url.clone().unwrap_or_default(),
            repo_url: p.repo_url.clone().unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "projects.html")]
struct Projects {
    title: String,
    id: String,
    label: String,
    projects: Vec<ProjectRow>,
}

pub(crate) async fn projects(State(app): State<Shared>, Path(id): Path<String>) -> Page {
    let (label, client) = agent(&app, &id)?;
    let list = client.list().await.map_err(upstream)?;
    Ok(render(&Projects {
        title: format!("Projects of {label}"),
        id,
        label,
        projects: list.iter().map(ProjectRow::of).collect(),
    }))
}

#[derive(serde::Deserialize)]
pub(crate) struct CreateForm {
    prompt: String,
    #[serde(default)]
    name: String,
}

/// `POST /d/ID/projects`: `create` with the form's prompt (and name); the browser goes to the
/// project's page, which follows its progress.
pub(crate) async fn create(
    State(app): State<Shared>,
    Path(id): Path<String>,
    Form(form): Form<CreateForm>,
) -> Page {
    let (_, client) = agent(&app, &id)?;
    let name = Some(form.name.trim()).filter(|n| !n.is_empty());
    let project = client.create(form.prompt.trim(), name).await.map_err(|e| {
        if e.chain().any(|c| c.is::<UserError>()) {
            PageError(StatusCode::UNPROCESSABLE_ENTITY, e)
        } else {
            upstream(e)
        }
    })?;
    Ok(Redirect::to(&format!("/d/{id}/projects/{}", project.id)).into_response())
}

/// One row of a project's steps; a progress row (`progress`) is the latest of a run of them,
/// which the page's script replaces as newer ones arrive.
pub(crate) struct EventRow {
    step: String,
    status: String,
    message: String,
    progress: bool,
}

#[derive(Template)]
#[template(path = "project.html")]
struct ProjectPage {
    title: String,
    id: String,
    project: String,
    prompt: String,
    status: String,
    events: Vec<EventRow>,
    after: i64,
    done: bool,
    live_url: String,
    error: String,
}

pub(crate) async fn project(
    State(app): State<Shared>,
    Path((id, key)): Path<(String, String)>,
) -> Page {
    let (_, client) = agent(&app, &id)?;
    let shown = client.show(&key).await.map_err(upstream)?;
    let p = &shown.project;
    Ok(render(&ProjectPage {
        title: p.name.clone(),
        id,
        project: p.id.clone(),
        prompt: p.prompt.clone(),
        status: status_name(p.status),
        after: shown.events.last().map_or(0, |e| e.seq),
        events: crate::ai::api::listed(&shown.events)
            .map(|e| EventRow {
                step: e.step.clone(),
                status: e.status.clone(),
                message: crate::secrets::redact(&e.message),
                progress: e.is_progress(),
            })
            .collect(),
        done: terminal(p.status),
        live_url: p.live_url.clone().unwrap_or_default(),
        error: p.error.clone().unwrap_or_default(),
    }))
}

#[derive(serde::Deserialize)]
pub(crate) struct After {
    #[serde(default)]
    after: i64,
}

/// `/d/ID/projects/KEY/events?after=SEQ`: the pipeline's events as they happen (the agent's
/// long poll), one `progress` event each, `{status, events: [{step, status, message, progress}],
/// live_url, error, done}`; the stream ends after the one with `done`. Every event is sent: the
/// page's script shows a run of one step's progress events (`progress` true) as one row, as the
/// page itself does.
pub(crate) async fn project_events(
    State(app): State<Shared>,
    Path((id, key)): Path<(String, String)>,
    Query(after): Query<After>,
) -> Page {
    let (_, client) = agent(&app, &id)?;
    let client = std::sync::Arc::new(client);
    let stream = futures_util::stream::unfold(Some(after.after), move |after| {
        let (client, key) = (client.clone(), key.clone());
        async move {
            let after = after?;
            let got = match client.events(&key, after, 20).await {
                Ok(got) => got,
                Err(e) => {
                    let event = Event::default().event("progress").json_data(serde_json::json!({
                        "error": crate::secrets::redact(&format!("{e:#}")), "done": true
                    }));
                    return Some((event.unwrap_or_default(), None));
                }
            };
            let done = terminal(got.project.status);
            let events: Vec<serde_json::Value> = got
                .events
                .iter()
                .map(|e| serde_json::json!({"step": e.step, "status": e.status, "message": crate::secrets::redact(&e.message), "progress": e.is_progress()}))
                .collect();
            let next = got.events.last().map_or(after, |e| e.seq);
            let event = Event::default().event("progress").json_data(serde_json::json!({
                "status": status_name(got.project.status),
                "events": events,
                "live_url": got.project.live_url,
                "error": got.project.error,
                "done": done,
            }));
            Some((event.unwrap_or_default(), (!done).then_some(next)))
        }
    })
    .map(Ok::<_, std::convert::Infallible>)
    .take_until(app.stopped());
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// `POST /d/ID/projects/KEY/delete`: `delete` of that project (no question: the button is the
/// question); back to the list, or the parts left shown.
pub(crate) async fn delete(
    State(app): State<Shared>,
    Path((id, key)): Path<(String, String)>,
) -> Page {
    let (_, client) = agent(&app, &id)?;
    let (all, report) = client.delete(&key).await.map_err(upstream)?;
    if !all {
        let left: Vec<String> = report
            .failed
            .iter()
            .map(|f| format!("{}: {}", f.what, f.error))
            .collect();
        return Err(upstream(anyhow::anyhow!(
            "delete left parts behind: {}",
            left.join("; ")
        )));
    }
    Ok(Redirect::to(&format!("/d/{id}/projects")).into_response())
}

pub(crate) struct ProviderRow {
    provider: String,
    model: String,
    health: String,
    requests: u64,
    errors: u64,
    timeouts: u64,
    tokens: String,
    latency: String,
    last_error: String,
}

#[derive(Template)]
#[template(path = "providers.html")]
struct Providers {
    title: String,
    id: String,
    label: String,
    health: String,
    strategy: String,
    active: u64,
    providers: Vec<ProviderRow>,
}

/// A provider's mean answer time as every duration reads (`3m 04s`), `-` before its first.
fn mean_latency(stats: &crate::ai::llm::stats::Stats) -> String {
    stats
        .mean_latency()
        .map_or_else(|| "-".into(), crate::clock::format_duration)
}

pub(crate) async fn providers(State(app): State<Shared>, Path(id): Path<String>) -> Page {
    let (label, client) = agent(&app, &id)?;
    let health = client.health().await.map_err(upstream)?;
    let providers = health
        .llm
        .iter()
        .map(|p| {
            let s = &p.stats;
            ProviderRow {
                provider: p.provider.clone(),
                model: p.model.clone(),
                health: match s.healthy {
                    Some(true) => "healthy".into(),
                    Some(false) => "unhealthy".into(),
                    None => "unchecked".into(),
                },
                requests: s.requests,
                errors: s.errors,
                timeouts: s.timeouts,
                tokens: format!("{} / {}", s.tokens_in, s.tokens_out),
                latency: mean_latency(s),
                last_error: crate::secrets::redact(
                    s.last_error
                        .as_deref()
                        .or(s.probe_error.as_deref())
                        .unwrap_or(""),
                ),
            }
        })
        .collect();
    Ok(render(&Providers {
        title: format!("LLM providers of {label}"),
        id,
        label,
        health: health.status,
        strategy: health.llm_strategy,
        active: health.active,
        providers,
    }))
}

pub(crate) struct ChartView {
    title: &'static str,
    svg: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "charts.html")]
struct Charts {
    title: String,
    id: String,
    label: String,
    source: Option<String>,
    absent: Option<String>,
    charts: Vec<ChartView>,
}

/// The stack's panels over the last hour, each from Prometheus' `query_range`, drawn as SVG
/// here. Prometheus is `--prometheus`'s, else the stack's own through the dashboard's ssh tunnel
/// to its gateway ([`super::tunnel`]); when neither can be reached, the page says why.
pub(crate) async fn charts(State(app): State<Shared>, Path(id): Path<String>) -> Page {
    let (target, state) = target(&app, &id)?;
    let label = state.label();
    let mut page = Charts {
        title: format!("Charts of {label}"),
        id: state.id.clone(),
        label,
        source: None,
        absent: None,
        charts: Vec::new(),
    };
    let source = match &app.prometheus {
        Some(url) => Ok(super::tunnel::Source {
            url: url.clone(),
            via: format!("{url} (--prometheus)"),
        }),
        None => {
            app.tunnels
                .prometheus(&app.settings, &app.printer, &target, &state)
                .await
        }
    };
    let base = match source {
        Ok(source) => {
            page.source = Some(source.via);
            source.url
        }
        Err(e) => {
            page.absent = Some(format!(
                "No Prometheus: {}. The dashboard reaches an AI stack's own Prometheus over ssh; \
                    --prometheus URL names another.",
                crate::secrets::redact(&format!("{e:#}"))
            ));
            return Ok(render(&page));
        }
    };
    let base = &base;
    let end = crate::clock::now_unix();
    let range = super::chart::Range {
        start: end.saturating_sub(3600),
        end,
        step: 30,
    };
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .map_err(anyhow::Error::from)?;
    for panel in super::chart::PANELS {
        match super::chart::query_range(&http, base, panel.query, &range).await {
            Ok(series) => page.charts.push(ChartView {
                title: panel.title,
                svg: super::chart::svg(&series, panel.unit, &range),
                error: None,
            }),
            Err(e) if page.charts.is_empty() && e.is::<super::chart::Unreachable>() => {
                page.absent = Some(format!("No Prometheus: {e}"));
                break;
            }
            Err(e) => page.charts.push(ChartView {
                title: panel.title,
                svg: String::new(),
                error: Some(format!("{e:#}")),
            }),
        }
    }
    Ok(render(&page))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_providers_latency_reads_like_every_other_duration() {
        let stats = crate::ai::llm::stats::Stats {
            answers: 2,
            latency_ms_total: 2 * 184_740,
            ..Default::default()
        };
        assert_eq!(super::mean_latency(&stats), "3m 04s");
        assert_eq!(super::mean_latency(&Default::default()), "-");
    }
}
