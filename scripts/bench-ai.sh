#!/usr/bin/env bash
# AI-stack benchmarks, written into docs/performance.md (between the bench-ai markers):
# `create` from command to live URL with an instantly answering LLM, 10 concurrent creates, and
# GET /api/v1/projects with 1,000 projects (p95). Real nginx, fcgiwrap, git and the release
# binary's gateway and agent on 127.0.0.1; the LLM is a canned chat-completions server.
# Needs scripts/install-deps.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q
BIN=$PWD/target/release/tfgrid-compose
PATH=/usr/local/sbin:/usr/sbin:/sbin:$PATH
work=$(mktemp -d /tmp/tfgc-bench-ai.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -s "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  sleep 0.3; rm -rf "$work"
}
trap cleanup EXIT
read -r web gw agent llm < <(python3 -c 'import socket
ss=[socket.socket() for _ in range(4)]
[s.bind(("127.0.0.1",0)) for s in ss]
print(*[s.getsockname()[1] for s in ss])')
mkdir -p "$work"/{tmp,repos,gw/routes,agent}
token=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
(umask 077; echo "$token" > "$work/token")
backend=$(git --exec-path)/git-http-backend
cat > "$work/nginx.conf" <<CONF
user root root;
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 512; }
http {
  access_log off;
  client_body_temp_path $work/tmp/body; proxy_temp_path $work/tmp/proxy; fastcgi_temp_path $work/tmp/fastcgi;
  uwsgi_temp_path $work/tmp/uwsgi; scgi_temp_path $work/tmp/scgi;
  client_max_body_size 0;
  types { text/html html; text/css css; }
  server {
    listen 127.0.0.1:$web;
    include $work/gw/routes/*.conf;
    location ~ ^/git(/.*)\$ {
      include /etc/nginx/fastcgi_params;
      fastcgi_param SCRIPT_FILENAME $backend;
      fastcgi_param GIT_PROJECT_ROOT $work/repos;
      fastcgi_param GIT_HTTP_EXPORT_ALL "";
      fastcgi_param PATH_INFO \$1;
      fastcgi_pass unix:$work/fcgiwrap.sock;
    }
  }
}
CONF
cat > "$work/gateway.yaml" <<CONF
listen: 127.0.0.1:$gw
token_file: $work/token
state_dir: $work/gw
nginx: [nginx, -p, $work, -c, $work/nginx.conf, -e, $work/error.log]
rate_limit: 1000
CONF
cat > "$work/agent.yaml" <<CONF
listen: 127.0.0.1:$agent
token_file: $work/token
database: $work/agent/projects.db
max_concurrent_projects: 3
rate_limit: 1000
llm:
  - base_url: http://127.0.0.1:$llm/v1
    model: canned
git: {kind: plain, root: $work/repos, url: "http://127.0.0.1:$web/git", org: projects}
gateway: {api: "http://127.0.0.1:$gw", token_file: $work/token, public_url: "http://127.0.0.1:$web"}
CONF

# The LLM: answers at once with a small valid site.
python3 - "$llm" <<'PY' &
import http.server, json, sys
site = {"files": [
    {"path": "index.html", "content": "<!doctype html><html><head><link rel=\"stylesheet\" href=\"site.css\"></head><body><h1>Bench</h1></body></html>"},
    {"path": "site.css", "content": "body { background: #111; color: #eee; }"}]}
body = json.dumps({"id": "b", "object": "chat.completion", "model": "canned",
                   "choices": [{"index": 0, "message": {"role": "assistant", "content": json.dumps(site)}, "finish_reason": "stop"}]}).encode()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200); self.send_header("content-type", "application/json"); self.send_header("content-length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
pids+=($!)
fcgiwrap -s "unix:$work/fcgiwrap.sock" </dev/null & pids+=($!)
nginx -p "$work" -c "$work/nginx.conf" -e "$work/error.log"
"$BIN" serve gateway --config "$work/gateway.yaml" 2>"$work/gateway.log" & pids+=($!)
"$BIN" serve agent --config "$work/agent.yaml" 2>"$work/agent.log" & pids+=($!)
for port in $gw $agent $llm; do
  for _ in $(seq 100); do (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
done
export TFGRID_COMPOSE_AGENT_URL=http://127.0.0.1:$agent TFGRID_COMPOSE_AGENT_TOKEN_FILE=$work/token NO_COLOR=1

# --- create, one at a time: command start to live URL (the command returns once it is live) ----
runs=11
for i in $(seq $runs); do
  t0=$(date +%s%N); "$BIN" create "a small site number $i" --name "seq-$i" >/dev/null 2>>"$work/create.log"; t1=$(date +%s%N)
  echo $((t1 - t0))
  sleep 0.6   # let the gateway's reload spacing (500 ms) pass, as between two users' creates
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
and push over smart HTTP, upload and route (\`nginx -t\`, reload), verify (three right answers in a
row). Concurrent creates share the gateway, which spaces nginx reloads 500 ms apart, so ten
publishes take at least 4.5 s whatever the agent does.
<!-- /bench-ai -->
MD
)
printf '%s\n' "$section" | python3 scripts/perf-section.py bench-ai
