//! `health [TARGET] [--json] [--create-test]`: checks a running deployment and says, one line per
//! check with its figure, what holds (`-q`: only what does not). Any deployment: each VM
//! reachable over ssh, no failed systemd unit (on an AI stack, every unit of the stack and its
//! firewall active), its root file system's `df` `Use%` not over [`DISK_LIMIT`] (the share
//! `query::DISK_USED` gives `DiskFull`). An AI stack also: every target Prometheus is
//! configured with up (one not scraped yet holding for its first scrape's time), the API's
//! p95 ([`query::API_P95`], `ApiSlow`'s) under [`P95_LIMIT`] (Prometheus' query API on the
//! gateway's loopback, through ssh), the agent answering, and by its answer a backup younger
//! than `monitoring.backup_max_age_hours` (none yet holding while the agent has run less, as
//! `BackupNeverTaken` waits); with `--create-test`, a probe project created, served and deleted within
//! [`PROBE_LIMIT`]. An app that declares them: its `healthcheck` hook, run as `up` runs it, and
//! its `url`. A failed check is an [`Unhealthy`] error (exit 4). [`checks`] owns every check;
//! `up --upgrade` decides on it too. Reads only (the app's hook aside, which should); prints no
//! secret (the figures are counts, times and unit names).

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use serde::Serialize;

use crate::ai::monitoring::{DISK_LIMIT, P95_LIMIT, query};
use crate::ai::units::{self, PROMETHEUS_PORT, Service};
use crate::error::Unhealthy;
use crate::manifest::{App, HookHosts, HookKind};
use crate::ops::inspect::vm_target;
use crate::ops::resolve_target;
use crate::output::Printer;
use crate::phase::wait_ssh::Masters;
use crate::process::{Io, Runner};
use crate::settings::Settings;
use crate::stack::StackSpec;
use crate::state::DeploymentState;
use crate::tools::ssh;

/// How long the probe project of `--create-test` may take, from its creation to its deletion
/// (the design's "create < 5 min").
pub const PROBE_LIMIT: Duration = Duration::from_secs(300);
/// How long one remote command of a check may take.
const REMOTE_LIMIT: Duration = Duration::from_secs(30);

/// One check: what, whether it holds, and its figure.
#[derive(Debug, Serialize)]
pub struct Check {
    pub check: String,
    pub ok: bool,
    pub figure: String,
}

impl Check {
    fn new(check: impl Into<String>, ok: bool, figure: impl Into<String>) -> Check {
        Check {
            check: check.into(),
            ok,
            figure: figure.into(),
        }
    }
}

/// Runs the checks of the deployment `app` names, prints them (with `--quiet`, only those that
/// fail), and fails with [`Unhealthy`] when one does not hold.
pub async fn health(
    printer: &Printer,
    settings: &Settings,
    runner: &Runner,
    app: Option<&str>,
    json: bool,
    create_test: bool,
) -> Result<()> {
    let target = resolve_target(settings, app)?;
    let state = target.load()?;
    let app = target.load_app(printer, Some(&state))?;
    let checks = checks(settings, runner, &state, &app, create_test).await?;
    // Prometheus and Alertmanager listen on the gateway VM's loopback: the ssh command that
    // brings them to this machine's.
    let tunnel = match &app.manifest.ai_stack {
        Some(spec) if state.ai_stack.is_some() => Some(
            ssh::tunnel(
                &vm_target(&state, Some(&spec.gateway.to_string()))?,
                &[PROMETHEUS_PORT, units::ALERTMANAGER_PORT],
            )
            .display_line(),
        ),
        _ => None,
    };
    let failed: Vec<&Check> = checks.iter().filter(|c| !c.ok).collect();
    if json {
        printer.json_line(&serde_json::json!({
            "schema": 1,
            "healthy": failed.is_empty(),
            "checks": checks,
            "tunnel": tunnel,
        }));
    } else {
        // `--quiet` is "only errors" everywhere: here the checks that fail.
        let shown: Vec<&Check> = if printer.quiet() {
            failed.clone()
        } else {
            checks.iter().collect()
        };
        let width = shown.iter().map(|c| c.check.len()).max().unwrap_or(0);
        for c in &shown {
            let word = if c.ok { "ok  " } else { "FAIL" };
            printer.data(format!("{word} {:<width$}  {}", c.check, c.figure));
        }
        if let Some(tunnel) = tunnel.as_ref().filter(|_| !printer.quiet()) {
            printer.data(format!(
                "Prometheus and Alertmanager at http://127.0.0.1:{PROMETHEUS_PORT} and \
                 http://127.0.0.1:{} through: {tunnel}",
                units::ALERTMANAGER_PORT
            ));
        }
    }
    if failed.is_empty() {
        return Ok(());
    }
    Err(Unhealthy(failed.iter().map(|c| c.check.clone()).collect()).into())
}

