//! Property-based fuzzing (proptest) of the four parsers of text from outside: the app manifest
//! (`tfgrid-compose.yaml`), `pattern.yaml`, `state.yaml` and `tofu output -json`. Each target
//! asserts only that the parser returns `Ok` or `Err` and never panics (a panic is caught and
//! reported with the input and its backtrace); a parsed `state.yaml` must also serialize and parse
//! again, and outputs that parsed must survive being stored in a `state.yaml` and read back.
//!
//! Inputs mix arbitrary text, lossily converted bytes, soups of YAML/JSON tokens, valid documents
//! (the fixtures, the built-in patterns, `docs/manifest.md`'s example and richer examples here)
//! mutated as text (bit flips, truncation, duplicated/deleted/swapped lines, a BOM, tabs, `: `,
//! `- `, brackets, anchors, aliases, merge keys, huge numbers, bounded deep nesting, alias bombs,
//! raw bytes), and valid documents edited as values (a node replaced by another of any type, keys
//! removed or added) and written back.
//!
//! Cases per target: `PROPTEST_CASES`, else [`DEFAULT_CASES`] (kept small for `cargo test`);
//! `scripts/fuzz.sh` runs a million. With `FUZZ_STATS=FILE`, each target appends a line
//! `target cases ok err seconds` to FILE.

use std::cell::{Cell, RefCell};
use std::fmt::Debug;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Once};
use std::time::Instant;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};
use tfgrid_compose::manifest::{App, AppManifest};
use tfgrid_compose::pattern::contract::PatternOutputs;
use tfgrid_compose::pattern::{Pattern, PatternManifest};
use tfgrid_compose::state::DeploymentState;
use tfgrid_compose::yaml::from_yaml;

use crate::common::{IPV4_OUTPUTS, WG_OUTPUTS, fixtures};

/// Cases per target in a plain `cargo test` (no `PROPTEST_CASES`).
const DEFAULT_CASES: u32 = 1000;

// ---------------------------------------------------------------------------------------------
// Seeds: valid documents.

const APP_MINIMAL: &str = include_str!("../fixtures/apps/minimal/tfgrid-compose.yaml");
const MANIFEST_DOC: &str = include_str!("../../docs/manifest.md");

/// Every key of the manifest, legacy ones included.
const APP_LEGACY: &str = r#"name: legacy-app
version: "2.3"
description: |
  A manifest with the bash tool's keys.
author: someone
tags: [web, demo]
patterns:
  recommended: minimal
  supported: [minimal, single-vm, gateway]
resources:
  cpu: {recommended: 2, min: 1}
  memory: {recommended: 4096}
  disk: {recommended: 50}
  vm: {cpu: 4}
network: {mycelium: true, public_ipv4: false}
gateway: {domain: example.org}
nodes:
  gateway: [11]
  backend: 42
node_filter:
  whitelist_farms: [freefarm, 1]
  blacklist_nodes: [7]
  blacklist_farms: [Badfarm]
  min_uptime_days: 2.5
  max_cpu_usage: 80
  max_memory_usage: 90.5
config:
  flavor: small
  vm_count: 2
hooks:
  setup: setup.sh
  healthcheck: deployment/healthcheck.sh
hook_config:
  healthcheck: {optional: true, timeout: 60, hosts: all}
  setup:
    hosts: primary
commands:
  logs:
    script: journalctl -u app
    allocate_tty: true
    extra: kept
  pick:
    script: ./pick.sh
    save_to_context: active_project
url: https://{primary_ip}/
max_environments: 2
unknown_key: warned
"#;

const PATTERNS: [&str; 7] = [
    include_str!("../../patterns/local/pattern.yaml"),
    include_str!("../../patterns/single-vm/pattern.yaml"),
    include_str!("../../patterns/gateway/pattern.yaml"),
    include_str!("../../patterns/k3s/pattern.yaml"),
    include_str!("../../patterns/ai-stack/pattern.yaml"),
    include_str!("../fixtures/patterns/minimal/pattern.yaml"),
    include_str!("../fixtures/patterns/grid-like/pattern.yaml"),
];

const STATE_MINIMAL: &str = include_str!("../fixtures/state-minimal.yaml");

/// Every key of `state.yaml`.
const STATE_FULL: &str = r#"schema_version: 1
id: 89abcdef01234567
env: staging
app:
  name: static-site
  version: 1.0.0
  dir: /srv/apps/static-site
  manifest: /srv/apps/static-site/tfgrid-compose.yaml
pattern:
  name: gateway
  version: 0.1.0
  dir: /home/u/.local/share/tfgrid-compose/patterns/gateway
status: failed
created_at: 1795000000
updated_at: 1795000360
tofu: /usr/bin/tofu
ssh:
  identity: /srv/apps/static-site/.tfgrid-compose/staging/ssh/id_ed25519
  known_hosts: /srv/apps/static-site/.tfgrid-compose/staging/known_hosts
  port: 2222
  user: root
  pinned: true
journal:
  - phase: validate
    status: done
    started_at: 1795000000
    finished_at: 1795000001
    duration_ms: 812
  - phase: infrastructure
    status: done
    started_at: 1795000001
    finished_at: 1795000200
    duration_ms: 199000
    log: /srv/apps/static-site/.tfgrid-compose/staging/logs/20260101-000000/infrastructure.log
  - phase: wait-ssh
    status: failed
    started_at: 1795000200
    finished_at: 1795000360
    duration_ms: 160000
    error: "ssh to 10.20.2.2 timed out after 160s"
outputs:
  primary_ip: 185.206.122.31
  primary_ip_type: ipv4
  deployment_name: static-site-staging
  node_ids: [11, 42]
  secondary_ips:
    - {name: backend1, ip: 10.20.3.2, type: wireguard, role: backend}
  mycelium_ip: "4f3:1d2c:9e5a:1b2c:ff0f:1e2d:3c4b:5a69"
  connection_info:
    ssh: "ssh root@185.206.122.31"
    ports: [22, 80, 443]
  ssh_known_hosts: "185.206.122.31 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKey"
  private_ips: [10.20.2.2, 10.20.3.2]
