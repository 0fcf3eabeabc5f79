#!/usr/bin/env bash
# The grid simulator's data plane, run as root by the simulated provider (`tfgrid-compose sim
# provider`). Everything lives in network namespaces on this machine; nothing is routed off it.
#
#   sim.sh net-up   SLOT OCTET EXT_N WG_CONF          a network's access node: netns gsim-SLOT,
#                                                     veth gsh-SLOT (198.18.SLOT.1 here, .2 there),
#                                                     WireGuard gsw-SLOT set from WG_CONF (its key,
#                                                     port and the user's peer, 100.64.OCTET.EXT_N)
#   sim.sh node-up  SLOT OCTET N                      bridge brN = 10.OCTET.N.1/24 in gsim-SLOT
#   sim.sh net-down SLOT OCTET                        remove the access node and every bridge
#   sim.sh vm-up    DIR SLOT BRIDGE IP GW HOST [PUBIP] start a VM (root key in $VM_SSH_KEY, its
#                                                     env_vars as quoted `export` lines in $VM_ENV)
#   sim.sh vm-down  DIR                               stop a VM and remove its disk; idempotent
#   sim.sh gw-up    NODE G PUBIP CONF                 a gateway node: netns gsgw-NODE, veth gsg-NODE
#                                                     (198.18.G.1 here, .2 and PUBIP there), nginx
#                                                     run with CONF; reloaded when it runs already
#   sim.sh gw-link  NODE SLOT OCTET                   route the gateway node into network SLOT
#   sim.sh gw-down  NODE PUBIP CONF                   stop its nginx, remove the gateway node
#
# A VM is a network namespace gsv-TAG-cCONTRACT-INDEX (its eth0 on the node's bridge) in which
# vm.sh (beside this script: the local pattern's VM builder) boots systemd as PID 1 on a disk in DIR.
# Its env_vars (VM_ENV: `export K='v'` lines) are in PID 1's environment and in login shells.
set -euo pipefail

