#!/bin/sh
# Installs the page and starts a small HTTP server on port 80 (python3's http.server).
set -eu
mkdir -p /srv/www
cp /tmp/app-source/index.html /srv/www/index.html
if [ -s /run/static-site.pid ] && kill -0 "$(cat /run/static-site.pid)" 2>/dev/null; then
  kill "$(cat /run/static-site.pid)"
fi
setsid python3 -m http.server 80 --bind 0.0.0.0 --directory /srv/www \
  </dev/null >/var/log/static-site.log 2>&1 &
echo $! > /run/static-site.pid
echo "static-site: serving /srv/www on port 80 (pid $(cat /run/static-site.pid))"
