//! Recovery from what goes wrong after `up`: a damaged `state.yaml`, an app folder or pattern
//! that is gone, a VM replaced at the same address (a new host key).

use predicates::prelude::PredicateBooleanExt as _;
use predicates::str::contains;

use crate::common::{TestContext, copy_dir, fixtures};

#[test]
fn an_empty_state_file_is_reported_and_down_still_destroys_from_terraform_state() {
    let cx = TestContext::new();
    cx.cmd().arg("up").arg(&cx.app).assert().success();
    std::fs::write(cx.state_dir().join("state.yaml"), "").unwrap();
    for args in [vec!["status"], vec!["up", "--resume"]] {
        cx.cmd().args(&args).arg(&cx.app).assert().code(1).stderr(
            contains("is empty or damaged: it is empty")
                .and(contains(format!(
                    "hint: `tfgrid-compose down {}` still destroys",
                    cx.app.display()
                )))
                .and(contains("panicked").not()),
        );
    }
    cx.clear_transcript();
    cx.cmd()
        .args(["down", "--yes"])
        .arg(&cx.app)
        .assert()
        .success()
        .stderr(contains("destroying what Terraform's state"));
    assert!(
        cx.steps().contains(&"tofu destroy".to_string()),
        "{:?}",
        cx.steps()
    );
    assert!(!cx.state_dir().exists());
    let out = cx.cmd().args(["ps", "--json"]).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("minimal"),
        "the registry entry goes too"
    );
}

#[test]
fn any_damage_to_state_yaml_never_panics_and_never_loses_the_terraform_state() {
    let cx = TestContext::new();
    cx.cmd().arg("up").arg(&cx.app).assert().success();
    let good = cx.state_text();
    let damages = [
        good[..good.len() / 2].to_string(),
        good.replace("schema_version", "schema_versoin"),
        "\u{feff}".to_string() + &good.replace("status: running", "status: [running"),
        "just text\n".into(),
        good.replace("id:", "id: {").clone(),
    ];
    for damaged in damages {
        std::fs::write(cx.state_dir().join("state.yaml"), &damaged).unwrap();
        let out = cx.cmd().arg("status").arg(&cx.app).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{stderr}");
        // A cut that leaves a shorter but well-formed state reads as that state.
        if out.status.code() != Some(0) {
            assert_eq!(out.status.code(), Some(1), "{damaged}\n{stderr}");
            assert!(
                stderr.contains("empty or damaged") && stderr.contains("hint:"),
                "{stderr}"
            );
        }
        assert!(cx.state_dir().join("terraform/terraform.tfstate").exists());
    }
    // The registry entry damaged too: `ps` warns and goes on.
    for entry in std::fs::read_dir(cx.registry()).unwrap().flatten() {
        std::fs::write(entry.path(), "{\"id\": ").unwrap();
    }
    cx.cmd()
        .arg("ps")
        .assert()
        .success()
        .stderr(contains("panicked").not());
    cx.cmd()
        .args(["down", "--yes"])
        .arg(&cx.app)
        .assert()
        .success();
    assert!(!cx.state_dir().exists());
}

#[test]
fn down_without_terraform_state_says_what_may_still_be_billed() {
    let cx = TestContext::new();
    cx.cmd().arg("up").arg(&cx.app).assert().success();
    std::fs::write(cx.state_dir().join("state.yaml"), "").unwrap();
    std::fs::remove_file(cx.state_dir().join("terraform/terraform.tfstate")).unwrap();
    cx.cmd()
        .args(["down", "--yes"])
        .arg(&cx.app)
        .assert()
        .code(1)
        .stderr(
            contains("nothing recorded here can be destroyed")
                .and(contains("tfgrid-compose contracts")),
        );
    assert!(
        cx.state_dir().exists(),
        "nothing is removed when nothing could be destroyed"
    );
}

#[test]
fn down_of_a_deployment_whose_folder_is_gone_names_what_is_left() {
    let cx = TestContext::new();
    cx.cmd().arg("up").arg(&cx.app).assert().success();
    let id = cx
        .state_text()
        .lines()
        .find_map(|l| l.strip_prefix("id: "))
        .unwrap()
        .trim()
        .to_string();
    std::fs::remove_dir_all(&cx.app).unwrap();
    cx.cmd()
        .args(["down", "--yes", &id])
        .assert()
        .code(1)
        .stderr(
            contains(format!(
                "of deployment {id} is gone, and with it its state.yaml and Terraform state"
            ))
            .and(contains("tfgrid-compose contracts"))
            .and(contains("ps --prune")),
        );
}

#[test]
fn down_of_a_deployment_whose_pattern_is_gone_destroys_from_what_was_recorded() {
    let cx = TestContext::new();
    let patterns = cx.root.path().join("patterns");
    copy_dir(&fixtures().join("patterns"), &patterns);
    cx.cmd()
        .arg("up")
        .arg(&cx.app)
        .env("TFGRID_COMPOSE_PATTERNS_DIR", &patterns)
        .assert()
        .success();
    std::fs::remove_dir_all(patterns.join("minimal")).unwrap();
    cx.clear_transcript();
    cx.cmd()
        .args(["down", "--yes"])
        .arg(&cx.app)
        .env("TFGRID_COMPOSE_PATTERNS_DIR", &patterns)
        .assert()
        .success();
    assert!(cx.steps().contains(&"tofu destroy".to_string()));
    assert!(!cx.state_dir().exists());
}

#[test]
fn a_replaced_vm_gets_the_whole_way_out_in_the_hint() {
    let cx = TestContext::new();
    let out = cx
        .cmd()
        .arg("up")
        .arg(&cx.app)
        .env("FAKE_HOSTKEY_CHANGED", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let known_hosts = cx.state_dir().join("known_hosts");
    let remove = format!(
        "ssh-keygen -f \"{}\" -R \"[127.0.0.1]:{}\"",
        known_hosts.display(),
        cx.port
    );
    assert!(
        stderr.contains(&format!("forget its old key with `{remove}`")),
        "{stderr}"
    );
    assert!(
        stderr.contains("this deployment's own known_hosts") && stderr.contains("up --resume"),
        "{stderr}"
    );
    cx.cmd()
        .args(["up", "--resume"])
        .arg(&cx.app)
        .assert()
        .success();
}
