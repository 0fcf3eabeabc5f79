//! Flow tests: `up`, `--resume`, `--from`, `down`, `--dry-run` and the lock, against fake tools
//! that record their argv.

use predicates::str::contains;

use crate::common::{TestContext, WG_OUTPUTS, wait_for_file};

const FULL_UP: [&str; 15] = [
    "ssh-keygen",
    "tofu init",
    "tofu plan",
    "tofu apply",
    "tofu output",
    "ssh login",
    "ssh login",
    "ansible-playbook",
    "ssh rm",
    "scp",
    "scp",
    "ssh setup",
    "ssh healthcheck",
    "ssh verify",
    "ssh verify",
];

#[test]
fn up_runs_every_phase_in_order() {
    let cx = TestContext::new();
    cx.cmd()
        .arg("up")
        .arg(&cx.app)
        .assert()
        .success()
        .stderr(contains("Finished `minimal` is up at 127.0.0.1"));
    assert_eq!(cx.steps(), FULL_UP);
    let t = cx.transcript();
    assert_eq!(
        t[1],
        "tofu -chdir=[STATE]/terraform init -input=false -no-color"
    );
    assert_eq!(
        t[2],
        "tofu -chdir=[STATE]/terraform plan -input=false -no-color -lock-timeout=60s -var-file=[STATE]/terraform/tfgrid-compose.tfvars.json -out=tfplan"
    );
    assert_eq!(
        t[3],
        "tofu -chdir=[STATE]/terraform apply -input=false -no-color -lock-timeout=60s -auto-approve tfplan"
    );
    assert_eq!(
        t[7],
        "ansible-playbook -i [STATE]/inventory.ini -e @[STATE]/extra-vars.json [PATTERNS]/minimal/platform/site.yml"
    );
    assert!(
        t[5].contains("StrictHostKeyChecking=accept-new")
            && t[5].contains(&format!("-p {} root@127.0.0.1 -- 'cat'", cx.port)),
        "{}",
        t[5]
    );
    assert!(
        t[11]
            .contains("-- 'env' '-C' '/tmp/app-deployment' 'APP_NAME=minimal' 'APP_VERSION=0.1.0'")
            && t[11].ends_with("'/tmp/app-deployment/setup.sh'"),
        "{}",
        t[11]
    );

    let state = cx.state_text();
    assert!(state.contains("status: running"), "{state}");
    assert_eq!(state.matches("status: done").count(), 8, "{state}");
    let inventory = std::fs::read_to_string(cx.state_dir().join("inventory.ini")).unwrap();
    assert!(
        inventory.contains("[primary]\nvm0 ansible_host=127.0.0.1"),
        "{inventory}"
    );
    assert!(
        inventory.contains("[backend]\nbackend1 ansible_host=127.0.0.1"),
        "{inventory}"
    );
    let tfvars =
        std::fs::read_to_string(cx.state_dir().join("terraform/tfgrid-compose.tfvars.json"))
            .unwrap();
    assert!(
        tfvars.contains("\"flavor\": \"small\"")
            && tfvars.contains("\"deployment_name\": \"minimal\""),
        "{tfvars}"
    );
    let mode = |p: &std::path::Path| {
        std::os::unix::fs::PermissionsExt::mode(&p.metadata().unwrap().permissions()) & 0o777
    };
    assert_eq!(mode(&cx.state_dir()), 0o700);
    assert_eq!(mode(&cx.state_dir().join("state.yaml")), 0o600);

    // a second `up` refuses to start over the deployment
    cx.cmd()
        .arg("up")
        .arg(&cx.app)
        .assert()
        .failure()
        .code(2)
        .stderr(contains("already deployed"))
        .stderr(contains("up --resume"));
}

#[test]
fn wireguard_config_is_private_and_brought_up() {
    let cx = TestContext::new();
    cx.set_outputs(WG_OUTPUTS);
    cx.cmd().arg("up").arg(&cx.app).assert().success();
    let steps = cx.steps();
    assert_eq!(steps[5..7], ["wg-quick up", "wg show"]);
    let conf = std::fs::read_dir(cx.state_dir().join("wg"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("tfgc"))
        .unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&conf.metadata().unwrap().permissions()) & 0o777,
        0o600
    );
    assert!(cx.transcript()[5].ends_with(
        &format!("{}", conf.display()).replace(&cx.state_dir().display().to_string(), "[STATE]")
    ));
    assert!(
        !cx.state_text().contains("SECRETKEY"),
        "the WireGuard private key must not be in state.yaml"
    );
    cx.cmd()
        .args(["down", "--yes"])
        .arg(&cx.app)
        .assert()
        .success();
    // down takes no tunnel down that is not up (no interface of that name exists here)
    assert!(!cx.steps().contains(&"wg-quick down".to_string()));
}

