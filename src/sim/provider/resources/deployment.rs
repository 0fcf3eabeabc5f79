//! `grid_deployment`: one node contract; VMs as namespaces on this machine with `ip` from .2
//! upward per (network, node), `computedip` from the farm's pool (with its prefix),
//! `planetary_ip` and `mycelium_ip` as zos makes them, `console_url`; the node's capacity is
//! checked and used; GPUs only on a node the twin rents and that has them.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use anyhow::{Context as _, Result, bail, ensure};

use super::network::range_prefix;
use super::{Ctx, LoadError, held_elsewhere, hex_bytes, s, sim_sh};
use crate::sim::ledger::{GIB, Ledger, Network, Node, SimDir};
use crate::sim::provider::value::Val;

/// A deployment as booked: its contract, network, the node's third octet in it, and its VMs.
struct Booked {
    id: u64,
    net: Network,
    octet: u8,
    plans: Vec<VmPlan>,
}

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

// --- the grid's checks, in its order ---------------------------------------------------------
//
// A deployment meets the provider's and the grid client's checks in this order (provider
// internal/provider/resource_deployment.go:480-505 at b7d1a8c; grid-client at dbe67bef; zos):
// 1. the provider reads it (deployment.go:18-136): the node answers, seeds decode
//    ([`load_checks`]; `couldn't load deployment data with error: …`);
// 2. the client's Validate (deployer/deployment_deployer.go:32-44, 109-111; workloads/
//    deployment.go:70-124, vm.go:240-300, disk.go:54-64) ([`client_checks`]; `invalid deployment: …`);
// 3. private IPs (deployment_deployer.go:54-57, 113-116, 297-352; workloads/vm.go:333-380)
//    ([`address_checks`]; `could not generate deployments data: …`);
// 4. the deployer's Validate (deployer/deployer.go:71-84, 566-690): workload names, public IPs,
//    capacity ([`deployer_checks`]);
// 5. the contract (deployer.go:157-160), the node's own validation (deployer.go:164-171; zos
//    pkg/provision/engine.go:1006-1009) and the workloads' results (deployer.go:178-181, 333-334)
//    ([`node_checks`], [`check_gpus`], [`check_mycelium`]).
// Everything after the provider's reading carries `couldn't deploy deployment with error: …`.

/// A workload name's problem, as the grid client and zos word it (grid-client
/// workloads/deployment.go:126-140; zos pkg/gridtypes/id.go:78-95), with `max` characters.
pub(super) fn name_problem(name: &str, max: usize) -> Option<String> {
    if name.is_empty() {
        Some("name cannot be empty".into())
    } else if name.len() > max {
        Some(format!("name cannot exceed {max} characters"))
    } else if !crate::sim::provider::schema::valid_name(name) {
        Some("unsupported character in workload name".into())
    } else {
        None
    }
}

/// Go's `hex.DecodeString` error for `s`, if any (encoding/hex: an invalid byte first, then an
/// odd length).
pub(super) fn go_hex_error(s: &str) -> Option<String> {
    let bad = s.chars().find(|c| !c.is_ascii_hexdigit());
    match bad {
        Some(c) => Some(format!(
            "encoding/hex: invalid byte: U+{:04X} '{c}'",
            u32::from(c)
        )),
        None if s.len() % 2 == 1 => Some("encoding/hex: odd length hex string".into()),
        None => None,
    }
}

/// hashicorp/go-multierror's text for a list of errors (format.go `ListFormatFunc`).
pub(super) fn multierror(errors: &[String]) -> String {
    match errors {
        [one] => format!("1 error occurred:\n\t* {one}\n\n"),
        many => format!(
            "{} errors occurred:\n\t{}\n\n",
            many.len(),
            many.iter()
                .map(|e| format!("* {e}"))
                .collect::<Vec<_>>()
                .join("\n\t")
        ),
    }
}

/// Stage 1, what the provider reads before the grid client has the deployment: the node, and
/// each VM's `mycelium_ip_seed` as hex. Returns the node.
fn load_checks(l: &Ledger, planned: &Val) -> Result<Node> {
    let node_id = planned.int_or_zero("node") as u32;
    let node = l.node(node_id).cloned().ok_or_else(|| {
        LoadError(format!(
            "failed to get node client '{node_id}': failed to get node {node_id}: not found"
        ))
    })?;
    for vm in planned.get("vms").list() {
        let seed = vm.str_or_empty("mycelium_ip_seed");
        if let Some(why) = go_hex_error(&seed) {
            return Err(
                LoadError(format!("failed to decode mycelium ip seed '{seed}': {why}")).into(),
            );
        }
    }
    Ok(node)
}

