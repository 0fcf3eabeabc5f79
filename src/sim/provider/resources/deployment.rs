//! `grid_deployment`: one node contract; VMs as namespaces on this machine with `ip` from .2
//! upward per (network, node), `computedip` from the farm's pool (with its prefix),
//! `mycelium_ip` when a seed is given, `console_url`; the node's capacity is checked and used.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use anyhow::{Context as _, Result, bail, ensure};

use super::network::range_prefix;
use super::{Ctx, hex_bytes, routed_here, s, sim_sh};
use crate::sim::ledger::{GIB, Ledger, Network, SimDir};
use crate::sim::provider::value::Val;

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

/// A VM's `env_vars` as `export NAME='value'` lines (quoted by the one quoting function), for
/// its init's environment and its login shells. Names that are not shell names (`[A-Za-z_]`
/// then `[A-Za-z0-9_]`) are left out: a shell cannot hold them.
fn vm_env(env_vars: &Val) -> String {
    let shell_name = |k: &str| {
        k.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    };
    env_vars
        .map()
        .into_iter()
        .flatten()
        .filter(|(k, _)| shell_name(k))
        .map(|(k, v)| {
            format!(
                "export {k}={}\n",
                crate::tools::ssh::shell_quote(v.str().unwrap_or_default())
            )
        })
        .collect()
}

/// A VM's Yggdrasil address as zos gives it: the node's /64 of 300::/8 (zos derives it from the
/// node's Yggdrasil key; here from a hash of the node id) and an interface id of the workload
/// (here a hash of the contract and the VM's name), so two VMs never share one.
fn planetary_ip(node: i64, contract: u64, vm: &str) -> String {
    let n = crate::sim::ledger::hash_hex(&format!("ygg-node-{node}"));
    let w = crate::sim::ledger::hash_hex(&format!("ygg-vm-{contract}-{vm}"));
    format!(
        "300:{}:{}:{}:{}:{}:{}:{}",
        &n[0..4],
        &n[4..8],
        &n[8..12],
        &w[0..4],
        &w[4..8],
        &w[8..12],
        &w[12..16]
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
        let env = vm_env(vm.get("env_vars"));
        sim_sh(ctx.sim, &args, &[("VM_SSH_KEY", &key), ("VM_ENV", &env)])
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
                planetary_ip(node.int().unwrap_or_default(), id, &p.name)
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

pub(super) async fn deployment_create(ctx: &Ctx<'_>, planned: &Val) -> Result<Val> {
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

pub(super) async fn deployment_update(ctx: &Ctx<'_>, prior: &Val, planned: &Val) -> Result<Val> {
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

pub(super) async fn deployment_destroy(ctx: &Ctx<'_>, prior: &Val) -> Result<()> {
    let id: u64 = prior.str_or_empty("id").parse().unwrap_or(0);
    cancel_deployment(ctx, id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planetary_ips_are_per_node_and_per_vm() {
        let a = planetary_ip(11, 7, "vm");
        let b = planetary_ip(12, 8, "vm");
        let c = planetary_ip(11, 7, "vm2");
        assert_ne!(a, b, "two VMs on two nodes");
        assert_ne!(a, c, "two VMs on one node");
        let prefix = |ip: &str| ip.split(':').take(4).collect::<Vec<_>>().join(":");
        assert_eq!(prefix(&a), prefix(&c), "one /64 per node");
        assert_ne!(prefix(&a), prefix(&b));
        let addr: std::net::Ipv6Addr = a.parse().unwrap();
        assert_eq!(
            addr.segments()[0],
            0x300,
            "in 300::/8 (Yggdrasil's subnets)"
        );
    }
}
