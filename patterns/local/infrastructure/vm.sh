#!/usr/bin/env bash
# Local VMs for the `local` pattern, driven by Terraform (main.tf). Run as root.
#
#   vm.sh net-up   ID ROOT                 allocate 10.X.0.0/16, create the private LAN, host wg key
#   vm.sh net-down ID ROOT                 undo net-up (after every VM is destroyed)
#   vm.sh create   ID ROOT INDEX NAME      start VM INDEX (public key in $VM_PUBKEY)
#   vm.sh destroy  ID ROOT INDEX           stop VM INDEX and remove its disk; idempotent
#   vm.sh enter    ID ROOT INDEX [CMD...]  run CMD (default bash) inside the VM, for debugging
#
# A VM is: a network namespace `tfl-ID-INDEX` (veth `tfvIDINDEX` on the host, eth0 inside, on
# 10.(X+100).INDEX.0/24) plus new mount/pid/uts/ipc namespaces whose PID 1 mounts overlays over
# /etc /opt /srv /var /home /root /tmp /usr (writes land in ROOT/ID/vm-INDEX/upper), a private /run,
# /dev/shm and devpts, makes the rest of / read-only, starts wireguard-go (wg0 = 10.X.INDEX.2) and
# becomes sshd. The host reaches it only through the tunnel it brings up with the `wg_config`
# output. VMs of one deployment share a LAN (eth1, 10.X.250.(10+INDEX)/24) through a bridge in the
# namespace `tfl-ID-lan`. Nothing is routed off this machine: 10.X.0.0/16 and 10.(X+100).0.0/16
# get low-priority unreachable routes on the host, and VMs have no default route.
set -euo pipefail

OVERLAYS=(etc opt srv var home root tmp usr)
WG_PORT=51820
ALLOC_DIR=/run/tfgrid-compose-local

die() { echo "vm.sh: $*" >&2; exit 1; }

