//! `serve gateway`: the route API in front of nginx. Every route is one include file; a change is
//! checked with `nginx -t` before the reload and rolled back when the check or the reload fails.
//! Changes that arrive together are applied as one batch ([`Gateway::apply_changes`]): every file
//! written, one `nginx -t`, one reload; a batch that fails the check is applied change by change,
//! so that one bad route refuses only itself.
//! Routes persist in `routes.json` and are written again at start. Sites (static folders) are
//! uploaded through the API into the web root, each replaced atomically, and read back (for a
//! backup) as they were uploaded.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::api::{SiteFiles, SiteList};
use super::server::{ApiError, Common, api_error, serve};
use super::site::{Files, check_name, check_path};
use crate::process::{Cmd, Io, Runner};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// `127.0.0.1:7701`.
    pub listen: String,
    pub token_file: PathBuf,
    /// The read-only token Prometheus scrapes `/metrics` with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_token_file: Option<PathBuf>,
    /// Holds `routes.json`, `routes/*.conf` (included by nginx) and `www/` (the web root).
    pub state_dir: PathBuf,
    /// The nginx command line that names its config: `[nginx, -p, DIR, -c, CONF, -e, LOG]`;
    /// `-t` and `-s reload` are appended.
    pub nginx: Vec<String>,
    /// Requests per second per client address (bursts of twice that).
    #[serde(default = "default_rate")]
    pub rate_limit: u32,
}

fn default_rate() -> u32 {
    10
}

/// How long a reload is given to take effect when the gateway cannot see nginx's workers (its
/// `nginx` command names no `-p` prefix, so no pid file): the time it otherwise waits for the
/// workers from before the reload to end. A reload signalled while the previous one is still
/// starting workers can leave a worker of an older configuration serving (seen with nginx 1.22).
const UNSEEN_WORKERS_SETTLE: std::time::Duration = std::time::Duration::from_millis(500);

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Backend {
    /// A site in the web root, by name.
    Static(String),
    /// `http://HOST[:PORT][/PATH]`.
    Upstream(String),
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// The first path segment it answers under (`/NAME/`); also its id.
    pub path: String,
    pub backend: Backend,
}

/// A route change waiting for its batch: `route` written at `path`, or the route at `path`
/// removed when `None`; `reply` says whether it was applied (`true`: a route was created).
/// What a path's route was on disk before a batch wrote it, to put back if the batch is refused.
struct OnDisk {
    include: Option<Vec<u8>>,
    link: Option<PathBuf>,
}

/// The include file that holds [`super::nginx::static_routes`], named so no route's file can be
/// (a route's path starts with a letter or digit).
const STATIC_ROUTES: &str = "_static.conf";

struct Change {
    path: String,
    route: Option<Route>,
    reply: tokio::sync::oneshot::Sender<Result<bool, String>>,
}

struct Gateway {
    config: GatewayConfig,
    /// Changes not yet applied, in the order they arrived; [`Gateway::apply_changes`] takes them
    /// all at once, woken by `arrived`.
    pending: std::sync::Mutex<Vec<Change>>,
    arrived: tokio::sync::Notify,
    /// Reloads since start (`/metrics`).
    reloads: std::sync::atomic::AtomicU64,
    /// Serialises every change of routes and sites.
    routes: tokio::sync::Mutex<BTreeMap<String, Route>>,
}

impl Gateway {
    fn routes_dir(&self) -> PathBuf {
        self.config.state_dir.join("routes")
    }
    fn www(&self) -> PathBuf {
        self.config.state_dir.join("www")
    }
    /// Where static routes are links to their sites ([`super::nginx::static_routes`]).
    fn links_dir(&self) -> PathBuf {
        self.config.state_dir.join("static")
    }
    fn include_file(&self, path: &str) -> PathBuf {
        self.routes_dir().join(format!("{path}.conf"))
    }

