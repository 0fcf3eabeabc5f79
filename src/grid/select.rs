//! Node selection: which GridProxy nodes can take a request, ranked, and a pick among the best
//! with some spread, so that every user does not land on the same node.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::proxy::{Farm, Node, Resources};

const GIB: u64 = 1024 * 1024 * 1024;
const MIB: u64 = 1024 * 1024;

/// How many of the best candidates a pick is spread over.
pub const SPREAD: usize = 5;

/// Node and farm lists and thresholds. The same struct is the flags of `up` and `nodes` and the
/// `node_filter:` of the manifest and the config file; per field, the flag wins, then the
/// manifest, then the config.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct NodeFilter {
    /// Only these nodes (or nodes of `whitelist_farms`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[arg(long = "whitelist-node", value_delimiter = ',', value_name = "ID")]
    pub whitelist_nodes: Vec<u64>,
    /// Only nodes of these farms (names, case-insensitive, or ids; repeat or comma-separate).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[arg(long = "farm", alias = "whitelist-farm", value_delimiter = ',', value_name = "FARM", value_parser = farm_ref)]
    pub whitelist_farms: Vec<FarmRef>,
    /// Never these nodes; wins over the whitelists.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[arg(long = "blacklist-node", value_delimiter = ',', value_name = "ID")]
    pub blacklist_nodes: Vec<u64>,
    /// Never nodes of these farms (names or ids); wins over the whitelists.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[arg(long = "blacklist-farm", value_delimiter = ',', value_name = "FARM", value_parser = farm_ref)]
    pub blacklist_farms: Vec<FarmRef>,
    /// Only nodes up for at least this many days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "DAYS")]
    pub min_uptime_days: Option<f64>,
    /// Only nodes with at most this percentage of their cores reserved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "PERCENT")]
    pub max_cpu_usage: Option<f64>,
    /// Only nodes with at most this percentage of their SSD reserved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "PERCENT")]
    pub max_disk_usage: Option<f64>,
    /// Only nodes with at most this percentage of their memory reserved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "PERCENT")]
    pub max_memory_usage: Option<f64>,
}

fn farm_ref(text: &str) -> Result<FarmRef, String> {
    Ok(FarmRef::parse(text))
}

impl NodeFilter {
    /// Field by field, `self` where set, else `other`.
    pub fn or(mut self, other: &NodeFilter) -> NodeFilter {
        fn list<T: Clone>(a: &mut Vec<T>, b: &[T]) {
            if a.is_empty() {
                *a = b.to_vec();
            }
        }
        list(&mut self.whitelist_nodes, &other.whitelist_nodes);
        list(&mut self.whitelist_farms, &other.whitelist_farms);
        list(&mut self.blacklist_nodes, &other.blacklist_nodes);
        list(&mut self.blacklist_farms, &other.blacklist_farms);
        self.min_uptime_days = self.min_uptime_days.or(other.min_uptime_days);
        self.max_cpu_usage = self.max_cpu_usage.or(other.max_cpu_usage);
        self.max_disk_usage = self.max_disk_usage.or(other.max_disk_usage);
        self.max_memory_usage = self.max_memory_usage.or(other.max_memory_usage);
        self
    }

    fn names_farms(&self) -> bool {
        self.whitelist_farms
            .iter()
            .chain(&self.blacklist_farms)
            .any(|f| matches!(f, FarmRef::Name(_)))
    }
}

/// A farm named by id or by name.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum FarmRef {
    Id(u64),
    Name(String),
}

impl FarmRef {
    pub fn parse(text: &str) -> FarmRef {
        text.parse()
            .map_or_else(|_| FarmRef::Name(text.to_string()), FarmRef::Id)
    }

    fn matches(&self, farm_id: u64, farm_name: Option<&str>) -> bool {
        match self {
            FarmRef::Id(id) => *id == farm_id,
            FarmRef::Name(name) => farm_name.is_some_and(|n| n.eq_ignore_ascii_case(name)),
        }
    }
}

/// What one placement needs on a single node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Request {
    pub cpu: u64,
    pub memory_mb: u64,
    pub ssd_gb: u64,
    pub hdd_gb: u64,
    pub public_ipv4: bool,
    /// A node with a GPU: a rented node qualifies too (its GPUs serve only its renter).
    pub gpu: bool,
}

impl Request {
    fn bytes(&self) -> Resources {
        Resources {
            cru: self.cpu,
            mru: self.memory_mb * MIB,
            sru: self.ssd_gb * GIB,
            hru: self.hdd_gb * GIB,
        }
    }
}

/// A node that can take the request, with its score (higher is better).
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    pub node: Node,
    pub farm_name: String,
    pub farm_free_ips: Option<u64>,
    pub score: f64,
}

