#!/usr/bin/env bash
# The main job: build everything (guest modules included) in release, then
# generate signed jobs and verify them, checked against `expect`, on every
# runtime, then run the evaluation (`hotwasm bench`, ≤ 3 minutes on two
# cores) and write its report to $REPORT_DIR (default report/). Extra bench
# flags go in $BENCH_ARGS (e.g. BENCH_ARGS=--quick). Installs the wasm32
# target and libclang-dev when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi
if ! { ldconfig -p 2>/dev/null | grep -q libclang || [ -e /usr/lib/llvm-14/lib/libclang.so ]; }; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libclang-dev >/dev/null
fi

cargo build --release --locked -p hotwasm
hotwasm=target/release/hotwasm
jobs=$(mktemp --suffix=.jsonl)
trap 'rm -f "$jobs"' EXIT

"$hotwasm" modules list
"$hotwasm" generate --count "${COUNT:-1000}" --scheme mixed --invalid-ratio 0.2 > "$jobs"
for runtime in native wasmtime wasmi wasm3; do
  "$hotwasm" verify --runtime "$runtime" --input "$jobs" --check > /dev/null
done

# The evaluation: every runtime against native, checked, written as a report.
# shellcheck disable=SC2086 # BENCH_ARGS is a list of flags
"$hotwasm" bench --out "${REPORT_DIR:-report}" ${BENCH_ARGS:-}