    async fn nginx(&self, extra: &[&str]) -> Result<()> {
        let Some((program, args)) = self.config.nginx.split_first() else {
            anyhow::bail!("`nginx` is empty in the gateway config")
        };
        let log = self.config.state_dir.join("nginx-control.log");
        let cmd = Cmd::new(program.clone())
            .args(args.iter().cloned())
            .args(extra.iter().copied())
            .io(Io::Log(log))
            .timeout(std::time::Duration::from_secs(30));
        Runner::real().run(&cmd).await.map(|_| ())
    }

    /// Writes what `route` at `path` needs (`None`: the route removed): a static route its link
    /// `static/PATH` → `../www/SITE` and no include file; an upstream route its include file (its
    /// old link, if any, goes after the reload: [`Gateway::apply_batch`]). Returns what was there.
    fn write_route(&self, path: &str, route: Option<&Route>) -> Result<OnDisk> {
        let file = self.include_file(path);
        let link = self.links_dir().join(path);
        let old = OnDisk {
            include: std::fs::read(&file).ok(),
            link: std::fs::read_link(&link).ok(),
        };
        match route {
            Some(Route {
                backend: Backend::Static(site),
                ..
            }) => {
                crate::files::symlink_atomic(&link, &std::path::Path::new("../www").join(site))?;
                let _ = std::fs::remove_file(&file);
            }
            Some(Route {
                backend: Backend::Upstream(url),
                ..
            }) => {
                // A static route has no include file: [`STATIC_ROUTES`] serves it.
                let text = super::nginx::route(path, &super::nginx::upstream_body(url));
                crate::files::write_atomic(&file, text.as_bytes(), 0o644)?;
            }
            None => {
                let _ = std::fs::remove_file(&file);
                let _ = std::fs::remove_file(&link);
            }
        }
        Ok(old)
    }

    /// Puts back what [`Gateway::write_route`] returned.
    fn restore_route(&self, path: &str, old: &OnDisk) -> Result<()> {
        let file = self.include_file(path);
        let link = self.links_dir().join(path);
        match &old.include {
            Some(bytes) => crate::files::write_atomic(&file, bytes, 0o644)?,
            None => {
                let _ = std::fs::remove_file(&file);
            }
        }
        match &old.link {
            Some(target) => crate::files::symlink_atomic(&link, target),
            None => {
                let _ = std::fs::remove_file(&link);
                Ok(())
            }
        }
    }

