//! The simulator on Terraform code nobody here wrote: the grid provider's own `examples/` and
//! `integrationtests/` configurations and the bash tool's four patterns
//! (`tests/fixtures/fidelity/`, copied with their source, commit and licence), run with plain
//! terraform against `--network sim`: `init`, `validate`, `plan`, and `apply` → checks →
//! `destroy` for every configuration the real grid would deploy and the simulator models.
//!
//! The checks are what the provider's integration tests assert after apply, where the simulator
//! can: outputs present and shaped as addresses, each VM's sshd answering with the given key,
//! its `env_vars` in its init's environment and login shell, its public IPv4 reachable, a
//! gateway serving its name; and no contract left after `destroy`. What the simulator does not
//! model fails at plan with its documented message. One simulator serves every case.
//!
//! The machine has no Terraform registry: `hashicorp/random` and `hashicorp/local` cannot be
//! installed, so [`offline`] turns their resources into Terraform's built-in `terraform_data`
//! with values of the same shape (hex digits from a hash of the resource's address). Modules
//! fetched from GitHub cannot be installed either: those configurations stop at `init`.
//!
//! The table of configuration → validate/plan/apply/checks is docs/simulator.md's; the suite
//! compares it and, with `TFGRID_COMPOSE_WRITE_DOCS=1`, writes it.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::common::copy_dir;
use crate::local::SERIAL;
use crate::sim::{Sim, root_dir};

