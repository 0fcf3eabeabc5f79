//! The agent's HTTP API as types, shared by the agent (which serializes them) and the CLI's
//! client (which deserializes them): `/api/v1/projects`, `/health`, `/api/v1/backup` and
//! `/api/v1/restore`, and the gateway's site listing the agent reads for a backup
//! (docs/ai-stack.md).

use serde::{Deserialize, Serialize};

pub use super::llm::stats::Stats;

/// A project as the agent records and serves it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Project {
    pub id: String,
    pub name: String,
    pub prompt: String,
    pub status: String,
    pub error: Option<String>,
    pub repo_url: Option<String>,
    pub live_url: Option<String>,
    /// What was undone after a failure, in order.
    pub undone: Vec<String>,
    /// What exists: `repo`, `site`, `route`.
    pub created: Vec<String>,
    pub attempts: u32,
    pub created_at: u64,
    pub updated_at: u64,
}

/// One step of a project's pipeline, as recorded.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    pub seq: i64,
    pub at: u64,
    pub step: String,
    pub status: String,
    pub message: String,
    /// What a program reads of the event, e.g. a `progress` event's `{attempt, provider, tokens,
    /// tokens_per_s, elapsed_ms}` (docs/schemas/create-event.schema.json).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

/// `POST /api/v1/projects` (202) and `GET`/`DELETE` answers that carry one project.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProjectReply {
    pub project: Project,
}

/// `GET /api/v1/projects`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProjectList {
    pub projects: Vec<Project>,
}

/// `GET /api/v1/projects/{key}` and `…/events?after=SEQ&wait=S`: the project and its events
/// (after `after`, oldest first).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProjectEvents {
    pub project: Project,
    pub events: Vec<Event>,
}

/// One part `DELETE` could not remove.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Failure {
    pub what: String,
    pub error: String,
}

/// `DELETE /api/v1/projects/{key}`: 200 when everything went, 502 when some part is left.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeleteReport {
    pub removed: Vec<String>,
    pub failed: Vec<Failure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One LLM provider in `/health`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProviderHealth {
    pub provider: String,
    pub model: String,
    pub base_url: String,
    /// `json_schema`, `json_object` or `none`: what the server accepted last.
    pub response_format: String,
    pub max_tokens: u32,
    pub timeout_s: u64,
    pub idle_timeout_s: u64,
    pub stats: Stats,
}

/// `GET /health`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
    /// Projects in the pipeline now.
    pub active: u64,
    pub llm_strategy: String,
    pub llm: Vec<ProviderHealth>,
}

/// The gateway's `GET /api/v1/sites`: the names of the published sites.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SiteList {
    pub sites: Vec<String>,
}

/// The gateway's `GET /api/v1/sites/{name}` (and the body of its `PUT`): a site's files, path →
/// text.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteFiles {
    pub files: super::site::Files,
}

/// Which backup a restore came from (its manifest's `public_url` and `created_at`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BackupOrigin {
    pub public_url: String,
    /// Unix seconds.
    pub created_at: u64,
}

/// `POST /api/v1/restore` (200): what is back on this stack. The projects carry their URLs on
/// this stack; `routes` are the gateway paths and `sites` the site names put back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestoreReport {
    pub from: BackupOrigin,
    pub projects: Vec<Project>,
    pub routes: Vec<String>,
    pub sites: Vec<String>,
}
