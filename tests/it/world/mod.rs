//! The world as users have it: inputs and conditions the tidy tests never meet, each class either
//! working or refused before anything is created or destroyed. One module per class:
//! `identity` (a deployment id leads to exactly that deployment), `paths` (folders with spaces,
//! quotes, non-ASCII letters, a leading `-`; keys with a passphrase), `grid_errors` (errors no node
//! can fix; secrets and addresses whatever the pattern declares; the `--json` stream), `io` (env
//! files, full disks and read-only folders, clocks, what tools print). docs/reliability.md lists
//! each class with its test.

mod grid_errors;
mod identity;
mod io;
mod paths;
