//! The grid patterns with a fake `tofu` that answers `output -json` as the grid provider would:
//! `up` and `down` of each, with the exact tool calls, the variables passed, the mnemonic only in
//! tofu's environment, the inventory groups, the addresses ssh is pointed at, and the destroy.
//! Addresses are on loopback (127.0.0.x, ::1) where the test listens in place of each VM's sshd.

use std::net::TcpListener;

use crate::common::{GridProxyFixture, TestContext};

/// A valid BIP-39 phrase (a test vector of the specification), searched for everywhere.
pub(crate) const CANARY: &str =
    "scheme spot photo card baby mountain device kick cradle pact join borrow";
pub(crate) const CANARY_PART: &str = "spot photo card baby";

struct Case {
    pattern: &'static str,
    outputs: String,
    /// Expected `[group]` lines and host lines of the inventory.
    inventory: &'static [&'static str],
    /// Addresses `ssh true` is pointed at (wait-ssh), in any order.
    ssh_hosts: &'static [&'static str],
    wireguard: bool,
}

const WG: &str = r#""wg_config": {"value": "[Interface]\nPrivateKey = c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2U=\nAddress = 100.64.20.2/32\n[Peer]\nPublicKey = cHVibGljcHVibGljcHVibGljcHVibGljcHVibGljcHU=\nAllowedIPs = 10.20.0.0/16, 100.64.0.0/16\nEndpoint = 185.69.166.1:3011\n", "sensitive": true}"#;

fn cases() -> Vec<Case> {
    vec![
        Case {
            pattern: "single-vm",
            outputs: format!(
                r#"{{"primary_ip": {{"value": "127.0.0.2"}}, "primary_ip_type": {{"value": "wireguard"}}, "deployment_name": {{"value": "minimal0123"}},
                    "node_ids": {{"value": [1321]}}, "mycelium_ip": {{"value": "4ab:3e2f:aa10:ff0e:ff0f:2c54:b3f0:1a2c"}}, "private_ips": {{"value": ["127.0.0.2"]}},
                    "connection_info": {{"value": {{"wireguard_ip": "127.0.0.2", "public_ipv4": ""}}}}, {WG}}}"#
            ),
            inventory: &["[primary]", "vm0 ansible_host=127.0.0.2"],
            ssh_hosts: &["127.0.0.2"],
            wireguard: true,
        },
        Case {
            pattern: "single-vm",
            outputs: r#"{"primary_ip": {"value": "::1"}, "primary_ip_type": {"value": "mycelium"}, "deployment_name": {"value": "minimal0123"},
                "node_ids": {"value": [1321]}, "mycelium_ip": {"value": "::1"}, "private_ips": {"value": ["10.20.2.2"]}}"#
                .to_string(),
            inventory: &["[primary]", "vm0 ansible_host=::1"],
            ssh_hosts: &["::1"],
            wireguard: false,
        },
        Case {
            pattern: "gateway",
            outputs: format!(
                r#"{{"primary_ip": {{"value": "127.0.0.2"}}, "primary_ip_type": {{"value": "wireguard"}}, "deployment_name": {{"value": "minimal0123"}},
                    "node_ids": {{"value": [11, 42]}},
                    "secondary_ips": {{"value": [{{"name": "backend1", "ip": "127.0.0.3", "type": "wireguard", "role": "backend"}}, {{"name": "backend2", "ip": "127.0.0.4", "type": "wireguard", "role": "backend"}}]}},
                    "private_ips": {{"value": ["127.0.0.2", "127.0.0.3", "127.0.0.4"]}}, "connection_info": {{"value": {{"public_ipv4": "185.69.166.20", "url": "http://185.69.166.20/"}}}}, {WG}}}"#
            ),
            inventory: &["[primary]", "vm0 ansible_host=127.0.0.2", "[backend]", "backend1 ansible_host=127.0.0.3", "backend2 ansible_host=127.0.0.4"],
            ssh_hosts: &["127.0.0.2", "127.0.0.3", "127.0.0.4"],
            wireguard: true,
        },
        Case {
            pattern: "k3s",
            outputs: format!(
                r#"{{"primary_ip": {{"value": "127.0.0.2"}}, "primary_ip_type": {{"value": "wireguard"}}, "deployment_name": {{"value": "minimal0123"}},
                    "node_ids": {{"value": [77]}},
                    "secondary_ips": {{"value": [{{"name": "control1", "ip": "127.0.0.3", "type": "wireguard", "role": "control"}}, {{"name": "worker1", "ip": "127.0.0.4", "type": "wireguard", "role": "worker"}}, {{"name": "worker2", "ip": "127.0.0.5", "type": "wireguard", "role": "worker"}}]}},
                    "connection_info": {{"value": {{"api_server": "https://127.0.0.3:6443"}}}}, {WG}}}"#
            ),
            inventory: &[
                "[primary]",
                "vm0 ansible_host=127.0.0.2",
                "[control]",
                "control1 ansible_host=127.0.0.3",
                "[worker]",
                "worker1 ansible_host=127.0.0.4",
                "worker2 ansible_host=127.0.0.5",
            ],
            ssh_hosts: &["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"],
            wireguard: true,
        },
        Case {
            pattern: "ai-stack",
            outputs: format!(
                r#"{{"primary_ip": {{"value": "127.0.0.2"}}, "primary_ip_type": {{"value": "wireguard"}}, "deployment_name": {{"value": "minimal0123"}},
                    "node_ids": {{"value": [11, 42]}},
                    "secondary_ips": {{"value": [{{"name": "agent", "ip": "127.0.0.3", "type": "wireguard", "role": "agent"}}, {{"name": "git", "ip": "127.0.0.4", "type": "wireguard", "role": "git"}}]}},
                    "private_ips": {{"value": ["127.0.0.2", "127.0.0.3", "127.0.0.4"]}}, {WG}}}"#
            ),
            inventory: &["[primary]", "vm0 ansible_host=127.0.0.2", "[agent]", "agent ansible_host=127.0.0.3", "[git]", "git ansible_host=127.0.0.4"],
            ssh_hosts: &["127.0.0.2", "127.0.0.3", "127.0.0.4"],
            wireguard: true,
        },
    ]
}

