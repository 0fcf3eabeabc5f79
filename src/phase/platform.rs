//! Platform: an inventory generated from the outputs (grouped by role), a generated
//! `ansible.cfg`, an extra-vars file (outputs and the manifest's config, no secrets), then
//! `ansible-playbook` on the pattern's `platform/site.yml`.

use std::time::Duration;

use anyhow::{Context as _, Result};

use crate::pattern::contract::IpType;
use crate::phase::Context;
use crate::tools::ansible::{self, Host};

/// The variables every playbook and hook sees about the deployment.
pub fn deployment_vars(ctx: &Context) -> Result<serde_json::Value> {
    let outputs = ctx.outputs()?;
    let mut vars = serde_json::Map::new();
    for (key, value) in &ctx.variables {
        vars.insert(key.clone(), value.clone());
    }
    vars.insert("app_name".into(), ctx.app.manifest.name.clone().into());
    vars.insert(
        "app_version".into(),
        ctx.app.manifest.version.clone().unwrap_or_default().into(),
    );
    vars.insert("deployment_id".into(), ctx.state.id.clone().into());
    vars.insert(
        "deployment_name".into(),
        outputs.deployment_name.clone().into(),
    );
    vars.insert("primary_ip".into(), outputs.primary_ip.clone().into());
    vars.insert(
        "primary_ip_type".into(),
        serde_json::to_value(outputs.primary_ip_type)?,
    );
    vars.insert("node_ids".into(), serde_json::to_value(&outputs.node_ids)?);
    vars.insert(
        "secondary_ips".into(),
        serde_json::to_value(&outputs.secondary_ips)?,
    );
    vars.insert(
        "private_ips".into(),
        serde_json::to_value(&outputs.private_ips)?,
    );
    if let Some(m) = &outputs.mycelium_ip {
        vars.insert("mycelium_ip".into(), m.clone().into());
    }
    if ctx.pattern.manifest.format == crate::pattern::compat::Format::Bash {
        // the extra vars the bash tool gave its patterns' playbooks (tfgrid-compose-bash.md §4.2
        // step 14): the address of each kind it knows
        let kind = match outputs.primary_ip_type {
            IpType::Ipv4 => "ipv4_address",
            IpType::Ipv6 => "ipv6_address",
            IpType::Wireguard => "wireguard_address",
            IpType::Mycelium => "mycelium_address",
        };
        vars.entry(kind)
            .or_insert_with(|| outputs.primary_ip.clone().into());
        if let Some(m) = &outputs.mycelium_ip {
            vars.entry("mycelium_address")
                .or_insert_with(|| m.clone().into());
        }
    }
    Ok(serde_json::Value::Object(vars))
}

pub async fn run(ctx: &mut Context) -> Result<()> {
    let outputs = ctx.outputs()?.clone();
    let hosts: Vec<Host> = outputs
        .vms()
        .into_iter()
        .map(|vm| Host {
            name: vm.name,
            address: vm.address,
            role: vm.role,
        })
        .collect();
    ctx.dir.write(
        &ctx.dir.inventory(),
        ansible::inventory(&hosts, ctx.state.ssh.port).as_bytes(),
        0o600,
    )?;
    let config = ansible::config(hosts.len().max(5));
    ctx.dir
        .write(&ctx.dir.ansible_cfg(), config.as_bytes(), 0o600)?;
    let vars = serde_json::to_string_pretty(&deployment_vars(ctx)?)?;
    ctx.dir
        .write(&ctx.dir.extra_vars(), vars.as_bytes(), 0o600)?;

    let log = ctx.log("platform");
    let playbook = ctx.pattern.playbook();
    let _spinner = ctx.printer.spinner("platform", Some(&log));
    ctx.printer.status(
        "Configuring",
        format!(
            "platform (ansible-playbook {} on {} host{})",
            playbook
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            hosts.len(),
            if hosts.len() == 1 { "" } else { "s" }
        ),
    );
    let cmd = ansible::playbook(
        &ctx.dir.inventory(),
        &ctx.dir.extra_vars(),
        &playbook,
        &ctx.dir.ansible_cfg(),
        &ctx.ssh_target(&outputs.primary_ip),
        &log,
        Duration::from_secs(3600),
    );
    ctx.runner
        .run(&cmd)
        .await
        .context("ansible-playbook failed")?;
    Ok(())
}