/// The checks of the deployment `state` of `app`, in `health`'s order, none printed: each VM's
/// (reachable, units, disk), an AI stack's (metrics targets, backup, API p95, the agent
/// answering; with `create_test` the probe), the app's own (its `healthcheck` hook, its `url`).
/// `up --upgrade` decides on these too.
///
/// Errors: a deployment with no VMs yet; a check that fails is a [`Check`], not an error.
pub async fn checks(
    settings: &Settings,
    runner: &Runner,
    state: &DeploymentState,
    app: &App,
    create_test: bool,
) -> Result<Vec<Check>> {
    let outputs = state
        .outputs
        .as_ref()
        .context("the deployment has no VMs yet; finish it with `tfgrid-compose up --resume`")?;
    let spec = app
        .manifest
        .ai_stack
        .as_ref()
        .filter(|_| state.ai_stack.is_some());
    let work = tempfile::tempdir().context("cannot make a temp folder for the checks' logs")?;
    let mut masters = Masters::default();
    let remote = Remote {
        runner,
        state,
        log: work.path().join("health.log"),
        control_dir: masters.make_dir(),
    };
    // Every VM logged in to at once, each login kept as its connection master for the checks.
    let vms = outputs.vms();
    let targets = (0..vms.len())
        .map(|index| Ok((remote.target(index)?, remote.log.clone())))
        .collect();
    let logins = masters.log_in_all(runner, targets).await;
    let mut checks = Vec::new();
    for ((index, vm), reached) in vms.iter().enumerate().zip(logins) {
        let name = format!("{} {}", vm.name, vm.address);
        vm_checks(&remote, index, &name, reached, spec, &mut checks).await;
    }
    if let Some(spec) = spec {
        stack_checks(&remote, spec, &mut checks).await;
        checks.extend(agent_checks(settings, state, spec).await);
        if create_test {
            checks.push(probe(settings, state).await);
        }
    }
    app_checks(&remote, settings, app, &mut checks).await;
    Ok(checks)
}

/// What the checks run on the VMs through.
struct Remote<'a> {
    runner: &'a Runner,
    state: &'a DeploymentState,
    log: std::path::PathBuf,
    /// The folder of the checks' ssh connection masters, one per VM.
    control_dir: Option<std::path::PathBuf>,
}

