//! Placement: which node each of a pattern's placements (`placement:` in pattern.yaml) goes to.
//! A node is pinned (`--node`, `nodes.<role>` in the manifest, or the variable set in
//! `config:`), chosen through GridProxy, or left to the provider's scheduler.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::proxy::{GridProxy, NodeQuery};
use super::select::{self, NodeFilter, Request};
use crate::error::UserError;
use crate::pattern::Pattern;
pub use crate::pattern::placement::{Amount, PlacementSpec, VmSpec};

/// How a placement got its node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum How {
    Pinned,
    Selected,
    Scheduler,
}

/// The node of one placement, recorded in state.yaml.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Choice {
    pub role: String,
    pub variable: String,
    /// 0 when the scheduler picks.
    pub node: u64,
    pub how: How,
}

/// What a run knows that decides placement.
pub struct Inputs<'a> {
    pub pattern: &'a Pattern,
    pub variables: &'a BTreeMap<String, serde_json::Value>,
    /// `--node`: every placement on this node.
    pub node_flag: Option<u64>,
    /// The manifest's `nodes:` (role → id or [id, …]).
    pub manifest_nodes: Option<&'a serde_yaml::Value>,
    pub filter: &'a NodeFilter,
    pub use_gridproxy: bool,
    pub excluded: &'a BTreeSet<u64>,
    /// The deployment id plus the attempt: spreads picks across deployments, stable within one.
    pub seed: String,
}

fn value(inputs: &Inputs<'_>, name: &str) -> Option<serde_json::Value> {
    inputs.variables.get(name).cloned().or_else(|| {
        inputs
            .pattern
            .manifest
            .variables
            .get(name)
            .and_then(|v| v.default.as_ref())
            .map(crate::yaml::yaml_to_json)
    })
}

/// The number an amount stands for: a literal, or the variable's value (else its default).
pub fn number(inputs: &Inputs<'_>, amount: &Amount, what: &str) -> Result<u64> {
    match amount {
        Amount::Number(n) => Ok(*n),
        Amount::Flag(b) => Ok(u64::from(*b)),
        Amount::Variable(name) => value(inputs, name)
            .and_then(|v| v.as_f64())
            .map(|f| f.max(0.0).ceil() as u64)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "pattern `{}`: placement {what} names variable \
                `{name}`, which has no number value",
                    inputs.pattern.manifest.name
                )
            }),
    }
}

/// The capacity one placement needs on its node.
pub fn request(inputs: &Inputs<'_>, spec: &PlacementSpec) -> Result<Request> {
    let mut request = Request::default();
    for vm in &spec.vms {
        let count = vm
            .count
            .as_ref()
            .map(|c| number(inputs, c, "count"))
            .transpose()?
            .unwrap_or(1);
        request.cpu = request.cpu.max(number(inputs, &vm.cpu, "cpu")?);
        request.memory_mb += count * number(inputs, &vm.memory, "memory")?;
        request.ssd_gb += count * number(inputs, &vm.disk, "disk")?;
    }
    request.public_ipv4 = match &spec.public_ipv4 {
        None => false,
        Some(Amount::Flag(b)) => *b,
        Some(Amount::Number(n)) => *n > 0,
        Some(Amount::Variable(name)) => value(inputs, name)
            .and_then(|v| v.as_bool())
            .unwrap_or(false),
    };
    Ok(request)
}

fn pinned(inputs: &Inputs<'_>, spec: &PlacementSpec) -> Option<u64> {
    if let Some(node) = inputs.node_flag {
        return Some(node);
    }
    if let Some(value) = inputs
        .manifest_nodes
        .and_then(|n| n.get(spec.role.as_str()))
    {
        let first = value.as_sequence().and_then(|s| s.first()).unwrap_or(value);
        if let Some(id) = first.as_u64() {
            return Some(id);
        }
    }
    inputs
        .variables
        .get(&spec.variable)
        .and_then(serde_json::Value::as_u64)
        .filter(|id| *id > 0)
}

/// Places every placement of the pattern. GridProxy is asked only when some placement is neither
/// pinned nor left to the scheduler.
pub async fn place(
    inputs: &Inputs<'_>,
    proxy: impl Fn() -> Result<GridProxy>,
) -> Result<Vec<Choice>> {
    let specs = &inputs.pattern.manifest.placement;
    let mut choices = Vec::new();
    let mut open = Vec::new();
    for spec in specs {
        match pinned(inputs, spec) {
            Some(node) => choices.push(Choice {
                role: spec.role.clone(),
                variable: spec.variable.clone(),
                node,
                how: How::Pinned,
            }),
            None if !inputs.use_gridproxy => choices.push(Choice {
                role: spec.role.clone(),
                variable: spec.variable.clone(),
                node: 0,
                how: How::Scheduler,
            }),
            None => open.push((spec, request(inputs, spec)?)),
        }
    }
    if open.is_empty() {
        return Ok(choices);
    }
    let proxy = proxy()?;
    let smallest = NodeQuery {
        free_mru: open
            .iter()
            .map(|(_, r)| r.memory_mb << 20)
            .min()
            .unwrap_or(0),
        free_sru: open.iter().map(|(_, r)| r.ssd_gb << 30).min().unwrap_or(0),
        ..NodeQuery::default()
    };
    let mut nodes = proxy.nodes(&smallest).await?;
    let farms = if open
        .iter()
        .any(|(_, r)| select::needs_farms(inputs.filter, r))
    {
        proxy.farms().await?
    } else {
        Vec::new()
    };
    for (spec, request) in open {
        let candidates =
            select::candidates(&nodes, &farms, &request, inputs.filter, inputs.excluded);
        let Some(best) = select::pick(&candidates, &format!("{}-{}", inputs.seed, spec.role))
        else {
            return Err(UserError::new(
                format!(
                    "no node on {} can take `{}` ({} vCPU, {} MB memory, {} GB SSD{}) under the \
                        node filter{}",
                    proxy.base,
                    spec.role,
                    request.cpu,
                    request.memory_mb,
                    request.ssd_gb,
                    if request.public_ipv4 {
                        ", a free public IPv4"
                    } else {
                        ""
                    },
                    if inputs.excluded.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " (excluded after failures: {})",
                            inputs
                                .excluded
                                .iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    }
                ),
                "see the candidates with `tfgrid-compose nodes`, relax `node_filter`, or pin a \
                    node with `--node ID`",
            )
            .into());
        };
        let node = best.node.node_id;
        select::reserve(&mut nodes, node, &request);
        choices.push(Choice {
            role: spec.role.clone(),
            variable: spec.variable.clone(),
            node,
            how: How::Selected,
        });
    }
    // Keep the pattern's order.
    choices.sort_by_key(|c| specs.iter().position(|s| s.role == c.role));
    Ok(choices)
}
