//! Patterns written for the bash tool (`tests/fixtures/patterns/bash-vm`, its single-vm in its
//! layout and format): `patterns check` with the real ansible-playbook, `up` with fake tools and
//! the exact tfvars Terraform gets, pattern commands and the built-in verbs they replace, and
//! bad input in such a pattern named by file and line.

use std::path::PathBuf;

use crate::common::{GridProxyFixture, TestContext, copy_dir, fixtures};
use crate::grid::CANARY;
use crate::schema::assert_fits;

/// `output -json` as the bash tool's single-vm gives it with `mycelium,ipv4`: `primary_ip` is
/// the grid's `computedip`, with its prefix length.
const OUTPUTS: &str = r#"{
  "primary_ip": {"value": "127.0.0.1/24"}, "primary_ip_type": {"value": "ipv4"},
  "deployment_name": {"value": "vm_1a2b3c4d"}, "node_ids": {"value": [11]},
  "mycelium_ip": {"value": "4ab:3e2f:aa10:ff0e:ff0f:2c54:b3f0:1a2c"},
  "ipv4_address": {"value": "127.0.0.1/24"}, "provisioned_networks": {"value": "mycelium,ipv4"}
}"#;

/// The minimal app on the `bash-vm` pattern, with `extra` appended to its manifest.
fn bash_app(cx: &TestContext, extra: &str) {
    let manifest = cx.app.join("tfgrid-compose.yaml");
    let text = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace("pattern: minimal", "pattern: bash-vm")
        .replace("config:\n  flavor: small\n", "");
    std::fs::write(&manifest, format!("{text}{extra}")).unwrap();
    cx.set_outputs(OUTPUTS);
}