/// Failure injected in each phase: the state names the phase, the message points at the log and
/// at `up --resume`, and the resume runs exactly the remaining commands.
#[test]
fn every_phase_fails_cleanly_and_resumes_exactly() {
    let cases: [(&str, &str, usize); 6] = [
        ("tofu:apply", "infrastructure", 3),
        ("tofu:output", "infrastructure", 4),
        ("ssh:ControlMaster=yes", "wait-ssh", 5),
        ("ansible-playbook:site.yml", "platform", 7),
        ("scp:src", "application", 10),
        ("ssh:healthcheck.sh", "application", 12),
    ];
    for (fault, phase, failing_step) in cases {
        let cx = TestContext::new();
        cx.cmd()
            .arg("up")
            .arg(&cx.app)
            .env("FAKE_FAIL", fault)
            .env("TFGRID_COMPOSE_SSH_TIMEOUT", "1s")
            .assert()
            .failure()
            .code(1)
            .stderr(contains(format!("{phase} phase failed")))
            .stderr(contains(
                "hint: fix the cause, then continue with `tfgrid-compose up --resume",
            ));
        let state = cx.state_text();
        assert!(state.contains("status: failed"), "{fault}: {state}");
        assert!(
            state.contains(&format!("phase: {phase}\n  status: failed")),
            "{fault}: {state}"
        );
        if phase != "infrastructure" || fault == "tofu:output" {
            assert!(
                cx.state_dir().join("terraform/terraform.tfstate").exists(),
                "{fault}: tfstate must be kept"
            );
        }
        let before = cx.steps();
        assert_eq!(
            before.last().unwrap(),
            FULL_UP[failing_step],
            "{fault}: {before:?}"
        );
        cx.clear_transcript();
        cx.cmd()
            .args(["up", "--resume"])
            .arg(&cx.app)
            .assert()
            .success()
            .stderr(contains(format!("from phase `{phase}`")));
        let resumed = cx.steps();
        let first_of_phase = match phase {
            "infrastructure" => 1,
            "wait-ssh" => 5,
            "platform" => 7,
            _ => 8,
        };
        // A resume after wait-ssh logs in to each VM first, once: the logins its phases share.
        let mut expected: Vec<&str> = Vec::new();
        if first_of_phase > 5 {
            expected.extend(["ssh login", "ssh login"]);
        }
        expected.extend(&FULL_UP[first_of_phase..]);
        assert_eq!(resumed, expected, "{fault}");
        assert!(cx.state_text().contains("status: running"));
    }
}

#[test]
fn from_reruns_a_finished_phase_and_refuses_a_later_one() {
    let cx = TestContext::new();
    cx.cmd()
        .arg("up")
        .arg(&cx.app)
        .env("FAKE_FAIL", "ansible-playbook:site")
        .assert()
        .failure();
    cx.cmd()
        .args(["up", "--from", "application"])
        .arg(&cx.app)
        .assert()
        .failure()
        .stderr(contains("phase `platform` has not finished"));
    cx.cmd()
        .args(["up", "--from", "wait-ssh"])
        .arg(&cx.app)
        .assert()
        .success();
    cx.cmd()
        .args(["up", "--from", "nonsense"])
        .arg(&cx.app)
        .assert()
        .failure()
        .code(2)
        .stderr(contains("nonsense"));
}

#[test]
fn down_destroys_checks_and_forgets() {
    let cx = TestContext::new();
    cx.cmd().arg("up").arg(&cx.app).assert().success();
    cx.clear_transcript();
    cx.cmd()
        .arg("down")
        .arg(&cx.app)
        .assert()
        .failure()
        .stderr(contains("--yes"));
    assert!(
        cx.state_dir().join("state.yaml").exists(),
        "no confirmation, nothing removed"
    );
    cx.cmd()
        .args(["down", "--yes"])
        .arg(&cx.app)
        .assert()
        .success()
        .stderr(contains("Destroyed `minimal`"));
    assert_eq!(cx.steps(), ["tofu init", "tofu destroy", "tofu output"]);
    assert_eq!(
        cx.transcript()[1],
        "tofu -chdir=[STATE]/terraform destroy -input=false -no-color -lock-timeout=60s -auto-approve -var-file=[STATE]/terraform/tfgrid-compose.tfvars.json"
    );
    assert!(!cx.state_dir().exists());
}

#[test]
fn failed_down_removes_nothing_and_can_be_run_again() {
    let cx = TestContext::new();
    cx.cmd().arg("up").arg(&cx.app).assert().success();
    cx.cmd()
        .args(["down", "--yes"])
        .arg(&cx.app)
        .env("FAKE_FAIL", "tofu:destroy")
        .assert()
        .failure()
        .code(1)
        .stderr(contains(
            "failed; its folder and record are kept (status destroy-failed)",
        ))
        .stderr(contains("run `tfgrid-compose down"));
    assert!(cx.state_text().contains("status: destroy-failed"));
    assert!(cx.state_dir().join("terraform/terraform.tfstate").exists());
    // destroy "succeeds" but outputs remain: still an error, still nothing removed
    cx.cmd()
        .args(["down", "--yes"])
        .arg(&cx.app)
        .env("FAKE_FAIL", "tofu:nothing")
        .env("FAKE_DIR", cx.root.path().join("other"))
        .assert()
        .failure();
    assert!(cx.state_dir().join("state.yaml").exists());
    cx.cmd()
        .args(["down", "--yes"])
        .arg(&cx.app)
        .assert()
        .success();
    assert!(!cx.state_dir().exists());
}

#[test]
fn dry_run_prints_the_transcript_and_writes_nothing() {
    let cx = TestContext::new();
    let out = cx
        .cmd()
        .args(["up", "--dry-run"])
        .arg(&cx.app)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("/bin/tofu -chdir="), "{text}");
    assert!(text.contains(" apply -input=false"), "{text}");
    assert!(text.contains("$ ansible-playbook -i "), "{text}");
    assert!(text.contains("/tmp/app-deployment/setup.sh"), "{text}");
    assert!(
        !cx.state_dir().exists(),
        "dry run wrote to the state folder"
    );
    assert!(
        !cx.fake_dir.join("argv.log").exists(),
        "dry run spawned a tool"
    );
}

#[test]
fn a_second_run_fails_at_once_naming_the_lock_holder() {
    let cx = TestContext::new();
    cx.cmd()
        .arg("up")
        .arg(&cx.app)
        .env("FAKE_FAIL", "ansible-playbook:site")
        .assert()
        .failure();
    let lock = tfgrid_compose::state::StateLock::acquire(
        &cx.state_dir().join("lock"),
        "up by a test",
        None,
        |_| {},
    )
    .unwrap();
    cx.cmd()
        .args(["up", "--resume"])
        .arg(&cx.app)
        .assert()
        .failure()
        .code(3)
        .stderr(contains("locked by another run"))
        .stderr(contains("command up by a test"));
    cx.cmd()
        .args(["down", "--yes"])
        .arg(&cx.app)
        .assert()
        .failure()
        .stderr(contains("locked by another run"));
    drop(lock);
    cx.cmd()
        .args(["up", "--resume", "--lock-wait", "2s"])
        .arg(&cx.app)
        .assert()
        .success();
}

