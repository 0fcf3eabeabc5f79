//! The one writer to the terminal. Status lines go to stderr (cargo style: a right-aligned verb),
//! data to stdout, `--json` event lines to stdout, a spinner only when stderr is a terminal.
//! Start from [`Printer`].
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "this module is the printer"
)]

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum ColorChoice {
    #[default]
    Auto,
    Always,
    Never,
}

/// Decides colour once: `--color` wins, then `NO_COLOR`, then `FORCE_COLOR`/`CLICOLOR_FORCE`,
/// then whether stderr is a terminal.
pub fn resolve_color(
    choice: ColorChoice,
    no_color: bool,
    force_color: bool,
    stderr_is_tty: bool,
) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto if no_color => false,
        ColorChoice::Auto if force_color => true,
        ColorChoice::Auto => stderr_is_tty,
    }
}

/// One `--json` event line.
#[derive(Debug, Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum Event<'a> {
    PhaseStarted {
        phase: &'a str,
    },
    PhaseFinished {
        phase: &'a str,
        duration_ms: u64,
        ok: bool,
    },
    PhaseSkipped {
        phase: &'a str,
    },
    Command {
        program: &'a str,
        args: &'a [String],
    },
    /// The last event of every `up` (and of a `down` that destroyed): `status` is the
    /// deployment's (`running`, `failed`, `interrupted`, `destroyed`) or `refused` when the input
    /// was refused before a deployment existed; `id` is null then.
    DeploymentFinished {
        command: &'a str,
        status: &'a str,
        id: Option<&'a str>,
        outputs: Option<&'a serde_json::Value>,
    },
    /// SIGINT or SIGTERM arrived (`first`: the one that stops the command); `waiting_for` lists
    /// the children still stopping.
    Interrupt {
        signal: &'a str,
        first: bool,
        waiting_for: Vec<Waiting>,
    },
}

#[derive(Debug)]
struct Inner {
    color: bool,
    quiet: bool,
    json: bool,
    progress: bool,
    /// False for a command run inside another whose stdout is the outer one's alone (`pr`).
    stdout: bool,
}

/// Cheap to clone; all clones write to the same streams.
#[derive(Debug, Clone)]
pub struct Printer {
    inner: Arc<Inner>,
}

/// The plural ending of a count's noun: `""` for one, `"s"` otherwise, as in
/// `format!("{n} project{}", plural(n))`.
pub fn plural<N: PartialEq + From<u8>>(n: N) -> &'static str {
    if n == N::from(1) { "" } else { "s" }
}

/// A text table: each column as wide as its widest cell, two spaces between columns, trailing
/// blanks trimmed; the header, then one line per row.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut table = String::new();
    let mut push = |cells: &mut dyn Iterator<Item = &str>| {
        let line = cells
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ");
        table.push_str(line.trim_end());
        table.push('\n');
    };
    push(&mut header.iter().copied());
    for row in rows {
        push(&mut row.iter().map(String::as_str));
    }
    table
}

impl Printer {
    pub fn new(color: bool, quiet: bool, json: bool, verbose: bool) -> Printer {
        let stderr_tty = std::io::stderr().is_terminal();
        let progress = stderr_tty && !quiet && !json && !verbose;
        Printer {
            inner: Arc::new(Inner {
                color,
                quiet,
                json,
                progress,
                stdout: true,
            }),
        }
    }

    /// The same printer for a command run inside another (`up` inside `pr`): stderr as before,
    /// nothing on stdout (no data lines, no `--json` events), which the outer command owns.
    pub fn without_stdout(&self) -> Printer {
        let inner = &self.inner;
        Printer {
            inner: Arc::new(Inner {
                color: inner.color,
                quiet: inner.quiet,
                json: inner.json,
                progress: inner.progress,
                stdout: false,
            }),
        }
    }

    pub fn json(&self) -> bool {
        self.inner.json
    }

