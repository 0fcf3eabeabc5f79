//! `config show`, `completions` and `man`.

use anyhow::Result;
use clap::{Args, CommandFactory as _, Subcommand};

use super::Cli;
use crate::output::Printer;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print every setting, its value and where it came from (flag, env, config file, default).
    Show,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

impl CompletionsArgs {
    pub(super) fn run(&self, printer: &Printer) {
        let mut out = Vec::new();
        clap_complete::generate(self.shell, &mut Cli::command(), "tfgrid-compose", &mut out);
        printer.raw(&out);
    }
}

/// `man`: the man page (roff), from the clap definition.
pub(super) fn man(printer: &Printer) -> Result<()> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut out)?;
    printer.raw(&out);
    Ok(())
}
