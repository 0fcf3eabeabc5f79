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

# The access config routes the network's node addresses (100.64.<second octet>.N) only, not all
# of 100.64.0.0/16: two deployments' tunnels on one machine would both add that route, and the
# second `wg-quick up` would fail.
output "wg_config" {
  value     = replace(grid_network.net.access_wg_config, "100.64.0.0/16", "100.64.${local.octet}.0/24")
  sensitive = true
}

output "connection_info" {
  value = { wireguard_ip = local.vm.ip, mycelium_ip = local.mycelium, public_ipv4 = local.ipv4, public_ipv6 = local.ipv6 }
}