network:
  interface: tfgc-89abcdef
  config: /srv/apps/static-site/.tfgrid-compose/staging/wg/tfgc-89abcdef.conf
placement:
  - {role: gateway, variable: gateway_node_id, node: 11, how: selected}
  - {role: backend, variable: backend_node_id, node: 42, how: pinned}
excluded_nodes: [7, 9]
runs:
  - id: 20260101-000000
    command: up
    started_at: 1795000000
    log_dir: /srv/apps/static-site/.tfgrid-compose/staging/logs/20260101-000000
ai_stack:
  agent_api: http://10.20.3.2:7702
  gateway_api: http://10.20.2.2:7701
  git_api: http://10.20.3.2:7703
  public_url: https://ai.example.org
grid_network: test
ip_range: 10.20.0.0/16
"#;

/// Every output of the pattern contract.
const OUTPUTS_FULL: &str = r#"{
  "primary_ip": {"value": "10.20.2.2", "type": "string", "sensitive": false},
  "primary_ip_type": {"value": "wireguard", "type": "string", "sensitive": false},
  "deployment_name": {"value": "demo-staging", "type": "string", "sensitive": false},
  "node_ids": {"value": [11, "42"], "type": ["tuple", ["number", "string"]], "sensitive": false},
  "secondary_ips": {"value": [
    {"name": "backend1", "ip": "10.20.3.2", "type": "wireguard", "role": "backend"},
    {"name": "", "ip": "2a02:1802:5e::1", "type": "ipv6", "role": "backend"}
  ]},
  "mycelium_ip": {"value": "4f3:1d2c:9e5a:1b2c:ff0f:1e2d:3c4b:5a69"},
  "wg_config": {"value": "[Interface]\nPrivateKey = x\nAddress = 100.64.20.2/32\n[Peer]\nAllowedIPs = 10.20.0.0/16\n", "sensitive": true},
  "connection_info": {"value": {"ssh": "ssh root@10.20.2.2", "ports": [22, 80], "nested": {"a": null, "b": 1.5e300, "c": -7}}},
  "ssh_known_hosts": {"value": "10.20.2.2 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFake"},
  "private_ips": {"value": ["10.20.2.2", "10.20.3.2"]}
}"#;

/// The annotated example of docs/manifest.md.
fn manifest_doc_example() -> &'static str {
    let block = &MANIFEST_DOC[MANIFEST_DOC
        .find("<!-- example-manifest -->")
        .expect("docs/manifest.md marks its example")..];
    block
        .split("```yaml\n")
        .nth(1)
        .and_then(|b| b.split("\n```").next())
        .expect("docs/manifest.md has a yaml example")
}

static APP_SEEDS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| vec![APP_MINIMAL, APP_LEGACY, manifest_doc_example()]);
static STATE_SEEDS: LazyLock<Vec<&'static str>> = LazyLock::new(|| vec![STATE_MINIMAL, STATE_FULL]);
static OUTPUT_SEEDS: LazyLock<Vec<String>> = LazyLock::new(|| {
    vec![
        IPV4_OUTPUTS.to_string(),
        WG_OUTPUTS.to_string(),
        OUTPUTS_FULL.to_string(),
        PatternOutputs::placeholder_json(),
        "{}".to_string(),
    ]
});
/// The seeds as YAML values, for value-level edits.
static APP_VALUES: LazyLock<Vec<serde_yaml::Value>> = LazyLock::new(|| {
    APP_SEEDS
        .iter()
        .map(|s| serde_yaml::from_str(s).unwrap())
        .collect()
});
static PATTERN_VALUES: LazyLock<Vec<serde_yaml::Value>> = LazyLock::new(|| {
    PATTERNS
        .iter()
        .map(|s| serde_yaml::from_str(s).unwrap())
        .collect()
});
static STATE_VALUES: LazyLock<Vec<serde_yaml::Value>> = LazyLock::new(|| {
    STATE_SEEDS
        .iter()
        .map(|s| serde_yaml::from_str(s).unwrap())
        .collect()
});
static OUTPUT_VALUES: LazyLock<Vec<serde_yaml::Value>> = LazyLock::new(|| {
    OUTPUT_SEEDS
        .iter()
        .map(|s| serde_yaml::from_str(s).unwrap())
        .collect()
});
static FULL_STATE: LazyLock<DeploymentState> =
    LazyLock::new(|| DeploymentState::parse(STATE_FULL).unwrap());
static MINIMAL_PATTERN: LazyLock<Pattern> =
    LazyLock::new(|| Pattern::load(&fixtures().join("patterns/minimal")).unwrap());

// ---------------------------------------------------------------------------------------------
// Tokens that mean something to YAML and JSON parsers, and the schemas' own words.

