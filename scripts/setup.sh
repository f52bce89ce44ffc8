#!/usr/bin/env bash
# Installs what the build and the tests need and the machine lacks, checking
# for the thing itself rather than for a package name that looks like it.
# Sourced by scripts/main-job.sh and scripts/test.sh; says on stderr what it
# installs and why. Needs rustup, cargo and apt (root or sudo).
#
#   wasm32-unknown-unknown  the guest modules' target (rust-toolchain.toml)
#   cc                      C compiler: wasm3's C sources, libsecp256k1 (tests)
#   c++                     C++ compiler: libFuzzer, which the fuzz targets'
#                           libfuzzer-sys builds even to check them
#   libclang + its headers  bindgen loads libclang to read wasm3's C headers
#   clang, llvm-ar          the libsecp256k1 module family: its C compiled to
#                           wasm32 (gcc has no wasm32 target) and archived
#   redis-server            the Redis transport (tests, the main job's report)

setup_log() { printf '==> setup: %s\n' "$*" >&2; }

# The shared object bindgen (clang-sys) loads: libclang.so, libclang-<v>.so,
# libclang.so.<n> or libclang-<v>.so.<n>. Not libclang-cpp*, which the base
# image carries and which bindgen cannot use.
setup_find_libclang() {
  local dir
  if [ -n "${LIBCLANG_PATH:-}" ]; then
    compgen -G "$LIBCLANG_PATH/libclang*.so*" | grep -E '/libclang(-[0-9.]+)?\.so(\.[0-9.]+)?$' | head -n 1
    return
  fi
  for dir in /usr/lib/llvm-*/lib /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu /usr/lib64 /usr/lib /usr/local/lib; do
    compgen -G "$dir/libclang*.so*" || true
  done | grep -E '/libclang(-[0-9.]+)?\.so(\.[0-9.]+)?$' | head -n 1
}

# clang's own headers (stddef.h, stdbool.h ...), without which libclang
# loads but cannot parse wasm3's headers.
setup_find_clang_headers() {
  compgen -G "/usr/lib/llvm-*/lib/clang/*/include/stddef.h" | head -n 1
}

# clang that compiles C to wasm32, the libsecp256k1 guests' C sources.
setup_clang_targets_wasm32() {
  command -v clang >/dev/null 2>&1 &&
    printf 'int f(int x) { return x; }\n' |
      clang --target=wasm32-unknown-unknown -x c -c -o /dev/null - 2>/dev/null
}

setup_install() {
  local missing=()
  if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    setup_log "adding rustup target wasm32-unknown-unknown (the guest modules are built for it)"
    rustup target add wasm32-unknown-unknown >&2
  fi
  if ! command -v cc >/dev/null 2>&1; then
    setup_log "no C compiler (cc): will install build-essential (wasm3 and libsecp256k1 are C)"
    missing+=(build-essential)
  fi
  if ! command -v c++ >/dev/null 2>&1; then
    setup_log "no C++ compiler (c++): will install g++ (libFuzzer is C++; the fuzz targets build it)"
    missing+=(g++)
  fi
  if [ -z "$(setup_find_libclang)" ] || [ -z "$(setup_find_clang_headers)" ]; then
    setup_log "no libclang.so with clang's headers: will install libclang-dev (bindgen reads wasm3's C headers with it)"
    missing+=(libclang-dev)
  fi
  if ! setup_clang_targets_wasm32; then
    setup_log "no clang that targets wasm32: will install clang (libsecp256k1's C, compiled into the libsecp256k1 modules)"
    missing+=(clang)
  fi
  if ! command -v llvm-ar >/dev/null 2>&1; then
    setup_log "no llvm-ar: will install llvm (archives the wasm32 objects of libsecp256k1; GNU ar cannot index them)"
    missing+=(llvm)
  fi
  if ! command -v redis-server >/dev/null 2>&1; then
    setup_log "no redis-server on PATH: will install redis-server (the Redis transport, its tests and the report's Redis rows)"
    missing+=(redis-server)
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    setup_log "apt-get install ${missing[*]}"
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
  local found
  found=$(setup_find_libclang)
  if [ -z "$found" ]; then
    setup_log "libclang is still missing after the install: set LIBCLANG_PATH to the folder holding libclang.so"
    return 1
  fi
  if ! setup_clang_targets_wasm32; then
    setup_log "clang still cannot compile C for wasm32 after the install: put a clang with the WebAssembly target on PATH"
    return 1
  fi
  # Point bindgen at the library found here, so it does not pick another.
  export LIBCLANG_PATH="${LIBCLANG_PATH:-$(dirname "$found")}"
}

setup_install
