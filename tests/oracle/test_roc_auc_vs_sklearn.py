"""`tallrec-train roc-auc` is scikit-learn's roc_auc_score, to the last bit: random scores,
tie-heavy scores, tiny and large inputs; one class only is a clear error, not NaN."""
import json
import subprocess

import numpy as np
import sklearn.metrics

from conftest import BUILD_DIR


def ours(cases, tmp_path):
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    proc = subprocess.run([str(BUILD_DIR / "tallrec-train"), "roc-auc", str(tmp_path / "cases.json")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return [float(v) for v in proc.stdout.split()]


def test_identical_to_sklearn(tmp_path):
    rng = np.random.default_rng(0)
    cases = []
    for n in (2, 3, 5, 9, 17, 64, 129, 1000, 2427, 10000):
        for kind in ("random", "ties", "coarse", "separable"):
            labels = rng.integers(0, 2, n)
            labels[0], labels[-1] = 0, 1
            if kind == "random":
                scores = rng.random(n)
            elif kind == "ties":
                scores = rng.integers(0, 4, n) / 4.0
            elif kind == "coarse":
                scores = np.round(rng.random(n), 2)
            else:
                scores = labels + rng.random(n) * 0.5
            cases.append({"labels": labels.tolist(), "scores": scores.tolist()})
    got = ours(cases, tmp_path)
    want = [sklearn.metrics.roc_auc_score(c["labels"], c["scores"]) for c in cases]
    assert got == want  # exact, not approximately


def test_one_class_is_an_error(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps({"labels": [1, 1, 1], "scores": [0.1, 0.2, 0.3]}))
    proc = subprocess.run([str(BUILD_DIR / "tallrec-train"), "roc-auc", str(tmp_path / "c.json")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "only one class" in proc.stderr and "nan" not in proc.stdout.lower()
