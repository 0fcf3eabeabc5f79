//! The agent's backup and restore (`GET /api/v1/backup`, `POST /api/v1/restore`), in the
//! archive format of [`super::archive`]. A backup copies the database with SQLite's online
//! backup API, bundles each project's repository from a mirror clone of the git host (so a real
//! Gitea works too), and reads the sites and routes from the gateway; it is refused while a
//! project is in the pipeline. A restore checks everything first (the archive, then that no
//! project, repository, site or route of it exists on this stack), records the projects as
//! `restoring`, puts repositories, sites and routes back, verifies each live site, and only
//! then gives the projects their status; a failure takes back all it did.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context as _, Result, anyhow};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::agent::{Agent, St, remove_part, undo, verify_live};
use super::api::{BackupOrigin, Project, RestoreReport, SiteFiles, SiteList};
use super::archive::{self, Archive, ManifestProject};
use super::db::{Db, ProjectStatus};
use super::gateway::{Backend, Route};
use super::server::api_error;
use super::site::{check_name, check_path};

/// A refusal or failure: the HTTP status and a one-line message.
type Refusal = (StatusCode, String);

fn failed(e: &anyhow::Error) -> Refusal {
    (StatusCode::BAD_GATEWAY, format!("{e:#}"))
}

fn bad_archive(message: impl Into<String>) -> Refusal {
    (StatusCode::BAD_REQUEST, message.into())
}

/// The gateway's `GET /api/v1/routes`.
#[derive(Deserialize)]
struct RouteList {
    routes: Vec<Route>,
}

/// The gateway's routes now.
async fn gateway_routes(a: &Agent) -> Result<Vec<Route>> {
    Ok(a.gateway
        .fetch::<RouteList>("/api/v1/routes")
        .await?
        .map_or_else(Vec::new, |l| l.routes))
}

/// Where git's output of a backup or restore goes.
fn log(a: &Agent) -> std::path::PathBuf {
    a.log_dir.join("backup.log")
}

/// `GET /api/v1/backup`: 200 with the archive (`application/gzip`); 409 while a project is in
/// the pipeline; 502 when the git host or the gateway fails.
pub(super) async fn download(State((a, _)): St) -> Response {
    let _maintenance = a.maintenance.lock().await;
    match take(&a).await {
        Ok(bytes) => {
            let now = crate::clock::now_unix().to_string();
            if let Err(e) = crate::files::write_atomic(&a.backup_stamp, now.as_bytes(), 0o600) {
                tracing::warn!(error = %format!("{e:#}"), "the backup's time not recorded");
            }
            (
                [
                    (header::CONTENT_TYPE, "application/gzip"),
                    (header::CACHE_CONTROL, "no-store"),
                ],
                bytes,
            )
                .into_response()
        }
        Err((status, message)) => {
            tracing::warn!(error = %message, "backup refused");
            api_error(status, &message).into_response()
        }
    }
}

