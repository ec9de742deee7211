#!/usr/bin/env bash
# The libFuzzer targets of tests/fuzz: built with clang, ASan and UBSan in their own build folder
# (the trainer's file readers with the virtualenv's libtorch, when it is there); each run over its
# seed corpus (tests/fuzz/corpus/TARGET) and then fuzzed.
#   bench/fuzz.sh --smoke     each target: its seeds, then 5 s of fuzzing (the test suite runs this)
#   bench/fuzz.sh SECONDS     each target fuzzed for SECONDS; prints executions and coverage
#   bench/fuzz.sh SECONDS T.. only the named targets (e.g. `bench/fuzz.sh 600 grid http_api`)
# A finding (crash, sanitizer report, an exception the target's contract does not allow) leaves
# crash-* / leak-* / timeout-* files in the target's work folder and makes this exit 1.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${TALLREC_FUZZ_BUILD:-$here/build-fuzz}
seconds=5
[ "${1:-}" = "--smoke" ] || seconds=${1:?usage: bench/fuzz.sh --smoke | SECONDS [TARGET...]}
shift
cxx=${CXX_FUZZ:-$(command -v clang++-14 || command -v clang++)}
generator=(); command -v ninja > /dev/null && [ ! -f "$build/CMakeCache.txt" ] && generator=(-G Ninja)
venv=${TALLREC_VENV:-/opt/tallrec-venv}
torch_prefix=$("$venv/bin/python" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)' 2>/dev/null || true)
all_targets=(trp_decode grid prompt_records semicolon_csv json_text http_api safetensors_header token_file model_config
  run_spec gguf tokenizer_json)
torch_targets=(torch_bin checkpoint_state)
if [ -n "$torch_prefix" ]; then
  all_targets+=("${torch_targets[@]}")
else
  echo "fuzz.sh: no torch in $venv: the trainer's file readers (${torch_targets[*]}) are left out" >&2
fi
targets=("${all_targets[@]}")
if [ $# -gt 0 ]; then
  for t in "$@"; do
    [[ " ${all_targets[*]} " == *" $t "* ]] || { echo "fuzz.sh: no target '$t' (have: ${all_targets[*]})" >&2; exit 2; }
  done
  targets=("$@")
fi
mkdir -p "$build"
cmake -S "$here" -B "$build" "${generator[@]}" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_PREFIX_PATH="$torch_prefix" -DTALLREC_FUZZ=ON -DTALLREC_WITH_TRAIN=OFF -DTALLREC_BUILD_TESTS=OFF -DTALLREC_BUILD_BENCH=OFF -DTALLREC_WERROR=ON \
  > "$build/fuzz-configure.log" 2>&1 || { tail -40 "$build/fuzz-configure.log"; exit 1; }
cmake --build "$build" -j"$(nproc)" --target "${targets[@]/#/fuzz_}" > "$build/fuzz-build.log" 2>&1 ||
  { tail -40 "$build/fuzz-build.log"; exit 1; }
# The targets that read files write each input to a scratch folder: on tmpfs, so that they are
# not held up by the disk (on ext4 they were idle a third of the time).
scratch=/tmp
[ -d /dev/shm ] && [ -w /dev/shm ] && scratch=/dev/shm
status=0
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $("$cxx" --version | head -1)"
for t in "${targets[@]}"; do
  work=$build/fuzz-work/$t
  mkdir -p "$work/corpus"
  # Leaks are findings too (LeakSanitizer), but for the ones tests/fuzz/lsan-suppressions.txt names.
  # libtorch's unpickler allocates the length a pickle claims before it reads it: a huge claim
  # must end as it does in tallrec-train (bad_alloc, refused as damaged), not as an OOM report.
  # (ASan keeps what such a claim touched resident, hence its higher RSS limit.)
  limits=(-rss_limit_mb=2048)
  [ "$t" = torch_bin ] && limits=(-rss_limit_mb=8192 -malloc_limit_mb=1000000000)
  # The fuzzer's own CPU time (user + system), as bash's `time` measures the child: the budget
  # is wall time, and on a busy machine the CPU time is what was really spent.
  TIMEFORMAT='%U %S'
  if ! { time (cd "$work" && TMPDIR=$scratch ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 LSAN_OPTIONS=suppressions="$here/tests/fuzz/lsan-suppressions.txt" UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        "$build/fuzz/fuzz_$t" -max_total_time="$seconds" -max_len=65536 -timeout=20 "${limits[@]}" \
        -print_final_stats=1 corpus "$here/tests/fuzz/corpus/$t" > log.txt 2>&1); } 2> "$work/cpu.txt"; then
    echo "FAIL $t: a finding (see $work/log.txt and the crash-* file there)"
    grep -m5 -E "ERROR|runtime error|deadly signal|terminate" "$work/log.txt" || true
    status=1
    continue
  fi
  runs=$(grep -a -m1 -oE 'stat::number_of_executed_units: [0-9]+' "$work/log.txt" | grep -oE '[0-9]+$' || echo "?")
  cov=$(grep -a -oE 'cov: [0-9]+' "$work/log.txt" | tail -1 | grep -oE '[0-9]+$' || echo "?")
  cpu=$(awk '{printf "%.0f", $1 + $2}' "$work/cpu.txt" 2> /dev/null || echo "?")
  echo "ok   $t: $runs executions in ${seconds} s ($cpu CPU-seconds), coverage $cov edges, corpus $(ls "$work/corpus" | wc -l) inputs"
done
exit $status
