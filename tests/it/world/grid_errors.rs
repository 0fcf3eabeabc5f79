//! What the grid answers and what patterns emit, whatever they declare: an error no node can fix
//! is not retried on other nodes and says what to do (the provider's texts, injected through the
//! fake `tofu`, from docs/grid-errors.md); nodes excluded after a failure are forgotten once an
//! apply succeeds; a mnemonic in the environment is a secret even for a pattern that needs none;
//! every address among the outputs is checked when they are read; and the `--json` stream of
//! `up` matches docs/json-output.md whatever the outcome.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

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

    // An address recorded before the outputs were checked (a state.yaml of an older version, or
    // edited by hand) is refused before ssh is waited for, naming the file.
    let state = cx.state_dir().join("state.yaml");
    let text = std::fs::read_to_string(&state).unwrap();
    assert!(text.contains("primary_ip: 127.0.0.1"), "{text}");
    std::fs::write(
        &state,
        text.replace("primary_ip: 127.0.0.1", "primary_ip: 10.20.2.2/24"),
    )
    .unwrap();
    cx.clear_transcript();
    let (code, _, err) = cx.run(&["up", cx.app_arg(), "--from", "wait-ssh"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("has the address `10.20.2.2/24` in `")
            && err.contains("state.yaml`, which is not an IP address")
            && err.contains("up --from infrastructure"),
        "{err}"
    );
    assert!(cx.steps().is_empty(), "{:?}", cx.steps());
}

/// The events docs/json-output.md shows for `up` and `down`: each kind with its fields, every
/// line fitting docs/schemas/event.schema.json, and exactly the schema's kinds.
fn documented_events() -> BTreeMap<String, BTreeSet<String>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/json-output.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let block = doc
        .split("## Events of `up` and `down`")
        .nth(1)
        .and_then(|s| s.split("```json\n").nth(1))
        .and_then(|s| s.split("```").next())
        .expect("the events' example block");
    let schema = crate::schema::load("event");
    let mut events = BTreeMap::new();
    for line in block.lines() {
        let event: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let errors = crate::schema::check(&schema, &event);
        assert!(errors.is_empty(), "{errors:?}: {line}");
        let fields = event.as_object().unwrap().keys().cloned().collect();
        events.insert(event["reason"].as_str().unwrap().to_string(), fields);
    }
    let reasons: BTreeSet<String> = schema["properties"]["reason"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        reasons,
        events.keys().cloned().collect(),
        "the schema's reasons"
    );
    events
}

/// `up --json`'s stdout: every line a documented event with exactly the documented fields, and
/// `deployment-finished` once, last, with `status`. Returns the events.
fn check_stream(
    documented: &BTreeMap<String, BTreeSet<String>>,
    stdout: &[u8],
    status: &str,
) -> Vec<Value> {
    let stdout = String::from_utf8_lossy(stdout);
    let events: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    for event in &events {
        let reason = event["reason"].as_str().unwrap_or_default();
        let fields: BTreeSet<String> = event.as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            documented.get(reason),
            Some(&fields),
            "undocumented: {event}"
        );
    }
    let finished: Vec<usize> = (0..events.len())
        .filter(|i| events[*i]["reason"] == "deployment-finished")
        .collect();
    assert_eq!(finished, [events.len() - 1], "{stdout}");
    assert_eq!(events[events.len() - 1]["status"], status, "{stdout}");
    events
}

#[test]
fn the_json_stream_of_up_matches_the_docs_in_every_outcome() {
    let documented = documented_events();
    let mut seen = BTreeSet::new();
    let mut note = |events: &[Value]| {
        seen.extend(
            events
                .iter()
                .map(|e| e["reason"].as_str().unwrap().to_string()),
        );
    };

    // Up, then again from a later phase (the earlier ones skipped).
    let cx = TestContext::new();
    let out = cx
        .cmd()
        .args(["--json", "up", cx.app_arg()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let events = check_stream(&documented, &out.stdout, "running");
    assert!(events.last().unwrap()["outputs"]["primary_ip"].is_string());
    note(&events);
    let out = cx
        .cmd()
        .args(["--json", "up", cx.app_arg(), "--from", "platform"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let events = check_stream(&documented, &out.stdout, "running");
    let skipped: Vec<&str> = events
        .iter()
        .filter(|e| e["reason"] == "phase-skipped")
        .map(|e| e["phase"].as_str().unwrap())
        .collect();
    assert_eq!(skipped, ["infrastructure", "network", "wait-ssh"]);
    note(&events);

    // A dry run shows its commands.
    let cx = TestContext::new();
    let out = cx
        .cmd()
        .args(["--json", "up", cx.app_arg(), "--dry-run"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    note(&check_stream(&documented, &out.stdout, "running"));

    // A failed phase.
    let cx = TestContext::new();
    let out = cx
        .cmd()
        .args(["--json", "up", cx.app_arg()])
        .env("FAKE_FAIL", "tofu:apply")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let events = check_stream(&documented, &out.stdout, "failed");
    assert!(events.last().unwrap()["id"].is_string());
    note(&events);

    // Input refused before anything exists.
    let cx = TestContext::new();
    let manifest = cx.app.join("tfgrid-compose.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace("pattern: minimal", "pattern: nowhere"),
    )
    .unwrap();
    let out = cx
        .cmd()
        .args(["--json", "up", cx.app_arg()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let events = check_stream(&documented, &out.stdout, "refused");
    assert!(events.last().unwrap()["id"].is_null());
    assert_eq!(events.len(), 1);
    note(&events);

    // Interrupted while Terraform applies.
    let cx = TestContext::new();
    let child = crate::interrupt::start(&cx, &["--json", "up", cx.app_arg()], "tofu:apply");
    crate::common::wait_for_file(&cx.fake_dir.join("hanging"));
    crate::interrupt::kill("INT", &format!("-{}", child.id()));
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    note(&check_stream(&documented, &out.stdout, "interrupted"));

    // Every documented kind of event is one the runs above produced.
    assert_eq!(seen, documented.keys().cloned().collect());
}
