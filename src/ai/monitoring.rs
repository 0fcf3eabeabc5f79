//! The AI stack's monitoring as configuration text: Prometheus' config (what it scrapes over the
//! private network, with the read-only metrics token), the alert rules, Alertmanager's config
//! (the user's webhook) and node_exporter's web config (basic auth: a user per metrics token,
//! [`node_user`], so that it accepts two while `projects rotate-tokens` replaces one). Pure
//! text, no I/O: `phase::ai_stack` puts the files among the gateway's (and each VM's) in
//! `/etc/tfgrid-ai/`, and [`super::units`] starts the programs that read them. The formats are
//! Prometheus 2.42's `configuration.md` and `recording_rules.md`, Alertmanager 0.25's
//! `configuration.md` and exporter-toolkit's `web-configuration.md` (the Debian 12 packages).

use serde_json::{Value, json};

use crate::stack::Monitoring;

/// Prometheus' config file, among the stack's configs.
pub const PROMETHEUS_CONFIG: &str = "prometheus.yml";
/// The alert rules, among the stack's configs.
pub const ALERT_RULES: &str = "alerts.yml";
/// Alertmanager's config file, among the stack's configs.
pub const ALERTMANAGER_CONFIG: &str = "alertmanager.yml";
/// node_exporter's web config (basic auth), among the stack's configs.
pub const NODE_EXPORTER_WEB: &str = "node-exporter-web.yml";
/// The metrics token's file, among the stack's configs.
pub const METRICS_TOKEN: &str = "metrics.token";
/// The job of the stack's services (gateway, agent, git host API), as the design's
/// `up{job="health-checks"}` names it; each target carries a `service` label.
pub const SERVICES_JOB: &str = "health-checks";
/// The job of node_exporter on each VM; each target carries a `vm` label (its index).
pub const NODE_JOB: &str = "node";
/// The start of the user name Prometheus gives node_exporter ([`node_user`]; the metrics token
/// is the password).
pub const NODE_USER: &str = "prometheus";
/// The share of a file system in use above which `DiskFull` fires and `health` fails.
pub const DISK_LIMIT: f64 = 0.80;
/// The API's p95 latency (seconds) above which `ApiSlow` fires and `health` fails.
pub const P95_LIMIT: f64 = 0.5;
/// The creation success rate (over an hour) below which `CreationSuccessLow` fires.
pub const SUCCESS_LIMIT: f64 = 0.80;

/// [`NOT_DATA_FS`] as a literal, for `concat!`.
macro_rules! not_data_fs {
    () => {
        "tmpfs|devtmpfs|squashfs|nsfs|ramfs|fuse.lxcfs"
    };
}

/// The file system types that hold none of the stack's data (memory, read-only images,
/// namespaces, LXCFS's views of `/proc`), `|` between them: [`query::DISK_USED`], so `DiskFull`,
/// leaves them out (`fstype!~"…"`).
pub const NOT_DATA_FS: &str = not_data_fs!();

/// A node_exporter file-system series `$name` of the file systems that hold the stack's data
/// (not [`NOT_DATA_FS`]).
macro_rules! data_fs {
    ($name:literal) => {
        concat!($name, "{fstype!~\"", not_data_fs!(), "\"}")
    };
}

