//! The contracts a deployment holds, or will hold: from a pattern's `placement:` and the
//! variables `up` would pass (before anything exists), or from the deployment's Terraform state
//! (what runs). One `grid_deployment` is one node contract, billed on the sum of its VMs.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use super::Capacity;
use crate::grid::placement::{Inputs, number, request};
use crate::pattern::Pattern;

/// One VM (or a deployment's data disk, with no cpu or memory): cores, MB of memory, GB of SSD.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Vm {
    pub name: String,
    pub cpu: u64,
    pub memory_mb: u64,
    pub disk_gb: u64,
}

impl Vm {
    /// In zos's units: memory MiB and disk GiB in bytes (the provider passes `memory` in MB and
    /// `rootfs_size` in MB, a disk's `size` in GB, as binary units).
    pub fn capacity(&self) -> Capacity {
        Capacity {
            cru: self.cpu,
            mru: self.memory_mb << 20,
            sru: self.disk_gb << 30,
            hru: 0,
        }
    }
}

/// The sum of the VMs' capacity: what their node contract reserves.
pub fn capacity(vms: &[Vm]) -> Capacity {
    let mut total = Capacity::default();
    for vm in vms {
        total.add(vm.capacity());
    }
    total
}

/// What a contract pays for.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Work {
    /// A node contract: VMs and public IPv4 addresses (on a node the twin rents, only the
    /// addresses are billed: `cost.rs:74-79`).
    Node {
        vms: Vec<Vm>,
        public_ips: u32,
        on_rented_node: bool,
    },
    /// A name contract (a gateway name).
    Name { name: String },
    /// A dedicated node's rent: its whole capacity at the dedication discount, plus the
    /// farmer's extra fee in mUSD a month.
    Rent {
        capacity: Capacity,
        extra_fee_musd: u64,
    },
}

impl Work {
    pub fn kind(&self) -> &'static str {
        match self {
            Work::Node { .. } => "node",
            Work::Name { .. } => "name",
            Work::Rent { .. } => "rent",
        }
    }
}

/// One contract of a plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedContract {
    /// The placement's role, the Terraform resource, or the name.
    pub label: String,
    /// 0 when not chosen yet.
    pub node: u64,
    /// The contract's id once it exists (0 before).
    pub contract_id: u64,
    pub work: Work,
}

/// The contracts of one deployment.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Plan {
    pub contracts: Vec<PlannedContract>,
}

impl Plan {
    /// VMs over all contracts.
    pub fn vm_count(&self) -> usize {
        self.contracts
            .iter()
            .map(|c| match &c.work {
                Work::Node { vms, .. } => vms.iter().filter(|vm| vm.cpu > 0).count(),
                _ => 0,
            })
            .sum()
    }
}

/// The plan of a pattern with `variables` (the values `up` passes; defaults fill the rest):
/// one node contract per `placement:` entry, its VMs (`count` of each), and one public IPv4
/// when the placement asks for it. A pattern with no placement (the local one) has no contract.
///
/// Errors: a placement names a variable that has no number value.
pub fn from_pattern(
    pattern: &Pattern,
    variables: &BTreeMap<String, serde_json::Value>,
) -> Result<Plan> {
    let filter = crate::grid::select::NodeFilter::default();
    let excluded = std::collections::BTreeSet::new();
    let inputs = Inputs {
        pattern,
        variables,
        node_flag: None,
        manifest_nodes: None,
        filter: &filter,
        use_gridproxy: false,
        excluded: &excluded,
        seed: String::new(),
    };
    let mut contracts = Vec::new();
    for spec in &pattern.manifest.placement {
        let mut vms = Vec::new();
        for vm in &spec.vms {
            let count = match &vm.count {
                Some(c) => number(&inputs, c, "count")?,
                None => 1,
            };
            for _ in 0..count {
                vms.push(Vm {
                    name: format!("{}{}", spec.role, vms.len() + 1),
                    cpu: number(&inputs, &vm.cpu, "cpu")?,
                    memory_mb: number(&inputs, &vm.memory, "memory")?,
                    disk_gb: number(&inputs, &vm.disk, "disk")?,
                });
            }
        }
        if let [only] = vms.as_mut_slice() {
            only.name.clone_from(&spec.role);
        }
        let node = variables
            .get(&spec.variable)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        contracts.push(PlannedContract {
            label: spec.role.clone(),
            node,
            contract_id: 0,
            work: Work::Node {
                vms,
                public_ips: u32::from(request(&inputs, spec)?.public_ipv4),
                on_rented_node: false,
            },
        });
    }
    Ok(Plan { contracts })
}

/// What a deployment's Terraform state (`terraform.tfstate`) holds: each `grid_deployment`
/// (its VMs, `rootfs_size` in MB, data disks, public IPv4) and each `grid_name_proxy`'s name
/// contract. `None` when there is no state file or it holds no grid resource.
pub fn from_tfstate(path: &Path) -> Option<Plan> {
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    let mut contracts = Vec::new();
    for resource in json["resources"].as_array().into_iter().flatten() {
        let kind = resource["type"].as_str().unwrap_or_default();
        let label = resource["name"].as_str().unwrap_or_default();
        for instance in resource["instances"].as_array().into_iter().flatten() {
            let a = &instance["attributes"];
            let int = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
            match kind {
                "grid_deployment" => {
                    let mut public_ips = 0;
                    let mut vms: Vec<Vm> = a["vms"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|vm| {
                            public_ips += u32::from(vm["publicip"].as_bool().unwrap_or(false));
                            Vm {
                                name: vm["name"].as_str().unwrap_or_default().to_string(),
                                cpu: int(&vm["cpu"]),
                                memory_mb: int(&vm["memory"]),
                                disk_gb: int(&vm["rootfs_size"]).div_ceil(1024),
                            }
                        })
                        .collect();
                    vms.extend(a["disks"].as_array().into_iter().flatten().map(|d| Vm {
                        name: format!("disk {}", d["name"].as_str().unwrap_or_default()),
                        cpu: 0,
                        memory_mb: 0,
                        disk_gb: int(&d["size"]),
                    }));
                    contracts.push(PlannedContract {
                        label: label.to_string(),
                        node: int(&a["node"]),
                        contract_id: a["id"].as_str().and_then(|id| id.parse().ok()).unwrap_or(0),
                        work: Work::Node {
                            vms,
                            public_ips,
                            on_rented_node: false,
                        },
                    });
                }
                "grid_name_proxy" => {
                    let name = a["name"].as_str().unwrap_or_default().to_string();
                    contracts.push(PlannedContract {
                        label: name.clone(),
                        node: int(&a["node"]),
                        contract_id: int(&a["name_contract_id"]),
                        work: Work::Name { name },
                    });
                }
                _ => {}
            }
        }
    }
    (!contracts.is_empty()).then_some(Plan { contracts })
}
