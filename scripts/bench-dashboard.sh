#!/usr/bin/env bash
# Dashboard benchmarks, written into docs/performance.md (between the bench-dashboard markers):
# time to first byte and bytes of the first page with one deployment and with 1,000, memory of
# the server idle and with 20 open event streams, and how long SIGTERM takes with them open.
# The release binary on 127.0.0.1 (or the one BIN names, to compare two builds side by side; then
# nothing is written to the docs); the deployments are registry entries with state folders.
# Also: the list of 20 deployments on the simulator, each priced from its Terraform state (what
# `ps --json` does), the first render and the next ones.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${BIN:-}" ]; then
  cargo build --release --locked -q
  BIN=$PWD/target/release/tfgrid-compose
  write=1
fi
work=$(mktemp -d /tmp/tfgc-bench-dash.XXXXXX)
dash=
curls=()
cleanup() {
  for p in "${curls[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "$dash" ] && kill "$dash" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# N registry entries (one JSON file each, as `up` writes them) with their state folders.
entries() {
  python3 - "$work/$1" "$2" <<'PY'
import json, os, secrets, sys, time
root, n = sys.argv[1], int(sys.argv[2])
os.makedirs(f"{root}/data/deployments", exist_ok=True)
now = int(time.time())
for i in range(n):
    id = secrets.token_hex(8)
    app = f"{root}/apps/app-{i}"
    state = f"{app}/.tfgrid-compose/default"
    os.makedirs(state, exist_ok=True)
    entry = {"schema_version": 1, "id": id, "app": f"app-{i}", "env": "default", "pattern": "single-vm",
             "status": "deployed", "primary_ip": f"10.1.{i // 250}.{i % 250 + 2}", "app_dir": app,
             "state_dir": state, "created_at": now - i * 60, "updated_at": now - i * 60}
    json.dump(entry, open(f"{root}/data/deployments/{id}.json", "w"))
    if os.environ.get("TFSTATE"):
        open(f"{state}/state.yaml", "w").write("{}\n")
        # What the grid's Terraform provider leaves: one deployment contract with one VM.
        os.makedirs(f"{state}/terraform", exist_ok=True)
        vm = {"name": "vm", "cpu": 2, "memory": 4096, "rootfs_size": 10240, "publicip": False}
        tfstate = {"version": 4, "resources": [{"type": "grid_deployment", "name": "vm", "instances": [
            {"attributes": {"id": str(1000 + i), "node": 11, "vms": [vm], "disks": []}}]}]}
        json.dump(tfstate, open(f"{state}/terraform/terraform.tfstate", "w"))
PY
}

# Starts the dashboard over $1's data (more flags after it); sets $dash, $host and $cookie.
start() {
  TFGRID_COMPOSE_DATA_DIR="$work/$1/data" TFGRID_COMPOSE_CONFIG_DIR="$work/$1/config" NO_COLOR=1 \
    "$BIN" "${@:2}" dashboard --listen 127.0.0.1:0 > "$work/$1.url" 2> "$work/$1.err" &
  dash=$!
  while [ ! -s "$work/$1.url" ]; do sleep 0.05; done
  url=$(head -1 "$work/$1.url")
  host=${url#http://}; host=${host%%/*}
  cookie=$(curl -s -o /dev/null -D - "$url" | sed -n 's/^set-cookie: \([^;]*\);.*/\1/p')
}

rss() { awk '/^VmRSS/ {print $2}' "/proc/$dash/status"; }

# median TTFB (ms) of 20 GETs of /, and the page's bytes
first_page() {
  for _ in $(seq 20); do
    curl -s -o /dev/null -b "$cookie" -w '%{time_starttransfer}\n' "http://$host/"
  done | sort -n | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)]*1000}'
}
page_bytes() { curl -s -b "$cookie" "http://$host/" | wc -c; }

entries one 1
start one
one_ttfb=$(first_page); one_bytes=$(page_bytes)
idle_kb=$(rss)
for _ in $(seq 20); do
  curl -sN -b "$cookie" -H 'Sec-Fetch-Site: same-origin' "http://$host/events" > /dev/null &
  curls+=($!)