/// How a configuration ends on the simulator.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Expect {
    /// applies, passes the checks and is destroyed without a contract left
    Applies,
    /// `init` fails with this text (a module from GitHub)
    InitFails(&'static str),
    /// `validate` fails with this text (the provider's schema and validators)
    ValidateFails(&'static str),
    /// `plan` fails with this text (not simulated)
    PlanFails(&'static str),
    /// `apply` fails with this text (the grid refuses it too)
    ApplyFails(&'static str),
}
use Expect::*;

struct Case {
    /// the folder under tests/fixtures/fidelity/
    dir: &'static str,
    /// `-var` values; `{public_key}` is the suite's SSH public key
    vars: &'static [(&'static str, &'static str)],
    expect: Expect,
}

const NOT_K8S: &str = "grid_kubernetes is not simulated";
const NOT_ZDBS: &str = "grid_deployment.zdbs is not simulated";
const NO_MODULE: &str = "Failed to download module";
const AI_STACK_INIT: &str = "Terraform encountered problems during initialisation";
const YGGDRASIL_PROVISIONER: &str = "remote-exec provisioner error";
const DEVNET_GPU_NODE: &str = "failed to get node 93: not found";
const KEY: &[(&str, &str)] = &[("public_key", "{public_key}")];

const CASES: &[Case] = &[
    Case {
        dir: "grid-provider/examples/resources/cosmosvalidator",
        vars: &[],
        expect: Applies,
    },
    Case {
        dir: "grid-provider/examples/resources/deployment_resource",
        vars: &[],
        expect: PlanFails(NOT_ZDBS),
    },
    Case {
        dir: "grid-provider/examples/resources/disks",
        vars: &[],
        expect: PlanFails(NOT_ZDBS),
    },
    Case {
        dir: "grid-provider/examples/resources/expose-vm",
        vars: &[],
        expect: Applies,
    },
    Case {
        dir: "grid-provider/examples/resources/external_provisioner/remote-exec-file_swarm-cluster",
        vars: &[],
        expect: ApplyFails(YGGDRASIL_PROVISIONER),
    },
    Case {
        dir: "grid-provider/examples/resources/external_provisioner/remote-exec_hello-world",
        vars: &[],
        expect: ApplyFails(YGGDRASIL_PROVISIONER),
    },
    Case {
        dir: "grid-provider/examples/resources/external_provisioner/remote-local-exec_swarm-cluster",
        vars: &[],
        expect: ApplyFails(YGGDRASIL_PROVISIONER),
    },
    Case {
        dir: "grid-provider/examples/resources/forwarder",
        vars: &[],
        expect: Applies,
    },
    Case {
        dir: "grid-provider/examples/resources/gateway_fqdn",
        vars: &[],
        expect: Applies,
    },
    Case {
        dir: "grid-provider/examples/resources/gateway_name",
        vars: &[],
        expect: Applies,
    },
    Case {
        dir: "grid-provider/examples/resources/gpu",
        vars: &[],
        expect: ApplyFails(DEVNET_GPU_NODE),
    },
    Case {
        dir: "grid-provider/examples/resources/k8s-using-modules",
        vars: &[],
        expect: InitFails(NO_MODULE),
    },
    Case {
        dir: "grid-provider/examples/resources/k8s-with-domain",
        vars: &[],
        expect: ValidateFails("Missing required argument"),
    },
    Case {
        dir: "grid-provider/examples/resources/k8s",
        vars: &[],
        expect: PlanFails(NOT_K8S),
    },
    Case {
        dir: "grid-provider/examples/resources/mattermost",
        vars: &[],
        expect: Applies,
    },
    Case {
        dir: "grid-provider/examples/resources/mounts",
        vars: &[],
        expect: Applies,
    },
    Case {
        dir: "grid-provider/examples/resources/multinode",
        vars: &[],
        expect: Applies,
    },
    Case {
        dir: "grid-provider/examples/resources/nixos-micro",
        vars: &[],
        expect: Applies,
    },
    Case {
        dir: "grid-provider/examples/resources/nomad_with_modules",
        vars: &[],
        expect: InitFails(NO_MODULE),
    },
    Case {
        dir: "grid-provider/examples/resources/peertube",
        vars: &[],
        expect: Applies,
    },
    Case {
        dir: "grid-provider/examples/resources/presearch",
        vars: &[],
        expect: Applies,
    },
    Case {
        dir: "grid-provider/examples/resources/qsfs",
        vars: &[],
        expect: PlanFails(NOT_ZDBS),
    },
    Case {
        dir: "grid-provider/examples/resources/simple-dynamic",
        vars: &[],
        expect: Applies,
    },
    Case {
        dir: "grid-provider/examples/resources/single_vm_mycelium",
        vars: &[],
        expect: Applies,
    },
    Case {
        dir: "grid-provider/examples/resources/singlenode",
        vars: &[],
        expect: Applies,
    },
    Case {
        dir: "grid-provider/examples/resources/taiga",
        vars: &[],
        expect: Applies,
    },
    Case {
        dir: "grid-provider/integrationtests/gateway_name",
        vars: KEY,
        expect: Applies,
    },
    Case {
        dir: "grid-provider/integrationtests/gateway_name_private",
        vars: KEY,
        expect: Applies,
    },
    Case {
        dir: "grid-provider/integrationtests/gateway_with_fqdn",
        vars: &[
            ("public_key", "{public_key}"),
            ("fqdn", "fidelity.example.com"),
        ],
        expect: Applies,
    },
    Case {
        dir: "grid-provider/integrationtests/gateway_with_fqdn_private",
        vars: &[
            ("public_key", "{public_key}"),
            ("fqdn", "fidelity-private.example.com"),
        ],
        expect: Applies,
    },
    Case {
        dir: "grid-provider/integrationtests/k8s",
        vars: KEY,
        expect: PlanFails(NOT_K8S),
    },
    Case {
        dir: "grid-provider/integrationtests/k8s_invalid_names",
        vars: KEY,
        expect: PlanFails(NOT_K8S),
    },
    Case {
        dir: "grid-provider/integrationtests/k8s_using_module",
        vars: &[],
        expect: InitFails(NO_MODULE),
    },
    Case {
        dir: "grid-provider/integrationtests/mattermost",
        vars: KEY,
        expect: Applies,
    },
    Case {
        dir: "grid-provider/integrationtests/nomad_using_module",
        vars: &[],
        expect: InitFails(NO_MODULE),
    },
    Case {
        dir: "grid-provider/integrationtests/peertube",
        vars: KEY,
        expect: Applies,
    },
    Case {
        dir: "grid-provider/integrationtests/presearch",
        vars: &[
            ("public_key", "{public_key}"),
            ("presearch_registration_code", "fidelity"),
        ],
        expect: Applies,
    },
    Case {
        dir: "grid-provider/integrationtests/qsfs",
        vars: KEY,
        expect: PlanFails(NOT_ZDBS),
    },
    Case {
        dir: "grid-provider/integrationtests/taiga",
        vars: KEY,
        expect: Applies,
    },
    Case {
        dir: "grid-provider/integrationtests/vm",
        vars: KEY,
        expect: Applies,
    },
    Case {
        dir: "grid-provider/integrationtests/vm_invalid_cpu",
        vars: KEY,
        expect: ValidateFails("expected cpu to be in the range (1 - 32), got 0"),
    },
    Case {
        dir: "grid-provider/integrationtests/vm_invalid_memory",
        vars: KEY,
        expect: ValidateFails("expected memory to be in the range (256 - 262144), got 128"),
    },
    Case {
        dir: "grid-provider/integrationtests/vm_mounts",
        vars: &[
            ("public_key", "{public_key}"),
            ("disk_size", "2"),
            ("mount_point", "app"),
        ],
        expect: Applies,
    },
    Case {
        dir: "grid-provider/integrationtests/vm_multinode",
        vars: KEY,
        expect: Applies,
    },
    Case {
        dir: "grid-provider/integrationtests/vm_public_ip",
        vars: KEY,
        expect: Applies,
    },
    Case {
        dir: "grid-provider/integrationtests/wireguard",
        vars: KEY,
        expect: Applies,
    },
    Case {
        dir: "grid-provider/integrationtests/zdbs",
        vars: &[("password", "fidelity")],
        expect: PlanFails(NOT_ZDBS),
    },
    Case {
        dir: "bash-patterns/patterns/single-vm/infrastructure",
        vars: &[
            ("SSH_KEY", "{public_key}"),
            ("tfgrid_network", "dev"),
            ("vm_node", "11"),
            ("vm_disk", "10"),
            ("provision_wireguard", "true"),
            ("provision_ipv4", "true"),
        ],
        expect: Applies,
    },
    Case {
        dir: "bash-patterns/patterns/gateway/infrastructure",
        vars: &[
            ("SSH_KEY", "{public_key}"),
            ("tfgrid_network", "dev"),
            ("gateway_node", "11"),
            ("internal_nodes", "[12]"),
            ("gateway_disk", "10"),
            ("internal_disk", "10"),
            ("provision_wireguard", "true"),
            ("provision_ipv4", "true"),
        ],
        expect: Applies,
    },
    Case {
        dir: "bash-patterns/patterns/k3s/infrastructure",
        vars: &[
            ("SSH_KEY", "{public_key}"),
            ("tfgrid_network", "dev"),
            ("network_name", "k3s_fidelity"),
            ("control_nodes", "[11]"),
            ("worker_nodes", "[12]"),
            ("management_node", "21"),
            ("control_cpu", "2"),
            ("control_mem", "2048"),
            ("control_disk", "10"),
            ("worker_cpu", "2"),
            ("worker_mem", "2048"),
            ("worker_disk", "10"),
            ("management_disk", "10"),
            ("provision_wireguard", "true"),
        ],
        expect: Applies,
    },
    Case {
        dir: "bash-patterns/patterns/tfgrid-ai-stack/infrastructure",
        vars: &[
            ("SSH_KEY", "{public_key}"),
            ("tfgrid_network", "dev"),
            ("gateway_node_id", "11"),
            ("ai_agent_node_id", "12"),
            ("gitea_node_id", "21"),
            ("gateway_disk", "10240"),
            ("ai_agent_disk", "10240"),
            ("gitea_disk", "10240"),
            ("provision_wireguard", "true"),
        ],
        expect: InitFails(AI_STACK_INIT),
    },
];

/// What one configuration did: the first failing stage's text, and the checks that passed.
struct Row {
    dir: &'static str,
    expect: Expect,
    stages: [Option<bool>; 4],
    error: String,
    checks: Vec<String>,
}

/// The providers this machine cannot install, and their resources (type → its attributes).
const OFFLINE_PROVIDERS: &[&str] = &["random", "local"];
const OFFLINE_TYPES: &[&str] = &[
    "random_bytes",
    "random_string",
    "random_password",
    "local_file",
    "local_sensitive_file",
];

/// The end (exclusive) of the `{ … }` block that opens at `open` (the index of its `{`).
fn block_end(text: &str, open: usize) -> usize {
    let mut depth = 0;
    for (i, c) in text[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return open + i + 1;
                }
            }
            _ => {}
        }
    }
    text.len()
}

