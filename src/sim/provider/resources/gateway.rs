//! `grid_name_proxy` / `grid_fqdn_proxy`: a node contract, for a name proxy on a node with a
//! domain after a name contract (names are global), for an fqdn proxy on any node with a public
//! IPv4; one backend in the grid's formats; the grid's checks in its order; nginx on the node
//! serves it. `data grid_gateway_domain`: `<name>.<the node's domain>`.

use anyhow::{Context as _, Result, bail, ensure};

use super::deployment::{name_problem, unique};
use super::network::octet_b;
use super::{Ctx, LoadError, routed_here, s, sim_sh};
use crate::sim::ledger::{Ledger, Node, SimDir, now};
use crate::sim::provider::node_map;
use crate::sim::provider::value::Val;

// --- the grid's checks, in its order ---------------------------------------------------------
//
// A name or fqdn proxy meets the provider's and the grid client's checks in this order (provider
// internal/provider/resource_gateway_name.go:87-112, resource_gateway_fqdn.go:85-110 at b7d1a8c;
// grid-client deployer/gateway_name_deployer.go:31-103, gateway_fqdn_deployer.go:30-101 at
// dbe67bef; zos 172a0a29):
// 1. the provider reads it: each backend in the form its `tls_passthrough` wants
//    (gateway_name.go:116-132 over zos pkg/gridtypes/zos/gw.go:21-68) ([`load_checks`];
//    `couldn't load name gateway data with error: …`);
// 2. the client's Validate (workloads/gateway_name.go:72-88, gateway_fqdn.go:68-106): name (≤ 50),
//    node, network name, the fqdn (fqdn proxies), one backend; then the node answers (name:
//    node/node.go:462-473), and has a public IPv4 (fqdn: gateway_fqdn_deployer.go:40-52)
//    ([`client_checks`]; `couldn't deploy name gateway with error: …`);
// 3. name proxies: TFChain's name contract (gateway_name_deployer.go:74-83; pallet-smart-contract
//    grid_contract.rs:167-173, 758-776: 3 to 64 characters of a-z 0-9 - _, not taken);
// 4. the deployer's Validate (deployer/deployer.go:669-674): a name proxy's node has a domain;
// 5. the contract (deployer.go:157-160: none of another twin on a rented node), the node's own
//    validation (deployer.go:164-171; zos pkg/provision/engine.go:1006-1009 at e35a5fd8: names
//    ≤ 36), then the workload's result (deployer.go:178-181; zos pkg/gateway/gateway.go:557-677:
//    an fqdn outside the node's own domain, the `network` on the node) ([`node_checks`]).
// From stage 4 on, a name proxy's error reads `failed to deploy gateway name id: map[]: …` and
// its name contract is cancelled (gateway_name_deployer.go:85-91).

