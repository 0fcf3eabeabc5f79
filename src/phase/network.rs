//! Network: when the primary address is a WireGuard one, the pattern's `wg_config` is brought up
//! with `wg-quick` under a free interface name (an existing interface is never touched).

use std::path::Path;

use anyhow::{Context as _, Result};

use crate::error::UserError;
use crate::pattern::contract::IpType;
use crate::phase::Context;
use crate::state::NetworkRecord;
use crate::tools::wg;

/// Whether a network interface of this name exists on the host.
pub fn interface_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// `tfgc` + 8 hex of the deployment id, then `tfgc…1`, `tfgc…2`, … until one is free.
pub fn choose_interface(id: &str, taken: impl Fn(&str) -> bool) -> Option<String> {
    let base = format!("tfgc{}", crate::ids::ShortId::of(id));
    std::iter::once(base.clone())
        .chain((1..100).map(|n| format!("{base}{n}")))
        .find(|name| wg::valid_interface_name(name) && !taken(name))
}

pub async fn run(ctx: &mut Context) -> Result<()> {
    let outputs = ctx.outputs()?.clone();
    if outputs.primary_ip_type != IpType::Wireguard {
        ctx.printer.status(
            "Skipping",
            format!(
                "network: primary address is {:?}, no tunnel needed",
                outputs.primary_ip_type
            ),
        );
        return Ok(());
    }
    if let Some(net) = &ctx.state.network
        && interface_exists(&net.interface)
    {
        ctx.printer.status(
            "Reusing",
            format!("wireguard interface `{}`", net.interface),
        );
        return Ok(());
    }
    let source = ctx.dir.tunnel_source();
    let config_text = if ctx.runner.is_dry_run() {
        String::new()
    } else {
        std::fs::read_to_string(&source).with_context(|| {
            format!("failed to read the WireGuard config `{}`", source.display())
        })?
    };
    let name = match &ctx.state.network {
        Some(net) => net.interface.clone(),
        None => choose_interface(&ctx.state.id, interface_exists).ok_or_else(|| {
            UserError::new(
                "no free WireGuard interface name",
                "remove stale `tfgc*` interfaces with `ip link del NAME`",
            )
        })?,
    };
    let config = ctx.dir.tunnel_config(&name);
    ctx.dir.write(&config, config_text.as_bytes(), 0o600)?;
    ctx.state.network = Some(NetworkRecord {
        interface: name.clone(),
        config: config.clone(),
    });
    ctx.save()?;
    ctx.printer
        .status("Connecting", format!("wireguard interface `{name}`"));
    let log = ctx.log("network");
    crate::tools::require_tool(
        "wg-quick",
        "the pattern's primary address is a WireGuard one",
    )?;
    ctx.runner
        .run(&wg::up(&config, &log))
        .await
        .context("wg-quick up failed")?;
    ctx.runner
        .run(&wg::show(&name, &log))
        .await
        .with_context(|| {
            format!("`wg-quick up` succeeded but interface `{name}` does not answer")
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::choose_interface;

    #[test]
    fn never_clobbers_an_existing_interface() {
        let id = "0123456789abcdef";
        assert_eq!(choose_interface(id, |_| false).unwrap(), "tfgc01234567");
        assert_eq!(
            choose_interface(id, |n| n == "tfgc01234567").unwrap(),
            "tfgc012345671"
        );
        assert_eq!(
            choose_interface(id, |n| n.len() < 14).unwrap(),
            "tfgc0123456710"
        );
        assert!(choose_interface(id, |_| true).is_none());
    }
}