impl Remote<'_> {
    /// VM `index`, reached through its master when there is one.
    fn target(&self, index: usize) -> Result<ssh::SshTarget> {
        let mut target = vm_target(self.state, Some(&index.to_string()))?;
        target.control_dir.clone_from(&self.control_dir);
        Ok(target)
    }

    /// `argv` on VM `index` over ssh: its stdout, or why it failed.
    async fn run(&self, index: usize, purpose: &str, argv: &[&str]) -> Result<String> {
        let target = self.target(index)?;
        let argv: Vec<String> = argv.iter().map(|a| (*a).to_string()).collect();
        let cmd = ssh::ssh(&target, &argv, false)
            .io(Io::Capture(self.log.clone()))
            .timeout(REMOTE_LIMIT);
        let out = self
            .runner
            .run(&cmd)
            .await
            .with_context(|| format!("cannot {purpose}"))?;
        Ok(out.stdout)
    }

    /// `path` of Prometheus on the gateway's VM (`curl`, `args` before the URL): what it
    /// printed.
    async fn prometheus(&self, gateway: usize, path: &str, args: &[&str]) -> Result<String> {
        let url = format!("http://127.0.0.1:{PROMETHEUS_PORT}/{path}");
        let mut argv = vec!["curl", "-sS", "--fail"];
        argv.extend(args);
        argv.push(&url);
        self.run(gateway, "ask Prometheus", &argv).await
    }

    /// `path` of Prometheus' HTTP API (`/api/v1/…`) on the gateway's VM: its answer's `data`.
    async fn api(&self, gateway: usize, path: &str, args: &[&str]) -> Result<serde_json::Value> {
        let out = self
            .prometheus(gateway, &format!("api/v1/{path}"), args)
            .await?;
        let doc: serde_json::Value =
            serde_json::from_str(&out).context("Prometheus' answer is not JSON")?;
        Ok(doc["data"].clone())
    }

    /// An instant query of Prometheus on the gateway's VM: the result's samples, each its
    /// labels and value.
    async fn query(&self, gateway: usize, promql: &str) -> Result<Vec<(serde_json::Value, f64)>> {
        let arg = format!("query={promql}");
        let data = self
            .api(gateway, "query", &["--get", "--data-urlencode", &arg])
            .await?;
        let samples = data["result"].as_array().cloned().unwrap_or_default();
        Ok(samples
            .into_iter()
            .map(|s| {
                let value = s["value"][1]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(f64::NAN);
                (s["metric"].clone(), value)
            })
            .collect())
    }
}

/// The checks of one VM: reachable, units, disk.
async fn vm_checks(
    remote: &Remote<'_>,
    index: usize,
    name: &str,
    reached: Result<Duration>,
    spec: Option<&StackSpec>,
    checks: &mut Vec<Check>,
) {
    let took = match reached {
        Ok(took) => took,
        Err(e) => {
            let e = e.context("cannot reach the VM");
            checks.push(Check::new(
                format!("{name} reachable"),
                false,
                format!("{e:#}"),
            ));
            return;
        }
    };
    checks.push(Check::new(
        format!("{name} reachable"),
        true,
        format!("ssh answered in {} ms", took.as_millis()),
    ));
    checks.push(units_check(remote, index, name, spec).await);
    let disk = remote
        .run(index, "read the disk's use", &["df", "-P", "/"])
        .await
        .and_then(|out| {
            out.lines()
                .nth(1)
                .and_then(|l| l.split_whitespace().nth(4))
                .and_then(|p| p.trim_end_matches('%').parse::<f64>().ok())
                .context("`df -P /` printed no use")
        });
    checks.push(match disk {
        // df's Use% is rounded up, so `used <= limit` holds exactly when the share is not
        // above it, as `DiskFull` (`query::DISK_USED > DISK_LIMIT`) says.
        Ok(used) => Check::new(
            format!("{name} disk /"),
            used <= DISK_LIMIT * 100.0,
            format!("{used}% used (limit {}%)", DISK_LIMIT * 100.0),
        ),
        Err(e) => Check::new(format!("{name} disk /"), false, format!("{e:#}")),
    });
}

