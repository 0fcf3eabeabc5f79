//! What the grid answers and what patterns emit, whatever they declare: an error no node can fix
//! is not retried on other nodes and says what to do (the provider's texts, injected through the
//! fake `tofu`, from docs/grid-errors.md); nodes excluded after a failure are forgotten once an
//! apply succeeds; a mnemonic in the environment is a secret even for a pattern that needs none;
//! every address among the outputs is checked when they are read; and the `--json` stream of
//! `up` matches docs/json-output.md whatever the outcome.

use crate::common::{GridProxyFixture, TestContext};
use crate::grid::{CANARY, CANARY_PART, all_files};
use crate::nodes::{tfvars, up_single_vm};

/// How Terraform prints a provider's error: framed in `│`, wrapped at 78 columns between words.
fn framed(message: &str) -> String {
    format!("╷\n│ Error: {message}\n│ \n│   with grid_deployment.vm,\n│   on main.tf line 41\n╵")
}

fn applies(cx: &TestContext) -> usize {
    cx.steps().iter().filter(|s| *s == "tofu apply").count()
}

#[test]
fn an_error_no_node_can_fix_is_not_retried_and_says_what_to_do() {
    let proxy = GridProxyFixture::start(0);
    let cases = [
        (
            "couldn't deploy deployment with error: account contains 0.500000 tft, min fee\n│ \
                is 2 tft",
            "fund the twin's account",
        ),
        (
            "couldn't deploy deployment with error: failed to create contract on node 21:\n│ \
                NameExists",
            "choose another name",
        ),
        (
            "couldn't update deployment with error: workload 'zmachine' does not support \
                upgrade",
            "replace the deployment",
        ),
    ];
    for (message, hint) in cases {
        let text = framed(message);
        let (cx, code, err) = up_single_vm(
            &proxy,
            &[("FAKE_FAIL", "tofu:apply"), ("FAKE_STDERR", &text)],
        );
        assert_eq!(code, 1, "{err}");
        assert_eq!(applies(&cx), 1, "retried: {err}");
        assert!(
            err.contains("no other node can fix that") && err.contains(hint),
            "{err}"
        );
        assert!(!err.contains("trying other nodes"), "{err}");
        let state: serde_yaml::Value = serde_yaml::from_str(&cx.state_text()).unwrap();
        assert!(state["excluded_nodes"].is_null(), "{state:?}");
    }

    // The provider checks the balance at plan time too: the same hint.
    let text = framed("account contains 0.000000 tft, min fee is 2 tft");
    let (cx, code, err) = up_single_vm(
        &proxy,
        &[("FAKE_FAIL", "tofu:plan"), ("FAKE_STDERR", &text)],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("hint: the twin's account holds less"), "{err}");
    assert_eq!(applies(&cx), 0);

    // A node's own failure is still retried elsewhere, three attempts in all.
    let text = framed(
        "couldn't deploy deployment with error: node 21 does not have enough resources.\n│ \
            needed: [mru: 2 GB, sru: 10 GB, hru: 0 B], free: [mru: 1 GB, sru: 4 GB, hru: 0 B]",
    );
    let (cx, code, err) = up_single_vm(
        &proxy,
        &[("FAKE_FAIL", "tofu:apply"), ("FAKE_STDERR", &text)],
    );
    assert_eq!(code, 1, "{err}");
    assert_eq!(applies(&cx), 3, "{err}");
    assert!(err.contains("trying other nodes (attempt 3/3)"), "{err}");
}

#[test]
fn nodes_excluded_after_a_failure_are_forgotten_once_an_apply_succeeds() {
    let proxy = GridProxyFixture::start(0);
    let (cx, code, err) = up_single_vm(&proxy, &[("FAKE_FAIL_ONCE", "tofu:apply")]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("trying other nodes (attempt 2/3)"), "{err}");
    // the apply that succeeded was told to avoid the failed node...
    assert_eq!(tfvars(&cx)["exclude_nodes"].as_array().unwrap().len(), 1);
    // ...and the deployment avoids it no longer
    let state: serde_yaml::Value = serde_yaml::from_str(&cx.state_text()).unwrap();
    assert!(state["excluded_nodes"].is_null(), "{state:?}");
    assert_eq!(state["status"], "running");
}

