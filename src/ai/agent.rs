//! `serve agent`: the project API and the create pipeline (generate → check → commit → publish →
//! verify). Records and every step live in SQLite; at most `max_concurrent_projects` pipelines
//! run at once, the rest wait queued. Any failure undoes the earlier steps in reverse (route,
//! site, repository) and the record says what was undone. A restart requeues queued projects and
//! undoes the ones it found mid-way, so nothing is left half-published. `GET /api/v1/backup` and
//! `POST /api/v1/restore` are served by [`super::backup`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::api::{DeleteReport, Failure, Health, ProjectEvents, ProjectList, ProjectReply};
use super::db::{Db, Project, ProjectStatus};
use super::githost::{GitConfig, GitHost};
use super::llm::{Llm, Provider, Strategy};
use super::server::{Common, api_error, api_refusal, serve};
use super::{site, words};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    pub listen: String,
    /// More addresses the API answers on: the VM's private address, when `listen` (the
    /// address this machine reaches) is not the one the gateway's Prometheus reaches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also_listen: Vec<String>,
    pub token_file: PathBuf,
    /// The read-only token Prometheus scrapes `/metrics` with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_token_file: Option<PathBuf>,
    /// The SQLite file; its folder also holds `logs/<project>.log`.
    pub database: PathBuf,
    #[serde(default = "default_concurrent")]
    pub max_concurrent_projects: usize,
    /// Generate attempts: the first, then fixes fed with the problems found.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    #[serde(default = "default_rate")]
    pub rate_limit: u32,
    /// Providers in order; the next is tried when one fails.
    pub llm: Vec<Provider>,
    /// Which provider a request asks first: `fallback` (the first; the default), `round-robin`,
    /// `random`.
    #[serde(default)]
    pub llm_strategy: Strategy,
    pub git: GitConfig,
    pub gateway: GatewayClientConfig,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayClientConfig {
    /// The gateway API, e.g. `http://10.1.0.2:7701`.
    pub api: String,
    pub token_file: PathBuf,
    /// Where the sites are live, e.g. `http://203.0.113.7` (projects at `/NAME/`).
    pub public_url: String,
    /// Where the agent itself fetches a site to verify it (default: `public_url`), e.g. the
    /// gateway's private address when the public one is not reachable from the agent's machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_url: Option<String>,
}

pub(crate) fn default_concurrent() -> usize {
    3
}
pub(crate) fn default_attempts() -> u32 {
    3
}
fn default_rate() -> u32 {
    10
}

/// The agent's state, shared by its handlers (and `backup`'s).
pub(super) struct Agent {
    pub(super) db: Db,
    llm: Llm,
    pub(super) git: GitHost,
    pub(super) gateway: GatewayClient,
    slots: Arc<tokio::sync::Semaphore>,
    max_attempts: u32,
    pub(super) log_dir: PathBuf,
    /// Held by a backup, a restore and a delete: none sees another half done.
    pub(super) maintenance: tokio::sync::Mutex<()>,
    pub(super) creations: Creations,
    /// Holds the Unix time of the last backup served whole (`backup_last_success_timestamp_seconds`),
    /// beside the database, so that a restart keeps it.
    pub(super) backup_stamp: PathBuf,
    /// Unix seconds when the agent started.
    started_at: u64,
}

/// The creation counters of `/metrics`, since the agent started.
pub(super) struct Creations {
    attempts: prometheus::IntCounter,
    success: prometheus::IntCounter,
    /// By `reason`: the status a project was in when it failed (`generating`, `verifying`…).
    failures: prometheus::IntCounterVec,
}

impl Creations {
    /// The counters, registered on `registry`, every reason at 0.
    fn new(registry: &prometheus::Registry) -> Result<Creations> {
        let attempts = prometheus::IntCounter::new(
            "project_creation_attempts_total",
            "Projects accepted for creation.",
        )?;
        let success = prometheus::IntCounter::new(
            "project_creation_success_total",
            "Projects that went live.",
        )?;
        let failures = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "project_creation_failures_total",
                "Projects whose creation failed, by the step it failed in.",
            ),
            &["reason"],
        )?;
        for status in ProjectStatus::ALL.into_iter().filter(|s| s.is_active()) {
            failures.with_label_values(&[status.as_str()]);
        }
        registry.register(Box::new(attempts.clone()))?;
        registry.register(Box::new(success.clone()))?;
        registry.register(Box::new(failures.clone()))?;
        Ok(Creations {
            attempts,
            success,
            failures,
        })
    }
}

