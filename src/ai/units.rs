//! The AI stack's systemd units, for VMs where systemd is PID 1 (the grid's): one
//! `tfgrid-ai-NAME.service` per process a VM's services need (the gateway and its nginx; the git
//! host's API, nginx and fcgiwrap; the agent; a local LLM; Prometheus and Alertmanager; and
//! node_exporter on every VM), each run as the `tfgrid-ai` user in a sandbox. The ports of the
//! monitoring are declared here ([`PROMETHEUS_PORT`], [`ALERTMANAGER_PORT`],
//! [`NODE_EXPORTER_PORT`]). Pure text: `phase::ai_stack` puts the units among each VM's files in `/etc/tfgrid-ai/`
//! and the app's setup hook installs them. Start from [`render`]. The meaning of every option is
//! in systemd.unit(5), systemd.service(5) and systemd.exec(5) (systemd 252, Debian 12).

use std::collections::BTreeMap;

use super::monitoring;
use crate::stack::Monitoring;

/// The user and group every unit runs as (created by the grid pattern or the setup hook).
pub const USER: &str = "tfgrid-ai";

/// Prometheus' port, on the gateway VM's loopback only (reached through an ssh tunnel).
pub const PROMETHEUS_PORT: u16 = 9090;
/// Alertmanager's port, on the gateway VM's loopback only (Prometheus posts alerts there).
pub const ALERTMANAGER_PORT: u16 = 9093;
/// node_exporter's port on each VM's private address (Prometheus scrapes it, with the metrics
/// token as its basic-auth password).
pub const NODE_EXPORTER_PORT: u16 = 9100;
/// The gateway's route API (on the gateway's private address).
pub const GATEWAY_PORT: u16 = 7701;
/// The agent's project API (on the agent's address as this machine reaches it).
pub const AGENT_PORT: u16 = 7702;
/// The git host's repository API (on 127.0.0.1, behind the git host's nginx).
pub const GIT_PORT: u16 = 7703;
/// HTTP, where both nginx listen (`listen 80`, `ai::nginx`).
pub const HTTP_PORT: u16 = 80;
/// HTTPS, for the gateway's sites once a certificate is set up.
pub const HTTPS_PORT: u16 = 443;

/// Who may connect to a port a unit listens on: what the VM's firewall (`ai::firewall`) opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reach {
    /// Anyone: the gateway's sites.
    Public,
    /// The deployment's private network and this machine's end of its tunnel.
    Private,
    /// The VM itself (127.0.0.1); the firewall opens nothing for it.
    Loopback,
}

/// A TCP port a unit listens on, and who may reach it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Port {
    pub number: u16,
    pub reach: Reach,
}

impl Port {
    const fn new(number: u16, reach: Reach) -> Self {
        Self { number, reach }
    }
}

/// The folders the services use on a VM; their configs and their units name them from here.
/// Plain absolute paths (no blanks, `%`, `$` or quotes: unit files take them as they are).
pub struct Folders<'a> {
    /// The configs, tokens and units (`/etc/tfgrid-ai`); read-only to the services.
    pub config: &'a str,
    /// Everything the services write (`/var/lib/tfgrid-ai`); the only writable folder.
    pub data: &'a str,
}

impl Folders<'_> {
    /// The prefix folder of the nginx of `site` (`gateway` or `git`): pid file, logs, temp files.
    pub fn nginx_prefix(&self, site: &str) -> String {
        format!("{}/nginx-{site}", self.data)
    }

    /// The arguments that start the nginx of `site` after the program's name:
    /// `-p PREFIX -c CONFIG/SITE-nginx.conf -e PREFIX/error.log`.
    pub fn nginx_args(&self, site: &str) -> Vec<String> {
        let prefix = self.nginx_prefix(site);
        vec![
            "-p".into(),
            prefix.clone(),
            "-c".into(),
            format!("{}/{site}-nginx.conf", self.config),
            "-e".into(),
            format!("{prefix}/error.log"),
        ]
    }

    /// fcgiwrap's socket, where the git host's nginx passes smart HTTP.
    pub fn fcgiwrap_socket(&self) -> String {
        format!("{}/fcgiwrap.sock", self.data)
    }

    /// The config file of the service `name`.
    fn service_config(&self, name: &str) -> String {
        format!("{}/{name}.yaml", self.config)
    }

    /// The file `name` among the configs (`/etc/tfgrid-ai/NAME`).
    pub fn config_file(&self, name: &str) -> String {
        format!("{}/{name}", self.config)
    }
}

