#!/usr/bin/env bash
# VMs on this machine whose PID 1 is systemd, for the `local` pattern (driven by Terraform,
# main.tf) and for the grid simulator's VMs (src/sim/sim.sh, which ships this file beside it and
# calls the `machine-*` commands). The one VM builder of the project. Run as root.
#
# The local pattern:
#   vm.sh net-up   ID ROOT                 allocate 10.X.0.0/16, create the private LAN, host wg key
#   vm.sh net-down ID ROOT                 undo net-up (destroys VMs an interrupted run left)
#   vm.sh create   ID ROOT INDEX NAME      start VM INDEX (public key in $VM_PUBKEY)
#   vm.sh destroy  ID ROOT INDEX           stop VM INDEX and remove its disk; idempotent
#   vm.sh enter    ID ROOT INDEX [CMD...]  run CMD (default bash) inside the VM, for debugging
#   vm.sh state    ID ROOT INDEX           print the VM's power state (see machine-state)
# Any VM (the simulator's), in a network namespace NS its caller made:
#   vm.sh machine-up    DIR NS HOST        write the VM's disk in DIR (root key in $VM_PUBKEY, network
#                                          script in the file $VM_NETWORK, optional KEY=VALUE lines
#                                          for PID 1's environment in the file $VM_INIT_ENV), boot
#                                          it, wait until systemd has finished booting, sshd answers
#   vm.sh machine-down  DIR NS             power cut, remove NS, the VM's cgroup and DIR; idempotent
#   vm.sh machine-enter DIR NS [CMD...]    run CMD in all the VM's namespaces
#   vm.sh machine-state DIR NS             print `stopped`, `starting` (first boot), `rebooting`
#                                          (from a reboot until systemd has booted again), or
#                                          systemd's own state (`running`, `degraded`, `stopping`...)
#
# A VM is a network namespace (local: `tfl-ID-INDEX`, veth `tfvIDINDEX` on the host, eth0 inside,
# on 10.(X+100).INDEX.0/24, eth1 on the deployment's LAN 10.X.250.(10+INDEX)/24 through a bridge in
# `tfl-ID-lan`; WireGuard wg0 = 10.X.INDEX.2 inside, the host's only way in) plus new
# mount/uts/ipc/pid/cgroup namespaces whose root is built and pivot_root'ed into:
#   /                        the host's root filesystem, read-only, none of its submounts
#   /etc /opt /srv /var /usr overlayfs: lower = the host's folder, upper = DIR/upper/<folder> (the
#                            VM's disk); /etc/systemd/system is the VM's own (opaque): what the host
#                            enabled does not start inside
#   /root /home              the VM's own (DIR/upper/root, DIR/upper/home)
#   /tmp /run                fresh tmpfs at every boot
#   /proc /sys /dev          the VM's pid namespace; sysfs of its netns, read-only; a small /dev
#   /sys/fs/cgroup           the VM's cgroup2 (namespace rooted at CGROOT/NS/payload)
# PID 1 is `/lib/systemd/systemd --system` (container=other). sshd runs as ssh.service and
# the VM's addresses come up as tfgrid-vm-network.service (the script $VM_NETWORK held). A
# supervisor process on the host (`machine-run`, the VM's "hypervisor") starts it and, when systemd
# reboots (reboot(2) in a pid namespace ends its init with SIGHUP), boots it again: same
# namespace, addresses and disk, fresh /tmp and /run.
# Facts this rests on (systemd 252 on Debian 12, kernel 6.x, cgroups v1 hybrid with an empty
# cgroup2 at /sys/fs/cgroup/unified) and what differs from a grid VM are in ../README.md.
set -euo pipefail

OVERLAYS=(etc opt srv var usr)
OWN=(root home)
WG_PORT=51820
ALLOC_DIR=/run/tfgrid-compose-local
VM_BOOT_TIMEOUT=${VM_BOOT_TIMEOUT:-120}
# Units of the host's /lib (vendor presets) a container cannot run: console-getty needs a real
# /dev/console, which a VM here has not (its output would go nowhere).
MASK=(console-getty.service)

