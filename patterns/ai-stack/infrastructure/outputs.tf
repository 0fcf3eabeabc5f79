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
  value = distinct([local.gateway_node, local.work_node])
}

output "secondary_ips" {
  value = [
    { name = "agent", ip = local.agent.ip, type = "wireguard", role = "agent" },
    { name = "git", ip = local.git.ip, type = "wireguard", role = "git" },
  ]
}

output "private_ips" {
  value = [local.gateway.ip, local.agent.ip, local.git.ip]
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
    site        = var.domain != "" ? "${var.ssl_email != "" ? "https" : "http"}://${var.domain}/" : "http://${split("/", local.gateway.computedip)[0]}/"
    agent       = "http://${local.agent.ip}:8000"
    git         = "http://${local.git.ip}:3000"
  }
}
