//! The simulated chain's money: pricing policy 1, the TFT price, each twin's balance, and the
//! hourly bill of every contract (TFChain bills each contract every 600 blocks, one hour:
//! docs/cost-reference.md), computed by `cost::hourly_bill` from what the ledger says the
//! contract holds. Served to the CLI beside GridProxy at `/chain/pricing_policy`,
//! `/chain/tft_price` and `/chain/balance/{twin}`, in the shapes the grid client reads from the
//! chain. Time can be compressed: `sim advance --hours N` moves the simulated clock on and
//! bills the hours at once. Kept in `<sim dir>/billing.json`, changed under its own lock.

use std::collections::BTreeMap;
use std::fs::File;

use anyhow::{Context as _, Result};
use axum::extract::{Path as UrlPath, State};
use axum::response::{IntoResponse, Json, Response};
use serde::{Deserialize, Serialize};

use super::ledger::{Contract, Ledger, SimDir};
use crate::cost::{self, PlannedContract, Prices, Vm, Work};

/// A new twin's balance: 10 000 TFT (in TFT units, 1e-7 TFT).
pub const STARTING_BALANCE: u64 = 10_000 * 10_000_000;

/// The simulated chain's figures: the genesis pricing policy, and a TFT price of $0.02 (above
/// the genesis floor, so the average is the one used).
pub fn prices() -> Prices {
    let mut prices = Prices::genesis();
    prices.tft_price.average_musd = 20;
    prices.source = "the simulator's chain (TFChain's genesis policy)".into();
    prices
}

/// A farmer's extra fee for renting the node, in mUSD a month: node 24 asks $10 (the others
/// nothing), so a dedicated node's price shows one.
pub fn extra_fee_musd(node_id: u32) -> u64 {
    if node_id == 24 { 10_000 } else { 0 }
}

/// What is kept between bills.
#[derive(Serialize, Deserialize, Debug, Default, Clone)]
pub struct Billing {
    /// Seconds the simulated clock runs ahead of this machine's.
    pub clock_offset: u64,
    /// twin → free balance in TFT units; a twin not here has [`STARTING_BALANCE`].
    pub balances: BTreeMap<u32, u64>,
    /// contract → simulated time it is billed up to.
    pub billed_until: BTreeMap<u64, u64>,
    /// twin → TFT units billed so far.
    pub spent: BTreeMap<u32, u64>,
    /// cancelled contract → the simulated time it ended, fixed when it is first seen cancelled
    /// (its cancellation on this machine's clock plus the offset then: an advance later does not
    /// move it, so nothing is billed after a contract ended).
    #[serde(default)]
    pub ended_at: BTreeMap<u64, u64>,
}

impl Billing {
    pub fn balance(&self, twin: u32) -> u64 {
        self.balances
            .get(&twin)
            .copied()
            .unwrap_or(STARTING_BALANCE)
    }
}

/// The contract as `cost` bills it: a node contract's capacity and public IPv4 addresses, or a
/// name.
pub fn planned(c: &Contract) -> PlannedContract {
    let work = if c.kind == "name" {
        Work::Name {
            name: c.name.clone(),
        }
    } else {
        Work::Node {
            vms: vec![Vm {
                name: format!("contract {}", c.contract_id),
                cpu: c.cru,
                memory_mb: c.mru >> 20,
                disk_gb: c.sru.div_ceil(1 << 30),
            }],
            public_ips: u32::try_from(c.public_ips.len()).unwrap_or(u32::MAX),
            on_rented_node: false,
        }
    };
    PlannedContract {
        label: c.contract_id.to_string(),
        node: u64::from(c.node_id),
        contract_id: c.contract_id,
        work,
    }
}

