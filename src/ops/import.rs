//! `import PATH`: a deployment the bash tool made, taken under this tool's management so that
//! `status`, `ssh`, `exec`, `ps` and `down` work on it.
//!
//! The bash tool kept each deployment in `~/.config/tfgrid-compose/state/<id>/`
//! (tfgrid-compose-bash.md §4.3, §5.1): a flat `state.yaml` (`app_name`, `app_dir`,
//! `pattern_name`, `deploy_node`, `deploy_cpu`, …, `primary_ip`, `primary_ip_type`,
//! `deployment_name`, `mycelium_address`, …), `terraform/` (the pattern's HCL with
//! `terraform.tfstate`) and `wg.conf`. Import copies the Terraform folder (without the provider
//! cache `.terraform/` and the saved plan) and the WireGuard config into the app's
//! `.tfgrid-compose/<env>/`, writes the variables the bash tool exported for `destroy`
//! (`vm_node` ← `deploy_node`, … §3.3) where the HCL declares them, and records the deployment as
//! running with every phase done. The bash tool's folder is read, never changed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::clock::now_unix;
use crate::error::UserError;
use crate::ids::ShortId;
use crate::manifest::App;
use crate::output::Printer;
use crate::pattern::contract::{IpType, PatternOutputs};
use crate::phase::Phase;
use crate::settings::Settings;
use crate::state::{
    AppRecord, DeploymentState, NetworkRecord, PatternRecord, PhaseRecord, PhaseStatus, RunRecord,
    SCHEMA_VERSION, SshRecord, StateDir, Status,
};

/// `state.yaml` keys of the bash tool → the Terraform variables it exported from them for
/// `destroy` (`orchestrator.sh:643-802`, `destroy_deployment`; §3.3, §4.9).
const VARIABLES: [(&str, &str); 6] = [
    ("deploy_node", "vm_node"),
    ("deploy_cpu", "vm_cpu"),
    ("deploy_mem", "vm_mem"),
    ("deploy_disk", "vm_disk"),
    ("deploy_network", "tfgrid_network"),
    ("deploy_ipv4", "vm_public_ipv4"),
];

/// The Terraform variables of [`VARIABLES`] that the bash state has values for.
fn variables(bash: &BTreeMap<String, String>) -> BTreeMap<String, serde_json::Value> {
    VARIABLES
        .iter()
        .filter_map(|(key, var)| {
            let value = bash.get(*key)?;
            let json = value
                .parse::<i64>()
                .map(serde_json::Value::from)
                .or_else(|_| value.parse::<bool>().map(serde_json::Value::from))
                .unwrap_or_else(|_| value.clone().into());
            Some(((*var).to_string(), json))
        })
        .collect()
}

/// The deployment made by an earlier import of `source`, if one is still recorded.
fn imported_already(settings: &Settings, source: &Path) -> Result<Option<crate::registry::Entry>> {
    let (entries, _) = crate::ops::registry(settings).list()?;
    Ok(entries.into_iter().find(|e| {
        StateDir::at(e.state_dir.clone())
            .load()
            .ok()
            .flatten()
            .is_some_and(|s| s.pattern.dir == source)
    }))
}

/// Flags of `import`.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The bash tool's state folder of one deployment.
    pub path: PathBuf,
    /// The app folder, when the recorded `app_dir` is gone or elsewhere.
    pub app: Option<PathBuf>,
}

/// The bash tool's flat `state.yaml`, as text values (`null` and empty dropped).
fn read_bash_state(path: &Path) -> Result<BTreeMap<String, String>> {
    let file = path.join("state.yaml");
    let text = std::fs::read_to_string(&file).map_err(|e| {
        UserError::new(
            format!("cannot read `{}`: {e}", file.display()),
            "name the bash tool's state folder of one deployment, e.g. \
                `~/.config/tfgrid-compose/state/<id>`",
        )
    })?;
    let map: BTreeMap<String, serde_yaml::Value> = crate::yaml::parse_yaml(
        &file,
        &text,
        "the bash tool writes `key: value` lines (app_name, app_dir, pattern_name, primary_ip, …)",
    )?;
    Ok(map
        .into_iter()
        .filter_map(|(k, v)| {
            let text = crate::yaml::scalar_text(&v)?;
            (!text.is_empty() && text != "null").then_some((k, text))
        })
        .collect())
}

/// A key of the bash state that `import` cannot do without.
fn required<'a>(state: &'a BTreeMap<String, String>, key: &str, path: &Path) -> Result<&'a str> {
    state.get(key).map(String::as_str).ok_or_else(|| {
        UserError::new(
            format!("`{}` has no `{key}`", path.join("state.yaml").display()),
            "only a deployment that finished `up` in the bash tool can be imported; run its `down` \
                or `contracts delete` otherwise",
        )
        .into()
    })
}

