# single-vm: one VM on the ThreeFold Grid behind a WireGuard access network.
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
  name      = "${substr(replace(lower(var.deployment_name), "/[^a-z0-9]/", ""), 0, 16)}${var.deployment_id}"
  node      = var.node_id
  octet     = split(".", var.ip_range)[1]
  seed      = sha256("${var.deployment_id}-vm")
  vm        = grid_deployment.vm.vms[0]
  ipv4      = var.public_ipv4 ? split("/", local.vm.computedip)[0] : ""
  ipv6      = var.public_ipv6 ? split("/", local.vm.computedip6)[0] : ""
  mycelium  = var.mycelium ? local.vm.mycelium_ip : ""
  addresses = { wireguard = local.vm.ip, mycelium = local.mycelium, ipv4 = local.ipv4, ipv6 = local.ipv6 }
  chosen    = local.addresses[var.prefer] != "" ? var.prefer : "wireguard"
}

resource "grid_network" "net" {
  name          = local.name
  nodes         = [local.node]
  ip_range      = var.ip_range
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
