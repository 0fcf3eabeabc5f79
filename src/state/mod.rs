//! The deployment's folder `.tfgrid-compose/<env>/`, the only owner of every path in it:
//! `state.yaml`
//! ([`schema`]), the lock ([`lock`]), Terraform's folder, logs, keys, WireGuard configs, the
//! AI stack's secrets. Start from [`StateDir`] and [`DeploymentState`]. The YAML crate stays
//! behind this module and `manifest`.

mod lock;
mod schema;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

pub use lock::StateLock;
pub use schema::{
    AppOrigin, AppRecord, DeploymentState, NetworkRecord, PatternRecord, Phase, PhaseRecord,
    PhaseStatus, RunRecord, SCHEMA_VERSION, SshRecord, Status,
};

use crate::error::{DamagedState, UserError};
use crate::files::{create_private_dir, write_atomic};
use crate::ids::ShortId;

/// Name of the state folder, next to the app's manifest.
pub const STATE_DIR_NAME: &str = ".tfgrid-compose";

/// Paths inside `.tfgrid-compose/`, and the atomic writer for them.
#[derive(Debug, Clone)]
pub struct StateDir {
    /// `.tfgrid-compose/<env>/`.
    pub root: PathBuf,
    /// Dry runs write nothing: every write is skipped here, not at call sites.
    pub dry_run: bool,
    /// When set, every save also updates this deployment's entry in the registry.
    pub registry: Option<crate::registry::Registry>,
    /// The id of the deployment the user named (by id or through the registry): [`load`]
    /// refuses a `state.yaml` of another one, which a folder moved, replaced or reached through
    /// a repointed symlink would hold.
    ///
    /// [`load`]: StateDir::load
    pub expected_id: Option<String>,
}

impl StateDir {
    /// The state folder of one environment of an app: `<app>/.tfgrid-compose/<env>/`, in the
    /// app's real folder (symlinks resolved: [`crate::files::real_path`]).
    pub fn for_app(app_dir: &Path, env: &str, dry_run: bool) -> StateDir {
        StateDir {
            root: crate::files::real_path(app_dir)
                .join(STATE_DIR_NAME)
                .join(env),
            dry_run,
            registry: None,
            expected_id: None,
        }
    }

    /// The state folder of an app deployed by name from the app registry, which lives in the
    /// cache: `<data dir>/apps/<name>/.tfgrid-compose/<env>/`, as if the app's folder were
    /// `<data dir>/apps/<name>`, so that clearing the cache never loses a deployment's state.
    pub fn for_registry_app(data_dir: &Path, name: &str, env: &str) -> StateDir {
        StateDir::for_app(&data_dir.join("apps").join(name), env, false)
    }

    /// A state folder found through the registry.
    pub fn at(root: PathBuf) -> StateDir {
        StateDir {
            root,
            dry_run: false,
            registry: None,
            expected_id: None,
        }
    }

    /// This folder as the home of deployment `id`: see [`StateDir::expected_id`].
    #[must_use]
    pub fn expecting(mut self, id: &str) -> StateDir {
        self.expected_id = Some(id.to_string());
        self
    }

    /// The refusal when this folder holds deployment `found` (`app:env`), not the one expected.
    pub fn not_expected(&self, found: &str, label: &str) -> Option<UserError> {
        let expected = self.expected_id.as_deref().filter(|e| *e != found)?;
        Some(UserError::new(
            format!(
                "deployment {} is not in `{}` any more: that folder holds deployment {} ({label})",
                ShortId::of(expected),
                self.root.display(),
                ShortId::of(found),
            ),
            format!(
                "its folder was moved or replaced, or a symlink on its path now leads \
                elsewhere: nothing was done; name a moved deployment by its new folder, and \
                the one there by its id ({found}); `tfgrid-compose ps` shows the folder each \
                was recorded in"
            ),
        ))
    }

    /// The app folder of a folder app's state folder (`<app>/.tfgrid-compose/<env>/`).
    pub fn app_dir(&self) -> Option<&Path> {
        self.root
            .parent()
            .filter(|p| p.file_name().is_some_and(|n| n == STATE_DIR_NAME))?
            .parent()
    }