/// Every file under `dir`, for the canary search.
pub(crate) fn all_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            all_files(&path, out)
        } else {
            out.push(path)
        }
    }
}

pub(crate) fn use_pattern(cx: &TestContext, pattern: &str) {
    let manifest = cx.app.join("tfgrid-compose.yaml");
    let text = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace("pattern: minimal", &format!("pattern: {pattern}"))
        .replace(
            "config:\n  flavor: small\n",
            "config:\n  tfgrid_network: test\n",
        );
    std::fs::write(&manifest, text).unwrap();
}

#[test]
fn each_grid_pattern_goes_up_and_down_with_the_exact_calls() {
    for case in cases() {
        let cx = TestContext::new();
        // One listener per VM address, on the port the test's sshd stand-in uses.
        let _listeners: Vec<TcpListener> = case
            .ssh_hosts
            .iter()
            .filter(|h| **h != "127.0.0.1")
            .map(|h| TcpListener::bind((*h, cx.port)).unwrap())
            .collect();
        use_pattern(&cx, case.pattern);
        cx.set_outputs(&case.outputs);
        let proxy = GridProxyFixture::start(0);
        let out = cx
            .cmd()
            .arg("up")
            .arg(&cx.app)
            .env("TF_VAR_mnemonic", CANARY)
            .env("TFGRID_COMPOSE_GRIDPROXY_URL", &proxy.url)
            .output()
            .unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(out.status.success(), "{}: {stderr}", case.pattern);

        let steps = cx.steps();
        let mut expected = vec![
            "ssh-keygen",
            "tofu init",
            "tofu plan",
            "tofu apply",
            "tofu output",
        ];
        if case.wireguard {
            expected.extend(["wg-quick up", "wg show"]);
        }
        assert_eq!(
            steps[..expected.len()],
            expected,
            "{}: {steps:?}",
            case.pattern
        );
        let probes: Vec<String> = cx
            .transcript()
            .iter()
            .filter(|l| l.starts_with("ssh ") && l.ends_with("-- 'cat'"))
            .cloned()
            .collect();
        for host in case.ssh_hosts {
            let target = format!("root@{host} ");
            assert!(
                probes.iter().any(|p| p.contains(&target)),
                "{}: no ssh to {host}: {probes:?}",
                case.pattern
            );
        }
        let t = cx.transcript();
        let playbook = t
            .iter()
            .find(|l| l.starts_with("ansible-playbook"))
            .unwrap();
        assert!(
            playbook.ends_with(&format!("/{}/platform/site.yml", case.pattern)),
            "{playbook}"
        );

        // Variables: the orchestrator's three plus the app's config; never the mnemonic.
        let tfvars =
            std::fs::read_to_string(cx.state_dir().join("terraform/tfgrid-compose.tfvars.json"))
                .unwrap();
        let vars: serde_json::Value = serde_json::from_str(&tfvars).unwrap();
        assert_eq!(vars["tfgrid_network"], "test");
        assert_eq!(vars["deployment_name"], "minimal");
        assert!(
            vars["deployment_id"].as_str().unwrap().len() == 16
                && vars["ssh_public_key"]
                    .as_str()
                    .unwrap()
                    .starts_with("ssh-ed25519")
        );
        assert!(vars.get("mnemonic").is_none());
        // Every placement got a node that can take it (fixture nodes 11, 12, 21, 22, 23 are usable).
        let state: serde_yaml::Value = serde_yaml::from_str(&cx.state_text()).unwrap();
        let placement = state["placement"].as_sequence().unwrap();
        assert!(!placement.is_empty(), "{}", case.pattern);
        for choice in placement {
            let node = choice["node"].as_u64().unwrap();
            assert_eq!(choice["how"].as_str(), Some("selected"));
            assert!(
                [11, 12, 21, 22, 23].contains(&node),
                "{}: node {node}",
                case.pattern
            );
            assert_eq!(
                vars[choice["variable"].as_str().unwrap()],
                node,
                "{}: tfvars carry the chosen node",
                case.pattern
            );
        }
        assert!(
            proxy
                .requests()
                .iter()
                .any(|r| r.starts_with("/nodes?status=up&healthy=true&free_mru=")),
            "{:?}",
            proxy.requests()
        );
        let env_log = std::fs::read_to_string(cx.fake_dir.join("env.log")).unwrap();
        assert_eq!(
            env_log.lines().count(),
            steps.iter().filter(|s| s.starts_with("tofu")).count(),
            "every tofu call had TF_VAR_mnemonic in its environment"
        );

        let inventory = std::fs::read_to_string(cx.state_dir().join("inventory.ini")).unwrap();
        let lines: Vec<&str> = inventory
            .lines()
            .filter(|l| l.starts_with('[') && !l.starts_with("[all") || l.contains("ansible_host"))
            .collect();
        assert_eq!(
            lines.len(),
            case.inventory.len(),
            "{}: {inventory}",
            case.pattern
        );
        for (line, want) in lines.iter().zip(case.inventory) {
            assert!(
                line.starts_with(want),
                "{}: `{line}` is not `{want}`",
                case.pattern
            );
        }

        // Without the mnemonic, `down` is refused before anything runs: the deployment stays
        // as it was, `up` and reachable.
        cx.clear_transcript();
        let refused = cx
            .cmd()
            .args(["down", "--yes"])
            .arg(&cx.app)
            .output()
            .unwrap();
        assert!(!refused.status.success(), "{}", case.pattern);
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains("needs the ThreeFold mnemonic"),
            "{}",
            String::from_utf8_lossy(&refused.stderr)
        );
        assert_eq!(cx.steps(), Vec::<String>::new(), "{}", case.pattern);
        cx.cmd().arg("status").arg(&cx.app).assert().success();

        cx.clear_transcript();
        let out2 = cx
            .cmd()
            .args(["down", "--yes"])
            .arg(&cx.app)
            .env("TF_VAR_mnemonic", CANARY)
            .output()
            .unwrap();
        assert!(
            out2.status.success(),
            "{}: {}",
            case.pattern,
            String::from_utf8_lossy(&out2.stderr)
        );
        assert_eq!(
            cx.steps(),
            ["tofu init", "tofu destroy", "tofu output"],
            "{}",
            case.pattern
        );
        assert!(
            cx.transcript()[1].contains("destroy -input=false")
                && cx.transcript()[1].contains("-var-file="),
            "{:?}",
            cx.transcript()
        );
        assert!(!cx.app.join(".tfgrid-compose").exists());

        // The canary mnemonic is nowhere: not on argv, not in a file, not in a message.
        let mut files = Vec::new();
        all_files(cx.root.path(), &mut files);
        for file in files {
            let bytes = std::fs::read(&file).unwrap_or_default();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(CANARY_PART),
                "{}: mnemonic in {}",
                case.pattern,
                file.display()
            );
        }
        for text in [
            stdout,
            stderr,
            String::from_utf8_lossy(&out2.stdout),
            String::from_utf8_lossy(&out2.stderr),
        ] {
            assert!(
                !text.contains(CANARY_PART),
                "{}: mnemonic printed",
                case.pattern
            );
        }
    }
}

