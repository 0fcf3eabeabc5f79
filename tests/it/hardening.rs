//! The AI stack's guard with the real tools on three local VMs whose PID 1 is systemd, all on one
//! stack: every listening socket of every VM against what the design allows (the units' ports,
//! sshd, WireGuard), a port it does not allow refused by nftables (and answering once the
//! firewall's unit is stopped), and fail2ban banning an address after bad logins while the good
//! key still works from another (both addresses in namespaces the test creates on the
//! deployment's LAN), and `projects rotate-tokens` under load with no failed request.

use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use tfgrid_compose::ai::firewall;
use tfgrid_compose::ai::units::{self, Programs, Reach, Service};
use tfgrid_compose::phase::ai_stack;

use crate::local::{Deployment, ai_stack_up, on_vm, prometheus_query, sample, stack_cmd, until};

/// What may listen on a VM beyond its loopback: `(protocol, port, reach)`.
fn allowed(d: &Deployment, vm: usize) -> Vec<(&'static str, u16, Reach)> {
    let listed = on_vm(d, vm, &["cat", "/etc/tfgrid-ai/services"]);
    let services: Vec<Service> = Service::ALL
        .into_iter()
        .filter(|s| listed.lines().any(|l| l.trim() == s.name()))
        .collect();
    let folders = units::Folders {
        config: ai_stack::REMOTE_CONFIG,
        data: ai_stack::REMOTE_DATA,
    };
    let mut allowed = vec![("tcp", firewall::SSH_PORT, Reach::Public)];
    let wg = std::fs::read_to_string(d.state().network.expect("a tunnel").config).unwrap();
    for port in ai_stack::tunnel_inbound(&wg).wireguard {
        allowed.push(("udp", port, Reach::Public));
    }
    for ports in
        units::ports(&services, &folders, &Programs::on_vm(ai_stack::REMOTE_BIN)).into_values()
    {
        allowed.extend(ports.into_iter().map(|p| ("tcp", p.number, p.reach)));
    }
    allowed
}

/// Connects to `address` within 3 s: whether it answered.
fn connects(address: &str) -> bool {
    let address: SocketAddr = address.parse().unwrap();
    TcpStream::connect_timeout(&address, Duration::from_secs(3)).is_ok()
}

/// A network namespace on the deployment's LAN (its bridge `br0` in `tfl-ID-lan`) with
/// `address`; deleted when dropped (its veth pair with it).
struct LanHost {
    name: String,
}