/// The private key ssh would use by default, as the bash tool's ssh did (§4.4).
fn default_identity(settings: &Settings) -> Option<PathBuf> {
    if let Some(key) = &settings.ssh_key {
        return Some(key.clone());
    }
    let home = settings.env.home()?;
    ["id_ed25519", "id_rsa", "id_ecdsa"]
        .iter()
        .map(|n| home.join(".ssh").join(n))
        .find(|p| p.is_file())
}

pub fn import(printer: &Printer, settings: &Settings, options: &ImportOptions) -> Result<()> {
    let source = std::path::absolute(&options.path)?;
    let bash = read_bash_state(&source)?;
    let terraform = source.join("terraform");
    if !terraform.join("terraform.tfstate").is_file() {
        return Err(UserError::new(
            format!(
                "`{}` holds no `terraform/terraform.tfstate`",
                source.display()
            ),
            "name the bash tool's state folder of one deployment (it has `state.yaml` and \
                `terraform/`)",
        )
        .into());
    }
    let app_dir = match (&options.app, bash.get("app_dir")) {
        (Some(app), _) => app.clone(),
        (None, Some(dir)) => PathBuf::from(dir),
        (None, None) => {
            return Err(UserError::new(
                format!("`{}` has no `app_dir`", source.join("state.yaml").display()),
                "name the app's folder with `--app DIR`",
            )
            .into());
        }
    };
    let app = App::load(&app_dir).map_err(|e| {
        anyhow::Error::new(e).context(format!(
            "the app of `{}` must be at hand; pass its folder with `--app DIR`",
            source.display()
        ))
    })?;
    let dir = StateDir::for_app(&app.dir, &settings.env_name, false)
        .with_registry(crate::ops::registry(settings));
    if dir.root.exists() {
        return Err(UserError::new(
            format!(
                "`{}` already has a deployment in environment `{}` (`{}`)",
                app.manifest.name,
                settings.env_name,
                dir.root.display()
            ),
            "import it into another environment with `--env NAME`",
        )
        .into());
    }
    if let Some(entry) = imported_already(settings, &source)? {
        return Err(UserError::new(
            format!(
                "`{}` was imported already, as deployment {} ({})",
                source.display(),
                entry.short_id(),
                entry.label()
            ),
            format!(
                "one Terraform state must have one owner: use that deployment, or `tfgrid-compose \
                    down {}` first",
                entry.short_id()
            ),
        )
        .into());
    }
    let primary_ip = required(&bash, "primary_ip", &source)?.to_string();
    // Every variable of the copied HCL without a default needs a value for `destroy`.
    let blocks = crate::pattern::check::variable_blocks(&terraform).map_err(|(file, e)| {
        UserError::new(
            format!("`{}`: {e}", file.display()),
            "the bash tool's `terraform/` folder must hold the pattern's HCL it deployed",
        )
    })?;
    let values = variables(&bash);
    let missing: Vec<String> = blocks
        .iter()
        .filter(|(name, var)| {
            var.default.is_none() && name.as_str() != "mnemonic" && !values.contains_key(*name)
        })
        .map(|(name, _)| {
            let from = VARIABLES
                .iter()
                .find(|(_, v)| v == name)
                .map_or(String::new(), |(k, _)| format!(" (`{k}` in state.yaml)"));
            format!("`{name}`{from}")
        })
        .collect();
    if !missing.is_empty() {
        return Err(UserError::new(
            format!(
                "the HCL in `{}` needs {} for `destroy`, and `{}` has no value for it",
                terraform.display(),
                missing.join(", "),
                source.join("state.yaml").display()
            ),
            "import takes a folder the bash tool wrote after `up` (docs/migrating.md lists the \
                keys it reads); add the value to its state.yaml",
        )
        .into());
    }
    if !bash.contains_key("deploy_network") {
        printer.warn(format!(
            "`{}` has no `deploy_network`; the grid network `main` is assumed, as the bash tool \
                did",
            source.join("state.yaml").display()
        ));
    }
    let network = bash
        .get("deploy_network")
        .cloned()
        .unwrap_or_else(|| "main".into());
    let tofu = crate::ops::resolve_tofu(settings)?;
    let identity = default_identity(settings).ok_or_else(|| {
        UserError::new(
            "no ssh key to reach the bash tool's VMs (it used ssh's default key)",
            "set `ssh_key` (TFGRID_COMPOSE_SSH_KEY) to the key that deployment was made with",
        )
    })?;

    dir.create_dir(&dir.root)?;
    let written = write_files(
        &dir, &source, &bash, settings, &app, identity, tofu, &network,
    );
    match written {
        Ok(state) => {
            let id = &state.id;
            printer.status(
                "Imported",
                format!(
                    "`{}` ({} on {network}, {primary_ip}) as deployment {} from `{}`",
                    app.manifest.name,
                    state.pattern.name,
                    ShortId::of(id),
                    source.display()
                ),
            );
            printer.status(
                "Next",
                format!(
                    "`tfgrid-compose status {}`; `down` destroys it with the copied Terraform \
                        state; the bash tool's folder is unchanged",
                    ShortId::of(id)
                ),
            );
            Ok(())
        }
        Err(err) => {
            // Nothing half-imported stays behind: the next attempt starts clean.
            let _ = std::fs::remove_dir_all(&dir.root);
            Err(err)
        }
    }
}

