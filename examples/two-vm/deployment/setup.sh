#!/bin/sh
# Runs on every VM: a page naming this VM, served on port 80.
set -eu
mkdir -p /srv/www
echo "vm $VM_INDEX ($VM_ROLE) of $APP_NAME" > /srv/www/whoami.txt
cp /srv/www/whoami.txt /srv/www/index.html
setsid python3 -m http.server 80 --bind 0.0.0.0 --directory /srv/www </dev/null >/var/log/two-vm.log 2>&1 &
echo "two-vm: VM $VM_INDEX serving on port 80"
