//! Settings resolved once per run. One precedence for every key: flag, then environment variable
//! (`TFGRID_COMPOSE_*`), then the user config file (`$XDG_CONFIG_HOME/tfgrid-compose/config.yaml`),
//! then the default. [`Env`] (in `env`) is the only reader of the process environment, so tests
//! can inject one; [`Settings::sources`] remembers where each value came from for `config show`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use serde::Deserialize;

use crate::error::{InputError, UserError};

pub use crate::env::Env;

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

/// The user config file. Every key is optional; unknown keys are an error.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub tofu: Option<String>,
    pub patterns_dir: Option<PathBuf>,
    pub ssh_key: Option<PathBuf>,
    pub ssh_port: Option<u16>,
    pub ssh_timeout: Option<String>,
    pub lock_wait: Option<String>,
    pub tofu_timeout: Option<String>,
    /// How long a child may take to stop after Ctrl-C/SIGTERM was passed on to it.
    pub stop_grace: Option<String>,
    /// The environment used when `--env` is not given.
    pub env: Option<String>,
    /// Cap on environments per app, for apps whose manifest sets none.
    pub max_environments: Option<u32>,
    /// The grid network: main, test, qa, dev, or sim (the grid simulator on this machine).
    pub network: Option<String>,
    /// Another GridProxy than the network's own (mirrors, tests).
    pub gridproxy_url: Option<String>,
    /// `gridproxy` (default) or `scheduler`.
    pub node_selection: Option<NodeSelection>,
    /// Which nodes selection may use, for every app.
    #[serde(default)]
    pub node_filter: crate::grid::select::NodeFilter,
    /// The app registry: an `http(s)://` or `file://` URL, or a path.
    pub registry: Option<String>,
    /// How long a fetched copy of the app registry is used before it is fetched again.
    pub registry_ttl: Option<String>,
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

impl ConfigFile {
    /// Reads the file; a missing file is an empty config.
    pub fn load(path: &Path) -> Result<ConfigFile, InputError> {
        crate::yaml::load_optional_yaml(
            path,
            "keys: tofu, patterns_dir, ssh_key, ssh_port, ssh_timeout, lock_wait, tofu_timeout, \
                stop_grace, env, max_environments, network, gridproxy_url, node_selection, \
                node_filter, registry, registry_ttl (see docs/configuration.md)",
        )
    }
}

/// Flags that override the environment and the config file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub ssh_timeout: Option<Duration>,
    pub lock_wait: Option<Duration>,
    pub env_name: Option<String>,
    pub network: Option<String>,
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

/// Everything a run needs to know that is not in the manifest.
#[derive(Debug, Clone)]
pub struct Settings {
    pub env: Env,
    /// `tofu`: the tofu/terraform binary to use.
    pub tofu: Option<String>,
    /// `patterns_dir`: where patterns are looked up first.
    pub patterns_dir: Option<PathBuf>,
    /// `ssh_key`: a private key to use instead of a per-deployment one.
    pub ssh_key: Option<PathBuf>,
    /// `ssh_port` (default 22).
    pub ssh_port: u16,
    /// `ssh_timeout` (default 5m).
    pub ssh_timeout: Duration,
    /// `lock_wait` (default: fail at once).
    pub lock_wait: Option<Duration>,
    /// `tofu_timeout` (default 60m) for each tofu call.
    pub tofu_timeout: Duration,
    /// `stop_grace` (default 2m): after SIGINT/SIGTERM was passed on to a child, how long it may
    /// take to stop before it gets SIGTERM (then SIGKILL 10 s later).
    pub stop_grace: Duration,
    /// `env`: the environment commands act on (default `default`).
    pub env_name: String,
    /// `max_environments`: cap on environments per app when the manifest sets none.
    pub max_environments: Option<u32>,
    /// The grid network: main, test, qa, dev, or sim (the grid simulator on this machine).
    pub network: String,
    /// Another GridProxy than the network's own.
    pub gridproxy_url: Option<String>,
    pub node_selection: NodeSelection,
    /// The AI stack's agent, for a standalone setup (`TFGRID_COMPOSE_AGENT_URL`); without it
    /// the agent of an AI-stack deployment is used.
    pub agent_url: Option<String>,
    /// A file holding the agent's token (`TFGRID_COMPOSE_AGENT_TOKEN_FILE`).
    pub agent_token_file: Option<PathBuf>,
    /// The agent's token itself (`TFGRID_COMPOSE_AGENT_TOKEN`), registered as a secret.
    pub agent_token: Option<String>,
    /// Node filter of the config file, over the bash tool's `preferences.yaml` (flags and the
    /// manifest's `node_filter:` come first).
    pub node_filter: crate::grid::select::NodeFilter,
    /// `registry`: where the app registry is read (default [`DEFAULT_REGISTRY`]).
    pub registry_url: String,
    /// `registry_ttl` (default 1h): a cached copy of the registry younger than this is used
    /// without fetching.
    pub registry_ttl: Duration,
    pub config_file: PathBuf,
    pub data_dir: PathBuf,
    /// What can be fetched again: the app registry's copy, app repositories
    /// ([`Env::cache_dir`]).
    pub cache_dir: PathBuf,
    /// Key → where its value came from.
    pub sources: BTreeMap<&'static str, Source>,
}

