variable "mnemonic" {
  type      = string
  sensitive = true
}

variable "deployment_name" {
  type = string
}

variable "deployment_id" {
  type = string
}

variable "ssh_public_key" {
  type = string
}

variable "tfgrid_network" {
  type    = string
  default = "main"
  validation {
    condition     = contains(["main", "test", "qa", "dev"], var.tfgrid_network)
    error_message = "tfgrid_network must be main, test, qa or dev."
  }
}

variable "node_id" {
  type    = number
  default = 0
}

variable "farm_id" {
  type    = number
  default = 0
}

variable "exclude_nodes" {
  type    = list(number)
  default = []
}

variable "control_count" {
  type    = number
  default = 1
}

variable "worker_count" {
  type    = number
  default = 2
}

variable "flist" {
  type    = string
  default = "https://hub.grid.tf/tf-official-vms/ubuntu-24.04-full.flist"
}

variable "control_cpu" {
  type    = number
  default = 2
}

variable "control_mem" {
  type    = number
  default = 4096
}

variable "worker_cpu" {
  type    = number
  default = 4
}

variable "worker_mem" {
  type    = number
  default = 8192
}

variable "worker_disk" {
  type    = number
  default = 100
}

variable "k3s_version" {
  type    = string
  default = "v1.31.4+k3s1"
}

variable "metallb_range" {
  type    = string
  default = "10.40.250.1-10.40.250.50"
}
