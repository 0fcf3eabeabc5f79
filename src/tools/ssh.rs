//! `ssh`, `scp` and `ssh-keygen` argv builders, and the one remote-quoting function.
//! Host keys are pinned in a per-deployment `known_hosts`: never `StrictHostKeyChecking=no`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::process::{Cmd, Io};

pub use crate::process::shell_quote;

/// The remote side of `ssh host -- …` is a shell: every argument is quoted exactly once, here,
/// so that each arrives as exactly one argument, byte for byte.
pub fn remote_command<S: AsRef<str>>(argv: &[S]) -> String {
    argv.iter()
        .map(|a| shell_quote(a.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A path as the value of an ssh option (`-o UserKnownHostsFile=…`), read back byte for byte.
///
/// ssh splits an option's value into words (`argv_split` in OpenSSH's `misc.c`: blanks separate,
/// `"` and `'` quote, `\` escapes `\`, `"`, `'` and a blank), then expands `%` tokens and
/// `${VAR}` in file options (ssh_config(5), TOKENS). So the path is put in double quotes with
/// `\`, `"` and `'` escaped, and `%` doubled. A path holding `${` cannot be written at all (ssh
/// has no escape for it); `up` refuses such folders before anything is made.
pub fn config_path(path: &Path) -> String {
    let mut word = String::from('"');
    for c in path.display().to_string().chars() {
        match c {
            '\\' | '"' | '\'' => {
                word.push('\\');
                word.push(c);
            }
            '%' => word.push_str("%%"),
            c => word.push(c),
        }
    }
    word.push('"');
    word
}

/// Why ssh could not be given `path` in an option, if it could not: a path that is not UTF-8
/// (ssh_config is text), or holds `${` (see [`config_path`]).
pub fn config_path_problem(path: &Path) -> Option<&'static str> {
    match path.to_str() {
        None => Some("is not UTF-8 text"),
        Some(text) if text.contains("${") => {
            Some("holds `${`, which ssh expands and cannot escape")
        }
        Some(_) => None,
    }
}

/// Everything needed to reach one VM over ssh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub identity: PathBuf,
    pub known_hosts: PathBuf,
    /// `yes` when the pattern told us the host keys; `accept-new` learns them once.
    pub strict: bool,
    /// The folder of this command's connection masters ([`master`]), one socket per host named
    /// by its address (`DIR/%h`): ssh, scp and ansible's ssh share the master's connection when
    /// its socket is there, and connect on their own when it is not. `None`: no sharing.
    pub control_dir: Option<PathBuf>,
}

impl SshTarget {
    /// Options shared by ssh and scp (scp spells the port `-P`). `ControlMaster=no` always:
    /// none of them becomes a master, whatever the user's ssh_config says (a persistent master
    /// started there would outlive the command); and `ControlPath` is ours or `none`, so no
    /// master of the user's carries our commands either.
    fn options(&self) -> Vec<String> {
        self.options_of(false)
    }

    /// [`SshTarget::options`], or a master's ([`master`]): `ControlMaster=yes`, never persistent.
    fn options_of(&self, master: bool) -> Vec<String> {
        let checking = if self.strict { "yes" } else { "accept-new" };
        let sharing: &[&str] = if master {
            &["-o", "ControlMaster=yes", "-o", "ControlPersist=no"]
        } else {
            &["-o", "ControlMaster=no"]
        };
        let mut options: Vec<String> = sharing.iter().map(ToString::to_string).collect();
        options.extend([
            "-o".into(),
            format!("ControlPath={}", self.control_path()),
            "-o".into(),
            "BatchMode=yes".into(),
            "-o".into(),
            "ConnectTimeout=10".into(),
            // A VM that went away (destroyed, rebooted, its tunnel down) ends the connection
            // within 20 s instead of leaving ssh waiting forever.
            "-o".into(),
            "ServerAliveInterval=5".into(),
            "-o".into(),
            "ServerAliveCountMax=4".into(),
            "-o".into(),
            format!("UserKnownHostsFile={}", config_path(&self.known_hosts)),
            "-o".into(),
            format!("StrictHostKeyChecking={checking}"),
            "-o".into(),
            "IdentitiesOnly=yes".into(),
            "-o".into(),
            format!("IdentityFile={}", config_path(&self.identity)),
            "-o".into(),
            "LogLevel=ERROR".into(),
        ]);
        options
    }

    /// The options ansible's ssh connection needs on top of its own (which adds port and user),
    /// as one `ssh_args` value: ours, with host keys always checked (wait-ssh has learned them by
    /// then), sharing the connection of this command's master to each host when there is one
    /// and never starting one of its own: ansible's default (`ControlMaster=auto`,
    /// `ControlPersist=60s`) leaves a master running a minute after `ansible-playbook` and the
    /// command have ended. ansible splits the value with Python's `shlex.split`, so each word is
    /// shell-quoted here, once.
    pub fn ansible_ssh_args(&self) -> String {
        let pinned = SshTarget {
            strict: true,
            ..self.clone()
        };
        pinned
            .options()
            .iter()
            .map(|word| shell_quote(word))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The `ControlPath` value: `"DIR/%h"` (the folder written by [`config_path`], `%h` left
    /// for ssh to expand), or `none`.
    fn control_path(&self) -> String {
        match &self.control_dir {
            Some(dir) => {
                let quoted = config_path(dir);
                let open = quoted.strip_suffix('"').unwrap_or(&quoted);
                format!("{open}/%h\"")
            }
            None => "none".to_string(),
        }
    }

    /// Where the master for this target listens, if there is a folder for masters.
    pub fn control_socket(&self) -> Option<PathBuf> {
        self.control_dir.as_ref().map(|dir| dir.join(&self.host))
    }

    fn destination(&self) -> String {
        format!("{}@{}", self.user, self.host)
    }

    /// `host` for scp: IPv6 literals need brackets.
    fn scp_host(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }
}

/// `ssh … user@host -- <quoted argv>`; an empty argv opens a login shell.
pub fn ssh<S: AsRef<str>>(target: &SshTarget, argv: &[S], tty: bool) -> Cmd {
    let mut cmd = Cmd::new("ssh").args(target.options());
    if tty {
        cmd = cmd.arg("-t");
    }
    cmd = cmd.args([
        "-p".to_string(),
        target.port.to_string(),
        target.destination(),
    ]);
    if !argv.is_empty() {
        cmd = cmd.arg("--").shell_text_arg(remote_command(argv));
    }
    cmd
}

/// `ssh … -N -L PORT:127.0.0.1:PORT… -p P user@host`: each of `ports` on the VM's loopback
/// forwarded to the same port on this machine's loopback, until stopped (no remote command).
pub fn tunnel(target: &SshTarget, ports: &[u16]) -> Cmd {
    let mut cmd = Cmd::new("ssh").args(target.options()).arg("-N");
    for port in ports {
        cmd = cmd.args(["-L".to_string(), format!("{port}:127.0.0.1:{port}")]);
    }
    cmd.args([
        "-p".to_string(),
        target.port.to_string(),
        target.destination(),
    ])
}

/// `ssh … -o ExitOnForwardFailure=yes -L 127.0.0.1:LOCAL:127.0.0.1:REMOTE -p P user@host -- cat`:
/// the VM's loopback port `remote` on this machine's loopback port `local`, for as long as ssh
/// runs. The remote `cat` reads ssh's stdin: held open by the process that started it
/// ([`Cmd::hold_stdin`]), its end (that process gone, even SIGKILLed) ends `cat`, then ssh and
/// the forward. A `local` port already taken makes ssh exit instead of running without it.
pub fn forward(target: &SshTarget, local: u16, remote: u16) -> Cmd {
    let cmd = Cmd::new("ssh").args(target.options()).args([
        "-o".to_string(),
        "ExitOnForwardFailure=yes".to_string(),
        "-L".to_string(),
        format!("127.0.0.1:{local}:127.0.0.1:{remote}"),
    ]);
    while_owner_lives(cmd, target)
}

/// `cmd` (ssh and its options) `-p P user@host -- cat`, the owner's stdin held open for `cat`
/// to read: ssh runs until the owner ends, even SIGKILLed ([`Cmd::hold_stdin`]).
fn while_owner_lives(cmd: Cmd, target: &SshTarget) -> Cmd {
    cmd.args([
        "-p".to_string(),
        target.port.to_string(),
        target.destination(),
        "--".to_string(),
    ])
    .shell_text_arg(remote_command(&["cat"]))
    .hold_stdin()
}

/// `ssh -o ControlMaster=yes -o ControlPersist=no … -p P user@host -- cat`: the connection
/// master of `target` (its socket [`SshTarget::control_socket`], created once ssh has logged in),
/// whose connection the other ssh, scp and ansible commands to that host share, so they skip
/// their own key exchange and login (about 0.1 s each on this machine, a round trip or more
/// each on the grid: docs/performance.md). It runs `cat` on the VM with this command's stdin held
/// open, so it ends when the command does, even a SIGKILLed one; the runner stops it otherwise.
/// Without a `control_dir` in `target` it is a plain login that stays.
pub fn master(target: &SshTarget) -> Cmd {
    while_owner_lives(Cmd::new("ssh").args(target.options_of(true)), target)
}

/// `scp -r -p -q … SRC user@host:DEST` (modes kept, so hooks stay executable).
pub fn upload(target: &SshTarget, source: &Path, dest: &str, log: &Path, timeout: Duration) -> Cmd {
    upload_many(target, &[source], dest, log, timeout)
}

/// `scp -r -p -q … SRC… user@host:DEST`: several files and folders into the folder `DEST`.
pub fn upload_many(
    target: &SshTarget,
    sources: &[&Path],
    dest: &str,
    log: &Path,
    timeout: Duration,
) -> Cmd {
    Cmd::new("scp")
        .args(["-r", "-p", "-q"])
        .args(target.options())
        .args(["-P".to_string(), target.port.to_string()])
        .args(sources.iter().map(|s| s.display().to_string()))
        .arg(format!("{}@{}:{dest}", target.user, target.scp_host()))
        .io(Io::Log(log.to_path_buf()))
        .timeout(timeout)
}

/// `ssh-keygen -q -t ed25519 -N '' -C COMMENT -f KEY` (a deployment's own key).
pub fn keygen(key: &Path, comment: &str, log: &Path) -> Cmd {
    Cmd::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(key.display().to_string())
        .io(Io::Log(log.to_path_buf()))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::{SshTarget, config_path, remote_command, shell_quote, ssh, tunnel};

    /// Decodes what a POSIX shell would make of a line of single-quoted words.
    fn shell_split(line: &str) -> Vec<String> {
        let mut words = Vec::new();
        let mut current = String::new();
        let mut in_quotes = false;
        let mut chars = line.chars();
        let mut started = false;
        while let Some(c) = chars.next() {
            match c {
                '\'' => {
                    in_quotes = !in_quotes;
                    started = true;
                }
                '\\' if !in_quotes => {
                    current.push(chars.next().unwrap());
                    started = true;
                }
                ' ' if !in_quotes => {
                    if started {
                        words.push(std::mem::take(&mut current));
                        started = false;
                    }
                }
                c => {
                    current.push(c);
                    started = true;
                }
            }
        }
        if started {
            words.push(current);
        }
        words
    }

    #[test]
    fn quoting_round_trips_hostile_words() {
        let words = [
            "plain",
            "two words",
            "it's",
            "'",
            "''",
            "$HOME",
            "$(rm -rf /)",
            "`id`",
            "a;b",
            "a && b",
            "line\nbreak",
            "tab\there",
            "back\\slash",
            "\"dq\"",
            "*",
            "~",
            "",
            " ",
            "-n",
            "é ü 漢字",
            "a'b'c",
            "!bang",
            "#hash",
            "x > y",
            "{a,b}",
        ];
        let line = remote_command(&words);
        assert_eq!(
            shell_split(&line),
            words.iter().map(ToString::to_string).collect::<Vec<_>>()
        );
    }

    #[test]
    fn quoting_is_exact() {
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(remote_command(&["echo", "a b"]), "'echo' 'a b'");
    }

    /// The words `/bin/sh` makes of `line`.
    fn sh_words(line: &str) -> Vec<String> {
        #[expect(
            clippy::disallowed_methods,
            reason = "test checks the quoting against /bin/sh"
        )]
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf '%s\\0' {line}"))
            .output()
            .unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .split_terminator('\0')
            .map(String::from)
            .collect()
    }

    #[test]
    fn quoting_survives_a_real_shell() {
        let words = ["$(echo pwned)", "a;b", "new\nline", "it's", "  spaced  "];
        assert_eq!(sh_words(&remote_command(&words)), words);
    }

    /// The line a log shows for ssh (`$ LINE`) is what a shell runs: `/bin/sh` splits it into
    /// ssh's own arguments up to `--`, then exactly the remote argv, whose quoting is
    /// `remote_command`'s text, shown once; the VM's shell makes the same argv of what ssh sends.
    #[test]
    fn an_ssh_line_shows_the_remote_command_once_as_a_shell_runs_it() {
        let remote = ["echo", "a b", "it's", "$(id)", ""];
        let cmd = ssh(&target(true), &remote, false);
        let line = cmd.display_line();
        assert!(
            line.ends_with(&format!(" -- {}", remote_command(&remote))),
            "{line}"
        );
        let words = sh_words(&line);
        let dashes = words.iter().position(|w| w == "--").unwrap();
        assert_eq!(words[0], cmd.program);
        assert_eq!(words[1..=dashes], cmd.args[..dashes]);
        assert_eq!(words[dashes + 1..], remote);
        assert_eq!(sh_words(cmd.args.last().unwrap()), remote);
        let forward = super::forward(&target(true), 41234, 9090).display_line();
        assert!(forward.ends_with("root@10.1.0.2 -- 'cat'"), "{forward}");
    }

    fn target(strict: bool) -> SshTarget {
        SshTarget {
            host: "10.1.0.2".into(),
            port: 22,
            user: "root".into(),
            identity: PathBuf::from("/s/ssh/id_ed25519"),
            known_hosts: PathBuf::from("/s/known_hosts"),
            strict,
            control_dir: None,
        }
    }

    /// A forward for a long-lived owner: the same options, its failure fatal, one port of this
    /// machine's loopback to one of the VM's, and a remote `cat` reading the held stdin.
    #[test]
    fn a_forward_binds_loopback_only_and_reads_its_owners_stdin() {
        let cmd = super::forward(&target(true), 41234, 9090);
        let options = target(true).options();
        assert_eq!(cmd.args[..options.len()], options[..]);
        assert_eq!(
            cmd.args[options.len()..],
            [
                "-o",
                "ExitOnForwardFailure=yes",
                "-L",
                "127.0.0.1:41234:127.0.0.1:9090",
                "-p",
                "22",
                "root@10.1.0.2",
                "--",
                "'cat'"
            ]
        );
        assert!(cmd.stdin_held);
    }

    /// The same options as `ssh`, no remote command: each port forwarded loopback to loopback.
    #[test]
    fn a_tunnel_forwards_each_port_between_the_loopbacks() {
        let cmd = tunnel(&target(true), &[9090, 9093]);
        let options = target(true).options();
        assert_eq!(cmd.args[..options.len()], options[..]);
        assert_eq!(
            cmd.args[options.len()..],
            [
                "-N",
                "-L",
                "9090:127.0.0.1:9090",
                "-L",
                "9093:127.0.0.1:9093",
                "-p",
                "22",
                "root@10.1.0.2"
            ]
        );
    }

    #[test]
    fn ssh_argv_pins_host_keys() {
        let cmd = ssh(&target(false), &["true"], false);
        assert_eq!(
            cmd.args,
            [
                "-o",
                "ControlMaster=no",
                "-o",
                "ControlPath=none",
                "-o",
                "BatchMode=yes",
                "-o",
                "ConnectTimeout=10",
                "-o",
                "ServerAliveInterval=5",
                "-o",
                "ServerAliveCountMax=4",
                "-o",
                "UserKnownHostsFile=\"/s/known_hosts\"",
                "-o",
                "StrictHostKeyChecking=accept-new",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "IdentityFile=\"/s/ssh/id_ed25519\"",
                "-o",
                "LogLevel=ERROR",
                "-p",
                "22",
                "root@10.1.0.2",
                "--",
                "'true'"
            ]
        );
        let strict = ssh(&target(true), &["true"], true);
        assert!(
            strict
                .args
                .contains(&"StrictHostKeyChecking=yes".to_string())
        );
        assert!(strict.args.contains(&"-t".to_string()));
        assert!(!strict.display_line().contains("StrictHostKeyChecking=no"));
    }

    /// A master is the only command that starts one, never a persistent one, whatever the
    /// user's ssh_config says; everything else shares it through the same `DIR/%h`, and that path
    /// reaches ssh byte for byte from a hostile folder, `%h` expanded to the host.
    #[test]
    fn a_master_alone_starts_one_and_the_others_share_its_socket() {
        let mut t = target(true);
        t.control_dir = Some(PathBuf::from(HOSTILE).with_file_name("ctl"));
        let master = super::master(&t);
        assert_eq!(
            master.args[..6],
            [
                "-o",
                "ControlMaster=yes",
                "-o",
                "ControlPersist=no",
                "-o",
                &t.options()[3]
            ]
        );
        assert_eq!(master.args[6..2 + t.options().len()], t.options()[4..]);
        assert!(!master.args.contains(&"ControlMaster=no".to_string()));
        assert!(master.stdin_held);
        assert!(master.display_line().ends_with("root@10.1.0.2 -- 'cat'"));
        let client = ssh(&t, &["true"], false);
        assert_eq!(client.args[..2], ["-o", "ControlMaster=no"]);
        #[expect(
            clippy::disallowed_methods,
            reason = "test checks the path against the real ssh's own parser"
        )]
        let resolved = |args: &[String]| {
            // a user's ssh_config that shares and keeps connections for everything
            let config = tempfile::NamedTempFile::new().unwrap();
            std::fs::write(
                config.path(),
                "Host *\n  ControlMaster auto\n  ControlPath /tmp/theirs/%C\n  ControlPersist 10m\n",
            )
            .unwrap();
            let out = std::process::Command::new("ssh")
                .arg("-G")
                .arg("-F")
                .arg(config.path())
                .args(&args[..args.len() - 2])
                .output()
                .expect("ssh is installed (scripts/install-deps.sh)");
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let text = resolved(&client.args);
        let expected = format!("controlpath {}", t.control_socket().unwrap().display());
        assert!(text.lines().any(|l| l == expected), "{text}");
        assert!(text.contains("controlmaster false"), "{text}");
        let alone = resolved(&ssh(&target(true), &["true"], false).args);
        assert!(alone.contains("controlmaster false"), "{alone}");
        // `none` leaves no path: no master of theirs carries our commands
        assert!(!alone.contains("controlpath"), "{alone}");
    }

    #[test]
    fn scp_brackets_ipv6() {
        let mut t = target(true);
        t.host = "fd00::2".into();
        let cmd = super::upload(
            &t,
            "/app/src".as_ref(),
            "/tmp/app-source",
            "/l".as_ref(),
            std::time::Duration::from_secs(1),
        );
        assert_eq!(cmd.args.last().unwrap(), "root@[fd00::2]:/tmp/app-source");
    }

    /// Folders people name: blanks, both quotes, a backslash, `%`, non-ASCII letters, a leading
    /// `-`, a `#` and a `;`.
    const HOSTILE: &str = "/tmp/My Apps/it's \"ünï\" 100% \\ -x #1; a\tb/known_hosts";

    #[test]
    fn a_path_in_an_ssh_option_reaches_ssh_byte_for_byte() {
        let option = format!("UserKnownHostsFile={}", config_path(HOSTILE.as_ref()));
        #[expect(
            clippy::disallowed_methods,
            reason = "test checks the quoting against the real ssh's own parser"
        )]
        let out = std::process::Command::new("ssh")
            .args(["-G", "-o", &option, "root@10.1.0.2"])
            .output()
            .expect("ssh is installed (scripts/install-deps.sh)");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.lines()
                .any(|line| line == format!("userknownhostsfile {HOSTILE}")),
            "{text}"
        );
    }

    #[test]
    fn ansible_gets_the_same_options_shell_quoted() {
        let mut t = target(false);
        t.known_hosts = HOSTILE.into();
        let args = t.ansible_ssh_args();
        let words = shell_split(&args);
        assert!(words.contains(&format!(
            "UserKnownHostsFile={}",
            config_path(HOSTILE.as_ref())
        )));
        assert!(words.contains(&"StrictHostKeyChecking=yes".to_string()));
        assert!(words.contains(&"BatchMode=yes".to_string()));
        assert!(words.contains(&"ControlMaster=no".to_string()));
        assert!(!args.contains("ControlPersist"), "{args}");
    }
}