const YAML_TOKENS: &[&str] = &[
    "\t",
    ": ",
    ":",
    "- ",
    "-",
    "? ",
    "{",
    "}",
    "[",
    "]",
    ",",
    "&a ",
    "*a",
    "&b [",
    "*b",
    "<<: *a",
    "<<: [*a, *b]",
    "<<: {x: 1}",
    "!!str ",
    "!!int ",
    "!!float ",
    "!!binary ",
    "!!map ",
    "!!seq ",
    "!!null ",
    "!mnemonic ",
    "!ipv4 ",
    "!<tag:yaml.org,2002:str> ",
    "%YAML 1.2\n",
    "%TAG ! tag:x,2000:\n",
    "---\n",
    "--- ",
    "...\n",
    "#",
    " #",
    "'",
    "''",
    "\"",
    "\\",
    "\\u",
    "\\x",
    "|",
    "|-",
    ">",
    ">-",
    "|2",
    "~",
    "null",
    "Null",
    "true",
    "True",
    "no",
    "yes",
    "on",
    "y",
    ".nan",
    ".NaN",
    ".inf",
    "-.inf",
    "0x1F",
    "0o17",
    "0b101",
    "1_000",
    "+1",
    "-1",
    "-0",
    "0.",
    "1e3",
    "1e999",
    "-1e999",
    "4.9e-324",
    "0.0000000000000000000000001",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "-9223372036854775809",
    "340282366920938463463374607431768211456",
    "99999999999999999999999999999999999999999",
    "4294967296",
    "65536",
    "65535",
    "\u{feff}",
    "\u{0}",
    "\u{85}",
    "\u{2028}",
    "\u{a0}",
    "\r\n",
    "\r",
    " ",
    "  ",
    "\n",
    "\n  ",
    "\n- ",
    "\n    ",
    "{a: 1, b: [2, 3]}",
    "[[[[]]]]",
    "{}",
    "[]",
    "''",
    "\"\"",
    "@",
    "`",
    "%",
    "é",
    "名",
    "😀",
    "\u{7f}",
    "\u{1b}[31m",
    "\u{d7ff}",
    "\u{fffd}",
    "\u{10ffff}",
    "schema_version: 1\n",
    "schema_version: 2\n",
    "schema_version: -1\n",
    "name: x\n",
    "version: 1\n",
    "type: number\n",
    "name",
    "version",
    "description",
    "pattern",
    "patterns",
    "recommended",
    "supported",
    "config",
    "resources",
    "network",
    "nodes",
    "node_filter",
    "whitelist_farms",
    "blacklist_nodes",
    "min_uptime_days",
    "max_cpu_usage",
    "hooks",
    "setup",
    "configure",
    "healthcheck",
    "hook_config",
    "optional",
    "timeout",
    "hosts",
    "all",
    "primary",
    "commands",
    "script",
    "save_to_context",
    "args",
    "allocate_tty",
    "env_file",
    ".env",
    "url",
    "http://{primary_ip}/",
    "max_environments",
    "ai_stack",
    "llm",
    "base_url",
    "model",
    "api_key_env",
    "org",
    "gateway",
    "agent",
    "git",
    "requires",
    "mnemonic",
    "variables",
    "type",
    "string",
    "number",
    "bool",
    "list",
    "map",
    "default",
    "min",
    "max",
    "host_tools",
    "needs_root",
    "placement",
    "role",
    "variable",
    "public_ipv4",
    "vms",
    "count",
    "cpu",
    "memory",
    "disk",
    "schema_version",
    "id",
    "env",
    "app",
    "dir",
    "manifest",
    "status",
    "running",
    "deploying",
    "failed",
    "destroy-failed",
    "created_at",
    "updated_at",
    "tofu",
    "ssh",
    "identity",
    "known_hosts",
    "port",
    "user",
    "pinned",
    "journal",
    "phase",
    "wait-ssh",
    "done",
    "started_at",
    "finished_at",
    "duration_ms",
    "error",
    "log",
    "logs",
    "outputs",
    "primary_ip",
    "primary_ip_type",
    "wireguard",
    "ipv4",
    "deployment_name",
    "node_ids",
    "secondary_ips",
    "mycelium_ip",
    "connection_info",
    "private_ips",
    "interface",
    "node",
    "how",
    "selected",
    "pinned",
    "scheduler",
    "excluded_nodes",
    "runs",
    "command",
    "log_dir",
    "agent_api",
    "public_url",
    "grid_network",
    "ip_range",
    "deployment/setup.sh",
    "../x",
    "/etc/passwd",
];

const JSON_TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "\\",
    "\\\"",
    "\\u0000",
    "\\ud800",
    "\\udc00",
    "\\ud83d\\ude00",
    "\\u00zz",
    "\\x",
    "null",
    "true",
    "false",
    "NaN",
    "Infinity",
    "-Infinity",
    "0",
    "-0",
    "-",
    "+1",
    "01",
    "1.",
    ".5",
    "1e",
    "1e400",
    "-1e400",
    "1e-400",
    "4.9e-324",
    "1.7976931348623157e308",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "-9223372036854775809",
    "99999999999999999999999999999999999999999",
    "\u{feff}",
    "\u{0}",
    "\t",
    "\n",
    "\r",
    " ",
    "\u{2028}",
    "é",
    "😀",
    "//",
    "/*",
    "'",
    "{}",
    "[]",
    "\"\"",
    "{\"value\": null}",
    "{\"value\": []}",
    "{\"value\": {}}",
    "{\"sensitive\": true}",
    "\"value\"",
    "\"value\":",
    "\"type\"",
    "\"sensitive\"",
    "\"primary_ip\"",
    "\"primary_ip_type\"",
    "\"deployment_name\"",
    "\"node_ids\"",
    "\"secondary_ips\"",
    "\"mycelium_ip\"",
    "\"wg_config\"",
    "\"connection_info\"",
    "\"ssh_known_hosts\"",
    "\"private_ips\"",
    "\"name\"",
    "\"ip\"",
    "\"role\"",
    "\"wireguard\"",
    "\"ipv4\"",
    "\"public\"",
    "\"ipv6\"",
    "\"mycelium\"",
    "\"10.1.0.2\"",
    "\"::1\"",
    "\"<primary_ip>\"",
    "\"10.1.0.2/24\"",
    "\"\"",
    "\"13\"",
    "\"-1\"",
    "\"1e3\"",
    "\"<<\"",
    "\"&a\"",
    "\"*a\"",
];

