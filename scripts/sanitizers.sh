#!/usr/bin/env bash
# The torch-free code under a sanitizer: builds the preset (clang: `asan-ubsan` or `tsan`), runs
# its C++ tests, then the integration tests that drive live `tallrec` processes (the HTTP server
# threads, the broker, store readers beside the writer, workers, hostile input) with the
# sanitized `tallrec` and the main build's tallrec-train (torch is not built with sanitizers).
# Every report ends the reporting process and is kept under build-<preset>/reports/.
#   scripts/sanitizers.sh asan-ubsan | tsan      after scripts/setup.sh
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
preset=${1:?usage: scripts/sanitizers.sh asan-ubsan | tsan}
main_build=${TALLREC_BUILD:-$here/build}
venv=${TALLREC_VENV:-/opt/tallrec-venv}
case "$preset" in
  asan-ubsan) build=$here/build-asan ;;
  tsan) build=$here/build-tsan ;;
  *) echo "sanitizers.sh: no preset '$preset' (asan-ubsan or tsan)" >&2; exit 2 ;;
esac
cd "$here"
cmake --preset "$preset" > /dev/null
cmake --build --preset "$preset" -j"$(nproc)"
reports=$build/reports
rm -rf "$reports" && mkdir -p "$reports"
export ASAN_OPTIONS="detect_leaks=1 log_path=$reports/asan"
export UBSAN_OPTIONS="halt_on_error=1 print_stacktrace=1 log_path=$reports/ubsan"
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$here/tests/tsan-suppressions.txt log_path=$reports/tsan"
status=0
ctest --test-dir "$build" -j"$(nproc)" --timeout 600 --output-on-failure || status=1
# The integration tests find both executables in one folder.
ln -sf "$main_build/tallrec-train" "$build/tallrec-train"
TALLREC_BUILD_DIR=$build TALLREC_SHARED_DIR=$here/../shared \
  TALLREC_BX_FIXTURE=$main_build/tests/fixtures/bookcrossing \
  "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/integration/test_http_api.py \
  tests/integration/test_hostile_input.py tests/integration/test_coordinator_workers.py \
  tests/integration/test_sweeps_cli.py || status=1
if compgen -G "$reports/*" > /dev/null; then
  echo "$preset: reports in $reports:"; grep -h -B2 -A8 -E "ERROR|WARNING|runtime error" "$reports"/* | head -60
  status=1
fi
[ $status -eq 0 ] && echo "$preset: no report (C++ tests and the live-process integration tests)"
exit $status
