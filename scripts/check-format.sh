#!/usr/bin/env bash
# Checks that every C++ file in git follows .clang-format (clang-format 14, as scripts/setup.sh
# installs: other versions format some constructs differently). The test suite runs it.
#   scripts/check-format.sh         list the files that differ; exit 1 if any
#   scripts/check-format.sh --fix   reformat them in place
set -euo pipefail
cd "$(dirname "$0")/.."
format=${CLANG_FORMAT:-$(command -v clang-format-14 || true)}
[ -n "$format" ] || { echo "check-format: clang-format-14 is missing (scripts/setup.sh installs it)" >&2; exit 2; }
mapfile -d '' files < <(git ls-files -z '*.cc' '*.h')
if [ "${1:-}" = "--fix" ]; then
  "$format" -i "${files[@]}"
  exit 0
fi
differ=()
for f in "${files[@]}"; do
  "$format" --dry-run -Werror "$f" > /dev/null 2>&1 || differ+=("$f")
done
if [ ${#differ[@]} -gt 0 ]; then
  printf 'not formatted (scripts/check-format.sh --fix): %s\n' "${differ[@]}"
  exit 1
fi
echo "check-format: ${#files[@]} files follow .clang-format"
