#!/usr/bin/env bash
# Property-based fuzzing (proptest; cargo-fuzz needs nightly) of the four parsers of text from
# outside: the app manifest, pattern.yaml, state.yaml and `tofu output -json` (tests/it/fuzz.rs).
# Runs FUZZ_CASES inputs per target (default 1000000) in a release build, one target at a time,
# and writes the counts, times and panics found as the `## Fuzzing` section of
# docs/reliability.md (other sections are left alone). Exits non-zero when a target fails.
set -euo pipefail
cd "$(dirname "$0")/.."
cases=${FUZZ_CASES:-1000000}
doc=docs/reliability.md
stats=$(mktemp /tmp/tfgc-fuzz-stats.XXXXXX)
section=$(mktemp /tmp/tfgc-fuzz-section.XXXXXX)
log=$(mktemp /tmp/tfgc-fuzz-log.XXXXXX)
trap 'rm -f "$stats" "$section"' EXIT

commas() { sed -E ':a;s/^([0-9]+)([0-9]{3})/\1,\2/;ta' <<<"$1"; }

# build first, so that the times are the fuzzing's only
cargo test --release --locked --test it --no-run -q
start=$(date +%s)
status=0
# RUST_LIB_BACKTRACE=0: no backtrace captured for each anyhow error of a rejected input (a panic's
# backtrace is still captured and reported)
PROPTEST_CASES=$cases FUZZ_STATS=$stats RUST_LIB_BACKTRACE=0 \
  cargo test --release --locked --test it fuzz:: -- --test-threads=1 2>&1 | tee "$log" || status=$?
wall=$(($(date +%s) - start))

proptest=$(awk '/^name = "proptest"$/ { getline; gsub(/"/, "", $3); print $3 }' Cargo.lock)
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
failed=$(grep -oE '^test fuzz::[a-z_]+ \.\.\. FAILED' "$log" | awk '{ print $2 }' | paste -sd, - || true)
panics=$(grep -cE '^fuzz target `[a-z-]+` failed: .* panicked' "$log" || true)