/// Stage 2, the grid client's Validate of the deployment, its VMs and disks.
fn client_checks(planned: &Val) -> Result<()> {
    let problem = || -> Option<String> {
        if let Some(p) = name_problem(&planned.str_or_empty("name"), 50) {
            return Some(format!("deployment name is invalid: {p}"));
        }
        let vms = planned.get("vms").list();
        if let Some(p) =
            name_problem(&planned.str_or_empty("network_name"), 50).filter(|_| !vms.is_empty())
        {
            return Some(format!(
                "you passed vm/vms in the deployment but network name is invalid: {p}"
            ));
        }
        for vm in vms {
            let n = vm.str_or_empty("name");
            let flist = vm.str_or_empty("flist");
            let seed_bytes = vm.str_or_empty("mycelium_ip_seed").len() / 2;
            let why = if let Some(p) = name_problem(&n, 50) {
                format!("virtual machine name is invalid: {p}")
            } else if !(flist.ends_with(".flist") || flist.ends_with(".fl")) {
                format!(
                    "flist is invalid: flist: '{flist}' is invalid, should have a valid flist \
                        extension"
                )
            } else if !(1..=32).contains(&vm.int_or_zero("cpu")) {
                "CPUs must be more than or equal to 1 and less than or equal to 32".into()
            } else if vm.int_or_zero("memory") < 250 {
                "memory capacity can't be less that 250 MB".into()
            } else if seed_bytes != 0 && seed_bytes != 6 {
                format!("invalid mycelium ip seed length {seed_bytes} must be 6 or empty")
            } else {
                continue;
            };
            return Some(format!("vm '{n}' is invalid: {why}"));
        }
        for d in planned.get("disks").list() {
            let n = d.str_or_empty("name");
            let why = if let Some(p) = name_problem(&n, 50) {
                format!("disk name is invalid: {p}")
            } else if d.int_or_zero("size") == 0 {
                "disk size should be a positive integer not zero".into()
            } else {
                continue;
            };
            return Some(format!("disk '{n}' is invalid: {why}"));
        }
        None
    };
    match problem() {
        Some(why) => bail!("invalid deployment: {why}"),
        None => Ok(()),
    }
}

/// Stage 3, the client's private IPs: the network's /24 on the node (from the provider's state
/// file), a wanted `ip` inside it, a free host. Returns the node's third octet.
fn address_checks(net: Option<&Network>, node_id: u32, vms: &[Val]) -> Result<u8> {
    let fail = |inner: Vec<String>| {
        anyhow::anyhow!(
            "could not generate deployments data: {}",
            multierror(&[format!("failed to assign node ips: {}", multierror(&inner))])
        )
    };
    let Some((net, octet)) = net.and_then(|n| Some((n, *n.nodes.get(&node_id)?))) else {
        return Err(fail(vec![
            "invalid ip range : invalid CIDR address: ".into(),
        ]));
    };
    let range = format!("{}.{octet}", range_prefix(&net.ip_range));
    let mut problems = Vec::new();
    let mut free = 253usize.saturating_sub(net.used_ips.get(&node_id).map_or(0, Vec::len));
    for vm in vms {
        let n = vm.str_or_empty("name");
        let wanted = vm.str_or_empty("ip");
        if let Ok(ip) = wanted.parse::<Ipv4Addr>() {
            let o = ip.octets();
            if format!("{}.{}.{}", o[0], o[1], o[2]) != range {
                problems.push(format!(
                    "failed to assign IP to vm {n}: deployment ip range '{range}.0/24' doesn't \
                        contain ip '{wanted}' for vm '{n}'"
                ));
            }
        } else if free == 0 {
            problems.push(format!(
                "failed to assign IP to vm {n}: all 253 ips of the network are exhausted"
            ));
        } else {
            free -= 1;
        }
    }
    if problems.is_empty() {
        Ok(octet)
    } else {
        Err(fail(problems))
    }
}

