//! The step of the application phase that installs an AI stack: an app whose manifest has an
//! `ai_stack:` section gets, before its hooks run, the three services configured on its VMs:
//! - tokens for the gateway, agent and git APIs, and the read-only metrics token Prometheus
//!   scrapes with ([`TOKENS`]), generated once per deployment and kept 0600 in
//!   `.tfgrid-compose/<env>/ai-stack/` (the CLI reads the agent's from there);
//! - this binary at `/usr/local/bin/tfgrid-compose` on every stack VM;
//! - `/etc/tfgrid-ai/` on each VM with the configs of the services it runs (gateway and nginx,
//!   agent and its LLM keys, git host API and nginx with git smart HTTP), the tokens they need,
//!   and a systemd unit per process (`tfgrid-ai-NAME.service`, from `ai::units`): on the
//!   gateway's VM also Prometheus and Alertmanager with their configs (`ai::monitoring`), on
//!   every VM node_exporter on its private address.
//!
//! The app's setup hook installs and starts the units (every target's VMs boot systemd). Addresses are recorded in `state.yaml` (`ai_stack:`), tokens never are.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result};
use serde::Serialize;

use crate::ai::agent::{AgentConfig, GatewayClientConfig};
use crate::ai::firewall::{self, Inbound};
use crate::ai::gateway::GatewayConfig;
use crate::ai::githost::GitConfig;
use crate::ai::gitserver::GitServerConfig;
use crate::ai::monitoring::{self, Targets};
use crate::ai::units::{self, Folders, Programs, Service};
use crate::error::UserError;
use crate::process::Io;
use crate::stack::{Monitoring, Provider, StackRecord, StackSpec};
use crate::tools::ssh;

/// Where the configs land on each VM.
pub const REMOTE_CONFIG: &str = "/etc/tfgrid-ai";
/// Where the binary lands on each VM.
pub const REMOTE_BIN: &str = "/usr/local/bin/tfgrid-compose";
/// Where the services keep their data on the VMs.
pub const REMOTE_DATA: &str = "/var/lib/tfgrid-ai";
pub use crate::ai::units::{AGENT_PORT, GATEWAY_PORT, GIT_PORT};
/// The folders the services use on each VM.
const FOLDERS: Folders = Folders {
    config: REMOTE_CONFIG,
    data: REMOTE_DATA,
};
/// The stack's tokens, by the name of their file (`NAME.token`): the route API's, the agent's,
/// the git host's, and the read-only one Prometheus scrapes `/metrics` with; the one list `up`
/// makes them from and `projects rotate-tokens` replaces them by.
pub const TOKENS: [&str; 4] = ["gateway", "agent", "git", "metrics"];

/// The VMs (indices) that hold each token: the VM of its service, and the agent's, which calls
/// them all; the metrics token on every VM (each service and node_exporter check it). [`render`] writes them there, `projects rotate-tokens` replaces them there.
pub fn token_holders(spec: &StackSpec) -> BTreeMap<&'static str, Vec<usize>> {
    TOKENS
        .into_iter()
        .map(|name| {
            let mut vms = match name {
                "gateway" => vec![spec.gateway, spec.agent],
                "git" => vec![spec.git, spec.agent],
                "metrics" => vec![spec.gateway, spec.git, spec.agent],
                _ => vec![spec.agent],
            };
            vms.sort_unstable();
            vms.dedup();
            (name, vms)
        })
        .collect()
}

/// The git host's nginx config, letting a push through with one of `tokens` (the git token's
/// lines: two while it is being rotated).
pub fn git_nginx_conf(tokens: &[String]) -> String {
    crate::ai::nginx::git_conf(
        &FOLDERS.nginx_prefix("git"),
        GIT_PORT,
        tokens,
        &format!("{REMOTE_DATA}/repos"),
        &FOLDERS.fcgiwrap_socket(),
    )
}

/// The deployment's tokens, created on first use and kept.
pub fn tokens(state: &crate::state::StateDir) -> Result<BTreeMap<&'static str, String>> {
    let dir = state.ai_stack_dir();
    crate::files::create_private_dir(&dir)?;
    let mut out = BTreeMap::new();
    for name in TOKENS {
        let file = dir.join(format!("{name}.token"));
        let token = match crate::files::read_secret(&file) {
            Ok(t) if t.len() >= 32 => t,
            _ => {
                let t =
                    crate::ids::random_hex(32).context("cannot read /dev/urandom for a token")?;
                crate::files::write_atomic(&file, t.as_bytes(), 0o600)?;
                t
            }
        };
        crate::secrets::register(&token);
        out.insert(name, token);
    }
    Ok(out)
}

