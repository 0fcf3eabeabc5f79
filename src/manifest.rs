//! The app manifest (`tfgrid-compose.yaml`) and the pattern manifest (`pattern.yaml`) as types,
//! loaded with errors that name file, line, column and field ([`crate::error::InputError`]).
//! Start from [`App::load`] and [`Pattern::load`]. Nothing here writes a file.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::InputError;
use crate::yaml::{locate, parse_yaml, yaml_to_json};

/// The manifest file name inside an app folder (the older `.yml` spelling is read too).
pub const MANIFEST_FILE: &str = "tfgrid-compose.yaml";

/// The CLI's own verbs; an app command with one of these names is shadowed (a test keeps this
/// list equal to the clap definition).
pub const BUILTIN_VERBS: &[&str] = &[
    "up",
    "down",
    "validate",
    "import",
    "pr",
    "status",
    "address",
    "ssh",
    "exec",
    "logs",
    "ps",
    "cost",
    "select",
    "unselect",
    "inspect",
    "search",
    "update",
    "commands",
    "patterns",
    "config",
    "completions",
    "man",
    "nodes",
    "farms",
    "contracts",
    "sim",
    "signin",
    "signout",
    "create",
    "projects",
    "monitor",
    "delete",
    "serve",
    "help",
    "health",
    "dashboard",
];

/// The built-in verbs that only show a deployment; an app's or pattern's command of the same
/// name runs in their place (the bash tool ran its pattern's `scripts/logs.sh` and
/// `scripts/status.sh` for them, and an app's `logs` first: tfgrid-compose-bash.md §1.2, §1.4),
/// and `--builtin` shows the built-in.
pub const OVERRIDABLE_VERBS: [&str; 3] = ["logs", "status", "address"];

/// Keys found in real manifests that nothing reads; accepted without a warning.
const DESCRIPTIVE_KEYS: &[&str] = &[
    "author",
    "license",
    "tags",
    "metadata",
    "documentation",
    "type",
    "requires",
    "dependencies",
    "logging",
    "status",
    "infrastructure",
    "platform",
    "health_checks",
    "monitoring",
    "backup",
    "k3s",
    "backend",
    "interactive",
    "usage",
    "variables",
    "homepage",
    "repository",
];

/// The keys [`AppManifest`] reads (its fields), for "did you mean" on an unknown one.
const APP_KEYS: &[&str] = &[
    "name",
    "version",
    "description",
    "pattern",
    "patterns",
    "config",
    "resources",
    "network",
    "nodes",
    "node_filter",
    "gateway",
    "hooks",
    "hook_config",
    "commands",
    "env_file",
    "environment",
    "url",
    "max_environments",
    "max_monthly_cost",
    "ai_stack",
];

