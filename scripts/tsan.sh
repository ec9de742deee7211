#!/usr/bin/env bash
# The coordinator's threads under ThreadSanitizer: builds the `tsan` preset (clang, torch-free
# `tallrec` and its C++ tests), runs the C++ tests, then the integration tests that drive a live
# coordinator (HTTP server threads, the broker, store readers beside the writer, workers) with
# the TSan `tallrec` and the main build's tallrec-train. Any report ends the reporting process
# (halt_on_error) and is kept under build-tsan/reports/. Exit 0 only when nothing was reported.
#   scripts/tsan.sh            after scripts/setup.sh (the main build provides tallrec-train)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
main_build=${TALLREC_BUILD:-$here/build}
tsan_build=$here/build-tsan
venv=${TALLREC_VENV:-/opt/tallrec-venv}
cd "$here"
cmake --preset tsan > /dev/null
cmake --build --preset tsan -j"$(nproc)"
reports=$tsan_build/reports
rm -rf "$reports" && mkdir -p "$reports"
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$here/tests/tsan-suppressions.txt log_path=$reports/tsan"
status=0
ctest --test-dir "$tsan_build" -j"$(nproc)" --timeout 600 --output-on-failure || status=1
# The integration tests find both executables in one folder: the TSan tallrec, the trainer of
# the main build (torch is not built with TSan).
ln -sf "$main_build/tallrec-train" "$tsan_build/tallrec-train"
TALLREC_BUILD_DIR=$tsan_build TALLREC_SHARED_DIR=$here/../shared \
  TALLREC_BX_FIXTURE=$main_build/tests/fixtures/bookcrossing \
  "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/integration/test_http_api.py \
  tests/integration/test_hostile_input.py tests/integration/test_coordinator_workers.py || status=1
if compgen -G "$reports/tsan*" > /dev/null; then
  echo "tsan: reports in $reports:"; grep -h -A3 "WARNING: ThreadSanitizer" "$reports"/tsan* | head -40
  status=1
fi
[ $status -eq 0 ] && echo "tsan: no report (C++ tests and the live-coordinator integration tests)"
exit $status
