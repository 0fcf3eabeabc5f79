//! A GridProxy client: the read-only REST API that indexes the grid's nodes and farms.
//! Only the fields node selection uses are parsed; unknown fields are ignored.

use std::time::Duration;

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::error::UserError;

/// The grid simulator's network name (`--network sim`, see `sim`): its GridProxy runs on this
/// machine.
pub const SIM_NETWORK: &str = "sim";

/// The grid networks and their GridProxy base URLs.
pub const NETWORKS: [(&str, &str); 4] = [
    ("main", "https://gridproxy.grid.tf"),
    ("test", "https://gridproxy.test.grid.tf"),
    ("qa", "https://gridproxy.qa.grid.tf"),
    ("dev", "https://gridproxy.dev.grid.tf"),
];

/// `main`, `test`, `qa`, `dev`, or `sim` (the grid simulator on this machine).
pub fn check_network(name: &str) -> Result<(), String> {
    if NETWORKS.iter().any(|(n, _)| *n == name) || name == SIM_NETWORK {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a grid network (main, test, qa, dev, or sim for the simulator)"
        ))
    }
}

/// Capacity in units GridProxy reports: cores and bytes.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct Resources {
    #[serde(default)]
    pub cru: u64,
    #[serde(default)]
    pub mru: u64,
    #[serde(default)]
    pub sru: u64,
    #[serde(default)]
    pub hru: u64,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct PublicConfig {
    #[serde(default)]
    pub ipv4: String,
    #[serde(default)]
    pub ipv6: String,
    #[serde(default)]
    pub domain: String,
}

/// One node of `GET /nodes`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    pub node_id: u64,
    pub farm_id: u64,
    #[serde(default)]
    pub farm_name: Option<String>,
    #[serde(default)]
    pub country: String,
    #[serde(default)]
    pub city: String,
    /// Seconds since the node's last boot.
    #[serde(default)]
    pub uptime: u64,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub healthy: bool,
    #[serde(default)]
    pub dedicated: bool,
    #[serde(default)]
    pub rented_by_twin_id: u64,
    #[serde(rename = "total_resources", default)]
    pub total: Resources,
    #[serde(rename = "used_resources", default)]
    pub used: Resources,
    #[serde(default)]
    pub public_config: PublicConfig,
    #[serde(rename = "farm_free_ips", default)]
    pub farm_free_ips: Option<u64>,
    /// What the node runs, e.g. `["zmachine", "network", …]`; zos-light nodes list
    /// `zmachine-light` and `network-light` and have no WireGuard access or public IPs
    /// (tfgrid-sdk-go scheduler/request.go). Older GridProxy versions omit it.
    #[serde(default)]
    pub features: Vec<String>,
    /// The node's GPUs (`num_gpu` of them), and whether it is rented or can be rented now
    /// (grid-proxy pkg/types/nodes.go): a GPU serves only VMs of the twin that rents the node.
    #[serde(rename = "num_gpu", default)]
    pub num_gpu: u64,
    #[serde(default)]
    pub gpus: Vec<NodeGpu>,
    #[serde(default)]
    pub rented: bool,
    #[serde(default)]
    pub rentable: bool,
}

/// One GPU of a node as GridProxy lists it: `id` is what a VM's `gpus` names; `contract` is the
/// contract using it, 0 when free.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct NodeGpu {
    pub id: String,
    #[serde(default)]
    pub vendor: String,
    #[serde(default)]
    pub device: String,
    #[serde(default)]
    pub contract: u64,
}

impl Node {
    /// A zos-light node: its VMs cannot be reached over a WireGuard access network.
    pub fn is_light(&self) -> bool {
        self.features.iter().any(|f| f.ends_with("-light"))
    }

