//! What each simulated resource does at plan and apply, after the real provider and the grid
//! (facts from the provider's source at b7d1a8c, its SDK and zos; see docs/simulator.md):
//!
//! - `grid_scheduler`: sticky by request name; full-zos nodes when yggdrasil, wireguard,
//!   public_config or public_ips_count is set, else zos-light nodes only; capacity in MB.
//! - `grid_network`: one node contract per node; per-node /24s from `ip_range` (the user's access
//!   range first when `add_wg_access`); a public node as the grid client picks it, on a contract
//!   of its own when none of `nodes` has a public IPv4; `access_wg_config` in the grid's exact
//!   layout.
//! - `grid_deployment`: one node contract; VMs as namespaces on this machine with `ip` from .2
//!   upward per (network, node), `computedip` from the farm's pool (with its prefix),
//!   `planetary_ip` and `mycelium_ip` as zos makes them, `console_url`; the node's capacity is
//!   checked and used; GPUs only on a node the twin rents.
//! - `grid_name_proxy` / `grid_fqdn_proxy`: a node contract, on a node with a domain after a
//!   name contract for a name proxy (names are global), on a node with a public IPv4 for an fqdn
//!   proxy; one backend in the grid's formats.
//! - zdbs, qsfs and `grid_kubernetes` fail at plan: not simulated.
//!
//! One file per resource: [`scheduler`], [`network`], [`deployment`], [`gateway`] (the name and
//! fqdn proxies and `data grid_gateway_domain`); this file dispatches plan and apply to them and
//! holds what they share (WireGuard keys, the data-plane script).

mod deployment;
mod gateway;
mod network;
mod scheduler;

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use anyhow::{Context as _, Result, bail, ensure};
use base64::Engine as _;

use super::value::Val;
use crate::process::{Cmd, Io, Runner};
use crate::sim::ledger::SimDir;

use deployment::{deployment_create, deployment_destroy, deployment_update};
pub use gateway::{gateway_ip, read_data_source};
use gateway::{proxy_create, proxy_destroy};
pub use network::access_wg_config;
use network::{network_create, network_destroy, network_update};
use scheduler::scheduler;

/// What an apply needs: the simulator and the twin the provider signed in as.
pub struct Ctx<'a> {
    pub sim: &'a SimDir,
    pub twin_id: u32,
    pub mnemonic: &'a str,
}

