#!/bin/sh
# Waits (up to 20 s) until each service this VM runs answers its health endpoint with its token.
# The same whether systemd units or the setup hook's background processes run the services.
set -eu
CONF=/etc/tfgrid-ai
listen() { sed -n 's/^listen: *//p' "$CONF/$1.yaml"; }
for service in $(cat "$CONF/services"); do
  case $service in
    gateway) url="http://$(listen gateway)/api/v1/health" ;;
    agent) url="http://$(listen agent)/health" ;;
    git) url="http://127.0.0.1/api/v1/version" ;;  # through nginx, as the agent calls it
    *) continue ;;                                  # no health endpoint checked here
  esac
  # On failure, where the service's output is: the journal, or the setup hook's log file.
  if [ -d /run/systemd/system ]; then
    logs="journalctl -u tfgrid-ai-$service"
  else
    logs="/var/lib/tfgrid-ai/log/$service.log"
  fi
  python3 - "$url" "$CONF/$service.token" "$logs" <<'PY'
import sys, time, urllib.request
url, token = sys.argv[1], open(sys.argv[2]).read().strip()
request = urllib.request.Request(url, headers={"Authorization": "Bearer " + token})
deadline = time.time() + 20
while True:
    try:
        with urllib.request.urlopen(request, timeout=2) as r:
            if r.status == 200:
                break
    except Exception as e:
        if time.time() > deadline:
            sys.exit("%s does not answer: %s (its output: %s)" % (url, e, sys.argv[3]))
    time.sleep(0.1)
PY
  echo "ai-stack: $service answers at $url"
done