/// `text` with the `hashicorp/random` and `hashicorp/local` providers and resources replaced by
/// Terraform's built-in `terraform_data`: `random_bytes.x[k].hex` becomes
/// `terraform_data.random_bytes_x[k].output.hex`, whose value is hex digits of the resource's
/// length from a hash of its address; `count` and `for_each` stay.
fn offline(text: &str) -> String {
    let mut out = text.to_string();
    // the providers' entries in required_providers
    for p in OFFLINE_PROVIDERS {
        while let Some(at) = out
            .lines()
            .scan(0, |pos, l| {
                let start = *pos;
                *pos += l.len() + 1;
                Some((start, l))
            })
            .find(|(_, l)| {
                let t = l.trim_start();
                t.starts_with(p) && t[p.len()..].trim_start().starts_with("= {")
            })
            .map(|(s, _)| s)
        {
            let open = at + out[at..].find('{').unwrap();
            let end = block_end(&out, open);
            out.replace_range(at..end, "");
        }
    }
    // the resources
    for ty in OFFLINE_TYPES {
        let header = format!("resource \"{ty}\" \"");
        while let Some(at) = out.find(&header) {
            let name_start = at + header.len();
            let name_end = name_start + out[name_start..].find('"').unwrap();
            let name = out[name_start..name_end].to_string();
            let open = name_end + out[name_end..].find('{').unwrap();
            let end = block_end(&out, open);
            let body = &out[open + 1..end - 1];
            let meta: Vec<&str> = body
                .lines()
                .map(str::trim)
                .filter(|l| l.starts_with("count") || l.starts_with("for_each"))
                .collect();
            let key = if meta.iter().any(|l| l.starts_with("for_each")) {
                "-${each.key}"
            } else if meta.iter().any(|l| l.starts_with("count")) {
                "-${count.index}"
            } else {
                ""
            };
            let length: usize = body
                .lines()
                .map(str::trim)
                .find_map(|l| l.strip_prefix("length"))
                .and_then(|l| l.trim_start().strip_prefix('='))
                .and_then(|l| l.trim().parse().ok())
                .unwrap_or(16);
            let seed = format!("sha256(\"{ty}.{name}{key}\")");
            let digits = format!(
                "substr(join(\"\", [{seed}, sha256({seed})]), 0, {})",
                (length * 2).min(128)
            );
            let chars = format!(
                "substr(join(\"\", [{seed}, sha256({seed})]), 0, {})",
                length.min(128)
            );
            let replacement = format!(
                "resource \"terraform_data\" \"{ty}_{name}\" {{\n  {}\n  input = {{\n    hex    = {digits}\n    result = {chars}\n    id     = {chars}\n  }}\n}}",
                meta.join("\n  ")
            );
            out.replace_range(at..end, &replacement);
        }
        // references: TYPE.NAME[index].attr → terraform_data.TYPE_NAME[index].output.attr
        let prefix = format!("{ty}.");
        let mut done = String::new();
        let mut rest = out.as_str();
        while let Some(i) = rest.find(&prefix) {
            let before_ok = i == 0
                || !rest[..i]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
            done.push_str(&rest[..i]);
            let after = &rest[i + prefix.len()..];
            if !before_ok {
                done.push_str(&prefix);
                rest = after;
                continue;
            }
            let name_len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
                .unwrap_or(after.len());
            let name = &after[..name_len];
            let mut tail = &after[name_len..];
            let mut index = "";
            if tail.starts_with('[') {
                let close = tail.find(']').unwrap() + 1;
                index = &tail[..close];
                tail = &tail[close..];
            }
            done.push_str(&format!("terraform_data.{ty}_{name}{index}"));
            if tail.starts_with('.') {
                done.push_str(".output");
            }
            rest = tail;
        }
        done.push_str(rest);
        out = done;
    }
    out
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    )
    .split_whitespace()
    .collect::<Vec<_>>()
    .join(" ")
}

