variable "deployment_name" {
  type = string
}

variable "deployment_id" {
  type = string
  validation {
    condition     = can(regex("^[0-9a-f]{16}$", var.deployment_id))
    error_message = "deployment_id must be 16 lowercase hex digits (tfgrid-compose sets it)."
  }
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
  validation {
    condition     = var.gateway_node_id > 0
    error_message = "gateway_node_id: no node chosen (set by tfgrid-compose's node selection, or pin one with `up --node`)."
  }
}

variable "backend_node_id" {
  type    = number
  default = 0
  validation {
    condition     = var.backend_node_id > 0
    error_message = "backend_node_id: no node chosen (set by tfgrid-compose's node selection, or pin one with `up --node`)."
  }
}

variable "exclude_nodes" {
  type    = list(number)
  default = []
}

variable "ip_range" {
  type    = string
  default = "10.20.0.0/16"
  validation {
    condition     = can(cidrnetmask(var.ip_range)) && try(cidrnetmask(var.ip_range) == "255.255.0.0" && cidrhost(var.ip_range, 0) == split("/", var.ip_range)[0], false)
    error_message = "ip_range must be an IPv4 /16 network address, such as 10.20.0.0/16."
  }
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
