# The `local` pattern: VMs on this machine, created and destroyed by vm.sh through terraform_data
# provisioners only, so `init` downloads nothing. See ../README.md.

terraform {
  required_version = ">= 1.4"
}

variable "deployment_name" {
  type = string
}

variable "deployment_id" {
  type = string
  validation {
    condition     = can(regex("^[0-9a-f]{8,}$", var.deployment_id))
    error_message = "deployment_id: at least 8 lowercase hex digits."
  }
}

variable "ssh_public_key" {
  type = string
}

variable "vm_count" {
  type    = number
  default = 1
  validation {
    condition     = var.vm_count >= 1 && var.vm_count <= 16
    error_message = "vm_count: 1 to 16."
  }
}

variable "vm_root" {
  type    = string
  default = "/mnt/tfgrid-compose-local"
}

locals {
  script = abspath("${path.module}/vm.sh")
  id     = substr(var.deployment_id, 0, 8)
}

# The deployment's network: an address block 10.X.0.0/16 allocated on this machine, the private
# LAN its VMs share, and the host's WireGuard key.
resource "terraform_data" "network" {
  triggers_replace = {
    id     = local.id
    root   = var.vm_root
    script = local.script
  }
  input = {
    dir = "${var.vm_root}/${local.id}"
  }

  provisioner "local-exec" {
    command = "\"$VM_SCRIPT\" net-up \"$VM_ID\" \"$VM_ROOT\""
    environment = {
      VM_SCRIPT = self.triggers_replace.script
      VM_ID     = self.triggers_replace.id
      VM_ROOT   = self.triggers_replace.root
    }
  }

  provisioner "local-exec" {
    when    = destroy
    command = "\"$VM_SCRIPT\" net-down \"$VM_ID\" \"$VM_ROOT\""
    environment = {
      VM_SCRIPT = self.triggers_replace.script
      VM_ID     = self.triggers_replace.id
      VM_ROOT   = self.triggers_replace.root
    }
  }
}

resource "terraform_data" "vm" {
  count      = var.vm_count
  depends_on = [terraform_data.network]

  triggers_replace = {
    id     = local.id
    index  = count.index
    root   = var.vm_root
    script = local.script
    pubkey = var.ssh_public_key
    name   = var.deployment_name
  }
  input = {
    dir = "${terraform_data.network.output.dir}/vm-${count.index}"
  }

  provisioner "local-exec" {
    command = "\"$VM_SCRIPT\" create \"$VM_ID\" \"$VM_ROOT\" \"$VM_INDEX\" \"$VM_NAME\""
    environment = {
      VM_SCRIPT = self.triggers_replace.script
      VM_ID     = self.triggers_replace.id
      VM_ROOT   = self.triggers_replace.root
      VM_INDEX  = self.triggers_replace.index
      VM_NAME   = self.triggers_replace.name
      VM_PUBKEY = self.triggers_replace.pubkey
    }
  }

  provisioner "local-exec" {
    when    = destroy
    command = "\"$VM_SCRIPT\" destroy \"$VM_ID\" \"$VM_ROOT\" \"$VM_INDEX\""
    environment = {
      VM_SCRIPT = self.triggers_replace.script
      VM_ID     = self.triggers_replace.id
      VM_ROOT   = self.triggers_replace.root
      VM_INDEX  = self.triggers_replace.index
    }
  }
}

locals {
  # Paths built from resource outputs are unknown until apply, so these files are read after the
  # VMs exist (a value fully known at plan time would not be evaluated again).
  net_dir    = terraform_data.network.output.dir
  vm_dirs    = [for vm in terraform_data.vm : vm.output.dir]
  octet_file = "${local.net_dir}/octet"
  octet      = fileexists(local.octet_file) ? trimspace(file(local.octet_file)) : ""
  wg_ips     = [for i in range(var.vm_count) : "10.${local.octet}.${i}.2"]
  peer_files = [for d in local.vm_dirs : "${d}/host-peer.conf"]
  kh_files   = [for d in local.vm_dirs : "${d}/known_hosts"]
  ready      = local.octet != "" && alltrue([for f in concat(local.peer_files, local.kh_files, ["${local.net_dir}/host.key"]) : fileexists(f)])
}

output "primary_ip" {
  value = local.ready ? local.wg_ips[0] : ""
}

output "primary_ip_type" {
  value = "wireguard"
}

output "deployment_name" {
  value = var.deployment_name
}

output "node_ids" {
  value = [0]
}

output "secondary_ips" {
  value = [for i in range(1, var.vm_count) : {
    name = "vm${i}"
    ip   = local.ready ? local.wg_ips[i] : ""
    type = "wireguard"
    role = "node"
  }]
}

output "private_ips" {
  value = [for i in range(var.vm_count) : local.ready ? "10.${local.octet}.250.${i + 10}" : ""]
}

output "wg_config" {
  sensitive = true
  value = local.ready ? join("\n", concat([
    "[Interface]",
    "PrivateKey = ${trimspace(file("${local.net_dir}/host.key"))}",
    "Address = ${join(", ", [for i in range(var.vm_count) : "10.${local.octet}.${i}.1/24"])}",
    "",
  ], [for f in local.peer_files : file(f)])) : ""
}

output "ssh_known_hosts" {
  value = local.ready ? join("", [for f in local.kh_files : file(f)]) : ""
}
