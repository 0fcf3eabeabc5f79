output "primary_ip" {
  value = local.addresses[local.chosen]
}

output "primary_ip_type" {
  value = local.chosen
}

output "deployment_name" {
  value = local.name
}

output "node_ids" {
  value = [local.node]
}

output "mycelium_ip" {
  value = local.mycelium
}

output "private_ips" {
  value = [local.vm.ip]
}

output "wg_config" {
  value     = grid_network.net.access_wg_config
  sensitive = true
}

output "connection_info" {
  value = { wireguard_ip = local.vm.ip, mycelium_ip = local.mycelium, public_ipv4 = local.ipv4, public_ipv6 = local.ipv6 }
}
