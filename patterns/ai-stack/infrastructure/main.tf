# ai-stack: gateway (public IPv4), agent and git VMs on one private network with WireGuard access.
terraform {
  required_providers {
    grid = {
      source  = "threefoldtech/grid"
      version = ">= 1.11.0, < 2.0.0"
    }
  }
}

# No mnemonic argument: v1.11.2-dev renamed it from `mnemonics` to `mnemonic`, so either spelling
# breaks on one side of the version range. Left out, the provider reads its environment (MNEMONIC
# on newer releases, MNEMONICS on v1.11.0/1; tfgrid-compose exports both), and this file stays
# valid for every release in the range.
provider "grid" {
  network = var.tfgrid_network
}

locals {
  # Grid names: at most 16 characters of the app name, then the 16 hex digits of the deployment
  # id (<= 32 characters of [a-z0-9]), plus suffixes of at most 4 (zos nodes accept 36).
  name         = "${substr(replace(lower(var.deployment_name), "/[^a-z0-9]/", ""), 0, 16)}${var.deployment_id}"
  octet        = split(".", var.ip_range)[1]
  gateway_node = var.gateway_node_id
  work_node    = var.node_id
  gateway      = grid_deployment.gateway.vms[0]
  agent        = grid_deployment.work.vms[0]
  git          = grid_deployment.work.vms[1]
}

resource "grid_network" "net" {
  name          = local.name
  nodes         = distinct([local.gateway_node, local.work_node])
  ip_range      = var.ip_range
  add_wg_access = true
}

resource "grid_deployment" "gateway" {
  name         = "${local.name}gw"
  node         = local.gateway_node
  network_name = grid_network.net.name
  vms {
    name        = "gateway"
    flist       = "https://hub.grid.tf/tf-official-vms/ubuntu-24.04-full.flist"
    cpu         = var.gateway_cpu
    memory      = var.gateway_memory
    rootfs_size = var.gateway_disk * 1024
    entrypoint  = "/sbin/zinit init"
    publicip    = true
    env_vars = {
      SSH_KEY = var.ssh_public_key
    }
  }
}

resource "grid_deployment" "work" {
  name         = "${local.name}wk"
  node         = local.work_node
  network_name = grid_network.net.name
  vms {
    name        = "agent"
    flist       = "https://hub.grid.tf/tf-official-vms/ubuntu-24.04-full.flist"
    cpu         = var.agent_cpu
    memory      = var.agent_memory
    rootfs_size = var.agent_disk * 1024
    entrypoint  = "/sbin/zinit init"
    env_vars = {
      SSH_KEY = var.ssh_public_key
    }
  }
  vms {
    name        = "git"
    flist       = "https://hub.grid.tf/tf-official-vms/ubuntu-24.04-full.flist"
    cpu         = var.git_cpu
    memory      = var.git_memory
    rootfs_size = var.git_disk * 1024
    entrypoint  = "/sbin/zinit init"
    env_vars = {
      SSH_KEY = var.ssh_public_key
    }
  }
}
