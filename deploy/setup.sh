#!/usr/bin/env bash
# setup.sh - the README's two commands: install what tickd needs on a fresh
# Debian 12 machine (as root), build it, then run it or test it.
#
#   deploy/setup.sh run     build, then run tickd on its embedded default
#                           (config/tickd.yaml: the bundled sample day, replayed)
#   deploy/setup.sh test    build, install the npm Redis clients the tests drive
#                           (npm ci --prefix tests, from tests/package-lock.json),
#                           then run the whole test suite (ctest); then
#                           again under AddressSanitizer and UBSan (preset
#                           asan, build-asan/), then fuzz each harness for a
#                           bounded time (preset fuzz, clang, build-fuzz/)
#   deploy/setup.sh deps    only install the Debian packages
#
# Idempotent: packages already installed are not fetched again, and the
# build directories (build/, build-asan/, build-fuzz/) are reused.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"

# Build and test dependencies, all from Debian 12.
packages=(
  build-essential cmake pkg-config clang-format python3
  clang libclang-rt-14-dev
  libuv1-dev libyaml-dev libcmocka-dev libhttp-parser-dev libisal-dev
  libjemalloc-dev libmimalloc-dev
  redis-tools redis-server prometheus valgrind
  python3-redis libhiredis-dev
)
# Node and npm for the node-redis and ioredis tests: Debian's, unless a node is
# already installed (CI machines bring their own, with its npm).
command -v node >/dev/null || packages+=(nodejs npm)

log() { printf 'setup: %s\n' "$*" >&2; }

install_deps() {
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    return 0
  fi
  if [ "$(id -u)" -ne 0 ]; then
    log "missing packages: ${missing[*]}; run as root (or install them) and retry"
    exit 1
  fi
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

build() {
  cmake --preset default >/dev/null
  cmake --build --preset default -j "$(nproc)"
}

# The Redis clients from npm that tests/integration/clients/ drives (node-redis,
# ioredis), exactly as tests/package-lock.json pins them, into tests/node_modules.
install_npm_clients() {
  if ! command -v npm >/dev/null; then
    log "npm is missing: install Debian's npm (or a Node.js that brings it) and retry"
    exit 1
  fi
  log "installing the npm clients the tests drive (tests/package-lock.json)"
  if ! npm ci --prefix tests --no-audit --no-fund --loglevel=error --fetch-retries=1; then
    log "npm ci --prefix tests failed (is the npm registry reachable from this machine?):" \
        "the node-redis and ioredis tests need it"
    exit 1
  fi
}

# The whole suite once more, built with -fsanitize=address,undefined.
test_asan() {
  cmake --preset asan >/dev/null
  cmake --build --preset asan -j "$(nproc)"
  ctest --preset asan -j "$(nproc)"
}

# The libFuzzer harnesses (tests/fuzz/), each fuzzing for a bounded time from
# its seed corpus; ctest prints each one's "<harness>: N execs" line.
test_fuzz() {
  cmake --preset fuzz >/dev/null
  cmake --build --preset fuzz -j "$(nproc)"
  ctest --preset fuzz -j "$(nproc)"
}

case "${1:-}" in
  deps)
    install_deps
    ;;
  run)
    install_deps
    build
    shift
    exec build/src/tickd "$@"
    ;;
  test)
    install_deps
    build
    install_npm_clients
    ctest --preset default -j "$(nproc)"
    test_asan
    test_fuzz
    ;;
  *)
    echo "usage: deploy/setup.sh run|test|deps" >&2
    exit 2
    ;;
esac
