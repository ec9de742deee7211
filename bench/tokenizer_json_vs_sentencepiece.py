"""Side-by-side (issue 20): `tallrec data tokenize` over TALLRec's 10,000 MovieLens records with
a byte-level BPE tokenizer.json against the same command with LLaMA's SentencePiece
tokenizer.model, one core each, best of 3; HF tokenizers (Rust) encoding the same prompts with the
same tokenizer.json is printed for reference. The tokenizer.json is SmolLM2's when given
(--tokenizer-json; e.g. from `tallrec-train import-gguf`, or transformers' GGUF loader), else
one trained here with `tokenizers` on the movie prompts (GPT-2's ByteLevel + Digits, 32k vocab).
Run from the repo root: /opt/tallrec-venv/bin/python bench/tokenizer_json_vs_sentencepiece.py"""
import argparse
import json
import os
import pathlib
import platform
import subprocess
import tempfile
import time

from tokenizers import Tokenizer, pre_tokenizers, trainers, models

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
TALLREC = ROOT / "build" / "tallrec"


def best_of_3(cmd):
    times = []
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run(["taskset", "-c", "0", *map(str, cmd)], check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return min(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokenizer-json", type=pathlib.Path, help="a tokenizer.json (default: train one)")
    args = ap.parse_args()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {cpu}; one core used")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        subprocess.run([TALLREC, "data", "prepare", "movielens", "--raw", SHARED / "data" / "ml-100k", "--out", tmp],
                       check=True, capture_output=True)
        records = sum((json.loads((tmp / f"{s}.json").read_text()) for s in ("train", "valid", "test")), [])
        (tmp / "all.json").write_text(json.dumps(records))
        tj = args.tokenizer_json
        if tj is None:
            tok = Tokenizer(models.BPE())
            tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                         pre_tokenizers.ByteLevel(add_prefix_space=False)])
            texts = [r["instruction"] + r["input"] for r in records]
            tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=32000, special_tokens=["<|endoftext|>"],
                                                               initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                               show_progress=False))
            (tmp / "bpe").mkdir()
            tok.save(str(tmp / "bpe" / "tokenizer.json"))
            (tmp / "bpe" / "tokenizer_config.json").write_text(json.dumps({"eos_token": "<|endoftext|>"}))
            tj = tmp / "bpe" / "tokenizer.json"
        print(f"{len(records)} records; tokenizer.json: {tj} ({Tokenizer.from_file(str(tj)).get_vocab_size()} tokens)")
        run = [TALLREC, "data", "tokenize", "--records", tmp / "all.json", "--out", tmp / "out"]
        sp = best_of_3(run + ["--tokenizer", SHARED / "models" / "llama-tokenizer" / "tokenizer.model"])
        bpe = best_of_3(run + ["--tokenizer", tj])
        hf_tok = Tokenizer.from_file(str(tj))
        prompts = [f"{r['instruction']}\n\n### Input:\n{r['input']}\n\n### Response:\n{r['output']}" for r in records]
        t = time.perf_counter()
        for p in prompts:  # one per record; tallrec encodes two (training and evaluation prompt)
            hf_tok.encode(p, add_special_tokens=False)
        hf = 2 * (time.perf_counter() - t)
        print(f"tallrec data tokenize, SentencePiece tokenizer.model: {sp:.2f} s")
        print(f"tallrec data tokenize, BPE tokenizer.json:            {bpe:.2f} s  (ratio {bpe / sp:.2f}x)")
        print(f"HF tokenizers encode, same tokenizer.json, 2 x {len(prompts)} prompts: {hf:.2f} s "
              f"(not the whole command: reference only)")


if __name__ == "__main__":
    main()
