//! The grid simulator (`--network sim`): a ThreeFold Grid made of namespaces on this machine.
//!
//! - [`provider`]: the `threefoldtech/grid` Terraform provider, served by this binary;
//! - [`ledger`]: nodes, farms, twins, contracts, networks, VMs and gateway names;
//! - [`gridproxy`]: the GridProxy endpoints node selection uses, over the simulated nodes;
//! - [`billing`]: the chain's pricing, TFT price and balances, and the hourly bill of contracts;
//! - `sim.sh`: the data plane (access points, node bridges, VMs), extracted beside the ledger
//!   with `vm.sh`, the local pattern's VM builder, which boots each VM (systemd as PID 1).
//!
//! Its state lives in `<data dir>/sim/` and survives between commands.

pub mod billing;
pub mod gridproxy;
pub mod ledger;
pub mod provider;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::Serialize;

use crate::files::write_if_changed;
use crate::process::{Cmd, Io, Runner};
use ledger::SimDir;

/// The version the simulated provider reports. It serves the schema of the provider's
/// development head (b7d1a8c), which the grid patterns' constraint `>= 1.11.0, < 2.0.0` admits.
pub const PROVIDER_VERSION: &str = "1.12.0";

/// The network name of the simulator (`--network sim`); Terraform's provider is given `dev`,
/// one of the four values the real provider accepts.
pub use crate::grid::proxy::SIM_NETWORK as NETWORK;

/// Where the mirror serves the simulator, with the version: the registry's address, and the one
/// the provider's own integration tests name (`threefoldtechdev.com/providers/grid` `0.2`, which
/// its `make install` builds locally; `integrationtests/*/main.tf` at b7d1a8c).
const PROVIDER_SOURCES: [(&str, &str); 2] = [
    ("registry.terraform.io/threefoldtech/grid", PROVIDER_VERSION),
    ("threefoldtechdev.com/providers/grid", "0.2.0"),
];

const SCRIPT: &str = include_str!("sim.sh");
/// The one VM builder (the local pattern's), which `sim.sh` calls for the VMs themselves.
const VM_SCRIPT: &str = include_str!("../../patterns/local/infrastructure/vm.sh");

/// Writes the data-plane scripts (`sim.sh` and the `vm.sh` it calls), the provider mirror and the Terraform CLI config for the
/// simulator under `sim`; returns the CLI config's path (for `TF_CLI_CONFIG_FILE`).
///
/// The mirror holds `<source>/<version>/linux_amd64/terraform-provider-grid_v<version>` for each
/// of `PROVIDER_SOURCES`, a script that runs this binary's hidden `sim provider` command, so
/// `terraform init` checks the version constraint as the registry would and installs nothing
/// from the network.
///
/// Errors: the data dir is not writable; this binary's path is not known.
pub fn terraform_config(sim: &SimDir) -> Result<PathBuf> {
    crate::files::create_private_dir(&sim.root)?;
    write_if_changed(&sim.script(), SCRIPT.as_bytes(), 0o700)?;
    write_if_changed(
        &sim.script().with_file_name("vm.sh"),
        VM_SCRIPT.as_bytes(),
        0o700,
    )?;
    let exe =
        std::env::current_exe().context("finding this binary's path for the provider mirror")?;
    let mirror = sim.root.join("terraform").join("mirror");
    let plugin = format!(
        "#!/bin/sh\n# The grid simulator's provider (tfgrid-compose sim terraform-config).\nexec \
            {} sim provider --sim-dir {}\n",
        crate::tools::ssh::shell_quote(&exe.to_string_lossy()),
        crate::tools::ssh::shell_quote(&sim.root.to_string_lossy())
    );
    for (source, version) in PROVIDER_SOURCES {
        let dir = mirror.join(source).join(version).join("linux_amd64");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        write_if_changed(
            &dir.join(format!("terraform-provider-grid_v{version}")),
            plugin.as_bytes(),
            0o755,
        )?;
    }
    let config = sim.root.join("terraform").join("terraform.rc");
    let include = PROVIDER_SOURCES
        .iter()
        .map(|(source, _)| format!("{source:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let text = format!(
        "# Installs the grid simulator as registry.terraform.io/threefoldtech/grid \
            {PROVIDER_VERSION}.\nprovider_installation {{\n  filesystem_mirror {{\n    path    = \
            {mirror:?}\n    include = [{include}]\n  }}\n  direct {{\n    exclude = \
            [{include}]\n  }}\n}}\n",
        mirror = mirror.to_string_lossy()
    );
    write_if_changed(&config, text.as_bytes(), 0o644)?;
    Ok(config)
}

/// One contract as `contracts` shows it.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct ContractRow {
    pub contract_id: u64,
    pub twin_id: u64,
    /// `node`, `name` or `rent`.
    pub kind: String,
    /// 0 for a name contract.
    pub node_id: u64,
    pub state: String,
    /// The workload's name from the contract metadata, or the name contract's name.
    pub name: String,
    /// `vm`, `network`, `Gateway Name`, … (the metadata's type), or `name`/`rent`.
    pub workload: String,
    pub created_at: u64,
    /// True when no deployment on this machine knows this contract.
    pub orphan: bool,
}

