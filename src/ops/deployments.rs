//! Many deployments: `ps` (the registry), `select`/`unselect` (the context file) and `inspect`
//! (everything recorded about one deployment, secrets redacted).

use std::time::Duration;

use anyhow::{Context as _, Result};
use serde_json::{Value, json};

use crate::clock::{format_utc, now_unix};
use crate::error::UserError;
use crate::files::write_atomic;
use crate::ops::{CONTEXT_FILE, Target, read_context_file, registry, resolve_target};
use crate::output::{Printer, plural};
use crate::pattern::Pattern;
use crate::process::{Cmd, Io, Runner};
use crate::registry::Entry;
use crate::settings::Settings;

/// Schema version of every `--json` document (see docs/json-output.md).
pub const JSON_SCHEMA: u32 = 1;

/// `5s`, `3m`, `2h`, `4d`: how long ago.
pub fn age(since: u64, now: u64) -> String {
    crate::clock::format_age(now.saturating_sub(since))
}

fn ps_row(entry: &Entry, missing: bool, now: u64, monthly: Option<f64>) -> Value {
    json!({
        "usd_per_month": monthly,
        "id": entry.id,
        "app": entry.app,
        "env": entry.env,
        "pattern": entry.pattern,
        "status": if missing { "missing".into() } else { crate::state::settled_status(&entry.status, &entry.state_dir) },
        "primary_ip": entry.primary_ip,
        "created_at": format_utc(entry.created_at),
        "age_seconds": now.saturating_sub(entry.created_at),
        "app_dir": entry.app_dir,
        "app_dir_given": entry.app_dir_given,
        "state_dir": entry.state_dir,
        "missing": missing,
    })
}

/// `ps --json`'s document (docs/schemas/ps.schema.json) of registry entries and whether each
/// one's folder vanished.
fn ps_document(
    entries: &[Entry],
    missing: &[bool],
    now: u64,
    monthly: &std::collections::BTreeMap<String, f64>,
) -> Value {
    let rows: Vec<Value> = entries
        .iter()
        .zip(missing)
        .map(|(e, m)| ps_row(e, *m, now, monthly.get(&e.id).copied()))
        .collect();
    json!({"schema": JSON_SCHEMA, "deployments": rows})
}

/// `ps --json` as a value, for the dashboard: every deployment in the registry, entries that
/// cannot be read left out (`ps` warns about them), and each one's monthly cost when the
/// network's figures can be read (null otherwise, as `ps` leaves it), at the figures `figures`
/// keeps between calls.
pub async fn ps_json(
    settings: &Settings,
    figures: &crate::ops::cost::FiguresCache,
) -> Result<Value> {
    let (entries, _broken) = registry(settings).list()?;
    let missing: Vec<bool> = entries.iter().map(Entry::missing).collect();
    let monthly = crate::ops::cost::monthly_by_id(settings, figures)
        .await
        .unwrap_or_default();
    Ok(ps_document(&entries, &missing, now_unix(), &monthly))
}

/// What of a deployment still runs on this machine, in its pattern's words, when the folder
/// its pattern declares for it exists (`down_without_state.running` of pattern.yaml: the
/// `local` pattern's VMs under `{vm_root}/{id8}`).
fn still_running(pattern: Option<&Pattern>, entry: &Entry) -> Option<String> {
    let (what, folder) = pattern?.running_folder(&entry.id)?;
    folder.exists().then(|| what.to_string())
}

/// The folder a deployment lives in, as `ps` shows it: the app's real folder, and the path it
/// was given as when that differs (`/srv/blue (as /srv/current)`).
fn folder(entry: &Entry) -> String {
    match &entry.app_dir_given {
        Some(given) => format!("{} (as {})", entry.app_dir.display(), given.display()),
        None => entry.app_dir.display().to_string(),
    }
}

