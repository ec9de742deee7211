"""Shared pieces of the oracle tests: they run our binaries and compare what they produce with
the real Python libraries (HF datasets, sentencepiece, pandas). CTest sets the paths."""
import json
import os
import pathlib
import subprocess

import numpy as np
import pytest

BUILD_DIR = pathlib.Path(os.environ.get("TALLREC_BUILD_DIR", "build")).resolve()
SOURCE_DIR = pathlib.Path(__file__).resolve().parents[2]
SHARED_DIR = pathlib.Path(os.environ.get("TALLREC_SHARED_DIR", SOURCE_DIR.parent / "shared")).resolve()
TOKENIZER = SHARED_DIR / "models" / "llama-tokenizer" / "tokenizer.model"


def run_tallrec(*args, check=True):
    """Runs build/tallrec; returns the CompletedProcess (text mode)."""
    proc = subprocess.run([str(BUILD_DIR / "tallrec"), *map(str, args)], capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"tallrec {' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stderr}")
    return proc


def movie_workspace(w, subsets=(), tiny_model=True, train_on_inputs=None):
    """MovieLens prompts prepared in w/movie, optionally a tiny model in w/model, and each
    (split, out, sample, seed) of `subsets` tokenized into w/out (with --train-on-inputs when
    given). Returns w."""
    if tiny_model:
        subprocess.run([str(BUILD_DIR / "tallrec-train"), "init", "--preset", "tiny", "--out", str(w / "model")], check=True,
                       capture_output=True)
    run_tallrec("data", "prepare", "movielens", "--raw", SHARED_DIR / "data" / "ml-100k", "--out", w / "movie")
    for split, out, sample, seed in subsets:
        extra = [] if train_on_inputs is None else ["--train-on-inputs", train_on_inputs(out)]
        run_tallrec("data", "tokenize", "--records", w / "movie" / f"{split}.json", "--tokenizer", TOKENIZER,
                    "--out", w / out, "--sample", sample, "--seed", seed, *extra)
    return w


@pytest.fixture
def scratch(tmp_path):
    return tmp_path


def read_tokens(folder):
    """A tokenized folder read with numpy from the layout documented in
    jobs/data/token_file.h, independently of the C++ reader. Returns (meta, arrays)."""
    meta = json.loads((folder / "meta.json").read_text())
    raw = (folder / "tokens.bin").read_bytes()
    assert raw[:8] == b"TLRTOK01"
    n, n_train, n_eval = np.frombuffer(raw, np.uint64, 3, 8)
    at = 64

    def take(dtype, count):
        nonlocal at
        arr = np.frombuffer(raw, dtype, int(count), at)
        at += (arr.nbytes + 7) // 8 * 8
        return arr

    t = dict(train_off=take(np.uint64, n + 1), eval_off=take(np.uint64, n + 1), train=take(np.int32, n_train),
             eval=take(np.int32, n_eval), prompt_len=take(np.uint32, n), label=take(np.int8, n),
             source=take(np.uint32, n))
    assert at == len(raw)
    t["train_ids"] = [t["train"][t["train_off"][i]:t["train_off"][i + 1]].tolist() for i in range(n)]
    t["eval_ids"] = [t["eval"][t["eval_off"][i]:t["eval_off"][i + 1]].tolist() for i in range(n)]
    return meta, t
