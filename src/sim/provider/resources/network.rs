//! `grid_network`: one node contract per node; per-node /24s from `ip_range` (the user's access
//! range first when `add_wg_access`); a public node as the grid client picks it ([`public_node`]),
//! on a contract of its own when none of `nodes` has a public IPv4; `access_wg_config` in the
//! grid's exact layout.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use anyhow::{Context as _, Result, bail, ensure};

use super::deployment::{go_hex_error, multierror, name_problem};
use super::{Ctx, s, sim_sh, wg_genkey, wg_pubkey};
use crate::sim::ledger::{Ledger, Network};
use crate::sim::provider::node_map;
use crate::sim::provider::value::Val;

pub(super) fn octet_b(ip_range: &str) -> Result<u8> {
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
    state.set("public_node_id", Val::Int(i64::from(net.access_node)));
    state.set("access_wg_config", Val::string(access_wg_config(net)?));
    Ok(state)
}

/// "10.20" of "10.20.0.0/16".
pub(super) fn range_prefix(ip_range: &str) -> String {
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

// --- the grid's checks, in its order ---------------------------------------------------------
//
// A network meets the provider's and the grid client's checks in this order (provider
// internal/provider/resource_network.go:352-406 at b7d1a8c, which passes the client's error on
// as it is, `diag.FromErr`; grid-client deployer/network_deployer.go:89-156 at dbe67bef; zos):
// 1. the provider reads it (`newNetwork`, resource_network.go:120-242): each node answers, each
//    mycelium key is hex ([`load_checks`]; `couldn't load network data: …`);
// 2. the client's Validate (network_deployer.go:32-58; workloads/network.go:164-189,
//    network_light.go:160-185): name, nodes, mycelium keys ([`client_checks`]; go-multierror's
//    layout, unwrapped);
// 3. the deployments (network_deployer.go:61-87, 96-99, 308-369; workloads/network.go:564-614):
//    the public node, then the nodes' /24s ([`public_node`]; `could not generate deployments
//    data: …`);
// 4. the deployer's Validate (deployer/deployer.go:566-690): nothing a network can break here;
// 5. per node whose part is new, in order: the contract (deployer.go:157-160: no contract of
//    another twin on a rented node), then the node's own validation (deployer.go:164-171; zos
//    pkg/provision/engine.go:1006-1009 at e35a5fd8, names ≤ 36; pkg/provision/storage.fs/
//    storage.go:79-91, a twin's network name once per node) ([`node_checks`]; `could not deploy
//    network NAME: …`, network_deployer.go:142-143).

/// Stage 1, what the provider reads before the grid client has the network: each node in
/// `listed` order (resource_network.go:131-138, 244-248; grid-client node/client_pool.go:41-44),
/// then each mycelium key as hex (resource_network.go:169-183).
fn load_checks(l: &Ledger, planned: &Val, listed: &[u32]) -> Result<()> {
    for n in listed {
        ensure!(
            l.node(*n).is_some(),
            "couldn't load network data: failed to get node client '{n}': failed to get node {n}: \
                not found"
        );
    }
    for key in planned
        .get("mycelium_keys")
        .map()
        .into_iter()
        .flat_map(|m| m.values())
    {
        let key = key.str().unwrap_or_default();
        if let Some(why) = go_hex_error(key) {
            bail!("couldn't load network data: couldn't decode mycelium key '{key}': {why}");
        }
    }
    Ok(())
}

/// Stage 2, the grid client's Validate of the network (workloads/network.go:164-189): its name
/// (≤ 50), at least one node, each mycelium key 32 bytes or empty and for a listed node; the
/// error in go-multierror's layout (network_deployer.go:43-47).
fn client_checks(planned: &Val, listed: &[u32]) -> Result<()> {
    let name = planned.str_or_empty("name");
    let problem = || -> Option<String> {
        if let Some(p) = name_problem(&name, 50) {
            return Some(format!("network name is invalid: {p}"));
        }
        if listed.is_empty() {
            return Some(format!(
                "number of nodes in znet: {name}, should be nonzero positive number"
            ));
        }
        for (node, key) in planned.get("mycelium_keys").map().into_iter().flatten() {
            let len = key.str().unwrap_or_default().len() / 2;
            if len != 32 && len != 0 {
                return Some(format!(
                    "invalid mycelium key length {len} must be 32 or empty"
                ));
            }
            if !listed.iter().any(|n| n.to_string() == *node) {
                let nodes: Vec<String> = listed.iter().map(u32::to_string).collect();
                return Some(format!(
                    "invalid node {node} for mycelium key, must be included in the network nodes \
                        [{}]",
                    nodes.join(" ")
                ));
            }
        }
        None
    };
    match problem() {
        Some(why) => bail!("{}", multierror(&[why])),
        None => Ok(()),
    }
}

/// Stage 5, per node that gets a new part, in order: TFChain's contract (none of another twin
/// on a rented node), then the node's own checks of the deployment it is sent: names of at most
/// 36 characters (zos since e35a5fd8), and a twin's network name once on a node (zos
/// storage.fs/storage.go:79-91: the other network's workload id, `twin-contract-name`).
fn node_checks(l: &Ledger, ctx: &Ctx<'_>, net: &Network, name: &str, new: &[u32]) -> Result<()> {
    for n in new {
        let renter = l.node(*n).map_or(0, |node| l.rented_by(node));
        ensure!(
            renter == 0 || renter == ctx.twin_id,
            "could not deploy network {name}: failed to create contract on node {n}: \
                NodeNotAvailableToDeploy"
        );
        let sent = |why: String| {
            format!("could not deploy network {name}: error sending deployment to node {n}: {why}")
        };
        if let Some(p) = name_problem(name, 36) {
            bail!(sent(format!("name '{name}' is invalid: {p}")));
        }
        let other = l.networks.values().find_map(|o| {
            (o.id != net.id && o.twin_id == ctx.twin_id && o.name == name)
                .then(|| o.contracts.get(n))
                .flatten()
        });
        if let Some(c) = other {
            bail!(sent(format!(
                "sharable workload '{name}' is conflicting with another workload \
                    '{}-{c}-{name}': conflict",
                ctx.twin_id
            )));
        }
    }
    Ok(())
}

/// The network's public node, as the grid client chooses it (grid-client
/// workloads/network.go:592-607, deployer/network_deployer.go:308-366): none unless WireGuard
/// access is asked for or hidden nodes share the network with others; then the one it has
/// (`kept`), else the last node of `nodes` with a public IPv4, else the first node GridProxy lists
/// with one (deployer/node_filter.go:185-250: `ipv4=true`, `status=up`), which joins the network
/// with a contract of its own. When GridProxy lists none, the client reports both its failed
/// search (network_deployer.go:338-348, node_filter.go:24 and 94-97) and the network's lack
/// (network.go:601-604), in go-multierror's layout.
fn public_node(l: &Ledger, name: &str, nodes: &[u32], wg: bool, kept: u32) -> Result<u32> {
    let has_ipv4 = |n: &u32| l.node(*n).is_some_and(|x| !x.public_ipv4.is_empty());
    let hidden = nodes.iter().filter(|n| !has_ipv4(n)).count();
    if !(wg || (hidden != 0 && nodes.len() > 1)) {
        return Ok(0);
    }
    if kept != 0 {
        return Ok(kept);
    }
    if let Some(n) = nodes.iter().rev().find(|n| has_ipv4(n)) {
        return Ok(*n);
    }
    match l.nodes.iter().map(|n| n.node_id).find(has_ipv4) {
        Some(n) => Ok(n),
        None => bail!(
            "could not generate deployments data: {}",
            multierror(&[
                "failed to get public node: could not find enough nodes with specified options"
                    .into(),
                format!("failed to get public node for {name}"),
            ])
        ),
    }
}

/// Checks and books a network in the ledger (contracts, octets, slot, keys), in the grid's order
/// of checks (above).
fn network_book(l: &mut Ledger, ctx: &Ctx<'_>, planned: &Val, mut net: Network) -> Result<Network> {
    let name = planned.str_or_empty("name");
    let listed: Vec<u32> = planned
        .get("nodes")
        .list()
        .iter()
        .filter_map(Val::int)
        .map(|n| n as u32)
        .collect();
    load_checks(l, planned, &listed)?;
    client_checks(planned, &listed)?;
    let nodes = network_nodes(planned);
    // an empty key is no key (the client sends no Mycelium config for it)
    net.mycelium_keys = planned
        .get("mycelium_keys")
        .map()
        .into_iter()
        .flatten()
        .filter_map(|(node, key)| Some((node.parse().ok()?, key.str()?.to_string())))
        .filter(|(_, key): &(u32, String)| !key.is_empty())
        .collect();
    let all_light = nodes.iter().all(|n| l.node(*n).is_some_and(|x| x.light));
    let wg = planned.bool_or_false("add_wg_access") && !all_light;
    // a network of zos-light nodes only has no WireGuard and no public node
    // (grid-client workloads/network_light.go)
    let public = if all_light {
        0
    } else {
        public_node(l, &name, &nodes, wg, net.access_node)?
    };
    net.access_node = public;
    // the nodes that get a /24 and a contract: hidden ones first, then those with an endpoint,
    // then an extra public node (grid-client workloads/network.go:610)
    let (hidden, reachable): (Vec<u32>, Vec<u32>) = nodes
        .iter()
        .partition(|n| l.node(**n).is_none_or(|x| x.public_ipv4.is_empty()));
    let mut members = hidden;
    members.extend(reachable);
    if public != 0 && !members.contains(&public) {
        members.push(public);
    }
    // octets: kept, then the access range, then new nodes in that order
    let mut used: BTreeSet<u8> = net.nodes.values().copied().collect();
    used.extend(net.external);
    fn next(used: &mut BTreeSet<u8>) -> Result<u8> {
        let o = (2..=254u8).find(|o| !used.contains(o)).with_context(|| {
            format!(
                "could not generate deployments data: {}",
                multierror(&[
                    "could not assign node ips: could not find a free ip to add node".into()
                ])
            )
        })?;
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
    for n in &members {
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
    // nodes no longer listed (nor the public node): cancel their part
    let gone: Vec<u32> = net
        .nodes
        .keys()
        .filter(|n| !members.contains(n))
        .copied()
        .collect();
    for n in gone {
        net.nodes.remove(&n);
        if let Some(c) = net.contracts.remove(&n) {
            l.cancel(c);
        }
    }
    let new: Vec<u32> = members
        .iter()
        .filter(|n| !net.contracts.contains_key(n))
        .copied()
        .collect();
    node_checks(l, ctx, &net, &name, &new)?;
    for n in &members {
        if !net.contracts.contains_key(n) {
            let meta = serde_json::json!({"version": 3, "type": if l.node(*n).is_some_and(|x| x.light) { "network-light" } else { "network" }, "name": name, "projectName": "Network"});
            let c = l.open_contract(ctx.twin_id, "node", *n, meta.to_string());
            if let Some(contract) = l.contracts.get_mut(&c) {
                contract.network = net.id.clone();
            }
            net.contracts.insert(*n, c);
        }
    }
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

pub(super) async fn network_create(ctx: &Ctx<'_>, planned: &Val) -> Result<Val> {
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
        mycelium_keys: BTreeMap::new(),
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

pub(super) async fn network_update(ctx: &Ctx<'_>, prior: &Val, planned: &Val) -> Result<Val> {
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

pub(super) async fn network_destroy(ctx: &Ctx<'_>, prior: &Val) -> Result<()> {
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
            mycelium_keys: BTreeMap::new(),
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

    /// The access node as the grid client picks it: the last requested node with a public IPv4,
    /// else one GridProxy lists with one, on a contract of its own; none when not needed.
    #[test]
    fn the_public_node_is_the_grid_clients_choice() {
        super::super::with_test_ctx(|ctx| {
            let book = |l: &mut Ledger, nodes: &[i64], wg: bool| {
                let planned = Val::Map(BTreeMap::from([
                    ("name".into(), Val::string("n")),
                    (
                        "nodes".into(),
                        Val::List(nodes.iter().map(|n| Val::Int(*n)).collect()),
                    ),
                    ("add_wg_access".into(), Val::Bool(wg)),
                ]));
                let fresh = Network {
                    id: format!("net-{nodes:?}-{wg}"),
                    ..book_template()
                };
                let net = network_book(l, ctx, &planned, fresh).unwrap();
                l.networks.remove(&net.id);
                net
            };
            let mut l = Ledger::new_grid();
            // 22 is hidden: WireGuard access needs a public node, here 11, with its own contract
            let net = book(&mut l, &[22], true);
            assert_eq!(net.access_node, 11);
            assert_eq!(net.contracts.keys().copied().collect::<Vec<_>>(), [11, 22]);
            assert_eq!(
                (net.external, net.nodes[&22], net.nodes[&11]),
                (Some(2), 3, 4),
                "the access range first, then the requested node, then the public one"
            );
            // a requested node with a public IPv4 is the access node, the last such one
            let net = book(&mut l, &[11, 22, 12], true);
            assert_eq!(net.access_node, 12);
            assert_eq!(net.contracts.len(), 3);
            assert_eq!(net.nodes[&22], 3, "hidden nodes get their ranges first");
            // hidden nodes among several need a public node even without WireGuard access
            assert_eq!(book(&mut l, &[22, 24], false).access_node, 11);
            // one hidden node alone needs none
            let net = book(&mut l, &[22], false);
            assert_eq!((net.access_node, net.contracts.len()), (0, 1));
            // without any node with a public IPv4 on the grid, the client's error
            for n in &mut l.nodes {
                n.public_ipv4.clear();
            }
            let planned = Val::Map(BTreeMap::from([
                ("name".into(), Val::string("n")),
                ("nodes".into(), Val::List(vec![Val::Int(22)])),
                ("add_wg_access".into(), Val::Bool(true)),
            ]));
            let err = network_book(&mut l, ctx, &planned, book_template()).unwrap_err();
            assert_eq!(
                err.to_string(),
                "could not generate deployments data: 2 errors occurred:\n\t* failed to get \
                    public node: could not find enough nodes with specified options\n\t* failed \
                    to get public node for n\n\n"
            );
        });
    }

    /// Each error the simulator raises for a network comes at the grid's stage and with the
    /// grid's words: each case breaks two rules, and the one the grid checks first is reported.
    #[test]
    fn network_checks_run_in_the_grids_order() {
        super::super::with_test_ctx(|ctx| {
            let key = "ab".repeat(32);
            let first_error =
                |l: &Ledger, name: &str, nodes: &[i64], wg: bool, keys: &[(&str, &str)]| {
                    let planned = Val::Map(BTreeMap::from([
                        ("name".into(), Val::string(name)),
                        (
                            "nodes".into(),
                            Val::List(nodes.iter().map(|n| Val::Int(*n)).collect()),
                        ),
                        ("add_wg_access".into(), Val::Bool(wg)),
                        (
                            "mycelium_keys".into(),
                            Val::Map(
                                keys.iter()
                                    .map(|(n, k)| (n.to_string(), Val::string(*k)))
                                    .collect(),
                            ),
                        ),
                    ]));
                    let mut l = l.clone();
                    match network_book(&mut l, ctx, &planned, book_template()) {
                        Err(e) => e.to_string(),
                        Ok(_) => "booked".into(),
                    }
                };
            let grid = Ledger::new_grid();
            let long = "n".repeat(40);
            let longer = "n".repeat(60);
            // the provider reads the nodes, then the keys
            assert_eq!(
                first_error(&grid, "n", &[93], false, &[("93", "zz")]),
                "couldn't load network data: failed to get node client '93': failed to get node \
                    93: not found"
            );
            assert_eq!(
                first_error(&grid, &longer, &[11], false, &[("11", "zz")]),
                "couldn't load network data: couldn't decode mycelium key 'zz': encoding/hex: \
                    invalid byte: U+007A 'z'"
            );
            // the client's Validate: the name, then each key's length, then its node
            assert_eq!(
                first_error(&grid, &longer, &[11], false, &[("11", "abcd")]),
                "1 error occurred:\n\t* network name is invalid: name cannot exceed 50 \
                    characters\n\n"
            );
            assert_eq!(
                first_error(&grid, "n", &[11], false, &[("12", "abcd")]),
                "1 error occurred:\n\t* invalid mycelium key length 2 must be 32 or empty\n\n"
            );
            let mut dark = grid.clone();
            for n in &mut dark.nodes {
                n.public_ipv4.clear();
            }
            assert_eq!(
                first_error(&dark, "n", &[22], true, &[("12", &key)]),
                "1 error occurred:\n\t* invalid node 12 for mycelium key, must be included in \
                    the network nodes [22]\n\n"
            );
            // the deployments: a public node, before anything is sent to a node
            assert!(
                first_error(&dark, &long, &[22], true, &[])
                    .starts_with("could not generate deployments data: 2 errors occurred:"),
                "the public node before the node's name rule"
            );
            // per node: the contract, then the node's name rule, then the twin's other network
            let mut rented = grid.clone();
            rented.rent(4242, 21).unwrap();
            assert_eq!(
                first_error(&rented, &long, &[21], false, &[]),
                format!(
                    "could not deploy network {long}: failed to create contract on node 21: \
                        NodeNotAvailableToDeploy"
                )
            );
            let mut taken = grid.clone();
            let mut other = book_template();
            other.id = "other".into();
            other.name = long.clone();
            other.contracts.insert(21, 77);
            taken.networks.insert(other.id.clone(), other);
            assert_eq!(
                first_error(&taken, &long, &[21], false, &[]),
                format!(
                    "could not deploy network {long}: error sending deployment to node 21: name \
                        '{long}' is invalid: name cannot exceed 36 characters"
                )
            );
            let mut taken = grid.clone();
            let mut other = book_template();
            other.id = "other".into();
            other.name = "n".into();
            other.contracts.insert(21, 77);
            taken.networks.insert(other.id.clone(), other);
            assert_eq!(
                first_error(&taken, "n", &[21], false, &[]),
                "could not deploy network n: error sending deployment to node 21: sharable \
                    workload 'n' is conflicting with another workload '7001-77-n': conflict"
            );
            assert_eq!(
                first_error(&grid, "n", &[21], false, &[("21", "")]),
                "booked",
                "an empty key is no key"
            );
        });
    }

    fn book_template() -> Network {
        Network {
            id: "x".into(),
            twin_id: 7001,
            name: String::new(),
            ip_range: "10.1.0.0/16".into(),
            nodes: BTreeMap::new(),
            external: None,
            external_sk: String::new(),
            access_node: 0,
            access_key: String::new(),
            access_port: 0,
            slot: 0,
            contracts: BTreeMap::new(),
            used_ips: BTreeMap::new(),
            mycelium_keys: BTreeMap::new(),
        }
    }
}
