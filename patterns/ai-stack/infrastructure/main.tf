# ai-stack: gateway (public IPv4), agent and git VMs on one private network with WireGuard access.
terraform {
  required_providers {
    grid = {
      source  = "threefoldtech/grid"
      version = ">= 1.11.0"
    }
  }
}

provider "grid" {
  mnemonic = var.mnemonic
  network  = var.tfgrid_network
}

locals {
  name         = substr(replace(lower("${var.deployment_name}${var.deployment_id}"), "/[^a-z0-9]/", ""), 0, 30)
  gateway_node = var.gateway_node_id > 0 ? var.gateway_node_id : grid_scheduler.sched[0].nodes["gateway"]
  work_node    = var.node_id > 0 ? var.node_id : grid_scheduler.sched[0].nodes["work"]
  gateway      = grid_deployment.gateway.vms[0]
  agent        = grid_deployment.work.vms[0]
  git          = grid_deployment.work.vms[1]
}

resource "grid_scheduler" "sched" {
  count = var.node_id > 0 && var.gateway_node_id > 0 ? 0 : 1
  requests {
    name             = "gateway"
    cru              = var.gateway_cpu
    mru              = var.gateway_memory
    sru              = var.gateway_disk * 1024
    public_ips_count = 1
    farm_id          = var.farm_id
    node_exclude     = var.exclude_nodes
  }
  requests {
    name         = "work"
    cru          = var.agent_cpu + var.git_cpu
    mru          = var.agent_memory + var.git_memory
    sru          = (var.agent_disk + var.git_disk) * 1024
    farm_id      = var.farm_id
    node_exclude = var.exclude_nodes
  }
}

resource "grid_network" "net" {
  name          = local.name
  nodes         = distinct([local.gateway_node, local.work_node])
  ip_range      = var.private_network
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