/// Addresses and near-addresses for the contract's IP outputs.
const IPS: &[&str] = &[
    "10.20.2.2",
    "127.0.0.1",
    "0.0.0.0",
    "255.255.255.255",
    "::",
    "::1",
    "2a02:1802:5e::1",
    "::ffff:1.2.3.4",
    "fe80::1%eth0",
    "<primary_ip>",
    "<",
    ">",
    "<>",
    "10.20.2.2/24",
    "999.1.1.1",
    "1.2.3",
    "1.2.3.4.5",
    "01.2.3.4",
    " 10.1.0.2",
    "10.1.0.2\n",
    "[::1]",
    "",
    "x",
];
const IP_TYPES: &[&str] = &[
    "wireguard",
    "ipv4",
    "public",
    "ipv6",
    "mycelium",
    "",
    "IPV4",
    "tcp",
    "Wireguard",
    "ipv4 ",
];
const OUTPUT_NAMES: &[&str] = &[
    "primary_ip",
    "primary_ip_type",
    "deployment_name",
    "node_ids",
    "secondary_ips",
    "mycelium_ip",
    "wg_config",
    "connection_info",
    "ssh_known_hosts",
    "private_ips",
];

// ---------------------------------------------------------------------------------------------
// Text mutations.

#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(Index, u8),
    SetByte(Index, u8),
    Truncate(Index),
    DeleteRange(Index, u8),
    DuplicateLine(Index),
    DeleteLine(Index),
    SwapLines(Index, Index),
    /// A token anywhere.
    Insert(Index, String),
    /// A token at the start of a line, after its indentation.
    InsertAtLine(Index, String),
    /// What follows a line's first `: ` (or `- `, or the whole line) becomes the token.
    ReplaceValue(Index, String),
    /// Raw bytes, often not UTF-8 (the document is converted lossily).
    InsertBytes(Index, Vec<u8>),
    /// Bounded deep nesting of one of several shapes.
    Nest(Index, u16, u8),
    /// Anchors each aliasing the previous one several times (bounded).
    AliasBomb(Index, u8, u8),
    /// A chunk of the document copied elsewhere.
    CopyRange(Index, Index, u8),
    /// A line's indentation changed (spaces or a tab).
    Indent(Index, i8),
    Bom(Index),
}

fn token(tokens: &'static [&'static str]) -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        6 => select(tokens).prop_map(String::from),
        1 => vec(any::<char>(), 0..8).prop_map(String::from_iter),
        1 => (select(tokens), select(tokens)).prop_map(|(a, b)| format!("{a}{b}")),
    ]
}

fn mutation(tokens: &'static [&'static str]) -> impl Strategy<Value = Mutation> {
    prop_oneof![
        2 => (any::<Index>(), 0..8u8).prop_map(|(at, bit)| Mutation::FlipBit(at, bit)),
        1 => any::<(Index, u8)>().prop_map(|(at, byte)| Mutation::SetByte(at, byte)),
        2 => any::<Index>().prop_map(Mutation::Truncate),
        1 => any::<(Index, u8)>().prop_map(|(at, len)| Mutation::DeleteRange(at, len)),
        2 => any::<Index>().prop_map(Mutation::DuplicateLine),
        1 => any::<Index>().prop_map(Mutation::DeleteLine),
        1 => any::<(Index, Index)>().prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        4 => (any::<Index>(), token(tokens)).prop_map(|(at, t)| Mutation::Insert(at, t)),
        3 => (any::<Index>(), token(tokens)).prop_map(|(at, t)| Mutation::InsertAtLine(at, t)),
        4 => (any::<Index>(), token(tokens)).prop_map(|(at, t)| Mutation::ReplaceValue(at, t)),
        1 => (any::<Index>(), vec(any::<u8>(), 1..8)).prop_map(|(at, b)| Mutation::InsertBytes(at, b)),
        1 => (any::<Index>(), 1..300u16, any::<u8>()).prop_map(|(at, depth, shape)| Mutation::Nest(at, depth, shape)),
        1 => (any::<Index>(), 1..10u8, 1..10u8).prop_map(|(at, levels, width)| Mutation::AliasBomb(at, levels, width)),
        1 => (any::<Index>(), any::<Index>(), any::<u8>()).prop_map(|(from, to, len)| Mutation::CopyRange(from, to, len)),
        1 => (any::<Index>(), -4..6i8).prop_map(|(line, by)| Mutation::Indent(line, by)),
        1 => any::<Index>().prop_map(Mutation::Bom),
    ]
}

/// `at` into `0..=len` (a position to insert at).
fn position(at: &Index, len: usize) -> usize {
    at.index(len + 1)
}

fn split_lines(doc: &[u8]) -> Vec<Vec<u8>> {
    doc.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect()
}

fn nest(depth: usize, shape: u8) -> String {
    match shape % 8 {
        0 => "[".repeat(depth),
        1 => format!("{}1{}", "[".repeat(depth), "]".repeat(depth)),
        2 => format!("{}1{}", "{a: ".repeat(depth), "}".repeat(depth)),
        3 => format!("{}1{}", "{\"value\": ".repeat(depth), "}".repeat(depth)),
        4 => {
            (0..depth)
                .map(|i| format!("\n{}k{i}:", "  ".repeat(i)))
                .collect::<String>()
                + " 1\n"
        }
        5 => "- ".repeat(depth) + "x\n",
        6 => "{".repeat(depth),
        _ => {
            (0..depth)
                .map(|i| format!("\n{}-", " ".repeat(i)))
                .collect::<String>()
                + " x\n"
        }
    }
}

fn alias_bomb(levels: u8, width: u8) -> String {
    let mut text = String::from("\nb0: &b0 [lol, lol]\n");
    for level in 1..=levels {
        let refs = vec![format!("*b{}", level - 1); usize::from(width)].join(", ");
        text.push_str(&format!("b{level}: &b{level} [{refs}]\n"));
    }
    text
}