/// The first error line Terraform printed (after "Error: ").
fn first_error(out: &Output) -> String {
    let t = text(out);
    match t.find("Error: ") {
        Some(i) => t[i + 7..].chars().take(160).collect(),
        None => t.chars().take(160).collect(),
    }
}

fn ip_of(s: &str) -> Option<IpAddr> {
    s.split('/').next().unwrap_or_default().parse().ok()
}

/// Runs `command` as root on a VM over ssh, from inside the VM's own network namespace (the
/// simulator reaches a VM's private address only through its network).
fn ssh_in(netns: &str, ip: &str, key: &Path, command: &str) -> Output {
    crate::common::ssh_from_netns(netns, &format!("root@{ip}"), key, command)
}

/// What the provider's integration tests check after apply, on the simulator's terms; returns
/// the names of the checks made, or what failed.
fn check(
    sim: &Sim,
    dir: &Path,
    key: &Path,
    public_key: &str,
    integration: bool,
) -> Result<Vec<String>, String> {
    let mut made = Vec::new();
    let show = sim.terraform(dir, &["show", "-json"]);
    let state: Value = serde_json::from_slice(&show.stdout).map_err(|e| format!("show: {e}"))?;
    let tag = tfgrid_compose::sim::ledger::sim_dir(&sim.data())
        .vms()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let mut resources: Vec<Value> = state["values"]["root_module"]["resources"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for m in state["values"]["root_module"]["child_modules"]
        .as_array()
        .into_iter()
        .flatten()
    {
        resources.extend(m["resources"].as_array().cloned().unwrap_or_default());
    }
    let (mut vms, mut sshs, mut envs, mut publics, mut gateways) = (0, 0, 0, 0, 0);
    for r in &resources {
        let v = &r["values"];
        match r["type"].as_str().unwrap_or_default() {
            "grid_deployment" => {
                let id = v["id"].as_str().unwrap_or_default();
                for (i, vm) in v["vms"].as_array().into_iter().flatten().enumerate() {
                    let name = vm["name"].as_str().unwrap_or_default();
                    let ip = vm["ip"].as_str().unwrap_or_default();
                    if !matches!(ip_of(ip), Some(IpAddr::V4(_))) {
                        return Err(format!("vm {name}: ip '{ip}'"));
                    }
                    if vm["cpu"].is_null() {
                        return Err(format!("vm {name}: cpu is null in the state"));
                    }
                    if vm["planetary"] == true
                        && !vm["planetary_ip"].as_str().and_then(ip_of).is_some_and(
                            |a| matches!(a, IpAddr::V6(a) if a.segments()[0] & 0xfe00 == 0x0200),
                        )
                    {
                        return Err(format!("vm {name}: planetary_ip {}", vm["planetary_ip"]));
                    }
                    if vm["mycelium_ip_seed"]
                        .as_str()
                        .is_some_and(|s| !s.is_empty())
                        && !vm["mycelium_ip"].as_str().and_then(ip_of).is_some_and(
                            |a| matches!(a, IpAddr::V6(a) if a.segments()[0] & 0xfe00 == 0x0400),
                        )
                    {
                        return Err(format!("vm {name}: mycelium_ip {}", vm["mycelium_ip"]));
                    }
                    vms += 1;
                    if vm["env_vars"]["SSH_KEY"].as_str().map(str::trim) != Some(public_key.trim())
                    {
                        continue;
                    }
                    let netns = format!("gsv-{tag}-c{id}-{i}");
                    let out = ssh_in(
                        &netns,
                        ip,
                        key,
                        "tr '\\0' '\\n' < /proc/1/environ; echo '#login shell#'; bash -lc env",
                    );
                    if !out.status.success() {
                        return Err(format!("ssh to vm {name} at {ip}: {}", text(&out)));
                    }
                    sshs += 1;
                    let seen = String::from_utf8_lossy(&out.stdout).into_owned();
                    let (init, login) = seen.split_once("#login shell#").unwrap_or((&seen, ""));
                    for (k, value) in
                        vm["env_vars"]
                            .as_object()
                            .into_iter()
                            .flatten()
                            .filter(|(_, v)| {
                                // a value read with file() ends in a newline; lines are compared
                                !v.as_str()
                                    .unwrap_or_default()
                                    .trim_end_matches('\n')
                                    .contains('\n')
                            })
                    {
                        let line = format!(
                            "{k}={}",
                            value.as_str().unwrap_or_default().trim_end_matches('\n')
                        );
                        if !init.lines().any(|l| l == line) || !login.lines().any(|l| l == line) {
                            return Err(format!(
                                "vm {name}: {k} is not in its init's environment and login shell"
                            ));
                        }
                        envs += 1;
                    }
                    if let Some(public) = vm["computedip"].as_str().filter(|p| !p.is_empty()) {
                        let addr = public.split('/').next().unwrap_or_default();
                        if addr.parse::<Ipv4Addr>().is_err() {
                            return Err(format!("vm {name}: computedip '{public}'"));
                        }
                        let out = ssh_in(&netns, addr, key, "hostname");
                        if !out.status.success() {
                            return Err(format!(
                                "ssh to vm {name} at its public IPv4 {addr}: {}",
                                text(&out)
                            ));
                        }
                        publics += 1;
                    }
                }
            }
            kind @ ("grid_name_proxy" | "grid_fqdn_proxy") => {
                let fqdn = v["fqdn"].as_str().unwrap_or_default();
                let node = v["node"].as_u64().unwrap_or_default();
                // the gateway node answers for the name: a site of its own, not the 404 default
                let out = std::process::Command::new("curl")
                    .args([
                        "-s",
                        "-o",
                        "/dev/null",
                        "-w",
                        "%{http_code}",
                        "-m",
                        "5",
                        "-H",
                    ])
                    .arg(format!("Host: {fqdn}"))
                    .arg(format!("http://198.51.100.{node}/"))
                    .output()
                    .unwrap();
                let code = String::from_utf8_lossy(&out.stdout).into_owned();
                if fqdn.is_empty() || code == "404" || code == "000" {
                    return Err(format!("{kind} '{fqdn}' on node {node}: HTTP {code}"));
                }
                gateways += 1;
            }
            _ => {}
        }
    }
    let outputs: Value = serde_json::from_slice(&sim.terraform(dir, &["output", "-json"]).stdout)
        .map_err(|e| format!("output: {e}"))?;
    let mut shaped = 0;
    for (name, o) in outputs.as_object().into_iter().flatten() {
        let Some(s) = o["value"].as_str() else {
            continue;
        };
        if integration && s.is_empty() {
            return Err(format!(
                "output {name} is empty (the provider's test requires it)"
            ));
        }
        let lower = name.to_lowercase();
        if !s.is_empty()
            && (lower.ends_with("_ip") || lower.ends_with("ip6") || lower == "ip")
            && ip_of(s).is_none()
        {
            return Err(format!("output {name} = '{s}' is not an address"));
        }
        shaped += 1;
    }
    made.push(counted(vms, "VM", "VMs"));
    if sshs > 0 {
        made.push(format!("ssh to {sshs}, {envs} env_vars"));
    }
    if publics > 0 {
        made.push(format!("{publics} public IPv4"));
    }
    if gateways > 0 {
        made.push(counted(gateways, "gateway", "gateways"));
    }
    made.push(counted(shaped, "output", "outputs"));
    Ok(made)
}

/// `n` and the noun, in the singular for one: "1 VM", "2 VMs".
fn counted(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn run_case(sim: &Sim, case: &Case, key: &Path, public_key: &str) -> Row {
    let home = &sim.root.path().join("home");
    let mut row = Row {
        dir: case.dir,
        expect: case.expect,
        stages: [None; 4],
        error: String::new(),
        checks: Vec::new(),
    };
    let dir = sim
        .root
        .path()
        .join("fidelity")
        .join(case.dir.replace('/', "_"));
    copy_dir(
        &root_dir().join("tests/fixtures/fidelity").join(case.dir),
        &dir,
    );
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let p = entry.path();
        if p.extension().is_some_and(|e| e == "tf") {
            let t = std::fs::read_to_string(&p).unwrap();
            std::fs::write(&p, offline(&t)).unwrap();
        }
    }
    let vars: Vec<String> = case
        .vars
        .iter()
        .map(|(k, v)| format!("-var={k}={}", v.replace("{public_key}", public_key)))
        .collect();
    let with_vars = |args: &[&str]| -> Vec<String> {
        args.iter()
            .map(|a| a.to_string())
            .chain(vars.iter().cloned())
            .collect()
    };
    let tf = |args: Vec<String>| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        sim.terraform_env(&dir, &refs, &[("HOME", home)])
    };
    let init = tf(vec![
        "init".into(),
        "-input=false".into(),
        "-no-color".into(),
    ]);
    row.stages[0] = Some(init.status.success());
    if !init.status.success() {
        row.error = first_error(&init);
        return row;
    }
    let validate = tf(vec!["validate".into(), "-no-color".into()]);
    row.stages[1] = Some(validate.status.success());
    if !validate.status.success() {
        row.error = first_error(&validate);
        return row;
    }
    let plan = tf(with_vars(&[
        "plan",
        "-input=false",
        "-no-color",
        "-out=tfplan",
    ]));
    row.stages[2] = Some(plan.status.success());
    if !plan.status.success() {
        row.error = first_error(&plan);
        return row;
    }
    let apply = tf(vec![
        "apply".into(),
        "-input=false".into(),
        "-no-color".into(),
        "-auto-approve".into(),
        "tfplan".into(),
    ]);
    row.stages[3] = Some(apply.status.success());
    if apply.status.success() {
        match check(
            sim,
            &dir,
            key,
            public_key,
            case.dir.contains("integrationtests"),
        ) {
            Ok(made) => row.checks = made,
            Err(e) => row.error = format!("check: {e}"),
        }
    } else {
        row.error = first_error(&apply);
    }
    let destroy = tf(with_vars(&[
        "destroy",
        "-input=false",
        "-no-color",
        "-auto-approve",
    ]));
    let left = sim.contracts()["contracts"].as_array().map_or(0, Vec::len);
    if !destroy.status.success() || left != 0 {
        row.error = format!(
            "{} | destroy: {} ({left} contracts left)",
            row.error,
            first_error(&destroy)
        );
        // leave nothing to the next case
        let _ = sim.cmd().args(["sim", "reset"]).output();
    }
    row
}