/// No failed unit on the VM; on an AI stack, each of the stack's units there active.
async fn units_check(
    remote: &Remote<'_>,
    index: usize,
    name: &str,
    spec: Option<&StackSpec>,
) -> Check {
    let check = format!("{name} units");
    let failed = remote
        .run(
            index,
            "list failed units",
            &[
                "systemctl",
                "list-units",
                "--state=failed",
                "--plain",
                "--no-legend",
            ],
        )
        .await;
    let failed: Vec<String> = match failed {
        Ok(out) => out
            .lines()
            .filter_map(|l| l.split_whitespace().next().map(String::from))
            .collect(),
        Err(e) => return Check::new(check, false, format!("{e:#}")),
    };
    let Some(spec) = spec else {
        return Check::new(
            check,
            failed.is_empty(),
            if failed.is_empty() {
                "no failed unit".to_string()
            } else {
                format!("failed: {}", failed.join(", "))
            },
        );
    };
    let mut wanted: Vec<String> = Service::ALL
        .into_iter()
        .filter(|s| crate::phase::ai_stack::vm_of(spec, *s) == Some(index))
        .flat_map(crate::phase::ai_stack::unit_names)
        .collect();
    wanted.push(units::unit_name("node-exporter"));
    wanted.push(crate::ai::firewall::UNIT.into());
    let mut argv = vec!["systemctl", "is-active"];
    argv.extend(wanted.iter().map(String::as_str));
    // `is-active` exits non-zero when one is not active; its lines are the answer.
    let target = match remote.target(index) {
        Ok(t) => t,
        Err(e) => return Check::new(check, false, format!("{e:#}")),
    };
    let argv: Vec<String> = argv.iter().map(|a| (*a).to_string()).collect();
    let cmd = ssh::ssh(&target, &argv, false)
        .io(Io::Capture(remote.log.clone()))
        .timeout(REMOTE_LIMIT);
    let states = match remote.runner.status(&cmd).await {
        Ok(out) => out.stdout,
        Err(e) => return Check::new(check, false, format!("{e:#}")),
    };
    let inactive: Vec<String> = wanted
        .iter()
        .zip(states.lines().chain(std::iter::repeat("unknown")))
        .filter(|(_, state)| state.trim() != "active")
        .map(|(unit, state)| format!("{unit} {}", state.trim()))
        .collect();
    let active = wanted.len() - inactive.len();
    let mut figure = format!("{active}/{} of the stack's units active", wanted.len());
    if !inactive.is_empty() {
        figure.push_str(&format!(" ({})", inactive.join(", ")));
    }
    if !failed.is_empty() {
        figure.push_str(&format!("; failed: {}", failed.join(", ")));
    }
    Check::new(check, inactive.is_empty() && failed.is_empty(), figure)
}

/// The AI stack's checks through Prometheus: targets up, the API's p95.
async fn stack_checks(remote: &Remote<'_>, spec: &StackSpec, checks: &mut Vec<Check>) {
    let gateway = spec.gateway;
    checks.push(
        targets_check(remote, spec)
            .await
            .unwrap_or_else(|e| Check::new("metrics targets", false, format!("{e:#}"))),
    );
    checks.push(match remote.query(gateway, query::API_P95).await {
        Ok(p95) => match p95.first() {
            Some((_, v)) if v.is_finite() => Check::new(
                "API p95",
                *v < P95_LIMIT,
                format!(
                    "{:.0} ms over 5 min (limit {:.0} ms)",
                    v * 1000.0,
                    P95_LIMIT * 1000.0
                ),
            ),
            _ => Check::new("API p95", true, "no request in the last 5 min"),
        },
        Err(e) => Check::new("API p95", false, format!("{e:#}")),
    });
}

/// How long (seconds) after Prometheus loads its config a target of it may still wait for its
/// first scrape, with `interval` seconds between scrapes: the targets reach the scrape loops
/// within 10 s (discovery and the scrape manager each pass updates on at most every 5 s:
/// Prometheus' `discovery/manager.go`, `updatert`, and `scrape/manager.go`, `reloader`), a
/// loop's first scrape starts within one interval (its offset, `scrape/scrape.go`) and ends
/// within the scrape timeout, which is at most the interval.
fn first_scrape_within(interval: u32) -> u64 {
    2 * u64::from(interval) + 10
}