/// `ADDRESS[/PREFIX]` → (address, mask); IPv4 only.
fn ipv4_net(entry: &str) -> Option<(std::net::Ipv4Addr, u32)> {
    let (ip, prefix) = entry.trim().split_once('/').unwrap_or((entry.trim(), "32"));
    let prefix = prefix.parse::<u32>().ok()?.min(32);
    Some((
        ip.parse().ok()?,
        if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - prefix)
        },
    ))
}

/// The comma-separated values of every `KEY = …` line of a WireGuard config.
fn wg_values<'a>(wg_config: &'a str, key: &'a str) -> impl Iterator<Item = &'a str> {
    wg_config
        .lines()
        .filter_map(move |l| l.trim().strip_prefix(key))
        .filter_map(|l| l.trim_start().strip_prefix('='))
        .flat_map(|l| l.split(','))
        .map(str::trim)
}

/// This machine's address as `peer` (an IPv4 address of a VM) sees it through a WireGuard config:
/// the `Address` of the same network (local VMs: one per VM), else, when the tunnel routes to the
/// peer (`AllowedIPs`), the interface's first address (the grid: one address, routed back).
pub fn host_address(wg_config: &str, peer: &str) -> Option<String> {
    let peer = u32::from(peer.parse::<std::net::Ipv4Addr>().ok()?);
    let addresses: Vec<(std::net::Ipv4Addr, u32)> = wg_values(wg_config, "Address")
        .filter_map(ipv4_net)
        .collect();
    if let Some((ip, _)) = addresses
        .iter()
        .find(|(ip, mask)| u32::from(*ip) & mask == peer & mask)
    {
        return Some(ip.to_string());
    }
    let routed = wg_values(wg_config, "AllowedIPs")
        .filter_map(ipv4_net)
        .any(|(net, mask)| u32::from(net) & mask == peer & mask);
    routed
        .then(|| addresses.first().map(|(ip, _)| ip.to_string()))
        .flatten()
}

/// What the firewalls of the VMs take from the deployment's WireGuard config (on this machine):
/// its `Address` networks (this machine's end of the tunnel, the private network's sources) and
/// the ports of its peers' `Endpoint`s (the local pattern's VMs end the tunnel themselves, on
/// 51820; on the grid the node ends it, and the port opened on the VM has nothing behind it).
pub fn tunnel_inbound(wg_config: &str) -> Inbound {
    let private = wg_values(wg_config, "Address")
        .filter(|entry| ipv4_net(entry).is_some())
        .map(|entry| {
            let (ip, mask) = ipv4_net(entry).unwrap_or((std::net::Ipv4Addr::UNSPECIFIED, 0));
            let prefix = mask.count_ones();
            let net = std::net::Ipv4Addr::from(u32::from(ip) & mask);
            if prefix == 32 {
                net.to_string()
            } else {
                format!("{net}/{prefix}")
            }
        })
        .collect();
    let mut wireguard: Vec<u16> = wg_values(wg_config, "Endpoint")
        .filter_map(|endpoint| endpoint.rsplit_once(':')?.1.parse().ok())
        .collect();
    wireguard.sort_unstable();
    wireguard.dedup();
    Inbound { private, wireguard }
}

/// One VM's part of the stack.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct VmFiles {
    /// File name in `/etc/tfgrid-ai/` → contents (all written 0600).
    pub files: BTreeMap<String, String>,
    /// What the VM runs (its units, and the hooks' list in `services`), in start order.
    pub services: Vec<Service>,
}

/// The services' names, `separator` between them.
fn names(services: &[Service], separator: &str) -> String {
    services
        .iter()
        .map(|s| s.name())
        .collect::<Vec<_>>()
        .join(separator)
}

/// The VM (index, 0 = primary) that runs `service`, from the `ai_stack:` section: `None` for the
/// local LLM when the section names providers. [`render`] places the services by it, `logs
/// --service` reads their journal there.
pub fn vm_of(spec: &StackSpec, service: Service) -> Option<usize> {
    match service {
        Service::Gateway => Some(spec.gateway),
        Service::Git => Some(spec.git),
        Service::Agent => Some(spec.agent),
        Service::Llm => spec.llm.is_empty().then_some(spec.agent),
        Service::Monitoring => Some(spec.gateway),
    }
}

