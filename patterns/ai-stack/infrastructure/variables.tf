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

variable "gateway_node_id" {
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

variable "domain" {
  type    = string
  default = ""
}

variable "ssl_email" {
  type    = string
  default = ""
}

variable "gateway_cpu" {
  type    = number
  default = 2
}

variable "gateway_memory" {
  type    = number
  default = 4096
}

variable "gateway_disk" {
  type    = number
  default = 50
}

variable "agent_cpu" {
  type    = number
  default = 4
}

variable "agent_memory" {
  type    = number
  default = 8192
}

variable "agent_disk" {
  type    = number
  default = 100
}

variable "git_cpu" {
  type    = number
  default = 2
}

variable "git_memory" {
  type    = number
  default = 4096
}

variable "git_disk" {
  type    = number
  default = 100
}

variable "wireguard_port" {
  type    = number
  default = 51820
}

variable "private_network" {
  type    = string
  default = "10.50.0.0/16"
}

variable "api_rate_limit" {
  type    = number
  default = 10
}

variable "max_concurrent_projects" {
  type    = number
  default = 3
}

variable "backup_retention_days" {
  type    = number
  default = 14
}

variable "backup_schedule" {
  type    = string
  default = "0 3 * * *"
}