/// Every target Prometheus is configured with up: its `/api/v1/targets`' active targets (the
/// jobs `ai_stack::prometheus_yml` wrote, as Prometheus loaded them), not the series of `up`,
/// which has none for a target until its first scrape. A target not scraped yet holds while
/// Prometheus loaded its config less than [`first_scrape_within`] ago (right after `up` or a
/// restart), and fails after that: it is never scraped ([`config_age`]). So does an empty list,
/// which Prometheus gives for its first seconds.
///
/// Errors: Prometheus not answering, or not as its API says.
async fn targets_check(remote: &Remote<'_>, spec: &StackSpec) -> Result<Check> {
    let data = remote
        .api(spec.gateway, "targets?state=active", &[])
        .await?;
    let targets = data["activeTargets"]
        .as_array()
        .context("Prometheus' targets have no `activeTargets`")?;
    let grace = first_scrape_within(spec.monitoring.scrape_interval);
    // For its first seconds Prometheus lists none (the scrape manager has not taken them yet).
    if targets.is_empty() {
        let ago = config_age(remote, spec.gateway).await?;
        let ago_text = crate::clock::format_age(ago);
        return Ok(if ago < grace {
            Check::new(
                "metrics targets",
                true,
                format!("none listed yet, {ago_text} after Prometheus loaded its config"),
            )
        } else {
            Check::new(
                "metrics targets",
                false,
                format!("none in the {ago_text} since Prometheus loaded its config"),
            )
        });
    }
    let mut up = 0;
    let (mut down, mut waiting) = (Vec::new(), Vec::new());
    for target in targets {
        let label = |name: &str| target["labels"][name].as_str().unwrap_or("");
        let name = format!("{} {}", label("job"), label("instance"));
        // Prometheus' `health` of a target: `up`, `down`, or `unknown` until its first scrape.
        match target["health"].as_str() {
            Some("up") => up += 1,
            Some("unknown") => waiting.push(name),
            _ => down.push(name),
        }
    }
    let mut figure = format!("{up}/{} up", targets.len());
    if !down.is_empty() {
        figure.push_str(&format!(", {} down: {}", down.len(), down.join(", ")));
    }
    let mut never = false;
    if !waiting.is_empty() {
        let ago = config_age(remote, spec.gateway).await?;
        never = ago >= grace;
        let what = if never {
            format!(
                "never scraped in the {} since Prometheus loaded its config",
                crate::clock::format_age(ago)
            )
        } else {
            "not scraped yet".to_string()
        };
        figure.push_str(&format!(
            ", {} {what}: {}",
            waiting.len(),
            waiting.join(", ")
        ));
    }
    Ok(Check::new(
        "metrics targets",
        down.is_empty() && !never,
        figure,
    ))
}

/// How long ago (seconds) Prometheus on the gateway's VM last loaded its config: its own
/// `prometheus_config_last_reload_success_timestamp_seconds`, by its clock against this
/// machine's (as the backup check reads the agent's start).
async fn config_age(remote: &Remote<'_>, gateway: usize) -> Result<u64> {
    let loaded = remote
        .prometheus(gateway, "metrics", &[])
        .await?
        .lines()
        .find_map(|l| {
            l.strip_prefix("prometheus_config_last_reload_success_timestamp_seconds ")?
                .trim()
                .parse::<f64>()
                .ok()
        })
        .context("Prometheus' metrics say not when it loaded its config")?;
    Ok(crate::clock::now_unix().saturating_sub(loaded as u64))
}

/// The agent answering `GET /health` with its token and saying `ok`; then the last backup's
/// age from that answer (the agent's own, not Prometheus' last scrape of it).
async fn agent_checks(
    settings: &Settings,
    state: &DeploymentState,
    spec: &StackSpec,
) -> [Check; 2] {
    let started = Instant::now();
    let answer = async {
        let flags = crate::ops::ai::AgentFlags {
            url: None,
            token_file: None,
            stack: Some(state.id.clone()),
        };
        crate::ops::ai::client(settings, &flags)?.health().await
    }
    .await;
    match answer {
        Ok(health) => [
            Check::new(
                "agent API",
                health.status == "ok",
                format!(
                    "`{}` in {} ms",
                    health.status,
                    started.elapsed().as_millis()
                ),
            ),
            backup_check(
                &health,
                crate::clock::now_unix(),
                spec.monitoring.backup_max_age_hours,
            ),
        ],
        Err(e) => [
            Check::new("agent API", false, format!("{e:#}")),
            Check::new("backup", false, format!("cannot ask the agent: {e:#}")),
        ],
    }
}

