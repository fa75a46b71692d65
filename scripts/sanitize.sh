#!/usr/bin/env bash
# Sanitizer job: builds the engine and its C++ tests with AddressSanitizer + UndefinedBehaviorSanitizer
# and runs them (tests/cpp/test_main.cpp: engine unit tests; tests/cpp/test_concurrency.cpp: threads
# sharing one model). Any report aborts with a non-zero status. Called by .ci/run; locally:
#
#     scripts/sanitize.sh            # build dir build/sanitize, a few minutes on 2 cores
#
# Needs cmake, ninja and a C++17 compiler with libasan/libubsan.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${SANITIZE_BUILD_DIR:-build/sanitize}"
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DMOTIFCORE_BUILD_TESTS=ON -DMOTIFCORE_BUILD_PYTHON=OFF \
      -DMOTIFCORE_WERROR=ON \
      -DCMAKE_CXX_FLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all" \
      -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined"
cmake --build "$BUILD"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:halt_on_error=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
ctest --test-dir "$BUILD" --output-on-failure
