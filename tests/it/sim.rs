//! The grid simulator with the real tools (terraform, wg-quick with wireguard-go, sshd in
//! namespaces, ansible-playbook): the provider's schema against the reference copied from the
//! provider's source (`tests/fixtures/grid-provider/`), `terraform validate` of every shipped
//! grid pattern, the provider's errors for bad input, the contract ledger and orphans, and `up`
//! → `exec` → hooks → verify → `down` of grid patterns, unchanged, on `--network sim`. Root is
//! required; a missing tool fails the test.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

use crate::common::copy_dir;
use crate::local::{SERIAL, http_get, require_tools};

/// A valid BIP-39 phrase (the all-`abandon` test vector).
pub(crate) const MNEMONIC: &str =
    "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";

pub(crate) fn root_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A simulator of its own (data dir in a temp folder), reset when dropped.
pub(crate) struct Sim {
    pub(crate) root: tempfile::TempDir,
    apps: std::cell::RefCell<Vec<(PathBuf, String)>>,
}

impl Sim {
    pub(crate) fn new() -> Sim {
        require_tools();
        Sim {
            root: tempfile::tempdir().unwrap(),
            apps: Default::default(),
        }
    }

    pub(crate) fn data(&self) -> PathBuf {
        self.root.path().join("data")
    }

    pub(crate) fn cmd(&self) -> Command {
        let mut cmd = Command::cargo_bin("tfgrid-compose").unwrap();
        cmd.env("NO_COLOR", "1")
            .env_remove("TFGRID_COMPOSE_PATTERNS_DIR")
            .env_remove("TFGRID_COMPOSE_ENV")
            .env_remove("TFGRID_COMPOSE_GRIDPROXY_URL")
            .env("TFGRID_COMPOSE_NETWORK", "sim")
            .env("TF_VAR_mnemonic", MNEMONIC)
            .env("TFGRID_COMPOSE_DATA_DIR", self.data())
            .env("TFGRID_COMPOSE_CONFIG_DIR", self.root.path().join("config"))
            .current_dir(self.root.path());
        cmd
    }

    /// A copy of an example, named `name`, whose deployments are taken down on drop.
    pub(crate) fn app(&self, example: &str, name: &str) -> PathBuf {
        let app = self.root.path().join(name);
        copy_dir(&root_dir().join("examples").join(example), &app);
        let manifest = app.join("tfgrid-compose.yaml");
        let text = std::fs::read_to_string(&manifest).unwrap();
        let renamed: Vec<String> = text
            .lines()
            .map(|l| {
                if l.starts_with("name:") {
                    format!("name: {name}")
                } else {
                    l.to_string()
                }
            })
            .collect();
        std::fs::write(&manifest, renamed.join("\n") + "\n").unwrap();
        app
    }

    /// Takes the environment `env` of `app` down on drop, if it is deployed then.
    pub(crate) fn track(&self, app: &Path, env: &str) {
        self.apps
            .borrow_mut()
            .push((app.to_path_buf(), env.to_string()));
    }

    pub(crate) fn up(&self, app: &Path, env: &str, pattern: &str) -> String {
        self.track(app, env);
        let out = self
            .cmd()
            .args(["up", "--env", env, "--pattern", pattern])
            .arg(app)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "up {} --env {env}: {}",
            app.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .to_string()
    }

    pub(crate) fn json(&self, args: &[&str]) -> Value {
        let out = self.cmd().args(args).arg("--json").output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    pub(crate) fn contracts(&self) -> Value {
        self.json(&["contracts"])
    }

    /// Runs terraform in `dir` with the simulator installed as threefoldtech/grid.
    pub(crate) fn terraform(&self, dir: &Path, args: &[&str]) -> std::process::Output {
        self.terraform_env(dir, args, &[])
    }

    /// `terraform init` and `apply` in `dir` (each must succeed), then its outputs.
    pub(crate) fn apply(&self, dir: &Path) -> Value {
        let init = self.terraform(dir, &["init", "-no-color", "-input=false"]);
        assert!(init.status.success(), "{init:?}");
        let apply = self.terraform(
            dir,
            &["apply", "-auto-approve", "-no-color", "-input=false"],
        );
        assert!(
            apply.status.success(),
            "{}",
            String::from_utf8_lossy(&apply.stderr)
        );
        serde_json::from_slice(&self.terraform(dir, &["output", "-json"]).stdout).unwrap()
    }

    /// [`Sim::terraform`] with more environment (`HOME` for a configuration's `file("~/…")`).
    pub(crate) fn terraform_env(
        &self,
        dir: &Path,
        args: &[&str],
        env: &[(&str, &Path)],
    ) -> std::process::Output {
        let config = String::from_utf8(
            self.cmd()
                .args(["sim", "terraform-config"])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        let tf = which::which("tofu")
            .or_else(|_| which::which("terraform"))
            .unwrap();
        std::process::Command::new(tf)
            .args(args)
            .current_dir(dir)
            .env("TF_CLI_CONFIG_FILE", config.trim())
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_IN_AUTOMATION", "1")
            .env("MNEMONIC", MNEMONIC)
            .env("TF_VAR_mnemonic", MNEMONIC) // for the bash tool's `variable "mnemonic"`
            .env("TFGRID_COMPOSE_DATA_DIR", self.data())
            .envs(env.iter().copied())
            .output()
            .unwrap()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        for (app, env) in self.apps.borrow().iter() {
            if app
                .join(".tfgrid-compose")
                .join(env)
                .join("state.yaml")
                .exists()
            {
                let _ = self
                    .cmd()
                    .args(["down", "--yes", "--env", env])
                    .arg(app)
                    .output();
            }
        }
        let _ = self.cmd().args(["sim", "reset"]).output();
    }
}

/// Names, types, flags and nesting of a schema block, as `providers schema -json` prints them.
fn shape(block: &Value) -> Value {
    let attrs: serde_json::Map<String, Value> = block["attributes"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, a)| {
            let flag = |f: &str| a[f].as_bool().unwrap_or(false);
            (
                k.clone(),
                serde_json::json!([
                    a["type"],
                    flag("required"),
                    flag("optional"),
                    flag("computed"),
                    flag("sensitive")
                ]),
            )
        })
        .collect();
    let blocks: serde_json::Map<String, Value> = block["block_types"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, b)| {
            (
                k.clone(),
                serde_json::json!([
                    b["nesting_mode"],
                    b["min_items"].as_u64().unwrap_or(0),
                    b["max_items"].as_u64().unwrap_or(0),
                    shape(&b["block"])
                ]),
            )
        })
        .collect();
    serde_json::json!({"attributes": attrs, "blocks": blocks})
}