fn apply(doc: &mut Vec<u8>, m: &Mutation) {
    match m {
        Mutation::FlipBit(at, bit) if !doc.is_empty() => {
            let i = at.index(doc.len());
            doc[i] ^= 1 << bit;
        }
        Mutation::SetByte(at, byte) if !doc.is_empty() => {
            let i = at.index(doc.len());
            doc[i] = *byte;
        }
        Mutation::Truncate(at) => doc.truncate(position(at, doc.len())),
        Mutation::DeleteRange(at, len) => {
            let start = position(at, doc.len());
            let end = (start + usize::from(*len)).min(doc.len());
            doc.drain(start..end);
        }
        Mutation::DuplicateLine(at)
        | Mutation::DeleteLine(at)
        | Mutation::SwapLines(at, _)
        | Mutation::InsertAtLine(at, _)
        | Mutation::ReplaceValue(at, _)
        | Mutation::Indent(at, _) => {
            let mut lines = split_lines(doc);
            let i = at.index(lines.len());
            match m {
                Mutation::DuplicateLine(_) => lines.insert(i, lines[i].clone()),
                Mutation::DeleteLine(_) => {
                    lines.remove(i);
                }
                Mutation::SwapLines(_, other) => {
                    let j = other.index(lines.len());
                    lines.swap(i, j);
                }
                Mutation::InsertAtLine(_, token) => {
                    let indent = lines[i].iter().take_while(|b| **b == b' ').count();
                    lines[i].splice(indent..indent, token.bytes());
                }
                Mutation::ReplaceValue(_, token) => {
                    let line = &mut lines[i];
                    let cut = line
                        .windows(2)
                        .position(|w| w == b": " || w == b"- " || w == b"\":")
                        .map_or(0, |p| p + 2);
                    line.truncate(cut);
                    line.extend_from_slice(token.as_bytes());
                }
                Mutation::Indent(_, by) => {
                    let line = &mut lines[i];
                    match *by {
                        by if by < 0 => {
                            let spaces = line
                                .iter()
                                .take_while(|b| **b == b' ')
                                .count()
                                .min(by.unsigned_abs().into());
                            line.drain(..spaces);
                        }
                        0 => line.insert(0, b'\t'),
                        by => drop(
                            line.splice(0..0, std::iter::repeat_n(b' ', by.unsigned_abs().into())),
                        ),
                    }
                }
                _ => unreachable!(),
            }
            *doc = lines.join(&b'\n');
        }
        Mutation::Insert(at, token) => {
            let i = position(at, doc.len());
            doc.splice(i..i, token.bytes());
        }
        Mutation::InsertBytes(at, bytes) => {
            let i = position(at, doc.len());
            doc.splice(i..i, bytes.iter().copied());
        }
        Mutation::Nest(at, depth, shape) => {
            let i = position(at, doc.len());
            doc.splice(i..i, nest(usize::from(*depth), *shape).into_bytes());
        }
        Mutation::AliasBomb(at, levels, width) => {
            // at a line start, so that it is a block mapping's entries more often than not
            let i = position(at, doc.len());
            let i = doc[..i]
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |p| p + 1);
            doc.splice(i..i, alias_bomb(*levels, *width).into_bytes());
        }
        Mutation::CopyRange(from, to, len) => {
            let start = position(from, doc.len());
            let chunk: Vec<u8> = doc[start..(start + usize::from(*len)).min(doc.len())].to_vec();
            let i = position(to, doc.len());
            doc.splice(i..i, chunk);
        }
        Mutation::Bom(at) => {
            // mostly at the start, where a BOM is legal; elsewhere sometimes
            let i = if at.index(4) == 0 {
                position(at, doc.len())
            } else {
                0
            };
            doc.splice(i..i, "\u{feff}".bytes());
        }
        Mutation::FlipBit(..) | Mutation::SetByte(..) => {}
    }
}

fn mutated(seed: &str, mutations: &[Mutation]) -> String {
    let mut doc = seed.as_bytes().to_vec();
    for m in mutations {
        apply(&mut doc, m);
    }
    String::from_utf8_lossy(&doc).into_owned()
}

// ---------------------------------------------------------------------------------------------
// Value-level edits of YAML documents.

fn yaml_leaf() -> impl Strategy<Value = serde_yaml::Value> {
    use serde_yaml::Value;
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<u64>().prop_map(|n| Value::Number(n.into())),
        any::<i64>().prop_map(|n| Value::Number(n.into())),
        any::<f64>().prop_map(|n| Value::Number(n.into())),
        prop_oneof![
            Just(0u64),
            Just(1),
            Just(2),
            Just(65535),
            Just(65536),
            Just(u64::from(u32::MAX) + 1)
        ]
        .prop_map(|n| Value::Number(n.into())),
        select(YAML_TOKENS).prop_map(|s| Value::String(s.to_string())),
        select(IPS).prop_map(|s| Value::String(s.to_string())),
        select(IP_TYPES).prop_map(|s| Value::String(s.to_string())),
        vec(any::<char>(), 0..24).prop_map(|c| Value::String(c.into_iter().collect())),
    ]
}

fn yaml_value() -> impl Strategy<Value = serde_yaml::Value> {
    use serde_yaml::Value;
    yaml_leaf().prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Sequence),
            vec((prop_oneof![4 => select(YAML_TOKENS).prop_map(|s| Value::String(s.into())), 1 => yaml_leaf(), 1 => inner.clone()], inner.clone()), 0..4)
                .prop_map(|entries| Value::Mapping(entries.into_iter().collect())),
            (select(&["!mnemonic", "!ipv4", "!done", "!Id", "!x", "!!str"][..]), inner)
                .prop_map(|(tag, value)| { Value::Tagged(Box::new(serde_yaml::value::TaggedValue { tag: serde_yaml::value::Tag::new(tag), value })) }),
        ]
    })
}

#[derive(Debug, Clone)]
enum Edit {
    Replace(Vec<Index>, serde_yaml::Value),
    Remove(Vec<Index>),
    Add(Vec<Index>, String, serde_yaml::Value),
    /// The node becomes a one-element list.
    Wrap(Vec<Index>),
}