common() {
  ID=${1:?ID}; ROOT=${2:?ROOT}
  [[ $ID =~ ^[0-9a-f]{8}$ ]] || die "bad deployment id '$ID' (8 hex digits)"
  [[ $ROOT = /* && $ROOT =~ ^[A-Za-z0-9/_.+-]+$ ]] || die "vm_root '$ROOT' must be an absolute path of A-Za-z0-9/_.+-"
  local d
  for d in "${OVERLAYS[@]}"; do
    case "$ROOT/" in "/$d/"*) die "vm_root $ROOT is under /$d, which every VM overlays; use e.g. /mnt/tfgrid-compose-local";; esac
  done
  NET=$ROOT/$ID
  LAN_NS=tfl-$ID-lan
  OCTET=""
  [ -s "$NET/octet" ] && OCTET=$(cat "$NET/octet")
  return 0
}

vm_vars() {
  INDEX=${1:?INDEX}
  [[ $INDEX =~ ^[0-9]+$ && $INDEX -lt 200 ]] || die "bad VM index '$INDEX'"
  S=$NET/vm-$INDEX
  NS=tfl-$ID-$INDEX
  VETH=tfv$ID$INDEX
  if [ -n "$OCTET" ]; then
    WG_HOST=10.$OCTET.$INDEX.1; WG_VM=10.$OCTET.$INDEX.2
    UL_HOST=10.$((OCTET + 100)).$INDEX.1; UL_VM=10.$((OCTET + 100)).$INDEX.2
    LAN_VM=10.$OCTET.250.$((INDEX + 10))
  fi
}

# --- the deployment's network ------------------------------------------------------------------
net_up() {
  common "$@"
  [ "$(id -u)" = 0 ] || die "must run as root"
  mkdir -p -m 700 "$NET" "$ALLOC_DIR"
  if [ -z "$OCTET" ]; then
    local x
    for x in $(seq 100 149); do
      # mkdir is atomic: the first deployment to create octet-X owns 10.X.0.0/16
      if mkdir "$ALLOC_DIR/octet-$x" 2>/dev/null; then
        if ip route show | grep -qE "^(unreachable )?10\.($x|$((x + 100)))\."; then
          rmdir "$ALLOC_DIR/octet-$x"; continue   # in use by something else on this host
        fi
        echo "$NET" > "$ALLOC_DIR/octet-$x/owner"
        echo "$x" > "$NET/octet"; OCTET=$x; break
      fi
    done
    [ -n "$OCTET" ] || die "no free address block (10.100-149.0.0/16 all in use)"
  fi
  ip route replace unreachable "10.$OCTET.0.0/16" metric 4242
  ip route replace unreachable "10.$((OCTET + 100)).0.0/16" metric 4242
  [ -s "$NET/host.key" ] || (umask 077; wg genkey > "$NET/host.key")
  if [ ! -e "/run/netns/$LAN_NS" ]; then
    ip netns add "$LAN_NS"
    ip -n "$LAN_NS" link add br0 type bridge
    ip -n "$LAN_NS" link set br0 up
  fi
  echo "vm.sh: network $ID: 10.$OCTET.0.0/16, LAN 10.$OCTET.250.0/24"
}

net_down() {
  common "$@"
  local pub ifc i d
  # VMs still here were never destroyed by Terraform: a create that failed or was interrupted
  # leaves its resource tainted, and Terraform runs no destroy-time provisioner for a tainted
  # resource. They are this deployment's; destroy them before the network they hang on.
  for d in "$NET"/vm-*; do
    [ -d "$d" ] || continue
    echo "vm.sh: destroying VM ${d##*/vm-} of $ID, left by an interrupted run"
    ( destroy "$ID" "$ROOT" "${d##*/vm-}" )
  done
  # a host-side tunnel still up (e.g. destroy run by hand): take it down as wg-quick would
  if [ -s "$NET/host.key" ]; then
    pub=$(wg pubkey < "$NET/host.key")
    for ifc in $(wg show interfaces 2>/dev/null); do
      [ "$(wg show "$ifc" public-key 2>/dev/null)" = "$pub" ] || continue
      rm -f "/var/run/wireguard/$ifc.sock"
      for i in $(seq 100); do ip link show "$ifc" >/dev/null 2>&1 || break; sleep 0.02; done
      ip link del "$ifc" 2>/dev/null || true
    done
  fi
  [ -e "/run/netns/$LAN_NS" ] && ip netns del "$LAN_NS"
  if [ -n "$OCTET" ]; then
    ip route del unreachable "10.$OCTET.0.0/16" metric 4242 2>/dev/null || true
    ip route del unreachable "10.$((OCTET + 100)).0.0/16" metric 4242 2>/dev/null || true
    if [ "$(cat "$ALLOC_DIR/octet-$OCTET/owner" 2>/dev/null)" = "$NET" ]; then
      rm -rf "$ALLOC_DIR/octet-$OCTET"
    fi
  fi
  compgen -G "$NET/vm-*" >/dev/null && die "VMs of $ID still exist in $NET"
  rm -rf "$NET"
  rmdir "$ROOT" 2>/dev/null || true
  rmdir "$ALLOC_DIR" 2>/dev/null || true
}

# --- one VM ------------------------------------------------------------------------------------
vm_pid() {   # the `unshare` process holding the VM, if it is still ours
  [ -s "$S/vm.pid" ] || return 0
  local p; p=$(cat "$S/vm.pid")
  if [ "$(cat "/proc/$p/comm" 2>/dev/null)" = unshare ] && ip netns identify "$p" 2>/dev/null | grep -qx "$NS"; then
    echo "$p"
  fi
}

create() {
  common "$1" "$2"; vm_vars "$3"; local name=${4:?NAME}
  local pubkey=${VM_PUBKEY:?VM_PUBKEY}
  [ -n "$OCTET" ] || die "network of $ID is not up (net-up first)"
  [[ $pubkey =~ ^(ssh-|ecdsa-|sk-) ]] || die "VM_PUBKEY is not an ssh public key"
  # Terraform replaces a resource whose create failed without running its destroy, so clean up
  # leftovers first, and clean up after ourselves on failure.
  ( destroy "$ID" "$ROOT" "$INDEX" ) >/dev/null 2>&1 || true
  trap 'rc=$?; if [ $rc != 0 ]; then tail -20 "$S/console.log" >&2 2>/dev/null; ( destroy "$ID" "$ROOT" "$INDEX" ) >/dev/null 2>&1; fi' EXIT

  umask 022
  mkdir -p "$S"; chmod 700 "$S"
  local d U=$S/upper
  for d in "${OVERLAYS[@]}"; do
    mkdir -p "$U/$d" "$S/work/$d"
    chmod --reference="/$d" "$U/$d"; chown --reference="/$d" "$U/$d"   # becomes the merged dir's mode
  done
  local host="$name-$INDEX"
  echo "$host" > "$U/etc/hostname"
  { cat /etc/hosts; echo "127.0.1.1 $host"; } > "$U/etc/hosts"
  mkdir -p "$U/etc/ssh/sshd_config.d"
  ssh-keygen -q -t ed25519 -N '' -C "root@$host" -f "$U/etc/ssh/ssh_host_ed25519_key"
  cat > "$U/etc/ssh/sshd_config.d/00-tfgrid-compose-local.conf" <<CFG
# Written by the local pattern; included first, and the first value wins.
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PidFile /run/sshd.pid
MaxStartups 100:30:200
CFG
  mkdir -p -m 700 "$U/root/.ssh"
  # opaque: the host's own /root/.ssh does not show through
  python3 -c 'import os, sys; os.setxattr(sys.argv[1], "trusted.overlay.opaque", b"y")' "$U/root/.ssh"
  printf '%s\n' "$pubkey" > "$U/root/.ssh/authorized_keys"; chmod 600 "$U/root/.ssh/authorized_keys"
  echo "$WG_VM $(cut -d' ' -f1,2 "$U/etc/ssh/ssh_host_ed25519_key.pub")" > "$S/known_hosts"

  (umask 077
   wg genkey > "$S/vm.key"
   cat > "$S/vm-wg.conf" <<CFG
[Interface]
PrivateKey = $(cat "$S/vm.key")
ListenPort = $WG_PORT

[Peer]
PublicKey = $(wg pubkey < "$NET/host.key")
AllowedIPs = $WG_HOST/32
CFG
   cat > "$S/host-peer.conf" <<CFG
[Peer]
PublicKey = $(wg pubkey < "$S/vm.key")
AllowedIPs = $WG_VM/32
Endpoint = $UL_VM:$WG_PORT
PersistentKeepalive = 25
CFG
  )

  cat > "$S/init.sh" <<INIT
#!/bin/sh
# PID 1 of VM $INDEX of deployment $ID.
set -eu
for d in ${OVERLAYS[*]}; do
  mount -t overlay "tfl-$ID-$INDEX-\$d" -o "lowerdir=/\$d,upperdir=$U/\$d,workdir=$S/work/\$d" "/\$d"
done
mount -t tmpfs -o mode=755,nosuid,nodev "tfl-$ID-$INDEX-run" /run
mkdir -p /run/sshd /run/lock && chmod 1777 /run/lock
mount -t tmpfs -o mode=1777,nosuid,nodev "tfl-$ID-$INDEX-shm" /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666,mode=620,gid=5 "tfl-$ID-$INDEX-pts" /dev/pts
hostname "$host"
mount -o remount,bind,ro /
LOG_LEVEL=error wireguard-go wg0
wg setconf wg0 "$S/vm-wg.conf"
ip addr add "$WG_VM/24" dev wg0
ip link set wg0 up
exec /usr/sbin/sshd -D -e
INIT
  chmod 700 "$S/init.sh"

  ip netns add "$NS"
  ip link add "$VETH" type veth peer name eth0 netns "$NS"
  ip addr add "$UL_HOST/24" dev "$VETH"
  ip link set "$VETH" up
  ip -n "$NS" addr add "$UL_VM/24" dev eth0
  ip -n "$NS" link set eth0 up
  ip -n "$NS" link set lo up
  ip -n "$NS" link add eth1 type veth peer name "p$INDEX" netns "$LAN_NS"
  ip -n "$LAN_NS" link set "p$INDEX" master br0
  ip -n "$LAN_NS" link set "p$INDEX" up
  ip -n "$NS" addr add "$LAN_VM/24" dev eth1
  ip -n "$NS" link set eth1 up

  # detached from terraform's session and pipes: setsid, stdio to a file
  setsid ip netns exec "$NS" unshare --mount --propagation private --uts --ipc \
      --pid --fork --kill-child --mount-proc /bin/sh "$S/init.sh" \
      </dev/null >"$S/console.log" 2>&1 &
  echo $! > "$S/vm.pid"

  local i banner=""
  for i in $(seq 500); do
    [ -d "/proc/$(cat "$S/vm.pid")" ] || die "VM $INDEX exited during start"
    banner=$(timeout 1 bash -c "exec 3<>/dev/tcp/$UL_VM/22 && head -c 7 <&3" 2>/dev/null || true)
    [ "$banner" = SSH-2.0 ] && break
    sleep 0.02
  done
  [ "$banner" = SSH-2.0 ] || die "sshd of VM $INDEX did not answer"
  trap - EXIT
  echo "vm.sh: VM $INDEX of $ID up: wg $WG_VM, lan $LAN_VM, netns $NS"
}

destroy() {
  common "$1" "$2"; vm_vars "$3"
  local p i
  p=$(vm_pid)
  [ -n "$p" ] && kill -KILL "$p" 2>/dev/null   # --kill-child takes PID 1, the kernel the rest
  if [ -e "/run/netns/$NS" ]; then
    for i in $(seq 250); do
      [ -z "$(ip netns pids "$NS" 2>/dev/null)" ] && break
      [ "$i" = 100 ] && ip netns pids "$NS" | xargs -r kill -KILL 2>/dev/null
      sleep 0.02
    done
    [ -z "$(ip netns pids "$NS" 2>/dev/null)" ] || die "processes remain in netns $NS"
    ip netns del "$NS"
  fi
  ip link del "$VETH" 2>/dev/null || true
  [ -e "/run/netns/$LAN_NS" ] && ip -n "$LAN_NS" link del "p$INDEX" 2>/dev/null || true
  if grep -qsF "$S/upper/" /proc/[0-9]*/mountinfo; then die "overlays of $S are still mounted"; fi
  rm -rf "$S"
}

enter() {
  common "$1" "$2"; vm_vars "$3"; shift 3
  local p; p=$(vm_pid); [ -n "$p" ] || die "VM is not running"
  p=$(cut -d' ' -f1 "/proc/$p/task/$p/children")
  [ $# -gt 0 ] || set -- bash
  exec nsenter -t "$p" -m -u -i -n -p -- "$@"
}

cmd=${1:-}; shift || true
case "$cmd" in
  net-up)   [ $# = 2 ] || die "usage: net-up ID ROOT"; net_up "$@";;
  net-down) [ $# = 2 ] || die "usage: net-down ID ROOT"; net_down "$@";;
  create)   [ $# = 4 ] || die "usage: create ID ROOT INDEX NAME"; create "$@";;
  destroy)  [ $# = 3 ] || die "usage: destroy ID ROOT INDEX"; destroy "$@";;
  enter)    [ $# -ge 3 ] || die "usage: enter ID ROOT INDEX [CMD...]"; enter "$@";;
  *) sed -n '2,9p' "$0" >&2; exit 2;;
esac
