//! Paths and keys as users have them, with the real tools of the `local` target (terraform,
//! wg-quick, sshd in namespaces, ansible-playbook): an app folder whose path holds a space, both
//! quotes, a `%`, non-ASCII letters and a leading `-`, commanded from other folders; a relative key path from
//! the environment; a key locked by a passphrase, refused in `validate` without an agent and
//! used through one (an ssh-agent each test starts and stops by its PID).

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;

use crate::common::{assert_success, copy_dir};
use crate::local::{SERIAL, assert_nothing_left, http_get, require_tools};

/// Folder names ssh, ansible's configparser and shlex, wg-quick and terraform each read in
/// their own way; the first, given as a relative path, looks like an option.
const AWKWARD: &str = "-My Apps/it's \"ünï\" 100%";

/// The passphrase of the locked keys the tests make.
const PASSPHRASE: &str = "correct horse battery staple";

/// A temp world: `root/` holds the app (at `app`), the data and config folders, and an empty
/// folder the commands run from. Dropping it runs `down --yes` if a deployment is left.
struct World {
    root: tempfile::TempDir,
    app: PathBuf,
    env: Vec<(String, String)>,
}

impl World {
    fn new(app_parent: &str) -> World {
        let root = tempfile::tempdir().unwrap();
        let app = root.path().join(app_parent).join("static-site");
        copy_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/static-site"),
            &app,
        );
        std::fs::create_dir(root.path().join("elsewhere")).unwrap();
        World {
            root,
            app,
            env: Vec::new(),
        }
    }

    /// The binary, run from `root/elsewhere` unless `cwd` says otherwise, with no ssh-agent
    /// unless the test sets `SSH_AUTH_SOCK` in `env`.
    fn cmd_in(&self, cwd: &Path) -> Command {
        let mut cmd = Command::cargo_bin("tfgrid-compose").unwrap();
        cmd.env("NO_COLOR", "1")
            .env_remove("TFGRID_COMPOSE_PATTERNS_DIR")
            .env_remove("TFGRID_COMPOSE_ENV")
            .env_remove("TFGRID_COMPOSE_SSH_KEY")
            .env_remove("SSH_AUTH_SOCK")
            .env("TFGRID_COMPOSE_DATA_DIR", self.root.path().join("data"))
            .env("TFGRID_COMPOSE_CONFIG_DIR", self.root.path().join("config"))
            .envs(self.env.iter().cloned())
            .current_dir(cwd);
        cmd
    }

    fn cmd(&self) -> Command {
        self.cmd_in(&self.root.path().join("elsewhere"))
    }

    fn state(&self) -> tfgrid_compose::state::DeploymentState {
        tfgrid_compose::state::StateDir::for_app(&self.app, "default", false)
            .load()
            .unwrap()
            .expect("a deployment")
    }

    /// A new ed25519 key at `root/<rel>` (with its `.pub`), locked by `passphrase` unless empty.
    fn keygen(&self, rel: &str, passphrase: &str) -> PathBuf {
        let key = self.root.path().join(rel);
        std::fs::create_dir_all(key.parent().unwrap()).unwrap();
        let status = std::process::Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                "ed25519",
                "-C",
                "paths-test",
                "-N",
                passphrase,
                "-f",
            ])
            .arg(&key)
            .status()
            .expect("ssh-keygen is installed (scripts/install-deps.sh)");
        assert!(status.success());
        key
    }

    /// Tears the deployment down and checks that nothing of it is left on the host.
    fn down_leaves_nothing(&self) {
        let id8 = self.state().id[..8].to_string();
        let app = self.app.display().to_string();
        self.cmd().args(["down", &app, "--yes"]).assert().success();
        assert!(!self.app.join(".tfgrid-compose").exists());
        assert_nothing_left(&id8);
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if self.app.join(".tfgrid-compose/default/state.yaml").exists() {
            let app = self.app.display().to_string();
            let _ = self.cmd().args(["down", &app, "--yes"]).output();
        }
    }
}

/// An ssh-agent of the test's own, on a socket in `dir`, killed by its PID when dropped.
struct Agent {
    child: Child,
    socket: PathBuf,
}