async fn take(a: &Agent) -> Result<Vec<u8>, Refusal> {
    let work = tempfile::tempdir().map_err(|e| failed(&e.into()))?;
    let copy = work.path().join(archive::DATABASE);
    a.db.backup_to(&copy).map_err(|e| failed(&e))?;
    let database = std::fs::read(&copy).map_err(|e| failed(&e.into()))?;
    let projects = Db::open(&copy)
        .and_then(|db| db.list())
        .map_err(|e| failed(&e))?;
    if let Some(busy) = projects.iter().find(|p| p.status.is_active()) {
        return Err((
            StatusCode::CONFLICT,
            format!(
                "project `{}` is {}; back up once it is live or failed",
                busy.name, busy.status
            ),
        ));
    }
    let mut files = BTreeMap::from([(archive::DATABASE.to_string(), database)]);
    let routes = gateway_routes(a).await.map_err(|e| failed(&e))?;
    files.insert(
        archive::ROUTES.into(),
        serde_json::to_vec_pretty(&routes).map_err(|e| failed(&e.into()))?,
    );
    let has = |p: &Project, what: &str| p.created.iter().any(|c| c == what);
    let sites: BTreeSet<String> = routes
        .iter()
        .filter_map(|r| match &r.backend {
            Backend::Static(site) => Some(site.clone()),
            Backend::Upstream(_) => None,
        })
        .chain(
            projects
                .iter()
                .filter(|p| has(p, "site"))
                .map(|p| p.name.clone()),
        )
        .collect();
    for site in &sites {
        let found = a
            .gateway
            .fetch::<SiteFiles>(&format!("/api/v1/sites/{site}"))
            .await
            .map_err(|e| failed(&e))?
            .ok_or_else(|| failed(&anyhow!("the gateway has no site `{site}`")))?;
        for (path, text) in found.files {
            files.insert(archive::site_path(site, &path), text.into_bytes());
        }
    }
    for project in projects.iter().filter(|p| has(p, "repo")) {
        let bundle = work.path().join(format!("{}.bundle", project.name));
        a.git
            .bundle(&project.name, &bundle, &log(a))
            .await
            .map_err(|e| failed(&e))?;
        let bytes = std::fs::read(&bundle).map_err(|e| failed(&e.into()))?;
        files.insert(archive::bundle_path(&project.name), bytes);
    }
    let listed = projects
        .iter()
        .map(|p| ManifestProject {
            id: p.id.clone(),
            name: p.name.clone(),
            status: p.status,
            created: p.created.clone(),
        })
        .collect();
    let archive = Archive::new(&a.gateway.public_url, listed, files);
    tracing::info!(
        projects = archive.manifest.projects.len(),
        files = archive.files.len(),
        "backup taken"
    );
    archive.to_bytes().map_err(|e| failed(&e))
}

/// `POST /api/v1/restore` with an archive as the body: 200 [`RestoreReport`]; 400 for an
/// archive that is damaged or of another format; 409 naming what exists already (nothing was
/// changed); 502 when a part fails (everything restored so far is taken back).
pub(super) async fn upload(State((a, _)): St, body: Bytes) -> Response {
    let _maintenance = a.maintenance.lock().await;
    match restore(&a, &body).await {
        Ok(report) => Json(report).into_response(),
        Err((status, message)) => {
            tracing::warn!(error = %message, "restore refused");
            api_error(status, &message).into_response()
        }
    }
}

/// What a restore brings back, read and checked from the archive before anything changes.
struct Plan {
    archive: Archive,
    /// Each project's record and events, from the archive's database.
    projects: Vec<(Project, Vec<super::api::Event>)>,
    sites: BTreeMap<String, super::site::Files>,
    routes: Vec<Route>,
}

fn plan(bytes: &[u8]) -> Result<Plan, Refusal> {
    let archive = Archive::read(bytes).map_err(|e| bad_archive(e.message))?;
    let work = tempfile::tempdir().map_err(|e| failed(&e.into()))?;
    let copy = work.path().join(archive::DATABASE);
    std::fs::write(&copy, &archive.files[archive::DATABASE]).map_err(|e| failed(&e.into()))?;
    let db = Db::open(&copy).map_err(|e| bad_archive(format!("the archive's database: {e:#}")))?;
    let mut projects = Vec::new();
    for listed in &archive.manifest.projects {
        let record = db
            .find(&listed.id)
            .map_err(|e| bad_archive(format!("the archive's database: {e:#}")))?
            .filter(|p| p.name == listed.name)
            .ok_or_else(|| {
                bad_archive(format!(
                    "project `{}` is in the manifest but not in the archive's database",
                    listed.name
                ))
            })?;
        check_name(&record.name).map_err(|e| bad_archive(format!("project name: {e}")))?;
        let events = db.events(&record.id, 0).map_err(|e| failed(&e))?;
        if listed.created.iter().any(|c| c == "repo") && archive.bundle(&record.name).is_none() {
            return Err(bad_archive(format!(
                "the archive has no repository bundle for `{}`",
                record.name
            )));
        }
        projects.push((
            Project {
                created: listed.created.clone(),
                status: listed.status,
                ..record
            },
            events,
        ));
    }
    let sites = archive.sites().map_err(|e| bad_archive(e.message))?;
    for (site, files) in &sites {
        check_name(site).map_err(|e| bad_archive(format!("site name: {e}")))?;
        if let Some(bad) = files.keys().find_map(|p| check_path(p).err()) {
            return Err(bad_archive(format!("site `{site}`: {bad}")));
        }
    }
    let routes: Vec<Route> = serde_json::from_slice(
        archive
            .files
            .get(archive::ROUTES)
            .ok_or_else(|| bad_archive(format!("the archive has no `{}`", archive::ROUTES)))?,
    )
    .map_err(|e| bad_archive(format!("`{}`: {e}", archive::ROUTES)))?;
    for (project, _) in &projects {
        let has = |what: &str| project.created.iter().any(|c| c == what);
        if has("site") && !sites.contains_key(&project.name) {
            return Err(bad_archive(format!(
                "the archive has no site for `{}`",
                project.name
            )));
        }
        if has("route") && !routes.iter().any(|r| r.path == project.name) {
            return Err(bad_archive(format!(
                "the archive has no route for `{}`",
                project.name
            )));
        }
    }
    Ok(Plan {
        archive,
        projects,
        sites,
        routes,
    })
}