/// The executables the units start, as absolute paths (`systemd-analyze verify` checks that each
/// exists and is executable).
pub struct Programs {
    /// This binary, which serves the gateway, agent and git APIs.
    pub tfgrid_compose: String,
    pub nginx: String,
    pub fcgiwrap: String,
    /// The local LLM server (a Python program serving llama.cpp).
    pub llm: String,
    /// `rm`, to clear a socket fcgiwrap left behind (fcgiwrap neither removes it on exit nor
    /// replaces it: "Failed to bind: Address already in use").
    pub rm: String,
    /// Debian's and Ubuntu's `prometheus`, `prometheus-alertmanager` and
    /// `prometheus-node-exporter` packages.
    pub prometheus: String,
    pub alertmanager: String,
    pub node_exporter: String,
}

impl Programs {
    /// Where the programs are on the stack's VMs (Debian and Ubuntu packages), with this binary
    /// at `tfgrid_compose`.
    pub fn on_vm(tfgrid_compose: &str) -> Self {
        Self {
            tfgrid_compose: tfgrid_compose.into(),
            nginx: "/usr/sbin/nginx".into(),
            fcgiwrap: "/usr/sbin/fcgiwrap".into(),
            llm: crate::stack::local_model::SERVE.into(),
            rm: "/bin/rm".into(),
            prometheus: "/usr/bin/prometheus".into(),
            alertmanager: "/usr/bin/prometheus-alertmanager".into(),
            node_exporter: "/usr/bin/prometheus-node-exporter".into(),
        }
    }
}

/// A service of the AI stack: the one vocabulary of `serve`, the units (one or more per service,
/// [`render`]), the list of services each VM runs (`/etc/tfgrid-ai/services`, which the setup
/// hook and healthcheck read) and the units' names in the journal. Written as its [`name`](Self::name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Service {
    /// The route API and its nginx (sites, /git/).
    Gateway,
    /// The git host: its repository API, nginx and fcgiwrap (smart HTTP).
    Git,
    /// The project API.
    Agent,
    /// The local LLM server (not this binary's: `serve` refuses it).
    Llm,
    /// Prometheus and Alertmanager, on the gateway's VM (not this binary's: `serve` refuses it).
    Monitoring,
}

impl Service {
    /// Every service, in the order a VM starts them.
    pub const ALL: [Service; 5] = [
        Self::Gateway,
        Self::Git,
        Self::Llm,
        Self::Agent,
        Self::Monitoring,
    ];

    /// `gateway`, `git`, `agent`, `llm`, `monitoring`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Gateway => "gateway",
            Self::Git => "git",
            Self::Agent => "agent",
            Self::Llm => "llm",
            Self::Monitoring => "monitoring",
        }
    }

    /// The unit that runs the service's own program (`tfgrid-ai-NAME.service`); its other
    /// units (nginx, fcgiwrap, Alertmanager) are started with it.
    pub fn main_unit(self) -> String {
        match self {
            Self::Monitoring => unit_name("prometheus"),
            _ => unit_name(self.name()),
        }
    }
}

impl std::fmt::Display for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The file name of the unit `name` (`tfgrid-ai-gateway.service`).
pub fn unit_name(name: &str) -> String {
    format!("tfgrid-ai-{name}.service")
}

/// One unit: what it runs and what its sandbox lets it do.
struct Unit {
    /// The unit is `tfgrid-ai-{name}.service`.
    name: String,
    description: String,
    /// `ExecStart=`: the program and its arguments.
    start: Vec<String>,
    /// `ExecStartPre=`: a command run first; its failure fails the start.
    pre: Option<Vec<String>>,
    /// Set when the program forks into the background and writes its PID to this file (nginx,
    /// whose config names a `pid` file and does not say `daemon off;`): `Type=forking`.
    pid_file: Option<String>,
    /// Binds port 80, or runs `nginx -t`, which binds the config's ports too (nginx 1.22 as
    /// another user: "bind() to 0.0.0.0:80 failed (13: Permission denied)").
    low_port: bool,
    /// Needs memory both writable and executable (llama.cpp loaded through Python's ctypes).
    write_execute: bool,
    /// `RestrictAddressFamilies=`: the socket families it uses.
    families: &'static str,
    /// Units of the same service that must run first (`Wants=` and `After=`).
    needs: Vec<String>,
    /// Services whose units start first when they are on the same VM (`After=` only).
    after_services: &'static [Service],
    /// The TCP ports it listens on: the one declaration the firewall opens ports from.
    ports: Vec<Port>,
}