impl Agent {
    fn start(dir: &Path) -> Agent {
        let socket = dir.join("agent.sock");
        let child = std::process::Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ssh-agent is installed (scripts/install-deps.sh)");
        let agent = Agent { child, socket };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !agent.socket.exists() {
            assert!(Instant::now() < deadline, "ssh-agent made no socket");
            std::thread::sleep(Duration::from_millis(20));
        }
        agent
    }

    /// `ssh-add KEY`, the passphrase given by an askpass program (no terminal here).
    fn add(&self, key: &Path) {
        let askpass = self.socket.with_file_name("askpass.sh");
        std::fs::write(&askpass, format!("#!/bin/sh\necho '{PASSPHRASE}'\n")).unwrap();
        std::fs::set_permissions(
            &askpass,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        let out = std::process::Command::new("ssh-add")
            .arg(key)
            .env("SSH_AUTH_SOCK", &self.socket)
            .env("SSH_ASKPASS", &askpass)
            .env("SSH_ASKPASS_REQUIRE", "force")
            .env("DISPLAY", "none")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_success(&out);
    }

    fn env(&self) -> (String, String) {
        ("SSH_AUTH_SOCK".into(), self.socket.display().to_string())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every entry under `dir`, relative to it, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn up_ssh_exec_down_in_a_folder_with_a_space_quotes_non_ascii_letters_and_a_leading_dash() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    require_tools();
    let w = World::new(AWKWARD);
    let app = w.app.display().to_string();
    // given relative to the folder above it, as `-My Apps/…`
    let relative = w.app.strip_prefix(w.root.path()).unwrap();
    let out = w
        .cmd_in(w.root.path())
        .args(["up", "--"])
        .arg(relative)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_success(&out);
    // the suggested commands can be pasted into a shell
    let stderr = String::from_utf8_lossy(&out.stderr);
    let pasted = format!(
        "`tfgrid-compose down {}`",
        tfgrid_compose::process::shell_quote(&app)
    );
    assert!(stderr.contains(&pasted), "{stderr}");
    let url = stdout.lines().last().unwrap().to_string();
    assert!(http_get(&url).contains("Hello from tfgrid-compose"));
    w.cmd()
        .args(["exec", "--app", &app, "--", "cat", "/srv/www/index.html"])
        .assert()
        .success()
        .stdout(predicates::str::contains("Hello"));
    w.cmd()
        .args(["ssh", "--app", &app, "--", "sh", "-c", "exit 7"])
        .assert()
        .code(7);
    // the host key was learned into the deployment's own known_hosts, not into a file named
    // after the part of the path before a blank or quote
    assert!(
        std::fs::read_to_string(w.app.join(".tfgrid-compose/default/known_hosts"))
            .unwrap()
            .contains("ssh-ed25519")
    );
    let top = AWKWARD.split('/').next().unwrap();
    let made = entries(w.root.path());
    assert!(
        made.iter()
            .all(|e| ["config", "data", "elsewhere", top].contains(&e.as_str())),
        "written outside the deployment's folder: {made:?}"
    );
    assert_eq!(
        entries(&w.root.path().join(top)),
        [AWKWARD.split('/').nth(1).unwrap().to_string()]
    );
    assert!(entries(&w.root.path().join("elsewhere")).is_empty());
    w.down_leaves_nothing();
}

#[test]
fn a_relative_key_from_the_environment_held_by_an_agent_serves_later_commands_from_elsewhere() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    require_tools();
    let mut w = World::new("apps");
    let key = w.keygen("work/keys/id", PASSPHRASE);
    let agent = Agent::start(w.root.path());
    agent.add(&key);
    w.env.push(agent.env());
    let app = w.app.display().to_string();
    let out = w
        .cmd_in(&w.root.path().join("work"))
        .env("TFGRID_COMPOSE_SSH_KEY", "./keys/id")
        .args(["up", &app])
        .output()
        .unwrap();
    assert_success(&out);
    assert_eq!(w.state().ssh.identity, key);
    // a later command, from another folder, without the variable: the recorded absolute path
    w.cmd()
        .args(["exec", "--app", &app, "--", "cat", "/srv/www/index.html"])
        .assert()
        .success()
        .stdout(predicates::str::contains("Hello"));
    w.down_leaves_nothing();
}

#[test]
fn a_key_locked_by_a_passphrase_is_refused_in_validate_unless_an_agent_holds_it() {
    // a regression would deploy: one real deployment at a time
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    require_tools();
    let mut w = World::new("apps");
    let key = w.keygen("keys/locked", PASSPHRASE);
    let key_arg = key.display().to_string();
    let app = w.app.display().to_string();
    let refused = |w: &World, why: &str| {
        let out = w
            .cmd()
            .env("TFGRID_COMPOSE_SSH_KEY", &key_arg)
            .args(["up", &app])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        // 2: bad input (docs/cli.md)
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "error: the ssh key `{key_arg}` (TFGRID_COMPOSE_SSH_KEY) is locked by a \
                    passphrase and {why}"
            )),
            "{stderr}"
        );
        assert!(
            stderr.contains("hint: load it into an agent") && stderr.contains("ssh-add"),
            "{stderr}"
        );
        // nothing was created: no state folder, no registry entry, no Terraform
        assert!(!w.app.join(".tfgrid-compose").exists(), "{stderr}");
        assert!(
            !w.root.path().join("data/deployments").exists()
                || entries(&w.root.path().join("data/deployments")).is_empty()
        );
        assert!(!stderr.contains("Provisioning"), "{stderr}");
    };
    refused(&w, "no ssh-agent is running");
    let agent = Agent::start(w.root.path());
    w.env.push(agent.env());
    refused(&w, "the ssh-agent does not hold it");
    agent.add(&key);
    w.cmd()
        .env("TFGRID_COMPOSE_SSH_KEY", &key_arg)
        .args(["validate", &app])
        .assert()
        .success();
    assert!(!w.app.join(".tfgrid-compose").exists());
}