/// Writes the imported deployment's folder and state; the caller removes it on an error.
#[allow(clippy::too_many_arguments)]
fn write_files(
    dir: &StateDir,
    source: &Path,
    bash: &BTreeMap<String, String>,
    settings: &Settings,
    app: &App,
    identity: PathBuf,
    tofu: String,
    network: &str,
) -> Result<DeploymentState> {
    let terraform = source.join("terraform");
    let primary_ip = required(bash, "primary_ip", source)?.to_string();
    let ip_type = bash
        .get("primary_ip_type")
        .and_then(|t| IpType::parse(t))
        .unwrap_or(IpType::Ipv4);
    let node_ids: Vec<u64> = bash
        .get("deploy_node")
        .and_then(|n| n.parse().ok())
        .into_iter()
        .collect();
    // Files: the Terraform folder, the variables for `destroy`, the WireGuard config.
    let workdir = dir.terraform_dir();
    // Without Terraform's provider cache and the saved plan; the state and lock file come along.
    crate::files::copy_tree(&terraform, &workdir, &|name| {
        name == ".terraform" || name == "tfplan"
    })?;
    let declared = crate::pattern::check::declared(&workdir).unwrap_or_default();
    let vars: serde_json::Map<String, serde_json::Value> = variables(bash)
        .into_iter()
        .filter(|(name, _)| declared.variables.contains(name))
        .collect();
    dir.write(
        &dir.var_file(),
        serde_json::to_string_pretty(&vars)?.as_bytes(),
        0o600,
    )?;
    let now = now_unix();
    let id = crate::ids::new_id();
    let tunnel = if source.join("wg.conf").is_file() {
        let interface = std::fs::read_to_string(source.join("wg_interface"))
            .ok()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| format!("tfi-{}", ShortId::of(&id)));
        let config = dir.tunnel_config(&interface);
        dir.create_dir(&dir.wg_dir())?;
        dir.write(&config, &std::fs::read(source.join("wg.conf"))?, 0o600)?;
        Some(NetworkRecord { interface, config })
    } else {
        None
    };

    let log_dir = dir.run_log_dir(now, "import");
    dir.create_dir(&log_dir)?;
    let pattern_name = bash
        .get("pattern_name")
        .cloned()
        .unwrap_or_else(|| "single-vm".into());
    let state = DeploymentState {
        schema_version: SCHEMA_VERSION,
        id: id.clone(),
        env: settings.env_name.clone(),
        app: AppRecord::of(app, None)?,
        pattern: PatternRecord {
            name: pattern_name.clone(),
            version: bash.get("pattern_version").cloned().unwrap_or_default(),
            // The HCL came with the deployment; the bash tool's folder is where it is from.
            dir: source.to_path_buf(),
        },
        status: Status::Running,
        created_at: now,
        updated_at: now,
        tofu,
        ssh: SshRecord {
            identity,
            known_hosts: dir.known_hosts(),
            port: 22,
            user: "root".into(),
            pinned: false,
        },
        journal: Phase::ALL
            .iter()
            .map(|&phase| PhaseRecord {
                phase,
                status: PhaseStatus::Done,
                started_at: now,
                finished_at: Some(now),
                duration_ms: Some(0),
                error: None,
                logs: Vec::new(),
            })
            .collect(),
        outputs: Some(PatternOutputs {
            primary_ip: primary_ip.clone(),
            primary_ip_type: ip_type,
            deployment_name: bash.get("deployment_name").cloned().unwrap_or_default(),
            node_ids,
            secondary_ips: Vec::new(),
            mycelium_ip: bash.get("mycelium_address").cloned(),
            wg_config: None,
            connection_info: None,
            ssh_known_hosts: None,
            private_ips: Vec::new(),
        }),
        network: tunnel,
        placement: Vec::new(),
        excluded_nodes: Vec::new(),
        runs: vec![RunRecord {
            id: crate::ids::new_id(),
            command: format!("import {}", source.display()),
            started_at: now,
            log_dir,
        }],
        ai_stack: None,
        grid_network: Some(network.to_string()),
        ip_range: None,
    };
    dir.save(&state)?;
    Ok(state)
}