impl Unit {
    /// A unit with the common defaults: `Type=exec`, network families, no low port.
    fn new(name: &str, description: &str, start: Vec<String>) -> Self {
        Self {
            name: name.into(),
            description: format!("tfgrid-compose AI stack: {description}"),
            start,
            pre: None,
            pid_file: None,
            low_port: false,
            write_execute: false,
            families: "AF_UNIX AF_INET AF_INET6",
            needs: Vec::new(),
            after_services: &[],
            ports: Vec::new(),
        }
    }

    /// `tfgrid-compose serve NAME --config CONFIG/NAME.yaml`, listening on `port`.
    fn serve(
        service: Service,
        description: &str,
        port: Port,
        folders: &Folders,
        programs: &Programs,
    ) -> Self {
        let name = service.name();
        let start = [
            programs.tfgrid_compose.clone(),
            "serve".into(),
            name.into(),
            "--config".into(),
            folders.service_config(name),
        ];
        Self {
            ports: vec![port],
            ..Self::new(name, description, start.into())
        }
    }

    /// The nginx of `site`: its own prefix folder and config under the stack's folders; it
    /// listens on `ports`.
    fn nginx(
        site: &str,
        description: &str,
        ports: Vec<Port>,
        folders: &Folders,
        programs: &Programs,
    ) -> Self {
        let mut start = vec![programs.nginx.clone()];
        start.extend(folders.nginx_args(site));
        Self {
            pid_file: Some(super::nginx::pid_file(&folders.nginx_prefix(site))),
            low_port: true,
            ports,
            ..Self::new(&format!("nginx-{site}"), description, start)
        }
    }
}

