#!/usr/bin/env bash
# Builds tallrec-train alone, against the libtorch of whatever PyTorch `python3` imports, with
# only header-only libraries besides it: for GPU machines that have CMake, a compiler and
# PyTorch but no Debian -dev packages. The headers come from .headers/ in the checkout, filled
# on a development machine by `scripts/build-train-only.sh --vendor-headers` (git-ignored; the
# device tool carries it with `carry: [".headers"]`).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
if [ "${1:-}" = "--vendor-headers" ]; then
  mkdir -p "$here/.headers"
  cp -r /usr/include/nlohmann /usr/include/CLI "$here/.headers/"
  echo "copied nlohmann/ and CLI/ into $here/.headers"
  exit 0
fi
python=${PYTHON:-python3}
[ -x /opt/tallrec-venv/bin/python ] && [ -z "${PYTHON:-}" ] && python=/opt/tallrec-venv/bin/python
torch_prefix=$("$python" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')
build=${TALLREC_TRAIN_BUILD:-$here/build-train}
generator=()  # Ninja where there is one, for a fresh build folder (GPU machines have it)
[ ! -f "$build/CMakeCache.txt" ] && command -v ninja > /dev/null && generator=(-G Ninja)
cmake -S "$here" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DTALLREC_TRAIN_ONLY=ON \
  -DCMAKE_PREFIX_PATH="$torch_prefix" -DCMAKE_DISABLE_FIND_PACKAGE_nlohmann_json=ON "$@"
cmake --build "$build" --target tallrec-train -j"$(nproc)"
echo "built $build/tallrec-train"
