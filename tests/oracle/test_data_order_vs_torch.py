"""The order in which `tallrec-train` visits training records is the one TALLRec's HF Trainer
had (transformers 4.2x-4.3x): a torch.Generator seeded with the first int64 of
torch.manual_seed(args.seed), handed to torch's RandomSampler (micro-batches from torch's
DataLoader) or to transformers' LengthGroupedSampler with group_by_length. Checked against those
very classes, epoch by epoch, through `tallrec-train batches` (the trainer's own schedule)."""
import json
import subprocess

import pytest
import torch
from torch.utils.data import DataLoader, RandomSampler
from transformers.trainer_pt_utils import LengthGroupedSampler

from conftest import BUILD_DIR, SHARED_DIR, TOKENIZER, read_tokens, run_tallrec

EPOCHS = 4


@pytest.fixture(scope="module")
def movie(tmp_path_factory):
    w = tmp_path_factory.mktemp("order")
    run_tallrec("data", "prepare", "movielens", "--raw", SHARED_DIR / "data" / "ml-100k", "--out", w / "movie")
    for sample in (16, 64, 300, 1200):
        run_tallrec("data", "tokenize", "--records", w / "movie" / "train.json", "--tokenizer", TOKENIZER,
                    "--out", w / f"train{sample}", "--sample", sample, "--seed", 3)
    return w


def our_batches(w, **spec):
    spec = {"base_model": "unused", "valid_tokens": "unused", **spec}
    (w / "spec.json").write_text(json.dumps(spec))
    proc = subprocess.run([str(BUILD_DIR / "tallrec-train"), "batches", "--spec", str(w / "spec.json"), "--epochs",
                           str(EPOCHS)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line)["micro_batches"] for line in proc.stdout.splitlines()]


def hf_generator(seed):
    """transformers 4.28 Trainer._get_train_sampler, after Trainer.__init__'s set_seed(args.seed)."""
    torch.manual_seed(seed)
    g = torch.Generator()
    g.manual_seed(int(torch.empty((), dtype=torch.int64).random_().item()))
    return g


@pytest.mark.parametrize("sample,micro,seed", [(16, 4, 42), (64, 32, 42), (300, 32, 42), (1200, 16, 42), (64, 8, 7)])
def test_random_sampler_order(movie, sample, micro, seed):
    tokens = movie / f"train{sample}"
    ours = our_batches(movie, train_tokens=str(tokens), micro_batch_size=micro, batch_size=micro * 2, data_seed=seed)
    loader = DataLoader(list(range(sample)), batch_size=micro, sampler=RandomSampler(range(sample), generator=hf_generator(seed)))
    theirs = [[b.tolist() for b in loader] for _ in range(EPOCHS)]
    assert ours == theirs


@pytest.mark.parametrize("sample,batch", [(64, 128), (300, 32), (1200, 16)])
def test_length_grouped_order(movie, sample, batch):
    """Megabatches of min(n // (4 batch), 50) update batches; the first megabatch sizes differ
    with n, which is why three sizes are checked."""
    tokens = movie / f"train{sample}"
    micro = batch // 2
    ours = our_batches(movie, train_tokens=str(tokens), micro_batch_size=micro, batch_size=batch, group_by_length=True)
    lengths = [len(ids) for ids in read_tokens(tokens)[1]["train_ids"]]
    sampler = LengthGroupedSampler(batch, lengths=lengths, generator=hf_generator(42))
    loader = DataLoader(list(range(sample)), batch_size=micro, sampler=sampler)
    theirs = [[b.tolist() for b in loader] for _ in range(EPOCHS)]
    assert ours == theirs


def test_seeded_order_follows_the_run_seed(movie):
    tokens = str(movie / "train64")
    a = our_batches(movie, train_tokens=tokens, micro_batch_size=8, batch_size=16, data_order="seeded", seed=1)
    b = our_batches(movie, train_tokens=tokens, micro_batch_size=8, batch_size=16, data_order="seeded", seed=2)
    hf = our_batches(movie, train_tokens=tokens, micro_batch_size=8, batch_size=16, seed=1)
    assert a != b and a != hf
    assert hf == our_batches(movie, train_tokens=tokens, micro_batch_size=8, batch_size=16, seed=2)  # TALLRec: seed-free
    assert sorted(sum(a[0], [])) == list(range(64))
