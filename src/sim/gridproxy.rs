//! GridProxy over the simulated grid: `GET /nodes`, `GET /nodes/{id}`, `GET /farms` and
//! `GET /contracts` in
//! GridProxy's JSON shape (the one `grid::proxy` reads), answered from the ledger as it is at
//! each request, so free capacity goes down as VMs are placed. Served on 127.0.0.1 only.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result};
use axum::extract::{Path as UrlPath, Query, State};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::ledger::{Ledger, Node, SimDir};

fn node_json(l: &Ledger, n: &Node) -> Value {
    let farm = l.farms.iter().find(|f| f.farm_id == n.farm_id);
    let free_ips = farm
        .map(|f| f.public_ips.values().filter(|h| **h == 0).count())
        .unwrap_or(0);
    json!({
        "nodeId": n.node_id,
        "farmId": n.farm_id,
        "farmName": farm.map(|f| f.name.clone()),
        "twinId": n.twin_id,
        "country": n.country,
        "city": n.city,
        "uptime": 30 * 86_400,
        "status": "up",
        "healthy": true,
        "dedicated": false,
        "rentContractId": n.rent_contract,
        "rentedByTwinId": l.rented_by(n),
        "rented": l.rented_by(n) != 0,
        "rentable": l.rentable(n),
        "num_gpu": n.gpus.len(),
        "gpus": n.gpus.iter().map(|g| json!({"id": g.id, "vendor": g.vendor, "device": g.device, "contract": gpu_holder(l, n, &g.id)})).collect::<Vec<_>>(),
        "certificationType": n.certification,
        "total_resources": n.total,
        "used_resources": n.used,
        "publicConfig": {"domain": n.domain.clone().unwrap_or_default(), "ipv4": n.public_ipv4, "ipv6": ""},
        "farm_free_ips": free_ips,
        "extraFee": super::billing::extra_fee_musd(n.node_id),
        "price_usd": super::billing::node_price_usd(n),
        "features": if n.light { json!(["zmachine-light", "network-light"]) } else { json!(["zmachine", "network", "zdb", "volume", "ipv4", "gateway-name-proxy", "gateway-fqdn-proxy", "mycelium", "wireguard"]) },
    })
}

/// The contract of the VM that holds a GPU of a node, 0 when it is free.
fn gpu_holder(l: &Ledger, n: &Node, gpu: &str) -> u64 {
    l.contracts
        .values()
        .find(|c| c.state == "Created" && c.node_id == n.node_id && c.gpus.iter().any(|g| g == gpu))
        .map_or(0, |c| c.contract_id)
}

/// GridProxy's boolean and twin filters on a node (grid-proxy pkg/types/nodes.go NodeFilter):
/// `ipv4`, `has_gpu`, `rented`, `rentable`, `rented_by`, `available_for` (rented by that twin, or
/// not rented). A filter not given passes.
fn node_flags_match(l: &Ledger, n: &Node, q: &BTreeMap<String, String>) -> bool {
    let flag = |k: &str, actual: bool| q.get(k).is_none_or(|v| (v == "true") == actual);
    let twin = |k: &str| q.get(k).and_then(|v| v.parse::<u32>().ok());
    let renter = l.rented_by(n);
    flag("ipv4", !n.public_ipv4.is_empty())
        && flag("has_gpu", !n.gpus.is_empty())
        && flag("rented", renter != 0)
        && flag("rentable", l.rentable(n))
        && twin("rented_by").is_none_or(|t| renter == t)
        && twin("available_for").is_none_or(|t| renter == 0 || renter == t)
}