#[test]
fn two_concurrent_ups_one_wins() {
    let cx = TestContext::new();
    cx.cmd()
        .arg("up")
        .arg(&cx.app)
        .env("FAKE_FAIL", "ssh:healthcheck")
        .assert()
        .failure();
    // Two runs overlap: the first holds the lock inside its platform phase (its ansible-playbook
    // waits at a gate) while the second starts and ends; then the gate opens.
    let first = a_spawn(&cx, Some("ansible-playbook:-i"));
    wait_for_file(&cx.fake_dir.join("at-gate"));
    let r2 = a_spawn(&cx, None).wait_with_output().unwrap();
    std::fs::write(cx.fake_dir.join("gate-open"), "").unwrap();
    let r1 = first.wait_with_output().unwrap();
    assert_eq!(
        [r1.status.code(), r2.status.code()],
        [Some(0), Some(3)],
        "{}",
        String::from_utf8_lossy(&r2.stderr)
    );
    let stderr = String::from_utf8_lossy(&r2.stderr);
    assert!(
        stderr.contains("locked by another run") && stderr.contains("pid "),
        "{stderr}"
    );
}

/// `up --from platform` of the fixture app, started; with `gate`, that tool call waits at the
/// fake tools' gate (`FAKE_GATE`).
fn a_spawn(cx: &TestContext, gate: Option<&str>) -> std::process::Child {
    let template = cx.cmd();
    let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("tfgrid-compose"));
    c.env_clear();
    for (k, v) in template.get_envs() {
        if let Some(v) = v {
            c.env(k, v);
        }
    }
    if let Some(gate) = gate {
        c.env("FAKE_GATE", gate);
    }
    c.args(["up", "--from", "platform"])
        .arg(&cx.app)
        .current_dir(cx.root.path());
    c.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn the_mnemonic_stays_out_of_argv_files_and_messages() {
    let cx = TestContext::new();
    let manifest = cx.app.join("tfgrid-compose.yaml");
    let text = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace("pattern: minimal", "pattern: grid-like")
        .replace("config:\n  flavor: small\n", "");
    std::fs::write(&manifest, text).unwrap();
    cx.cmd()
        .arg("up")
        .arg(&cx.app)
        .assert()
        .failure()
        .stderr(contains("needs a ThreeFold mnemonic"));
    assert!(!cx.state_dir().exists());
    // A phrase that is not BIP-39 is refused at validate without being echoed.
    cx.cmd()
        .arg("up")
        .arg(&cx.app)
        .env("TF_VAR_mnemonic", "zebra quantum harbor lattice")
        .assert()
        .code(2)
        .stderr(
            contains("the mnemonic in $TF_VAR_mnemonic is not valid: it has 4 words")
                .and(contains("zebra").not()),
        );
    assert!(!cx.state_dir().exists());
    let secret = crate::grid::CANARY;
    cx.cmd()
        .arg("up")
        .arg(&cx.app)
        .env("TF_VAR_mnemonic", secret)
        .env("FAKE_FAIL", "ansible-playbook:site")
        .assert()
        .failure()
        .stderr(predicates::str::contains(secret).not());
    assert!(
        std::fs::read_to_string(cx.fake_dir.join("env.log"))
            .unwrap()
            .contains("mnemonic-seen"),
        "tofu got it in its environment"
    );
    let argv = std::fs::read_to_string(cx.fake_dir.join("argv.log")).unwrap();
    assert!(!argv.contains("spot photo"), "mnemonic on argv");
    let mut stack = vec![cx.state_dir()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
                continue;
            }
            let bytes = std::fs::read(entry.path()).unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes).contains("spot photo"),
                "mnemonic in {}",
                entry.path().display()
            );
        }
    }
}

use predicates::prelude::PredicateBooleanExt as _;

/// A tool that prints the mnemonic it was given (as the grid provider does when it rejects one):
/// the phrase is replaced in the terminal's error, the phase log, state.yaml's error and inspect.
#[test]
fn a_secret_a_tool_prints_is_redacted_everywhere() {
    let cx = TestContext::new();
    let manifest = cx.app.join("tfgrid-compose.yaml");
    let text = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace("pattern: minimal", "pattern: grid-like")
        .replace("config:\n  flavor: small\n", "");
    std::fs::write(&manifest, text).unwrap();
    let secret = crate::grid::CANARY;
    cx.cmd()
        .arg("up")
        .arg(&cx.app)
        .env("TF_VAR_mnemonic", secret)
        .env("FAKE_FAIL", "tofu:apply")
        .env("FAKE_ECHO_SECRET", "1")
        .assert()
        .failure()
        .stderr(
            contains("no twin on main")
                .and(contains("<redacted>"))
                .and(contains("spot photo").not()),
        );
    let mut files = Vec::new();
    crate::grid::all_files(&cx.state_dir(), &mut files);
    let logs: Vec<&std::path::PathBuf> = files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "log"))
        .collect();
    assert!(!logs.is_empty());
    for file in &files {
        let text = String::from_utf8_lossy(&std::fs::read(file).unwrap()).into_owned();
        assert!(
            !text.contains("spot photo"),
            "mnemonic in {}",
            file.display()
        );
    }
    assert!(
        logs.iter().any(|l| std::fs::read_to_string(l)
            .unwrap()
            .contains("mnemonic \"<redacted>\"")),
        "the log keeps the line, redacted"
    );
    let out = cx
        .cmd()
        .args(["inspect", "--json"])
        .arg(&cx.app)
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("spot photo")
            && !String::from_utf8_lossy(&out.stderr).contains("spot photo")
    );
}