/// The units of `service` on a VM (`tfgrid-ai-NAME.service`, its main unit first), as
/// [`render`] writes them.
pub fn unit_names(service: Service) -> Vec<String> {
    let programs = Programs::on_vm(REMOTE_BIN);
    let main = service.main_unit();
    let others = units::render(&[service], &FOLDERS, &programs, &Monitoring::default())
        .into_keys()
        .filter(|name| *name != main);
    std::iter::once(main.clone()).chain(others).collect()
}

/// What `render` needs to know of the deployment.
pub struct Layout<'a> {
    /// Each VM's address as this machine reaches it (primary first).
    pub addresses: &'a [String],
    /// Each VM's address on the deployment's private network (empty: use `addresses`).
    pub private: &'a [String],
    /// This machine's address as the agent's VM sees it, for `{host_ip}` in `llm`.
    pub host_ip: Option<String>,
    /// This machine's address as the gateway's VM sees it, for `{host_ip}` in
    /// `monitoring.alert_webhook`.
    pub gateway_host_ip: Option<String>,
    /// The API key of each provider that has one.
    pub keys: BTreeMap<usize, String>,
    pub tokens: &'a BTreeMap<&'static str, String>,
    /// The programs the systemd units start on the VMs.
    pub programs: &'a Programs,
    /// This machine's end of the deployment's tunnel and the WireGuard endpoints the VMs run
    /// ([`tunnel_inbound`]); `render` adds the VMs' own addresses to the private network.
    pub tunnel: Inbound,
}

/// A service's config file, from the type the service reads it into.
fn yaml(config: &impl Serialize) -> String {
    serde_yaml::to_string(config).unwrap_or_default()
}

fn remote(name: &str) -> PathBuf {
    Path::new(REMOTE_CONFIG).join(name)
}

/// VM `i`'s address on the private network ([`Layout::private`]), else the one this machine
/// reaches.
fn private_address(layout: &Layout, i: usize) -> String {
    layout
        .private
        .get(i)
        .filter(|p| !p.is_empty())
        .unwrap_or(&layout.addresses[i])
        .clone()
}

/// The `monitoring:` settings with `{host_ip}` of `alert_webhook` filled in.
fn monitoring_settings(spec: &StackSpec, layout: &Layout) -> Result<Monitoring> {
    let mut settings = spec.monitoring.clone();
    if let Some(url) = settings.alert_webhook.as_mut()
        && url.contains("{host_ip}")
    {
        let host = layout.gateway_host_ip.as_deref().ok_or_else(|| {
            UserError::new(
                "ai_stack.monitoring.alert_webhook uses {host_ip}, but the gateway's VM is not \
                    reached through a WireGuard tunnel of this deployment",
                "give the webhook's address instead of {host_ip}",
            )
        })?;
        *url = url.replace("{host_ip}", host);
    }
    Ok(settings)
}

/// Prometheus' config on the gateway's VM, scraping with the metrics token `token`: each
/// service and each VM's node_exporter on its private address. [`render`] writes it, and
/// `projects rotate-tokens` again with the new token (it needs only the addresses of `layout`).
///
/// Errors: `{host_ip}` in `alert_webhook` without a tunnel to the gateway's VM.
pub fn prometheus_yml(spec: &StackSpec, layout: &Layout, token: &str) -> Result<String> {
    let private = |i: usize| private_address(layout, i);
    let targets = Targets {
        services: vec![
            (
                Service::Gateway.name(),
                format!("{}:{GATEWAY_PORT}", private(spec.gateway)),
            ),
            (
                Service::Agent.name(),
                format!("{}:{AGENT_PORT}", private(spec.agent)),
            ),
            // Through the git host's nginx, which passes `/metrics` to the API on loopback.
            (Service::Git.name(), format!("{}:80", private(spec.git))),
        ],
        nodes: (0..layout.addresses.len())
            .map(|i| format!("{}:{}", private(i), units::NODE_EXPORTER_PORT))
            .collect(),
    };
    Ok(monitoring::prometheus_config(
        &monitoring_settings(spec, layout)?,
        &targets,
        REMOTE_CONFIG,
        token,
    ))
}

