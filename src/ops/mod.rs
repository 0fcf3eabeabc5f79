//! Commands as operations: `up`, `down`, and the read-only ones in `inspect`. Each takes resolved
//! settings and a printer and returns a `Result`; none prints outside the printer or exits.

pub mod down;
pub mod inspect;
pub mod up;

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::error::UserError;
use crate::manifest::{MANIFEST_FILE, Pattern};
use crate::settings::Settings;
use crate::state::{DeploymentState, StateDir};

/// The context file in the current folder: `app: PATH`.
pub const CONTEXT_FILE: &str = ".tfgrid-compose.yaml";

/// The app folder or manifest path: the argument, else the context file's `app:`, else the
/// current folder when it holds a manifest.
pub fn resolve_app(arg: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = arg {
        return Ok(path.to_path_buf());
    }
    if let Ok(text) = std::fs::read_to_string(CONTEXT_FILE) {
        #[derive(serde::Deserialize)]
        struct ContextFile {
            app: Option<PathBuf>,
        }
        let parsed: ContextFile =
            serde_yaml::from_str(&text).map_err(|e| UserError::new(format!("{CONTEXT_FILE}: {e}"), "the context file holds `app: PATH`; fix or remove it"))?;
        if let Some(app) = parsed.app {
            return Ok(app);
        }
    }
    if Path::new(MANIFEST_FILE).is_file() {
        return Ok(PathBuf::from("."));
    }
    Err(UserError::new(
        "no app given",
        format!("pass an app folder (`tfgrid-compose up examples/static-site`), or write `app: PATH` into `{CONTEXT_FILE}` here"),
    )
    .into())
}

/// The app folder of a path that may name the manifest itself.
pub fn app_dir(path: &Path) -> PathBuf {
    if path.is_file() {
        path.parent().map_or_else(|| PathBuf::from("."), |p| if p.as_os_str().is_empty() { PathBuf::from(".") } else { p.to_path_buf() })
    } else {
        path.to_path_buf()
    }
}

/// Loads the recorded deployment of an app, or explains that there is none.
pub fn load_deployment(app: &Path) -> Result<(StateDir, DeploymentState)> {
    let dir = StateDir::for_app(&app_dir(app), false);
    match dir.load()? {
        Some(state) => Ok((dir, state)),
        None => Err(UserError::new(
            format!("no deployment of `{}` (no `{}`)", app.display(), dir.state_file().display()),
            format!("deploy it with `tfgrid-compose up {}`", app.display()),
        )
        .into()),
    }
}

/// Finds a pattern by name along the search path.
pub fn find_pattern(settings: &Settings, app_dir: &Path, name: &str) -> Result<Pattern> {
    let valid = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let search = settings.pattern_search_path(app_dir);
    if valid {
        for dir in &search {
            let candidate = dir.join(name);
            if candidate.join("pattern.yaml").is_file() {
                return Ok(Pattern::load(&candidate)?);
            }
        }
    }
    let mut known: Vec<String> = search
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .flatten()
        .filter(|e| e.path().join("pattern.yaml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    known.sort();
    known.dedup();
    Err(UserError::new(
        format!("unknown pattern `{name}`"),
        if known.is_empty() {
            "no patterns found; set TFGRID_COMPOSE_PATTERNS_DIR to the folder that holds them".to_string()
        } else {
            format!("known patterns: {}", known.join(", "))
        },
    )
    .into())
}

/// `TFGRID_COMPOSE_TOFU`, else `tofu`, else `terraform` on PATH.
pub fn resolve_tofu(settings: &Settings) -> Result<String> {
    if let Some(tofu) = &settings.tofu {
        return which::which(tofu).map(|p| p.display().to_string()).map_err(|_| {
            UserError::new(format!("TFGRID_COMPOSE_TOFU names `{tofu}`, which is not an executable"), "point it at a tofu or terraform binary, or unset it")
                .into()
        });
    }
    for name in ["tofu", "terraform"] {
        if let Ok(path) = which::which(name) {
            return Ok(path.display().to_string());
        }
    }
    Err(UserError::new("neither `tofu` nor `terraform` is on PATH", "install one (`scripts/install-deps.sh` does), or set TFGRID_COMPOSE_TOFU").into())
}

/// Checks that a tool is on PATH.
pub fn require_tool(name: &str, why: &str) -> Result<()> {
    which::which(name).map(|_| ()).map_err(|_| {
        UserError::new(format!("`{name}` is not on PATH ({why})"), "install the dependencies with `scripts/install-deps.sh`, or add the tool to PATH").into()
    })
}
