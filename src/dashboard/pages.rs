//! The deployment pages: the list (what `ps --json` shows), one deployment (phase timeline from
//! the journal, outputs, VMs), a phase's log with follow, patterns, and `down` behind a typed
//! confirmation. Every page is rendered from a compile-time checked template (askama).

use std::time::Duration;

use askama::Template;
use axum::extract::{Form, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use futures_util::StreamExt as _;
use serde_json::Value;

use super::Shared;
use crate::error::UserError;
use crate::ops::Target;
use crate::state::{DeploymentState, Phase};

/// How often a followed log is looked at again.
const POLL: Duration = Duration::from_millis(250);
/// How often a followed list or status is read again (the registry: a file per deployment).
const POLL_STATE: Duration = Duration::from_secs(1);
/// The most of a log a page shows at first (its end).
const LOG_TAIL: u64 = 256 * 1024;

/// A page, or a message page with the status an error deserves: a [`UserError`] (an unknown
/// id, a deployment with no AI stack) is 404 with its hint, anything else 502 or 500.
pub(crate) type Page = Result<Response, PageError>;

pub(crate) struct PageError(pub(crate) StatusCode, pub(crate) anyhow::Error);

impl From<anyhow::Error> for PageError {
    fn from(err: anyhow::Error) -> Self {
        let status = if err.chain().any(|c| c.is::<UserError>()) {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        PageError(status, err)
    }
}

#[derive(Template)]
#[template(path = "message.html")]
struct Message {
    title: String,
    message: String,
    hint: String,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let hint = self
            .1
            .chain()
            .find_map(|c| c.downcast_ref::<UserError>())
            .and_then(|u| u.hint.clone())
            .unwrap_or_default();
        let page = Message {
            title: "Cannot show this".into(),
            message: crate::secrets::redact(&format!("{:#}", self.1)),
            hint: crate::secrets::redact(&hint),
        };
        (self.0, render(&page)).into_response()
    }
}

/// The template's HTML, or a plain 500 when it cannot render.
pub(crate) fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}")).into_response(),
    }
}

pub(crate) async fn not_found() -> PageError {
    PageError(
        StatusCode::NOT_FOUND,
        UserError::new("no such page", "start from the list of deployments at /").into(),
    )
}

pub(crate) async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("assets/app.css"),
    )
        .into_response()
}

pub(crate) async fn js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("assets/app.js"),
    )
        .into_response()
}

/// A ps row as the list shows it.
pub(crate) struct Row {
    id: String,
    short: String,
    app: String,
    env: String,
    pattern: String,
    status: String,
    address: String,
    age: String,
    /// What it costs a month, as `ps` shows it (`-` when nothing or unknown).
    month: String,
}

