"""Faults with real processes on 127.0.0.1 (issue: coordinator and workers). A worker killed with
SIGKILL, a coordinator killed and restarted several times, a zombie worker stopped with SIGSTOP
past its lease, a run cancelled and retried from the CLI: every run still ends once, and a run
resumed from the coordinator's stored checkpoint ends with the same adapter, byte for byte, as
one that was never interrupted (CPU, one thread per trainer)."""
import json
import signal
import time

import pytest

from cluster import (Coordinator, all_runs_ended, best_adapter, check_trace, loss_steps, make_grid, query,
                     run_tallrec, start_worker, submit_sweep, uninterrupted_run, wait_for)

STEPS = 20  # checkpoints at steps 10 and 20


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("faults")


@pytest.fixture(scope="module")
def reference(root):
    return uninterrupted_run(root, "faults", STEPS)


def submit(root, name, seeds=(0,)):
    return submit_sweep(root, name, "faults", STEPS, seeds)


def first_checkpoint_stored(db):
    return query(db, "SELECT COUNT(*) FROM checkpoints")[0][0] > 0


def kill_a_worker_after_its_first_checkpoint(coordinator, work, db):
    """Worker w1 trains until the coordinator stores a checkpoint, then dies by SIGKILL."""
    w1 = start_worker(coordinator.endpoint, work, "w1")
    wait_for(lambda: first_checkpoint_stored(db), 120, "the first stored checkpoint")
    w1.send_signal(signal.SIGKILL)
    w1.wait(timeout=10)


def resumed_from(db, attempt):
    (body,), = query(db, "SELECT body FROM events WHERE attempt_id = ? AND type = 'started'", attempt)
    return json.loads(body)["resumed_from_step"]


def test_killed_worker_resumes_elsewhere_bit_identical(root, reference):
    work, db = submit(root, "killed-worker")
    coordinator = Coordinator(db, work / "artifacts", lease_seconds=2)
    try:
        kill_a_worker_after_its_first_checkpoint(coordinator, work, db)
        w2 = start_worker(coordinator.endpoint, work, "w2")
        wait_for(lambda: all_runs_ended(db), 180, "the run to end")
        w2.terminate()
        assert w2.wait(timeout=30) == 0
    finally:
        coordinator.stop()
    attempts = query(db, "SELECT id, worker_id, state, reason FROM attempts ORDER BY id")
    assert [(w, s) for _, w, s, _ in attempts] == [("w1", "lost"), ("w2", "succeeded")], attempts
    assert resumed_from(db, attempts[1][0]) >= 10
    adapter, result = best_adapter(db, work / "artifacts")
    assert adapter == reference[0]
    assert result["test_auc"] == reference[1]["test_auc"] and result["best_step"] == reference[1]["best_step"]


def test_sigterm_to_a_worker_preempts_its_run_without_spending_an_attempt(root, reference):
    """SIGTERM (what Slurm's preemption, requeue and scancel send) is not a failure: the trainer
    checkpoints at the next optimizer step, the worker uploads it and reports the attempt
    preempted, and the run is queued again at once (the backoff here is 60 s) with its attempt
    budget untouched. The next attempt resumes where it stopped and ends bit-identical."""
    work, db = submit(root, "preempted-worker")
    coordinator = Coordinator(db, work / "artifacts", backoff_seconds=60)
    try:
        w1 = start_worker(coordinator.endpoint, work, "w1")
        wait_for(lambda: loss_steps(db) >= 2, 120, "training under way")
        w1.send_signal(signal.SIGTERM)
        assert w1.wait(timeout=60) == 0
        queued_at = time.monotonic()
        w2 = start_worker(coordinator.endpoint, work, "w2", "--exit-when-idle")
        assert w2.wait(timeout=180) == 0
        assert time.monotonic() - queued_at < 50, "the preempted run waited out a backoff"
    finally:
        coordinator.stop()
    attempts = query(db, "SELECT id, worker_id, state, reason FROM attempts ORDER BY id")
    assert [(w, s) for _, w, s, _ in attempts] == [("w1", "preempted"), ("w2", "succeeded")], attempts
    assert "preempted at step" in attempts[0][3] and "SIGTERM" in attempts[0][3]
    assert query(db, "SELECT attempts, preemptions, state FROM runs") == [(1, 1, "succeeded")]
    (stopped,), = query(db, "SELECT body FROM events WHERE attempt_id = ? AND type = 'preempted'", attempts[0][0])
    stopped = json.loads(stopped)
    first_steps = query(db, "SELECT MAX(step) FROM metrics WHERE attempt_id = ? AND name = 'loss'", attempts[0][0])[0][0]
    # The checkpoint is of the step it stopped at: nothing computed is computed again.
    assert stopped["checkpoint_step"] == stopped["step"] == first_steps
    assert resumed_from(db, attempts[1][0]) == stopped["step"] < STEPS
    adapter, result = best_adapter(db, work / "artifacts")
    assert adapter == reference[0]
    assert result["test_auc"] == reference[1]["test_auc"] and result["best_step"] == reference[1]["best_step"]