declare -A feeds=(
  [app-manifest]='`manifest::App::from_text` (all of `App::load` after the read: `manifest::from_yaml::<AppManifest>`, warnings, checks of names, commands, hooks and env file in a folder with the hook files), then `pattern_name`, `env_file`, `hooks` and `variables` against a pattern on what loaded; seeds: `tests/fixtures/apps/minimal/tfgrid-compose.yaml`, the example of `docs/manifest.md` and one with every legacy key'
  [pattern-manifest]='`manifest::PatternManifest::parse` (what `Pattern::load` does with the text: `manifest::from_yaml::<PatternManifest>`, errors with line and field); seeds: the five `patterns/*/pattern.yaml` and the two of `tests/fixtures/patterns/`'
  [state-yaml]='`state::DeploymentState::parse`; each state that parsed is serialized as `StateDir::save` does and must parse again, and a second round trip must give the same state; seeds: `tests/fixtures/state-minimal.yaml` and one with every key (journal, outputs, network, placement, runs, ai_stack, …)'
  [output-json]='`contract::PatternOutputs::from_output_json` (with a pattern name that is sometimes odd), then `vms()`; outputs that parsed are stored in a full `state.yaml` that must serialize and parse back (twice, unchanged); seeds: `IPV4_OUTPUTS` and `WG_OUTPUTS` of `tests/it/common.rs`, the dry run'"'"'s placeholder, `{}` and one with every output'
)
{
  echo "## Fuzzing"
  echo
  echo "Measured $(date -u +%Y-%m-%d) by \`scripts/fuzz.sh\`: proptest $proptest (property-based fuzzing on stable Rust;"
  echo "cargo-fuzz needs nightly), $(rustc --version | awk '{ print $1, $2 }'), release build, one target at a time on"
  echo "$(nproc) cores${cpu:+ ($cpu)}. The targets are in \`tests/it/fuzz.rs\`; each asserts only that the parser returns"
  echo "\`Ok\` or \`Err\` and never panics (a panic is caught with \`catch_unwind\` and reported with the input, shrunk by"
  echo "proptest, and its backtrace), and the round trips below."
  echo
  echo "| target | inputs | accepted | rejected | time | inputs/s | panics |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
  for target in app-manifest pattern-manifest state-yaml output-json; do
    line=$(grep "^$target " "$stats" || true)
    if [ -n "$line" ]; then
      read -r _ n ok err secs <<<"$line"
      rate=$(awk -v n="$n" -v s="$secs" 'BEGIN { printf "%d", (s > 0 ? n / s : n) }')
      echo "| $target | $(commas "$n") | $(commas "$ok") | $(commas "$err") | ${secs} s | $(commas "$rate") | 0 |"
    else
      echo "| $target | failed | | | | | see below |"
    fi
  done
  echo
  total=$(awk '{ s += $5 } END { printf "%.0f", s }' "$stats")
  echo "Total: $(commas "$cases") inputs per target, ${total} s of fuzzing (${wall} s for the whole \`cargo test\`). Panics found: ${panics}."
  if [ "$status" -ne 0 ]; then
    echo "**The run failed** (${failed:-see the log}); its output: \`$log\`."
  fi
  echo
  echo "What each target feeds its parser:"
  echo
  for target in app-manifest pattern-manifest state-yaml output-json; do
    echo "- \`$target\`: ${feeds[$target]}."
  done
  echo
  echo "Inputs: 2 in 10 are arbitrary (any characters, random bytes converted lossily to UTF-8, or"
  echo "a soup of YAML/JSON tokens and the schemas' keys); the others start from a valid seed. Half the"
  echo "YAML inputs (3 in 10 of the JSON ones) are seeds with 1 to 4 text mutations: bit flips, byte"
  echo "changes, truncation anywhere, deleted ranges, duplicated, deleted and swapped lines, a BOM"
  echo "(mostly at the start), tokens inserted anywhere or at a line's start, a value replaced by a"
  echo "token (tabs, \`: \`, \`- \`, \`{\`, \`[\`, anchors \`&a\`, aliases \`*a\`, \`<<: *a\`, tags, \`.nan\`,"
  echo "\`1e999\`, 2^64, 2^128, lone surrogate escapes, the schemas' words), raw non-UTF-8 bytes, nesting"
  echo "up to 299 deep (past the parsers' limit of 128) in eight shapes, alias bombs of up to 9 levels"
  echo "of 9 aliases, a chunk copied elsewhere, indentation changed. The rest are seeds edited as"
  echo "values (a node replaced by a random value of any type, a key removed or added, a node wrapped"
  echo "in a list) and written back, sometimes also text-mutated; \`tofu output -json\` also gets"
  echo "outputs built from parts (each output present or not, with or without \`value\`, of its type,"
  echo "near it, or anything)."
  echo
  echo "Re-run: \`bash scripts/fuzz.sh\` (\`FUZZ_CASES=N\` for another count per target; about"
  echo "8 minutes of release build first). One target: \`PROPTEST_CASES=N cargo test --release --test it"
  echo "fuzz::state_yaml\`. A plain \`cargo test\` runs each target with 1,000 inputs (\`PROPTEST_CASES\`"
  echo "overrides it)."
} >"$section"

mkdir -p docs
[ -f "$doc" ] || printf '# Reliability\n' >"$doc"
awk -v section="$section" '
  BEGIN { while ((getline line < section) > 0) text = text line "\n" }
  /^```/ { fence = !fence }
  !fence && /^## Fuzzing[[:space:]]*$/ { printf "%s", text; skip = 1; done = 1; last = "x"; next }
  skip && !fence && /^## / { skip = 0; print ""; }
  !skip { print; last = $0 }
  END { if (!done) { if (last != "") print ""; printf "%s", text } }
' "$doc" >"$doc.tmp"
mv "$doc.tmp" "$doc"
echo "fuzz: wrote the Fuzzing section of $doc (panics found: $panics)"
[ "$status" -eq 0 ] && rm -f "$log"
exit "$status"
