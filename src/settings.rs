//! Settings resolved once per run. One precedence for every key: flag, then environment variable
//! (`TFGRID_COMPOSE_*`), then the user config file (`$XDG_CONFIG_HOME/tfgrid-compose/config.yaml`),
//! then the default. [`Env`] (in `env`) is the only reader of the process environment, so tests
//! can inject one; [`Settings::sources`] remembers where each value came from for `config show`.
//!
//! Every setting is one row of the table in `settings!` below (field, kind, key, variable, flag,
//! default, doc line): the config file's keys, [`Overrides`], [`Settings`], the resolver,
//! [`Settings::shown`] (`config show`), the error hint listing keys and the reference table of
//! docs/configuration.md ([`reference_table`], checked by a test) are all derived from it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use serde::Deserialize;

use crate::error::{InputError, UserError};
use crate::grid::select::NodeFilter;

pub use crate::env::Env;
pub use kind::{
    Count, EnvName, FilePath, Filter, Kind, Network, Port, Secret, Selection, Span, Text, Usd,
};

#[macro_use]
mod kind;

settings! {
    /// environment to act on
    env_name: EnvName, env, var "TFGRID_COMPOSE_ENV", flag "--env" = default "default".to_string();
    /// the tofu/terraform binary
    tofu: Text, tofu, var "TFGRID_COMPOSE_TOFU" = unset "`tofu`, else `terraform` on PATH";
    /// searched first for patterns (then `patterns/` next to the app, next to the binary, the
    /// source tree)
    patterns_dir: FilePath, patterns_dir, var "TFGRID_COMPOSE_PATTERNS_DIR" = unset "";
    /// private key for the VMs
    ssh_key: FilePath, ssh_key, var "TFGRID_COMPOSE_SSH_KEY" = unset "a new key per deployment";
    /// sshd port of the VMs
    ssh_port: Port, ssh_port, var "TFGRID_COMPOSE_SSH_PORT" = default 22;
    /// wait-ssh limit
    ssh_timeout: Span, ssh_timeout, var "TFGRID_COMPOSE_SSH_TIMEOUT", flag "--ssh-timeout"
        = default Duration::from_secs(300);
    /// wait for another run's lock
    lock_wait: Span, lock_wait, var "TFGRID_COMPOSE_LOCK_WAIT", flag "--lock-wait"
        = unset "fail at once";
    /// limit for each tofu call
    tofu_timeout: Span, tofu_timeout, var "TFGRID_COMPOSE_TOFU_TIMEOUT"
        = default Duration::from_secs(3600);
    /// after Ctrl-C or SIGTERM, how long a running tool (tofu writing its state) may take to stop
    /// before it gets SIGTERM, then SIGKILL 10 s later
    stop_grace: Span, stop_grace, var "TFGRID_COMPOSE_STOP_GRACE"
        = default crate::interrupt::DEFAULT_GRACE;
    /// environments per app, when the manifest sets none
    max_environments: Count, max_environments, var "TFGRID_COMPOSE_MAX_ENVIRONMENTS"
        = unset "no cap";
    /// USD a month every deployment on this machine may cost together; `up` refuses a new one
    /// that would pass it ([cost.md](cost.md))
    max_monthly_cost: Usd, max_monthly_cost, var "TFGRID_COMPOSE_MAX_MONTHLY_COST"
        = unset "no cap";
    /// grid network: `main`, `test`, `qa`, `dev`, or `sim` for the grid simulator on this machine
    /// ([simulator.md](simulator.md))
    network: Network, network, var "TFGRID_COMPOSE_NETWORK", flag "--network"
        = default "main".to_string();
    /// another GridProxy (a mirror, or a local one in tests)
    gridproxy_url: Text, gridproxy_url, var "TFGRID_COMPOSE_GRIDPROXY_URL"
        = unset "the network's own";
    /// `gridproxy`: tfgrid-compose picks nodes; `scheduler`: node variables stay 0 for a pattern
    /// of your own that uses the provider's `grid_scheduler` (the shipped grid patterns have none
    /// and refuse 0, see [nodes.md](nodes.md))
    node_selection: Selection, node_selection, var "TFGRID_COMPOSE_NODE_SELECTION"
        = default NodeSelection::Gridproxy;
    /// the app registry `search` and `up NAME` read: an `http(s)://` URL (fetched, a copy
    /// cached), or a `file://` URL or path (read as it is); the default is the bash tool's
    /// ([app-registry.md](app-registry.md))
    registry_url: Text, registry, var "TFGRID_COMPOSE_REGISTRY"
        = default DEFAULT_REGISTRY.to_string();
    /// a cached copy of the registry younger than this is used without fetching; an older one
    /// only when fetching fails (with a warning giving its age)
    registry_ttl: Span, registry_ttl, var "TFGRID_COMPOSE_REGISTRY_TTL"
        = default Duration::from_secs(3600);
    /// which nodes selection may use ([nodes.md](nodes.md)); the manifest's `node_filter:` and
    /// the flags come first, the bash tool's `preferences.yaml` fills what this leaves out
    node_filter: Filter, node_filter, flags "`--farm`, `--blacklist-node`, …"
        = default NodeFilter::default();
    /// the AI stack's agent, for a standalone setup ([ai-stack.md](ai-stack.md))
    agent_url: Text, agent_url [env_only], var "TFGRID_COMPOSE_AGENT_URL", flags "`--agent-url`"
        = unset "the agent of your AI-stack deployment";
    /// a file holding the agent's token
    agent_token_file: FilePath, agent_token_file [env_only], var "TFGRID_COMPOSE_AGENT_TOKEN_FILE",
        flags "`--agent-token-file`" = unset "";
    /// the agent's token itself; `config show` says only whether it is set, and it is redacted
    /// wherever a tool prints it
    agent_token: Secret, agent_token [env_only], var "TFGRID_COMPOSE_AGENT_TOKEN" = unset "";
}

