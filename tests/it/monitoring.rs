//! The AI stack's monitoring configs as rendered (`ai::monitoring`), through the real tools of
//! the Debian packages: the alert rules under `promtool test rules` (each alert fires when the
//! design says, and not before), Prometheus' config under `promtool check config`, and
//! Alertmanager's under `amtool check-config`.

use std::path::Path;
use std::process::Command;

use tfgrid_compose::ai::monitoring::{self, Targets};
use tfgrid_compose::stack::Monitoring;

fn tool(name: &str, package: &str) -> Command {
    Command::new(which::which(name).unwrap_or_else(|_| {
        panic!("`{name}` is missing: scripts/install-deps.sh installs `{package}`")
    }))
}

/// Runs `cmd`; panics with what it said unless it succeeded.
fn succeeds(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?}: {said}");
    said
}

/// The unit tests of the alert rules, in promtool's format (Prometheus 2.42
/// `docs/configuration/unit_testing_rules.md`): for each alert, series that should fire it, an
/// evaluation before the time it must wait (nothing) and one after (the alert, its labels and
/// summary).
const RULE_TESTS: &str = r#"
rule_files: [alerts.yml]
evaluation_interval: 15s
tests:
  - interval: 15s
    input_series:
      - series: 'up{job="health-checks",instance="10.1.1.2:7702",service="agent"}'
        values: '1 0x10'
      - series: 'up{job="health-checks",instance="10.1.0.2:7701",service="gateway"}'
        values: '1x10'
    alert_rule_test:
      - {alertname: ServiceDown, eval_time: 45s, exp_alerts: []}
      - alertname: ServiceDown
        eval_time: 1m15s
        exp_alerts:
          - exp_labels: {severity: critical, job: health-checks, instance: "10.1.1.2:7702", service: agent}
            exp_annotations: {summary: "health-checks target 10.1.1.2:7702 (agent) has been down for a minute"}
  # Disks with blocks reserved for root (free > available), used as df's Use% counts it:
  # used / (used + available), used = size - free. VM 0: 85 / 95 = 89.47 %, over the limit;
  # VM 1: 75 / 94 = 79.8 %, under it (df says 80 %), though only 19 of 100 are available.
  - interval: 1m
    input_series:
      - series: 'node_filesystem_avail_bytes{vm="0",mountpoint="/",fstype="ext4"}'
        values: '10x10'
      - series: 'node_filesystem_free_bytes{vm="0",mountpoint="/",fstype="ext4"}'
        values: '15x10'
      - series: 'node_filesystem_size_bytes{vm="0",mountpoint="/",fstype="ext4"}'
        values: '100x10'
      - series: 'node_filesystem_avail_bytes{vm="1",mountpoint="/",fstype="ext4"}'
        values: '19x10'
      - series: 'node_filesystem_free_bytes{vm="1",mountpoint="/",fstype="ext4"}'
        values: '25x10'
      - series: 'node_filesystem_size_bytes{vm="1",mountpoint="/",fstype="ext4"}'
        values: '100x10'
      - series: 'node_filesystem_avail_bytes{vm="0",mountpoint="/run",fstype="tmpfs"}'
        values: '1x10'
      - series: 'node_filesystem_free_bytes{vm="0",mountpoint="/run",fstype="tmpfs"}'
        values: '1x10'
      - series: 'node_filesystem_size_bytes{vm="0",mountpoint="/run",fstype="tmpfs"}'
        values: '100x10'
    alert_rule_test:
      - {alertname: DiskFull, eval_time: 4m, exp_alerts: []}
      - alertname: DiskFull
        eval_time: 6m
        exp_alerts:
          - exp_labels: {severity: critical, vm: "0", mountpoint: /, fstype: ext4}
            exp_annotations: {summary: "/ on VM 0 is 89.47% full"}
  - interval: 1m
    input_series:
      - series: 'http_request_duration_seconds_bucket{service="agent",route="/api/v1/projects",method="GET",le="0.5"}'
        values: '0x20'
      - series: 'http_request_duration_seconds_bucket{service="agent",route="/api/v1/projects",method="GET",le="1"}'
        values: '0+60x20'
      - series: 'http_request_duration_seconds_bucket{service="agent",route="/api/v1/projects",method="GET",le="+Inf"}'
        values: '0+60x20'
    alert_rule_test:
      - {alertname: ApiSlow, eval_time: 4m, exp_alerts: []}
      - alertname: ApiSlow
        eval_time: 11m
        exp_alerts:
          - exp_labels: {severity: critical}
            exp_annotations: {summary: "the API's p95 latency has been 975ms for 5 minutes"}
  - interval: 5m
    input_series:
      - series: 'project_creation_attempts_total{service="agent"}'
        values: '0+2x24'
      - series: 'project_creation_success_total{service="agent"}'
        values: '0+2x12 25+1x12'
      - series: 'project_creation_failures_total{service="agent",reason="generating"}'
        values: '0x12 1+1x12'
    alert_rule_test:
      - {alertname: CreationSuccessLow, eval_time: 1h, exp_alerts: []}
      - alertname: CreationSuccessLow
        eval_time: 2h
        exp_alerts:
          - exp_labels: {severity: critical}
            exp_annotations: {summary: "50% of the last hour's creations went live"}
  # A fresh stack: the first create counted before Prometheus first scraped the agent (the
  # attempts' first sample is already 1), then a second; no failure series at all. The rate
  # over finished creations is 1, not +Inf nor 196 %.
  - interval: 1m
    input_series:
      - series: 'project_creation_attempts_total{service="agent"}'
        values: '1 1 1 2x8'
      - series: 'project_creation_success_total{service="agent"}'
        values: '0 0 1 1 1 2x6'
    promql_expr_test:
      - expr: 'CREATION_SUCCESS_RATE'
        eval_time: 10m
        exp_samples:
          - {labels: '{}', value: 1}
    alert_rule_test:
      - {alertname: CreationSuccessLow, eval_time: 10m, exp_alerts: []}
  - interval: 1h
    input_series:
      - series: 'backup_last_success_timestamp_seconds{service="agent"}'
        values: '3600x40'
    alert_rule_test:
      - {alertname: BackupMissing, eval_time: 26h, exp_alerts: []}
      - alertname: BackupMissing
        eval_time: 28h
        exp_alerts:
          - exp_labels: {severity: critical}
            exp_annotations: {summary: "no backup for more than 26 hours"}
  # No backup ever, and the agent restarted at 20 h (Prometheus has sampled it since 0 h): the
  # wait counts from the agent's start, not from Prometheus' first sample, and the summary says
  # how long the agent has run. Samples closer than the 5 minutes a series stays current
  # without one.
  - interval: 4m
    input_series:
      - series: 'backup_last_success_timestamp_seconds{job="health-checks",service="agent"}'
        values: '0x720'
      - series: 'process_start_time_seconds{job="health-checks",service="agent"}'
        values: '0x299 72000x420'
    alert_rule_test:
      - {alertname: BackupNeverTaken, eval_time: 19h, exp_alerts: []}
      - {alertname: BackupNeverTaken, eval_time: 27h, exp_alerts: []}
      - {alertname: BackupNeverTaken, eval_time: 45h, exp_alerts: []}
      - alertname: BackupNeverTaken
        eval_time: 47h
        exp_alerts:
          - exp_labels: {severity: critical}
            exp_annotations: {summary: "no backup since the agent started 1d 3h 0m 0s ago (limit 26 hours)"}
