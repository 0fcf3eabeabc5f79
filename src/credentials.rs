//! The bash tool's own settings files in the config folder (`~/.config/tfgrid-compose/`), read
//! so that its users carry on unchanged (tfgrid-compose-bash.md §2.3, §7.1, §7.5):
//!
//! - `credentials.yaml`: `threefold.mnemonic` (a mnemonic source after the environment and the
//!   file `signin` writes), `git.name` and `git.email` (`TFGRID_GIT_NAME`/`TFGRID_GIT_EMAIL`
//!   for the app's hooks). Other keys (`github`, `git_servers`, `gitea`) are left alone.
//! - `preferences.yaml`: `whitelist.{nodes,farms}` and `blacklist.{nodes,farms}`, the node
//!   filter of last resort (after flags, the manifest's `node_filter:` and `config.yaml`'s).
//!
//! Both are read, never written. A file that does not parse is an error naming its line.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::InputError;
use crate::grid::select::{FarmRef, NodeFilter};

/// The bash tool's credentials file name, in the config folder.
pub const CREDENTIALS_FILE: &str = "credentials.yaml";
/// The bash tool's node preferences file name, in the config folder.
pub const PREFERENCES_FILE: &str = "preferences.yaml";

/// What this tool reads of `credentials.yaml`.
#[derive(Debug, Default, Deserialize)]
pub struct Credentials {
    #[serde(default)]
    threefold: Option<Threefold>,
    #[serde(default)]
    git: Option<GitIdentity>,
}

#[derive(Debug, Default, Deserialize)]
struct Threefold {
    #[serde(default)]
    mnemonic: Option<String>,
}

/// `git.name` and `git.email`: the identity the bash tool gave the app's hooks.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct GitIdentity {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}

impl Credentials {
    /// Reads `path`; a missing or empty file is empty credentials.
    ///
    /// Errors: an unreadable file, or YAML that does not parse (with its line).
    pub fn load(path: &Path) -> Result<Credentials, InputError> {
        crate::yaml::load_optional_yaml(
            path,
            "the bash tool's credentials file: `threefold: {mnemonic: …}`, `git: {name, email}`",
        )
    }

    /// `threefold.mnemonic`, when set and not blank.
    pub fn mnemonic(&self) -> Option<&str> {
        self.threefold
            .as_ref()
            .and_then(|t| t.mnemonic.as_deref())
            .filter(|m| !m.trim().is_empty())
    }

    /// `git.name` and `git.email`.
    pub fn git(&self) -> GitIdentity {
        self.git.clone().unwrap_or_default()
    }
}

/// `preferences.yaml`: node and farm lists (the thresholds under `preferences:` applied only to
/// the bash tool's interactive browser, and are not read).
#[derive(Debug, Default, Deserialize)]
struct Preferences {
    #[serde(default)]
    whitelist: Lists,
    #[serde(default)]
    blacklist: Lists,
}

#[derive(Debug, Default, Deserialize)]
struct Lists {
    #[serde(default)]
    nodes: Vec<u64>,
    #[serde(default)]
    farms: Vec<FarmName>,
}

/// A farm in the bash tool's lists: a name, or an id written as a number.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum FarmName {
    Id(u64),
    Name(String),
}

impl From<&FarmName> for FarmRef {
    fn from(farm: &FarmName) -> FarmRef {
        match farm {
            FarmName::Id(id) => FarmRef::Id(*id),
            FarmName::Name(name) => FarmRef::parse(name),
        }
    }
}

/// The node filter of `preferences.yaml` at `path`; the empty filter when there is none.
///
/// Errors: an unreadable file, or YAML that does not parse (with its line and field).
pub fn preferences_filter(path: &Path) -> Result<NodeFilter, InputError> {
    let prefs: Preferences = crate::yaml::load_optional_yaml(
        path,
        "the bash tool's node preferences: `whitelist: {nodes: [ID…], farms: [NAME…]}`, \
            `blacklist: {…}`",
    )?;
    Ok(NodeFilter {
        whitelist_nodes: prefs.whitelist.nodes,
        whitelist_farms: prefs.whitelist.farms.iter().map(FarmRef::from).collect(),
        blacklist_nodes: prefs.blacklist.nodes,
        blacklist_farms: prefs.blacklist.farms.iter().map(FarmRef::from).collect(),
        ..NodeFilter::default()
    })
}

/// `credentials.yaml` in the config folder of `config_file` (`…/tfgrid-compose/config.yaml`).
pub fn credentials_file(config_file: &Path) -> PathBuf {
    config_file.with_file_name(CREDENTIALS_FILE)
}

/// `preferences.yaml` beside `config_file`.
pub fn preferences_file(config_file: &Path) -> PathBuf {
    config_file.with_file_name(PREFERENCES_FILE)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shapes the bash tool writes (tfgrid-compose-bash.md §2.3: `signin.sh:save_credentials`,
    /// `preferences.sh`, flow lists edited with `sed`).
    #[test]
    fn reads_the_bash_tools_files() {
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join(CREDENTIALS_FILE);
        std::fs::write(
            &creds,
            "threefold:\n  mnemonic: \"word word\"\ngithub:\n  token: \"x\"\ngit:\n  name: \
                \"Ada\"\n  email: \"ada@example.org\"\ngit_servers:\n  - name: forge\n",
        )
        .unwrap();
        let c = Credentials::load(&creds).unwrap();
        assert_eq!(c.mnemonic(), Some("word word"));
        assert_eq!(c.git().name.as_deref(), Some("Ada"));
        assert_eq!(c.git().email.as_deref(), Some("ada@example.org"));

        let prefs = dir.path().join(PREFERENCES_FILE);
        std::fs::write(
            &prefs,
            "whitelist:\n  nodes: [8, 13]\n  farms: [Freefarm, 1]\nblacklist:\n  nodes: [42]\n  \
                farms: []\npreferences:\n  max_cpu_usage: 80\nmetadata:\n  version: \"1.0\"\n",
        )
        .unwrap();
        let f = preferences_filter(&prefs).unwrap();
        assert_eq!(f.whitelist_nodes, [8, 13]);
        assert_eq!(
            f.whitelist_farms,
            [FarmRef::Name("Freefarm".into()), FarmRef::Id(1)]
        );
        assert_eq!(f.blacklist_nodes, [42]);
        assert!(
            preferences_filter(&dir.path().join("none.yaml")).unwrap() == NodeFilter::default()
        );

        std::fs::write(&prefs, "whitelist:\n  nodes: [eight]\n").unwrap();
        let err = preferences_filter(&prefs).unwrap_err();
        assert_eq!(err.line, Some(2), "{err:?}");
    }
}