/// Parses `500ms`, `30s`, `5m`, `1h` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((text, "s"), |i| text.split_at(i));
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (try 30s, 5m, 1h)"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" | "" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        _ => {
            return Err(format!(
                "`{text}` has an unknown unit `{unit}` (use ms, s, m or h)"
            ));
        }
    };
    if !(seconds.is_finite() && seconds >= 0.0) {
        return Err(format!("`{text}` is not a duration"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Checks an environment name: 1 to 40 of `a-z 0-9 - _`, starting with a letter or digit.
pub fn check_env_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 40
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not an environment name (1-40 of a-z, 0-9, `-`, `_`, starting with a \
                letter or digit)"
        ))
    }
}

/// Who picks grid nodes a deployment does not pin: tfgrid-compose through GridProxy, or the
/// provider's `grid_scheduler`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeSelection {
    #[default]
    Gridproxy,
    Scheduler,
}

/// One row of the settings table, for `config show`, the error hint and the docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The config file's key (also the name `config show` and [`Settings::sources`] use).
    pub key: &'static str,
    /// Whether the config file may set it (the agent's are variables only).
    pub in_file: bool,
    /// Its `TFGRID_COMPOSE_*` variable, if any.
    pub var: Option<&'static str>,
    /// The flag that overrides it everywhere ([`Overrides`]).
    pub flag: Option<&'static str>,
    /// Flags of some commands that come before it (docs only, in Markdown).
    pub flags: Option<&'static str>,
    /// [`Kind::NAME`].
    pub kind: &'static str,
    /// The default, as the docs write it (Markdown; empty for none).
    pub default: String,
    /// What it is for (Markdown, one line).
    pub doc: String,
}

impl ConfigFile {
    /// Reads the file; a missing file is an empty config.
    pub fn load(path: &Path) -> Result<ConfigFile, InputError> {
        crate::yaml::load_optional_yaml(path, &config_keys_hint())
    }
}

/// The error hint of a config file that does not parse: every key it may hold.
fn config_keys_hint() -> String {
    let keys: Vec<&str> = table()
        .into_iter()
        .filter(|s| s.in_file)
        .map(|s| s.key)
        .collect();
    format!("keys: {} (see docs/configuration.md)", keys.join(", "))
}