/// How often each LLM provider's health is probed (`GET /models`) for `/health` and `/metrics`.
const PROBE_EVERY: Duration = Duration::from_secs(30);
/// Numbered names tried for a prompt's name (`name`, `name-2`, … `name-99`).
const MAX_NUMBERED: u32 = 99;

/// The gateway API as the agent calls it.
pub(super) struct GatewayClient {
    api: String,
    /// Read again when replaced (`projects rotate-tokens`).
    token: Arc<super::token::TokenFile>,
    /// Where the sites are live, without a trailing `/`.
    pub(super) public_url: String,
    verify_url: String,
    http: reqwest::Client,
}

impl GatewayClient {
    /// One call; 429 and connection errors are tried again (3 attempts, 1 s apart). Returns the
    /// status, a success or 404.
    pub(super) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<reqwest::StatusCode> {
        Ok(self.send(method, path, body).await?.status())
    }

    /// A `GET` answered with JSON; `None` for 404.
    pub(super) async fn fetch<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<Option<T>> {
        let response = self.send(reqwest::Method::GET, path, None).await?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let value = response
            .json()
            .await
            .map_err(|e| anyhow::anyhow!("gateway: {path}: {}", e.without_url()))?;
        Ok(Some(value))
    }

    /// [`Self::call`], keeping the answer.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<reqwest::Response> {
        let url = format!("{}{path}", self.api.trim_end_matches('/'));
        let mut attempt = 1;
        let response = loop {
            let mut request = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(self.token.current());
            if let Some(body) = &body {
                request = request.json(body);
            }
            let result = request.send().await;
            let again = match &result {
                Ok(r) => r.status() == reqwest::StatusCode::TOO_MANY_REQUESTS,
                Err(e) => e.is_connect(),
            };
            if !again || attempt == 3 {
                break result.map_err(|e| anyhow::anyhow!("gateway: {}", e.without_url()))?;
            }
            attempt += 1;
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
        let status = response.status();
        if status.is_success() || status == reqwest::StatusCode::NOT_FOUND {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        bail!(
            "gateway answered {status}: {}",
            text.chars().take(300).collect::<String>()
        )
    }
}

pub async fn run(config: AgentConfig) -> Result<()> {
    let common = Common::new(
        &config.token_file,
        config.metrics_token_file.as_deref(),
        config.rate_limit,
        "agent",
    )?;
    let dir = config
        .database
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    let log_dir = dir.join("logs");
    std::fs::create_dir_all(&log_dir)?;
    let token = super::token::TokenFile::open(&config.gateway.token_file, 1)?;
    let agent = Arc::new(Agent {
        db: Db::open(&config.database)?,
        llm: Llm::new(
            &config.llm,
            config.llm_strategy,
            &crate::env::Env::from_process(),
        )?,
        git: GitHost::new(config.git.clone())?,
        gateway: GatewayClient {
            api: config.gateway.api.clone(),
            token,
            public_url: config.gateway.public_url.trim_end_matches('/').to_string(),
            verify_url: config
                .gateway
                .verify_url
                .as_deref()
                .unwrap_or(&config.gateway.public_url)
                .trim_end_matches('/')
                .to_string(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()?,
        },
        slots: Arc::new(tokio::sync::Semaphore::new(
            config.max_concurrent_projects.max(1),
        )),
        max_attempts: config.max_attempts.max(1),
        log_dir,
        maintenance: tokio::sync::Mutex::new(()),
        creations: Creations::new(common.registry())?,
        backup_stamp: dir.join("last-backup"),
        started_at: crate::clock::now_unix(),
    });
    recover(&agent).await?;
    let warming = agent.clone();
    tokio::spawn(async move {
        warming.llm.warm_up(&super::generate::shared_start()).await;
    });
    let probing = agent.clone();
    tokio::spawn(async move {
        loop {
            probing.llm.probe().await;
            tokio::time::sleep(PROBE_EVERY).await;
        }
    });
    tracing::info!(listen = %config.listen, "agent started");
    let state = (agent, common.clone());
    let app = Router::new()
        .route("/health", get(health))
        .route("/api/v1/health", get(health))
        .route("/api/v1/projects", get(list).post(create))
        .route("/api/v1/projects/{id}", get(show).delete(remove))
        .route("/api/v1/projects/{id}/events", get(events))
        .route("/api/v1/backup", get(super::backup::download))
        .route(
            "/api/v1/restore",
            axum::routing::post(super::backup::upload).layer(axum::extract::DefaultBodyLimit::max(
                usize::try_from(super::archive::MAX_BYTES).unwrap_or(usize::MAX),
            )),
        )
        .route("/metrics", get(metrics))
        .with_state(state);
    serve(&config.listen, &config.also_listen, app, common).await
}

/// After a restart: queued projects run again; projects caught mid-way are undone and failed.
async fn recover(agent: &Arc<Agent>) -> Result<()> {
    for project in agent.db.unfinished()? {
        if project.status == ProjectStatus::Queued {
            spawn(agent.clone(), project.id.clone());
            continue;
        }
        let undone = undo(agent, &project).await;
        let why = format!("interrupted by a restart during `{}`", project.status);
        agent.db.event(
            &project.id,
            "recover",
            "failed",
            &format!(
                "{why}; undone: {}",
                if undone.is_empty() {
                    "nothing".into()
                } else {
                    undone.join(", ")
                }
            ),
        )?;
        agent.db.set_undone(&project.id, &undone)?;
        agent
            .db
            .set_status(&project.id, ProjectStatus::Failed, Some(&why))?;
    }
    Ok(())
}

pub(super) type St = State<(Arc<Agent>, Common)>;

async fn health(State((a, _)): St) -> Response {
    let active =
        a.db.list()
            .map(|l| l.iter().filter(|p| p.status.is_active()).count())
            .unwrap_or(0);
    Json(Health {
        status: "ok".into(),
        active: active as u64,
        llm_strategy: a.llm.strategy().as_str().into(),
        llm: a.llm.report(),
        started_at: a.started_at,
        last_backup: last_backup(&a),
    })
    .into_response()
}

/// Unix seconds of the last backup served whole, 0 for none (the stamp beside the database).
fn last_backup(a: &Agent) -> u64 {
    std::fs::read_to_string(&a.backup_stamp)
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok())
        .unwrap_or(0)
}

async fn metrics(State((a, common)): St) -> Response {
    let all = a.db.list().unwrap_or_default();
    let last_backup = last_backup(&a) as f64;
    let mut extra = super::server::scrape_text(|r| {
        let count = |s: ProjectStatus| all.iter().filter(|p| p.status == s).count() as f64;
        for (name, help, value) in [
            (
                "tfgrid_agent_projects_live",
                "Projects live.",
                count(ProjectStatus::Live),
            ),
            (
                "tfgrid_agent_projects_failed",
                "Projects whose creation failed.",
                count(ProjectStatus::Failed),
            ),
            (
                "tfgrid_agent_projects_active",
                "Projects being created (queued or in the pipeline).",
                all.iter().filter(|p| p.status.is_active()).count() as f64,
            ),
            (
                "backup_last_success_timestamp_seconds",
                "Unix time of the last backup the agent served whole (0: none yet).",
                last_backup,
            ),
            // The client libraries' name for it; `BackupNeverTaken` counts from it.
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                a.started_at as f64,
            ),
        ] {
            super::server::gauge(r, name, help, value)?;
        }
        let status = prometheus::IntGaugeVec::new(
            prometheus::Opts::new(
                "project_status",
                "1 for each project (not deleted), labelled with its name and status.",
            ),
            &["project", "status"],
        )?;
        for p in all.iter().filter(|p| p.status != ProjectStatus::Deleted) {
            status
                .with_label_values(&[p.name.as_str(), p.status.as_str()])
                .set(1);
        }
        r.register(Box::new(status))?;
        Ok(())
    });
    extra.push_str(&a.llm.metrics_text());
    super::server::metrics_response(common.metrics_text(&extra))
}

