//! Settings resolved once per run from flags and `TFGRID_COMPOSE_*` environment variables
//! (flags win). [`Env`] is the only reader of the process environment, so tests can inject one.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;

use crate::error::UserError;

/// A snapshot of the environment taken at start-up.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    pub fn from_process() -> Env {
        Env { vars: std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))).collect() }
    }

    pub fn from_pairs<const N: usize>(pairs: [(&str, &str); N]) -> Env {
        Env { vars: pairs.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect() }
    }

    /// A variable's value; empty counts as unset.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(String::as_str).filter(|v| !v.is_empty())
    }

    pub fn home(&self) -> Option<PathBuf> {
        self.get("HOME").map(PathBuf::from).or_else(dirs::home_dir)
    }
}

/// Parses `500ms`, `30s`, `5m`, `1h` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text.find(|c: char| !c.is_ascii_digit() && c != '.').map_or((text, "s"), |i| text.split_at(i));
    let value: f64 = number.parse().map_err(|_| format!("`{text}` is not a duration (try 30s, 5m, 1h)"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" | "" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("`{text}` has an unknown unit `{unit}` (use ms, s, m or h)")),
    };
    if !(seconds.is_finite() && seconds >= 0.0) {
        return Err(format!("`{text}` is not a duration"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Everything a run needs to know that is not in the manifest.
#[derive(Debug, Clone)]
pub struct Settings {
    pub env: Env,
    /// `TFGRID_COMPOSE_TOFU`: the tofu/terraform binary to use.
    pub tofu: Option<String>,
    /// `TFGRID_COMPOSE_PATTERNS_DIR`: where patterns are looked up first.
    pub patterns_dir: Option<PathBuf>,
    /// `TFGRID_COMPOSE_SSH_KEY`: a private key to use instead of a per-deployment one.
    pub ssh_key: Option<PathBuf>,
    /// `TFGRID_COMPOSE_SSH_PORT` (default 22).
    pub ssh_port: u16,
    /// `--ssh-timeout` / `TFGRID_COMPOSE_SSH_TIMEOUT` (default 5m).
    pub ssh_timeout: Duration,
    /// `--lock-wait` / `TFGRID_COMPOSE_LOCK_WAIT` (default: fail at once).
    pub lock_wait: Option<Duration>,
    /// `TFGRID_COMPOSE_TOFU_TIMEOUT` (default 60m) for each tofu call.
    pub tofu_timeout: Duration,
}

impl Settings {
    pub fn resolve(env: Env, ssh_timeout: Option<Duration>, lock_wait: Option<Duration>) -> Result<Settings> {
        let duration = |key: &str| -> Result<Option<Duration>> {
            env.get(key)
                .map(|text| parse_duration(text).map_err(|e| UserError::new(format!("{key}: {e}"), "unset it or give a duration such as 30s, 5m or 1h").into()))
                .transpose()
        };
        let ssh_port = match env.get("TFGRID_COMPOSE_SSH_PORT") {
            Some(text) => text
                .parse()
                .map_err(|_| UserError::new(format!("TFGRID_COMPOSE_SSH_PORT: `{text}` is not a port number"), "unset it or give a number from 1 to 65535"))?,
            None => 22,
        };
        Ok(Settings {
            tofu: env.get("TFGRID_COMPOSE_TOFU").map(String::from),
            patterns_dir: env.get("TFGRID_COMPOSE_PATTERNS_DIR").map(PathBuf::from),
            ssh_key: env.get("TFGRID_COMPOSE_SSH_KEY").map(PathBuf::from),
            ssh_port,
            ssh_timeout: match ssh_timeout {
                Some(d) => d,
                None => duration("TFGRID_COMPOSE_SSH_TIMEOUT")?.unwrap_or(Duration::from_secs(300)),
            },
            lock_wait: match lock_wait {
                Some(d) => Some(d),
                None => duration("TFGRID_COMPOSE_LOCK_WAIT")?,
            },
            tofu_timeout: duration("TFGRID_COMPOSE_TOFU_TIMEOUT")?.unwrap_or(Duration::from_secs(3600)),
            env,
        })
    }

    /// Folders searched for a pattern, in order: `TFGRID_COMPOSE_PATTERNS_DIR`, `patterns/` next
    /// to the app, the installed share folder next to the binary, then this source tree's.
    pub fn pattern_search_path(&self, app_dir: &std::path::Path) -> Vec<PathBuf> {
        let mut dirs = Vec::new();
        dirs.extend(self.patterns_dir.clone());
        dirs.push(app_dir.join("patterns"));
        if let Ok(exe) = std::env::current_exe() {
            if let Some(bin) = exe.parent() {
                dirs.push(bin.join("../share/tfgrid-compose/patterns"));
                dirs.push(bin.join("patterns"));
            }
        }
        dirs.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("patterns"));
        dirs
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Env, Settings, parse_duration};

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("12"), Ok(Duration::from_secs(12)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn flags_win_over_env() {
        let env = Env::from_pairs([("TFGRID_COMPOSE_SSH_TIMEOUT", "1m"), ("TFGRID_COMPOSE_SSH_PORT", "2222")]);
        let s = Settings::resolve(env.clone(), None, None).unwrap();
        assert_eq!(s.ssh_timeout, Duration::from_secs(60));
        assert_eq!(s.ssh_port, 2222);
        let s = Settings::resolve(env, Some(Duration::from_secs(5)), None).unwrap();
        assert_eq!(s.ssh_timeout, Duration::from_secs(5));
        assert!(Settings::resolve(Env::from_pairs([("TFGRID_COMPOSE_SSH_PORT", "x")]), None, None).is_err());
    }
}