    #[must_use]
    pub fn with_registry(mut self, registry: crate::registry::Registry) -> StateDir {
        self.registry = Some(registry);
        self
    }

    /// Removes this environment's folder, then `.tfgrid-compose/` if no other environment is left.
    pub fn remove(&self) -> Result<()> {
        std::fs::remove_dir_all(&self.root)
            .with_context(|| format!("failed to remove `{}`", self.root.display()))?;
        if let Some(parent) = self
            .root
            .parent()
            .filter(|p| p.file_name().is_some_and(|n| n == STATE_DIR_NAME))
        {
            let _ = std::fs::remove_dir(parent);
            // A registry app's holder folder (`<data dir>/apps/<name>/`, see
            // `for_registry_app`) has nothing else in it: it goes too, when empty.
            if let Some(holder) = parent.parent().filter(|h| {
                h.parent()
                    .and_then(Path::file_name)
                    .is_some_and(|n| n == "apps")
            }) {
                let _ = std::fs::remove_dir(holder);
            }
        }
        Ok(())
    }

    pub fn state_file(&self) -> PathBuf {
        self.root.join("state.yaml")
    }
    pub fn terraform_dir(&self) -> PathBuf {
        self.root.join("terraform")
    }

    /// The words after `tfgrid-compose down` that name this deployment: `<app>` (with
    /// `--env ENV` unless `default`) for a folder `<app>/.tfgrid-compose/<env>/`; else its id in
    /// the registry (a registry app's folder is under the data dir), else the folder.
    pub fn target(&self) -> String {
        let entry = self
            .registry
            .as_ref()
            .and_then(|r| r.list().ok())
            .and_then(|(entries, _)| entries.into_iter().find(|e| e.state_dir == self.root));
        let env = self
            .root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned());
        let app = self
            .root
            .parent()
            .filter(|p| p.file_name().is_some_and(|n| n == STATE_DIR_NAME))
            .and_then(Path::parent);
        match (app, env) {
            (Some(app), Some(env)) if env == "default" => app.display().to_string(),
            (Some(app), Some(env)) => format!("{} --env {env}", app.display()),
            _ => entry.map_or_else(
                || self.root.display().to_string(),
                |e| e.short_id().to_string(),
            ),
        }
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
    /// The deployment's own ssh key, when `ssh_key` is not set.
    pub fn default_identity(&self) -> PathBuf {
        self.ssh_dir().join("id_ed25519")
    }
    /// The variables `up` gives Terraform (`terraform/tfgrid-compose.tfvars.json`, 0600).
    pub fn var_file(&self) -> PathBuf {
        self.terraform_dir().join("tfgrid-compose.tfvars.json")
    }
    /// Terraform's state: what is deployed, and so what is billed.
    pub fn tfstate(&self) -> PathBuf {
        self.terraform_dir().join("terraform.tfstate")
    }
    /// The pattern's `wg_config` output as written (`wg/tunnel.conf`, 0600).
    pub fn tunnel_source(&self) -> PathBuf {
        self.wg_dir().join("tunnel.conf")
    }
    /// The wg-quick config of interface `name` (`wg/<name>.conf`).
    pub fn tunnel_config(&self, name: &str) -> PathBuf {
        self.wg_dir().join(format!("{name}.conf"))
    }
    /// One run's log folder: `logs/<UTC time>-<command>/`.
    pub fn run_log_dir(&self, started: u64, command: &str) -> PathBuf {
        self.logs_dir().join(format!(
            "{}-{command}",
            crate::clock::format_utc(started)
                .replace(':', "-")
                .trim_end_matches('Z')
        ))
    }
    /// The AI stack's tokens and configs (`ai-stack/`, 0700).
    pub fn ai_stack_dir(&self) -> PathBuf {
        self.root.join("ai-stack")
    }
    /// The token the CLI uses for the AI stack's agent.
    pub fn agent_token_file(&self) -> PathBuf {
        self.ai_stack_dir().join("agent.token")
    }
    pub fn known_hosts(&self) -> PathBuf {
        self.root.join("known_hosts")
    }
    pub fn inventory(&self) -> PathBuf {
        self.root.join("inventory.ini")
    }
    /// Group variables beside the inventory (the pattern's, so that a playbook of the app run
    /// with this inventory gets them too, e.g. `ansible_python_interpreter`).
    pub fn group_vars_dir(&self) -> PathBuf {
        self.root.join("group_vars")
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

    /// Whether a run (`up`, `down`) holds this deployment's lock now ([`lock::is_held`]).
    pub fn run_alive(&self) -> bool {
        lock::is_held(&self.lock_file())
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
                return Err(err)
                    .with_context(|| format!("failed to read state file `{}`", path.display()));
            }
        };
        if text.trim().is_empty() {
            return Err(DamagedState {
                path,
                detail: "it is empty".into(),
                terraform_dir: self.terraform_dir(),
                target: self.target(),
            }
            .into());
        }
        match DeploymentState::parse(&text) {
            Ok(state) => match self.not_expected(&state.id, &state.label()) {
                Some(refusal) => Err(refusal.into()),
                None => Ok(Some(state)),
            },
            // A newer tool's state is not damaged: its error says to upgrade.
            Err(err) if err.chain().any(|c| c.is::<UserError>()) => {
                Err(err.context(format!("failed to read state file `{}`", path.display())))
            }
            Err(err) => Err(DamagedState {
                path,
                detail: format!("{err:#}"),
                terraform_dir: self.terraform_dir(),
                target: self.target(),
            }
            .into()),
        }
    }

    pub fn save(&self, state: &DeploymentState) -> Result<()> {
        let text = crate::secrets::redact(
            &serde_yaml::to_string(state).context("failed to serialize state")?,
        );
        self.write(&self.state_file(), text.as_bytes(), 0o600)?;
        if let (Some(registry), false) = (&self.registry, self.dry_run) {
            registry.put(&registry_entry(state, &self.root))?;
        }
        Ok(())
    }

    /// Values saved by app commands with `save_to_context` (`context.yaml`).
    pub fn load_context(&self) -> Result<BTreeMap<String, String>> {
        match std::fs::read_to_string(self.context_file()) {
            Ok(text) => crate::yaml::from_yaml(&text)
                .with_context(|| format!("failed to read `{}`", self.context_file().display())),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(err) => Err(err)
                .with_context(|| format!("failed to read `{}`", self.context_file().display())),
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

/// A registry entry's `status` as `ps` shows it: a `deploying` or `destroying` that no run holds
/// the lock of in `state_dir` is [`Status::settled`].
pub fn settled_status(status: &str, state_dir: &Path) -> String {
    match Status::parse(status) {
        Some(recorded)
            if recorded.settled() != recorded
                && !StateDir::at(state_dir.to_path_buf()).run_alive() =>
        {
            recorded.settled().as_str().to_string()
        }
        _ => status.to_string(),
    }
}

/// This deployment's entry in the registry of deployments, as of `state`.
pub fn registry_entry(state: &DeploymentState, state_dir: &Path) -> crate::registry::Entry {
    crate::registry::Entry {
        schema_version: crate::registry::ENTRY_SCHEMA,
        id: state.id.clone(),
        app: state.app.name.clone(),
        env: state.env.clone(),
        pattern: state.pattern.name.clone(),
        status: state.status.as_str().to_string(),
        primary_ip: state.outputs.as_ref().map(|o| o.primary_ip.clone()),
        app_dir: state.app.dir.clone(),
        app_dir_given: state.app.given_dir.clone(),
        state_dir: state_dir.to_path_buf(),
        created_at: state.created_at,
        updated_at: state.updated_at,
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::StateDir;

    /// `down`'s words for a deployment: the app folder (and `--env` unless `default`) for a
    /// folder under an app, else the folder itself (a registry app's, under the data dir).
    #[test]
    fn a_state_folder_names_its_down_target() {
        let at = |root: &str| StateDir::at(PathBuf::from(root)).target();
        assert_eq!(at("/srv/my app/.tfgrid-compose/default"), "/srv/my app");
        assert_eq!(
            at("/srv/blog/.tfgrid-compose/staging"),
            "/srv/blog --env staging"
        );
        assert_eq!(at("/data/apps/blog/default"), "/data/apps/blog/default");
    }
}
