//! `placement:` of pattern.yaml as written: each node variable and the VMs that go on its node.
//! Deciding the nodes is `grid::placement`'s.

use serde::{Deserialize, Serialize};

/// One entry of `placement:` in pattern.yaml: the node variable and what goes on that node.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PlacementSpec {
    /// A name for the node's role (`vm`, `gateway`, `backend`), as in the manifest's `nodes:`.
    pub role: String,
    /// The number variable that receives the node id (0 = the scheduler picks).
    pub variable: String,
    /// Whether the node's farm must have a free public IPv4: `true` or a bool variable's name.
    #[serde(default)]
    pub public_ipv4: Option<Amount>,
    /// The VMs put on this node.
    pub vms: Vec<VmSpec>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VmSpec {
    #[serde(default)]
    pub count: Option<Amount>,
    pub cpu: Amount,
    /// MB.
    pub memory: Amount,
    /// GB of SSD.
    pub disk: Amount,
}

/// A literal, or the name of a pattern variable.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum Amount {
    Number(u64),
    Flag(bool),
    Variable(String),
}
