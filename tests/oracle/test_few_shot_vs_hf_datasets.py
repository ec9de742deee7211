"""Our few-shot subsets are HF datasets' own: Dataset.shuffle(seed) (numpy default_rng
permutation) and TALLRec's chain shuffle(seed).select(range(sample)).shuffle(seed)."""
import json

import datasets
import pytest

from conftest import run_tallrec

datasets.disable_progress_bars()
datasets.disable_caching()


def hf_chain(n, sample, seed):
    ds = datasets.Dataset.from_dict({"i": list(range(n))})
    ds = ds.shuffle(seed=seed).select(range(sample)) if sample > -1 else ds.shuffle(seed=seed)
    return ds.shuffle(seed=seed)["i"]


def ours(n, sample, seed):
    out = run_tallrec("data", "subset", "--count", n, "--sample", sample, "--seed", seed).stdout
    return json.loads(out)


CASES = [(n, sample, seed)
         for n in (1, 2, 3, 7, 100, 1000, 8000)
         for sample, seed in ((-1, 0), (-1, 42), (1, 0), (16, 42), (64, 0), (128, 2023))
         if sample <= n]
CASES += [(70_000, 1024, 123456789), (70_000, -1, 7), (300_000, 4096, 2**32 + 11), (8000, 8000, 1)]


@pytest.mark.parametrize("n,sample,seed", CASES)
def test_tallrec_chain_matches_hf_datasets(n, sample, seed):
    assert ours(n, sample, seed) == hf_chain(n, sample, seed)


@pytest.mark.parametrize("n,seed", [(5, 0), (257, 1), (65_537, 99), (1000, 2**63 + 5)])
def test_single_shuffle_is_numpy_default_rng_permutation(n, seed):
    import numpy as np
    # sample = n selects everything after the first shuffle; the chain's second shuffle of the
    # identity-sized list composes, so compare through the chain itself and numpy directly.
    first = np.random.default_rng(seed).permutation(n)
    second = np.random.default_rng(seed).permutation(n)
    assert ours(n, n, seed) == [int(first[j]) for j in second]


def test_subset_of_a_real_file_writes_the_chosen_records(scratch):
    from conftest import SHARED_DIR
    src = SHARED_DIR / "data" / "book-crossing" / "valid.json"
    run_tallrec("data", "subset", "--records", src, "--sample", 64, "--seed", 42, "--out", scratch / "s.json")
    got = json.loads((scratch / "s.json").read_text())
    hf = datasets.Dataset.from_list(json.loads(src.read_text()))
    want = hf.shuffle(seed=42).select(range(64)).shuffle(seed=42).to_list()
    assert got == want
