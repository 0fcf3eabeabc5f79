#!/bin/sh
# The page must be served within 10 s.
set -eu
for _ in $(seq 50); do
  if python3 - <<'PY'
import sys, urllib.request
body = urllib.request.urlopen("http://127.0.0.1/", timeout=2).read().decode()
sys.exit(0 if "Hello from tfgrid-compose" in body else 1)
PY
  then echo "static-site: healthy"; exit 0; fi
  sleep 0.2
done
echo "static-site: the page is not served" >&2
exit 1