die() { echo "vm.sh: $*" >&2; exit 1; }

# --- any VM: its disk, its boots, its stop ------------------------------------------------------
cgroot() {   # the host's cgroup2 mount
  local d
  for d in /sys/fs/cgroup /sys/fs/cgroup/unified; do
    [ "$(stat -f -c %T "$d" 2>/dev/null)" = cgroup2fs ] && { echo "$d"; return 0; }
  done
  die "no cgroup2 mount at /sys/fs/cgroup or /sys/fs/cgroup/unified (systemd in a VM needs one)"
}

machine_vars() {
  D=${1:?DIR}; MNS=${2:?NS}
  [[ $D = /* && $D =~ ^[A-Za-z0-9/_.+-]+$ ]] || die "bad VM folder '$D' (absolute, A-Za-z0-9/_.+-)"
  [[ $MNS =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,60}$ ]] || die "bad VM namespace name '$MNS'"
  local d
  for d in "${OVERLAYS[@]}" "${OWN[@]}" tmp run proc sys dev; do
    case "$D/" in "/$d/"*) die "VM folder $D is under /$d, which every VM replaces; use e.g. /mnt/...";; esac
  done
  CG=$(cgroot)/$MNS
}

# PID of this VM's supervisor (`machine-run D NS`), if it runs
supervisor_pid() {
  local p; p=$(cat "$D/supervisor.pid" 2>/dev/null) || return 0
  tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | grep -qF " machine-run $D $MNS " && echo "$p" || true
}
# host PID of the VM's PID 1, if it runs (the child of the `unshare` the supervisor started).
# Bash's own `read`, no process: the boot waits call it every 50 ms, on every VM at once.
init_pid() {
  local p="" comm="" child=""
  read -r p 2>/dev/null < "$D/vm.pid" || true
  [ -n "$p" ] && read -r comm 2>/dev/null < "/proc/$p/comm" && [ "$comm" = unshare ] || return 0
  read -r child _ 2>/dev/null < "/proc/$p/task/$p/children" || true
  [ -z "$child" ] || echo "$child"
}

# The VM's disk: the upper layers, its identity, sshd's config and key, its own units.
machine_disk() {
  local host=$1 pubkey=${VM_PUBKEY:?VM_PUBKEY} net=${VM_NETWORK:?VM_NETWORK}
  [[ $pubkey =~ ^(ssh-|ecdsa-|sk-) ]] || die "VM_PUBKEY is not an ssh public key"
  [[ $host =~ ^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$ ]] || die "bad host name '$host'"
  umask 022
  mkdir -p "$D/root"; chmod 700 "$D"
  local d U=$D/upper
  for d in "${OVERLAYS[@]}"; do
    mkdir -p "$U/$d" "$D/work/$d"
    chmod --reference="/$d" "$U/$d"; chown --reference="/$d" "$U/$d"   # becomes the merged dir's mode
  done
  mkdir -p -m 700 "$U/root"; mkdir -p -m 755 "$U/home"
  echo "$host" > "$U/etc/hostname"
  { cat /etc/hosts; echo "127.0.1.1 $host"; } > "$U/etc/hosts"
  tr -d '-' < /proc/sys/kernel/random/uuid > "$U/etc/machine-id"   # its own journal and D-Bus id
  mkdir -p "$U/etc/ssh/sshd_config.d"
  ssh-keygen -q -t ed25519 -N '' -C "root@$host" -f "$U/etc/ssh/ssh_host_ed25519_key"
  cat > "$U/etc/ssh/sshd_config.d/00-tfgrid-compose-vm.conf" <<CFG
# Written by vm.sh; included first, and the first value wins.
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
MaxStartups 100:30:200
CFG
  mkdir -p -m 700 "$U/root/.ssh"
  printf '%s\n' "$pubkey" > "$U/root/.ssh/authorized_keys"; chmod 600 "$U/root/.ssh/authorized_keys"
  mkdir -p -m 700 "$U/etc/tfgrid-vm"
  install -m 700 "$net" "$U/etc/tfgrid-vm/network.sh"
  # The VM's own /etc/systemd/system, as a fresh install has it: nothing the host enabled shows
  # through (opaque), only sshd and the VM's network are enabled.
  local sys=$U/etc/systemd/system
  mkdir -p "$sys/multi-user.target.wants"
  # The interpreter the VM's Ansible uses (platform/group_vars/all.yml), without site-packages or
  # a PATH lookup: a version manager's `python3` shim on PATH cost 0.1 s of CPU per VM here.
  /usr/bin/python3 -I -S -c 'import os, sys; os.setxattr(sys.argv[1], "trusted.overlay.opaque", b"y")' "$sys"
  ln -s /lib/systemd/system/multi-user.target "$sys/default.target"
  ln -s /lib/systemd/system/ssh.service "$sys/sshd.service"
  ln -s /lib/systemd/system/ssh.service "$sys/multi-user.target.wants/ssh.service"
  cat > "$sys/tfgrid-vm-network.service" <<'UNIT'
[Unit]
Description=The VM's network interfaces and addresses
DefaultDependencies=no
Wants=network.target
Before=network.target ssh.service shutdown.target
Conflicts=shutdown.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/etc/tfgrid-vm/network.sh

[Install]
WantedBy=multi-user.target
UNIT
  ln -s ../tfgrid-vm-network.service "$sys/multi-user.target.wants/tfgrid-vm-network.service"
  : > "$D/console.log"
  # KEY=VALUE lines of the file $VM_INIT_ENV (optional) become PID 1's environment, which systemd
  # hands to every unit (`systemctl show-environment`), as a hypervisor's init environment would.
  if [ -n "${VM_INIT_ENV:-}" ]; then install -m 600 "$VM_INIT_ENV" "$D/init.env"; else : > "$D/init.env"; fi
  machine_init
}

# $D/init.sh: PID 1 of the new pid namespace until it execs systemd; run at every boot.
machine_init() {
  local t=$MNS
  cat > "$D/init.sh" <<INIT
#!/bin/sh
# PID 1 of VM $D until it execs systemd (written by vm.sh).
set -eu
echo 0 > "$CG/payload/cgroup.procs"        # the cgroup namespace (unshared below) is rooted here
R="$D/root"
mount --bind / "\$R"                        # the host's root filesystem only, none of its submounts
mount -o remount,bind,ro "\$R"
for d in ${OVERLAYS[*]}; do
  mount -t overlay "$t-\$d" -o "lowerdir=/\$d,upperdir=$D/upper/\$d,workdir=$D/work/\$d" "\$R/\$d"
done
for d in ${OWN[*]}; do mount --bind "$D/upper/\$d" "\$R/\$d"; done
mount -t tmpfs -o mode=1777,nosuid,nodev "$t-tmp" "\$R/tmp"
mount -t tmpfs -o mode=755,nosuid,nodev,size=20% "$t-run" "\$R/run"
mkdir -p "\$R/run/systemd/system"
for u in ${MASK[*]}; do ln -s /dev/null "\$R/run/systemd/system/\$u"; done
mount -t proc -o nosuid,nodev,noexec "$t-proc" "\$R/proc"
mount --bind "\$R/proc/sys" "\$R/proc/sys"
mount --bind "\$R/proc/sys/net" "\$R/proc/sys/net"   # per network namespace: the VM's own
mount -o remount,bind,ro,nosuid,nodev,noexec "\$R/proc/sys"
mount -t sysfs -o ro,nosuid,nodev,noexec "$t-sys" "\$R/sys"
mount -t tmpfs -o mode=755,nosuid,size=4m "$t-dev" "\$R/dev"
mknod -m 666 "\$R/dev/null" c 1 3;    mknod -m 666 "\$R/dev/zero" c 1 5;  mknod -m 666 "\$R/dev/full" c 1 7
mknod -m 666 "\$R/dev/random" c 1 8;  mknod -m 666 "\$R/dev/urandom" c 1 9; mknod -m 666 "\$R/dev/tty" c 5 0
mkdir -p "\$R/dev/net" "\$R/dev/pts" "\$R/dev/shm"; mknod -m 666 "\$R/dev/net/tun" c 10 200
mount -t devpts -o newinstance,ptmxmode=0666,mode=620,gid=5 "$t-pts" "\$R/dev/pts"
ln -s pts/ptmx "\$R/dev/ptmx"
mount -t tmpfs -o mode=1777,nosuid,nodev "$t-shm" "\$R/dev/shm"
ln -s /proc/self/fd "\$R/dev/fd"; ln -s /proc/self/fd/0 "\$R/dev/stdin"
ln -s /proc/self/fd/1 "\$R/dev/stdout"; ln -s /proc/self/fd/2 "\$R/dev/stderr"
hostname "\$(cat "$D/upper/etc/hostname")"
set -- container=other
while IFS= read -r kv; do case \$kv in [A-Za-z_]*=*) set -- "\$@" "\$kv";; esac; done < "$D/init.env"
cd "\$R"; pivot_root . .; umount -l .; cd /   # the old root is stacked on the new one: detach it
exec unshare --cgroup /bin/sh -c 'mount -t cgroup2 -o nosuid,nodev,noexec "$t-cgroup" /sys/fs/cgroup &&
  exec env -i "\$@" /lib/systemd/systemd --system' sh "\$@"
INIT
  chmod 700 "$D/init.sh"
}

# Waits until the VM whose `unshare` is PID $1 has finished booting: its systemd answers
# `is-system-running --wait` with a state past booting (VM_BOOT_TIMEOUT s at most). systemctl
# can answer before systemd serves its socket (no state, or `unknown`, `offline`) or while it
# still boots (`initializing`, `starting`): it is asked again. Fails when the VM ends first.
booted() {
  local i p1="" comm state end=$((SECONDS + VM_BOOT_TIMEOUT))
  for ((i = 0; i < VM_BOOT_TIMEOUT * 20; i++)); do
    [ -d "/proc/$1" ] || return 1
    p1=$(init_pid); comm=""
    [ -n "$p1" ] && read -r comm 2>/dev/null < "/proc/$p1/comm" && [ "$comm" = systemd ] \
      && [ -S "/proc/$p1/root/run/systemd/private" ] && break
    sleep 0.05
  done
  while [ $SECONDS -lt $end ]; do
    state=$(timeout $((end - SECONDS)) nsenter -t "$p1" -a systemctl is-system-running --wait 2>/dev/null) || true
    case $state in ""|unknown|offline|initializing|starting) ;; *) return 0;; esac
    [ -d "/proc/$1" ] || return 1
    sleep 0.05
  done
}

# The supervisor: boots the VM, and again each time systemd reboots it, until it powers off, is
# cut (machine-down) or $D/halt exists. Its PID is $D/supervisor.pid; the `unshare` holding the
# VM's namespaces is $D/vm.pid; $D/power says `booting`, `up` or `rebooting`.
machine_run() {
  machine_vars "$1" "$2"
  echo $$ > "$D/supervisor.pid"
  local rc boots=0 vm
  while [ ! -e "$D/halt" ]; do
    boots=$((boots + 1)); echo $boots > "$D/boots"
    echo booting > "$D/power"
    # what the last boot left in the VM's cgroup (systemd's slices and scopes), deepest first
    if [ -d "$CG/payload" ]; then
      find "$CG/payload" -mindepth 1 -depth -type d -exec rmdir {} \; 2>/dev/null || true
    fi
    mkdir -p "$CG/supervisor" "$CG/payload"
    # nsenter --net (not `ip netns exec`, which remounts /sys and hides the cgroup mounts); the
    # unshare parent sits in CG/supervisor, the VM's PID 1 moves itself to CG/payload.
    sh -c 'echo $$ > "$1/supervisor/cgroup.procs" && exec nsenter --net="/run/netns/$2" unshare \
        --mount --propagation private --uts --ipc --pid --fork --kill-child /bin/sh "$3/init.sh"' \
        sh "$CG" "$MNS" "$D" &
    vm=$!
    echo $vm > "$D/vm.pid"
    booted "$vm" || true   # `booting` until systemd has finished booting (or the VM ended)
    echo up > "$D/power"
    rc=0; wait $vm || rc=$?
    # unshare ends itself with its child's signal: SIGHUP (129) = reboot, SIGINT (130) = power off
    [ $rc = 129 ] && [ ! -e "$D/halt" ] || break
    echo "vm.sh: $(date -u +%FT%TZ) the VM rebooted; booting it again" >&2
    echo rebooting > "$D/power"
  done
  echo "vm.sh: $(date -u +%FT%TZ) the VM stopped (status $rc)" >&2
  rm -f "$D/vm.pid" "$D/supervisor.pid"
  echo off > "$D/power"
}

machine_up() {
  machine_vars "$1" "$2"; local host=${3:?HOST}
  [ "$(id -u)" = 0 ] || die "must run as root"
  [ -x /lib/systemd/systemd ] || die "/lib/systemd/systemd is missing (apt-get install systemd)"
  [ -e "/run/netns/$MNS" ] || die "network namespace $MNS does not exist"
  [ -z "$(supervisor_pid)" ] || die "VM $D runs already"
  machine_disk "$host"
  setsid bash "${BASH_SOURCE[0]}" machine-run "$D" "$MNS" </dev/null >>"$D/console.log" 2>&1 &
  local i state="" power
  # the supervisor says `up` once systemd has finished booting
  for ((i = 1; i <= (VM_BOOT_TIMEOUT + 5) * 20; i++)); do
    power=""; read -r power 2>/dev/null < "$D/power" || true
    [ "$power" = up ] && break
    [ $i -gt 20 ] && [ -z "$(supervisor_pid)" ] && die "the VM stopped while booting"
    sleep 0.05
  done
  local p1; p1=$(init_pid)
  [ -n "$p1" ] || die "the VM of $D did not boot"
  state=$(nsenter -t "$p1" -a systemctl is-system-running 2>/dev/null || true)
  case $state in
    running) ;;
    degraded) die "the VM booted degraded: failed units: $(nsenter -t "$p1" -a systemctl --failed \
      --plain --no-legend --no-pager | cut -d' ' -f1 | tr '\n' ' ')(see \`vm.sh machine-enter $D $MNS journalctl -b\`)";;
    *) die "the VM did not finish booting in ${VM_BOOT_TIMEOUT}s (state '$state')";;
  esac
  nsenter -t "$p1" -n timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/22 && head -c 7 <&3' 2>/dev/null \
    | grep -q SSH-2.0 || die "sshd of $D does not answer"
}

# SIGKILL to every process of the VM's cgroup (cgroup.kill, Linux >= 5.14)
cut_power() { [ ! -e "$CG/cgroup.kill" ] || echo 1 > "$CG/cgroup.kill"; }

machine_down() {
  machine_vars "$1" "$2"
  local p i
  [ ! -d "$D" ] || touch "$D/halt"
  # A power cut: every process of the VM's cgroup (its `unshare`, and so its pid namespace); the
  # supervisor sees the VM end and, with $D/halt there, stops.
  for i in $(seq 250); do
    cut_power
    [ -z "$(supervisor_pid)" ] && break
    sleep 0.02
  done
  p=$(supervisor_pid)
  if [ -n "$p" ]; then
    kill -KILL "$p" 2>/dev/null || true
    cut_power
  fi
  if [ -e "/run/netns/$MNS" ]; then
    for i in $(seq 250); do
      [ -z "$(ip netns pids "$MNS" 2>/dev/null)" ] && break
      [ "$i" = 100 ] && ip netns pids "$MNS" | xargs -r kill -KILL 2>/dev/null   # nsenter'ed stragglers
      sleep 0.02
    done
    [ -z "$(ip netns pids "$MNS" 2>/dev/null)" ] || die "processes remain in netns $MNS"
    ip netns del "$MNS"
  fi
  if [ -d "$CG" ]; then   # a killed process leaves its cgroup once reaped: wait for that
    for i in $(seq 250); do
      find "$CG" -depth -type d -exec rmdir {} \; 2>/dev/null || true
      [ -d "$CG" ] || break
      sleep 0.02
    done
    [ ! -d "$CG" ] || die "cgroup $CG still holds processes: $(find "$CG" -name cgroup.procs -exec cat {} + | tr '\n' ' ')"
  fi
  if grep -qsE " $MNS-|$D/(upper|root)" /proc/[0-9]*/mountinfo; then die "mounts of $D are still present"; fi
  rm -rf "$D"
}

machine_enter() {
  machine_vars "$1" "$2"; shift 2
  local p; p=$(init_pid); [ -n "$p" ] || die "VM $D is not running"
  [ $# -gt 0 ] || set -- bash
  exec nsenter -t "$p" -a -- "$@"
}

machine_state() {
  machine_vars "$1" "$2"
  local p
  [ -n "$(supervisor_pid)" ] || { echo stopped; return 0; }
  p=$(init_pid)
  case $(cat "$D/power" 2>/dev/null) in
    up) if [ -n "$p" ]; then nsenter -t "$p" -a systemctl is-system-running 2>/dev/null || true
        else echo stopping; fi;;                 # systemd has ended; the supervisor has not seen it yet
    rebooting) echo rebooting;;
    *) [ "$(cat "$D/boots" 2>/dev/null || echo 1)" -gt 1 ] && echo rebooting || echo starting;;
  esac
}