done
# every stream has had its first event (the rows) once 20 connections are established
until [ "$(ss -Htn state established "( dport = :${host##*:} )" | wc -l)" -ge 20 ]; do sleep 0.05; done
sleep 1
streams_kb=$(rss)
t0=$(date +%s%N); kill -TERM "$dash"; wait "$dash" || true; t1=$(date +%s%N)
stop_ms=$(( (t1 - t0) / 1000000 )); dash=
for p in "${curls[@]}"; do wait "$p" 2>/dev/null || true; done; curls=()

entries many 1000
start many
many_ttfb=$(first_page); many_bytes=$(page_bytes)
many_kb=$(rss)
kill -TERM "$dash"; wait "$dash" || true; dash=

TFSTATE=1 entries sim 20
start sim --network sim
sim_first=$(curl -s -o /dev/null -b "$cookie" -w '%{time_starttransfer}' "http://$host/" | awk '{printf "%.1f", $1*1000}')
sim_ttfb=$(first_page)
sim_priced=$(curl -s -b "$cookie" "http://$host/" | grep -c '\$[0-9]' || true)
# Network work of 10 more renders: the sockets the dashboard binds or connects (a simulated
# GridProxy started and asked for its figures), counted by strace.
strace -f -qq -p "$dash" -e trace=bind,connect -o "$work/strace" &
tracer=$!
# attached once every thread of the dashboard names strace as its tracer
until ! grep -L "^TracerPid:[[:space:]]*$tracer\$" /proc/"$dash"/task/*/status | grep -q .; do sleep 0.05; done
for _ in $(seq 10); do curl -s -o /dev/null -b "$cookie" "http://$host/"; done
kill -INT "$tracer"; wait "$tracer" || true
sim_sockets=$(grep -c -E '^[0-9]+ +(bind|connect)\(' "$work/strace" || true)
kill -TERM "$dash"; wait "$dash" || true; dash=
if [ -z "${write:-}" ]; then
  echo "BIN=$BIN load: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "1 deployment ${one_ttfb} ms; 1,000 ${many_ttfb} ms; 20 on sim: first ${sim_first} ms, then ${sim_ttfb} ms (median of 20), ${sim_priced} lines priced, ${sim_sockets} sockets bound or connected in 10 renders"
  exit 0
fi

section=$(cat <<MD
<!-- bench-dashboard -->
## Dashboard (\`scripts/bench-dashboard.sh\`)

Measured on $(date -u +%Y-%m-%d), $(nproc) cores shared with other builds: release build on
127.0.0.1, curl as the client, deployments as registry entries with their state folders (the list
reads what \`ps --json\` reads: one registry file and one folder check per deployment).

| measure | value |
| --- | --- |
| \`/\` with 1 deployment: time to first byte (median of 20), bytes | **${one_ttfb} ms**, ${one_bytes} bytes |
| \`/\` with 1,000 deployments: time to first byte (median of 20), bytes | **${many_ttfb} ms**, ${many_bytes} bytes |
| memory (RSS) idle, after the first pages | ${idle_kb} KiB |
| memory (RSS) with 20 open event streams (\`/events\`) | ${streams_kb} KiB |
| memory (RSS) after serving the 1,000-deployment list 21 times | ${many_kb} KiB |
| SIGTERM with 20 event streams open, to exit (goal < 1 s) | **${stop_ms} ms** |
| \`/\` with 20 deployments on \`--network sim\`, each priced: first render, then (median of 20) | ${sim_first} ms, **${sim_ttfb} ms** (${sim_priced} rows priced) |
| sockets bound or connected in 10 more renders of that list (strace) | **${sim_sockets}** |

Each stream reads the registry every second and sends the rows when they changed; the list
page is rendered whole on the server (no script needed to read it). The list prices each
deployment as \`ps\` does, at figures the dashboard keeps per network (\`ops::cost::FiguresCache\`:
5 minutes at most, read again at once when the simulator's ledger, billing or the mnemonic
change), so a refresh starts no simulated GridProxy and asks no one.
<!-- /bench-dashboard -->
MD
)
echo "$section" | python3 scripts/perf-section.py bench-dashboard