pub(crate) fn write(dir: &Path, name: &str, text: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), text).unwrap();
}

pub(crate) const PROVIDER_BLOCK: &str = r#"
terraform {
  required_providers {
    grid = {
      source  = "threefoldtech/grid"
      version = ">= 1.11.0, < 2.0.0"
    }
  }
}
provider "grid" {
  network = "dev"
}
"#;

/// The provider's schema as Terraform reads it equals the reference for every resource and the
/// data source; `mnemonic` is required until MNEMONIC is set (as SDKv2 reports it). A network
/// applied with plain terraform is a contract no deployment knows: an orphan until destroyed.
#[test]
fn the_simulated_provider_has_the_reference_schema_and_its_contracts_are_counted() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let sim = Sim::new();
    let dir = sim.root.path().join("plain");
    write(&dir, "main.tf", PROVIDER_BLOCK);
    let init = sim.terraform(&dir, &["init", "-no-color", "-input=false"]);
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    assert!(
        String::from_utf8_lossy(&init.stdout).contains("threefoldtech/grid v1.12.0"),
        "{}",
        String::from_utf8_lossy(&init.stdout)
    );
    let out = sim.terraform(&dir, &["providers", "schema", "-json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(crate::common::fixtures().join("grid-provider/schema.json"))
            .unwrap(),
    )
    .unwrap();
    let key = "registry.terraform.io/threefoldtech/grid";
    let (got, reference) = (
        &got["provider_schemas"][key],
        &reference["provider_schemas"][key],
    );
    for kind in ["resource_schemas", "data_source_schemas"] {
        let names: BTreeSet<&String> = reference[kind].as_object().unwrap().keys().collect();
        assert_eq!(
            names,
            got[kind].as_object().unwrap().keys().collect(),
            "{kind}"
        );
        for name in names {
            assert_eq!(
                shape(&got[kind][name]["block"]),
                shape(&reference[kind][name]["block"]),
                "{name}"
            );
        }
    }
    // MNEMONIC was set for this terraform: the provider's mnemonic is then optional
    let provider = shape(&got["provider"]["block"]);
    assert_eq!(
        provider["attributes"]["mnemonic"],
        serde_json::json!(["string", false, true, false, true])
    );
    let mut reference_provider = shape(&reference["provider"]["block"]);
    reference_provider["attributes"]["mnemonic"] = provider["attributes"]["mnemonic"].clone();
    assert_eq!(provider, reference_provider);

    // plain terraform creates a network: one contract, which no deployment here knows
    write(
        &dir,
        "net.tf",
        "resource \"grid_network\" \"net\" {\n  name          = \"plain_net\"\n  nodes         = [11]\n  ip_range      = \"10.97.0.0/16\"\n  add_wg_access = true\n}\n",
    );
    let apply = sim.terraform(
        &dir,
        &["apply", "-auto-approve", "-no-color", "-input=false"],
    );
    assert!(
        apply.status.success(),
        "{}",
        String::from_utf8_lossy(&apply.stderr)
    );
    let contracts = sim.contracts();
    assert_eq!(contracts["orphans"], 1, "{contracts}");
    assert_eq!(contracts["contracts"][0]["workload"], "network");
    let destroy = sim.terraform(
        &dir,
        &["destroy", "-auto-approve", "-no-color", "-input=false"],
    );
    assert!(
        destroy.status.success(),
        "{}",
        String::from_utf8_lossy(&destroy.stderr)
    );
    assert_eq!(sim.contracts()["contracts"], serde_json::json!([]));
    assert!(
        !Path::new("/run/netns").join("gsim-1").exists()
            || sim.json(&["sim", "status"])["networks"] == serde_json::json!([])
    );
}

/// The fixture pattern in the bash tool's format (its single-vm's Terraform) validates against
/// the simulator's schema of the real provider: the variables `up` passes it fit its HCL.
#[test]
fn the_bash_format_fixture_pattern_validates() {
    let sim = Sim::new();
    let dir = sim.root.path().join("bash-vm");
    copy_dir(
        &root_dir().join("tests/fixtures/patterns/bash-vm/infrastructure"),
        &dir,
    );
    let init = sim.terraform(&dir, &["init", "-no-color", "-input=false"]);
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let out = sim.terraform(&dir, &["validate", "-json", "-no-color"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["valid"], true, "{report}");
    assert_eq!(report["warning_count"], 0, "{report}");
    // the values `up` writes for it (tests/it/bash_patterns.rs asserts the same set) plan cleanly
    write(
        &dir,
        "tfgrid-compose.tfvars.json",
        r#"{"SSH_KEY": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBtest test", "tfgrid_network": "dev",
            "provision_mycelium": true, "provision_wireguard": false, "provision_ipv4": false,
            "provision_ipv6": false, "vm_public_ipv4": false, "vm_node": 11, "vm_cpu": 1,
            "vm_mem": 2048, "vm_disk": 25}"#,
    );
    let plan = sim.terraform(
        &dir,
        &[
            "plan",
            "-no-color",
            "-input=false",
            "-var-file=tfgrid-compose.tfvars.json",
        ],
    );
    let stdout = String::from_utf8_lossy(&plan.stdout);
    assert!(
        plan.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&plan.stderr)
    );
    assert!(stdout.contains("2 to add"), "{stdout}");
    assert!(!stdout.contains("Warning"), "{stdout}");
}

