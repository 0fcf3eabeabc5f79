//! `sim terraform-config`, `sim status`, `sim reset`, `sim provider` and `contracts`.

use std::collections::BTreeSet;

use anyhow::Result;
use serde_json::json;

use crate::error::UserError;
use crate::output::{Printer, plural};
use crate::process::Runner;
use crate::settings::Settings;
use crate::sim::ledger::{SimDir, sim_dir};

fn sim(settings: &Settings) -> SimDir {
    sim_dir(&settings.data_dir)
}

/// `sim terraform-config`: the path of the CLI config for `TF_CLI_CONFIG_FILE`.
pub fn terraform_config(printer: &Printer, settings: &Settings, json: bool) -> Result<()> {
    let path = crate::sim::terraform_config(&sim(settings))?;
    if json {
        printer.json_line(
            &json!({"schema": 1, "terraform_config": path, "provider": "registry.terraform.io/threefoldtech/grid", "version": crate::sim::PROVIDER_VERSION}),
        );
    } else {
        printer.data(path.to_string_lossy());
    }
    Ok(())
}

/// `sim provider`: serves the provider to Terraform (the handshake line goes to stdout).
pub async fn provider(printer: &Printer, sim_dir: std::path::PathBuf) -> Result<()> {
    crate::sim::provider::serve(SimDir::new(sim_dir), |line| printer.data(line)).await
}

/// Contract ids that deployments on this machine hold, read from their Terraform state.
fn known_contracts(settings: &Settings) -> Result<BTreeSet<u64>> {
    let (entries, _) = crate::registry::Registry::new(settings.registry_dir()).list()?;
    let mut known = BTreeSet::new();
    for entry in entries {
        let dir = crate::state::StateDir::at(entry.state_dir.clone());
        known.extend(crate::sim::contracts_in_tfstate(&dir.tfstate()));
    }
    Ok(known)
}

/// `contracts`: a twin's active contracts from GridProxy (the simulator's own on `--network
/// sim`, where the signed-in twin is known); orphans are those no deployment here knows.
pub async fn contracts(
    printer: &Printer,
    settings: &Settings,
    twin: Option<u32>,
    json: bool,
) -> Result<()> {
    let on_sim = settings.network == crate::sim::NETWORK;
    let s = sim(settings);
    let twin_id = match twin {
        Some(t) => t,
        None if on_sim => {
            let loaded = crate::grid::mnemonic::load(settings)?.ok_or_else(|| {
                UserError::new(
                    "no mnemonic: the simulator finds the twin from it",
                    "run `tfgrid-compose signin`, or set TF_VAR_mnemonic, or pass --twin ID",
                )
            })?;
            s.read()?.known_twin(&loaded.phrase).unwrap_or(0)
        }
        None => {
            return Err(UserError::new(
                format!(
                    "listing contracts on `{}` needs your twin id",
                    settings.network
                ),
                "pass --twin ID (the ThreeFold dashboard shows it), or `--network sim` for the \
                    simulator; reading the twin from the chain is not supported yet",
            )
            .into());
        }
    };
    let (proxy, _sim) = crate::sim::gridproxy::client(
        &settings.network,
        &settings.data_dir,
        settings.gridproxy_url.as_deref(),
    )
    .await?;
    let listed = proxy.contracts(u64::from(twin_id)).await?;
    let rows = crate::sim::contract_rows(&listed, &known_contracts(settings)?);
    let orphans = rows.iter().filter(|r| r.orphan).count();
    let monthly = crate::ops::cost::monthly_by_contract(settings)
        .await
        .unwrap_or_else(|err| {
            printer.warn(format!("monthly costs not shown: {err:#}"));
            std::collections::BTreeMap::new()
        });
    if json {
        let mut rows = serde_json::to_value(&rows)?;
        for row in rows.as_array_mut().into_iter().flatten() {
            let id = row["contract_id"].as_u64().unwrap_or(0);
            row["usd_per_month"] = json!(monthly.get(&id));
        }
        printer.json_line(&json!({"schema": 1, "network": settings.network, "twin_id": twin_id, "contracts": rows, "orphans": orphans}));
        return Ok(());
    }
    if rows.is_empty() {
        if twin_id == 0 {
            printer.status(
                "Contracts",
                "none: this mnemonic has no twin on the simulator yet (its \
                first deployment makes one)",
            );
        } else {
            printer.status(
                "Contracts",
                format!("none active for twin {twin_id} on {}", settings.network),
            );
        }
        return Ok(());
    }
    printer.data(format!(
        "{:<10} {:<6} {:<6} {:<14} {:<36} {:<9} ORPHAN",
        "CONTRACT", "KIND", "NODE", "TYPE", "NAME", "MONTH"
    ));
    for r in &rows {
        printer.data(format!(
            "{:<10} {:<6} {:<6} {:<14} {:<36} {:<9} {}",
            r.contract_id,
            r.kind,
            r.node_id,
            r.workload,
            r.name,
            monthly
                .get(&r.contract_id)
                .map_or_else(|| "-".into(), |usd| crate::cost::usd(*usd)),
            if r.orphan { "yes" } else { "" }
        ));
    }
    printer.status(
        "Contracts",
        format!("{} active, {orphans} orphaned, twin {twin_id}", rows.len()),
    );
    Ok(())
}

