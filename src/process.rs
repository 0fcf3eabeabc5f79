//! Processes: `Cmd` describes one child process as an argv vector, `Runner` is the only place that
//! spawns one. `--dry-run` is enforced here (a dry runner records and spawns nothing), and so are
//! logging (child output goes straight to a log file, so a child outlives a killed parent cleanly),
//! timeouts and secret redaction. What a child printed is read back within bounds
//! ([`printed`]). Start from [`Cmd`] and [`Runner::run`].

mod printed;

pub use printed::CAPTURE_LIMIT;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;

use crate::error::ProcessError;

/// Where a child's stdout and stderr go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Io {
    /// Both appended to this log file (the default for phase work).
    Log(PathBuf),
    /// stdout captured (e.g. `tofu output -json`), stderr appended to the log file.
    Capture(PathBuf),
    /// The user's terminal (`ssh`, `exec`).
    Inherit,
    /// stdout captured, stdin and stderr the user's terminal (app commands with `save_to_context`).
    Stdout,
    /// stdout and then stderr captured as one answer, stdin empty, nothing on the terminal: a
    /// tool's short answer that some tools print on stderr (`ssh -V`).
    Answer,
}

/// One child process: program, argv, extra environment (secret values are never displayed),
/// working directory, timeout and where its output goes.
#[derive(Debug, Clone)]
pub struct Cmd {
    pub program: String,
    pub args: Vec<String>,
    pub env: BTreeMap<String, EnvValue>,
    pub cwd: Option<PathBuf>,
    pub timeout: Option<Duration>,
    pub io: Io,
    /// What a dry run answers on stdout for this command (e.g. placeholder outputs).
    pub dry_run_stdout: Option<String>,
    /// Written to the child's stdin, then closed (never displayed when secret): how secret
    /// values reach a remote file without appearing in any argv. Only with a log ([`Io::Log`],
    /// [`Io::Capture`]); otherwise stdin is the terminal or nothing.
    pub input: Option<EnvValue>,
    /// The child's stdin is a pipe this process holds open until the child ends (only with a
    /// log, and no `input`): a child that reads it to its end stops when this process dies, even
    /// by SIGKILL, since the kernel then closes the pipe.
    pub stdin_held: bool,
    /// The index in `args` of an argument that is already shell text: a remote command line,
    /// quoted once by `tools::ssh::remote_command`. Displays show it as is, never quoted again.
    pub shell_text: Option<usize>,
}

/// An environment value for a child; `Secret` values are redacted in every display.
#[derive(Clone, PartialEq, Eq)]
pub enum EnvValue {
    Plain(String),
    Secret(String),
}

impl fmt::Debug for EnvValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvValue::Plain(value) => write!(f, "{value:?}"),
            EnvValue::Secret(_) => f.write_str("<redacted>"),
        }
    }
}

impl Cmd {
    pub fn new(program: impl Into<String>) -> Self {
        Cmd {
            program: program.into(),
            args: Vec::new(),
            env: BTreeMap::new(),
            cwd: None,
            timeout: None,
            io: Io::Inherit,
            dry_run_stdout: None,
            input: None,
            stdin_held: false,
            shell_text: None,
        }
    }

    /// Holds the child's stdin open while this process lives ([`Cmd::stdin_held`]).
    #[must_use]
    pub fn hold_stdin(mut self) -> Self {
        self.stdin_held = true;
        self
    }

    /// Feeds `text` to the child's stdin; it is a secret, never shown.
    #[must_use]
    pub fn secret_input(mut self, text: impl Into<String>) -> Self {
        self.input = Some(EnvValue::Secret(text.into()));
        self
    }

    #[must_use]
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Adds `text`, a command line already quoted for a shell (`tools::ssh::remote_command`'s),
    /// as one argument: the child gets it byte for byte, and displays show it as is, so that a
    /// log line reads the remote command once, as its shell runs it.
    #[must_use]
    pub fn shell_text_arg(mut self, text: impl Into<String>) -> Self {
        self.shell_text = Some(self.args.len());
        self.args.push(text.into());
        self
    }

    #[must_use]
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    #[must_use]
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(key.into(), EnvValue::Plain(value.into()));
        self
    }

