output "primary_ip" {
  value = local.management.ip
}

output "primary_ip_type" {
  value = "wireguard"
}

output "deployment_name" {
  value = local.name
}

output "node_ids" {
  value = [local.cluster_node]
}

output "secondary_ips" {
  value = concat(
    [for vm in local.controls : { name = vm.name, ip = vm.ip, type = "wireguard", role = "control" }],
    [for vm in local.workers : { name = vm.name, ip = vm.ip, type = "wireguard", role = "worker" }],
  )
}

output "private_ips" {
  value = [for vm in local.vms : vm.ip]
}

# The access config routes the network's node addresses (100.64.<second octet>.N) only, not all
# of 100.64.0.0/16: two deployments' tunnels on one machine would both add that route, and the
# second `wg-quick up` would fail.
output "wg_config" {
  value     = replace(grid_network.net.access_wg_config, "100.64.0.0/16", "100.64.${local.octet}.0/24")
  sensitive = true
}

# The platform derives the same default from the first control node's address.
output "metallb_range" {
  value = local.metallb_range
}

output "connection_info" {
  value = {
    api_server    = "https://${local.controls[0].ip}:6443"
    metallb_range = local.metallb_range
    kubeconfig    = "/root/.kube/config on the management node (tfgrid-compose ssh -- kubectl get nodes)"
  }
}
