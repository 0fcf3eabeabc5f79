//! Infrastructure: the pattern's `infrastructure/` copied into `.tfgrid-compose/terraform/`,
//! variables written to a tfvars file (secrets only as `TF_VAR_*` in the child's environment),
//! `init`, `plan`, `apply`, `output -json`, and the outputs checked against the contract.
//! Terraform state is never deleted or overwritten here, whatever fails.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context as _, Result};

use crate::grid::placement::{self, How};
use crate::pattern::compat::{self, Format};
use crate::pattern::contract::PatternOutputs;
use crate::phase::Context;
use crate::settings::NodeSelection;
use crate::tools::{ssh, tofu::Tofu};

/// The tofu builder for this deployment (also used by `down`). The mnemonic goes to the child
/// in each of [`crate::grid::mnemonic::CHILD_ENV_VARS`].
/// `sim_config`: the grid simulator's Terraform CLI config (`--network sim`).
pub fn tofu(
    state_dir: &crate::state::StateDir,
    program: &str,
    mnemonic: Option<&str>,
    timeout: std::time::Duration,
    sim_config: Option<&Path>,
) -> Tofu {
    let workdir = state_dir.terraform_dir();
    let secrets = mnemonic
        .map(|m| {
            crate::grid::mnemonic::CHILD_ENV_VARS
                .iter()
                .map(|k| (k.to_string(), m.to_string()))
                .collect()
        })
        .unwrap_or_default();
    Tofu {
        program: program.to_string(),
        var_file: state_dir.var_file(),
        workdir,
        secrets,
        env: sim_config
            .map(|c| {
                vec![(
                    "TF_CLI_CONFIG_FILE".to_string(),
                    c.to_string_lossy().into_owned(),
                )]
            })
            .unwrap_or_default(),
        timeout,
    }
}

/// The simulator's Terraform CLI config when the deployment is on `--network sim`. Its
/// provider package names the binary that serves it, so a lock file recorded by another binary
/// (an upgrade, a debug build) would fail `init` with a checksum mismatch: it is removed here,
/// in `workdir`, before each `init` (the simulator has no releases to pin).
pub fn sim_config(
    settings: &crate::settings::Settings,
    grid_network: Option<&str>,
    dry_run: bool,
    workdir: &Path,
) -> Result<Option<std::path::PathBuf>> {
    if grid_network != Some(crate::sim::NETWORK) {
        return Ok(None);
    }
    let sim = crate::sim::ledger::sim_dir(&settings.data_dir);
    if dry_run {
        return Ok(Some(sim.root.join("terraform").join("terraform.rc")));
    }
    match std::fs::remove_file(workdir.join(".terraform.lock.hcl")) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).context("removing the simulator deployment's Terraform lock file");
        }
        _ => {}
    }
    crate::sim::terraform_config(&sim).map(Some)
}

