#!/bin/sh
set -eu
python3 -c 'import sys, urllib.request; b = urllib.request.urlopen("http://127.0.0.1/", timeout=2).read().decode(); sys.exit(0 if "secondary: vm 1" in b else 1)'
echo "two-vm: primary serves both VMs' pages"
