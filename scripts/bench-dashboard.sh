#!/usr/bin/env bash
# Dashboard benchmarks, written into docs/performance.md (between the bench-dashboard markers):
# time to first byte and bytes of the first page with one deployment and with 1,000, memory of
# the server idle and with 20 open event streams, and how long SIGTERM takes with them open.
# The release binary on 127.0.0.1; the deployments are registry entries with state folders.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q
BIN=$PWD/target/release/tfgrid-compose
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
PY
}

# Starts the dashboard over $1's data; sets $dash, $host and $cookie.
start() {
  TFGRID_COMPOSE_DATA_DIR="$work/$1/data" TFGRID_COMPOSE_CONFIG_DIR="$work/$1/config" NO_COLOR=1 \
    "$BIN" dashboard --listen 127.0.0.1:0 > "$work/$1.url" 2> "$work/$1.err" &
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

Each stream reads the registry every second and sends the rows when they changed; the list
page is rendered whole on the server (no script needed to read it).
<!-- /bench-dashboard -->
MD
)
echo "$section" | python3 scripts/perf-section.py bench-dashboard
