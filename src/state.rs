//! The deployment's folder `.tfgrid-compose/` and its `state.yaml`: typed state, atomic writes
//! (temp file, fsync, rename), and the one exclusive lock held for a whole `up` or `down`.
//! Start from [`StateDir`] and [`DeploymentState`]. The YAML crate stays behind this module and
//! `manifest`.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};

use crate::contract::PatternOutputs;
use crate::error::{DamagedState, LockError, UserError};
use crate::phase::Phase;

/// Name of the state folder, next to the app's manifest.
pub const STATE_DIR_NAME: &str = ".tfgrid-compose";
/// The schema this build reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

/// Paths inside `.tfgrid-compose/`, and the atomic writer for them.
#[derive(Debug, Clone)]
pub struct StateDir {
    /// `.tfgrid-compose/<env>/`.
    pub root: PathBuf,
    /// Dry runs write nothing: every write is skipped here, not at call sites.
    pub dry_run: bool,
    /// When set, every save also updates this deployment's entry in the registry.
    pub registry: Option<crate::registry::Registry>,
}

impl StateDir {
    /// The state folder of one environment of an app: `<app>/.tfgrid-compose/<env>/`.
    pub fn for_app(app_dir: &Path, env: &str, dry_run: bool) -> StateDir {
        let app_dir = std::path::absolute(app_dir).unwrap_or_else(|_| app_dir.to_path_buf());
        StateDir { root: app_dir.join(STATE_DIR_NAME).join(env), dry_run, registry: None }
    }

    /// A state folder found through the registry.
    pub fn at(root: PathBuf) -> StateDir {
        StateDir { root, dry_run: false, registry: None }
    }

    #[must_use]
    pub fn with_registry(mut self, registry: crate::registry::Registry) -> StateDir {
        self.registry = Some(registry);
        self
    }

    /// Removes this environment's folder, then `.tfgrid-compose/` if no other environment is left.
    pub fn remove(&self) -> Result<()> {
        std::fs::remove_dir_all(&self.root).with_context(|| format!("failed to remove `{}`", self.root.display()))?;
        if let Some(parent) = self.root.parent().filter(|p| p.file_name().is_some_and(|n| n == STATE_DIR_NAME)) {
            let _ = std::fs::remove_dir(parent);
        }
        Ok(())
    }

    pub fn state_file(&self) -> PathBuf {
        self.root.join("state.yaml")
    }
    pub fn terraform_dir(&self) -> PathBuf {
        self.root.join("terraform")
    }
    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }
    pub fn wg_dir(&self) -> PathBuf {
        self.root.join("wg")
    }
    pub fn ssh_dir(&self) -> PathBuf {
        self.root.join("ssh")
    }
    pub fn known_hosts(&self) -> PathBuf {
        self.root.join("known_hosts")
    }
    pub fn inventory(&self) -> PathBuf {
        self.root.join("inventory.ini")
    }
    pub fn ansible_cfg(&self) -> PathBuf {
        self.root.join("ansible.cfg")
    }
    pub fn extra_vars(&self) -> PathBuf {
        self.root.join("extra-vars.json")
    }
    pub fn lock_file(&self) -> PathBuf {
        self.root.join("lock")
    }

    pub fn exists(&self) -> bool {
        self.state_file().exists()
    }

    /// Creates the folder (0700) and a subfolder, unless dry.
    pub fn create_dir(&self, dir: &Path) -> Result<()> {
        if self.dry_run {
            return Ok(());
        }
        create_private_dir(dir)
    }

    /// Writes a file atomically with `mode`: temp file in the same folder, fsync, rename.
    pub fn write(&self, path: &Path, contents: &[u8], mode: u32) -> Result<()> {
        if self.dry_run {
            return Ok(());
        }
        write_atomic(path, contents, mode)
    }

    pub fn load(&self) -> Result<Option<DeploymentState>> {
        let path = self.state_file();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => {
                return Err(err).with_context(|| format!("failed to read state file `{}`", path.display()));
            }
        };
        if text.trim().is_empty() {
            return Err(DamagedState { path, detail: "it is empty".into() }.into());
        }
        match DeploymentState::parse(&text) {
            Ok(state) => Ok(Some(state)),
            // A newer tool's state is not damaged: its error says to upgrade.
            Err(err) if err.chain().any(|c| c.is::<UserError>()) => Err(err.context(format!("failed to read state file `{}`", path.display()))),
            Err(err) => Err(DamagedState { path, detail: format!("{err:#}") }.into()),
        }
    }

    pub fn save(&self, state: &DeploymentState) -> Result<()> {
        let text = crate::secrets::redact(&serde_yaml::to_string(state).context("failed to serialize state")?);
        self.write(&self.state_file(), text.as_bytes(), 0o600)?;
        if let (Some(registry), false) = (&self.registry, self.dry_run) {
            registry.put(&crate::registry::Entry::of(state, &self.root))?;
        }
        Ok(())
    }

    /// Values saved by app commands with `save_to_context` (`context.yaml`).
    pub fn load_context(&self) -> Result<BTreeMap<String, String>> {
        match std::fs::read_to_string(self.context_file()) {
            Ok(text) => crate::manifest::from_yaml(&text).with_context(|| format!("failed to read `{}`", self.context_file().display())),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(err) => Err(err).with_context(|| format!("failed to read `{}`", self.context_file().display())),
        }
    }

    pub fn save_context(&self, values: &BTreeMap<String, String>) -> Result<()> {
        let text = serde_yaml::to_string(values)?;
        self.write(&self.context_file(), text.as_bytes(), 0o600)
    }

    pub fn context_file(&self) -> PathBuf {
        self.root.join("context.yaml")
    }
}

