# gateway: one gateway VM with a public IPv4 in front of backend_count backends, all on one
# private network with WireGuard access.
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
  backend_node = var.backend_node_id > 0 ? var.backend_node_id : grid_scheduler.sched[0].nodes["backends"]
  gateway      = grid_deployment.gateway.vms[0]
  backends     = grid_deployment.backends.vms
}

resource "grid_scheduler" "sched" {
  count = var.gateway_node_id > 0 && var.backend_node_id > 0 ? 0 : 1
  requests {
    name             = "gateway"
    cru              = var.gateway_cpu
    mru              = var.gateway_mem
    sru              = 20 * 1024
    public_ips_count = 1
    farm_id          = var.farm_id
    node_exclude     = var.exclude_nodes
  }
  requests {
    name         = "backends"
    cru          = var.backend_cpu * var.backend_count
    mru          = var.backend_mem * var.backend_count
    sru          = var.backend_disk * 1024 * var.backend_count
    farm_id      = var.farm_id
    node_exclude = var.exclude_nodes
  }
}

resource "grid_network" "net" {
  name          = local.name
  nodes         = distinct([local.gateway_node, local.backend_node])
  ip_range      = "10.30.0.0/16"
  add_wg_access = true
}

resource "grid_deployment" "gateway" {
  name         = "${local.name}gw"
  node         = local.gateway_node
  network_name = grid_network.net.name
  vms {
    name        = "gateway"
    flist       = var.flist
    cpu         = var.gateway_cpu
    memory      = var.gateway_mem
    rootfs_size = 20 * 1024
    entrypoint  = "/sbin/zinit init"
    publicip    = true
    env_vars = {
      SSH_KEY = var.ssh_public_key
    }
  }
}

resource "grid_deployment" "backends" {
  name         = "${local.name}be"
  node         = local.backend_node
  network_name = grid_network.net.name
  dynamic "vms" {
    for_each = range(var.backend_count)
    content {
      name        = "backend${vms.value + 1}"
      flist       = var.flist
      cpu         = var.backend_cpu
      memory      = var.backend_mem
      rootfs_size = var.backend_disk * 1024
      entrypoint  = "/sbin/zinit init"
      env_vars = {
        SSH_KEY = var.ssh_public_key
      }
    }
  }
}