/// Fails for what the simulator does not model, at plan, never silently.
pub fn simulated(type_name: &str, proposed: &Val) -> Result<()> {
    match type_name {
        "grid_kubernetes" => bail!(
            "grid_kubernetes is not simulated: use grid_deployment VMs (the k3s pattern does)"
        ),
        "grid_deployment" => {
            for block in ["zdbs", "qsfs"] {
                ensure!(
                    proposed.get(block).list().is_empty(),
                    "grid_deployment.{block} is not simulated"
                );
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Plan adjustments beyond "computed and null → unknown": what an update will recompute.
pub fn plan(type_name: &str, prior: &Val, planned: &mut Val) {
    if prior.is_null() {
        return;
    }
    match type_name {
        "grid_deployment" if prior.get("node") != planned.get("node") => {
            // a new node: a new contract, new addresses
            planned.set("id", Val::Unknown);
            if let Val::Map(map) = planned
                && let Some(Val::List(vms)) = map.get_mut("vms")
            {
                for vm in vms {
                    for k in [
                        "ip",
                        "computedip",
                        "computedip6",
                        "mycelium_ip",
                        "planetary_ip",
                        "console_url",
                    ] {
                        vm.set(k, Val::Unknown);
                    }
                }
            }
        }
        "grid_network"
            if prior.get("nodes") != planned.get("nodes")
                || prior.get("add_wg_access") != planned.get("add_wg_access") =>
        {
            for k in [
                "nodes_ip_range",
                "node_deployment_id",
                "access_wg_config",
                "external_ip",
                "public_node_id",
            ] {
                planned.set(k, Val::Unknown);
            }
        }
        "grid_scheduler" => {
            let known: BTreeSet<String> = prior
                .get("nodes")
                .map()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            if planned
                .get("requests")
                .list()
                .iter()
                .any(|r| !known.contains(&r.str_or_empty("name")))
            {
                planned.set("nodes", Val::Unknown);
            }
        }
        "grid_name_proxy"
            if prior.get("name") != planned.get("name")
                || prior.get("node") != planned.get("node") =>
        {
            for k in ["fqdn", "name_contract_id", "node_deployment_id", "id"] {
                planned.set(k, Val::Unknown);
            }
        }
        _ => {}
    }
}

/// Create (prior null), update, or destroy (planned null) one resource; returns the new state.
/// Errors carry the provider's wrapping ([`provider_wrapping`]).
pub async fn apply(ctx: &Ctx<'_>, type_name: &str, prior: &Val, planned: &Val) -> Result<Val> {
    match apply_unwrapped(ctx, type_name, prior, planned).await {
        Err(e) if e.is::<LoadError>() => Err(e.context(load_wrapping(type_name))),
        result => match provider_wrapping(type_name, prior.is_null(), planned.is_null()) {
            Some(wrapping) => result.context(wrapping),
            None => result,
        },
    }
}

/// A problem the provider finds while it reads a resource's configuration, before the grid
/// client has it (`newDeploymentFromSchema`, internal/provider/deployment.go:18-136;
/// `newNameGatewayFromSchema`, gateway_name.go:16-66; `newFQDNGatewayFromSchema`,
/// gateway_fqdn.go:16-66): wrapped as [`load_wrapping`] says instead of the operation's wrapping.
#[derive(Debug)]
pub struct LoadError(pub String);

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LoadError {}

/// The text the provider puts before a [`LoadError`] of a resource (`diag.Errorf("<text>: %v",
/// err)` at b7d1a8c).
fn load_wrapping(type_name: &str) -> &'static str {
    match type_name {
        "grid_name_proxy" => "couldn't load name gateway data with error", // resource_gateway_name.go:94-97
        "grid_fqdn_proxy" => "couldn't load fqdn gateway data with error", // resource_gateway_fqdn.go:92-95
        _ => "couldn't load deployment data with error", // resource_deployment.go:487-490, 554-557, 581-584
    }
}

/// The text the provider puts before an apply error of a resource (`diag.Errorf("<text>: %v",
/// err)` in `internal/provider/resource_*.go` at b7d1a8c), by resource and operation; `None`
/// where it passes the error on as it is (`grid_network`: `diag.FromErr`,
/// resource_network.go:368-402; `grid_scheduler`).
pub fn provider_wrapping(type_name: &str, create: bool, destroy: bool) -> Option<&'static str> {
    Some(match (type_name, create, destroy) {
        ("grid_deployment", true, _) => "couldn't deploy deployment with error", // resource_deployment.go:493
        ("grid_deployment", false, false) => "couldn't update deployment with error", // resource_deployment.go:560
        ("grid_deployment", false, true) => "couldn't cancel deployment with error", // resource_deployment.go:587
        ("grid_fqdn_proxy", true, _) => "couldn't deploy fqdn gateway with error", // resource_gateway_fqdn.go:98
        // the provider says "update" when a cancel fails too (resource_gateway_fqdn.go:180)
        ("grid_fqdn_proxy", false, _) => "couldn't update fqdn gateway with error", // resource_gateway_fqdn.go:125
        ("grid_name_proxy", true, _) => "couldn't deploy name gateway with error", // resource_gateway_name.go:100
        ("grid_name_proxy", false, false) => "couldn't update name gateway with error", // resource_gateway_name.go:127
        ("grid_name_proxy", false, true) => "couldn't cancel name gateway with error", // resource_gateway_name.go:182
        _ => return None,
    })
}

async fn apply_unwrapped(
    ctx: &Ctx<'_>,
    type_name: &str,
    prior: &Val,
    planned: &Val,
) -> Result<Val> {
    match (type_name, prior.is_null(), planned.is_null()) {
        ("grid_scheduler", _, true) => Ok(Val::Null),
        ("grid_scheduler", _, false) => scheduler(ctx, prior, planned),
        ("grid_network", true, false) => network_create(ctx, planned).await,
        ("grid_network", false, false) => network_update(ctx, prior, planned).await,
        ("grid_network", false, true) => network_destroy(ctx, prior).await.map(|()| Val::Null),
        ("grid_deployment", true, false) => deployment_create(ctx, planned).await,
        ("grid_deployment", false, false) => deployment_update(ctx, prior, planned).await,
        ("grid_deployment", false, true) => {
            deployment_destroy(ctx, prior).await.map(|()| Val::Null)
        }
        ("grid_name_proxy" | "grid_fqdn_proxy", true, false) => {
            proxy_create(ctx, type_name, planned).await
        }
        ("grid_name_proxy" | "grid_fqdn_proxy", false, false) => {
            // gateway workloads have no updater on the node
            let same = [
                "backends",
                "tls_passthrough",
                "network",
                "name",
                "node",
                "fqdn",
            ]
            .iter()
            .all(|k| prior.get(k) == planned.get(k));
            // zos refuses the update (pkg/provision/engine.go:428-436, interface.go:75), the client
            // says where (deployer/deployer.go:244-248), a name proxy's deployer which contract
            // (gateway_name_deployer.go:85-91)
            let node = prior.int_or_zero("node");
            let refused = format!(
                "failed to send deployment update request to node {node}: workload '{}' does not \
                    support upgrade: upgrade validation error",
                if type_name == "grid_name_proxy" {
                    "gateway-name-proxy"
                } else {
                    "gateway-fqdn-proxy"
                }
            );
            ensure!(
                same,
                if type_name == "grid_name_proxy" {
                    format!(
                        "failed to deploy gateway name id: map[{node}:{}]: {refused}",
                        prior.str_or_empty("id")
                    )
                } else {
                    refused
                }
            );
            Ok(planned.clone())
        }
        ("grid_name_proxy" | "grid_fqdn_proxy", false, true) => {
            proxy_destroy(ctx, prior).await.map(|()| Val::Null)
        }
        (t, _, _) => bail!("{t} is not simulated"),
    }
}

// --- WireGuard keys ----------------------------------------------------------------------------

/// A new WireGuard private key, base64 (as `wg genkey` prints it).
fn wg_genkey() -> Result<String> {
    let bytes = hex_bytes(&crate::ids::random_hex(32)?)?;
    let mut key = [0u8; 32];
    key.copy_from_slice(&bytes);
    Ok(base64::engine::general_purpose::STANDARD
        .encode(x25519_dalek::StaticSecret::from(key).to_bytes()))
}

/// The public key of a base64 WireGuard private key.
fn wg_pubkey(private: &str) -> Result<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(private.trim())
        .context("a WireGuard key is not base64")?;
    let key: [u8; 32] = bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("a WireGuard key is not 32 bytes"))?;
    let public = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(key));
    Ok(base64::engine::general_purpose::STANDARD.encode(public.as_bytes()))
}