/// Everything of the plan that this stack has already, as `project `a``, `route `/a/``, ….
async fn taken(a: &Agent, plan: &Plan) -> Result<Vec<String>> {
    let mut taken = Vec::new();
    for (project, _) in &plan.projects {
        for key in [&project.name, &project.id] {
            if let Some(there) = a.db.find(key)?
                && there.status != ProjectStatus::Deleted
            {
                taken.push(format!("project `{}`", there.name));
                break;
            }
        }
        if project.created.iter().any(|c| c == "repo") && a.git.exists(&project.name).await? {
            taken.push(format!("repository of `{}`", project.name));
        }
    }
    let sites = a
        .gateway
        .fetch::<SiteList>("/api/v1/sites")
        .await?
        .map_or_else(Vec::new, |l| l.sites);
    taken.extend(
        plan.sites
            .keys()
            .filter(|s| sites.contains(s))
            .map(|s| format!("site `{s}`")),
    );
    let routes = gateway_routes(a).await?;
    taken.extend(
        plan.routes
            .iter()
            .filter(|r| routes.iter().any(|there| there.path == r.path))
            .map(|r| format!("route `/{}/`", r.path)),
    );
    Ok(taken)
}

async fn restore(a: &Agent, bytes: &[u8]) -> Result<RestoreReport, Refusal> {
    let plan = plan(bytes)?;
    let taken = taken(a, &plan).await.map_err(|e| failed(&e))?;
    let conflict = |taken: &[String]| {
        (
            StatusCode::CONFLICT,
            format!(
                "already on this stack: {}; nothing was restored",
                taken.join(", ")
            ),
        )
    };
    if !taken.is_empty() {
        return Err(conflict(&taken));
    }
    if let Err(names) =
        a.db.insert_restored(&plan.projects)
            .map_err(|e| failed(&e))?
    {
        let taken: Vec<String> = names.iter().map(|n| format!("project `{n}`")).collect();
        return Err(conflict(&taken));
    }
    let mut done = Done::default();
    match put_back(a, &plan, &mut done).await {
        Ok(report) => Ok(report),
        Err(err) => {
            let message = format!("{err:#}");
            take_back(a, &plan, &done).await;
            Err((
                StatusCode::BAD_GATEWAY,
                format!("{message}; everything restored so far was taken back"),
            ))
        }
    }
}

/// What a restore has put back so far beyond the projects' own parts (which their records list).
#[derive(Default)]
struct Done {
    /// Repository URLs users clone from, by project id.
    repos: BTreeMap<String, String>,
    sites: Vec<String>,
    routes: Vec<String>,
}

/// Records that `what` of a restored project exists now, so that a restart undoes it.
fn record_part(a: &Agent, project: &Project, what: &str) -> Result<()> {
    let mut created =
        a.db.find(&project.id)?
            .map(|p| p.created)
            .unwrap_or_default();
    created.push(what.into());
    a.db.set_created(&project.id, &created)
}