#[test]
fn a_secret_printed_by_a_tool_that_was_never_given_it_is_redacted_too() {
    // The mnemonic goes only to tofu; ansible-playbook printing it (from a file on the VM, say)
    // is cleaned as well, because the command knows the phrase.
    let cx = TestContext::new();
    let manifest = cx.app.join("tfgrid-compose.yaml");
    let text = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace("pattern: minimal", "pattern: grid-like")
        .replace("config:\n  flavor: small\n", "");
    std::fs::write(&manifest, text).unwrap();
    let secret = crate::grid::CANARY;
    cx.cmd()
        .arg("up")
        .arg(&cx.app)
        .env("TF_VAR_mnemonic", secret)
        .env("FAKE_FAIL", "ansible-playbook:")
        .env("FAKE_PRINT", secret)
        .assert()
        .failure()
        .stderr(contains("token=<redacted> in a line").and(contains("spot photo").not()));
    let mut files = Vec::new();
    crate::grid::all_files(&cx.state_dir(), &mut files);
    for file in &files {
        let text = String::from_utf8_lossy(&std::fs::read(file).unwrap()).into_owned();
        assert!(
            !text.contains("spot photo"),
            "mnemonic in {}",
            file.display()
        );
    }
    assert!(
        cx.state_text().contains("token=<redacted>"),
        "the failed phase's error tail is kept, redacted"
    );
}

