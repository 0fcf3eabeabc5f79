#!/usr/bin/env bash
# The AI stack with its default local model.
#
#   scripts/bench-llm.sh [-p N]                 one build, written into docs/performance.md
#   scripts/bench-llm.sh [-p N] BEFORE AFTER    two binaries side by side, printed
#
# One build (the release binary, built here), written between the bench-llm markers: `up` of
# examples/ai-stack as shipped (three local VMs, the model on the agent's VM), then `create` of
# PROMPTS one after the other, each from command start to live URL; tokens/s as the agent received
# them, as llama.cpp's server measured them for the same answers, and as llama.cpp measures the
# same model on this machine outside the stack; the share of first answers that passed the check,
# attempts per site, and each create's tokens in (from the prompt cache) and out.
# Two binaries: one stack per binary, both up at once, and each prompt created on both, alternately
# (A then B, B then A for the next prompt), so the same load and the same prompts meet both;
# printed: per build the median create and its spread, tokens in/out per create, and AFTER/BEFORE
# as the median of the prompts' ratios with their spread. -p N: only the first N prompts.
# Needs root and scripts/install-deps.sh (with the model). Takes 5-20 minutes on two cores per
# build; do not compare on a loaded machine (the model's speed follows the load).
set -euo pipefail
cd "$(dirname "$0")/.."
count=0
if [ "${1:-}" = -p ]; then count=$2; shift 2; fi
[ $# = 0 ] || [ $# = 2 ] || { sed -n '2,21p' "$0" >&2; exit 2; }
if [ $# = 2 ]; then
  A=$(realpath "$1") B=$(realpath "$2")
  [ -x "$A" ] && [ -x "$B" ] || { echo "bench-llm: BEFORE and AFTER must be tfgrid-compose binaries" >&2; exit 2; }
else
  cargo build --release --locked -q
  A=$PWD/target/release/tfgrid-compose B=""
fi
SERVE=/opt/tfgrid-compose/llm/serve
[ -x "$SERVE" ] || { echo "bench-llm: $SERVE is missing; run scripts/install-deps.sh" >&2; exit 1; }
PROMPTS=(
  "todo list app"
  "bakery landing page"
  "portfolio website with dark mode"
  "个人作品集网站，深色模式"
  "recipe card for a lemon cake"
)
[ "$count" -gt 0 ] && PROMPTS=("${PROMPTS[@]:0:$count}")
work=$(mktemp -d /tmp/tfgc-bench-llm.XXXXXX)
export TFGRID_COMPOSE_DATA_DIR=$work/data TFGRID_COMPOSE_CONFIG_DIR=$work/config NO_COLOR=1
serve_pid=""
cleanup() {
  [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null || true
  local side
  for side in A B; do
    [ -e "$work/ai-$side/.tfgrid-compose/default/state.yaml" ] \
      && "${!side}" down --yes "$work/ai-$side" >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
load() { cut -d' ' -f1 /proc/loadavg; }

# llama.cpp's own figure: the same server program and model, on this machine outside the stack,
# one answer of at most 256 tokens; the speed is the server's `timings.predicted_per_second`.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$SERVE" --host 127.0.0.1 --port "$port" 2>"$work/serve.log" & serve_pid=$!
for _ in $(seq 600); do curl -sf -o /dev/null "http://127.0.0.1:$port/v1/models" && break; sleep 0.2; done
own=$(curl -sf "http://127.0.0.1:$port/v1/chat/completions" -H 'content-type: application/json' \
  -d '{"model":"m","max_tokens":256,"messages":[{"role":"user","content":"Write the HTML of a small page listing five fruits."}]}' \
  | python3 -c 'import json,sys; t=json.load(sys.stdin)["timings"]; print("%.1f %d %.1f" % (t["predicted_per_second"], t["predicted_n"], t["prompt_per_second"]))')
kill "$serve_pid"; wait "$serve_pid" 2>/dev/null || true; serve_pid=""

up_stack() {  # up_stack SIDE: the stack of binary $SIDE in $work/ai-SIDE; prints its `up` in ms
  local t0 t1; cp -r examples/ai-stack "$work/ai-$1"
  t0=$(now_ms); "${!1}" up "$work/ai-$1" >"$work/up-$1.log" 2>&1 || { tail -30 "$work/up-$1.log" >&2; exit 1; }
  t1=$(now_ms); echo $((t1 - t0))
}
create_one() {  # create_one SIDE PROMPT: one create, one line of creates-SIDE.tsv
  local side=$1 prompt=$2 t0 t1 status=0
  t0=$(now_ms)
  (cd "$work/ai-$side" && "${!side}" create "$prompt" --stack "$work/ai-$side" --json) >"$work/events.jsonl" 2>"$work/create.err" || status=$?
  [ $status = 0 ] || { echo "bench-llm: create \`$prompt\` on $side failed:" >&2; tail -5 "$work/create.err" >&2; }
  cat "$work/events.jsonl" >> "$work/all-events-$side.jsonl"
  t1=$(now_ms)
  python3 - "$work/events.jsonl" "$prompt" "$((t1 - t0))" "$status" >> "$work/creates-$side.tsv" <<'PY'
import json, sys
path, prompt, ms, status = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
attempts, tokens, secs, server, live, why = 0, 0, 0.0, [], "", ""
tokens_in, cached = 0, 0
for line in open(path):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    d = e.get("data") or {}
    if e.get("step") == "llm" and e.get("status") == "started":
        attempts += 1
    if e.get("step") == "llm" and e.get("status") == "done":
        tokens += d.get("tokens_out", 0)
        tokens_in += d.get("tokens_in") or 0
        cached += d.get("tokens_cached") or 0
        secs += d.get("elapsed_ms", 0) / 1000
        if d.get("server_tokens_per_s"):
            server.append(d["server_tokens_per_s"])
    if e.get("step") == "generate" and e.get("status") == "failed":
        why = e.get("message", "").replace("\t", " ").replace("|", "/")[:160]
    if e.get("event") == "created":
        live = (e.get("project") or {}).get("live_url") or ""
ok = status == 0 and bool(live)
print("\t".join([prompt, str(ms), str(int(ok)), str(attempts), str(tokens), "%.1f" % secs,
                 "%.1f" % (sum(server) / len(server)) if server else "", live, why, str(tokens_in), str(cached)]))
PY
}

load_before=$(load)
up_ms=$(up_stack A)
[ -z "$B" ] || up_ms_b=$(up_stack B)
: > "$work/creates-A.tsv"; : > "$work/creates-B.tsv"
i=0
for prompt in "${PROMPTS[@]}"; do
  if [ -z "$B" ]; then create_one A "$prompt"
  elif [ $((i % 2)) = 0 ]; then create_one A "$prompt"; create_one B "$prompt"
  else create_one B "$prompt"; create_one A "$prompt"; fi
  i=$((i + 1))
done
load_after=$(load)

if [ -n "$B" ]; then
  python3 - "$work/creates-A.tsv" "$work/creates-B.tsv" "$1" "$2" "$own" "$up_ms" "$up_ms_b" "$load_before" "$load_after" <<'PY'
import statistics as st, sys
a_path, b_path, before, after, own, up_a, up_b, load_before, load_after = sys.argv[1:]
def rows(path):
    return [l.rstrip("\n").split("\t") for l in open(path) if l.strip()]
a, b = rows(a_path), rows(b_path)
def side(label, rs, up):
    live = [int(r[1]) for r in rs if r[2] == "1"]
    first = sum(1 for r in rs if r[2] == "1" and r[3] == "1")
    spread = f"{min(live) / 1000:.1f}–{max(live) / 1000:.1f} s" if live else "-"
    med = f"{st.median(live) / 1000:.1f} s" if live else "-"
    t_in = st.median(int(r[9] or 0) for r in rs); t_cached = st.median(int(r[10] or 0) for r in rs)
    t_out = st.median(int(r[4]) for r in rs)
    print(f"| {label} | {med} | {spread} | {len(live)} of {len(rs)} | {first} | "
          f"{t_in:.0f} ({t_cached:.0f}) / {t_out:.0f} | {int(up) / 1000:.0f} s |")
print(f"{len(a)} prompts, each created on both builds alternately; load average {load_before} before, "
      f"{load_after} after; llama.cpp outside the stack: {own.split()[0]} tokens/s.\n")
print("| build | create, median | spread | live | first answer passed | tokens in (cached) / out, median per create | `up` |")
print("| --- | --- | --- | --- | --- | --- | --- |")
side(f"before ({before})", a, up_a)
side(f"after ({after})", b, up_b)
ratios = [int(y[1]) / int(x[1]) for x, y in zip(a, b) if x[2] == y[2] == "1"]
if ratios:
    print(f"\nafter ÷ before, per prompt: **{st.median(ratios):.2f}×** ({min(ratios):.2f}–{max(ratios):.2f})")
print("\n| prompt | before | tokens in (cached) / out | after | tokens in (cached) / out |")
print("| --- | --- | --- | --- | --- |")
for x, y in zip(a, b):
    cell = lambda r: (f"{int(r[1]) / 1000:.1f} s" if r[2] == "1" else "failed", f"{r[9]} ({r[10]}) / {r[4]}")
    print(f"| {x[0]} | {cell(x)[0]} | {cell(x)[1]} | {cell(y)[0]} | {cell(y)[1]} |")
PY
  exit 0
fi
python3 - "$work/creates-A.tsv" "$own" "$up_ms" "$load_before" "$load_after" <<'PY' | python3 scripts/perf-section.py bench-llm
import datetime, os, statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
own_rate, own_n, own_prompt = sys.argv[2].split()
up_ms, load_before, load_after = int(sys.argv[3]), sys.argv[4], sys.argv[5]
fmt = lambda ms: "%dm %02ds" % divmod(round(ms / 1000), 60) if ms >= 60000 else "%ds" % round(ms / 1000)
live = [r for r in rows if r[2] == "1"]
first = [r for r in live if r[3] == "1"]
table = "\n".join(
    "| %s | %s | %s | %s | %s (%s) / %s | %s | %s |" % (
        r[0], fmt(int(r[1])), "live" if r[2] == "1" else "failed: " + (r[8] or "see the log"), r[3],
        r[9], r[10], r[4],
        "%.1f" % (int(r[4]) / float(r[5])) if float(r[5]) > 0 else "-", r[6] or "-")
    for r in rows)
median = fmt(statistics.median(int(r[1]) for r in live)) if live else "-"
spread = "min %s, max %s" % (fmt(min(int(r[1]) for r in live)), fmt(max(int(r[1]) for r in live))) if live else "-"
received = [int(r[4]) / float(r[5]) for r in rows if float(r[5]) > 0]
server = [float(r[6]) for r in rows if r[6]]
attempts = [int(r[3]) for r in live]
section = f"""<!-- bench-llm -->
## AI stack with the default local model (`scripts/bench-llm.sh`)

Measured on {datetime.date.today()}, {os.cpu_count()} cores (load average {load_before} before,
{load_after} after); release build; examples/ai-stack as shipped on the local pattern: the model
(Qwen2.5-Coder-1.5B-Instruct Q4_K_M on llama.cpp's server, PyPI xllamacpp) on the agent's VM.
`up` took {fmt(up_ms)}.

| prompt | command start to live URL | result | attempts | tokens in (from the cache) / out | tokens/s received | tokens/s (server) |
| --- | --- | --- | --- | --- | --- | --- |
{table}

- `create` to live URL, median of the {len(live)} live of {len(rows)}: **{median}** ({spread}).
- Tokens/s: **{statistics.mean(received) if received else 0:.1f}** as the agent received them (prompt
  reading included), **{statistics.mean(server) if server else 0:.1f}** as llama.cpp's server measured
  the same answers' generation, against **{own_rate}** that llama.cpp measures for the same model on
  this machine outside the stack ({own_n} tokens; prompt reading {own_prompt} tokens/s).
- First answers that passed the check: **{len(first)} of {len(rows)}**; attempts per live site:
  **{statistics.mean(attempts) if attempts else 0:.1f}** (max {max(attempts) if attempts else 0}).
<!-- /bench-llm -->"""
print(section)
PY
