#!/bin/sh
# Waits until each service this VM runs answers its health endpoint with its token (20 s each;
# the local model, which has no token, 180 s: it reads 1.1 GB before it answers). The same
# whether systemd units or the setup hook's background processes run the services.
set -eu
CONF=/etc/tfgrid-ai
listen() { sed -n 's/^listen: *//p' "$CONF/$1.yaml"; }
for service in $(cat "$CONF/services"); do
  wait=20
  case $service in
    gateway) url="http://$(listen gateway)/api/v1/health" ;;
    agent) url="http://$(listen agent)/health" ;;
    git) url="http://127.0.0.1/api/v1/version" ;;  # through nginx, as the agent calls it
    llm) url="http://127.0.0.1:8081/v1/models"; wait=180 ;;
    *) continue ;;                                  # no health endpoint checked here
  esac
  # On failure, where the service's output is: the journal, or the setup hook's log file. Under
  # the setup hook's supervisor (local VMs), a service that has exited fails at once, with its log.
  pidfile=""
  if [ -d /run/systemd/system ]; then
    logs="journalctl -u tfgrid-ai-$service"
  else
    logs="/var/lib/tfgrid-ai/log/$service.log"
    [ -s "/var/lib/tfgrid-ai/run/$service.pid" ] && pidfile=/var/lib/tfgrid-ai/run/$service.pid
  fi
  python3 - "$url" "$CONF/$service.token" "$wait" "$logs" "$pidfile" <<'PY'
import os, sys, time, urllib.request
url, token_file, wait, logs, pidfile = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
def exited():
    if not pidfile:
        return False
    try:
        os.kill(int(open(pidfile).read().strip()), 0)
        return False
    except (OSError, ValueError):
        return True
headers = {}
if os.path.exists(token_file):
    headers["Authorization"] = "Bearer " + open(token_file).read().strip()
request = urllib.request.Request(url, headers=headers)
deadline = time.time() + wait
while True:
    try:
        with urllib.request.urlopen(request, timeout=2) as r:
            if r.status == 200:
                break
    except Exception as e:
        if exited():
            tail = open(logs, errors="replace").read().splitlines()[-5:] if os.path.exists(logs) else []
            sys.exit("%s has exited; the end of %s:\n%s" % (url, logs, "\n".join(tail)))
        if time.time() > deadline:
            sys.exit("%s does not answer: %s (its output: %s)" % (url, e, logs))
    time.sleep(0.1)
PY
  echo "ai-stack: $service answers at $url"
done
