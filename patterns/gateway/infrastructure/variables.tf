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

variable "gateway_node_id" {
  type    = number
  default = 0
}

variable "backend_node_id" {
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

variable "backend_count" {
  type    = number
  default = 2
}

variable "flist" {
  type    = string
  default = "https://hub.grid.tf/tf-official-vms/ubuntu-24.04-full.flist"
}

variable "gateway_cpu" {
  type    = number
  default = 1
}

variable "gateway_mem" {
  type    = number
  default = 2048
}

variable "backend_cpu" {
  type    = number
  default = 2
}

variable "backend_mem" {
  type    = number
  default = 4096
}

variable "backend_disk" {
  type    = number
  default = 50
}

variable "backend_port" {
  type    = number
  default = 8080
}

variable "health_path" {
  type    = string
  default = "/"
}

variable "domain" {
  type    = string
  default = ""
}

variable "ssl_email" {
  type    = string
  default = ""
}
