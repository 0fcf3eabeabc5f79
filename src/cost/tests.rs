//! The calculation against the grid calculator's own numbers (tests/fixtures/cost/calculator.json,
//! made by running tfgrid-sdk-ts's calculator.ts on the same inputs) and against TFChain's rules.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::{Capacity, DiscountLevel, Plan, PlannedContract, Prices, Vm, Work, estimate, plan};

fn fixture() -> Value {
    serde_json::from_str(include_str!("../../tests/fixtures/cost/calculator.json")).unwrap()
}

/// The fixture's figures: genesis policy 1, TFT at $0.01.
fn prices() -> Prices {
    let prices = Prices::genesis();
    assert!((prices.tft_usd() - fixture()["tft_price_usd"].as_f64().unwrap()).abs() < 1e-9);
    prices
}

fn close(a: f64, b: f64, what: &str) {
    assert!((a - b).abs() < 1e-6, "{what}: {a} != {b}");
}

fn gib(n: &Value) -> u64 {
    n.as_u64().unwrap() << 30
}

#[test]
fn each_shipped_patterns_default_deployment_costs_what_the_grid_calculator_gives() {
    let fixture = fixture();
    let patterns = fixture["patterns"].as_object().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("patterns");
    let mut shipped: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            e.path()
                .join("pattern.yaml")
                .exists()
                .then(|| e.file_name().to_string_lossy().into_owned())
        })
        .collect();
    shipped.sort();
    let mut listed: Vec<String> = patterns.keys().cloned().collect();
    listed.sort();
    assert_eq!(
        shipped, listed,
        "every shipped pattern has its calculator figures"
    );
    for (name, expected) in patterns {
        let pattern = crate::pattern::Pattern::load(&root.join(name)).unwrap();
        let plan = plan::from_pattern(&pattern, &BTreeMap::new()).unwrap();
        let expected = expected.as_array().unwrap();
        assert_eq!(plan.contracts.len(), expected.len(), "{name}: contracts");
        let estimate = estimate(&plan, &prices(), 0.0);
        let mut total = 0.0;
        for ((contract, cost), want) in plan.contracts.iter().zip(&estimate.contracts).zip(expected)
        {
            let what = format!("{name}/{}", contract.label);
            assert_eq!(contract.label, want["role"].as_str().unwrap(), "{what}");
            let Work::Node {
                vms, public_ips, ..
            } = &contract.work
            else {
                panic!("{what}: a node contract")
            };
            let capacity = plan::capacity(vms);
            assert_eq!(
                (capacity.cru, capacity.mru, capacity.sru, *public_ips),
                (
                    want["cru"].as_u64().unwrap(),
                    gib(&want["mru"]),
                    gib(&want["sru"]),
                    u32::from(want["ipv4u"].as_bool().unwrap())
                ),
                "{what}: the calculator's inputs"
            );
            close(cost.cu, want["cu"].as_f64().unwrap(), &format!("{what} CU"));
            close(cost.su, want["su"].as_f64().unwrap(), &format!("{what} SU"));
            close(
                cost.usd_per_month,
                want["sharedPrice"].as_f64().unwrap(),
                &what,
            );
            // The same capacity rented as a dedicated node (no IPv4: a rent bills none).
            let rent = PlannedContract {
                label: what.clone(),
                node: 1,
                contract_id: 0,
                work: Work::Rent {
                    capacity,
                    extra_fee_musd: 0,
                },
            };
            let ipv4 = if *public_ips > 0 {
                40_000.0 * 720.0 / 1e7 / 2.0
            } else {
                0.0
            };
            close(
                estimate_one(rent, 0.0).usd_per_month + ipv4,
                want["dedicatedPrice"].as_f64().unwrap(),
                &format!("{what} dedicated"),
            );
            total += want["sharedPrice"].as_f64().unwrap();
        }
        close(estimate.usd_per_month, total, name);
        close(estimate.usd_per_year, total * 12.0, name);
        close(estimate.tft_per_month, total / 0.01, name);
    }
}

fn estimate_one(contract: PlannedContract, balance_tft: f64) -> super::Estimate {
    estimate(
        &Plan {
            contracts: vec![contract],
        },
        &prices(),
        balance_tft,
    )
}

