#!/usr/bin/env bash
# Instructions per verify on each runtime, counted by valgrind's callgrind:
# figures that do not depend on a noisy or shared machine, to read beside
# the bench's times (and to explain why a time ratio differs between CPUs).
#
# Each runtime verifies the same 20 and 120 valid mixed Schnorr/ECDSA jobs
# (`hotwasm verify --check`), on its k256 module and then on its
# libsecp256k1 module (ratios are to native k256); the difference of the
# two totals over 100 is the cost of one verify, start-up and compilation
# cancelled out (wasmtime compiles with several threads: its compile varies
# by about 2 M instructions between runs, 2% of the 100 verifies).
#
#   scripts/count-instructions.sh [HOTWASM_BINARY] [OUT_DIR]
#
# Defaults: target/release/hotwasm, and no files (the table on stdout).
# Needs valgrind (apt-get install valgrind). wasmtime runs with its
# on-demand allocator (HOTWASM_WASMTIME_ALLOCATOR=on-demand): valgrind
# cannot reserve the pooling allocator's address space; the generated code
# is the same.
set -euo pipefail
bin=${1:-target/release/hotwasm}
out=${2:-}
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }
[ -x "$bin" ] || { echo "no hotwasm binary at $bin (cargo build --release)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for n in 20 120; do
  "$bin" generate --scheme mixed --count "$n" --invalid-ratio 0 --seed 7 >"$work/jobs$n.jsonl"
done

# Total instructions of one `hotwasm verify` under callgrind.
count() {
  local runtime=$1 variant=$2 jobs=$3 file="$work/callgrind.out"
  HOTWASM_WASMTIME_ALLOCATOR=on-demand valgrind --tool=callgrind --callgrind-out-file="$file" \
    "$bin" verify --runtime "$runtime" ${variant:+--variant "$variant"} --input "$jobs" --check \
    --call-timeout 600s --init-timeout 600s >/dev/null 2>"$work/valgrind.log" || {
    echo "valgrind: $runtime ${variant:-} failed:" >&2
    grep -v '^==' "$work/valgrind.log" >&2 || true
    return 1
  }
  awk '/^summary:/ { print $2 }' "$file"
}

printf 'CPU: %s\n' "$(lscpu | sed -n 's/^Model name: *//p')"
printf '| runtime | variant | instructions per verify | ratio to native |\n|---|---|---|---|\n'
native=""
json="["
for row in native: wasmtime:fast wasmi:fast wasm3:compat \
  wasmtime:libsecp256k1 wasmi:libsecp256k1 wasm3:libsecp256k1-compat; do
  runtime=${row%%:*} variant=${row#*:}
  if ! a=$(count "$runtime" "$variant" "$work/jobs20.jsonl") || ! b=$(count "$runtime" "$variant" "$work/jobs120.jsonl"); then
    printf '| %s | %s | failed under valgrind | |\n' "$runtime" "${variant:-built-in}"
    continue
  fi
  per=$(( (b - a) / 100 ))
  [ "$runtime" = native ] && native=$per
  ratio=$(awk -v p="$per" -v n="$native" 'BEGIN { printf "%.2fx", p / n }')
  printf '| %s | %s | %s | %s |\n' "$runtime" "${variant:-built-in}" "$per" "$ratio"
  json+=$(printf '%s{"runtime":"%s","variant":"%s","instructions_per_verify":%s,"total_20":%s,"total_120":%s}' \
    "$([ "$json" = "[" ] || echo ,)" "$runtime" "${variant:-built-in}" "$per" "$a" "$b")
done
json+="]"
if [ -n "$out" ]; then
  mkdir -p "$out"
  printf '%s\n' "$json" >"$out/instructions.json"
  echo "wrote $out/instructions.json" >&2
fi