fn edit() -> impl Strategy<Value = Edit> {
    let path = vec(any::<Index>(), 0..6);
    prop_oneof![
        5 => (path.clone(), yaml_value()).prop_map(|(p, v)| Edit::Replace(p, v)),
        2 => path.clone().prop_map(Edit::Remove),
        2 => (path.clone(), prop_oneof![select(YAML_TOKENS).prop_map(String::from), "[a-z_]{1,12}"], yaml_value()).prop_map(|(p, k, v)| Edit::Add(p, k, v)),
        1 => path.prop_map(Edit::Wrap),
    ]
}

/// The node at `path` (a step into a mapping or list picks one of its entries; a step into
/// anything else stops).
fn node_at<'a>(root: &'a mut serde_yaml::Value, path: &[Index]) -> &'a mut serde_yaml::Value {
    let mut node = root;
    for step in path {
        let len = match &*node {
            serde_yaml::Value::Mapping(m) => m.len(),
            serde_yaml::Value::Sequence(s) => s.len(),
            _ => 0,
        };
        if len == 0 {
            break;
        }
        let i = step.index(len);
        node = match node {
            serde_yaml::Value::Mapping(m) => m.values_mut().nth(i).unwrap(),
            serde_yaml::Value::Sequence(s) => &mut s[i],
            _ => unreachable!(),
        };
    }
    node
}

fn apply_edit(root: &mut serde_yaml::Value, e: &Edit) {
    match e {
        Edit::Replace(path, value) => *node_at(root, path) = value.clone(),
        Edit::Remove(path) => {
            let (last, parent) = path
                .split_last()
                .map_or((None, &path[..]), |(l, p)| (Some(l), p));
            match (node_at(root, parent), last) {
                (serde_yaml::Value::Mapping(m), Some(i)) if !m.is_empty() => {
                    let key = m.keys().nth(i.index(m.len())).unwrap().clone();
                    m.remove(&key);
                }
                (serde_yaml::Value::Sequence(s), Some(i)) if !s.is_empty() => {
                    s.remove(i.index(s.len()));
                }
                _ => {}
            }
        }
        Edit::Add(path, key, value) => {
            if let serde_yaml::Value::Mapping(m) = node_at(root, path) {
                m.insert(serde_yaml::Value::String(key.clone()), value.clone());
            } else if let serde_yaml::Value::Sequence(s) = node_at(root, path) {
                s.push(value.clone());
            }
        }
        Edit::Wrap(path) => {
            let node = node_at(root, path);
            *node = serde_yaml::Value::Sequence(vec![std::mem::take(node)]);
        }
    }
}

fn edited(seed: &serde_yaml::Value, edits: &[Edit]) -> String {
    let mut value = seed.clone();
    for e in edits {
        apply_edit(&mut value, e);
    }
    serde_yaml::to_string(&value).unwrap_or_default()
}

/// A JSON document edited as a value (JSON is YAML; what JSON cannot hold, such as a non-string
/// key, leaves the edited document as YAML text).
fn json_edited(seed: &serde_yaml::Value, edits: &[Edit], pretty: bool) -> String {
    let mut value = seed.clone();
    for e in edits {
        apply_edit(&mut value, e);
    }
    match serde_json::to_value(&value) {
        Ok(json) if pretty => serde_json::to_string_pretty(&json).unwrap(),
        Ok(json) => serde_json::to_string(&json).unwrap(),
        Err(_) => serde_yaml::to_string(&value).unwrap_or_default(),
    }
}

// ---------------------------------------------------------------------------------------------
// Input strategies.

/// Arbitrary text: any characters, lossily converted bytes, or a soup of tokens.
fn arbitrary_text(tokens: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        vec(any::<char>(), 0..256).prop_map(String::from_iter),
        vec(any::<u8>(), 0..512).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        vec(token(tokens), 0..64).prop_map(|t| t.concat()),
    ]
}

/// YAML: arbitrary text (2 in 10), text-mutated seeds (5 in 10), value-edited seeds, sometimes
/// also text-mutated (3 in 10).
fn yaml_input(
    seeds: &'static [&'static str],
    values: &'static [serde_yaml::Value],
) -> impl Strategy<Value = String> {
    prop_oneof![
        2 => arbitrary_text(YAML_TOKENS),
        5 => (select(seeds), vec(mutation(YAML_TOKENS), 1..5)).prop_map(|(seed, ms)| mutated(seed, &ms)),
        3 => (select(values), vec(edit(), 1..4), vec(mutation(YAML_TOKENS), 0..2)).prop_map(|(seed, es, ms)| mutated(&edited(&seed, &es), &ms)),
    ]
}

fn json_leaf() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        select(IPS).prop_map(Value::from),
        select(IP_TYPES).prop_map(Value::from),
        select(YAML_TOKENS).prop_map(Value::from),
        vec(any::<char>(), 0..24).prop_map(|c| Value::String(c.into_iter().collect())),
    ]
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    json_leaf().prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            vec(
                (
                    prop_oneof![
                        select(YAML_TOKENS).prop_map(String::from),
                        select(OUTPUT_NAMES).prop_map(String::from),
                        ".*"
                    ],
                    inner
                ),
                0..4
            )
            .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

/// A value of the type an output has, or near it, or anything.
fn output_value(name: &'static str) -> BoxedStrategy<serde_json::Value> {
    use serde_json::Value;
    let ip = prop_oneof![3 => select(IPS).prop_map(Value::from), 1 => json_leaf()];
    let typed: BoxedStrategy<Value> = match name {
        "primary_ip" | "mycelium_ip" => ip.boxed(),
        "private_ips" => vec(ip, 0..4).prop_map(Value::Array).boxed(),
        "primary_ip_type" => select(IP_TYPES).prop_map(Value::from).boxed(),
        "node_ids" => vec(
            prop_oneof![
                any::<u64>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                "[0-9]{1,25}".prop_map(Value::from),
                any::<f64>().prop_map(Value::from),
                json_leaf()
            ],
            0..4,
        )
        .prop_map(Value::Array)
        .boxed(),
        "secondary_ips" => vec(
            vec(
                (
                    select(&["name", "ip", "type", "role", "x"][..]),
                    prop_oneof![
                        select(IPS).prop_map(Value::from),
                        select(IP_TYPES).prop_map(Value::from),
                        json_leaf()
                    ],
                ),
                0..6,
            )
            .prop_map(|entries| {
                Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect(),
                )
            }),
            0..3,
        )
        .prop_map(Value::Array)
        .boxed(),
        _ => json_leaf().boxed(),
    };
    prop_oneof![4 => typed, 1 => json_value()].boxed()
}

