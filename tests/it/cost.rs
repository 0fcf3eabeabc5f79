//! What a deployment costs: on the grid simulator with the real tools, the estimate before `up`
//! and of what runs, each contract's cost, a simulated month of hourly bills taken from the
//! twin's balance, and the config's `max_monthly_cost` over what runs; with fake tools, the
//! estimate `validate`, `up --dry-run` and `cost` print for each grid pattern.

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
    // Priced at the simulator's figures whatever network is configured now: the deployment
    // was made on the simulator (its state.yaml says so).
    let on_main = |args: &[&str]| -> serde_json::Value {
        let out = sim
            .cmd()
            .env("TFGRID_COMPOSE_NETWORK", "main")
            .args(args)
            .arg("--json")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    assert_eq!(
        on_main(&["cost", arg])["estimate"]["usd_per_month"],
        estimate["usd_per_month"]
    );
    assert_eq!(
        on_main(&["ps"])["deployments"][0]["usd_per_month"],
        estimate["usd_per_month"]
    );

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

/// `validate`, `up --dry-run` and `cost` of each grid pattern as shipped print the estimate the
/// grid calculator gives for its default deployment (tests/fixtures/cost/calculator.json), with
/// the figures and their date, and create nothing.
#[test]
fn validate_dry_run_and_cost_show_each_grid_patterns_estimate_and_create_nothing() {
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(
            crate::sim::root_dir().join("tests/fixtures/cost/calculator.json"),
        )
        .unwrap(),
    )
    .unwrap();
    for pattern in ["single-vm", "gateway", "k3s", "ai-stack"] {
        let cx = crate::common::TestContext::new();
        crate::grid::use_pattern(&cx, pattern);
        let proxy = crate::common::GridProxyFixture::start(0);
        let monthly: f64 = fixture["patterns"][pattern]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| number(&c["sharedPrice"]))
            .sum();
        let line = format!("${monthly:.2} a month, ${:.2} a year", monthly * 12.0);
        for args in [vec!["validate"], vec!["up", "--dry-run"]] {
            let out = cx
                .cmd()
                .args(&args)
                .arg(&cx.app)
                .env("TF_VAR_mnemonic", crate::grid::CANARY)
                .env("TFGRID_COMPOSE_GRIDPROXY_URL", &proxy.url)
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{pattern} {args:?}: {err}");
            assert!(
                err.contains(&line),
                "{pattern} {args:?}: no `{line}` in\n{err}"
            );
            assert!(
                err.contains("Figures CU $0.0100/h") && err.contains("2024-03-11"),
                "{err}"
            );
        }
        let (code, out, err) = cx.run(&["cost", "--json", cx.app_arg()]);
        assert_eq!(code, 0, "{err}");
        let doc = crate::schema::assert_fits("cost", &out);
        assert_eq!(doc["source"], "planned");
        assert!(
            (number(&doc["estimate"]["usd_per_month"]) - monthly).abs() < 1e-6,
            "{out}"
        );
        assert!(!cx.app.join(".tfgrid-compose").exists(), "{pattern}");
    }
}

/// `ps` lists every deployment even when costs cannot be computed (the simulator's ledger
/// damaged), and says why.
#[test]
fn ps_lists_deployments_when_the_costs_cannot_be_computed() {
    let cx = crate::common::TestContext::new();
    let (code, _, err) = cx.run(&["up", cx.app_arg()]);
    assert_eq!(code, 0, "{err}");
    let sim = cx.registry().with_file_name("sim");
    std::fs::create_dir_all(&sim).unwrap();
    std::fs::write(sim.join("ledger.json"), "{not json").unwrap();
    let (code, stdout, stderr) = cx.run(&["ps", "--network", "sim"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("minimal"), "{stdout}");
    assert!(stderr.contains("monthly costs not shown"), "{stderr}");
}