pub async fn run(ctx: &mut Context) -> Result<()> {
    let log = ctx.log("infrastructure");
    ensure_ssh_key(ctx, &log).await?;
    let workdir = ctx.dir.terraform_dir();
    ctx.dir.create_dir(&workdir)?;
    if !ctx.dir.dry_run {
        // Module files are overwritten; what Terraform wrote (state, `.terraform/`, plan) stays.
        crate::files::copy_tree(&ctx.pattern.dir.join("infrastructure"), &workdir, &|name| {
            name.starts_with(".terraform")
                || name.starts_with("terraform.tfstate")
                || name == "tfplan"
        })?;
    }
    let public_file = crate::ssh_key::public_key_file(&ctx.state.ssh.identity);
    let public_key = if ctx.runner.is_dry_run() && !public_file.exists() {
        "<generated ssh public key>".to_string()
    } else {
        let path = public_file;
        std::fs::read_to_string(&path)
            .with_context(|| format!("failed to read ssh public key `{}`", path.display()))?
            .trim()
            .to_string()
    };
    let sim = sim_config(
        &ctx.settings,
        ctx.state.grid_network.as_deref(),
        ctx.runner.is_dry_run(),
        &workdir,
    )?;
    let tofu = tofu(
        &ctx.dir,
        &ctx.state.tofu,
        ctx.mnemonic.as_deref(),
        ctx.settings.tofu_timeout,
        sim.as_deref(),
    );
    let _spinner = ctx.printer.spinner("infrastructure", Some(&log));
    ctx.printer.status(
        "Provisioning",
        format!(
            "infrastructure with `{}` (init, plan, apply)",
            ctx.state.tofu
        ),
    );
    choose_ip_range(ctx)?;
    let mut attempt = 1;
    loop {
        place(ctx, attempt).await?;
        write_variables(ctx, &public_key)?;
        if attempt == 1 {
            ctx.runner
                .run(&tofu.init(&log))
                .await
                .context("terraform init failed")?;
        }
        ctx.runner
            .run(&tofu.plan("tfplan", &log))
            .await
            .map_err(|e| crate::grid::errors::explained(e, "terraform plan failed"))?;
        let Err(err) = ctx.runner.run(&tofu.apply("tfplan", &log)).await else {
            // a node that failed this deployment before may serve it another time
            ctx.state.excluded_nodes.clear();
            break;
        };
        // A twin without funds, a taken name, a value every node refuses: no node can fix it.
        if let Some(known) =
            crate::grid::errors::classify(&format!("{err:#}")).filter(|k| !k.cause.node_can_fix())
        {
            let message = format!(
                "terraform apply failed: {}; no other node can fix that, so none was tried; its \
                    state is kept",
                known.meaning
            );
            return Err(crate::grid::errors::recognised(err, known, message));
        }
        let selected: Vec<u64> = ctx
            .state
            .placement
            .iter()
            .filter(|c| c.how == How::Selected)
            .map(|c| c.node)
            .collect();
        // An apply stopped by Ctrl-C says nothing about the node.
        if selected.is_empty() || attempt >= MAX_ATTEMPTS || crate::interrupt::received().is_some()
        {
            return Err(crate::grid::errors::explained(
                err,
                "terraform apply failed; its state is kept",
            ));
        }
        let nodes = selected
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        ctx.printer.warn(format!(
            "terraform apply failed on node {nodes} ({err:#}); trying other \
            nodes (attempt {}/{MAX_ATTEMPTS})",
            attempt + 1
        ));
        ctx.state.excluded_nodes.extend(selected);
        ctx.state.placement.clear();
        ctx.save()?;
        attempt += 1;
    }
    let out = ctx
        .runner
        .run(&tofu.output_json(&log, &PatternOutputs::placeholder_json()))
        .await
        .context("terraform output failed")?;
    let json = if ctx.pattern.manifest.format == Format::Bash {
        compat::strip_prefixes(&out.stdout)
    } else {
        out.stdout.clone()
    };
    let outputs = PatternOutputs::from_output_json(&ctx.pattern.manifest.name, &json)?;

    if let Some(config) = &outputs.wg_config {
        ctx.dir.create_dir(&ctx.dir.wg_dir())?;
        ctx.dir
            .write(&ctx.dir.tunnel_source(), config.as_bytes(), 0o600)?;
    }
    if let Some(known) = &outputs.ssh_known_hosts {
        ctx.dir
            .write(&ctx.dir.known_hosts(), known.as_bytes(), 0o600)?;
        ctx.state.ssh.pinned = true;
    }
    let count = outputs.vms().len();
    ctx.printer.status(
        "Provisioned",
        format!(
            "{count} VM{} on node{} {}",
            if count == 1 { "" } else { "s" },
            if outputs.node_ids.len() == 1 { "" } else { "s" },
            outputs
                .node_ids
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    ctx.state.outputs = Some(outputs);
    Ok(())
}

/// Apply attempts when tfgrid-compose chose the nodes: a failed node is excluded and another
/// picked, at most this many times in all; not when the error's cause is one no node can fix
/// (docs/grid-errors.md).
pub const MAX_ATTEMPTS: u32 = 3;

/// Decides the node of each placement, once per deployment (a resume keeps the recorded nodes
/// unless `--node` is given), and records it in state.yaml before anything is applied.
async fn place(ctx: &mut Context, attempt: u32) -> Result<()> {
    if ctx.pattern.manifest.placement.is_empty()
        || (!ctx.state.placement.is_empty() && ctx.node_flag.is_none())
    {
        return Ok(());
    }
    let excluded: BTreeSet<u64> = ctx.state.excluded_nodes.iter().copied().collect();
    let inputs = placement::Inputs {
        pattern: &ctx.pattern,
        variables: &ctx.variables,
        node_flag: ctx.node_flag,
        manifest_nodes: ctx.app.manifest.nodes.as_ref(),
        filter: &ctx.node_filter,
        use_gridproxy: ctx.settings.node_selection == NodeSelection::Gridproxy,
        excluded: &excluded,
        seed: format!("{}-{attempt}", ctx.state.id),
    };
    let network = ctx
        .variables
        .get("tfgrid_network")
        .and_then(|v| v.as_str())
        .unwrap_or(&ctx.settings.network)
        .to_string();
    // on the simulator, its own GridProxy answers from 127.0.0.1 for as long as placement runs
    let (proxy, sim_proxy) = crate::sim::gridproxy::client(
        &network,
        &ctx.settings.data_dir,
        ctx.settings.gridproxy_url.as_deref(),
    )
    .await?;
    let choices = placement::place(&inputs, || Ok(proxy.clone())).await?;
    drop(sim_proxy);
    for choice in &choices {
        let how = match choice.how {
            How::Pinned => format!("node {} (pinned)", choice.node),
            How::Selected => format!("node {} (selected on {network})", choice.node),
            How::Scheduler => "the provider's scheduler".to_string(),
        };
        ctx.printer
            .status("Placing", format!("{} on {how}", choice.role));
    }
    ctx.state.placement = choices;
    ctx.save()
}

/// For a pattern with an `ip_range` variable the app does not set: a 10.B.0.0/16 that no route
/// of this machine and no other deployment recorded here uses, so that two grid deployments'
/// WireGuard tunnels can be up at once. Chosen once, recorded in state.yaml before apply.
fn choose_ip_range(ctx: &mut Context) -> Result<()> {
    if !ctx.pattern.manifest.variables.contains_key("ip_range")
        || ctx.variables.contains_key("ip_range")
        || ctx.state.ip_range.is_some()
    {
        return Ok(());
    }
    let mut taken: BTreeSet<u8> = routed_second_octets();
    let (entries, _) = crate::registry::Registry::new(ctx.settings.registry_dir()).list()?;
    for entry in entries.iter().filter(|e| e.id != ctx.state.id) {
        let other = crate::state::StateDir::at(entry.state_dir.clone())
            .load()
            .ok()
            .flatten();
        if let Some(range) = other.and_then(|s| s.ip_range) {
            taken.extend(range.split('.').nth(1).and_then(|b| b.parse::<u8>().ok()));
        }
    }
    // a start that differs per deployment, then the first free one (10.100-149 and 10.200-249
    // belong to the local pattern)
    let start = ctx
        .state
        .id
        .get(..2)
        .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        .unwrap_or(0)
        % 80;
    let free = (0..80u8)
        .map(|i| 20 + (start + i) % 80)
        .find(|b| !taken.contains(b));
    let Some(b) = free else {
        anyhow::bail!(crate::error::UserError::new(
            "no free 10.B.0.0/16 for the grid network on this machine (10.20-99 are all routed)",
            "set `config.ip_range` in the manifest, or take other deployments down"
        ));
    };
    ctx.state.ip_range = Some(format!("10.{b}.0.0/16"));
    ctx.save()
}

/// Second octets B of every 10.B.x.x destination in this machine's main routing table.
fn routed_second_octets() -> BTreeSet<u8> {
    crate::host::ipv4_routes()
        .into_iter()
        .map(|(dest, _)| dest.octets())
        .filter(|o| o[0] == 10)
        .map(|o| o[1])
        .collect()
}

/// The tfvars file: the manifest's values, the built-ins, the bash tool's variables
/// ([`compat::run_values`]) and the chosen nodes; only those the module declares (Terraform warns
/// about, and with `-var` refuses, undeclared ones). The mnemonic is never among them.
fn write_variables(ctx: &Context, public_key: &str) -> Result<()> {
    let mut variables = ctx.variables.clone();
    for (name, value) in compat::run_values(&ctx.pattern, &ctx.state.id, public_key) {
        variables.entry(name).or_insert(value);
    }
    // Environments of one app get distinct names on the grid: `blog`, `blog-staging`.
    let name = if ctx.state.env == "default" {
        ctx.app.manifest.name.clone()
    } else {
        format!("{}-{}", ctx.app.manifest.name, ctx.state.env)
    };
    variables.insert("deployment_name".into(), name.into());
    variables.insert("deployment_id".into(), ctx.state.id.clone().into());
    variables.insert("ssh_public_key".into(), public_key.into());
    // the provider takes main, test, qa or dev; the simulator answers to any of them
    if variables.get("tfgrid_network").and_then(|v| v.as_str()) == Some(crate::sim::NETWORK) {
        variables.insert("tfgrid_network".into(), "dev".into());
    }
    if let Some(range) = &ctx.state.ip_range {
        variables
            .entry("ip_range".to_string())
            .or_insert_with(|| range.clone().into());
    }
    for choice in ctx
        .state
        .placement
        .iter()
        .filter(|c| c.how != How::Scheduler)
    {
        variables.insert(choice.variable.clone(), choice.node.into());
    }
    if !ctx.state.excluded_nodes.is_empty()
        && ctx.pattern.manifest.variables.contains_key("exclude_nodes")
    {
        let mut list: Vec<serde_json::Value> = variables
            .get("exclude_nodes")
            .and_then(|v| v.as_array())
            .cloned()
            .unwrap_or_default();
        list.extend(
            ctx.state
                .excluded_nodes
                .iter()
                .map(|n| serde_json::Value::from(*n)),
        );
        variables.insert("exclude_nodes".into(), list.into());
    }
    // An unreadable module is left to terraform to report; then nothing is dropped.
    if let Ok(declared) = crate::pattern::check::declared(&ctx.pattern.dir.join("infrastructure")) {
        for name in ctx.app.manifest.config.keys() {
            if variables.contains_key(name) && !declared.variables.contains(name) {
                ctx.printer.warn(format!(
                    "config.{name}: pattern `{}` lists the variable, but its infrastructure does \
                        not declare it; not passed",
                    ctx.pattern.manifest.name
                ));
            }
        }
        variables.retain(|name, _| declared.variables.contains(name));
    }
    variables.remove("mnemonic");
    let json = serde_json::to_string_pretty(&variables)?;
    ctx.dir.write(&ctx.dir.var_file(), json.as_bytes(), 0o600)
}

/// The deployment's own ssh key, made once, unless `TFGRID_COMPOSE_SSH_KEY` names one.
async fn ensure_ssh_key(ctx: &mut Context, log: &Path) -> Result<()> {
    if ctx.settings.ssh_key.is_some() || ctx.state.ssh.identity.exists() {
        return Ok(());
    }
    ctx.dir.create_dir(&ctx.dir.ssh_dir())?;
    let comment = format!("tfgrid-compose-{}", ctx.state.id);
    ctx.runner
        .run(&ssh::keygen(&ctx.state.ssh.identity, &comment, log))
        .await
        .context("failed to create the deployment's ssh key")?;
    Ok(())
}