fn node_contract(cru: u64, mru_gib: u64, sru_gib: u64, ipv4: bool) -> PlannedContract {
    PlannedContract {
        label: "vm".into(),
        node: 11,
        contract_id: 0,
        work: Work::Node {
            vms: vec![Vm {
                name: "vm".into(),
                cpu: cru,
                memory_mb: mru_gib * 1024,
                disk_gb: sru_gib,
            }],
            public_ips: u32::from(ipv4),
            on_rented_node: false,
        },
    }
}

#[test]
fn a_balance_earns_the_calculators_discount_package() {
    for case in fixture()["balances"].as_array().unwrap() {
        let contract = node_contract(
            case["cru"].as_u64().unwrap(),
            case["mru"].as_u64().unwrap(),
            case["sru"].as_u64().unwrap(),
            case["ipv4u"].as_bool().unwrap(),
        );
        let estimate = estimate_one(contract, case["balance"].as_f64().unwrap());
        let cost = &estimate.contracts[0];
        assert_eq!(
            cost.discount.name(),
            case["sharedPackage"].as_str().unwrap(),
            "{case}"
        );
        close(
            cost.usd_per_month,
            case["sharedPrice"].as_f64().unwrap(),
            &case.to_string(),
        );
    }
}

#[test]
fn chain_rules_names_rent_extra_fee_rented_nodes_and_the_tft_price_bounds() {
    // A name contract: unique_name (2500 units) an hour.
    let name = PlannedContract {
        label: "site".into(),
        node: 0,
        contract_id: 0,
        work: Work::Name {
            name: "site".into(),
        },
    };
    close(
        estimate_one(name, 0.0).usd_per_month,
        2500.0 * 720.0 / 1e7,
        "name",
    );
    // A node's extra fee (mUSD a month) is added whole to its rent.
    let capacity = Capacity {
        cru: 4,
        mru: 8 << 30,
        sru: 100 << 30,
        hru: 0,
    };
    let rent = |fee| PlannedContract {
        label: "n".into(),
        node: 5,
        contract_id: 0,
        work: Work::Rent {
            capacity,
            extra_fee_musd: fee,
        },
    };
    let base = estimate_one(rent(0), 0.0).usd_per_month;
    // (billed by the hour, rounded to the chain's unit: within a cent a month)
    let fee = estimate_one(rent(20_000), 0.0).usd_per_month - base;
    assert!((fee - 20.0).abs() < 0.01, "extra fee of $20: {fee}");
    // On a rented node only the public IPv4 is billed.
    let mut on_rented = node_contract(4, 8, 100, true);
    if let Work::Node { on_rented_node, .. } = &mut on_rented.work {
        *on_rented_node = true;
    }
    close(
        estimate_one(on_rented, 0.0).usd_per_month,
        40_000.0 * 720.0 / 1e7,
        "ipv4 only",
    );
    // The TFT price is kept between its bounds.
    let mut prices = Prices::genesis();
    prices.tft_price.average_musd = 2;
    assert_eq!(prices.tft_price_musd(), 10);
    prices.tft_price.average_musd = 5000;
    assert_eq!(prices.tft_price_musd(), 1000);
    // HRU counts at 1/1200 per GiB.
    let hdd = Capacity {
        cru: 0,
        mru: 0,
        sru: 0,
        hru: 1200 << 30,
    };
    close(hdd.su(), 1.0, "hru");
    assert_eq!(DiscountLevel::for_months(1.49), DiscountLevel::None);
    assert_eq!(DiscountLevel::for_months(18.0), DiscountLevel::Gold);
}

/// Nothing on the grid costs `$0.00`, never `$-0.00`.
#[test]
fn an_empty_plan_costs_a_positive_zero() {
    let e = super::estimate(
        &super::Plan {
            contracts: Vec::new(),
        },
        &super::Prices::genesis(),
        0.0,
    );
    assert!(e.usd_per_month.is_sign_positive() && e.tft_per_year.is_sign_positive());
    assert_eq!(super::usd(e.usd_per_month), "$0.00");
}