/// `tofu output -json` built from parts: each output present or not, as `{"value": …, "type",
/// "sensitive"}` or bare or without a value, plus unknown outputs.
fn structured_outputs() -> impl Strategy<Value = String> {
    let entries: Vec<BoxedStrategy<Option<(String, serde_json::Value)>>> = OUTPUT_NAMES
        .iter()
        .map(|name| {
            let entry = (output_value(name), 0..4u8, any::<bool>()).prop_map(move |(value, form, sensitive)| {
                let entry = match form {
                    0 => value,
                    1 => serde_json::json!({ "sensitive": sensitive, "type": value }),
                    _ => serde_json::json!({ "value": value, "type": "string", "sensitive": sensitive }),
                };
                (name.to_string(), entry)
            });
            proptest::option::weighted(0.85, entry).boxed()
        })
        .collect();
    (
        entries,
        vec(("[a-z_]{1,10}", json_value()), 0..3),
        any::<bool>(),
    )
        .prop_map(|(known, extra, pretty)| {
            let map: serde_json::Map<String, serde_json::Value> =
                known.into_iter().flatten().chain(extra).collect();
            let value = serde_json::Value::Object(map);
            if pretty {
                serde_json::to_string_pretty(&value).unwrap()
            } else {
                serde_json::to_string(&value).unwrap()
            }
        })
}

/// JSON: arbitrary text (2 in 10), text-mutated seeds (3 in 10), value-edited seeds (3 in 10),
/// built outputs, sometimes also text-mutated (2 in 10).
fn json_input() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => arbitrary_text(JSON_TOKENS),
        3 => (select(OUTPUT_SEEDS.clone()), vec(mutation(JSON_TOKENS), 1..5)).prop_map(|(seed, ms)| mutated(&seed, &ms)),
        3 => (select(&OUTPUT_VALUES[..]), vec(edit(), 1..3), any::<bool>()).prop_map(|(seed, es, pretty)| json_edited(&seed, &es, pretty)),
        2 => (structured_outputs(), vec(mutation(JSON_TOKENS), 0..2)).prop_map(|(json, ms)| mutated(&json, &ms)),
    ]
}

// ---------------------------------------------------------------------------------------------
// The runner: catches panics, counts results, reports the smallest failing input.

thread_local! {
    /// Set while a parser runs: a panic is recorded instead of printed.
    static QUIET: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<(String, std::backtrace::Backtrace)>> = const { RefCell::new(None) };
}

fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if QUIET.with(Cell::get) {
                LAST_PANIC.with(|p| {
                    *p.borrow_mut() =
                        Some((info.to_string(), std::backtrace::Backtrace::force_capture()))
                });
            } else {
                previous(info);
            }
        }));
    });
}