    /// Queues a change for the next batch and waits until it is applied (`Ok(true)`: a route
    /// was created) or refused (the reason: `nginx -t`'s, the reload's or the disk's).
    async fn change(&self, path: String, route: Option<Route>) -> Result<bool, String> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Change { path, route, reply });
        self.arrived.notify_one();
        answer
            .await
            .unwrap_or_else(|_| Err("the gateway is stopping".into()))
    }

    /// Runs for the gateway's life: waits for changes, then applies everything pending as one
    /// batch under the routes lock; changes that arrive while a batch is applied (its `nginx -t`,
    /// its reload and the wait for the old workers to end) form the next batch, so a lone change
    /// waits for nothing and many at once share few reloads. nginx reads the include files only
    /// at the reload, after every file of the batch is written whole (each atomically), so it
    /// never serves half a batch or half a file.
    async fn apply_changes(self: Arc<Self>) {
        loop {
            self.arrived.notified().await;
            let batch = std::mem::take(
                &mut *self
                    .pending
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
            if batch.is_empty() {
                continue;
            }
            let mut routes = self.routes.lock().await;
            self.apply_batch(&mut routes, batch).await;
        }
    }

    /// Every change written, then, when one of them touches nginx's configuration (an upstream
    /// route, or a path that had one), one `nginx -t` and one reload; then `routes` and
    /// `routes.json` updated in the changes' order and each change answered. A batch of static
    /// routes only (links) needs no reload. When the check fails and the batch holds more than
    /// one change, the files are put back and each change is checked alone, in order, keeping
    /// those nginx accepts; a failed reload refuses every change kept.
    async fn apply_batch(&self, routes: &mut BTreeMap<String, Route>, batch: Vec<Change>) {
        let mut answers: Vec<Option<Result<bool, String>>> = batch.iter().map(|_| None).collect();
        let mut written: Vec<(usize, OnDisk)> = Vec::new();
        for (i, change) in batch.iter().enumerate() {
            match self.write_route(&change.path, change.route.as_ref()) {
                Ok(old) => written.push((i, old)),
                Err(err) => answers[i] = Some(Err(format!("{err:#}"))),
            }
        }
        let configures = |i: usize, old: &OnDisk| {
            old.include.is_some()
                || matches!(
                    batch[i].route,
                    Some(Route {
                        backend: Backend::Upstream(_),
                        ..
                    })
                )
        };
        let reloads = written.iter().any(|(i, old)| configures(*i, old));
        let mut check = if reloads {
            self.nginx(&["-t"]).await
        } else {
            Ok(())
        };
        if check.is_err() && written.len() > 1 {
            for (i, old) in written.iter().rev() {
                let _ = self.restore_route(&batch[*i].path, old);
            }
            let all = std::mem::take(&mut written);
            for (i, _) in all {
                let change = &batch[i];
                let old = match self.write_route(&change.path, change.route.as_ref()) {
                    Ok(old) => old,
                    Err(err) => {
                        answers[i] = Some(Err(format!("{err:#}")));
                        continue;
                    }
                };
                if !configures(i, &old) {
                    written.push((i, old));
                    continue;
                }
                match self.nginx(&["-t"]).await {
                    Ok(()) => written.push((i, old)),
                    Err(err) => {
                        let _ = self.restore_route(&change.path, &old);
                        answers[i] = Some(Err(format!(
                            "{:#}",
                            err.context("nginx -t rejected the configuration")
                        )));
                    }
                }
            }
            check = Ok(());
        }
        let result = match check {
            Ok(()) if written.iter().any(|(i, old)| configures(*i, old)) => self.reload().await,
            Ok(()) => Ok(()),
            Err(e) => Err(e.context("nginx -t rejected the configuration")),
        };
        if let Err(err) = result {
            for (i, old) in written.iter().rev() {
                let _ = self.restore_route(&batch[*i].path, old);
                answers[*i] = Some(Err(format!("{err:#}")));
            }
        } else {
            for (i, _) in &written {
                let change = &batch[*i];
                let created = match &change.route {
                    Some(route) => {
                        if let Backend::Upstream(_) = route.backend {
                            // Served by its include file since the reload: its old link goes.
                            let _ = std::fs::remove_file(self.links_dir().join(&change.path));
                        }
                        routes.insert(change.path.clone(), route.clone()).is_none()
                    }
                    None => {
                        routes.remove(&change.path);
                        false
                    }
                };
                answers[*i] = Some(Ok(created));
            }
            if let Err(err) = self.save(routes) {
                for (i, _) in &written {
                    answers[*i] = Some(Err(format!("{err:#}")));
                }
            }
        }
        for (change, answer) in batch.into_iter().zip(answers) {
            let _ = change
                .reply
                .send(answer.unwrap_or_else(|| Err("not applied".into())));
        }
    }

    /// `nginx -s reload`, answered once the workers from before it have ended (or, when they
    /// cannot be seen, [`UNSEEN_WORKERS_SETTLE`] after it), so the next reload never meets one
    /// still starting. Callers hold the routes lock.
    async fn reload(&self) -> Result<()> {
        let old_workers = self.workers();
        let result = self
            .nginx(&["-s", "reload"])
            .await
            .context("nginx reload failed");
        if result.is_ok() {
            if old_workers.is_empty() {
                tokio::time::sleep(UNSEEN_WORKERS_SETTLE).await;
            } else {
                until_gone(&old_workers).await;
            }
        }
        self.reloads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        result
    }

    /// The pids of nginx's worker processes now: the children of the master named by the pid
    /// file of the prefix (`-p DIR`) in the gateway's nginx command line. Empty when unknown.
    fn workers(&self) -> Vec<u32> {
        let prefix = self
            .config
            .nginx
            .iter()
            .position(|a| a == "-p")
            .and_then(|i| self.config.nginx.get(i + 1));
        let master = prefix
            .and_then(|dir| std::fs::read_to_string(super::nginx::pid_file(dir)).ok())
            .and_then(|pid| pid.trim().parse::<u32>().ok());
        master
            .and_then(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()
            })
            .map(|list| {
                list.split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn save(&self, routes: &BTreeMap<String, Route>) -> Result<()> {
        let list: Vec<&Route> = routes.values().collect();
        crate::files::write_atomic(
            &self.config.state_dir.join("routes.json"),
            serde_json::to_string_pretty(&list)?.as_bytes(),
            0o600,
        )
    }
}

/// Waits (5 s at most) until the worker processes `pids` have ended. A reload is nginx's master
/// starting new workers and then telling the old ones to stop accepting and finish: until they
/// have, an old worker may still take a request with the old routes (nginx's "Controlling
/// nginx": <https://nginx.org/en/docs/control.html>). A change is answered once only new workers
/// serve, so a route just added never answers 404 afterwards.
async fn until_gone(pids: &[u32]) {
    let started = std::time::Instant::now();
    while pids.iter().any(|pid| crate::interrupt::live(*pid))
        && started.elapsed() < std::time::Duration::from_secs(5)
    {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Starts the gateway: restores the routes, then serves until SIGINT/SIGTERM.
pub async fn run(config: GatewayConfig) -> Result<()> {
    let common = Common::new(
        &config.token_file,
        config.metrics_token_file.as_deref(),
        config.rate_limit,
        "gateway",
    )?;
    for dir in [
        config.state_dir.clone(),
        config.state_dir.join("routes"),
        config.state_dir.join("www"),
        config.state_dir.join("static"),
    ] {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create `{}`", dir.display()))?;
    }
    let saved: Vec<Route> = match std::fs::read_to_string(config.state_dir.join("routes.json")) {
        Ok(text) => serde_json::from_str(&text).context("routes.json is damaged")?,
        Err(_) => Vec::new(),
    };
    let gateway = Gateway {
        config: config.clone(),
        pending: std::sync::Mutex::new(Vec::new()),
        arrived: tokio::sync::Notify::new(),
        reloads: std::sync::atomic::AtomicU64::new(0),
        routes: tokio::sync::Mutex::new(BTreeMap::new()),
    };
    // The include folder and the links hold exactly the saved routes.
    for dir in [gateway.routes_dir(), gateway.links_dir()] {
        for entry in std::fs::read_dir(dir)?.flatten() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    crate::files::write_atomic(
        &gateway.routes_dir().join(STATIC_ROUTES),
        super::nginx::static_routes(&gateway.links_dir().display().to_string()).as_bytes(),
        0o644,
    )?;
    for route in &saved {
        gateway.write_route(&route.path, Some(route))?;
    }
    if let Err(err) = gateway.reload().await {
        tracing::warn!(error = %format!("{err:#}"), "nginx reload at start failed; routes apply at \
            the next reload");
    }
    *gateway.routes.lock().await = saved.into_iter().map(|r| (r.path.clone(), r)).collect();
    tracing::info!(routes = gateway.routes.lock().await.len(), listen = %config.listen, "gateway started");
    let gateway = Arc::new(gateway);
    tokio::spawn(gateway.clone().apply_changes());
    let state = (gateway, common.clone());
    let api = Router::new()
        .route("/api/v1/health", get(health))
        .route("/api/v1/routes", get(list).post(add))
        .route("/api/v1/routes/{id}", delete(remove))
        .route("/api/v1/sites", get(list_sites))
        .route(
            "/api/v1/sites/{name}",
            get(get_site).put(put_site).delete(delete_site),
        )
        .route("/metrics", get(metrics))
        .with_state(state);
    serve(&config.listen, &[], api, common).await
}

type St = State<(Arc<Gateway>, Common)>;

async fn health(State((g, _)): St) -> Response {
    Json(json!({"status": "ok", "routes": g.routes.lock().await.len()})).into_response()
}

async fn metrics(State((g, common)): St) -> Response {
    let routes = g.routes.lock().await.len();
    let reloads = g.reloads.load(std::sync::atomic::Ordering::Relaxed);
    let extra = super::server::scrape_text(|r| {
        super::server::gauge(
            r,
            "tfgrid_gateway_routes",
            "Routes the gateway's nginx serves.",
            routes as f64,
        )?;
        super::server::counter(
            r,
            "tfgrid_gateway_nginx_reloads_total",
            "nginx reloads the gateway made: route changes that arrive together share one.",
            reloads as f64,
        )
    });
    super::server::metrics_response(common.metrics_text(&extra))
}

async fn list(State((g, _)): St) -> Response {
    let routes: Vec<Route> = g.routes.lock().await.values().cloned().collect();
    Json(json!({"routes": routes})).into_response()
}

fn check_route(route: &Route) -> Result<(), ApiError> {
    check_name(&route.path)
        .map_err(|e| api_error(StatusCode::BAD_REQUEST, &format!("path: {e}")))?;
    match &route.backend {
        Backend::Static(site) => check_name(site)
            .map_err(|e| api_error(StatusCode::BAD_REQUEST, &format!("backend.static: {e}"))),
        Backend::Upstream(url) => {
            let rest = url.strip_prefix("http://").unwrap_or("");
            let ok = !rest.is_empty()
                && url.len() <= 200
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".:/_-[]".contains(&b))
                && !rest.contains("..");
            if ok {
                Ok(())
            } else {
                Err(api_error(
                    StatusCode::BAD_REQUEST,
                    "backend.upstream: an http://HOST[:PORT][/PATH] URL of [A-Za-z0-9.:/_-]",
                ))
            }
        }
    }
}

async fn add(
    State((g, _)): St,
    body: Result<Json<Route>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(route)) = body else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "body: expected {\"path\": NAME, \"backend\": \
            {\"static\": SITE} | {\"upstream\": URL}}",
        )
        .into_response();
    };
    if let Err(e) = check_route(&route) {
        return e.into_response();
    }
    if let Backend::Static(site) = &route.backend
        && !g.www().join(site).is_dir()
    {
        return api_error(
            StatusCode::BAD_REQUEST,
            &format!(
                "backend.static: no site `{site}`; upload it first with PUT /api/v1/sites/{site}"
            ),
        )
        .into_response();
    }
    let created = match g.change(route.path.clone(), Some(route.clone())).await {
        Ok(created) => created,
        Err(err) => {
            tracing::warn!(route = %route.path, error = %err, "route rejected");
            return api_error(StatusCode::UNPROCESSABLE_ENTITY, &err).into_response();
        }
    };
    tracing::info!(route = %route.path, "route added");
    (
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        Json(json!({"id": route.path, "route": route})),
    )
        .into_response()
}

async fn remove(State((g, _)): St, Path(id): Path<String>) -> Response {
    if let Err(e) = check_name(&id) {
        return api_error(StatusCode::BAD_REQUEST, &e).into_response();
    }
    if !g.routes.lock().await.contains_key(&id) {
        return api_error(StatusCode::NOT_FOUND, &format!("no route `{id}`")).into_response();
    }
    if let Err(err) = g.change(id.clone(), None).await {
        return api_error(StatusCode::UNPROCESSABLE_ENTITY, &err).into_response();
    }
    tracing::info!(route = %id, "route removed");
    StatusCode::NO_CONTENT.into_response()
}

async fn put_site(
    State((g, _)): St,
    Path(name): Path<String>,
    body: Result<Json<SiteFiles>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if let Err(e) = check_name(&name) {
        return api_error(StatusCode::BAD_REQUEST, &e).into_response();
    }
    let Ok(Json(body)) = body else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "body: expected {\"files\": {PATH: CONTENT}}",
        )
        .into_response();
    };
    if let Some(bad) = body.files.keys().find_map(|p| check_path(p).err()) {
        return api_error(StatusCode::BAD_REQUEST, &bad).into_response();
    }
    let _guard = g.routes.lock().await;
    let result = (|| -> Result<()> {
        let staging = tempfile::Builder::new()
            .prefix(".staging-")
            .tempdir_in(g.www())?;
        for (path, content) in &body.files {
            let target = staging.path().join(path);
            std::fs::create_dir_all(target.parent().unwrap_or(staging.path()))?;
            std::fs::write(&target, content)?;
        }
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(staging.path(), std::fs::Permissions::from_mode(0o755))?;
        let live = g.www().join(&name);
        let old = g.www().join(format!(".old-{name}"));
        let _ = std::fs::remove_dir_all(&old);
        if live.exists() {
            std::fs::rename(&live, &old)?;
        }
        std::fs::rename(staging.keep(), &live)?;
        let _ = std::fs::remove_dir_all(&old);
        Ok(())
    })();
    match result {
        Ok(()) => (
            StatusCode::CREATED,
            Json(json!({"site": name, "files": body.files.len()})),
        )
            .into_response(),
        Err(err) => {
            api_error(StatusCode::INTERNAL_SERVER_ERROR, &format!("{err:#}")).into_response()
        }
    }
}