/// zos's `Backend.Valid` (pkg/gridtypes/zos/gw.go:21-68): `ip:port` with TLS passthrough,
/// `http://ip[:port]` without, a loopback address refused then; Go's `url.Parse` and
/// `net.SplitHostPort` texts for what they refuse.
fn backend_problem(b: &str, passthrough: bool) -> Option<String> {
    if passthrough {
        let parse = |why: &str| Some(format!("failed to parse backend {b} with error: {why}"));
        // net.SplitHostPort: a host, then `:port`; an IPv6 host in brackets
        let split = match b.strip_prefix('[') {
            Some(rest) => rest
                .split_once("]:")
                .filter(|(_, p)| !p.contains(':'))
                .ok_or("missing port in address"),
            None => match b.rsplit_once(':') {
                Some((h, _)) if h.contains(':') => Err("too many colons in address"),
                Some(hp) => Ok(hp),
                None => Err("missing port in address"),
            },
        };
        let (host, port) = match split {
            Ok(hp) => hp,
            Err(why) => {
                return parse(&format!(
                    "failed to parse backend {b} with error: address {b}: {why}"
                ));
            }
        };
        if host.parse::<std::net::IpAddr>().is_err() {
            return parse("invalid ip");
        }
        match port.parse::<u64>() {
            Err(_) if port.bytes().all(|c| c.is_ascii_digit()) && !port.is_empty() => {
                parse(&format!("port '{port}' must be <= 65535"))
            }
            Err(_) => parse(&format!("invalid port in backend: {port}")),
            Ok(p) if p > 65_535 => parse(&format!("port '{port}' must be <= 65535")),
            Ok(_) => None,
        }
    } else {
        let parse = |why: &str| {
            Some(format!(
                "failed to parse backend with error: parse \"{b}\": {why}"
            ))
        };
        // Go's url.Parse: a scheme is a letter, then letters, digits, + - . before ':'
        let scheme_end = b.find(':').filter(|i| {
            b.as_bytes()[0].is_ascii_alphabetic()
                && b[..*i]
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"+-.".contains(&c))
        });
        let Some(i) = scheme_end else {
            if b.split('/').next().is_some_and(|seg| seg.contains(':')) {
                return parse("first path segment in URL cannot contain colon");
            }
            return Some("scheme expected to be http".into());
        };
        if !b[..i].eq_ignore_ascii_case("http") {
            return Some("scheme expected to be http".into());
        }
        let authority = b[i + 1..]
            .strip_prefix("//")
            .map(|r| r.split(['/', '?', '#']).next().unwrap_or_default())
            .unwrap_or_default();
        let hostport = authority.rsplit('@').next().unwrap_or_default();
        let (host, port) = match hostport.strip_prefix('[') {
            Some(rest) => match rest.split_once(']') {
                Some((h, after)) => (h, after.strip_prefix(':')),
                None => return parse("missing ']' in host"),
            },
            None => match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            },
        };
        if let Some(p) = port
            && !p.bytes().all(|c| c.is_ascii_digit())
        {
            return parse(&format!("invalid port \":{p}\" after host"));
        }
        match host.parse::<std::net::IpAddr>() {
            Ok(ip) if !ip.is_loopback() => None,
            _ => Some(format!("invalid ip address in backend: {host}")),
        }
    }
}

/// Stage 1, the provider's `validateBackends` (gateway_name.go:116-132) on each backend.
fn load_checks(planned: &Val) -> Result<(), LoadError> {
    let passthrough = planned.bool_or_false("tls_passthrough");
    for b in planned.get("backends").list() {
        if let Some(why) = backend_problem(b.str().unwrap_or_default(), passthrough) {
            let form = if passthrough {
                "backend with tls passthrough should be in the form ip:port"
            } else {
                "backends without tls passthrough should be in the form http://ip[:port]"
            };
            return Err(LoadError(format!("{form}: {why}")));
        }
    }
    Ok(())
}

/// The grid client's fqdn rule (workloads/gateway_fqdn.go:15; zos gw_fqdn.go:11):
/// `^([a-zA-Z0-9-_]+\.)+[a-zA-Z0-9-_]{2,}$`.
fn valid_fqdn(fqdn: &str) -> bool {
    let label = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let parts: Vec<&str> = fqdn.split('.').collect();
    parts.len() >= 2 && parts.iter().all(|p| label(p)) && parts.last().is_some_and(|t| t.len() >= 2)
}

/// Stage 2, the grid client's Validate of the proxy and of its node. Returns the node.
fn client_checks(l: &Ledger, planned: &Val, name_proxy: bool) -> Result<Node> {
    let node_id = planned.int_or_zero("node") as u32;
    let network = planned.str_or_empty("network");
    let fqdn = planned.str_or_empty("fqdn");
    let backends = planned.get("backends").list();
    if let Some(p) = name_problem(&planned.str_or_empty("name"), 50) {
        bail!("gateway name is invalid: {p}");
    }
    ensure!(
        node_id != 0,
        "node ID should be a positive integer not zero"
    );
    if !network.trim().is_empty()
        && let Some(p) = name_problem(&network, 50)
    {
        bail!("gateway network is invalid: {p}");
    }
    ensure!(name_proxy || valid_fqdn(&fqdn), "fqdn {fqdn} is invalid");
    ensure!(!backends.is_empty(), "backends list can not be empty");
    ensure!(backends.len() == 1, "only one backend is supported");
    let node = l.node(node_id).cloned();
    let Some(node) = node else {
        if name_proxy {
            bail!("could not get node {node_id} client: failed to get node {node_id}: not found");
        }
        bail!(
            "failed to get node client with ID {node_id}: failed to get node {node_id}: not found"
        );
    };
    ensure!(
        name_proxy || !node.public_ipv4.is_empty(),
        "node {node_id} doesn't contain a public IP in its public config"
    );
    Ok(node)
}