/// docs/configuration.md's table of settings, generated from [`table`] (a test checks that the
/// page holds exactly this).
pub fn reference_table() -> String {
    let code = |text: &str| format!("`{text}`");
    let mut out = String::from(
        "| key (config file) | variable | flag | type | default | meaning |\n\
         | --- | --- | --- | --- | --- | --- |\n",
    );
    for s in table() {
        let cells = [
            if s.in_file {
                code(s.key)
            } else {
                String::new()
            },
            s.var.map(code).unwrap_or_default(),
            s.flag
                .map(code)
                .or(s.flags.map(String::from))
                .unwrap_or_default(),
            s.kind.to_string(),
            s.default,
            s.doc,
        ];
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out
}

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "kebab-case")]
pub enum Source {
    Default,
    Flag(String),
    Env(String),
    Config(PathBuf),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Default => write!(f, "default"),
            Source::Flag(flag) => write!(f, "flag {flag}"),
            Source::Env(var) => write!(f, "env {var}"),
            Source::Config(path) => write!(f, "config {}", path.display()),
        }
    }
}

/// One key's resolution: flag, env var, config file, default.
struct Resolver<'a> {
    env: &'a Env,
    config_file: &'a Path,
    sources: BTreeMap<&'static str, Source>,
}

impl Resolver<'_> {
    /// The value of `key` by the one precedence, its source recorded; `None` for the default.
    /// A bad value in the config file is an error even when a flag or a variable overrides it.
    fn pick<K: Kind>(
        &mut self,
        key: &'static str,
        flag: Option<(K::Value, &str)>,
        var: Option<&'static str>,
        written: Option<K::Written>,
    ) -> Result<Option<K::Value>> {
        let from_file = written
            .map(|w| K::check(w).map_err(|message| self.file_error(key, message, K::HINT)))
            .transpose()?;
        let (value, source) = if let Some((value, flag)) = flag {
            (value, Source::Flag(flag.to_string()))
        } else if let Some((var, text)) = var.and_then(|var| Some((var, self.env.get(var)?))) {
            let value = K::parse(text).map_err(|e| {
                UserError::new(
                    format!("{var}: {e}"),
                    format!("unset {var} or fix its value"),
                )
            })?;
            (value, Source::Env(var.to_string()))
        } else if let Some(value) = from_file {
            (value, Source::Config(self.config_file.to_path_buf()))
        } else {
            self.sources.insert(key, Source::Default);
            return Ok(None);
        };
        K::accept(&value);
        self.sources.insert(key, source);
        Ok(Some(value))
    }

    /// A config-file value that failed its check, as an error naming the file, line and key.
    fn file_error(&self, key: &str, message: String, hint: &str) -> InputError {
        let raw = std::fs::read_to_string(self.config_file).unwrap_or_default();
        let (line, column) =
            crate::yaml::locate(&raw, &[key]).map_or((None, None), |(l, c)| (Some(l), Some(c)));
        InputError {
            file: self.config_file.to_path_buf(),
            line,
            column,
            field: key.into(),
            message,
            hint: Some(hint.into()),
        }
    }
}

/// A path setting as an absolute path, fixed when it is read so that it names the same file from
/// any folder a later command runs in (`state.yaml` records it): relative to the config file's
/// folder when it came from there, else to the current folder.
fn absolute_setting(path: Option<PathBuf>, source: Option<&Source>) -> Option<PathBuf> {
    let path = path?;
    let based = match source {
        Some(Source::Config(file)) if path.is_relative() => file
            .parent()
            .map_or_else(|| path.clone(), |dir| dir.join(&path)),
        _ => path,
    };
    Some(std::path::absolute(&based).unwrap_or(based))
}

impl Settings {
    /// Every setting by the one precedence (see the module doc); the config file's
    /// `node_filter:` is filled field by field from the bash tool's `preferences.yaml`.
    pub fn resolve(env: Env, flags: &Overrides) -> Result<Settings> {
        let mut settings = Settings::resolve_table(env, flags)?;
        let preferences_file = crate::credentials::preferences_file(&settings.config_file);
        let preferences = crate::credentials::preferences_filter(&preferences_file)?;
        if settings.sources.get("node_filter") == Some(&Source::Default)
            && preferences != NodeFilter::default()
        {
            settings
                .sources
                .insert("node_filter", Source::Config(preferences_file));
        }
        settings.node_filter = settings.node_filter.clone().or(&preferences);
        // every `FilePath` setting of the table, fixed when read
        settings.patterns_dir = absolute_setting(
            settings.patterns_dir.take(),
            settings.sources.get("patterns_dir"),
        );
        settings.ssh_key =
            absolute_setting(settings.ssh_key.take(), settings.sources.get("ssh_key"));
        settings.agent_token_file = absolute_setting(
            settings.agent_token_file.take(),
            settings.sources.get("agent_token_file"),
        );
        Ok(settings)
    }