/// `GET /api/v1/sites`: `{sites: [NAME]}`, the published sites in name order.
async fn list_sites(State((g, _)): St) -> Response {
    let _guard = g.routes.lock().await;
    let names = std::fs::read_dir(g.www()).map(|entries| {
        let mut names: Vec<String> = entries
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| check_name(n).is_ok())
            .collect();
        names.sort();
        names
    });
    match names {
        Ok(sites) => Json(SiteList { sites }).into_response(),
        Err(e) => api_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()).into_response(),
    }
}

/// Every file under `dir`, by its `/`-separated path inside it.
fn read_site(dir: &std::path::Path, prefix: &str, files: &mut Files) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = format!("{prefix}{name}");
        if entry.file_type()?.is_dir() {
            read_site(&entry.path(), &format!("{path}/"), files)?;
        } else {
            let text = String::from_utf8(std::fs::read(entry.path())?)
                .map_err(|_| anyhow::anyhow!("`{path}` is not UTF-8 text"))?;
            files.insert(path, text);
        }
    }
    Ok(())
}

/// `GET /api/v1/sites/{name}`: `{files: {PATH: CONTENT}}`, what `PUT` uploaded; 404 when there
/// is no such site.
async fn get_site(State((g, _)): St, Path(name): Path<String>) -> Response {
    if let Err(e) = check_name(&name) {
        return api_error(StatusCode::BAD_REQUEST, &e).into_response();
    }
    let _guard = g.routes.lock().await;
    let dir = g.www().join(&name);
    if !dir.is_dir() {
        return api_error(StatusCode::NOT_FOUND, &format!("no site `{name}`")).into_response();
    }
    let mut files = Files::new();
    match read_site(&dir, "", &mut files) {
        Ok(()) => Json(SiteFiles { files }).into_response(),
        Err(e) => api_error(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e:#}")).into_response(),
    }
}

async fn delete_site(State((g, _)): St, Path(name): Path<String>) -> Response {
    if let Err(e) = check_name(&name) {
        return api_error(StatusCode::BAD_REQUEST, &e).into_response();
    }
    let routes = g.routes.lock().await;
    if let Some(r) = routes
        .values()
        .find(|r| r.backend == Backend::Static(name.clone()))
    {
        return api_error(
            StatusCode::CONFLICT,
            &format!(
                "route `{}` serves this site; delete the route first",
                r.path
            ),
        )
        .into_response();
    }
    match std::fs::remove_dir_all(g.www().join(&name)) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            api_error(StatusCode::NOT_FOUND, &format!("no site `{name}`")).into_response()
        }
        Err(e) => api_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()).into_response(),
    }
}
