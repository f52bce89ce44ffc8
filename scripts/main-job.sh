#!/usr/bin/env bash
# The main job, on a fresh machine with rustup, cargo and apt: installs what
# is missing (scripts/setup.sh), builds everything (guest modules included)
# in release, generates signed jobs and verifies them, checked against
# `expect`, on every runtime, then runs the evaluation (`hotwasm bench`, ≤ 3
# minutes on two cores) against a Redis server of its own, so the report has
# every end-to-end row, and writes it to $REPORT_DIR (default report/).
# Extra bench flags go in $BENCH_ARGS (e.g. BENCH_ARGS=--quick); set
# HOTWASM_REDIS to use a Redis server of yours instead.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS

log() { printf '\n==> %s\n' "$*" >&2; }

# shellcheck source=scripts/setup.sh
source scripts/setup.sh

log "cargo build --release"
cargo build --release --locked -p hotwasm
hotwasm=target/release/hotwasm
scratch=$(mktemp -d)
redis_pid=""
cleanup() {
  if [ -n "$redis_pid" ]; then
    kill "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
  fi
  rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$hotwasm" modules list
log "verify signed jobs on every runtime, checked against expect"
"$hotwasm" generate --count "${COUNT:-1000}" --scheme mixed --invalid-ratio 0.2 > "$scratch/jobs.jsonl"
for runtime in native wasmtime wasmi wasm3; do
  "$hotwasm" verify --runtime "$runtime" --input "$scratch/jobs.jsonl" --check > /dev/null
done

log "the demo: the whole pipeline in one process, modules swapped mid-run"
"$hotwasm" demo --count 2000

# A Redis server of the job's own: on a Unix socket in the scratch folder (no
# port to collide with, nothing reachable from outside), no persistence.
if [ -z "${HOTWASM_REDIS:-}" ]; then
  log "starting redis-server on $scratch/redis.sock"
  redis-server --port 0 --unixsocket "$scratch/redis.sock" --unixsocketperm 700 \
    --dir "$scratch" --save '' --appendonly no --daemonize no \
    --logfile "$scratch/redis.log" &
  redis_pid=$!
  for _ in $(seq 100); do
    redis-cli -s "$scratch/redis.sock" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  redis-cli -s "$scratch/redis.sock" ping >/dev/null || { cat "$scratch/redis.log" >&2; exit 2; }
  export HOTWASM_REDIS="redis+unix://$scratch/redis.sock"
fi

# The evaluation: every runtime against native, checked, written as a report.
log "hotwasm bench"
# shellcheck disable=SC2086 # BENCH_ARGS is a list of flags
"$hotwasm" bench --out "${REPORT_DIR:-report}" ${BENCH_ARGS:-}
elapsed=$((SECONDS - started))
printf 'main job wall time: %dm%02ds\n' $((elapsed / 60)) $((elapsed % 60))
