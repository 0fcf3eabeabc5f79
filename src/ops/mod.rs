//! Commands as operations: `up`, `down`, the read-only ones in `inspect`, the registry ones in
//! `deployments`, app-defined commands in `commands`, and `config`. Each takes resolved
//! settings and a printer and returns a `Result`; none prints outside the printer or exits.

pub mod ai;
pub mod backup;
pub mod catalog;
pub mod commands;
pub mod config;
pub mod cost;
pub mod deployments;
pub mod down;
pub mod grid;
pub mod health;
pub mod import;
pub mod inspect;
pub mod journal;
pub mod patterns;
pub mod pr;
pub mod sim;
pub mod tokens;
pub mod up;
pub mod upgrade;

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::error::UserError;
use crate::manifest::MANIFEST_FILE;
use crate::output::Printer;
use crate::registry::{Entry, Registry};
use crate::settings::Settings;
use crate::state::{AppOrigin, DeploymentState, StateDir};

/// The context file in the current folder: `app: PATH` and/or `deployment: ID` (`select`).
pub const CONTEXT_FILE: &str = ".tfgrid-compose.yaml";

/// `.tfgrid-compose.yaml`, read and written as a YAML map so that keys we do not own survive.
pub fn read_context_file() -> Result<serde_yaml::Mapping> {
    let text = match std::fs::read_to_string(CONTEXT_FILE) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Ok(serde_yaml::Mapping::new());
        }
        Err(err) => return Err(err).with_context(|| format!("failed to read `{CONTEXT_FILE}`")),
    };
    if text.trim().is_empty() {
        return Ok(serde_yaml::Mapping::new());
    }
    crate::yaml::parse_yaml(
        Path::new(CONTEXT_FILE),
        &text,
        "the context file holds `app: PATH` and `deployment: ID`; fix or remove it",
    )
    .map_err(Into::into)
}

fn context_value(map: &serde_yaml::Mapping, key: &str) -> Option<String> {
    map.get(key)
        .and_then(serde_yaml::Value::as_str)
        .map(String::from)
}

/// The deployment a command acts on: the app's folder, its environment and its state folder.
#[derive(Debug, Clone)]
pub struct Target {
    /// The app folder or manifest path, as given or as recorded.
    pub app: PathBuf,
    pub env: String,
    pub dir: StateDir,
    /// For an app from the app registry: its entry and commit, which `up` records.
    pub origin: Option<AppOrigin>,
    /// Where the app's pattern is found (for what a gone deployment may leave running).
    pub patterns: crate::pattern::Search,
}

impl Target {
    fn of_app(app: PathBuf, settings: &Settings) -> Target {
        let app_dir = crate::manifest::app_paths(&app).0;
        let dir = StateDir::for_app(&app_dir, &settings.env_name, false)
            .with_registry(registry(settings));
        Target {
            app,
            env: settings.env_name.clone(),
            dir,
            origin: None,
            patterns: crate::pattern::Search::new(settings, &app_dir),
        }
    }

    /// A registry app deployed here by name: its state folder under the data dir
    /// ([`StateDir::for_registry_app`]), its checkout and origin as `state.yaml` records them.
    fn of_registry_app(name: &str, settings: &Settings) -> Option<Target> {
        let dir = StateDir::for_registry_app(&settings.data_dir, name, &settings.env_name)
            .with_registry(registry(settings));
        if !dir.exists() {
            return None;
        }
        let state = dir.load().ok().flatten();
        let app = state.as_ref().map_or_else(
            || settings.data_dir.join("apps").join(name),
            |s| s.app.dir.clone(),
        );
        Some(Target {
            patterns: crate::pattern::Search::new(settings, &app),
            app,
            env: settings.env_name.clone(),
            dir,
            origin: state.and_then(|s| s.app.origin),
        })
    }

