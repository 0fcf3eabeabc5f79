output "primary_ip" {
  value = local.gateway.ip
}

output "primary_ip_type" {
  value = "wireguard"
}

output "deployment_name" {
  value = local.name
}

output "node_ids" {
  value = distinct([local.gateway_node, local.backend_node])
}

output "secondary_ips" {
  value = [for vm in local.backends : { name = vm.name, ip = vm.ip, type = "wireguard", role = "backend" }]
}

output "private_ips" {
  value = concat([local.gateway.ip], [for vm in local.backends : vm.ip])
}

output "wg_config" {
  value     = grid_network.net.access_wg_config
  sensitive = true
}

output "connection_info" {
  value = {
    public_ipv4 = split("/", local.gateway.computedip)[0]
    url         = var.domain != "" ? "${var.ssl_email != "" ? "https" : "http"}://${var.domain}/" : "http://${split("/", local.gateway.computedip)[0]}/"
  }
}