/// Stage 4, the deployer's Validate: zos's deployment validity (names ≤ 50 at the zos the client
/// pins, unique, in the client's workload order: disks, then each VM's public IP `<vm>ip` and
/// the VM), then the farm's free public IPs; capacity follows in [`book_deployment`].
fn deployer_checks(
    l: &Ledger,
    sim: &SimDir,
    node: &Node,
    planned: &Val,
    contract: Option<u64>,
) -> Result<()> {
    let mut order: Vec<String> = planned
        .get("disks")
        .list()
        .iter()
        .map(|d| d.str_or_empty("name"))
        .collect();
    let mut wanted_ips = 0;
    for vm in planned.get("vms").list() {
        let n = vm.str_or_empty("name");
        if vm.bool_or_false("publicip") {
            order.push(format!("{n}ip"));
            wanted_ips += 1;
        }
        order.push(n);
    }
    let mut names = BTreeSet::new();
    for n in order {
        if let Some(p) = name_problem(&n, 50) {
            bail!("invalid deployment: name '{n}' is invalid: {p}");
        }
        ensure!(
            names.insert(n.clone()),
            "invalid deployment: multiple workloads with the same name '{n}'"
        );
    }
    // on an update, the IPs the contract holds count as the farm's
    let held = contract
        .and_then(|c| l.contracts.get(&c))
        .map_or(0, |c| c.public_ips.len());
    let free = l
        .farms
        .iter()
        .find(|f| f.farm_id == node.farm_id)
        .map_or(0, |f| {
            f.public_ips
                .iter()
                .filter(|(ip, holder)| **holder == 0 && !held_elsewhere(sim, ip))
                .count()
        });
    ensure!(
        node.light || wanted_ips <= free + held,
        "farm {} does not have enough public ips",
        node.farm_id
    );
    Ok(())
}