/// `n` random bytes from the kernel, as hex (ids, and the AI stack's tokens, which must not fall
/// back to anything weaker).
pub fn random_hex(n: usize) -> std::io::Result<String> {
    use std::io::Read as _;
    let mut bytes = vec![0u8; n];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A fresh random id of 16 hex digits (deployments, AI-stack projects).
pub fn new_id() -> String {
    random_hex(8).ok().filter(|hex| hex != "0000000000000000").unwrap_or_else(|| {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        format!("{:016x}", u64::try_from(nanos % u128::from(u64::MAX)).unwrap_or(1) ^ u64::from(std::process::id()))
    })
}

/// Creates a folder and its parents, mode 0700.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).with_context(|| format!("failed to create `{}`", dir.display()))
}

/// Atomic write: `tempfile` in the target's folder, write, `sync_all`, chmod, `persist`.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().context("path has no parent folder")?;
    let mut temp = tempfile::NamedTempFile::new_in(dir).with_context(|| format!("failed to create a temp file in `{}`", dir.display()))?;
    temp.write_all(contents)?;
    temp.as_file().set_permissions(std::fs::Permissions::from_mode(mode))?;
    temp.as_file().sync_all()?;
    temp.persist(path).with_context(|| format!("failed to write `{}`", path.display()))?;
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
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
    #[serde(default)]
    pub log: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppRecord {
    pub name: String,
    #[serde(default)]
    pub version: Option<String>,
    pub dir: PathBuf,
    pub manifest: PathBuf,
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
    /// Nodes on which `apply` failed; selection avoids them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded_nodes: Vec<u64>,
    #[serde(default)]
    pub runs: Vec<RunRecord>,
    /// The AI stack's addresses, when the app has `ai_stack:` (its tokens are in `ai-stack/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai_stack: Option<crate::ai::stack::StackRecord>,
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
        let raw: serde_yaml::Value = crate::manifest::from_yaml(text).context("state.yaml is not valid YAML")?;
        let version = raw.get("schema_version").and_then(serde_yaml::Value::as_u64);
        match version {
            Some(v) if v == u64::from(SCHEMA_VERSION) => {}
            Some(v) if v > u64::from(SCHEMA_VERSION) => {
                return Err(UserError::new(
                    format!("state.yaml has schema_version {v}, newer than this tfgrid-compose understands ({SCHEMA_VERSION})"),
                    "upgrade tfgrid-compose, then run the command again",
                )
                .into());
            }
            other => bail!("state.yaml has an unsupported schema_version {other:?}"),
        }
        Ok(crate::manifest::from_yaml(text)?)
    }

    pub fn record(&self, phase: Phase) -> Option<&PhaseRecord> {
        self.journal.iter().find(|r| r.phase == phase)
    }

    pub fn phase_done(&self, phase: Phase) -> bool {
        self.record(phase).is_some_and(|r| r.status == PhaseStatus::Done)
    }

    /// The first phase, in order, that has not finished.
    pub fn first_unfinished(&self) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| !self.phase_done(*p))
    }

    pub fn start_phase(&mut self, phase: Phase, log: Option<PathBuf>) {
        let now = now_unix();
        self.journal.retain(|r| r.phase != phase);
        self.journal.push(PhaseRecord { phase, status: PhaseStatus::Running, started_at: now, finished_at: None, duration_ms: None, error: None, log });
        self.journal.sort_by_key(|r| r.phase);
        self.updated_at = now;
    }

    pub fn finish_phase(&mut self, phase: Phase, elapsed: Duration, error: Option<String>) {
        let now = now_unix();
        if let Some(record) = self.journal.iter_mut().find(|r| r.phase == phase) {
            record.status = if error.is_some() { PhaseStatus::Failed } else { PhaseStatus::Done };
            record.finished_at = Some(now);
            record.duration_ms = Some(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX));
            record.error = error;
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

/// Seconds since the epoch.
pub fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `2026-11-23T10:15:12Z` for a Unix time (UTC, proleptic Gregorian).
pub fn format_utc(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// `3m 04s`, `1.2s`, `85ms`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}m {:02}s", ms / 60_000, ms % 60_000 / 1000)
    }
}

