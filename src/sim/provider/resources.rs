//! What each simulated resource does at plan and apply, after the real provider and the grid
//! (facts from the provider's source at b7d1a8c, its SDK and zos; see docs/simulator.md):
//!
//! - `grid_scheduler`: sticky by request name; full-zos nodes when yggdrasil, wireguard,
//!   public_config or public_ips_count is set, else zos-light nodes only; capacity in MB.
//! - `grid_network`: one node contract per node; per-node /24s from `ip_range` (the user's access
//!   range first when `add_wg_access`); an access point on the last node; `access_wg_config` in
//!   the grid's exact layout.
//! - `grid_deployment`: one node contract; VMs as namespaces on this machine with `ip` from .2
//!   upward per (network, node), `computedip` from the farm's pool (with its prefix),
//!   `mycelium_ip` when a seed is given, `console_url`; the node's capacity is checked and used.
//! - `grid_name_proxy` / `grid_fqdn_proxy`: a node contract on a gateway node (a name contract
//!   first for a name proxy; names are global); one backend in the grid's formats.
//! - zdbs, qsfs and `grid_kubernetes` fail at plan: not simulated.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use anyhow::{Context as _, Result, bail, ensure};
use base64::Engine as _;

use super::node_map;
use super::value::Val;
use crate::process::{Cmd, Io, Runner};
use crate::sim::ledger::{GIB, Ledger, Network, SimDir, now};

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
pub async fn apply(ctx: &Ctx<'_>, type_name: &str, prior: &Val, planned: &Val) -> Result<Val> {
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
            ensure!(
                same,
                "workload '{}' does not support upgrade",
                if type_name == "grid_name_proxy" {
                    "gateway-name-proxy"
                } else {
                    "gateway-fqdn-proxy"
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

// --- grid_scheduler --------------------------------------------------------------------------

fn scheduler(ctx: &Ctx<'_>, prior: &Val, planned: &Val) -> Result<Val> {
    let mut nodes: BTreeMap<String, Val> = prior.get("nodes").map().cloned().unwrap_or_default();
    let ledger = ctx.sim.read()?;
    // capacity taken by earlier requests of this apply
    let mut taken: BTreeMap<u32, (u64, u64, u64)> = BTreeMap::new();
    let mut assigned: Vec<u32> = nodes
        .values()
        .filter_map(Val::int)
        .map(|n| n as u32)
        .collect();
    for req in planned.get("requests").list() {
        let name = req.str_or_empty("name");
        if nodes.contains_key(&name) {
            continue; // sticky: a scheduled name keeps its node
        }
        let node = schedule(&ledger, ctx.twin_id, req, &taken, &assigned)
            .with_context(|| format!("couldn't schedule request {name}"))?;
        let t = taken.entry(node).or_default();
        t.0 += req.int_or_zero("mru") as u64 * (1 << 20);
        t.1 += req.int_or_zero("sru") as u64 * (1 << 20);
        t.2 += req.int_or_zero("hru") as u64 * (1 << 20);
        assigned.push(node);
        nodes.insert(name, Val::Int(i64::from(node)));
    }
    let mut state = planned.clone();
    let id = prior
        .get("id")
        .str()
        .map(String::from)
        .unwrap_or_else(|| now().to_string());
    state.set("id", Val::string(id));
    state.set("nodes", Val::Map(nodes));
    Ok(state)
}

/// The first node (by id: the simulator is deterministic where the grid shuffles) that fits.
fn schedule(
    ledger: &Ledger,
    _twin: u32,
    req: &Val,
    taken: &BTreeMap<u32, (u64, u64, u64)>,
    assigned: &[u32],
) -> Result<u32> {
    let full = req.bool_or_false("yggdrasil")
        || req.bool_or_false("wireguard")
        || req.bool_or_false("public_config")
        || req.int_or_zero("public_ips_count") > 0;
    let mb = |k: &str| req.int_or_zero(k).max(0) as u64 * (1 << 20);
    let exclude: Vec<i64> = req
        .get("node_exclude")
        .list()
        .iter()
        .filter_map(Val::int)
        .collect();
    let farm = req.int_or_zero("farm_id");
    let ips = req.int_or_zero("public_ips_count").max(0) as usize;
    for n in &ledger.nodes {
        let (tm, ts, th) = taken.get(&n.node_id).copied().unwrap_or_default();
        let free_ips = ledger
            .farms
            .iter()
            .find(|f| f.farm_id == n.farm_id)
            .map(|f| f.public_ips.values().filter(|h| **h == 0).count())
            .unwrap_or(0);
        let fits = n.light != full
            && (farm == 0 || i64::from(n.farm_id) == farm)
            && !exclude.contains(&i64::from(n.node_id))
            && !(req.bool_or_false("distinct") && assigned.contains(&n.node_id))
            && (!req.bool_or_false("certified") || n.certification == "Certified")
            && (!req.bool_or_false("public_config") || n.domain.is_some())
            && free_ips >= ips
            && n.total.mru.saturating_sub(n.used.mru + tm) >= mb("mru")
            && n.total.sru.saturating_sub(n.used.sru + ts) >= mb("sru")
            && n.total.hru.saturating_sub(n.used.hru + th) >= mb("hru");
        if fits {
            return Ok(n.node_id);
        }
    }
    bail!("couldn't find a node satisfying the given requirements")
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

// --- grid_network --------------------------------------------------------------------------------

fn octet_b(ip_range: &str) -> Result<u8> {
    let addr: Ipv4Addr = ip_range
        .split('/')
        .next()
        .unwrap_or_default()
        .parse()
        .context("ip_range is not an IPv4 network")?;
    Ok(addr.octets()[1])
}

/// The grid's access config, in its exact layout (sdk: workloads/network.go GenerateWGConfig).
pub fn access_wg_config(net: &Network) -> Result<String> {
    let Some(ext) = net.external else {
        return Ok(String::new());
    };
    let b = octet_b(&net.ip_range)?;
    Ok(format!(
        "\n[Interface]\nAddress = 100.64.{b}.{ext}\nPrivateKey = {sk}\n[Peer]\nPublicKey = \
            {pk}\nAllowedIPs = {range}, 100.64.0.0/16\nPersistentKeepalive = 25\nEndpoint = \
            198.18.{slot}.2:{port}\n\t",
        sk = net.external_sk,
        pk = wg_pubkey(&net.access_key)?,
        range = net.ip_range,
        slot = net.slot,
        port = net.access_port,
    ))
}

fn network_state(planned: &Val, net: &Network) -> Result<Val> {
    let mut state = planned.clone();
    state.set("id", Val::string(&net.id));
    state.set(
        "nodes_ip_range",
        node_map(net.nodes.iter().map(|(n, o)| (*n, *o)), |o| {
            Val::string(format!("{}.{o}.0/24", range_prefix(&net.ip_range)))
        }),
    );
    state.set(
        "node_deployment_id",
        node_map(net.contracts.iter().map(|(n, c)| (*n, *c)), |c| {
            Val::Int(c as i64)
        }),
    );
    state.set(
        "external_ip",
        Val::string(
            net.external
                .map(|e| format!("{}.{e}.0/24", range_prefix(&net.ip_range)))
                .unwrap_or_default(),
        ),
    );
    state.set("external_sk", Val::string(&net.external_sk));
    state.set(
        "public_node_id",
        Val::Int(if net.external.is_some() {
            i64::from(net.access_node)
        } else {
            0
        }),
    );
    state.set("access_wg_config", Val::string(access_wg_config(net)?));
    Ok(state)
}

/// "10.20" of "10.20.0.0/16".
fn range_prefix(ip_range: &str) -> String {
    ip_range.split('.').take(2).collect::<Vec<_>>().join(".")
}

fn network_nodes(planned: &Val) -> Vec<u32> {
    let mut out = Vec::new();
    for n in planned.get("nodes").list().iter().filter_map(Val::int) {
        if !out.contains(&(n as u32)) {
            out.push(n as u32);
        }
    }
    out
}

/// Checks and books a network in the ledger (contracts, octets, slot, keys).
fn network_book(l: &mut Ledger, ctx: &Ctx<'_>, planned: &Val, mut net: Network) -> Result<Network> {
    let name = planned.str_or_empty("name");
    ensure!(
        name.len() <= 50,
        "network name '{name}' is longer than 50 characters"
    );
    let nodes = network_nodes(planned);
    ensure!(!nodes.is_empty(), "a network needs at least one node");
    for n in &nodes {
        ensure!(
            l.node(*n).is_some(),
            "failed to get node features '{n}': node {n} not found"
        );
    }
    for (node, key) in planned.get("mycelium_keys").map().into_iter().flatten() {
        let len = key.str().map(|k| k.len() / 2).unwrap_or(0);
        ensure!(
            key.str().is_some_and(|k| hex_bytes(k).is_ok()) && len == 32,
            "invalid mycelium key length {len} must be 32 or empty"
        );
        ensure!(
            nodes.iter().any(|n| n.to_string() == *node),
            "mycelium key for node {node}, which is not in the network's nodes"
        );
    }
    // another live network of this twin with the same name on one of these nodes
    for other in l.networks.values() {
        if other.id != net.id
            && other.twin_id == ctx.twin_id
            && other.name == name
            && other.nodes.keys().any(|n| nodes.contains(n))
        {
            bail!("sharable workload '{name}' is conflicting with another workload '{name}'");
        }
    }
    let all_light = nodes.iter().all(|n| l.node(*n).is_some_and(|x| x.light));
    let wg = planned.bool_or_false("add_wg_access") && !all_light;
    // octets: kept, then the access range, then new nodes in order
    let mut used: BTreeSet<u8> = net.nodes.values().copied().collect();
    used.extend(net.external);
    fn next(used: &mut BTreeSet<u8>) -> Result<u8> {
        let o = (2..=254u8)
            .find(|o| !used.contains(o))
            .context("all 253 ranges of the network are used")?;
        used.insert(o);
        Ok(o)
    }
    if wg && net.external.is_none() {
        net.external = Some(next(&mut used)?);
    }
    if !wg {
        net.external = None;
    }
    let wanted: BTreeMap<String, Val> = planned
        .get("nodes_ip_range")
        .map()
        .cloned()
        .unwrap_or_default();
    for n in &nodes {
        if net.nodes.contains_key(n) {
            continue;
        }
        let given = wanted
            .get(&n.to_string())
            .and_then(Val::str)
            .and_then(|r| r.split('.').nth(2))
            .and_then(|o| o.parse::<u8>().ok());
        let o = match given {
            Some(o) if !used.contains(&o) => {
                used.insert(o);
                o
            }
            _ => next(&mut used)?,
        };
        net.nodes.insert(*n, o);
    }
    // nodes no longer listed: cancel their part
    let gone: Vec<u32> = net
        .nodes
        .keys()
        .filter(|n| !nodes.contains(n))
        .copied()
        .collect();
    for n in gone {
        net.nodes.remove(&n);
        if let Some(c) = net.contracts.remove(&n) {
            l.cancel(c);
        }
    }
    for n in &nodes {
        if !net.contracts.contains_key(n) {
            let meta = serde_json::json!({"version": 3, "type": if l.node(*n).is_some_and(|x| x.light) { "network-light" } else { "network" }, "name": name, "projectName": "Network"});
            let c = l.open_contract(ctx.twin_id, "node", *n, meta.to_string());
            if let Some(contract) = l.contracts.get_mut(&c) {
                contract.network = net.id.clone();
            }
            net.contracts.insert(*n, c);
        }
    }
    net.access_node = *nodes.last().unwrap_or(&0);
    net.name = name;
    if net.slot == 0 {
        // slots are this machine's: another simulator (another data dir) may hold some
        let taken: BTreeSet<u8> = l.networks.values().map(|n| n.slot).collect();
        net.slot = (1..=250u8)
            .find(|s| {
                *s < 200
                    && !taken.contains(s)
                    && !std::path::Path::new(&format!("/run/netns/gsim-{s}")).exists()
            })
            .context(
                "199 simulated networks exist on this machine already; `tfgrid-compose sim reset`",
            )?;
    }
    if net.access_port == 0 {
        net.access_port = 1024 + (u16::from(net.slot) * 127) % 31_000;
    }
    l.networks.insert(net.id.clone(), net.clone());
    Ok(net)
}

async fn network_up(ctx: &Ctx<'_>, net: &Network) -> Result<()> {
    let b = octet_b(&net.ip_range)?;
    if let Some(ext) = net.external {
        let conf = ctx.sim.root.join(format!("net-{}.conf", net.slot));
        let text = format!(
            "[Interface]\nPrivateKey = {}\nListenPort = {}\n\n[Peer]\nPublicKey = {}\nAllowedIPs = \
                {}.{ext}.0/24, 100.64.{b}.{ext}/32\n",
            net.access_key,
            net.access_port,
            wg_pubkey(&net.external_sk)?,
            range_prefix(&net.ip_range)
        );
        crate::files::write_atomic(&conf, text.as_bytes(), 0o600)?;
        sim_sh(
            ctx.sim,
            &[
                s("net-up"),
                s(net.slot),
                s(b),
                s(ext),
                conf.to_string_lossy().into_owned(),
            ],
            &[],
        )
        .await?;
    } else {
        // no access point: the access node's namespace still routes between the node bridges
        let conf = ctx.sim.root.join(format!("net-{}.conf", net.slot));
        crate::files::write_atomic(
            &conf,
            format!(
                "[Interface]\nPrivateKey = {}\nListenPort = {}\n",
                net.access_key, net.access_port
            )
            .as_bytes(),
            0o600,
        )?;
        sim_sh(
            ctx.sim,
            &[
                s("net-up"),
                s(net.slot),
                s(b),
                s(1),
                conf.to_string_lossy().into_owned(),
            ],
            &[],
        )
        .await?;
    }
    for o in net.nodes.values() {
        sim_sh(ctx.sim, &[s("node-up"), s(net.slot), s(b), s(o)], &[]).await?;
    }
    Ok(())
}

async fn network_create(ctx: &Ctx<'_>, planned: &Val) -> Result<Val> {
    let ip_range = planned.str_or_empty("ip_range");
    octet_b(&ip_range)?;
    let id = uuid()?;
    let fresh = Network {
        id: id.clone(),
        twin_id: ctx.twin_id,
        name: String::new(),
        ip_range,
        nodes: BTreeMap::new(),
        external: None,
        external_sk: wg_genkey()?,
        access_node: 0,
        access_key: wg_genkey()?,
        access_port: 0,
        slot: 0,
        contracts: BTreeMap::new(),
        used_ips: BTreeMap::new(),
    };
    let net = ctx
        .sim
        .with_ledger(|l| network_book(l, ctx, planned, fresh))?;
    if let Err(e) = network_up(ctx, &net).await {
        let _ = network_destroy_id(ctx, &id).await;
        return Err(e);
    }
    network_state(planned, &net)
}

async fn network_update(ctx: &Ctx<'_>, prior: &Val, planned: &Val) -> Result<Val> {
    let id = prior.str_or_empty("id");
    let net = ctx.sim.with_ledger(|l| {
        let net = l.networks.get(&id).cloned().with_context(|| {
            format!("network {id} is not on the grid any more (was `sim reset` run?)")
        })?;
        ensure!(
            net.ip_range == planned.str_or_empty("ip_range"),
            "the ip_range of a deployed network cannot change"
        );
        network_book(l, ctx, planned, net)
    })?;
    network_up(ctx, &net).await?;
    network_state(planned, &net)
}

async fn network_destroy(ctx: &Ctx<'_>, prior: &Val) -> Result<()> {
    network_destroy_id(ctx, &prior.str_or_empty("id")).await
}

async fn network_destroy_id(ctx: &Ctx<'_>, id: &str) -> Result<()> {
    let (net, shared) = ctx.sim.with_ledger(|l| {
        let Some(net) = l.networks.remove(id) else {
            return Ok((None, false));
        };
        for c in net.contracts.values() {
            l.cancel(*c);
        }
        let shared = l.networks.values().any(|n| n.ip_range == net.ip_range);
        Ok((Some(net), shared))
    })?;
    if let Some(net) = net {
        let keep = if shared { "1" } else { "0" };
        sim_sh(
            ctx.sim,
            &[s("net-down"), s(net.slot), s(octet_b(&net.ip_range)?)],
            &[("KEEP_ROUTE", keep)],
        )
        .await?;
        let _ = std::fs::remove_file(ctx.sim.root.join(format!("net-{}.conf", net.slot)));
    }
    Ok(())
}

fn uuid() -> Result<String> {
    let h = crate::ids::random_hex(16)?;
    Ok(format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    ))
}

// --- grid_deployment -----------------------------------------------------------------------------

/// One VM as booked: where it runs and its addresses.
#[derive(Clone, Debug)]
struct VmPlan {
    index: usize,
    name: String,
    host: u8,
    public_ip: Option<String>,
}

fn vm_bytes(vm: &Val) -> (u64, u64, u64) {
    let cpu = vm.int_or_zero("cpu").max(1) as u64;
    let mem = vm.int_or_zero("memory").max(0) as u64 * (1 << 20);
    let rootfs = match vm.int_or_zero("rootfs_size") {
        0 if cpu * mem >= 8 * GIB => 2 * GIB,
        0 => 500 << 20,
        mb => mb as u64 * (1 << 20),
    };
    (cpu, mem, rootfs)
}

/// Apply-time checks of the SDK and the node (names, memory, flist, unique names, ip).
fn check_deployment(planned: &Val) -> Result<()> {
    let name = planned.str_or_empty("name");
    ensure!(
        !name.is_empty() && name.len() <= 50,
        "deployment name '{name}' must be 1 to 50 characters"
    );
    let mut names = BTreeSet::new();
    for vm in planned.get("vms").list() {
        let n = vm.str_or_empty("name");
        ensure!(
            n.len() <= 36,
            "workload name '{n}' is longer than 36 characters (the node's limit)"
        );
        ensure!(
            names.insert(n.clone()),
            "multiple workloads with the same name '{n}'"
        );
        if vm.bool_or_false("publicip") {
            ensure!(
                names.insert(format!("{n}ip")),
                "multiple workloads with the same name '{n}ip'"
            );
        }
        ensure!(
            vm.int_or_zero("memory") >= 250,
            "memory capacity can't be less that 250 MB"
        );
        let flist = vm.str_or_empty("flist");
        ensure!(
            flist.ends_with(".flist") || flist.ends_with(".fl"),
            "flist: '{flist}' is invalid, should have a valid flist extension"
        );
        let seed = vm.str_or_empty("mycelium_ip_seed");
        ensure!(
            seed.is_empty() || (hex_bytes(&seed).is_ok() && seed.len() == 12),
            "invalid mycelium ip seed length {} must be 6 or empty",
            seed.len() / 2
        );
    }
    for d in planned.get("disks").list() {
        let n = d.str_or_empty("name");
        ensure!(
            names.insert(n.clone()),
            "multiple workloads with the same name '{n}'"
        );
    }
    Ok(())
}

fn vm_dir(sim: &SimDir, contract: u64, index: usize) -> String {
    sim.vms()
        .join(format!("c{contract}-{index}"))
        .to_string_lossy()
        .into_owned()
}

/// Books the deployment: capacity, public IPs, VM addresses. `keep` holds addresses of VMs that
/// already run (by name) on an update.
fn book_deployment(
    l: &mut Ledger,
    ctx: &Ctx<'_>,
    planned: &Val,
    contract: Option<u64>,
    keep: &BTreeMap<String, (u8, Option<String>)>,
) -> Result<(u64, Network, u8, Vec<VmPlan>)> {
    check_deployment(planned)?;
    let node_id = planned.int_or_zero("node") as u32;
    let node = l
        .node(node_id)
        .cloned()
        .with_context(|| format!("node {node_id} not found"))?;
    let network_name = planned.str_or_empty("network_name");
    let vms = planned.get("vms").list();
    let net = l
        .networks
        .values()
        .find(|n| {
            n.twin_id == ctx.twin_id && n.name == network_name && n.nodes.contains_key(&node_id)
        })
        .cloned()
        .with_context(|| {
            format!(
                "invalid ip range: network '{network_name}' has no range on node \
            {node_id} (add the node to the network's nodes)"
            )
        })?;
    let octet = net.nodes[&node_id];
    // capacity
    let (mut cru, mut mru, mut sru) = (0u64, 0u64, 0u64);
    for vm in vms {
        let (c, m, r) = vm_bytes(vm);
        cru += c;
        mru += m;
        sru += r;
    }
    for d in planned.get("disks").list() {
        sru += d.int_or_zero("size").max(0) as u64 * GIB;
    }
    // on an update, what the contract already holds is counted as free
    let (held_c, held_m, held_s) = contract
        .and_then(|c| l.contracts.get(&c))
        .map(|c| (c.cru, c.mru, c.sru))
        .unwrap_or_default();
    let free_m = node
        .total
        .mru
        .saturating_sub(node.used.mru - held_m.min(node.used.mru));
    let free_s = node
        .total
        .sru
        .saturating_sub(node.used.sru - held_s.min(node.used.sru));
    if mru > free_m || sru > free_s {
        bail!(
            "node {node_id} does not have enough resources. needed: [mru: {mru}, sru: {sru}, hru: \
                0], free: [mru: {free_m}, sru: {free_s}, hru: {}]",
            node.total.hru - node.used.hru
        );
    }
    let id = match contract {
        Some(c) => c,
        None => {
            let kind = if node.light { "vm-light" } else { "vm" };
            let meta = serde_json::json!({"version": 3, "type": kind, "name": planned.str_or_empty("name"), "projectName": format!("vm/{}", planned.str_or_empty("name"))});
            l.open_contract(ctx.twin_id, "node", node_id, meta.to_string())
        }
    };
    // addresses
    let range = format!("{}.{octet}", range_prefix(&net.ip_range));
    let mut used: BTreeSet<u8> = net
        .used_ips
        .get(&node_id)
        .map(|v| v.iter().copied().collect())
        .unwrap_or_default();
    let mut plans = Vec::new();
    let mut public_ips = Vec::new();
    for (index, vm) in vms.iter().enumerate() {
        let name = vm.str_or_empty("name");
        let (host, kept_ip) = if let Some((h, p)) = keep.get(&name) {
            (*h, p.clone())
        } else {
            let wanted = vm.str_or_empty("ip");
            let h = if wanted.is_empty() {
                (2..=254u8)
                    .find(|h| !used.contains(h))
                    .context("all 253 ips of the network are exhausted")?
            } else {
                let ip: Ipv4Addr = wanted
                    .parse()
                    .with_context(|| format!("invalid ip '{wanted}'"))?;
                let o = ip.octets();
                ensure!(
                    format!("{}.{}.{}", o[0], o[1], o[2]) == range,
                    "deployment ip range '{range}.0/24' doesn't contain ip '{wanted}' for vm \
                        '{name}'"
                );
                ensure!(o[3] != 1, "ip {wanted} is reserved");
                ensure!(
                    !used.contains(&o[3]),
                    "ip {wanted} is already used on node {node_id}"
                );
                o[3]
            };
            used.insert(h);
            (h, None)
        };
        let public_ip = if vm.bool_or_false("publicip") && !node.light {
            match kept_ip {
                Some(ip) => Some(ip),
                None => {
                    let farm = l
                        .farms
                        .iter_mut()
                        .find(|f| f.farm_id == node.farm_id)
                        .context("the node's farm is missing")?;
                    let ip = farm
                        .public_ips
                        .iter_mut()
                        .find(|(ip, holder)| **holder == 0 && !routed_here(ip))
                        .with_context(|| {
                            format!("farm {} does not have enough public ips", node.farm_id)
                        })?;
                    *ip.1 = id;
                    Some(ip.0.clone())
                }
            }
        } else {
            None
        };
        public_ips.extend(public_ip.clone());
        plans.push(VmPlan {
            index,
            name,
            host,
            public_ip,
        });
    }
    if let Some(n) = l.networks.get_mut(&net.id) {
        n.used_ips.insert(node_id, used.into_iter().collect());
    }
    let vm_dirs: Vec<String> = plans.iter().map(|p| vm_dir(ctx.sim, id, p.index)).collect();
    if let Some(c) = l.contracts.get_mut(&id) {
        c.cru = cru;
        c.mru = mru;
        c.sru = sru;
        c.public_ips = public_ips;
        c.vms = vm_dirs;
        c.network = net.id.clone();
        c.private_hosts = plans.iter().map(|p| p.host).collect();
    }
    if let Some(n) = l.node_mut(node_id) {
        n.used.cru = n.used.cru.saturating_sub(held_c) + cru;
        n.used.mru = n.used.mru.saturating_sub(held_m) + mru;
        n.used.sru = n.used.sru.saturating_sub(held_s) + sru;
    }
    Ok((id, net, octet, plans))
}

fn mycelium_ip(net_key: &str, seed: &str) -> String {
    // 400::/7 from a hash of the network's key on the node (the real grid derives it with
    // x25519 + blake3; the simulator only needs a stable, well-formed address)
    let h = crate::sim::ledger::hash_hex(net_key);
    let first = 0x04 | (u8::from_str_radix(&h[0..2], 16).unwrap_or(0) & 1);
    format!(
        "{first:x}{}:{}:{}:{}:ff0f:{}:{}:{}",
        &h[2..4],
        &h[4..8],
        &h[8..12],
        &h[12..16],
        &seed[0..4],
        &seed[4..8],
        &seed[8..12]
    )
}

async fn start_vms(
    ctx: &Ctx<'_>,
    planned: &Val,
    id: u64,
    net: &Network,
    octet: u8,
    plans: &[VmPlan],
    only: &BTreeSet<String>,
) -> Result<()> {
    let prefix = range_prefix(&net.ip_range);
    for p in plans.iter().filter(|p| only.contains(&p.name)) {
        let vm = &planned.get("vms").list()[p.index];
        let key = vm
            .get("env_vars")
            .get("SSH_KEY")
            .str()
            .unwrap_or_default()
            .to_string();
        let mut args = vec![
            s("vm-up"),
            vm_dir(ctx.sim, id, p.index),
            s(net.slot),
            format!("br{octet}"),
            format!("{prefix}.{octet}.{}", p.host),
            format!("{prefix}.{octet}.1"),
            p.name.replace('_', "-"),
        ];
        if let Some(ip) = &p.public_ip {
            args.push(ip.split('/').next().unwrap_or_default().to_string());
        }
        let key = if key.is_empty() {
            "ssh-ed25519 AAAA-no-SSH_KEY-was-given".to_string()
        } else {
            key
        };
        sim_sh(ctx.sim, &args, &[("VM_SSH_KEY", &key)])
            .await
            .with_context(|| format!("starting VM {}", p.name))?;
    }
    Ok(())
}

fn deployment_state(planned: &Val, id: u64, net: &Network, octet: u8, plans: &[VmPlan]) -> Val {
    let mut state = planned.clone();
    state.set("id", Val::string(id.to_string()));
    state.set("ip_range", Val::string(""));
    let prefix = range_prefix(&net.ip_range);
    let node = planned.get("node").clone();
    let mut vms = planned.get("vms").list().to_vec();
    for p in plans {
        let vm = &mut vms[p.index];
        let seed = vm.str_or_empty("mycelium_ip_seed");
        vm.set("ip", Val::string(format!("{prefix}.{octet}.{}", p.host)));
        vm.set(
            "computedip",
            Val::string(p.public_ip.clone().unwrap_or_default()),
        );
        vm.set(
            "computedip6",
            Val::string(if vm.bool_or_false("publicip6") {
                format!("2001:db8:{octet:x}::{:x}/64", p.host)
            } else {
                String::new()
            }),
        );
        vm.set(
            "planetary_ip",
            Val::string(if vm.bool_or_false("planetary") {
                format!("300:db8:{octet:x}::{:x}", p.host)
            } else {
                String::new()
            }),
        );
        vm.set(
            "mycelium_ip",
            Val::string(if seed.len() == 12 {
                mycelium_ip(&format!("{}-{}", net.id, octet), &seed)
            } else {
                String::new()
            }),
        );
        vm.set(
            "console_url",
            Val::string(format!("{prefix}.{octet}.1:{}", 20_000 + u32::from(p.host))),
        );
        vm.set("node", node.clone());
    }
    state.set("vms", Val::List(vms));
    state
}

async fn deployment_create(ctx: &Ctx<'_>, planned: &Val) -> Result<Val> {
    let (id, net, octet, plans) = ctx
        .sim
        .with_ledger(|l| book_deployment(l, ctx, planned, None, &BTreeMap::new()))?;
    let all: BTreeSet<String> = plans.iter().map(|p| p.name.clone()).collect();
    if let Err(e) = start_vms(ctx, planned, id, &net, octet, &plans, &all).await {
        // the SDK cancels a contract whose deployment failed
        let _ = cancel_deployment(ctx, id).await;
        return Err(e);
    }
    Ok(deployment_state(planned, id, &net, octet, &plans))
}

/// What of a VM may not change in place (zos: `zmachine` has no updater).
const VM_FIXED: &[&str] = &[
    "flist",
    "cpu",
    "memory",
    "rootfs_size",
    "entrypoint",
    "env_vars",
    "mycelium_ip_seed",
    "planetary",
    "publicip",
    "publicip6",
    "corex",
    "gpus",
];

async fn deployment_update(ctx: &Ctx<'_>, prior: &Val, planned: &Val) -> Result<Val> {
    let old_id: u64 = prior
        .str_or_empty("id")
        .parse()
        .context("the deployment's id is not a contract id")?;
    if prior.get("node") != planned.get("node") {
        // the provider cancels the old contract first, then deploys on the new node
        cancel_deployment(ctx, old_id).await?;
        return deployment_create(ctx, planned).await;
    }
    let before: BTreeMap<String, &Val> = prior
        .get("vms")
        .list()
        .iter()
        .map(|v| (v.str_or_empty("name"), v))
        .collect();
    let mut keep = BTreeMap::new();
    for vm in planned.get("vms").list() {
        let name = vm.str_or_empty("name");
        if let Some(old) = before.get(&name) {
            for k in VM_FIXED {
                let (a, b) = (old.get(k), vm.get(k));
                let empty = |v: &Val| {
                    v.is_null()
                        || *v == Val::Bool(false)
                        || *v == Val::Int(0)
                        || v.str() == Some("")
                        || v.map().is_some_and(|m| m.is_empty())
                        || (matches!(v, Val::List(l) if l.is_empty()))
                };
                if a != b && !(empty(a) && empty(b)) {
                    if *k == "publicip" && b == &Val::Bool(true) {
                        bail!(
                            "currently, it's not possible to increase the number of reserved \
                                public ips in a deployment, node: {}, current: 0, requested: 1",
                            planned.int_or_zero("node")
                        );
                    }
                    bail!(
                        "workload 'zmachine' does not support upgrade (vm '{name}': {k} changed; \
                            rename the VM or replace the resource)"
                    );
                }
            }
            let host: u8 = old
                .str_or_empty("ip")
                .rsplit('.')
                .next()
                .and_then(|h| h.parse().ok())
                .unwrap_or(0);
            let public = Some(old.str_or_empty("computedip")).filter(|p| !p.is_empty());
            keep.insert(name, (host, public));
        }
    }
    // stop removed VMs first
    let removed: Vec<usize> = prior
        .get("vms")
        .list()
        .iter()
        .enumerate()
        .filter(|(_, v)| !keep.contains_key(&v.str_or_empty("name")))
        .map(|(i, _)| i)
        .collect();
    for i in &removed {
        sim_sh(ctx.sim, &[s("vm-down"), vm_dir(ctx.sim, old_id, *i)], &[]).await?;
    }
    // VM folders are named by list index: move kept VMs whose index changed is not supported
    for (i, vm) in planned.get("vms").list().iter().enumerate() {
        if let Some(old_index) = prior
            .get("vms")
            .list()
            .iter()
            .position(|o| o.str_or_empty("name") == vm.str_or_empty("name"))
        {
            ensure!(
                old_index == i,
                "vm '{}' moved in the vms list; the simulator keeps VMs at their index (remove and \
                    add it under a new name)",
                vm.str_or_empty("name")
            );
        }
    }
    let (id, net, octet, plans) =
        ctx.sim.with_ledger(|l| {
            // free the addresses of removed VMs
            let node_id = planned.int_or_zero("node") as u32;
            if let Some(n) = l.networks.values_mut().find(|n| {
                n.twin_id == ctx.twin_id && n.name == planned.str_or_empty("network_name")
            }) {
                let gone: Vec<u8> = removed
                    .iter()
                    .filter_map(|i| {
                        prior.get("vms").list()[*i]
                            .str_or_empty("ip")
                            .rsplit('.')
                            .next()
                            .and_then(|h| h.parse().ok())
                    })
                    .collect();
                if let Some(used) = n.used_ips.get_mut(&node_id) {
                    used.retain(|h| !gone.contains(h));
                }
            }
            book_deployment(l, ctx, planned, Some(old_id), &keep)
        })?;
    let new: BTreeSet<String> = plans
        .iter()
        .map(|p| p.name.clone())
        .filter(|n| !keep.contains_key(n))
        .collect();
    start_vms(ctx, planned, id, &net, octet, &plans, &new).await?;
    Ok(deployment_state(planned, id, &net, octet, &plans))
}

async fn cancel_deployment(ctx: &Ctx<'_>, id: u64) -> Result<()> {
    // cancelling frees the capacity, the public IPs and the VMs' private addresses
    let vms = ctx.sim.with_ledger(|l| Ok(l.cancel(id)))?;
    for dir in vms {
        sim_sh(ctx.sim, &[s("vm-down"), dir], &[]).await?;
    }
    Ok(())
}

async fn deployment_destroy(ctx: &Ctx<'_>, prior: &Val) -> Result<()> {
    let id: u64 = prior.str_or_empty("id").parse().unwrap_or(0);
    cancel_deployment(ctx, id).await
}

// --- gateways ------------------------------------------------------------------------------------

fn check_backends(planned: &Val) -> Result<()> {
    let backends = planned.get("backends").list();
    ensure!(!backends.is_empty(), "backends list can not be empty");
    ensure!(backends.len() == 1, "only one backend is supported");
    let b = backends[0].str().unwrap_or_default();
    let passthrough = planned.bool_or_false("tls_passthrough");
    let host = if passthrough {
        let (h, port) = b
            .rsplit_once(':')
            .context("a passthrough backend is <ip>:<port>")?;
        ensure!(port.parse::<u16>().is_ok(), "invalid port in backend: {b}");
        h.trim_matches(['[', ']'])
    } else {
        let rest = b
            .strip_prefix("http://")
            .with_context(|| format!("scheme expected to be http, got backend {b}"))?;
        let hostport = rest.split('/').next().unwrap_or_default();
        match hostport.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') || h.starts_with('[') => {
                ensure!(p.parse::<u16>().is_ok(), "invalid port in backend: {b}");
                h.trim_matches(['[', ']'])
            }
            _ => hostport,
        }
    };
    let ip: std::net::IpAddr = host
        .parse()
        .map_err(|_| anyhow::anyhow!("invalid ip address in backend: {host}"))?;
    ensure!(!ip.is_loopback(), "invalid ip address in backend: {host}");
    Ok(())
}

/// A gateway node's nginx folder: `nginx.conf`, `sites/<contract>.conf`, pid, logs.
fn gateway_dir(sim: &SimDir, node: u32) -> std::path::PathBuf {
    sim.root.join(format!("gw-{node}"))
}

/// True when this machine has a route to exactly this address (`a.b.c.d` or `a.b.c.d/len`).
fn routed_here(ip: &str) -> bool {
    let Ok(addr) = ip.split('/').next().unwrap_or_default().parse::<Ipv4Addr>() else {
        return false;
    };
    crate::host::ipv4_routes().contains(&(addr, 32))
}

/// The public IPv4 of a node with a domain (its farmer's public config).
pub fn gateway_ip(node: u32) -> String {
    format!("198.51.100.{node}")
}

/// The gateway node's address block on this machine: 198.18.G.0/24.
fn gateway_block(node: u32) -> u32 {
    200 + node % 50
}

/// Starts, reloads or stops the gateway node's nginx to match its sites.
async fn gateway_sync(sim: &SimDir, node: u32) -> Result<()> {
    let dir = gateway_dir(sim, node);
    let conf = dir.join("nginx.conf").to_string_lossy().into_owned();
    let sites = std::fs::read_dir(dir.join("sites"))
        .map(|d| d.flatten().count())
        .unwrap_or(0);
    if sites == 0 {
        if dir.exists() {
            sim_sh(sim, &[s("gw-down"), s(node), gateway_ip(node), conf], &[]).await?;
            std::fs::remove_dir_all(&dir).ok();
        }
        return Ok(());
    }
    if !dir.join("nginx.pid").exists() && routed_here(&gateway_ip(node)) {
        bail!(
            "{} (the simulated gateway node {node}) is in use by another simulator on this \
                machine; `tfgrid-compose sim reset` there first",
            gateway_ip(node)
        );
    }
    let d = dir.to_string_lossy();
    for sub in [
        "tmp/body",
        "tmp/proxy",
        "tmp/fastcgi",
        "tmp/uwsgi",
        "tmp/scgi",
    ] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    let text = format!(
        "# The simulated gateway node {node}'s nginx (name and fqdn proxies).
pid {d}/nginx.pid;
error_log {d}/error.log;
worker_processes 1;
events {{ worker_connections 256; }}
http {{
  access_log {d}/access.log;
  client_body_temp_path {d}/tmp/body;
  proxy_temp_path {d}/tmp/proxy;
  fastcgi_temp_path {d}/tmp/fastcgi;
  uwsgi_temp_path {d}/tmp/uwsgi;
  scgi_temp_path {d}/tmp/scgi;
  server {{ listen 80 default_server; return 404; }}
  include {d}/sites/*.conf;
}}
"
    );
    crate::files::write_if_changed(&dir.join("nginx.conf"), text.as_bytes(), 0o644)?;
    sim_sh(
        sim,
        &[
            s("gw-up"),
            s(node),
            s(gateway_block(node)),
            gateway_ip(node),
            conf,
        ],
        &[],
    )
    .await
}

/// The data plane of a proxy: its nginx site on the gateway node, a route into its network.
async fn proxy_up(ctx: &Ctx<'_>, state: &Val) -> Result<()> {
    let node = state.int_or_zero("node") as u32;
    let id = state.str_or_empty("id");
    let fqdn = state.str_or_empty("fqdn");
    let backend = state
        .get("backends")
        .list()
        .first()
        .and_then(Val::str)
        .unwrap_or_default()
        .to_string();
    let network = state.str_or_empty("network");
    let link = if network.is_empty() {
        None
    } else {
        let l = ctx.sim.read()?;
        let net = l
            .networks
            .values()
            .find(|n| n.twin_id == ctx.twin_id && n.name == network)
            .with_context(|| format!("network '{network}' not found for this twin"))?
            .clone();
        ensure!(
            net.nodes.contains_key(&node),
            "network '{network}' does not include the gateway node {node}: add it to the network's \
                nodes"
        );
        Some(net)
    };
    let sites = gateway_dir(ctx.sim, node).join("sites");
    std::fs::create_dir_all(&sites)?;
    let site = if state.bool_or_false("tls_passthrough") {
        // TLS passthrough is booked, not served: the simulator has no certificates
        format!(
            "# {fqdn}: TLS passthrough to {backend} is not simulated
"
        )
    } else {
        format!(
            "server {{
  listen 80;
  server_name {fqdn};
  location / {{
    proxy_pass {backend};
    proxy_set_header Host $host;
    proxy_set_header X-Forwarded-For $remote_addr;
  }}
}}
"
        )
    };
    crate::files::write_if_changed(&sites.join(format!("{id}.conf")), site.as_bytes(), 0o644)?;
    gateway_sync(ctx.sim, node).await?;
    if let Some(net) = link {
        sim_sh(
            ctx.sim,
            &[
                s("gw-link"),
                s(node),
                s(net.slot),
                s(octet_b(&net.ip_range)?),
            ],
            &[],
        )
        .await?;
    }
    Ok(())
}

async fn proxy_create(ctx: &Ctx<'_>, type_name: &str, planned: &Val) -> Result<Val> {
    let state = proxy_book(ctx, type_name, planned)?;
    if let Err(e) = proxy_up(ctx, &state).await {
        let _ = proxy_destroy(ctx, &state).await;
        return Err(e);
    }
    Ok(state)
}

fn proxy_book(ctx: &Ctx<'_>, type_name: &str, planned: &Val) -> Result<Val> {
    check_backends(planned)?;
    let node_id = planned.int_or_zero("node") as u32;
    let name_proxy = type_name == "grid_name_proxy";
    let name = planned.str_or_empty("name");
    let fqdn_in = planned.str_or_empty("fqdn");
    ctx.sim.with_ledger(|l| {
        let node = l
            .node(node_id)
            .cloned()
            .with_context(|| format!("node {node_id} not found"))?;
        let mut state = planned.clone();
        let mut name_contract = 0;
        if name_proxy {
            let domain = node.domain.clone().with_context(|| {
                format!(
                    "node {node_id} cannot deploy a \
                    gateway name workload as it does not have a domain configured"
                )
            })?;
            // TFChain wants 3+ characters of a-z 0-9 - _, the node at most 36, the provider's
            // schema no hyphen: what passes all three is [a-z0-9_]{3,36}
            let rule = "a gateway name has 3 to 36 characters of a-z, 0-9 and _";
            ensure!(
                name.len() >= 3,
                "NameContractNameTooShort: '{name}' ({rule})"
            );
            ensure!(
                name.len() <= 36
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "NameNotValid: '{name}' ({rule})"
            );
            ensure!(
                !l.names.contains_key(&name),
                "NameExists: the name '{name}' is taken on this \
                grid"
            );
            name_contract = l.open_contract(ctx.twin_id, "name", 0, String::new());
            if let Some(c) = l.contracts.get_mut(&name_contract) {
                c.name = name.clone();
            }
            l.names.insert(name.clone(), name_contract);
            state.set("fqdn", Val::string(format!("{name}.{domain}")));
            state.set("name_contract_id", Val::Int(name_contract as i64));
        } else {
            ensure!(
                node.domain.is_some(),
                "node {node_id} cannot deploy a fqdn workload as it \
                does not have a public ipv4 configured"
            );
            let ok = fqdn_in.split('.').count() >= 2
                && fqdn_in.split('.').all(|p| {
                    !p.is_empty()
                        && p.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                });
            ensure!(
                ok && fqdn_in.rsplit('.').next().is_some_and(|t| t.len() >= 2),
                "invalid fqdn \
                '{fqdn_in}'"
            );
        }
        let kind = if name_proxy {
            "Gateway Name"
        } else {
            "Gateway Fqdn"
        };
        let project = if planned.str_or_empty("solution_type").is_empty() {
            name.clone()
        } else {
            planned.str_or_empty("solution_type")
        };
        let meta =
            serde_json::json!({"version": 3, "type": kind, "name": name, "projectName": project});
        let id = l.open_contract(ctx.twin_id, "node", node_id, meta.to_string());
        if name_contract != 0 {
            // the name contract goes with the node contract
            l.names.insert(name.clone(), id);
            if let Some(c) = l.contracts.get_mut(&name_contract) {
                c.network = id.to_string();
            }
        }
        state.set("id", Val::string(id.to_string()));
        state.set(
            "node_deployment_id",
            node_map([(node_id, id)], |c| Val::Int(c as i64)),
        );
        Ok(state)
    })
}

async fn proxy_destroy(ctx: &Ctx<'_>, prior: &Val) -> Result<()> {
    let id: u64 = prior.str_or_empty("id").parse().unwrap_or(0);
    let name_contract = prior.int_or_zero("name_contract_id") as u64;
    ctx.sim.with_ledger(|l| {
        l.cancel(id);
        if name_contract != 0 {
            l.cancel(name_contract);
        }
        Ok(())
    })?;
    let node = prior.int_or_zero("node") as u32;
    let _ = std::fs::remove_file(
        gateway_dir(ctx.sim, node)
            .join("sites")
            .join(format!("{id}.conf")),
    );
    gateway_sync(ctx.sim, node).await
}

/// `data "grid_gateway_domain"`: `<name>.<the node's domain>`, without reserving the name.
pub fn read_data_source(sim: &SimDir, type_name: &str, config: &Val) -> Result<Val> {
    ensure!(
        type_name == "grid_gateway_domain",
        "data source {type_name} is not simulated"
    );
    let node_id = config.int_or_zero("node") as u32;
    let ledger = sim.read()?;
    let node = ledger
        .node(node_id)
        .with_context(|| format!("couldn't get node {node_id} public config"))?;
    let domain = node
        .domain
        .clone()
        .with_context(|| format!("node {node_id} doesn't contain a domain in its public config"))?;
    let mut state = config.clone();
    state.set(
        "fqdn",
        Val::string(format!("{}.{domain}", config.str_or_empty("name"))),
    );
    state.set("id", Val::string(now().to_string()));
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_config_has_the_grids_exact_layout() {
        let key = wg_genkey().unwrap();
        let net = Network {
            id: "x".into(),
            twin_id: 1,
            name: "n".into(),
            ip_range: "10.1.0.0/16".into(),
            nodes: BTreeMap::from([(11, 3)]),
            external: Some(2),
            external_sk: key.clone(),
            access_node: 11,
            access_key: key.clone(),
            access_port: 1151,
            slot: 1,
            contracts: BTreeMap::new(),
            used_ips: BTreeMap::new(),
        };
        let text = access_wg_config(&net).unwrap();
        let lines: Vec<&str> = text.split('\n').collect();
        assert_eq!(lines[0], "", "an empty first line");
        assert_eq!(lines[1], "[Interface]");
        assert_eq!(lines[2], "Address = 100.64.1.2", "no prefix on the address");
        assert_eq!(lines[3], format!("PrivateKey = {key}"));
        assert_eq!(lines[6], "AllowedIPs = 10.1.0.0/16, 100.64.0.0/16");
        assert_eq!(lines[8], "Endpoint = 198.18.1.2:1151");
        assert_eq!(
            *lines.last().unwrap(),
            "\t",
            "a last line holding only a tab"
        );
        assert_eq!(wg_pubkey(&key).unwrap().len(), 44);
    }

    #[test]
    fn scheduler_falls_into_the_light_node_trap_unless_asked_for_wireguard() {
        let l = Ledger::new_grid();
        let req = |wg: bool| {
            Val::Map(BTreeMap::from([
                ("name".into(), Val::string("vm")),
                ("wireguard".into(), Val::Bool(wg)),
                ("yggdrasil".into(), Val::Bool(false)),
                ("mru".into(), Val::Int(1024)),
            ]))
        };
        let light = schedule(&l, 1, &req(false), &BTreeMap::new(), &[]).unwrap();
        assert!(
            l.node(light).unwrap().light,
            "no feature asked: a zos-light node"
        );
        let full = schedule(&l, 1, &req(true), &BTreeMap::new(), &[]).unwrap();
        assert!(!l.node(full).unwrap().light);
        let mut huge = req(true);
        huge.set("mru", Val::Int(10_000_000));
        assert_eq!(
            schedule(&l, 1, &huge, &BTreeMap::new(), &[])
                .unwrap_err()
                .to_string(),
            "couldn't find a node satisfying the given requirements"
        );
    }

    #[test]
    fn backends_follow_the_grids_formats() {
        let p = |b: &str, pass: bool| {
            Val::Map(BTreeMap::from([
                ("backends".into(), Val::List(vec![Val::string(b)])),
                ("tls_passthrough".into(), Val::Bool(pass)),
            ]))
        };
        assert!(check_backends(&p("http://10.1.3.2:8080", false)).is_ok());
        assert!(check_backends(&p("10.1.3.2:443", true)).is_ok());
        assert_eq!(
            check_backends(&p("https://10.1.3.2", false))
                .unwrap_err()
                .to_string(),
            "scheme expected to be http, got backend https://10.1.3.2"
        );
        assert!(
            check_backends(&p("http://example.com", false))
                .unwrap_err()
                .to_string()
                .contains("invalid ip address")
        );
        assert!(check_backends(&p("http://127.0.0.1", false)).is_err());
    }
}