    pub fn of_entry(entry: &Entry, settings: &Settings) -> Target {
        Target {
            app: entry.app_dir.clone(),
            env: entry.env.clone(),
            dir: StateDir::at(entry.state_dir.clone())
                .with_registry(registry(settings))
                .expecting(&entry.id),
            origin: None,
            patterns: crate::pattern::Search::new(settings, &entry.app_dir),
        }
    }

    /// How to name this deployment in a suggested command: `APP` or `APP --env ENV`, where
    /// `APP` is the registry name of an app from the app registry, else its folder, quoted for
    /// a shell when it needs it (and never starting with `-`), so the command can be pasted.
    pub fn arg(&self) -> String {
        let app = self.origin.as_ref().map_or_else(
            || crate::process::display_path(&self.app),
            |o| o.name.clone(),
        );
        if self.env == "default" {
            app
        } else {
            format!("{app} --env {}", self.env)
        }
    }

    /// The app this target names, loaded once (its warnings printed): the manifest of the
    /// deployment `state` (when the caller has loaded it), else the manifest `up` recorded for a
    /// deployment here, else the folder or file given. A folder app's manifest is read in the
    /// folder its state is in now ([`recorded_manifest`]), not where it was recorded.
    ///
    /// Errors: the deployment's when it is not the one named ([`StateDir::load`]); the
    /// manifest's, with file, line and field.
    pub fn load_app(
        &self,
        printer: &crate::output::Printer,
        state: Option<&DeploymentState>,
    ) -> Result<crate::manifest::App> {
        let path = match state {
            Some(state) => recorded_manifest(&self.dir, state),
            None => match self.dir.load() {
                Err(err) if err.is::<UserError>() => return Err(err),
                loaded => loaded
                    .ok()
                    .flatten()
                    .map(|state| recorded_manifest(&self.dir, &state))
                    .filter(|m| m.is_file())
                    .unwrap_or_else(|| self.app.clone()),
            },
        };
        let app = crate::manifest::App::load(&path)?;
        for warning in &app.warnings {
            printer.warn(warning);
        }
        Ok(app)
    }

    /// Loads the recorded deployment, or explains that there is none.
    pub fn load(&self) -> Result<DeploymentState> {
        match self.dir.load()? {
            Some(state) => Ok(state),
            None if !self.dir.root.exists() && self.recorded() => Err(self.gone()),
            None => Err(UserError::new(
                format!(
                    "no deployment of `{}` in environment `{}` (no `{}`)",
                    self.app.display(),
                    self.env,
                    self.dir.state_file().display()
                ),
                format!(
                    "deploy it with `tfgrid-compose up {}`, or list deployments with \
                    `tfgrid-compose ps`",
                    self.arg()
                ),
            )
            .into()),
        }
    }
}

/// The manifest of the deployment `state` in `dir`: as recorded for an app from the app
/// registry; for a folder app, the recorded file's name in the folder that holds `dir` now, so
/// that a deployment moved with its folder never reads the manifest of whatever took its old
/// place.
fn recorded_manifest(dir: &StateDir, state: &DeploymentState) -> PathBuf {
    let recorded = &state.app.manifest;
    match (&state.app.origin, dir.app_dir(), recorded.file_name()) {
        (None, Some(app_dir), Some(name)) => app_dir.join(name),
        _ => recorded.clone(),
    }
}

impl Target {
    /// Whether the registry has an entry for this state folder.
    fn recorded(&self) -> bool {
        let Some(registry) = &self.dir.registry else {
            return false;
        };
        registry
            .list()
            .is_ok_and(|(entries, _)| entries.iter().any(|e| e.state_dir == self.dir.root))
    }

