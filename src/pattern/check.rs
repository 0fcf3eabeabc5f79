//! The static check of a pattern folder (`patterns check`):
//! `pattern.yaml` valid, the Terraform declares every contract output and every variable the
//! orchestrator passes (parsed with `hcl-rs`), `platform/site.yml` passes
//! `ansible-playbook --syntax-check`, and a README exists.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::pattern::compat::Format;
use crate::pattern::contract::{PASSED_VARIABLES, REQUIRED_OUTPUTS};
use crate::pattern::{Pattern, Variable};
use crate::process::{Cmd, Io, Runner};

/// What `infrastructure/*.tf` declares.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Declared {
    pub variables: BTreeSet<String>,
    pub outputs: BTreeSet<String>,
}

/// The top-level blocks of every `.tf` file of a folder, in file-name order.
fn blocks(infrastructure: &Path) -> Result<Vec<hcl::Block>, (PathBuf, String)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(infrastructure)
        .map_err(|e| (infrastructure.to_path_buf(), format!("cannot read: {e}")))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "tf"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err((infrastructure.to_path_buf(), "holds no .tf file".into()));
    }
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .map_err(|e| (file.clone(), format!("cannot read: {e}")))?;
        let body = hcl::parse(&text).map_err(|e| (file.clone(), format!("not valid HCL: {e}")))?;
        found.extend(body.into_blocks());
    }
    Ok(found)
}

/// Parses every `.tf` file of a folder and collects `variable` and `output` labels.
pub fn declared(infrastructure: &Path) -> Result<Declared, String> {
    let mut found = Declared::default();
    for block in blocks(infrastructure).map_err(|(file, e)| format!("`{}`: {e}", file.display()))? {
        let label = block.labels().first().map(|l| l.as_str().to_string());
        match (block.identifier(), label) {
            ("variable", Some(name)) => {
                found.variables.insert(name);
            }
            ("output", Some(name)) => {
                found.outputs.insert(name);
            }
            _ => {}
        }
    }
    Ok(found)
}

/// The `variable` blocks of a folder's `.tf` files as pattern variables (type, literal default,
/// description), for patterns written for the bash tool. `Err` names the file.
pub fn variable_blocks(
    infrastructure: &Path,
) -> Result<BTreeMap<String, Variable>, (PathBuf, String)> {
    Ok(blocks(infrastructure)?
        .iter()
        .filter(|b| b.identifier() == "variable")
        .filter_map(|b| {
            let name = b.labels().first()?.as_str().to_string();
            Some((name, crate::pattern::compat::variable_from_hcl(b)))
        })
        .collect())
}

/// The result of `patterns check`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CheckReport {
    pub dir: PathBuf,
    pub name: Option<String>,
    /// `native` or `bash` (the tool the `pattern.yaml` was written for).
    pub format: Option<Format>,
    pub problems: Vec<String>,
    pub passed: Vec<String>,
    /// The compatibility rules used to read a pattern written for the bash tool, in words.
    pub compatibility: Vec<String>,
}

/// Every variable a `placement:` entry names must be declared, the node variable as a number.
fn placement_problems(pattern: &Pattern) -> Vec<String> {
    use crate::grid::placement::Amount;
    use crate::pattern::VariableKind;
    let declared = &pattern.manifest.variables;
    let mut problems = Vec::new();
    for spec in &pattern.manifest.placement {
        if declared
            .get(&spec.variable)
            .is_none_or(|v| v.kind != VariableKind::Number)
        {
            problems.push(format!(
                "pattern.yaml: placement `{}`: variable `{}` must be declared with type number",
                spec.role, spec.variable
            ));
        }
        let amounts = spec
            .vms
            .iter()
            .flat_map(|vm| {
                [
                    Some(&vm.cpu),
                    Some(&vm.memory),
                    Some(&vm.disk),
                    vm.count.as_ref(),
                ]
            })
            .flatten()
            .chain(spec.public_ipv4.as_ref());
        for amount in amounts {
            if let Amount::Variable(name) = amount
                && !declared.contains_key(name)
            {
                problems.push(format!(
                    "pattern.yaml: placement `{}` names variable `{name}`, which is not declared",
                    spec.role
                ));
            }
        }
    }
    problems
}