/// The units of one service, in start order.
fn units_of(
    service: Service,
    folders: &Folders,
    programs: &Programs,
    settings: &Monitoring,
) -> Vec<Unit> {
    match service {
        Service::Gateway => vec![
            Unit::nginx(
                "gateway",
                "nginx of the gateway (sites, /git/)",
                vec![
                    Port::new(HTTP_PORT, Reach::Public),
                    Port::new(HTTPS_PORT, Reach::Public),
                ],
                folders,
                programs,
            ),
            Unit {
                // Checks and reloads its nginx: `nginx -t` binds port 80 as nginx does.
                low_port: true,
                needs: vec![unit_name("nginx-gateway")],
                ..Unit::serve(
                    Service::Gateway,
                    "gateway API (routes, sites)",
                    Port::new(GATEWAY_PORT, Reach::Private),
                    folders,
                    programs,
                )
            },
        ],
        Service::Git => {
            let socket = folders.fcgiwrap_socket();
            vec![
                Unit {
                    pre: Some(vec![programs.rm.clone(), "-f".into(), socket.clone()]),
                    // It only runs `git http-backend` for the nginx next to it.
                    families: "AF_UNIX",
                    ..Unit::new(
                        "fcgiwrap",
                        "fcgiwrap for git smart HTTP",
                        vec![
                            programs.fcgiwrap.clone(),
                            "-s".into(),
                            format!("unix:{socket}"),
                        ],
                    )
                },
                Unit {
                    needs: vec![unit_name("fcgiwrap")],
                    ..Unit::nginx(
                        "git",
                        "nginx of the git host (smart HTTP, repository API)",
                        // The gateway passes /git/ to it; the agent pushes to it.
                        vec![Port::new(HTTP_PORT, Reach::Private)],
                        folders,
                        programs,
                    )
                },
                Unit::serve(
                    Service::Git,
                    "git host's repository API",
                    Port::new(GIT_PORT, Reach::Loopback),
                    folders,
                    programs,
                ),
            ]
        }
        Service::Agent => vec![Unit {
            after_services: &[Service::Llm, Service::Gateway, Service::Git],
            ..Unit::serve(
                Service::Agent,
                "agent API (projects)",
                Port::new(AGENT_PORT, Reach::Private),
                folders,
                programs,
            )
        }],
        Service::Monitoring => vec![
            Unit {
                ports: vec![Port::new(ALERTMANAGER_PORT, Reach::Loopback)],
                ..Unit::new(
                    "alertmanager",
                    "Alertmanager (alerts to the webhook)",
                    vec![
                        programs.alertmanager.clone(),
                        format!(
                            "--config.file={}",
                            folders.config_file(monitoring::ALERTMANAGER_CONFIG)
                        ),
                        format!("--storage.path={}/alertmanager", folders.data),
                        format!("--web.listen-address=127.0.0.1:{ALERTMANAGER_PORT}"),
                        // Empty: no cluster, so nothing listens on the gossip port (9094).
                        "--cluster.listen-address=".into(),
                    ],
                )
            },
            Unit {
                needs: vec![unit_name("alertmanager")],
                after_services: &[Service::Gateway, Service::Git, Service::Agent],
                ports: vec![Port::new(PROMETHEUS_PORT, Reach::Loopback)],
                ..Unit::new(
                    "prometheus",
                    "Prometheus (the stack's metrics and alert rules)",
                    vec![
                        programs.prometheus.clone(),
                        format!(
                            "--config.file={}",
                            folders.config_file(monitoring::PROMETHEUS_CONFIG)
                        ),
                        format!("--storage.tsdb.path={}/prometheus", folders.data),
                        format!("--storage.tsdb.retention.time={}d", settings.retention_days),
                        format!("--storage.tsdb.retention.size={}MB", settings.retention_mb),
                        format!("--web.listen-address=127.0.0.1:{PROMETHEUS_PORT}"),
                    ],
                )
            },
        ],
        Service::Llm => vec![Unit {
            write_execute: true,
            ports: vec![Port::new(crate::stack::local_model::PORT, Reach::Loopback)],
            ..Unit::new(
                "llm",
                "local LLM server (llama.cpp)",
                vec![
                    programs.llm.clone(),
                    "--host".into(),
                    "127.0.0.1".into(),
                    "--port".into(),
                    crate::stack::local_model::PORT.to_string(),
                ],
            )
        }],
    }
}

/// The units of the `services` a VM runs: file name (`tfgrid-ai-NAME.service`) → contents;
/// Prometheus' retention from `monitoring`.
pub fn render(
    services: &[Service],
    folders: &Folders,
    programs: &Programs,
    monitoring: &Monitoring,
) -> BTreeMap<String, String> {
    let by_service: Vec<(Service, Vec<Unit>)> = services
        .iter()
        .map(|service| (*service, units_of(*service, folders, programs, monitoring)))
        .collect();
    let mut files = BTreeMap::new();
    for (_, units) in &by_service {
        for unit in units {
            let mut after = unit.needs.clone();
            for (other, theirs) in &by_service {
                if unit.after_services.contains(other) {
                    after.extend(theirs.iter().map(|u| unit_name(&u.name)));
                }
            }
            files.insert(unit_name(&unit.name), text(unit, &after, folders));
        }
    }
    files
}

/// node_exporter's unit (on every VM of the stack), listening at `listen` (`ADDRESS:PORT`, the
/// VM's private address) behind basic auth (its web config, [`monitoring::NODE_EXPORTER_WEB`]):
/// file name → contents.
pub fn node_exporter(listen: &str, folders: &Folders, programs: &Programs) -> (String, String) {
    let unit = node_exporter_unit(listen, folders, programs);
    (unit_name(&unit.name), text(&unit, &[], folders))
}

fn node_exporter_unit(listen: &str, folders: &Folders, programs: &Programs) -> Unit {
    Unit {
        // Its netdev and netclass collectors ask the kernel over netlink.
        families: "AF_UNIX AF_INET AF_INET6 AF_NETLINK",
        // Prometheus on the gateway scrapes it.
        ports: vec![Port::new(NODE_EXPORTER_PORT, Reach::Private)],
        ..Unit::new(
            "node-exporter",
            "node_exporter (the VM's CPU, memory, disks)",
            vec![
                programs.node_exporter.clone(),
                format!("--web.listen-address={listen}"),
                format!(
                    "--web.config.file={}",
                    folders.config_file(monitoring::NODE_EXPORTER_WEB)
                ),
            ],
        )
    }
}