#[test]
fn a_mnemonic_in_the_environment_is_a_secret_even_for_a_pattern_that_needs_none() {
    // The minimal pattern needs no mnemonic; its fake `tofu` inherits the environment and prints
    // the phrase as a provider rejecting it would.
    for var in ["TF_VAR_mnemonic", "MNEMONIC", "MNEMONICS"] {
        let cx = TestContext::new();
        let out = cx
            .cmd()
            .args(["up", cx.app_arg()])
            .env(var, CANARY)
            .env("FAKE_FAIL", "tofu:apply")
            .env("FAKE_PRINT", CANARY)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{var}: {err}");
        assert!(err.contains("token=<redacted> in a line"), "{var}: {err}");
        let inspect = cx
            .cmd()
            .args(["inspect", cx.app_arg(), "--json"])
            .env(var, CANARY)
            .output()
            .unwrap();
        assert_eq!(inspect.status.code(), Some(0), "{var}");
        let mut files = Vec::new();
        all_files(cx.root.path(), &mut files);
        assert!(files.iter().any(|f| f.ends_with("state.yaml")));
        for file in files {
            let text =
                String::from_utf8_lossy(&std::fs::read(&file).unwrap_or_default()).into_owned();
            assert!(!text.contains(CANARY_PART), "{var}: in {}", file.display());
        }
        for text in [&out.stdout, &out.stderr, &inspect.stdout, &inspect.stderr] {
            assert!(
                !String::from_utf8_lossy(text).contains(CANARY_PART),
                "{var}: {}",
                String::from_utf8_lossy(text)
            );
        }
    }
}

#[test]
fn every_address_among_the_outputs_is_checked_when_they_are_read() {
    let outputs = |extra: &str| {
        format!(
            r#"{{"primary_ip": {{"value": "127.0.0.1"}}, "primary_ip_type": {{"value": "ipv4"}}, "deployment_name": {{"value": "minimal"}}, "node_ids": {{"value": [1]}}, {extra}}}"#
        )
    };
    let cases = [
        (
            r#""connection_info": {"value": {"wireguard_ip": "10.20.2.2/24", "public_ipv4": "", "url": "http://x/"}}"#,
            "output `connection_info.wireguard_ip` is `10.20.2.2/24`, which is not an IP address",
        ),
        (
            r#""mycelium_ips": {"value": ["400:8f3a::2", "400:8f3a::3/64"]}"#,
            "output `mycelium_ips[1]` is `400:8f3a::3/64`",
        ),
        (
            r#""gateway_address": {"value": "gw.example.org"}"#,
            "output `gateway_address` is `gw.example.org`",
        ),
    ];
    for (extra, want) in cases {
        let cx = TestContext::new();
        cx.set_outputs(&outputs(extra));
        let (code, _, err) = cx.run(&["up", cx.app_arg()]);
        assert_eq!(code, 1, "{err}");
        assert!(err.contains(want) && err.contains("hint: fix `"), "{err}");
        assert!(
            cx.steps().last().is_some_and(|s| s == "tofu output"),
            "nothing after the outputs: {:?}",
            cx.steps()
        );
    }
    // Addresses that are addresses, empty ones, and what only looks like one are accepted.
    let cx = TestContext::new();
    cx.set_outputs(&outputs(
        r#""connection_info": {"value": {"wireguard_ip": "10.20.2.2", "public_ipv6": "", "api_server": "https://10.20.2.3:6443", "metallb_range": "10.20.3.0/24"}}, "provisioned_networks": {"value": ["10.20.0.0/16"]}"#,
    ));
    let (code, _, err) = cx.run(&["up", cx.app_arg()]);
    assert_eq!(code, 0, "{err}");
}
