//! `grid_name_proxy` / `grid_fqdn_proxy`: a node contract on a gateway node (a name contract
//! first for a name proxy; names are global); one backend in the grid's formats; nginx on the
//! gateway node serves it. `data grid_gateway_domain`: `<name>.<the node's domain>`.

use anyhow::{Context as _, Result, bail, ensure};

use super::network::octet_b;
use super::{Ctx, routed_here, s, sim_sh};
use crate::sim::ledger::{SimDir, now};
use crate::sim::provider::node_map;
use crate::sim::provider::value::Val;

fn check_backends(planned: &Val) -> Result<()> {
    let backends = planned.get("backends").list();
    ensure!(!backends.is_empty(), "backends list can not be empty");
    ensure!(backends.len() == 1, "only one backend is supported");
    let b = backends[0].str().unwrap_or_default();
    let passthrough = planned.bool_or_false("tls_passthrough");
    let host = if passthrough {
        let (h, port) = b
            .rsplit_once(':')
            .context("a passthrough backend is <ip>:<port>")?;
        ensure!(port.parse::<u16>().is_ok(), "invalid port in backend: {b}");
        h.trim_matches(['[', ']'])
    } else {
        let rest = b
            .strip_prefix("http://")
            .with_context(|| format!("scheme expected to be http, got backend {b}"))?;
        let hostport = rest.split('/').next().unwrap_or_default();
        if let Some(bracketed) = hostport.strip_prefix('[') {
            // [IPv6] or [IPv6]:port
            let (h, after) = bracketed
                .split_once(']')
                .with_context(|| format!("invalid ip address in backend: {hostport}"))?;
            if let Some(p) = after.strip_prefix(':') {
                ensure!(p.parse::<u16>().is_ok(), "invalid port in backend: {b}");
            }
            h
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') => {
                    ensure!(p.parse::<u16>().is_ok(), "invalid port in backend: {b}");
                    h
                }
                _ => hostport,
            }
        }
    };
    let ip: std::net::IpAddr = host
        .parse()
        .map_err(|_| anyhow::anyhow!("invalid ip address in backend: {host}"))?;
    ensure!(!ip.is_loopback(), "invalid ip address in backend: {host}");
    Ok(())
}

/// A gateway node's nginx folder: `nginx.conf`, `sites/<contract>.conf`, pid, logs.
fn gateway_dir(sim: &SimDir, node: u32) -> std::path::PathBuf {
    sim.root.join(format!("gw-{node}"))
}

/// The public IPv4 of a node with a domain (its farmer's public config).
pub fn gateway_ip(node: u32) -> String {
    format!("198.51.100.{node}")
}

/// The gateway node's address block on this machine: 198.18.G.0/24.
fn gateway_block(node: u32) -> u32 {
    200 + node % 50
}

