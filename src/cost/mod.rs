//! What a deployment costs on the grid, computed as TFChain bills it: CU and SU from a
//! contract's cpu, memory and disk, public IPv4 addresses, name contracts, a dedicated node's
//! rent with its extra fee, the TFT price and the discount a balance earns. Start from
//! [`estimate`]; the figures come from [`prices`], the contracts from [`plan`].
//!
//! Every formula cites the grid's source; docs/cost-reference.md collects them with file:line.
//! This module computes; it prints nothing and reads no network itself.

pub mod plan;
pub mod prices;

use serde::Serialize;

pub use plan::{Plan, PlannedContract, Vm, Work};
pub use prices::{Prices, PricingPolicy};

/// Seconds TFChain bills at once, and the pricing policy's reference period: one hour
/// (tfchain `runtime/src/lib.rs:386-387`, `BillingFrequency` 600 blocks of 6 s and
/// `BillingReferencePeriod = SECS_PER_HOUR`).
pub const SECS_PER_HOUR: u64 = 3600;
/// Hours in the grid's month: 30 days (tfchain `support/src/constants.rs:15`, `SECS_PER_MONTH`;
/// `cost.rs:312` "30 days ish").
pub const HOURS_PER_MONTH: u64 = 24 * 30;
/// Units of USD in one USD: the pricing policy's values are in 1e-7 USD (`cost.rs:356-357`: a
/// mUSD is 10 000 units).
pub const UNITS_PER_USD: f64 = 1e7;
/// The chain's precision: one TFT is 1e7 of its smallest unit (`cost.rs:362-363`).
pub const UNITS_PER_TFT: f64 = 1e7;

/// Capacity a contract reserves: cores, and bytes of memory, SSD and HDD (zos's units).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Capacity {
    pub cru: u64,
    pub mru: u64,
    pub sru: u64,
    pub hru: u64,
}

impl Capacity {
    /// Compute units: MIN(MAX(cru/2, mru/4), MAX(cru, mru/8), MAX(cru/4, mru/2)), memory in
    /// GiB (tfchain `pallet-smart-contract/src/cost.rs:273-291`; grid client
    /// `calculator.ts` `calCU`).
    pub fn cu(&self) -> f64 {
        let cru = self.cru as f64;
        let mru = gib(self.mru);
        (cru / 2.0)
            .max(mru / 4.0)
            .min(cru.max(mru / 8.0))
            .min((cru / 4.0).max(mru / 2.0))
    }

    /// Storage units: hru/1200 + sru/200, in GiB (`cost.rs:269-271`; `calculator.ts` `calSU`).
    pub fn su(&self) -> f64 {
        gib(self.hru) / 1200.0 + gib(self.sru) / 200.0
    }

    pub fn add(&mut self, other: Capacity) {
        self.cru += other.cru;
        self.mru += other.mru;
        self.sru += other.sru;
        self.hru += other.hru;
    }
}

fn gib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1u32 << 30)
}

/// The discount a balance earns, by how many months of a contract's cost it covers
/// (`cost.rs:318-326`; the multipliers `types.rs:163-172`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DiscountLevel {
    None,
    Default,
    Bronze,
    Silver,
    Gold,
}

impl DiscountLevel {
    /// The level for a balance worth `months` of the contract's cost: 1.5, 3, 6 and 18 months.
    pub fn for_months(months: f64) -> DiscountLevel {
        match months {
            m if m >= 18.0 => DiscountLevel::Gold,
            m if m >= 6.0 => DiscountLevel::Silver,
            m if m >= 3.0 => DiscountLevel::Bronze,
            m if m >= 1.5 => DiscountLevel::Default,
            _ => DiscountLevel::None,
        }
    }

    /// What is paid of the price: 1, 0.8, 0.7, 0.6, 0.4.
    pub fn multiplier(self) -> f64 {
        match self {
            DiscountLevel::None => 1.0,
            DiscountLevel::Default => 0.8,
            DiscountLevel::Bronze => 0.7,
            DiscountLevel::Silver => 0.6,
            DiscountLevel::Gold => 0.4,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DiscountLevel::None => "none",
            DiscountLevel::Default => "default",
            DiscountLevel::Bronze => "bronze",
            DiscountLevel::Silver => "silver",
            DiscountLevel::Gold => "gold",
        }
    }
}

/// One contract's hourly price before any discount, in units of USD (1e-7 USD), rounded as the
/// chain rounds a bill (`cost.rs:207-252` for node and rent contracts, `:104-110` for names,
/// `:255-267` for a dedicated node's extra fee).
pub fn hourly_units_usd(contract: &PlannedContract, policy: &PricingPolicy) -> u64 {
    match &contract.work {
        Work::Node {
            vms,
            public_ips,
            on_rented_node,
        } => {
            let mut cost = 0.0;
            if !on_rented_node {
                let capacity = plan::capacity(vms);
                cost += capacity.cu() * policy.cu as f64 + capacity.su() * policy.su as f64;
            }
            cost += f64::from(*public_ips) * policy.ipu as f64;
            cost.round() as u64
        }
        Work::Name { .. } => policy.unique_name,
        Work::Rent {
            capacity,
            extra_fee_musd,
        } => {
            let resources = capacity.cu() * policy.cu as f64 + capacity.su() * policy.su as f64;
            let rent = (resources.round() * f64::from(policy.discount_for_dedication_nodes)
                / 100.0)
                .round();
            // The extra fee is mUSD a month, billed by the second (`cost.rs:255-267`).
            let fee = (*extra_fee_musd as f64 * 10_000.0 / HOURS_PER_MONTH as f64).round();
            (rent + fee) as u64
        }
    }
}