/// Stage 5, what the node says of the deployment it is sent (zos since e35a5fd8: workload names
/// of at most 36 characters, for cloud-hypervisor's virtio-fs tags), as the client reports it.
fn node_checks(node_id: u32, planned: &Val) -> Result<()> {
    for vm in planned.get("vms").list() {
        let n = vm.str_or_empty("name");
        if let Some(p) = name_problem(&n, 36) {
            bail!("error sending deployment to node {node_id}: name '{n}' is invalid: {p}");
        }
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
) -> Result<Booked> {
    let node = load_checks(l, planned)?;
    client_checks(planned)?;
    let node_id = node.node_id;
    let network_name = planned.str_or_empty("network_name");
    let vms = planned.get("vms").list();
    let net = l
        .networks
        .values()
        .find(|n| {
            n.twin_id == ctx.twin_id && n.name == network_name && n.nodes.contains_key(&node_id)
        })
        .cloned();
    let fresh: Vec<Val> = vms
        .iter()
        .filter(|v| !keep.contains_key(&v.str_or_empty("name")))
        .cloned()
        .collect();
    let octet = address_checks(net.as_ref(), node_id, &fresh)?;
    let net = net.context("the network's range on the node was checked")?;
    deployer_checks(l, ctx.sim, &node, planned, contract)?;
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
    // the client counts twice the node's SSD as its own (deployer/deployer.go:676-687)
    let free_s = (2 * node.total.sru).saturating_sub(node.used.sru - held_s.min(node.used.sru));
    if mru > free_m || sru > free_s {
        bail!(
            "node {node_id} does not have enough resources. needed: [mru: {mru}, sru: {sru}, hru: \
                0], free: [mru: {free_m}, sru: {free_s}, hru: {}]",
            node.total.hru - node.used.hru
        );
    }
    let renter = l.rented_by(&node);
    let id = match contract {
        Some(c) => c,
        None => {
            // TFChain takes no node contract of another twin on a rented node (grid-client
            // deployer/deployer.go:157-160; pallet-smart-contract NodeNotAvailableToDeploy)
            ensure!(
                renter == 0 || renter == ctx.twin_id,
                "failed to create contract on node {node_id}: NodeNotAvailableToDeploy"
            );
            let kind = if node.light { "vm-light" } else { "vm" };
            let meta = serde_json::json!({"version": 3, "type": kind, "name": planned.str_or_empty("name"), "projectName": format!("vm/{}", planned.str_or_empty("name"))});
            l.open_contract(ctx.twin_id, "node", node_id, meta.to_string())
        }
    };
    node_checks(node_id, planned)?;
    // the workloads' results, in the order zos provisions a VM (pkg/primitives/vm/vm.go:137-239)
    let gpus = check_gpus(vms, &node, renter, id)?;
    // addresses
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
            let h = match wanted.parse::<Ipv4Addr>() {
                Err(_) => (2..=254u8)
                    .find(|h| !used.contains(h))
                    .context("all 253 ips of the network are exhausted")?,
                Ok(ip) => {
                    let o = ip.octets();
                    // zos: pkg/primitives/vm/utils.go:266-269
                    ensure!(
                        o[3] != 1,
                        "error waiting deployment: workload {name} within deployment {id} \
                            failed with error: ip {wanted} is reserved"
                    );
                    // the client lets it through (vm.go:350-354); here two VMs cannot share one
                    ensure!(
                        !used.contains(&o[3]),
                        "ip {wanted} is already used on node {node_id} (the simulator cannot \
                            give one address to two VMs)"
                    );
                    o[3]
                }
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
                        .find(|(ip, holder)| **holder == 0 && !held_elsewhere(ctx.sim, ip))
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
    check_mycelium(vms, &net, node_id, id)?;
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
        c.gpus = gpus;
    }
    if let Some(n) = l.node_mut(node_id) {
        n.used.cru = n.used.cru.saturating_sub(held_c) + cru;
        n.used.mru = n.used.mru.saturating_sub(held_m) + mru;
        n.used.sru = n.used.sru.saturating_sub(held_s) + sru;
    }
    Ok(Booked {
        id,
        net,
        octet,
        plans,
    })
}

/// The node's answer to VMs with `gpus` (zos pkg/primitives/vm/vm.go:137-154 and gpu.go:148-152),
/// as the grid client reports a workload's error after the contract is made
/// (grid-client deployer/deployer.go:178-181, 333-334): only on a rented node, only its own GPUs.
/// Returns the GPUs the deployment holds.
fn check_gpus(vms: &[Val], node: &Node, renter: u32, contract: u64) -> Result<Vec<String>> {
    let mut held = Vec::new();
    for vm in vms {
        let failed = |why: String| {
            anyhow::anyhow!(
                "error waiting deployment: workload {} within deployment {contract} failed with \
                    error: {why}",
                vm.str_or_empty("name")
            )
        };
        let wanted: Vec<String> = vm
            .get("gpus")
            .list()
            .iter()
            .filter_map(|g| g.str().map(String::from))
            .collect();
        if wanted.is_empty() {
            continue;
        }
        if renter == 0 {
            return Err(failed(
                "usage of GPU is not allowed unless node is rented".into(),
            ));
        }
        for gpu in wanted {
            if !node.gpus.iter().any(|g| g.id == gpu) {
                return Err(failed(format!(
                    "failed to prepare requested gpu device(s): unknown GPU id '{gpu}'"
                )));
            }
            held.push(gpu);
        }
    }
    Ok(held)
}

/// The address Mycelium gives a node for a key (mycelium/src/crypto.rs:112-124 at af95abd): the
/// x25519 public key of the 32-byte secret, hashed with blake3 into 16 bytes, whose first byte
/// becomes 0x04, plus 1 when the hash's first byte has an odd number of bits set (400::/7).
fn mycelium_node_address(secret: [u8; 32]) -> [u8; 16] {
    let public = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(secret));
    let mut buf = [0u8; 16];
    blake3::Hasher::new()
        .update(public.as_bytes())
        .finalize_xof()
        .fill(&mut buf);
    buf[0] = 0x04 | (buf[0].count_ones() % 2) as u8;
    buf
}

/// A VM's Mycelium address as zos computes it (zos pkg/network/nr/net_resource.go:89-111): the
/// /64 of the node's Mycelium address for the network's key there, then `ff0f`, then the VM's
/// 6-byte seed. `key` is the network's key on the node (64 hex digits), `seed` the VM's
/// `mycelium_ip_seed` (12 hex digits); both were checked at apply.
fn mycelium_ip(key: &str, seed: &str) -> Result<std::net::Ipv6Addr> {
    let secret: [u8; 32] = hex_bytes(key)?
        .try_into()
        .map_err(|_| anyhow::anyhow!("a mycelium key is not 32 bytes"))?;
    let seed = hex_bytes(seed)?;
    ensure!(seed.len() == 6, "a mycelium seed is not 6 bytes");
    let mut ip = mycelium_node_address(secret);
    ip[8..10].copy_from_slice(&[0xff, 0x0f]);
    ip[10..].copy_from_slice(&seed);
    Ok(std::net::Ipv6Addr::from(ip))
}

