//! Everything about patterns: [`Pattern`] (a folder with `pattern.yaml`, `infrastructure/*.tf`,
//! `platform/site.yml`) and its manifest, finding one by name ([`find`]), the ones shipped in the
//! binary ([`builtin`]), the contract between a pattern's Terraform outputs and the orchestrator
//! ([`contract`]), the static check `patterns check` runs ([`check`]), and patterns written for
//! the bash tool ([`compat`]).

pub mod builtin;
pub mod check;
pub mod command;
pub mod compat;
pub mod contract;
pub mod placement;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::error::{InputError, UserError};
use crate::pattern::compat::{
    Described, Format, InfrastructureSpec, PatternCommands, PlatformSpec, Requires,
};
use crate::settings::Settings;
use crate::yaml::parse_yaml;

/// `pattern.yaml`: this tool's keys, and the bash tool's ([`compat`]; every key of the patterns
/// it shipped is read).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PatternManifest {
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Credentials the pattern needs (`[mnemonic]`), or the bash tool's map of files the app
    /// must have (`app_hooks`, `deployment_hooks`).
    #[serde(default)]
    pub requires: Requires,
    /// Bash tool: what the pattern provides (names, or names with descriptions); descriptive.
    #[serde(default)]
    pub provides: Option<Described>,
    /// Bash tool: values for the pattern's variables (`cpu: 2`, `gateway: {memory: 4096}`),
    /// applied unless the app sets them (see [`compat::resolve_defaults`]).
    #[serde(default)]
    pub defaults: BTreeMap<String, serde_yaml::Value>,
    /// Bash tool: commands a deployment on this pattern gets (scripts in `scripts/`, run on the
    /// primary VM); an app command of the same name wins.
    #[serde(default)]
    pub commands: PatternCommands,
    /// Bash tool: `provider` and `template` (a `.tf` in `infrastructure/`).
    #[serde(default)]
    pub infrastructure: Option<InfrastructureSpec>,
    /// Bash tool: `provisioner: ansible` and the `playbook` the platform phase runs.
    #[serde(default)]
    pub platform: Option<PlatformSpec>,
    /// Bash tool (gateway, k3s): descriptive `stages`, `network` topology and `features`.
    #[serde(default)]
    pub stages: Option<serde_yaml::Value>,
    #[serde(default)]
    pub network: Option<serde_yaml::Value>,
    #[serde(default)]
    pub features: Option<serde_yaml::Value>,
    /// Which tool's format the file is in (from its keys, see [`compat::NATIVE_KEYS`]).
    #[serde(skip_deserializing)]
    pub format: Format,
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
    /// What `down` runs when a deployment's folder, and with it its Terraform state, is gone.
    #[serde(default)]
    pub down_without_state: Option<StatelessDown>,
}

/// `down_without_state:` of pattern.yaml: for a pattern whose resources can be found without
/// Terraform's state (the `local` pattern's VMs are named by the deployment's id). Without it,
/// `down` of a deployment whose folder is gone only says what may be left.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StatelessDown {
    /// What it stops, for the question and the status lines (`local VMs and network`).
    pub what: String,
    /// The argv: its first word a file of the pattern folder, run with `bash`; `{id8}` becomes
    /// the deployment id's first 8 hex digits and `{NAME}` the default of the variable `NAME`.
    pub run: Vec<String>,
    /// What may still run on this machine while the deployment's folder is gone, and where.
    #[serde(default)]
    pub running: Option<StillRunning>,
}

/// `down_without_state.running:` of pattern.yaml: what a deployment leaves running on this
/// machine (`local VMs`) while `folder` exists (`{vm_root}/{id8}`, placeholders as in `run`).
/// `ps --prune` keeps an entry whose folder exists, and `inspect` reads each VM's power state
/// from `folder/vm-INDEX/power` and `boots` (patterns/local/infrastructure/vm.sh `machine-run`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StillRunning {
    /// What runs, for the hints (`local VMs`).
    pub what: String,
    /// The folder on this machine that exists while it runs.
    pub folder: String,
}

impl StatelessDown {
    /// The argv for deployment `id8` of the pattern in `dir` (its variables' defaults in
    /// `variables`): the script's path, then the words with their placeholders filled in.
    pub fn argv(
        &self,
        dir: &Path,
        id8: &str,
        variables: &BTreeMap<String, Variable>,
    ) -> Vec<String> {
        let fill = |word: &String| fill(word, id8, variables);
        let mut words = self.run.iter();
        let script = words.next().map(|s| dir.join(s).display().to_string());
        script.into_iter().chain(words.map(fill)).collect()
    }
}

