//! `grid_scheduler`: sticky by request name; full-zos nodes when yggdrasil, wireguard,
//! public_config or public_ips_count is set, else zos-light nodes only; capacity in MB.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result, bail};

use super::Ctx;
use crate::sim::ledger::{Ledger, now};
use crate::sim::provider::value::Val;

pub(super) fn scheduler(ctx: &Ctx<'_>, prior: &Val, planned: &Val) -> Result<Val> {
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
    twin: u32,
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
        // GridProxy's `available_for`: not rented, or rented by this twin; `rentable` for a
        // dedicated request (internal/provider/scheduler/request.go:33, 54-55)
        let renter = ledger.rented_by(n);
        let fits = n.light != full
            && (renter == 0 || renter == twin)
            && (!req.bool_or_false("dedicated") || ledger.rentable(n))
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