    #[must_use]
    pub fn secret_env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(key.into(), EnvValue::Secret(value.into()));
        self
    }

    #[must_use]
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    #[must_use]
    pub fn io(mut self, io: Io) -> Self {
        self.io = io;
        self
    }

    #[must_use]
    pub fn dry_run_stdout(mut self, stdout: impl Into<String>) -> Self {
        self.dry_run_stdout = Some(stdout.into());
        self
    }

    /// argv as one line, each word quoted only when it needs to be, and the shell text argument
    /// ([`Cmd::shell_text_arg`]) as it is. Environment is not shown.
    pub fn display_line(&self) -> String {
        std::iter::once(display_word(&self.program))
            .chain(self.args.iter().enumerate().map(|(i, word)| {
                if self.shell_text == Some(i) {
                    word.clone()
                } else {
                    display_word(word)
                }
            }))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Quotes one word for a POSIX shell: single quotes, with `'` written as `'\''`.
pub fn shell_quote(word: &str) -> String {
    let mut quoted = String::with_capacity(word.len() + 2);
    quoted.push('\'');
    for c in word.chars() {
        if c == '\'' {
            quoted.push_str("'\\''");
        } else {
            quoted.push(c);
        }
    }
    quoted.push('\'');
    quoted
}

/// A path as a shell would need it typed in a suggested command: [`display_word`], and a relative
/// path starting with `-` written `./-…`, so that it is not read as an option.
pub fn display_path(path: &std::path::Path) -> String {
    let text = path.display().to_string();
    if text.starts_with('-') {
        display_word(&format!("./{text}"))
    } else {
        display_word(&text)
    }
}

/// One word as a shell would need it typed: as is when it holds only safe characters, else
/// [`shell_quote`]d. For command lines shown to the user (errors, hints, `--dry-run`).
pub fn display_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:@,+%[]".contains(&b));
    if plain {
        word.to_string()
    } else {
        shell_quote(word)
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display_line())
    }
}

/// What a finished child left behind.
#[derive(Debug, Clone, Default)]
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
}

type FakeFn = dyn Fn(&Cmd) -> Result<Output> + Send + Sync;
type ObserveFn = dyn Fn(&Cmd) + Send + Sync;

/// How processes are run: for real, recorded only (`--dry-run`), or answered in process (tests).
#[derive(Clone)]
enum Mode {
    Real,
    DryRun,
    Fake(Arc<FakeFn>),
}

/// The only spawner of child processes. Cheap to clone; every clone shares the transcript.
#[derive(Clone)]
pub struct Runner {
    mode: Mode,
    transcript: Arc<Mutex<Vec<Cmd>>>,
    observer: Option<Arc<ObserveFn>>,
}

impl Runner {
    pub fn real() -> Self {
        Runner {
            mode: Mode::Real,
            transcript: Arc::default(),
            observer: None,
        }
    }

    pub fn dry_run() -> Self {
        Runner {
            mode: Mode::DryRun,
            transcript: Arc::default(),
            observer: None,
        }
    }

    /// A runner that answers every command with `answer` and spawns nothing.
    pub fn fake(answer: impl Fn(&Cmd) -> Result<Output> + Send + Sync + 'static) -> Self {
        Runner {
            mode: Mode::Fake(Arc::new(answer)),
            transcript: Arc::default(),
            observer: None,
        }
    }

    /// Calls `observe` for every command before it runs (dry-run transcript, `--json` events).
    #[must_use]
    pub fn observe(mut self, observe: impl Fn(&Cmd) + Send + Sync + 'static) -> Self {
        self.observer = Some(Arc::new(observe));
        self
    }

    pub fn is_dry_run(&self) -> bool {
        matches!(self.mode, Mode::DryRun)
    }

    /// Whether the network is really touched (false for dry and fake runners).
    pub fn is_real(&self) -> bool {
        matches!(self.mode, Mode::Real)
    }

