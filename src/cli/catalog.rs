//! The app registry (`search`, `update`) and the patterns (`patterns`, `patterns show`,
//! `patterns check`).

use anyhow::Result;
use clap::{Args, Subcommand};

use super::Ctx;
use crate::ops;

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Words that must all be in an app's name, description or tags (case-insensitive).
    #[arg(value_name = "QUERY")]
    pub words: Vec<String>,
    /// A tag the app must have; repeat for several.
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// A registry app whose repository to fetch and whose pinned commit to check out.
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct PatternsArgs {
    #[command(subcommand)]
    pub command: Option<PatternsCommand>,
}

#[derive(Debug, Subcommand)]
pub enum PatternsCommand {
    /// Everything about one pattern: what it needs, its variables (types, defaults, bounds), its
    /// outputs.
    Show {
        /// The pattern's name.
        name: String,
    },
    /// Verify a pattern folder without creating anything: pattern.yaml, contract outputs and
    /// variables in the HCL, `ansible-playbook --syntax-check`, README.
    Check {
        /// The pattern folder.
        dir: std::path::PathBuf,
    },
}

impl PatternsArgs {
    pub(super) async fn run(self, cx: &Ctx<'_>) -> Result<()> {
        match self.command {
            None => ops::patterns::list(cx.printer, cx.settings, cx.json),
            Some(PatternsCommand::Show { name }) => {
                ops::patterns::show(cx.printer, cx.settings, &name, cx.json)
            }
            Some(PatternsCommand::Check { dir }) => {
                ops::patterns::check(cx.printer, &dir, cx.json).await
            }
        }
    }
}
