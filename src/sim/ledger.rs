//! The simulated grid's book of record: nodes and farms, twins, contracts, networks and VMs, and
//! the global registry of gateway names. One JSON file (`<data dir>/sim/ledger.json`), replaced
//! atomically and changed only under an exclusive lock, so that several providers (Terraform
//! runs several resources at once, and several deployments may run) see one grid.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::grid::proxy::Resources;

/// GiB in bytes.
pub const GIB: u64 = 1 << 30;

/// A simulated node: what GridProxy reports of it, and what is used on it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Node {
    pub node_id: u32,
    pub farm_id: u32,
    pub twin_id: u32,
    /// zos-light nodes (features network-light, zmachine-light) have no WireGuard access.
    pub light: bool,
    /// The farm's gateway domain, for a gateway node.
    pub domain: Option<String>,
    pub country: String,
    pub city: String,
    /// Total capacity, as GridProxy reports it: cores and bytes of memory, SSD and HDD.
    pub total: Resources,
    /// Used capacity, in the same units; grows as workloads are placed.
    pub used: Resources,
    pub certification: String,
    /// The IPv4 (with its prefix) of the node's public config, or "" for a node without one
    /// (hidden: no WireGuard endpoint; tfgrid-sdk-go grid-client/workloads/network.go:574-589).
    #[serde(default)]
    pub public_ipv4: String,
    /// The node's GPUs, as GridProxy lists them (`gpus` of a node).
    #[serde(default)]
    pub gpus: Vec<Gpu>,
    /// The rent contract that gives the whole node to its twin, 0 when the node is not rented.
    #[serde(default)]
    pub rent_contract: u64,
}

/// A GPU of a node: `id` is `<slot>/<vendor>/<device>` as a VM's `gpus` names it (zos
/// pkg/gridtypes/zos/zmachine.go:144-149); `vendor` and `device` are the PCI names GridProxy shows.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Gpu {
    pub id: String,
    pub vendor: String,
    pub device: String,
}

/// The ledger's layout: 2 gave nodes public IPv4s, GPUs and a rent state.
const LEDGER_VERSION: u32 = 2;

/// A simulated farm with its pool of public IPv4 addresses (TEST-NET-2, 198.51.100.100-129).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Farm {
    pub farm_id: u32,
    pub name: String,
    pub twin_id: u32,
    /// Public IPv4 addresses with their prefix, and the contract holding each (0 = free).
    pub public_ips: BTreeMap<String, u64>,
}

/// A contract: a node contract (a deployment or one node's part of a network) or a name contract.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Contract {
    pub contract_id: u64,
    pub twin_id: u32,
    /// `node` or `name`.
    pub kind: String,
    /// 0 for a name contract.
    pub node_id: u32,
    /// `Created` or `Deleted`.
    pub state: String,
    /// The grid's contract metadata: `{"version":3,"type":"vm","name":…,"projectName":…}`.
    pub metadata: String,
    /// A name contract's name.
    #[serde(default)]
    pub name: String,
    pub created_at: u64,
    #[serde(default)]
    pub cancelled_at: u64,
    /// Capacity this contract holds on its node (cores, bytes).
    #[serde(default)]
    pub cru: u64,
    #[serde(default)]
    pub mru: u64,
    #[serde(default)]
    pub sru: u64,
    /// Public IPv4 addresses it holds.
    #[serde(default)]
    pub public_ips: Vec<String>,
    /// VM folders (under the simulator's `vms/`) this contract runs.
    #[serde(default)]
    pub vms: Vec<String>,
    /// The network's id (a network part, or the network a deployment's VMs are on).
    #[serde(default)]
    pub network: String,
    /// Host numbers of the deployment's VMs in their node's /24 of `network`.
    #[serde(default)]
    pub private_hosts: Vec<u8>,
    /// GPUs of the node its VMs hold (ids as [`Gpu::id`]).
    #[serde(default)]
    pub gpus: Vec<String>,
}