#[test]
fn dry_run_of_a_grid_pattern_shows_the_commands_and_creates_nothing() {
    for pattern in ["single-vm", "gateway", "k3s", "ai-stack"] {
        let cx = TestContext::new();
        use_pattern(&cx, pattern);
        let proxy = GridProxyFixture::start(0);
        let out = cx
            .cmd()
            .args(["up", "--dry-run"])
            .arg(&cx.app)
            .env("TF_VAR_mnemonic", CANARY)
            .env("TFGRID_COMPOSE_GRIDPROXY_URL", &proxy.url)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{pattern}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for want in [
            "/tofu -chdir=",
            " init ",
            " plan ",
            " apply ",
            "$ ansible-playbook ",
        ] {
            assert!(stdout.contains(want), "{pattern}: no `{want}` in\n{stdout}");
        }
        assert!(
            stdout.contains(&format!("/{pattern}/platform/site.yml")),
            "{stdout}"
        );
        assert!(!stdout.contains(CANARY_PART), "{pattern}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("Placing"),
            "{pattern}: the chosen nodes are shown"
        );
        assert!(
            !cx.app.join(".tfgrid-compose").exists()
                && std::fs::read_to_string(cx.fake_dir.join("argv.log"))
                    .unwrap_or_default()
                    .is_empty()
        );
    }
}