/// Bills every whole hour each contract ran up to the simulated clock (a cancelled one up to
/// its cancellation), taking each bill from its twin's balance with the discount the balance
/// earns at that hour. A contract seen for the first time counts from its creation.
pub fn settle(billing: &mut Billing, ledger: &Ledger, now: u64) {
    let prices = prices();
    let clock = now + billing.clock_offset;
    for c in ledger.contracts.values() {
        let start = *billing
            .billed_until
            .entry(c.contract_id)
            .or_insert(c.created_at + billing.clock_offset);
        let end = if c.state == "Created" {
            clock
        } else {
            // Every advance settles first, so the offset now is the one of the cancellation.
            *billing
                .ended_at
                .entry(c.contract_id)
                .or_insert(c.cancelled_at + billing.clock_offset)
        };
        let hours = end.saturating_sub(start) / cost::SECS_PER_HOUR;
        if hours == 0 {
            continue;
        }
        let plan = planned(c);
        for _ in 0..hours {
            let balance = billing.balance(c.twin_id);
            let (due, _) = cost::hourly_bill(&plan, &prices, balance);
            billing
                .balances
                .insert(c.twin_id, balance.saturating_sub(due));
            *billing.spent.entry(c.twin_id).or_default() += due;
        }
        billing
            .billed_until
            .insert(c.contract_id, start + hours * cost::SECS_PER_HOUR);
    }
}

impl SimDir {
    pub(crate) fn billing_path(&self) -> std::path::PathBuf {
        self.root.join("billing.json")
    }

    /// Settles the bills up to now, then runs `change` on the billing record, under its lock;
    /// writes it only when that changed it (a look at a grid with no bill due creates nothing).
    pub fn with_billing<T>(&self, change: impl FnOnce(&mut Billing) -> T) -> Result<T> {
        let path = self.billing_path();
        if !self.root.is_dir() {
            // No simulator yet: no contract, nothing billed.
            let mut billing = Billing::default();
            let out = change(&mut billing);
            if serde_json::to_value(&billing)? != serde_json::to_value(Billing::default())? {
                crate::files::create_private_dir(&self.root)?;
                crate::files::write_atomic(&path, &serde_json::to_vec_pretty(&billing)?, 0o600)?;
            }
            return Ok(out);
        }
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.root.join("billing.lock"))
            .context("opening the simulator's billing lock")?;
        lock.lock().context("locking the simulator's billing")?;
        let mut billing: Billing = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "{}: the simulator's billing is damaged; `tfgrid-compose sim reset` starts \
                        over",
                    path.display()
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Billing::default(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let before = serde_json::to_vec_pretty(&billing)?;
        settle(&mut billing, &self.read()?, crate::clock::now_unix());
        let out = change(&mut billing);
        let after = serde_json::to_vec_pretty(&billing)?;
        if after != before {
            crate::files::write_atomic(&path, &after, 0o600)?;
        }
        drop(lock);
        Ok(out)
    }

    /// Moves the simulated clock `hours` on, billing every running contract for them; returns
    /// the record after.
    pub fn advance(&self, hours: u64) -> Result<Billing> {
        self.with_billing(|b| b.clock_offset += hours * cost::SECS_PER_HOUR)?;
        self.with_billing(|b| b.clone())
    }
}

fn unavailable(err: &anyhow::Error) -> Response {
    (
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        format!("{err:#}"),
    )
        .into_response()
}

/// `GET /chain/pricing_policy`: policy 1 as `pricingPolicies.get({id: 1})` returns it.
pub async fn pricing_policy() -> Response {
    Json(cost::prices::PricingPolicyJson::of(&prices().policy)).into_response()
}

/// `GET /chain/tft_price`: the average, floor and ceiling, in mUSD.
pub async fn tft_price() -> Response {
    Json(prices().tft_price).into_response()
}

/// `GET /chain/balance/{twin}`: the twin's free balance after the bills due now, in TFT units.
pub async fn balance(State(sim): State<SimDir>, UrlPath(twin): UrlPath<u32>) -> Response {
    match sim.with_billing(|b| b.balance(twin)) {
        Ok(free) => Json(cost::prices::BalanceJson { free }).into_response(),
        Err(err) => unavailable(&err),
    }
}