/// The last backup no older than `hours`, as the agent answered at `now` (Unix seconds). None
/// yet holds while the agent has run less than `hours`, as `BackupNeverTaken` waits that long
/// before it fires.
fn backup_check(health: &crate::ai::api::Health, now: u64, hours: u32) -> Check {
    let limit = u64::from(hours) * 3600;
    let ago = |at: u64| crate::clock::format_age(now.saturating_sub(at));
    if health.last_backup > 0 {
        return Check::new(
            "backup",
            now.saturating_sub(health.last_backup) <= limit,
            format!("last {} ago (limit {hours} h)", ago(health.last_backup)),
        );
    }
    let ran = now.saturating_sub(health.started_at);
    if ran < limit {
        let due = limit - ran;
        let due = format!("{}h {:02}m", due / 3600, due % 3600 / 60);
        Check::new(
            "backup",
            true,
            format!("none yet, due within {due} (limit {hours} h)"),
        )
    } else {
        Check::new(
            "backup",
            false,
            format!(
                "none since the agent started {} ago (limit {hours} h)",
                ago(health.started_at)
            ),
        )
    }
}

/// The app's own checks, when it declares them: its `healthcheck` hook, run as `up` runs it (on
/// the primary VM or, with `hosts: all`, on each; with the deployment's variables and the app's
/// `environment:`), and its `url` answering a GET with 2xx or 3xx as `up`'s verify phase wants.
async fn app_checks(remote: &Remote<'_>, settings: &Settings, app: &App, checks: &mut Vec<Check>) {
    let Some(outputs) = remote.state.outputs.as_ref() else {
        return;
    };
    let hook = match app.hooks() {
        Ok(hooks) => hooks.into_iter().find(|h| h.kind == HookKind::Healthcheck),
        Err(e) => {
            checks.push(Check::new("app healthcheck", false, format!("{e:#}")));
            return;
        }
    };
    if let Some(hook) = hook {
        let with_env = crate::ops::up::app_environment(settings, app).map(|e| !e.is_empty());
        for (index, vm) in outputs.vms().iter().enumerate() {
            if hook.hosts == HookHosts::Primary && index != 0 {
                continue;
            }
            let check = format!("{} {} healthcheck", vm.name, vm.address);
            let with_env = match &with_env {
                Ok(with_env) => *with_env,
                Err(e) => {
                    checks.push(Check::new(check, false, format!("{e:#}")));
                    continue;
                }
            };
            let env = crate::phase::application::hook_env(
                &app.manifest,
                &remote.state.id,
                outputs,
                vm,
                index,
            );
            let argv = crate::phase::application::hook_argv(&hook, &env, with_env);
            let started = Instant::now();
            let ran = match remote.target(index) {
                Ok(target) => {
                    remote
                        .runner
                        .status(
                            &ssh::ssh(&target, &argv, false)
                                .io(Io::Capture(remote.log.clone()))
                                .timeout(Duration::from_secs(hook.timeout_secs)),
                        )
                        .await
                }
                Err(e) => Err(e),
            };
            let hook_file = format!("deployment/{}", hook.relative);
            let took = crate::clock::format_duration(started.elapsed());
            checks.push(match ran {
                Ok(out) if out.code == Some(0) => {
                    Check::new(check, true, format!("`{hook_file}` passed in {took}"))
                }
                // Its last line of output says why, as the hook put it.
                Ok(out) => {
                    let code = out.code.map_or("a signal".into(), |c| format!("exit {c}"));
                    let said = out.stdout.lines().rfind(|l| !l.trim().is_empty());
                    let said = said.map(|l| format!(": {}", l.trim())).unwrap_or_default();
                    Check::new(
                        check,
                        false,
                        crate::secrets::redact(&format!(
                            "`{hook_file}` failed ({code}) after {took}{said}"
                        )),
                    )
                }
                Err(e) => Check::new(check, false, format!("{e:#}")),
            });
        }
    }
    // As `up` checks it: http:// only.
    let url = app
        .manifest
        .url
        .as_deref()
        .map(|template| crate::phase::verify::app_url(template, &outputs.primary_ip))
        .filter(|url| url.starts_with("http://"));
    if let Some(url) = url {
        let started = Instant::now();
        let got = tokio::task::spawn_blocking({
            let url = url.clone();
            move || crate::phase::verify::http_get(&url, REMOTE_LIMIT)
        })
        .await
        .map_err(anyhow::Error::from)
        .and_then(|r| r);
        checks.push(match got {
            Ok((code, _)) => Check::new(
                "app url",
                crate::phase::verify::answers(code),
                format!(
                    "GET {url} answered {code} in {} ms",
                    started.elapsed().as_millis()
                ),
            ),
            Err(e) => Check::new("app url", false, format!("GET {url}: {e:#}")),
        });
    }
}