    /// Every command run (or that would have run) so far, in order.
    pub fn transcript(&self) -> Vec<Cmd> {
        self.transcript
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default()
    }

    /// Runs `cmd` to completion. A non-zero exit is an error ([`ProcessError`]) that carries the
    /// tail of the log; use [`Runner::status`] when the exit code is the answer.
    pub async fn run(&self, cmd: &Cmd) -> Result<Output> {
        let output = self.status(cmd).await?;
        match output.code {
            Some(0) => Ok(output),
            code => Err(ProcessError {
                command: cmd.display_line(),
                code,
                tail: log_path(cmd)
                    .map_or_else(String::new, |log| printed::tail(log, &secrets_of(cmd))),
                log: log_path(cmd).map(Path::to_path_buf),
            }
            .into()),
        }
    }

    /// Runs `cmd` and returns its exit code, whatever it is.
    pub async fn status(&self, cmd: &Cmd) -> Result<Output> {
        tracing::debug!("$ {cmd}");
        if let Ok(mut transcript) = self.transcript.lock() {
            transcript.push(cmd.clone());
        }
        if let Some(observe) = &self.observer {
            observe(cmd);
        }
        match &self.mode {
            Mode::DryRun => Ok(Output {
                code: Some(0),
                stdout: cmd.dry_run_stdout.clone().unwrap_or_default(),
            }),
            Mode::Fake(answer) => answer(cmd),
            Mode::Real => spawn(cmd).await,
        }
    }
}

fn log_path(cmd: &Cmd) -> Option<&Path> {
    match &cmd.io {
        Io::Log(path) | Io::Capture(path) => Some(path),
        Io::Inherit | Io::Stdout | Io::Answer => None,
    }
}