    pub fn free(&self) -> Resources {
        Resources {
            cru: self.total.cru.saturating_sub(self.used.cru),
            mru: self.total.mru.saturating_sub(self.used.mru),
            sru: self.total.sru.saturating_sub(self.used.sru),
            hru: self.total.hru.saturating_sub(self.used.hru),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct PublicIp {
    pub ip: String,
    #[serde(default, alias = "contractId")]
    pub contract_id: u64,
}

/// One farm of `GET /farms`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Farm {
    pub farm_id: u64,
    pub name: String,
    #[serde(default)]
    pub dedicated: bool,
    #[serde(default)]
    pub public_ips: Vec<PublicIp>,
}

impl Farm {
    /// Public IPv4 addresses not yet taken by a contract.
    pub fn free_ips(&self) -> u64 {
        self.public_ips
            .iter()
            .filter(|ip| ip.contract_id == 0)
            .count() as u64
    }
}

/// One contract of `GET /contracts`: a node contract (`details.nodeId`, `details.deployment_data`,
/// the contract metadata as a JSON string), a name contract (`details.name`) or a rent contract.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct Contract {
    pub contract_id: u64,
    pub twin_id: u64,
    /// `Created`, `GracePeriod`, `Deleted`, …
    pub state: String,
    #[serde(default)]
    pub created_at: u64,
    /// `node`, `name` or `rent`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub details: serde_json::Value,
}

impl Contract {
    /// The node of a node contract (0 otherwise).
    pub fn node_id(&self) -> u64 {
        self.details["nodeId"].as_u64().unwrap_or(0)
    }

    /// The metadata's `type` (`vm`, `network`, `Gateway Name`, …), or `name`/`rent`.
    pub fn workload(&self) -> String {
        self.metadata()["type"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| self.kind.clone())
    }

    /// The workload's name from the metadata, or a name contract's name.
    pub fn name(&self) -> String {
        self.metadata()["name"]
            .as_str()
            .or_else(|| self.details["name"].as_str())
            .unwrap_or_default()
            .to_string()
    }

    fn metadata(&self) -> serde_json::Value {
        self.details["deployment_data"]
            .as_str()
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default()
    }
}

/// What `GET /nodes` is asked for; the same rules are applied again on the answer.
#[derive(Debug, Clone, Default)]
pub struct NodeQuery {
    pub free_mru: u64,
    pub free_sru: u64,
    pub free_hru: u64,
    pub free_ips: u64,
    pub farm_ids: Vec<u64>,
    /// Only nodes with a GPU (`has_gpu=true`).
    pub has_gpu: bool,
}

/// Rows fetched per page, and the most pages read for one listing.
const PAGE_SIZE: usize = 500;
const MAX_PAGES: usize = 20;

#[derive(Clone)]
pub struct GridProxy {
    pub base: String,
    http: reqwest::Client,
}

impl GridProxy {
    /// The client for `network`, or for `base_override` when one is configured.
    pub fn new(network: &str, base_override: Option<&str>) -> Result<GridProxy> {
        let base = match base_override {
            Some(url) => url.trim_end_matches('/').to_string(),
            None if network == SIM_NETWORK => {
                anyhow::bail!(
                    "the simulator's GridProxy runs inside the command that needs it (internal \
                        error: it was not started)"
                )
            }
            None => NETWORKS
                .iter()
                .find(|(n, _)| *n == network)
                .map(|(_, url)| (*url).to_string())
                .ok_or_else(|| anyhow::anyhow!(check_network(network).unwrap_err()))?,
        };
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("tfgrid-compose/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(GridProxy { base, http })
    }

    /// Up and healthy nodes with at least the given free capacity, all pages.
    pub async fn nodes(&self, query: &NodeQuery) -> Result<Vec<Node>> {
        let mut params: Vec<(&str, String)> =
            vec![("status", "up".into()), ("healthy", "true".into())];
        for (key, value) in [
            ("free_mru", query.free_mru),
            ("free_sru", query.free_sru),
            ("free_hru", query.free_hru),
            ("free_ips", query.free_ips),
        ] {
            if value > 0 {
                params.push((key, value.to_string()));
            }
        }
        if query.has_gpu {
            params.push(("has_gpu", "true".into()));
        }
        if !query.farm_ids.is_empty() {
            params.push((
                "farm_ids",
                query
                    .farm_ids
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            ));
        }
        self.pages("/nodes", params).await
    }

    /// One node by id, whatever its state.
    pub async fn node(&self, id: u64) -> Result<Node> {
        let url = format!("{}/nodes/{id}", self.base);
        let response = self.get(&url, &[]).await?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Err(UserError::new(
                format!("node {id} does not exist on this grid network"),
                "list candidates with `tfgrid-compose nodes`",
            )
            .into());
        }
        let response = check_status(&url, response)?;
        response
            .json()
            .await
            .with_context(|| format!("{url} answered with JSON that is not a node"))
    }