/// Starts, reloads or stops the gateway node's nginx to match its sites.
async fn gateway_sync(sim: &SimDir, node: u32) -> Result<()> {
    let dir = gateway_dir(sim, node);
    let conf = dir.join("nginx.conf").to_string_lossy().into_owned();
    let sites = std::fs::read_dir(dir.join("sites"))
        .map(|d| d.flatten().count())
        .unwrap_or(0);
    if sites == 0 {
        if dir.exists() {
            sim_sh(sim, &[s("gw-down"), s(node), gateway_ip(node), conf], &[]).await?;
            std::fs::remove_dir_all(&dir).ok();
        }
        return Ok(());
    }
    if !dir.join("nginx.pid").exists() && routed_here(&gateway_ip(node)) {
        bail!(
            "{} (the simulated gateway node {node}) is in use by another simulator on this \
                machine; `tfgrid-compose sim reset` there first",
            gateway_ip(node)
        );
    }
    let d = dir.to_string_lossy();
    for sub in [
        "tmp/body",
        "tmp/proxy",
        "tmp/fastcgi",
        "tmp/uwsgi",
        "tmp/scgi",
    ] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    let text = format!(
        "# The simulated gateway node {node}'s nginx (name and fqdn proxies).
pid {d}/nginx.pid;
error_log {d}/error.log;
worker_processes 1;
events {{ worker_connections 256; }}
http {{
  access_log {d}/access.log;
  client_body_temp_path {d}/tmp/body;
  proxy_temp_path {d}/tmp/proxy;
  fastcgi_temp_path {d}/tmp/fastcgi;
  uwsgi_temp_path {d}/tmp/uwsgi;
  scgi_temp_path {d}/tmp/scgi;
  server {{ listen 80 default_server; return 404; }}
  include {d}/sites/*.conf;
}}
"
    );
    crate::files::write_if_changed(&dir.join("nginx.conf"), text.as_bytes(), 0o644)?;
    sim_sh(
        sim,
        &[
            s("gw-up"),
            s(node),
            s(gateway_block(node)),
            gateway_ip(node),
            conf,
        ],
        &[],
    )
    .await
}

/// The data plane of a proxy: its nginx site on the gateway node, a route into its network.
async fn proxy_up(ctx: &Ctx<'_>, state: &Val) -> Result<()> {
    let node = state.int_or_zero("node") as u32;
    let id = state.str_or_empty("id");
    let fqdn = state.str_or_empty("fqdn");
    let backend = state
        .get("backends")
        .list()
        .first()
        .and_then(Val::str)
        .unwrap_or_default()
        .to_string();
    let network = state.str_or_empty("network");
    let link = if network.is_empty() {
        None
    } else {
        let l = ctx.sim.read()?;
        let net = l
            .networks
            .values()
            .find(|n| n.twin_id == ctx.twin_id && n.name == network)
            .with_context(|| format!("network '{network}' not found for this twin"))?
            .clone();
        ensure!(
            net.nodes.contains_key(&node),
            "network '{network}' does not include the gateway node {node}: add it to the network's \
                nodes"
        );
        Some(net)
    };
    let sites = gateway_dir(ctx.sim, node).join("sites");
    std::fs::create_dir_all(&sites)?;
    let site = if state.bool_or_false("tls_passthrough") {
        // TLS passthrough is booked, not served: the simulator has no certificates
        format!(
            "# {fqdn}: TLS passthrough to {backend} is not simulated
"
        )
    } else {
        format!(
            "server {{
  listen 80;
  server_name {fqdn};
  location / {{
    proxy_pass {backend};
    proxy_set_header Host $host;
    proxy_set_header X-Forwarded-For $remote_addr;
  }}
}}
"
        )
    };
    crate::files::write_if_changed(&sites.join(format!("{id}.conf")), site.as_bytes(), 0o644)?;
    gateway_sync(ctx.sim, node).await?;
    if let Some(net) = link {
        sim_sh(
            ctx.sim,
            &[
                s("gw-link"),
                s(node),
                s(net.slot),
                s(octet_b(&net.ip_range)?),
            ],
            &[],
        )
        .await?;
    }
    Ok(())
}

pub(super) async fn proxy_create(ctx: &Ctx<'_>, type_name: &str, planned: &Val) -> Result<Val> {
    let state = proxy_book(ctx, type_name, planned)?;
    if let Err(e) = proxy_up(ctx, &state).await {
        let _ = proxy_destroy(ctx, &state).await;
        return Err(e);
    }
    Ok(state)
}

fn proxy_book(ctx: &Ctx<'_>, type_name: &str, planned: &Val) -> Result<Val> {
    check_backends(planned)?;
    let node_id = planned.int_or_zero("node") as u32;
    let name_proxy = type_name == "grid_name_proxy";
    let name = planned.str_or_empty("name");
    let fqdn_in = planned.str_or_empty("fqdn");
    ctx.sim.with_ledger(|l| {
        let node = l
            .node(node_id)
            .cloned()
            .with_context(|| format!("node {node_id} not found"))?;
        let mut state = planned.clone();
        let mut name_contract = 0;
        if name_proxy {
            let domain = node.domain.clone().with_context(|| {
                format!(
                    "node {node_id} cannot deploy a \
                    gateway name workload as it does not have a domain configured"
                )
            })?;
            // TFChain wants 3+ characters of a-z 0-9 - _, the node at most 36, the provider's
            // schema no hyphen: what passes all three is [a-z0-9_]{3,36}
            let rule = "a gateway name has 3 to 36 characters of a-z, 0-9 and _";
            ensure!(
                name.len() >= 3,
                "NameContractNameTooShort: '{name}' ({rule})"
            );
            ensure!(
                name.len() <= 36
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "NameNotValid: '{name}' ({rule})"
            );
            ensure!(
                !l.names.contains_key(&name),
                "NameExists: the name '{name}' is taken on this \
                grid"
            );
            name_contract = l.open_contract(ctx.twin_id, "name", 0, String::new());
            if let Some(c) = l.contracts.get_mut(&name_contract) {
                c.name = name.clone();
            }
            l.names.insert(name.clone(), name_contract);
            state.set("fqdn", Val::string(format!("{name}.{domain}")));
            state.set("name_contract_id", Val::Int(name_contract as i64));
        } else {
            ensure!(
                node.domain.is_some(),
                "node {node_id} cannot deploy a fqdn workload as it \
                does not have a public ipv4 configured"
            );
            let ok = fqdn_in.split('.').count() >= 2
                && fqdn_in.split('.').all(|p| {
                    !p.is_empty()
                        && p.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                });
            ensure!(
                ok && fqdn_in.rsplit('.').next().is_some_and(|t| t.len() >= 2),
                "invalid fqdn \
                '{fqdn_in}'"
            );
        }
        let kind = if name_proxy {
            "Gateway Name"
        } else {
            "Gateway Fqdn"
        };
        let project = if planned.str_or_empty("solution_type").is_empty() {
            name.clone()
        } else {
            planned.str_or_empty("solution_type")
        };
        let meta =
            serde_json::json!({"version": 3, "type": kind, "name": name, "projectName": project});
        let id = l.open_contract(ctx.twin_id, "node", node_id, meta.to_string());
        if name_contract != 0 {
            // the name contract goes with the node contract
            l.names.insert(name.clone(), id);
            if let Some(c) = l.contracts.get_mut(&name_contract) {
                c.network = id.to_string();
            }
        }
        state.set("id", Val::string(id.to_string()));
        state.set(
            "node_deployment_id",
            node_map([(node_id, id)], |c| Val::Int(c as i64)),
        );
        Ok(state)
    })
}

pub(super) async fn proxy_destroy(ctx: &Ctx<'_>, prior: &Val) -> Result<()> {
    let id: u64 = prior.str_or_empty("id").parse().unwrap_or(0);
    let name_contract = prior.int_or_zero("name_contract_id") as u64;
    ctx.sim.with_ledger(|l| {
        l.cancel(id);
        if name_contract != 0 {
            l.cancel(name_contract);
        }
        Ok(())
    })?;
    let node = prior.int_or_zero("node") as u32;
    let _ = std::fs::remove_file(
        gateway_dir(ctx.sim, node)
            .join("sites")
            .join(format!("{id}.conf")),
    );
    gateway_sync(ctx.sim, node).await
}

/// `data "grid_gateway_domain"`: `<name>.<the node's domain>`, without reserving the name.
pub fn read_data_source(sim: &SimDir, type_name: &str, config: &Val) -> Result<Val> {
    ensure!(
        type_name == "grid_gateway_domain",
        "data source {type_name} is not simulated"
    );
    let node_id = config.int_or_zero("node") as u32;
    let ledger = sim.read()?;
    let node = ledger
        .node(node_id)
        .with_context(|| format!("couldn't get node {node_id} public config"))?;
    let domain = node
        .domain
        .clone()
        .with_context(|| format!("node {node_id} doesn't contain a domain in its public config"))?;
    let mut state = config.clone();
    state.set(
        "fqdn",
        Val::string(format!("{}.{domain}", config.str_or_empty("name"))),
    );
    state.set("id", Val::string(now().to_string()));
    Ok(state)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn backends_follow_the_grids_formats() {
        let p = |b: &str, pass: bool| {
            Val::Map(BTreeMap::from([
                ("backends".into(), Val::List(vec![Val::string(b)])),
                ("tls_passthrough".into(), Val::Bool(pass)),
            ]))
        };
        assert!(check_backends(&p("http://10.1.3.2:8080", false)).is_ok());
        assert!(check_backends(&p("10.1.3.2:443", true)).is_ok());
        // an IPv6 backend without a port (the provider's simple-dynamic example)
        assert!(
            check_backends(&p("http://[4af:bee0:3069:eaf1:ff0f:2a1c:400d:e0e0]", false)).is_ok()
        );
        assert!(check_backends(&p("http://[300:db8::2]:9000", false)).is_ok());
        assert_eq!(
            check_backends(&p("https://10.1.3.2", false))
                .unwrap_err()
                .to_string(),
            "scheme expected to be http, got backend https://10.1.3.2"
        );
        assert!(
            check_backends(&p("http://example.com", false))
                .unwrap_err()
                .to_string()
                .contains("invalid ip address")
        );
        assert!(check_backends(&p("http://127.0.0.1", false)).is_err());
    }
}
