//! The AI stack's systemd units: rendered for a three-VM stack (and a VM with a local LLM) and
//! checked by the real `systemd-analyze verify` (scripts/install-deps.sh installs `systemd`), and
//! the example setup hook's systemd branch run against a folder of its own with a fake
//! `systemctl` on PATH (argv-exact). Running the units needs systemd as PID 1, which this
//! machine lacks; the grid's VMs have it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use tfgrid_compose::ai::units::{self, Folders, Programs};
use tfgrid_compose::phase::ai_stack::{self, Layout, REMOTE_BIN, render};

/// Where nginx, fcgiwrap and `rm` are looked for (a non-login PATH may lack /usr/sbin).
const SBIN_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn program(name: &str) -> String {
    which::which_in(name, Some(SBIN_PATH), "/")
        .unwrap_or_else(|_| panic!("`{name}` is missing: run scripts/install-deps.sh"))
        .display()
        .to_string()
}

fn systemd_analyze() -> PathBuf {
    which::which_in("systemd-analyze", Some(SBIN_PATH), "/")
        .expect("`systemd-analyze` is missing: scripts/install-deps.sh installs `systemd`")
}

/// Each VM's files of a three-VM stack (gateway, agent, git host), with `programs` in the units.
fn three_vms(programs: &Programs) -> BTreeMap<usize, BTreeMap<String, String>> {
    let spec = tfgrid_compose::yaml::from_yaml(
        "llm:\n  - {base_url: 'http://10.1.1.1:9000/v1', model: m}\n",
    )
    .unwrap();
    let tokens: BTreeMap<&'static str, String> = ["gateway", "agent", "git"]
        .into_iter()
        .map(|n| (n, "t".repeat(64)))
        .collect();
    let addresses = ["10.1.0.2".to_string(), "10.1.1.2".into(), "10.1.2.2".into()];
    let layout = Layout {
        addresses: &addresses,
        private: &[],
        host_ip: None,
        gateway_host_ip: None,
        keys: BTreeMap::new(),
        tokens: &tokens,
        programs,
        // This machine's end of the agent's tunnel, a network that holds the agent's address.
        tunnel: tfgrid_compose::ai::firewall::Inbound {
            private: vec!["10.1.1.0/24".into()],
            wireguard: vec![51820],
        },
    };
    let (vms, _) = render(&spec, &layout).unwrap();
    vms.into_iter().map(|(i, vm)| (i, vm.files)).collect()
}

/// Writes the unit files among `files` into `dir`; returns their paths.
fn write_units(dir: &Path, files: &BTreeMap<String, String>) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    files
        .iter()
        .filter(|(name, _)| name.starts_with("tfgrid-ai-") && name.ends_with(".service"))
        .map(|(name, text)| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            path
        })
        .collect()
}

