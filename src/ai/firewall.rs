//! The AI stack's guard on each of its VMs: an inbound firewall (nftables, default deny) and
//! fail2ban watching sshd. Pure text, as `ai::units` is: `phase::ai_stack` puts the ruleset
//! (`firewall.nft`), its unit (`tfgrid-ai-firewall.service`) and the jail (`fail2ban.local`)
//! among each VM's files in `/etc/tfgrid-ai/`, and the app's setup hook installs them. The ports
//! come from the units' one declaration ([`units::ports`]), never restated here. Start from
//! [`rules`]. The syntax is nft(8)'s (nftables 1.0.6, Debian 12) and jail.conf(5)'s (fail2ban 1.0).

use std::fmt::Write as _;

use super::units::{self, Folders, Programs, Reach, Service};

/// The nftables table of the firewall (family `inet`: IPv4 and IPv6).
pub const TABLE: &str = "tfgrid_ai";
/// The file of the ruleset in the config folder.
pub const RULES: &str = "firewall.nft";
/// The firewall's unit; a oneshot that loads the ruleset and deletes the table when stopped.
pub const UNIT: &str = "tfgrid-ai-firewall.service";
/// The jail's file in the config folder; the setup hook copies it to
/// `/etc/fail2ban/jail.d/tfgrid-ai.local`.
pub const JAIL: &str = "fail2ban.local";
/// sshd's port, open to every address: `up`, `ssh` and Ansible reach the VMs there.
pub const SSH_PORT: u16 = 22;
/// Where nft(8) is on the VMs (Debian's and Ubuntu's `nftables` package).
pub const NFT: &str = "/usr/sbin/nft";

/// Who may reach a VM besides the public ports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inbound {
    /// The private network, as IPv4 addresses or `ADDRESS/PREFIX` networks: the stack's VMs
    /// and this machine's end of the deployment's tunnel. The ports of [`Reach::Private`] are open
    /// to these only.
    pub private: Vec<String>,
    /// The UDP ports of the WireGuard endpoints the VM runs itself (the local pattern's VMs:
    /// 51820; on the grid the node ends the tunnel and the VM runs none).
    pub wireguard: Vec<u16>,
}

/// The ruleset of a VM that runs `services`: everything inbound dropped but replies, loopback,
/// ICMP, sshd, the WireGuard endpoints, the public ports from anywhere and the private ports from
/// `inbound.private`. Loaded whole by `nft -f` (one transaction: the table is replaced, never
/// half there).
pub fn rules(
    services: &[Service],
    inbound: &Inbound,
    folders: &Folders,
    programs: &Programs,
) -> String {
    let mut out = format!(
        "# Written by tfgrid-compose (ai_stack): this VM's inbound firewall, default deny.\n\
         # Loaded by {UNIT} (`nft -f`); stopping the unit deletes the table.\n\
         table inet {TABLE}\ndelete table inet {TABLE}\ntable inet {TABLE} {{\n"
    );
    if !inbound.private.is_empty() {
        let _ = write!(
            out,
            // `auto-merge`: a VM's address inside the tunnel's network is no conflicting
            // interval (nft 1.0.6: "Error: conflicting intervals specified" without it).
            "  set private {{\n    type ipv4_addr\n    flags interval\n    auto-merge\n    \
             elements = {{ {} }}\n  }}\n",
            inbound.private.join(", ")
        );
    }
    out.push_str(
        "  chain input {\n    type filter hook input priority filter; policy drop;\n\
         \x20   ct state established,related accept\n    ct state invalid drop\n\
         \x20   iif lo accept\n    meta l4proto { icmp, ipv6-icmp } accept\n",
    );
    let _ = writeln!(out, "    tcp dport {SSH_PORT} accept comment \"sshd\"");
    if !inbound.wireguard.is_empty() {
        let _ = writeln!(
            out,
            "    udp dport {{ {} }} accept comment \"WireGuard\"",
            join(&inbound.wireguard)
        );
    }
    for (unit, ports) in units::ports(services, folders, programs) {
        for (reach, from) in [(Reach::Public, ""), (Reach::Private, "ip saddr @private ")] {
            let numbers: Vec<u16> = ports
                .iter()
                .filter(|p| p.reach == reach)
                .map(|p| p.number)
                .collect();
            if numbers.is_empty() || (reach == Reach::Private && inbound.private.is_empty()) {
                continue;
            }
            let _ = writeln!(
                out,
                "    {from}tcp dport {{ {} }} accept comment \"{unit}\"",
                join(&numbers)
            );
        }
    }
    out.push_str("  }\n}\n");
    out
}

