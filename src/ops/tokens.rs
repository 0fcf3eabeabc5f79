//! `projects rotate-tokens [TARGET]`: every token of a deployed AI stack
//! ([`ai_stack::TOKENS`]: the route API's, the agent's, the git host's and the metrics token)
//! replaced while it serves, with no request refused and no scrape failed. The services read a
//! token file again when it is replaced ([`crate::ai::token::TokenFile`]: the first line is sent,
//! every line accepted), so three rounds over the VMs that hold each token
//! ([`ai_stack::token_holders`]) change them with no restart, each file replaced whole (a rename):
//! 1. accept both, `OLD NEW` (the git host's nginx reloaded to let a push through with either;
//!    node_exporter's web config with a user for each metrics token, [`monitoring::node_user`]);
//! 2. send the new one, `NEW OLD`, and this machine's copies; Prometheus' config with the new
//!    metrics token, loaded by a SIGHUP, which returns once every scrape with the old token has
//!    ended; then a grace for requests that took the old one just before;
//! 3. retire the old one, `NEW` (nginx reloaded again; the old token is refused from then on).
//!
//! A failure stops with every side agreeing on a token that works; running it again finishes
//! the change with newer tokens.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use crate::ai::monitoring;
use crate::error::UserError;
use crate::output::Printer;
use crate::phase::ai_stack::{self, REMOTE_CONFIG, TOKENS, git_nginx_conf, token_holders};
use crate::process::{Io, Runner};
use crate::settings::Settings;
use crate::stack::StackSpec;
use crate::tools::ssh::{self, SshTarget};

/// How long clients that read the old token just before round 2 have to finish their request.
const GRACE: Duration = Duration::from_secs(5);
/// How long the git host's nginx, and Prometheus, have to take a new config after a reload.
const RELOAD: Duration = Duration::from_secs(30);
/// Each remote step.
const STEP: Duration = Duration::from_secs(120);

/// A round of the rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Round {
    /// Both tokens accepted, the old one sent.
    Accept,
    /// Both accepted, the new one sent.
    Send,
    /// The new one alone.
    Retire,
}

impl Round {
    const ALL: [Round; 3] = [Round::Accept, Round::Send, Round::Retire];

    /// A token file's lines in this round, the one clients send first.
    fn lines(self, old: &str, new: &str) -> Vec<String> {
        match self {
            Round::Accept => vec![old.into(), new.into()],
            Round::Send => vec![new.into(), old.into()],
            Round::Retire => vec![new.into()],
        }
    }
}

/// The files each VM gets in `round` (VM index → file name in `/etc/tfgrid-ai/` → contents): the
/// tokens it holds and, when the accepted set changes, the git host's nginx config and each VM's
/// node_exporter web config; when the sent metrics token changes, Prometheus' config
/// (`prometheus`, rendered with the new metrics token).
fn round_files(
    spec: &StackSpec,
    round: Round,
    old: &BTreeMap<&'static str, String>,
    new: &BTreeMap<&'static str, String>,
    prometheus: &str,
) -> Result<BTreeMap<usize, BTreeMap<String, String>>> {
    let mut vms: BTreeMap<usize, BTreeMap<String, String>> = BTreeMap::new();
    for (name, holders) in token_holders(spec) {
        let lines = round.lines(&old[name], &new[name]);
        for vm in &holders {
            vms.entry(*vm)
                .or_default()
                .insert(format!("{name}.token"), format!("{}\n", lines.join("\n")));
        }
        if name == "metrics" && round != Round::Send {
            let accepted: Vec<&str> = lines.iter().map(String::as_str).collect();
            let web = monitoring::node_exporter_web(&accepted)?;
            for vm in holders {
                vms.entry(vm)
                    .or_default()
                    .insert(monitoring::NODE_EXPORTER_WEB.into(), web.clone());
            }
        }
    }
    if round == Round::Send {
        vms.entry(spec.gateway)
            .or_default()
            .insert(monitoring::PROMETHEUS_CONFIG.into(), prometheus.into());
    } else {
        let git = round.lines(&old["git"], &new["git"]);
        vms.entry(spec.git)
            .or_default()
            .insert("git-nginx.conf".into(), git_nginx_conf(&git));
    }
    Ok(vms)
}