async fn list(State((a, _)): St) -> Response {
    match a.db.list() {
        Ok(projects) => Json(ProjectList { projects }).into_response(),
        Err(e) => api_error(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e:#}")).into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    prompt: String,
    #[serde(default)]
    name: Option<String>,
}

const MAX_PROMPT: usize = 4000;

async fn create(
    State((a, _)): St,
    body: Result<Json<CreateBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(body)) = body else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "body: expected {\"prompt\": TEXT, \"name\": NAME?}",
        )
        .into_response();
    };
    let prompt = body.prompt.trim();
    if prompt.is_empty() || prompt.len() > MAX_PROMPT {
        return api_error(
            StatusCode::BAD_REQUEST,
            &format!("prompt: 1 to {MAX_PROMPT} characters"),
        )
        .into_response();
    }
    let id = crate::ids::new_id();
    // A name the user chose is taken or refused as it is; one made from the prompt is numbered
    // until it is free.
    let (names, chosen) = match body.name {
        Some(name) => (vec![name], true),
        None => {
            let base = words::name_from_prompt(prompt)
                .unwrap_or_else(|| format!("site-{}", crate::ids::ShortId::of(&id)));
            (
                (1..=MAX_NUMBERED)
                    .map(|n| words::numbered(&base, n))
                    .collect(),
                false,
            )
        }
    };
    if let Err(e) = site::check_name(&names[0]) {
        return api_error(StatusCode::BAD_REQUEST, &format!("name: {e}")).into_response();
    }
    let mut inserted = false;
    for name in &names {
        match a.db.insert(&id, name, prompt) {
            Ok(true) => {
                inserted = true;
                break;
            }
            Ok(false) => {}
            Err(e) => {
                return api_error(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e:#}"))
                    .into_response();
            }
        }
    }
    if !inserted {
        let (message, hint) = if chosen {
            (
                format!("a project named `{}` exists", names[0]),
                "pick another --name, or leave it out for a unique one",
            )
        } else {
            (
                format!(
                    "`{}` and its numbered names up to `{}` are taken",
                    names[0],
                    names[names.len() - 1]
                ),
                "pass --name",
            )
        };
        return api_refusal(StatusCode::CONFLICT, &message, hint).into_response();
    }
    let _ = a.db.event(&id, "queue", "done", "queued");
    a.creations.attempts.inc();
    spawn(a.clone(), id.clone());
    match a.db.find(&id) {
        Ok(Some(project)) => (StatusCode::ACCEPTED, Json(ProjectReply { project })).into_response(),
        _ => api_error(StatusCode::INTERNAL_SERVER_ERROR, "the project vanished").into_response(),
    }
}

