//! The one integration-test binary: flow tests with fake tools on PATH (`flow`, `bad_input`) and
//! end-to-end tests of the `local` pattern with the real tools (`local`).

mod common;
mod bad_input;
mod flow;
mod local;
