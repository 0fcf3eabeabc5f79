#!/usr/bin/env bash
# AI-stack benchmarks, written into docs/performance.md (between the bench-ai markers):
# `create` from command to live URL with an instantly answering LLM, 10 concurrent creates, and
# GET /api/v1/projects with 1,000 projects (p95). Real nginx, fcgiwrap, git and the release
# binary's gateway and agent on 127.0.0.1 (scripts/ai-loopback.sh); the LLM is a canned
# chat-completions server.
# Needs scripts/install-deps.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q
BIN=$PWD/target/release/tfgrid-compose
work=$(mktemp -d /tmp/tfgc-bench-ai.XXXXXX)
source scripts/ai-loopback.sh
cleanup() { ai_loopback_stop "$work"; sleep 0.3; rm -rf "$work"; }
trap cleanup EXIT
ai_loopback_start "$BIN" "$work"
web=$AI_WEB agent=$AI_AGENT token=$(cat "$AI_TOKEN_FILE")
pids=("${AI_PIDS[@]}")
export TFGRID_COMPOSE_AGENT_URL=http://127.0.0.1:$agent TFGRID_COMPOSE_AGENT_TOKEN_FILE=$work/token NO_COLOR=1

# --- create, one at a time: command start to live URL (the command returns once it is live) ----
runs=11
for i in $(seq $runs); do
  t0=$(date +%s%N); "$BIN" create "a small site number $i" --name "seq-$i" >/dev/null 2>>"$work/create.log"; t1=$(date +%s%N)
  echo $((t1 - t0))
done | sort -n > "$work/seq.txt"
create_med=$(awk '{a[NR]=$1} END{printf "%.0f", a[int((NR+1)/2)]/1e6}' "$work/seq.txt")
create_min=$(awk 'NR==1{printf "%.0f", $1/1e6}' "$work/seq.txt")
create_max=$(awk 'END{printf "%.0f", $1/1e6}' "$work/seq.txt")
curl -sf "http://127.0.0.1:$web/seq-1/" | grep -q Bench

# --- 10 concurrent creates --------------------------------------------------------------------
t0=$(date +%s%N)
for i in $(seq 10); do "$BIN" create "a concurrent site $i" --name "par-$i" >/dev/null 2>&1 & done
wait_fail=0
for job in $(jobs -p); do case " ${pids[*]} " in *" $job "*) ;; *) wait "$job" || wait_fail=$((wait_fail + 1));; esac; done
t1=$(date +%s%N)
par_ms=$(( (t1 - t0) / 1000000 ))
live=$("$BIN" projects --json | python3 -c 'import json,sys; print(sum(1 for p in json.load(sys.stdin)["projects"] if p["name"].startswith("par-") and p["status"] == "live"))')

# --- GET /api/v1/projects with 1,000 projects -----------------------------------------------------
python3 - "$work/agent/projects.db" <<'PY'
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], timeout=10)
now = int(time.time())
existing = db.execute("SELECT count(*) FROM projects").fetchone()[0]
rows = [("%016x" % (0xb000000000000000 + i), "bulk-%d" % i, "a site about item %d" % i, "live", None,
         "http://127.0.0.1/git/projects/bulk-%d.git" % i, "http://127.0.0.1/bulk-%d/" % i, None, '["repo","site","route"]', 1, now - i, now - i)
        for i in range(1000 - existing)]
db.executemany("INSERT INTO projects (id, name, prompt, status, error, repo_url, live_url, undone, created, attempts, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)
db.commit()
PY
count=$(curl -sf -H "Authorization: Bearer $token" "http://127.0.0.1:$agent/api/v1/projects" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["projects"]))')
for _ in $(seq 200); do
  curl -s -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $token" "http://127.0.0.1:$agent/api/v1/projects"
done | sort -n > "$work/list.txt"
p50=$(awk '{a[NR]=$1} END{printf "%.1f", a[int(NR*0.50)]*1000}' "$work/list.txt")
p95=$(awk '{a[NR]=$1} END{printf "%.1f", a[int(NR*0.95)]*1000}' "$work/list.txt")
bytes=$(curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:$agent/api/v1/projects" | wc -c)

section=$(cat <<MD
<!-- bench-ai -->
## AI stack (\`scripts/bench-ai.sh\`)

Measured on $(date -u +%Y-%m-%d), $(nproc) cores: release build, real nginx ($(nginx -v 2>&1 | sed 's/.*nginx\///')), fcgiwrap and git
on 127.0.0.1, plain git host, and an LLM that answers at once with a valid two-file site.

| measure | value |
| --- | --- |
| \`create\`, command start to live URL (median of $runs; goal < 1 s) | **${create_med} ms** (min ${create_min}, max ${create_max}) |
| 10 concurrent \`create\`s (max_concurrent_projects 3), all done | ${par_ms} ms, ${live}/10 live, ${wait_fail} failed |
| \`GET /api/v1/projects\`, ${count} projects (${bytes} bytes), p95 of 200 (goal < 50 ms) | **${p95} ms** (p50 ${p50} ms) |

A create is: generate, check (the site served on 127.0.0.1 and every local link fetched), commit
and push over smart HTTP, upload and route (a static route is a link to the site: no nginx
reload), verify (one right answer). The 10 concurrent creates run 3 at a time, the agent's
\`max_concurrent_projects\` here (\`scripts/bench-compare.sh\` admits all ten).
<!-- /bench-ai -->
MD
)
printf '%s\n' "$section" | python3 scripts/perf-section.py bench-ai