#[test]
fn a_grid_pattern_without_a_mnemonic_stops_at_validate() {
    let cx = TestContext::new();
    use_pattern(&cx, "single-vm");
    let (code, _, err) = cx.run(&["up", cx.app_arg()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("needs a ThreeFold mnemonic") && err.contains("TF_VAR_mnemonic"),
        "{err}"
    );
    assert!(!cx.app.join(".tfgrid-compose").exists());
}

#[test]
fn patterns_are_listed_shown_and_checked() {
    let cx = TestContext::new();
    let (code, out, err) = cx.run(&["patterns", "--json"]);
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let names: Vec<&str> = doc["patterns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for name in ["ai-stack", "gateway", "k3s", "local", "single-vm"] {
        assert!(names.contains(&name), "{names:?}");
    }
    let (code, out, _) = cx.run(&["patterns", "show", "gateway"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("requires   mnemonic")
            && out.contains("backend_count")
            && out.contains("[1..10]")
            && out.contains("secondary_ips"),
        "{out}"
    );
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("patterns");
    // `check` runs the real ansible-playbook, not the fake one.
    let real = |args: &[&str]| {
        let out = cx
            .std_cmd()
            .args(args)
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    for name in ["single-vm", "gateway", "k3s", "ai-stack", "local"] {
        let (code, err) = real(&["patterns", "check", root.join(name).to_str().unwrap()]);
        assert_eq!(code, 0, "{name}: {err}");
        assert!(
            err.contains(if name == "local" {
                "5 checks passed"
            } else {
                "6 checks passed"
            }),
            "{name}: {err}"
        );
    }
    // A pattern missing an output fails with the output's name; one missing a passed variable too.
    let broken = cx.root.path().join("broken");
    crate::common::copy_dir(&root.join("single-vm"), &broken);
    let outputs = std::fs::read_to_string(broken.join("infrastructure/outputs.tf")).unwrap();
    std::fs::write(
        broken.join("infrastructure/outputs.tf"),
        outputs.replace("output \"node_ids\"", "output \"node_list\""),
    )
    .unwrap();
    let vars = std::fs::read_to_string(broken.join("infrastructure/variables.tf")).unwrap();
    std::fs::write(
        broken.join("infrastructure/variables.tf"),
        vars.replace("variable \"ssh_public_key\"", "variable \"ssh_key\""),
    )
    .unwrap();
    std::fs::write(
        broken.join("platform/site.yml"),
        "- hosts: all\n  tasks:\n    - name: x\n      no_such_module_here: {}\n",
    )
    .unwrap();
    let (code, err) = real(&["patterns", "check", broken.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("contract output `node_ids` is not declared"),
        "{err}"
    );
    assert!(
        err.contains("variable `ssh_public_key` is passed by the orchestrator but not declared"),
        "{err}"
    );
    assert!(err.contains("platform/site.yml"), "{err}");
    assert!(err.contains("3 problems"), "{err}");
}

/// An AI-stack app on the grid pattern: each VM gets its configs and this binary by scp, the
/// state records the addresses, and neither the LLM key nor a token reaches argv or a message.
#[test]
fn an_ai_stack_app_on_the_grid_gets_its_configs_and_binary_on_each_vm() {
    const KEY: &str = "sk-grid-llm-canary-5c1e";
    let case = cases()
        .into_iter()
        .find(|c| c.pattern == "ai-stack")
        .unwrap();
    let cx = TestContext::new();
    let _listeners: Vec<TcpListener> = case
        .ssh_hosts
        .iter()
        .map(|h| TcpListener::bind((*h, cx.port)).unwrap())
        .collect();
    use_pattern(&cx, "ai-stack");
    let manifest = cx.app.join("tfgrid-compose.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        format!("{text}ai_stack:\n  llm:\n    - base_url: \"http://10.20.0.9:11434/v1\"\n      model: m\n      api_key_env: GRID_LLM_KEY\n"),
    )
    .unwrap();
    cx.set_outputs(&case.outputs);
    let proxy = GridProxyFixture::start(0);
    let run = |args: &[&str]| {
        cx.cmd()
            .args(args)
            .arg(&cx.app)
            .env("TF_VAR_mnemonic", CANARY)
            .env("GRID_LLM_KEY", KEY)
            .env("TFGRID_COMPOSE_GRIDPROXY_URL", &proxy.url)
            .output()
            .unwrap()
    };
    let dry = run(&["up", "--dry-run"]);
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    assert!(String::from_utf8_lossy(&dry.stdout).contains("/usr/local/bin/tfgrid-compose.new"));
    assert!(
        !cx.app.join(".tfgrid-compose").exists(),
        "a dry run writes no token"
    );

    let out = run(&["up"]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{stderr}");
    let t = cx.transcript();
    for host in case.ssh_hosts {
        let on = |needle: &str| {
            t.iter()
                .any(|l| l.contains(&format!("root@{host}")) && l.contains(needle))
        };
        assert!(on("'rm' '-rf' '/etc/tfgrid-ai'"), "{host}: {t:#?}");
        assert!(
            on(":/etc/tfgrid-ai") && on(":/usr/local/bin/tfgrid-compose.new"),
            "{host}: {t:#?}"
        );
        assert!(
            on("'mv' '-f' '/usr/local/bin/tfgrid-compose.new' '/usr/local/bin/tfgrid-compose'"),
            "{host}: {t:#?}"
        );
    }
    let state: serde_yaml::Value = serde_yaml::from_str(&cx.state_text()).unwrap();
    assert_eq!(
        state["ai_stack"]["agent_api"].as_str(),
        Some("http://127.0.0.3:7702")
    );
    assert_eq!(
        state["ai_stack"]["public_url"].as_str(),
        Some("http://127.0.0.2")
    );
    let tokens = cx.state_dir().join("ai-stack");
    let agent_token = std::fs::read_to_string(tokens.join("agent.token")).unwrap();
    assert_eq!(agent_token.trim().len(), 64);
    let argv = std::fs::read_to_string(cx.fake_dir.join("argv.log")).unwrap();
    for secret in [KEY, agent_token.trim()] {
        assert!(
            !argv.contains(secret)
                && !stdout.contains(secret)
                && !stderr.contains(secret)
                && !cx.state_text().contains(secret)
        );
    }
    // `projects` finds this deployment's agent by itself (and reports that it does not answer).
    let projects = cx
        .cmd()
        .args(["projects"])
        .env_remove("TFGRID_COMPOSE_AGENT_URL")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&projects.stderr);
    assert!(
        !projects.status.success() && err.contains("127.0.0.3:7702"),
        "{err}"
    );
    assert!(!err.contains(agent_token.trim()));

    let down = run(&["down", "--yes"]);
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    assert!(!tokens.exists(), "down removes the tokens with the state");
}