/// Runs `f`; a panic becomes a test failure naming `what`.
fn no_panic<R>(what: &str, f: impl FnOnce() -> R) -> Result<R, TestCaseError> {
    QUIET.with(|q| q.set(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(false));
    result.map_err(|_| {
        let message = LAST_PANIC
            .with(|p| p.borrow().as_ref().map(|(m, _)| m.clone()))
            .unwrap_or_default();
        TestCaseError::fail(format!("{what} panicked: {message}"))
    })
}

fn cases() -> u32 {
    std::env::var_os("PROPTEST_CASES")
        .and_then(|v| v.to_str()?.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

/// Runs `check` on `cases()` inputs of `strategy`; `check` says whether the parser accepted the
/// input. Fails with the smallest failing input, its failure and the panic's backtrace.
fn fuzz<S: Strategy>(
    target: &str,
    strategy: S,
    check: impl Fn(&S::Value) -> Result<bool, TestCaseError>,
) where
    S::Value: Debug,
{
    install_panic_hook();
    let config = Config {
        cases: cases(),
        failure_persistence: None,
        max_shrink_iters: 4096,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let (ok, err) = (Cell::new(0u64), Cell::new(0u64));
    let start = Instant::now();
    let result = runner.run(&strategy, |input| {
        let accepted = check(&input)?;
        let counter = if accepted { &ok } else { &err };
        counter.set(counter.get() + 1);
        Ok(())
    });
    let seconds = start.elapsed().as_secs_f64();
    match result {
        Ok(()) => {
            if let Some(file) = std::env::var_os("FUZZ_STATS") {
                use std::io::Write as _;
                let mut out = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(file)
                    .unwrap();
                writeln!(
                    out,
                    "{target} {} {} {} {seconds:.1}",
                    ok.get() + err.get(),
                    ok.get(),
                    err.get()
                )
                .unwrap();
            }
        }
        Err(TestError::Fail(reason, input)) => {
            LAST_PANIC.with(|p| p.borrow_mut().take());
            let again = check(&input);
            let backtrace = LAST_PANIC.with(|p| p.borrow_mut().take()).map_or_else(
                || "(no panic on the re-run)".to_string(),
                |(_, b)| b.to_string(),
            );
            panic!(
                "fuzz target `{target}` failed: {reason}\nsmallest failing input: {input:?}\nre-run: {again:?}\nbacktrace:\n{backtrace}"
            );
        }
        Err(TestError::Abort(reason)) => panic!("fuzz target `{target}` aborted: {reason}"),
    }
}

/// What the CLI does with an error before printing it.
fn render(err: anyhow::Error) {
    let _ = format!("{err:#} {err:?}");
    let _ = tfgrid_compose::error::hints_for_error(&err);
    let _ = tfgrid_compose::error::exit_code_for(&err);
}

// ---------------------------------------------------------------------------------------------
// The targets.

/// A folder with the hooks and the env file the seed manifests name, so that they load.
fn app_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("deployment")).unwrap();
    for hook in ["setup.sh", "configure.sh", "healthcheck.sh"] {
        let path = dir.path().join("deployment").join(hook);
        std::fs::write(&path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }
    std::fs::write(dir.path().join(".env"), "A=1\n").unwrap();
    dir
}

/// `App::load` after its read: parse, warnings, checks; then what `up` asks of a loaded app.
fn check_app(dir: &Path, text: &str) -> Result<bool, TestCaseError> {
    let file = dir.join("tfgrid-compose.yaml");
    no_panic("App::from_text", || {
        if text.trim().is_empty() {
            let _ = from_yaml::<AppManifest>(text).map_err(|e| e.to_string());
        }
        match App::from_text(dir.to_path_buf(), file, text.to_string()) {
            Ok(app) => {
                let _ = app.pattern_name(None);
                let _ = app.env_file();
                let _ = app.hooks();
                let _ = app
                    .variables(&MINIMAL_PATTERN)
                    .map_err(|e| render(e.into()));
                true
            }
            Err(e) => {
                render(e.into());
                false
            }
        }
    })
}

fn check_pattern(text: &str) -> Result<bool, TestCaseError> {
    no_panic("PatternManifest::parse", || {
        match PatternManifest::parse(Path::new("pattern.yaml"), text) {
            Ok(_) => true,
            Err(e) => {
                render(e.into());
                false
            }
        }
    })
}

/// Serializes `state` as `StateDir::save` does and reads it back as `StateDir::load` does; the
/// result must read back to itself (a second round trip changes nothing).
fn round_trip(state: &DeploymentState) -> Result<(), TestCaseError> {
    let read = |text: &str, what: &str| {
        DeploymentState::parse(text)
            .map_err(|e| TestCaseError::fail(format!("{what} does not parse: {e:#}\n{text}")))
    };
    let write = |state: &DeploymentState| {
        serde_yaml::to_string(state)
            .map_err(|e| TestCaseError::fail(format!("state does not serialize: {e}")))
    };
    let first = write(state)?;
    let again = read(&first, "the serialized state")?;
    let second = write(&again)?;
    let third = read(&second, "the state serialized twice")?;
    if third != again {
        return Err(TestCaseError::fail(format!(
            "the state changes on a second round trip:\n{first}\n---\n{second}"
        )));
    }
    Ok(())
}

fn check_state(text: &str) -> Result<bool, TestCaseError> {
    let state = no_panic("DeploymentState::parse", || {
        match DeploymentState::parse(text) {
            Ok(state) => Some(state),
            Err(e) => {
                render(e);
                None
            }
        }
    })?;
    match state {
        Some(state) => {
            no_panic("state round trip", || round_trip(&state))??;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// The outputs, then (as `up` does) stored in a `state.yaml` and read back.
fn check_outputs((pattern, json): &(String, String)) -> Result<bool, TestCaseError> {
    let outputs =
        no_panic(
            "PatternOutputs::from_output_json",
            || match PatternOutputs::from_output_json(pattern, json) {
                Ok(outputs) => {
                    let _ = outputs.vms();
                    Some(outputs)
                }
                Err(e) => {
                    render(e.into());
                    None
                }
            },
        )?;
    match outputs {
        Some(outputs) => {
            let mut state = FULL_STATE.clone();
            state.outputs = Some(outputs);
            no_panic("state round trip with these outputs", || round_trip(&state))??;
            Ok(true)
        }
        None => Ok(false),
    }
}

#[test]
fn seeds_are_valid() {
    let dir = app_dir();
    for seed in APP_SEEDS.iter() {
        App::from_text(
            dir.path().to_path_buf(),
            dir.path().join("tfgrid-compose.yaml"),
            seed.to_string(),
        )
        .unwrap_or_else(|e| panic!("{e}\n{seed}"));
    }
    for seed in PATTERNS {
        PatternManifest::parse(Path::new("pattern.yaml"), seed)
            .unwrap_or_else(|e| panic!("{e}\n{seed}"));
    }
    for seed in STATE_SEEDS.iter() {
        let state = DeploymentState::parse(seed).unwrap_or_else(|e| panic!("{e:#}\n{seed}"));
        round_trip(&state).unwrap();
        assert_eq!(
            DeploymentState::parse(&serde_yaml::to_string(&state).unwrap()).unwrap(),
            state
        );
    }
    for seed in OUTPUT_SEEDS.iter().filter(|s| *s != "{}") {
        PatternOutputs::from_output_json("seed", seed).unwrap_or_else(|e| panic!("{e}\n{seed}"));
    }
    assert!(check_outputs(&("p".into(), OUTPUTS_FULL.into())).unwrap());
}

#[test]
fn app_manifest() {
    let dir = app_dir();
    let dir_path: PathBuf = dir.path().to_path_buf();
    fuzz(
        "app-manifest",
        yaml_input(&APP_SEEDS, &APP_VALUES),
        |text| check_app(&dir_path, text),
    );
}

#[test]
fn pattern_manifest() {
    fuzz(
        "pattern-manifest",
        yaml_input(&PATTERNS, &PATTERN_VALUES),
        |text| check_pattern(text),
    );
}

#[test]
fn state_yaml() {
    fuzz(
        "state-yaml",
        yaml_input(&STATE_SEEDS, &STATE_VALUES),
        |text| check_state(text),
    );
}

#[test]
fn output_json() {
    let pattern = prop_oneof![8 => Just("single-vm".to_string()), 1 => ".{0,12}", 1 => select(YAML_TOKENS).prop_map(String::from)];
    fuzz("output-json", (pattern, json_input()), check_outputs);
}