    /// The registry of deployments made on this machine.
    pub fn registry_dir(&self) -> PathBuf {
        self.data_dir.join("deployments")
    }

    /// Folders searched for a pattern on disk, in order: `patterns_dir`, `patterns/` next to the
    /// app, then the installed share folder and `patterns/` next to the binary. The patterns built
    /// into the binary come after these (see `pattern::find`).
    pub fn pattern_search_path(&self, app_dir: &std::path::Path) -> Vec<PathBuf> {
        let mut dirs = Vec::new();
        dirs.extend(self.patterns_dir.clone());
        dirs.push(app_dir.join("patterns"));
        if let Ok(exe) = std::env::current_exe()
            && let Some(bin) = exe.parent()
        {
            dirs.push(bin.join("../share/tfgrid-compose/patterns"));
            dirs.push(bin.join("patterns"));
        }
        dirs
    }
}

/// The bash tool's app registry (`core/registry.sh:6` of tfgrid-studio/tfgrid-compose at
/// b62f6be, as cited in the reference study's §7.3): the default of the `registry` setting.
pub const DEFAULT_REGISTRY: &str =
    "https://raw.githubusercontent.com/tfgrid-studio/tfgrid-registry/main/registry/apps.yaml";

/// Environment variables of other conventions, read only here (the tool's own `TFGRID_COMPOSE_*`
/// settings are rows of the table above); these have no config-file key.
pub mod vars {
    /// Any value turns colour off (no-color.org), unless `--color` says otherwise.
    pub const NO_COLOR: &str = "NO_COLOR";
    /// Colour even when stderr is not a terminal.
    pub const FORCE_COLOR: &str = "FORCE_COLOR";
    /// Colour even when stderr is not a terminal, unless `0` (bixense.com/clicolors).
    pub const CLICOLOR_FORCE: &str = "CLICOLOR_FORCE";
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Env, Overrides, Settings, Source, check_env_name, parse_duration};

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("12"), Ok(Duration::from_secs(12)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(check_env_name("pr-123").is_ok());
        assert!(check_env_name("../x").is_err());
        assert!(check_env_name("Prod").is_err());
        assert!(check_env_name("").is_err());
    }

    #[test]
    fn flags_win_over_env() {
        let env = Env::from_pairs([
            ("TFGRID_COMPOSE_SSH_TIMEOUT", "1m"),
            ("TFGRID_COMPOSE_SSH_PORT", "2222"),
        ]);
        let s = Settings::resolve(env.clone(), &Overrides::default()).unwrap();
        assert_eq!(s.ssh_timeout, Duration::from_secs(60));
        assert_eq!(s.ssh_port, 2222);
        let s = Settings::resolve(
            env,
            &Overrides {
                ssh_timeout: Some(Duration::from_secs(5)),
                ..Overrides::default()
            },
        )
        .unwrap();
        assert_eq!(s.ssh_timeout, Duration::from_secs(5));
        assert_eq!(
            s.sources["ssh_timeout"],
            Source::Flag("--ssh-timeout".into())
        );
        assert!(
            Settings::resolve(
                Env::from_pairs([("TFGRID_COMPOSE_SSH_PORT", "x")]),
                &Overrides::default()
            )
            .is_err()
        );
    }

    /// The table's rows follow one naming rule, and the config file's keys are the rows that
    /// may be written there, so the hint of a bad file names exactly those.
    #[test]
    fn table_rows_are_consistent_and_the_hint_lists_the_file_keys() {
        let table = super::table();
        for row in &table {
            if let Some(var) = row.var {
                assert_eq!(var, format!("TFGRID_COMPOSE_{}", row.key.to_uppercase()));
            }
            assert!(!row.doc.is_empty() && !row.kind.is_empty(), "{row:?}");
        }
        let hint = super::config_keys_hint();
        assert!(
            hint.contains("ssh_port, ssh_timeout") && hint.contains("node_filter"),
            "{hint}"
        );
        assert!(!hint.contains("agent_url"), "{hint}");
        let keys: Vec<&str> = table.iter().map(|r| r.key).collect();
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().display().to_string();
        let env = Env::from_pairs([("XDG_CONFIG_HOME", home.as_str())]);
        let shown: Vec<&str> = Settings::resolve(env, &Overrides::default())
            .unwrap()
            .shown()
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        assert_eq!(keys, shown);
    }

    /// A bad value of the file is an error at its line naming the key, with the kind's hint,
    /// even when a variable overrides the key; an env-only key is unknown to the file.
    #[test]
    fn bad_config_values_name_line_key_and_hint() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("tfgrid-compose");
        std::fs::create_dir_all(&cfg).unwrap();
        let home = dir.path().display().to_string();
        for (text, line, hint) in [
            ("ssh_port: 22\nregistry_ttl: soon\n", 2, "give a duration"),
            ("env: Prod\n", 1, "name an environment"),
            ("ssh_port: 0\n", 1, "port number"),
            ("network: moon\n", 1, "use main, test"),
            ("agent_url: http://x\n", 1, "keys: env, tofu"),
        ] {
            std::fs::write(cfg.join("config.yaml"), text).unwrap();
            let env = Env::from_pairs([
                ("XDG_CONFIG_HOME", home.as_str()),
                ("TFGRID_COMPOSE_REGISTRY_TTL", "1m"),
            ]);
            let err = Settings::resolve(env, &Overrides::default()).unwrap_err();
            let shown = format!("{err:#} {:?}", crate::error::hints_for_error(&err));
            assert!(
                shown.contains(&format!("config.yaml:{line}")),
                "{text}: {shown}"
            );
            assert!(shown.contains(hint), "{text}: {shown}");
        }
    }

    #[test]
    fn config_file_is_below_env_and_flags() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("tfgrid-compose");
        std::fs::create_dir_all(&cfg).unwrap();
        std::fs::write(
            cfg.join("config.yaml"),
            "ssh_port: 2200\nlock_wait: 10s\nenv: staging\n",
        )
        .unwrap();
        let home = dir.path().display().to_string();
        let env = Env::from_pairs([
            ("XDG_CONFIG_HOME", home.as_str()),
            ("TFGRID_COMPOSE_LOCK_WAIT", "3s"),
        ]);
        let s = Settings::resolve(env, &Overrides::default()).unwrap();
        assert_eq!(s.ssh_port, 2200);
        assert!(matches!(s.sources["ssh_port"], Source::Config(_)));
        assert_eq!(s.lock_wait, Some(Duration::from_secs(3)));
        assert_eq!(
            s.sources["lock_wait"],
            Source::Env("TFGRID_COMPOSE_LOCK_WAIT".into())
        );
        assert_eq!(s.env_name, "staging");
        assert_eq!(s.sources["tofu"], Source::Default);
        std::fs::write(
            cfg.join("config.yaml"),
            "ssh_port: 2200\nsssh_timeout: 1m\n",
        )
        .unwrap();
        let env = Env::from_pairs([("XDG_CONFIG_HOME", home.as_str())]);
        let err = Settings::resolve(env, &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("config.yaml:2:1"), "{err}");
        assert!(err.contains("sssh_timeout"), "{err}");
    }

    #[test]
    fn relative_paths_are_made_absolute_when_read() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("tfgrid-compose");
        std::fs::create_dir_all(&cfg).unwrap();
        std::fs::write(
            cfg.join("config.yaml"),
            "ssh_key: keys/id\npatterns_dir: /p\n",
        )
        .unwrap();
        let home = dir.path().display().to_string();
        let env = Env::from_pairs([("XDG_CONFIG_HOME", home.as_str())]);
        let s = Settings::resolve(env, &Overrides::default()).unwrap();
        assert_eq!(s.ssh_key, Some(cfg.join("keys/id")));
        assert_eq!(s.patterns_dir, Some("/p".into()));
        let env = Env::from_pairs([
            ("XDG_CONFIG_HOME", home.as_str()),
            ("TFGRID_COMPOSE_SSH_KEY", "./keys/id"),
        ]);
        let s = Settings::resolve(env, &Overrides::default()).unwrap();
        let here = std::env::current_dir().unwrap();
        assert_eq!(s.ssh_key, Some(here.join("keys/id")));
        let env = Env::from_pairs([("TFGRID_COMPOSE_DATA_DIR", "data")]);
        assert_eq!(env.data_dir(), here.join("data"));
    }
}
