//! The figures a cost is computed from: TFChain's pricing policy 1, the TFT price and a twin's
//! balance, with where they came from and when. On `--network sim` they are read from the
//! simulator (its `/chain/…` endpoints, in the shapes the grid client reads from the chain); on
//! the real networks from [`Prices::genesis`], TFChain's genesis figures, until reading the
//! chain itself is supported.

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

/// TFChain's pricing policy (`pallet-tfgrid/src/types.rs:71-84`): each value in units of USD
/// (1e-7 USD) per hour of one unit; CU and SU of GiB-based capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PricingPolicy {
    pub cu: u64,
    pub su: u64,
    pub nu: u64,
    pub ipu: u64,
    pub unique_name: u64,
    pub domain_name: u64,
    /// Percent of the price a dedicated node's rent pays (the discount for dedication).
    pub discount_for_dedication_nodes: u8,
}

/// The TFT price in mUSD as the chain keeps it (`pallet-tft-price`: `AverageTftPrice`,
/// `MinTftPrice`, `MaxTftPrice`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TftPrice {
    pub average_musd: u32,
    pub min_musd: u32,
    pub max_musd: u32,
}

/// The figures used, their source and their date.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prices {
    pub policy: PricingPolicy,
    pub tft_price: TftPrice,
    /// Where the figures come from, for people.
    pub source: String,
    /// When they were read, or the date of the source they were copied from (UTC).
    pub date: String,
}

impl Prices {
    /// TFChain's genesis pricing policy and TFT price bounds (tfchain
    /// `substrate-node/node/src/chain_spec.rs:347-370`, and `:269-272` for the live chain spec,
    /// commit 33046d6 of
    /// 2024-03-11), with the TFT price at its floor. The live chain's policy may differ: the
    /// council changes it.
    pub fn genesis() -> Prices {
        Prices {
            policy: PricingPolicy {
                cu: 100_000,
                su: 50_000,
                nu: 15_000,
                ipu: 40_000,
                unique_name: 2_500,
                domain_name: 5_000,
                discount_for_dedication_nodes: 50,
            },
            tft_price: TftPrice {
                average_musd: 10,
                min_musd: 10,
                max_musd: 1000,
            },
            source: "TFChain genesis (chain_spec.rs at 33046d6), not read from the live chain"
                .into(),
            date: "2024-03-11".into(),
        }
    }

    /// The TFT price billing uses: the average kept between the floor and the ceiling
    /// (`cost.rs:346-354`), in mUSD.
    pub fn tft_price_musd(&self) -> u32 {
        self.tft_price
            .average_musd
            .max(self.tft_price.min_musd)
            .min(self.tft_price.max_musd)
            .max(1)
    }

    /// USD per TFT.
    pub fn tft_usd(&self) -> f64 {
        f64::from(self.tft_price_musd()) / 1000.0
    }

    /// The figures, one line: `CU $0.0100/h, SU $0.0050/h, IPv4 $0.0040/h, name $0.00025/h,
    /// TFT $0.010 (source, date)`.
    pub fn describe(&self) -> String {
        let per_hour = |units: u64| units as f64 / super::UNITS_PER_USD;
        format!(
            "CU ${:.4}/h, SU ${:.4}/h, IPv4 ${:.4}/h, name ${:.5}/h, dedicated nodes {}% off, \
                TFT ${:.3} ({}, {})",
            per_hour(self.policy.cu),
            per_hour(self.policy.su),
            per_hour(self.policy.ipu),
            per_hour(self.policy.unique_name),
            100 - u32::from(self.policy.discount_for_dedication_nodes),
            self.tft_usd(),
            self.source,
            self.date
        )
    }
}

/// One policy entry as the chain's JSON writes it: `{"value": 100000, "unit": "Gigabytes"}`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct PolicyJson {
    pub value: u64,
    pub unit: String,
}

/// Pricing policy 1 as the grid client reads it from the chain (`pricingPolicies.get`, camel
/// case), which the simulator serves at `/chain/pricing_policy`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PricingPolicyJson {
    pub id: u32,
    pub name: String,
    pub su: PolicyJson,
    pub cu: PolicyJson,
    pub nu: PolicyJson,
    pub ipu: PolicyJson,
    pub unique_name: PolicyJson,
    pub domain_name: PolicyJson,
    pub discount_for_dedication_nodes: u8,
}

impl PricingPolicyJson {
    /// The policy; CU and SU must be priced per GiB (unit `Gigabytes`, as every TFChain
    /// network's policy 1 is).
    pub fn policy(&self) -> Result<PricingPolicy> {
        for (what, entry) in [("cu", &self.cu), ("su", &self.su)] {
            anyhow::ensure!(
                entry.unit == "Gigabytes",
                "pricing policy {}: {what} is priced per {}, not per Gigabytes",
                self.id,
                entry.unit
            );
        }
        Ok(PricingPolicy {
            cu: self.cu.value,
            su: self.su.value,
            nu: self.nu.value,
            ipu: self.ipu.value,
            unique_name: self.unique_name.value,
            domain_name: self.domain_name.value,
            discount_for_dedication_nodes: self.discount_for_dedication_nodes,
        })
    }

    /// The JSON of `policy` (what the simulator serves).
    pub fn of(policy: &PricingPolicy) -> PricingPolicyJson {
        let entry = |value: u64| PolicyJson {
            value,
            unit: "Gigabytes".into(),
        };
        PricingPolicyJson {
            id: 1,
            name: "threefold_default_pricing_policy".into(),
            su: entry(policy.su),
            cu: entry(policy.cu),
            nu: entry(policy.nu),
            ipu: entry(policy.ipu),
            unique_name: entry(policy.unique_name),
            domain_name: entry(policy.domain_name),
            discount_for_dedication_nodes: policy.discount_for_dedication_nodes,
        }
    }
}

/// A twin's balance as the chain's `system.account` gives it: `free`, in TFT units (1e-7 TFT).
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
pub struct BalanceJson {
    pub free: u64,
}

/// Reads the figures and `twin`'s balance (0 when no twin is given) from a server speaking the
/// simulator's `/chain/…` endpoints at `base` (`http://127.0.0.1:PORT`). Returns the prices
/// and the balance in TFT.
///
/// Errors: the server does not answer, or answers in another shape.
pub async fn fetch(base: &str, twin: Option<u32>) -> Result<(Prices, f64)> {
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()?;
    let get = |path: String| {
        let http = http.clone();
        let url = format!("{base}{path}");
        async move {
            let response = http
                .get(&url)
                .send()
                .await
                .with_context(|| format!("asking {url}"))?
                .error_for_status()
                .with_context(|| format!("asking {url}"))?;
            response
                .json::<serde_json::Value>()
                .await
                .with_context(|| format!("{url} answered with something that is not JSON"))
        }
    };
    let policy: PricingPolicyJson =
        serde_json::from_value(get("/chain/pricing_policy".into()).await?)
            .context("the pricing policy has an unexpected shape")?;
    let tft_price: TftPrice = serde_json::from_value(get("/chain/tft_price".into()).await?)
        .context("the TFT price has an unexpected shape")?;
    let balance = match twin {
        Some(twin) => {
            let b: BalanceJson =
                serde_json::from_value(get(format!("/chain/balance/{twin}")).await?)
                    .context("the balance has an unexpected shape")?;
            b.free as f64 / super::UNITS_PER_TFT
        }
        None => 0.0,
    };
    Ok((
        Prices {
            policy: policy.policy()?,
            tft_price,
            source: "the simulator's chain".into(),
            date: crate::clock::format_utc(crate::clock::now_unix()),
        },
        balance,
    ))
}
