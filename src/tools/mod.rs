//! Pure argv builders for the external tools: each function returns a [`crate::process::Cmd`]
//! and spawns nothing. `ssh::remote_command` is the one function that quotes for a remote shell.

pub mod ansible;
pub mod ssh;
pub mod tofu;
pub mod wg;