/// Why a configuration that the grid would take does not run here, or why the grid refuses it
/// too: each a limit docs/simulator.md lists.
fn limit(error: &str) -> &'static str {
    match error {
        NOT_K8S | NOT_ZDBS => "not simulated",
        NO_MODULE => {
            "the module is fetched from GitHub; this machine reaches no Terraform registry or GitHub"
        }
        AI_STACK_INIT => {
            "the grid refuses it too: the pattern is not valid Terraform (two `provider \"grid\"` blocks, source `threefold/grid`)"
        }
        YGGDRASIL_PROVISIONER => {
            "the provisioner connects to the VM's Yggdrasil address, which the simulator computes but does not route"
        }
        DEVNET_GPU_NODE => {
            "the configuration names devnet's GPU node 93, which the simulated grid does not have"
        }
        _ => {
            "the provider refuses it too (as its integration test expects, or as the example is written)"
        }
    }
}

fn yes_no(stage: Option<bool>) -> &'static str {
    match stage {
        Some(true) => "yes",
        Some(false) => "**no**",
        None => "",
    }
}

/// The table of docs/simulator.md: configuration → init/validate/plan/apply/checks.
fn table(rows: &[Row]) -> String {
    let mut t = String::from(
        "| configuration | init | validate | plan | apply + destroy | checks, or why not |\n| --- | --- | --- | --- | --- | --- |\n",
    );
    for r in rows {
        let why = match r.expect {
            Applies => r.checks.join(", "),
            InitFails(s) | ValidateFails(s) | PlanFails(s) | ApplyFails(s) => {
                format!("`{}`: {}", s.replace('|', "\\|"), limit(s))
            }
        };
        t.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} |\n",
            r.dir.trim_end_matches("/infrastructure"),
            yes_no(r.stages[0]),
            yes_no(r.stages[1]),
            yes_no(r.stages[2]),
            yes_no(r.stages[3]),
            why
        ));
    }
    let applied = rows
        .iter()
        .filter(|r| r.stages[3] == Some(true) && r.error.is_empty())
        .count();
    t.push_str(&format!(
        "\n{applied} of {} configurations apply, pass the checks and leave no contract.\n",
        rows.len()
    ));
    t
}