/// nginx's common top: runs as whatever user starts it, everything under `dir`.
/// The configs of every VM that runs part of the stack, and what `state.yaml` records.
pub fn render(
    spec: &StackSpec,
    layout: &Layout,
) -> Result<(BTreeMap<usize, VmFiles>, StackRecord)> {
    let n = layout.addresses.len();
    for (what, index) in [
        ("gateway", spec.gateway),
        ("agent", spec.agent),
        ("git", spec.git),
    ] {
        if index >= n {
            return Err(UserError::new(
                format!("ai_stack.{what} is VM {index}, but the deployment has {n} VM(s)"),
                "use VM indices from 0 (the primary); the local pattern needs `config: {vm_count: \
                    3}` for three VMs",
            )
            .into());
        }
    }
    let private = |i: usize| private_address(layout, i);
    let rate = spec.api_rate_limit.unwrap_or(10);
    let public_url = spec
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", layout.addresses[spec.gateway]))
        .trim_end_matches('/')
        .to_string();
    let record = StackRecord {
        agent_api: format!("http://{}:{AGENT_PORT}", layout.addresses[spec.agent]),
        gateway_api: format!("http://{}:{GATEWAY_PORT}", private(spec.gateway)),
        git_api: format!("http://{}", private(spec.git)),
        public_url: public_url.clone(),
    };
    let mut vms: BTreeMap<usize, VmFiles> = BTreeMap::new();
    let token = |name: &str| layout.tokens.get(name).cloned().unwrap_or_default();

    // Gateway: the route API, and nginx serving the sites and passing /git/ to the git host.
    let gw_dir = format!("{REMOTE_DATA}/gateway");
    let gw_nginx = FOLDERS.nginx_prefix("gateway");
    let gw = vms.entry(spec.gateway).or_default();
    gw.files.insert(
        "gateway.yaml".into(),
        yaml(&GatewayConfig {
            listen: format!("{}:{GATEWAY_PORT}", private(spec.gateway)),
            token_file: remote("gateway.token"),
            metrics_token_file: Some(remote(monitoring::METRICS_TOKEN)),
            state_dir: PathBuf::from(&gw_dir),
            nginx: std::iter::once("nginx".to_string())
                .chain(FOLDERS.nginx_args("gateway"))
                .collect(),
            rate_limit: rate,
        }),
    );
    gw.files.insert(
        "gateway-nginx.conf".into(),
        crate::ai::nginx::gateway_conf(&gw_nginx, &gw_dir, &private(spec.git)),
    );

    // Git host: the repository API behind nginx, which also serves the repositories over smart
    // HTTP and lets a push through only with the token.
    let git = vms.entry(spec.git).or_default();
    git.files.insert(
        "git.yaml".into(),
        yaml(&GitServerConfig {
            listen: format!("127.0.0.1:{GIT_PORT}"),
            token_file: remote("git.token"),
            metrics_token_file: Some(remote(monitoring::METRICS_TOKEN)),
            root: PathBuf::from(format!("{REMOTE_DATA}/repos")),
            public_url: format!("{public_url}/git"),
            rate_limit: rate.max(20),
        }),
    );
    git.files
        .insert("git-nginx.conf".into(), git_nginx_conf(&[token("git")]));

    // Agent: the project API, its LLM chain, the git host and the gateway as clients.
    // No provider named: the local model, served on the agent's VM.
    let local = spec.llm.is_empty();
    let chain = if local {
        vec![crate::stack::local_model::provider()]
    } else {
        spec.llm.clone()
    };
    let mut providers = Vec::new();
    for (i, p) in chain.iter().enumerate() {
        let base_url = if p.base_url.contains("{host_ip}") {
            let host = layout.host_ip.as_deref().ok_or_else(|| {
                UserError::new(
                    format!(
                        "ai_stack.llm[{i}].base_url uses {{host_ip}}, but the agent's VM is \
                        not reached through a WireGuard tunnel of this deployment"
                    ),
                    "give the LLM's address instead of {host_ip}",
                )
            })?;
            p.base_url.replace("{host_ip}", host)
        } else {
            p.base_url.clone()
        };
        let api_key_file = layout
            .keys
            .contains_key(&i)
            .then(|| remote(&format!("llm-{i}.key")));
        providers.push(Provider {
            base_url,
            api_key_file,
            api_key_env: None,
            ..p.clone()
        });
    }
    let agent = vms.entry(spec.agent).or_default();
    if local {
        agent.files.insert(
            "install-llm.sh".into(),
            crate::stack::local_model::INSTALLER.into(),
        );
    }
    for (i, key) in &layout.keys {
        agent.files.insert(format!("llm-{i}.key"), key.clone());
    }
    let agent_listen = format!("{}:{AGENT_PORT}", layout.addresses[spec.agent]);
    let agent_private = format!("{}:{AGENT_PORT}", private(spec.agent));
    let config = AgentConfig {
        also_listen: (agent_private != agent_listen)
            .then(|| agent_private.clone())
            .into_iter()
            .collect(),
        listen: agent_listen,
        token_file: remote("agent.token"),
        metrics_token_file: Some(remote(monitoring::METRICS_TOKEN)),
        database: PathBuf::from(format!("{REMOTE_DATA}/agent/projects.db")),
        max_concurrent_projects: spec
            .max_concurrent_projects
            .unwrap_or_else(crate::ai::agent::default_concurrent),
        max_attempts: spec
            .max_attempts
            .unwrap_or_else(crate::ai::agent::default_attempts),
        rate_limit: rate,
        llm: providers,
        llm_strategy: spec.llm_strategy,
        git: GitConfig::Gitea {
            url: record.git_api.clone(),
            org: spec.org.clone(),
            token_file: remote("git.token"),
        },
        gateway: GatewayClientConfig {
            api: record.gateway_api.clone(),
            token_file: remote("gateway.token"),
            public_url: public_url.clone(),
            verify_url: Some(format!("http://{}", private(spec.gateway))),
        },
    };
    agent.files.insert("agent.yaml".into(), yaml(&config));
    // Monitoring: Prometheus and Alertmanager on the gateway's VM, scraping each service and
    // each VM's node_exporter over the private network with the metrics token.
    let settings = &monitoring_settings(spec, layout)?;
    let gw = vms.entry(spec.gateway).or_default();
    for (name, text) in [
        (
            monitoring::PROMETHEUS_CONFIG,
            prometheus_yml(spec, layout, &token("metrics"))?,
        ),
        (monitoring::ALERT_RULES, monitoring::alert_rules(settings)),
        (
            monitoring::ALERTMANAGER_CONFIG,
            monitoring::alertmanager_config(settings),
        ),
    ] {
        gw.files.insert(name.into(), text);
    }
    let node_web = monitoring::node_exporter_web(&[&token("metrics")])?;
    for (name, holders) in token_holders(spec) {
        for vm in holders {
            let files = &mut vms.entry(vm).or_default().files;
            files.insert(format!("{name}.token"), token(name));
        }
    }
    for service in Service::ALL {
        if let Some(vm) = vm_of(spec, service) {
            vms.entry(vm).or_default().services.push(service);
        }
    }
    // The firewall's private network: this machine's end of the tunnel and every VM.
    let mut inbound = layout.tunnel.clone();
    for i in 0..n {
        for address in [layout.addresses[i].clone(), private(i)] {
            if !inbound.private.contains(&address) && ipv4_net(&address).is_some() {
                inbound.private.push(address);
            }
        }
    }
    for (i, vm) in vms.iter_mut() {
        vm.files.insert(
            "services".into(),
            format!("{}\n", names(&vm.services, "\n")),
        );
        vm.files
            .insert(monitoring::NODE_EXPORTER_WEB.into(), node_web.clone());
        // The setup hook installs, enables and starts these.
        vm.files.extend(units::render(
            &vm.services,
            &FOLDERS,
            layout.programs,
            settings,
        ));
        let listen = format!("{}:{}", private(*i), units::NODE_EXPORTER_PORT);
        let (name, unit) = units::node_exporter(&listen, &FOLDERS, layout.programs);
        vm.files.insert(name, unit);
        vm.files.insert(
            firewall::RULES.into(),
            firewall::rules(&vm.services, &inbound, &FOLDERS, layout.programs),
        );
        vm.files
            .insert(firewall::UNIT.into(), firewall::unit(&FOLDERS));
        vm.files.insert(firewall::JAIL.into(), firewall::jail());
    }
    Ok((vms, record))
}