    /// The error for a deployment whose folder is gone (with its state and Terraform state).
    fn gone(&self) -> anyhow::Error {
        let entry = self
            .dir
            .registry
            .as_ref()
            .and_then(|r| r.list().ok())
            .and_then(|(entries, _)| entries.into_iter().find(|e| e.state_dir == self.dir.root));
        let id = entry.as_ref().map(|e| e.id.clone()).unwrap_or_default();
        let pattern = entry.map(|e| e.pattern).unwrap_or_default();
        // What the pattern says may still run without the folder, in its own words.
        let still_running = self.patterns.find(&pattern).ok().and_then(|p| {
            let running = p.manifest.down_without_state?.running?;
            Some(running.what)
        });
        crate::error::FolderGone {
            id,
            pattern,
            state_dir: self.dir.root.clone(),
            still_running,
        }
        .into()
    }
}

/// Takes a deployment's lock for `command` (waiting up to `lock_wait`, saying so), then stops
/// the tools a killed run of it left running: what `up` and `down` do before touching it.
///
/// Errors: [`crate::error::LockError`] when another run holds it past `lock_wait`.
pub async fn take_lock(
    printer: &Printer,
    settings: &Settings,
    dir: &StateDir,
    command: &str,
) -> Result<crate::state::StateLock> {
    let lock = crate::state::StateLock::acquire(
        &dir.lock_file(),
        command,
        settings.lock_wait,
        |holder| {
            printer.status(
                "Blocking",
                format!(
                    "waiting for lock on `{}` (held by {holder})",
                    dir.lock_file().display()
                ),
            );
        },
    )?;
    crate::interrupt::stop_orphans(&dir.logs_dir(), printer).await;
    Ok(lock)
}

pub fn registry(settings: &Settings) -> Registry {
    Registry::new(settings.registry_dir())
}

/// The environment the user named (flag, variable or config), if any.
fn explicit_env(settings: &Settings) -> Option<&str> {
    let explicit = !matches!(
        settings.sources.get("env"),
        None | Some(crate::settings::Source::Default)
    );
    explicit.then_some(settings.env_name.as_str())
}

/// An argument that names something here: an existing path (app folder or manifest), else a
/// deployment id prefix, `APP` or `APP:ENV` from the registry of deployments, else a registry
/// app deployed here by its registry name. `None` when it is none of these.
pub fn find_target(settings: &Settings, arg: &str) -> Result<Option<Target>> {
    if Path::new(arg).exists() {
        return Ok(Some(Target::of_app(PathBuf::from(arg), settings)));
    }
    if let Some(entry) = registry(settings).find(arg, explicit_env(settings))? {
        return Ok(Some(Target::of_entry(&entry, settings)));
    }
    if crate::catalog::is_app_name(arg) {
        return Ok(Target::of_registry_app(arg, settings));
    }
    Ok(None)
}

/// The one resolver of a command's TARGET. With an argument: [`find_target`], else the path as
/// given (so that its error names it). Without one: [`default_target`]. A target found through
/// the registry must hold the deployment of that id when loaded ([`StateDir::expecting`]).
/// Commands that need the app's files (`up`, `validate`) resolve with [`resolve_app_target`],
/// which adds the app registry.
pub fn resolve_target(settings: &Settings, arg: Option<&str>) -> Result<Target> {
    match arg {
        Some(arg) => Ok(find_target(settings, arg)?
            .unwrap_or_else(|| Target::of_app(PathBuf::from(arg), settings))),
        None => default_target(settings),
    }
}

/// [`resolve_target`] for a command that needs the app's files: a name found nowhere here
/// (no folder, manifest or deployment) is looked up in the app registry and checked out at its
/// pinned commit; a recorded registry app whose checkout left the cache is checked out again at
/// its recorded commit. A path that is no app name is kept as given, so that its error names it.
///
/// Errors: [`resolve_target`]'s; a [`UserError`] naming both places when a name is in neither;
/// the app registry's and git's.
pub async fn resolve_app_target(
    printer: &Printer,
    settings: &Settings,
    arg: Option<&str>,
) -> Result<Target> {
    let found = match arg {
        Some(arg) => find_target(settings, arg)?,
        None => Some(default_target(settings)?),
    };
    if let Some(mut target) = found {
        catalog::restore_checkout(printer, settings, &mut target).await?;
        return Ok(target);
    }
    let arg = arg.unwrap_or_default();
    let looks_like_file = arg.ends_with(".yaml") || arg.ends_with(".yml");
    if !crate::catalog::is_app_name(arg) || looks_like_file {
        return Ok(Target::of_app(PathBuf::from(arg), settings));
    }
    catalog::registry_app_target(printer, settings, arg).await
}

