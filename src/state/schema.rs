//! `state.yaml`: what a deployment is and how far each phase got. Every field that can be
//! missing has a default, so an older file reads; a newer schema is refused with a hint.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};

use crate::clock::now_unix;
use crate::error::UserError;
use crate::pattern::contract::PatternOutputs;

/// The schema this build reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

/// The phases of `up`, in order (the journal's vocabulary; `phase` runs them).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
#[value(rename_all = "kebab-case")]
pub enum Phase {
    Validate,
    Infrastructure,
    Network,
    WaitSsh,
    Platform,
    Application,
    Verify,
    Finalize,
}

impl Phase {
    pub const ALL: [Phase; 8] = [
        Phase::Validate,
        Phase::Infrastructure,
        Phase::Network,
        Phase::WaitSsh,
        Phase::Platform,
        Phase::Application,
        Phase::Verify,
        Phase::Finalize,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Validate => "validate",
            Phase::Infrastructure => "infrastructure",
            Phase::Network => "network",
            Phase::WaitSsh => "wait-ssh",
            Phase::Platform => "platform",
            Phase::Application => "application",
            Phase::Verify => "verify",
            Phase::Finalize => "finalize",
        }
    }

    /// Parses a phase name, with a hint listing the valid ones.
    pub fn parse(text: &str) -> Result<Phase, UserError> {
        Phase::ALL
            .into_iter()
            .find(|p| p.name() == text)
            .ok_or_else(|| {
                UserError::new(
                    format!("unknown phase `{text}`"),
                    format!("phases are: {}", Phase::ALL.map(Phase::name).join(", ")),
                )
            })
    }
}

/// Overall status of a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Deploying,
    Running,
    Failed,
    Destroying,
    DestroyFailed,
    /// `up` stopped on SIGINT/SIGTERM (after its children stopped); `--resume` continues.
    Interrupted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Deploying => "deploying",
            Status::Running => "running",
            Status::Failed => "failed",
            Status::Destroying => "destroying",
            Status::DestroyFailed => "destroy-failed",
            Status::Interrupted => "interrupted",
        }
    }

    /// The status left by a run that ended without recording its end (killed, or its last save
    /// failed on a full disk): `deploying` is `interrupted` (`up --resume` continues it),
    /// `destroying` is `destroy-failed` (`down` runs again); others stay.
    #[must_use]
    pub fn settled(self) -> Status {
        match self {
            Status::Deploying => Status::Interrupted,
            Status::Destroying => Status::DestroyFailed,
            other => other,
        }
    }

    /// The status named `text` (`deploying`, `destroy-failed`, …), as [`Status::as_str`] writes it.
    pub fn parse(text: &str) -> Option<Status> {
        serde_json::from_value(serde_json::Value::String(text.into())).ok()
    }
}

/// What happened to one phase in the latest run that reached it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PhaseStatus {
    Running,
    Done,
    Failed,
    /// Stopped by SIGINT/SIGTERM; runs again on `--resume`.
    Interrupted,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseRecord {
    pub phase: Phase,
    pub status: PhaseStatus,
    pub started_at: u64,
    #[serde(default)]
    pub finished_at: Option<u64>,
    #[serde(default)]
    pub duration_ms: Option<u64>,
    #[serde(default)]
    pub error: Option<String>,
    /// The log files the phase wrote (`logs/<run>/<name>.log`, one per VM for some), recorded
    /// when it ends and only those that exist; an older file's single `log:` reads as one.
    #[serde(
        default,
        alias = "log",
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub logs: Vec<PathBuf>,
}

