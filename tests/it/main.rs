//! The one integration-test binary: flow tests with fake tools on PATH (`flow`, `bad_input`),
//! many deployments and the CLI surface (`deployments`, `cli`), the `--json` schema checker
//! (`schema`), patterns written for the bash tool (`bash_patterns`), end-to-end tests of the
//! `local` pattern with the real tools (`local`), and Terraform code written elsewhere on the
//! grid simulator (`fidelity`).

#![allow(
    clippy::disallowed_methods,
    reason = "the tests start the binary, servers and tools themselves; the rule is for the product"
)]

mod ai;
mod bad_input;
mod bash_apps;
mod bash_patterns;
mod catalog;
mod cli;
mod codemap;
mod common;
mod cost;
mod dashboard;
mod deployments;
mod fidelity;
mod flow;
mod fuzz;
mod grid;
mod hardening;
mod interrupt;
mod layers;
mod local;
mod monitoring;
mod nodes;
mod pr;
mod recovery;
mod schema;
mod sim;
mod sim_nodes;
mod units;
mod world;