# --- the local pattern's VMs -------------------------------------------------------------------
common() {
  ID=${1:?ID}; ROOT=${2:?ROOT}
  [[ $ID =~ ^[0-9a-f]{8}$ ]] || die "bad deployment id '$ID' (8 hex digits)"
  [[ $ROOT = /* && $ROOT =~ ^[A-Za-z0-9/_.+-]+$ ]] || die "vm_root '$ROOT' must be an absolute path of A-Za-z0-9/_.+-"
  local d
  for d in "${OVERLAYS[@]}" "${OWN[@]}" tmp run; do
    case "$ROOT/" in "/$d/"*) die "vm_root $ROOT is under /$d, which every VM replaces; use e.g. /mnt/tfgrid-compose-local";; esac
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


create() {
  common "$1" "$2"; vm_vars "$3"; local name=${4:?NAME}
  [ -n "$OCTET" ] || die "network of $ID is not up (net-up first)"
  # Terraform replaces a resource whose create failed without running its destroy, so clean up
  # leftovers first, and clean up after ourselves on failure.
  local left
  for left in "$S" "/run/netns/$NS" "/sys/class/net/$VETH" "/sys/fs/cgroup/$NS" "/sys/fs/cgroup/unified/$NS" ""; do
    [ -z "$left" ] || [ -e "$left" ] && break
  done
  if [ -n "$left" ]; then
    ( destroy "$ID" "$ROOT" "$INDEX" ) >/dev/null 2>&1 || true
  fi
  trap 'rc=$?; if [ $rc != 0 ]; then tail -20 "$S/console.log" >&2 2>/dev/null; ( destroy "$ID" "$ROOT" "$INDEX" ) >/dev/null 2>&1; fi' EXIT
  mkdir -p -m 700 "$S" "$S/upper/etc/wireguard"
  (umask 077
   local key; key=$(wg genkey)
   cat > "$S/upper/etc/wireguard/wg0.conf" <<CFG
[Interface]
PrivateKey = $key
ListenPort = $WG_PORT

[Peer]
PublicKey = $(wg pubkey < "$NET/host.key")
AllowedIPs = $WG_HOST/32
CFG
   cat > "$S/host-peer.conf" <<CFG
[Peer]
PublicKey = $(wg pubkey <<< "$key")
AllowedIPs = $WG_VM/32
Endpoint = $UL_VM:$WG_PORT
PersistentKeepalive = 25
CFG
   # run at every boot by the VM's unit tfgrid-vm-network.service
   cat > "$S/network.sh" <<NET
#!/bin/sh
# The network of VM $INDEX of deployment $ID (written by vm.sh): eth0 towards this machine, eth1
# on the deployment's LAN, WireGuard wg0 (userspace: wireguard-go), the host's only way in.
set -eu
ip link set lo up
ip addr replace $UL_VM/24 dev eth0; ip link set eth0 up
ip addr replace $LAN_VM/24 dev eth1; ip link set eth1 up
ip link show wg0 >/dev/null 2>&1 || LOG_LEVEL=error wireguard-go wg0
wg setconf wg0 /etc/wireguard/wg0.conf
ip addr replace $WG_VM/24 dev wg0
ip link set wg0 up
NET
  )
  ip netns add "$NS"
  ip link add "$VETH" type veth peer name eth0 netns "$NS"
  ip addr add "$UL_HOST/24" dev "$VETH"
  ip link set "$VETH" up
  ip -n "$NS" link add eth1 type veth peer name "p$INDEX" netns "$LAN_NS"
  ip -n "$LAN_NS" link set "p$INDEX" master br0
  ip -n "$LAN_NS" link set "p$INDEX" up
  VM_NETWORK=$S/network.sh machine_up "$S" "$NS" "$name-$INDEX"
  echo "$WG_VM $(cut -d' ' -f1,2 "$S/upper/etc/ssh/ssh_host_ed25519_key.pub")" > "$S/known_hosts"
  trap - EXIT
  echo "vm.sh: VM $INDEX of $ID up: wg $WG_VM, lan $LAN_VM, netns $NS"
}

destroy() {
  common "$1" "$2"; vm_vars "$3"
  ( machine_down "$S" "$NS" )
  ip link del "$VETH" 2>/dev/null || true
  [ -e "/run/netns/$LAN_NS" ] && ip -n "$LAN_NS" link del "p$INDEX" 2>/dev/null || true
}

cmd=${1:-}; shift || true
case "$cmd" in
  net-up)   [ $# = 2 ] || die "usage: net-up ID ROOT"; net_up "$@";;
  net-down) [ $# = 2 ] || die "usage: net-down ID ROOT"; net_down "$@";;
  create)   [ $# = 4 ] || die "usage: create ID ROOT INDEX NAME"; create "$@";;
  destroy)  [ $# = 3 ] || die "usage: destroy ID ROOT INDEX"; destroy "$@";;
  enter)    [ $# -ge 3 ] || die "usage: enter ID ROOT INDEX [CMD...]"
            common "$1" "$2"; vm_vars "$3"; shift 3; machine_enter "$S" "$NS" "$@";;
  state)    [ $# = 3 ] || die "usage: state ID ROOT INDEX"; common "$1" "$2"; vm_vars "$3"; machine_state "$S" "$NS";;
  machine-up)    [ $# = 3 ] || die "usage: machine-up DIR NS HOST"; machine_up "$@";;
  machine-down)  [ $# = 2 ] || die "usage: machine-down DIR NS"; machine_down "$@";;
  machine-enter) [ $# -ge 2 ] || die "usage: machine-enter DIR NS [CMD...]"; machine_enter "$@";;
  machine-state) [ $# = 2 ] || die "usage: machine-state DIR NS"; machine_state "$@";;
  machine-run)   [ $# = 2 ] || die "usage: machine-run DIR NS (started by machine-up)"; machine_run "$@";;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2;;
esac