/// Stage 3, TFChain's name contract rules (pallet-smart-contract grid_contract.rs:167-173 and
/// 758-776, runtime `MaxNameContractNameLength` 64), as the client reports a failed extrinsic
/// (tfchain-client-go contract.go:348-367).
fn name_contract_checks(l: &Ledger, name: &str) -> Result<()> {
    let rule = if name.len() < 3 {
        Some("NameContractNameTooShort")
    } else if name.len() > 64 {
        Some("NameContractNameTooLong")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        Some("NameNotValid")
    } else if l.names.contains_key(name) {
        Some("NameExists")
    } else {
        None
    };
    match rule {
        Some(r) => bail!("failed to create contract: {r}"),
        None => Ok(()),
    }
}

/// Stages 4 and 5, from the deployer's Validate to the workload's result on the node. `contract`
/// is the node contract the workload would have (for the grid's message).
fn node_checks(
    l: &Ledger,
    ctx: &Ctx<'_>,
    node: &Node,
    planned: &Val,
    name_proxy: bool,
    contract: u64,
) -> Result<()> {
    let node_id = node.node_id;
    let name = planned.str_or_empty("name");
    ensure!(
        !name_proxy || node.domain.is_some(),
        "node {node_id} cannot deploy a gateway name workload as it does not have a domain \
            configured"
    );
    let renter = l.rented_by(node);
    ensure!(
        renter == 0 || renter == ctx.twin_id,
        "failed to create contract on node {node_id}: NodeNotAvailableToDeploy"
    );
    if let Some(p) = name_problem(&name, 36) {
        bail!("error sending deployment to node {node_id}: name '{name}' is invalid: {p}");
    }
    let failed = |why: String| {
        anyhow::anyhow!(
            "error waiting deployment: workload {name} within deployment {contract} failed with \
                error: failed to setup {} proxy: {why}",
            if name_proxy { "name" } else { "fqdn" }
        )
    };
    let fqdn = planned.str_or_empty("fqdn");
    if !name_proxy
        && let Some(domain) = &node.domain
        && fqdn.ends_with(domain.as_str())
    {
        return Err(failed(
            "can't create a fqdn workload with a subdomain of the gateway's managed domain".into(),
        ));
    }
    let network = planned.str_or_empty("network");
    if !network.is_empty()
        && !l.networks.values().any(|n| {
            n.twin_id == ctx.twin_id && n.name == network && n.nodes.contains_key(&node_id)
        })
    {
        let id = unique(&ctx.twin_id.to_string(), &network);
        return Err(failed(format!(
            "failed to get user network: couldn't load network with id ({id}): open \
                /var/run/cache/networkd/networks/{id}: no such file or directory"
        )));
    }
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
            .find(|n| n.twin_id == ctx.twin_id && n.name == network && n.nodes.contains_key(&node))
            .context("the network on the gateway node was checked at booking")?
            .clone();
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

/// Checks (in the grid's order, above) and books a proxy: its contracts and its state.
fn proxy_book(ctx: &Ctx<'_>, type_name: &str, planned: &Val) -> Result<Val> {
    load_checks(planned)?;
    let name_proxy = type_name == "grid_name_proxy";
    let name = planned.str_or_empty("name");
    ctx.sim.with_ledger(|l| {
        let node = client_checks(l, planned, name_proxy)?;
        let node_id = node.node_id;
        // the ids the contracts would get, for the grid's messages
        let next = l.next_contract;
        if name_proxy {
            name_contract_checks(l, &name)?;
            // the name contract comes first; what fails after it cancels it
            node_checks(l, ctx, &node, planned, true, next + 2)
                .context("failed to deploy gateway name id: map[]")?;
        } else {
            node_checks(l, ctx, &node, planned, false, next + 1)?;
        }
        let mut state = planned.clone();
        let mut name_contract = 0;
        if let (true, Some(domain)) = (name_proxy, &node.domain) {
            name_contract = l.open_contract(ctx.twin_id, "name", 0, String::new());
            if let Some(c) = l.contracts.get_mut(&name_contract) {
                c.name = name.clone();
            }
            l.names.insert(name.clone(), name_contract);
            state.set("fqdn", Val::string(format!("{name}.{domain}")));
            state.set("name_contract_id", Val::Int(name_contract as i64));
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
    // data_source_gateway_domain.go:55-67 at b7d1a8c: the node client, then its domain
    let node = ledger.node(node_id).with_context(|| {
        format!(
            "failed to get node client with ID {node_id}: failed to get node {node_id}: not found"
        )
    })?;
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
        assert_eq!(backend_problem("http://10.1.3.2:8080", false), None);
        assert_eq!(backend_problem("10.1.3.2:443", true), None);
        assert_eq!(backend_problem("[300:db8::2]:443", true), None);
        // an IPv6 backend without a port (the provider's simple-dynamic example)
        assert_eq!(
            backend_problem("http://[4af:bee0:3069:eaf1:ff0f:2a1c:400d:e0e0]", false),
            None
        );
        assert_eq!(backend_problem("http://[300:db8::2]:9000", false), None);
        let problem = |b: &str, pass: bool| backend_problem(b, pass).unwrap_or_default();
        assert_eq!(
            problem("https://10.1.3.2", false),
            "scheme expected to be http"
        );
        assert_eq!(
            problem("http://example.com", false),
            "invalid ip address in backend: example.com"
        );
        assert_eq!(
            problem("http://127.0.0.1", false),
            "invalid ip address in backend: 127.0.0.1"
        );
        assert_eq!(
            problem("10.1.3.2:8080", false),
            "failed to parse backend with error: parse \"10.1.3.2:8080\": first path segment in \
                URL cannot contain colon"
        );
        assert_eq!(
            problem("10.1.3.2:99999", true),
            "failed to parse backend 10.1.3.2:99999 with error: port '99999' must be <= 65535"
        );
        assert_eq!(
            problem("example.com:443", true),
            "failed to parse backend example.com:443 with error: invalid ip"
        );
        assert_eq!(
            problem("300:db8::2:443", true),
            "failed to parse backend 300:db8::2:443 with error: failed to parse backend \
                300:db8::2:443 with error: address 300:db8::2:443: too many colons in address"
        );
    }

    /// `data grid_gateway_domain` fails as the provider's data source does: the node, then its
    /// domain.
    #[test]
    fn the_gateway_domain_data_source_has_the_providers_words() {
        super::super::with_test_ctx(|ctx| {
            ctx.sim.with_ledger(|_| Ok(())).unwrap();
            let read = |node: i64| {
                let config = Val::Map(BTreeMap::from([
                    ("name".into(), Val::string("web")),
                    ("node".into(), Val::Int(node)),
                ]));
                read_data_source(ctx.sim, "grid_gateway_domain", &config)
            };
            assert_eq!(
                read(93).unwrap_err().to_string(),
                "failed to get node client with ID 93: failed to get node 93: not found"
            );
            assert_eq!(
                read(11).unwrap_err().to_string(),
                "node 11 doesn't contain a domain in its public config"
            );
            assert_eq!(
                read(13).unwrap().str_or_empty("fqdn"),
                "web.gent01.sim.grid.tf"
            );
        });
    }

    /// Each error the simulator raises for a name or fqdn proxy comes at the grid's stage and
    /// with the grid's words: each case breaks two rules, and the one the grid checks first is
    /// reported.
    #[test]
    fn gateway_checks_run_in_the_grids_order() {
        super::super::with_test_ctx(|ctx| {
            ctx.sim
                .with_ledger(|l| {
                    l.rent(4242, 12)?;
                    l.names.insert("taken".into(), 1);
                    Ok(())
                })
                .unwrap();
            let first_error = |kind: &str, pairs: &[(&str, Val)]| -> String {
                let mut proxy = BTreeMap::from([
                    ("name".to_string(), Val::string("gw1")),
                    ("node".to_string(), Val::Int(13)),
                    (
                        "backends".to_string(),
                        Val::List(vec![Val::string("http://10.1.3.2:9000")]),
                    ),
                    ("fqdn".to_string(), Val::string("example.com")),
                ]);
                for (k, v) in pairs {
                    proxy.insert(k.to_string(), v.clone());
                }
                match proxy_book(ctx, kind, &Val::Map(proxy)) {
                    Err(e) if e.is::<LoadError>() => format!("load: {e:#}"),
                    Err(e) => format!("{e:#}"),
                    Ok(_) => "booked".into(),
                }
            };
            let name = "grid_name_proxy";
            let fqdn = "grid_fqdn_proxy";
            let s = |x: &str| Val::string(x);
            let long = ("name", s(&"g".repeat(40)));
            let longer = ("name", s(&"g".repeat(60)));
            let absent = ("node", Val::Int(93));
            let hidden = ("node", Val::Int(14));
            let no_domain = ("node", Val::Int(11));
            let missing = ("network", s("nowhere"));
            // the provider reads the backends first
            assert_eq!(
                first_error(
                    name,
                    &[
                        ("backends", Val::List(vec![s("https://10.1.3.2")])),
                        longer.clone()
                    ]
                ),
                "load: backends without tls passthrough should be in the form http://ip[:port]: \
                    scheme expected to be http"
            );
            assert_eq!(
                first_error(
                    fqdn,
                    &[
                        ("backends", Val::List(vec![s("10.1.3.2")])),
                        ("tls_passthrough", Val::Bool(true)),
                        ("fqdn", s("bad")),
                    ]
                ),
                "load: backend with tls passthrough should be in the form ip:port: failed to \
                    parse backend 10.1.3.2 with error: failed to parse backend 10.1.3.2 with \
                    error: address 10.1.3.2: missing port in address"
            );
            // the client's Validate: name, fqdn, backends, then the node
            assert_eq!(
                first_error(name, &[longer, absent.clone()]),
                "gateway name is invalid: name cannot exceed 50 characters"
            );
            assert_eq!(
                first_error(fqdn, &[("fqdn", s("bad")), absent.clone()]),
                "fqdn bad is invalid"
            );
            assert_eq!(
                first_error(
                    name,
                    &[
                        (
                            "backends",
                            Val::List(vec![s("http://10.1.3.2"), s("http://10.1.3.3")])
                        ),
                        absent.clone()
                    ]
                ),
                "only one backend is supported"
            );
            assert_eq!(
                first_error(name, &[absent.clone(), ("name", s("ab"))]),
                "could not get node 93 client: failed to get node 93: not found"
            );
            assert_eq!(
                first_error(fqdn, &[absent, missing.clone()]),
                "failed to get node client with ID 93: failed to get node 93: not found"
            );
            assert_eq!(
                first_error(fqdn, &[hidden, ("fqdn", s("x.gent01.sim.grid.tf"))]),
                "node 14 doesn't contain a public IP in its public config"
            );
            // TFChain's name contract, before the deployer's and the node's checks
            assert_eq!(
                first_error(name, &[("name", s("ab")), no_domain.clone()]),
                "failed to create contract: NameContractNameTooShort"
            );
            assert_eq!(
                first_error(name, &[("name", s("Gw1")), no_domain.clone()]),
                "failed to create contract: NameNotValid"
            );
            assert_eq!(
                first_error(name, &[("name", s("taken")), missing.clone()]),
                "failed to create contract: NameExists"
            );
            // the deployer's Validate, then the contract, then the node, then the workload
            assert_eq!(
                first_error(name, &[no_domain.clone(), long.clone()]),
                "failed to deploy gateway name id: map[]: node 11 cannot deploy a gateway name \
                    workload as it does not have a domain configured"
            );
            assert_eq!(
                first_error(fqdn, &[("node", Val::Int(12)), long.clone()]),
                "failed to create contract on node 12: NodeNotAvailableToDeploy"
            );
            assert_eq!(
                first_error(name, &[long.clone(), missing.clone()]),
                format!(
                    "failed to deploy gateway name id: map[]: error sending deployment to node \
                        13: name '{}' is invalid: name cannot exceed 36 characters",
                    "g".repeat(40)
                )
            );
            assert_eq!(
                first_error(
                    fqdn,
                    &[("fqdn", s("x.gent01.sim.grid.tf")), missing.clone()]
                ),
                "error waiting deployment: workload gw1 within deployment 1002 failed with error: \
                    failed to setup fqdn proxy: can't create a fqdn workload with a subdomain of \
                    the gateway's managed domain"
            );
            let id = unique("7001", "nowhere");
            assert_eq!(
                first_error(name, &[missing]),
                format!(
                    "failed to deploy gateway name id: map[]: error waiting deployment: workload \
                        gw1 within deployment 1003 failed with error: failed to setup name proxy: \
                        failed to get user network: couldn't load network with id ({id}): open \
                        /var/run/cache/networkd/networks/{id}: no such file or directory"
                )
            );
            // an fqdn proxy needs a node with a public IPv4, not a domain
            assert_eq!(first_error(fqdn, &[no_domain]), "booked");
        });
    }
}