/// The target of a command given none: the context file's `deployment:` then `app:`, then a
/// manifest in this folder, then the only deployment in the registry (of the environment named,
/// if one was).
fn default_target(settings: &Settings) -> Result<Target> {
    let env = explicit_env(settings);
    let context = read_context_file()?;
    if let Some(id) = context_value(&context, "deployment") {
        return match registry(settings).find(&id, None)? {
            Some(entry) => Ok(Target::of_entry(&entry, settings)),
            None => Err(UserError::new(
                format!(
                    "`{CONTEXT_FILE}` selects deployment `{id}`, which is not in the registry \
                    any more"
                ),
                "select another with `tfgrid-compose select`, or clear it with `tfgrid-compose \
                    unselect`",
            )
            .into()),
        };
    }
    if let Some(app) = context_value(&context, "app") {
        return Ok(Target::of_app(PathBuf::from(app), settings));
    }
    if Path::new(MANIFEST_FILE).is_file() {
        return Ok(Target::of_app(PathBuf::from("."), settings));
    }
    let (entries, _) = registry(settings).list()?;
    let live: Vec<&Entry> = entries
        .iter()
        .filter(|e| !e.missing() && env.is_none_or(|w| e.env == w))
        .collect();
    if live.len() == 1 {
        return Ok(Target::of_entry(live[0], settings));
    }
    let hint = if live.is_empty() {
        "pass an app folder (`tfgrid-compose up examples/static-site`), or write `app: PATH` into \
            `.tfgrid-compose.yaml` here"
            .to_string()
    } else {
        format!(
            "name one ({}), or pick one for this folder with `tfgrid-compose select ID`",
            live.iter()
                .map(|e| format!("{} {}", e.short_id(), e.label()))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    Err(UserError::new(
        if live.is_empty() {
            "no app given".to_string()
        } else {
            format!("no app given, and {} deployments are known", live.len())
        },
        hint,
    )
    .into())
}

/// `TFGRID_COMPOSE_TOFU`, else `tofu`, else `terraform` on PATH.
pub fn resolve_tofu(settings: &Settings) -> Result<String> {
    if let Some(tofu) = &settings.tofu {
        return which::which(tofu)
            .map(|p| p.display().to_string())
            .map_err(|_| {
                UserError::new(
                    format!("TFGRID_COMPOSE_TOFU names `{tofu}`, which is not an executable"),
                    "point it at a tofu or terraform binary, or unset it",
                )
                .into()
            });
    }
    for name in ["tofu", "terraform"] {
        if let Ok(path) = which::which(name) {
            return Ok(path.display().to_string());
        }
    }
    Err(UserError::new(
        "neither `tofu` nor `terraform` is on PATH",
        "install one (`scripts/install-deps.sh` does), or set TFGRID_COMPOSE_TOFU",
    )
    .into())
}

/// Checks that a tool is on PATH.
/// Asks a question on the terminal and returns the answer line. Without a terminal it refuses
/// with `refusal` (exit 2) and tells the user to pass `--yes`.
pub fn ask(printer: &crate::output::Printer, question: &str, refusal: &str) -> Result<String> {
    use std::io::{BufRead as _, IsTerminal as _};
    if !std::io::stdin().is_terminal() {
        return Err(UserError::new(
            format!("{refusal}: stdin is not a terminal"),
            "pass `--yes` to confirm in scripts and CI",
        )
        .into());
    }
    printer.status("Confirm", question);
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim().to_string())
}
