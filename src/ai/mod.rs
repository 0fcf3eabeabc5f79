//! The AI stack, in this binary: `serve gateway` (routes in front of nginx), `serve agent`
//! (projects: an LLM writes a site, it is checked, committed to a git host, published through the
//! gateway and verified live), and the client the `create`/`projects`/`monitor`/`delete`
//! commands use. `serve git` is the git host's repository API (a Gitea-compatible subset).
//! `archive` is the backup format; `backup` is the agent's backup and restore.

pub mod agent;
pub mod answer;
pub mod api;
pub mod archive;
pub mod backup;
pub mod client;
pub mod db;
pub mod firewall;
pub mod gateway;
pub mod generate;
pub mod githost;
pub mod gitserver;
pub mod llm;
pub mod monitoring;
pub mod nginx;
pub mod server;
pub mod site;
pub mod token;
pub mod units;
pub mod words;

use std::path::Path;

use anyhow::Result;

/// Reads a service's YAML config; a bad key or value names the file and line.
pub fn load_config<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        crate::error::UserError::new(
            format!("cannot read `{}`: {e}", path.display()),
            "pass the service's config file with --config",
        )
    })?;
    Ok(crate::yaml::parse_yaml(
        path,
        &text,
        "see docs/ai-stack.md for the service's config keys",
    )?)
}
