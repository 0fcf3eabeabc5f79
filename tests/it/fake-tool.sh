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
    # FAKE_PRINT: text the failing tool prints first (a secret it was never given, say)
    [ -n "${FAKE_PRINT:-}" ] && printf 'fatal: [vm]: token=%s in a line\n' "$FAKE_PRINT" >&2
    # FAKE_STDERR: what the failing tool prints on stderr first (a grid provider's error, say)
    [ -n "${FAKE_STDERR:-}" ] && printf '%s\n' "$FAKE_STDERR" >&2
    echo "fake $tool failed on purpose" >&2; exit 1;; esac
fi
# FAKE_FAIL_ONCE="TOOL:SUBSTRING" fails only the first such call
if [ -n "${FAKE_FAIL_ONCE:-}" ] && [ "${FAKE_FAIL_ONCE%%:*}" = "$tool" ] && [ ! -e "$FAKE_DIR/failed-once" ]; then
  case "$*" in *"${FAKE_FAIL_ONCE#*:}"*) touch "$FAKE_DIR/failed-once"; echo "fake $tool failed once on purpose" >&2; exit 1;; esac
fi
# FAKE_HANG="TOOL:SUBSTRING": that call runs 30 s. On its first SIGINT or SIGTERM it says so as
# Terraform does, takes FAKE_STOP_SECONDS (default 2) to write its state, or with FAKE_STOP_GATE
# set waits until $FAKE_DIR/gate-open exists (at most 120 s), and exits 1; every signal it gets is
# one line in $FAKE_DIR/signals.log.
if [ -n "${FAKE_HANG:-}" ] && [ "${FAKE_HANG%%:*}" = "$tool" ]; then
  case "$*" in *"${FAKE_HANG#*:}"*)
    stop() {
      printf '%s\n' "$1" >> "$FAKE_DIR/signals.log"
      [ -e "$FAKE_DIR/stopping" ] && return
      touch "$FAKE_DIR/stopping"
      echo "Interrupt received. Gracefully shutting down..." >&2
      if [ -n "${FAKE_STOP_GATE:-}" ]; then
        i=0; while [ ! -e "$FAKE_DIR/gate-open" ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done
      else
        i=0; while [ $i -lt "$(( ${FAKE_STOP_SECONDS:-2} * 10 ))" ]; do sleep 0.1; i=$((i+1)); done
      fi
      touch "$FAKE_DIR/stopped"; exit 1
    }
    trap 'stop INT' INT; trap 'stop TERM' TERM
    touch "$FAKE_DIR/hanging"
    i=0; while [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
    exit 0;;
  esac
fi
# FAKE_GATE="TOOL:SUBSTRING": that call touches $FAKE_DIR/at-gate, then waits until
# $FAKE_DIR/gate-open exists (at most 120 s), so that a test decides when it goes on.
if [ -n "${FAKE_GATE:-}" ] && [ "${FAKE_GATE%%:*}" = "$tool" ]; then
  case "$*" in *"${FAKE_GATE#*:}"*)
    touch "$FAKE_DIR/at-gate"
    i=0; while [ ! -e "$FAKE_DIR/gate-open" ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done;;
  esac
fi
# FAKE_MEET="TOOL:SUBSTRING:N": that call waits until N such calls have started, so that a test
# sees calls made at once; when they are not (one waits for the other), it fails after 60 s.
if [ -n "${FAKE_MEET:-}" ] && [ "${FAKE_MEET%%:*}" = "$tool" ]; then
  meet=${FAKE_MEET#*:}
  case "$*" in *"${meet%:*}"*)
    touch "$FAKE_DIR/meet.$$"
    i=0; while [ "$(ls "$FAKE_DIR" | grep -c '^meet\.')" -lt "${meet##*:}" ]; do
      [ $i -ge 600 ] && { echo "fake $tool: the other calls never came" >&2; exit 1; }
      sleep 0.1; i=$((i+1))
    done;;
  esac
fi
# FAKE_SSH_BAD_OPTION: ssh refuses an option's value as OpenSSH 9.2 does (argv_split on `-o`)
if [ -n "${FAKE_SSH_BAD_OPTION:-}" ] && [ "$tool" = ssh ]; then
  echo "command-line line 0: invalid quotes" >&2; exit 255
fi
# FAKE_HOSTKEY_CHANGED: ssh answers as OpenSSH 9.2 does when the host key differs from the pinned one
if [ -n "${FAKE_HOSTKEY_CHANGED:-}" ] && [ "$tool" = ssh ]; then
  kh=; port=22; prev=
  for a in "$@"; do
    # the value as ssh reads it: tools::ssh::config_path puts it in double quotes
    case "$a" in UserKnownHostsFile=*) kh=${a#UserKnownHostsFile=}; kh=${kh#\"}; kh=${kh%\"};; esac
    [ "$prev" = -p ] && port=$a
    case "$a" in *@*) host=${a#*@};; esac
    prev=$a
  done
  [ "$port" = 22 ] && name=$host || name="[$host]:$port"
  cat >&2 <<MSG
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!
Someone could be eavesdropping on you right now (man-in-the-middle attack)!
It is also possible that a host key has just been changed.
The fingerprint for the ED25519 key sent by the remote host is
SHA256:dVCBG+abUqiXkCI2k6QOwVNm/BjlQf/B3Lks6liZ8wA.
Please contact your system administrator.
Add correct host key in $kh to get rid of this message.
Offending ED25519 key in $kh:1
  remove with:
  ssh-keygen -f "$kh" -R "$name"
Host key for $name has changed and you have requested strict checking.
Host key verification failed.
MSG
  exit 255
fi
# FAKE_SCRIPT="TOOL:SUBSTRING:FILE": that call runs `sh FILE ARGV...` first (print a lot, fill a
# disk, print odd bytes) and fails with its status when it fails
if [ -n "${FAKE_SCRIPT:-}" ] && [ "${FAKE_SCRIPT%%:*}" = "$tool" ]; then
  rest=${FAKE_SCRIPT#*:}
  case "$*" in *"${rest%%:*}"*) sh "${rest#*:}" "$@" || exit $?;; esac
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
  ssh)
    # what a remote `cat > FILE` would have written: kept as $FAKE_DIR/stdin-<n>
    case "$*" in *"cat > "*) n=$(ls "$FAKE_DIR" | grep -c '^stdin-'); cat > "$FAKE_DIR/stdin-$n";; esac
    # verify's system-state check: a VM that has booted (FAKE_SYSTEM_STATE: another answer)
    case "$*" in *is-system-running*) printf '%s\n' "${FAKE_SYSTEM_STATE:-running}"; exit 0;; esac
    # `health`'s disk check: the root file system FAKE_DISK_USED (default 42) per cent used
    case "$*" in *"'df' '-P' '/'"*)
      printf 'Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/vda 100 %s 0 %s%% /\n' \
        "${FAKE_DISK_USED:-42}" "${FAKE_DISK_USED:-42}"; exit 0;; esac
    # `health`'s questions to Prometheus (`curl … http://127.0.0.1:9090/PATH`): the file
    # $FAKE_DIR/prometheus/PATH (its `/` as `-`, without the query string) when the test wrote
    # one, else an answer of its API with nothing in it
    case "$*" in *"http://127.0.0.1:9090/"*)
      path=${*##*http://127.0.0.1:9090/}; path=${path%%\'*}; path=${path%%\?*}
      file="$FAKE_DIR/prometheus/$(printf '%s' "$path" | tr / -)"
      if [ -e "$file" ]; then cat "$file"
      else printf '{"status":"success","data":{"resultType":"vector","result":[]}}\n'; fi
      exit 0;; esac
    [ -n "${FAKE_SSH_STDOUT:-}" ] && printf '%s\n' "$FAKE_SSH_STDOUT";;
esac
exit 0