/// The design's queries, answered by Prometheus on a running stack. Each has one owner here:
/// the alert rules, the dashboard's charts and `health` use these constants.
pub mod query {
    /// The 95th percentile of the API's response time over 5 minutes, in seconds. Long polls
    /// (`GET /api/v1/projects/{id}/events?wait=…`, which `create` follows) are not in it: their
    /// time is how long nothing happened, and the agent observes them apart, in
    /// `http_long_poll_duration_seconds` (`ai::server::LongPoll`).
    pub const API_P95: &str =
        "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))";
    /// Projects that went live per creation that finished (live or failed) over the last hour:
    /// success / (success + failures), never above 1. Finished creations, not attempts: the
    /// first attempt is often counted before Prometheus first scrapes the agent, so the
    /// attempts' `increase` misses it while the success that follows is seen (`+Inf`, 196 %).
    /// No failure series yet counts as 0 failures (`or vector(0)`).
    pub const CREATION_SUCCESS_RATE: &str = "sum(increase(project_creation_success_total[1h])) / \
        (sum(increase(project_creation_success_total[1h])) + \
        (sum(increase(project_creation_failures_total[1h])) or vector(0)))";
    /// Projects live now.
    pub const ACTIVE_PROJECTS: &str = "count(project_status{status=\"live\"})";
    /// Each service of the stack: 1 up, 0 down.
    pub const SERVICES_UP: &str = "up{job=\"health-checks\"}";
    /// Every target Prometheus has scraped: 1 up, 0 down. None for a target before its first
    /// scrape, so `health` counts the targets of Prometheus' `/api/v1/targets` instead.
    pub const TARGETS_UP: &str = "up";
    /// The share (0..1) of each VM's data file systems in use, as `df` counts its `Use%`:
    /// used / (used + available), used = size − free, so that the blocks reserved for root
    /// (free but not available) count neither as used nor as room. POSIX `df -P`, STDOUT:
    /// "<space used>/(<space used>+<space free>)", the free space being what is available to
    /// a user; coreutils 9.1 `src/df.c` (`get_dev`) computes it so and rounds the percentage
    /// up. As `1 - avail / (size - free + avail)`.
    pub const DISK_USED: &str = concat!(
        "1 - ",
        data_fs!("node_filesystem_avail_bytes"),
        " / (",
        data_fs!("node_filesystem_size_bytes"),
        " - ",
        data_fs!("node_filesystem_free_bytes"),
        " + ",
        data_fs!("node_filesystem_avail_bytes"),
        ")"
    );
}

/// What Prometheus scrapes: `(service, ADDRESS:PORT)` for each service's `/metrics`, and each
/// VM's node_exporter as `ADDRESS:PORT` (index = the VM's).
pub struct Targets {
    pub services: Vec<(&'static str, String)>,
    pub nodes: Vec<String>,
}

/// Prometheus' config: the services and node_exporters, Prometheus and Alertmanager themselves,
/// the alert rules, alerts to Alertmanager on loopback. `config` is the folder of the configs;
/// `token` the metrics token Prometheus sends: in the file itself (a Bearer token to the
/// services, basic auth as [`node_user`] to node_exporter), so that both change together when
/// Prometheus loads the file again (SIGHUP). A `credentials_file` or `password_file` would not
/// do: Prometheus reads those again for every scrape (prometheus/common 0.39,
/// `config/http_config.go`, `NewAuthorizationCredentialsFileRoundTripper` and
/// `basicAuthRoundTripper.RoundTrip`), so a new password would reach node_exporter before the
/// new user name. The file is 0600 like the tokens; Prometheus shows both as `<secret>` in
/// `/api/v1/status/config`.
pub fn prometheus_config(
    settings: &Monitoring,
    targets: &Targets,
    config: &str,
    token: &str,
) -> String {
    let interval = format!("{}s", settings.scrape_interval);
    let services: Vec<Value> = targets
        .services
        .iter()
        .map(|(service, at)| json!({"targets": [at], "labels": {"service": service}}))
        .collect();
    let nodes: Vec<Value> = targets
        .nodes
        .iter()
        .enumerate()
        .map(|(vm, at)| json!({"targets": [at], "labels": {"vm": vm.to_string()}}))
        .collect();
    let local = |job: &str, port: u16| json!({"job_name": job, "static_configs": [{"targets": [format!("127.0.0.1:{port}")]}]});
    let doc = json!({
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [format!("{config}/{ALERT_RULES}")],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [
            format!("127.0.0.1:{}", super::units::ALERTMANAGER_PORT)
        ]}]}]},
        "scrape_configs": [
            {"job_name": SERVICES_JOB, "authorization": {"credentials": token},
             "static_configs": services},
            {"job_name": NODE_JOB, "basic_auth": {"username": node_user(token), "password": token},
             "static_configs": nodes},
            local("prometheus", super::units::PROMETHEUS_PORT),
            local("alertmanager", super::units::ALERTMANAGER_PORT),
        ],
    });
    header("Prometheus", &doc)
}

