#!/usr/bin/env bash
# Two builds side by side, on the same work, alternately, so that a ratio holds on a noisy machine:
#
#   scripts/bench-compare.sh [-n ROUNDS] BEFORE AFTER [FIGURE...]
#
# BEFORE and AFTER are each a tfgrid-compose binary or a git revision (then checked out in a
# temporary worktree and built with `cargo build --release --locked`, which takes minutes).
# FIGUREs (default: all): up (`up` of examples/static-site on the local target, wall clock, and
# its platform phase from state.yaml), up4 (the same with vm_count 4), ps (`ps` with 1,000
# deployments, median of 11 per round), create (a `create` with an instantly answering LLM on
# 127.0.0.1, command start to live URL, median of 3 per round), create10 (10 concurrent creates,
# all live; the agent admits 10 pipelines at once, so none waits in its queue). Each round runs
# every figure on both builds, in the order A B, then B A the next.
# Prints, per figure, each build's median over the rounds, AFTER/BEFORE as the median of the
# rounds' ratios, and its spread (lowest and highest round). Needs root and
# scripts/install-deps.sh. Touches only its own temporary folders, VMs and processes.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=3
if [ "${1:-}" = -n ]; then rounds=$2; shift 2; fi
[ $# -ge 2 ] || { sed -n '2,15p' "$0" >&2; exit 2; }
before=$1 after=$2; shift 2
figures=("$@"); [ ${#figures[@]} -gt 0 ] || figures=(up up4 ps create create10)
work=$(mktemp -d /tmp/tfgc-bench-compare.XXXXXX)
export TFGRID_COMPOSE_DATA_DIR=$work/data TFGRID_COMPOSE_CONFIG_DIR=$work/config NO_COLOR=1
source scripts/ai-loopback.sh
export AI_MAX_CONCURRENT=10   # create10: all ten at once, none waiting in the agent's queue
declare -A BIN AI
cleanup() {
  local side app
  for app in "$work"/apps/*/; do
    [ -e "$app/.tfgrid-compose/default/state.yaml" ] && "${BIN[A]}" down --yes "$app" >/dev/null 2>&1 || true
  done
  for side in A B; do
    [ -n "${AI[$side]:-}" ] && { AI_PIDS=(${AI[$side]}); ai_loopback_stop "$work/ai-$side"; }
  done
  for wt in "$work"/rev-*; do [ -d "$wt" ] && git worktree remove --force "$wt"; done
  sleep 0.3; rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work"/{apps,res}

binary() {  # binary SIDE SPEC: a binary as is, or a revision built in a worktree
  if [ -x "$2" ] && [ -f "$2" ]; then BIN[$1]=$(realpath "$2"); return; fi
  local rev; rev=$(git rev-parse --verify "$2^{commit}")
  git worktree add -q --detach "$work/rev-$1" "$rev"
  echo "building $2 ($rev) ..." >&2
  (cd "$work/rev-$1" && CARGO_TARGET_DIR=$OLDPWD/target/bench-compare cargo build --release --locked -q)
  cp target/bench-compare/release/tfgrid-compose "$work/tfgrid-compose-$1"
  BIN[$1]=$work/tfgrid-compose-$1
}
binary A "$before"; binary B "$after"

ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END{print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
record() { echo "$3" >> "$work/res/$2.$1"; }  # record SIDE FIGURE VALUE

up_once() {  # up_once SIDE FIGURE VM_COUNT: `up`, its wall clock (and platform phase), `down`
  local side=$1 figure=$2 count=$3 app t0
  app=$work/apps/$figure-$side-$round
  cp -r examples/static-site "$app"
  [ "$count" = 1 ] || printf 'config:\n  vm_count: %s\n' "$count" >> "$app/tfgrid-compose.yaml"
  t0=$(date +%s%N)
  "${BIN[$side]}" -q up "$app" >/dev/null 2>"$work/up.log" || { cat "$work/up.log" >&2; exit 1; }
  record "$side" "$figure" "$(ms_since "$t0")"
  if [ "$figure" = up ]; then
    record "$side" platform "$(python3 -c 'import re,sys
t=open(sys.argv[1]).read()
print(re.search(r"- phase: platform\n(?:  .*\n)*?  duration_ms: (\d+)", t).group(1))' \
      "$app/.tfgrid-compose/default/state.yaml")"
  fi
  "${BIN[$side]}" -q down --yes "$app" >/dev/null
}

ps_once() {  # median of 11 `ps` of the 1,000-deployment registry
  local side=$1 t0
  for _ in $(seq 11); do
    t0=$(date +%s%N); TFGRID_COMPOSE_DATA_DIR=$work/ps-data "${BIN[$side]}" ps >/dev/null; ms_since "$t0"
  done | median | { read -r m; record "$side" ps "$m"; }
}

ai_ready() {  # the AI stack of SIDE, started once
  local side=$1
  if [ -z "${AI[$side]:-}" ]; then
    ai_loopback_start "${BIN[$side]}" "$work/ai-$side"
    AI[$side]="${AI_PIDS[*]}"; printf '%s\n' "$AI_AGENT" > "$work/ai-$side/agent.port"
  fi
  export TFGRID_COMPOSE_AGENT_URL=http://127.0.0.1:$(cat "$work/ai-$side/agent.port")
  export TFGRID_COMPOSE_AGENT_TOKEN_FILE=$work/ai-$side/token
}

create_once() {  # median of 3 creates, one after the other
  local side=$1 t0 i
  ai_ready "$side"
  for i in 1 2 3; do
    t0=$(date +%s%N)
    "${BIN[$side]}" create "a small site $round $i" --name "s-$round-$i" >/dev/null 2>>"$work/create.log"
    ms_since "$t0"
  done | median | { read -r m; record "$side" create "$m"; }
}

create10_once() {  # 10 creates at once, all live
  local side=$1 t0 i pids=() failed=0
  ai_ready "$side"
  t0=$(date +%s%N)
  for i in $(seq 10); do
    "${BIN[$side]}" create "a concurrent site $round $i" --name "p-$round-$i" >/dev/null 2>>"$work/create.log" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
  [ "$failed" = 0 ] || { echo "bench-compare: $failed of 10 concurrent creates failed" >&2; exit 1; }
  record "$side" create10 "$(ms_since "$t0")"
}

for f in "${figures[@]}"; do
  case $f in ps) python3 scripts/fake-registry.py "$work/ps-data/deployments" "$work/ps-apps" 1000 ;; esac
done
for round in $(seq "$rounds"); do
  order=(A B); [ $((round % 2)) = 0 ] && order=(B A)
  for f in "${figures[@]}"; do
    for side in "${order[@]}"; do
      case $f in
        up) up_once "$side" up 1 ;;
        up4) up_once "$side" up4 4 ;;
        ps) ps_once "$side" ;;
        create) create_once "$side" ;;
        create10) create10_once "$side" ;;
        *) echo "bench-compare: unknown figure \`$f\` (up, up4, ps, create, create10)" >&2; exit 2 ;;
      esac
    done
  done
  echo "round $round of $rounds done (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
done

python3 - "$work/res" "$before" "$after" "$rounds" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'PY'
import os, statistics as st, sys
res, before, after, rounds, load = sys.argv[1:]
def values(name, side):
    path = os.path.join(res, f"{name}.{side}")
    return [float(x) for x in open(path)] if os.path.exists(path) else []
def row(label, name_a, name_b=None, unit="ms"):
    a, b = values(name_a, "A"), values(name_b or name_a, "B")
    if not a or not b:
        return
    ratios = [y / x for x, y in zip(a, b)]
    print(f"| {label} | {st.median(a):.0f} {unit} | {st.median(b):.0f} {unit} | "
          f"**{st.median(ratios):.2f}×** | {min(ratios):.2f}–{max(ratios):.2f} |")
def within(label, num, den):
    a = [y / x for x, y in zip(values(den, "A"), values(num, "A"))]
    b = [y / x for x, y in zip(values(den, "B"), values(num, "B"))]
    if a and b:
        print(f"| {label} | {st.median(a):.2f}× ({min(a):.2f}–{max(a):.2f}) | "
              f"{st.median(b):.2f}× ({min(b):.2f}–{max(b):.2f}) | | |")
print(f"{rounds} rounds, alternating; load average at the end {load}.\n")
print(f"| figure | before ({before}) | after ({after}) | after ÷ before | spread |")
print("| --- | --- | --- | --- | --- |")
row("`up` of examples/static-site, local, 1 VM", "up")
row("its platform phase", "platform")
row("`up` with 4 VMs", "up4")
within("4 VMs ÷ 1 VM (same round)", "up4", "up")
row("`ps`, 1,000 deployments (median of 11)", "ps")
row("`create`, instant LLM (median of 3)", "create")
row("10 concurrent `create`s, all live", "create10")
within("10 concurrent ÷ one (same round)", "create10", "create")
PY