#[test]
fn a_hook_without_the_execute_bit_runs_through_its_interpreter() {
    // The bash tool's registry apps keep hooks as plain files in git (mode 644).
    let cx = TestContext::new();
    std::fs::set_permissions(
        cx.app.join("deployment/setup.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    std::fs::write(
        cx.app.join("deployment/healthcheck.sh"),
        "echo no shebang\n",
    )
    .unwrap();
    // and a key the registry apps write (tfgrid-compose-bash.md §2)
    let manifest = cx.app.join("tfgrid-compose.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        format!("{text}hook_config:\n  setup:\n    description: Install the app\n"),
    )
    .unwrap();
    std::fs::set_permissions(
        cx.app.join("deployment/healthcheck.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    cx.cmd().arg("up").arg(&cx.app).assert().success();
    let transcript = cx.transcript();
    let setup = transcript.iter().find(|l| l.contains("setup.sh")).unwrap();
    assert!(
        setup.contains("'/bin/sh' '/tmp/app-deployment/setup.sh'"),
        "{setup}"
    );
    let health = transcript
        .iter()
        .find(|l| l.contains("healthcheck.sh"))
        .unwrap();
    assert!(
        health.contains("'sh' '/tmp/app-deployment/healthcheck.sh'"),
        "{health}"
    );
}

#[test]
fn what_the_bash_tool_uploaded_lands_where_it_put_it() {
    let cx = TestContext::new();
    std::fs::write(cx.app.join("docker-compose.yaml"), "services: {}\n").unwrap();
    std::fs::create_dir_all(cx.app.join("scripts")).unwrap();
    std::fs::write(cx.app.join("scripts/run.sh"), "echo run\n").unwrap();
    std::fs::create_dir_all(cx.app.join("artifacts")).unwrap();
    std::fs::write(cx.app.join("artifacts/latest.tar.gz"), "tar").unwrap();
    cx.cmd().arg("up").arg(&cx.app).assert().success();
    let transcript = cx.transcript();
    let extras = transcript
        .iter()
        .find(|l| l.starts_with("scp ") && l.contains("[APP]/docker-compose.yaml [APP]/scripts "))
        .unwrap_or_else(|| panic!("{transcript:#?}"));
    assert!(extras.ends_with(":/tmp/app-source/"), "{extras}");
    assert!(
        transcript
            .iter()
            .any(|l| l.contains("[APP]/artifacts/latest.tar.gz")
                && l.ends_with(":/tmp/app-source/artifacts.tar.gz")),
        "{transcript:#?}"
    );
    // they come after src/, which creates /tmp/app-source, and before the hooks
    let src = transcript
        .iter()
        .position(|l| l.contains("[APP]/src "))
        .unwrap();
    let at = transcript.iter().position(|l| l == extras).unwrap();
    let setup = transcript
        .iter()
        .position(|l| l.contains("setup.sh"))
        .unwrap();
    assert!(src < at && at < setup, "{transcript:#?}");
}

#[test]
fn inspect_commands_read_state() {
    let cx = TestContext::new();
    cx.cmd()
        .arg("status")
        .arg(&cx.app)
        .assert()
        .failure()
        .stderr(contains("no deployment"));
    cx.cmd().arg("up").arg(&cx.app).assert().success();
    cx.cmd()
        .arg("address")
        .arg(&cx.app)
        .assert()
        .success()
        .stdout("127.0.0.1\n127.0.0.1 backend1 backend\n");
    let out = cx
        .cmd()
        .args(["status", "--json"])
        .arg(&cx.app)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(json["deployment"]["status"], "running");
    cx.cmd()
        .args(["logs", "infrastructure", "--app"])
        .arg(&cx.app)
        .assert()
        .success()
        .stdout(contains("/bin/tofu -chdir="));
    cx.clear_transcript();
    cx.cmd()
        .args(["exec", "--app"])
        .arg(&cx.app)
        .args(["echo", "a b", "$(id)"])
        .assert()
        .success();
    assert!(
        cx.transcript()[0].ends_with("-- 'echo' 'a b' '$(id)'"),
        "{:?}",
        cx.transcript()
    );
    assert!(cx.transcript()[0].contains("StrictHostKeyChecking=yes"));
    // Another VM by name or index; one the deployment lacks is named with the list.
    cx.clear_transcript();
    cx.cmd()
        .args(["exec", "--vm", "backend1", "--app"])
        .arg(&cx.app)
        .arg("true")
        .assert()
        .success();
    assert!(
        cx.transcript()[0].contains("root@127.0.0.1 -- 'true'"),
        "{:?}",
        cx.transcript()
    );
    cx.cmd()
        .args(["ssh", "--vm", "7", "--app"])
        .arg(&cx.app)
        .assert()
        .code(2)
        .stderr(contains(
            "--vm: no VM `7` in this deployment; it has: 0 vm0 127.0.0.1, 1 backend1 127.0.0.1",
        ))
        .stderr(contains("hint: give an index, a name or an address"));
    cx.cmd()
        .args(["ssh", "--app"])
        .arg(&cx.app)
        .args(["--", "false"])
        .env("FAKE_FAIL", "ssh:false")
        .assert()
        .code(1);
    cx.cmd()
        .args(["validate"])
        .arg(&cx.app)
        .assert()
        .success()
        .stderr(contains("Valid"));
}

/// A log's command line is what a shell runs: wait-ssh's shows ssh's remote command once, as
/// the VM's shell gets it (the same text the fake ssh received), not quoted a second time.
#[test]
fn a_logged_ssh_line_shows_the_remote_command_once() {
    let cx = TestContext::new();
    cx.cmd().arg("up").arg(&cx.app).assert().success();
    let state = tfgrid_compose::state::DeploymentState::parse(&cx.state_text()).unwrap();
    let wait_ssh = state.record(tfgrid_compose::state::Phase::WaitSsh).unwrap();
    let log = std::fs::read_to_string(&wait_ssh.logs[0]).unwrap();
    let line = log.lines().next().unwrap();
    let received = format!("-p {} root@127.0.0.1 -- 'cat'", cx.port);
    assert!(
        line.starts_with("$ ssh ") && line.ends_with(&received),
        "{line}"
    );
    assert!(
        cx.transcript()
            .iter()
            .any(|l| l.starts_with("ssh ") && l.ends_with(&received)),
        "{:?}",
        cx.transcript()
    );
}

/// `logs PHASE` prints every file the phase's journal entry lists, each under its path: the
/// application phase's upload log and each hook's, not only the file named after the
/// phase. A log by name, a phase that has not run, one that wrote no log, and a name that is
/// neither: each as the journal has it, an error with a hint for the last three.
#[test]
fn logs_of_a_phase_are_every_file_its_journal_entry_lists() {
    let cx = TestContext::new();
    cx.cmd().arg("up").arg(&cx.app).assert().success();
    let state = tfgrid_compose::state::DeploymentState::parse(&cx.state_text()).unwrap();
    let application = &state
        .record(tfgrid_compose::state::Phase::Application)
        .unwrap()
        .logs;
    let names: Vec<&str> = application
        .iter()
        .map(|l| l.file_name().unwrap().to_str().unwrap())
        .collect();
    assert!(
        names.contains(&"application.log") && names.contains(&"hook-setup.log"),
        "{names:?}"
    );
    let logs = |args: &[&str]| {
        let mut all = vec!["logs", "--app", cx.app_arg()];
        all.extend(args);
        cx.run(&all)
    };
    let (code, out, err) = logs(&["application"]);
    assert_eq!(code, 0, "{err}");
    for log in application {
        let text = std::fs::read_to_string(log).unwrap();
        assert!(
            out.contains(&format!("==> {} <==\n{}", log.display(), text.trim_end())),
            "{} is missing from:\n{out}",
            log.display()
        );
    }
    // One hook's log by name: that file alone.
    let (code, out, err) = logs(&["hook-setup"]);
    assert_eq!(code, 0, "{err}");
    let setup = application
        .iter()
        .find(|l| l.ends_with("hook-setup.log"))
        .unwrap();
    assert_eq!(
        out.trim_end(),
        std::fs::read_to_string(setup).unwrap().trim_end()
    );
    // The list is the journal's, in phase order: the phase, the name `logs NAME` takes, the file.
    let (code, out, err) = logs(&[]);
    assert_eq!(code, 0, "{err}");
    let recorded: Vec<[String; 3]> = state
        .journal
        .iter()
        .flat_map(|r| {
            r.logs.iter().map(|l| {
                let stem = l.file_stem().unwrap().to_string_lossy().into_owned();
                [r.phase.name().to_string(), stem, l.display().to_string()]
            })
        })
        .collect();
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["PHASE", "NAME", "FILE"], "{out}");
    // Two words, then the file (whose path may hold spaces).
    let rows: Vec<[&str; 3]> = lines
        .map(|line| {
            let (phase, rest) = line.split_once(' ').unwrap();
            let (name, file) = rest.trim_start().split_once(' ').unwrap();
            [phase, name, file.trim_start()]
        })
        .collect();
    let want: Vec<[&str; 3]> = recorded
        .iter()
        .map(|[p, n, f]| [p.as_str(), n.as_str(), f.as_str()])
        .collect();
    assert_eq!(rows, want, "{out}");
    // Each name the list shows is one `logs NAME` takes.
    for [_, name, file] in &recorded {
        let (code, out, err) = logs(&[name]);
        assert_eq!(code, 0, "{name}: {err}");
        assert!(
            out.contains(std::fs::read_to_string(file).unwrap().trim_end()),
            "{name}: {out}"
        );
    }
    // A phase that wrote none, one that has not run, a name that is neither: one line and a hint.
    let (code, _, err) = logs(&["validate"]);
    assert_eq!(code, 2, "bad input");
    assert!(
        err.contains("the `validate` phase of minimal:default wrote no log")
            && err.contains("hint: `tfgrid-compose logs --app"),
        "{err}"
    );
    let mut unfinished = state.clone();
    unfinished.reset_from(tfgrid_compose::state::Phase::Verify);
    std::fs::write(
        cx.state_dir().join("state.yaml"),
        serde_yaml::to_string(&unfinished).unwrap(),
    )
    .unwrap();
    let (code, _, err) = logs(&["verify"]);
    assert_eq!(code, 2, "bad input");
    assert!(
        err.contains("the `verify` phase of minimal:default has not run"),
        "{err}"
    );
    std::fs::remove_file(setup).unwrap();
    let (code, _, err) = logs(&["hook-setup"]);
    assert_eq!(code, 2, "bad input");
    assert!(
        err.contains("hook-setup.log` is no longer there") && err.contains("hint: a phase writes"),
        "{err}"
    );
    let (code, _, err) = logs(&["hook-nothing"]);
    assert_eq!(code, 2, "bad input");
    assert!(
        err.contains(
            "`hook-nothing` is neither a phase nor a log a phase of minimal:default wrote"
        ) && err.contains("hint: phases are: validate, infrastructure")
            && err.contains("lists the logs the phases wrote"),
        "{err}"
    );
}

/// `logs --service` reads the journal of the VM that runs the service, as the app's `ai_stack:`
/// places it; `--unit` that of an app's unit on the VM `--vm` names; `-n`, `-f` and `--json`
/// become journalctl's options, quoted once.
#[test]
fn logs_of_a_service_run_journalctl_on_its_vm() {
    let cx = TestContext::new();
    cx.cmd().arg("up").arg(&cx.app).assert().success();
    // The second VM gets an address of its own (wait-ssh only reaches 127.0.0.1).
    let file = cx.state_dir().join("state.yaml");
    let state = std::fs::read_to_string(&file).unwrap();
    let (head, tail) = state.split_at(state.find("secondary_ips").unwrap());
    let tail = tail.replacen("127.0.0.1", "127.0.0.2", 1);
    std::fs::write(&file, format!("{head}{tail}")).unwrap();
    cx.append_to_manifest("ai_stack:\n  gateway: 0\n  agent: 1\n  git: 0\n");
    let journal = |args: &[&str]| {
        cx.clear_transcript();
        cx.cmd()
            .args(["logs", "--app"])
            .arg(&cx.app)
            .args(args)
            .assert()
            .success();
        let transcript = cx.transcript();
        assert_eq!(transcript.len(), 1, "{transcript:?}");
        transcript[0].clone()
    };
    let agent = journal(&["--service", "agent", "-n", "5"]);
    assert!(
        agent.ends_with(
            "root@127.0.0.2 -- 'journalctl' '-u' 'tfgrid-ai-agent.service' '--no-pager' '-n' '5'"
        ),
        "{agent}"
    );
    // The gateway's nginx is read with it; the local model runs with the agent.
    let gateway = journal(&["--service", "gateway", "-f", "--json"]);
    assert!(
        gateway.ends_with(
            "root@127.0.0.1 -- 'journalctl' '-u' 'tfgrid-ai-gateway.service' '-u' \
             'tfgrid-ai-nginx-gateway.service' '--no-pager' '-f' '-o' 'json'"
        ),
        "{gateway}"
    );
    assert!(
        journal(&["--service", "llm"])
            .contains("root@127.0.0.2 -- 'journalctl' '-u' 'tfgrid-ai-llm.service'")
    );
    let unit = journal(&["--unit", "my app.service", "--vm", "backend1", "-n", "1"]);
    assert!(
        unit.ends_with(
            "root@127.0.0.2 -- 'journalctl' '-u' 'my app.service' '--no-pager' '-n' '1'"
        ),
        "{unit}"
    );
    let primary = journal(&["--unit", "web.service"]);
    assert!(
        primary.contains("root@127.0.0.1 -- 'journalctl'"),
        "{primary}"
    );
    // A name that is no service: one line naming them, and a hint; nothing runs.
    cx.clear_transcript();
    cx.cmd()
        .args(["logs", "--service", "agnet", "--app"])
        .arg(&cx.app)
        .assert()
        .code(2)
        .stderr(contains(
            "error: --service: `agnet` is not a service of the AI stack; its services: gateway, \
             git, llm, agent, monitoring\n",
        ))
        .stderr(contains("hint: give one of those; `--unit UNIT`"));
    assert!(cx.transcript().is_empty());
    // The remote exit code is ours.
    cx.cmd()
        .args(["logs", "--unit", "gone.service", "--app"])
        .arg(&cx.app)
        .env("FAKE_FAIL", "ssh:journalctl")
        .assert()
        .code(1);
}

/// `--service` of an app without an AI stack, or of a service its stack does not run, says so.
#[test]
fn logs_of_a_service_the_deployment_lacks_say_what_runs() {
    let cx = TestContext::new();
    cx.cmd().arg("up").arg(&cx.app).assert().success();
    cx.cmd()
        .args(["logs", "--service", "agent", "--app"])
        .arg(&cx.app)
        .assert()
        .code(2)
        .stderr(contains("app `minimal` has no AI stack"))
        .stderr(contains(
            "hint: `tfgrid-compose logs --unit UNIT [--vm VM]`",
        ));
    cx.append_to_manifest(
        "ai_stack:\n  agent: 1\n  git: 1\n  llm:\n    - base_url: http://10.1.0.9/v1\n      model: m\n",
    );
    cx.cmd()
        .args(["logs", "--service", "llm", "--app"])
        .arg(&cx.app)
        .assert()
        .code(2)
        .stderr(contains(
            "`llm` does not run in this deployment; it runs: gateway (VM 0), git (VM 1), agent (VM 1)",
        ));
}

/// Verify asks every VM at once: the fixture's two VMs' checks each wait until both have started
/// (one after the other, the first would wait forever).
#[test]
fn verify_asks_every_vm_at_once() {
    let cx = TestContext::new();
    cx.cmd()
        .arg("up")
        .arg(&cx.app)
        .env("FAKE_MEET", "ssh:is-system-running:2")
        .assert()
        .success();
    let checks = cx
        .transcript()
        .iter()
        .filter(|l| l.contains("is-system-running"))
        .count();
    assert_eq!(checks, 2);
}

/// `health` of a deployment without an AI stack: one line per check with its figure (reachable,
/// no failed unit, the root disk's use), exit 0; a disk over 80 % is a failed check and exit 4;
/// `--json` fits its schema.
#[test]
fn health_reports_each_check_with_its_figure_and_exits_4_when_one_fails() {
    let cx = TestContext::new();
    cx.cmd().arg("up").arg(&cx.app).assert().success();
    let health = |used: &str, json: bool| {
        let mut cmd = cx.cmd();
        if json {
            cmd.arg("--json");
        }
        let out = cmd
            .arg("health")
            .arg(&cx.app)
            .env("FAKE_DISK_USED", used)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = health("42", false);
    assert_eq!(code, Some(0), "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.len(),
        7,
        "two VMs, three checks each, and the app's healthcheck hook: {out}"
    );
    assert!(
        lines[0].starts_with("ok   vm0 ")
            && lines[0].contains(" reachable ")
            && lines[0].contains(" ssh answered in "),
        "{out}"
    );
    assert!(
        lines[1].contains(" units ") && lines[1].ends_with("no failed unit"),
        "{out}"
    );
    assert!(
        lines[2].contains(" disk / ") && lines[2].ends_with(" 42% used (limit 80%)"),
        "{out}"
    );
    let ssh: Vec<String> = cx
        .transcript()
        .into_iter()
        .filter(|c| c.starts_with("ssh "))
        .collect();
    assert!(
        ssh.iter()
            .any(|c| c
                .ends_with("-- 'systemctl' 'list-units' '--state=failed' '--plain' '--no-legend'")),
        "{ssh:#?}"
    );

    // df rounds its Use% up: 80 % is a share not over 0.80, under which `DiskFull` does not
    // fire either; 81 % is over it.
    let (code, out, err) = health("80", false);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains(" 80% used (limit 80%)"), "{out}");
    let (code, out, err) = health("81", false);
    assert_eq!(code, Some(4), "{out}{err}");
    let (code, out, err) = health("91", false);
    assert_eq!(code, Some(4), "{out}{err}");
    assert!(
        out.contains("FAIL vm0 ") && out.contains(" 91% used (limit 80%)"),
        "{out}"
    );
    assert!(
        err.contains("error: unhealthy: vm0 ") && err.contains(" disk /"),
        "{err}"
    );
    let (code, out, _) = health("91", true);
    assert_eq!(code, Some(4));
    let doc = crate::schema::assert_fits("health", &out);
    assert_eq!(doc["healthy"], false);
    assert_eq!(doc["tunnel"], serde_json::Value::Null);
}

/// `health` of an AI stack counts the targets Prometheus is configured with (its
/// `/api/v1/targets`), not the series of `up`, which has none for a target before its first
/// scrape: right after `up`, one not scraped yet is named and holds; one still not scraped long
/// after Prometheus loaded its config (two scrape intervals and 10 s) fails as never scraped, as
/// one down does, and as an empty list does (which holds for Prometheus' first seconds).
/// Prometheus' answers are the fake ssh's (`$FAKE_DIR/prometheus/`).
#[test]
fn health_counts_the_targets_prometheus_has_and_names_those_not_scraped_yet() {
    let cx = TestContext::new();
    cx.cmd().arg("up").arg(&cx.app).assert().success();
    // The app and state of an AI stack, as its `up` leaves them.
    cx.append_to_manifest("ai_stack:\n  gateway: 0\n  agent: 1\n  git: 0\n");
    let file = cx.state_dir().join("state.yaml");
    let mut state = std::fs::read_to_string(&file).unwrap();
    state.push_str(
        "ai_stack:\n  agent_api: http://127.0.0.1:1\n  gateway_api: http://127.0.0.1:1\n  \
         git_api: http://127.0.0.1:1\n  public_url: http://127.0.0.1:1\n",
    );
    std::fs::write(&file, state).unwrap();
    let prometheus = cx.fake_dir.join("prometheus");
    std::fs::create_dir_all(&prometheus).unwrap();
    // The three services, each VM's node_exporter, Prometheus and Alertmanager; the second VM's
    // node_exporter as `node` says.
    let targets = |node: &str| {
        let target = |job: &str, instance: &str, health: &str| serde_json::json!({"labels": {"job": job, "instance": instance}, "health": health});
        let doc = serde_json::json!({"status": "success", "data": {"activeTargets": [
            target("health-checks", "10.1.0.2:7701", "up"),
            target("health-checks", "10.1.1.2:7702", "up"),
            target("health-checks", "10.1.0.2:80", "up"),
            target("node", "10.1.0.2:9100", "up"),
            target("node", "10.1.1.2:9100", node),
            target("prometheus", "127.0.0.1:9090", "up"),
            target("alertmanager", "127.0.0.1:9093", "up"),
        ], "droppedTargets": []}});
        std::fs::write(prometheus.join("api-v1-targets"), doc.to_string()).unwrap();
    };
    // Prometheus' own metrics: when it last loaded its config, `ago` seconds ago (written as Go
    // writes a float).
    let loaded = |ago: u64| {
        let at = tfgrid_compose::clock::now_unix() - ago;
        std::fs::write(
            prometheus.join("metrics"),
            format!(
                "# TYPE prometheus_config_last_reload_success_timestamp_seconds gauge\n\
                 prometheus_config_last_reload_success_timestamp_seconds {}e+09\n",
                at as f64 / 1e9
            ),
        )
        .unwrap();
    };
    let check = || {
        let out = cx
            .cmd()
            .args(["--json", "health"])
            .arg(&cx.app)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let doc = crate::schema::assert_fits("health", &text);
        let check = doc["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == "metrics targets")
            .cloned()
            .unwrap_or_else(|| panic!("no metrics targets check: {text}"));
        (check["ok"].as_bool().unwrap(), check["figure"].clone())
    };

    // Right after `up`: 7 targets, one not scraped yet, which holds.
    targets("unknown");
    loaded(5);
    assert_eq!(
        check(),
        (true, "6/7 up, 1 not scraped yet: node 10.1.1.2:9100".into())
    );
    let asked: Vec<String> = cx
        .transcript()
        .into_iter()
        .filter(|l| l.contains("9090"))
        .collect();
    assert!(
        asked.iter().any(|l| l.ends_with(
            "-- 'curl' '-sS' '--fail' 'http://127.0.0.1:9090/api/v1/targets?state=active'"
        )),
        "{asked:#?}"
    );
    // An hour later it has still not been scraped: it never is.
    loaded(3600);
    assert_eq!(
        check(),
        (
            false,
            "6/7 up, 1 never scraped in the 1h since Prometheus loaded its config: node \
             10.1.1.2:9100"
                .into()
        )
    );
    targets("down");
    assert_eq!(
        check(),
        (false, "6/7 up, 1 down: node 10.1.1.2:9100".into())
    );
    // Every target up: Prometheus is asked no more than its targets.
    targets("up");
    cx.clear_transcript();
    assert_eq!(check(), (true, "7/7 up".into()));
    let asked: Vec<String> = cx
        .transcript()
        .into_iter()
        .filter(|l| l.contains("9090/metrics"))
        .collect();
    assert_eq!(asked, Vec::<String>::new());
    // Prometheus' first seconds, when it lists no target yet: that holds as briefly.
    std::fs::write(
        prometheus.join("api-v1-targets"),
        r#"{"status":"success","data":{"activeTargets":[],"droppedTargets":[]}}"#,
    )
    .unwrap();
    loaded(5);
    let (ok, figure) = check();
    let figure = figure.as_str().unwrap().to_string();
    assert!(
        ok && figure.starts_with("none listed yet, ")
            && figure.ends_with(" after Prometheus loaded its config"),
        "{figure}"
    );
    loaded(3600);
    assert_eq!(
        check(),
        (
            false,
            "none in the 1h since Prometheus loaded its config".into()
        )
    );
}

/// An HTTP server on this machine's loopback answering every GET with the status `code` holds
/// (HTTP/1.0, then closes); its port.
fn answering(code: std::sync::Arc<std::sync::atomic::AtomicU16>) -> u16 {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            // The whole request first (the client writes it in pieces).
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
                request.push(byte[0]);
            }
            let status = code.load(std::sync::atomic::Ordering::SeqCst);
            let _ = write!(stream, "HTTP/1.0 {status} X\r\nContent-Length: 0\r\n\r\n");
        }
    });
    port
}

