# Sourced by the benchmarks: an AI stack on 127.0.0.1 with an LLM that answers at once.
#   ai_loopback_start BIN WORK   starts it in WORK (a fresh folder) with BIN's `serve gateway` and
#                                `serve agent`; sets AI_WEB, AI_AGENT, AI_TOKEN_FILE, AI_PIDS;
#                                the agent runs $AI_MAX_CONCURRENT pipelines at once (default 3)
#   ai_loopback_stop WORK        stops what ai_loopback_start started (by PID, nothing else)
# Real nginx (its own prefix, a free port), fcgiwrap and git-http-backend, a plain git host.
# Needs scripts/install-deps.sh.
ai_loopback_start() {
  local bin=$1 work=$2 gw agent llm token backend
  PATH=/usr/local/sbin:/usr/sbin:/sbin:$PATH
  read -r AI_WEB gw AI_AGENT llm < <(python3 -c 'import socket
ss=[socket.socket() for _ in range(4)]
[s.bind(("127.0.0.1",0)) for s in ss]
print(*[s.getsockname()[1] for s in ss])')
  mkdir -p "$work"/{tmp,repos,gw/routes,agent}
  token=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
  AI_TOKEN_FILE=$work/token
  (umask 077; echo "$token" > "$AI_TOKEN_FILE")
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
    listen 127.0.0.1:$AI_WEB;
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
token_file: $AI_TOKEN_FILE
state_dir: $work/gw
nginx: [nginx, -p, $work, -c, $work/nginx.conf, -e, $work/error.log]
rate_limit: 1000
CONF
  cat > "$work/agent.yaml" <<CONF
listen: 127.0.0.1:$AI_AGENT
token_file: $AI_TOKEN_FILE
database: $work/agent/projects.db
max_concurrent_projects: ${AI_MAX_CONCURRENT:-3}
rate_limit: 1000
llm:
  - base_url: http://127.0.0.1:$llm/v1
    model: canned
git: {kind: plain, root: $work/repos, url: "http://127.0.0.1:$AI_WEB/git", org: projects}
gateway: {api: "http://127.0.0.1:$gw", token_file: $AI_TOKEN_FILE, public_url: "http://127.0.0.1:$AI_WEB"}
CONF
  AI_PIDS=()
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
  AI_PIDS+=($!)
  fcgiwrap -s "unix:$work/fcgiwrap.sock" </dev/null & AI_PIDS+=($!)
  nginx -p "$work" -c "$work/nginx.conf" -e "$work/error.log"
  "$bin" serve gateway --config "$work/gateway.yaml" 2>"$work/gateway.log" & AI_PIDS+=($!)
  "$bin" serve agent --config "$work/agent.yaml" 2>"$work/agent.log" & AI_PIDS+=($!)
  local port
  for port in $gw $AI_AGENT $llm; do
    for _ in $(seq 100); do (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
  done
}

ai_loopback_stop() {
  local work=$1 p
  for p in "${AI_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -s "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  AI_PIDS=()
}
