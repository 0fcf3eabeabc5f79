//! SIGINT and SIGTERM during `up` and `down`, with a fake tool that hangs until it is signalled
//! and then, as Terraform does, takes two seconds to write its state (`FAKE_HANG` in
//! fake-tool.sh): the child gets exactly one signal, the command waits for it, records the phase
//! as interrupted, releases the lock only then, exits 130 (143 for SIGTERM), and `up --resume`
//! finishes the deployment.

use std::process::{Child, Command, Stdio};

use tfgrid_compose::state::{DeploymentState, PhaseStatus, Status};

use crate::common::{TestContext, WG_OUTPUTS, wait_for_file};

/// `up` of the fixture app, leading its own process group (as a shell job does), with
/// `FAKE_HANG=hang`.
pub(crate) fn start(cx: &TestContext, args: &[&str], hang: &str) -> Child {
    command(cx, args, hang).spawn().unwrap()
}

/// What [`start`] runs, to add to.
fn command(cx: &TestContext, args: &[&str], hang: &str) -> Command {
    let mut cmd = cx.std_cmd();
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    cmd.args(args)
        .env("FAKE_HANG", hang)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// `kill -SIG -- target` (a pid, or `-pgid` for a whole process group).
pub(crate) fn kill(signal: &str, target: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), "--", target])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {target}");
}

fn signals(cx: &TestContext) -> String {
    std::fs::read_to_string(cx.fake_dir.join("signals.log")).unwrap_or_default()
}

fn state(cx: &TestContext) -> DeploymentState {
    DeploymentState::parse(&cx.state_text()).expect("state.yaml parses after an interrupt")
}