#[test]
fn a_folder_ssh_cannot_be_given_is_refused_before_anything_is_made() {
    // ssh expands `${VAR}` in file options and has no escape for it
    let w = World::new("a${HOME}b");
    let app = w.app.display().to_string();
    let out = w.cmd().args(["validate", &app]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "error: the app folder `{app}` holds `${{`, which ssh expands and cannot escape"
        )) && stderr.contains("hint: move the app folder"),
        "{stderr}"
    );
    assert!(!w.app.join(".tfgrid-compose").exists());
}

#[test]
fn ssh_refusing_the_options_it_was_given_stops_wait_ssh_at_once() {
    let cx = crate::common::TestContext::new();
    let out = cx
        .cmd()
        .arg("up")
        .arg(&cx.app)
        .env("FAKE_SSH_BAD_OPTION", "1")
        .env("TFGRID_COMPOSE_SSH_TIMEOUT", "30s")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("ssh refused the options it was given for 127.0.0.1")
            && stderr.contains("command-line line 0: invalid quotes"),
        "{stderr}"
    );
    let tries = cx.steps().iter().filter(|s| *s == "ssh login").count();
    // the fixture's two VMs, one try each
    assert_eq!(tries, 2, "{:?}", cx.steps());
}

/// A temporary folder too long for an ssh socket's path: `up` says that its ssh logins are not
/// shared and why, and goes on with one login per command.
#[test]
fn a_temporary_folder_too_long_for_a_socket_is_named_and_up_goes_on() {
    let cx = crate::common::TestContext::new();
    let long = cx
        .root
        .path()
        .join("a-temporary-folder-named-at-length-by-a-ci-runner");
    std::fs::create_dir(&long).unwrap();
    let out = cx
        .cmd()
        .arg("up")
        .arg(&cx.app)
        .env("TMPDIR", &long)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("ssh logins are not shared: the temporary folder")
            && stderr.contains("a shorter TMPDIR shares them"),
        "{stderr}"
    );
    let logins = cx.steps().iter().filter(|s| *s == "ssh true").count();
    assert_eq!(logins, 2, "{:?}", cx.steps());
}
