#!/bin/sh
# Runs on the primary: fetches the other VM's page over the private network.
set -eu
other=$(echo "$PRIVATE_IPS" | cut -d' ' -f2)
for _ in $(seq 50); do
  if python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen("http://%s/whoami.txt" % sys.argv[1], timeout=2).read().decode())' "$other" > /tmp/other.txt; then break; fi
  sleep 0.2
done
{ echo "primary: $(cat /srv/www/whoami.txt)"; echo "secondary: $(cat /tmp/other.txt)"; } > /srv/www/index.html
cat /srv/www/index.html
