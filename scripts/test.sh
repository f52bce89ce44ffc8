#!/usr/bin/env bash
# The whole test suite, on a fresh machine with rustup, cargo and apt:
# installs what is missing, then fmt check, clippy -D warnings, all tests.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*" >&2; }

# The pinned toolchain and the guest target (rust-toolchain.toml names both).
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  log "installing the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# libclang for wasm3's bindgen; redis-server for the Redis transport tests.
missing=()
ldconfig -p 2>/dev/null | grep -q 'libclang' || [ -e /usr/lib/llvm-14/lib/libclang.so ] || missing+=(libclang-dev)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

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
exit "$status"