/// A node's monthly price rented whole (GridProxy's `price_usd`): its capacity at the
/// dedication discount plus its extra fee, in USD.
pub fn node_price_usd(node: &super::ledger::Node) -> f64 {
    let rent = PlannedContract {
        label: node.node_id.to_string(),
        node: u64::from(node.node_id),
        contract_id: 0,
        work: Work::Rent {
            capacity: cost::Capacity {
                cru: node.total.cru,
                mru: node.total.mru,
                sru: node.total.sru,
                hru: node.total.hru,
            },
            extra_fee_musd: extra_fee_musd(node.node_id),
        },
    };
    (cost::hourly_units_usd(&rent, &prices().policy) * cost::HOURS_PER_MONTH) as f64
        / cost::UNITS_PER_USD
}

impl SimDir {
    /// Forgets balances and bills (a new grid starts with new contract ids).
    pub fn forget_billing(&self) {
        let _ = std::fs::remove_file(self.billing_path());
    }
}

#[cfg(test)]
mod tests {
    use super::{Billing, STARTING_BALANCE, planned, prices, settle};
    use crate::cost::{self, Plan};
    use crate::sim::ledger::{GIB, Ledger};

    #[test]
    fn a_month_of_hourly_bills_takes_the_estimate_from_the_balance() {
        let mut ledger = Ledger::new_grid();
        let twin = ledger.twin_of("a b c");
        let now = 1_800_000_000;
        let month = cost::HOURS_PER_MONTH * cost::SECS_PER_HOUR;
        for (node, cru, mem, disk, ips) in [(11, 1, 2, 20, 1), (12, 4, 8, 100, 0)] {
            let id = ledger.open_contract(twin, "node", node, "{}".into());
            let c = ledger.contracts.get_mut(&id).unwrap();
            (c.cru, c.mru, c.sru) = (cru, mem * GIB, disk * GIB);
            c.public_ips = vec!["198.51.100.100/24".into(); ips];
            c.created_at = now - month;
        }
        let gone = ledger.open_contract(twin, "name", 0, "{}".into());
        ledger.contracts.get_mut(&gone).unwrap().created_at = now - month;
        ledger.cancel(gone);
        let mut billing = Billing::default();
        settle(&mut billing, &ledger, now);
        let plan = Plan {
            contracts: ledger.active(twin).map(planned).collect(),
        };
        let estimate = cost::estimate(&plan, &prices(), STARTING_BALANCE as f64 / 1e7);
        let spent = (STARTING_BALANCE - billing.balance(twin)) as f64 / 1e7;
        assert!(
            (spent - estimate.tft_per_month).abs() <= estimate.tft_per_month * 0.01,
            "billed {spent} TFT, estimated {}",
            estimate.tft_per_month
        );
        // Settling again at the same time bills nothing more.
        let before = billing.balance(twin);
        settle(&mut billing, &ledger, now);
        assert_eq!(billing.balance(twin), before);
    }

    /// A contract that ended before the clock moved on is billed for the time it ran only: an
    /// advance of a month after its cancellation bills it nothing more.
    #[test]
    fn an_advance_after_a_cancellation_bills_the_cancelled_contract_nothing() {
        let mut ledger = Ledger::new_grid();
        let twin = ledger.twin_of("a b c");
        let now = 1_800_000_000;
        let id = ledger.open_contract(twin, "node", 11, "{}".into());
        ledger.cancel(id);
        let c = ledger.contracts.get_mut(&id).unwrap();
        (c.cru, c.mru, c.sru) = (1, 2 * GIB, 20 * GIB);
        (c.created_at, c.cancelled_at) = (now - 3 * cost::SECS_PER_HOUR, now - 600);
        let mut billing = Billing::default();
        settle(&mut billing, &ledger, now);
        let after_run = billing.balance(twin);
        assert!(after_run < STARTING_BALANCE, "its 2 whole hours are billed");
        billing.clock_offset += cost::HOURS_PER_MONTH * cost::SECS_PER_HOUR;
        settle(&mut billing, &ledger, now);
        assert_eq!(billing.balance(twin), after_run, "billed after it ended");
    }
}
