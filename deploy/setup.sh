#!/usr/bin/env bash
# setup.sh - the README's two commands: install what tickd needs on a fresh
# Debian 12 machine (as root), build it, then run it or test it.
#
#   deploy/setup.sh run     install what building and running need, build
#                           tickd without its tests, make the sample day
#                           (build/sample/day.itch, once), then run tickd on
#                           config/tickd.yaml, which replays it (arguments
#                           given after "run" replace "--config config/tickd.yaml")
#   deploy/setup.sh test    install that and the test tools, check that every C
#                           file is formatted (clang-format, the diff if not),
#                           build with the tests, install the npm clients
#                           the tests drive (npm ci --prefix tests, from
#                           tests/package-lock.json), then run the whole test
#                           suite (ctest); then again under AddressSanitizer and
#                           UBSan (preset asan, build-asan/), then fuzz each
#                           harness for a bounded time (preset fuzz, clang,
#                           build-fuzz/)
#   deploy/setup.sh format  only the formatting check
#   deploy/setup.sh deps    only install the Debian packages (all of them)
#
# Idempotent: packages already installed are not fetched again, and the
# build directories (build/, build-asan/, build-fuzz/) are reused.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"

# What building and running need, all from Debian 12 (redis-tools: the
# redis-cli the README subscribes with; libnats-dev: the NATS client library,
# which brings its runtime library; libssl-dev: libcrypto's SHA-256 for the
# passwords of pubsub.users).
run_packages=(
  build-essential cmake pkg-config
  libuv1-dev libyaml-dev libhttp-parser-dev libisal-dev libnats-dev libssl-dev
  redis-tools
)
# What the tests add: cmocka, the formatter, clang and libFuzzer, the
# allocators and servers the benchmarks compare with (nats-server: the NATS
# and JetStream servers test_nats and bench_nats run), the clients the
# integration tests drive, and the headless browser (with its WebDriver) that
# loads /debug/heap.
test_packages=(
  libcmocka-dev clang-format python3
  clang libclang-rt-14-dev
  libjemalloc-dev libmimalloc-dev
  redis-server prometheus valgrind nats-server
  python3-redis libhiredis-dev
  chromium chromium-driver
)
# Node and npm for the node-redis, ioredis and nats.js tests: Debian's, unless a node is
# already installed (CI machines bring their own, with its npm).
command -v node >/dev/null || test_packages+=(nodejs npm)

log() { printf 'setup: %s\n' "$*" >&2; }

# install_deps PACKAGE...: those not installed yet, with apt-get.
install_deps() {
  local missing=()
  for p in "$@"; do
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

# build ON|OFF: the default preset into build/, with or without the tests.
build() {
  cmake --preset default -DBUILD_TESTING="$1" >/dev/null
  cmake --build --preset default -j "$(nproc)"
}

# Every C source and header the repository formats must be as clang-format
# (the repository's .clang-format) writes it; otherwise print each file's
# diff and fail.
check_format() {
  local bad=0 f
  while IFS= read -r -d '' f; do
    if ! clang-format --style=file "$f" | diff -u --label "$f" --label "$f (clang-format)" "$f" -; then
      bad=1
    fi
  done < <(find alloc feed src tests -name node_modules -prune -o -type f \( -name '*.c' -o -name '*.h' \) -print0 | sort -z)
  if [ "$bad" -ne 0 ]; then
    log "not formatted: apply the diff above (clang-format -i FILE) and retry"
    exit 1
  fi
  log "formatting: every C file under alloc feed src tests is clang-format clean"
}

# The clients from npm that tests/integration/clients/ drives (node-redis,
# ioredis, nats.js), exactly as tests/package-lock.json pins them, into tests/node_modules.
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
    install_deps "${run_packages[@]}" "${test_packages[@]}"
    ;;
  format)
    install_deps clang-format
    check_format
    ;;
  run)
    install_deps "${run_packages[@]}"
    build OFF
    cmake --build --preset default --target sample_day
    shift
    [ $# -gt 0 ] || set -- --config config/tickd.yaml
    exec build/src/tickd "$@"
    ;;
  test)
    install_deps "${run_packages[@]}" "${test_packages[@]}"
    check_format
    build ON
    install_npm_clients
    ctest --preset default -j "$(nproc)"
    test_asan
    test_fuzz
    ;;
  *)
    echo "usage: deploy/setup.sh run|test|format|deps" >&2
    exit 2
    ;;
esac
