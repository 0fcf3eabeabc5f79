//! The AI stack's commands: `create`, `projects` (with `backup`, `restore`, `rotate-tokens`), `monitor`,
//! `delete`, and `serve` of its services.

use anyhow::Result;
use clap::{Args, Subcommand};

use super::Ctx;
use crate::ops;

/// Where the AI stack's agent is (default: TFGRID_COMPOSE_AGENT_URL with TFGRID_COMPOSE_AGENT_TOKEN
/// or TFGRID_COMPOSE_AGENT_TOKEN_FILE).
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The agent API, e.g. http://10.1.0.3:7702.
    #[arg(long, value_name = "URL")]
    pub agent_url: Option<String>,
    /// A file holding the agent's bearer token.
    #[arg(long, value_name = "FILE")]
    pub agent_token_file: Option<std::path::PathBuf>,
    /// The AI-stack deployment to use (app path, ID prefix, APP or APP:ENV); default: the only
    /// deployment with `ai_stack:`.
    #[arg(long, value_name = "TARGET")]
    pub stack: Option<String>,
}

impl AgentArgs {
    pub(super) fn flags(&self) -> ops::ai::AgentFlags {
        ops::ai::AgentFlags {
            url: self.agent_url.clone(),
            token_file: self.agent_token_file.clone(),
            stack: self.stack.clone(),
        }
    }
}

/// `projects`: the list, or `backup` / `restore`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ProjectsArgs {
    #[command(subcommand)]
    pub command: Option<ProjectsCommand>,
    #[command(flatten)]
    pub agent: AgentArgs,
}

#[derive(Debug, Subcommand)]
pub enum ProjectsCommand {
    /// Copy the stack's projects into one archive: the database, every repository (a git
    /// bundle), the published sites and the gateway's routes, with a manifest of checksums.
    Backup {
        /// Where to write it (default: `ai-stack-backup-DATE.tar.gz` here); written 0600.
        #[arg(short, long, value_name = "FILE")]
        output: Option<std::path::PathBuf>,
        #[command(flatten)]
        agent: AgentArgs,
    },
    /// Bring the projects of a backup back live on a stack (a fresh one, or one that has none
    /// of them): records, repositories with their history, sites and routes.
    Restore {
        /// The archive `projects backup` wrote.
        #[arg(value_name = "FILE")]
        file: std::path::PathBuf,
        #[command(flatten)]
        agent: AgentArgs,
    },
    /// Replace every token of a deployed AI stack (route API, agent, git host, metrics) while
    /// it serves: the old ones accepted until the new ones are in use everywhere, then refused.
    RotateTokens {
        /// The AI-stack deployment (app path, ID prefix, APP or APP:ENV); default: as `status`.
        #[arg(value_name = "TARGET")]
        target: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// What to build, in a sentence.
    pub prompt: String,
    /// The project's name (default: made from the prompt).
    #[arg(long)]
    pub name: Option<String>,
    /// Wait until the site is live, printing the steps (the default).
    #[arg(long, overrides_with = "no_wait")]
    pub wait: bool,
    /// Return once the project is queued.
    #[arg(long)]
    pub no_wait: bool,
    #[command(flatten)]
    pub agent: AgentArgs,
}

#[derive(Debug, Args)]
pub struct MonitorArgs {
    /// Project id or name.
    pub project: String,
    /// Keep printing events until the project is live or failed.
    #[arg(long, short)]
    pub follow: bool,
    #[command(flatten)]
    pub agent: AgentArgs,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Project id or name.
    pub project: String,
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(long, short)]
    pub yes: bool,
    #[command(flatten)]
    pub agent: AgentArgs,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Which service (`llm` is the local model's own server, not served by this binary).
    #[arg(value_enum)]
    pub service: crate::ai::units::Service,
    /// Its YAML config (docs/ai-stack.md).
    #[arg(long, value_name = "FILE")]
    pub config: std::path::PathBuf,
}

impl CreateArgs {
    pub(super) async fn run(self, cx: &Ctx<'_>) -> Result<()> {
        let agent = ops::ai::client(cx.settings, &self.agent.flags())?;
        let wait = !self.no_wait || self.wait;
        ops::ai::create(cx.printer, &agent, &self.prompt, self.name.as_deref(), wait).await
    }
}

impl ProjectsArgs {
    pub(super) async fn run(self, cx: &Ctx<'_>) -> Result<()> {
        match self.command {
            None => {
                let agent = ops::ai::client(cx.settings, &self.agent.flags())?;
                ops::ai::projects(cx.printer, &agent, cx.json).await
            }
            Some(ProjectsCommand::Backup { output, agent }) => {
                let agent = ops::ai::client(cx.settings, &agent.flags())?;
                ops::backup::backup(cx.printer, &agent, output.as_deref(), cx.json).await
            }
            Some(ProjectsCommand::Restore { file, agent }) => {
                ops::backup::restore(cx.printer, cx.settings, &agent.flags(), &file, cx.json).await
            }
            Some(ProjectsCommand::RotateTokens { target }) => {
                let runner = crate::process::Runner::real();
                ops::tokens::rotate_tokens(cx.printer, cx.settings, &runner, target.as_deref())
                    .await
            }
        }
    }
}

impl MonitorArgs {
    pub(super) async fn run(self, cx: &Ctx<'_>) -> Result<()> {
        let agent = ops::ai::client(cx.settings, &self.agent.flags())?;
        ops::ai::monitor(cx.printer, &agent, &self.project, self.follow, cx.json).await
    }
}

impl DeleteArgs {
    pub(super) async fn run(self, cx: &Ctx<'_>) -> Result<()> {
        let agent = ops::ai::client(cx.settings, &self.agent.flags())?;
        ops::ai::delete(cx.printer, &agent, &self.project, self.yes).await
    }
}