/// Every shipped grid pattern validates against the simulator's schema; bad input gets the
/// provider's messages at plan and leaves nothing in the ledger; what is not simulated says so.
#[test]
fn grid_patterns_validate_and_bad_input_gets_the_providers_errors() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let sim = Sim::new();
    for pattern in ["single-vm", "gateway", "k3s", "ai-stack"] {
        let dir = sim.root.path().join(pattern);
        copy_dir(
            &root_dir()
                .join("patterns")
                .join(pattern)
                .join("infrastructure"),
            &dir,
        );
        let init = sim.terraform(&dir, &["init", "-no-color", "-input=false"]);
        assert!(
            init.status.success(),
            "{pattern}: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        let out = sim.terraform(&dir, &["validate", "-json", "-no-color"]);
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["valid"], true, "{pattern}: {report}");
    }

    let dir = sim.root.path().join("bad");
    let bad = |body: &str| {
        write(&dir, "main.tf", &format!("{PROVIDER_BLOCK}\n{body}"));
        let _ = std::fs::remove_file(dir.join(".terraform.lock.hcl"));
        let init = sim.terraform(&dir, &["init", "-no-color", "-input=false"]);
        assert!(
            init.status.success(),
            "{}",
            String::from_utf8_lossy(&init.stderr)
        );
        let out = sim.terraform(&dir, &["plan", "-no-color", "-input=false"]);
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let err = bad(
        "resource \"grid_network\" \"n\" {\n  name     = \"my-net\"\n  nodes    = [11]\n  ip_range = \"10.1.2.0/24\"\n}\n",
    );
    assert!(
        err.contains(
            "invalid value for name (must only include alphanumeric and underscore characters)"
        ),
        "{err}"
    );
    assert!(
        err.contains(
            r#"expected "ip_range" to contain a network Value with between 16 and 16 significant bits, got: 24"#
        ),
        "{err}"
    );
    let err = bad(
        "resource \"grid_deployment\" \"d\" {\n  node = 11\n  vms {\n    name   = \"vm\"\n    flist  = \"https://hub.grid.tf/x.flist\"\n    cpu    = 64\n    memory = 100\n  }\n}\n",
    );
    assert!(
        err.contains("expected cpu to be in the range (1 - 32), got 64"),
        "{err}"
    );
    assert!(
        err.contains("expected memory to be in the range (256 - 262144), got 100"),
        "{err}"
    );
    let err = bad("resource \"grid_scheduler\" \"s\" {\n  requests {\n    name = \"vm\"\n  }\n}\n");
    assert!(
        err.contains("Missing required argument") && err.contains("wireguard"),
        "scheduler requests need wireguard/yggdrasil on this schema: {err}"
    );
    let err = bad(
        "resource \"grid_kubernetes\" \"k\" {\n  token = \"abc123\"\n  master {\n    name = \"m\"\n    node = 11\n    cpu = 1\n    memory = 1024\n    disk_size = 5\n  }\n}\n",
    );
    assert!(err.contains("grid_kubernetes is not simulated"), "{err}");
    let err = bad(
        "provider \"grid\" {\n  alias   = \"x\"\n  network = \"sim\"\n}\nresource \"grid_network\" \"n\" {\n  provider = grid.x\n  name     = \"n\"\n  nodes    = [11]\n  ip_range = \"10.1.0.0/16\"\n}\n",
    );
    assert!(
        err.contains(r#"expected network to be one of ["dev" "qa" "test" "main"], got sim"#),
        "{err}"
    );
    // an apply-time error: a name longer than the node allows; nothing is left in the ledger
    write(
        &dir,
        "main.tf",
        &format!(
            "{PROVIDER_BLOCK}\nresource \"grid_network\" \"n\" {{\n  name     = \"n\"\n  nodes    = [11]\n  ip_range = \"10.96.0.0/16\"\n}}\nresource \"grid_deployment\" \"d\" {{\n  name = \"d\"\n  node = 11\n  network_name = grid_network.n.name\n  vms {{\n    name   = \"{}\"\n    flist  = \"https://hub.grid.tf/x.flist\"\n    cpu    = 1\n    memory = 512\n  }}\n}}\n",
            "v".repeat(37)
        ),
    );
    let out = sim.terraform(
        &dir,
        &["apply", "-auto-approve", "-no-color", "-input=false"],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("name cannot exceed 36 characters"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let contracts = sim.contracts();
    assert_eq!(
        contracts["contracts"].as_array().unwrap().len(),
        1,
        "only the network's contract: {contracts}"
    );
    let destroy = sim.terraform(
        &dir,
        &["destroy", "-auto-approve", "-no-color", "-input=false"],
    );
    assert!(
        destroy.status.success(),
        "{}",
        String::from_utf8_lossy(&destroy.stderr)
    );
    assert_eq!(sim.contracts()["contracts"], serde_json::json!([]));
}

/// Three environments of an app whose name is 30 characters long, on the single-vm pattern,
/// unchanged, side by side: three grid names that keep each deployment's id, three tunnels up at
/// once, each page served; `exec` and the hooks ran; `down` leaves 0 contracts, no namespace,
/// VM folder or process.
#[test]
fn three_environments_of_a_long_named_app_run_side_by_side_on_the_simulator() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let sim = Sim::new();
    let name = "customer-support-knowledge-bas";
    assert_eq!(name.len(), 30);
    let app = sim.app("static-site", name);
    let envs = ["pr-101", "pr-102", "pr-103"];
    let urls: Vec<String> = envs
        .iter()
        .map(|env| sim.up(&app, env, "single-vm"))
        .collect();
    // every tunnel is up at once: every page answers now
    for url in &urls {
        assert!(url.starts_with("http://10."), "{url}");
        assert!(http_get(url).contains("Hello from tfgrid-compose"), "{url}");
    }
    let out = sim
        .cmd()
        .args(["exec", "--env", "pr-102", "--app"])
        .arg(&app)
        .args(["--", "cat", "/srv/www/index.html"])
        .output()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Hello"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let contracts = sim.contracts();
    let rows = contracts["contracts"].as_array().unwrap();
    // Per environment a VM contract and its network's, and the network's on a public access
    // node when the VM's node has no public IPv4 (as the grid client adds one).
    let count = |workload: &str| rows.iter().filter(|c| c["workload"] == workload).count();
    assert!(
        count("vm") == 3
            && (3..=6).contains(&count("network"))
            && rows.len() == count("vm") + count("network"),
        "{contracts}"
    );
    assert_eq!(contracts["orphans"], 0);
    let names: BTreeSet<&str> = rows
        .iter()
        .filter(|r| r["workload"] == "vm")
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    for env in envs {
        let state = tfgrid_compose::state::StateDir::for_app(&app, env, false)
            .load()
            .unwrap()
            .unwrap();
        assert!(
            names
                .iter()
                .any(|n| n.ends_with(&state.id) && n.len() <= 36),
            "{names:?} keep {}",
            state.id
        );
    }
    let vm_root = tfgrid_compose::sim::ledger::sim_dir(&sim.data()).vms();
    assert!(vm_root.read_dir().unwrap().count() == 3, "three VM folders");
    for env in envs {
        sim.cmd()
            .args(["down", "--yes", "--env", env])
            .arg(&app)
            .assert()
            .success();
    }
    assert_eq!(sim.contracts()["contracts"], serde_json::json!([]));
    let status = sim.json(&["sim", "status"]);
    assert_eq!(status["active_contracts"], 0);
    assert_eq!(status["networks"], serde_json::json!([]));
    assert!(
        !vm_root.exists(),
        "VM folders left in {}",
        vm_root.display()
    );
    let needle = vm_root.to_string_lossy().into_owned();
    let procs: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&needle))
        .collect();
    assert!(procs.is_empty(), "{procs:?}");
}