/// `log: PATH` (written before a phase recorded all its files) or `logs: [PATH, …]`.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<PathBuf>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Logs {
        One(PathBuf),
        Many(Vec<PathBuf>),
    }
    Ok(match Option::<Logs>::deserialize(d)? {
        None => Vec::new(),
        Some(Logs::One(path)) => vec![path],
        Some(Logs::Many(paths)) => paths,
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppRecord {
    pub name: String,
    #[serde(default)]
    pub version: Option<String>,
    /// The app's real folder (symlinks resolved), absolute.
    pub dir: PathBuf,
    pub manifest: PathBuf,
    /// The folder as it was given, when that path differs from `dir` (a symlink on the way),
    /// for display only: a command never finds the deployment through it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_dir: Option<PathBuf>,
    /// Set when the app came from the app registry (`up NAME`); absent for a folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<AppOrigin>,
}

impl AppRecord {
    /// The record of `app` as `up` and `import` make it: its real folder and manifest
    /// (symlinks resolved), and the folder as given when that differs.
    pub fn of(app: &crate::manifest::App, origin: Option<AppOrigin>) -> Result<AppRecord> {
        let given = std::path::absolute(&app.dir)
            .with_context(|| format!("failed to make `{}` absolute", app.dir.display()))?;
        let dir = crate::files::real_path(&app.dir);
        Ok(AppRecord {
            name: app.manifest.name.clone(),
            version: app.manifest.version.clone(),
            manifest: crate::files::real_path(&app.file),
            given_dir: (given != dir).then_some(given),
            dir,
            origin,
        })
    }
}

/// Where an app deployed by name came from: its entry in the app registry and the commit
/// checked out (the registry's `version`), so that a resume deploys the same files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppOrigin {
    /// The app's name in the registry (`apps.official[].name`).
    pub name: String,
    /// The registry it was found in: the `registry` setting's URL or path.
    pub registry: String,
    /// The repository cloned, as git was given it (`https://` added to `github.com/org/repo`).
    pub repo: String,
    /// The commit checked out: full hex, exactly the registry's `version`.
    pub commit: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatternRecord {
    pub name: String,
    pub version: String,
    pub dir: PathBuf,
}

/// The host side of the WireGuard tunnel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkRecord {
    pub interface: String,
    pub config: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshRecord {
    pub identity: PathBuf,
    pub known_hosts: PathBuf,
    pub port: u16,
    pub user: String,
    /// True when host keys came from the pattern (`StrictHostKeyChecking=yes` from the start).
    pub pinned: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRecord {
    pub id: String,
    pub command: String,
    pub started_at: u64,
    pub log_dir: PathBuf,
}

/// `state.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentState {
    pub schema_version: u32,
    /// 16 hex digits.
    pub id: String,
    /// The environment (`default`, `staging`, `pr-123`).
    #[serde(default = "default_env")]
    pub env: String,
    pub app: AppRecord,
    pub pattern: PatternRecord,
    pub status: Status,
    pub created_at: u64,
    pub updated_at: u64,
    /// Resolved tool paths of the run that created the deployment.
    pub tofu: String,
    pub ssh: SshRecord,
    #[serde(default)]
    pub journal: Vec<PhaseRecord>,
    #[serde(default)]
    pub outputs: Option<PatternOutputs>,
    #[serde(default)]
    pub network: Option<NetworkRecord>,
    /// The grid node of each of the pattern's placements.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub placement: Vec<crate::grid::placement::Choice>,
    /// Nodes on which `apply` failed for a cause a node can fix; selection avoids them until an
    /// apply succeeds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded_nodes: Vec<u64>,
    #[serde(default)]
    pub runs: Vec<RunRecord>,
    /// The AI stack's addresses, when the app has `ai_stack:` (its tokens are in `ai-stack/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai_stack: Option<crate::stack::StackRecord>,
    /// The grid network (`main`, `test`, `qa`, `dev` or `sim`) of a grid pattern's deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grid_network: Option<String>,
    /// The grid network's private /16 that `up` chose for a pattern with an `ip_range`
    /// variable (one no other deployment on this machine routes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<String>,
}

impl DeploymentState {
    /// Parses `state.yaml`, refusing a newer schema with a hint to upgrade.
    pub fn parse(text: &str) -> Result<DeploymentState> {
        let raw: serde_yaml::Value =
            crate::yaml::from_yaml(text).context("state.yaml is not valid YAML")?;
        let version = raw
            .get("schema_version")
            .and_then(serde_yaml::Value::as_u64);
        match version {
            Some(v) if v == u64::from(SCHEMA_VERSION) => {}
            Some(v) if v > u64::from(SCHEMA_VERSION) => {
                return Err(UserError::new(
                    format!(
                        "state.yaml has schema_version {v}, newer than this tfgrid-compose \
                        understands ({SCHEMA_VERSION})"
                    ),
                    "upgrade tfgrid-compose, then run the command again",
                )
                .into());
            }
            other => bail!("state.yaml has an unsupported schema_version {other:?}"),
        }
        let state: DeploymentState = crate::yaml::from_yaml(text)?;
        // The id names the registry's file and the local pattern's VMs: a hand-edited one that
        // is not the shape `ids::new_id` makes is damage, not a path to follow.
        if !crate::ids::is_deployment_id(&state.id) {
            let line = crate::yaml::locate(text, &["id"])
                .map_or(String::new(), |(l, _)| format!("line {l}: "));
            bail!(
                "{line}`id` is `{}`, not the 16 lowercase hex digits tfgrid-compose writes",
                state.id.escape_debug()
            );
        }
        Ok(state)
    }

    /// `app:env`, as `ps` and the registry name a deployment.
    pub fn label(&self) -> String {
        format!("{}:{}", self.app.name, self.env)
    }

    pub fn record(&self, phase: Phase) -> Option<&PhaseRecord> {
        self.journal.iter().find(|r| r.phase == phase)
    }

    /// The state as it stands when no run holds the deployment's lock (`run_alive` false): the
    /// status [`Status::settled`], and `running` phases `interrupted`. What `status` shows.
    #[must_use]
    pub fn settled(mut self, run_alive: bool) -> Self {
        if !run_alive {
            self.status = self.status.settled();
            for record in &mut self.journal {
                if record.status == PhaseStatus::Running {
                    record.status = PhaseStatus::Interrupted;
                }
            }
        }
        self
    }

    pub fn phase_done(&self, phase: Phase) -> bool {
        self.record(phase)
            .is_some_and(|r| r.status == PhaseStatus::Done)
    }

    /// The first phase, in order, that has not finished.
    pub fn first_unfinished(&self) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| !self.phase_done(*p))
    }

    pub fn start_phase(&mut self, phase: Phase) {
        let now = now_unix();
        self.journal.retain(|r| r.phase != phase);
        self.journal.push(PhaseRecord {
            phase,
            status: PhaseStatus::Running,
            started_at: now,
            finished_at: None,
            duration_ms: None,
            error: None,
            logs: Vec::new(),
        });
        self.journal.sort_by_key(|r| r.phase);
        self.updated_at = now;
    }

    /// Records a phase's end: its time, its error, and `logs`, those of the files it named that
    /// exist.
    pub fn finish_phase(
        &mut self,
        phase: Phase,
        elapsed: Duration,
        error: Option<String>,
        logs: Vec<PathBuf>,
    ) {
        let now = now_unix();
        if let Some(record) = self.journal.iter_mut().find(|r| r.phase == phase) {
            record.status = if error.is_some() {
                PhaseStatus::Failed
            } else {
                PhaseStatus::Done
            };
            record.finished_at = Some(now);
            record.duration_ms = Some(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX));
            record.error = error;
            record.logs = logs.into_iter().filter(|l| l.is_file()).collect();
        }
        self.updated_at = now;
    }

    /// Marks a finished phase as stopped by a signal rather than failed.
    pub fn interrupt_phase(&mut self, phase: Phase) {
        if let Some(record) = self.journal.iter_mut().find(|r| r.phase == phase) {
            record.status = PhaseStatus::Interrupted;
        }
    }

    /// Forgets phases from `phase` on, so that they run again.
    pub fn reset_from(&mut self, phase: Phase) {
        self.journal.retain(|r| r.phase < phase);
    }
}

fn default_env() -> String {
    "default".to_string()
}

#[cfg(test)]
mod tests {
    use super::PhaseRecord;

    #[test]
    fn a_journal_entry_reads_an_older_single_log_and_writes_the_list() {
        let old: PhaseRecord = serde_yaml::from_str(
            "phase: wait-ssh\nstatus: done\nstarted_at: 1\nlog: /l/wait-ssh.log\n",
        )
        .unwrap();
        assert_eq!(old.logs, [std::path::Path::new("/l/wait-ssh.log")]);
        let text = serde_yaml::to_string(&old).unwrap();
        assert!(text.contains("logs:\n- /l/wait-ssh.log"), "{text}");
        let none: PhaseRecord =
            serde_yaml::from_str("phase: validate\nstatus: done\nstarted_at: 1\n").unwrap();
        assert!(none.logs.is_empty());
        assert!(!serde_yaml::to_string(&none).unwrap().contains("log"));
    }
}