/// Replaces `files` in the VM's config folder, each whole: uploaded to a folder beside them,
/// given to the services' user, then renamed over the old ones.
async fn replace(
    runner: &Runner,
    target: &SshTarget,
    files: &BTreeMap<String, String>,
    staging: &Path,
    log: &Path,
) -> Result<()> {
    let bundle = staging.join(".rotate");
    if bundle.exists() {
        std::fs::remove_dir_all(&bundle)?;
    }
    crate::files::create_private_dir(&bundle)?;
    for (name, text) in files {
        crate::files::write_atomic(&bundle.join(name), text.as_bytes(), 0o600)?;
    }
    let remote = format!("{REMOTE_CONFIG}/.rotate");
    let mut moves = vec![
        "mv".to_string(),
        "-f".into(),
        "-t".into(),
        REMOTE_CONFIG.into(),
    ];
    moves.extend(files.keys().map(|name| format!("{remote}/{name}")));
    let owner = format!("{0}:{0}", crate::ai::units::USER);
    let on_vm = |argv: Vec<String>| {
        ssh::ssh(target, &argv, false)
            .io(Io::Log(log.to_path_buf()))
            .timeout(STEP)
    };
    runner
        .run(&on_vm(vec!["rm".into(), "-rf".into(), remote.clone()]))
        .await?;
    runner
        .run(&ssh::upload(target, &bundle, REMOTE_CONFIG, log, STEP))
        .await?;
    runner
        .run(&on_vm(vec![
            "chown".into(),
            "-R".into(),
            owner,
            remote.clone(),
        ]))
        .await?;
    runner.run(&on_vm(moves)).await?;
    runner.run(&on_vm(vec!["rmdir".into(), remote])).await?;
    Ok(())
}