fn rows(ps: &Value) -> Vec<Row> {
    let text = |v: &Value, k: &str| v[k].as_str().unwrap_or("-").to_string();
    ps["deployments"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|d| Row {
            id: text(d, "id"),
            short: crate::ids::ShortId::of(d["id"].as_str().unwrap_or_default()).to_string(),
            app: text(d, "app"),
            env: text(d, "env"),
            pattern: text(d, "pattern"),
            status: text(d, "status"),
            address: text(d, "primary_ip"),
            age: crate::clock::format_age(d["age_seconds"].as_u64().unwrap_or(0)),
            month: d["usd_per_month"]
                .as_f64()
                .map_or_else(|| "-".to_string(), crate::cost::usd),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "deployments.html")]
struct Deployments {
    title: &'static str,
    rows: Vec<Row>,
}

#[derive(Template)]
#[template(path = "rows.html")]
struct Rows {
    rows: Vec<Row>,
}

/// What `ps --json` prints.
async fn ps(app: &Shared) -> anyhow::Result<Value> {
    crate::ops::deployments::ps_json(&app.settings, &app.figures).await
}

pub(crate) async fn deployments(State(app): State<Shared>) -> Page {
    let rows = rows(&ps(&app).await?);
    Ok(render(&Deployments {
        title: "Deployments",
        rows,
    }))
}

/// A stream that polls `next` every [`POLL_STATE`] and sends what it answers (as event `name`) when
/// that differs from what it sent last; it ends when the server stops.
fn follow<F, Fut>(app: &Shared, name: &'static str, next: F) -> Response
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Option<String>> + Send,
{
    let stream = futures_util::stream::unfold(
        (next, None::<String>, true),
        move |(mut next, last, first)| async move {
            if !first {
                tokio::time::sleep(POLL_STATE).await;
            }
            loop {
                let now = next().await;
                if now.is_some() && now != last {
                    let event = Event::default()
                        .event(name)
                        .data(now.clone().unwrap_or_default());
                    return Some((Ok::<_, std::convert::Infallible>(event), (next, now, false)));
                }
                tokio::time::sleep(POLL_STATE).await;
            }
        },
    )
    .take_until(app.stopped());
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// `/events`: the list's rows again, rendered, each time they change.
pub(crate) async fn deployments_events(State(app): State<Shared>) -> Response {
    let shared = app.clone();
    follow(&app, "rows", move || {
        let app = shared.clone();
        async move {
            let ps = ps(&app).await.ok()?;
            Rows { rows: rows(&ps) }.render().ok()
        }
    })
}

/// The deployment named by its id in a URL, or by the short id the pages show (a prefix of 8
/// or more of its hex digits, as the CLI takes it), through the one target resolver.
pub(crate) fn target(app: &Shared, id: &str) -> anyhow::Result<(Target, DeploymentState)> {
    let not_one = || {
        UserError::new(
            format!("`{id}` is not a deployment id"),
            "pick a deployment from the list at /",
        )
    };
    let id = if crate::ids::is_deployment_id(id) {
        id.to_string()
    } else if id.len() >= crate::ids::ShortId::LEN
        && id.len() < 16
        && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        crate::ops::registry(&app.settings)
            .find(id, None)?
            .map(|entry| entry.id)
            .filter(|full| full.starts_with(id))
            .ok_or_else(not_one)?
    } else {
        return Err(not_one().into());
    };
    let target = crate::ops::resolve_target(&app.settings, Some(&id))?;
    let state = target.load()?;
    let state = state.settled(target.dir.run_alive());
    Ok((target, state))
}

pub(crate) struct PhaseRow {
    name: &'static str,
    status: String,
    duration: String,
    error: Option<String>,
    /// The file names of the logs the journal records for it.
    logs: Vec<String>,
    y: u32,
    width: u32,
}

fn phase_rows(state: &DeploymentState) -> Vec<PhaseRow> {
    let longest = state
        .journal
        .iter()
        .filter_map(|r| r.duration_ms)
        .max()
        .unwrap_or(1)
        .max(1);
    Phase::ALL
        .iter()
        .filter_map(|p| state.record(*p))
        .enumerate()
        .map(|(i, r)| {
            let ms = r
                .duration_ms
                .unwrap_or_else(|| crate::clock::now_unix().saturating_sub(r.started_at) * 1000);
            PhaseRow {
                name: r.phase.name(),
                status: serde_json::to_value(r.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                duration: crate::clock::format_duration(std::time::Duration::from_millis(ms)),
                error: r.error.as_deref().map(crate::secrets::redact),
                logs: r.logs.iter().filter_map(|l| file_name(l)).collect(),
                y: u32::try_from(i).unwrap_or(0) * 20 + 2,
                width: u32::try_from((ms.min(longest) * 380 / longest).max(2)).unwrap_or(2),
            }
        })
        .collect()
}

pub(crate) struct VmRow {
    name: String,
    role: String,
    address: String,
}

#[derive(Template)]
#[template(path = "deployment.html")]
struct DeploymentPage {
    title: String,
    id: String,
    status: String,
    pattern: String,
    dir: String,
    stack: bool,
    phases: Vec<PhaseRow>,
    svg_height: usize,
    outputs: Vec<(String, String)>,
    vms: Vec<VmRow>,
}

pub(crate) async fn deployment(State(app): State<Shared>, Path(id): Path<String>) -> Page {
    let (_, state) = target(&app, &id)?;
    let phases = phase_rows(&state);
    let mut outputs = Vec::new();
    let mut vms = Vec::new();
    if let Some(o) = &state.outputs {
        outputs.push(("Primary address".into(), o.primary_ip.clone()));
        outputs.push(("Deployment name".into(), o.deployment_name.clone()));
        let nodes: Vec<String> = o.node_ids.iter().map(u64::to_string).collect();
        outputs.push(("Nodes".into(), nodes.join(", ")));
        if let Some(m) = &o.mycelium_ip {
            outputs.push(("Mycelium".into(), m.clone()));
        }
        vms = o
            .vms()
            .into_iter()
            .map(|v| VmRow {
                name: v.name,
                role: v.role,
                address: v.address,
            })
            .collect();
    }
    if let Some(stack) = &state.ai_stack {
        outputs.push(("AI stack".into(), stack.public_url.clone()));
    }
    let page = DeploymentPage {
        title: state.label(),
        id: state.id.clone(),
        status: state.status.as_str().to_string(),
        pattern: state.pattern.name.clone(),
        dir: state.app.dir.display().to_string(),
        stack: state.ai_stack.is_some(),
        svg_height: phases.len() * 20 + 4,
        phases,
        outputs,
        vms,
    };
    Ok(render(&page))
}

/// `/d/ID/events`: the deployment's status each time it changes (a run going on elsewhere).
pub(crate) async fn deployment_events(
    State(app): State<Shared>,
    Path(id): Path<String>,
) -> Response {
    let shared = app.clone();
    follow(&app, "status", move || {
        let (app, id) = (shared.clone(), id.clone());
        async move {
            let (_, state) = target(&app, &id).ok()?;
            Some(state.status.as_str().to_string())
        }
    })
}

/// A log's file name (`wait-ssh-vm0.log`), as pages link it.
fn file_name(path: &std::path::Path) -> Option<String> {
    Some(path.file_name()?.to_string_lossy().into_owned())
}

/// A log file the phase's journal record names: `file` (a file name), or its first when `None`.
/// A name the journal does not record, or a recorded file since removed, is a [`UserError`]
/// (404), never read.
fn phase_log(
    app: &Shared,
    id: &str,
    phase: &str,
    file: Option<&str>,
) -> anyhow::Result<(DeploymentState, std::path::PathBuf)> {
    let (_, state) = target(app, id)?;
    let phase = Phase::parse(phase)?;
    let logs = state
        .record(phase)
        .map(|r| r.logs.as_slice())
        .unwrap_or_default();
    let log = logs
        .iter()
        .find(|l| file.is_none_or(|f| file_name(l).as_deref() == Some(f)))
        .cloned()
        .ok_or_else(|| {
            UserError::new(
                match file {
                    Some(f) => format!("{} has no `{}` log `{f}`", state.label(), phase.name()),
                    None => format!("{} has no `{}` log", state.label(), phase.name()),
                },
                "the deployment's page links the logs its phases wrote",
            )
        })?;
    if !log.is_file() {
        return Err(UserError::new(
            format!(
                "the `{}` log `{}` is no longer there",
                phase.name(),
                log.display()
            ),
            "the deployment's page links the logs its phases wrote",
        )
        .into());
    }
    Ok((state, log))
}

#[derive(Template)]
#[template(path = "log.html")]
struct LogPage {
    title: String,
    id: String,
    label: String,
    phase: &'static str,
    /// The log's file name.
    file: String,
    path: String,
    text: String,
    offset: u64,
    cut: bool,
}

/// `/d/ID/log/PHASE`: the phase's first log.
pub(crate) async fn first_log(
    State(app): State<Shared>,
    Path((id, phase)): Path<(String, String)>,
) -> Page {
    log_page(&app, &id, &phase, None).await
}

/// `/d/ID/log/PHASE/FILE`: one of the phase's logs (`wait-ssh-vm0.log`).
pub(crate) async fn log(
    State(app): State<Shared>,
    Path((id, phase, file)): Path<(String, String, String)>,
) -> Page {
    log_page(&app, &id, &phase, Some(&file)).await
}

async fn log_page(app: &Shared, id: &str, phase: &str, file: Option<&str>) -> Page {
    let (state, path) = phase_log(app, id, phase, file)?;
    let name = Phase::parse(phase).map_err(anyhow::Error::from)?.name();
    let len = std::fs::metadata(&path)
        .map_err(|e| anyhow::anyhow!("cannot read `{}`: {e}", path.display()))?
        .len();
    let from = len.saturating_sub(LOG_TAIL);
    let bytes = read_from(&path, from, len).await?;
    Ok(render(&LogPage {
        title: format!("{} log", name),
        id: state.id.clone(),
        label: state.label(),
        phase: name,
        file: file_name(&path).unwrap_or_default(),
        path: path.display().to_string(),
        text: crate::secrets::redact(&String::from_utf8_lossy(&bytes)),
        offset: from + bytes.len() as u64,
        cut: from > 0,
    }))
}

/// The bytes of `path` from `from` up to `to` (at most 1 MiB).
async fn read_from(path: &std::path::Path, from: u64, to: u64) -> anyhow::Result<Vec<u8>> {
    use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
    let mut file = tokio::fs::File::open(path).await?;
    file.seek(std::io::SeekFrom::Start(from)).await?;
    let mut bytes = Vec::new();
    file.take(to.saturating_sub(from).min(1 << 20))
        .read_to_end(&mut bytes)
        .await?;
    Ok(bytes)
}

#[derive(serde::Deserialize)]
pub(crate) struct Offset {
    #[serde(default)]
    from: u64,
}

/// `/d/ID/log/PHASE/FILE/events?from=OFFSET`: the log's new complete lines, redacted, as a JSON
/// list per event (`lines`), from the byte offset the page ended at.
pub(crate) async fn log_events(
    State(app): State<Shared>,
    Path((id, phase, file)): Path<(String, String, String)>,
    Query(from): Query<Offset>,
) -> Page {
    let (_, path) = phase_log(&app, &id, &phase, Some(&file))?;
    let stream = futures_util::stream::unfold((from.from, true), move |(mut offset, first)| {
        let path = path.clone();
        async move {
            if !first {
                tokio::time::sleep(POLL).await;
            }
            loop {
                let len = tokio::fs::metadata(&path).await.map_or(0, |m| m.len());
                // A log replaced by a new run starts again at its beginning.
                if len < offset {
                    offset = 0;
                }
                let bytes = read_from(&path, offset, len).await.unwrap_or_default();
                // Whole lines only; a partial last line waits for its end.
                let whole = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
                if whole > 0 {
                    let text = crate::secrets::redact(&String::from_utf8_lossy(&bytes[..whole]));
                    let lines: Vec<&str> = text.lines().collect();
                    let event = Event::default()
                        .event("lines")
                        .json_data(&lines)
                        .unwrap_or_default();
                    let next = (offset + whole as u64, false);
                    return Some((Ok::<_, std::convert::Infallible>(event), next));
                }
                tokio::time::sleep(POLL).await;
            }
        }
    })
    .take_until(app.stopped());
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

pub(crate) struct PatternRow {
    name: String,
    version: String,
    description: String,
    dir: String,
}

#[derive(Template)]
#[template(path = "patterns.html")]
struct Patterns {
    title: &'static str,
    patterns: Vec<PatternRow>,
}

pub(crate) async fn patterns(State(app): State<Shared>) -> Page {
    let settings = app.settings.clone();
    let rows = tokio::task::spawn_blocking(move || crate::ops::patterns::rows(&settings))
        .await
        .map_err(anyhow::Error::from)??;
    let text = |v: &Value, k: &str| match &v[k] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let patterns = rows
        .iter()
        .map(|p| PatternRow {
            name: text(p, "name"),
            version: text(p, "version"),
            description: text(p, "description"),
            dir: text(p, "dir"),
        })
        .collect();
    Ok(render(&Patterns {
        title: "Patterns",
        patterns,
    }))
}

#[derive(Template)]
#[template(path = "down.html")]
struct DownPage {
    title: String,
    id: String,
    label: String,
    message: Option<String>,
}

pub(crate) async fn down_form(State(app): State<Shared>, Path(id): Path<String>) -> Page {
    let (_, state) = target(&app, &id)?;
    Ok(render(&DownPage {
        title: format!("Down {}", state.label()),
        id: state.id.clone(),
        label: state.label(),
        message: None,
    }))
}

#[derive(serde::Deserialize)]
pub(crate) struct Confirm {
    #[serde(default)]
    confirm: String,
}

/// `POST /d/ID/down`: `down` of exactly this deployment when the typed confirmation is its
/// `app:env`; it runs here (the lock taken as the CLI takes it), its lines on this terminal,
/// and the page follows the status.
pub(crate) async fn down(
    State(app): State<Shared>,
    Path(id): Path<String>,
    Form(form): Form<Confirm>,
) -> Page {
    let (_, state) = target(&app, &id)?;
    if form.confirm.trim() != state.label() {
        let page = DownPage {
            title: format!("Down {}", state.label()),
            id: state.id.clone(),
            label: state.label(),
            message: Some(format!(
                "`{}` is not `{}`: nothing was destroyed",
                form.confirm.trim(),
                state.label()
            )),
        };
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response());
    }
    let options = crate::ops::down::DownOptions {
        app: Some(state.id.clone()),
        yes: true,
        lock_held: false,
    };
    let shared = app.clone();
    tokio::spawn(async move {
        let result = crate::ops::down::down(
            &shared.printer,
            &shared.settings,
            crate::process::Runner::real(),
            &options,
        )
        .await;
        if let Err(err) = result {
            shared
                .printer
                .error(&err, &crate::error::hints_for_error(&err));
        }
    });
    Ok(Redirect::to(&format!("/d/{}", state.id)).into_response())
}

#[cfg(test)]
mod tests {
    /// WCAG 2.x relative luminance of `#rrggbb`.
    fn luminance(hex: &str) -> f64 {
        let channel = |i: usize| {
            let c = f64::from(u8::from_str_radix(&hex[i..i + 2], 16).unwrap()) / 255.0;
            if c <= 0.039_28 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5)
    }

    fn contrast(a: &str, b: &str) -> f64 {
        let (a, b) = (luminance(a), luminance(b));
        (a.max(b) + 0.05) / (a.min(b) + 0.05)
    }

    #[test]
    fn every_text_colour_of_the_stylesheet_passes_wcag_aa_on_its_background() {
        let css = include_str!("assets/app.css");
        let var = |name: &str| {
            let at = css.find(&format!("--{name}: #")).unwrap() + name.len() + 4;
            css[at..at + 7].to_string()
        };
        let bg = var("bg");
        for name in ["fg", "muted", "link", "ok", "bad", "warn", "run"] {
            let ratio = contrast(&var(name), &bg);
            assert!(ratio >= 4.5, "--{name} on --bg: {ratio:.2}:1");
        }
        // The header's links, and the log's text on its grey.
        assert!(contrast("#ffffff", "#102a43") >= 4.5);
        assert!(contrast(&var("fg"), "#f5f5f5") >= 4.5);
        assert!(contrast(&var("fg"), "#f2f2f2") >= 4.5, "buttons");
        assert!(contrast(&var("bad"), "#f2f2f2") >= 4.5, "a danger button");
    }
}