fn hex_bytes(hex: &str) -> Result<Vec<u8>> {
    ensure!(hex.len().is_multiple_of(2), "odd number of hex digits");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).context("not hex"))
        .collect()
}

// --- the data plane ------------------------------------------------------------------------------

async fn sim_sh(sim: &SimDir, args: &[String], env: &[(&str, &str)]) -> Result<()> {
    let logs = sim.root.join("logs");
    crate::files::create_private_dir(&logs)?;
    let mut cmd = Cmd::new(sim.script().to_string_lossy().into_owned())
        .args(args.iter().cloned())
        .io(Io::Log(logs.join("provider.log")));
    for (k, v) in env {
        cmd = cmd.env(*k, *v);
    }
    Runner::real().run(&cmd).await.map(|_| ())
}

fn s(v: impl ToString) -> String {
    v.to_string()
}

/// True when this machine has a route to exactly this address (`a.b.c.d` or `a.b.c.d/len`).
fn routed_here(ip: &str) -> bool {
    let Ok(addr) = ip.split('/').next().unwrap_or_default().parse::<Ipv4Addr>() else {
        return false;
    };
    crate::host::ipv4_routes().contains(&(addr, 32))
}

/// Where `sim.sh` keeps its claims on this machine (its `CLAIMS`): `<CLAIMS>/<name>/owner` holds
/// the holder's path; a public IPv4's claim is `ip-a.b.c.d`, held by a simulator's folder.
const CLAIMS: &str = "/run/tfgrid-compose-sim";

