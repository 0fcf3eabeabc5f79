#!/bin/sh
# Waits until each service this VM runs answers its health endpoint with its token (20 s each;
# the local model, which has no token, 180 s: it reads 1.1 GB before it answers). A service whose
# units have failed fails at once, with the end of their journal.
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
  python3 - "$url" "$CONF/$service.token" "$wait" "$service" <<'PY'
import os, subprocess, sys, time, urllib.request
url, token_file, wait, service = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
unit = "tfgrid-ai-%s.service" % service
def failed():
    state = subprocess.run(["systemctl", "is-failed", unit], capture_output=True, text=True)
    return state.stdout.strip() == "failed"
def journal():
    return subprocess.run(["journalctl", "-b", "-u", unit, "-n", "5", "--no-pager", "-o", "cat"],
                          capture_output=True, text=True).stdout
headers = {}
if os.path.exists(token_file):
    headers["Authorization"] = "Bearer " + open(token_file).readline().strip()  # the token sent: its first line
request = urllib.request.Request(url, headers=headers)
deadline = time.time() + wait
while True:
    try:
        with urllib.request.urlopen(request, timeout=2) as r:
            if r.status == 200:
                break
    except Exception as e:
        if failed():
            sys.exit("%s has failed; the end of `journalctl -u %s`:\n%s" % (unit, unit, journal()))
        if time.time() > deadline:
            sys.exit("%s does not answer: %s (its output: journalctl -u %s)" % (url, e, unit))
    time.sleep(0.1)
PY
  echo "ai-stack: $service answers at $url"
done