/// A name proxy on the simulated gateway node: its nginx serves the backend's page at
/// `<name>.<domain>` through a route into the network; names are global (a second one of the same
/// name fails like TFChain's `NameExists`); destroy frees the name and stops the gateway node.
#[test]
fn a_name_proxy_serves_its_backend_from_the_gateway_node_and_names_are_global() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let sim = Sim::new();
    let dir = sim.root.path().join("gw");
    let body = r#"
resource "grid_network" "net" {
  name          = "gwnet"
  nodes         = [11, 13]
  ip_range      = "10.94.0.0/16"
  add_wg_access = true
}
resource "grid_deployment" "d" {
  name         = "backend"
  node         = 11
  network_name = grid_network.net.name
  vms {
    name     = "web"
    flist    = "https://hub.grid.tf/tf-official-vms/ubuntu-24.04-full.flist"
    cpu      = 1
    memory   = 512
    env_vars = { SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJwJ0Zs2YpVwR3KcGq9dQ1f3n7m1kq5cB8v0M2y1aX9Z test" }
  }
}
resource "grid_name_proxy" "p" {
  name     = "mysite"
  node     = 13
  network  = grid_network.net.name
  backends = ["http://${grid_deployment.d.vms[0].ip}:8000"]
}
output "fqdn" { value = grid_name_proxy.p.fqdn }
output "contract" { value = grid_deployment.d.id }
"#;
    write(&dir, "main.tf", &format!("{PROVIDER_BLOCK}{body}"));
    let outputs = sim.apply(&dir);
    assert_eq!(outputs["fqdn"]["value"], "mysite.gent01.sim.grid.tf");
    // a page served inside the VM's network namespace (a process of this test, stopped by PID)
    let site = sim.root.path().join("site");
    write(&site, "index.html", "hello-through-the-gateway\n");
    let vms = tfgrid_compose::sim::ledger::sim_dir(&sim.data()).vms();
    let tag = vms.file_name().unwrap().to_string_lossy().into_owned();
    let netns = format!(
        "gsv-{tag}-c{}-0",
        outputs["contract"]["value"].as_str().unwrap()
    );
    let get = |host: &str| {
        std::process::Command::new("curl")
            .args([
                "-s",
                "-m",
                "5",
                "-H",
                &format!("Host: {host}"),
                "-w",
                " %{http_code}",
                "http://198.51.100.13/",
            ])
            .output()
            .unwrap()
    };
    // the page through the gateway while the VM serves it (a process of this test, stopped by PID)
    let served = || {
        let mut server = std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &netns,
                "python3",
                "-m",
                "http.server",
                "8000",
                "--directory",
            ])
            .arg(&site)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut page = String::new();
        for _ in 0..50 {
            page = String::from_utf8_lossy(&get("mysite.gent01.sim.grid.tf").stdout).into_owned();
            if page.ends_with(" 200") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = server.kill();
        let _ = server.wait();
        page
    };
    let page = served();
    assert!(
        page.contains("hello-through-the-gateway") && page.ends_with(" 200"),
        "{page}"
    );
    assert!(String::from_utf8_lossy(&get("other.gent01.sim.grid.tf").stdout).ends_with(" 404"));
    // a second simulator on this machine is refused the gateway node this one holds, and its
    // reset leaves this one's gateway serving
    let other = Sim::new();
    let dir3 = other.root.path().join("gw3");
    write(
        &dir3,
        "main.tf",
        &format!(
            "{PROVIDER_BLOCK}\nresource \"grid_name_proxy\" \"p\" {{\n  name     = \"othersite\"\n  node     = 13\n  backends = [\"http://10.94.3.2:8000\"]\n}}\n"
        ),
    );
    assert!(
        other
            .terraform(&dir3, &["init", "-no-color", "-input=false"])
            .status
            .success()
    );
    let refused = other.terraform(
        &dir3,
        &["apply", "-auto-approve", "-no-color", "-input=false"],
    );
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && said.contains("in use by another simulator"),
        "{said}"
    );
    let reset = other.cmd().args(["sim", "reset"]).output().unwrap();
    assert!(reset.status.success(), "{reset:?}");
    drop(other);
    let again = served();
    assert!(again.contains("hello-through-the-gateway"), "{again}");
    // an address of the simulator that nothing holds is refused here, never sent elsewhere
    let routes = String::from_utf8(
        std::process::Command::new("ip")
            .args(["route", "get", "198.51.100.200"])
            .output()
            .unwrap()
            .stderr,
    )
    .unwrap();
    assert!(
        routes.contains("unreachable") || routes.contains("No route"),
        "{routes}"
    );
    let contracts = sim.contracts();
    let kinds: Vec<&str> = contracts["contracts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["workload"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"name") && kinds.contains(&"Gateway Name"),
        "{kinds:?}"
    );

    // the same name again, from another folder: taken
    let dir2 = sim.root.path().join("gw2");
    write(
        &dir2,
        "main.tf",
        &format!(
            "{PROVIDER_BLOCK}\nresource \"grid_name_proxy\" \"p\" {{\n  name     = \"mysite\"\n  node     = 13\n  backends = [\"http://10.94.3.2:8000\"]\n}}\n"
        ),
    );
    assert!(
        sim.terraform(&dir2, &["init", "-no-color", "-input=false"])
            .status
            .success()
    );
    let taken = sim.terraform(
        &dir2,
        &["apply", "-auto-approve", "-no-color", "-input=false"],
    );
    assert!(!taken.status.success());
    assert!(
        String::from_utf8_lossy(&taken.stderr).contains("NameExists"),
        "{}",
        String::from_utf8_lossy(&taken.stderr)
    );

    let destroy = sim.terraform(
        &dir,
        &["destroy", "-auto-approve", "-no-color", "-input=false"],
    );
    assert!(
        destroy.status.success(),
        "{}",
        String::from_utf8_lossy(&destroy.stderr)
    );
    assert_eq!(sim.contracts()["contracts"], serde_json::json!([]));
    assert!(
        !Path::new("/run/netns/gsgw-13").exists(),
        "the gateway node is stopped"
    );
    let left = String::from_utf8(
        std::process::Command::new("ip")
            .args(["route", "show", "type", "unreachable"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    // the guard routes are the machine's: another simulator running here keeps them
    let others = std::fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with("gsim-") || name.starts_with("gsgw-")
        });
    assert!(
        others || (!left.contains("198.51.100.0/24") && !left.contains("198.18.0.0/15")),
        "guard routes left: {left}"
    );
    // the name is free again
    let again = sim.terraform(
        &dir2,
        &["apply", "-auto-approve", "-no-color", "-input=false"],
    );
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(
        sim.terraform(
            &dir2,
            &["destroy", "-auto-approve", "-no-color", "-input=false"]
        )
        .status
        .success()
    );
}