/// True when a public IPv4 (`a.b.c.d` or `a.b.c.d/len`) is this machine's elsewhere: claimed by
/// another simulator whose folder exists, or, unclaimed, routed here. Allocation counts it as a
/// farm IP already taken, so that each simulator's ledger agrees with what is routed; a claim of
/// a gone simulator's folder is free (`sim.sh vm-up` takes it over).
fn held_elsewhere(sim: &SimDir, ip: &str) -> bool {
    let addr = ip.split('/').next().unwrap_or_default();
    let claim = std::path::Path::new(CLAIMS).join(format!("ip-{addr}"));
    if !claim.exists() {
        return routed_here(ip);
    }
    let owner = std::fs::read_to_string(claim.join("owner")).unwrap_or_default();
    let owner = std::path::Path::new(owner.trim());
    // a claim being written just now (no owner yet) is held
    let ours = owner
        .canonicalize()
        .ok()
        .is_some_and(|o| sim.root.canonicalize().ok() == Some(o));
    owner.as_os_str().is_empty() || (owner.exists() && !ours)
}

/// Runs `f` with a context on a simulator in a temporary folder, as twin 7001 (for tests).
#[cfg(test)]
fn with_test_ctx<T>(f: impl FnOnce(&Ctx<'_>) -> T) -> T {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let sim = crate::sim::ledger::sim_dir(dir.path());
    f(&Ctx {
        sim: &sim,
        twin_id: 7001,
        mnemonic: "",
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[tokio::test]
    async fn apply_errors_carry_the_providers_wrapping() {
        let dir = tempfile::tempdir().unwrap();
        let sim = crate::sim::ledger::sim_dir(dir.path());
        let ctx = Ctx {
            sim: &sim,
            twin_id: 1,
            mnemonic: "",
        };
        let vm = Val::Map(BTreeMap::from([
            ("name".into(), Val::string("vm")),
            ("flist".into(), Val::string("https://hub.grid.tf/x.flist")),
            ("cpu".into(), Val::Int(1)),
            ("memory".into(), Val::Int(100)),
        ]));
        let mut planned = Val::Map(BTreeMap::from([
            ("name".into(), Val::string("d")),
            ("node".into(), Val::Int(11)),
            ("network_name".into(), Val::string("n")),
            ("vms".into(), Val::List(vec![vm])),
        ]));
        let err = apply(&ctx, "grid_deployment", &Val::Null, &planned)
            .await
            .unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "couldn't deploy deployment with error: invalid deployment: vm 'vm' is invalid: \
                memory capacity can't be less that 250 MB"
        );
        // what the provider finds while reading the configuration has its own wrapping
        planned.set("node", Val::Int(93));
        let err = apply(&ctx, "grid_deployment", &Val::Null, &planned)
            .await
            .unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "couldn't load deployment data with error: failed to get node client '93': failed \
                to get node 93: not found"
        );
        assert_eq!(provider_wrapping("grid_network", true, false), None);
        // a proxy's backends are read by the provider: the load wrapping of its resource
        let proxy = Val::Map(BTreeMap::from([
            ("name".into(), Val::string("gw1")),
            ("node".into(), Val::Int(13)),
            (
                "backends".into(),
                Val::List(vec![Val::string("https://10.1.3.2")]),
            ),
        ]));
        let err = apply(&ctx, "grid_name_proxy", &Val::Null, &proxy)
            .await
            .unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "couldn't load name gateway data with error: backends without tls passthrough should \
                be in the form http://ip[:port]: scheme expected to be http"
        );
        // zos has no updater for a proxy: the update is refused where the grid refuses it
        let mut prior = proxy.clone();
        prior.set("id", Val::string("1005"));
        prior.set(
            "backends",
            Val::List(vec![Val::string("http://10.1.3.2:9000")]),
        );
        let mut planned = prior.clone();
        planned.set(
            "backends",
            Val::List(vec![Val::string("http://10.1.3.3:9000")]),
        );
        let err = apply(&ctx, "grid_name_proxy", &prior, &planned)
            .await
            .unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "couldn't update name gateway with error: failed to deploy gateway name id: \
                map[13:1005]: failed to send deployment update request to node 13: workload \
                'gateway-name-proxy' does not support upgrade: upgrade validation error"
        );
    }
}