/// One key's resolution: flag, env var, config file, default.
struct Resolver<'a> {
    env: &'a Env,
    config_file: &'a Path,
    sources: BTreeMap<&'static str, Source>,
}

impl Resolver<'_> {
    fn pick<T>(
        &mut self,
        key: &'static str,
        flag: Option<(T, &str)>,
        var: &'static str,
        config: Option<T>,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>> {
        if let Some((value, name)) = flag {
            self.sources.insert(key, Source::Flag(name.to_string()));
            return Ok(Some(value));
        }
        if let Some(text) = self.env.get(var) {
            let value = parse(text).map_err(|e| {
                UserError::new(
                    format!("{var}: {e}"),
                    format!("unset {var} or fix its value"),
                )
            })?;
            self.sources.insert(key, Source::Env(var.to_string()));
            return Ok(Some(value));
        }
        if let Some(value) = config {
            self.sources
                .insert(key, Source::Config(self.config_file.to_path_buf()));
            return Ok(Some(value));
        }
        self.sources.insert(key, Source::Default);
        Ok(None)
    }
}

fn config_duration(file: &Path, key: &str, text: Option<&String>) -> Result<Option<Duration>> {
    text.map(|t| {
        parse_duration(t).map_err(|e| {
            let raw = std::fs::read_to_string(file).unwrap_or_default();
            let (line, column) =
                crate::yaml::locate(&raw, &[key]).map_or((None, None), |(l, c)| (Some(l), Some(c)));
            InputError {
                file: file.into(),
                line,
                column,
                field: key.into(),
                message: e,
                hint: Some("give a duration such as 30s, 5m or 1h".into()),
            }
            .into()
        })
    })
    .transpose()
}