#[expect(
    clippy::disallowed_methods,
    reason = "the runner is the one place that spawns processes"
)]
async fn spawn(cmd: &Cmd) -> Result<Output> {
    let mut command = tokio::process::Command::new(&cmd.program);
    command.args(&cmd.args);
    for (key, value) in &cmd.env {
        let (EnvValue::Plain(v) | EnvValue::Secret(v)) = value;
        command.env(key, OsString::from(v));
    }
    if let Some(dir) = &cmd.cwd {
        command.current_dir(dir);
    }
    match &cmd.io {
        Io::Inherit => {
            command
                .stdin(Stdio::inherit())
                .stdout(Stdio::inherit())
                .stderr(Stdio::inherit());
        }
        Io::Stdout => {
            command
                .stdin(Stdio::inherit())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit());
        }
        Io::Answer => {
            command
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
        }
        Io::Log(path) | Io::Capture(path) => {
            let mut log = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| crate::files::write_failed(path, "open the log file", e))?;
            writeln!(log, "$ {cmd}").ok();
            let err = log.try_clone()?;
            let stdin = if cmd.input.is_some() || cmd.stdin_held {
                Stdio::piped()
            } else {
                Stdio::null()
            };
            command.stdin(stdin).stderr(Stdio::from(err));
            if matches!(cmd.io, Io::Capture(_)) {
                command.stdout(Stdio::piped());
            } else {
                command.stdout(Stdio::from(log));
            }
        }
    }
    // A child whose output goes to a log leads its own process group: the terminal's Ctrl-C does
    // not reach it, the runner passes the signal on exactly once, and a timeout or a stop takes
    // the whole group. A child on the user's terminal shares its foreground group.
    let on_terminal = matches!(cmd.io, Io::Inherit | Io::Stdout)
        && std::io::IsTerminal::is_terminal(&std::io::stdin());
    if !on_terminal {
        command.process_group(0);
    }
    crate::interrupt::check()?;
    let mut child = command.spawn().map_err(|source| {
        anyhow::Error::new(source).context(format!("failed to start `{}`", cmd.program))
    })?;
    let pid = child.id().unwrap_or(0);
    // Beside its log, a child leaves its pid while it runs: if this command is SIGKILLed, the
    // next `up` or `down` of the deployment finds and stops it (`interrupt::stop_orphans`).
    // The registration removes it once the child has ended, even when this wait is dropped.
    let pid_file = log_path(cmd).map(|log| crate::interrupt::pid_file(log, pid));
    if let Some(file) = &pid_file
        && let Err(e) = std::fs::write(
            file,
            format!(
                "{}\n{}\n{}\n",
                cmd.program,
                short_line(cmd),
                std::process::id()
            ),
        )
    {
        tracing::debug!("cannot write {}: {e}", file.display());
    }
    let registered = crate::interrupt::register(pid, short_line(cmd), !on_terminal, pid_file);
    // Held stdin: its write end lives in this frame until the child has ended.
    let _held = if cmd.stdin_held && cmd.input.is_none() {
        child.stdin.take()
    } else {
        None
    };
    if let (Some(mut stdin), Some(EnvValue::Plain(text) | EnvValue::Secret(text))) =
        (child.stdin.take(), cmd.input.clone())
    {
        // A child that does not read its stdin must not block this one: write in the background.
        tokio::spawn(async move {
            let _ = tokio::io::AsyncWriteExt::write_all(&mut stdin, text.as_bytes()).await;
        });
    }
    // Stdout is the command's answer (stderr too with `Io::Answer`): kept up to `CAPTURE_LIMIT`,
    // the rest read and dropped so that the child never blocks on a full pipe.
    let stdout_reader = child.stdout.take().map(capture);
    let stderr_reader = child.stderr.take().map(capture);
    let ended = wait_child(&mut child, pid, !on_terminal, cmd.timeout, &registered).await;
    registered.ended();
    let (mut bytes, mut overflow) = match stdout_reader {
        Some(reader) => reader.await.unwrap_or_default(),
        None => (Vec::new(), false),
    };
    if let Some(reader) = stderr_reader {
        let (more, over) = reader.await.unwrap_or_default();
        bytes.extend(more);
        overflow |= over;
    }
    let mut stdout = String::from_utf8_lossy(&bytes).into_owned();
    redact(cmd, &mut stdout);
    if overflow {
        return Err(ProcessError {
            command: cmd.display_line(),
            code: None,
            tail: format!(
                "it printed more than {} MiB on stdout, where its answer is read; the rest was \
                dropped",
                CAPTURE_LIMIT >> 20
            ),
            log: log_path(cmd).map(Path::to_path_buf),
        }
        .into());
    }
    match ended? {
        Ended::Exited(status) => Ok(Output {
            code: status.code(),
            stdout,
        }),
        Ended::TimedOut(limit) => Err(ProcessError {
            command: cmd.display_line(),
            code: None,
            tail: format!("timed out after {}s", limit.as_secs()),
            log: log_path(cmd).map(Path::to_path_buf),
        }
        .into()),
        Ended::Interrupted(signal) => Err(anyhow::Error::new(crate::error::Interrupted(signal))
            .context(format!("`{}` was stopped", short_line(cmd)))),
    }
}

/// Reads a child's pipe in the background: its first `CAPTURE_LIMIT` bytes, and whether more came
/// (read and dropped, so that the child never blocks on a full pipe).
fn capture<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
    out: R,
) -> tokio::task::JoinHandle<(Vec<u8>, bool)> {
    tokio::spawn(async move {
        let mut bytes = Vec::new();
        let mut kept = tokio::io::AsyncReadExt::take(out, CAPTURE_LIMIT);
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut kept, &mut bytes).await;
        let more = tokio::io::copy(&mut kept.into_inner(), &mut tokio::io::sink())
            .await
            .unwrap_or(0);
        (bytes, more > 0)
    })
}

/// How a child ended.
enum Ended {
    Exited(std::process::ExitStatus),
    TimedOut(Duration),
    Interrupted(crate::interrupt::Signal),
}

/// The program and its first word that is not an option (`tofu apply`, `ansible-playbook`).
fn short_line(cmd: &Cmd) -> String {
    let program = cmd.program.rsplit('/').next().unwrap_or(&cmd.program);
    match cmd.args.iter().find(|a| !a.starts_with('-')) {
        Some(sub) if matches!(program, "tofu" | "terraform" | "wg-quick" | "wg") => {
            format!("{program} {sub}")
        }
        _ => program.to_string(),
    }
}