/// The ports the units of a VM that runs `services` listen on (node_exporter's on every VM):
/// unit file name → its ports, for the units that listen on any. The monitoring's settings
/// change no port: the defaults stand in for them.
pub fn ports(
    services: &[Service],
    folders: &Folders,
    programs: &Programs,
) -> BTreeMap<String, Vec<Port>> {
    let settings = Monitoring::default();
    services
        .iter()
        .flat_map(|service| units_of(*service, folders, programs, &settings))
        .chain(std::iter::once(node_exporter_unit("", folders, programs)))
        .filter(|unit| !unit.ports.is_empty())
        .map(|unit| (unit_name(&unit.name), unit.ports))
        .collect()
}

/// The sandbox of every unit (systemd.exec(5)), after the options that differ per unit.
const SANDBOX: &[&str] = &[
    // "SECURITY": execve() never gains privileges (setuid bits, file capabilities).
    "NoNewPrivileges=yes",
    // "SANDBOXING": the whole file system read-only but /dev, /proc, /sys (and the
    // ReadWritePaths= set per unit); /home, /root and /run/user inaccessible; a private /tmp;
    // /dev without physical devices.
    "ProtectSystem=strict",
    "ProtectHome=yes",
    "PrivateTmp=yes",
    "PrivateDevices=yes",
    // "SANDBOXING": no writes to /proc/sys and /sys, no kernel modules, no kernel log, a
    // read-only cgroup tree, no clock or hostname changes, other users' processes hidden.
    "ProtectKernelTunables=yes",
    "ProtectKernelModules=yes",
    "ProtectKernelLogs=yes",
    "ProtectControlGroups=yes",
    "ProtectClock=yes",
    "ProtectHostname=yes",
    "ProtectProc=invisible",
    // "SANDBOXING": no new namespaces, no realtime scheduling, no setuid/setgid files, the
    // user's System V IPC removed at stop, no personality changes.
    "RestrictNamespaces=yes",
    "RestrictRealtime=yes",
    "RestrictSUIDSGID=yes",
    "RemoveIPC=yes",
    "LockPersonality=yes",
    // "SYSTEM CALL FILTERING": native system calls only, of the set systemd recommends for
    // services; another call fails with EPERM instead of killing the process.
    "SystemCallArchitectures=native",
    "SystemCallFilter=@system-service",
    "SystemCallErrorNumber=EPERM",
    // "PROCESS PROPERTIES": files created are the user's only.
    "UMask=0077",
];

