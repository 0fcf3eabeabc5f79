//! The agent's HTTP API as types, shared by the agent (which serializes them) and the CLI's
//! client (which deserializes them): `/api/v1/projects`, `/health`, `/api/v1/backup` and
//! `/api/v1/restore`, and the gateway's site listing the agent reads for a backup
//! (docs/ai-stack.md).

use serde::{Deserialize, Serialize};

pub use super::llm::stats::Stats;

/// Where a project is: in the pipeline (`queued` … `verifying`, `restoring`), or at its end
/// (`live`, `failed`, `deleted`). On the wire and in the database as the lowercase word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProjectStatus {
    Queued,
    Generating,
    Checking,
    Committing,
    Publishing,
    Verifying,
    Restoring,
    Live,
    Failed,
    Deleted,
}

impl ProjectStatus {
    /// Every status, in pipeline order.
    pub const ALL: [ProjectStatus; 10] = [
        ProjectStatus::Queued,
        ProjectStatus::Generating,
        ProjectStatus::Checking,
        ProjectStatus::Committing,
        ProjectStatus::Publishing,
        ProjectStatus::Verifying,
        ProjectStatus::Restoring,
        ProjectStatus::Live,
        ProjectStatus::Failed,
        ProjectStatus::Deleted,
    ];

    /// The word on the wire and in the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            ProjectStatus::Queued => "queued",
            ProjectStatus::Generating => "generating",
            ProjectStatus::Checking => "checking",
            ProjectStatus::Committing => "committing",
            ProjectStatus::Publishing => "publishing",
            ProjectStatus::Verifying => "verifying",
            ProjectStatus::Restoring => "restoring",
            ProjectStatus::Live => "live",
            ProjectStatus::Failed => "failed",
            ProjectStatus::Deleted => "deleted",
        }
    }

    /// The status a word names, if any.
    pub fn parse(word: &str) -> Option<ProjectStatus> {
        ProjectStatus::ALL.into_iter().find(|s| s.as_str() == word)
    }

    /// Still in the pipeline (not `live`, `failed` or `deleted`).
    pub const fn is_active(self) -> bool {
        !matches!(
            self,
            ProjectStatus::Live | ProjectStatus::Failed | ProjectStatus::Deleted
        )
    }
}

impl std::fmt::Display for ProjectStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A project as the agent records and serves it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Project {
    pub id: String,
    pub name: String,
    pub prompt: String,
    pub status: ProjectStatus,
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

/// The status of an event that reports how far a step got (the LLM's tokens so far): many in a
/// row for one answer.
pub const PROGRESS: &str = "progress";

impl Event {
    pub fn is_progress(&self) -> bool {
        self.status == PROGRESS
    }
}

/// The events a list of steps shows, oldest first: of consecutive progress events of one step,
/// the latest only (it says how far the step got); the API and `monitor --json` keep them all.
pub fn listed(events: &[Event]) -> impl Iterator<Item = &Event> {
    events.iter().enumerate().filter_map(|(i, e)| {
        let superseded = e.is_progress()
            && events
                .get(i + 1)
                .is_some_and(|next| next.is_progress() && next.step == e.step);
        (!superseded).then_some(e)
    })
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
    /// Unix seconds when the agent started (0 from an agent that does not say).
    #[serde(default)]
    pub started_at: u64,
    /// Unix seconds of the last backup the agent served whole, 0 for none yet: what
    /// `backup_last_success_timestamp_seconds` shows at the next scrape.
    #[serde(default)]
    pub last_backup: u64,
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

#[cfg(test)]
mod tests {
    use super::{Event, ProjectStatus, listed};

    /// A run of one step's progress events is its latest; another step's, or another status
    /// between two, ends the run.
    #[test]
    fn a_list_shows_the_latest_of_a_run_of_progress_events() {
        let event = |seq, step: &str, status: &str| Event {
            seq,
            at: 0,
            step: step.into(),
            status: status.into(),
            message: String::new(),
            data: None,
        };
        let events = [
            event(1, "llm", "started"),
            event(2, "llm", "progress"),
            event(3, "llm", "progress"),
            event(4, "llm", "progress"),
            event(5, "llm", "note"),
            event(6, "llm", "progress"),
            event(7, "check", "progress"),
            event(8, "llm", "progress"),
            event(9, "llm", "progress"),
            event(10, "llm", "done"),
        ];
        let shown: Vec<i64> = listed(&events).map(|e| e.seq).collect();
        assert_eq!(shown, [1, 4, 5, 6, 7, 9, 10]);
    }

    /// The wire, the database and the words the agent wrote before the type are one spelling.
    #[test]
    fn a_status_is_the_same_word_everywhere() {
        let words = [
            "queued",
            "generating",
            "checking",
            "committing",
            "publishing",
            "verifying",
            "restoring",
            "live",
            "failed",
            "deleted",
        ];
        for (status, word) in ProjectStatus::ALL.into_iter().zip(words) {
            assert_eq!(status.as_str(), word);
            assert_eq!(ProjectStatus::parse(word), Some(status));
            assert_eq!(serde_json::to_value(status).unwrap(), word);
            let active = !matches!(word, "live" | "failed" | "deleted");
            assert_eq!(status.is_active(), active, "{word}");
        }
        assert_eq!(ProjectStatus::parse("Live"), None);
        assert!(serde_json::from_str::<ProjectStatus>("\"done\"").is_err());
    }
}