/// Waits for `child`; on its timeout it is stopped (SIGTERM, then SIGKILL 10 s later, to its
/// group); on a
/// signal to this command it is passed the signal once (unless it shares the terminal and the
/// signal is the terminal's SIGINT) and given [`crate::interrupt::grace`] to stop.
async fn wait_child(
    child: &mut tokio::process::Child,
    pid: u32,
    own_group: bool,
    timeout: Option<Duration>,
    registered: &crate::interrupt::Registered,
) -> Result<Ended> {
    use nix::sys::signal::Signal as Sig;
    let limit = timeout.unwrap_or(Duration::from_secs(u64::from(u32::MAX)));
    let send = |signal: Sig| {
        if own_group {
            crate::interrupt::kill_group(pid, signal);
        } else {
            crate::interrupt::kill_one(pid, signal);
        }
    };
    // After a signal was sent: `wait` for the child to stop, then (if `term`) SIGTERM and
    // `TERM_GRACE` more, then SIGKILL; whatever the child left in its group (a provider plugin,
    // ansible's ssh) goes too.
    let stop =
        async |child: &mut tokio::process::Child, wait: Duration, term: bool| -> Result<()> {
            if tokio::time::timeout(wait, child.wait()).await.is_err() {
                let stopped = term && {
                    send(Sig::SIGTERM);
                    tokio::time::timeout(crate::interrupt::TERM_GRACE, child.wait())
                        .await
                        .is_ok()
                };
                if !stopped {
                    send(Sig::SIGKILL);
                    child.wait().await?;
                }
            }
            if own_group {
                crate::interrupt::kill_group(pid, Sig::SIGKILL);
            }
            Ok(())
        };
    tokio::select! {
        status = child.wait() => return Ok(Ended::Exited(status?)),
        () = tokio::time::sleep(limit) => {}
        signal = crate::interrupt::wait() => {
            if own_group || signal == crate::interrupt::Signal::Terminate {
                send(crate::interrupt::nix_signal(signal));
            }
            registered.signalled();
            stop(child, crate::interrupt::grace(), true).await?;
            return Ok(Ended::Interrupted(signal));
        }
    }
    send(Sig::SIGTERM);
    stop(child, crate::interrupt::TERM_GRACE, false).await?;
    Ok(Ended::TimedOut(limit))
}

/// Replaces the secrets the child was given (its `Secret` environment values) and every secret
/// this command knows ([`crate::secrets`]) wherever the child printed them, in its captured stdout
/// and its log file, before anything is shown, kept in state or read back: the grid provider, for
/// one, prints a mnemonic it rejects.
fn redact(cmd: &Cmd, stdout: &mut String) {
    let secrets = secrets_of(cmd);
    if let Some(clean) = crate::secrets::redact_in(stdout, &secrets) {
        *stdout = clean;
    }
    if let Some(path) = log_path(cmd)
        && let Err(e) = printed::redact_file(path, &secrets)
    {
        tracing::warn!("could not redact {}: {e}", path.display());
    }
}

/// The secrets `cmd` was given (its `Secret` environment values) and every one this command
/// knows ([`crate::secrets`]).
fn secrets_of(cmd: &Cmd) -> Vec<String> {
    crate::secrets::all(cmd.env.values().filter_map(|v| match v {
        EnvValue::Secret(s) => Some(s.as_str()),
        EnvValue::Plain(_) => None,
    }))
}

#[cfg(test)]
mod tests {
    use super::{Cmd, Runner};

    #[test]
    fn display_quotes_only_what_needs_it() {
        let cmd = Cmd::new("ssh").args([
            "-o",
            "BatchMode=yes",
            "root@10.1.0.2",
            "--",
            "echo 'hi there'",
        ]);
        assert_eq!(
            cmd.display_line(),
            r"ssh -o BatchMode=yes root@10.1.0.2 -- 'echo '\''hi there'\'''"
        );
    }