async fn nodes(State(sim): State<SimDir>, Query(q): Query<BTreeMap<String, String>>) -> Response {
    let Ok(l) = sim.read() else {
        return (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "ledger unreadable",
        )
            .into_response();
    };
    let num = |k: &str| q.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let farms: Vec<u32> = q
        .get("farm_ids")
        .map(|f| f.split(',').filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_default();
    let page = num("page").max(1) as usize;
    let size = q
        .get("size")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(50)
        .max(1);
    let matching: Vec<Value> = l
        .nodes
        .iter()
        .filter(|n| {
            let free_ips = l
                .farms
                .iter()
                .find(|f| f.farm_id == n.farm_id)
                .map(|f| f.public_ips.values().filter(|h| **h == 0).count() as u64)
                .unwrap_or(0);
            n.total.mru.saturating_sub(n.used.mru) >= num("free_mru")
                && n.total.sru.saturating_sub(n.used.sru) >= num("free_sru")
                && n.total.hru.saturating_sub(n.used.hru) >= num("free_hru")
                && free_ips >= num("free_ips")
                && (farms.is_empty() || farms.contains(&n.farm_id))
                && node_flags_match(&l, n, &q)
        })
        .map(|n| node_json(&l, n))
        .collect();
    let chunk: Vec<Value> = matching
        .into_iter()
        .skip((page - 1) * size)
        .take(size)
        .collect();
    Json(chunk).into_response()
}

async fn node(State(sim): State<SimDir>, UrlPath(id): UrlPath<u32>) -> Response {
    let Ok(l) = sim.read() else {
        return (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "ledger unreadable",
        )
            .into_response();
    };
    match l.node(id) {
        Some(n) => Json(node_json(&l, n)).into_response(),
        None => (
            axum::http::StatusCode::NOT_FOUND,
            Json(json!({"error": format!("node {id} not found")})),
        )
            .into_response(),
    }
}

async fn farms(State(sim): State<SimDir>, Query(q): Query<BTreeMap<String, String>>) -> Response {
    let Ok(l) = sim.read() else {
        return (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "ledger unreadable",
        )
            .into_response();
    };
    let page = q
        .get("page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let size = q
        .get("size")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(50)
        .max(1);
    let all: Vec<Value> = l
        .farms
        .iter()
        .map(|f| {
            json!({
                "farmId": f.farm_id,
                "name": f.name,
                "twinId": f.twin_id,
                "dedicated": false,
                "publicIps": f.public_ips.iter().map(|(ip, c)| json!({"ip": ip, "contractId": c})).collect::<Vec<_>>(),
            })
        })
        .skip((page - 1) * size)
        .take(size)
        .collect();
    Json(all).into_response()
}

async fn contracts(
    State(sim): State<SimDir>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let Ok(l) = sim.read() else {
        return (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "ledger unreadable",
        )
            .into_response();
    };
    let twin = q.get("twin_id").and_then(|v| v.parse::<u32>().ok());
    let only_created = q
        .get("state")
        .is_some_and(|s| s.eq_ignore_ascii_case("created"));
    let page = q
        .get("page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let size = q
        .get("size")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(50)
        .max(1);
    let rows: Vec<Value> = l
        .contracts
        .values()
        .filter(|c| twin.is_none_or(|t| c.twin_id == t) && (!only_created || c.state == "Created"))
        .map(|c| {
            let details = if c.kind == "name" {
                json!({"name": c.name})
            } else {
                json!({"nodeId": c.node_id, "deployment_data": c.metadata, "deployment_hash": "", "number_of_public_ips": c.public_ips.len()})
            };
            json!({"contract_id": c.contract_id, "twin_id": c.twin_id, "state": c.state, "created_at": c.created_at, "type": c.kind, "details": details})
        })
        .skip((page - 1) * size)
        .take(size)
        .collect();
    Json(rows).into_response()
}

/// A running simulated GridProxy; stops when dropped.
pub struct Running {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts GridProxy over the simulator on 127.0.0.1 (a free port) in this process.
///
/// Errors: no loopback port.
pub async fn start(sim: SimDir) -> Result<Running> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("listening on 127.0.0.1 for the simulated GridProxy")?;
    let url = format!("http://{}", listener.local_addr()?);
    let app = axum::Router::new()
        .route("/nodes", get(nodes))
        .route("/nodes/{id}", get(node))
        .route("/farms", get(farms))
        .route("/contracts", get(contracts))
        .route("/chain/pricing_policy", get(super::billing::pricing_policy))
        .route("/chain/tft_price", get(super::billing::tft_price))
        .route("/chain/balance/{twin}", get(super::billing::balance))
        .with_state(sim);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await;
    });
    Ok(Running {
        url,
        stop: Some(tx),
    })
}

/// The GridProxy client for `network`: on `sim`, the simulator's own (started here, served for
/// as long as the returned guard lives); else the network's, or `url_override`.
///
/// Errors: an unknown network; no loopback port for the simulator's.
pub async fn client(
    network: &str,
    data_dir: &std::path::Path,
    url_override: Option<&str>,
) -> Result<(crate::grid::proxy::GridProxy, Option<Running>)> {
    let running = if network == super::NETWORK {
        Some(start(super::ledger::sim_dir(data_dir)).await?)
    } else {
        None
    };
    let url = running
        .as_ref()
        .map(|r| r.url.clone())
        .or_else(|| url_override.map(String::from));
    Ok((
        crate::grid::proxy::GridProxy::new(network, url.as_deref())?,
        running,
    ))
}