def test_coordinator_killed_repeatedly_loses_nothing(root):
    work, db = submit(root, "killed-coordinator", seeds=(0, 1, 2, 3))
    coordinator = Coordinator(db, work / "artifacts")
    workers = [start_worker(coordinator.endpoint, work, f"w{i}", "--exit-when-idle") for i in (1, 2)]
    try:
        for delay, down in ((3.0, 0.0), (5.0, 7.0), (4.0, 0.5)):  # 7 s down: workers re-open their sockets
            try:
                wait_for(lambda: all_runs_ended(db), delay, "")
                break
            except AssertionError:
                pass
            assert coordinator.kill(signal.SIGKILL) == -signal.SIGKILL
            time.sleep(down)
            coordinator.start()
        for w in workers:
            assert w.wait(timeout=300) == 0
    finally:
        for w in workers:
            w.kill()
        coordinator.stop()
    assert query(db, "PRAGMA integrity_check") == [("ok",)]
    assert query(db, "SELECT state, COUNT(*) FROM runs GROUP BY state") == [("succeeded", 4)]
    # Each run ended once: one succeeded attempt each, whose events are stored once, in order.
    succeeded = query(db, "SELECT run_id, id FROM attempts WHERE state = 'succeeded' ORDER BY run_id")
    assert [r for r, _ in succeeded] == [1, 2, 3, 4]
    for _, attempt in succeeded:
        seqs = [s for (s,) in query(db, "SELECT seq FROM events WHERE attempt_id = ? ORDER BY seq", attempt)]
        assert seqs == list(range(1, len(seqs) + 1))
        types = [t for (t,) in query(db, "SELECT type FROM events WHERE attempt_id = ?", attempt)]
        assert types.count("started") == 1 and types.count("finished") == 1
    assert "movie -> movie" in run_tallrec("results", "faults", "--db", db).stdout
    assert any("reconnecting" in (work / f"w{i}.log").read_text() for i in (1, 2))


def test_zombie_worker_changes_nothing(root, reference):
    work, db = submit(root, "zombie")
    coordinator = Coordinator(db, work / "artifacts", lease_seconds=2)
    try:
        zombie = start_worker(coordinator.endpoint, work, "zombie", "--exit-when-idle")
        wait_for(lambda: query(db, "SELECT COUNT(*) FROM events WHERE type = 'progress'")[0][0] > 0, 120,
                 "training to start")
        zombie.send_signal(signal.SIGSTOP)
        healthy = start_worker(coordinator.endpoint, work, "healthy")
        wait_for(lambda: all_runs_ended(db), 180, "the healthy worker to finish the run")
        healthy.terminate()
        assert healthy.wait(timeout=30) == 0
        before = query(db, "SELECT * FROM events ORDER BY id"), query(db, "SELECT * FROM runs"), \
            query(db, "SELECT * FROM checkpoints ORDER BY id"), query(db, "SELECT id, state FROM attempts")
        zombie.send_signal(signal.SIGCONT)  # it re-sends its events and DONE for a lease it lost
        assert zombie.wait(timeout=60) == 0
        after = query(db, "SELECT * FROM events ORDER BY id"), query(db, "SELECT * FROM runs"), \
            query(db, "SELECT * FROM checkpoints ORDER BY id"), query(db, "SELECT id, state FROM attempts")
    finally:
        coordinator.stop()
    assert after == before
    assert [s for _, s in after[3]] == ["lost", "succeeded"]
    assert best_adapter(db, work / "artifacts")[0] == reference[0]
    assert "no longer ours" in (work / "zombie.log").read_text()


