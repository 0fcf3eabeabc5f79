#!/bin/sh
# Asks the gateway's nginx (on this VM) four times; prints the backend named by each answer.
set -eu
for _ in 1 2 3 4; do
  python3 -c 'import re, urllib.request; b = urllib.request.urlopen("http://127.0.0.1/", timeout=3).read().decode(); print(re.search(r"Served by (.*)\.<", b).group(1))'
done
