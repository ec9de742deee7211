"""Out of memory as a normal event (issue: Slurm cluster, part 4), on CPU under a real cap: the
grid's memory_limit_gib caps libtorch's CPU allocator, a train step that passes it fails with an
event that says out of memory and where, and the queue retries the run at once with half the
micro-batch and twice the accumulation (the same global batch) until it fits."""
import json

import pytest

from cluster import Coordinator, make_grid, query, run_tallrec, start_worker


@pytest.fixture(scope="module")
def hungry_model(tmp_path_factory):
    """A random LLaMA with wide enough activations that micro-batch 16 needs more than 0.6 GiB of
    tensors and micro-batch 4 less (measured: 16 and 8 fail under 0.6, 4 fits)."""
    import torch
    import transformers
    path = tmp_path_factory.mktemp("hungry") / "model"
    config = transformers.LlamaConfig(vocab_size=32000, hidden_size=256, intermediate_size=688,
                                      num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=8,
                                      max_position_embeddings=1024, rms_norm_eps=1e-6, tie_word_embeddings=False)
    torch.manual_seed(0)
    transformers.LlamaForCausalLM(config).save_pretrained(path, safe_serialization=True)
    return path


def test_out_of_memory_halves_the_micro_batch_until_the_run_fits(tmp_path, hungry_model):
    grid_path = make_grid(tmp_path, "oom", [0], max_steps=2)
    grid = json.loads(grid_path.read_text())
    grid.update(base_model=str(hungry_model), memory_limit_gib=0.6,
                hyper={"micro_batch_size": [16], "batch_size": [16], "max_steps": [2]})
    grid_path.write_text(json.dumps(grid))
    db = tmp_path / "store.db"
    run_tallrec("submit", grid_path, "--db", db)
    coordinator = Coordinator(db, tmp_path / "artifacts", backoff_seconds=300)
    try:
        worker = start_worker(coordinator.endpoint, tmp_path, "w1", "--exit-when-idle")
        assert worker.wait(timeout=300) == 0
    finally:
        coordinator.stop()
    attempts = query(db, "SELECT id, state, micro_batch_size, eval_batch_size, reason FROM attempts ORDER BY id")
    assert [(s, m, e) for _, s, m, e, _ in attempts] == [
        ("failed", None, None), ("failed", 8, 16), ("succeeded", 4, 8)], attempts
    assert "out of memory in train at step 1 (micro-batch 16" in attempts[0][4]
    assert "retrying with micro-batch 8 x 2 accumulation (global batch 16), evaluation batch 16" in attempts[0][4]
    assert "retrying with micro-batch 4 x 4 accumulation (global batch 16)" in attempts[1][4]
    (failed,), = query(db, "SELECT body FROM events WHERE attempt_id = ? AND type = 'failed'", attempts[0][0])
    assert json.loads(failed)["out_of_memory"] == {"phase": "train", "step": 1, "micro_batch_size": 16,
                                                   "eval_batch_size": 32}
    (started,), = query(db, "SELECT body FROM events WHERE attempt_id = ? AND type = 'started'", attempts[2][0])
    started = json.loads(started)
    assert (started["micro_batch_size"], started["accumulation"], started["steps"]) == (4, 4, 2)
    assert query(db, "SELECT state, attempts FROM runs") == [("succeeded", 1)], "no attempt spent"
    assert "micro-batch 4 after out-of-memory" in run_tallrec("runs", "--db", db).stdout