VM_SH=$(dirname "${BASH_SOURCE[0]}")/vm.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)   # this simulator's folder, <data dir>/sim
die() { echo "sim.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (network namespaces)"

# While any access point or gateway node exists, the simulator's address blocks are refused on
# this machine instead of following the default route (more specific routes win over these).
GUARDS=(198.18.0.0/15 198.51.100.0/24)
guard_routes() {
  local r; for r in "${GUARDS[@]}"; do ip route replace unreachable "$r" metric 4242; done
}
unguard_routes_when_idle() {
  ls /run/netns 2>/dev/null | grep -qE '^(gsim|gsgw)-' && return 0
  local r; for r in "${GUARDS[@]}"; do ip route del unreachable "$r" metric 4242 2>/dev/null || true; done
}

# A new simulated node's namespace NS linked to this machine: veth VETH = 198.18.BLOCK.1 here,
# eth0 = 198.18.BLOCK.2 there. (Called outside `if`, so that `set -e` stops on any failure.)
node_ns() {
  local ns=$1 veth=$2 block=$3
  ip netns add "$ns"
  ip link add "$veth" type veth peer name eth0 netns "$ns"
  ip addr add "198.18.$block.1/24" dev "$veth"
  ip link set "$veth" up
  ip -n "$ns" addr add "198.18.$block.2/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
}

net_up() {
  local slot=$1 octet=$2 ext=$3 conf=$4
  local ns=gsim-$slot veth=gsh-$slot wgif=gsw-$slot
  if [ ! -e "/run/netns/$ns" ]; then
    node_ns "$ns" "$veth" "$slot"
    ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1
  fi
  # nothing for this network leaves the machine when the user's tunnel is down
  ip route replace unreachable "10.$octet.0.0/16" metric 4242
  guard_routes
  if ! ip -n "$ns" link show "$wgif" >/dev/null 2>&1; then
    ip netns exec "$ns" env LOG_LEVEL=error wireguard-go "$wgif"
  fi
  ip netns exec "$ns" wg setconf "$wgif" "$conf"
  ip -n "$ns" addr replace "100.64.$octet.1/16" dev "$wgif"
  ip -n "$ns" link set "$wgif" up
  ip -n "$ns" route replace "10.$octet.$ext.0/24" dev "$wgif"
}

node_up() {
  local slot=$1 octet=$2 n=$3 ns=gsim-$1
  if ! ip -n "$ns" link show "br$n" >/dev/null 2>&1; then
    ip -n "$ns" link add "br$n" type bridge
    ip -n "$ns" addr add "10.$octet.$n.1/24" dev "br$n"
    ip -n "$ns" link set "br$n" up
  fi
}

net_down() {
  local slot=$1 octet=$2 ns=gsim-$1 i
  if [ -e "/run/netns/$ns" ]; then
    rm -f "/var/run/wireguard/gsw-$slot.sock"   # wireguard-go exits when its socket goes
    for i in $(seq 100); do [ -z "$(ip netns pids "$ns")" ] && break; sleep 0.02; done
    ip netns pids "$ns" | xargs -r kill -KILL 2>/dev/null || true
    ip netns del "$ns"
  fi
  ip link del "gsh-$slot" 2>/dev/null || true
  if [ "${KEEP_ROUTE:-0}" != 1 ]; then
    ip route del unreachable "10.$octet.0.0/16" metric 4242 2>/dev/null || true
  fi
  unguard_routes_when_idle
}

vm_names() {
  D=${1:?DIR}
  [[ $D = /* && $D =~ ^[A-Za-z0-9/_.+-]+$ ]] || die "bad VM folder '$D'"
  # D = <VM root>/<simulator tag>/c<contract>-<index>: names unique on this machine, whichever
  # simulator (data dir) made the VM
  NS=gsv-$(basename "$(dirname "$D")")-$(basename "$D")
  VETH=gv$(printf '%s' "$D" | md5sum | cut -c1-12)   # at most 15 characters
}

# The VM itself (disk, systemd as PID 1, reboots) is vm.sh's, the local pattern's VM builder,
# written beside this script; here: its network namespace, its link to the node's bridge, routes.
vm_up() {
  vm_names "$1"; local slot=$2 bridge=$3 ip=$4 gw=$5 host=$6 pubip=${7:-}
  export VM_PUBKEY=${VM_SSH_KEY:?VM_SSH_KEY}
  ( vm_down "$D" ) >/dev/null 2>&1 || true
  trap 'rc=$?; if [ $rc != 0 ]; then tail -20 "$D/console.log" >&2 2>/dev/null; ( vm_down "$D" ) >/dev/null 2>&1; fi' EXIT
  mkdir -p -m 700 "$D"
  # a public IPv4 is held by this simulator while routed here (a gone simulator's is taken over)
  if [ -n "$pubip" ]; then
    claim "ip-$pubip" "$HERE" "$pubip (a public IPv4 of the simulated farm)" unroute "$pubip"
    echo "$pubip $slot" > "$D/public-ip"
  fi
  # run at every boot by the VM's unit tfgrid-vm-network.service
  cat > "$D/network.sh" <<NET
#!/bin/sh
# The network of VM $host (written by sim.sh): eth0 on its node's bridge.
set -eu
ip link set lo up
ip addr replace $ip/24 dev eth0
${pubip:+ip addr replace $pubip/32 dev eth0}
ip link set eth0 up
ip route replace default via $gw
NET
  ip netns add "$NS"
  ip link add "$VETH" netns "gsim-$slot" type veth peer name eth0 netns "$NS"
  ip -n "gsim-$slot" link set "$VETH" master "$bridge"
  ip -n "gsim-$slot" link set "$VETH" up
  if [ -n "$pubip" ]; then
    # a public IPv4: on the VM, routed to it by its access node and from this machine
    ip -n "gsim-$slot" route replace "$pubip/32" dev "$bridge"
    ip route replace "$pubip/32" via "198.18.$slot.2"
  fi
  # env_vars: in init's environment (so in every unit's) and in login shells, as on a full VM;
  # nothing else of the provider's environment (the mnemonic, the plugin's certificates) reaches it
  ( umask 077; printf '%s' "${VM_ENV:-}" > "$D/env.sh"
    env -i sh -c '. "$1" && env' sh "$D/env.sh" | { grep -Ev '^(PWD|OLDPWD|SHLVL|_)=' || true; } > "$D/env-init" )
  mkdir -p "$D/upper/etc/profile.d"
  install -m 644 "$D/env.sh" "$D/upper/etc/profile.d/grid-env-vars.sh"
  # VM_INIT_ENV (a file of KEY=VALUE lines, optional): the VM's init environment
  VM_INIT_ENV=$D/env-init VM_NETWORK=$D/network.sh "$VM_SH" machine-up "$D" "$NS" "$host"
  trap - EXIT
}

vm_down() {
  vm_names "$1"
  local pubip slot
  if [ -s "$D/public-ip" ]; then
    read -r pubip slot < "$D/public-ip"
    ip -n "gsim-$slot" route del "$pubip/32" 2>/dev/null || true
    # another simulator's route to this address is left alone
    if held "ip-$pubip" "$HERE"; then
      unroute "$pubip"
      unclaim "ip-$pubip"
    fi
  fi
  "$VM_SH" machine-down "$D" "$NS"
  # the simulator's folder and the VM root go with their last VM
  rmdir "$(dirname "$D")" 2>/dev/null || true
  rmdir "$(dirname "$(dirname "$D")")" 2>/dev/null || true
}

# Claims on this machine: a gateway node, or a public IPv4 routed here, is held by one simulator
# at a time. The claim NAME is the folder $CLAIMS/NAME; its file `owner` names the holder's path
# (a gateway's nginx.conf, a public IPv4's simulator folder). Another simulator is refused instead
# of serving from, rerouting or tearing down what the holder has; a claim whose owner path is gone
# is released and taken over. (The provider's allocation reads the same folder:
# resources::held_elsewhere.)
CLAIMS=/run/tfgrid-compose-sim
claim() {  # claim NAME OWNER WHAT RELEASE...: RELEASE runs before a gone owner's claim is taken
  local dir=$CLAIMS/$1 owner=$2 what=$3 holder; shift 3
  mkdir -p "$CLAIMS"
  if ! mkdir "$dir" 2>/dev/null; then
    holder=$(claim_holder "$(basename "$dir")")
    [ "$holder" = "$owner" ] && return 0
    if [ -z "$holder" ] || [ -e "$holder" ]; then
      die "$what is in use by another simulator on this machine${holder:+ (held by $holder)}; \`tfgrid-compose sim reset\` there first"
    fi
    "$@"   # its simulator's folder is gone: nothing serves from it
    rm -rf "${dir:?}"
    mkdir "$dir" || die "$what was claimed by another simulator just now"
  fi
  printf '%s\n' "$owner" > "$dir/owner"
}
claim_holder() { cat "$CLAIMS/$1/owner" 2>/dev/null || true; }
# held NAME OWNER: true when OWNER holds NAME, or nobody does (an older run's leftover is anyone's)
held() { local h; h=$(claim_holder "$1"); [ -z "$h" ] || [ "$h" = "$2" ]; }
unclaim() { rm -rf "${CLAIMS:?}/$1"; }
unroute() { ip route del "$1/32" 2>/dev/null || true; }

gw_claim() {  # gw_claim NODE PUBIP CONF
  claim "gw-$1" "$3" "$2 (the simulated gateway node $1)" gw_release "$1" "$2"
}
gw_release() {  # gw_release NODE PUBIP: the gateway node's namespace, veth, route and claim
  local node=$1 pubip=$2 ns=gsgw-$1
  if [ -e "/run/netns/$ns" ]; then
    ip netns pids "$ns" | xargs -r kill -KILL 2>/dev/null || true
    ip netns del "$ns"
  fi
  ip link del "gsg-$node" 2>/dev/null || true
  unroute "$pubip"
  unclaim "gw-$node"
}

gw_up() {
  local node=$1 g=$2 pubip=$3 conf=$4 ns=gsgw-$1 veth=gsg-$1
  gw_claim "$node" "$pubip" "$conf"
  if [ ! -e "/run/netns/$ns" ]; then
    node_ns "$ns" "$veth" "$g"
    ip -n "$ns" addr add "$pubip/32" dev eth0
    ip route replace "$pubip/32" via "198.18.$g.2"
  fi
  guard_routes
  local pid; pid=$(cat "$(dirname "$conf")/nginx.pid" 2>/dev/null || true)
  ip netns exec "$ns" nginx -t -q -c "$conf"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    ip netns exec "$ns" nginx -c "$conf" -s reload
  else
    ip netns exec "$ns" nginx -c "$conf"
  fi
}

gw_link() {
  local node=$1 slot=$2 octet=$3 ns=gsgw-$1
  local a=gsl$1s$2
  if ! ip -n "$ns" link show "$a" >/dev/null 2>&1; then
    ip link add "$a" netns "$ns" type veth peer name "gsr$1" netns "gsim-$slot"
    ip -n "$ns" addr add "169.254.$slot.1/24" dev "$a"
    ip -n "$ns" link set "$a" up
    ip -n "gsim-$slot" addr add "169.254.$slot.2/24" dev "gsr$1"
    ip -n "gsim-$slot" link set "gsr$1" up
  fi
  ip -n "$ns" route replace "10.$octet.0.0/16" via "169.254.$slot.2"
}

gw_down() {
  local node=$1 pubip=$2 conf=$3 i
  local pid; pid=$(cat "$(dirname "$conf")/nginx.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -QUIT "$pid"
    for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.02; done
  fi
  # another simulator's gateway on this node is left alone (a claim-less one is an older run's)
  if held "gw-$node" "$conf"; then gw_release "$node" "$pubip"; fi
  unguard_routes_when_idle
}

cmd=${1:-}; shift || true
case "$cmd" in
  net-up)   [ $# = 4 ] || die "usage: net-up SLOT OCTET EXT_N WG_CONF"; net_up "$@";;
  node-up)  [ $# = 3 ] || die "usage: node-up SLOT OCTET N"; node_up "$@";;
  net-down) [ $# = 2 ] || die "usage: net-down SLOT OCTET"; net_down "$@";;
  vm-up)    [ $# -ge 6 ] || die "usage: vm-up DIR SLOT BRIDGE IP GW HOST [PUBIP]"; vm_up "$@";;
  vm-down)  [ $# = 1 ] || die "usage: vm-down DIR"; vm_down "$@";;
  gw-up)    [ $# = 4 ] || die "usage: gw-up NODE G PUBIP CONF"; gw_up "$@";;
  gw-link)  [ $# = 3 ] || die "usage: gw-link NODE SLOT OCTET"; gw_link "$@";;
  gw-down)  [ $# = 3 ] || die "usage: gw-down NODE PUBIP CONF"; gw_down "$@";;
  *) sed -n '2,19p' "$0" >&2; exit 2;;
esac