/// `health` runs the app's own checks: its `healthcheck` hook (on the primary VM, as `up` runs
/// it, with the deployment's variables) and a GET of its `url`; a failing hook or a 5xx is a
/// failed check (exit 4). `--quiet` prints the failing checks alone, and nothing when all hold.
#[test]
fn health_runs_the_apps_healthcheck_and_url_and_quiet_prints_only_failures() {
    use std::sync::atomic::{AtomicU16, Ordering};
    let cx = TestContext::new();
    cx.cmd().arg("up").arg(&cx.app).assert().success();
    let code = std::sync::Arc::new(AtomicU16::new(200));
    let port = answering(code.clone());
    cx.append_to_manifest(&format!("url: http://127.0.0.1:{port}/\n"));
    let health = |quiet: bool, fail: Option<&str>| {
        let mut cmd = cx.cmd();
        if quiet {
            cmd.arg("-q");
        }
        if let Some(fail) = fail {
            cmd.env("FAKE_FAIL", fail);
        }
        let out = cmd.arg("health").arg(&cx.app).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let before = cx.transcript().len();
    let (status, out, err) = health(false, None);
    assert_eq!(status, Some(0), "{out}{err}");
    let hook = out
        .lines()
        .find(|l| l.contains(" healthcheck "))
        .unwrap_or_else(|| panic!("no healthcheck line: {out}"));
    assert!(
        hook.starts_with("ok   vm0 ") && hook.contains("`deployment/healthcheck.sh` passed in"),
        "{out}"
    );
    assert_eq!(
        out.lines().filter(|l| l.contains("healthcheck")).count(),
        1,
        "the primary VM alone: {out}"
    );
    let url = format!("GET http://127.0.0.1:{port}/ answered 200 in ");
    assert!(
        out.lines()
            .any(|l| l.starts_with("ok   app url ") && l.contains(&url)),
        "{out}"
    );
    let ran: Vec<String> = cx.transcript()[before..]
        .iter()
        .filter(|l| l.contains("healthcheck.sh"))
        .cloned()
        .collect();
    assert_eq!(ran.len(), 1, "{ran:#?}");
    assert!(
        ran[0].contains("'APP_NAME=minimal'")
            && ran[0].ends_with("'/tmp/app-deployment/healthcheck.sh'"),
        "{ran:#?}"
    );
    let (status, out, _) = health(true, None);
    assert_eq!(
        (status, out.as_str()),
        (Some(0), ""),
        "-q: nothing when all hold"
    );

    // The hook failing and the page answering 503: two failed checks, exit 4; `-q` prints them
    // alone.
    code.store(503, Ordering::SeqCst);
    let (status, out, err) = health(false, Some("ssh:healthcheck.sh"));
    assert_eq!(status, Some(4), "{out}{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("FAIL vm0 ") && l.contains("healthcheck.sh` failed (exit 1)")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("FAIL app url ") && l.contains(" answered 503 ")),
        "{out}"
    );
    assert!(out.lines().any(|l| l.starts_with("ok   ")), "{out}");
    let (status, quiet, err) = health(true, Some("ssh:healthcheck.sh"));
    assert_eq!(status, Some(4), "{quiet}{err}");
    assert_eq!(quiet.lines().count(), 2, "{quiet}");
    assert!(quiet.lines().all(|l| l.starts_with("FAIL ")), "{quiet}");
    assert!(err.contains("error: unhealthy: "), "{err}");
}
