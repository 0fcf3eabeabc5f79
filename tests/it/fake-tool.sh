#!/bin/sh
# A fake tool for the flow tests: records its argv (one line, US (0x1f) between words) in $FAKE_LOG,
# answers by subcommand, and fails as FAKE_FAIL says.
tool=$(basename "$0")
line=$tool
for a in "$@"; do line=$line$(printf '\037')$a; done
printf '%s\n' "$line" >> "$FAKE_LOG"   # one write: parallel calls do not interleave
[ -n "${TF_VAR_mnemonic:-}" ] && [ "$tool" = tofu ] && printf 'mnemonic-seen\n' >> "$FAKE_DIR/env.log"
# FAKE_FAIL="TOOL:SUBSTRING" fails TOOL when its argv contains SUBSTRING
if [ -n "${FAKE_FAIL:-}" ] && [ "${FAKE_FAIL%%:*}" = "$tool" ]; then
  # FAKE_ECHO_SECRET: fail as the grid provider does on a phrase it rejects, printing it
  case "$*" in *"${FAKE_FAIL#*:}"*)
    [ -n "${FAKE_ECHO_SECRET:-}" ] && printf 'Error: failed to load twin: mnemonic "%s" has no twin on main\n' "$MNEMONIC" >&2
    [ -n "${FAKE_ECHO_SECRET:-}" ] && printf 'stdout line with %s in it\n' "$TF_VAR_mnemonic"
    echo "fake $tool failed on purpose" >&2; exit 1;; esac
fi
# FAKE_FAIL_ONCE="TOOL:SUBSTRING" fails only the first such call
if [ -n "${FAKE_FAIL_ONCE:-}" ] && [ "${FAKE_FAIL_ONCE%%:*}" = "$tool" ] && [ ! -e "$FAKE_DIR/failed-once" ]; then
  case "$*" in *"${FAKE_FAIL_ONCE#*:}"*) touch "$FAKE_DIR/failed-once"; echo "fake $tool failed once on purpose" >&2; exit 1;; esac
fi
case "$tool" in
  tofu)
    for a in "$@"; do case "$a" in -chdir=*) dir=${a#-chdir=};; esac; done
    case " $* " in
      *" apply "*) echo '{"version":4}' > "$dir/terraform.tfstate"; rm -f "$FAKE_DIR/destroyed";;
      *" destroy "*) touch "$FAKE_DIR/destroyed";;
      *" output "*) if [ -e "$FAKE_DIR/destroyed" ]; then echo '{}'; else cat "$FAKE_DIR/outputs.json"; fi;;
    esac;;
  ssh-keygen)
    while [ $# -gt 0 ]; do [ "$1" = -f ] && key=$2; shift; done
    echo private > "$key"; echo "ssh-ed25519 AAAAfake test" > "$key.pub";;
  ssh) [ -n "${FAKE_SSH_STDOUT:-}" ] && printf '%s\n' "$FAKE_SSH_STDOUT";;
  ansible-playbook) [ -n "${FAKE_SLEEP_ANSIBLE:-}" ] && sleep "$FAKE_SLEEP_ANSIBLE";;
esac
exit 0