/// A grid network as the simulator keeps it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Network {
    pub id: String,
    pub twin_id: u32,
    pub name: String,
    pub ip_range: String,
    /// node → third octet of its /24.
    pub nodes: BTreeMap<u32, u8>,
    /// Third octet of the user's access range, when WireGuard access was asked for.
    pub external: Option<u8>,
    pub external_sk: String,
    /// The access node's WireGuard key and port (stable here; the real grid rotates them on
    /// every update of the network).
    pub access_node: u32,
    pub access_key: String,
    pub access_port: u16,
    /// The access node's address block on this machine: 198.18.SLOT.0/24.
    pub slot: u8,
    /// node → contract id.
    pub contracts: BTreeMap<u32, u64>,
    /// node → host numbers used by VMs.
    pub used_ips: BTreeMap<u32, Vec<u8>>,
    /// node → the network's Mycelium key there (64 hex digits), from `mycelium_keys`.
    #[serde(default)]
    pub mycelium_keys: BTreeMap<u32, String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct Ledger {
    /// The layout this ledger was written in ([`LEDGER_VERSION`]; 0 before versions).
    #[serde(default)]
    pub version: u32,
    pub nodes: Vec<Node>,
    pub farms: Vec<Farm>,
    /// sha256(mnemonic) hex → twin id.
    pub twins: BTreeMap<String, u32>,
    pub contracts: BTreeMap<u64, Contract>,
    pub networks: BTreeMap<String, Network>,
    /// Gateway name → name contract id (global, like TFChain's).
    pub names: BTreeMap<String, u64>,
    pub next_contract: u64,
    pub next_twin: u32,
}

/// The simulator's folder and its files.
#[derive(Clone, Debug)]
pub struct SimDir {
    pub root: PathBuf,
}

impl SimDir {
    pub fn new(root: PathBuf) -> SimDir {
        SimDir { root }
    }
    pub fn ledger(&self) -> PathBuf {
        self.root.join("ledger.json")
    }
    /// Where VM disks (overlay upper layers) live: outside every folder a VM overlays (`/etc`,
    /// `/root`, `/tmp`, `/usr`, `/var`, …), one subfolder per simulator.
    pub fn vms(&self) -> PathBuf {
        let tag = &hash_hex(&self.root.to_string_lossy())[..8];
        PathBuf::from("/mnt/tfgrid-compose-sim").join(tag)
    }
    pub fn script(&self) -> PathBuf {
        self.root.join("sim.sh")
    }

