//! The process environment, read once at start-up into [`Env`]: the only reader of it (clippy
//! bans `std::env::var` elsewhere), so tests inject one and every variable is looked up in one
//! place. The variables the tool defines are named once, in `settings::vars` and `settings`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A snapshot of the environment taken at start-up.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    #[expect(
        clippy::disallowed_methods,
        reason = "the one place the process environment is read"
    )]
    pub fn from_process() -> Env {
        Env {
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        }
    }

    pub fn from_pairs<const N: usize>(pairs: [(&str, &str); N]) -> Env {
        Env {
            vars: pairs
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
        }
    }

    /// A variable's value; empty counts as unset.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn home(&self) -> Option<PathBuf> {
        self.get("HOME").map(PathBuf::from).or_else(dirs::home_dir)
    }

    /// `TFGRID_COMPOSE_CONFIG_DIR`, else `$XDG_CONFIG_HOME/tfgrid-compose`, else
    /// `~/.config/tfgrid-compose`.
    pub fn config_dir(&self) -> PathBuf {
        self.xdg_dir(
            "TFGRID_COMPOSE_CONFIG_DIR",
            "XDG_CONFIG_HOME",
            ".config",
            dirs::config_dir,
        )
    }

    /// `TFGRID_COMPOSE_DATA_DIR`, else `$XDG_DATA_HOME/tfgrid-compose`, else
    /// `~/.local/share/tfgrid-compose`.
    pub fn data_dir(&self) -> PathBuf {
        self.xdg_dir(
            "TFGRID_COMPOSE_DATA_DIR",
            "XDG_DATA_HOME",
            ".local/share",
            dirs::data_dir,
        )
    }

    /// `TFGRID_COMPOSE_CACHE_DIR`, else `$XDG_CACHE_HOME/tfgrid-compose`, else
    /// `~/.cache/tfgrid-compose`: what can be fetched again (the app registry, app repositories).
    pub fn cache_dir(&self) -> PathBuf {
        self.xdg_dir(
            "TFGRID_COMPOSE_CACHE_DIR",
            "XDG_CACHE_HOME",
            ".cache",
            dirs::cache_dir,
        )
    }

    fn xdg_dir(
        &self,
        own: &str,
        xdg: &str,
        under_home: &str,
        fallback: fn() -> Option<PathBuf>,
    ) -> PathBuf {
        if let Some(dir) = self.get(own) {
            // relative to the folder the command started in, fixed now: a deployment records
            // paths under it, read later from other folders
            return std::path::absolute(dir).unwrap_or_else(|_| PathBuf::from(dir));
        }
        let base = self
            .get(xdg)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| self.get("HOME").map(|h| Path::new(h).join(under_home)))
            .or_else(fallback)
            .unwrap_or_else(|| PathBuf::from(".").join(under_home));
        base.join("tfgrid-compose")
    }
}
