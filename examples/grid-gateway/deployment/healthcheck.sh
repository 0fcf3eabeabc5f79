#!/bin/sh
# Runs on the gateway: nginx must answer `/` with the backends' page, and within 20 s every
# backend (SECONDARY_IPS) must have answered through it at least once.
set -eu
python3 - $SECONDARY_IPS <<'PY'
import sys, time, urllib.request

backends = set(sys.argv[1:])
seen, last = set(), "no answer yet"
deadline = time.time() + 20
while time.time() < deadline:
    try:
        body = urllib.request.urlopen("http://127.0.0.1/", timeout=3).read().decode()
    except Exception as err:  # nginx starting, or a backend not up yet
        last = str(err)
        time.sleep(0.2)
        continue
    if "Hello from tfgrid-compose behind a gateway" not in body:
        last = "unexpected page: " + body[:200]
    else:
        seen.update(ip for ip in backends if "(%s)" % ip in body)
        if seen == backends:
            print("grid-gateway: the gateway serves the page from every backend: " + " ".join(sorted(seen)))
            sys.exit(0)
    time.sleep(0.1)
print("grid-gateway: backends not reached through the gateway: %s (last: %s)"
      % (" ".join(sorted(backends - seen)) or "none", last), file=sys.stderr)
sys.exit(1)
PY