def test_cancel_then_retry_resumes_from_the_stored_checkpoint(root, reference):
    work, db = submit(root, "cancel-retry")
    coordinator = Coordinator(db, work / "artifacts", extra=["--trace", work / "trace.jsonl"])
    try:
        w1 = start_worker(coordinator.endpoint, work, "w1", "--exit-when-idle")
        wait_for(lambda: first_checkpoint_stored(db), 120, "the first stored checkpoint")
        assert "run 1 canceled (was running)" in run_tallrec("cancel", "1", "--db", db).stdout
        assert w1.wait(timeout=30) == 0  # CANCEL at its next heartbeat: trainer stopped, no work left
        assert query(db, "SELECT state FROM attempts") == [("canceled",)]
        again = run_tallrec("cancel", "1", "--db", db, check=False)
        assert again.returncode == 1 and "only queued, leased or running runs" in again.stdout
        assert "run 1 queued again" in run_tallrec("retry", "1", "--db", db).stdout
        w2 = start_worker(coordinator.endpoint, work, "w2", "--exit-when-idle")
        assert w2.wait(timeout=180) == 0
        workers = json.loads(run_tallrec("workers", "--db", db, "--json").stdout)
    finally:
        coordinator.stop()
    assert {w["id"] for w in workers} == {"w1", "w2"} and all(w["attempts"] == [] for w in workers)
    (attempt,), = query(db, "SELECT id FROM attempts WHERE state = 'succeeded'")
    assert resumed_from(db, attempt) >= 10
    assert best_adapter(db, work / "artifacts")[0] == reference[0]
    seen = check_trace(work / "trace.jsonl")
    assert seen >= {"FETCH", "CHUNK", "CREDIT"} and seen & {"CANCEL", "ERROR"}  # told at a heartbeat, or by a refusal
    unknown = run_tallrec("retry", "99", "--db", db, check=False)
    assert unknown.returncode == 2 and "run 99 is not in the store" in unknown.stderr


def submit_big_sweep(root, work, db, priority):
    """A one-run sweep whose training set is 24,000 records (MovieLens' 8,000 three times, all of
    them: sample -1): several seconds of tokenizing on a worker before its 2 steps."""
    grid = json.loads(make_grid(root, "faults", [0], STEPS).read_text())  # also the tiny model and prompts
    records = json.loads((root / "movie" / "train.json").read_text())
    (work / "big-train.json").write_text(json.dumps(records * 3))
    grid.update(name=f"big-{work.name}", priority=priority, samples=[-1], test_sample=32,
                hyper={"micro_batch_size": [4], "batch_size": [4], "max_steps": [2]})
    grid["datasets"]["movie"]["train"] = str(work / "big-train.json")
    (work / "big.json").write_text(json.dumps(grid))
    run_tallrec("submit", work / "big.json", "--db", db)


def test_a_worker_stopped_while_it_tokenizes_reports_the_attempt_preempted(root):
    """SIGTERM while a slot is still preparing its data (before any trainer): the worker stops
    tokenizing, reports the attempt preempted (no attempt spent, queued again at once) and exits 0
    within its grace, instead of leaving the lease to run out."""
    work = root / "stopped-preparing"
    work.mkdir()
    db = work / "store.db"
    submit_big_sweep(root, work, db, priority=0)
    coordinator = Coordinator(db, work / "artifacts", backoff_seconds=60)
    try:
        w1 = start_worker(coordinator.endpoint, work, "w1")
        wait_for(lambda: query(db, "SELECT COUNT(*) FROM attempts")[0][0] == 1, 60, "the run leased")
        time.sleep(1)  # tokenizing: several seconds yet
        assert query(db, "SELECT COUNT(*) FROM events")[0][0] == 0, "the trainer started already"
        w1.send_signal(signal.SIGTERM)
        assert w1.wait(timeout=30) == 0
    finally:
        coordinator.stop()
    assert query(db, "SELECT state FROM attempts") == [("preempted",)]
    assert query(db, "SELECT state, attempts FROM runs") == [("queued", 0)]


def test_a_slot_tokenizing_for_long_leaves_the_worker_listening(root):
    """A two-slot worker: one slot resumes a run from the coordinator's stored checkpoint while the
    other tokenizes a training file for longer than the link's silence limit (5 s). The worker keeps
    receiving throughout (no reconnect while the coordinator answers), the resumed run's checkpoint
    arrives and it starts at that step, not at step 0; then both runs succeed."""
    work, db = submit(root, "deaf-resume")
    coordinator = Coordinator(db, work / "artifacts", lease_seconds=2)
    try:
        kill_a_worker_after_its_first_checkpoint(coordinator, work, db)
        wait_for(lambda: query(db, "SELECT state FROM runs") == [("queued",)], 30, "the lost run queued again")
        submit_big_sweep(root, work, db, priority=-1)  # after the first in priority
        w2 = start_worker(coordinator.endpoint, work, "w2", "--slots", "2", "--exit-when-idle")
        assert w2.wait(timeout=300) == 0
    finally:
        coordinator.stop()
    log = (work / "w2.log").read_text()
    assert "reconnecting" not in log, log
    assert "could not fetch the resume checkpoint" not in log, log
    assert query(db, "SELECT state FROM runs ORDER BY id") == [("succeeded",), ("succeeded",)]
    (resumed,), = query(db, "SELECT id FROM attempts WHERE run_id = 1 AND worker_id = 'w2'")
    assert resumed_from(db, resumed) >= 10
