//! The app registry's commands: `search`, `update`, and the app registry's part of resolving a
//! TARGET ([`crate::ops::resolve_app_target`]): a registry app's name turned into a checkout of
//! its pinned commit, and a removed checkout restored.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use serde_json::{Value, json};

use crate::catalog::CatalogApp;
use crate::catalog::checkout::{Pin, checkout, short};
use crate::catalog::fetch::{Freshness, Loaded, load};
use crate::error::{CatalogError, UserError};
use crate::ops::deployments::JSON_SCHEMA;
use crate::ops::{Target, registry};
use crate::output::{Printer, plural};
use crate::process::Runner;
use crate::settings::Settings;
use crate::state::{AppOrigin, StateDir};

/// Reads the registry and prints what a user should know about the read: a stale copy, left-out
/// entries.
async fn read(printer: &Printer, settings: &Settings, refresh: bool) -> Result<Loaded> {
    let loaded = load(settings, refresh).await?;
    if let Some(warning) = loaded.stale_warning() {
        printer.warn(warning);
    }
    for skipped in &loaded.catalog.skipped {
        printer.warn(format!("app registry {}: {skipped}", loaded.url));
    }
    Ok(loaded)
}

/// Where the registry came from, for `--json`.
fn registry_json(loaded: &Loaded) -> Value {
    let (fetched_ago, stale) = match &loaded.freshness {
        Freshness::Fetched => (Some(0), false),
        Freshness::Cached { age } => (Some(age.as_secs()), false),
        Freshness::Stale { age, .. } => (age.map(|a| a.as_secs()), true),
        Freshness::Local => (None, false),
    };
    json!({
        "url": loaded.url,
        "file": loaded.file,
        "fetched_seconds_ago": fetched_ago,
        "stale": stale,
    })
}

fn app_json(app: &CatalogApp) -> Value {
    json!({
        "name": app.name,
        "section": app.section,
        "description": app.description,
        "repo": app.repo_url(),
        "commit": app.commit().ok(),
        "pattern": app.pattern,
        "status": app.status,
        "maintainer": app.maintainer,
        "tags": app.tags,
    })
}

