//! A command run on a deployment's VM, as an app's `commands:` and a bash-format pattern's
//! `commands:` both write it (the bash tool's keys, tfgrid-compose-bash.md §1.4).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// An app- or pattern-defined command, run on the VM (the bash tool's keys).
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
pub struct AppCommand {
    /// The program on the VM and its fixed arguments. Empty when not written: an app's command
    /// is then refused by the manifest check; a pattern's is `scripts/<name>.sh`.
    #[serde(default)]
    pub script: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub args: Option<String>,
    #[serde(default)]
    pub allocate_tty: Option<bool>,
    #[serde(default)]
    pub save_to_context: Option<String>,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_yaml::Value>,
}