    #[test]
    fn secrets_are_never_displayed() {
        let cmd = Cmd::new("tofu")
            .arg("apply")
            .secret_env("TF_VAR_mnemonic", "word word word");
        assert!(!format!("{cmd}").contains("word"));
        assert!(!format!("{cmd:?}").contains("word word"));
    }

    #[tokio::test]
    async fn dry_run_spawns_nothing_and_records() {
        let runner = Runner::dry_run();
        let out = runner
            .run(&Cmd::new("/nonexistent/tool").dry_run_stdout("{}"))
            .await
            .unwrap();
        assert_eq!(out.stdout, "{}");
        assert_eq!(runner.transcript().len(), 1);
    }

    #[tokio::test]
    async fn an_answer_holds_what_the_tool_printed_on_stdout_then_stderr() {
        // `ssh -V` prints its version on stderr: with `Io::Answer` it is the answer, and nothing
        // reaches the terminal.
        let cmd = Cmd::new("sh")
            .args(["-c", "echo out; echo err >&2"])
            .io(super::Io::Answer);
        let out = Runner::real().status(&cmd).await.unwrap();
        assert_eq!(out.code, Some(0));
        assert_eq!(out.stdout, "out\nerr\n");
    }

    /// A wait dropped while the child runs (a dashboard stopping its tunnel's task) sends it
    /// SIGTERM; once it is gone its pid file is removed: only a SIGKILLed command leaves one.
    #[tokio::test]
    async fn a_dropped_wait_leaves_no_pid_file_once_the_child_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("x.log");
        let cmd = Cmd::new("sleep")
            .args(["30"])
            .io(super::Io::Log(log.clone()));
        let task = tokio::spawn(async move { Runner::real().run(&cmd).await });
        let pid_file = || {
            std::fs::read_dir(dir.path())
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .find(|p| p.extension().is_some_and(|e| e == "pid"))
        };
        let started = std::time::Instant::now();
        let file = loop {
            if let Some(file) = pid_file() {
                break file;
            }
            assert!(started.elapsed().as_secs() < 10, "no pid file was written");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        task.abort();
        let _ = task.await;
        let started = std::time::Instant::now();
        while file.exists() && started.elapsed().as_secs() < 10 {
            crate::interrupt::children_running();
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(!file.exists(), "{} was left", file.display());
    }

    #[tokio::test]
    async fn a_held_stdin_stays_open_while_the_child_runs() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("x.log");
        // Without it, `cat` reads /dev/null and ends at once.
        let cmd = Cmd::new("cat").io(super::Io::Log(log.clone()));
        assert_eq!(Runner::real().run(&cmd).await.unwrap().code, Some(0));
        // Held, `cat` waits on the pipe until it is stopped: here by its timeout.
        let held = cmd
            .timeout(std::time::Duration::from_millis(500))
            .hold_stdin();
        let err = Runner::real().run(&held).await.unwrap_err();
        assert!(format!("{err:#}").contains("timed out"), "{err:#}");
    }

    #[tokio::test]
    async fn a_timeout_takes_the_whole_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("grandchild.pid");
        let script = format!("sleep 30 & echo $! > {}; wait", pid_file.display());
        let cmd = Cmd::new("sh")
            .args(["-c", &script])
            .io(super::Io::Log(dir.path().join("x.log")))
            .timeout(std::time::Duration::from_millis(500));
        let err = Runner::real().run(&cmd).await.unwrap_err();
        assert!(format!("{err:#}").contains("timed out"), "{err:#}");
        let pid = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .to_string();
        std::thread::sleep(std::time::Duration::from_millis(200));
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .next()
            .unwrap_or("gone");
        assert!(
            state == "gone" || state == "Z",
            "the child's own child outlived the timeout: state {state}"
        );
    }

    #[tokio::test]
    async fn real_failure_carries_code_and_log_tail() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("x.log");
        let cmd = Cmd::new("sh")
            .args(["-c", "echo boom >&2; exit 3"])
            .io(super::Io::Log(log));
        let err = Runner::real().run(&cmd).await.unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("exited with status 3"), "{text}");
        assert!(text.contains("boom"), "{text}");
    }
}
