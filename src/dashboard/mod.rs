//! `tfgrid-compose dashboard`: a web view of this machine's deployments served by the binary on
//! loopback. Pages are rendered on the server from the same library calls as the CLI's `--json`
//! (`ps`, `patterns`, the deployment's `state.yaml` through the one target resolver, the agent's
//! API); live parts follow by server-sent events. Every request passes [`guard`]: an exact
//! loopback `Host`, a session cookie obtained with the token printed once, and for state-changing
//! requests and event streams an `Origin`/`Sec-Fetch-Site` of this very origin (docs/dashboard.md).

mod chart;
mod guard;
mod pages;
mod stack;
mod tunnel;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use axum::Router;
use axum::routing::{get, post};
use tokio::sync::watch;

use crate::error::UserError;
use crate::output::Printer;
use crate::settings::Settings;

/// The address `dashboard` listens on without `--listen` (the bash tool's port).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:43100";

/// What `dashboard` was asked for.
pub struct Options {
    /// Where to listen; port 0 takes a free port.
    pub listen: SocketAddr,
    /// A non-loopback `listen` is refused without it.
    pub allow_remote: bool,
    /// Open the login URL in the desktop's browser (`xdg-open`), through a 0600 file so that the
    /// token is never in a process's argv.
    pub open: bool,
    /// Prometheus' base URL (`http://HOST:9090`) for every deployment's charts; without it, an AI
    /// stack's own Prometheus is reached through an ssh tunnel to its gateway VM.
    pub prometheus: Option<String>,
}

/// What every handler shares.
pub(crate) struct App {
    pub(crate) settings: Settings,
    pub(crate) printer: Printer,
    pub(crate) guard: guard::Guard,
    pub(crate) prometheus: Option<String>,
    /// The ssh tunnels to the AI stacks' Prometheus, opened on first use, one per deployment.
    pub(crate) tunnels: tunnel::Tunnels,
    /// The grid's figures the list prices deployments at, kept between refreshes.
    pub(crate) figures: crate::ops::cost::FiguresCache,
    /// Turns true on SIGINT/SIGTERM: every event stream ends, so that shutdown never waits on one.
    pub(crate) stopping: watch::Receiver<bool>,
}

impl App {
    /// Resolves when the server is stopping.
    pub(crate) fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.stopping.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    }
}

pub(crate) type Shared = Arc<App>;

fn router(app: Shared) -> Router {
    Router::new()
        .route("/", get(pages::deployments))
        .route("/events", get(pages::deployments_events))
        .route("/login", get(guard::login))
        .route("/patterns", get(pages::patterns))
        .route("/assets/app.css", get(pages::css))
        .route("/assets/app.js", get(pages::js))
        .route("/d/{id}", get(pages::deployment))
        .route("/d/{id}/events", get(pages::deployment_events))
        .route("/d/{id}/log/{phase}", get(pages::first_log))
        .route("/d/{id}/log/{phase}/{file}", get(pages::log))
        .route("/d/{id}/log/{phase}/{file}/events", get(pages::log_events))
        .route("/d/{id}/down", get(pages::down_form).post(pages::down))
        .route("/d/{id}/projects", get(stack::projects).post(stack::create))
        .route("/d/{id}/projects/{project}", get(stack::project))
        .route(
            "/d/{id}/projects/{project}/events",
            get(stack::project_events),
        )
        .route("/d/{id}/projects/{project}/delete", post(stack::delete))
        .route("/d/{id}/providers", get(stack::providers))
        .route("/d/{id}/charts", get(stack::charts))
        .fallback(pages::not_found)
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            guard::check,
        ))
        .with_state(app)
}