const TABLE_START: &str = "<!-- fidelity table: written by tests/it/fidelity.rs -->\n";
const TABLE_END: &str = "<!-- end of fidelity table -->\n";

/// Every configuration of the provider's examples and integration tests and of the bash tool's
/// patterns ends as the grid would end it, as far as the simulator models the grid, and
/// docs/simulator.md's table says so.
#[test]
fn configurations_written_elsewhere_run_on_the_simulator_as_on_the_grid() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let sim = Sim::new();
    let key = sim.root.path().join("fidelity key");
    let keygen = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "fidelity", "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(keygen.status.success(), "{}", text(&keygen));
    let public_key = std::fs::read_to_string(key.with_file_name("fidelity key.pub")).unwrap();
    let public_key = public_key.trim().to_string();
    // a user's home: the provider's examples read ~/.ssh/id_rsa.pub (and ~/.ssh/id_rsa)
    let ssh = sim.root.path().join("home/.ssh");
    std::fs::create_dir_all(&ssh).unwrap();
    std::fs::copy(&key, ssh.join("id_rsa")).unwrap();
    std::fs::write(ssh.join("id_rsa.pub"), format!("{public_key}\n")).unwrap();
    let mut rows = Vec::new();
    let mut wrong = Vec::new();
    for case in CASES {
        let row = run_case(&sim, case, &key, &public_key);
        let ok = match case.expect {
            Applies => row.stages[3] == Some(true) && row.error.is_empty(),
            InitFails(t) => row.stages[0] == Some(false) && row.error.contains(t),
            ValidateFails(t) => row.stages[1] == Some(false) && row.error.contains(t),
            PlanFails(t) => row.stages[2] == Some(false) && row.error.contains(t),
            ApplyFails(t) => {
                row.stages[3] == Some(false)
                    && row.error.contains(t)
                    && !row.error.contains("destroy:")
            }
        };
        if !ok {
            wrong.push(format!(
                "{}: expected {:?}, got stages {:?}: {}",
                case.dir, case.expect, row.stages, row.error
            ));
        }
        rows.push(row);
    }
    let table = table(&rows);
    let doc_path = root_dir().join("docs/simulator.md");
    let doc = std::fs::read_to_string(&doc_path).unwrap();
    let start = doc
        .find(TABLE_START)
        .expect("docs/simulator.md marks the fidelity table")
        + TABLE_START.len();
    let end = doc
        .find(TABLE_END)
        .expect("docs/simulator.md ends the fidelity table");
    assert!(wrong.is_empty(), "{}\n\n{table}", wrong.join("\n"));
    let mut written = &doc[start..end];
    if std::env::var_os("TFGRID_COMPOSE_WRITE_DOCS").is_some() {
        std::fs::write(
            &doc_path,
            format!("{}{table}{}", &doc[..start], &doc[end..]),
        )
        .unwrap();
        written = &table;
    }
    assert_eq!(
        written, table,
        "docs/simulator.md's fidelity table is not the suite's (TFGRID_COMPOSE_WRITE_DOCS=1 writes it)"
    );
}