impl LanHost {
    fn new(id8: &str, tag: char, address: &str) -> LanHost {
        let name = format!("tfh-{id8}-{tag}");
        let (inside, outside) = (format!("tfh{tag}{id8}"), format!("th{tag}{id8}"));
        let lan = format!("tfl-{id8}-lan");
        let host = LanHost { name: name.clone() };
        for argv in [
            vec!["netns", "add", &name],
            vec![
                "link", "add", &inside, "netns", &name, "type", "veth", "peer", "name", &outside,
                "netns", &lan,
            ],
            vec!["-n", &lan, "link", "set", &outside, "master", "br0", "up"],
            vec!["-n", &name, "addr", "add", address, "dev", &inside],
            vec!["-n", &name, "link", "set", &inside, "up"],
            vec!["-n", &name, "link", "set", "lo", "up"],
        ] {
            let out = Command::new("ip").args(&argv).output().unwrap();
            assert!(
                out.status.success(),
                "ip {argv:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        host
    }

    /// `ssh USER@ADDRESS true` from this namespace with `identity`: whether it logged in.
    fn ssh(&self, identity: &std::path::Path, user: &str, address: &str) -> bool {
        crate::common::ssh_from_netns(&self.name, &format!("{user}@{address}"), identity, "true")
            .status
            .success()
    }
}

impl Drop for LanHost {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// `10.X.I.2` (a VM's WireGuard address) → `10.X+100.I.2`: its address on the link to this
/// machine, outside the tunnel (the local pattern's layout).
fn outside_address(wireguard: &str) -> String {
    let octets: Vec<u16> = wireguard.split('.').map(|o| o.parse().unwrap()).collect();
    format!("10.{}.{}.{}", octets[1] + 100, octets[2], octets[3])
}

/// One stack for every part: the firewall (a, b), fail2ban (c), token rotation (d), upgrades (e).
#[test]
fn ai_stack_firewall_fail2ban_token_rotation_and_upgrades_on_one_stack() {
    let (_serial, d, _seen) = ai_stack_up();
    firewall_allows_only_the_design(&d);
    fail2ban_bans_an_address_while_the_good_key_works_from_another(&d);
    tokens_rotate_under_load_with_no_failed_request(&d);
    upgrades_one_that_succeeds_and_one_that_fails_health_and_rolls_back(&d);
    d.cmd().args(["down", "--yes"]).assert().success();
}

/// (a) Every listening socket of every VM is one the design allows, where it allows it; (b) a
/// port it does not allow refused.
fn firewall_allows_only_the_design(d: &Deployment) {
    let state = d.state();
    let outputs = state.outputs.clone().expect("outputs");
    let addresses: Vec<String> = outputs.vms().into_iter().map(|vm| vm.address).collect();

    // (a) Every listening socket of every VM is one the design allows, where it allows it.
    for vm in 0..3 {
        let allowed = allowed(d, vm);
        let listing = on_vm(d, vm, &["ss", "-H", "-l", "-n", "-t", "-u", "-p"]);
        let mut seen = 0;
        for line in listing.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (protocol, local) = (fields[0], fields[4]);
            let (host, port) = local.rsplit_once(':').unwrap();
            if host.starts_with("127.") || host == "[::1]" {
                continue;
            }
            let port: u16 = port.parse().unwrap();
            let entry = allowed
                .iter()
                .find(|(p, n, _)| *p == protocol && *n == port);
            assert!(
                entry.is_some_and(|(_, _, reach)| *reach != Reach::Loopback),
                "VM {vm}: {line} is not what the design allows there ({allowed:?})"
            );
            seen += 1;
        }
        assert!(seen >= 2, "VM {vm} listens beyond loopback:\n{listing}");
        let chain = on_vm(
            d,
            vm,
            &["nft", "list", "chain", "inet", firewall::TABLE, "input"],
        );
        assert!(chain.contains("policy drop;"), "VM {vm}:\n{chain}");
    }

    // (b) A port the design does not allow: refused from this machine's end of the tunnel (a
    // private address) while it answers on the VM; answering with the firewall stopped.
    let agent = &addresses[1];
    on_vm(
        d,
        1,
        &[
            "systemd-run",
            "--unit=tfgrid-test-listener",
            "python3",
            "-m",
            "http.server",
            "9999",
            "--bind",
            "0.0.0.0",
            "--directory",
            "/tmp",
        ],
    );
    until("the listener on VM 1", Duration::from_secs(30), || {
        on_vm(d, 1, &["ss", "-H", "-l", "-n", "-t", "sport", "=", ":9999"]).contains("9999")
    });
    let probe = format!("{agent}:9999");
    assert!(!connects(&probe), "{probe} is refused by the firewall");
    assert!(connects(&format!("{agent}:{}", units::AGENT_PORT)));
    // The git host's nginx listens on every address: private only, so not outside the tunnel.
    let git_outside = format!("{}:{}", outside_address(&addresses[2]), units::HTTP_PORT);
    assert!(!connects(&git_outside), "{git_outside} is private");
    assert!(connects(&format!("{}:{}", addresses[2], units::HTTP_PORT)));
    on_vm(d, 1, &["systemctl", "stop", firewall::UNIT]);
    assert!(connects(&probe), "{probe} answers without the firewall");
    on_vm(d, 1, &["systemctl", "start", firewall::UNIT]);
    assert!(!connects(&probe), "{probe} is refused again");
    on_vm(d, 1, &["systemctl", "stop", "tfgrid-test-listener"]);
}

/// (c) fail2ban: bad logins from one address get it banned; the good key still works from
/// another address, and worked from the banned one before.
fn fail2ban_bans_an_address_while_the_good_key_works_from_another(d: &Deployment) {
    let state = d.state();
    let outputs = state.outputs.clone().expect("outputs");
    let id8 = d.id8();
    let lan = &outputs.private_ips[0];
    let prefix = lan.rsplit_once('.').unwrap().0;
    let bad = LanHost::new(&id8, 'a', &format!("{prefix}.200/24"));
    let good = LanHost::new(&id8, 'b', &format!("{prefix}.201/24"));
    let identity = &state.ssh.identity;
    until("fail2ban's sshd jail", Duration::from_secs(60), || {
        d.cmd()
            .args([
                "ssh",
                "--vm",
                "0",
                "--",
                "fail2ban-client",
                "status",
                "sshd",
            ])
            .output()
            .unwrap()
            .status
            .success()
    });
    assert!(
        bad.ssh(identity, "root", lan),
        "the good key, before the ban"
    );
    let banned =
        || on_vm(d, 0, &["fail2ban-client", "status", "sshd"]).contains(&format!("{prefix}.200"));
    for _ in 0..20 {
        if banned() {
            break;
        }
        assert!(!bad.ssh(identity, "nobody-here", lan), "an unknown user");
    }
    until("the ban", Duration::from_secs(30), banned);
    assert!(
        !bad.ssh(identity, "root", lan),
        "the banned address is refused"
    );
    assert!(
        good.ssh(identity, "root", lan),
        "the good key from another address"
    );
    drop((bad, good));
}

/// The first line of the deployment's token file `name` (the one the CLI sends).
fn local_token(d: &Deployment, name: &str) -> String {
    let path = d
        .app
        .join(format!(".tfgrid-compose/default/ai-stack/{name}.token"));
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string()
}

/// The one user of node_exporter's web config on VM `vm` (`basic_auth_users`).
fn node_user(d: &Deployment, vm: usize) -> String {
    let web = on_vm(d, vm, &["cat", "/etc/tfgrid-ai/node-exporter-web.yml"]);
    let doc: serde_json::Value = serde_yaml::from_str(&web).unwrap();
    let users = doc["basic_auth_users"]
        .as_object()
        .expect("basic_auth_users");
    assert_eq!(users.len(), 1, "{web}");
    users.keys().next().unwrap().clone()
}

/// The HTTP status of a GET of `url` from VM `vm`, curl given `auth` (an option and its value).
fn status_from_vm(d: &Deployment, vm: usize, auth: [&str; 2], url: &str) -> String {
    let mut argv = vec!["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}"];
    argv.extend(auth);
    argv.push(url);
    on_vm(d, vm, &argv)
}

/// Prometheus' clock on the gateway's VM, in seconds.
fn prometheus_now(d: &Deployment) -> f64 {
    sample(&prometheus_query(d, "vector(time())")[0])
}

/// (d) `projects rotate-tokens` while the agent is asked for its projects four times a second
/// (with the token the CLI has at that moment) and projects are created one after another (each
/// with a 3 s answer of the LLM): no request fails, every project goes live, and no scrape of
/// Prometheus fails (every target `up` in every sample of the window, each scraped after the
/// rotation too); then every old token is refused where it was accepted and the new ones work,
/// a create included, the metrics token's at each service's `/metrics` and node_exporter's.
fn tokens_rotate_under_load_with_no_failed_request(d: &Deployment) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let record = d.state().ai_stack.expect("the stack's record");
    let old: Vec<(&str, String)> = ai_stack::TOKENS
        .into_iter()
        .map(|name| (name, local_token(d, name)))
        .collect();
    let old_user = node_user(d, 2);
    let started = prometheus_now(d);
    let projects = format!("{}/api/v1/projects", record.agent_api);
    let rotating = AtomicBool::new(true);
    let (codes, created) = std::thread::scope(|scope| {
        let load = scope.spawn(|| {
            let mut codes = Vec::new();
            while rotating.load(Ordering::SeqCst) {
                codes.push(crate::ai::get(&projects, Some(&local_token(d, "agent"))).0);
                std::thread::sleep(Duration::from_millis(250));
            }
            codes
        });
        let creates = scope.spawn(|| {
            let mut n = 0;
            while rotating.load(Ordering::SeqCst) {
                stack_cmd(d, &["create", &format!("slow bakery number {n}")], None);
                n += 1;
            }
            n
        });
        let out = d
            .cmd()
            .args(["projects", "rotate-tokens"])
            .output()
            .unwrap();
        rotating.store(false, Ordering::SeqCst);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (load.join().unwrap(), creates.join().unwrap())
    });
    assert!(codes.len() >= 8, "requests during the rotation: {codes:?}");
    assert!(codes.iter().all(|c| *c == 200), "{codes:?}");
    assert!(created >= 2, "creates during the rotation: {created}");
    for n in 0..created {
        let live = format!("{}/slow-bakery-number-{n}/", record.public_url);
        assert_eq!(crate::ai::get_live(&live).0, 200, "{live}");
    }

    // No failed scrape: every target up in each of its samples from the rotation's start to a
    // scrape after its end.
    let ended = prometheus_now(d);
    until(
        "a scrape of every target after the rotation",
        Duration::from_secs(60),
        || prometheus_query(d, &format!("timestamp(up) < {ended}")).is_empty(),
    );
    let window = (prometheus_now(d) - started).ceil() as u64;
    let samples = prometheus_query(d, &format!("count_over_time(up[{window}s])"));
    let lowest = prometheus_query(d, &format!("min_over_time(up[{window}s])"));
    assert!(samples.len() >= 8, "targets: {samples:?}");
    for target in &samples {
        assert!(sample(target) >= 2.0, "scraped in {window} s: {target}");
    }
    for target in &lowest {
        assert_eq!(
            sample(target),
            1.0,
            "a failed scrape in {window} s: {target}"
        );
    }

    // The old tokens refused, the new ones accepted: the agent's, and the git host's for a push
    // (through the gateway's /git/), the gateway's from the agent's VM.
    let logs = d.app.join(".tfgrid-compose/default/logs");
    for (name, token) in &old {
        let new = local_token(d, name);
        // (compared without printing either: a failure must not show a token)
        assert!(&new != token, "{name} was not replaced");
        // Neither token in any log of the deployment.
        for secret in [token, &new] {
            let found = crate::local::files_containing(&logs, secret);
            assert!(found.is_empty(), "the {name} token in {found:?}");
        }
    }
    let old = |name: &str| old.iter().find(|(n, _)| *n == name).unwrap().1.clone();
    assert_eq!(crate::ai::get(&projects, Some(&old("agent"))).0, 401);
    assert_eq!(
        crate::ai::get(&projects, Some(&local_token(d, "agent"))).0,
        200
    );
    let push = format!(
        "{}/git/projects/slow-bakery-number-0.git/info/refs?service=git-receive-pack",
        record.public_url
    );
    let git =
        |token: String| crate::ai::request("GET", &push, Some(&format!("token {token}")), None).0;
    assert_eq!(git(old("git")), 401);
    assert_eq!(git(local_token(d, "git")), 200);
    let health = format!("{}/api/v1/health", record.gateway_api);
    let gateway = |token: String| {
        let bearer = format!("Authorization: Bearer {token}");
        status_from_vm(d, 1, ["-H", &bearer], &health)
    };
    assert_eq!(gateway(old("gateway")), "401");
    assert_eq!(gateway(local_token(d, "gateway")), "200");
    // The metrics token: each service's `/metrics`, node_exporter with its user for the token.
    let agent_metrics = format!("{}/metrics", record.agent_api);
    assert_eq!(crate::ai::get(&agent_metrics, Some(&old("metrics"))).0, 401);
    assert_eq!(
        crate::ai::get(&agent_metrics, Some(&local_token(d, "metrics"))).0,
        200
    );
    let new_user = node_user(d, 2);
    assert_ne!(new_user, old_user, "node_exporter's user follows the token");
    let node = format!(
        "http://{}:{}/metrics",
        d.state().outputs.expect("outputs").private_ips[2],
        units::NODE_EXPORTER_PORT
    );
    let scrape =
        |user: &str, token: String| status_from_vm(d, 0, ["-u", &format!("{user}:{token}")], &node);
    assert_eq!(scrape(&old_user, old("metrics")), "401");
    assert_eq!(scrape(&new_user, old("metrics")), "401");
    assert_eq!(scrape(&new_user, local_token(d, "metrics")), "200");
    stack_cmd(
        d,
        &[
            "create",
            "bakery after the rotation",
            "--name",
            "after-rotation",
        ],
        None,
    );
}

/// `up --upgrade` of the stack with the test LLM's key; its output.
fn upgrade(d: &Deployment) -> std::process::Output {
    d.cmd()
        .args(["up", "--upgrade"])
        .env("AI_STACK_TEST_KEY", crate::ai::LLM_KEY)
        .output()
        .unwrap()
}

/// The two projects the upgrades must keep: live, and their repositories clone.
fn two_projects_live(d: &Deployment, when: &str) {
    let gateway = d.state().ai_stack.expect("the stack's record").public_url;
    for name in ["slow-bakery-number-0", "after-rotation"] {
        let live = format!("{gateway}/{name}/");
        assert_eq!(crate::ai::get_live(&live).0, 200, "{live} {when}");
        let work = tempfile::tempdir().unwrap();
        let repo = format!("{gateway}/git/projects/{name}.git");
        assert!(
            crate::ai::clone(&repo, &work.path().join("c")),
            "{repo} clones {when}"
        );
    }
}

/// (e) `up --upgrade` to a newer app version (another rate limit) succeeds: backed up, the new
/// config on the VMs, the state's version new, both projects live. Then an upgrade whose setup
/// hook leaves the agent stopped fails `health`'s units check and is rolled back: the previous
/// version's files and units back, its version in the state, both projects live.
fn upgrades_one_that_succeeds_and_one_that_fails_health_and_rolls_back(d: &Deployment) {
    let manifest = d.app.join("tfgrid-compose.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let newer = text
        .replace("version: 1.0.0", "version: 1.1.0")
        .replace("api_rate_limit: 10", "api_rate_limit: 20");
    assert_ne!(newer, text);
    std::fs::write(&manifest, &newer).unwrap();
    let out = upgrade(d);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("Upgraded"), "{stderr}");
    assert_eq!(d.state().app.version.as_deref(), Some("1.1.0"));
    assert!(on_vm(d, 1, &["cat", "/etc/tfgrid-ai/agent.yaml"]).contains("rate_limit: 20"));
    let backups: Vec<_> = std::fs::read_dir(d.app.join(".tfgrid-compose/default/ai-stack"))
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("upgrade-backup-")
        })
        .collect();
    assert_eq!(backups.len(), 1, "a backup before the upgrade");
    two_projects_live(d, "after the upgrade");

    // A version whose setup leaves the agent stopped, with no healthcheck hook of its own.
    let broken = newer
        .replace("version: 1.1.0", "version: 1.2.0")
        .replace("  healthcheck: deployment/healthcheck.sh\n", "");
    std::fs::write(&manifest, &broken).unwrap();
    let setup = d.app.join("deployment/setup.sh");
    let hook = std::fs::read_to_string(&setup).unwrap();
    std::fs::write(
        &setup,
        format!("{hook}systemctl stop tfgrid-ai-agent.service || true\n"),
    )
    .unwrap();
    let out = upgrade(d);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("was rolled back to 1.1.0"), "{stderr}");
    // The check that failed is `health`'s, with its figure.
    assert!(stderr.contains("`health` fails: "), "{stderr}");
    assert!(
        stderr.contains(" units: ")
            && stderr.contains("of the stack's units active (tfgrid-ai-agent.service inactive)"),
        "{stderr}"
    );
    assert_eq!(d.state().app.version.as_deref(), Some("1.1.0"));
    assert_eq!(
        on_vm(d, 1, &["systemctl", "is-active", "tfgrid-ai-agent.service"]).trim(),
        "active"
    );
    assert!(on_vm(d, 1, &["cat", "/etc/tfgrid-ai/agent.yaml"]).contains("rate_limit: 20"));
    two_projects_live(d, "after the rollback");
}
