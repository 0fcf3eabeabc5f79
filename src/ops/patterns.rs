//! `patterns` (list), `patterns show NAME`, `patterns check DIR`.

use std::path::Path;

use anyhow::Result;
use serde_json::json;

use crate::error::{Failed, UserError};
use crate::ops::deployments::JSON_SCHEMA;
use crate::output::{Printer, plural};
use crate::pattern::Pattern;
use crate::process::Runner;
use crate::settings::Settings;

/// Every pattern found, first occurrence of a name wins (as for `up`).
fn all(settings: &Settings) -> Result<Vec<Pattern>> {
    let mut found: Vec<Pattern> = Vec::new();
    for dir in crate::pattern::dirs(settings, Path::new("."))? {
        let Ok(read) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut entries: Vec<_> = read
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("pattern.yaml").is_file())
            .collect();
        entries.sort();
        for path in entries {
            if let Ok(pattern) = Pattern::load(&path)
                && !found
                    .iter()
                    .any(|p| p.manifest.name == pattern.manifest.name)
            {
                found.push(pattern);
            }
        }
    }
    found.sort_by(|a, b| a.manifest.name.cmp(&b.manifest.name));
    Ok(found)
}

fn one_line(text: Option<&String>) -> String {
    text.map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// `patterns --json`'s rows: name, version, description on one line, requires, needs_root, dir.
pub fn rows(settings: &Settings) -> Result<Vec<serde_json::Value>> {
    Ok(all(settings)?
        .iter()
        .map(|p| json!({"name": p.manifest.name, "version": p.manifest.version, "description": one_line(p.manifest.description.as_ref()), "requires": p.manifest.requires, "needs_root": p.manifest.needs_root, "dir": p.dir}))
        .collect())
}

pub fn list(printer: &Printer, settings: &Settings, json: bool) -> Result<()> {
    if json {
        printer.json_line(&json!({"schema": JSON_SCHEMA, "patterns": rows(settings)?}));
        return Ok(());
    }
    let patterns = all(settings)?;
    let width = patterns
        .iter()
        .map(|p| p.manifest.name.len())
        .max()
        .unwrap_or(0);
    for p in &patterns {
        let summary = one_line(p.manifest.description.as_ref());
        let summary = summary
            .split(". ")
            .next()
            .unwrap_or_default()
            .trim_end_matches('.');
        printer.data(format!(
            "{:<width$}  {:<6}  {summary}",
            p.manifest.name, p.manifest.version
        ));
    }
    Ok(())
}

pub fn show(printer: &Printer, settings: &Settings, name: &str, json: bool) -> Result<()> {
    let pattern = crate::pattern::find(settings, Path::new("."), name)?;
    let declared =
        crate::pattern::check::declared(&pattern.dir.join("infrastructure")).unwrap_or_default();
    let m = &pattern.manifest;
    if json {
        printer.json_line(&json!({
            "schema": JSON_SCHEMA, "name": m.name, "version": m.version, "description": one_line(m.description.as_ref()),
            "requires": m.requires, "needs_root": m.needs_root, "host_tools": m.host_tools, "dir": pattern.dir,
            "variables": m.variables, "outputs": declared.outputs, "readme": pattern.dir.join("README.md"), "placement": m.placement,
            "format": m.format, "commands": m.commands, "defaults": pattern.defaults,
        }));
        return Ok(());
    }
    printer.data(format!("{} {}", m.name, m.version));
    printer.data(one_line(m.description.as_ref()));
    printer.data(format!("folder     {}", pattern.dir.display()));
    if m.format == crate::pattern::compat::Format::Bash {
        printer.data("format     the bash tool's (`patterns check` lists the rules used)");
    }
    let mut requires = m.requires.describe();
    if pattern.mnemonic_variable {
        requires.push("mnemonic".into());
    }
    printer.data(format!(
        "requires   {}",
        if requires.is_empty() {
            "nothing".into()
        } else {
            requires.join(", ")
        }
    ));
    if m.needs_root || !m.host_tools.is_empty() {
        printer.data(format!(
            "host       {}{}",
            if m.needs_root { "root; " } else { "" },
            m.host_tools.join(" ")
        ));
    }
    printer.data(format!(
        "outputs    {}",
        declared
            .outputs
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    ));
    printer.data("variables (set under `config:` in the app's manifest)");
    for (key, var) in &m.variables {
        let default = var
            .default
            .as_ref()
            .map(|d| {
                serde_yaml::to_string(d)
                    .unwrap_or_default()
                    .trim()
                    .to_string()
            })
            .unwrap_or_else(|| "-".into());
        let bounds = match (var.min, var.max) {
            (Some(a), Some(b)) => format!(" [{a}..{b}]"),
            (Some(a), None) => format!(" [>= {a}]"),
            (None, Some(b)) => format!(" [<= {b}]"),
            (None, None) => String::new(),
        };
        let kind = format!("{:?}", var.kind).to_lowercase();
        printer.data(
            format!(
                "  {key:<24} {kind:<7} default {default}{bounds}  {}",
                one_line(var.description.as_ref())
            )
            .trim_end(),
        );
    }
    if !m.placement.is_empty() {
        printer.data("nodes (picked through GridProxy unless pinned; see docs/nodes.md)");
        for spec in &m.placement {
            let vms: Vec<String> = spec
                .vms
                .iter()
                .map(|vm| {
                    let count = vm
                        .count
                        .as_ref()
                        .map(|c| format!("{}× ", amount(c)))
                        .unwrap_or_default();
                    format!(
                        "{count}{{cpu {}, memory {} MB, disk {} GB}}",
                        amount(&vm.cpu),
                        amount(&vm.memory),
                        amount(&vm.disk)
                    )
                })
                .collect();
            let ipv4 = spec
                .public_ipv4
                .as_ref()
                .map(|p| format!(", public IPv4: {}", amount(p)))
                .unwrap_or_default();
            printer.data(format!(
                "  {:<10} -> {:<18} {}{ipv4}",
                spec.role,
                spec.variable,
                vms.join(" + ")
            ));
        }
    }
    if !m.commands.0.is_empty() {
        printer.data("commands (run on the primary VM; an app command of the same name wins)");
        for (name, command) in &m.commands.0 {
            printer.data(
                format!(
                    "  {name:<10} {:<24} {}",
                    command.script,
                    one_line(command.description.as_ref())
                )
                .trim_end(),
            );
        }
    }
    printer.data(format!(
        "README     {}",
        pattern.dir.join("README.md").display()
    ));
    Ok(())
}

fn amount(a: &crate::grid::placement::Amount) -> String {
    match a {
        crate::grid::placement::Amount::Number(n) => n.to_string(),
        crate::grid::placement::Amount::Flag(b) => b.to_string(),
        crate::grid::placement::Amount::Variable(v) => v.clone(),
    }
}

pub async fn check(printer: &Printer, dir: &Path, json: bool) -> Result<()> {
    if !dir.is_dir() {
        return Err(UserError::new(
            format!("`{}` is not a folder", dir.display()),
            "pass a pattern folder, e.g. `tfgrid-compose patterns check patterns/single-vm`",
        )
        .into());
    }
    let logs = tempfile::tempdir()?;
    let log = logs.path().join("syntax-check.log");
    let report = crate::pattern::check::check(dir, &Runner::real(), &log).await;
    if json {
        printer.json_line(&json!({"schema": JSON_SCHEMA, "dir": report.dir, "pattern": report.name, "format": report.format, "ok": report.problems.is_empty(), "passed": report.passed, "problems": report.problems, "compatibility": report.compatibility}));
    } else {
        for rule in &report.compatibility {
            printer.status("Rule", rule);
        }
        for line in &report.passed {
            printer.status("Ok", line);
        }
    }
    if report.problems.is_empty() {
        printer.status(
            "Checked",
            format!(
                "pattern `{}`: {} check{} passed",
                report.name.as_deref().unwrap_or("?"),
                report.passed.len(),
                plural(report.passed.len())
            ),
        );
        return Ok(());
    }
    let count = report.problems.len();
    Err(Failed {
        message: format!(
            "pattern in `{}` has {count} problem{}:\n  {}",
            dir.display(),
            plural(count),
            report.problems.join("\n  ")
        ),
        hints: vec!["see patterns/PATTERN_CONTRACT.md for what a pattern must provide".into()],
        source: anyhow::anyhow!("{count} problem{}", plural(count)).into(),
    }
    .into())
}