/// The fidelity table of docs/simulator.md counts in words: "1 VM", "2 VMs", never "1 VMs".
#[test]
fn the_fidelity_table_counts_one_in_the_singular() {
    let doc = std::fs::read_to_string(root_dir().join("docs/simulator.md")).unwrap();
    let start = doc.find(TABLE_START).expect("the fidelity table");
    let end = doc.find(TABLE_END).expect("the fidelity table's end");
    let table = &doc[start..end];
    for plural in ["VMs", "gateways", "outputs"] {
        assert!(
            !table.contains(&format!(" 1 {plural}")),
            "the fidelity table says '1 {plural}'"
        );
    }
    assert!(table.contains(" 1 VM,"), "a configuration with one VM");
    assert!(table.contains(" 2 VMs,"), "a configuration with two VMs");
    assert_eq!(counted(1, "output", "outputs"), "1 output");
    assert_eq!(counted(0, "VM", "VMs"), "0 VMs");
}

#[test]
fn offline_turns_random_resources_into_terraform_data_of_the_same_shape() {
    let hcl = "terraform {\n  required_providers {\n    grid = { source = \"threefoldtech/grid\" }\n    random = {\n      source = \"hashicorp/random\"\n    }\n  }\n}\nresource \"random_bytes\" \"key\" {\n  for_each = toset([\"11\"])\n  length   = 32\n}\nresource \"random_string\" \"name\" {\n  length  = 8\n  special = false\n}\nlocals {\n  a = random_bytes.key[\"11\"].hex\n  b = random_string.name.result\n}\n";
    let out = offline(hcl);
    assert!(!out.contains("hashicorp/random"), "{out}");
    assert!(!out.contains("random_bytes.key"), "{out}");
    assert!(
        out.contains("a = terraform_data.random_bytes_key[\"11\"].output.hex"),
        "{out}"
    );
    assert!(
        out.contains("b = terraform_data.random_string_name.output.result"),
        "{out}"
    );
    assert!(out.contains("for_each = toset([\"11\"])"), "{out}");
    assert!(out.contains("0, 64)"), "32 bytes are 64 hex digits: {out}");
}