/// `dashboard`: serves until SIGINT/SIGTERM, then ends every event stream and returns.
///
/// Errors: a non-loopback address without `allow_remote`, an address in use (never another
/// port silently), or no randomness for the token.
pub async fn serve(printer: &Printer, settings: &Settings, options: Options) -> Result<()> {
    let loopback = options.listen.ip().is_loopback();
    if !loopback && !options.allow_remote {
        return Err(UserError::new(
            format!(
                "--listen {} is not a loopback address: anyone who reaches it could try the \
                    dashboard's token",
                options.listen
            ),
            "listen on 127.0.0.1 (the default), or add --allow-remote if you mean it",
        )
        .into());
    }
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|e| {
            UserError::new(
                format!("cannot listen on {}: {e}", options.listen),
                "pick another port with --listen 127.0.0.1:PORT (0 takes a free one)",
            )
        })?;
    let addr = listener.local_addr()?;
    if !loopback {
        printer.warn(format!(
            "the dashboard listens on {addr}, reachable from other machines; only the token \
                guards it, and it travels unencrypted"
        ));
    }
    // A tunnel's pid file a SIGKILLed dashboard left (`DATA_DIR/dashboard/ID/…pid`): its ssh
    // is stopped if it still runs, the file removed; another dashboard's running tunnels are
    // left to it.
    crate::interrupt::stop_orphans(&settings.data_dir.join("dashboard"), printer).await;
    remove_gone_folders(settings);
    let guard = guard::Guard::new(addr, loopback)?;
    let url = guard.login_url();
    let (stop, stopping) = watch::channel(false);
    let app = Arc::new(App {
        settings: settings.clone(),
        printer: printer.clone(),
        guard,
        prometheus: options
            .prometheus
            .map(|u| u.trim_end_matches('/').to_string()),
        tunnels: tunnel::Tunnels::default(),
        figures: crate::ops::cost::FiguresCache::default(),
        stopping,
    });
    printer.status(
        "Dashboard",
        format!("on http://{addr}/ (Ctrl-C stops it); open this URL once to sign in:"),
    );
    printer.data(&url);
    let page = options.open.then(|| open_page(settings, addr.port()));
    if let Some(page) = &page {
        open(printer, page, &url).await;
    }
    let stopped = app.stopped();
    tokio::spawn(async move {
        crate::interrupt::wait().await;
        let _ = stop.send(true);
    });
    axum::serve(listener, router(app))
        .with_graceful_shutdown(stopped)
        .await
        .context("the dashboard's server failed")?;
    if let Some(page) = page {
        // Its token is worthless now, but it is no file to leave behind.
        let _ = std::fs::remove_file(page);
    }
    printer.status("Stopped", "the dashboard");
    Ok(())
}

/// The page `--open` writes: `dashboard-PORT.html` in the data dir.
fn open_page(settings: &Settings, port: u16) -> std::path::PathBuf {
    settings.data_dir.join(format!("dashboard-{port}.html"))
}

/// Opens the login URL with `xdg-open`, handing it a 0600 page (`page`) that redirects to it, so
/// that the token is in no process's argv. A desktop without `xdg-open` gets a warning, not an
/// error.
async fn open(printer: &Printer, page: &std::path::Path, url: &str) {
    let html = format!(
        "<!doctype html><meta http-equiv=\"refresh\" content=\"0; url={url}\"><title>tfgrid-compose dashboard</title>"
    );
    let opened = async {
        if let Some(dir) = page.parent() {
            crate::files::create_private_dir(dir)?;
        }
        crate::files::write_atomic(page, html.as_bytes(), 0o600)?;
        // What xdg-open says (which browsers it tried) goes to a log beside the page, not
        // between the dashboard's own lines.
        let log = page.with_extension("xdg-open.log");
        let cmd = crate::process::Cmd::new("xdg-open")
            .arg(page.display().to_string())
            .io(crate::process::Io::Log(log.clone()))
            .timeout(std::time::Duration::from_secs(10));
        let out = crate::process::Runner::real().status(&cmd).await?;
        anyhow::ensure!(
            out.code == Some(0),
            "xdg-open exited with {:?}; what it said is in {}",
            out.code,
            log.display()
        );
        anyhow::Ok(())
    };
    if let Err(e) = opened.await {
        printer.warn(format!(
            "cannot open a browser ({e:#}); open the URL above yourself"
        ));
    }
}

/// Removes `DATA_DIR/dashboard/ID` (a tunnel's log) of each deployment no longer in the registry
/// (`down` ran), unless a pid file in it says another dashboard's tunnel still runs there.
fn remove_gone_folders(settings: &Settings) {
    let Ok((entries, _)) = crate::ops::registry(settings).list() else {
        return;
    };
    let known: std::collections::HashSet<String> = entries.into_iter().map(|e| e.id).collect();
    let Ok(folders) = std::fs::read_dir(settings.data_dir.join("dashboard")) else {
        return;
    };
    for folder in folders.flatten() {
        let name = folder.file_name().to_string_lossy().into_owned();
        let running = std::fs::read_dir(folder.path()).map_or(true, |files| {
            files
                .flatten()
                .any(|f| f.path().extension().is_some_and(|e| e == "pid"))
        });
        if crate::ids::is_deployment_id(&name) && !known.contains(&name) && !running {
            let _ = std::fs::remove_dir_all(folder.path());
        }
    }
}
