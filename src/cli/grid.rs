//! The grid: `nodes`, `farms`, `contracts`, `signin`, and the simulator's `sim` commands.

use anyhow::Result;
use clap::{Args, Subcommand};

use super::Ctx;
use crate::ops;

#[derive(Debug, Args)]
pub struct NodesArgs {
    /// Show this node instead of listing candidates.
    pub node: Option<u64>,
    /// vCPUs the node must have.
    #[arg(long, default_value_t = 1)]
    pub cpu: u64,
    /// Free memory, in MB.
    #[arg(long, default_value_t = 1024)]
    pub memory: u64,
    /// Free SSD, in GB.
    #[arg(long, default_value_t = 10)]
    pub disk: u64,
    /// The node's farm must have a free public IPv4.
    #[arg(long)]
    pub ipv4: bool,
    /// The node must have a GPU; rented nodes are listed too, with who rents them (a GPU serves
    /// only VMs of the twin that rents its node).
    #[arg(long)]
    pub gpu: bool,
    /// Show at most this many.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    #[command(flatten)]
    pub filter: crate::grid::select::NodeFilter,
}

#[derive(Debug, Args)]
pub struct FarmsArgs {
    /// Only farms whose name contains this (case-insensitive).
    #[arg(long)]
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct SigninArgs {
    /// Check the mnemonic that would be used (and where it comes from) instead of storing one.
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Args)]
pub struct ContractsArgs {
    /// The twin whose contracts to list on a real network (the simulator knows the signed-in twin).
    #[arg(long)]
    pub twin: Option<u32>,
}

#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Print the path of a Terraform CLI config that installs the simulator as threefoldtech/grid
    /// (use it as TF_CLI_CONFIG_FILE).
    TerraformConfig,
    /// Nodes, networks, VMs and contracts of the simulated grid.
    Status,
    /// Cancel every contract, remove every VM and access point, start a new grid.
    Reset,
    /// Move the simulated clock on and bill every running contract for the hours (compressed
    /// time: a month is `--hours 720`).
    Advance {
        /// Hours to move on.
        #[arg(long)]
        hours: u64,
    },
    /// Rent a whole node for the signed-in twin (a rent contract), as GPUs need; `--cancel`
    /// ends the rent once no deployment is on the node.
    Rent {
        /// The node's id.
        node: u32,
        /// End the rent instead.
        #[arg(long)]
        cancel: bool,
    },
    /// Serve the simulated Terraform provider (started by Terraform).
    #[command(hide = true)]
    Provider {
        /// The simulator's folder.
        #[arg(long)]
        sim_dir: std::path::PathBuf,
    },
}

impl NodesArgs {
    pub(super) async fn run(self, cx: &Ctx<'_>) -> Result<()> {
        let request = crate::grid::select::Request {
            cpu: self.cpu,
            memory_mb: self.memory,
            ssd_gb: self.disk,
            hdd_gb: 0,
            public_ipv4: self.ipv4,
            gpu: self.gpu,
        };
        let (node, filter, limit) = (self.node, &self.filter, self.limit);
        ops::grid::nodes(
            cx.printer,
            cx.settings,
            node,
            &request,
            filter,
            limit,
            cx.json,
        )
        .await
    }
}

impl SimCommand {
    pub(super) async fn run(self, cx: &Ctx<'_>) -> Result<()> {
        match self {
            SimCommand::TerraformConfig => {
                ops::sim::terraform_config(cx.printer, cx.settings, cx.json)
            }
            SimCommand::Status => ops::sim::status(cx.printer, cx.settings, cx.json),
            SimCommand::Reset => ops::sim::reset(cx.printer, cx.settings, cx.json).await,
            SimCommand::Advance { hours } => {
                ops::cost::sim_advance(cx.printer, cx.settings, hours, cx.json)
            }
            SimCommand::Rent { node, cancel } => {
                ops::sim::rent(cx.printer, cx.settings, node, cancel, cx.json)
            }
            SimCommand::Provider { sim_dir } => ops::sim::provider(cx.printer, sim_dir).await,
        }
    }
}
