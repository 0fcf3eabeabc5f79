# k3s: a management node (the primary: kubectl, helm, the kubeconfig), control-plane node(s) and
# workers on one private network with WireGuard access.
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
  # id (<= 32 characters of [a-z0-9]; zos nodes accept at most 36).
  name         = "${substr(replace(lower(var.deployment_name), "/[^a-z0-9]/", ""), 0, 16)}${var.deployment_id}"
  octet        = split(".", var.ip_range)[1]
  cluster_node = var.node_id
  vms          = grid_deployment.cluster.vms
  management   = local.vms[0]
  controls     = slice(local.vms, 1, 1 + var.control_count)
  workers      = slice(local.vms, 1 + var.control_count, length(local.vms))
  # MetalLB's addresses must be routed to the VMs: hosts .200-.250 of the cluster node's /24,
  # unless metallb_range is set. VMs take the lowest free hosts from .2 up.
  node_subnet   = grid_network.net.nodes_ip_range[tostring(local.cluster_node)]
  metallb_range = var.metallb_range != "" ? var.metallb_range : "${cidrhost(local.node_subnet, 200)}-${cidrhost(local.node_subnet, 250)}"
}

resource "grid_network" "net" {
  name          = local.name
  nodes         = [local.cluster_node]
  ip_range      = var.ip_range
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