fn join(ports: &[u16]) -> String {
    ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The firewall's unit, as Debian's own `nftables.service` is written: a oneshot before the
/// network comes up (systemd.special(7) `network-pre.target`), started early at boot
/// (`sysinit.target`), its table deleted when stopped.
pub fn unit(folders: &Folders) -> String {
    let rules = format!("{}/{RULES}", folders.config);
    format!(
        "# Written by tfgrid-compose (ai_stack); installed by the AI-stack app's setup hook.\n\
         [Unit]\nDescription=tfgrid-compose AI stack: inbound firewall (nftables, default deny)\n\
         DefaultDependencies=no\nWants=network-pre.target\n\
         Before=network-pre.target shutdown.target\nConflicts=shutdown.target\n\n\
         [Service]\nType=oneshot\nRemainAfterExit=yes\n\
         ExecStart={NFT} -f {rules}\nExecReload={NFT} -f {rules}\n\
         ExecStop={NFT} delete table inet {TABLE}\n\
         ProtectSystem=full\nProtectHome=yes\n\n\
         [Install]\nWantedBy=sysinit.target\n"
    )
}

/// fail2ban's jail for sshd: 5 failures within 10 minutes ban the address for an hour, read
/// from the journal (sshd logs there; Debian 12 has no `/var/log/auth.log` without rsyslog), the
/// ban an nftables set of fail2ban's own table (`inet f2b-table`), on sshd's port.
pub fn jail() -> String {
    format!(
        "# Written by tfgrid-compose (ai_stack); installed by the AI-stack app's setup hook.\n\
         [sshd]\nenabled = true\nport = {SSH_PORT}\nbackend = systemd\n\
         banaction = nftables[type=multiport]\nmaxretry = 5\nfindtime = 10m\nbantime = 1h\n"
    )
}

#[cfg(test)]
mod tests {
    use super::{Inbound, rules};
    use crate::ai::units::{Folders, Programs, Service};

    const FOLDERS: Folders = Folders {
        config: "/etc/tfgrid-ai",
        data: "/var/lib/tfgrid-ai",
    };

    fn ruleset(services: &[Service], inbound: &Inbound) -> String {
        rules(
            services,
            inbound,
            &FOLDERS,
            &Programs::on_vm("/usr/local/bin/tfgrid-compose"),
        )
    }

    /// The lines that let something in, each with what it is for.
    fn accepts(ruleset: &str) -> Vec<&str> {
        ruleset
            .lines()
            .map(str::trim)
            .filter(|l| l.contains("dport"))
            .collect()
    }

    #[test]
    fn opens_public_ports_on_the_gateway_only_and_service_ports_to_the_private_network() {
        let inbound = Inbound {
            private: vec!["10.1.250.10".into(), "10.1.1.0/24".into()],
            wireguard: vec![51820],
        };
        let gateway = ruleset(&[Service::Gateway], &inbound);
        assert_eq!(
            accepts(&gateway),
            [
                "tcp dport 22 accept comment \"sshd\"",
                "udp dport { 51820 } accept comment \"WireGuard\"",
                "ip saddr @private tcp dport { 7701 } accept comment \"tfgrid-ai-gateway.service\"",
                "tcp dport { 80, 443 } accept comment \"tfgrid-ai-nginx-gateway.service\"",
                "ip saddr @private tcp dport { 9100 } accept comment \"tfgrid-ai-node-exporter.service\"",
            ]
        );
        assert!(gateway.contains("policy drop;"), "{gateway}");
        assert!(
            gateway.contains("elements = { 10.1.250.10, 10.1.1.0/24 }"),
            "{gateway}"
        );
        // The git host's nginx, the agent and every VM's node_exporter: private only; what
        // listens on loopback (the LLM, Prometheus, Alertmanager): nothing.
        let node_exporter = "ip saddr @private tcp dport { 9100 } accept comment \"tfgrid-ai-node-exporter.service\"";
        assert_eq!(
            accepts(&ruleset(&[Service::Git], &inbound))[2..],
            [
                "ip saddr @private tcp dport { 80 } accept comment \"tfgrid-ai-nginx-git.service\"",
                node_exporter
            ]
        );
        assert_eq!(
            accepts(&ruleset(&[Service::Llm, Service::Agent], &inbound))[2..],
            [
                "ip saddr @private tcp dport { 7702 } accept comment \"tfgrid-ai-agent.service\"",
                node_exporter
            ]
        );
        assert_eq!(
            accepts(&ruleset(&[Service::Monitoring], &inbound))[2..],
            [node_exporter]
        );
        // No private network known: its ports stay closed, and no empty set is written.
        let alone = ruleset(&[Service::Agent], &Inbound::default());
        assert_eq!(accepts(&alone), ["tcp dport 22 accept comment \"sshd\""]);
        assert!(!alone.contains("set private"), "{alone}");
    }
}
