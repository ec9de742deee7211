#!/usr/bin/env bash
# The whole test suite: set-up (idempotent; installs and builds what is missing), then CTest.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${TALLREC_BUILD:-$here/build}
"$here/scripts/setup.sh"
ctest --test-dir "$build" -j"$(nproc)" --output-on-failure --timeout 900 "$@"