/// The known key closest to `key` when it is close enough to be a typo (Jaro-Winkler ≥ 0.85,
/// from `strsim`, the measure clap uses for its suggestions).
fn nearest<'a>(key: &str, known: impl Iterator<Item = &'a &'a str>) -> Option<&'a str> {
    known
        .map(|k| (strsim::jaro_winkler(key, k), *k))
        .filter(|(score, _)| *score >= 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

/// `tfgrid-compose.yaml`. Legacy keys of the bash tool are accepted (see docs/manifest.md).
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
pub struct AppManifest {
    pub name: String,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// The pattern to deploy on (`--pattern` overrides it).
    #[serde(default)]
    pub pattern: Option<String>,
    /// Legacy: `patterns: {recommended, supported}`.
    #[serde(default)]
    pub patterns: Option<PatternChoice>,
    /// Values for the pattern's declared variables (`vm_count: 2`).
    #[serde(default)]
    pub config: BTreeMap<String, serde_yaml::Value>,
    /// Legacy resource sizes: `resources.{cpu,memory,disk}.recommended`, `resources.vm.*`.
    #[serde(default)]
    pub resources: Option<serde_yaml::Value>,
    #[serde(default)]
    pub network: Option<serde_yaml::Value>,
    /// Pinned grid nodes by role: `nodes: {vm: 8}`, `nodes: {gateway: [1], backend: [8]}`.
    #[serde(default)]
    pub nodes: Option<serde_yaml::Value>,
    /// Which grid nodes node selection may use (see docs/nodes.md).
    #[serde(default)]
    pub node_filter: Option<crate::grid::select::NodeFilter>,
    #[serde(default)]
    pub gateway: Option<serde_yaml::Value>,
    #[serde(default)]
    pub hooks: Option<Hooks>,
    #[serde(default)]
    pub hook_config: BTreeMap<String, HookConfig>,
    #[serde(default)]
    pub commands: BTreeMap<String, AppCommand>,
    /// Env file uploaded to the VM as `/tmp/app-source/.env`; read (never run) for the values
    /// of `environment:`.
    #[serde(default)]
    pub env_file: Option<String>,
    /// Variables the hooks get (see [`crate::app_env`]): a list of `{name, required, default,
    /// secret, options, depends_on}`, or a map `NAME: default`.
    #[serde(default)]
    pub environment: Option<crate::app_env::Environment>,
    /// Printed when the app is up; `{primary_ip}` is replaced by the VM's address.
    #[serde(default)]
    pub url: Option<String>,
    /// At most this many environments of the app at once on this machine (`up` refuses more).
    #[serde(default)]
    pub max_environments: Option<u32>,
    /// At most this many USD a month for all of the app's environments on this machine
    /// together (`up` refuses a new one that would pass it; see docs/cost.md).
    #[serde(default)]
    pub max_monthly_cost: Option<f64>,
    /// The app is an AI stack: `up` configures the gateway, agent and git services on its VMs.
    #[serde(default)]
    pub ai_stack: Option<crate::stack::StackSpec>,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_yaml::Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
pub struct PatternChoice {
    #[serde(default)]
    pub recommended: Option<String>,
    #[serde(default)]
    pub supported: Vec<String>,
}

/// Paths of the three hooks, relative to the app folder (or bare names inside `deployment/`).
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Hooks {
    #[serde(default)]
    pub setup: Option<String>,
    #[serde(default)]
    pub configure: Option<String>,
    #[serde(default)]
    pub healthcheck: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct HookConfig {
    /// A failure is a warning, not an error.
    #[serde(default)]
    pub optional: bool,
    /// Seconds; default 900.
    #[serde(default)]
    pub timeout: Option<u64>,
    /// Where the hook runs: the primary VM (default) or every VM.
    #[serde(default)]
    pub hosts: HookHosts,
    /// What the hook does, for people (the bash tool's registry apps write it).
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum HookHosts {
    #[default]
    Primary,
    All,
}

pub use crate::pattern::command::AppCommand;

/// The three hooks, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HookKind {
    Setup,
    Configure,
    Healthcheck,
}

impl HookKind {
    pub const ALL: [HookKind; 3] = [HookKind::Setup, HookKind::Configure, HookKind::Healthcheck];

    pub fn name(self) -> &'static str {
        match self {
            HookKind::Setup => "setup",
            HookKind::Configure => "configure",
            HookKind::Healthcheck => "healthcheck",
        }
    }
}

/// A hook resolved against the app folder: its path inside `deployment/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedHook {
    pub kind: HookKind,
    /// Relative to `deployment/`, with `/` separators.
    pub relative: String,
    pub optional: bool,
    pub timeout_secs: u64,
    pub hosts: HookHosts,
    /// For a hook without the execute bit (a plain file in git, as the bash tool's registry apps
    /// have): the interpreter of its `#!` line (`sh` without one), which runs it on the VM. The
    /// bash tool ran `chmod +x` on the VM instead; the effect is the same.
    pub interpreter: Vec<String>,
}

/// The app folder and manifest file a path names: a folder (its `tfgrid-compose.yaml`, or the
/// older `.yml`), or a manifest file itself (its folder). The one answer to "folder or file?".
pub fn app_paths(path: &Path) -> (PathBuf, PathBuf) {
    let names_file = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
    if path.is_dir() || (!path.exists() && !names_file) {
        let yaml = path.join(MANIFEST_FILE);
        let yml = path.join("tfgrid-compose.yml");
        let file = if !yaml.exists() && yml.exists() {
            yml
        } else {
            yaml
        };
        (path.to_path_buf(), file)
    } else {
        let dir = path
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        (dir, path.to_path_buf())
    }
}

/// A loaded app: its folder, manifest file and parsed manifest.
#[derive(Debug, Clone)]
pub struct App {
    pub dir: PathBuf,
    pub file: PathBuf,
    pub text: String,
    pub manifest: AppManifest,
    pub warnings: Vec<String>,
}

impl App {
    /// Loads an app from a folder or a manifest path. A relative path is made absolute here, so
    /// that every path handed to a tool later is absolute (a folder named `-x` is never read as
    /// an option) and names the same file from any folder.
    pub fn load(path: &Path) -> Result<App, InputError> {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let (dir, file) = app_paths(&path);
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let hint = if path.exists() {
                    format!(
                        "an app folder holds a `{MANIFEST_FILE}`; create one (see docs/manifest.md)"
                    )
                } else {
                    "check the path; an app is a folder with a `tfgrid-compose.yaml`, or that file \
                        itself"
                        .to_string()
                };
                return Err(InputError {
                    file: file.clone(),
                    line: None,
                    column: None,
                    field: "(document)".into(),
                    message: "no such file".into(),
                    hint: Some(hint),
                });
            }
            Err(err) => {
                return Err(InputError {
                    file,
                    line: None,
                    column: None,
                    field: "(document)".into(),
                    message: format!("cannot read: {err}"),
                    hint: None,
                });
            }
        };
        App::from_text(dir, file, text)
    }

    /// What [`App::load`] does once it has read the manifest: parses `text` (the contents of
    /// `file`, in the app folder `dir`), collects the warnings and runs the checks (which look at
    /// hook and env files under `dir`, and write nothing).
    pub fn from_text(dir: PathBuf, file: PathBuf, text: String) -> Result<App, InputError> {
        let manifest = parse_app(&file, &text)?;
        let mut warnings = Vec::new();
        for key in manifest.other.keys() {
            if !DESCRIPTIVE_KEYS.contains(&key.as_str()) {
                let at = locate(&text, &[key]).map_or(String::new(), |(l, _)| format!(":{l}"));
                let hint = nearest(key, APP_KEYS.iter().chain(DESCRIPTIVE_KEYS))
                    .map_or(String::new(), |k| format!(" (did you mean `{k}`?)"));
                warnings.push(format!(
                    "{}{at}: unknown key `{key}` is ignored{hint}",
                    file.display()
                ));
            }
        }
        for name in manifest.commands.keys() {
            if BUILTIN_VERBS.contains(&name.as_str()) && !OVERRIDABLE_VERBS.contains(&name.as_str())
            {
                let at = locate(&text, &["commands", name])
                    .map_or(String::new(), |(l, _)| format!(":{l}"));
                warnings.push(format!(
                    "{}{at}: app command `{name}` is shadowed by the built-in `tfgrid-compose \
                        {name}` and cannot be run; rename it",
                    file.display()
                ));
            }
        }
        let app = App {
            dir,
            file,
            text,
            manifest,
            warnings,
        };
        app.check()?;
        Ok(app)
    }

    pub(crate) fn error(
        &self,
        field: &[&str],
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> InputError {
        crate::yaml::error_at(&self.file, &self.text, field, message, Some(hint.into()))
    }

    /// Checks that need the parsed manifest: name, commands, hooks, env file.
    fn check(&self) -> Result<(), InputError> {
        if let Some(cap) = self.manifest.max_monthly_cost
            && <crate::settings::Usd as crate::settings::Kind>::check(cap).is_err()
        {
            return Err(self.error(
                &["max_monthly_cost"],
                format!("{cap} is not an amount of US dollars (0 or more)"),
                "give the most all environments of the app may cost a month, e.g. \
                    `max_monthly_cost: 60`",
            ));
        }
        for (name, command) in &self.manifest.commands {
            if command.script.split_whitespace().next().is_none() {
                return Err(self.error(
                    &["commands", name, "script"],
                    "is empty",
                    "name the program to run on the VM, e.g. `script: /opt/app/bin/backup.sh`",
                ));
            }
            if let Some(key) = &command.save_to_context
                && (key.is_empty()
                    || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    || key.as_bytes()[0].is_ascii_digit())
            {
                return Err(self.error(
                    &["commands", name, "save_to_context"],
                    format!("`{key}` is not a context key"),
                    "use letters, digits and `_`, e.g. `active_project`",
                ));
            }
        }
        let name = &self.manifest.name;
        let valid = !name.is_empty()
            && name.len() <= 63
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            && name.as_bytes()[0].is_ascii_alphanumeric();
        if !valid {
            return Err(self.error(
                &["name"],
                format!("`{name}` is not a valid app name"),
                "use letters, digits, `-`, `_` and `.`, starting with a letter or digit, at most \
                    63 characters",
            ));
        }
        for key in self.manifest.hook_config.keys() {
            if !HookKind::ALL.iter().any(|k| k.name() == key) {
                return Err(self.error(
                    &["hook_config", key],
                    format!("unknown hook `{key}`"),
                    "hooks are `setup`, `configure` and `healthcheck`",
                ));
            }
        }
        self.hooks()?;
        if let Some(env_file) = &self.manifest.env_file {
            let path = self.inside_app(&["env_file"], env_file)?;
            if !path.is_file() {
                return Err(self.error(
                    &["env_file"],
                    format!("file `{env_file}` does not exist"),
                    "create it in the app folder, or remove `env_file:`",
                ));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for var in self.manifest.environment.iter().flat_map(|e| e.vars()) {
            if !crate::app_env::is_name(&var.name) || !seen.insert(var.name.clone()) {
                let problem = if seen.contains(&var.name) && crate::app_env::is_name(&var.name) {
                    format!("`{}` is declared twice", var.name)
                } else {
                    format!("`{}` is not a variable name", var.name)
                };
                return Err(self.environment_error(
                    &var.name,
                    problem,
                    "use letters, digits and `_`, not starting with a digit, each name once",
                ));
            }
        }
        if let Some(url) = &self.manifest.url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(self.error(
                &["url"],
                format!("`{url}` is not an http(s) URL"),
                "write e.g. `url: http://{primary_ip}/`",
            ));
        }
        if let Some(stack) = &self.manifest.ai_stack {
            crate::stack::check(stack).map_err(|problem| {
                self.error(
                    &["ai_stack"],
                    problem,
                    "see docs/ai-stack.md, section \"Deployed by up\"",
                )
            })?;
        }
        Ok(())
    }

    /// A relative path that must stay inside the app folder.
    fn inside_app(&self, field: &[&str], value: &str) -> Result<PathBuf, InputError> {
        let relative = Path::new(value);
        let escapes = relative.is_absolute()
            || relative.components().any(|c| {
                matches!(
                    c,
                    Component::ParentDir | Component::RootDir | Component::Prefix(_)
                )
            });
        if escapes || value.is_empty() {
            return Err(self.error(
                field,
                format!("`{value}` is outside the app folder"),
                "give a path relative to the app folder, without `..`",
            ));
        }
        Ok(self.dir.join(relative))
    }

    /// The hooks to run, in order. Declared hooks must exist inside `deployment/`; one without
    /// the execute bit runs through its `#!` interpreter; without a `hooks:` key,
    /// `deployment/{setup,configure,healthcheck}.sh` are used
    /// when present. Undeclared hooks are skipped.
    pub fn hooks(&self) -> Result<Vec<ResolvedHook>, InputError> {
        let mut hooks = Vec::new();
        for kind in HookKind::ALL {
            let declared = self.manifest.hooks.as_ref().and_then(|h| match kind {
                HookKind::Setup => h.setup.clone(),
                HookKind::Configure => h.configure.clone(),
                HookKind::Healthcheck => h.healthcheck.clone(),
            });
            let relative = match declared {
                Some(value) => {
                    let field = ["hooks", kind.name()];
                    let with_dir = if value.contains('/') {
                        value.clone()
                    } else {
                        format!("{}/{value}", crate::app_folder::DEPLOYMENT)
                    };
                    let path = self.inside_app(&field, &with_dir)?;
                    let Ok(inside) =
                        Path::new(&with_dir).strip_prefix(crate::app_folder::DEPLOYMENT)
                    else {
                        return Err(self.error(
                            &field,
                            format!("`{value}` is not inside `deployment/`"),
                            "hooks live in the app's `deployment/` folder, which is uploaded to \
                                the VM",
                        ));
                    };
                    if !path.is_file() {
                        return Err(self.error(
                            &field,
                            format!("file `{with_dir}` does not exist"),
                            format!(
                                "create `{with_dir}` in `{}` or remove the key",
                                self.dir.display()
                            ),
                        ));
                    }
                    inside.to_string_lossy().replace('\\', "/")
                }
                None if self.manifest.hooks.is_none() => {
                    let conventional =
                        crate::app_folder::in_deployment(&self.dir, &format!("{}.sh", kind.name()));
                    if !conventional.is_file() {
                        continue;
                    }
                    format!("{}.sh", kind.name())
                }
                None => continue,
            };
            let config = self
                .manifest
                .hook_config
                .get(kind.name())
                .cloned()
                .unwrap_or_default();
            let path = crate::app_folder::in_deployment(&self.dir, &relative);
            let interpreter = if is_executable(&path) {
                Vec::new()
            } else {
                shebang(&path)
            };
            hooks.push(ResolvedHook {
                kind,
                interpreter,
                relative,
                optional: config.optional,
                timeout_secs: config.timeout.unwrap_or(900),
                hosts: config.hosts,
            });
        }
        Ok(hooks)
    }

    /// The pattern to use: `--pattern`, else `pattern:`, else legacy `patterns.recommended`.
    pub fn pattern_name(&self, flag: Option<&str>) -> Result<String, InputError> {
        if let Some(name) = flag {
            return Ok(name.to_string());
        }
        if let Some(name) = &self.manifest.pattern {
            return Ok(name.clone());
        }
        if let Some(name) = self
            .manifest
            .patterns
            .as_ref()
            .and_then(|p| p.recommended.clone())
        {
            return Ok(name);
        }
        Err(self.error(
            &["pattern"],
            "missing field `pattern`",
            "add `pattern: local` (or `single-vm`, …) to the manifest, or pass `--pattern NAME`",
        ))
    }

    /// An error at the declaration of variable `name` under `environment:`.
    pub fn environment_error(
        &self,
        name: &str,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> InputError {
        let mut error = self.error(&["environment"], message, hint);
        error.field = format!("environment.{name}");
        let start = error.line.unwrap_or(0);
        let found = self.text.lines().enumerate().skip(start).find(|(_, line)| {
            let key = line.trim_start().trim_start_matches("- ").trim_start();
            let quoted = [name.to_string(), format!("\"{name}\""), format!("'{name}'")];
            quoted.iter().any(|q| {
                key.strip_prefix("name:")
                    .is_some_and(|rest| rest.trim() == q.as_str())
                    || key
                        .strip_prefix(q.as_str())
                        .is_some_and(|rest| rest.starts_with(':'))
            })
        });
        if let Some((n, line)) = found {
            error.line = Some(n + 1);
            error.column = Some(line.len() - line.trim_start().len() + 1);
        }
        error
    }

    /// The values of `environment:` and the bash tool's names for the hooks.
    ///
    /// Errors: a required variable without a value, or a value outside its `options`, at the
    /// line of its declaration.
    pub fn environment(
        &self,
        sources: &crate::app_env::Sources<'_>,
    ) -> Result<Vec<(String, String)>, InputError> {
        let vars = self
            .manifest
            .environment
            .as_ref()
            .map(crate::app_env::Environment::vars)
            .unwrap_or_default();
        crate::app_env::resolve(&vars, sources)
            .map_err(|p| self.environment_error(&p.name, p.message, p.hint))
    }

    /// Checks that the app has every file a bash-format `requires:` names (`app_hooks`,
    /// `deployment_hooks`): a hook among the app's hooks, any other path a file in the app folder.
    /// The error points at the pattern.yaml line that asks for it.
    pub fn check_pattern_requires(
        &self,
        pattern: &crate::pattern::Pattern,
        hooks: &[ResolvedHook],
    ) -> Result<(), InputError> {
        let app = self;
        let in_deployment = format!("{}/", crate::app_folder::DEPLOYMENT);
        for (key, index, path) in pattern.manifest.requires.app_files() {
            let is_hook = path.starts_with(&in_deployment);
            let have = match path.strip_prefix(&in_deployment) {
                Some(inside) => hooks.iter().any(|h| h.relative == inside),
                None => !path.contains("..") && app.dir.join(&path).is_file(),
            };
            if have {
                continue;
            }
            let file = pattern.dir.join("pattern.yaml");
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            let (key_line, key_column) =
                crate::pattern::compat::position(&text, &["requires".into(), key.into()]);
            // the entry's own line and column: the first line from the key on that names it
            let written = path
                .strip_prefix(&in_deployment)
                .filter(|_| key == "deployment_hooks")
                .unwrap_or(&path);
            let entry = key_line.and_then(|start| {
                text.lines()
                    .enumerate()
                    .skip(start - 1)
                    .find_map(|(n, l)| l.find(written).map(|c| (n + 1, c + 1)))
            });
            let (line, column) = entry.map_or((key_line, key_column), |(l, c)| (Some(l), Some(c)));
            let kind = if is_hook { "hook" } else { "file" };
            return Err(InputError {
                file,
                line,
                column,
                field: format!("requires.{key}[{index}]"),
                message: format!(
                    "pattern `{}` requires the {kind} `{path}`, which app `{}` does not have",
                    pattern.manifest.name, app.manifest.name
                ),
                hint: Some(if is_hook {
                    format!(
                        "create `{path}` in `{}` (without a `hooks:` key it runs by its name) or \
                            declare it under `hooks:` in `{}`",
                        app.dir.display(),
                        app.file.display()
                    )
                } else {
                    format!("create `{path}` in `{}`", app.dir.display())
                }),
            });
        }
        Ok(())
    }

    /// The env file to upload, when one is declared or `.env` exists.
    pub fn env_file(&self) -> Option<PathBuf> {
        match &self.manifest.env_file {
            Some(path) => Some(self.dir.join(path)),
            None => Some(self.dir.join(".env")).filter(|p| p.is_file()),
        }
    }

    /// Values for the pattern's variables from `config:` and the legacy `resources:` keys,
    /// type-checked against the pattern's declarations.
    pub fn variables(
        &self,
        pattern: &crate::pattern::Pattern,
    ) -> Result<(BTreeMap<String, serde_json::Value>, Vec<String>), InputError> {
        let mut values = BTreeMap::new();
        let mut warnings = Vec::new();
        for (legacy, var) in [("cpu", "vm_cpu"), ("memory", "vm_mem"), ("disk", "vm_disk")] {
            let value = self.manifest.resources.as_ref().and_then(|r| {
                r.get("vm")
                    .and_then(|vm| vm.get(legacy))
                    .or_else(|| r.get(legacy).and_then(|x| x.get("recommended")))
            });
            if let (Some(value), true) = (value, pattern.manifest.variables.contains_key(var)) {
                values.insert(var.to_string(), yaml_to_json(value));
            }
        }
        // `resources.<role>.*` of the bash tool's gateway and k3s apps (`gateway`, `backend`,
        // `master`, `worker`, …) → `<role>_cpu`, `<role>_mem`, `<role>_disk` where declared
        let roles = self
            .manifest
            .resources
            .as_ref()
            .and_then(serde_yaml::Value::as_mapping);
        for (role, sizes) in roles.into_iter().flatten() {
            let (Some(role), Some(sizes)) = (role.as_str(), sizes.as_mapping()) else {
                continue;
            };
            if ["vm", "cpu", "memory", "disk"].contains(&role) {
                continue;
            }
            for key in ["cpu", "memory", "disk"] {
                let target = crate::pattern::compat::resource_variables(role, key)
                    .into_iter()
                    .find(|v| pattern.manifest.variables.contains_key(v));
                if let (Some(value), Some(target)) = (sizes.get(key), target) {
                    values.insert(target, yaml_to_json(value));
                }
            }
        }
        for (key, value) in &self.manifest.config {
            let Some(declared) = pattern.manifest.variables.get(key) else {
                let at = locate(&self.text, &["config", key])
                    .map_or(String::new(), |(l, _)| format!(":{l}"));
                warnings.push(format!(
                    "{}{at}: config.{key}: pattern `{}` declares no such variable; it is ignored",
                    self.file.display(),
                    pattern.manifest.name
                ));
                continue;
            };
            let json = yaml_to_json(value);
            if let Err(problem) = declared.check(&json) {
                return Err(self.error(
                    &["config", key],
                    problem,
                    format!(
                        "see the variables of pattern `{}` in its pattern.yaml",
                        pattern.manifest.name
                    ),
                ));
            }
            values.insert(key.clone(), json);
        }
        Ok((values, warnings))
    }
}

fn parse_app(file: &Path, text: &str) -> Result<AppManifest, InputError> {
    if text.trim().is_empty() {
        return Err(InputError {
            file: file.to_path_buf(),
            line: Some(1),
            column: Some(1),
            field: "(document)".into(),
            message: "the manifest is empty".into(),
            hint: Some(
                "a manifest needs at least `name:` and `pattern:` (see docs/manifest.md)".into(),
            ),
        });
    }
    parse_yaml(
        file,
        text,
        "see docs/manifest.md for the manifest's keys and types",
    )
}

/// The interpreter and its argument from a script's `#!` line (`#!/usr/bin/env bash` →
/// `/usr/bin/env bash`); `sh` when there is none, as a shell would run it.
pub(crate) fn shebang(path: &Path) -> Vec<String> {
    let first = std::fs::read(path).ok().and_then(|b| {
        b.split(|c| *c == b'\n')
            .next()
            .map(|l| String::from_utf8_lossy(l).into_owned())
    });
    match first.as_deref().and_then(|l| l.strip_prefix("#!")) {
        Some(line) if !line.trim().is_empty() => {
            line.split_whitespace().map(String::from).collect()
        }
        _ => vec!["sh".into()],
    }
}

pub(crate) fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    path.metadata()
        .is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}