/// The alert rules: a service down for a minute, a disk over 80 % for 5 minutes, the API's p95
/// over 500 ms for 5 minutes, creation success under 80 % over an hour, no backup for
/// `backup_max_age_hours` (`BackupMissing` after a backup, `BackupNeverTaken` when the agent
/// has served none since it started that long ago, by its own `process_start_time_seconds`).
pub fn alert_rules(settings: &Monitoring) -> String {
    let backup_age = u64::from(settings.backup_max_age_hours) * 3600;
    let hours = settings.backup_max_age_hours;
    let rule = |alert: &str, expr: String, wait: &str, summary: &str| {
        json!({"alert": alert, "expr": expr, "for": wait,
               "labels": {"severity": "critical"}, "annotations": {"summary": summary}})
    };
    let doc = json!({"groups": [{"name": "tfgrid-ai", "rules": [
        rule("ServiceDown", "up == 0".into(), "1m",
             "{{ $labels.job }} target {{ $labels.instance }} ({{ $labels.service }}{{ $labels.vm }}) has been down for a minute"),
        rule("DiskFull",
             format!("{} > {DISK_LIMIT}", query::DISK_USED),
             "5m",
             "{{ $labels.mountpoint }} on VM {{ $labels.vm }} is {{ $value | humanizePercentage }} full"),
        rule("ApiSlow", format!("{} > {P95_LIMIT}", query::API_P95), "5m",
             "the API's p95 latency has been {{ $value | humanizeDuration }} for 5 minutes"),
        rule("CreationSuccessLow",
             format!("({}) < {SUCCESS_LIMIT}", query::CREATION_SUCCESS_RATE), "0s",
             "{{ $value | humanizePercentage }} of the last hour's creations went live"),
        rule("BackupMissing",
             format!("max(backup_last_success_timestamp_seconds) > 0 and \
                      max(backup_last_success_timestamp_seconds) < time() - {backup_age}"),
             "0s",
             &format!("no backup for more than {hours} hours")),
        // Its value is how long the agent has run (its start, not Prometheus' first sample of
        // it): the alert fires once that passes the limit, and says how long it is.
        rule("BackupNeverTaken",
             format!("time() - max(process_start_time_seconds{{job=\"{SERVICES_JOB}\",\
                      service=\"{}\"}}) > {backup_age} \
                      and max(backup_last_success_timestamp_seconds) == 0",
                     super::units::Service::Agent.name()),
             "0s",
             &format!("no backup since the agent started {{{{ $value | humanizeDuration }}}} ago \
                       (limit {hours} hours)")),
    ]}]});
    header("Prometheus' alert rules", &doc)
}

/// Alertmanager's config: every alert to the webhook when one is set (`send_resolved` too),
/// else to a receiver that sends nowhere.
pub fn alertmanager_config(settings: &Monitoring) -> String {
    let receiver = match &settings.alert_webhook {
        Some(url) => json!({"name": "webhook", "webhook_configs": [
            {"url": url, "send_resolved": true}
        ]}),
        None => json!({"name": "webhook"}),
    };
    let doc = json!({
        "route": {"receiver": "webhook", "group_by": ["alertname", "service", "vm"],
                  "group_wait": "10s", "group_interval": "1m", "repeat_interval": "4h"},
        "receivers": [receiver],
    });
    header("Alertmanager", &doc)
}

/// The SHA-256 of a metrics token: the bcrypt salt of its hash and the suffix of its user.
fn token_digest(token: &str) -> ring::digest::Digest {
    ring::digest::digest(&ring::digest::SHA256, token.as_bytes())
}

