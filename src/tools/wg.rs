//! `wg-quick` argv builders. The interface name is the config file's stem, so the caller picks a
//! free name and writes `<dir>/<name>.conf` (0600) before calling [`up`].

use std::path::Path;
use std::time::Duration;

use crate::process::{Cmd, Io};

pub fn up(config: &Path, log: &Path) -> Cmd {
    Cmd::new("wg-quick")
        .arg("up")
        .arg(config.display().to_string())
        .io(Io::Log(log.to_path_buf()))
        .timeout(Duration::from_secs(60))
}

pub fn down(config: &Path, log: &Path) -> Cmd {
    Cmd::new("wg-quick")
        .arg("down")
        .arg(config.display().to_string())
        .io(Io::Log(log.to_path_buf()))
        .timeout(Duration::from_secs(60))
}

/// `wg show IFACE`: fails when the interface is not a WireGuard one.
pub fn show(interface: &str, log: &Path) -> Cmd {
    Cmd::new("wg")
        .args(["show", interface])
        .io(Io::Log(log.to_path_buf()))
        .timeout(Duration::from_secs(10))
}

/// Interface names the kernel accepts: at most 15 bytes of `[A-Za-z0-9_=+.-]`.
pub fn valid_interface_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_=+.-".contains(&b))
}

#[cfg(test)]
mod tests {
    #[test]
    fn argv_and_names() {
        let cmd = super::up("/s/wg/tfgc-ab12.conf".as_ref(), "/l".as_ref());
        assert_eq!(cmd.display_line(), "wg-quick up /s/wg/tfgc-ab12.conf");
        assert!(super::valid_interface_name("tfgc-0123456789"));
        assert!(!super::valid_interface_name("tfgc-01234567890"));
        assert!(!super::valid_interface_name("a b"));
    }
}