#[test]
#[allow(
    clippy::print_stdout,
    reason = "the units' exposure scores, for the person running it"
)]
fn rendered_units_pass_systemd_analyze_verify() {
    let analyze = systemd_analyze();
    let root = tempfile::tempdir().unwrap();
    // verify checks that every ExecStart= program exists and is executable: this machine's.
    let llm = root.path().join("llm-serve");
    std::fs::write(&llm, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&llm, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let programs = Programs {
        tfgrid_compose: assert_cmd::cargo::cargo_bin("tfgrid-compose")
            .display()
            .to_string(),
        nginx: program("nginx"),
        fcgiwrap: program("fcgiwrap"),
        llm: llm.display().to_string(),
        rm: program("rm"),
        prometheus: program("prometheus"),
        alertmanager: program("prometheus-alertmanager"),
        node_exporter: program("prometheus-node-exporter"),
    };
    let mut vms: Vec<(String, Vec<PathBuf>)> = three_vms(&programs)
        .iter()
        .map(|(i, files)| {
            let dir = root.path().join(format!("vm-{i}"));
            (format!("vm {i}"), write_units(&dir, files))
        })
        .collect();
    let folders = Folders {
        config: "/etc/tfgrid-ai",
        data: "/var/lib/tfgrid-ai",
    };
    let all = units::render(
        &units::Service::ALL,
        &folders,
        &programs,
        &tfgrid_compose::stack::Monitoring::default(),
    );
    vms.push((
        "one VM with everything and an LLM".into(),
        write_units(&root.path().join("all"), &all),
    ));
    let counts: Vec<usize> = vms.iter().map(|(_, paths)| paths.len()).collect();
    // Each VM's firewall and node_exporter among its files; `render` alone has neither.
    assert_eq!(counts, [6, 3, 5, 9], "units per VM");

    let mut scores = Vec::new();
    for (vm, paths) in &vms {
        let out = Command::new(&analyze)
            .arg("verify")
            .args(paths)
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && said.trim().is_empty(),
            "systemd-analyze verify of {vm}'s units: {}\n{said}",
            out.status
        );
        for path in paths {
            let out = Command::new(&analyze)
                .args(["security", "--offline=true"])
                .arg(path)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            let score = text
                .lines()
                .find_map(|l| l.split_once("Overall exposure level for ").map(|x| x.1))
                .unwrap_or_else(|| panic!("no exposure level for {}:\n{text}", path.display()))
                .to_string();
            scores.push(score);
        }
    }
    scores.sort();
    scores.dedup();
    println!("systemd-analyze security --offline=true:");
    for score in &scores {
        println!("  {score}");
    }
}

