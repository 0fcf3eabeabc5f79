//! The one integration-test binary: flow tests with fake tools on PATH (`flow`, `bad_input`) and
//! end-to-end tests of the `local` pattern with the real tools (`local`).

mod bad_input;
mod common;
mod flow;
mod local;