/// The nodes able to take `request` under `filter`, minus `excluded`, best first.
pub fn candidates(
    nodes: &[Node],
    farms: &[Farm],
    request: &Request,
    filter: &NodeFilter,
    excluded: &BTreeSet<u64>,
) -> Vec<Candidate> {
    let farm_by_id: BTreeMap<u64, &Farm> = farms.iter().map(|f| (f.farm_id, f)).collect();
    let need = request.bytes();
    let mut out: Vec<Candidate> = nodes
        .iter()
        .filter_map(|node| {
            let farm = farm_by_id.get(&node.farm_id);
            let farm_name = node
                .farm_name
                .clone()
                .or_else(|| farm.map(|f| f.name.clone()));
            let free_ips = farm.map(|f| f.free_ips()).or(node.farm_free_ips);
            let free = node.free();
            let ok = node.status.eq_ignore_ascii_case("up")
                && node.healthy
                && !node.is_light()
                && (node.rented_by_twin_id == 0 || request.gpu)
                && (!request.gpu || node.num_gpu > 0)
                && !node.dedicated
                && !excluded.contains(&node.node_id)
                && node.total.cru >= request.cpu
                && free.mru >= need.mru
                && free.sru >= need.sru
                && free.hru >= need.hru
                && (!request.public_ipv4 || free_ips.unwrap_or(0) > 0)
                && allowed(node, farm_name.as_deref(), filter);
            ok.then(|| Candidate {
                score: score(node, &need),
                node: node.clone(),
                farm_name: farm_name.unwrap_or_default(),
                farm_free_ips: free_ips,
            })
        })
        .collect();
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.node.node_id.cmp(&b.node.node_id))
    });
    out
}

fn allowed(node: &Node, farm_name: Option<&str>, filter: &NodeFilter) -> bool {
    if filter.blacklist_nodes.contains(&node.node_id)
        || filter
            .blacklist_farms
            .iter()
            .any(|f| f.matches(node.farm_id, farm_name))
    {
        return false;
    }
    let listed = !filter.whitelist_nodes.is_empty() || !filter.whitelist_farms.is_empty();
    if listed
        && !filter.whitelist_nodes.contains(&node.node_id)
        && !filter
            .whitelist_farms
            .iter()
            .any(|f| f.matches(node.farm_id, farm_name))
    {
        return false;
    }
    if filter
        .min_uptime_days
        .is_some_and(|days| (node.uptime as f64) < days * 86_400.0)
    {
        return false;
    }
    let usage = |used: u64, total: u64| {
        if total == 0 {
            100.0
        } else {
            used as f64 * 100.0 / total as f64
        }
    };
    !(filter
        .max_cpu_usage
        .is_some_and(|max| usage(node.used.cru, node.total.cru) > max)
        || filter
            .max_disk_usage
            .is_some_and(|max| usage(node.used.sru, node.total.sru) > max)
        || filter
            .max_memory_usage
            .is_some_and(|max| usage(node.used.mru, node.total.mru) > max))
}

/// Room left after the request (memory and SSD), and a settled uptime, each in 0..1.
fn score(node: &Node, need: &Resources) -> f64 {
    let left = |total: u64, used: u64, want: u64| {
        if total == 0 {
            0.0
        } else {
            total.saturating_sub(used + want) as f64 / total as f64
        }
    };
    let uptime = (node.uptime as f64 / (30.0 * 86_400.0)).min(1.0);
    0.4 * left(node.total.mru, node.used.mru, need.mru)
        + 0.4 * left(node.total.sru, node.used.sru, need.sru)
        + 0.2 * uptime
}

/// One of the best `SPREAD` candidates, chosen by a hash of `seed` (the deployment id, role and
/// attempt): stable for one deployment, different across deployments.
pub fn pick<'a>(candidates: &'a [Candidate], seed: &str) -> Option<&'a Candidate> {
    let top = candidates.len().min(SPREAD);
    if top == 0 {
        return None;
    }
    // FNV-1a: tiny, stable across builds and platforms.
    let hash = seed.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    candidates.get((hash % top as u64) as usize)
}

/// Takes a request's capacity off a node, so a second placement on it sees what is left.
pub fn reserve(nodes: &mut [Node], node_id: u64, request: &Request) {
    if let Some(node) = nodes.iter_mut().find(|n| n.node_id == node_id) {
        let need = request.bytes();
        node.used.mru += need.mru;
        node.used.sru += need.sru;
        node.used.hru += need.hru;
    }
}