/// One unit file.
fn text(unit: &Unit, after: &[String], folders: &Folders) -> String {
    let mut lines = vec![
        "# Written by tfgrid-compose (ai_stack); installed by the AI-stack app's setup hook."
            .to_string(),
        "[Unit]".into(),
        format!("Description={}", unit.description),
        // systemd.unit(5): started with, and after, the network being up (the services bind the
        // VM's address) and the units it needs.
        format!(
            "Wants={}",
            words(["network-online.target"].iter().copied(), &unit.needs)
        ),
        format!(
            "After={}",
            words(["network-online.target"].iter().copied(), after)
        ),
        "StartLimitIntervalSec=60s".into(),
        "StartLimitBurst=10".into(),
        String::new(),
        "[Service]".into(),
    ];
    // systemd.service(5): `forking` waits for the parent to exit and reads the main PID from
    // PIDFile=; `exec` is up once execve() succeeded (a missing program fails the start).
    match &unit.pid_file {
        Some(pid) => lines.extend(["Type=forking".into(), format!("PIDFile={pid}")]),
        None => lines.push("Type=exec".into()),
    }
    // systemd.exec(5) "USER/GROUP IDENTITY" and "ENVIRONMENT": the services' user, with its
    // home in the data folder (git reads its config from there).
    lines.extend([
        format!("User={USER}"),
        format!("Group={USER}"),
        format!("Environment=HOME={}", folders.data),
    ]);
    if let Some(pre) = &unit.pre {
        lines.push(format!("ExecStartPre={}", command_line(pre)));
    }
    // systemd.service(5): restarted after a crash (a SIGKILL too), a non-zero exit or a timeout
    // (not after `systemctl stop`), 1 s later; systemd.unit(5): a unit that fails to start 10
    // times within 60 s stays failed (its journal says why) instead of the default 5 in 10 s,
    // which a 1 s delay would reach.
    lines.extend([
        format!("ExecStart={}", command_line(&unit.start)),
        "Restart=on-failure".into(),
        "RestartSec=1s".into(),
    ]);
    // systemd.exec(5) "CAPABILITIES": none at all, or only binding ports below 1024, given to
    // the unprivileged user by AmbientCapabilities= (kept across execve, NoNewPrivileges= too).
    if unit.low_port {
        lines.extend([
            "CapabilityBoundingSet=CAP_NET_BIND_SERVICE".into(),
            "AmbientCapabilities=CAP_NET_BIND_SERVICE".into(),
        ]);
    } else {
        lines.push("CapabilityBoundingSet=".into());
    }
    // systemd.exec(5) "SANDBOXING": the data folder is the one place it writes; the socket
    // families it uses; no memory both writable and executable, unless it needs that.
    lines.push(format!("ReadWritePaths={}", folders.data));
    lines.push(format!("RestrictAddressFamilies={}", unit.families));
    if !unit.write_execute {
        lines.push("MemoryDenyWriteExecute=yes".into());
    }
    lines.extend(SANDBOX.iter().map(|s| (*s).to_string()));
    // systemd.unit(5) "[INSTALL] SECTION OPTIONS": `systemctl enable` starts it at boot.
    lines.extend([
        String::new(),
        "[Install]".into(),
        "WantedBy=multi-user.target".into(),
    ]);
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// Unit names, blank-separated: `first` then `rest`.
fn words<'a>(first: impl Iterator<Item = &'a str>, rest: &'a [String]) -> String {
    first
        .chain(rest.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A command line as systemd.service(5) "COMMAND LINES" reads it: a word with a blank, quote,
/// backslash, `;`, `$` or `%` is double-quoted, with `\` and `"` escaped, `$` as `$$` (no
/// variable expansion) and `%` as `%%` (no specifier).
fn command_line(argv: &[String]) -> String {
    argv.iter()
        .map(|word| {
            let plain = !word.is_empty()
                && word
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/._:=@+,-".contains(c));
            if plain {
                return word.clone();
            }
            let mut quoted = String::from("\"");
            for c in word.chars() {
                match c {
                    '\\' | '"' => quoted.extend(['\\', c]),
                    '$' => quoted.push_str("$$"),
                    '%' => quoted.push_str("%%"),
                    _ => quoted.push(c),
                }
            }
            quoted.push('"');
            quoted
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::{Folders, Programs, Service, command_line, render};

    const FOLDERS: Folders = Folders {
        config: "/etc/tfgrid-ai",
        data: "/var/lib/tfgrid-ai",
    };

    fn units(services: &[Service]) -> std::collections::BTreeMap<String, String> {
        render(
            services,
            &FOLDERS,
            &Programs::on_vm("/usr/local/bin/tfgrid-compose"),
            &crate::stack::Monitoring::default(),
        )
    }

    #[test]
    fn one_unit_per_process_with_the_supervisors_command_lines() {
        let all = units(&[Service::Gateway, Service::Git, Service::Agent, Service::Llm]);
        assert_eq!(
            all.keys().cloned().collect::<Vec<_>>().join(" "),
            "tfgrid-ai-agent.service tfgrid-ai-fcgiwrap.service tfgrid-ai-gateway.service \
                tfgrid-ai-git.service tfgrid-ai-llm.service tfgrid-ai-nginx-gateway.service \
                tfgrid-ai-nginx-git.service"
        );
        let line = |unit: &str, key: &str| {
            all[&format!("tfgrid-ai-{unit}.service")]
                .lines()
                .filter(|l| l.starts_with(&format!("{key}=")))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(
            line("agent", "ExecStart"),
            "ExecStart=/usr/local/bin/tfgrid-compose serve agent --config \
                /etc/tfgrid-ai/agent.yaml"
        );
        assert_eq!(
            line("nginx-git", "ExecStart"),
            "ExecStart=/usr/sbin/nginx -p /var/lib/tfgrid-ai/nginx-git -c \
                /etc/tfgrid-ai/git-nginx.conf -e /var/lib/tfgrid-ai/nginx-git/error.log"
        );
        assert_eq!(
            line("nginx-git", "PIDFile"),
            "PIDFile=/var/lib/tfgrid-ai/nginx-git/nginx.pid"
        );
        assert_eq!(
            line("fcgiwrap", "ExecStart"),
            "ExecStart=/usr/sbin/fcgiwrap -s unix:/var/lib/tfgrid-ai/fcgiwrap.sock"
        );
        assert_eq!(
            line("llm", "ExecStart"),
            "ExecStart=/opt/tfgrid-compose/llm/serve --host 127.0.0.1 --port 8081"
        );
        // The agent after everything it calls on its VM; nginx of the git host with fcgiwrap.
        assert_eq!(
            line("agent", "After"),
            "After=network-online.target tfgrid-ai-nginx-gateway.service \
                tfgrid-ai-gateway.service tfgrid-ai-fcgiwrap.service tfgrid-ai-nginx-git.service \
                tfgrid-ai-git.service tfgrid-ai-llm.service"
        );
        assert_eq!(
            line("nginx-git", "Wants"),
            "Wants=network-online.target tfgrid-ai-fcgiwrap.service"
        );
        // Port 80 for the nginx units and the gateway (its `nginx -t`) only; W+X for the LLM only.
        for (unit, low, wx) in [
            ("nginx-gateway", true, false),
            ("gateway", true, false),
            ("nginx-git", true, false),
            ("git", false, false),
            ("fcgiwrap", false, false),
            ("agent", false, false),
            ("llm", false, true),
        ] {
            assert_eq!(
                line(unit, "AmbientCapabilities") == "AmbientCapabilities=CAP_NET_BIND_SERVICE",
                low,
                "{unit}"
            );
            assert_eq!(
                line(unit, "MemoryDenyWriteExecute").is_empty(),
                wx,
                "{unit}"
            );
        }
        // Alone on its VM, the agent waits for nothing of the stack.
        assert_eq!(
            units(&[Service::Agent])["tfgrid-ai-agent.service"]
                .lines()
                .find(|l| l.starts_with("After="))
                .unwrap(),
            "After=network-online.target"
        );
        assert_eq!(
            Service::ALL.map(Service::main_unit).join(" "),
            "tfgrid-ai-gateway.service tfgrid-ai-git.service tfgrid-ai-llm.service \
                tfgrid-ai-agent.service tfgrid-ai-prometheus.service"
        );
    }

    /// Prometheus' retention from the settings, both on loopback, Alertmanager without a cluster.
    #[test]
    fn the_monitoring_keeps_its_retention_and_listens_on_loopback() {
        let settings = crate::stack::Monitoring {
            retention_days: 7,
            retention_mb: 500,
            ..crate::stack::Monitoring::default()
        };
        let all = render(
            &[Service::Monitoring],
            &FOLDERS,
            &Programs::on_vm("/usr/local/bin/tfgrid-compose"),
            &settings,
        );
        let start = |unit: &str| {
            all[unit]
                .lines()
                .find(|l| l.starts_with("ExecStart="))
                .unwrap()
                .to_string()
        };
        assert_eq!(
            start("tfgrid-ai-prometheus.service"),
            "ExecStart=/usr/bin/prometheus --config.file=/etc/tfgrid-ai/prometheus.yml \
                --storage.tsdb.path=/var/lib/tfgrid-ai/prometheus \
                --storage.tsdb.retention.time=7d --storage.tsdb.retention.size=500MB \
                --web.listen-address=127.0.0.1:9090"
        );
        assert_eq!(
            start("tfgrid-ai-alertmanager.service"),
            "ExecStart=/usr/bin/prometheus-alertmanager \
                --config.file=/etc/tfgrid-ai/alertmanager.yml \
                --storage.path=/var/lib/tfgrid-ai/alertmanager \
                --web.listen-address=127.0.0.1:9093 --cluster.listen-address="
        );
    }

    #[test]
    fn quotes_words_systemd_would_split_or_expand() {
        let argv = ["/a b/x", "$HOME", "50%", "say \"hi\"", "", "plain-1.2:x=y"].map(String::from);
        assert_eq!(
            command_line(&argv),
            r#""/a b/x" "$$HOME" "50%%" "say \"hi\"" "" plain-1.2:x=y"#
        );
    }
}