fn up(cx: &TestContext, proxy: &GridProxyFixture) -> std::process::Output {
    cx.cmd()
        .arg("up")
        .arg(&cx.app)
        .env("TF_VAR_mnemonic", CANARY)
        .env("TFGRID_COMPOSE_GRIDPROXY_URL", &proxy.url)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The real ansible-playbook (with ansible.posix and community.general, from
/// scripts/install-deps.sh) checks the fixture's playbook, which uses `sysctl` and `modprobe`.
#[test]
fn patterns_check_accepts_a_bash_pattern_and_names_the_rules_it_used() {
    let dir = fixtures().join("patterns/bash-vm");
    let check = |json: bool, collections: Option<&std::path::Path>| {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("tfgrid-compose"));
        cmd.env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("NO_COLOR", "1")
            .args(["patterns", "check"])
            .arg(&dir);
        if json {
            cmd.arg("--json");
        }
        if let Some(path) = collections {
            cmd.env("ANSIBLE_COLLECTIONS_PATH", path);
        }
        cmd.output().unwrap()
    };
    let out = check(false, None);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    for line in [
        "Rule format: the bash tool's pattern.yaml",
        "Rule variables: the 12 `variable` blocks of infrastructure/*.tf (`mnemonic` goes only into the environment",
        "Rule nodes: vm_node (vm) chosen by node selection",
        "Rule defaults: become variable values unless the app sets them: vm_cpu=2, vm_disk=25, vm_mem=2048",
        "Rule defaults.backend.count: the infrastructure declares no matching variable; not passed",
        "Rule commands: address, logs, status, uptime run on the primary VM",
        "Ok platform/site.yml passes ansible-playbook --syntax-check",
        "Checked pattern `bash-vm`",
    ] {
        assert!(err.contains(line), "no `{line}` in:\n{err}");
    }
    let out = check(true, None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc = assert_fits("patterns-check", &text(&out.stdout));
    assert_eq!(doc["format"], "bash");
    assert_eq!(doc["ok"], true);
    let rules = doc["compatibility"].as_array().unwrap();
    assert!(
        rules.iter().any(|r| r.as_str().unwrap().starts_with(
            "passed as the bash tool exported them: tfgrid_network, SSH_KEY, provision_mycelium"
        )),
        "{rules:?}"
    );
    // the syntax check is real: without the collections the playbook's modules are unknown
    let empty = tempfile::tempdir().unwrap();
    let out = check(true, Some(empty.path()));
    assert!(!out.status.success());
    let doc = assert_fits("patterns-check", &text(&out.stdout));
    assert!(
        doc["problems"][0]
            .as_str()
            .unwrap()
            .starts_with("platform/site.yml: `ansible-playbook"),
        "{doc}"
    );
}

#[test]
fn up_passes_the_declared_bash_variables_and_nothing_else() {
    let cx = TestContext::new();
    bash_app(&cx, "resources:\n  vm:\n    cpu: 1\n");
    let proxy = GridProxyFixture::start(0);
    let out = up(&cx, &proxy);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let tfvars =
        std::fs::read_to_string(cx.state_dir().join("terraform/tfgrid-compose.tfvars.json"))
            .unwrap();
    let vars: serde_json::Value = serde_json::from_str(&tfvars).unwrap();
    let node = vars["vm_node"].as_u64().unwrap();
    assert!(
        [11, 12, 22, 23].contains(&node),
        "a node whose farm has a free public IPv4 (provision_ipv4): {node}"
    );
    // exactly these: the declared ones the bash tool exported, from this tool's facts; the app's
    // cpu over the pattern's default, the pattern's defaults over the Terraform's
    let want = serde_json::json!({
        "SSH_KEY": "ssh-ed25519 AAAAfake test",
        "tfgrid_network": "main",
        "provision_mycelium": true,
        "provision_wireguard": false,
        "provision_ipv4": true,
        "provision_ipv6": false,
        "vm_public_ipv4": false,
        "vm_node": node,
        "vm_cpu": 1,
        "vm_mem": 2048,
        "vm_disk": 25,
    });
    assert_eq!(vars, want, "{tfvars}");
    for undeclared in [
        "mnemonic",
        "deployment_name",
        "ssh_public_key",
        "network_name",
        "CANARY",
    ] {
        assert!(!tfvars.contains(undeclared), "{undeclared} in {tfvars}");
    }
    assert!(
        !tfvars.contains("spot photo"),
        "the mnemonic is not in tfvars"
    );
    assert!(
        std::fs::read_to_string(cx.fake_dir.join("env.log"))
            .unwrap()
            .contains("mnemonic-seen"),
        "the pattern's `variable \"mnemonic\"` gets it from TF_VAR_mnemonic"
    );

    let t = cx.transcript();
    // the prefix length of `primary_ip` is dropped, as the bash tool did
    assert!(
        t.iter()
            .any(|l| l.starts_with("ssh ") && l.contains("root@127.0.0.1 -- 'cat'")),
        "{t:#?}"
    );
    let extra: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(cx.state_dir().join("extra-vars.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(extra["ipv4_address"], "127.0.0.1");
    assert_eq!(
        extra["mycelium_address"],
        "4ab:3e2f:aa10:ff0e:ff0f:2c54:b3f0:1a2c"
    );
    // the pattern's scripts go to the primary VM for its commands
    assert!(
        t.iter().any(|l| l.starts_with("scp ")
            && l.contains("[PATTERNS]/bash-vm/scripts ")
            && l.ends_with(":/tmp/app-pattern")),
        "{t:#?}"
    );
}

#[test]
fn pattern_commands_run_on_the_vm_and_replace_logs_status_and_address() {
    let cx = TestContext::new();
    bash_app(&cx, "");
    let proxy = GridProxyFixture::start(0);
    assert!(up(&cx, &proxy).status.success());
    let last_ssh = |cx: &TestContext| {
        cx.transcript()
            .into_iter()
            .rev()
            .find(|l| l.starts_with("ssh "))
            .unwrap()
    };

    // a command only the pattern has; its script lacks the execute bit: run by its `#!`
    cx.clear_transcript();
    let (code, _, err) = cx.run(&["uptime", "-p"]);
    assert_eq!(code, 0, "{err}");
    let line = last_ssh(&cx);
    assert!(
        line.contains("-- 'env' '-C' '/tmp/app-pattern' 'APP_NAME=minimal'")
            && line.ends_with("'/usr/bin/env' 'bash' '/tmp/app-pattern/uptime.sh' '-p'"),
        "{line}"
    );

    // `logs`: the pattern's, with the arguments; `--builtin` the phase logs
    let (code, _, err) = cx.run(&["logs", "--", "-n", "5"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        last_ssh(&cx).ends_with("'/tmp/app-pattern/logs.sh' '-n' '5'"),
        "{}",
        last_ssh(&cx)
    );
    cx.clear_transcript();
    let (code, out, err) = cx.run(&["logs", "--builtin", "infrastructure"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("-chdir="), "{out}");
    assert!(cx.transcript().is_empty(), "nothing ran on the VM");

    // `status` and `address`: the pattern's; `--builtin` and `--json` the built-in views
    let (code, _, _) = cx.run(&["status"]);
    assert_eq!(code, 0);
    assert!(last_ssh(&cx).ends_with("'/tmp/app-pattern/status.sh'"));
    let (code, _, _) = cx.run(&["address"]);
    assert_eq!(code, 0);
    assert!(last_ssh(&cx).ends_with("'/tmp/app-pattern/address.sh'"));
    cx.clear_transcript();
    let (code, out, _) = cx.run(&["address", "--builtin"]);
    assert_eq!((code, out.as_str()), (0, "127.0.0.1\n"));
    let (code, out, _) = cx.run(&["status", "--json"]);
    assert_eq!(code, 0);
    assert_fits("status", &out);
    assert!(cx.transcript().is_empty(), "nothing ran on the VM");

    // an app command of the same name wins over the pattern's, without a shadowing warning
    let manifest = cx.app.join("tfgrid-compose.yaml");
    let mut text = std::fs::read_to_string(&manifest).unwrap();
    text.push_str("commands:\n  status:\n    script: /opt/app/status.sh --short\n");
    std::fs::write(&manifest, text).unwrap();
    let (code, _, err) = cx.run(&["status"]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("shadowed"), "{err}");
    let line = last_ssh(&cx);
    assert!(
        line.contains("'env' '-C' '/tmp/app-deployment'")
            && line.ends_with("'/opt/app/status.sh' '--short'"),
        "{line}"
    );
    let (code, out, _) = cx.run(&["commands", "--json"]);
    assert_eq!(code, 0);
    let doc = assert_fits("commands", &out);
    let row = |name: &str| {
        doc["commands"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(row("status")["source"], "app");
    assert_eq!(row("status")["replaces_builtin"], true);
    assert_eq!(row("uptime")["source"], "pattern");
    assert_eq!(row("uptime")["script"], "scripts/uptime.sh");
    assert_eq!(row("logs")["shadowed"], false);

    // an unknown verb lists both kinds
    let (code, _, err) = cx.run(&["nonsense"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("nor a command of app `minimal` or pattern `bash-vm`")
            && err.contains("address, logs, status, uptime"),
        "{err}"
    );
}

/// A copy of the fixture pattern in a patterns folder of the test's own, edited by `edit`.
fn edited_pattern(cx: &TestContext, edit: impl Fn(String) -> String) -> PathBuf {
    let patterns = cx.root.path().join("patterns");
    let dir = patterns.join("bash-vm");
    copy_dir(&fixtures().join("patterns/bash-vm"), &dir);
    let file = dir.join("pattern.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, edit(text)).unwrap();
    patterns
}

#[test]
fn bad_input_in_a_bash_pattern_names_file_and_line() {
    let cases: [(&str, &str, &str, &str); 4] = [
        (
            "  memory: 2048\n",
            "  memory: lots\n",
            ":26:3: defaults.memory: expected a number, found a string (for variable `vm_mem`)",
            "a default is a value",
        ),
        (
            "    description: \"Show application logs\"\n",
            "    description: [1]\n",
            ":35:18: commands.logs.description: invalid type: sequence, expected a string",
            "",
        ),
        (
            "  playbook: platform/site.yml\n",
            "  playbook: ../site.yml\n",
            ":57:3: platform.playbook: `../site.yml` is not a file inside the pattern folder",
            "stay inside it",
        ),
        (
            "    - deployment/healthcheck.sh\n",
            "    - deployment/healthcheck.sh\n    - deployment/configure.sh\n",
            ":22:7: requires.app_hooks[2]: pattern `bash-vm` requires the hook `deployment/configure.sh`, which app `minimal` does not have",
            "deployment/configure.sh",
        ),
    ];
    for (from, to, want, hint) in cases {
        let cx = TestContext::new();
        bash_app(&cx, "");
        let patterns = edited_pattern(&cx, |t| {
            assert!(t.contains(from), "{from}");
            t.replacen(from, to, 1)
        });
        let out = cx
            .cmd()
            .arg("validate")
            .arg(&cx.app)
            .env("TF_VAR_mnemonic", CANARY)
            .env("TFGRID_COMPOSE_PATTERNS_DIR", &patterns)
            .output()
            .unwrap();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        let first = err.lines().next().unwrap_or_default();
        assert!(
            first.contains(&format!("bash-vm/pattern.yaml{want}")),
            "want `{want}` in: {err}"
        );
        assert!(err.contains(hint), "hint `{hint}` in: {err}");
        assert!(!cx.state_dir().exists(), "nothing written");
    }
}

/// Forms the bash tool's own patterns use: a command with a description but no `script:` (its
/// gateway's `reload`), `template:` relative to `infrastructure/`; and a mistake in a bash
/// pattern's pattern.yaml reports that mistake alone, not this tool's rules for its own format.
#[test]
fn patterns_check_takes_the_bash_forms_and_one_mistake_is_one_problem() {
    let cx = TestContext::new();
    let check = |dir: &std::path::Path| {
        let out = cx
            .cmd()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .args(["patterns", "check", "--json"])
            .arg(dir)
            .output()
            .unwrap();
        (
            out.status.success(),
            assert_fits("patterns-check", &text(&out.stdout)),
        )
    };
    let patterns = edited_pattern(&cx, |t| {
        t.replace("template: infrastructure/main.tf", "template: main.tf")
            .replace(
                "  uptime:\n",
                "  reload:\n    description: \"Reload the proxy\"\n\n  uptime:\n",
            )
    });
    let (ok, doc) = check(&patterns.join("bash-vm"));
    assert!(ok, "{doc}");
    let rules = doc["compatibility"].to_string();
    assert!(rules.contains("reload"), "{rules}");

    let patterns = edited_pattern(&cx, |t| t.replace("  memory: 2048\n", "  memory: lots\n"));
    let (ok, doc) = check(&patterns.join("bash-vm"));
    assert!(!ok);
    assert_eq!(doc["format"], "bash", "{doc}");
    let problems = doc["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{doc}");
    assert!(
        problems[0].as_str().unwrap().contains("defaults.memory"),
        "{doc}"
    );
}
