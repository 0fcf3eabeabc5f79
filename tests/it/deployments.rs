//! Many deployments with fake tools: environments side by side, the registry behind `ps`,
//! id-prefix and `APP:ENV` targets, `select`, `max_environments`, `inspect`, app-defined commands.

use std::io::Write as _;

use serde_json::json;

use crate::common::TestContext;
use crate::schema::assert_fits;

fn up(cx: &TestContext, extra: &[&str]) {
    let mut args = vec!["up", cx.app_arg()];
    args.extend_from_slice(extra);
    let (code, _, err) = cx.run(&args);
    assert_eq!(code, 0, "{err}");
}

fn ps_json(cx: &TestContext) -> serde_json::Value {
    let (code, out, err) = cx.run(&["ps", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert_fits("ps", &out)
}

#[test]
fn environments_live_side_by_side_and_go_down_alone() {
    let cx = TestContext::new();
    up(&cx, &[]);
    let (code, _, err) = cx.run(&["up", cx.app_arg(), "--env", "staging"]);
    assert_eq!(code, 0, "{err}");
    // the commands `up` suggests reach the environment it made, not the default one
    let next = err
        .lines()
        .find(|l| l.contains("Next"))
        .expect("a Next line");
    assert_eq!(next.matches("--env staging").count(), 3, "{next}");
    assert!(cx.app.join(".tfgrid-compose/default/state.yaml").is_file());
    assert!(cx.app.join(".tfgrid-compose/staging/state.yaml").is_file());
    assert!(
        cx.app.join(".tfgrid-compose/staging/terraform").is_dir(),
        "each environment has its own Terraform state"
    );

    let ps = ps_json(&cx);
    let rows = ps["deployments"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let mut rows = rows.clone();
    rows.sort_by_key(|r| r["env"].as_str().unwrap().to_string());
    let envs: Vec<&str> = rows.iter().map(|r| r["env"].as_str().unwrap()).collect();
    assert_eq!(envs, ["default", "staging"]);
    assert!(rows.iter().all(|r| r["status"] == "running"
        && r["app"] == "minimal"
        && r["primary_ip"] == "127.0.0.1"));
    let (ids, states): (Vec<&str>, Vec<&str>) = rows
        .iter()
        .map(|r| (r["id"].as_str().unwrap(), r["state_dir"].as_str().unwrap()))
        .unzip();
    assert_ne!(ids[0], ids[1]);
    assert!(states[1].ends_with(".tfgrid-compose/staging"));

    // The human table has one row per deployment and the short ids.
    let (_, table, _) = cx.run(&["ps"]);
    assert!(table.starts_with("ID "), "{table}");
    assert!(
        table.contains(&ids[0][..8]) && table.contains("staging"),
        "{table}"
    );

    // `status` by APP:ENV, by id prefix, and by --env: all the same deployment.
    for args in [
        vec!["status", "--json", "minimal:staging"],
        vec!["status", "--json", &ids[1][..6]],
        vec!["status", "--json", cx.app_arg(), "--env", "staging"],
    ] {
        let (code, out, err) = cx.run(&args);
        assert_eq!(code, 0, "{args:?}: {err}");
        let doc = assert_fits("status", &out);
        assert_eq!(doc["deployment"]["id"], ids[1], "{args:?}");
        assert_eq!(doc["deployment"]["env"], "staging");
    }

    let (code, _, err) = cx.run(&["down", "--yes", "minimal:staging"]);
    assert_eq!(code, 0, "{err}");
    assert!(!cx.app.join(".tfgrid-compose/staging").exists());
    assert!(
        cx.app.join(".tfgrid-compose/default/state.yaml").is_file(),
        "the other environment is untouched"
    );
    let ps = ps_json(&cx);
    assert_eq!(ps["deployments"].as_array().unwrap().len(), 1);
    assert_eq!(ps["deployments"][0]["env"], "default");
    let (code, _, err) = cx.run(&["down", "--yes", cx.app_arg()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        !cx.app.join(".tfgrid-compose").exists(),
        "the last environment's down removes the folder"
    );
    assert_eq!(ps_json(&cx)["deployments"], json!([]));
}

#[test]
fn max_environments_is_enforced_at_up_and_writes_nothing() {
    let cx = TestContext::new();
    let manifest = cx.app.join("tfgrid-compose.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, format!("{text}max_environments: 2\n")).unwrap();
    up(&cx, &["--env", "pr-1"]);
    up(&cx, &["--env", "pr-2"]);
    let (code, _, err) = cx.run(&["up", cx.app_arg(), "--env", "pr-3"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("at most 2 environments") && err.contains("pr-1, pr-2"),
        "{err}"
    );
    assert!(err.contains("hint:") && err.contains("--env pr-1"), "{err}");
    assert!(!cx.app.join(".tfgrid-compose/pr-3").exists());
    // Resuming an existing environment is not a new one.
    let (code, _, err) = cx.run(&["up", "--resume", cx.app_arg(), "--env", "pr-2"]);
    assert_eq!(code, 0, "{err}");
    // The config file's cap applies when the manifest has none.
    std::fs::write(&manifest, &text).unwrap();
    let config = cx.home().join(".config/tfgrid-compose");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("config.yaml"), "max_environments: 1\n").unwrap();
    let (code, _, err) = cx.run(&["up", cx.app_arg(), "--env", "pr-3"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("at most 1 environment ") && err.contains("config.yaml"),
        "{err}"
    );
}

fn fake_entry(
    cx: &TestContext,
    i: usize,
    id: &str,
    state_dir: &std::path::Path,
) -> serde_json::Value {
    json!({
        "schema_version": 1, "id": id, "app": format!("app{}", i % 7), "env": format!("e{i}"), "pattern": "minimal",
        "status": "running", "primary_ip": format!("10.1.{}.{}", i / 250, i % 250 + 2),
        "app_dir": cx.root.path().join("apps"), "state_dir": state_dir, "created_at": 1_795_000_000 + i, "updated_at": 1_795_000_000 + i,
    })
}

#[test]
fn a_thousand_entries_vanished_ones_shown_then_pruned() {
    let cx = TestContext::new();
    std::fs::create_dir_all(cx.registry()).unwrap();
    for i in 0..1000 {
        let id = format!("{i:016x}");
        let state_dir = cx.root.path().join("apps").join(&id);
        if i % 10 != 0 {
            std::fs::create_dir_all(&state_dir).unwrap();
            std::fs::write(state_dir.join("state.yaml"), "schema_version: 1\n").unwrap();
        }
        std::fs::write(
            cx.registry().join(format!("{id}.json")),
            fake_entry(&cx, i, &id, &state_dir).to_string(),
        )
        .unwrap();
    }
    let ps = ps_json(&cx);
    let rows = ps["deployments"].as_array().unwrap();
    assert_eq!(rows.len(), 1000);
    assert_eq!(
        rows.iter()
            .filter(|r| r["status"] == "missing" && r["missing"] == true)
            .count(),
        100
    );
    assert_eq!(rows[0]["id"], "0000000000000000", "oldest first");
    assert_eq!(rows[999]["primary_ip"], "10.1.3.251");
    let (_, _, err) = cx.run(&["ps"]);
    assert!(
        err.contains("100 deployment folders vanished") && err.contains("ps --prune"),
        "{err}"
    );

    let (code, _, err) = cx.run(&["ps", "--prune"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(err.matches("Pruned").count(), 100, "{err}");
    let ps = ps_json(&cx);
    assert_eq!(ps["deployments"].as_array().unwrap().len(), 900);
    assert!(
        ps["deployments"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["missing"] == false)
    );
}

#[test]
fn an_ambiguous_prefix_lists_the_candidates() {
    let cx = TestContext::new();
    std::fs::create_dir_all(cx.registry()).unwrap();
    for (i, id) in ["abc1000000000000", "abc2000000000000", "ffff000000000000"]
        .into_iter()
        .enumerate()
    {
        let state_dir = cx.root.path().join("apps").join(id);
        std::fs::write(
            cx.registry().join(format!("{id}.json")),
            fake_entry(&cx, i, id, &state_dir).to_string(),
        )
        .unwrap();
    }
    let (code, _, err) = cx.run(&["status", "abc"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("`abc` matches 2 deployments: abc10000 (app0:e0), abc20000 (app1:e1)"),
        "{err}"
    );
    assert!(err.contains("hint: give more of the id"), "{err}");
    // Two copies of one app, in two folders: the same `APP:ENV`, told apart by their folders.
    for (id, folder) in [
        ("cafe000000000000", "copy one"),
        ("cafe100000000000", "copy two"),
    ] {
        let mut entry = fake_entry(&cx, 0, id, &cx.root.path().join("apps").join(id));
        entry["app"] = "same".into();
        entry["env"] = "default".into();
        entry["app_dir"] = cx.root.path().join(folder).display().to_string().into();
        std::fs::write(cx.registry().join(format!("{id}.json")), entry.to_string()).unwrap();
    }
    let (code, _, err) = cx.run(&["status", "same:default"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!(
            "cafe0000 (same:default, {})",
            cx.root.path().join("copy one").display()
        )) && err.contains("hint: give more of the id, or the app's folder"),
        "{err}"
    );
    let (code, _, err) = cx.run(&["status", "nothing-like-it"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("nothing-like-it") && err.contains("tfgrid-compose ps"),
        "{err}"
    );
}

#[test]
fn select_names_the_default_target_and_unselect_forgets_it() {
    let cx = TestContext::new();
    up(&cx, &[]);
    up(&cx, &["--env", "staging"]);
    // Two deployments and no selection: a command without a target says which exist.
    let (code, _, err) = cx.run(&["status"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("2 deployments are known") && err.contains("minimal:staging"),
        "{err}"
    );
    let (code, _, err) = cx.run(&["select", "minimal:staging"]);
    assert_eq!(code, 0, "{err}");
    let context = std::fs::read_to_string(cx.root.path().join(".tfgrid-compose.yaml")).unwrap();
    assert!(context.starts_with("deployment: "), "{context}");
    let (code, out, err) = cx.run(&["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(assert_fits("status", &out)["deployment"]["env"], "staging");
    let (code, _, _) = cx.run(&["unselect"]);
    assert_eq!(code, 0);
    assert!(!cx.root.path().join(".tfgrid-compose.yaml").exists());
    // With one deployment left it is implied.
    let (code, _, err) = cx.run(&["down", "--yes", "minimal:staging"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = cx.run(&["address", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(assert_fits("address", &out)["primary_ip"], "127.0.0.1");
    // A selection that points at a deployment that is gone says so.
    let (code, _, _) = cx.run(&["select", "minimal"]);
    assert_eq!(code, 0);
    let (code, _, err) = cx.run(&["down", "--yes"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = cx.run(&["status"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("not in the registry any more") && err.contains("unselect"),
        "{err}"
    );
}

#[test]
fn inspect_shows_everything_but_secrets() {
    let cx = TestContext::new();
    cx.set_outputs(
        r#"{"primary_ip": {"value": "127.0.0.1"}, "primary_ip_type": {"value": "ipv4"}, "deployment_name": {"value": "d"}, "node_ids": {"value": [8]},
        "connection_info": {"value": {"api_token": "TOKEN-CANARY-42", "url": "http://x"}}}"#,
    );
    up(&cx, &[]);
    let (code, out, err) = cx.run(&["inspect", "--json"]);
    assert_eq!(code, 0, "{err}");
    let doc = assert_fits("inspect", &out);
    assert!(!out.contains("TOKEN-CANARY-42"), "{out}");
    assert_eq!(
        doc["deployment"]["state"]["outputs"]["connection_info"]["api_token"],
        "<redacted>"
    );
    assert_eq!(
        doc["deployment"]["state"]["outputs"]["connection_info"]["url"],
        "http://x"
    );
    assert!(
        doc["deployment"]["logs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().ends_with("infrastructure.log"))
    );
    assert_eq!(doc["deployment"]["registered"], true);
    let (code, out, _) = cx.run(&["inspect", "--all", "--json"]);
    assert_eq!(code, 0);
    assert_eq!(
        assert_fits("inspect", &out)["deployments"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let (code, out, _) = cx.run(&["inspect"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("state_dir:") && !out.contains("TOKEN-CANARY-42"),
        "{out}"
    );
}

const COMMANDS: &str = "commands:
  greet:
    script: /opt/app/greet.sh --loud
    description: Say hello
    args: \"<name>...\"
    allocate_tty: false
  pick:
    script: /opt/app/pick.sh
    description: Choose the active project
    save_to_context: active_project
  down:
    script: /opt/app/down.sh
    description: Shadowed by the built-in
";

fn with_commands(cx: &TestContext) {
    let manifest = cx.app.join("tfgrid-compose.yaml");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&manifest)
        .unwrap();
    file.write_all(COMMANDS.as_bytes()).unwrap();
}

/// The raw argv of the last fake `ssh` call (words may hold newlines).
fn last_ssh_argv(cx: &TestContext) -> Vec<String> {
    let log = std::fs::read_to_string(cx.fake_dir.join("argv.log")).unwrap();
    let start = log.rfind("ssh\x1f").unwrap();
    log[start..]
        .trim_end_matches('\n')
        .split('\x1f')
        .map(String::from)
        .collect()
}

/// Splits a remote command line the way the VM's shell will: a real `/bin/sh` prints each word.
fn words_on_the_vm(remote: &str) -> Vec<String> {
    let out = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("printf '%s\\0' {remote}"))
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .split_terminator('\0')
        .map(String::from)
        .collect()
}

#[test]
fn app_commands_get_each_argument_byte_for_byte() {
    let cx = TestContext::new();
    with_commands(&cx);
    up(&cx, &[]);
    let nasty = [
        "two words",
        "it's \"quoted\"",
        "$(touch /tmp/pwned); `id`",
        "a;b|c&d>e",
        "line one\nline two",
        "--flag",
        "*",
        "",
    ];
    let mut args = vec!["greet"];
    args.extend_from_slice(&nasty);
    let (code, _, err) = cx.run(&args);
    assert_eq!(code, 0, "{err}");
    let argv = last_ssh_argv(&cx);
    assert!(
        !argv.contains(&"-t".to_string()),
        "allocate_tty: false: {argv:?}"
    );
    let remote = argv.last().unwrap();
    let words = words_on_the_vm(remote);
    let app_words = &words[words.iter().position(|w| w == "/opt/app/greet.sh").unwrap()..];
    let mut expected = vec!["/opt/app/greet.sh", "--loud"];
    expected.extend_from_slice(&nasty);
    assert_eq!(app_words, expected);
    assert_eq!(&words[..3], ["env", "-C", "/tmp/app-deployment"]);
    assert!(
        words.contains(&"APP_NAME=minimal".to_string())
            && words.contains(&"DEPLOYMENT_ENV=default".to_string()),
        "{words:?}"
    );

    // A failing app command passes its exit code through.
    let (code, _, _) = cx
        .cmd()
        .args(["greet", "x"])
        .env("FAKE_FAIL", "ssh:greet.sh")
        .output()
        .map(|o| (o.status.code().unwrap(), (), ()))
        .unwrap();
    assert_eq!(code, 1);
}

#[test]
fn save_to_context_feeds_later_commands() {
    let cx = TestContext::new();
    with_commands(&cx);
    up(&cx, &[]);
    let out = cx
        .cmd()
        .args(["pick", "blog"])
        .env("FAKE_SSH_STDOUT", "my blog")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "my blog\n");
    let context = std::fs::read_to_string(cx.state_dir().join("context.yaml")).unwrap();
    assert_eq!(context, "active_project: my blog\n");
    let (code, _, _) = cx.run(&["greet", "x"]);
    assert_eq!(code, 0);
    let words = words_on_the_vm(last_ssh_argv(&cx).last().unwrap());
    assert!(
        words.contains(&"ACTIVE_PROJECT=my blog".to_string()),
        "{words:?}"
    );
}

#[test]
fn commands_are_listed_and_shadowing_is_named() {
    let cx = TestContext::new();
    with_commands(&cx);
    up(&cx, &[]);
    let (code, out, err) = cx.run(&["commands"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("greet <name>...  Say hello"), "{out}");
    assert!(
        out.contains("down") && out.contains("(shadowed by the built-in command)"),
        "{out}"
    );
    assert!(
        err.contains("app command `down` is shadowed by the built-in `tfgrid-compose down`"),
        "{err}"
    );
    assert!(
        err.contains("tfgrid-compose.yaml:"),
        "the warning names the manifest line: {err}"
    );
    let (code, out, _) = cx.run(&["commands", "--json"]);
    assert_eq!(code, 0);
    let doc = assert_fits("commands", &out);
    assert_eq!(doc["commands"].as_array().unwrap().len(), 3);
    assert_eq!(doc["commands"][2]["save_to_context"], "active_project");
    assert_eq!(doc["commands"][0]["shadowed"], true);
    // An unknown verb names the app's commands.
    let (code, _, err) = cx.run(&["nonsense"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(
            "`nonsense` is neither a tfgrid-compose command nor a command of app `minimal`"
        ) && err.contains("down, greet, pick"),
        "{err}"
    );
}

#[test]
fn an_unknown_verb_without_a_deployment_is_a_usage_error() {
    let cx = TestContext::new();
    let (code, _, err) = cx.run(&["frobnicate"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("`frobnicate` is not a tfgrid-compose command"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(cx.fake_dir.join("argv.log")).unwrap_or_default(),
        "",
        "nothing ran"
    );
}

/// A Terraform state holding what the grid patterns make: a `grid_deployment` of two VMs (one
/// with a public IPv4) as contract 4242 on node 11, and a `grid_name_proxy`.
fn write_grid_tfstate(state_dir: &std::path::Path) {
    let tfstate = json!({"version": 4, "resources": [
        {"mode": "managed", "type": "grid_deployment", "name": "vm", "instances": [{"attributes": {
            "id": "4242", "node": 11, "disks": [],
            "vms": [
                {"name": "vm1", "cpu": 2, "memory": 4096, "rootfs_size": 51200, "publicip": true},
                {"name": "vm2", "cpu": 2, "memory": 4096, "rootfs_size": 51200, "publicip": false}
            ]}}]},
        {"mode": "managed", "type": "grid_name_proxy", "name": "site", "instances": [{"attributes": {
            "name": "site", "node": 13, "name_contract_id": 4243}}]}
    ]});
    std::fs::write(
        state_dir.join("terraform/terraform.tfstate"),
        tfstate.to_string(),
    )
    .unwrap();
}

#[test]
fn max_monthly_cost_refuses_an_environment_naming_what_runs_and_creates_nothing() {
    let cx = TestContext::new();
    up(&cx, &["--env", "prod"]);
    write_grid_tfstate(&cx.app.join(".tfgrid-compose/prod"));
    // What runs: 4 CPU, 8 GiB, 100 GiB → 2 CU, 0.5 SU; one IPv4; one name (genesis prices:
    // $16.20 + $2.88 + $0.18 a month).
    let (code, out, err) = cx.run(&["cost", "--json"]);
    assert_eq!(code, 0, "{err}");
    let all: serde_json::Value = serde_json::from_str(&out).unwrap();
    let monthly = all["usd_per_month"].as_f64().unwrap();
    assert!((monthly - 19.26).abs() < 1e-6, "{out}");
    assert_eq!(all["environments"]["prod"], all["usd_per_month"]);
    let (code, out, err) = cx.run(&["cost", "--json", "minimal:prod"]);
    assert_eq!(code, 0, "{err}");
    let one = assert_fits("cost", &out);
    assert_eq!(one["source"], "runs");
    assert_eq!(one["vms"], 2);
    let ps = ps_json(&cx);
    assert_eq!(ps["deployments"][0]["usd_per_month"], all["usd_per_month"]);
    let (_, table, err) = cx.run(&["ps"]);
    assert!(
        table.contains("$19.26") && err.contains("$19.26 a month (prod $19.26)"),
        "{table}{err}"
    );

    let manifest = cx.app.join("tfgrid-compose.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, format!("{text}max_monthly_cost: 19\n")).unwrap();
    let before = cx.transcript();
    let (code, _, err) = cx.run(&["up", cx.app_arg(), "--env", "pr-1"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("with what runs ($19.26: minimal:prod $19.26)")
            && err.contains("over max_monthly_cost $19.00")
            && err.contains("tfgrid-compose.yaml"),
        "{err}"
    );
    assert!(
        err.contains("hint:") && err.contains("tfgrid-compose cost"),
        "{err}"
    );
    assert!(!cx.app.join(".tfgrid-compose/pr-1").exists());
    assert_eq!(cx.transcript(), before, "no tool ran");
    // Under the cap, and for the config file's total cap, the same.
    std::fs::write(&manifest, format!("{text}max_monthly_cost: 20\n")).unwrap();
    let config = cx.home().join(".config/tfgrid-compose");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("config.yaml"), "max_monthly_cost: 10\n").unwrap();
    let (code, _, err) = cx.run(&["up", cx.app_arg(), "--env", "pr-1"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("over max_monthly_cost $10.00") && err.contains("config.yaml"),
        "{err}"
    );
    std::fs::write(config.join("config.yaml"), "max_monthly_cost: 25\n").unwrap();
    up(&cx, &["--env", "pr-1"]);
}