/// True when the sshd at `addr` greets on port 22 (within about 30 s).
fn answers(addr: &str) -> bool {
    use std::io::Read as _;
    for _ in 0..60 {
        let greeting = std::net::TcpStream::connect_timeout(
            &format!("{addr}:22").parse().unwrap(),
            std::time::Duration::from_secs(1),
        )
        .ok()
        .and_then(|mut s| {
            s.set_read_timeout(Some(std::time::Duration::from_secs(2)))
                .ok()?;
            let mut buf = [0u8; 8];
            s.read_exact(&mut buf).ok()?;
            Some(buf.starts_with(b"SSH-2.0"))
        });
        if greeting == Some(true) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    false
}

/// Two simulators on this machine (two data dirs) each up a VM with a public IPv4: they get
/// different addresses, each routed to its own VM; the second cannot take the first's address
/// even when asked for it (the claim names the holder), and its destroy and reset leave the
/// first's route and VM reachable; the address of a simulator whose folder is gone is taken over
/// (and that simulator's reset, once back, leaves it alone); no claim is left when all are gone.
#[test]
fn two_simulators_hold_their_own_public_ipv4s_on_this_machine() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let config = |range: &str| {
        format!(
            r#"{PROVIDER_BLOCK}
resource "grid_network" "net" {{
  name          = "pubnet"
  nodes         = [11]
  ip_range      = "{range}"
  add_wg_access = false
}}
resource "grid_deployment" "d" {{
  name         = "pub"
  node         = 11
  network_name = grid_network.net.name
  vms {{
    name     = "vm"
    flist    = "https://hub.grid.tf/tf-official-vms/ubuntu-24.04-full.flist"
    cpu      = 1
    memory   = 512
    publicip = true
    env_vars = {{ SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJwJ0Zs2YpVwR3KcGq9dQ1f3n7m1kq5cB8v0M2y1aX9Z test" }}
  }}
}}
output "public" {{ value = grid_deployment.d.vms[0].computedip }}
output "ip" {{ value = grid_deployment.d.vms[0].ip }}
"#
        )
    };
    let up = |sim: &Sim, range: &str| -> (PathBuf, String, String) {
        let dir = sim.root.path().join("pub");
        write(&dir, "main.tf", &config(range));
        let out = sim.apply(&dir);
        let public = out["public"]["value"].as_str().unwrap();
        let public = public.split('/').next().unwrap().to_string();
        (
            dir,
            public,
            out["ip"]["value"].as_str().unwrap().to_string(),
        )
    };
    let route = |addr: &str| {
        String::from_utf8(
            std::process::Command::new("ip")
                .args(["route", "show", &format!("{addr}/32")])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap()
    };
    let claim = |addr: &str| PathBuf::from(format!("/run/tfgrid-compose-sim/ip-{addr}"));
    let first = Sim::new();
    let (dir_a, a, _) = up(&first, "10.95.0.0/16");
    assert!(a.starts_with("198.51.100."), "{a}");
    let route_a = route(&a);
    assert!(route_a.contains("via 198.18."), "{route_a}");
    assert!(answers(&a), "{a} does not answer");
    let second = Sim::new();
    let (dir_b, b, private_b) = up(&second, "10.96.0.0/16");
    assert!(b.starts_with("198.51.100.") && b != a, "{a} and {b}");
    assert!(answers(&b), "{b} does not answer");
    assert_eq!(route(&a), route_a, "the first's route changed");
    // asked for the first's address anyway (two allocations at once), the second's data plane is
    // refused with the holder's folder, and the first's route stays
    let ledger: Value =
        serde_json::from_slice(&std::fs::read(second.data().join("sim/ledger.json")).unwrap())
            .unwrap();
    let slot = ledger["networks"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()["slot"]
        .to_string();
    let n = private_b.split('.').nth(2).unwrap();
    let vms = tfgrid_compose::sim::ledger::sim_dir(&second.data()).vms();
    let vm_dir = vms.join("c999999-0").to_string_lossy().into_owned();
    let script = second.data().join("sim/sim.sh");
    let taken = std::process::Command::new(&script)
        .args([
            "vm-up",
            &vm_dir,
            &slot,
            &format!("br{n}"),
            &format!("10.96.{n}.250"),
            &format!("10.96.{n}.1"),
            "intruder",
            &a,
        ])
        .env("VM_SSH_KEY", "ssh-ed25519 AAAA-test")
        .output()
        .unwrap();
    let _ = std::process::Command::new(&script)
        .args(["vm-down", &vm_dir])
        .output();
    let said = String::from_utf8_lossy(&taken.stderr);
    let holder = first.data().join("sim");
    assert!(
        !taken.status.success()
            && said.contains(&format!("{a} (a public IPv4 of the simulated farm) is in use by another simulator on this machine (held by {}", holder.display())),
        "{said}"
    );
    assert_eq!(route(&a), route_a, "the first's route changed");
    // the second's destroy and reset leave the first's route and VM alone
    let destroy = second.terraform(
        &dir_b,
        &["destroy", "-auto-approve", "-no-color", "-input=false"],
    );
    assert!(destroy.status.success(), "{destroy:?}");
    assert!(
        route(&b).is_empty() && !claim(&b).exists(),
        "{b} is still held"
    );
    let reset = second.cmd().args(["sim", "reset"]).output().unwrap();
    assert!(reset.status.success(), "{reset:?}");
    assert_eq!(route(&a), route_a, "the first's route changed");
    assert!(answers(&a), "{a} no longer answers");
    // a simulator whose folder is gone (a job's data dir removed without a reset) while its VM
    // runs: its address is free to the next allocation, which takes the claim and route over
    let third = Sim::new();
    let (_, c, _) = up(&third, "10.97.0.0/16");
    assert!(c != a && claim(&c).exists(), "{c}");
    let gone = third.root.path().join("data-gone");
    std::fs::rename(third.data(), &gone).unwrap();
    let back = MoveBack(gone, third.data());
    let (dir_b, b2, _) = up(&second, "10.96.0.0/16");
    assert_eq!(b2, c, "the gone simulator's address is not taken over");
    let owner = std::fs::read_to_string(claim(&c).join("owner")).unwrap();
    assert_eq!(
        owner.trim(),
        second.data().join("sim").to_string_lossy(),
        "{c}'s claim"
    );
    assert!(answers(&c), "{c} does not answer");
    let route_c = route(&c);
    drop(back);
    // back, the earlier simulator's reset leaves the taker's route alone
    let reset = third.cmd().args(["sim", "reset"]).output().unwrap();
    assert!(reset.status.success(), "{reset:?}");
    drop(third);
    assert_eq!(route(&c), route_c, "the taker's route changed");
    let destroy = second.terraform(
        &dir_b,
        &["destroy", "-auto-approve", "-no-color", "-input=false"],
    );
    assert!(destroy.status.success(), "{destroy:?}");
    drop(second);
    let destroy = first.terraform(
        &dir_a,
        &["destroy", "-auto-approve", "-no-color", "-input=false"],
    );
    assert!(destroy.status.success(), "{destroy:?}");
    assert!(route(&a).is_empty(), "{}", route(&a));
    assert!(
        !claim(&a).exists() && !claim(&b).exists() && !claim(&c).exists(),
        "a claim is left"
    );
}

/// Renames a folder back (`.0` to `.1`) when dropped, also when a test fails in between.
struct MoveBack(PathBuf, PathBuf);

impl Drop for MoveBack {
    fn drop(&mut self) {
        let _ = std::fs::rename(&self.0, &self.1);
    }
}

/// examples/grid-gateway on the gateway pattern, unchanged, on the simulator: a gateway VM with a
/// public IPv4 in front of two backends on the private network. Its page answers on the public
/// address from this machine, through each backend in turn; `down` leaves 0 contracts and frees
/// the address.
#[test]
fn the_gateway_example_serves_through_its_public_ipv4_and_down_leaves_no_contract() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let sim = Sim::new();
    let app = sim.app("grid-gateway", "grid-gateway");
    let url = sim.up(&app, "default", "gateway");
    assert!(http_get(&url).contains("Served by backend"), "{url}");
    let inspect = sim.json(&["inspect", app.to_str().unwrap()]);
    let public = inspect["deployment"]["state"]["outputs"]["connection_info"]["public_ipv4"]
        .as_str()
        .map(String::from)
        .unwrap_or_else(|| panic!("{inspect}"));
    assert!(public.starts_with("198.51.100."), "{public}");
    let answers: BTreeSet<String> = (0..4)
        .map(|_| http_get(&format!("http://{public}/")))
        .map(|page| {
            page.lines()
                .find(|l| l.contains("Served by"))
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(
        answers.len(),
        2,
        "both backends answer through the gateway: {answers:?}"
    );
    let contracts = sim.contracts();
    assert_eq!(contracts["orphans"], 0, "{contracts}");
    assert_eq!(
        contracts["contracts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["workload"] == "vm")
            .count(),
        2,
        "gateway and backends deployments: {contracts}"
    );
    // a lock file recorded by another build of this binary (another provider package) does not
    // stop `down`
    let lock = app.join(".tfgrid-compose/default/terraform/.terraform.lock.hcl");
    let text = std::fs::read_to_string(&lock).unwrap();
    std::fs::write(&lock, text.replace("h1:", "h1:AAAA")).unwrap();
    sim.cmd()
        .args(["down", "--yes"])
        .arg(&app)
        .assert()
        .success();
    assert_eq!(sim.contracts()["contracts"], serde_json::json!([]));
    let routes = std::fs::read_to_string("/proc/net/route").unwrap();
    let hex = public
        .split('.')
        .map(|o| o.parse::<u8>().unwrap())
        .rev()
        .map(|o| format!("{o:02X}"))
        .collect::<String>();
    assert!(!routes.contains(&hex), "the public address is still routed");
}

/// The k3s pattern on the simulator goes as far as this machine allows: its VMs are created and
/// reached, and the platform stops where K3s's installer must be downloaded (no internet here),
/// with the task named; `down` then leaves 0 contracts.
#[test]
fn k3s_on_the_simulator_stops_only_at_the_installer_download() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let sim = Sim::new();
    let app = sim.app("static-site", "k3s-probe");
    let manifest = app.join("tfgrid-compose.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, format!("{text}config:\n  worker_count: 1\n  worker_cpu: 1\n  worker_mem: 1024\n  worker_disk: 20\n")).unwrap();
    sim.apps.borrow_mut().push((app.clone(), "default".into()));
    let out = sim
        .cmd()
        .args(["up", "--pattern", "k3s"])
        .arg(&app)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let state = tfgrid_compose::state::StateDir::for_app(&app, "default", false)
        .load()
        .unwrap()
        .unwrap();
    let status = |phase: &str| {
        state
            .journal
            .iter()
            .find(|p| p.phase.name() == phase)
            .map(|p| format!("{:?}", p.status).to_lowercase())
            .unwrap_or_default()
    };
    for phase in ["infrastructure", "network", "wait-ssh"] {
        assert_eq!(
            status(phase),
            "done",
            "{phase}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(status("platform"), "failed");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Download the K3s installer") && err.contains("get.k3s.io"),
        "{err}"
    );
    assert_eq!(
        state.outputs.as_ref().map(|o| o.secondary_ips.len()),
        Some(2),
        "management, control plane and a worker"
    );
    sim.cmd()
        .args(["down", "--yes"])
        .arg(&app)
        .assert()
        .success();
    assert_eq!(sim.contracts()["contracts"], serde_json::json!([]));
}

/// examples/ai-stack moved to the ai-stack grid pattern, on the simulator: `up` of its three VMs
/// (gateway with a public IPv4, agent, git host), then one `create` whose LLM (a test server on
/// this machine) the agent reaches at {host_ip} through the tunnel; the site is live at the
/// gateway; each VM rebooted from inside comes back by itself with its units active and the site
/// still served; `down` leaves 0 contracts.
#[test]
fn the_ai_stack_pattern_runs_a_create_on_the_simulator() {
    use crate::ai::{INDEX, LLM_KEY, get_live, start_llm};
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let sim = Sim::new();
    let app = sim.app("ai-stack", "ai-stack");
    let listener = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    start_llm(listener, seen.clone());
    let manifest = app.join("tfgrid-compose.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let (start, end) = {
        let at = text.find("  max_concurrent_projects").unwrap();
        (at, at)
    };
    let llm = format!(
        "  llm:\n    - base_url: \"http://{{host_ip}}:{port}/v1\"\n      model: canned\n      api_key_env: AI_STACK_TEST_KEY\n"
    );
    let sizes = "config:\n  gateway_memory: 1024\n  gateway_disk: 20\n  agent_cpu: 2\n  agent_memory: 2048\n  agent_disk: 20\n  git_memory: 1024\n  git_disk: 20\n";
    let text = format!("{}{llm}{}", &text[..start], &text[end..])
        .replace("config:\n  vm_count: 3\n", sizes);
    std::fs::write(&manifest, text).unwrap();
    sim.apps.borrow_mut().push((app.clone(), "default".into()));
    let out = sim
        .cmd()
        .args(["up", "--pattern", "ai-stack"])
        .arg(&app)
        .env("AI_STACK_TEST_KEY", LLM_KEY)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = sim
        .cmd()
        .current_dir(&app)
        .args(["create", "portfolio website with dark mode"])
        .env_remove("TFGRID_COMPOSE_AGENT_URL")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let live = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("Live site:"))
        .map(|u| u.trim().to_string())
        .unwrap_or_else(|| panic!("{stdout}"));
    assert_eq!(get_live(&live), (200, INDEX.to_string()));
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .all(|c| c["auth"] == format!("Bearer {LLM_KEY}")),
        "the agent reached the LLM with its key"
    );
    // Each VM rebooted from inside comes back by itself with every unit of the stack active
    // (a file in /run, a fresh tmpfs at every boot, tells the new boot from the old one); the
    // site is still served.
    let on_vm = |vm: usize, args: &[&str]| {
        let out = sim
            .cmd()
            .current_dir(&app)
            .args(["ssh", "--vm", &vm.to_string(), "--"])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
        )
    };
    for vm in 0..3 {
        let (ok, listing) = on_vm(vm, &crate::common::LIST_STACK_UNITS);
        let units = crate::common::unit_names(&listing);
        assert!(ok && !units.is_empty(), "VM {vm} runs units of the stack");
        assert!(on_vm(vm, &["touch", "/run/before-reboot"]).0);
        let _ = on_vm(vm, &["systemctl", "reboot"]);
        let started = std::time::Instant::now();
        while on_vm(
            vm,
            &[
                "sh",
                "-c",
                "test ! -e /run/before-reboot && systemctl is-system-running",
            ],
        ) != (true, "running".to_string())
        {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(180),
                "VM {vm} is not running again after its reboot"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        let mut is_active = vec!["systemctl", "is-active"];
        is_active.extend(units.iter().map(String::as_str));
        let (ok, states) = on_vm(vm, &is_active);
        assert!(ok, "VM {vm}: {units:?} after the reboot: {states}");
    }
    assert_eq!(get_live(&live), (200, INDEX.to_string()));
    let contracts = sim.contracts();
    assert_eq!(contracts["orphans"], 0, "{contracts}");
    sim.cmd()
        .args(["down", "--yes"])
        .arg(&app)
        .assert()
        .success();
    assert_eq!(sim.contracts()["contracts"], serde_json::json!([]));
}

/// Updates as the grid makes them: a VM added to a deployment keeps the first VM's address and
/// contract; an in-place change of a VM is refused as zos refuses it; a new node cancels the old
/// contract and makes a new one; the node's capacity follows.
#[test]
fn deployment_updates_follow_the_grid() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let sim = Sim::new();
    let dir = sim.root.path().join("upd");
    let key =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJwJ0Zs2YpVwR3KcGq9dQ1f3n7m1kq5cB8v0M2y1aX9Z test";
    let config = |node: u32, vms: &[(&str, u32)]| {
        let vms: String = vms
            .iter()
            .map(|(name, cpu)| format!("  vms {{\n    name     = \"{name}\"\n    flist    = \"https://hub.grid.tf/x.flist\"\n    cpu      = {cpu}\n    memory   = 1024\n    env_vars = {{ SSH_KEY = \"{key}\" }}\n  }}\n"))
            .collect();
        format!(
            "{PROVIDER_BLOCK}\nresource \"grid_network\" \"n\" {{\n  name     = \"upd\"\n  nodes    = [11, 12]\n  ip_range = \"10.93.0.0/16\"\n}}\nresource \"grid_deployment\" \"d\" {{\n  name         = \"d\"\n  node         = {node}\n  network_name = grid_network.n.name\n{vms}}}\noutput \"id\" {{ value = grid_deployment.d.id }}\noutput \"ips\" {{ value = grid_deployment.d.vms[*].ip }}\n"
        )
    };
    let apply = |text: String| {
        write(&dir, "main.tf", &text);
        let out = sim.terraform(
            &dir,
            &["apply", "-auto-approve", "-no-color", "-input=false"],
        );
        let outputs: Value =
            serde_json::from_slice(&sim.terraform(&dir, &["output", "-json"]).stdout)
                .unwrap_or_default();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
            outputs,
        )
    };
    write(&dir, "main.tf", &config(11, &[("a", 1)]));
    assert!(
        sim.terraform(&dir, &["init", "-no-color", "-input=false"])
            .status
            .success()
    );
    let used = |node: u64| {
        sim.json(&["sim", "status"])["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["node_id"] == node)
            .unwrap()["used"]["cru"]
            .as_u64()
            .unwrap()
    };
    let (ok, err, first) = apply(config(11, &[("a", 1)]));
    assert!(ok, "{err}");
    assert_eq!(used(11), 1);
    let (ok, err, second) = apply(config(11, &[("a", 1), ("b", 2)]));
    assert!(ok, "{err}");
    assert_eq!(
        second["id"]["value"], first["id"]["value"],
        "the same contract"
    );
    assert_eq!(
        second["ips"]["value"][0], first["ips"]["value"][0],
        "the first VM keeps its address"
    );
    assert_ne!(second["ips"]["value"][1], first["ips"]["value"][0]);
    assert_eq!(used(11), 3);
    let (ok, err, _) = apply(config(11, &[("a", 4), ("b", 2)]));
    assert!(
        !ok && err.contains("workload 'zmachine' does not support upgrade"),
        "{err}"
    );
    let (ok, err, moved) = apply(config(12, &[("a", 1), ("b", 2)]));
    assert!(ok, "{err}");
    assert_ne!(
        moved["id"]["value"], first["id"]["value"],
        "a new contract on the new node"
    );
    assert_eq!((used(11), used(12)), (0, 3));
    assert!(
        sim.terraform(
            &dir,
            &["destroy", "-auto-approve", "-no-color", "-input=false"]
        )
        .status
        .success()
    );
    assert_eq!(sim.contracts()["contracts"], serde_json::json!([]));
}

/// `nodes` and `farms` on `--network sim` ask the simulator's GridProxy: zos-light nodes (14, 23)
/// are never candidates, and a node's free memory goes down by what a deployment takes.
#[test]
fn nodes_and_farms_on_the_simulator_skip_light_nodes_and_see_used_capacity() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let sim = Sim::new();
    let nodes = sim.json(&["nodes", "--limit", "20"]);
    let ids: BTreeSet<u64> = nodes["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["node_id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, BTreeSet::from([11, 12, 13, 21, 22, 24]), "{nodes}");
    let farms = sim.json(&["farms"]);
    assert_eq!(farms["farms"].as_array().unwrap().len(), 2, "{farms}");
    let free = |doc: &Value| {
        doc["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["node_id"] == 12)
            .unwrap()["free_memory_gib"]
            .as_u64()
    };
    let before = free(&nodes);
    let dir = sim.root.path().join("cap");
    write(
        &dir,
        "main.tf",
        &format!(
            "{PROVIDER_BLOCK}\nresource \"grid_network\" \"n\" {{\n  name     = \"cap\"\n  nodes    = [12]\n  ip_range = \"10.92.0.0/16\"\n}}\nresource \"grid_deployment\" \"d\" {{\n  name         = \"cap\"\n  node         = 12\n  network_name = grid_network.n.name\n  vms {{\n    name   = \"big\"\n    flist  = \"https://hub.grid.tf/x.flist\"\n    cpu    = 2\n    memory = 8192\n  }}\n}}\n"
        ),
    );
    assert!(
        sim.terraform(&dir, &["init", "-no-color", "-input=false"])
            .status
            .success()
    );
    let apply = sim.terraform(
        &dir,
        &["apply", "-auto-approve", "-no-color", "-input=false"],
    );
    assert!(
        apply.status.success(),
        "{}",
        String::from_utf8_lossy(&apply.stderr)
    );
    let after = free(&sim.json(&["nodes", "--limit", "20"]));
    assert!(
        before.is_some() && after.is_some() && before.unwrap() - after.unwrap() == 8,
        "{before:?} → {after:?}"
    );
    assert!(
        sim.terraform(
            &dir,
            &["destroy", "-auto-approve", "-no-color", "-input=false"]
        )
        .status
        .success()
    );

    // grid_scheduler: asked for neither WireGuard nor Yggdrasil nor public IPs, it picks a
    // zos-light node (the trap); asked for WireGuard, a full one
    let sched = sim.root.path().join("sched");
    let requests = format!(
        "{PROVIDER_BLOCK}\nresource \"grid_scheduler\" \"s\" {{\n  requests {{\n    name      = \"light\"\n    mru       = 1024\n    wireguard = false\n    yggdrasil = false\n  }}\n  requests {{\n    name      = \"full\"\n    mru       = 1024\n    wireguard = true\n    yggdrasil = false\n  }}\n}}\noutput \"nodes\" {{ value = grid_scheduler.s.nodes }}\n"
    );
    write(&sched, "main.tf", &requests);
    assert!(
        sim.terraform(&sched, &["init", "-no-color", "-input=false"])
            .status
            .success()
    );
    let apply = sim.terraform(
        &sched,
        &["apply", "-auto-approve", "-no-color", "-input=false"],
    );
    assert!(
        apply.status.success(),
        "{}",
        String::from_utf8_lossy(&apply.stderr)
    );
    let nodes: Value =
        serde_json::from_slice(&sim.terraform(&sched, &["output", "-json", "nodes"]).stdout)
            .unwrap();
    assert!(
        [14, 23].contains(&nodes["light"].as_u64().unwrap()),
        "{nodes}"
    );
    assert!(
        ![14, 23].contains(&nodes["full"].as_u64().unwrap()),
        "{nodes}"
    );
    assert!(
        sim.terraform(
            &sched,
            &["destroy", "-auto-approve", "-no-color", "-input=false"]
        )
        .status
        .success()
    );
}
