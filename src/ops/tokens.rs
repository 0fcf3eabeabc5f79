//! `projects rotate-tokens [TARGET]`: every token of a deployed AI stack
//! ([`ai_stack::TOKENS`]) but the metrics token ([`ROTATED`]) replaced while it serves, with no
//! request refused. The services read a
//! token file again when it is replaced ([`crate::ai::token::TokenFile`]: the first line is sent,
//! every line accepted), so three rounds over the VMs that hold each token
//! ([`ai_stack::token_holders`]) change them with no restart, each file replaced whole (a rename):
//! 1. accept both, `OLD NEW` (the git host's nginx reloaded to let a push through with either);
//! 2. send the new one, `NEW OLD`, and this machine's copies; then a grace for requests that
//!    took the old one just before;
//! 3. retire the old one, `NEW` (nginx reloaded again; the old token is refused from then on).
//!
//! A failure stops with every side agreeing on a token that works; running it again finishes
//! the change with newer tokens.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use crate::error::UserError;
use crate::output::Printer;
use crate::phase::ai_stack::{REMOTE_CONFIG, git_nginx_conf, token_holders};
use crate::process::{Io, Runner};
use crate::settings::Settings;
use crate::stack::StackSpec;
use crate::tools::ssh::{self, SshTarget};

/// The tokens this command replaces: all of [`crate::phase::ai_stack::TOKENS`] but `metrics`, which Prometheus reads
/// whole from its file (two lines would be sent as one token) and node_exporter holds as one
/// bcrypt hash: a new one takes `up --from application`.
pub const ROTATED: [&str; 3] = ["gateway", "agent", "git"];

/// How long clients that read the old token just before round 2 have to finish their request.
const GRACE: Duration = Duration::from_secs(5);
/// How long the git host's nginx has to take a new config after its reload.
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
/// tokens it holds and, on the git host when the accepted set changes, its nginx config.
fn round_files(
    spec: &StackSpec,
    round: Round,
    old: &BTreeMap<&'static str, String>,
    new: &BTreeMap<&'static str, String>,
) -> BTreeMap<usize, BTreeMap<String, String>> {
    let mut vms: BTreeMap<usize, BTreeMap<String, String>> = BTreeMap::new();
    for (name, holders) in token_holders(spec) {
        if !ROTATED.contains(&name) {
            continue;
        }
        let lines = round.lines(&old[name], &new[name]);
        for vm in holders {
            vms.entry(vm)
                .or_default()
                .insert(format!("{name}.token"), format!("{}\n", lines.join("\n")));
        }
    }
    if round != Round::Send {
        let git = round.lines(&old["git"], &new["git"]);
        vms.entry(spec.git)
            .or_default()
            .insert("git-nginx.conf".into(), git_nginx_conf(&git));
    }
    vms
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

/// `projects rotate-tokens [TARGET]`: see the module's doc.
///
/// Errors: a deployment with no AI stack, a VM that cannot be reached or written, the git host's
/// nginx not taking its config.
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
    let old = crate::phase::ai_stack::tokens(&target.dir)?;
    let mut new = BTreeMap::new();
    for name in ROTATED {
        let token = crate::ids::random_hex(32).context("cannot read /dev/urandom for a token")?;
        crate::secrets::register(&token);
        new.insert(name, token);
    }
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
        for (vm, files) in round_files(spec, round, &old, &new) {
            let ssh_target = super::inspect::vm_target(&state, Some(&vm.to_string()))?;
            replace(runner, &ssh_target, &files, staging.path(), &log)
                .await
                .with_context(|| format!("cannot replace the tokens on VM {vm}"))?;
            if files.contains_key("git-nginx.conf") {
                let reload = [
                    "systemctl",
                    "kill",
                    "--signal=HUP",
                    "--kill-whom=main",
                    &crate::ai::units::unit_name("nginx-git"),
                ];
                runner
                    .run(
                        &ssh::ssh(&ssh_target, &reload, false)
                            .io(Io::Log(log.clone()))
                            .timeout(STEP),
                    )
                    .await
                    .context("cannot reload the git host's nginx")?;
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
            ROTATED.len(),
            state.app.name,
            ROTATED.join(", "),
            crate::clock::format_duration(started.elapsed())
        ),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::{Round, round_files};
    use crate::stack::StackSpec;

    #[test]
    fn every_rotated_token_is_a_stack_token() {
        for name in super::ROTATED {
            assert!(crate::phase::ai_stack::TOKENS.contains(&name), "{name}");
        }
    }

    #[test]
    fn each_round_writes_every_holder_and_the_git_hosts_nginx_when_the_accepted_set_changes() {
        let spec: StackSpec = serde_yaml::from_str("gateway: 0\nagent: 1\ngit: 2\n").unwrap();
        let token = |c: &str| c.repeat(32);
        let old: BTreeMap<&'static str, String> = [
            ("gateway", token("g")),
            ("agent", token("a")),
            ("git", token("t")),
        ]
        .into();
        let new: BTreeMap<&'static str, String> = [
            ("gateway", token("G")),
            ("agent", token("A")),
            ("git", token("T")),
        ]
        .into();
        let names = |round| {
            round_files(&spec, round, &old, &new)
                .into_iter()
                .map(|(vm, files)| {
                    format!("{vm}: {}", files.into_keys().collect::<Vec<_>>().join(" "))
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(Round::Accept),
            [
                "0: gateway.token",
                "1: agent.token gateway.token git.token",
                "2: git-nginx.conf git.token"
            ]
        );
        assert_eq!(names(Round::Send)[2], "2: git.token");
        let files = |round| round_files(&spec, round, &old, &new);
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
        let nginx = |round| files(round)[&2]["git-nginx.conf"].clone();
        assert!(
            nginx(Round::Accept).contains(&old["git"])
                && nginx(Round::Accept).contains(&new["git"])
        );
        assert!(
            !nginx(Round::Retire).contains(&old["git"])
                && nginx(Round::Retire).contains(&new["git"])
        );
    }
}
