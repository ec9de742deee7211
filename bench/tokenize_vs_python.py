"""Side-by-side: tokenizing TALLRec's 10,000 MovieLens prompts (training + evaluation prompt
per record, one core) with `tallrec data tokenize` against the Python sentencepiece package
doing the same encodes. Prints both times and the ratio.
Run from the repo root: /opt/tallrec-venv/bin/python bench/tokenize_vs_python.py"""
import json
import os
import pathlib
import platform
import subprocess
import tempfile
import time

import sentencepiece as spm

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
TOKENIZER = SHARED / "models" / "llama-tokenizer" / "tokenizer.model"
TALLREC = ROOT / "build" / "tallrec"
NOQA = "  # noqa: E501"


def prompt(rec, answer):
    return ("Below is an instruction that describes a task, paired with an input that provides further context. "
            "Write a response that appropriately completes the request." + NOQA + "\n\n"
            f"### Instruction:\n{rec['instruction']}\n\n### Input:\n{rec['input']}\n\n### Response:\n{answer}")


def main():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {cpu}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        subprocess.run([TALLREC, "data", "prepare", "movielens", "--raw", SHARED / "data" / "ml-100k", "--out", tmp],
                       check=True, capture_output=True)
        records = sum((json.loads((tmp / f"{s}.json").read_text()) for s in ("train", "valid", "test")), [])
        (tmp / "all.json").write_text(json.dumps(records))
        ours = []
        for _ in range(3):
            t = time.perf_counter()
            subprocess.run(["taskset", "-c", "0", TALLREC, "data", "tokenize", "--records", tmp / "all.json",
                            "--tokenizer", TOKENIZER, "--out", tmp / "tok"], check=True, capture_output=True)
            ours.append(time.perf_counter() - t)
        os.sched_setaffinity(0, {0})
        sp = spm.SentencePieceProcessor(model_file=str(TOKENIZER))
        peer = []
        for _ in range(3):
            t = time.perf_counter()
            for rec in records:
                sp.encode(prompt(rec, rec["output"]))
                sp.encode(prompt(rec, ""))
            peer.append(time.perf_counter() - t)
    print(f"records: {len(records)}")
    print(f"tallrec data tokenize (whole command: read JSON, encode, write tokens): best {min(ours):.2f} s")
    print(f"python sentencepiece (encodes only): best {min(peer):.2f} s")
    print(f"ratio tallrec / python: {min(ours) / min(peer):.2f}x")


if __name__ == "__main__":
    main()