/// `ps [--prune]`: every deployment in the registry with what it costs a month (what its
/// Terraform state holds) and the total per environment. Entries whose folder vanished are
/// shown as `missing`; `--prune` removes them (and only them).
pub async fn ps(printer: &Printer, settings: &Settings, prune: bool, json: bool) -> Result<()> {
    let registry = registry(settings);
    let (mut entries, broken) = registry.list()?;
    for (path, err) in &broken {
        printer.warn(format!(
            "registry entry `{}` cannot be read ({err}); remove the file if it is stale",
            path.display()
        ));
    }
    // One stat per entry: whether its folder still exists.
    let mut missing: Vec<bool> = entries.iter().map(Entry::missing).collect();
    if prune {
        let mut pruned = 0;
        for entry in entries
            .iter()
            .zip(&missing)
            .filter(|(_, m)| **m)
            .map(|(e, _)| e)
        {
            let pattern = crate::pattern::find(settings, &entry.app_dir, &entry.pattern).ok();
            if let Some(what) = still_running(pattern.as_ref(), entry) {
                printer.warn(format!(
                    "kept {} {}: its {what} still run; `tfgrid-compose down {}` stops them and \
                        forgets it",
                    entry.short_id(),
                    entry.label(),
                    entry.short_id()
                ));
                continue;
            }
            registry.remove(&entry.id)?;
            printer.status(
                "Pruned",
                format!(
                    "{} {} (no `{}`)",
                    entry.short_id(),
                    entry.label(),
                    entry.state_dir.display()
                ),
            );
            // A pattern that can stop its resources without state keeps them on this machine.
            let on_this_machine = pattern.is_some_and(|p| p.manifest.down_without_state.is_some());
            if !on_this_machine && entry.status != "destroyed" {
                // Forgetting stops nothing: say what may still be billed.
                printer.warn(format!(
                    "{}: what it created on the grid may still be billed; `tfgrid-compose \
                        contracts` lists your twin's contracts and marks orphans",
                    entry.short_id()
                ));
            }
            pruned += 1;
        }
        if pruned == 0 {
            printer.status("Pruned", "nothing: every entry's folder exists");
        }
        let mut kept = missing.iter().map(|m| !m);
        entries.retain(|_| kept.next().unwrap_or(true));
        missing = vec![false; entries.len()];
    }
    let now = now_unix();
    // A cost that cannot be computed (the simulator's ledger damaged) leaves the list whole.
    let monthly =
        crate::ops::cost::monthly_by_id(settings, &crate::ops::cost::FiguresCache::default())
            .await
            .unwrap_or_else(|err| {
                printer.warn(format!("monthly costs not shown: {err:#}"));
                std::collections::BTreeMap::new()
            });
    if json {
        printer.json_line(&ps_document(&entries, &missing, now, &monthly));
        return Ok(());
    }
    if entries.is_empty() {
        printer.status("Empty", "no deployments recorded on this machine");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = entries
        .iter()
        .zip(&missing)
        .map(|(e, m)| {
            let status = if *m {
                "missing".to_string()
            } else {
                crate::state::settled_status(&e.status, &e.state_dir)
            };
            vec![
                e.short_id().to_string(),
                e.app.clone(),
                e.env.clone(),
                e.pattern.clone(),
                status,
                e.primary_ip.clone().unwrap_or_else(|| "-".into()),
                monthly
                    .get(&e.id)
                    .map_or_else(|| "-".into(), |usd| crate::cost::usd(*usd)),
                age(e.created_at, now),
                folder(e),
            ]
        })
        .collect();
    let header = [
        "ID", "APP", "ENV", "PATTERN", "STATUS", "ADDRESS", "MONTH", "AGE", "FOLDER",
    ];
    printer.raw(crate::output::table(&header, &rows).as_bytes());
    crate::ops::cost::print_env_totals(printer, &entries, &monthly);
    let vanished = missing.iter().filter(|m| **m).count();
    if vanished > 0 {
        printer.warn(format!(
            "{vanished} deployment folder{} vanished; `tfgrid-compose down ID` stops what can \
                still be found of each, `tfgrid-compose ps --prune` forgets them",
            plural(vanished)
        ));
    }
    Ok(())
}

/// `select TARGET`: records the deployment in this folder's context file.
pub fn select(printer: &Printer, settings: &Settings, query: &str) -> Result<()> {
    let target = resolve_target(settings, Some(query))?;
    let state = target.load()?;
    let mut context = read_context_file()?;
    context.insert("deployment".into(), state.id.clone().into());
    write_context(&context)?;
    printer.status(
        "Selected",
        format!(
            "{} {}:{} (in `{CONTEXT_FILE}`)",
            crate::ids::ShortId::of(&state.id),
            state.app.name,
            state.env
        ),
    );
    Ok(())
}

/// `unselect`: forgets the selection; the file goes when nothing else is in it.
pub fn unselect(printer: &Printer) -> Result<()> {
    let mut context = read_context_file()?;
    if context.remove("deployment").is_none() {
        printer.status("Unselected", "nothing was selected here");
        return Ok(());
    }
    if context.is_empty() {
        std::fs::remove_file(CONTEXT_FILE)
            .with_context(|| format!("failed to remove `{CONTEXT_FILE}`"))?;
    } else {
        write_context(&context)?;
    }
    printer.status(
        "Unselected",
        format!("the deployment selected in `{CONTEXT_FILE}`"),
    );
    Ok(())
}

fn write_context(context: &serde_yaml::Mapping) -> Result<()> {
    let text = serde_yaml::to_string(context)?;
    let path = std::path::absolute(CONTEXT_FILE)?;
    write_atomic(&path, text.as_bytes(), 0o644)
}

/// Replaces the values of keys that look secret, at any depth, and private keys inside text.
pub fn redact(value: &mut Value) {
    const SECRET: &[&str] = &[
        "token",
        "password",
        "secret",
        "private",
        "mnemonic",
        "kubeconfig",
        "api_key",
        "apikey",
    ];
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                let lower = key.to_ascii_lowercase();
                if SECRET.iter().any(|s| lower.contains(s)) && !v.is_null() {
                    *v = Value::String("<redacted>".into());
                } else {
                    redact(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        Value::String(text) if text.contains("PrivateKey") || text.contains("PRIVATE KEY") => {
            *text = "<redacted>".into()
        }
        _ => {}
    }
}

async fn tool_version(program: &str, args: &[&str]) -> Value {
    let cmd = Cmd::new(program)
        .args(args.iter().copied())
        .io(Io::Answer)
        .timeout(Duration::from_secs(10));
    match Runner::real().status(&cmd).await {
        Ok(out) if out.code == Some(0) => Value::String(
            out.stdout
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_string(),
        ),
        Ok(out) => Value::String(format!("(exited with {:?})", out.code)),
        Err(err) => Value::String(format!("({err})")),
    }
}

async fn inspect_one(settings: &Settings, target: &Target) -> Result<Value> {
    let state = target.load()?;
    let registered = registry(settings).contains(&state.id);
    let mut state_json = serde_json::to_value(&state)?;
    redact(&mut state_json);
    let logs: Vec<String> = state
        .runs
        .last()
        .and_then(|r| std::fs::read_dir(&r.log_dir).ok())
        .map(|d| {
            let mut v: Vec<String> = d
                .flatten()
                .map(|e| e.path().display().to_string())
                .collect();
            v.sort();
            v
        })
        .unwrap_or_default();
    let context_keys: Vec<String> = target
        .dir
        .load_context()
        .unwrap_or_default()
        .into_keys()
        .collect();
    Ok(json!({
        "id": state.id,
        "app": state.app.name,
        "env": state.env,
        "state_dir": target.dir.root,
        "origin": state.app.origin,
        "registered": registered,
        "log_dir": state.runs.last().map(|r| r.log_dir.clone()),
        "logs": logs,
        "context_keys": context_keys,
        "tools_now": {
            "tofu": {"path": state.tofu, "version": tool_version(&state.tofu, &["version"]).await},
            "ssh": {"path": "ssh", "version": tool_version("ssh", &["-V"]).await},
        },
        "state": state_json,
    }))
}

/// `inspect [TARGET] [--all]`: everything recorded, secrets redacted; YAML for people, JSON with
/// `--json`.
pub async fn inspect(
    printer: &Printer,
    settings: &Settings,
    query: Option<&str>,
    all: bool,
    json: bool,
) -> Result<()> {
    let docs: Vec<Value> = if all {
        let (entries, _) = registry(settings).list()?;
        let mut docs = Vec::new();
        for entry in entries {
            let mut row = json!({"id": entry.id, "app": entry.app, "env": entry.env, "state_dir": entry.state_dir});
            if entry.missing() {
                row["missing"] = true.into();
                docs.push(row);
                continue;
            }
            // One entry that cannot be read (its folder holds another deployment now, or a
            // damaged state.yaml) is shown with why, not allowed to hide the others.
            match inspect_one(settings, &Target::of_entry(&entry, settings)).await {
                Ok(doc) => docs.push(doc),
                Err(err) => {
                    row["error"] = format!("{err:#}").into();
                    docs.push(row);
                }
            }
        }
        docs
    } else {
        vec![inspect_one(settings, &resolve_target(settings, query)?).await?]
    };
    if json {
        let body = if all {
            json!({"schema": JSON_SCHEMA, "deployments": docs})
        } else {
            json!({"schema": JSON_SCHEMA, "deployment": docs[0]})
        };
        printer.json_line(&body);
        return Ok(());
    }
    if docs.is_empty() {
        return Err(UserError::new(
            "no deployments recorded on this machine",
            "deploy one with `tfgrid-compose up APP`",
        )
        .into());
    }
    for doc in docs {
        printer.data(serde_yaml::to_string(&doc)?.trim_end());
        printer.data("---");
    }
    Ok(())
}
