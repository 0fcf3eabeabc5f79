//! tfgrid-compose: deploy an app onto a pattern's VMs with one command.
//!
//! Code map. Phases of `up` (in order) → modules:
//! - validate → `ops::up::validate` (`manifest`, `settings`, `ssh_key`)
//! - infrastructure → `phase::infrastructure` (`tools::tofu`, `pattern::contract`)
//! - network → `phase::network` (`tools::wg`)
//! - wait-ssh → `phase::wait_ssh` (`tools::ssh`)
//! - platform → `phase::platform` (`tools::ansible`)
//! - application → `phase::application` (`tools::ssh`; an AI stack: `phase::ai_stack`)
//! - verify, finalize → `phase::verify`
//!
//! Files on disk → modules: `tfgrid-compose.yaml` → `manifest`, `pattern.yaml` → `pattern`; the
//! app folder's layout (`deployment/`, `src/`, …, and where each lands on the VM) → `app_folder`;
//! the app's env file → `env_file`;
//! every path under `.tfgrid-compose/<env>/` (`state.yaml`, `lock`, `context.yaml`, `terraform/`,
//! `wg/`, `logs/<run>/`, `ssh/`, `ai-stack/`) is named by `state::StateDir` and written through `files`;
//! what a deployment costs (pricing, plans, the estimate) → `cost`;
//! the registry of deployments (`~/.local/share/tfgrid-compose/deployments/`) → `registry`; the
//! app registry's copy and app repositories (`~/.cache/tfgrid-compose/`) → `catalog`; the
//! config file → `settings`; a CI event's payload (`GITHUB_EVENT_PATH`) → `ci_event`;
//! `.tfgrid-compose.yaml` (selection) → `ops`; child output in
//! `logs/<run>/<phase>.log` → `process`.
//!
//! Only `process::Runner` spawns processes; only `output::Printer` writes to the terminal.

pub mod ai;
pub mod app_env;
pub mod app_folder;
pub mod catalog;
pub mod ci_event;
pub mod cli;
pub mod clock;
pub mod cost;
pub mod credentials;
pub mod dashboard;
pub mod env;
pub mod env_file;
pub mod error;
pub mod files;
pub mod grid;
pub mod host;
pub mod ids;
pub mod interrupt;
pub mod manifest;
pub mod ops;
pub mod output;
pub mod pattern;
pub mod phase;
pub mod process;
pub mod registry;
pub mod secrets;
pub mod settings;
pub mod sim;
pub mod ssh_key;
pub mod stack;
pub mod state;
pub mod tools;
pub mod yaml;
