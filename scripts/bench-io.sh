#!/usr/bin/env bash
# Peak memory of `up` while a tool prints 300 MiB: runs the test that measures it
# (tests/it/world/io.rs, `a_tool_printing_300_mib_…`: `up` under /usr/bin/time while the fake
# `tofu apply` prints 300 MiB, odd bytes and colour codes, then fails) and writes the `bench-io`
# section of docs/performance.md through scripts/perf-section.py.
#   scripts/bench-io.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(cargo test --locked --test it world::io::a_tool_printing_300_mib -- --nocapture 2>&1) || {
  printf '%s\n' "$out" >&2
  exit 1
}
kib=$(printf '%s\n' "$out" | sed -n 's/^peak RSS of `up` while a tool printed 300 MiB: \([0-9]*\) KiB$/\1/p')
[ -n "$kib" ] || { echo "bench-io: the test printed no figure" >&2; exit 1; }
python3 scripts/perf-section.py bench-io <<SECTION
<!-- bench-io -->
## Memory while a tool prints a lot

\`scripts/bench-io.sh\`, $(date -u +%F), $(nproc) cores, the test profile's binary: peak resident
memory (\`/usr/bin/time\`'s maximum RSS) of \`up\` while the infrastructure phase's tool prints
300 MiB in 100-byte lines, a byte that is not UTF-8 and colour codes, then fails, with a secret
registered (so the log is scanned and rewritten for it): **$((kib / 1024)) MB** ($kib KiB; the goal
is under 50 MB whatever the size). The child writes to its log file, not through a pipe; the
runner then reads the log back in 1 MiB chunks to replace secrets, and only the last 64 KiB for the
error's tail; a captured stdout (\`tofu output -json\`) is kept up to 16 MiB and a larger one fails.
Before that (the runner read the whole log back into memory), the same run without the odd byte
peaked at 384156 KiB (375 MB), and with it the error quoted no line at all.
<!-- /bench-io -->
SECTION