async fn put_back(a: &Agent, plan: &Plan, done: &mut Done) -> Result<RestoreReport> {
    let work = tempfile::tempdir()?;
    let owner = |name: &str| plan.projects.iter().find(|(p, _)| p.name == name);
    for (project, _) in &plan.projects {
        let Some(bundle) = plan.archive.bundle(&project.name) else {
            continue;
        };
        let url = a.git.create(&project.name, &log(a)).await?;
        done.repos.insert(project.id.clone(), url);
        record_part(a, project, "repo")?;
        let file = work.path().join(format!("{}.bundle", project.name));
        std::fs::write(&file, bundle)?;
        a.git.push_bundle(&project.name, &file, &log(a)).await?;
    }
    for (site, files) in &plan.sites {
        a.gateway
            .call(
                reqwest::Method::PUT,
                &format!("/api/v1/sites/{site}"),
                Some(json!({"files": files})),
            )
            .await
            .with_context(|| format!("cannot publish site `{site}`"))?;
        match owner(site) {
            Some((project, _)) => record_part(a, project, "site")?,
            None => done.sites.push(site.clone()),
        }
    }
    for route in &plan.routes {
        a.gateway
            .call(
                reqwest::Method::POST,
                "/api/v1/routes",
                Some(serde_json::to_value(route)?),
            )
            .await
            .with_context(|| format!("cannot add route `/{}/`", route.path))?;
        match owner(&route.path) {
            Some((project, _)) => record_part(a, project, "route")?,
            None => done.routes.push(route.path.clone()),
        }
    }
    let public_url = &a.gateway.public_url;
    let mut restored = Vec::new();
    for (project, _) in &plan.projects {
        let has = |what: &str| project.created.iter().any(|c| c == what);
        let live = project.status == ProjectStatus::Live && has("route") && has("site");
        if live {
            let index = plan.sites[&project.name]
                .get("index.html")
                .cloned()
                .unwrap_or_default();
            verify_live(a, &project.name, &index)
                .await
                .with_context(|| format!("`{}` did not go live", project.name))?;
        }
        restored.push((project, live));
    }
    let origin = BackupOrigin {
        public_url: plan.archive.manifest.public_url.clone(),
        created_at: plan.archive.manifest.created_at,
    };
    let mut projects = Vec::new();
    for (project, live) in restored {
        let live_url = live.then(|| format!("{public_url}/{}/", project.name));
        a.db.finish_restore(
            &project.id,
            project.status,
            &project.created,
            done.repos.get(&project.id).map(String::as_str),
            live_url.as_deref(),
        )?;
        a.db.event(
            &project.id,
            "restore",
            "done",
            &format!(
                "restored from the backup of {} taken {}",
                origin.public_url, plan.archive.manifest.created
            ),
        )?;
        projects.extend(a.db.find(&project.id)?);
    }
    Ok(RestoreReport {
        from: origin,
        projects,
        routes: plan.routes.iter().map(|r| r.path.clone()).collect(),
        sites: plan.sites.keys().cloned().collect(),
    })
}

/// Undoes a failed restore: each project's parts (as its record lists them) and record, then
/// the other routes and sites. What cannot be removed is logged.
async fn take_back(a: &Agent, plan: &Plan, done: &Done) {
    for (project, _) in &plan.projects {
        if let Ok(Some(record)) = a.db.find(&project.id) {
            let undone = undo(a, &record).await;
            tracing::info!(project = %project.name, ?undone, "restore taken back");
        }
        if let Err(e) = a.db.remove(&project.id) {
            tracing::warn!(project = %project.name, error = %format!("{e:#}"), "cannot forget a restored record");
        }
    }
    for (what, names) in [("route", &done.routes), ("site", &done.sites)] {
        for name in names {
            if let Err(e) = remove_part(a, name, what).await {
                tracing::warn!(what, name, error = %format!("{e:#}"), "cannot take back");
            }
        }
    }
}
