"""Table 1's baselines against RecBole 1.2.1, the library whose GRU4Rec, Caser and SASRec they
reproduce: a RecBole model's own weights, loaded into `tallrec-train baseline-gradients`, give
the same like/dislike scores (RecBole's predict()), the same binary cross-entropy and the same
gradient of every parameter, on real MovieLens records with histories of every length (padding
included). Our initialisation uses RecBole's parameter names and shapes."""
import json
import subprocess

import numpy as np
import pytest
import torch
from recbole.model.sequential_recommender import GRU4Rec, Caser, SASRec
from safetensors.torch import load_file, save_file

from conftest import BUILD_DIR, run_tallrec, SHARED_DIR

MAX_HISTORY = 10
HIDDEN = 64


class Dataset:
    """What RecBole's sequential models read of a dataset: the counts of items and users."""

    def __init__(self, items, users):
        self.items, self.user_num = items, users

    def num(self, field):
        assert field == "item_id"
        return self.items


def recbole_model(method, items, users):
    config = {
        "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "LIST_SUFFIX": "_list",
        "ITEM_LIST_LENGTH_FIELD": "item_length", "NEG_PREFIX": "neg_", "MAX_ITEM_LIST_LENGTH": MAX_HISTORY,
        "device": "cpu", "loss_type": "CE", "embedding_size": HIDDEN, "hidden_size": HIDDEN,
        # GRU4Rec
        "num_layers": 1, "dropout_prob": 0.1,
        # Caser
        "nv": 4, "nh": 8, "reg_weight": 1e-4,
        # SASRec
        "n_layers": 2, "n_heads": 2, "inner_size": 256, "hidden_dropout_prob": 0.1,
        "attn_dropout_prob": 0.1, "hidden_act": "gelu", "layer_norm_eps": 1e-12, "initializer_range": 0.02,
    }
    cls = {"gru4rec": GRU4Rec, "caser": Caser, "sasrec": SASRec}[method]
    return cls(config, Dataset(items, users))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """64 real MovieLens training records as ids, their histories cut to every length 1..10."""
    w = tmp_path_factory.mktemp("baselines")
    run_tallrec("data", "prepare", "movielens", "--raw", SHARED_DIR / "data" / "ml-100k", "--out", w / "movie")
    records = [json.loads(line) for line in (w / "movie" / "train.interactions.jsonl").read_text().splitlines()]
    records = [records[i] for i in np.random.default_rng(0).permutation(len(records))[:64]]
    items, users = {}, {}
    for r in records:
        users.setdefault(r["user"], len(users) + 1)
        for item in r["history"] + [r["target"]]:
            items.setdefault(item, len(items) + 1)
    split = {"user": [], "history": [], "history_length": [], "target": [], "label": []}
    for i, r in enumerate(records):
        keep = 1 + i % MAX_HISTORY
        ids = [items[x] for x in r["history"][-keep:]]
        split["user"].append(users[r["user"]])
        split["history"].append(ids + [0] * (MAX_HISTORY - keep))
        split["history_length"].append(keep)
        split["target"].append(items[r["target"]])
        split["label"].append(r["label"])
    assert 0 < sum(split["label"]) < len(records)
    doc = {"items": len(items) + 1, "users": len(users) + 1, "max_history": MAX_HISTORY, "train": split, "valid": split,
           "tests": {"movie": split}}
    (w / "inputs.json").write_text(json.dumps(doc))
    return w, doc


def baseline_gradients(w, method, weights=None):
    spec = w / f"{method}.json"
    spec.write_text(json.dumps({"method": method, "inputs": str(w / "inputs.json"), "seed": 3}))
    out = w / f"{method}-out.safetensors"
    args = [str(BUILD_DIR / "tallrec-train"), "baseline-gradients", "--spec", str(spec), "--out", str(out)]
    if weights:
        args += ["--weights", str(weights)]
    subprocess.run(args, check=True, capture_output=True, timeout=300)
    return load_file(str(out))


