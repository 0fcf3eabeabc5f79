#!/usr/bin/env bash
# Kill loops on the local target, written to docs/reliability.md: `up` of examples/static-site is
# killed (SIGKILL, then in a second loop SIGINT) at POINTS moments spread over every phase, then
# recovered with `up --resume` + `down` (odd points) or `down` alone (even points). After each
# point: state.yaml parses (or was never written), the recovery succeeds, and after `down` nothing
# is left: no namespace, link, mount or process of the run.
# Needs root and scripts/install-deps.sh; builds the release binary. POINTS defaults to 50.
set -euo pipefail
cd "$(dirname "$0")/.."
POINTS=${POINTS:-50}
set -m  # each background `up` in its own process group, SIGINT not ignored
cargo build --release --locked -q
BIN=$PWD/target/release/tfgrid-compose
work=$(mktemp -d /tmp/tfgc-reliability.XXXXXX)
app=$work/static-site
cleanup() {
  [ -e "$app/.tfgrid-compose/default/state.yaml" ] && "$BIN" down --yes "$app" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
export TFGRID_COMPOSE_DATA_DIR=$work/data TFGRID_COMPOSE_CONFIG_DIR=$work/config NO_COLOR=1
cp -r examples/static-site "$app"
rm -rf "$app/.tfgrid-compose"

now_ms() { date +%s%3N; }

# What a run may leave: the local pattern's namespaces (tfl-*), veths (tfv*), WireGuard
# interfaces (tfgc*), overlay mounts (tfl-*), VM cgroups (tfl-*), and any process whose command line names this run.
leftovers() {
  local out=""
  out+=$(ip netns list 2>/dev/null | awk '$1 ~ /^tfl-/ {print "netns " $1}')
  out+=$(ip -o link show 2>/dev/null | awk -F': ' '$2 ~ /^(tfv|tfgc)/ {print "link " $2}')
  out+=$(awk '$1 ~ /^tfl-/ {print "mount " $2}' /proc/mounts)
  # a VM booting systemd has a cgroup of its own, tfl-ID-INDEX under the cgroup2 mount
  out+=$(find "$(awk '$3 == "cgroup2" {print $2; exit}' /proc/mounts)" -maxdepth 1 -name 'tfl-*' -printf 'cgroup %p\n' 2>/dev/null)
  out+=$(pgrep -af -- "$work" | grep -v -e "pgrep" -e "reliability.sh" | sed 's/^/process /' || true)
  printf '%s' "$out"
}

[ -z "$(leftovers)" ] || { echo "reliability: this machine has local-pattern leftovers already:" >&2; leftovers >&2; exit 1; }

# One full run, for the phase boundaries.
t0=$(now_ms)
"$BIN" --json up "$app" > "$work/events.json" 2>/dev/null
full_ms=$(( $(now_ms) - t0 ))
"$BIN" down --yes "$app" >/dev/null 2>&1
phases=$(python3 - "$work/events.json" <<'PY'
import json, sys
print(" ".join(json.loads(l)["phase"] for l in open(sys.argv[1]) if '"phase-started"' in l))
PY
)

# loop SIGNAL -> lines "point ms signal phase-at-kill recovery result"
loop() {
  local sig=$1 i delay pid code state_ok phase recovery ok failures=0 left
  for i in $(seq 1 "$POINTS"); do
    delay=$(( full_ms * i / (POINTS + 1) ))
    "$BIN" up "$app" >"$work/up.out" 2>&1 &
    pid=$!
    sleep "$(awk -v d="$delay" 'BEGIN{printf "%.3f", d/1000}')"
    kill -s "$sig" "$pid" 2>/dev/null || true
    code=0; wait "$pid" || code=$?
    state="$app/.tfgrid-compose/default/state.yaml"
    phase=none; state_ok=yes
    if [ -e "$state" ]; then
      if "$BIN" status --json "$app" >"$work/status.json" 2>"$work/status.err"; then
        phase=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["deployment"]; j=[r for r in d.get("journal",[]) if r["status"]!="done"]; print(j[0]["phase"]+":"+j[0]["status"] if j else "all-done")' "$work/status.json" 2>/dev/null || echo "?")
      else
        state_ok=no
      fi
    fi
    ok=yes
    if [ $((i % 2)) = 1 ]; then
      recovery="up --resume + down"
      if [ -e "$state" ]; then
        "$BIN" up --resume "$app" >"$work/rec.out" 2>&1 || ok=no
      else
        "$BIN" up "$app" >"$work/rec.out" 2>&1 || ok=no
      fi
      [ "$ok" = yes ] && { curl -fsS -m 5 "http://$("$BIN" address "$app" | head -1)/" >/dev/null 2>&1 || ok=no; }
      [ -e "$state" ] && { "$BIN" down --yes "$app" >>"$work/rec.out" 2>&1 || ok=no; }
    else
      recovery="down"
      if [ -e "$state" ]; then "$BIN" down --yes "$app" >"$work/rec.out" 2>&1 || ok=no; fi
    fi
    # An SIGKILLed up's children finish on their own (their output goes to logs); give them time.
    for _ in $(seq 100); do [ -z "$(leftovers)" ] && break; sleep 0.2; done
    left=$(leftovers | tr '\n' ';')
    if [ "$ok" != yes ] || [ "$state_ok" != yes ] || [ -n "$left" ]; then
      failures=$((failures + 1))
      echo "reliability: point $i ($sig at ${delay}ms) failed: recovery=$ok state=$state_ok left=[$left]" >&2
      sed 's/^/  | /' "$work/rec.out" >&2
      # Leave the machine as it was before going on.
      [ -e "$state" ] && "$BIN" down --yes "$app" >/dev/null 2>&1 || true
    fi
    echo "$i $delay $sig $code $phase $state_ok ${recovery// /_} $ok ${left:-nothing}"
  done > "$work/loop-$sig.txt"
  echo "$failures"
}

kill_failures=$(loop KILL)
int_failures=$(loop INT)

summary() {  # summary FILE -> "phase (count)" list, exit codes
  python3 - "$1" <<'PY'
import collections, sys
rows = [l.split() for l in open(sys.argv[1])]
phases = collections.Counter(r[4].split(":")[0] for r in rows)
codes = collections.Counter(r[3] for r in rows)
rec = sum(1 for r in rows if r[7] == "yes")
parsed = sum(1 for r in rows if r[5] == "yes")
left = sum(1 for r in rows if r[8] != "nothing")
print(f"| points | {len(rows)} |")
print(f"| where the kill landed (first phase not done) | {', '.join(f'{k} {v}' for k, v in sorted(phases.items()))} |")
print(f"| exit codes of the killed `up` | {', '.join(f'{k}: {v}' for k, v in sorted(codes.items()))} |")
print(f"| state.yaml parsed afterwards | {parsed}/{len(rows)} |")
print(f"| recovered (`up --resume` then site answers then `down`, or `down`) | {rec}/{len(rows)} |")
print(f"| points that left something behind | {left} |")
PY
}

python3 - docs/reliability.md "## Kill loops" <<PY
import sys
path, heading = sys.argv[1], sys.argv[2]
section = """## Kill loops

\`scripts/reliability.sh\` (POINTS=$POINTS), $(date -u +%Y-%m-%d), $(nproc) cores: \`up\` of examples/static-site on
the local pattern (one full run: ${full_ms} ms; phases ${phases}) is stopped at $POINTS moments spread
evenly over the run, then recovered: odd points with \`up --resume\` (the site must answer) and \`down\`,
even points with \`down\` alone. After each point the script checks that \`state.yaml\` parses, the
recovery succeeds, and nothing is left: no \`tfl-*\` namespace or mount, no \`tfv*\`/\`tfgc*\` link, no
process naming the run's folder.

### SIGKILL (\`kill -9\` of the binary; its children finish on their own)

| | |
| --- | --- |
$(summary "$work/loop-KILL.txt")

### SIGINT (\`kill -INT\` of the binary alone, as CI runners and \`timeout -s INT\` send it)

| | |
| --- | --- |
$(summary "$work/loop-INT.txt")

"""
try:
    text = open(path).read()
except FileNotFoundError:
    text = "# Reliability\n"
start = text.find(heading + "\n")
if start < 0:
    text = text.rstrip("\n") + "\n\n" + section
else:
    end = text.find("\n## ", start + 1)
    text = text[:start] + section + ("" if end < 0 else text[end + 1:])
open(path, "w").write(text)
PY
echo "reliability: SIGKILL loop failures $kill_failures, SIGINT loop failures $int_failures; written to docs/reliability.md"
[ "$kill_failures" = 0 ] && [ "$int_failures" = 0 ]