/// Whether farms must be fetched to apply this filter and request.
pub fn needs_farms(filter: &NodeFilter, request: &Request) -> bool {
    filter.names_farms() || request.public_ipv4
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::{FarmRef, NodeFilter, Request, candidates, pick};
    use crate::grid::proxy::{Farm, Node, PublicIp, Resources};

    fn node(id: u64, farm: u64, free_gb: u64, uptime_days: u64) -> Node {
        Node {
            node_id: id,
            farm_id: farm,
            farm_name: None,
            country: String::new(),
            city: String::new(),
            uptime: uptime_days * 86_400,
            status: "up".into(),
            healthy: true,
            dedicated: false,
            rented_by_twin_id: 0,
            num_gpu: 0,
            gpus: Vec::new(),
            rented: false,
            rentable: true,
            total: Resources {
                cru: 8,
                mru: 32 << 30,
                sru: 1000 << 30,
                hru: 0,
            },
            used: Resources {
                cru: 1,
                mru: (32 - free_gb) << 30,
                sru: 100 << 30,
                hru: 0,
            },
            public_config: Default::default(),
            farm_free_ips: None,
            features: vec!["zmachine".into(), "network".into()],
        }
    }

    fn farms() -> Vec<Farm> {
        vec![
            Farm {
                farm_id: 1,
                name: "Freefarm".into(),
                dedicated: false,
                public_ips: vec![PublicIp {
                    ip: "185.1.1.1/24".into(),
                    contract_id: 0,
                }],
            },
            Farm {
                farm_id: 2,
                name: "Other".into(),
                dedicated: false,
                public_ips: vec![PublicIp {
                    ip: "185.1.1.2/24".into(),
                    contract_id: 5,
                }],
            },
        ]
    }

    #[test]
    fn filters_rank_and_spread() {
        let nodes = vec![
            node(1, 1, 30, 40),
            node(2, 2, 20, 40),
            node(3, 2, 2, 40),
            node(4, 1, 30, 1),
        ];
        let req = Request {
            cpu: 2,
            memory_mb: 4096,
            ssd_gb: 50,
            hdd_gb: 0,
            public_ipv4: false,
            gpu: false,
        };
        let all = candidates(
            &nodes,
            &farms(),
            &req,
            &NodeFilter::default(),
            &BTreeSet::new(),
        );
        // Node 3 has 2 GiB free: too little. Node 1 (more room, long uptime) ranks first.
        assert_eq!(
            all.iter().map(|c| c.node.node_id).collect::<Vec<_>>(),
            vec![1, 2, 4]
        );
        let ipv4 = candidates(
            &nodes,
            &farms(),
            &Request {
                public_ipv4: true,
                ..req
            },
            &NodeFilter::default(),
            &BTreeSet::new(),
        );
        assert_eq!(
            ipv4.iter().map(|c| c.node.node_id).collect::<Vec<_>>(),
            vec![1, 4],
            "farm 2 has no free IPv4"
        );
        let filter = NodeFilter {
            whitelist_farms: vec![FarmRef::parse("freefarm")],
            blacklist_nodes: vec![4],
            ..NodeFilter::default()
        };
        let listed = candidates(&nodes, &farms(), &req, &filter, &BTreeSet::new());
        assert_eq!(
            listed.iter().map(|c| c.node.node_id).collect::<Vec<_>>(),
            vec![1],
            "farm names match case-insensitively; blacklist wins"
        );
        let uptime = NodeFilter {
            min_uptime_days: Some(3.0),
            whitelist_nodes: vec![4, 2],
            ..NodeFilter::default()
        };
        assert_eq!(
            candidates(&nodes, &farms(), &req, &uptime, &BTreeSet::new())
                .iter()
                .map(|c| c.node.node_id)
                .collect::<Vec<_>>(),
            vec![2]
        );
        let excluded = candidates(
            &nodes,
            &farms(),
            &req,
            &NodeFilter::default(),
            &BTreeSet::from([1]),
        );
        assert_eq!(excluded[0].node.node_id, 2);
        // zos-light nodes have no WireGuard access: never candidates.
        let mut light = nodes.clone();
        light[0].features = vec!["zmachine-light".into(), "network-light".into()];
        assert_eq!(
            candidates(
                &light,
                &farms(),
                &req,
                &NodeFilter::default(),
                &BTreeSet::new()
            )[0]
            .node
            .node_id,
            2
        );
        // Different seeds land on different nodes among the best.
        let many: Vec<_> = (0..20).map(|i| node(10 + i, 1, 30, 40)).collect();
        let all = candidates(
            &many,
            &farms(),
            &req,
            &NodeFilter::default(),
            &BTreeSet::new(),
        );
        let picked: BTreeSet<u64> = (0..50)
            .map(|i| pick(&all, &format!("deployment-{i}")).unwrap().node.node_id)
            .collect();
        assert!(
            picked.len() > 1 && picked.len() <= super::SPREAD,
            "{picked:?}"
        );
        assert_eq!(
            pick(&all, "same").unwrap().node.node_id,
            pick(&all, "same").unwrap().node.node_id
        );
    }
}