"#;

#[test]
fn alert_rules_fire_when_the_design_says_under_promtool_test_rules() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join(monitoring::ALERT_RULES);
    std::fs::write(&rules, monitoring::alert_rules(&Monitoring::default())).unwrap();
    let tests = RULE_TESTS.replace(
        "CREATION_SUCCESS_RATE",
        monitoring::query::CREATION_SUCCESS_RATE,
    );
    std::fs::write(dir.path().join("tests.yml"), tests).unwrap();
    succeeds(
        tool("promtool", "prometheus")
            .args(["check", "rules"])
            .arg(&rules),
    );
    let said = succeeds(
        tool("promtool", "prometheus")
            .args(["test", "rules", "tests.yml"])
            .current_dir(dir.path()),
    );
    assert!(said.contains("SUCCESS"), "{said}");
}

/// Prometheus' config of a three-VM stack, with its rule file and token beside it, as
/// `promtool check config` reads it; Alertmanager's with a webhook, as `amtool` reads it.
#[test]
fn prometheus_and_alertmanager_configs_pass_their_own_checks() {
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name);
    let folder = dir.path().display().to_string();
    let settings = Monitoring {
        alert_webhook: Some("http://10.1.0.1:8099/alerts".into()),
        ..Monitoring::default()
    };
    let targets = Targets {
        services: vec![
            ("gateway", "10.1.0.2:7701".into()),
            ("agent", "10.1.1.2:7702".into()),
            ("git", "10.1.2.2:80".into()),
        ],
        nodes: ["10.1.0.2", "10.1.1.2", "10.1.2.2"]
            .map(|a| format!("{a}:9100"))
            .to_vec(),
    };
    std::fs::write(
        at(monitoring::ALERT_RULES),
        monitoring::alert_rules(&settings),
    )
    .unwrap();
    let config = at(monitoring::PROMETHEUS_CONFIG);
    std::fs::write(
        &config,
        monitoring::prometheus_config(&settings, &targets, &folder, &"m".repeat(64)),
    )
    .unwrap();
    let said = succeeds(
        tool("promtool", "prometheus")
            .args(["check", "config"])
            .arg(&config),
    );
    assert!(said.contains("SUCCESS: 6 rules found"), "{said}");
    let am = at(monitoring::ALERTMANAGER_CONFIG);
    std::fs::write(&am, monitoring::alertmanager_config(&settings)).unwrap();
    let said = succeeds(
        tool("amtool", "prometheus-alertmanager")
            .arg("check-config")
            .arg(&am),
    );
    assert!(said.contains("1 receivers"), "{said}");
    assert!(Path::new(&am).exists());
}

/// docs/ai-stack.md names the file systems `DiskFull` leaves out, each of them, as
/// `query::DISK_USED` leaves them out.
#[test]
fn the_docs_name_the_file_systems_disk_full_leaves_out() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/ai-stack.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let line = |start: &str| {
        doc.lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("docs/ai-stack.md has no line `{start}…`"))
    };
    let alert = line("| `DiskFull` |");
    for fs in monitoring::NOT_DATA_FS.split('|') {
        assert!(alert.contains(&format!("`{fs}`")), "`{fs}` in: {alert}");
    }
    let query = line("# disk in use");
    let selector = format!("fstype!~\"{}\"", monitoring::NOT_DATA_FS);
    assert!(query.contains(&selector), "{selector} in: {query}");
    assert!(
        monitoring::query::DISK_USED.contains(&selector),
        "{}",
        monitoring::query::DISK_USED
    );
}