/// `sim status`: nodes with their use, networks, VMs and contracts.
pub fn status(printer: &Printer, settings: &Settings, json: bool) -> Result<()> {
    let s = sim(settings);
    let ledger = s.read()?;
    let active: Vec<_> = ledger
        .contracts
        .values()
        .filter(|c| c.state == "Created")
        .collect();
    let vms: usize = active.iter().map(|c| c.vms.len()).sum();
    if json {
        printer.json_line(&json!({
            "schema": 1,
            "dir": s.root,
            "nodes": ledger.nodes,
            "farms": ledger.farms,
            "networks": ledger.networks.values().map(|n| json!({"name": n.name, "twin_id": n.twin_id, "ip_range": n.ip_range, "nodes": n.nodes.keys().collect::<Vec<_>>(), "access_endpoint": format!("198.18.{}.2:{}", n.slot, n.access_port)})).collect::<Vec<_>>(),
            "active_contracts": active.len(),
            "vms": vms,
        }));
        return Ok(());
    }
    printer.data(format!("simulator   {}", s.root.display()));
    printer.data(format!(
        "{:<6} {:<5} {:<6} {:>9} {:>13} {:>13}  {}",
        "NODE", "FARM", "KIND", "CPU USED", "MEMORY GiB", "SSD GiB", "DOMAIN"
    ));
    for n in &ledger.nodes {
        printer.data(format!(
            "{:<6} {:<5} {:<6} {:>9} {:>13} {:>13}  {}",
            n.node_id,
            n.farm_id,
            if n.light { "light" } else { "full" },
            format!("{}/{}", n.used.cru, n.total.cru),
            format!("{}/{}", n.used.mru >> 30, n.total.mru >> 30),
            format!("{}/{}", n.used.sru >> 30, n.total.sru >> 30),
            n.domain.as_deref().unwrap_or("")
        ));
    }
    for n in ledger.networks.values() {
        printer.data(format!(
            "network     {} (twin {}) {} on nodes {:?}",
            n.name,
            n.twin_id,
            n.ip_range,
            n.nodes.keys().collect::<Vec<_>>()
        ));
    }
    printer.status(
        "Simulator",
        format!(
            "{} active contract{}, {vms} VM{}, {} network{}",
            active.len(),
            plural(active.len()),
            plural(vms),
            ledger.networks.len(),
            plural(ledger.networks.len())
        ),
    );
    Ok(())
}

/// `sim reset`: every contract cancelled, every VM and access point removed.
pub async fn reset(printer: &Printer, settings: &Settings, json: bool) -> Result<()> {
    let report = crate::sim::reset(&sim(settings), &Runner::real()).await?;
    if json {
        printer.json_line(&json!({"schema": 1, "contracts_cancelled": report.contracts_cancelled, "vms_removed": report.vms_removed, "networks_removed": report.networks_removed}));
    } else {
        printer.status(
            "Reset",
            format!(
                "the simulated grid: {} contract{} cancelled, {} VM{} and {} network{} removed",
                report.contracts_cancelled,
                plural(report.contracts_cancelled),
                report.vms_removed,
                plural(report.vms_removed),
                report.networks_removed,
                plural(report.networks_removed)
            ),
        );
    }
    Ok(())
}

/// `sim rent NODE [--cancel]`: a rent contract of the signed-in twin on a node (made on first
/// use, as signing up on the chain would), or its end.
///
/// Errors: no mnemonic; TFChain's refusals (`NodeNotExists`, `NodeHasRentContract`,
/// `NodeHasActiveContracts`), as one-line errors with a hint.
pub fn rent(
    printer: &Printer,
    settings: &Settings,
    node: u32,
    cancel: bool,
    json: bool,
) -> Result<()> {
    let loaded = crate::grid::mnemonic::load(settings)?.ok_or_else(|| {
        UserError::new(
            "no mnemonic: a rent contract is signed by your twin",
            "run `tfgrid-compose signin`, or set TF_VAR_mnemonic",
        )
    })?;
    let s = sim(settings);
    let (twin_id, contract) = s
        .with_ledger(|l| {
            let twin = l.twin_of(&loaded.phrase);
            let contract = if cancel {
                l.end_rent(twin, node)
            } else {
                l.rent(twin, node)
            }?;
            Ok((twin, contract))
        })
        .map_err(|e| {
            UserError::new(
                format!("node {node} on the simulated grid: {e:#}"),
                "`tfgrid-compose nodes --gpu --network sim` shows who rents what; a rent ends \
                    only once no deployment is on the node",
            )
        })?;
    if json {
        printer.json_line(&json!({"schema": 1, "node_id": node, "twin_id": twin_id, "rent_contract": contract, "rented": !cancel}));
    } else {
        printer.status(
            if cancel { "Ended" } else { "Rented" },
            format!("node {node} for twin {twin_id} (rent contract {contract})"),
        );
    }
    Ok(())
}
