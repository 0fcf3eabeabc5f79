# single-vm: one VM on the ThreeFold Grid behind a WireGuard access network.
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
  name      = substr(replace(lower("${var.deployment_name}${var.deployment_id}"), "/[^a-z0-9]/", ""), 0, 30)
  node      = var.node_id > 0 ? var.node_id : grid_scheduler.sched[0].nodes["vm"]
  seed      = sha256("${var.deployment_id}-vm")
  vm        = grid_deployment.vm.vms[0]
  ipv4      = var.public_ipv4 ? split("/", local.vm.computedip)[0] : ""
  ipv6      = var.public_ipv6 ? split("/", local.vm.computedip6)[0] : ""
  mycelium  = var.mycelium ? local.vm.mycelium_ip : ""
  addresses = { wireguard = local.vm.ip, mycelium = local.mycelium, ipv4 = local.ipv4, ipv6 = local.ipv6 }
  chosen    = local.addresses[var.prefer] != "" ? var.prefer : "wireguard"
}

resource "grid_scheduler" "sched" {
  count = var.node_id > 0 ? 0 : 1
  requests {
    name             = "vm"
    cru              = var.vm_cpu
    mru              = var.vm_mem
    sru              = var.vm_disk * 1024
    public_ips_count = var.public_ipv4 ? 1 : 0
    farm_id          = var.farm_id
    node_exclude     = var.exclude_nodes
  }
}

resource "grid_network" "net" {
  name          = local.name
  nodes         = [local.node]
  ip_range      = "10.20.0.0/16"
  add_wg_access = true
  mycelium_keys = var.mycelium ? { (tostring(local.node)) = substr(sha256("${var.deployment_id}-net"), 0, 64) } : {}
}

resource "grid_deployment" "vm" {
  name         = local.name
  node         = local.node
  network_name = grid_network.net.name
  vms {
    name             = "vm"
    flist            = var.flist
    cpu              = var.vm_cpu
    memory           = var.vm_mem
    rootfs_size      = var.vm_disk * 1024
    entrypoint       = "/sbin/zinit init"
    publicip         = var.public_ipv4
    publicip6        = var.public_ipv6
    mycelium_ip_seed = var.mycelium ? substr(local.seed, 0, 12) : null
    env_vars = {
      SSH_KEY = var.ssh_public_key
    }
  }
}
