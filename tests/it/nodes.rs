//! Node selection against recorded GridProxy answers served from 127.0.0.1, the `nodes` and
//! `farms` commands, `up --node`, retrying on another node after a failed apply, `--network`,
//! and `signin`/`signout` with a canary mnemonic through a full `up`.

use crate::common::{GridProxyFixture, TestContext};
use crate::grid::CANARY;

pub(crate) fn use_single_vm(cx: &TestContext) {
    let manifest = cx.app.join("tfgrid-compose.yaml");
    let text = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace("pattern: minimal", "pattern: single-vm")
        .replace("config:\n  flavor: small\n", "");
    std::fs::write(&manifest, text).unwrap();
    cx.set_outputs(
        r#"{"primary_ip": {"value": "127.0.0.1"}, "primary_ip_type": {"value": "ipv4"}, "deployment_name": {"value": "minimal"}, "node_ids": {"value": [21]}}"#,
    );
}

fn run(cx: &TestContext, proxy: &GridProxyFixture, args: &[&str]) -> (i32, String, String) {
    run_with(cx, proxy, args, &[])
}

/// `run` with extra environment (e.g. a fault for the fake tools).
fn run_with(
    cx: &TestContext,
    proxy: &GridProxyFixture,
    args: &[&str],
    env: &[(&str, &str)],
) -> (i32, String, String) {
    let out = cx
        .cmd()
        .args(args)
        .env("TFGRID_COMPOSE_GRIDPROXY_URL", &proxy.url)
        .env("TF_VAR_mnemonic", CANARY)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `up` of a fresh single-vm app with `env` (a fault for the fake tools): the context, the exit
/// code and stderr.
pub(crate) fn up_single_vm(
    proxy: &GridProxyFixture,
    env: &[(&str, &str)],
) -> (TestContext, i32, String) {
    let cx = TestContext::new();
    use_single_vm(&cx);
    let (code, _, err) = run_with(&cx, proxy, &["up", cx.app_arg()], env);
    (cx, code, err)
}

pub(crate) fn tfvars(cx: &TestContext) -> serde_json::Value {
    serde_json::from_str(
        &std::fs::read_to_string(cx.state_dir().join("terraform/tfgrid-compose.tfvars.json"))
            .unwrap(),
    )
    .unwrap()
}

fn node_ids(doc: &serde_json::Value) -> Vec<u64> {
    doc["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["node_id"].as_u64().unwrap())
        .collect()
}

#[test]
fn nodes_lists_usable_candidates_best_first_and_applies_the_filters() {
    let cx = TestContext::new();
    let proxy = GridProxyFixture::start(0);
    let (code, out, err) = run(&cx, &proxy, &["nodes", "--json"]);
    assert_eq!(code, 0, "{err}");
    let doc = crate::schema::assert_fits("nodes", &out);
    // Down (13), unhealthy (14), rented (15) and dedicated (31) nodes never show up.
    let mut ids = node_ids(&doc);
    assert_eq!(ids.len(), 5, "{doc}");
    ids.sort_unstable();
    assert_eq!(ids, [11, 12, 21, 22, 23]);
    let scores: Vec<f64> = doc["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["score"].as_f64().unwrap())
        .collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "best first: {scores:?}"
    );
    assert_eq!(doc["network"], "main");
    assert!(
        proxy.requests()[0].starts_with(
            "/nodes?status=up&healthy=true&free_mru=1073741824&free_sru=10737418240&size=500&page=1"
        ),
        "{:?}",
        proxy.requests()
    );

    // 8 GB of memory leaves out node 12; a free public IPv4 leaves out farm 2 (TFTech).
    let (_, out, _) = run(
        &cx,
        &proxy,
        &["nodes", "--json", "--memory", "8192", "--ipv4"],
    );
    let mut ids = node_ids(&serde_json::from_str(&out).unwrap());
    ids.sort_unstable();
    assert_eq!(ids, [11, 22, 23]);
    // Farm names are matched case-insensitively; the blacklist wins; uptime in days.
    let (_, out, _) = run(
        &cx,
        &proxy,
        &[
            "nodes",
            "--json",
            "--farm",
            "lin,freefarm",
            "--blacklist-node",
            "11",
            "--min-uptime-days",
            "3",
        ],
    );
    let mut ids = node_ids(&serde_json::from_str(&out).unwrap());
    ids.sort_unstable();
    assert_eq!(ids, [12, 23]);
    let (_, out, _) = run(
        &cx,
        &proxy,
        &[
            "nodes",
            "--json",
            "--blacklist-farm",
            "TFTECH",
            "--max-memory-usage",
            "50",
        ],
    );
    let mut ids = node_ids(&serde_json::from_str(&out).unwrap());
    ids.sort_unstable();
    assert_eq!(ids, [11, 22, 23], "node 12 uses 28 of 32 GiB");
    // The config file's filter applies when no flag says otherwise.
    let config = cx.home().join(".config/tfgrid-compose");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("config.yaml"),
        "node_filter:\n  whitelist_farms: [Lin]\n",
    )
    .unwrap();
    let (_, out, _) = run(&cx, &proxy, &["nodes", "--json"]);
    let mut ids = node_ids(&serde_json::from_str(&out).unwrap());
    ids.sort_unstable();
    assert_eq!(ids, [22, 23]);
    std::fs::write(
        config.join("config.yaml"),
        "node_filter:\n  whitelist_farm: [Lin]\n",
    )
    .unwrap();
    let (code, _, err) = run(&cx, &proxy, &["nodes"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("config.yaml:2") && err.contains("whitelist_farm"),
        "{err}"
    );
    std::fs::remove_file(config.join("config.yaml")).unwrap();

    // Text output, one node, farms.
    let (code, out, err) = run(&cx, &proxy, &["nodes", "--limit", "2"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 3, "header and two rows: {out}");
    assert!(err.contains("Matched 5 nodes"), "{err}");
    let (code, out, _) = run(&cx, &proxy, &["nodes", "21"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("Cairo, Egypt") && out.contains("memory      112 GiB free of 128"),
        "{out}"
    );
    let (code, _, err) = run(&cx, &proxy, &["nodes", "999"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("node 999 does not exist"), "{err}");
    let (code, out, _) = run(&cx, &proxy, &["farms", "--json"]);
    assert_eq!(code, 0);
    let farms: serde_json::Value = serde_json::from_str(&out).unwrap();
    let free: Vec<u64> = farms["farms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["free_ipv4"].as_u64().unwrap())
        .collect();
    assert_eq!(free, [1, 0, 1]);
    let (_, out, _) = run(&cx, &proxy, &["farms", "--name", "free"]);
    assert!(out.contains("Freefarm") && !out.contains("TFTech"), "{out}");
}

#[test]
fn gridproxy_faults_are_retried_then_reported_with_a_hint() {
    let cx = TestContext::new();
    // Two 503s are retried; the third attempt answers.
    let proxy = GridProxyFixture::start(2);
    let (code, _, err) = run(&cx, &proxy, &["nodes", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        proxy.requests().len(),
        4,
        "three tries of /nodes, then /farms for the names: {:?}",
        proxy.requests()
    );
    // Nothing listens: one line naming the URL, and the ways out.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let out = cx
        .cmd()
        .args(["nodes"])
        .env("TFGRID_COMPOSE_GRIDPROXY_URL", &url)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("GridProxy at {url} did not answer")) && err.contains("--node ID"),
        "{err}"
    );
}

#[test]
fn up_selects_a_node_pins_one_with_node_and_retries_elsewhere_after_a_failed_apply() {
    // Selected: a usable node, recorded in state and passed as `node_id`.
    let cx = TestContext::new();
    use_single_vm(&cx);
    let proxy = GridProxyFixture::start(0);
    let (code, _, err) = run(&cx, &proxy, &["up", cx.app_arg()]);
    assert_eq!(code, 0, "{err}");
    let first = tfvars(&cx)["node_id"].as_u64().unwrap();
    assert!([11, 12, 21, 22, 23].contains(&first), "{first}");
    assert!(
        err.contains(&format!("vm on node {first} (selected on main)")),
        "{err}"
    );
    assert_eq!(tfvars(&cx)["tfgrid_network"], "main");

    // Pinned with --node: GridProxy is not asked.
    let cx = TestContext::new();
    use_single_vm(&cx);
    let proxy = GridProxyFixture::start(0);
    let (code, _, err) = run(
        &cx,
        &proxy,
        &["up", cx.app_arg(), "--node", "4242", "--network", "test"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(tfvars(&cx)["node_id"], 4242);
    assert_eq!(tfvars(&cx)["tfgrid_network"], "test");
    assert!(proxy.requests().is_empty(), "{:?}", proxy.requests());

    // The first apply fails: the node is excluded and another one is picked, once.
    let proxy = GridProxyFixture::start(0);
    let (cx, code, err) = up_single_vm(&proxy, &[("FAKE_FAIL_ONCE", "tofu:apply")]);
    assert_eq!(code, 0, "{err}");
    let failed: u64 = err
        .split("terraform apply failed on node ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{err}"));
    let second = tfvars(&cx)["node_id"].as_u64().unwrap();
    assert_ne!(failed, second);
    assert_eq!(
        tfvars(&cx)["exclude_nodes"],
        serde_json::json!([failed]),
        "the scheduler is told too"
    );
    assert!(
        err.contains(&format!("terraform apply failed on node {failed}"))
            && err.contains("attempt 2/3"),
        "{err}"
    );
    assert_eq!(cx.steps().iter().filter(|s| *s == "tofu apply").count(), 2);
    assert_eq!(cx.steps().iter().filter(|s| *s == "tofu init").count(), 1);

    // Every apply fails: three attempts on three nodes, then the error; state kept for `down`.
    let (cx, code, err) = up_single_vm(&proxy, &[("FAKE_FAIL", "tofu:apply")]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(cx.steps().iter().filter(|s| *s == "tofu apply").count(), 3);
    let state: serde_yaml::Value = serde_yaml::from_str(&cx.state_text()).unwrap();
    assert_eq!(state["excluded_nodes"].as_sequence().unwrap().len(), 2);
    assert!(
        err.contains("terraform apply failed; its state is kept"),
        "{err}"
    );
}

#[test]
fn no_candidate_and_a_network_conflict_are_input_errors_that_write_nothing() {
    let cx = TestContext::new();
    use_single_vm(&cx);
    let proxy = GridProxyFixture::start(0);
    let manifest = cx.app.join("tfgrid-compose.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, format!("{text}config:\n  vm_mem: 200000\n")).unwrap();
    let (code, _, err) = run(&cx, &proxy, &["up", cx.app_arg(), "--dry-run"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("no node on")
            && err.contains("200000 MB memory")
            && err.contains("tfgrid-compose nodes"),
        "{err}"
    );
    std::fs::write(
        &manifest,
        format!("{text}config:\n  tfgrid_network: test\n"),
    )
    .unwrap();
    let (code, _, err) = run(&cx, &proxy, &["up", cx.app_arg(), "--network", "dev"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("config.tfgrid_network: test") && err.contains("--network"),
        "{err}"
    );
    std::fs::write(
        &manifest,
        format!("{text}node_filter:\n  max_cpu_usage: 120\n"),
    )
    .unwrap();
    let (code, _, err) = run(&cx, &proxy, &["up", cx.app_arg()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("node_filter.max_cpu_usage") && err.contains("tfgrid-compose.yaml:"),
        "{err}"
    );
    assert!(!cx.app.join(".tfgrid-compose").exists());
    let (code, _, err) = run(&cx, &proxy, &["nodes", "--network", "moon"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn signin_stores_a_valid_mnemonic_privately_and_it_never_leaks_through_up() {
    use std::os::unix::fs::PermissionsExt as _;
    let cx = TestContext::new();
    let stored = cx.home().join(".config/tfgrid-compose/mnemonic");
    let signin = |input: &str| {
        let out = crate::common::output_with_input(cx.std_cmd().arg("signin"), input.as_bytes());
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    // A wrong checksum is refused; nothing is stored and the words are not echoed.
    let (code, out) =
        signin("scheme spot photo card baby mountain device kick cradle pact join join\n");
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("checksum") && !out.contains("cradle"), "{out}");
    assert!(!stored.exists());
    let (code, out) = signin(&format!("  {}\n", CANARY.to_uppercase()));
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        stored.metadata().unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::read_to_string(&stored).unwrap(),
        format!("{CANARY}\n")
    );
    let (code, _, err) = cx.run(&["signin", "--check"]);
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = cx.run(&["signin", "--check", "--json"]);
    let doc = crate::schema::assert_fits("signin-check", &out);
    assert_eq!(
        (
            doc["signed_in"].as_bool(),
            doc["words"].as_u64(),
            doc["file_private"].as_bool()
        ),
        (Some(true), Some(12), Some(true))
    );
    assert!(
        err.contains("valid 12-word mnemonic") && err.contains(stored.to_str().unwrap()),
        "{err}"
    );
    // The environment comes first.
    let out = cx
        .cmd()
        .args(["signin", "--check", "--json"])
        .env("TF_VAR_mnemonic", "not a phrase")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let doc = crate::schema::assert_fits("signin-check", &String::from_utf8_lossy(&out.stdout));
    assert_eq!(doc["signed_in"], false);
    assert_eq!(doc["source"]["name"], "TF_VAR_mnemonic");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("not a phrase"));

    // A full `up` and `down` with the stored mnemonic: tofu saw it in its environment only.
    use_single_vm(&cx);
    let proxy = GridProxyFixture::start(0);
    let out = cx
        .cmd()
        .args(["up", cx.app_arg()])
        .env("TFGRID_COMPOSE_GRIDPROXY_URL", &proxy.url)
        .output()
        .unwrap();
    let up_text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{up_text}");
    assert_eq!(
        std::fs::read_to_string(cx.fake_dir.join("env.log"))
            .unwrap()
            .lines()
            .count(),
        4,
        "init, plan, apply and output, each with the mnemonic"
    );
    let mut files = Vec::new();
    crate::grid::all_files(cx.root.path(), &mut files);
    for file in files.iter().filter(|f| **f != stored) {
        assert!(
            !String::from_utf8_lossy(&std::fs::read(file).unwrap_or_default())
                .contains("spot photo card"),
            "mnemonic in {}",
            file.display()
        );
    }
    assert!(!up_text.contains("spot photo card"));

    // `down` finds the stored mnemonic the way `up` did (not only in TF_VAR_mnemonic)
    let out = cx
        .cmd()
        .args(["down", "--yes", cx.app_arg()])
        .env_remove("TF_VAR_mnemonic")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        std::fs::read_to_string(cx.fake_dir.join("env.log"))
            .unwrap()
            .lines()
            .count()
            > 4,
        "destroy had the mnemonic too"
    );

    let (code, _, err) = cx.run(&["signout"]);
    assert_eq!(code, 0, "{err}");
    assert!(!stored.exists());
    let (code, _, err) = cx.run(&["signin", "--check"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("no mnemonic found") && err.contains("tfgrid-compose signin"),
        "{err}"
    );
}

/// `contracts --twin` on a real network reads the twin's active contracts from GridProxy: node
/// contracts with their metadata's type and name, name contracts, every one an orphan here (no
/// deployment on this machine holds it); without `--twin` it says what is needed.
#[test]
fn contracts_of_a_twin_come_from_gridproxy_and_unknown_ones_are_orphans() {
    let cx = TestContext::new();
    let proxy = GridProxyFixture::start(0);
    let (code, out, err) = run(&cx, &proxy, &["contracts", "--twin", "81", "--json"]);
    assert_eq!(code, 0, "{err}");
    let doc = crate::schema::assert_fits("contracts", &out);
    assert_eq!(doc["orphans"], 3);
    let rows: Vec<(u64, &str, &str, u64)> = doc["contracts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["contract_id"].as_u64().unwrap(),
                c["workload"].as_str().unwrap(),
                c["name"].as_str().unwrap(),
                c["node_id"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (50977, "network", "blognet", 21),
            (50978, "vm", "blog", 21),
            (50979, "name", "gatewaytest", 0)
        ]
    );
    assert!(
        proxy.requests()[0].starts_with("/contracts?twin_id=81&state=created"),
        "{:?}",
        proxy.requests()
    );
    let (code, _, err) = run(&cx, &proxy, &["contracts"]);
    assert_eq!(code, 2, "bad input: {err}");
    assert!(
        err.contains("needs your twin id") && err.contains("--twin"),
        "{err}"
    );
}