/// The exclusive lock of a deployment, held until dropped. The lock file names its holder.
#[derive(Debug)]
pub struct StateLock {
    _file: Option<File>,
}

impl StateLock {
    /// A lock that locks nothing (dry runs).
    pub fn none() -> StateLock {
        StateLock { _file: None }
    }

    /// Takes the lock at once, or waits up to `wait` for it.
    pub fn acquire(path: &Path, command: &str, wait: Option<Duration>, mut on_wait: impl FnMut(&str)) -> Result<StateLock> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode_0600()
            .open(path)
            .with_context(|| format!("failed to open lock file `{}`", path.display()))?;
        let deadline = wait.map(|w| Instant::now() + w);
        let mut told = false;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {
                    let mut holder = String::new();
                    let _ = file.rewind();
                    let _ = file.read_to_string(&mut holder);
                    let holder = holder.trim().replace('\n', ", ");
                    let holder = if holder.is_empty() { "unknown holder".to_string() } else { holder };
                    match deadline {
                        Some(deadline) if Instant::now() < deadline => {
                            if !told {
                                on_wait(&holder);
                                told = true;
                            }
                            std::thread::sleep(Duration::from_millis(100));
                        }
                        _ => {
                            return Err(LockError { holder, lock_file: path.to_path_buf() }.into());
                        }
                    }
                }
                Err(std::fs::TryLockError::Error(err)) => {
                    return Err(err).with_context(|| format!("failed to lock `{}`", path.display()));
                }
            }
        }
        file.set_len(0)?;
        file.rewind()?;
        writeln!(file, "pid {}\ncommand {command}\nsince {}", std::process::id(), format_utc(now_unix()))?;
        file.sync_all()?;
        Ok(StateLock { _file: Some(file) })
    }
}

trait Mode0600 {
    fn mode_0600(&mut self) -> &mut Self;
}

impl Mode0600 for OpenOptions {
    fn mode_0600(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt as _;
        self.mode(0o600)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{StateLock, format_duration, format_utc, write_atomic};

    #[test]
    fn utc_formatting() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(1_795_000_000), "2026-11-18T11:06:40Z");
        assert_eq!(format_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_duration(Duration::from_millis(85)), "85ms");
        assert_eq!(format_duration(Duration::from_millis(64_200)), "1m 04s");
    }

    #[test]
    fn lock_is_exclusive_and_names_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let held = StateLock::acquire(&path, "up demo", None, |_| {}).unwrap();
        let err = StateLock::acquire(&path, "down demo", None, |_| {}).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("command up demo"), "{text}");
        assert!(text.contains(&format!("pid {}", std::process::id())), "{text}");
        drop(held);
        StateLock::acquire(&path, "down demo", Some(Duration::from_secs(1)), |_| {}).unwrap();
    }

    #[test]
    fn atomic_write_sets_mode() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write_atomic(&path, b"one", 0o600).unwrap();
        write_atomic(&path, b"two", 0o600).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        assert_eq!(path.metadata().unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temp file left behind");
    }
}