/// The node's answer to a VM with a `mycelium_ip_seed` (zos pkg/network/networker.go:418-420,
/// pkg/network/nr/net_resource.go:89-95, pkg/primitives/vm/utils.go:187-190), reported as the
/// grid client reports a workload's error: the network needs a Mycelium key on the node, and the
/// seed may not be all zeros or all ones.
fn check_mycelium(vms: &[Val], net: &Network, node_id: u32, contract: u64) -> Result<()> {
    for vm in vms {
        let seed = vm.str_or_empty("mycelium_ip_seed");
        if seed.is_empty() {
            continue;
        }
        let why = if !net.mycelium_keys.contains_key(&node_id) {
            "network resource does not support mycelium"
        } else if ["000000000000", "ffffffffffff"].contains(&seed.to_ascii_lowercase().as_str()) {
            "invalid seed"
        } else {
            continue;
        };
        bail!(
            "error waiting deployment: workload {} within deployment {contract} failed with \
                error: could not set up tap device: {why}",
            vm.str_or_empty("name")
        );
    }
    Ok(())
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

/// A VM's Yggdrasil address as zos gives it (zos pkg/network/networker.go:454-471,
/// pkg/network/yggdrasil/yygdrasil.go:156-183): the node's /64 of 300::/8, then the first 8
/// bytes of sha512 of the hardware address of the VM's tap, which zos makes from `ygg:` and the
/// tap's name, the workload's unique name for `ygg` (pkg/primitives/vm/utils.go:220,
/// pkg/gridtypes/id.go:63-75 and 98-104). zos derives the node's /64 from the node's Yggdrasil
/// key; the simulated nodes have none, so here it comes from a hash of the node id.
fn planetary_ip(node: i64, twin: u32, contract: u64, vm: &str) -> std::net::Ipv6Addr {
    let n = crate::sim::ledger::hash_hex(&format!("ygg-node-{node}"));
    let mut ip = [0u8; 16];
    ip[0] = 0x03;
    for (i, byte) in ip[1..8].iter_mut().enumerate() {
        *byte = u8::from_str_radix(&n[2 * i..2 * i + 2], 16).unwrap_or(0);
    }
    let tap = unique(&format!("{twin}-{contract}-{vm}"), "ygg");
    let hw = hardware_addr(format!("ygg:{tap}").as_bytes());
    let digest = ring::digest::digest(&ring::digest::SHA512, &hw);
    ip[8..].copy_from_slice(&digest.as_ref()[..8]);
    std::net::Ipv6Addr::from(ip)
}

/// zos's `WorkloadID.Unique(n)` (pkg/gridtypes/id.go:63-75): base58 of md5 of `<id>:<n>`, at
/// most 13 characters.
pub(super) fn unique(workload_id: &str, n: &str) -> String {
    use md5::Digest as _;
    let hash = md5::Md5::digest(format!("{workload_id}:{n}").as_bytes());
    let mut b = bs58::encode(hash).into_string();
    b.truncate(13);
    b
}

/// zos's `HardwareAddrFromInputBytes` (pkg/network/ifaceutil/mac.go at 172a0a29): six bytes of
/// md5 of the input, local and unicast, at the first offset that falls in a usable range
/// (rehashing the hash when none does).
fn hardware_addr(input: &[u8]) -> [u8; 6] {
    use md5::Digest as _;
    let in_range = |a: &[u8; 6]| {
        let (last3, first2) = (&a[3..], &a[..2]);
        if last3 <= &[0x00, 0x51, 0xff][..] {
            return &[0x00, 0x03][..] <= first2;
        }
        if last3 <= &[0x90, 0x00, 0xff][..] {
            return &[0x00, 0x54][..] <= first2 && first2 != [0x33, 0x33];
        }
        *a <= [0xff, 0xff, 0xff, 0xff, 0xff, 0xfe] && &[0x90, 0x02][..] <= first2
    };
    let mut b = input.to_vec();
    loop {
        let hs: [u8; 16] = md5::Md5::digest(&b).into();
        for offset in 0..=(16 - 6) {
            let mut addr = [0u8; 6];
            addr.copy_from_slice(&hs[offset..offset + 6]);
            addr[0] = (addr[0] | 2) & 0xfe;
            if in_range(&addr) {
                return addr;
            }
        }
        b = hs.to_vec();
    }
}

async fn start_vms(
    ctx: &Ctx<'_>,
    planned: &Val,
    booked: &Booked,
    only: &BTreeSet<String>,
) -> Result<()> {
    let (id, net, octet, plans) = (booked.id, &booked.net, booked.octet, &booked.plans);
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

fn deployment_state(ctx: &Ctx<'_>, planned: &Val, booked: &Booked) -> Val {
    let (id, net, octet, plans) = (booked.id, &booked.net, booked.octet, &booked.plans);
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
                planetary_ip(node.int().unwrap_or_default(), ctx.twin_id, id, &p.name).to_string()
            } else {
                String::new()
            }),
        );
        let key = node
            .int()
            .and_then(|n| net.mycelium_keys.get(&(n as u32)))
            .map(String::as_str)
            .unwrap_or_default();
        vm.set(
            "mycelium_ip",
            Val::string(
                mycelium_ip(key, &seed)
                    .map(|ip| ip.to_string())
                    .unwrap_or_default(),
            ),
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
    let booked = ctx
        .sim
        .with_ledger(|l| book_deployment(l, ctx, planned, None, &BTreeMap::new()))?;
    let all: BTreeSet<String> = booked.plans.iter().map(|p| p.name.clone()).collect();
    if let Err(e) = start_vms(ctx, planned, &booked, &all).await {
        // the SDK cancels a contract whose deployment failed
        let _ = cancel_deployment(ctx, booked.id).await;
        return Err(e);
    }
    Ok(deployment_state(ctx, planned, &booked))
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
    let booked =
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
    let new: BTreeSet<String> = booked
        .plans
        .iter()
        .map(|p| p.name.clone())
        .filter(|n| !keep.contains_key(n))
        .collect();
    start_vms(ctx, planned, &booked, &new).await?;
    Ok(deployment_state(ctx, planned, &booked))
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
    fn planetary_ips_are_per_node_and_per_vm_as_zos_makes_them() {
        let a = planetary_ip(11, 7001, 1005, "vm");
        let b = planetary_ip(12, 7001, 1006, "vm");
        let c = planetary_ip(11, 7001, 1005, "vm2");
        assert_ne!(a, b, "two VMs on two nodes");
        assert_ne!(a, c, "two VMs on one node");
        let prefix = |ip: &std::net::Ipv6Addr| ip.segments()[..4].to_vec();
        assert_eq!(prefix(&a), prefix(&c), "one /64 per node");
        assert_ne!(prefix(&a), prefix(&b));
        assert_eq!(a.octets()[0], 0x03, "in 300::/8 (Yggdrasil's subnets)");
        // the interface id zos gives workload 7001-1005-vm: its tap is 31VVJ7Zk7HeLA, whose
        // hardware address is ae:4e:92:68:2f:68 (computed apart, in Python, from zos's code)
        assert_eq!(unique("7001-1005-vm", "ygg"), "31VVJ7Zk7HeLA");
        assert_eq!(
            hardware_addr(b"ygg:31VVJ7Zk7HeLA"),
            [0xae, 0x4e, 0x92, 0x68, 0x2f, 0x68]
        );
        assert_eq!(a.segments()[4..], [0x106b, 0x5779, 0x5324, 0x6456]);
    }

    /// Known answer computed apart, with Python's `cryptography` (x25519) and `blake3` packages
    /// following mycelium's crypto.rs and zos's net_resource.go.
    #[test]
    fn mycelium_ips_are_the_nodes_64_then_ff0f_then_the_seed() {
        let key = "9f1c7a0e5b3d2c4f6a8b0d1e3f5a7c9b2d4e6f8a0c1b3d5e7f9a2c4e6b8d0f1a";
        assert_eq!(
            std::net::Ipv6Addr::from(mycelium_node_address(
                hex_bytes(key).unwrap().try_into().unwrap()
            ))
            .to_string(),
            "585:a8ae:eee3:84ee:9238:45c8:e73a:8c20"
        );
        assert_eq!(
            mycelium_ip(key, "b60f2b7ec39c").unwrap().to_string(),
            "585:a8ae:eee3:84ee:ff0f:b60f:2b7e:c39c"
        );
        let vm = |seed: &str| {
            Val::Map(BTreeMap::from([
                ("name".into(), Val::string("vm")),
                ("mycelium_ip_seed".into(), Val::string(seed)),
            ]))
        };
        let mut net = network_on_11();
        let err = check_mycelium(&[vm("b60f2b7ec39c")], &net, 11, 1005).unwrap_err();
        assert_eq!(
            err.to_string(),
            "error waiting deployment: workload vm within deployment 1005 failed with error: \
                could not set up tap device: network resource does not support mycelium"
        );
        net.mycelium_keys.insert(11, key.into());
        check_mycelium(&[vm("b60f2b7ec39c")], &net, 11, 1005).unwrap();
        assert!(
            check_mycelium(&[vm("ffffffffffff")], &net, 11, 1005)
                .unwrap_err()
                .to_string()
                .ends_with("could not set up tap device: invalid seed")
        );
    }

    fn network_on_11() -> Network {
        Network {
            id: "n".into(),
            twin_id: 7001,
            name: "n".into(),
            ip_range: "10.1.0.0/16".into(),
            nodes: BTreeMap::from([(11, 2)]),
            external: None,
            external_sk: String::new(),
            access_node: 0,
            access_key: String::new(),
            access_port: 0,
            slot: 1,
            contracts: BTreeMap::new(),
            used_ips: BTreeMap::new(),
            mycelium_keys: BTreeMap::new(),
        }
    }

    #[test]
    fn gpus_serve_only_a_rented_node_that_has_them() {
        let mut l = Ledger::new_grid();
        let vm = |gpu: &str| {
            Val::Map(BTreeMap::from([
                ("name".into(), Val::string("vm")),
                ("gpus".into(), Val::List(vec![Val::string(gpu)])),
            ]))
        };
        let rtx = "0000:3b:00.0/10de/2204";
        let node = l.node(21).unwrap().clone();
        assert_eq!(
            check_gpus(&[vm(rtx)], &node, 0, 1005)
                .unwrap_err()
                .to_string(),
            "error waiting deployment: workload vm within deployment 1005 failed with error: \
                usage of GPU is not allowed unless node is rented"
        );
        let twin = l.twin_of("a b c");
        l.rent(twin, 21).unwrap();
        let renter = l.rented_by(l.node(21).unwrap());
        assert_eq!(renter, twin);
        assert_eq!(
            check_gpus(&[vm(rtx)], &node, renter, 1005).unwrap(),
            vec![rtx.to_string()]
        );
        assert!(
            check_gpus(&[vm("0000:0e:00.0/1002/744c")], &node, renter, 1005)
                .unwrap_err()
                .to_string()
                .ends_with(
                    "failed to prepare requested gpu device(s): unknown GPU id \
                        '0000:0e:00.0/1002/744c'"
                ),
            "node 22's GPU is not on node 21"
        );
        // TFChain: a rented node takes no second rent, and a node with contracts no rent
        assert_eq!(
            l.rent(twin, 21).unwrap_err().to_string(),
            "NodeHasRentContract"
        );
        l.open_contract(twin, "node", 12, "{}".into());
        assert_eq!(
            l.rent(twin, 12).unwrap_err().to_string(),
            "NodeHasActiveContracts"
        );
    }

    /// Each error the simulator raises for a deployment comes at the grid's stage and with the
    /// grid's words: each case breaks two rules, and the one the grid checks first is reported.
    #[test]
    fn deployment_checks_run_in_the_grids_order() {
        super::super::with_test_ctx(|ctx| {
            let mut grid = Ledger::new_grid();
            let mut net = network_on_11();
            net.nodes.insert(21, 3);
            grid.networks.insert(net.id.clone(), net);
            let vm = |pairs: &[(&str, Val)]| {
                let mut vm = BTreeMap::from([
                    ("name".to_string(), Val::string("vm")),
                    (
                        "flist".to_string(),
                        Val::string("https://hub.grid.tf/x.flist"),
                    ),
                    ("cpu".to_string(), Val::Int(1)),
                    ("memory".to_string(), Val::Int(512)),
                ]);
                for (k, v) in pairs {
                    vm.insert(k.to_string(), v.clone());
                }
                Val::Map(vm)
            };
            let first_error = |node: i64, network: &str, vms: Vec<Val>| -> String {
                let planned = Val::Map(BTreeMap::from([
                    ("name".into(), Val::string("d")),
                    ("node".into(), Val::Int(node)),
                    ("network_name".into(), Val::string(network)),
                    ("vms".into(), Val::List(vms)),
                ]));
                let mut l = grid.clone();
                match book_deployment(&mut l, ctx, &planned, None, &BTreeMap::new()) {
                    Err(e) if e.is::<LoadError>() => format!("load: {e:#}"),
                    Err(e) => format!("{e:#}"),
                    Ok(_) => "booked".into(),
                }
            };
            let s = Val::string;
            let small = ("memory", Val::Int(100));
            let long = "v".repeat(40);
            // the provider reads the node before anything else
            assert_eq!(
                first_error(93, "n", vec![vm(std::slice::from_ref(&small))]),
                "load: failed to get node client '93': failed to get node 93: not found"
            );
            assert_eq!(
                first_error(
                    11,
                    "n",
                    vec![vm(&[small.clone(), ("mycelium_ip_seed", s("zz"))])]
                ),
                "load: failed to decode mycelium ip seed 'zz': encoding/hex: invalid byte: U+007A 'z'"
            );
            // the client's Validate: per VM, the flist before the memory
            assert_eq!(
                first_error(11, "n", vec![vm(&[small.clone(), ("flist", s("x.tar"))])]),
                "invalid deployment: vm 'vm' is invalid: flist is invalid: flist: 'x.tar' is invalid, \
                should have a valid flist extension"
            );
            assert_eq!(
                first_error(11, "n", vec![vm(std::slice::from_ref(&small)), vm(&[])]),
                "invalid deployment: vm 'vm' is invalid: memory capacity can't be less that 250 MB",
                "before the duplicate name"
            );
            // private IPs, before the deployer's names and capacity
            let dup = || vec![vm(&[]), vm(&[])];
            assert_eq!(
                first_error(12, "n", dup()),
                "could not generate deployments data: 1 error occurred:\n\t* failed to assign node \
                ips: 1 error occurred:\n\t* invalid ip range : invalid CIDR address: \n\n\n\n"
            );
            assert_eq!(
                first_error(11, "n", vec![vm(&[("ip", s("10.1.9.5"))]), vm(&[])]),
                "could not generate deployments data: 1 error occurred:\n\t* failed to assign node \
                ips: 1 error occurred:\n\t* failed to assign IP to vm vm: deployment ip range \
                '10.1.2.0/24' doesn't contain ip '10.1.9.5' for vm 'vm'\n\n\n\n"
            );
            // the deployer's Validate: names, then public IPs, then capacity
            assert_eq!(
                first_error(11, "n", dup()),
                "invalid deployment: multiple workloads with the same name 'vm'"
            );
            let huge = ("memory", Val::Int(200_000));
            assert_eq!(
                first_error(
                    21,
                    "n",
                    vec![vm(&[huge.clone(), ("publicip", Val::Bool(true))])]
                ),
                "farm 2 does not have enough public ips"
            );
            assert!(
                first_error(11, "n", vec![vm(&[huge, ("name", s(&long))])])
                    .starts_with("node 11 does not have enough resources. needed: [mru: "),
                "capacity before the node's own name rule"
            );
            // the node: its name rule, then what the VM's provisioning meets
            let rtx = ("gpus", Val::List(vec![s("0000:3b:00.0/10de/2204")]));
            assert_eq!(
                first_error(21, "n", vec![vm(&[("name", s(&long)), rtx.clone()])]),
                format!(
                    "error sending deployment to node 21: name '{long}' is invalid: name cannot \
                    exceed 36 characters"
                )
            );
            let reserved = ("ip", s("10.1.3.1"));
            let seed = ("mycelium_ip_seed", s("b60f2b7ec39c"));
            assert!(
                first_error(21, "n", vec![vm(&[reserved.clone(), seed.clone(), rtx])]).ends_with(
                    "failed with error: usage of GPU is not allowed unless node is rented"
                )
            );
            assert!(
                first_error(21, "n", vec![vm(&[reserved, seed.clone()])])
                    .ends_with("failed with error: ip 10.1.3.1 is reserved")
            );
            assert!(first_error(21, "n", vec![vm(&[seed])]).ends_with(
                "failed with error: could not set up tap device: network resource does not \
                    support mycelium"
            ));
            assert_eq!(first_error(21, "n", vec![vm(&[])]), "booked");
        });
    }
}