/// Units of USD → the chain's TFT units at `prices`' TFT price (`cost.rs:343-366`).
pub fn units_usd_to_tft_units(units_usd: u64, prices: &Prices) -> u64 {
    let tft_price_units_usd = f64::from(prices.tft_price_musd()) * 10_000.0;
    (units_usd as f64 / tft_price_units_usd * UNITS_PER_TFT).round() as u64
}

/// One hour's bill of a contract in TFT units, with the discount `balance_tft_units` earns
/// (`cost.rs:296-341`: months = balance / (the hour's amount × 720)). The chain bills every
/// contract as DIY capacity (`cost.rs:24`), so the certified surcharge of the calculators is
/// not applied.
pub fn hourly_bill(
    contract: &PlannedContract,
    prices: &Prices,
    balance_tft_units: u64,
) -> (u64, DiscountLevel) {
    let due = units_usd_to_tft_units(hourly_units_usd(contract, &prices.policy), prices);
    if due == 0 {
        return (0, DiscountLevel::None);
    }
    let monthly = due * HOURS_PER_MONTH;
    let level = DiscountLevel::for_months(balance_tft_units as f64 / monthly as f64);
    ((due as f64 * level.multiplier()).round() as u64, level)
}

/// A contract's part of an [`Estimate`].
#[derive(Debug, Clone, Serialize)]
pub struct ContractCost {
    /// `node`, `name` or `rent`.
    pub kind: &'static str,
    /// The placement's role, the name, or the node.
    pub label: String,
    /// The node (0 for a name contract, or a node not chosen yet).
    pub node: u64,
    pub vms: Vec<VmUnits>,
    /// Of the contract's whole capacity, as billed.
    pub cu: f64,
    pub su: f64,
    pub public_ipv4: u32,
    pub discount: DiscountLevel,
    pub usd_per_month: f64,
    pub tft_per_month: f64,
}

/// A VM's share, for reading: CU and SU of the VM alone (the contract is billed on the sum of
/// its VMs, which can be less).
#[derive(Debug, Clone, Serialize)]
pub struct VmUnits {
    pub name: String,
    pub cpu: u64,
    pub memory_mb: u64,
    pub disk_gb: u64,
    pub cu: f64,
    pub su: f64,
}

/// What a plan costs a month and a year, in USD and TFT, with the figures used.
#[derive(Debug, Clone, Serialize)]
pub struct Estimate {
    pub contracts: Vec<ContractCost>,
    pub usd_per_month: f64,
    pub usd_per_year: f64,
    pub tft_per_month: f64,
    pub tft_per_year: f64,
    /// The balance the discounts were computed from, in TFT.
    pub balance_tft: f64,
    pub prices: Prices,
}

/// The monthly (and yearly: 12 months) cost of `plan` at `prices`, each contract discounted by
/// what `balance_tft` covers of it, as the chain decides each hour's bill. Shapes: USD and TFT
/// as floats, rounded to what the chain bills an hour, times 720.
pub fn estimate(plan: &Plan, prices: &Prices, balance_tft: f64) -> Estimate {
    let balance_units = (balance_tft.max(0.0) * UNITS_PER_TFT) as u64;
    let contracts: Vec<ContractCost> = plan
        .contracts
        .iter()
        .map(|c| {
            let (due, discount) = hourly_bill(c, prices, balance_units);
            let usd_hour = hourly_units_usd(c, &prices.policy) as f64 * discount.multiplier();
            let (capacity, vms, public_ipv4) = match &c.work {
                Work::Node {
                    vms, public_ips, ..
                } => (plan::capacity(vms), vms.as_slice(), *public_ips),
                Work::Rent { capacity, .. } => (*capacity, &[][..], 0),
                Work::Name { .. } => (Capacity::default(), &[][..], 0),
            };
            ContractCost {
                kind: c.work.kind(),
                label: c.label.clone(),
                node: c.node,
                vms: vms
                    .iter()
                    .map(|vm| {
                        let one = vm.capacity();
                        VmUnits {
                            name: vm.name.clone(),
                            cpu: vm.cpu,
                            memory_mb: vm.memory_mb,
                            disk_gb: vm.disk_gb,
                            cu: one.cu(),
                            su: one.su(),
                        }
                    })
                    .collect(),
                cu: capacity.cu(),
                su: capacity.su(),
                public_ipv4,
                discount,
                usd_per_month: usd_hour * HOURS_PER_MONTH as f64 / UNITS_PER_USD,
                tft_per_month: (due * HOURS_PER_MONTH) as f64 / UNITS_PER_TFT,
            }
        })
        .collect();
    // `+ 0.0`: an empty sum of floats is -0.0, which prints as `$-0.00`.
    let usd_per_month: f64 = contracts.iter().map(|c| c.usd_per_month).sum::<f64>() + 0.0;
    let tft_per_month: f64 = contracts.iter().map(|c| c.tft_per_month).sum::<f64>() + 0.0;
    Estimate {
        contracts,
        usd_per_month,
        usd_per_year: usd_per_month * 12.0,
        tft_per_month,
        tft_per_year: tft_per_month * 12.0,
        balance_tft,
        prices: prices.clone(),
    }
}

/// `12.34` for USD, `1234.5` for TFT: what a person reads.
pub fn usd(amount: f64) -> String {
    format!("${amount:.2}")
}

pub fn tft(amount: f64) -> String {
    format!("{amount:.1} TFT")
}

#[cfg(test)]
mod tests;