/// Checks a pattern folder without creating anything. Every problem is collected, not just the
/// first.
pub async fn check(dir: &Path, runner: &Runner, log: &Path) -> CheckReport {
    let mut report = CheckReport {
        dir: dir.to_path_buf(),
        name: None,
        format: None,
        problems: Vec::new(),
        passed: Vec::new(),
        compatibility: Vec::new(),
    };
    let pattern = match Pattern::load(dir) {
        Ok(pattern) => {
            report.passed.push("pattern.yaml is valid".into());
            report.name = Some(pattern.manifest.name.clone());
            report.format = Some(pattern.manifest.format);
            if pattern.manifest.format == Format::Bash {
                report.compatibility = crate::pattern::compat::rules(&pattern);
            }
            let unknown = placement_problems(&pattern);
            if unknown.is_empty() && !pattern.manifest.placement.is_empty() {
                report.passed.push(format!(
                    "placement names declared variables ({} node{})",
                    pattern.manifest.placement.len(),
                    if pattern.manifest.placement.len() == 1 {
                        ""
                    } else {
                        "s"
                    }
                ));
            }
            report.problems.extend(unknown);
            Some(pattern)
        }
        Err(err) => {
            report.problems.push(err.to_string());
            // The format still decides which of the checks below apply: a mistake in a bash
            // pattern's pattern.yaml must not bring this tool's own rules with it.
            report.format = std::fs::read_to_string(dir.join("pattern.yaml"))
                .ok()
                .and_then(|t| crate::yaml::from_yaml::<serde_yaml::Mapping>(&t).ok())
                .map(|keys| {
                    if crate::pattern::compat::NATIVE_KEYS
                        .iter()
                        .any(|k| keys.contains_key(*k))
                    {
                        Format::Native
                    } else {
                        Format::Bash
                    }
                });
            None
        }
    };
    match declared(&dir.join("infrastructure")) {
        Ok(found) => {
            let mut missing = Vec::new();
            for output in REQUIRED_OUTPUTS {
                if !found.outputs.contains(output) {
                    report.problems.push(format!(
                        "infrastructure/: contract output `{output}` is \
                        not declared (add `output \"{output}\" {{ value = … }}`)"
                    ));
                    missing.push(output);
                }
            }
            if missing.is_empty() {
                report.passed.push(format!(
                    "infrastructure/ declares the contract outputs ({})",
                    REQUIRED_OUTPUTS.join(", ")
                ));
            }
            // A bash-format pattern gets only the variables it declares; this tool's own
            // patterns must declare the ones every deployment has.
            let mut wanted: Vec<String> = if report.format == Some(Format::Bash) {
                Vec::new()
            } else {
                PASSED_VARIABLES.iter().map(|s| (*s).to_string()).collect()
            };
            // The mnemonic is not a variable a pattern must declare: the orchestrator also gives it
            // as MNEMONIC/MNEMONICS, which the grid provider reads when its block leaves it out.
            if let Some(p) = &pattern {
                wanted.extend(p.manifest.variables.keys().cloned());
            }
            let absent: Vec<&String> = wanted
                .iter()
                .filter(|v| !found.variables.contains(*v))
                .collect();
            for var in &absent {
                report.problems.push(format!(
                    "infrastructure/: variable `{var}` is passed by the orchestrator \
                        but not declared (add `variable \"{var}\" {{}}`)"
                ));
            }
            if absent.is_empty() {
                report.passed.push(format!(
                    "infrastructure/ declares the {} variables it is given",
                    wanted.len()
                ));
            }
        }
        Err(err) => report.problems.push(err),
    }
    let site = pattern
        .as_ref()
        .map_or_else(|| dir.join("platform/site.yml"), Pattern::playbook);
    let shown = site
        .strip_prefix(dir)
        .unwrap_or(&site)
        .display()
        .to_string();
    if site.is_file() {
        let inventory = log.with_extension("inventory.ini");
        let _ = std::fs::write(&inventory, "localhost ansible_connection=local\n");
        let cmd = Cmd::new("ansible-playbook")
            .args(["--syntax-check", "-i"])
            .arg(inventory.display().to_string())
            .arg(site.display().to_string())
            .env("ANSIBLE_NOCOLOR", "1")
            .io(Io::Log(log.to_path_buf()))
            .timeout(std::time::Duration::from_secs(120));
        match runner.run(&cmd).await {
            Ok(_) => report
                .passed
                .push(format!("{shown} passes ansible-playbook --syntax-check")),
            Err(err) => report.problems.push(format!("{shown}: {err}")),
        }
    } else {
        report.problems.push(format!("{shown} is missing"));
    }
    if dir.join("README.md").is_file() {
        report.passed.push("README.md is present".into());
    } else if report.format == Some(Format::Bash) {
        report.compatibility.push(
            "README.md: not required of the bash tool's format (its single-vm had none)".into(),
        );
    } else {
        report
            .problems
            .push("README.md is missing (use cases, variables, outputs, an example app)".into());
    }
    report
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_shipped_pattern_is_embedded() {
        let names = crate::pattern::builtin::embedded_names();
        for name in ["local", "single-vm", "gateway", "k3s", "ai-stack"] {
            assert!(names.contains(name), "{name} not embedded: {names:?}");
        }
    }

    #[test]
    fn hcl_declarations_are_found() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.tf"),
            "variable \"x\" {\n  type = string\n}\noutput \"primary_ip\" {\n  value = var.x\n}\n",
        )
        .unwrap();
        let found = super::declared(dir.path()).unwrap();
        assert!(found.variables.contains("x") && found.outputs.contains("primary_ip"));
        std::fs::write(dir.path().join("b.tf"), "output \"broken\" {").unwrap();
        assert!(super::declared(dir.path()).unwrap_err().contains("b.tf"));
    }
}