    /// Every farm, all pages.
    pub async fn farms(&self) -> Result<Vec<Farm>> {
        self.pages("/farms", Vec::new()).await
    }

    /// A twin's active (`created`) contracts, all pages.
    pub async fn contracts(&self, twin_id: u64) -> Result<Vec<Contract>> {
        self.pages(
            "/contracts",
            vec![
                ("twin_id", twin_id.to_string()),
                ("state", "created".into()),
            ],
        )
        .await
    }

    async fn pages<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        params: Vec<(&str, String)>,
    ) -> Result<Vec<T>> {
        let url = format!("{}{path}", self.base);
        let mut all = Vec::new();
        for page in 1..=MAX_PAGES {
            let mut query = params.clone();
            query.push(("size", PAGE_SIZE.to_string()));
            query.push(("page", page.to_string()));
            let response = check_status(&url, self.get(&url, &query).await?)?;
            let rows: Vec<T> = response
                .json()
                .await
                .with_context(|| format!("{url} answered with JSON of an unexpected shape"))?;
            let done = rows.len() < PAGE_SIZE;
            all.extend(rows);
            if done {
                break;
            }
        }
        Ok(all)
    }

    /// A GET with up to three attempts on connection errors, 429 and 5xx.
    async fn get(&self, url: &str, query: &[(&str, String)]) -> Result<reqwest::Response> {
        let mut delay = Duration::from_millis(200);
        let mut attempt = 1;
        loop {
            let result = self.http.get(url).query(query).send().await;
            let transient = match &result {
                Ok(r) => {
                    r.status().is_server_error()
                        || r.status() == reqwest::StatusCode::TOO_MANY_REQUESTS
                }
                Err(e) => e.is_connect() || e.is_timeout(),
            };
            if !transient || attempt == 3 {
                return result.map_err(|err| {
                    UserError::new(
                        format!(
                            "GridProxy at {} did not answer: {}",
                            self.base,
                            describe(&err)
                        ),
                        "check the network connection; set TFGRID_COMPOSE_GRIDPROXY_URL for \
                            another GridProxy, or pin nodes with `--node ID`",
                    )
                    .into()
                });
            }
            tokio::time::sleep(delay).await;
            delay *= 4;
            attempt += 1;
        }
    }
}

fn check_status(url: &str, response: reqwest::Response) -> Result<reqwest::Response> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    Err(UserError::new(
        format!("{url} answered {status}"),
        "GridProxy may be down; try again later, set TFGRID_COMPOSE_GRIDPROXY_URL, or pin nodes \
            with `--node ID`",
    )
    .into())
}

/// The innermost cause of a reqwest error, which names what went wrong (refused, DNS, TLS).
pub(crate) fn describe(err: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = err;
    while let Some(inner) = source.source() {
        source = inner;
    }
    source.to_string()
}

#[cfg(test)]
mod tests {
    use super::{Farm, Node};

    #[test]
    fn parses_the_documented_shapes() {
        let node: Node = serde_json::from_str(
            r#"{"id":"x","nodeId":7,"farmId":1,"twinId":9,"country":"Belgium","city":"Ghent","uptime":86400,"status":"up","healthy":true,
                "total_resources":{"cru":8,"mru":17179869184,"sru":512000000000,"hru":0,"ipv4u":0},
                "used_resources":{"cru":2,"mru":4294967296,"sru":100000000000,"hru":0,"ipv4u":0},
                "publicConfig":{"ipv4":"185.1.2.3/24","ipv6":"","domain":"","gw4":"","gw6":""},"rentedByTwinId":0,"dedicated":false,"farmName":"Freefarm"}"#,
        )
        .unwrap();
        assert_eq!(node.node_id, 7);
        assert_eq!(node.free().cru, 6);
        assert_eq!(node.free().mru, 12_884_901_888);
        assert_eq!(node.farm_name.as_deref(), Some("Freefarm"));
        let farm: Farm = serde_json::from_str(
            r#"{"name":"Freefarm","farmId":1,"twinId":2,"dedicated":false,"publicIps":[{"id":"a","ip":"185.1.2.4/24","contract_id":0,"gateway":"185.1.2.1"},{"id":"b","ip":"185.1.2.5/24","contract_id":12,"gateway":"185.1.2.1"}]}"#,
        )
        .unwrap();
        assert_eq!(farm.free_ips(), 1);
    }
}
