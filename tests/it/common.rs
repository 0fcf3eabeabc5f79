//! `TestContext`: a temp project with a copy of a fixture app, fake tools first on PATH, a clean
//! environment, and a TCP listener standing in for the VM's sshd port.

use std::net::TcpListener;
use std::path::{Path, PathBuf};

use assert_cmd::Command;

pub(crate) fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Fails the test with the child's stderr unless it exited 0.
pub(crate) fn assert_success(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `cmd` run with `input` on its stdin; its output (stdout and stderr captured).
pub(crate) fn output_with_input(
    cmd: &mut std::process::Command,
    input: &[u8],
) -> std::process::Output {
    use std::io::Write as _;
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Waits until `path` exists: a fake tool's marker that it got to a given point (the wait is
/// for an event, not for an amount of time; the deadline only ends a test that broke).
pub(crate) fn wait_for_file(path: &Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !path.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

pub(crate) const IPV4_OUTPUTS: &str = r#"{
  "primary_ip": {"value": "127.0.0.1", "type": "string", "sensitive": false},
  "primary_ip_type": {"value": "ipv4"},
  "deployment_name": {"value": "minimal-dep"},
  "node_ids": {"value": [8]},
  "secondary_ips": {"value": [{"name": "backend1", "ip": "127.0.0.1", "type": "ipv4", "role": "backend"}]}
}"#;

pub(crate) const WG_OUTPUTS: &str = r#"{
  "primary_ip": {"value": "127.0.0.1"},
  "primary_ip_type": {"value": "wireguard"},
  "deployment_name": {"value": "minimal-dep"},
  "node_ids": {"value": [8]},
  "wg_config": {"value": "[Interface]\nPrivateKey = SECRETKEYSECRETKEY\n", "sensitive": true}
}"#;

pub(crate) struct TestContext {
    pub root: tempfile::TempDir,
    pub app: PathBuf,
    pub fake_dir: PathBuf,
    pub bin: PathBuf,
    _listener: TcpListener,
    pub port: u16,
}

impl TestContext {
    pub(crate) fn new() -> TestContext {
        let root = tempfile::tempdir().unwrap();
        let app = root.path().join("app");
        copy_dir(&fixtures().join("apps/minimal"), &app);
        let fake_dir = root.path().join("fake");
        let bin = root.path().join("bin");
        std::fs::create_dir_all(&fake_dir).unwrap();
        std::fs::create_dir_all(&bin).unwrap();
        let fake = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/fake-tool.sh");
        for tool in [
            "tofu",
            "ansible-playbook",
            "ssh",
            "scp",
            "wg-quick",
            "wg",
            "ssh-keygen",
        ] {
            std::os::unix::fs::symlink(&fake, bin.join(tool)).unwrap();
        }
        std::fs::write(fake_dir.join("outputs.json"), IPV4_OUTPUTS).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        TestContext {
            root,
            app,
            fake_dir,
            bin,
            _listener: listener,
            port,
        }
    }

    /// Adds `yaml` (top-level keys) at the end of the app's `tfgrid-compose.yaml`.
    pub(crate) fn append_to_manifest(&self, yaml: &str) {
        let manifest = self.app.join("tfgrid-compose.yaml");
        let text = std::fs::read_to_string(&manifest).unwrap();
        std::fs::write(&manifest, format!("{text}{yaml}")).unwrap();
    }

    pub(crate) fn set_outputs(&self, json: &str) {
        std::fs::write(self.fake_dir.join("outputs.json"), json).unwrap();
    }

    /// The binary with fake tools first on PATH and a clean environment.
    pub(crate) fn std_cmd(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("tfgrid-compose"));
        cmd.env_clear()
            .env("PATH", format!("{}:/usr/bin:/bin", self.bin.display()))
            .env("HOME", self.root.path().join("home"))
            .env("NO_COLOR", "1")
            .env("FAKE_LOG", self.fake_dir.join("argv.log"))
            .env("FAKE_DIR", &self.fake_dir)
            .env("TFGRID_COMPOSE_PATTERNS_DIR", fixtures().join("patterns"))
            .env("TFGRID_COMPOSE_SSH_PORT", self.port.to_string())
            .env("TFGRID_COMPOSE_SSH_TIMEOUT", "5s")
            // No test reaches the real app registry: a name `up` does not find is looked up
            // in this absent file (tests/it/catalog.rs serves one of its own).
            .env(
                "TFGRID_COMPOSE_REGISTRY",
                self.root.path().join("no-registry.yaml"),
            )
            .current_dir(self.root.path());
        cmd
    }

    pub(crate) fn cmd(&self) -> Command {
        Command::from_std(self.std_cmd())
    }

    pub(crate) fn home(&self) -> PathBuf {
        self.root.path().join("home")
    }

    /// The registry folder `ps` reads.
    pub(crate) fn registry(&self) -> PathBuf {
        self.home().join(".local/share/tfgrid-compose/deployments")
    }

    /// Runs the command and returns (exit code, stdout, stderr).
    pub(crate) fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.cmd().args(args).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub(crate) fn app_arg(&self) -> &str {
        self.app.to_str().unwrap()
    }

    pub(crate) fn state_dir(&self) -> PathBuf {
        self.app.join(".tfgrid-compose/default")
    }

    /// Every fake call so far, one line each, words joined by spaces, temp paths replaced.
    pub(crate) fn transcript(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.fake_dir.join("argv.log")).unwrap_or_default();
        let state = self.state_dir().display().to_string();
        let app = self.app.display().to_string();
        let patterns = fixtures().join("patterns").display().to_string();
        text.lines()
            .map(|l| {
                l.replace('\x1f', " ")
                    .replace(&state, "[STATE]")
                    .replace(&app, "[APP]")
                    .replace(&patterns, "[PATTERNS]")
            })
            .collect()
    }

    /// Programs and subcommands only, e.g. `tofu apply`, `ssh setup.sh`.
    pub(crate) fn steps(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.fake_dir.join("argv.log")).unwrap_or_default();
        text.lines()
            .map(|line| {
                let words: Vec<&str> = line.split('\x1f').collect();
                let tool = words[0].rsplit('/').next().unwrap_or(words[0]);
                let detail = match tool {
                    "tofu" => words.get(2).copied().unwrap_or(""),
                    "ssh" => words.last().map_or("", |w| {
                        if w.contains("setup.sh") {
                            "setup"
                        } else if w.contains("healthcheck.sh") {
                            "healthcheck"
                        } else if w.contains("configure.sh") {
                            "configure"
                        } else if w.contains("'rm'") {
                            "rm"
                        } else if w.contains("is-system-running") {
                            "verify"
                        } else if w.contains("'true'") {
                            "true"
                        } else if *w == "'cat'" && words.contains(&"ControlMaster=yes") {
                            "login"
                        } else {
                            "other"
                        }
                    }),
                    "wg-quick" | "wg" => words.get(1).copied().unwrap_or(""),
                    _ => "",
                };
                if detail.is_empty() {
                    tool.to_string()
                } else {
                    format!("{tool} {detail}")
                }
            })
            .collect()
    }

    pub(crate) fn clear_transcript(&self) {
        let _ = std::fs::remove_file(self.fake_dir.join("argv.log"));
    }

    pub(crate) fn state_text(&self) -> String {
        std::fs::read_to_string(self.state_dir().join("state.yaml")).unwrap()
    }
}