/// Runs `up` until the hung tool started, sends `signal` to `target(pid)`, and returns the exit
/// code and stderr, checking that the tool had finished stopping when the command exited.
fn interrupt_up(cx: &TestContext, hang: &str, signal: &str, group: bool) -> (i32, String) {
    let child = start(cx, &["up", cx.app_arg()], hang);
    wait_for_file(&cx.fake_dir.join("hanging"));
    let pid = child.id().to_string();
    kill(signal, &if group { format!("-{pid}") } else { pid });
    let out = child.wait_with_output().unwrap();
    assert!(
        cx.fake_dir.join("stopped").exists(),
        "the command exited before the tool it started had stopped"
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn resume_finishes(cx: &TestContext) {
    let _ = std::fs::remove_file(cx.fake_dir.join("hanging"));
    cx.cmd()
        .args(["up", "--resume"])
        .arg(&cx.app)
        .assert()
        .success();
    assert_eq!(state(cx).status, Status::Running);
}

#[test]
fn ctrl_c_to_the_process_group_stops_tofu_once_and_waits_for_it() {
    let cx = TestContext::new();
    let (code, stderr) = interrupt_up(&cx, "tofu:apply", "INT", true);
    assert_eq!(code, 130, "{stderr}");
    assert_eq!(signals(&cx), "INT\n", "tofu must get exactly one SIGINT");
    assert!(
        stderr.contains("SIGINT received; stopping `tofu apply`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("infrastructure phase interrupted"),
        "{stderr}"
    );
    assert!(stderr.contains("up --resume"), "{stderr}");
    let st = state(&cx);
    assert_eq!(st.status, Status::Interrupted);
    assert_eq!(
        st.record(tfgrid_compose::phase::Phase::Infrastructure)
            .unwrap()
            .status,
        PhaseStatus::Interrupted
    );
    resume_finishes(&cx);
}

#[test]
fn sigint_to_the_binary_alone_is_passed_on_and_holds_the_lock_until_tofu_stopped() {
    let cx = TestContext::new();
    // tofu stops only when the test opens the gate, however slow this machine is.
    let child = command(&cx, &["up", cx.app_arg()], "tofu:apply")
        .env("FAKE_STOP_GATE", "1")
        .spawn()
        .unwrap();
    wait_for_file(&cx.fake_dir.join("hanging"));
    kill("INT", &child.id().to_string());
    wait_for_file(&cx.fake_dir.join("stopping"));
    // A second Ctrl-C says what is being waited for, and is not passed on again.
    kill("INT", &child.id().to_string());
    // While tofu writes its state, the deployment stays locked: a resume is refused, not run.
    let (code, _, stderr) = cx.run(&["up", "--resume", cx.app_arg()]);
    assert_eq!(
        code, 3,
        "a resume while tofu is still stopping must be refused by the lock: {stderr}"
    );
    std::fs::write(cx.fake_dir.join("gate-open"), "").unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(cx.fake_dir.join("stopped").exists());
    assert_eq!(signals(&cx), "INT\n", "tofu must get exactly one SIGINT");
    assert!(
        stderr.contains("SIGINT received again; still waiting for `tofu apply`"),
        "{stderr}"
    );
    resume_finishes(&cx);
}

#[test]
fn sigterm_is_passed_on_and_exits_143() {
    let cx = TestContext::new();
    let (code, stderr) = interrupt_up(&cx, "tofu:apply", "TERM", false);
    assert_eq!(code, 143, "{stderr}");
    assert_eq!(signals(&cx), "TERM\n");
    assert!(stderr.contains("interrupted (SIGTERM)"), "{stderr}");
    assert_eq!(state(&cx).status, Status::Interrupted);
    resume_finishes(&cx);
}

#[test]
fn an_interrupt_in_each_phase_is_recorded_and_resumed() {
    use tfgrid_compose::phase::Phase;
    let cases = [
        ("wg-quick:up", Phase::Network),
        ("ssh:ControlMaster=yes", Phase::WaitSsh),
        ("ansible-playbook:-i", Phase::Platform),
        ("ssh:setup.sh", Phase::Application),
        ("ssh:healthcheck.sh", Phase::Application),
    ];
    for (hang, phase) in cases {
        let cx = TestContext::new();
        cx.set_outputs(WG_OUTPUTS);
        let (code, stderr) = interrupt_up(&cx, hang, "INT", false);
        assert_eq!(code, 130, "{hang}: {stderr}");
        assert_eq!(signals(&cx), "INT\n", "{hang}: exactly one SIGINT");
        let st = state(&cx);
        assert_eq!(st.status, Status::Interrupted, "{hang}");
        assert_eq!(
            st.record(phase).map(|r| r.status),
            Some(PhaseStatus::Interrupted),
            "{hang}: {:?}",
            st.journal
        );
        assert!(
            st.journal
                .iter()
                .filter(|r| r.phase < phase)
                .all(|r| r.status == PhaseStatus::Done),
            "{hang}: earlier phases stay done"
        );
        resume_finishes(&cx);
    }
}

#[test]
fn an_interrupted_down_keeps_the_deployment_and_a_second_down_finishes() {
    let cx = TestContext::new();
    cx.cmd().arg("up").arg(&cx.app).assert().success();
    let child = start(&cx, &["down", "--yes", cx.app_arg()], "tofu:destroy");
    wait_for_file(&cx.fake_dir.join("hanging"));
    kill("INT", &child.id().to_string());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(cx.fake_dir.join("stopped").exists());
    assert!(
        stderr.contains("was interrupted; its folder and record are kept")
            && stderr.contains("again to finish"),
        "{stderr}"
    );
    assert_eq!(state(&cx).status, Status::DestroyFailed);
    cx.cmd()
        .args(["down", "--yes"])
        .arg(&cx.app)
        .assert()
        .success();
    assert!(!cx.state_dir().exists());
}

#[test]
fn a_tool_left_running_by_a_sigkilled_run_is_stopped_before_the_next_one_starts() {
    let cx = TestContext::new();
    let mut child = start(&cx, &["up", cx.app_arg()], "tofu:apply");
    wait_for_file(&cx.fake_dir.join("hanging"));
    child.kill().unwrap();
    child.wait().unwrap();
    // tofu is still applying, an orphan; the next run finds it, stops it, and only then goes on.
    assert!(!cx.fake_dir.join("stopped").exists());
    let out = cx
        .cmd()
        .args(["up", "--resume"])
        .arg(&cx.app)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("`tofu apply` (pid ")
            && stderr
                .contains("of an earlier run that was killed is still running; stopping it first"),
        "{stderr}"
    );
    assert!(cx.fake_dir.join("stopped").exists());
    assert_eq!(
        signals(&cx),
        "INT\n",
        "the orphan gets one SIGINT, as Ctrl-C would have given it"
    );
    let pid_files: Vec<_> = std::fs::read_dir(cx.state_dir().join("logs"))
        .unwrap()
        .flatten()
        .flat_map(|run| std::fs::read_dir(run.path()).unwrap().flatten())
        .filter(|f| f.path().extension().is_some_and(|e| e == "pid"))
        .collect();
    assert!(pid_files.is_empty(), "{pid_files:?}");
}