/// A near-empty configuration of each resource (what the schema requires, little more) plans
/// with every default of `src/sim/provider/defaults.json` (the provider's `Default:`s with their
/// `file:line`) in the plan, as SDKv2 puts them there. zdbs and qsfs stop at plan (not
/// simulated), so their defaults are not planned.
#[test]
fn plans_hold_the_providers_schema_defaults() {
    let sim = Sim::new();
    let dir = sim.root.path().join("defaults");
    std::fs::create_dir_all(&dir).unwrap();
    let backend = "backends = [\"http://192.0.2.10\"]";
    let config = format!(
        "terraform {{\n  required_providers {{\n    grid = {{ source = \"threefoldtech/grid\" }}\n  }}\n}}\nprovider \"grid\" {{}}\n\
resource \"grid_scheduler\" \"s\" {{\n  requests {{\n    name      = \"r\"\n    yggdrasil = false\n    wireguard = false\n  }}\n}}\n\
resource \"grid_network\" \"n\" {{\n  name     = \"defaults\"\n  nodes    = [11]\n  ip_range = \"10.60.0.0/16\"\n}}\n\
resource \"grid_deployment\" \"d\" {{\n  node = 11\n  vms {{\n    name   = \"vm\"\n    flist  = \"https://hub.grid.tf/x.flist\"\n    memory = 1024\n  }}\n  disks {{\n    name = \"disk\"\n    size = 1\n  }}\n}}\n\
resource \"grid_name_proxy\" \"name\" {{\n  node = 13\n  name = \"defaults\"\n  {backend}\n}}\n\
resource \"grid_fqdn_proxy\" \"fqdn\" {{\n  node = 13\n  fqdn = \"defaults.example.com\"\n  {backend}\n}}\n"
    );
    std::fs::write(dir.join("main.tf"), config).unwrap();
    for args in [
        &["init", "-input=false", "-no-color"][..],
        &["plan", "-input=false", "-no-color", "-out=tfplan"],
    ] {
        let out = sim.terraform(&dir, args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
    }
    let plan: Value =
        serde_json::from_slice(&sim.terraform(&dir, &["show", "-json", "tfplan"]).stdout).unwrap();
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(root_dir().join("src/sim/provider/defaults.json")).unwrap(),
    )
    .unwrap();
    let mut wrong = Vec::new();
    let mut checked = 0;
    for (ty, defaults) in reference["resources"].as_object().unwrap() {
        let values = plan["planned_values"]["root_module"]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["type"] == *ty)
            .unwrap_or_else(|| panic!("{ty} is not in the plan"))["values"]
            .clone();
        for d in defaults.as_array().unwrap() {
            let path = d["path"].as_str().unwrap();
            if path.starts_with("zdbs.") || path.starts_with("qsfs.") {
                continue;
            }
            let mut at = vec![values.clone()];
            for step in path.split('.') {
                at = at
                    .iter()
                    .flat_map(|v| match &v[step] {
                        Value::Array(items) if step != path.rsplit('.').next().unwrap() => {
                            items.clone()
                        }
                        other => vec![other.clone()],
                    })
                    .collect();
            }
            for got in at {
                checked += 1;
                if got != d["default"] {
                    wrong.push(format!(
                        "{ty}.{path}: planned {got}, the provider's default is {} ({})",
                        d["default"], d["source"]
                    ));
                }
            }
        }
    }
    assert!(checked >= 15, "only {checked} defaults checked");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
