# k3s: a management node (the primary: kubectl, helm, the kubeconfig), control-plane node(s) and
# workers on one private network with WireGuard access.
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
  cluster_node = var.node_id > 0 ? var.node_id : grid_scheduler.sched[0].nodes["cluster"]
  vms          = grid_deployment.cluster.vms
  management   = local.vms[0]
  controls     = slice(local.vms, 1, 1 + var.control_count)
  workers      = slice(local.vms, 1 + var.control_count, length(local.vms))
}

resource "grid_scheduler" "sched" {
  count = var.node_id > 0 ? 0 : 1
  requests {
    name         = "cluster"
    cru          = 1 + var.control_cpu * var.control_count + var.worker_cpu * var.worker_count
    mru          = 2048 + var.control_mem * var.control_count + var.worker_mem * var.worker_count
    sru          = (20 + 50 * var.control_count + var.worker_disk * var.worker_count) * 1024
    farm_id      = var.farm_id
    node_exclude = var.exclude_nodes
  }
}

resource "grid_network" "net" {
  name          = local.name
  nodes         = [local.cluster_node]
  ip_range      = "10.40.0.0/16"
  add_wg_access = true
}

resource "grid_deployment" "cluster" {
  name         = local.name
  node         = local.cluster_node
  network_name = grid_network.net.name
  vms {
    name        = "management"
    flist       = var.flist
    cpu         = 1
    memory      = 2048
    rootfs_size = 20 * 1024
    entrypoint  = "/sbin/zinit init"
    env_vars = {
      SSH_KEY = var.ssh_public_key
    }
  }
  dynamic "vms" {
    for_each = range(var.control_count)
    content {
      name        = "control${vms.value + 1}"
      flist       = var.flist
      cpu         = var.control_cpu
      memory      = var.control_mem
      rootfs_size = 50 * 1024
      entrypoint  = "/sbin/zinit init"
      env_vars = {
        SSH_KEY = var.ssh_public_key
      }
    }
  }
  dynamic "vms" {
    for_each = range(var.worker_count)
    content {
      name        = "worker${vms.value + 1}"
      flist       = var.flist
      cpu         = var.worker_cpu
      memory      = var.worker_mem
      rootfs_size = var.worker_disk * 1024
      entrypoint  = "/sbin/zinit init"
      env_vars = {
        SSH_KEY = var.ssh_public_key
      }
    }
  }
}