/// A config-file value that failed its check, as an error naming the file, line and key.
fn config_check(
    file: &Path,
    key: &str,
    checked: Option<Result<(), String>>,
    hint: &str,
) -> Result<(), InputError> {
    match checked {
        Some(Err(message)) => Err(InputError {
            file: file.to_path_buf(),
            line: crate::yaml::locate(&std::fs::read_to_string(file).unwrap_or_default(), &[key])
                .map(|p| p.0),
            column: None,
            field: key.into(),
            message,
            hint: Some(hint.into()),
        }),
        _ => Ok(()),
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
    pub fn resolve(env: Env, flags: &Overrides) -> Result<Settings> {
        let config_file = env.config_dir().join("config.yaml");
        let config = ConfigFile::load(&config_file)?;
        let data_dir = env.data_dir();
        let cache_dir = env.cache_dir();
        let mut r = Resolver {
            env: &env,
            config_file: &config_file,
            sources: BTreeMap::new(),
        };
        let text = |t: &str| Ok::<_, String>(t.to_string());
        let path = |t: &str| Ok::<_, String>(PathBuf::from(t));
        let port = |t: &str| {
            t.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("`{t}` is not a port number (1-65535)"))
        };
        let tofu = r.pick(
            "tofu",
            None,
            "TFGRID_COMPOSE_TOFU",
            config.tofu.clone(),
            text,
        )?;
        let patterns_dir = r.pick(
            "patterns_dir",
            None,
            "TFGRID_COMPOSE_PATTERNS_DIR",
            config.patterns_dir.clone(),
            path,
        )?;
        let patterns_dir = absolute_setting(patterns_dir, r.sources.get("patterns_dir"));
        let ssh_key = r.pick(
            "ssh_key",
            None,
            "TFGRID_COMPOSE_SSH_KEY",
            config.ssh_key.clone(),
            path,
        )?;
        let ssh_key = absolute_setting(ssh_key, r.sources.get("ssh_key"));
        let ssh_port = r
            .pick(
                "ssh_port",
                None,
                "TFGRID_COMPOSE_SSH_PORT",
                config.ssh_port,
                port,
            )?
            .unwrap_or(22);
        let ssh_timeout = r
            .pick(
                "ssh_timeout",
                flags.ssh_timeout.map(|d| (d, "--ssh-timeout")),
                "TFGRID_COMPOSE_SSH_TIMEOUT",
                config_duration(&config_file, "ssh_timeout", config.ssh_timeout.as_ref())?,
                parse_duration,
            )?
            .unwrap_or(Duration::from_secs(300));
        let lock_wait = r.pick(
            "lock_wait",
            flags.lock_wait.map(|d| (d, "--lock-wait")),
            "TFGRID_COMPOSE_LOCK_WAIT",
            config_duration(&config_file, "lock_wait", config.lock_wait.as_ref())?,
            parse_duration,
        )?;
        let tofu_timeout = r
            .pick(
                "tofu_timeout",
                None,
                "TFGRID_COMPOSE_TOFU_TIMEOUT",
                config_duration(&config_file, "tofu_timeout", config.tofu_timeout.as_ref())?,
                parse_duration,
            )?
            .unwrap_or(Duration::from_secs(3600));
        let stop_grace = r
            .pick(
                "stop_grace",
                None,
                "TFGRID_COMPOSE_STOP_GRACE",
                config_duration(&config_file, "stop_grace", config.stop_grace.as_ref())?,
                parse_duration,
            )?
            .unwrap_or(crate::interrupt::DEFAULT_GRACE);
        config_check(
            &config_file,
            "env",
            config.env.as_deref().map(check_env_name),
            "name an environment such as `default`, `staging` or `pr-123`",
        )?;
        let env_name = r
            .pick(
                "env",
                flags.env_name.clone().map(|e| (e, "--env")),
                "TFGRID_COMPOSE_ENV",
                config.env.clone(),
                |t| check_env_name(t).map(|()| t.to_string()),
            )?
            .unwrap_or_else(|| "default".to_string());
        let max_environments = r.pick(
            "max_environments",
            None,
            "TFGRID_COMPOSE_MAX_ENVIRONMENTS",
            config.max_environments,
            |t| {
                t.parse::<u32>()
                    .map_err(|_| format!("`{t}` is not a number"))
            },
        )?;
        config_check(
            &config_file,
            "network",
            config
                .network
                .as_deref()
                .map(crate::grid::proxy::check_network),
            "use main, test, qa, dev, or sim for the grid simulator",
        )?;
        let network = r
            .pick(
                "network",
                flags.network.clone().map(|n| (n, "--network")),
                "TFGRID_COMPOSE_NETWORK",
                config.network.clone(),
                |t| crate::grid::proxy::check_network(t).map(|()| t.to_string()),
            )?
            .unwrap_or_else(|| "main".to_string());
        let gridproxy_url = r.pick(
            "gridproxy_url",
            None,
            "TFGRID_COMPOSE_GRIDPROXY_URL",
            config.gridproxy_url.clone(),
            text,
        )?;
        let agent_url = r.pick("agent_url", None, vars::AGENT_URL, None, text)?;
        let agent_token_file =
            r.pick("agent_token_file", None, vars::AGENT_TOKEN_FILE, None, path)?;
        let agent_token_file =
            absolute_setting(agent_token_file, r.sources.get("agent_token_file"));
        let agent_token = r.pick("agent_token", None, vars::AGENT_TOKEN, None, text)?;
        if let Some(token) = &agent_token {
            crate::secrets::register(token);
        }
        let node_selection = r
            .pick(
                "node_selection",
                None,
                "TFGRID_COMPOSE_NODE_SELECTION",
                config.node_selection,
                |t| match t {
                    "gridproxy" => Ok(NodeSelection::Gridproxy),
                    "scheduler" => Ok(NodeSelection::Scheduler),
                    _ => Err(format!("`{t}` is not gridproxy or scheduler")),
                },
            )?
            .unwrap_or_default();
        // The config file's `node_filter:`, field by field over the bash tool's preferences.yaml.
        let preferences_file = crate::credentials::preferences_file(&config_file);
        let preferences = crate::credentials::preferences_filter(&preferences_file)?;
        let empty = crate::grid::select::NodeFilter::default();
        if config.node_filter != empty {
            r.sources
                .insert("node_filter", Source::Config(config_file.clone()));
        } else if preferences != empty {
            r.sources
                .insert("node_filter", Source::Config(preferences_file));
        }
        let node_filter = config.node_filter.clone().or(&preferences);
        let registry_url = r
            .pick(
                "registry",
                None,
                "TFGRID_COMPOSE_REGISTRY",
                config.registry.clone(),
                text,
            )?
            .unwrap_or_else(|| DEFAULT_REGISTRY.to_string());
        let registry_ttl = r
            .pick(
                "registry_ttl",
                None,
                "TFGRID_COMPOSE_REGISTRY_TTL",
                config_duration(&config_file, "registry_ttl", config.registry_ttl.as_ref())?,
                parse_duration,
            )?
            .unwrap_or(Duration::from_secs(3600));
        let sources = r.sources;
        Ok(Settings {
            tofu,
            patterns_dir,
            ssh_key,
            ssh_port,
            ssh_timeout,
            lock_wait,
            tofu_timeout,
            stop_grace,
            env_name,
            max_environments,
            network,
            gridproxy_url,
            node_selection,
            agent_url,
            agent_token_file,
            agent_token,
            node_filter,
            registry_url,
            registry_ttl,
            config_file,
            data_dir,
            cache_dir,
            sources,
            env,
        })
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

/// Environment variables read only here (the `TFGRID_COMPOSE_*` settings are named where they
/// are resolved, with their keys); these have no config-file key.
pub mod vars {
    /// Any value turns colour off (no-color.org), unless `--color` says otherwise.
    pub const NO_COLOR: &str = "NO_COLOR";
    /// Colour even when stderr is not a terminal.
    pub const FORCE_COLOR: &str = "FORCE_COLOR";
    /// Colour even when stderr is not a terminal, unless `0` (bixense.com/clicolors).
    pub const CLICOLOR_FORCE: &str = "CLICOLOR_FORCE";
    /// The AI stack's agent URL, for a standalone setup.
    pub const AGENT_URL: &str = "TFGRID_COMPOSE_AGENT_URL";
    /// A file holding the agent's token.
    pub const AGENT_TOKEN_FILE: &str = "TFGRID_COMPOSE_AGENT_TOKEN_FILE";
    /// The agent's token (a secret: redacted wherever it would be printed).
    pub const AGENT_TOKEN: &str = "TFGRID_COMPOSE_AGENT_TOKEN";
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
