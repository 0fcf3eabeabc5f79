//! Everything about patterns: [`Pattern`] (a folder with `pattern.yaml`, `infrastructure/*.tf`,
//! `platform/site.yml`) and its manifest, finding one by name ([`find`]), the ones shipped in the
//! binary ([`builtin`]), the contract between a pattern's Terraform outputs and the orchestrator
//! ([`contract`]), and the static check `patterns check` runs ([`check`]).

pub mod builtin;
pub mod check;
pub mod contract;
pub mod placement;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::error::{InputError, UserError};
use crate::settings::Settings;
use crate::yaml::parse_yaml;

/// `pattern.yaml`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PatternManifest {
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Credentials the pattern needs: `mnemonic`.
    #[serde(default)]
    pub requires: Vec<Requirement>,
    /// Variables the infrastructure declares that an app may set in `config:`.
    #[serde(default)]
    pub variables: BTreeMap<String, Variable>,
    /// Tools beyond tofu and ssh that the pattern's infrastructure runs on this machine.
    #[serde(default)]
    pub host_tools: Vec<String>,
    /// The infrastructure only works as root (the `local` pattern creates namespaces).
    #[serde(default)]
    pub needs_root: bool,
    /// Grid node variables and what goes on each node, for node selection.
    #[serde(default)]
    pub placement: Vec<placement::PlacementSpec>,
}

impl PatternManifest {
    /// Parses the text of `pattern.yaml` (`file` names it in errors) as [`Pattern::load`] does.
    pub fn parse(file: &Path, text: &str) -> Result<PatternManifest, InputError> {
        parse_yaml(
            file,
            text,
            "see patterns/PATTERN_CONTRACT.md for pattern.yaml's keys",
        )
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Requirement {
    Mnemonic,
}

/// A declared variable: type, default, bounds.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Variable {
    #[serde(rename = "type")]
    pub kind: VariableKind,
    #[serde(default)]
    pub default: Option<serde_yaml::Value>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum VariableKind {
    String,
    Number,
    Bool,
    List,
    Map,
}

impl Variable {
    /// Checks `value` against the declared kind (and whole numbers for `number`); the problem
    /// in words when it does not fit.
    pub fn check(&self, value: &serde_json::Value) -> Result<(), String> {
        let ok = match self.kind {
            VariableKind::String => value.is_string(),
            VariableKind::Number => value.is_number(),
            VariableKind::Bool => value.is_boolean(),
            VariableKind::List => value.is_array(),
            VariableKind::Map => value.is_object(),
        };
        if !ok {
            return Err(format!(
                "expected a {:?}, found {}",
                self.kind,
                crate::pattern::contract::json_kind(value)
            )
            .to_lowercase());
        }
        if let Some(n) = value.as_f64() {
            // a number variable whose default and bounds are whole numbers counts things (VMs,
            // cores, MB, GB, node ids): a fraction would only fail later, in Terraform
            let whole = |x: f64| x.fract() == 0.0;
            let default_whole = self
                .default
                .as_ref()
                .and_then(serde_yaml::Value::as_f64)
                .is_none_or(whole);
            if n.fract() != 0.0
                && default_whole
                && self.min.is_none_or(whole)
                && self.max.is_none_or(whole)
            {
                return Err(format!("{n} is not a whole number"));
            }
            if let Some(min) = self.min.filter(|min| n < *min) {
                return Err(format!("{n} is below the minimum {min}"));
            }
            if let Some(max) = self.max.filter(|max| n > *max) {
                return Err(format!("{n} is above the maximum {max}"));
            }
        }
        Ok(())
    }
}

/// A loaded pattern folder.
#[derive(Debug, Clone)]
pub struct Pattern {
    pub dir: PathBuf,
    pub manifest: PatternManifest,
}

impl Pattern {
    /// Loads `DIR/pattern.yaml` and checks that `infrastructure/*.tf` and `platform/site.yml` exist.
    pub fn load(dir: &Path) -> Result<Pattern, InputError> {
        let file = dir.join("pattern.yaml");
        let text = std::fs::read_to_string(&file).map_err(|err| InputError {
            file: file.clone(),
            line: None,
            column: None,
            field: "(document)".into(),
            message: format!("cannot read: {err}"),
            hint: Some("a pattern folder holds pattern.yaml, infrastructure/ and platform/".into()),
        })?;
        let manifest = PatternManifest::parse(&file, &text)?;
        let has_tf = std::fs::read_dir(dir.join("infrastructure"))
            .map(|entries| {
                entries
                    .flatten()
                    .any(|e| e.path().extension().is_some_and(|x| x == "tf"))
            })
            .unwrap_or(false);
        if !has_tf {
            return Err(InputError {
                file: dir.join("infrastructure"),
                line: None,
                column: None,
                field: "(folder)".into(),
                message: "no `*.tf` file".into(),
                hint: Some(
                    "a pattern's infrastructure/ holds the Terraform module that creates its VMs"
                        .into(),
                ),
            });
        }
        let site = dir.join("platform").join("site.yml");
        if !site.is_file() {
            return Err(InputError {
                file: site,
                line: None,
                column: None,
                field: "(file)".into(),
                message: "missing".into(),
                hint: Some(
                    "a pattern's platform/site.yml is the playbook of the platform phase".into(),
                ),
            });
        }
        Ok(Pattern {
            dir: dir.to_path_buf(),
            manifest,
        })
    }

    pub fn needs_mnemonic(&self) -> bool {
        self.manifest.requires.contains(&Requirement::Mnemonic)
    }
}

/// Finds a pattern by name along the search path, then among the built-in ones.
pub fn find(settings: &Settings, app_dir: &Path, name: &str) -> Result<Pattern> {
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let mut search = settings.pattern_search_path(app_dir);
    if valid {
        for dir in &search {
            let candidate = dir.join(name);
            if candidate.join("pattern.yaml").is_file() {
                return Ok(Pattern::load(&candidate)?);
            }
        }
        if crate::pattern::builtin::embedded_names().contains(name) {
            let dir = crate::pattern::builtin::extract_embedded(&settings.data_dir)?;
            return Ok(Pattern::load(&dir.join(name))?);
        }
    }
    search.push(PathBuf::new());
    let mut known: Vec<String> = search
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .flatten()
        .filter(|e| e.path().join("pattern.yaml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .chain(crate::pattern::builtin::embedded_names())
        .collect();
    known.sort();
    known.dedup();
    Err(UserError::new(
        format!("unknown pattern `{name}`"),
        format!(
            "known patterns: {} (`tfgrid-compose patterns` describes them)",
            known.join(", ")
        ),
    )
    .into())
}

/// Every folder that may hold patterns: the search path on disk, then the patterns built into
/// the binary (extracted once into the data dir).
pub fn dirs(settings: &Settings, app_dir: &Path) -> Result<Vec<PathBuf>> {
    let mut dirs = settings.pattern_search_path(app_dir);
    dirs.push(crate::pattern::builtin::extract_embedded(
        &settings.data_dir,
    )?);
    Ok(dirs)
}
