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

# The access config routes the network's node addresses (100.64.<second octet>.N) only, not all
# of 100.64.0.0/16: two deployments' tunnels on one machine would both add that route, and the
# second `wg-quick up` would fail.
output "wg_config" {
  value     = replace(grid_network.net.access_wg_config, "100.64.0.0/16", "100.64.${local.octet}.0/24")
  sensitive = true
}

output "connection_info" {
  value = {
    public_ipv4 = split("/", local.gateway.computedip)[0]
    url         = var.domain != "" ? "${var.ssl_email != "" ? "https" : "http"}://${var.domain}/" : "http://${split("/", local.gateway.computedip)[0]}/"
  }
}