    /// Runs `change` on the ledger under the exclusive lock and saves it when `change` succeeds.
    pub fn with_ledger<T>(&self, change: impl FnOnce(&mut Ledger) -> Result<T>) -> Result<T> {
        crate::files::create_private_dir(&self.root)?;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.root.join("lock"))
            .context("opening the simulator's lock")?;
        lock.lock().context("locking the simulator's ledger")?;
        let mut ledger = self.read()?;
        let out = change(&mut ledger)?;
        let json = serde_json::to_vec_pretty(&ledger)?;
        crate::files::write_atomic(&self.ledger(), &json, 0o600)?;
        drop(lock);
        Ok(out)
    }

    /// The ledger as it is now (a new grid when there is none yet).
    pub fn read(&self) -> Result<Ledger> {
        match std::fs::read(self.ledger()) {
            Ok(bytes) => serde_json::from_slice::<Ledger>(&bytes)
                .map(Ledger::upgraded)
                .with_context(|| {
                    format!(
                        "{}: the simulator's ledger is damaged; `tfgrid-compose sim reset` starts \
                            over",
                        self.ledger().display()
                    )
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Ledger::new_grid()),
            Err(e) => Err(e).with_context(|| format!("reading {}", self.ledger().display())),
        }
    }
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Ledger {
    /// A ledger of an earlier layout with what that layout lacked: nodes get the public IPv4s
    /// and GPUs of a new grid's nodes of the same id.
    fn upgraded(mut self) -> Ledger {
        if self.version < LEDGER_VERSION {
            let fresh = Ledger::new_grid();
            for node in &mut self.nodes {
                if let Some(f) = fresh.node(node.node_id) {
                    node.public_ipv4 = f.public_ipv4.clone();
                    node.gpus = f.gpus.clone();
                }
            }
            self.version = LEDGER_VERSION;
        }
        self
    }

    /// A new simulated grid: two farms, eight nodes (two of them zos-light, one a gateway with a
    /// domain), public IPv4 addresses on farm 1.
    pub fn new_grid() -> Ledger {
        let node = |node_id: u32,
                    farm_id: u32,
                    light: bool,
                    cru: u64,
                    mem_gib: u64,
                    ssd_gib: u64,
                    domain: Option<&str>| Node {
            node_id,
            farm_id,
            twin_id: 100 + node_id,
            light,
            domain: domain.map(String::from),
            country: if farm_id == 1 {
                "Belgium".into()
            } else {
                "Egypt".into()
            },
            city: if farm_id == 1 {
                "Ghent".into()
            } else {
                "Cairo".into()
            },
            total: Resources {
                cru,
                mru: mem_gib * GIB,
                sru: ssd_gib * GIB,
                hru: 2000 * GIB,
            },
            used: Resources {
                cru: 0,
                mru: 2 * GIB,
                sru: 20 * GIB,
                hru: 0,
            },
            certification: if farm_id == 1 {
                "Certified".into()
            } else {
                "Diy".into()
            },
            // 22 and 24 sit behind NAT, and zos-light nodes have no WireGuard endpoint
            public_ipv4: if light || [22, 24].contains(&node_id) {
                String::new()
            } else {
                format!("198.51.100.{node_id}/24")
            },
            gpus: Vec::new(),
            rent_contract: 0,
        };
        let gpu = |id: &str, vendor: &str, device: &str| Gpu {
            id: id.into(),
            vendor: vendor.into(),
            device: device.into(),
        };
        let mut nodes = vec![
            node(11, 1, false, 16, 64, 1000, None),
            node(12, 1, false, 16, 64, 1000, None),
            node(13, 1, false, 8, 32, 500, Some("gent01.sim.grid.tf")),
            node(14, 1, true, 16, 64, 1000, None),
            node(21, 2, false, 32, 128, 2000, None),
            node(22, 2, false, 8, 32, 500, None),
            node(23, 2, true, 32, 128, 2000, None),
            node(24, 2, false, 4, 8, 100, None),
        ];
        nodes[4].gpus = vec![
            gpu(
                "0000:3b:00.0/10de/2204",
                "NVIDIA Corporation",
                "GA102 [GeForce RTX 3090]",
            ),
            gpu(
                "0000:5e:00.0/10de/2204",
                "NVIDIA Corporation",
                "GA102 [GeForce RTX 3090]",
            ),
        ];
        nodes[5].gpus = vec![gpu(
            "0000:0e:00.0/1002/744c",
            "Advanced Micro Devices, Inc. [AMD/ATI]",
            "Navi 31 [Radeon RX 7900 XT/7900 XTX]",
        )];
        // nodes with a domain have 198.51.100.<node id>; the farm's pool starts at .100
        let public_ips = (100..130)
            .map(|h| (format!("198.51.100.{h}/24"), 0))
            .collect();
        let farms = vec![
            Farm {
                farm_id: 1,
                name: "simfarm-ghent".into(),
                twin_id: 201,
                public_ips,
            },
            Farm {
                farm_id: 2,
                name: "simfarm-cairo".into(),
                twin_id: 202,
                public_ips: BTreeMap::new(),
            },
        ];
        Ledger {
            version: LEDGER_VERSION,
            nodes,
            farms,
            next_contract: 1000,
            next_twin: 7000,
            ..Ledger::default()
        }
    }

    /// The twin of a mnemonic (made on first use, as signing up on the chain would).
    pub fn twin_of(&mut self, mnemonic: &str) -> u32 {
        let key = hash_hex(mnemonic);
        if let Some(t) = self.twins.get(&key) {
            return *t;
        }
        self.next_twin += 1;
        self.twins.insert(key, self.next_twin);
        self.next_twin
    }

    /// The twin of a mnemonic if it has one (no side effect).
    pub fn known_twin(&self, mnemonic: &str) -> Option<u32> {
        self.twins.get(&hash_hex(mnemonic)).copied()
    }

    pub fn node(&self, id: u32) -> Option<&Node> {
        self.nodes.iter().find(|n| n.node_id == id)
    }

    pub fn node_mut(&mut self, id: u32) -> Option<&mut Node> {
        self.nodes.iter_mut().find(|n| n.node_id == id)
    }

    /// A new contract in state `Created`.
    pub fn open_contract(
        &mut self,
        twin_id: u32,
        kind: &str,
        node_id: u32,
        metadata: String,
    ) -> u64 {
        self.next_contract += 1;
        let id = self.next_contract;
        let contract = Contract {
            contract_id: id,
            twin_id,
            kind: kind.into(),
            node_id,
            state: "Created".into(),
            metadata,
            name: String::new(),
            created_at: now(),
            cancelled_at: 0,
            cru: 0,
            mru: 0,
            sru: 0,
            public_ips: Vec::new(),
            vms: Vec::new(),
            network: String::new(),
            private_hosts: Vec::new(),
            gpus: Vec::new(),
        };
        self.contracts.insert(id, contract);
        id
    }

    /// Cancels a contract: frees its capacity, public IPs and name. Returns the VM folders it ran
    /// (for the caller to stop). Cancelling a cancelled or unknown contract does nothing.
    pub fn cancel(&mut self, id: u64) -> Vec<String> {
        let Some(c) = self.contracts.get_mut(&id) else {
            return Vec::new();
        };
        if c.state != "Created" {
            return Vec::new();
        }
        c.state = "Deleted".into();
        c.cancelled_at = now();
        let c = c.clone();
        if let Some(node) = self.node_mut(c.node_id) {
            node.used.cru = node.used.cru.saturating_sub(c.cru);
            node.used.mru = node.used.mru.saturating_sub(c.mru);
            node.used.sru = node.used.sru.saturating_sub(c.sru);
        }
        for farm in &mut self.farms {
            for (ip, holder) in farm.public_ips.iter_mut() {
                if c.public_ips.contains(ip) {
                    *holder = 0;
                }
            }
        }
        self.names.retain(|_, holder| *holder != id);
        if c.kind == "rent"
            && let Some(node) = self.node_mut(c.node_id)
        {
            node.rent_contract = 0;
        }
        if let Some(used) = self
            .networks
            .get_mut(&c.network)
            .and_then(|n| n.used_ips.get_mut(&c.node_id))
        {
            used.retain(|h| !c.private_hosts.contains(h));
        }
        c.vms
    }

    /// The twin that rents a node, 0 when nobody does.
    pub fn rented_by(&self, node: &Node) -> u32 {
        self.contracts
            .get(&node.rent_contract)
            .filter(|c| c.state == "Created")
            .map_or(0, |c| c.twin_id)
    }

    /// Whether a node can be rented now: nobody rents it and no node contract is on it (TFChain's
    /// rule; GridProxy's `rentable`).
    pub fn rentable(&self, node: &Node) -> bool {
        self.rented_by(node) == 0 && self.node_contracts_on(node.node_id) == 0
    }

    fn node_contracts_on(&self, node_id: u32) -> usize {
        self.contracts
            .values()
            .filter(|c| c.kind == "node" && c.node_id == node_id && c.state == "Created")
            .count()
    }

    /// A rent contract of `twin_id` on `node_id`: the whole node is the twin's until it is
    /// cancelled. TFChain's checks and error names, in its order (pallet-smart-contract
    /// `_create_rent_contract`): `NodeNotExists`, `NodeHasRentContract`, `NodeHasActiveContracts`.
    pub fn rent(&mut self, twin_id: u32, node_id: u32) -> Result<u64> {
        let node = self.node(node_id).context("NodeNotExists")?;
        anyhow::ensure!(self.rented_by(node) == 0, "NodeHasRentContract");
        anyhow::ensure!(
            self.node_contracts_on(node_id) == 0,
            "NodeHasActiveContracts"
        );
        let meta = serde_json::json!({"type": "rent"}).to_string();
        let id = self.open_contract(twin_id, "rent", node_id, meta);
        if let Some(node) = self.node_mut(node_id) {
            node.rent_contract = id;
        }
        Ok(id)
    }

    /// Cancels the rent contract of `twin_id` on `node_id`; TFChain refuses while node contracts
    /// run on the node (`NodeHasActiveContracts`, pallet-smart-contract `cancel_contract`).
    pub fn end_rent(&mut self, twin_id: u32, node_id: u32) -> Result<u64> {
        let node = self.node(node_id).context("NodeNotExists")?;
        let id = node.rent_contract;
        anyhow::ensure!(
            self.rented_by(node) == twin_id && twin_id != 0,
            "node {node_id} is not rented by twin {twin_id}"
        );
        anyhow::ensure!(
            self.node_contracts_on(node_id) == 0,
            "NodeHasActiveContracts"
        );
        self.cancel(id);
        Ok(id)
    }

    /// Contracts of a twin that are still `Created`.
    pub fn active(&self, twin_id: u32) -> impl Iterator<Item = &Contract> {
        self.contracts
            .values()
            .filter(move |c| c.twin_id == twin_id && c.state == "Created")
    }
}

/// sha256 of a secret, hex (the ledger never holds the secret itself).
pub fn hash_hex(secret: &str) -> String {
    crate::ids::sha256_hex(secret.as_bytes())
}

/// The simulator's folder under a data dir.
pub fn sim_dir(data_dir: &Path) -> SimDir {
    SimDir::new(data_dir.join("sim"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_frees_capacity_ips_and_names_once() {
        let mut l = Ledger::new_grid();
        let twin = l.twin_of("a b c");
        assert_eq!(l.twin_of("a b c"), twin, "one twin per mnemonic");
        let id = l.open_contract(twin, "node", 11, "{}".into());
        let c = l.contracts.get_mut(&id).unwrap();
        c.mru = 4 * GIB;
        c.public_ips = vec!["198.51.100.100/24".into()];
        c.vms = vec!["c1001-0".into()];
        l.node_mut(11).unwrap().used.mru += 4 * GIB;
        *l.farms[0].public_ips.get_mut("198.51.100.100/24").unwrap() = id;
        l.names.insert("site".into(), id);
        assert_eq!(l.cancel(id), vec!["c1001-0".to_string()]);
        assert_eq!(l.node(11).unwrap().used.mru, 2 * GIB);
        assert_eq!(l.farms[0].public_ips["198.51.100.100/24"], 0);
        assert!(l.names.is_empty());
        assert_eq!(l.active(twin).count(), 0);
        assert!(l.cancel(id).is_empty(), "a second cancel does nothing");
    }

    #[test]
    fn a_ledger_of_the_earlier_layout_gains_the_nodes_public_ipv4s_and_gpus() {
        let mut old = serde_json::to_value(Ledger::new_grid()).unwrap();
        old.as_object_mut().unwrap().remove("version");
        for node in old["nodes"].as_array_mut().unwrap() {
            let node = node.as_object_mut().unwrap();
            for key in ["public_ipv4", "gpus", "rent_contract"] {
                node.remove(key);
            }
        }
        let read: Ledger = serde_json::from_value::<Ledger>(old).unwrap().upgraded();
        assert_eq!(read.version, LEDGER_VERSION);
        assert_eq!(read.node(11).unwrap().public_ipv4, "198.51.100.11/24");
        assert_eq!(read.node(21).unwrap().gpus.len(), 2);
        assert!(read.node(22).unwrap().public_ipv4.is_empty());
    }
}