async fn show(State((a, _)): St, Path(id): Path<String>) -> Response {
    match a.db.find(&id) {
        Ok(Some(p)) => {
            let events = a.db.events(&p.id, 0).unwrap_or_default();
            Json(ProjectEvents { project: p, events }).into_response()
        }
        Ok(None) => api_error(
            StatusCode::NOT_FOUND,
            &format!("no project `{}`", id.escape_default()),
        )
        .into_response(),
        Err(e) => api_error(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e:#}")).into_response(),
    }
}

#[derive(Deserialize)]
struct EventsQuery {
    #[serde(default)]
    after: i64,
    /// Wait up to this many seconds (at most 30) for an event after `after`.
    #[serde(default)]
    wait: u64,
}

async fn events(
    State((a, _)): St,
    Path(id): Path<String>,
    Query(q): Query<EventsQuery>,
) -> Response {
    let project = match a.db.find(&id) {
        Ok(Some(p)) => p,
        Ok(None) => {
            return api_error(
                StatusCode::NOT_FOUND,
                &format!("no project `{}`", id.escape_default()),
            )
            .into_response();
        }
        Err(e) => {
            return api_error(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e:#}")).into_response();
        }
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(q.wait.min(30));
    let mut changes = a.db.changes();
    loop {
        changes.borrow_and_update();
        let events = a.db.events(&project.id, q.after).unwrap_or_default();
        let current =
            a.db.find(&project.id)
                .ok()
                .flatten()
                .unwrap_or(project.clone());
        if !events.is_empty()
            || !current.status.is_active()
            || tokio::time::Instant::now() >= deadline
        {
            let mut response = Json(ProjectEvents {
                project: current,
                events,
            })
            .into_response();
            if q.wait > 0 {
                response.extensions_mut().insert(super::server::LongPoll);
            }
            return response;
        }
        // Woken by the next event or status of any project; the deadline answers empty.
        let _ = tokio::time::timeout_at(deadline, changes.changed()).await;
    }
}

async fn remove(State((a, _)): St, Path(id): Path<String>) -> Response {
    let _maintenance = a.maintenance.lock().await;
    let project = match a.db.find(&id) {
        Ok(Some(p)) => p,
        Ok(None) => {
            return api_error(
                StatusCode::NOT_FOUND,
                &format!("no project `{}`", id.escape_default()),
            )
            .into_response();
        }
        Err(e) => {
            return api_error(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e:#}")).into_response();
        }
    };
    if project.status == ProjectStatus::Deleted {
        return api_refusal(
            StatusCode::NOT_FOUND,
            &format!("`{}` was deleted already", project.name),
            "list the projects with `tfgrid-compose projects`",
        )
        .into_response();
    }
    if project.status.is_active() {
        return api_refusal(
            StatusCode::CONFLICT,
            &format!(
                "`{}` is still being created ({})",
                project.name, project.status
            ),
            &format!(
                "wait until it is live or failed (`tfgrid-compose monitor {} --follow`), then \
                 try again",
                project.name
            ),
        )
        .into_response();
    }
    let mut removed = Vec::new();
    let mut failed = Vec::new();
    for (what, result) in remove_all(&a, &project.name).await {
        match result {
            Ok(()) => removed.push(what),
            Err(e) => failed.push(Failure {
                what: what.to_string(),
                error: format!("{e:#}"),
            }),
        }
    }
    if failed.is_empty() {
        let _ = a.db.event(
            &project.id,
            "delete",
            "done",
            &format!("removed {}", removed.join(", ")),
        );
        let _ = a.db.set_deleted(&project.id);
        removed.push("record".into());
        Json(DeleteReport {
            removed,
            failed,
            error: None,
        })
        .into_response()
    } else {
        let _ =
            a.db.event(&project.id, "delete", "failed", &format!("{failed:?}"));
        let report = DeleteReport {
            removed,
            failed,
            error: Some("some parts could not be removed; the record is kept".into()),
        };
        (StatusCode::BAD_GATEWAY, Json(report)).into_response()
    }
}

/// Removes one part of a project (`route`, `site` or `repo`); a part already gone counts as
/// removed.
pub(super) async fn remove_part(a: &Agent, name: &str, what: &str) -> Result<()> {
    match what {
        "route" => a
            .gateway
            .call(
                reqwest::Method::DELETE,
                &format!("/api/v1/routes/{name}"),
                None,
            )
            .await
            .map(|_| ()),
        "site" => a
            .gateway
            .call(
                reqwest::Method::DELETE,
                &format!("/api/v1/sites/{name}"),
                None,
            )
            .await
            .map(|_| ()),
        "repo" => a.git.delete(name).await,
        _ => Ok(()),
    }
}

/// Route, site, repository, in that order; each result reported.
async fn remove_all(a: &Agent, name: &str) -> Vec<(String, Result<()>)> {
    let mut results = Vec::new();
    for what in ["route", "site", "repo"] {
        results.push((what.to_string(), remove_part(a, name, what).await));
    }
    results
}

/// Undoes what a project's record says exists, newest first; returns what was undone.
pub(super) async fn undo(a: &Agent, project: &Project) -> Vec<String> {
    let mut undone = Vec::new();
    for what in project.created.iter().rev() {
        match remove_part(a, &project.name, what).await {
            Ok(()) => undone.push(what.clone()),
            Err(e) => undone.push(format!("{what} (FAILED: {e:#})")),
        }
    }
    let _ = a.db.set_created(&project.id, &[]);
    undone
}

fn spawn(agent: Arc<Agent>, id: String) {
    tokio::spawn(async move {
        let Ok(_permit) = agent.slots.clone().acquire_owned().await else {
            return;
        };
        let result = pipeline(&agent, &id).await;
        if result.is_ok() {
            agent.creations.success.inc();
        }
        if let Err(err) = result {
            let message = format!("{err:#}");
            tracing::warn!(project = %id, error = %message, "creation failed");
            if let Ok(Some(project)) = agent.db.find(&id) {
                agent
                    .creations
                    .failures
                    .with_label_values(&[project.status.as_str()])
                    .inc();
                let undone = undo(&agent, &project).await;
                let _ = agent.db.set_undone(&id, &undone);
                let _ = agent.db.event(
                    &id,
                    "undo",
                    "done",
                    &if undone.is_empty() {
                        "nothing to undo".into()
                    } else {
                        format!("undone: {}", undone.join(", "))
                    },
                );
            }
            let _ = agent
                .db
                .set_status(&id, ProjectStatus::Failed, Some(&message));
        }
    });
}

async fn step<T>(
    a: &Agent,
    id: &str,
    name: &str,
    status: ProjectStatus,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    a.db.set_status(id, status, None)?;
    a.db.event(id, name, "started", "")?;
    let started = std::time::Instant::now();
    match work.await {
        Ok(v) => {
            a.db.event(
                id,
                name,
                "done",
                &format!("{} ms", started.elapsed().as_millis()),
            )?;
            Ok(v)
        }
        Err(e) => {
            a.db.event(id, name, "failed", &format!("{e:#}"))?;
            Err(e.context(format!("{name} failed")))
        }
    }
}

async fn pipeline(a: &Agent, id: &str) -> Result<()> {
    let project = a.db.find(id)?.context("the project record vanished")?;
    let name = project.name.clone();
    let log = a.log_dir.join(format!("{id}.log"));
    let mut created: Vec<String> = Vec::new();

    let files = step(
        a,
        id,
        "generate",
        ProjectStatus::Generating,
        super::generate::generate(&a.db, &a.llm, a.max_attempts, id, &project.prompt),
    )
    .await?;

    let repo = step(a, id, "commit", ProjectStatus::Committing, async {
        let url = a.git.create(&name, &log).await?;
        created.push("repo".into());
        a.db.set_created(id, &created)?;
        a.git
            .push(
                &name,
                &files,
                &format!(
                    "{}\n\nGenerated by tfgrid-compose from the prompt:\n{}",
                    name, project.prompt
                ),
                &log,
            )
            .await?;
        Ok(url)
    })
    .await?;
    a.db.set_urls(id, Some(&repo), None)?;

    step(a, id, "publish", ProjectStatus::Publishing, async {
        a.gateway
            .call(
                reqwest::Method::PUT,
                &format!("/api/v1/sites/{name}"),
                Some(json!({"files": files})),
            )
            .await?;
        created.push("site".into());
        a.db.set_created(id, &created)?;
        a.gateway
            .call(
                reqwest::Method::POST,
                "/api/v1/routes",
                Some(json!({"path": name, "backend": {"static": name}})),
            )
            .await?;
        created.push("route".into());
        a.db.set_created(id, &created)?;
        Ok(())
    })
    .await?;

    let live = format!("{}/{name}/", a.gateway.public_url);
    step(a, id, "verify", ProjectStatus::Verifying, async {
        let index = files.get("index.html").cloned().unwrap_or_default();
        verify_live(a, &name, &index).await
    })
    .await?;
    a.db.set_urls(id, None, Some(&live))?;
    a.db.set_status(id, ProjectStatus::Live, None)?;
    a.db.event(id, "live", "done", &live)?;
    Ok(())
}

/// Waits until the site `name` answers with `index` at the gateway's verify URL. One right
/// answer is enough: the gateway answers a route change only once nginx's workers from before its
/// reload have ended, so no worker with the old routes is left to answer.
///
/// Errors: after 40 tries 100 ms apart (about 4 s) without a right answer, the last problem.
pub(super) async fn verify_live(a: &Agent, name: &str, index: &str) -> Result<()> {
    let check = format!("{}/{name}/", a.gateway.verify_url);
    let mut last = String::new();
    for _ in 0..40 {
        last = match a.gateway.http.get(&check).send().await {
            Ok(r) if r.status().is_success() => {
                if r.text().await.unwrap_or_default() == index {
                    return Ok(());
                }
                "the page is not the published index.html".to_string()
            }
            Ok(r) => format!("{check} answered {}", r.status()),
            Err(e) => format!("{check}: {}", e.without_url()),
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{last}")
}