@pytest.mark.parametrize("method", ["gru4rec", "caser", "sasrec"])
def test_same_weights_give_recboles_scores_loss_and_gradients(inputs, method):
    w, doc = inputs
    torch.manual_seed(0)
    model = recbole_model(method, doc["items"], doc["users"])
    weights = w / f"{method}-recbole.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    ours = baseline_gradients(w, method, weights)

    model.eval()  # dropout off on both sides (the command scores in evaluation mode)
    t = {k: torch.tensor(doc["train"][k]) for k in ("user", "history", "history_length", "target")}
    interaction = {"user_id": t["user"], "item_id_list": t["history"], "item_length": t["history_length"],
                   "item_id": t["target"]}
    score = model.predict(interaction)
    loss = torch.nn.BCEWithLogitsLoss()(score, torch.tensor(doc["train"]["label"], dtype=torch.float32))
    loss.backward()

    torch.testing.assert_close(ours["score"], score.detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours["loss"], loss.detach(), rtol=1e-6, atol=1e-6)
    names = dict(model.named_parameters())
    assert {k[len("grad."):] for k in ours if k.startswith("grad.")} == set(names)
    for name, p in names.items():
        torch.testing.assert_close(ours["grad." + name], p.grad, rtol=1e-4, atol=1e-6, msg=lambda m: f"{name}: {m}")


@pytest.mark.parametrize("method", ["gru4rec", "caser", "sasrec"])
def test_our_initialisation_has_recboles_names_shapes_and_scale(inputs, method):
    w, doc = inputs
    ours = baseline_gradients(w, method)
    reference = recbole_model(method, doc["items"], doc["users"]).state_dict()
    weights = {k[len("weight."):]: v for k, v in ours.items() if k.startswith("weight.")}
    assert set(weights) == set(reference)
    for name, value in reference.items():
        assert weights[name].shape == value.shape, name
        # The same initialisation scheme: the spread of every tensor within 20% of RecBole's
        # (a wrong scheme, e.g. N(0, 1) for N(0, 0.02), is off by far more).
        if value.numel() > 100:
            assert weights[name].std().item() == pytest.approx(value.std().item(), rel=0.2), name
        else:
            assert torch.equal(value == 0, weights[name] == 0) or value.std() > 0, name


def dros_reference_loss(model, interaction, labels, targets, items, alpha=0.1, beta=1.0):
    """DROS's objective as its A_SASRec_final_bce.py computes it (YangZhengyi98/DROS), on RecBole's
    SASRec, with docs/baselines.md's one change for like/dislike data: the target's score is pulled
    towards the record's label instead of 1. The padding id 0 is not an item."""
    h = model.forward(interaction["item_id_list"], interaction["item_length"])
    scores = h @ model.item_embedding.weight.T                         # [B, N]
    counts = torch.ones(items, dtype=torch.float64)
    for t in targets.tolist():
        counts[t] += 1
    ps = torch.sqrt(counts / counts[1:].sum()).float()  # over the items: id 0 pads
    target = targets.view(-1, 1)
    s_t = scores.gather(1, target).squeeze(1)
    w_t = ps[targets]
    inner = (torch.exp(ps[1:] * scores[:, 1:] ** 2 / beta).sum(1) - torch.exp(w_t * s_t ** 2 / beta)
             + torch.exp(w_t * (s_t - labels) ** 2 / beta))
    bce = torch.nn.BCEWithLogitsLoss()(s_t, labels)
    return bce + alpha * torch.log(inner + 1e-24).mean()


def test_dros_is_sasrec_with_drosss_robust_term(inputs):
    w, doc = inputs
    torch.manual_seed(1)
    model = recbole_model("sasrec", doc["items"], doc["users"])
    weights = w / "dros-recbole.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    ours = baseline_gradients(w, "dros", weights)

    model.eval()
    t = {k: torch.tensor(doc["train"][k]) for k in ("history", "history_length", "target")}
    labels = torch.tensor(doc["train"]["label"], dtype=torch.float32)
    interaction = {"item_id_list": t["history"], "item_length": t["history_length"]}
    loss = dros_reference_loss(model, interaction, labels, t["target"], doc["items"])
    bce_only = torch.nn.BCEWithLogitsLoss()(
        model.predict({**interaction, "item_id": t["target"]}), labels)
    assert loss.item() > bce_only.item() + 1e-3, "the robust term adds to the loss"
    loss.backward()
    torch.testing.assert_close(ours["loss"], loss.detach(), rtol=1e-5, atol=1e-6)
    for name, p in model.named_parameters():
        torch.testing.assert_close(ours["grad." + name], p.grad, rtol=1e-4, atol=1e-6, msg=lambda m: f"{name}: {m}")