/// The node_exporter user whose password is `token`: [`NODE_USER`], `-`, and 8 hex digits of
/// the token's SHA-256 (its first 4 bytes, which the bcrypt salt of [`node_exporter_web`]
/// already shows). A user per token lets node_exporter accept two tokens at once:
/// `basic_auth_users` maps a user to one bcrypt hash (exporter-toolkit 0.8,
/// `web-configuration.md`).
pub fn node_user(token: &str) -> String {
    let digest = token_digest(token);
    let hex: String = digest.as_ref()[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{NODE_USER}-{hex}")
}

/// node_exporter's web config: basic auth, a user per token ([`node_user`]) with the token's
/// bcrypt hash (cost 10, salted from the token itself so the same token gives the same file).
/// Two tokens while `projects rotate-tokens` runs; node_exporter reads the file again for every
/// request (exporter-toolkit 0.8, `web/handler.go`, `webHandler.ServeHTTP`).
///
/// Errors: bcrypt refusing a token (over 72 bytes).
pub fn node_exporter_web(tokens: &[&str]) -> anyhow::Result<String> {
    let mut users = serde_json::Map::new();
    for token in tokens {
        let mut salt = [0u8; 16];
        salt.copy_from_slice(&token_digest(token).as_ref()[..16]);
        let hash =
            bcrypt::hash_with_salt(token, 10, salt)?.format_for_version(bcrypt::Version::TwoB);
        users.insert(node_user(token), hash.into());
    }
    let doc = json!({ "basic_auth_users": users });
    Ok(header("node_exporter's web config", &doc))
}

/// `doc` as YAML under a line saying who wrote it.
fn header(what: &str, doc: &Value) -> String {
    format!(
        "# {what}, written by tfgrid-compose (ai_stack).\n{}",
        serde_yaml::to_string(doc).unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::{
        Targets, alert_rules, alertmanager_config, node_exporter_web, node_user, prometheus_config,
    };
    use crate::stack::Monitoring;

    #[test]
    fn scrapes_the_services_with_the_token_and_nodes_with_basic_auth() {
        let targets = Targets {
            services: vec![("gateway", "10.1.0.2:7701".into())],
            nodes: vec!["10.1.0.2:9100".into(), "10.1.1.2:9100".into()],
        };
        let token = "a-token-of-32-characters-or-more";
        let text = prometheus_config(&Monitoring::default(), &targets, "/etc/tfgrid-ai", token);
        let doc: serde_json::Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(doc["global"]["scrape_interval"], "15s");
        let jobs = &doc["scrape_configs"];
        assert_eq!(jobs[0]["job_name"], "health-checks");
        assert_eq!(jobs[0]["authorization"]["credentials"], token);
        assert_eq!(jobs[0]["static_configs"][0]["labels"]["service"], "gateway");
        assert_eq!(jobs[1]["basic_auth"]["username"], node_user(token));
        assert_eq!(jobs[1]["basic_auth"]["password"], token);
        assert_eq!(jobs[1]["static_configs"][1]["targets"][0], "10.1.1.2:9100");
        assert_eq!(jobs[1]["static_configs"][1]["labels"]["vm"], "1");
        assert!(alert_rules(&Monitoring::default()).contains("< time() - 93600"));
        assert!(!alertmanager_config(&Monitoring::default()).contains("webhook_configs"));
        // node_exporter: a user per token, each with the token's hash; the same token, the
        // same file.
        let next = "another-token-of-32-characters-or-more";
        assert_eq!(
            node_exporter_web(&[token]).unwrap(),
            node_exporter_web(&[token]).unwrap()
        );
        assert_ne!(node_user(token), node_user(next));
        assert!(node_user(token).starts_with("prometheus-"));
        let web = node_exporter_web(&[token, next]).unwrap();
        let doc: serde_json::Value = serde_yaml::from_str(&web).unwrap();
        let users = doc["basic_auth_users"].as_object().unwrap();
        assert_eq!(users.len(), 2, "{web}");
        for t in [token, next] {
            let hash = users[&node_user(t)].as_str().unwrap();
            assert!(bcrypt::verify(t, hash).unwrap(), "{web}");
        }
    }
}