    /// `--quiet`: only errors (no status lines, no warnings).
    pub fn quiet(&self) -> bool {
        self.inner.quiet
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.inner.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// `   Verb message` on stderr, the verb right-aligned to 12 columns.
    pub fn status(&self, verb: &str, message: impl AsRef<str>) {
        if self.inner.quiet || self.inner.json {
            return;
        }
        let verb = self.paint("1;32", &format!("{verb:>12}"));
        eprintln!("{verb} {}", message.as_ref());
    }

    pub fn warn(&self, message: impl AsRef<str>) {
        if self.inner.quiet {
            return;
        }
        eprintln!(
            "{}: {}",
            self.paint("1;33", "warning"),
            crate::secrets::redact(message.as_ref())
        );
    }

    /// `error: …`, `  Caused by: …` per cause, then `hint: …` lines after a blank line.
    pub fn error(&self, err: &anyhow::Error, hints: &[String]) {
        let mut chain = err.chain();
        let head =
            crate::secrets::redact(&chain.next().map(ToString::to_string).unwrap_or_default());
        let mut text = format!("{}: {head}\n", self.paint("1;31", "error"));
        for cause in chain {
            let cause = crate::secrets::redact(&cause.to_string());
            let mut lines = cause.lines();
            if let Some(first) = lines.next() {
                text.push_str(&format!("  Caused by: {first}\n"));
            }
            for line in lines {
                text.push_str(&format!("    {line}\n"));
            }
        }
        if !hints.is_empty() {
            text.push('\n');
            for hint in hints {
                text.push_str(&format!("{}: {hint}\n", self.paint("1;36", "hint")));
            }
        }
        let _ = std::io::stderr().write_all(text.as_bytes());
    }

    /// A line of data on stdout (not in `--json` mode, where events carry the data).
    /// A reader that went away (`| head -1`) is not an error of this command: nothing panics.
    pub fn data(&self, line: impl AsRef<str>) {
        if !self.inner.stdout {
            return;
        }
        let _ = writeln!(std::io::stdout().lock(), "{}", line.as_ref());
    }

    /// Bytes on stdout as they are (completion scripts, the man page).
    pub fn raw(&self, bytes: &[u8]) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(bytes);
        let _ = out.flush();
    }

    /// A JSON document or event line on stdout.
    pub fn json_line<T: Serialize>(&self, value: &T) {
        if !self.inner.stdout {
            return;
        }
        if let Ok(text) = serde_json::to_string(value) {
            let _ = writeln!(std::io::stdout().lock(), "{text}");
        }
    }

    pub fn event(&self, event: &Event<'_>) {
        if self.inner.json {
            self.json_line(event);
        }
    }

    /// A spinner for a running phase that shows the last line of its log; `None` when progress is
    /// not shown (not a terminal, `-q`, `-v`, `--json`).
    pub fn spinner(&self, message: &str, log: Option<&Path>) -> Option<Spinner> {
        if !self.inner.progress {
            return None;
        }
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner:.green} {prefix} {elapsed} {wide_msg:.dim}")
                .ok()?,
        );
        bar.set_prefix(message.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        let tail = log.map(Path::to_path_buf).map(|log| {
            let bar = bar.clone();
            tokio::spawn(async move { tail_into(bar, log).await })
        });
        Some(Spinner { bar, tail })
    }
}

async fn tail_into(bar: ProgressBar, log: PathBuf) {
    loop {
        if let Ok(text) = tokio::fs::read_to_string(&log).await
            && let Some(line) = text.lines().rev().find(|l| !l.trim().is_empty())
        {
            bar.set_message(line.trim().chars().take(120).collect::<String>());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A running spinner; cleared when dropped.
pub struct Spinner {
    bar: ProgressBar,
    tail: Option<tokio::task::JoinHandle<()>>,
}

impl Spinner {
    /// Replaces the text after the elapsed time.
    pub fn set_message(&self, message: impl Into<String>) {
        self.bar.set_message(message.into());
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        if let Some(tail) = self.tail.take() {
            tail.abort();
        }
        self.bar.finish_and_clear();
    }
}

/// One child still running, as the `interrupt` event lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Waiting {
    /// `tofu apply`, `ansible-playbook`, `ssh`.
    pub what: String,
    pub pid: u32,
    /// Seconds left before it is stopped by force (SIGTERM, then SIGKILL), once the signal was
    /// passed on to it.
    pub force_in_s: Option<u64>,
}

impl std::fmt::Display for Waiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.force_in_s {
            Some(s) => write!(
                f,
                "`{}` (pid {}, forced after {} s if it has not ended)",
                self.what, self.pid, s
            ),
            None => write!(f, "`{}` (pid {})", self.what, self.pid),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ColorChoice, Waiting, resolve_color};

    #[test]
    fn a_waiting_child_names_a_deadline_not_a_delay() {
        let waiting = Waiting {
            what: "ssh".into(),
            pid: 17742,
            force_in_s: Some(119),
        };
        assert_eq!(
            waiting.to_string(),
            "`ssh` (pid 17742, forced after 119 s if it has not ended)"
        );
    }

    #[test]
    fn color_policy() {
        assert!(
            !resolve_color(ColorChoice::Auto, true, true, true),
            "NO_COLOR wins over a terminal"
        );
        assert!(
            resolve_color(ColorChoice::Always, true, false, false),
            "--color always wins"
        );
        assert!(!resolve_color(ColorChoice::Never, false, true, true));
        assert!(
            resolve_color(ColorChoice::Auto, false, true, false),
            "FORCE_COLOR without a terminal"
        );
        assert!(!resolve_color(ColorChoice::Auto, false, false, false));
    }
}