/// Each provider's key, read on this machine (never put in argv or a log).
fn provider_keys(spec: &StackSpec, env: &crate::env::Env) -> Result<BTreeMap<usize, String>> {
    let mut keys = BTreeMap::new();
    for (i, p) in spec.llm.iter().enumerate() {
        let key = match (&p.api_key_file, &p.api_key_env) {
            (Some(file), _) => Some(crate::files::read_secret(file).map_err(|e| {
                UserError::new(
                    format!("ai_stack.llm[{i}].api_key_file: {e:#}"),
                    "point it at a file holding the key",
                )
            })?),
            (None, Some(var)) => Some(env.get(var).map(str::to_string).ok_or_else(|| {
                UserError::new(
                    format!("ai_stack.llm[{i}].api_key_env names `{var}`, which is not set"),
                    format!("export {var}=… before `up`"),
                )
            })?),
            (None, None) => None,
        };
        if let Some(key) = key.filter(|k| !k.is_empty()) {
            crate::secrets::register(&key);
            keys.insert(i, key);
        }
    }
    Ok(keys)
}

/// Configures the stack on the VMs: tokens, binary, configs. Records the addresses in the state.
pub async fn deploy(ctx: &mut super::Context, spec: &StackSpec) -> Result<()> {
    let outputs = ctx.outputs()?.clone();
    let mut addresses: Vec<String> = outputs.vms().into_iter().map(|vm| vm.address).collect();
    let dry = ctx.runner.is_dry_run();
    if dry {
        // A dry run knows no VMs yet: one placeholder address per VM the stack names.
        let needed = spec.gateway.max(spec.agent).max(spec.git) + 1;
        addresses.extend((addresses.len()..needed).map(|i| format!("<vm{i} address>")));
    }
    // A dry run writes nothing, tokens included: it shows the commands with placeholders.
    let tokens = if dry {
        TOKENS
            .into_iter()
            .map(|n| (n, "<token>".to_string()))
            .collect()
    } else {
        tokens(&ctx.dir)?
    };
    // This machine's address as the VM `vm` sees it.
    let wg = ctx
        .state
        .network
        .as_ref()
        .and_then(|n| std::fs::read_to_string(&n.config).ok());
    let host_ip_for = |vm: usize| {
        if dry {
            return Some("<host_ip>".to_string());
        }
        wg.as_deref()
            .zip(addresses.get(vm))
            .and_then(|(wg, address)| host_address(wg, address))
    };
    let host_ip = host_ip_for(spec.agent);
    let gateway_host_ip = host_ip_for(spec.gateway);
    let tunnel = if dry {
        Default::default()
    } else {
        wg.as_deref().map(tunnel_inbound).unwrap_or_default()
    };
    let keys = provider_keys(spec, &ctx.settings.env)?;
    let layout = Layout {
        addresses: &addresses,
        private: &outputs.private_ips,
        host_ip,
        gateway_host_ip,
        keys,
        tokens: &tokens,
        programs: &Programs::on_vm(REMOTE_BIN),
        tunnel,
    };
    let (vms, record) = render(spec, &layout)?;
    let exe = std::env::current_exe()
        .context("cannot find this program's own executable to install on the VMs")?;
    let log = ctx.log("ai-stack");
    let staging = tempfile::tempdir()?;
    for (index, files) in &vms {
        let address = &addresses[*index];
        ctx.printer.status(
            "Installing",
            format!("AI stack ({}) on {address}", names(&files.services, ", ")),
        );
        let bundle = staging.path().join(format!("vm-{index}"));
        if !dry {
            crate::files::create_private_dir(&bundle)?;
            for (name, contents) in &files.files {
                crate::files::write_atomic(&bundle.join(name), contents.as_bytes(), 0o600)?;
            }
        }
        let target = ctx.ssh_target(address);
        let quick = Duration::from_secs(300);
        let clean = ssh::ssh(
            &target,
            &["rm", "-rf", REMOTE_CONFIG, &format!("{REMOTE_BIN}.new")],
            false,
        )
        .io(Io::Log(log.clone()))
        .timeout(quick);
        ctx.runner
            .run(&clean)
            .await
            .context("cannot clear the AI stack's config folder on the VM")?;
        ctx.runner
            .run(&ssh::upload(&target, &bundle, REMOTE_CONFIG, &log, quick))
            .await
            .context("cannot upload the AI stack's configs")?;
        ctx.runner
            .run(&ssh::upload(
                &target,
                &exe,
                &format!("{REMOTE_BIN}.new"),
                &log,
                quick,
            ))
            .await
            .context("cannot upload tfgrid-compose to the VM")?;
        let install = ssh::ssh(
            &target,
            &["mv", "-f", &format!("{REMOTE_BIN}.new"), REMOTE_BIN],
            false,
        )
        .io(Io::Log(log.clone()))
        .timeout(quick);
        ctx.runner
            .run(&install)
            .await
            .context("cannot install tfgrid-compose on the VM")?;
    }
    ctx.state.ai_stack = Some(record);
    ctx.save()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::{Inbound, Layout, host_address, render, tunnel_inbound};
    use crate::ai::units::Programs;
    use crate::stack::StackSpec;

    #[test]
    fn finds_this_machines_address_on_the_agents_network() {
        let wg = "[Interface]\nPrivateKey = x\nAddress = 10.101.0.1/24, 10.101.1.1/24, \
            10.101.2.1/24\n\n[Peer]\n";
        assert_eq!(
            host_address(wg, "10.101.1.2").as_deref(),
            Some("10.101.1.1")
        );
        assert_eq!(host_address(wg, "10.9.1.2"), None);
        assert_eq!(
            host_address("Address = 100.64.0.1/16\n", "100.64.3.4").as_deref(),
            Some("100.64.0.1")
        );
        // The grid: one /32 address, the VMs' network routed through the peer.
        let grid = "[Interface]\nAddress = 100.64.20.2/32\n[Peer]\nAllowedIPs = 10.20.0.0/16, \
            100.64.0.0/16\n";
        assert_eq!(
            host_address(grid, "10.20.3.2").as_deref(),
            Some("100.64.20.2")
        );
        assert_eq!(host_address(grid, "10.21.3.2"), None);
        // The firewall's view: the tunnel's networks here, the VMs' WireGuard ports.
        let local = "[Interface]\nAddress = 10.101.0.1/24, 10.101.1.1/24\n[Peer]\nEndpoint = \
            10.201.0.2:51820\n[Peer]\nEndpoint = 10.201.1.2:51820\n";
        assert_eq!(
            tunnel_inbound(local),
            Inbound {
                private: vec!["10.101.0.0/24".into(), "10.101.1.0/24".into()],
                wireguard: vec![51820],
            }
        );
        assert_eq!(tunnel_inbound(grid).private, ["100.64.20.2"]);
    }

    #[test]
    fn renders_each_vms_configs_with_tokens_only_where_needed() {
        let spec: StackSpec = serde_yaml::from_str(
            "llm:\n  - {base_url: 'http://{host_ip}:9000/v1', model: m, \
                api_key_env: K}\n  - {base_url: 'http://x/v1', model: n}\n",
        )
        .unwrap();
        let tokens: BTreeMap<&'static str, String> = [
            ("gateway", "g".repeat(64)),
            ("agent", "a".repeat(64)),
            ("git", "t".repeat(64)),
        ]
        .into();
        let addresses = ["10.1.0.2".to_string(), "10.1.1.2".into(), "10.1.2.2".into()];
        let private = [
            "10.1.250.10".to_string(),
            "10.1.250.11".into(),
            "10.1.250.12".into(),
        ];
        let layout = Layout {
            addresses: &addresses,
            private: &private,
            host_ip: Some("10.1.1.1".into()),
            gateway_host_ip: Some("10.1.0.1".into()),
            keys: [(0, "sk-secret".into())].into(),
            tokens: &tokens,
            programs: &Programs::on_vm(super::REMOTE_BIN),
            tunnel: Inbound {
                private: vec!["10.1.1.0/24".into()],
                wireguard: vec![51820],
            },
        };
        let (vms, record) = render(&spec, &layout).unwrap();
        assert_eq!(record.agent_api, "http://10.1.1.2:7702");
        assert_eq!(record.public_url, "http://10.1.0.2");
        let names = |i: usize| vms[&i].files.keys().cloned().collect::<Vec<_>>().join(" ");
        // Every VM: the metrics token, node_exporter and its web config; the gateway's also
        // Prometheus and Alertmanager with their configs.
        assert_eq!(
            names(0),
            "alertmanager.yml alerts.yml fail2ban.local firewall.nft gateway-nginx.conf \
                gateway.token gateway.yaml metrics.token node-exporter-web.yml prometheus.yml \
                services tfgrid-ai-alertmanager.service tfgrid-ai-firewall.service \
                tfgrid-ai-gateway.service tfgrid-ai-nginx-gateway.service \
                tfgrid-ai-node-exporter.service tfgrid-ai-prometheus.service"
        );
        assert_eq!(
            names(1),
            "agent.token agent.yaml fail2ban.local firewall.nft gateway.token git.token llm-0.key \
                metrics.token node-exporter-web.yml services tfgrid-ai-agent.service \
                tfgrid-ai-firewall.service tfgrid-ai-node-exporter.service"
        );
        assert_eq!(
            names(2),
            "fail2ban.local firewall.nft git-nginx.conf git.token git.yaml metrics.token \
                node-exporter-web.yml services tfgrid-ai-fcgiwrap.service \
                tfgrid-ai-firewall.service tfgrid-ai-git.service tfgrid-ai-nginx-git.service \
                tfgrid-ai-node-exporter.service"
        );
        // The firewall's private network: the tunnel's end here, then every VM's addresses.
        assert!(
            vms[&1].files["firewall.nft"].contains(
                "elements = { 10.1.1.0/24, 10.1.0.2, 10.1.250.10, 10.1.1.2, 10.1.250.11, 10.1.2.2, \
                 10.1.250.12 }"
            ),
            "{}",
            vms[&1].files["firewall.nft"]
        );
        assert_eq!(vms[&0].files["services"], "gateway\nmonitoring\n");
        assert!(
            vms[&1].files["tfgrid-ai-node-exporter.service"]
                .contains("--web.listen-address=10.1.250.11:9100")
        );
        let prometheus = &vms[&0].files["prometheus.yml"];
        for target in [
            "10.1.250.10:7701",
            "10.1.250.11:7702",
            "10.1.250.12:80",
            "10.1.250.12:9100",
        ] {
            assert!(prometheus.contains(target), "{target}: {prometheus}");
        }
        let agent = &vms[&1].files["agent.yaml"];
        assert!(
            agent.contains("http://10.1.1.1:9000/v1")
                && agent.contains("/etc/tfgrid-ai/llm-0.key")
                && !agent.contains("sk-secret"),
            "{agent}"
        );
        assert!(
            agent.contains("http://10.1.250.12") && agent.contains("http://10.1.250.10:7701"),
            "{agent}"
        );
        // Each file is what its service reads.
        serde_yaml::from_str::<crate::ai::gateway::GatewayConfig>(&vms[&0].files["gateway.yaml"])
            .unwrap();
        serde_yaml::from_str::<crate::ai::agent::AgentConfig>(agent).unwrap();
        serde_yaml::from_str::<crate::ai::gitserver::GitServerConfig>(&vms[&2].files["git.yaml"])
            .unwrap();
        assert!(vms[&2].files["git-nginx.conf"].contains(&format!("token {}", "t".repeat(64))));
        assert!(vms[&0].files["gateway-nginx.conf"].contains("proxy_pass http://10.1.250.12/;"));
        // One VM for everything is fine; an index past the VMs is not.
        let one = StackSpec {
            agent: 0,
            git: 0,
            ..spec.clone()
        };
        let (vms, _) = render(&one, &layout).unwrap();
        assert_eq!(
            vms[&0].files["services"],
            "gateway\ngit\nagent\nmonitoring\n"
        );
        let far = StackSpec { git: 3, ..spec };
        assert!(
            render(&far, &layout)
                .unwrap_err()
                .to_string()
                .contains("ai_stack.git is VM 3, but the deployment has 3 VM(s)")
        );
    }

    /// No `llm:`: the agent's VM runs the local model first, with its installer, and the agent
    /// asks it on that VM's loopback; no key goes anywhere.
    #[test]
    fn a_stack_without_providers_serves_the_local_model_on_the_agents_vm() {
        let spec: StackSpec = serde_yaml::from_str("gateway: 0\n").unwrap();
        assert!(crate::stack::check(&spec).is_ok());
        let tokens: BTreeMap<&'static str, String> = [
            ("gateway", "g".into()),
            ("agent", "a".into()),
            ("git", "t".into()),
        ]
        .into();
        let addresses = ["10.1.0.2".to_string(), "10.1.1.2".into(), "10.1.2.2".into()];
        let layout = Layout {
            addresses: &addresses,
            private: &[],
            host_ip: None,
            gateway_host_ip: None,
            keys: BTreeMap::new(),
            tokens: &tokens,
            programs: &Programs::on_vm(super::REMOTE_BIN),
            tunnel: Inbound::default(),
        };
        let (vms, _) = render(&spec, &layout).unwrap();
        assert_eq!(vms[&1].files["services"], "llm\nagent\n");
        assert!(vms[&1].files["install-llm.sh"].contains("MODEL_SHA256="));
        let agent: crate::ai::agent::AgentConfig =
            serde_yaml::from_str(&vms[&1].files["agent.yaml"]).unwrap();
        assert_eq!(agent.llm.len(), 1);
        assert_eq!(agent.llm[0].base_url, "http://127.0.0.1:8081/v1");
        assert_eq!(agent.llm[0].model, "qwen2.5-coder-1.5b");
        assert!(agent.llm[0].api_key_file.is_none());
        for vm in [0, 2] {
            assert!(!vms[&vm].files["services"].contains("llm"));
        }
    }
}