/// `--create-test`: a probe project created, its page served, then deleted, within
/// [`PROBE_LIMIT`].
async fn probe(settings: &Settings, state: &DeploymentState) -> Check {
    let started = Instant::now();
    let result = tokio::time::timeout(PROBE_LIMIT, probe_once(settings, state)).await;
    let took = crate::clock::format_duration(started.elapsed());
    match result {
        Ok(Ok(name)) => Check::new(
            "create test",
            true,
            format!("`{name}` created, served and deleted in {took}"),
        ),
        Ok(Err(e)) => Check::new("create test", false, format!("{e:#} (after {took})")),
        Err(_) => Check::new(
            "create test",
            false,
            format!(
                "not done within {}",
                crate::clock::format_duration(PROBE_LIMIT)
            ),
        ),
    }
}

/// The probe: returns its name.
async fn probe_once(settings: &Settings, state: &DeploymentState) -> Result<String> {
    let flags = crate::ops::ai::AgentFlags {
        url: None,
        token_file: None,
        stack: Some(state.id.clone()),
    };
    let agent = crate::ops::ai::client(settings, &flags)?;
    let name = format!(
        "health-probe-{}",
        crate::ids::random_hex(4).context("cannot read /dev/urandom")?
    );
    let project = agent
        .create("a one-page health probe site", Some(&name))
        .await?;
    let mut after = 0;
    let live = loop {
        let seen = agent.events(&project.id, after, 30).await?;
        after = seen.events.last().map_or(after, |e| e.seq);
        match seen.project.status {
            crate::ai::api::ProjectStatus::Live => break seen.project.live_url,
            crate::ai::api::ProjectStatus::Failed => {
                let _ = agent.delete(&name).await;
                anyhow::bail!(
                    "the probe failed: {}",
                    seen.project.error.unwrap_or_default()
                );
            }
            _ => {}
        }
    };
    let url = live.context("the probe is live without an address")?;
    let served = reqwest::get(&url).await.map(|r| r.status());
    let (deleted, report) = agent.delete(&name).await?;
    match served {
        Ok(status) if status.is_success() => {}
        Ok(status) => anyhow::bail!("{url} answered {status}"),
        Err(e) => anyhow::bail!("{url}: {}", e.without_url()),
    }
    if !deleted {
        anyhow::bail!("the probe was not deleted: {:?}", report.failed);
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::backup_check;
    use crate::ai::api::Health;

    fn answer(started_at: u64, last_backup: u64) -> Health {
        Health {
            status: "ok".into(),
            active: 0,
            llm_strategy: "failover".into(),
            llm: Vec::new(),
            started_at,
            last_backup,
        }
    }

    #[test]
    fn no_backup_yet_holds_until_the_agent_has_run_the_allowed_age() {
        let now = 1_000_000;
        let fresh = backup_check(&answer(now - 60, 0), now, 26);
        assert!(fresh.ok, "{fresh:?}");
        assert_eq!(fresh.figure, "none yet, due within 25h 59m (limit 26 h)");
        let old = backup_check(&answer(now - 26 * 3600, 0), now, 26);
        assert!(!old.ok, "{old:?}");
        assert_eq!(
            old.figure,
            "none since the agent started 1d ago (limit 26 h)"
        );
    }

    #[test]
    fn a_backup_holds_while_younger_than_the_allowed_age() {
        let now = 1_000_000;
        let recent = backup_check(&answer(now - 30 * 3600, now - 3), now, 26);
        assert!(recent.ok, "{recent:?}");
        assert_eq!(recent.figure, "last 3s ago (limit 26 h)");
        assert!(!backup_check(&answer(now - 30 * 3600, now - 27 * 3600), now, 26).ok);
    }
}