/// `word` with `{id8}` and every `{NAME}` (the default of variable `NAME`) filled in.
fn fill(word: &str, id8: &str, variables: &BTreeMap<String, Variable>) -> String {
    let mut word = word.replace("{id8}", id8);
    for (name, variable) in variables {
        if let Some(default) = variable.default.as_ref().and_then(crate::yaml::scalar_text) {
            word = word.replace(&format!("{{{name}}}"), &default);
        }
    }
    word
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
    /// Any value (a Terraform variable without a `type`, or `type = any`).
    Any,
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
            VariableKind::Any => true,
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
    /// `defaults:` as values of the variables they name (passed unless the app sets them).
    pub defaults: BTreeMap<String, serde_json::Value>,
    /// `defaults:` entries that name no declared variable (`backend.count`), never passed.
    pub unmatched_defaults: Vec<String>,
    /// Commands `pattern.yaml` lists whose script the folder lacks (the bash tool's gateway
    /// lists `reload` and `ssl` without scripts); they are not offered.
    pub missing_commands: Vec<String>,
    /// The Terraform declares `variable "mnemonic"` (the bash tool's patterns): the mnemonic
    /// goes to it through the environment only, as `TF_VAR_mnemonic`.
    pub mnemonic_variable: bool,
}

impl Pattern {
    /// Loads `DIR/pattern.yaml` and checks that `infrastructure/*.tf` and the playbook
    /// (`platform/site.yml`, or the bash tool's `platform.playbook`) exist. A pattern in the bash
    /// tool's format gets its variables from the Terraform's `variable` blocks and a placement for
    /// each `<role>_node` variable ([`compat`]). Errors name the file, line and field.
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
        let mut manifest = PatternManifest::parse(&file, &text)?;
        let keys: serde_yaml::Mapping = crate::yaml::from_yaml(&text).unwrap_or_default();
        if !compat::NATIVE_KEYS.iter().any(|k| keys.contains_key(*k)) {
            manifest.format = Format::Bash;
        }
        let field_error = |(field, message): compat::FieldProblem, hint: &str| {
            let (line, column) = compat::position(&text, &field);
            InputError {
                file: file.clone(),
                line,
                column,
                field: field.join("."),
                message,
                hint: Some(hint.to_string()),
            }
        };
        compat::check_paths(dir, &manifest).map_err(|problem| {
            field_error(
                problem,
                "paths in pattern.yaml are relative to the pattern folder and stay inside it",
            )
        })?;
        let infrastructure = dir.join("infrastructure");
        let has_tf = std::fs::read_dir(&infrastructure)
            .map(|entries| {
                entries
                    .flatten()
                    .any(|e| e.path().extension().is_some_and(|x| x == "tf"))
            })
            .unwrap_or(false);
        if !has_tf {
            return Err(InputError {
                file: infrastructure,
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
        let mut pattern = Pattern {
            dir: dir.to_path_buf(),
            manifest,
            defaults: BTreeMap::new(),
            unmatched_defaults: Vec::new(),
            missing_commands: Vec::new(),
            mnemonic_variable: false,
        };
        let missing: Vec<String> = pattern
            .manifest
            .commands
            .0
            .iter()
            .filter(|(_, c)| !dir.join(c.script.trim()).is_file())
            .map(|(name, _)| name.clone())
            .collect();
        for name in &missing {
            pattern.manifest.commands.0.remove(name);
        }
        pattern.missing_commands = missing;
        let site = pattern.playbook();
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
        if pattern.manifest.format == Format::Bash {
            let blocks =
                check::variable_blocks(&infrastructure).map_err(|(file, message)| InputError {
                    file,
                    line: None,
                    column: None,
                    field: "(document)".into(),
                    message,
                    hint: Some(
                        "the variables of a pattern written for the bash tool are read from its \
                            Terraform"
                            .into(),
                    ),
                })?;
            pattern.mnemonic_variable = blocks.contains_key("mnemonic");
            pattern.manifest.variables = blocks
                .into_iter()
                .filter(|(name, _)| name != "mnemonic")
                .collect();
            if pattern.manifest.placement.is_empty() {
                pattern.manifest.placement = compat::placements(&pattern.manifest.variables);
            }
        }
        let (defaults, unmatched) =
            compat::resolve_defaults(&pattern.manifest.defaults, &pattern.manifest.variables)
                .map_err(|(field, message)| {
                    field_error(
                        (
                            std::iter::once("defaults".to_string())
                                .chain(field)
                                .collect(),
                            message,
                        ),
                        "a default is a value of the pattern's variable of that name",
                    )
                })?;
        for (name, value) in &defaults {
            if let Some(variable) = pattern.manifest.variables.get_mut(name) {
                variable.default = serde_yaml::to_value(value).ok();
            }
        }
        pattern.defaults = defaults;
        pattern.unmatched_defaults = unmatched;
        Ok(pattern)
    }

    pub fn needs_mnemonic(&self) -> bool {
        self.manifest.requires.contains(Requirement::Mnemonic) || self.mnemonic_variable
    }

    /// The playbook of the platform phase: `platform/site.yml`, or the bash tool's
    /// `platform.playbook`.
    pub fn playbook(&self) -> PathBuf {
        match self
            .manifest
            .platform
            .as_ref()
            .and_then(|p| p.playbook.as_ref())
        {
            Some(playbook) => self.dir.join(playbook),
            None => self.dir.join("platform").join("site.yml"),
        }
    }
}

impl Pattern {
    /// What of deployment `id` (its 16 hex digits) runs on this machine, and the folder that
    /// exists while it does (`down_without_state.running` of pattern.yaml, placeholders filled
    /// in); `None` when the pattern declares none.
    pub fn running_folder(&self, id: &str) -> Option<(&str, PathBuf)> {
        let down = self.manifest.down_without_state.as_ref()?;
        let running = down.running.as_ref()?;
        let id8 = crate::ids::ShortId::of(id).to_string();
        let folder = fill(&running.folder, &id8, &self.manifest.variables);
        Some((running.what.as_str(), PathBuf::from(folder)))
    }
}

/// Finds a pattern by name along the search path, then among the built-in ones.
pub fn find(settings: &Settings, app_dir: &Path, name: &str) -> Result<Pattern> {
    Search::new(settings, app_dir).find(name)
}

/// Where an app's patterns are found: the search path for its folder, and the data dir that
/// holds the built-in ones once extracted.
#[derive(Debug, Clone)]
pub struct Search {
    dirs: Vec<PathBuf>,
    data_dir: PathBuf,
}

impl Search {
    /// The search of the app in `app_dir` ([`Settings::pattern_search_path`]).
    pub fn new(settings: &Settings, app_dir: &Path) -> Search {
        Search {
            dirs: settings.pattern_search_path(app_dir),
            data_dir: settings.data_dir.clone(),
        }
    }

    /// The pattern `name`. Errors: [`UserError`] naming the known patterns when none is `name`.
    pub fn find(&self, name: &str) -> Result<Pattern> {
        find_along(self.dirs.clone(), &self.data_dir, name)
    }
}

fn find_along(mut search: Vec<PathBuf>, data_dir: &Path, name: &str) -> Result<Pattern> {
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        for dir in &search {
            let candidate = dir.join(name);
            if candidate.join("pattern.yaml").is_file() {
                return Ok(Pattern::load(&candidate)?);
            }
        }
        if crate::pattern::builtin::embedded_names().contains(name) {
            let dir = crate::pattern::builtin::extract_embedded(data_dir)?;
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::Pattern;

    /// The local pattern declares what `down` runs without Terraform state: its `vm.sh net-down`
    /// at `vm_root`'s default, for the deployment's id8; grid patterns declare nothing.
    #[test]
    fn the_local_pattern_declares_its_down_without_state() {
        let patterns = Path::new(env!("CARGO_MANIFEST_DIR")).join("patterns");
        let local = Pattern::load(&patterns.join("local")).unwrap();
        let down = local.manifest.down_without_state.as_ref().unwrap();
        assert_eq!(
            down.argv(&local.dir, "0123abcd", &local.manifest.variables),
            [
                local.dir.join("infrastructure/vm.sh").display().to_string(),
                "net-down".into(),
                "0123abcd".into(),
                "/mnt/tfgrid-compose-local".into(),
            ]
        );
        assert_eq!(
            local.running_folder("0123abcd89ef4567"),
            Some((
                "local VMs",
                Path::new("/mnt/tfgrid-compose-local/0123abcd").to_path_buf()
            ))
        );
        let grid = Pattern::load(&patterns.join("single-vm")).unwrap();
        assert!(grid.manifest.down_without_state.is_none());
        assert!(grid.running_folder("0123abcd89ef4567").is_none());
    }
}
