//! The simulated grid's nodes as the grid has them, with plain terraform and the real tools:
//! nodes without a public IPv4 get a public access node on a contract of its own, and GPUs
//! serve only VMs of the twin that rents their node (`nodes --gpu`, GridProxy, `sim rent`).
//! Root is required; a missing tool fails the test.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::local::SERIAL;
use crate::sim::{PROVIDER_BLOCK, Sim, write};

const TF: [&str; 3] = ["-auto-approve", "-no-color", "-input=false"];

fn terraform_ok(sim: &Sim, dir: &Path, args: &[&str]) -> String {
    let out = sim.terraform(dir, args);
    assert!(
        out.status.success(),
        "terraform {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn apply(sim: &Sim, dir: &Path) -> std::process::Output {
    sim.terraform(dir, &[&["apply"][..], &TF[..]].concat())
}

fn destroy(sim: &Sim, dir: &Path) {
    terraform_ok(sim, dir, &[&["destroy"][..], &TF[..]].concat());
}

/// (node, workload) of each active contract of the signed-in twin, sorted.
fn contracts(sim: &Sim) -> Vec<(u64, String)> {
    let mut all: Vec<(u64, String)> = sim.contracts()["contracts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["node_id"].as_u64().unwrap(),
                c["workload"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    all.sort();
    all
}

/// Node 22 has no public IPv4: a network on it alone with WireGuard access gets node 11 as its
/// access node, which holds a /24 and a network contract of its own and is not among `nodes`;
/// destroy cancels that contract too.
#[test]
fn a_network_of_hidden_nodes_gets_an_access_node_with_its_own_contract_gone_on_destroy() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let sim = Sim::new();
    let dir = sim.root.path().join("hidden");
    write(
        &dir,
        "main.tf",
        &format!(
            "{PROVIDER_BLOCK}\nresource \"grid_network\" \"n\" {{\n  name          = \"hidden\"\n  \
             nodes         = [22]\n  ip_range      = \"10.93.0.0/16\"\n  add_wg_access = \
             true\n}}\noutput \"net\" {{ value = grid_network.n }}\n"
        ),
    );
    terraform_ok(&sim, &dir, &["init", "-no-color", "-input=false"]);
    terraform_ok(&sim, &dir, &[&["apply"][..], &TF[..]].concat());
    let net: Value =
        serde_json::from_str(&terraform_ok(&sim, &dir, &["output", "-json", "net"])).unwrap();
    assert_eq!(net["public_node_id"], 11, "{net}");
    assert_eq!(net["nodes"], serde_json::json!([22]), "{net}");
    assert_eq!(
        net["nodes_ip_range"],
        serde_json::json!({"22": "10.93.3.0/24", "11": "10.93.4.0/24"}),
        "the access range (10.93.2.0/24) first, then the requested node, then the access node"
    );
    let ids = net["node_deployment_id"].as_object().unwrap();
    assert_eq!(
        ids.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        BTreeSet::from(["11", "22"]),
        "{net}"
    );
    assert_eq!(
        contracts(&sim),
        [(11, "network".to_string()), (22, "network".to_string())],
        "one network contract on each node"
    );
    destroy(&sim, &dir);
    assert_eq!(
        contracts(&sim),
        Vec::new(),
        "the access node's contract went too"
    );
}

/// The simulated grid's GPUs: `nodes --gpu` and GridProxy show them and their rent state; a VM
/// asking for one on a node nobody rents gets zos's refusal and leaves no contract; once the
/// twin rents the node (`sim rent`), the VM runs and GridProxy shows its contract on the GPU;
/// the rent ends only once nothing runs on the node.
#[test]
fn gpus_serve_only_vms_of_the_twin_that_rents_their_node() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let sim = Sim::new();
    let rtx = "0000:3b:00.0/10de/2204";
    let listed = sim.json(&["nodes", "--gpu", "--limit", "20"]);
    let mut gpu_nodes: Vec<(u64, u64, u64)> = listed["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["node_id"].as_u64().unwrap(),
                n["num_gpu"].as_u64().unwrap(),
                n["rented_by_twin_id"].as_u64().unwrap(),
            )
        })
        .collect();
    gpu_nodes.sort();
    assert_eq!(gpu_nodes, [(21, 2, 0), (22, 1, 0)], "{listed}");
    let node = sim.json(&["nodes", "21"]);
    assert_eq!(
        (&node["num_gpu"], &node["rentable"], &node["gpus"][0]["id"]),
        (
            &serde_json::json!(2),
            &serde_json::json!(true),
            &serde_json::json!(rtx)
        ),
        "{node}"
    );

    let dir = sim.root.path().join("gpu");
    write(
        &dir,
        "main.tf",
        &format!(
            "{PROVIDER_BLOCK}\nresource \"grid_network\" \"n\" {{\n  name     = \"gpu\"\n  nodes    \
             = [21]\n  ip_range = \"10.94.0.0/16\"\n}}\nresource \"grid_deployment\" \"d\" {{\n  \
             name         = \"gpu\"\n  node         = 21\n  network_name = grid_network.n.name\n  \
             vms {{\n    name   = \"vm\"\n    flist  = \"https://hub.grid.tf/x.flist\"\n    \
             memory = 512\n    gpus   = [\"{rtx}\"]\n  }}\n}}\noutput \"id\" {{ value = \
             grid_deployment.d.id }}\n"
        ),
    );
    terraform_ok(&sim, &dir, &["init", "-no-color", "-input=false"]);
    let out = apply(&sim, &dir);
    assert!(!out.status.success(), "a GPU on a node nobody rents");
    let err = String::from_utf8_lossy(&out.stderr)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        err.contains(
            "couldn't deploy deployment with error: error waiting deployment: workload vm"
        ) && err.contains("failed with error: usage of GPU is not allowed unless node is rented"),
        "{err}"
    );
    assert_eq!(
        contracts(&sim),
        [(21, "network".to_string())],
        "the VM's contract went"
    );
    destroy(&sim, &dir);

    let rent = sim.json(&["sim", "rent", "21"]);
    let twin = rent["twin_id"].as_u64().unwrap();
    assert!(twin != 0, "{rent}");
    let node = sim.json(&["nodes", "21"]);
    assert_eq!(
        (&node["rented"], node["rentedByTwinId"].as_u64()),
        (&serde_json::json!(true), Some(twin)),
        "{node}"
    );
    terraform_ok(&sim, &dir, &[&["apply"][..], &TF[..]].concat());
    let id: u64 =
        serde_json::from_str::<String>(&terraform_ok(&sim, &dir, &["output", "-json", "id"]))
            .unwrap()
            .parse()
            .unwrap();
    let node = sim.json(&["nodes", "21"]);
    assert_eq!(node["gpus"][0]["contract"], id, "{node}");
    assert_eq!(node["gpus"][1]["contract"], 0, "{node}");
    let listed = sim.json(&["nodes", "--gpu", "--limit", "20"]);
    assert!(
        listed["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["node_id"] == 21 && n["rented_by_twin_id"] == twin),
        "{listed}"
    );
    let cancel = sim
        .cmd()
        .args(["sim", "rent", "21", "--cancel"])
        .output()
        .unwrap();
    assert!(!cancel.status.success());
    assert!(
        String::from_utf8_lossy(&cancel.stderr).contains("NodeHasActiveContracts"),
        "{}",
        String::from_utf8_lossy(&cancel.stderr)
    );
    destroy(&sim, &dir);
    sim.json(&["sim", "rent", "21", "--cancel"]);
    assert_eq!(contracts(&sim), Vec::new());
}
