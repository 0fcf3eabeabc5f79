//! What a deployment costs, end to end on the grid simulator with the real tools: the estimate
//! before `up` and of what runs, each contract's cost, a simulated month of hourly bills taken
//! from the twin's balance, and the config's `max_monthly_cost` over what runs.

use serde_json::Value;

use crate::local::SERIAL;
use crate::sim::Sim;

fn number(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn a_simulated_month_of_a_three_vm_deployment_lowers_the_balance_by_the_estimate() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let sim = Sim::new();
    let app = sim.app("grid-gateway", "billed");
    let arg = app.to_str().unwrap();
    let planned = sim.json(&["cost", arg]);
    assert_eq!(
        (planned["source"].as_str(), planned["vms"].as_u64()),
        (Some("planned"), Some(3))
    );
    assert!(
        planned["estimate"]["prices"]["source"]
            .as_str()
            .unwrap()
            .contains("simulator"),
        "the simulator's figures: {planned}"
    );
    sim.up(&app, "default", "gateway");
    let runs = sim.json(&["cost", arg]);
    assert_eq!(
        (runs["source"].as_str(), runs["vms"].as_u64()),
        (Some("runs"), Some(3))
    );
    let estimate = &runs["estimate"];
    assert_eq!(
        estimate["usd_per_month"],
        planned["estimate"]["usd_per_month"]
    );
    assert!(number(&estimate["usd_per_month"]) > 0.0);

    // Each contract's cost, as `contracts` shows it, adds up to the estimate.
    let contracts = sim.contracts();
    let twin = contracts["twin_id"].as_u64().unwrap().to_string();
    let listed: f64 = contracts["contracts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["usd_per_month"].as_f64())
        .sum();
    assert!(
        (listed - number(&estimate["usd_per_month"])).abs() < 1e-6,
        "{contracts}"
    );

    // A month of hourly bills, the clock compressed.
    let before =
        number(&sim.json(&["sim", "advance", "--hours", "0"])["twins"][&twin]["balance_tft"]);
    assert!((before - number(&estimate["balance_tft"])).abs() < 1e-6);
    let after =
        number(&sim.json(&["sim", "advance", "--hours", "720"])["twins"][&twin]["balance_tft"]);
    let billed = before - after;
    let expected = number(&estimate["tft_per_month"]);
    assert!(
        (billed - expected).abs() <= expected * 0.01,
        "a month billed {billed} TFT, the estimate is {expected} TFT"
    );

    // The config's total cap counts what runs: a second environment would pass it.
    let cap = number(&estimate["usd_per_month"]) * 1.5;
    let out = sim
        .cmd()
        .args(["up", "--env", "second", "--pattern", "gateway", arg])
        .env("TFGRID_COMPOSE_MAX_MONTHLY_COST", format!("{cap}"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("billed:default") && err.contains("TFGRID_COMPOSE_MAX_MONTHLY_COST"),
        "{err}"
    );
    assert!(!app.join(".tfgrid-compose/second").exists());
    assert_eq!(
        sim.contracts()["contracts"],
        contracts["contracts"],
        "nothing created"
    );
}