/// GridProxy on 127.0.0.1 answering from `tests/fixtures/gridproxy/`: `GET /nodes`, `GET
/// /nodes/{id}`, `GET /farms`, `GET /contracts` (page 1 has the rows, later pages are empty). Every request line is
/// recorded. `fail_first` answers that many requests with 503 first.
pub(crate) struct GridProxyFixture {
    pub url: String,
    pub requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl GridProxyFixture {
    pub(crate) fn start(fail_first: usize) -> GridProxyFixture {
        use std::io::{BufRead as _, BufReader, Write as _};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = requests.clone();
        let dir = fixtures().join("gridproxy");
        let nodes: Vec<serde_json::Value> =
            serde_json::from_str(&std::fs::read_to_string(dir.join("nodes.json")).unwrap())
                .unwrap();
        let farms = std::fs::read_to_string(dir.join("farms.json")).unwrap();
        let contracts = std::fs::read_to_string(dir.join("contracts.json")).unwrap();
        std::thread::spawn(move || {
            let mut failures = fail_first;
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut first = String::new();
                if reader.read_line(&mut first).is_err() {
                    continue;
                }
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                }
                let target = first.split_whitespace().nth(1).unwrap_or("/").to_string();
                seen.lock().unwrap().push(target.clone());
                let (path, query) = target.split_once('?').unwrap_or((&target, ""));
                let later_page = query
                    .split('&')
                    .any(|kv| kv.starts_with("page=") && kv != "page=1");
                let (status, body) = if failures > 0 {
                    failures -= 1;
                    ("503 Service Unavailable", "busy".to_string())
                } else if path == "/nodes" {
                    (
                        "200 OK",
                        if later_page {
                            "[]".into()
                        } else {
                            serde_json::to_string(&nodes).unwrap()
                        },
                    )
                } else if path == "/farms" {
                    (
                        "200 OK",
                        if later_page {
                            "[]".into()
                        } else {
                            farms.clone()
                        },
                    )
                } else if path == "/contracts" {
                    (
                        "200 OK",
                        if later_page {
                            "[]".into()
                        } else {
                            contracts.clone()
                        },
                    )
                } else if let Some(id) = path
                    .strip_prefix("/nodes/")
                    .and_then(|i| i.parse::<u64>().ok())
                {
                    match nodes.iter().find(|n| n["nodeId"] == id) {
                        Some(node) => ("200 OK", node.to_string()),
                        None => ("404 Not Found", r#"{"error":"node not found"}"#.into()),
                    }
                } else {
                    ("404 Not Found", "{}".into())
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        GridProxyFixture { url, requests }
    }

    pub(crate) fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// The command that lists the AI stack's units running on a VM (`systemctl list-units`), one per
/// line, name first; [`unit_names`] reads its output.
pub(crate) const LIST_STACK_UNITS: [&str; 5] = [
    "systemctl",
    "list-units",
    "--plain",
    "--no-legend",
    "tfgrid-ai-*.service",
];

/// The unit names in the output of [`LIST_STACK_UNITS`].
pub(crate) fn unit_names(listing: &str) -> Vec<String> {
    listing
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect()
}

/// `ssh LOGIN COMMAND` with the key `key` only, run in the network namespace `netns` (a test
/// reaching a VM from an address of its own); the host key is not checked. ssh has no limit of
/// its own once connected (`ConnectTimeout` covers the connection and the banner, not the key
/// exchange and login, which a firewall that starts dropping packets meanwhile, as fail2ban's
/// ban does, leaves waiting forever), so the whole login gets 30 s (`timeout`, exit 124).
pub(crate) fn ssh_from_netns(
    netns: &str,
    login: &str,
    key: &Path,
    command: &str,
) -> std::process::Output {
    std::process::Command::new("ip")
        .args(["netns", "exec", netns, "timeout", "30", "ssh", "-i"])
        .arg(key)
        .args([
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "ConnectTimeout=10",
            login,
            command,
        ])
        .output()
        .unwrap()
}
