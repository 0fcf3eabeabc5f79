#!/usr/bin/env bash
# The AI stack with its default local model, written into docs/performance.md (between the
# bench-llm markers): `up` of examples/ai-stack as shipped (three local VMs, the model on the
# agent's VM), then `create` of PROMPTS one after the other, each from command start to live URL;
# tokens/s as the agent received them, as llama.cpp's server measured them for the same answers,
# and as llama.cpp measures the same model on this machine outside the stack; the share of first
# answers that passed the check, attempts per site, and each create's tokens in (from the prompt
# cache) and out. Needs root and scripts/install-deps.sh
# (with the model); builds the release binary. Takes 5-20 minutes on two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q
BIN=$PWD/target/release/tfgrid-compose
SERVE=/opt/tfgrid-compose/llm/serve
[ -x "$SERVE" ] || { echo "bench-llm: $SERVE is missing; run scripts/install-deps.sh" >&2; exit 1; }
PROMPTS=(
  "todo list app"
  "bakery landing page"
  "portfolio website with dark mode"
  "个人作品集网站，深色模式"
  "recipe card for a lemon cake"
)
work=$(mktemp -d /tmp/tfgc-bench-llm.XXXXXX)
export TFGRID_COMPOSE_DATA_DIR=$work/data TFGRID_COMPOSE_CONFIG_DIR=$work/config NO_COLOR=1
app=$work/ai-stack
serve_pid=""
cleanup() {
  [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null || true
  [ -e "$app/.tfgrid-compose/default/state.yaml" ] && "$BIN" down --yes "$app" >/dev/null 2>&1 || true
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

cp -r examples/ai-stack "$app"
load_before=$(load)
t0=$(now_ms); "$BIN" up "$app" >"$work/up.log" 2>&1; t1=$(now_ms)
up_ms=$((t1 - t0))

: > "$work/creates.tsv"
for prompt in "${PROMPTS[@]}"; do
  t0=$(now_ms)
  status=0
  (cd "$app" && "$BIN" create "$prompt" --json) >"$work/events.jsonl" 2>"$work/create.err" || status=$?
  cat "$work/events.jsonl" >> "$work/all-events.jsonl"
  t1=$(now_ms)
  python3 - "$work/events.jsonl" "$prompt" "$((t1 - t0))" "$status" >> "$work/creates.tsv" <<'PY'
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
done
load_after=$(load)

python3 - "$work/creates.tsv" "$own" "$up_ms" "$load_before" "$load_after" <<'PY' | python3 scripts/perf-section.py bench-llm
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
