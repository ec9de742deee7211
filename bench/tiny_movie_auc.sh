#!/usr/bin/env bash
# An experiment, not a test (about 10 minutes on 2 cores): does a trained tiny run beat AUC 0.5?
# The tiny LLaMA has random weights, so everything it learns comes from 64 MovieLens prompts
# through LoRA on all projections. Seen on the development machine (2026-11-28), 8.5 minutes:
#   with the seeded epoch order: best validation AUC 0.550 at step 80 of 180 (early stop), test
#   AUC 0.526 on all 1000 movie test prompts;
#   with TALLRec's HF order (the default since): best validation AUC 0.522 at step 110 of 210
#   (early stop), test AUC 0.460; from step 120 on every prompt scored the same (AUC 0.5): at
#   lr 3e-3 the random tiny model collapses. Validation's best is a maximum over 21 noisy
#   evaluations of 200 prompts; a random-weight model learns next to nothing here.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${WORK:-$root/out/tiny-auc}
tok=$root/../shared/models/llama-tokenizer/tokenizer.model
mkdir -p "$work"
"$root/build/tallrec-train" init --preset tiny --seed 0 --out "$work/model" > /dev/null
"$root/build/tallrec" data prepare movielens --raw "$root/../shared/data/ml-100k" --out "$work/movie" > /dev/null
"$root/build/tallrec" data tokenize --records "$work/movie/train.json" --tokenizer "$tok" --out "$work/train" --sample 64 --seed 0 > /dev/null
"$root/build/tallrec" data tokenize --records "$work/movie/valid.json" --tokenizer "$tok" --out "$work/valid" --sample 200 --seed 0 > /dev/null
"$root/build/tallrec" data tokenize --records "$work/movie/test.json" --tokenizer "$tok" --out "$work/test" > /dev/null
cat > "$work/spec.json" <<JSON
{"base_model": "$work/model", "train_tokens": "$work/train", "valid_tokens": "$work/valid", "test_tokens": {"movie": "$work/test"},
 "seed": 0, "micro_batch_size": 16, "batch_size": 64, "max_steps": 300, "eval_every": 10, "optim": {"lr": 0.003},
 "lora": {"target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]}}
JSON
rm -rf "$work/run"
"$root/build/tallrec-train" train --spec "$work/spec.json" --out "$work/run" | grep -E '"eval"|"finished"'
