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

output "wg_config" {
  value     = grid_network.net.access_wg_config
  sensitive = true
}

output "connection_info" {
  value = {
    api_server = "https://${local.controls[0].ip}:6443"
    kubeconfig = "/root/.kube/config on the management node (tfgrid-compose ssh -- kubectl get nodes)"
  }
}
