"""`tallrec data tokenize` gives exactly the ids that the Python sentencepiece package gives for
TALLRec's prompts (finetune_rec.py's tokenize() for training, evaluate.py's for evaluation),
for the whole movie and book sets. tokens.bin is read here with numpy from its documented
layout (jobs/data/token_file.h), independently of the C++ reader."""
import json

import pytest
import sentencepiece as spm

from conftest import SHARED_DIR, TOKENIZER, read_tokens, run_tallrec

SP = spm.SentencePieceProcessor(model_file=str(TOKENIZER))
NOQA = "  # noqa: E501"


def prompt(rec, with_answer, noqa=NOQA):
    # The Alpaca template of TALLRec's finetune_rec.py / evaluate.py, transcribed.
    answer = rec["output"] if with_answer else ""
    if rec["input"]:
        return ("Below is an instruction that describes a task, paired with an input that provides further "
                "context. Write a response that appropriately completes the request." + noqa + "\n\n"
                f"### Instruction:\n{rec['instruction']}\n\n### Input:\n{rec['input']}\n\n### Response:\n{answer}")
    return ("Below is an instruction that describes a task. Write a response that appropriately completes the "
            "request." + noqa + f"\n\n### Instruction:\n{rec['instruction']}\n\n### Response:\n{answer}")


def expected_train_ids(text, cutoff):
    ids = ([SP.bos_id()] + SP.encode(text))[:cutoff]  # HF: truncation=True, max_length=cutoff
    if ids[-1] != SP.eos_id() and len(ids) < cutoff:
        ids.append(SP.eos_id())
    return ids


def check(folder, records, cutoff=512, noqa=NOQA):
    meta, t = read_tokens(folder)
    assert meta["answer_ids"] == {"yes": 8241, "no": 3782}
    assert meta["records"] == len(records)
    for i, rec in enumerate(records):
        train = t["train_ids"][i]
        assert train == expected_train_ids(prompt(rec, True, noqa), cutoff), f"train ids of record {i}"
        evaluation = t["eval_ids"][i]
        want_eval = [SP.bos_id()] + SP.encode(prompt(rec, False, noqa))
        assert evaluation == want_eval, f"eval ids of record {i}"
        assert t["prompt_len"][i] == min(len(want_eval), cutoff)
        assert t["label"][i] == {"Yes.": 1, "No.": 0}.get(rec["output"], -1)
        assert t["source"][i] == i


def test_answer_token_facts():
    yes = SP.encode("### Response:\nYes.")
    no = SP.encode("### Response:\nNo.")
    assert yes[-3:] == [13, 8241, 29889]
    assert no[-3:] == [13, 3782, 29889]


@pytest.fixture(scope="module")
def movie(tmp_path_factory):
    out = tmp_path_factory.mktemp("movie")
    run_tallrec("data", "prepare", "movielens", "--raw", SHARED_DIR / "data" / "ml-100k", "--out", out)
    return out


@pytest.mark.parametrize("split", ["train", "valid", "test"])
def test_whole_movie_set(movie, split, tmp_path):
    run_tallrec("data", "tokenize", "--records", movie / f"{split}.json", "--tokenizer", TOKENIZER, "--out", tmp_path / "t")
    check(tmp_path / "t", json.loads((movie / f"{split}.json").read_text()))


@pytest.mark.parametrize("split", ["valid", "test"])
def test_whole_book_set(split, tmp_path):
    src = SHARED_DIR / "data" / "book-crossing" / f"{split}.json"
    run_tallrec("data", "tokenize", "--records", src, "--tokenizer", TOKENIZER, "--out", tmp_path / "t")
    check(tmp_path / "t", json.loads(src.read_text()))


def test_clean_template_short_cutoff_and_masked_inputs(tmp_path):
    src = SHARED_DIR / "data" / "book-crossing" / "valid.json"
    records = json.loads(src.read_text())[:200]
    (tmp_path / "r.json").write_text(json.dumps(records))
    run_tallrec("data", "tokenize", "--records", tmp_path / "r.json", "--tokenizer", TOKENIZER, "--out", tmp_path / "t",
                "--template", "clean", "--cutoff-len", 128, "--train-on-inputs", "false", "--allow-cut-answers")
    check(tmp_path / "t", records, cutoff=128, noqa="")
    meta = json.loads((tmp_path / "t" / "meta.json").read_text())
    assert meta["train_on_inputs"] is False and meta["prompt_template"] == "clean" and meta["cutoff_len"] == 128
