#!/usr/bin/env bash
# On the development machine: tokenize the GPU benchmark's data into out/gpu-bench (git-ignored)
# and vendor the header-only libraries, so that the device run needs neither SentencePiece nor
# Debian packages. Then, with the device tool: run `bench/gpu/run.sh` with
# carry [".headers", "out/gpu-bench"]. `bench/gpu/checks.sh build/tallrec-train /tmp/w cpu` is
# a dry run of the device checks here.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
shared=$root/../shared
out=$root/out/gpu-bench
rm -rf "$out" && mkdir -p "$out"
"$root/build/tallrec" data prepare movielens --raw "$shared/data/ml-100k" --out "$out/movie" > /dev/null
tok=$shared/models/llama-tokenizer/tokenizer.model
"$root/build/tallrec" data tokenize --records "$out/movie/train.json" --tokenizer "$tok" --out "$out/train" --sample 256 --seed 0
"$root/build/tallrec" data tokenize --records "$out/movie/valid.json" --tokenizer "$tok" --out "$out/valid" --sample 64 --seed 0
rm -rf "$out/movie"
# The forward-pass oracle, for the device checks (the device gets the checkout, not ../shared).
mkdir -p "$out/llama2c"
cp "$shared/models/llama2c-gqa-260k/model.bin" "$shared/models/llama2c-gqa-260k/expected_greedy_ids.txt" "$out/llama2c/"
"$root/scripts/build-train-only.sh" --vendor-headers
