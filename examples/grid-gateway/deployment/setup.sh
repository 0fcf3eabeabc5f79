#!/bin/sh
# Runs on every VM. A backend writes a page naming itself and serves it on port 8080 (the
# pattern's backend_port) with python3's http.server; the gateway, where the platform phase set
# up nginx, has nothing to start.
set -eu
PORT=8080
if [ "$VM_ROLE" != backend ]; then
  echo "grid-gateway: $VM_NAME ($VM_ROLE) is the gateway; nginx proxies to $SECONDARY_IPS"
  exit 0
fi
mkdir -p /srv/www
sed "s|__BACKEND__|$VM_NAME ($VM_IP)|" /tmp/app-source/index.html > /srv/www/index.html
if [ -s /run/grid-gateway.pid ] && kill -0 "$(cat /run/grid-gateway.pid)" 2>/dev/null; then
  kill "$(cat /run/grid-gateway.pid)"
  sleep 0.5
fi
setsid python3 -m http.server "$PORT" --bind 0.0.0.0 --directory /srv/www \
  </dev/null >/var/log/grid-gateway.log 2>&1 &
echo $! > /run/grid-gateway.pid
# answer before the hook returns, so that the gateway finds the backend up
for _ in $(seq 50); do
  if python3 -c 'import sys, urllib.request; urllib.request.urlopen("http://127.0.0.1:%s/" % sys.argv[1], timeout=2)' "$PORT" 2>/dev/null; then
    echo "grid-gateway: $VM_NAME serving /srv/www on $VM_IP:$PORT (pid $(cat /run/grid-gateway.pid))"
    exit 0
  fi
  sleep 0.2
done
echo "grid-gateway: the server on port $PORT did not start; its log:" >&2
cat /var/log/grid-gateway.log >&2
exit 1
