//! Pure argv builders for the external tools: each function returns a [`crate::process::Cmd`]
//! and spawns nothing. `ssh::remote_command` is the one function that quotes for a remote shell.

pub mod ansible;
pub mod git;
pub mod remote_env;
pub mod ssh;
pub mod tofu;
pub mod wg;

/// Checks that `name` is on PATH; the error says `why` it is needed and how to install it.
///
/// Errors: a [`crate::error::UserError`] (exit code 2).
pub fn require_tool(name: &str, why: &str) -> anyhow::Result<()> {
    which::which(name).map(|_| ()).map_err(|_| {
        crate::error::UserError::new(
            format!("`{name}` is not on PATH ({why})"),
            "install the dependencies with `scripts/install-deps.sh`, or add the tool to PATH",
        )
        .into()
    })
}
