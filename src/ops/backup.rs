//! `projects backup` and `projects restore`: the AI stack's projects into one archive and back,
//! through the agent's API (`GET /api/v1/backup`, `POST /api/v1/restore`). The archive is checked
//! here too ([`crate::ai::archive::Archive::read`]): a backup is written only once it reads back
//! whole, and a restore sends nothing the checks refuse.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde_json::json;

use super::ai::AgentFlags;
use crate::ai::archive::{Archive, sha256_hex};
use crate::ai::client::AgentClient;
use crate::error::UserError;
use crate::output::{Printer, plural};
use crate::settings::Settings;

/// `ai-stack-backup-2026-11-23T101512Z.tar.gz` for a backup taken at that time (UTC).
pub fn default_file_name(unix: u64) -> String {
    format!(
        "ai-stack-backup-{}.tar.gz",
        crate::clock::format_utc(unix).replace(':', "")
    )
}

/// `12.3 KB`, `4.0 MB`: sizes as a person reads them (powers of 1000).
fn format_size(bytes: u64) -> String {
    #[expect(clippy::cast_precision_loss, reason = "a size shown to one decimal")]
    let value = bytes as f64;
    match bytes {
        0..1_000 => format!("{bytes} B"),
        1_000..1_000_000 => format!("{:.1} KB", value / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", value / 1e6),
        _ => format!("{:.1} GB", value / 1e9),
    }
}

/// Where the archive goes: `output`, or a name with the date in the current folder (which must
/// not exist). Refused before anything is asked of the agent: a folder that is not there, a
/// path that is a folder.
fn output_path(output: Option<&Path>) -> Result<PathBuf> {
    let path = output.map_or_else(
        || PathBuf::from(default_file_name(crate::clock::now_unix())),
        Path::to_path_buf,
    );
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(UserError::new(
            format!("-o: the folder `{}` does not exist", dir.display()),
            "create it, or pass another file with -o",
        )
        .into());
    }
    if path.is_dir() {
        return Err(UserError::new(
            format!("-o: `{}` is a folder", path.display()),
            "pass a file name, e.g. -o stack.tar.gz",
        )
        .into());
    }
    if output.is_none() && path.exists() {
        return Err(UserError::new(
            format!("`{}` exists already", path.display()),
            "pass another file with -o",
        )
        .into());
    }
    Ok(path)
}

/// `projects backup [-o FILE]`: the archive from the agent, checked, then written atomically
/// (temp file, rename) with mode 0600. `--json`: `{schema, file, bytes, sha256, format,
/// created_at, created, public_url, projects: [{id, name, status, created}], files}`
/// (docs/schemas/backup.schema.json).
pub async fn backup(
    printer: &Printer,
    agent: &AgentClient,
    output: Option<&Path>,
    json: bool,
) -> Result<()> {
    let path = output_path(output)?;
    printer.status(
        "Backing up",
        format!("the AI stack of the agent at {}", agent.url),
    );
    let spinner = printer.spinner("Backing up", None);
    let bytes = agent
        .backup(&|n| {
            if let Some(s) = &spinner {
                s.set_message(format!("{} received", format_size(n)));
            }
        })
        .await?;
    drop(spinner);
    let archive = Archive::read(&bytes).map_err(|e| {
        anyhow::anyhow!(
            "the agent sent an archive that does not read back: {}",
            e.message
        )
    })?;
    let manifest = &archive.manifest;
    printer.status(
        "Verified",
        format!(
            "{} file{} against the manifest ({} project{})",
            manifest.files.len(),
            plural(manifest.files.len()),
            manifest.projects.len(),
            plural(manifest.projects.len())
        ),
    );
    crate::files::write_atomic(&path, &bytes, 0o600)
        .with_context(|| format!("cannot write the backup to `{}`", path.display()))?;
    if json {
        printer.json_line(&json!({
            "schema": 1,
            "file": path,
            "bytes": bytes.len(),
            "sha256": sha256_hex(&bytes),
            "format": manifest.format,
            "created_at": manifest.created_at,
            "created": manifest.created,
            "public_url": manifest.public_url,
            "projects": manifest.projects,
            "files": manifest.files.len(),
        }));
        return Ok(());
    }
    for project in &manifest.projects {
        printer.status("Saved", format!("`{}` ({})", project.name, project.status));
    }
    printer.status(
        "Finished",
        format!(
            "`{}` ({}, {} project{} of {})",
            path.display(),
            format_size(bytes.len() as u64),
            manifest.projects.len(),
            plural(manifest.projects.len()),
            manifest.public_url
        ),
    );
    Ok(())
}

/// `projects restore FILE`: the archive is read and checked here first (a missing, damaged or
/// changed file, or another format, is refused before the stack is asked), then sent to the
/// agent, which refuses it whole when a project of it exists there. `--json`: `{schema, file,
/// from: {public_url, created_at}, projects: [project], routes, sites}`
/// (docs/schemas/restore.schema.json).
pub async fn restore(
    printer: &Printer,
    settings: &Settings,
    flags: &AgentFlags,
    file: &Path,
    json: bool,
) -> Result<()> {
    let bytes = std::fs::read(file).map_err(|e| {
        UserError::new(
            format!("cannot read `{}`: {e}", file.display()),
            "pass the archive `tfgrid-compose projects backup` wrote",
        )
    })?;
    let archive = Archive::read(&bytes).map_err(|e| UserError {
        message: format!("`{}`: {}", file.display(), e.message),
        hint: e.hint,
    })?;
    let manifest = &archive.manifest;
    let agent = super::ai::client(settings, flags)?;
    printer.status(
        "Restoring",
        format!(
            "{} project{} from `{}` (the backup of {} taken {}) onto the agent at {}",
            manifest.projects.len(),
            plural(manifest.projects.len()),
            file.display(),
            manifest.public_url,
            manifest.created,
            agent.url
        ),
    );
    let spinner = printer.spinner("Restoring", None);
    let report = agent.restore(bytes).await?;
    drop(spinner);
    if json {
        printer.json_line(&json!({
            "schema": 1,
            "file": file,
            "from": report.from,
            "projects": report.projects,
            "routes": report.routes,
            "sites": report.sites,
        }));
        return Ok(());
    }
    for p in &report.projects {
        let at = p
            .live_url
            .as_deref()
            .map_or_else(|| format!("({})", p.status), |url| format!("live at {url}"));
        printer.status("Restored", format!("`{}` {at}", p.name));
    }
    printer.status(
        "Finished",
        format!(
            "{} project{}, {} site{}, {} route{}",
            report.projects.len(),
            plural(report.projects.len()),
            report.sites.len(),
            plural(report.sites.len()),
            report.routes.len(),
            plural(report.routes.len())
        ),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_default_name_carries_the_date_and_sizes_read_as_people_write_them() {
        assert_eq!(
            super::default_file_name(1_795_428_912),
            "ai-stack-backup-2026-11-23T101512Z.tar.gz"
        );
        assert_eq!(super::format_size(999), "999 B");
        assert_eq!(super::format_size(12_345), "12.3 KB");
        assert_eq!(super::format_size(4_000_000), "4.0 MB");
    }
}