/// Whether the git host's nginx at `url` lets a push through with `token` (anything but 401 to
/// the first request of a push, for a repository that need not exist).
async fn push_allowed(url: &str, token: &str) -> Result<bool> {
    let response = reqwest::Client::new()
        .get(format!(
            "{url}/rotate-tokens-probe.git/info/refs?service=git-receive-pack"
        ))
        .header("Authorization", format!("token {token}"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("the git host at {url}: {}", e.without_url()))?;
    Ok(response.status() != reqwest::StatusCode::UNAUTHORIZED)
}

/// Waits (up to [`RELOAD`]) until the git host's nginx at `url` lets a push with `token` through
/// (`allowed`) or refuses it.
async fn until_push(url: &str, token: &str, allowed: bool) -> Result<()> {
    let started = Instant::now();
    while push_allowed(url, token).await? != allowed {
        anyhow::ensure!(
            started.elapsed() < RELOAD,
            "the git host's nginx at {url} did not take its new config within {}s",
            RELOAD.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// `systemctl kill --signal=HUP` to the main process of the stack's unit `name` on `target`:
/// nginx and Prometheus load their configs again.
async fn reload(runner: &Runner, target: &SshTarget, name: &str, log: &Path) -> Result<()> {
    let argv = [
        "systemctl",
        "kill",
        "--signal=HUP",
        "--kill-whom=main",
        &crate::ai::units::unit_name(name),
    ];
    runner
        .run(
            &ssh::ssh(target, &argv, false)
                .io(Io::Log(log.to_path_buf()))
                .timeout(STEP),
        )
        .await?;
    Ok(())
}

/// Prometheus' own figures of its last config load, from its `/metrics` on the gateway VM's
/// loopback: `prometheus_config_last_reload_success_timestamp_seconds` as printed (nanoseconds
/// in a float) and whether `prometheus_config_last_reload_successful` is 1.
async fn prometheus_loaded(
    runner: &Runner,
    target: &SshTarget,
    log: &Path,
) -> Result<(String, bool)> {
    let url = format!(
        "http://127.0.0.1:{}/metrics",
        crate::ai::units::PROMETHEUS_PORT
    );
    let out = runner
        .run(
            &ssh::ssh(target, &["curl", "-sS", "--fail", &url], false)
                .io(Io::Capture(log.to_path_buf()))
                .timeout(STEP),
        )
        .await?;
    let value = |name: &str| {
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .map(|v| v.trim().to_string())
            .with_context(|| format!("Prometheus' /metrics has no `{name}`"))
    };
    Ok((
        value("prometheus_config_last_reload_success_timestamp_seconds")?,
        value("prometheus_config_last_reload_successful")? == "1",
    ))
}

/// Prometheus on `target` loads its config again, and has: its last successful load is a new
/// one. Its reload returns once every scrape loop it replaced has stopped, a scrape under way
/// finishing first (Prometheus 2.42, `scrape/scrape.go`, `scrapePool.reload`; the scrape's
/// context is the pool's, not the loop's), so no scrape with the old token follows.
///
/// Errors: Prometheus refusing the config, or not loading it within [`RELOAD`].
async fn reload_prometheus(runner: &Runner, target: &SshTarget, log: &Path) -> Result<()> {
    let (before, was_ok) = prometheus_loaded(runner, target, log).await?;
    reload(runner, target, "prometheus", log).await?;
    let started = Instant::now();
    loop {
        let (at, ok) = prometheus_loaded(runner, target, log).await?;
        if ok && at != before {
            return Ok(());
        }
        anyhow::ensure!(
            ok || !was_ok,
            "Prometheus refused its new config (its journal on the gateway's VM says why)"
        );
        anyhow::ensure!(
            started.elapsed() < RELOAD,
            "Prometheus did not load its new config within {}s",
            RELOAD.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Prometheus' config for the deployment with the metrics token `token`, as `up` writes it
/// ([`ai_stack::prometheus_yml`]): the VMs' addresses from the state, this machine's as the
/// gateway's VM sees it from the deployment's WireGuard config.
fn prometheus_with(
    state: &crate::state::DeploymentState,
    spec: &StackSpec,
    addresses: &[String],
    token: &str,
) -> Result<String> {
    let wg = state
        .network
        .as_ref()
        .and_then(|n| std::fs::read_to_string(&n.config).ok());
    let layout = ai_stack::Layout {
        addresses,
        private: state
            .outputs
            .as_ref()
            .map_or(&[][..], |o| o.private_ips.as_slice()),
        host_ip: None,
        gateway_host_ip: wg
            .as_deref()
            .zip(addresses.get(spec.gateway))
            .and_then(|(wg, address)| ai_stack::host_address(wg, address)),
        keys: BTreeMap::new(),
        tokens: &BTreeMap::new(),
        programs: &crate::ai::units::Programs::on_vm(ai_stack::REMOTE_BIN),
        tunnel: Default::default(),
    };
    ai_stack::prometheus_yml(spec, &layout, token)
}

/// `projects rotate-tokens [TARGET]`: see the module's doc.
///
/// Errors: a deployment with no AI stack, a VM that cannot be reached or written, the git host's
/// nginx or Prometheus not taking its config.
pub async fn rotate_tokens(
    printer: &Printer,
    settings: &Settings,
    runner: &Runner,
    target: Option<&str>,
) -> Result<()> {
    let target = super::resolve_target(settings, target)?;
    let _lock = super::take_lock(printer, settings, &target.dir, "projects rotate-tokens").await?;
    let state = target.load()?;
    let app = target.load_app(printer, Some(&state))?;
    let (Some(spec), Some(_)) = (&app.manifest.ai_stack, &state.ai_stack) else {
        return Err(UserError::new(
            format!("`{}` has no deployed AI stack", state.app.name),
            "`tfgrid-compose up` an app with an `ai_stack:` section first (see examples/ai-stack)",
        )
        .into());
    };
    let addresses: Vec<String> = state
        .outputs
        .as_ref()
        .map(|o| o.vms().into_iter().map(|vm| vm.address).collect())
        .unwrap_or_default();
    let git_url = format!(
        "http://{}",
        addresses
            .get(spec.git)
            .context("the git host's VM has no address")?
    );
    let old = ai_stack::tokens(&target.dir)?;
    let mut new = BTreeMap::new();
    for name in TOKENS {
        let token = crate::ids::random_hex(32).context("cannot read /dev/urandom for a token")?;
        crate::secrets::register(&token);
        new.insert(name, token);
    }
    let prometheus = prometheus_with(&state, spec, &addresses, &new["metrics"])?;
    let log_dir = target
        .dir
        .run_log_dir(crate::clock::now_unix(), "rotate-tokens");
    target.dir.create_dir(&log_dir)?;
    let log = log_dir.join("rotate-tokens.log");
    let staging = tempfile::tempdir()?;
    let started = Instant::now();
    for round in Round::ALL {
        let what = match round {
            Round::Accept => "the new tokens beside the old ones",
            Round::Send => "the new tokens in use",
            Round::Retire => "the old tokens retired",
        };
        printer.status("Rotating", what);
        for (vm, files) in round_files(spec, round, &old, &new, &prometheus)? {
            let ssh_target = super::inspect::vm_target(&state, Some(&vm.to_string()))?;
            replace(runner, &ssh_target, &files, staging.path(), &log)
                .await
                .with_context(|| format!("cannot replace the tokens on VM {vm}"))?;
            if files.contains_key("git-nginx.conf") {
                reload(runner, &ssh_target, "nginx-git", &log)
                    .await
                    .context("cannot reload the git host's nginx")?;
            }
            if files.contains_key(monitoring::PROMETHEUS_CONFIG) {
                reload_prometheus(runner, &ssh_target, &log)
                    .await
                    .context("cannot reload Prometheus")?;
            }
        }
        match round {
            Round::Accept => until_push(&git_url, &new["git"], true).await?,
            Round::Send => {
                for (name, token) in &new {
                    let file = target.dir.ai_stack_dir().join(format!("{name}.token"));
                    crate::files::write_atomic(&file, format!("{token}\n").as_bytes(), 0o600)?;
                }
                tokio::time::sleep(GRACE).await;
            }
            Round::Retire => until_push(&git_url, &old["git"], false).await?,
        }
    }
    printer.status(
        "Rotated",
        format!(
            "{} tokens of `{}` ({}) in {}",
            TOKENS.len(),
            state.app.name,
            TOKENS.join(", "),
            crate::clock::format_duration(started.elapsed())
        ),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::{Round, round_files};
    use crate::ai::monitoring::node_user;
    use crate::stack::StackSpec;

    #[test]
    fn each_round_writes_every_holder_and_reloads_what_reads_the_sent_or_accepted_set() {
        let spec: StackSpec = serde_yaml::from_str("gateway: 0\nagent: 1\ngit: 2\n").unwrap();
        let token = |c: &str| c.repeat(32);
        let old: BTreeMap<&'static str, String> = [
            ("gateway", token("g")),
            ("agent", token("a")),
            ("git", token("t")),
            ("metrics", token("m")),
        ]
        .into();
        let new: BTreeMap<&'static str, String> = [
            ("gateway", token("G")),
            ("agent", token("A")),
            ("git", token("T")),
            ("metrics", token("M")),
        ]
        .into();
        let files = |round| round_files(&spec, round, &old, &new, "PROMETHEUS").unwrap();
        let names = |round| {
            files(round)
                .into_iter()
                .map(|(vm, files)| {
                    format!("{vm}: {}", files.into_keys().collect::<Vec<_>>().join(" "))
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(Round::Accept),
            [
                "0: gateway.token metrics.token node-exporter-web.yml",
                "1: agent.token gateway.token git.token metrics.token node-exporter-web.yml",
                "2: git-nginx.conf git.token metrics.token node-exporter-web.yml"
            ]
        );
        assert_eq!(
            names(Round::Send),
            [
                "0: gateway.token metrics.token prometheus.yml",
                "1: agent.token gateway.token git.token metrics.token",
                "2: git.token metrics.token"
            ]
        );
        assert_eq!(names(Round::Retire), names(Round::Accept));
        assert_eq!(
            files(Round::Accept)[&1]["git.token"],
            format!("{}\n{}\n", old["git"], new["git"])
        );
        assert_eq!(
            files(Round::Send)[&0]["gateway.token"],
            format!("{}\n{}\n", new["gateway"], old["gateway"])
        );
        assert_eq!(
            files(Round::Retire)[&1]["agent.token"],
            format!("{}\n", new["agent"])
        );
        assert_eq!(files(Round::Send)[&0]["prometheus.yml"], "PROMETHEUS");
        let nginx = |round| files(round)[&2]["git-nginx.conf"].clone();
        assert!(
            nginx(Round::Accept).contains(&old["git"])
                && nginx(Round::Accept).contains(&new["git"])
        );
        assert!(
            !nginx(Round::Retire).contains(&old["git"])
                && nginx(Round::Retire).contains(&new["git"])
        );
        // node_exporter: a user for each accepted metrics token.
        let web = |round| files(round)[&1]["node-exporter-web.yml"].clone();
        let (old_user, new_user) = (node_user(&old["metrics"]), node_user(&new["metrics"]));
        assert!(web(Round::Accept).contains(&old_user) && web(Round::Accept).contains(&new_user));
        assert!(!web(Round::Retire).contains(&old_user) && web(Round::Retire).contains(&new_user));
    }
}
