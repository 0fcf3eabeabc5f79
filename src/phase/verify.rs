//! Verify and finalize: every VM answers over ssh and, where systemd is PID 1, has finished
//! booting with no failed unit (`systemctl is-system-running` = `running`); when the manifest
//! gives a `url`, an HTTP GET of it succeeds; then the deployment is marked running and its
//! addresses printed.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::phase::Context;
use crate::process::Io;
use crate::state::Status;
use crate::tools::ssh;

/// The app's URL with `{primary_ip}` filled in (IPv6 in brackets).
pub fn app_url(template: &str, primary_ip: &str) -> String {
    let host = if primary_ip.contains(':') {
        format!("[{primary_ip}]")
    } else {
        primary_ip.to_string()
    };
    template.replace("{primary_ip}", &host)
}

/// Whether an app's `url` answering `code` is up: 2xx or 3xx. `up` waits for it, `health`
/// checks it.
pub fn answers(code: u16) -> bool {
    (200..400).contains(&code)
}

/// A minimal HTTP/1.0 GET: returns the status code and body.
pub fn http_get(url: &str, timeout: Duration) -> Result<(u16, String)> {
    let rest = url
        .strip_prefix("http://")
        .context("only http:// URLs can be checked")?;
    let (authority, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(a, p)| (a, format!("/{p}")));
    let address = if authority.rsplit_once(':').is_some_and(|(h, p)| {
        !h.ends_with(':')
            && p.parse::<u16>().is_ok()
            && !h.is_empty()
            && (!h.contains(':') || h.ends_with(']'))
    }) {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let socket = std::net::ToSocketAddrs::to_socket_addrs(&address)?
        .next()
        .context("no address")?;
    let mut stream = TcpStream::connect_timeout(&socket, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {authority}\r\nUser-Agent: tfgrid-compose\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("not an HTTP response")?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((code, body))
}

/// Run on each VM: prints `none` where systemd is not PID 1 (sd_booted(3)), else the system's
/// state once booting is over (`systemctl is-system-running --wait`: `running`, `degraded`...)
/// followed by the failed units' names.
const SYSTEM_STATE: &str = "if [ ! -d /run/systemd/system ]; then echo none; exit 0; fi; \
    state=$(systemctl is-system-running --wait 2>/dev/null) || true; \
    echo \"${state:-unknown}\" $(systemctl list-units --failed --plain --no-legend --no-pager \
    2>/dev/null | cut -d' ' -f1)";

/// Fails unless `answer` (the output of [`SYSTEM_STATE`] on `vm` at `address`) is `running` or
/// `none`, naming the failed units and the command that shows their log.
fn check_system_state(vm: &str, address: &str, answer: &str) -> Result<()> {
    let mut words = answer.split_whitespace();
    let state = words.next().unwrap_or("no answer");
    if matches!(state, "running" | "none") {
        return Ok(());
    }
    let failed: Vec<&str> = words.collect();
    let unit = failed.first().copied().unwrap_or("UNIT");
    let units = if failed.is_empty() {
        "no failed unit".to_string()
    } else {
        format!("failed: {}", failed.join(", "))
    };
    Err(crate::error::UserError::new(
        format!("{vm} ({address}) is `{state}`, not `running` ({units})"),
        format!(
            "its journal: `tfgrid-compose logs --unit {unit} --vm {address}`; \
             `tfgrid-compose ssh --vm {address} -- systemctl list-units` lists every unit"
        ),
    )
    .into())
}

pub async fn run(ctx: &mut Context) -> Result<()> {
    let outputs = ctx.outputs()?.clone();
    let log = ctx.log("verify");
    let vms = std::iter::once(("the primary VM".to_string(), &outputs.primary_ip)).chain(
        outputs
            .secondary_ips
            .iter()
            .map(|vm| (format!("VM {}", vm.name), &vm.ip)),
    );
    // Every VM at once (a VM's answer waits for its boot to finish); answers are read in the
    // VMs' order, so the first VM that fails is the one reported. A dry run prints the commands
    // in that order too, so it runs them one by one.
    let mut checks = Vec::new();
    for (vm, address) in vms {
        let cmd = ssh::ssh(&ctx.ssh_target(address), &["sh", "-c", SYSTEM_STATE], false)
            .io(Io::Capture(log.clone()))
            .timeout(Duration::from_secs(90));
        let check = if ctx.runner.is_dry_run() {
            let done = ctx.runner.run(&cmd).await;
            tokio::spawn(async move { done })
        } else {
            let runner = ctx.runner.clone();
            tokio::spawn(async move { runner.run(&cmd).await })
        };
        checks.push((vm, address, check));
    }
    for (vm, address, check) in checks {
        let output = check
            .await?
            .with_context(|| format!("{vm} ({address}) does not answer over ssh"))?;
        // A dry run shows the command; there is no answer to check.
        if !ctx.runner.is_dry_run() {
            check_system_state(&vm, address, &output.stdout)?;
        }
    }
    if let (Some(template), true) = (&ctx.app.manifest.url, ctx.runner.is_real()) {
        let url = app_url(template, &outputs.primary_ip);
        if url.starts_with("http://") {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let result = tokio::task::spawn_blocking({
                    let url = url.clone();
                    move || http_get(&url, Duration::from_secs(5))
                })
                .await?;
                match result {
                    Ok((code, _)) if answers(code) => break,
                    Ok((code, _)) if Instant::now() > deadline => {
                        bail!("GET {url} answered {code}")
                    }
                    Err(err) if Instant::now() > deadline => {
                        return Err(err.context(format!("GET {url} failed")));
                    }
                    _ => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
            ctx.printer.status("Verified", format!("{url} answers"));
        }
    }
    Ok(())
}

pub fn finalize(ctx: &mut Context) -> Result<()> {
    let outputs = ctx.outputs()?.clone();
    ctx.state.status = Status::Running;
    let url = ctx
        .app
        .manifest
        .url
        .as_deref()
        .map(|t| app_url(t, &outputs.primary_ip));
    ctx.printer.status(
        "Finished",
        format!(
            "`{}` is up at {}{}",
            ctx.app.manifest.name,
            outputs.primary_ip,
            url.as_deref()
                .map(|u| format!(" ({u})"))
                .unwrap_or_default()
        ),
    );
    if !ctx.printer.json() {
        for vm in outputs.vms().iter().skip(1) {
            ctx.printer
                .status("", format!("{} {} ({})", vm.name, vm.address, vm.role));
        }
        if let Some(url) = &url {
            ctx.printer.data(url);
        }
        // An app from the app registry is named by its registry name.
        let app = ctx.state.app.origin.as_ref().map_or_else(
            || crate::process::display_path(&ctx.app.dir),
            |origin| origin.name.clone(),
        );
        // Another environment than `default` is named too, or the commands would reach that one.
        let app = if ctx.state.env == "default" {
            app
        } else {
            format!("{app} --env {}", ctx.state.env)
        };
        let create = if ctx.app.manifest.ai_stack.is_some() {
            "`tfgrid-compose create \"<prompt>\"`, "
        } else {
            ""
        };
        ctx.printer.status(
            "Next",
            format!(
                "{create}`tfgrid-compose status {app}`, `tfgrid-compose ssh \
            --app {app}`, `tfgrid-compose down {app}`"
            ),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_system_state;

    #[test]
    fn system_state() {
        assert!(check_system_state("VM a", "10.1.0.2", "running\n").is_ok());
        assert!(check_system_state("VM a", "10.1.0.2", "none\n").is_ok());
        let err = check_system_state(
            "VM a",
            "10.1.0.2",
            "degraded ssh.service tfgrid-ai-git.service\n",
        )
        .unwrap_err();
        let user = err.downcast_ref::<crate::error::UserError>().unwrap();
        assert_eq!(
            user.message,
            "VM a (10.1.0.2) is `degraded`, not `running` (failed: ssh.service, tfgrid-ai-git.service)"
        );
        assert!(
            user.hint
                .as_deref()
                .unwrap()
                .contains("tfgrid-compose logs --unit ssh.service --vm 10.1.0.2")
        );
        assert!(check_system_state("VM a", "10.1.0.2", "").is_err());
    }

    #[test]
    fn url_template() {
        assert_eq!(
            super::app_url("http://{primary_ip}:8080/", "10.1.0.2"),
            "http://10.1.0.2:8080/"
        );
        assert_eq!(
            super::app_url("http://{primary_ip}/", "fd00::2"),
            "http://[fd00::2]/"
        );
    }
}