/// Contracts as GridProxy lists them, marked against `known` contract ids.
pub fn contract_rows(
    contracts: &[crate::grid::proxy::Contract],
    known: &BTreeSet<u64>,
) -> Vec<ContractRow> {
    contracts
        .iter()
        .map(|c| ContractRow {
            contract_id: c.contract_id,
            twin_id: c.twin_id,
            kind: c.kind.clone(),
            node_id: c.node_id(),
            state: c.state.clone(),
            name: c.name(),
            workload: c.workload(),
            created_at: c.created_at,
            orphan: !known.contains(&c.contract_id),
        })
        .collect()
}

/// Contract ids a Terraform state file (`terraform.tfstate`) holds: deployments' and proxies'
/// `id`, networks' `node_deployment_id`, name proxies' `name_contract_id`.
pub fn contracts_in_tfstate(path: &Path) -> BTreeSet<u64> {
    let mut ids = BTreeSet::new();
    let Ok(text) = std::fs::read_to_string(path) else {
        return ids;
    };
    let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
        return ids;
    };
    for resource in json["resources"].as_array().into_iter().flatten() {
        let kind = resource["type"].as_str().unwrap_or_default();
        for instance in resource["instances"].as_array().into_iter().flatten() {
            let a = &instance["attributes"];
            match kind {
                "grid_deployment" | "grid_name_proxy" | "grid_fqdn_proxy" => {
                    ids.extend(a["id"].as_str().and_then(|s| s.parse::<u64>().ok()));
                    ids.extend(a["name_contract_id"].as_u64().filter(|n| *n > 0));
                    ids.extend(
                        a["node_deployment_id"]
                            .as_object()
                            .into_iter()
                            .flatten()
                            .filter_map(|(_, v)| v.as_u64()),
                    );
                }
                "grid_network" | "grid_kubernetes" => {
                    ids.extend(
                        a["node_deployment_id"]
                            .as_object()
                            .into_iter()
                            .flatten()
                            .filter_map(|(_, v)| v.as_u64()),
                    );
                }
                _ => {}
            }
        }
    }
    ids
}

/// What `sim reset` did.
#[derive(Serialize, Debug, Default)]
pub struct ResetReport {
    pub contracts_cancelled: usize,
    pub vms_removed: usize,
    pub networks_removed: usize,
}

/// Cancels every contract, stops every VM and access point, and starts a new grid.
///
/// Errors: the data plane could not remove something (the ledger is then kept, so that a second
/// `sim reset` tries again).
pub async fn reset(sim: &SimDir, runner: &Runner) -> Result<ResetReport> {
    if !sim.ledger().exists() {
        return Ok(ResetReport::default());
    }
    terraform_config(sim)?;
    let ledger = sim.read()?;
    let mut report = ResetReport::default();
    let log = sim.root.join("logs");
    crate::files::create_private_dir(&log)?;
    let script = sim.script().to_string_lossy().into_owned();
    for c in ledger.contracts.values().filter(|c| c.state == "Created") {
        report.contracts_cancelled += 1;
        for dir in &c.vms {
            runner
                .run(
                    &Cmd::new(&script)
                        .args(["vm-down", dir])
                        .io(Io::Log(log.join("reset.log"))),
                )
                .await?;
            report.vms_removed += 1;
        }
    }
    for node in ledger.nodes.iter().filter(|n| n.domain.is_some()) {
        let dir = sim.root.join(format!("gw-{}", node.node_id));
        if dir.exists() {
            let conf = dir.join("nginx.conf").to_string_lossy().into_owned();
            runner
                .run(
                    &Cmd::new(&script)
                        .args([
                            "gw-down".to_string(),
                            node.node_id.to_string(),
                            provider::resources::gateway_ip(node.node_id),
                            conf,
                        ])
                        .io(Io::Log(log.join("reset.log"))),
                )
                .await?;
            std::fs::remove_dir_all(&dir).ok();
        }
    }
    for net in ledger.networks.values() {
        let b = net.ip_range.split('.').nth(1).unwrap_or("0").to_string();
        runner
            .run(
                &Cmd::new(&script)
                    .args(["net-down".to_string(), net.slot.to_string(), b])
                    .io(Io::Log(log.join("reset.log"))),
            )
            .await?;
        report.networks_removed += 1;
    }
    std::fs::remove_file(sim.ledger())
        .with_context(|| format!("removing {}", sim.ledger().display()))?;
    sim.forget_billing();
    for entry in std::fs::read_dir(&sim.root)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("net-") && name.ends_with(".conf") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    let _ = std::fs::remove_dir(sim.vms());
    Ok(report)
}
