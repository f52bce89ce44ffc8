#!/usr/bin/env bash
# The whole test suite, on a fresh machine with rustup, cargo and apt:
# installs what is missing (scripts/setup.sh), then fmt check, clippy
# -D warnings (the default build, the builds without wasm backends, and
# the fuzz targets), all tests, and the suite's wall time.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS

log() { printf '\n==> %s\n' "$*" >&2; }

# shellcheck source=scripts/setup.sh
source scripts/setup.sh

log "lock files are current (the fuzz workspace keeps its own copy)"
# Seconds, not the minutes a late --locked failure would cost. After a
# dependency change: cargo update --manifest-path fuzz/Cargo.toml --workspace --offline
cargo metadata --locked --format-version 1 >/dev/null
cargo metadata --manifest-path fuzz/Cargo.toml --locked --format-version 1 >/dev/null

log "cargo fmt --check"
cargo fmt --all -- --check
cargo fmt --manifest-path fuzz/Cargo.toml -- --check

log "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "clippy of the backend-less builds (no wasm3: no libclang needed)"
cargo clippy -p hotwasm-runtime --no-default-features --locked -- -D warnings
cargo clippy -p hotwasm --no-default-features --features wasmtime,wasmi --locked -- -D warnings

log "clippy of the fuzz targets (fuzz/, a workspace of its own; stable, no nightly needed)"
# In the workspace's target directory, whose guest modules it reuses
# (target/hotwasm-guests); fuzz/Cargo.toml copies the dev profile so that
# dependencies checked above with the same features are not checked again.
cargo clippy --manifest-path fuzz/Cargo.toml --bins --locked \
  --target-dir "${CARGO_TARGET_DIR:-target}" -- -D warnings

log "cargo test"
output=$(mktemp)
trap 'rm -f "$output"' EXIT
set +e
cargo test --workspace --locked 2>&1 | tee "$output"
status=${PIPESTATUS[0]}
set -e
# One closing line for the whole suite (cargo prints one per test binary,
# the last of which is often an empty doc-test run).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "\ntests: %d passed, %d failed\n", p, f }' "$output"
elapsed=$((SECONDS - started))
printf 'suite wall time: %dm%02ds (setup, fmt, clippy, build, tests)\n' $((elapsed / 60)) $((elapsed % 60))
exit "$status"
