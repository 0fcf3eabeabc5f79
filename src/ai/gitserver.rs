//! `serve git`: the repository API of the AI stack's git host. It speaks the subset of the
//! Gitea/Forgejo REST API the agent's `gitea` client uses, so the agent talks to this host and to a
//! real Gitea the same way:
//! - `POST /api/v1/orgs/{org}/repos {name, …}` → 201 `{name, full_name, clone_url, …}`, 409 if it
//!   exists, 422 for a bad name;
//! - `GET /api/v1/repos/{owner}/{repo}` → 200 or 404;
//! - `DELETE /api/v1/repos/{owner}/{repo}` → 204, or 404 when it is not there;
//! - `GET /api/v1/version`.
//!
//! Repositories are bare folders `root/<org>/<name>.git` with `http.receivepack` on; nginx serves
//! them over smart HTTP (`git http-backend` through fcgiwrap) and only lets a push through with
//! the same token.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::server::{ApiError, Common, api_error, serve};
use super::site::check_name;
use crate::process::Runner;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GitServerConfig {
    pub listen: String,
    pub token_file: PathBuf,
    /// The read-only token Prometheus scrapes `/metrics` with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_token_file: Option<PathBuf>,
    /// Holds `<org>/<name>.git`.
    pub root: PathBuf,
    /// Base of the clone URLs it hands out, e.g. `http://GATEWAY/git`.
    pub public_url: String,
    #[serde(default = "default_rate")]
    pub rate_limit: u32,
}

fn default_rate() -> u32 {
    20
}

#[derive(Debug, Deserialize)]
struct CreateRepo {
    name: String,
    #[serde(default)]
    default_branch: Option<String>,
    // Accepted as Gitea does, and not needed by a bare repository.
    #[serde(default)]
    #[allow(dead_code)]
    private: Option<bool>,
    #[serde(default)]
    #[allow(dead_code)]
    auto_init: Option<bool>,
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
}

struct GitServer {
    config: GitServerConfig,
    runner: Runner,
    /// Serialises creations and deletions.
    lock: tokio::sync::Mutex<()>,
}

impl GitServer {
    fn dir(&self, org: &str, name: &str) -> PathBuf {
        self.config.root.join(org).join(format!("{name}.git"))
    }

    /// git's own output; a name never starts with a dot, so this is never a repository.
    fn log(&self) -> PathBuf {
        self.config.root.join(".git-commands.log")
    }

    fn describe(&self, org: &str, name: &str) -> serde_json::Value {
        let clone_url = format!(
            "{}/{org}/{name}.git",
            self.config.public_url.trim_end_matches('/')
        );
        json!({
            "name": name,
            "full_name": format!("{org}/{name}"),
            "owner": {"login": org},
            "clone_url": clone_url,
            "html_url": clone_url.trim_end_matches(".git"),
            "default_branch": "main",
            "empty": true,
        })
    }
}

type Shared = Arc<GitServer>;

fn names(org: &str, name: &str) -> Result<(), ApiError> {
    for value in [org, name] {
        check_name(value)
            .map_err(|e| api_error(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()))?;
    }
    Ok(())
}

async fn version() -> Json<serde_json::Value> {
    Json(json!({"version": concat!("tfgrid-compose ", env!("CARGO_PKG_VERSION"))}))
}

async fn create(
    State(g): State<Shared>,
    Path(org): Path<String>,
    body: Result<Json<CreateRepo>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(body) = match body {
        Ok(b) => b,
        Err(e) => {
            return api_error(StatusCode::UNPROCESSABLE_ENTITY, &e.body_text()).into_response();
        }
    };
    if let Err(e) = names(&org, &body.name) {
        return e.into_response();
    }
    if body.default_branch.as_deref().is_some_and(|b| b != "main") {
        return api_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "only `main` is supported as the default branch",
        )
        .into_response();
    }
    let _guard = g.lock.lock().await;
    let dir = g.dir(&org, &body.name);
    if dir.exists() {
        return api_error(StatusCode::CONFLICT, "the repository exists already").into_response();
    }
    match super::githost::init_bare(&g.runner, &dir, &g.log()).await {
        Ok(()) => {
            tracing::info!(org, name = body.name, "repository created");
            (StatusCode::CREATED, Json(g.describe(&org, &body.name))).into_response()
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            tracing::error!(
                org,
                name = body.name,
                error = format!("{e:#}"),
                "cannot create a repository"
            );
            api_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot create the repository",
            )
            .into_response()
        }
    }
}

async fn show(State(g): State<Shared>, Path((org, name)): Path<(String, String)>) -> Response {
    if let Err(e) = names(&org, &name) {
        return e.into_response();
    }
    if g.dir(&org, &name).is_dir() {
        Json(g.describe(&org, &name)).into_response()
    } else {
        api_error(StatusCode::NOT_FOUND, "no such repository").into_response()
    }
}

async fn remove(State(g): State<Shared>, Path((org, name)): Path<(String, String)>) -> Response {
    if let Err(e) = names(&org, &name) {
        return e.into_response();
    }
    let _guard = g.lock.lock().await;
    match std::fs::remove_dir_all(g.dir(&org, &name)) {
        Ok(()) => {
            tracing::info!(org, name, "repository deleted");
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            api_error(StatusCode::NOT_FOUND, "no such repository").into_response()
        }
        Err(e) => {
            tracing::error!(org, name, error = %e, "cannot delete a repository");
            api_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot delete the repository",
            )
            .into_response()
        }
    }
}

pub fn router(config: GitServerConfig, common: Common) -> Router {
    let g = Arc::new(GitServer {
        config,
        runner: Runner::real(),
        lock: tokio::sync::Mutex::new(()),
    });
    Router::new()
        .route("/api/v1/version", get(version))
        .route("/api/v1/orgs/{org}/repos", post(create))
        .route("/api/v1/repos/{owner}/{repo}", get(show).delete(remove))
        .route(
            "/metrics",
            get(move || async move { super::server::metrics_response(common.metrics_text("")) }),
        )
        .with_state(g)
}

pub async fn run(config: GitServerConfig) -> Result<()> {
    let common = Common::new(
        &config.token_file,
        config.metrics_token_file.as_deref(),
        config.rate_limit,
        "git",
    )?;
    std::fs::create_dir_all(&config.root)?;
    tracing::info!(listen = config.listen, root = %config.root.display(), "git host API starting");
    let listen = config.listen.clone();
    serve(&listen, &[], router(config, common.clone()), common).await
}