/// `search [WORD…] [--tag T…]`: the registry's apps whose name, description or tags contain
/// every word and that have every tag.
pub async fn search(
    printer: &Printer,
    settings: &Settings,
    words: &[String],
    tags: &[String],
    json: bool,
) -> Result<()> {
    let loaded = read(printer, settings, false).await?;
    let hits = loaded.catalog.search(words, tags);
    if json {
        printer.json_line(&json!({
            "schema": JSON_SCHEMA,
            "registry": registry_json(&loaded),
            "apps": hits.iter().map(|a| app_json(a)).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    if hits.is_empty() {
        printer.status(
            "Empty",
            format!(
                "no app of the registry matches (it lists {}; `tfgrid-compose search` shows all)",
                loaded.catalog.apps.len()
            ),
        );
        return Ok(());
    }
    let rows: Vec<Vec<String>> = hits
        .iter()
        .map(|a| {
            vec![
                a.name.clone(),
                a.section.clone(),
                a.pattern.clone().unwrap_or_else(|| "-".into()),
                a.tags.join(","),
                a.description.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let header = ["NAME", "LIST", "PATTERN", "TAGS", "DESCRIPTION"];
    printer.raw(crate::output::table(&header, &rows).as_bytes());
    Ok(())
}

/// `update [NAME]`: fetches the registry now (whatever its copy's age); with `NAME`, also that
/// app's repository, and checks its pinned commit out.
pub async fn update(
    printer: &Printer,
    settings: &Settings,
    name: Option<&str>,
    json: bool,
) -> Result<()> {
    let loaded = read(printer, settings, true).await?;
    if loaded.freshness == Freshness::Local {
        printer.status(
            "Read",
            format!("the local app registry `{}`", loaded.file.display()),
        );
    } else {
        printer.status(
            "Updated",
            format!(
                "the app registry from {} ({} app{})",
                loaded.url,
                loaded.catalog.apps.len(),
                plural(loaded.catalog.apps.len())
            ),
        );
    }
    let mut app = Value::Null;
    if let Some(name) = name {
        let (pin, dir) = check_out(printer, settings, &loaded, name, true).await?;
        printer.status(
            "Updated",
            format!(
                "`{name}`: commit {} in `{}`",
                short(&pin.commit),
                dir.display()
            ),
        );
        app = json!({"name": name, "repo": pin.repo, "commit": pin.commit, "dir": dir});
    }
    if json {
        printer.json_line(&json!({
            "schema": JSON_SCHEMA,
            "registry": registry_json(&loaded),
            "apps": loaded.catalog.apps.len(),
            "app": app,
        }));
    }
    Ok(())
}

/// A registry app's repository and pinned commit, checked.
struct Pinned {
    name: String,
    repo: String,
    commit: String,
}

impl Pinned {
    fn as_pin(&self) -> Pin<'_> {
        Pin {
            name: &self.name,
            repo: &self.repo,
            commit: &self.commit,
        }
    }
}

/// The registry app `name` checked out at its pinned commit (fetching its repository first when
/// `refresh`): its pin and the checkout's folder.
async fn check_out(
    printer: &Printer,
    settings: &Settings,
    loaded: &Loaded,
    name: &str,
    refresh: bool,
) -> Result<(Pinned, PathBuf)> {
    let pinned = pin(loaded, name)?;
    let dir = checkout(
        printer,
        &Runner::real(),
        &settings.cache_dir,
        pinned.as_pin(),
        refresh,
    )
    .await?;
    Ok((pinned, dir))
}

const INCOMPLETE_ENTRY: &str = "the registry's entry is incomplete; tell its maintainers, or \
    deploy the app's folder (`git clone` it, then `tfgrid-compose up ./FOLDER`)";

/// The app `name` of the registry, with a repository and a full commit id.
///
/// Errors: a [`UserError`] when the registry has no such app (with the nearest names), a
/// [`CatalogError`] when its entry lacks a repository or a commit.
fn pin(loaded: &Loaded, name: &str) -> Result<Pinned> {
    let Some(app) = loaded.catalog.get(name) else {
        return Err(UserError::new(
            format!("the app registry {} has no app `{name}`", loaded.url),
            format!(
                "{}`tfgrid-compose search` lists its apps",
                nearest(loaded, name)
            ),
        )
        .into());
    };
    let entry_error = |problem: String| CatalogError {
        message: format!("app registry {}: app `{name}` {problem}", loaded.url),
        hint: INCOMPLETE_ENTRY.into(),
    };
    let repo = app
        .repo_url()
        .ok_or_else(|| entry_error("has no `repo`".into()))?;
    let commit = app.commit().map_err(entry_error)?;
    Ok(Pinned {
        name: name.to_string(),
        repo,
        commit,
    })
}

/// `did you mean `NAME`? ` for the registry's name nearest to `name`, if one is near.
fn nearest(loaded: &Loaded, name: &str) -> String {
    let mut near: Vec<(f64, &str)> = loaded
        .catalog
        .apps
        .iter()
        .map(|a| (strsim::jaro_winkler(name, &a.name), a.name.as_str()))
        .filter(|(score, _)| *score > 0.8)
        .collect();
    near.sort_by(|a, b| b.0.total_cmp(&a.0));
    near.first()
        .map(|(_, n)| format!("did you mean `{n}`? "))
        .unwrap_or_default()
}

/// Checks out again, at its recorded commit, the app of a registry app's deployment whose
/// checkout was removed from the cache; sets the target's origin from its `state.yaml`.
///
/// Errors: git's, and the registry repository's.
pub(super) async fn restore_checkout(
    printer: &Printer,
    settings: &Settings,
    target: &mut Target,
) -> Result<()> {
    let Ok(Some(state)) = target.dir.load() else {
        return Ok(());
    };
    let Some(origin) = state.app.origin else {
        return Ok(());
    };
    if !target.app.exists() {
        printer.status(
            "Restoring",
            format!(
                "the checkout of `{}` at {}",
                origin.name,
                short(&origin.commit)
            ),
        );
        let pin = Pin {
            name: &origin.name,
            repo: &origin.repo,
            commit: &origin.commit,
        };
        target.app = checkout(printer, &Runner::real(), &settings.cache_dir, pin, false).await?;
    }
    target.origin = Some(origin);
    Ok(())
}

/// The app registry's app `name`, checked out at its pinned commit, as a target whose state
/// folder is in the data dir ([`StateDir::for_registry_app`]).
///
/// Errors: a [`UserError`] naming both places when the name is in neither; the registry's and
/// git's errors otherwise.
pub(super) async fn registry_app_target(
    printer: &Printer,
    settings: &Settings,
    name: &str,
) -> Result<Target> {
    let loaded = read(printer, settings, false).await.with_context(|| {
        format!(
            "`{name}` is not an app folder, a manifest or a deployment here, and the app \
            registry cannot be read"
        )
    })?;
    if loaded.catalog.get(name).is_none() {
        return Err(UserError::new(
            format!(
                "`{name}` is not an app folder or manifest here, not a deployment, and not an \
                    app in the registry {}",
                loaded.url
            ),
            format!(
                "{}`tfgrid-compose search` lists the registry's apps, `tfgrid-compose ps` the \
                    deployments; give a folder as a path (`./{name}`)",
                nearest(&loaded, name)
            ),
        )
        .into());
    }
    let (pinned, app) = check_out(printer, settings, &loaded, name, false).await?;
    Ok(Target {
        patterns: crate::pattern::Search::new(settings, &app),
        app,
        env: settings.env_name.clone(),
        dir: StateDir::for_registry_app(&settings.data_dir, name, &settings.env_name)
            .with_registry(registry(settings)),
        origin: Some(AppOrigin {
            name: pinned.name,
            registry: loaded.url,
            repo: pinned.repo,
            commit: pinned.commit,
        }),
    })
}
