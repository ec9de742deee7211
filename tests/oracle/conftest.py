"""Shared pieces of the oracle tests: they run our binaries and compare what they produce with
the real Python libraries (HF datasets, sentencepiece, pandas). CTest sets the paths."""
import os
import pathlib
import subprocess

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


@pytest.fixture
def scratch(tmp_path):
    return tmp_path