/// Each VM's firewall ruleset, as rendered, is one the real nft(8) accepts (`-c`: checked, not
/// loaded; in a network namespace of its own all the same).
#[test]
fn rendered_firewalls_pass_nft_check() {
    let nft = program("nft");
    let root = tempfile::tempdir().unwrap();
    for (vm, files) in three_vms(&Programs::on_vm(REMOTE_BIN)) {
        let path = root.path().join(format!("vm-{vm}.nft"));
        std::fs::write(&path, &files[tfgrid_compose::ai::firewall::RULES]).unwrap();
        let out = Command::new("unshare")
            .args(["--net", &nft, "-c", "-f"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "VM {vm}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            files[tfgrid_compose::ai::firewall::RULES]
        );
    }
}

/// The git host's nginx config while a rotation runs (two push tokens, as
/// `projects rotate-tokens` writes it) is one the real nginx accepts (`-t`, its folders moved
/// into a temp folder).
#[test]
fn the_git_hosts_nginx_config_with_two_tokens_passes_nginx_t() {
    let root = tempfile::tempdir().unwrap();
    let prefix = root.path().display().to_string();
    let conf = tfgrid_compose::phase::ai_stack::git_nginx_conf(&["a".repeat(64), "b".repeat(64)])
        .replace(&format!("{}/nginx-git", ai_stack::REMOTE_DATA), &prefix);
    let path = root.path().join("git-nginx.conf");
    std::fs::write(&path, &conf).unwrap();
    let out = Command::new(program("nginx"))
        .args(["-t", "-p", &prefix, "-c"])
        .arg(&path)
        .args(["-e", &format!("{prefix}/error.log")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{conf}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The setup hook in a folder taken as / (`TFGRID_AI_ROOT`), with systemd "running" (the folder
/// `run/systemd/system` exists) and fake `systemctl`, `id` and `chown`: one run, then another.
#[test]
fn setup_hook_installs_enables_and_restarts_the_units_where_systemd_runs() {
    let root = tempfile::tempdir().unwrap();
    let vm = root.path().join("vm");
    let fake = root.path().join("fake");
    let bin = root.path().join("bin");
    for dir in [&fake, &bin, &vm.join("run/systemd/system")] {
        std::fs::create_dir_all(dir).unwrap();
    }
    let tool = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fake-tool.sh");
    for name in ["systemctl", "id", "chown", "apt-get"] {
        std::os::unix::fs::symlink(&tool, bin.join(name)).unwrap();
    }
    // The git host's files, as `up` uploads them; the agent's unit is left from an earlier run
    // that placed the agent here, next to a unit that is not the stack's.
    let files = &three_vms(&Programs::on_vm(REMOTE_BIN))[&2];
    let conf = vm.join("etc/tfgrid-ai");
    std::fs::create_dir_all(&conf).unwrap();
    for (name, text) in files {
        std::fs::write(conf.join(name), text).unwrap();
    }
    let unit_dir = vm.join("etc/systemd/system");
    std::fs::create_dir_all(&unit_dir).unwrap();
    std::fs::write(unit_dir.join("tfgrid-ai-agent.service"), "[Service]\n").unwrap();
    std::fs::write(unit_dir.join("other.service"), "[Service]\n").unwrap();

    let setup = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ai-stack/deployment/setup.sh");
    let run = |fail: Option<&str>| {
        let _ = std::fs::remove_file(fake.join("argv.log"));
        let mut cmd = Command::new(&setup);
        cmd.env_clear()
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .env("TFGRID_AI_ROOT", &vm)
            .env("FAKE_LOG", fake.join("argv.log"))
            .env("FAKE_DIR", &fake);
        if let Some(fail) = fail {
            cmd.env("FAKE_FAIL", fail);
        }
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let log = std::fs::read_to_string(fake.join("argv.log")).unwrap();
        let calls: Vec<String> = log
            .lines()
            .map(|l| {
                l.replace('\x1f', " ")
                    .replace(&vm.display().to_string(), "[VM]")
            })
            .collect();
        (calls, stdout)
    };
    let units = "tfgrid-ai-fcgiwrap.service tfgrid-ai-firewall.service tfgrid-ai-git.service \
        tfgrid-ai-nginx-git.service tfgrid-ai-node-exporter.service";
    // Every run: the user, the folders, the system nginx looked at; then `middle`; then the units
    // installed, enabled and restarted.
    let expected = |middle: &[&str]| {
        let mut calls: Vec<String> = [
            "id tfgrid-ai",
            "chown -R tfgrid-ai:tfgrid-ai [VM]/etc/tfgrid-ai [VM]/var/lib/tfgrid-ai",
            "chown -R tfgrid-ai:tfgrid-ai [VM]/var/lib/tfgrid-ai",
            // No node_exporter under [VM]/usr/bin: installed from the package, its own
            // daemon stopped.
            "apt-get install -y -q prometheus-node-exporter",
            "systemctl disable --now prometheus-node-exporter",
            "systemctl is-active --quiet nginx",
        ]
        .iter()
        .chain(middle)
        .map(|c| (*c).to_string())
        .collect();
        calls.extend([
            "systemctl daemon-reload".into(),
            format!("systemctl enable --quiet {units}"),
            format!("systemctl restart {units}"),
            "systemctl enable --quiet fail2ban".into(),
            "systemctl restart fail2ban".into(),
        ]);
        calls
    };
    let (calls, stdout) = run(None);
    assert_eq!(
        calls,
        expected(&[
            "systemctl disable --now nginx",
            "systemctl disable --now tfgrid-ai-agent.service",
        ])
    );
    assert!(
        stdout.contains(&format!("ai-stack: {units} started on ")),
        "{stdout}"
    );
    // The units as rendered, readable by all; the stale one gone, the other kept.
    let mut installed: Vec<String> = std::fs::read_dir(&unit_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    installed.sort();
    assert_eq!(installed.join(" "), format!("other.service {units}"));
    for name in units.split(' ') {
        let path = unit_dir.join(name);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), files[name]);
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o644, "{name}");
    }
    // fail2ban's jail, as rendered.
    assert_eq!(
        std::fs::read_to_string(vm.join("etc/fail2ban/jail.d/tfgrid-ai.local")).unwrap(),
        files["fail2ban.local"]
    );
    // The folders the units write to exist (their ReadWritePaths= must).
    for dir in ["repos", "nginx-git"] {
        assert!(vm.join("var/lib/tfgrid-ai").join(dir).is_dir(), "{dir}");
    }

    // Run again, with the system nginx already stopped: the same units restarted, nothing else.
    let (calls, _) = run(Some("systemctl:is-active"));
    assert_eq!(calls, expected(&[]));
}
