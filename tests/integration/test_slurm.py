"""Workers as Slurm jobs on a real one-node Slurm cluster (slurm_cluster.py): `tallrec slurm
submit`, and preemption, `scontrol requeue` and Slurm's warning signal as normal events. In each,
the run goes back to the queue at once without spending an attempt, resumes from the checkpoint
its trainer wrote when the signal came, and ends with the same adapter, byte for byte, as a run
nobody interrupted (CPU, one thread per trainer)."""
import json
import time

import pytest

from cluster import (BUILD_DIR, Coordinator, best_adapter, loss_steps, make_grid, query, run_tallrec, submit_sweep,
                     uninterrupted_run, wait_for)
from slurm_cluster import SlurmCluster

STEPS = 40  # checkpoints at steps 10, 20, 30 and 40


@pytest.fixture(scope="module")
def slurm():
    cluster = SlurmCluster()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("slurm")


@pytest.fixture(scope="module")
def reference(root):
    return uninterrupted_run(root, "slurm", STEPS)


def submit(root, name, seeds=(0,)):
    return submit_sweep(root, name, "slurm", STEPS, seeds)


def submit_workers(slurm, coordinator, work, db, workers=1, *extra):
    r = slurm.run(BUILD_DIR / "tallrec", "slurm", "submit", "--coordinator", coordinator.endpoint,
                  "--workers", workers, "--gpus-per-worker", 0, "--cpus-per-worker", 1, "--threads", 1,
                  "--stop-grace", 20, "--work-dir", work / "scratch", "--log-dir", work / "logs", "--db", db,
                  *extra)
    return r.stdout.strip()


def check_preempted_then_identical(db, work, reference, reason):
    """One attempt preempted for `reason`, the next succeeded from its checkpoint, no attempt
    spent, and the reference's adapter. Returns the optimizer steps computed twice."""
    attempts = query(db, "SELECT id, state, reason FROM attempts ORDER BY id")
    assert [s for _, s, _ in attempts] == ["preempted", "succeeded"], attempts
    assert reason in attempts[0][2], attempts
    assert query(db, "SELECT attempts, preemptions, state FROM runs") == [(1, 1, "succeeded")]
    (started,), = query(db, "SELECT body FROM events WHERE attempt_id = ? AND type = 'started'", attempts[1][0])
    resumed = json.loads(started)["resumed_from_step"]
    computed = query(db, "SELECT MAX(step) FROM metrics WHERE attempt_id = ? AND name = 'loss'", attempts[0][0])[0][0]
    assert 0 < resumed < STEPS
    adapter, result = best_adapter(db, work / "artifacts")
    assert adapter == reference[0]
    assert result["test_auc"] == reference[1]["test_auc"]
    return computed - resumed


def test_dry_run_prints_a_requeueable_worker_array_with_a_warning_signal(tmp_path):
    r = run_tallrec("slurm", "submit", "--coordinator", "tcp://login1:5555", "--workers", 3,
                    "--gpus-per-worker", 2, "--partition", "gpu", "--time", "4:00:00", "--account", "lab",
                    "--qos", "normal", "--mem", "64G", "--cpus-per-worker", 8, "--sbatch=--constraint=a100",
                    "--log-dir", tmp_path / "logs", "--work-dir", "/scratch/tallrec", "--dry-run")
    script = r.stdout
    for line in ("#SBATCH --array=0-2", "#SBATCH --requeue", "#SBATCH --signal=B:USR1@90",
                 "#SBATCH --gres=gpu:2", "#SBATCH --partition=gpu", "#SBATCH --time=4:00:00",
                 "#SBATCH --account=lab", "#SBATCH --qos=normal", "#SBATCH --mem=64G",
                 "#SBATCH --cpus-per-task=8", "#SBATCH --constraint=a100",
                 f"#SBATCH --output={tmp_path}/logs/tallrec-worker-%A_%a.out"):
        assert line + "\n" in script, (line, script)
    exec_line = [line for line in script.splitlines() if line.startswith("exec ")][0]
    assert "worker --coordinator 'tcp://login1:5555'" in exec_line and "--exit-when-idle" in exec_line
    assert "--gpus \"${CUDA_VISIBLE_DEVICES:?" in exec_line
    assert "'/scratch/tallrec'/\"$id\"" in exec_line
    assert not (tmp_path / "logs").exists(), "a dry run creates nothing"


@pytest.mark.parametrize("args, named", [
    (["--workers", "0"], "--workers"),
    (["--workers", "1", "--gpus-per-worker", "-1"], "--gpus-per-worker"),
    (["--workers", "1", "--partition", "gpu\n#SBATCH --uid=0"], "--partition"),
    (["--workers", "1", "--curve-key", "w.key"], "--coordinator-key"),
    (["--workers", "1", "--log-dir", "/shared/my logs"], "--log-dir"),
])
def test_bad_options_exit_2_naming_them(args, named):
    r = run_tallrec("slurm", "submit", "--coordinator", "tcp://h:1", *args, "--dry-run", check=False)
    assert r.returncode == 2 and named in r.stderr, r.stderr


def test_a_two_task_worker_array_finishes_a_sweep(slurm, root):
    work, db = submit(root, "array", seeds=(0, 1, 2))
    coordinator = Coordinator(db, work / "artifacts")
    try:
        job = submit_workers(slurm, coordinator, work, db, 2)
        assert job.isdigit()
        seen = wait_for(lambda: [w for w in json.loads(run_tallrec("workers", "--db", db, "--json").stdout)
                                 if w["slurm"]], 60, "the array's workers")
        assert {w["id"] for w in seen} <= {f"slurm-{job}_0", f"slurm-{job}_1"}
        assert all(w["slurm"]["array_job"] == job and w["slurm"]["node"] == slurm.host for w in seen)
        status = slurm.run(BUILD_DIR / "tallrec", "slurm", "status", "--db", db, "--json")
        assert json.loads(status.stdout)["jobs"][0]["job"] == job
        wait_for(lambda: query(db, "SELECT COUNT(*) FROM runs WHERE state = 'succeeded'")[0][0] == 3, 300,
                 "the sweep to finish")
        # Idle workers exit, so the array leaves the queue.
        wait_for(lambda: not slurm.squeue(job), 60, "the workers to exit when idle")
    finally:
        coordinator.stop()
    assert {w for (w,) in query(db, "SELECT DISTINCT worker_id FROM attempts")} <= {f"slurm-{job}_0", f"slurm-{job}_1"}


def test_scontrol_requeue_mid_run_resumes_bit_identical(slurm, root, reference):
    work, db = submit(root, "requeue")
    coordinator = Coordinator(db, work / "artifacts", backoff_seconds=300)
    try:
        job = submit_workers(slurm, coordinator, work, db)
        wait_for(lambda: loss_steps(db) >= 2, 120, "training under way")
        slurm.run("scontrol", "requeue", job)
        wait_for(lambda: query(db, "SELECT COUNT(*) FROM attempts WHERE state = 'preempted'")[0][0], 60,
                 "the attempt to end preempted")
        # Slurm starts the requeued job again; its worker comes back as itself and finishes.
        slurm.run("scontrol", "update", f"jobid={job}", "StartTime=now", check=False)
        wait_for(lambda: query(db, "SELECT state FROM runs")[0][0] == "succeeded", 300, "the run to finish")
    finally:
        coordinator.stop()
    assert slurm.job_state(job)[1] >= 1, "Slurm requeued the job"
    assert {w for (w,) in query(db, "SELECT worker_id FROM attempts")} == {f"slurm-{job}_0"}
    assert check_preempted_then_identical(db, work, reference, "SIGTERM") <= 1


def test_the_warning_signal_hands_the_run_back_before_the_limit(slurm, root, reference):
    """What `--signal=B:USR1@90` sends before the time limit, sent now with scancel."""
    work, db = submit(root, "usr1")
    coordinator = Coordinator(db, work / "artifacts", backoff_seconds=300)
    try:
        first = submit_workers(slurm, coordinator, work, db)
        wait_for(lambda: loss_steps(db) >= 2, 120, "training under way")
        slurm.run("scancel", "--signal=USR1", "--batch", first)
        wait_for(lambda: not slurm.squeue(first), 60, "the signalled worker to exit")
        assert query(db, "SELECT state FROM runs") == [("queued",)]
        submit_workers(slurm, coordinator, work, db)
        wait_for(lambda: query(db, "SELECT state FROM runs")[0][0] == "succeeded", 300, "the run to finish")
    finally:
        coordinator.stop()
    assert slurm.job_state(first)[0] == "COMPLETED", "the worker exited 0 after handing its run back"
    assert check_preempted_then_identical(db, work, reference, "SIGUSR1") <= 1


def test_preemption_by_a_higher_priority_partition(slurm, root, reference):
    work, db = submit(root, "preemption")
    coordinator = Coordinator(db, work / "artifacts", backoff_seconds=300)
    try:
        job = submit_workers(slurm, coordinator, work, db)
        wait_for(lambda: loss_steps(db) >= 2, 120, "training under way")
        t0 = time.monotonic()
        # The whole node, in the partition with the higher PriorityTier: the worker is requeued.
        slurm.run("sbatch", "--parsable", "--partition=urgent", "--cpus-per-task=2", "--wrap", "sleep 2",
                  "-o", "/dev/null")
        wait_for(lambda: query(db, "SELECT COUNT(*) FROM attempts WHERE state = 'preempted'")[0][0], 60,
                 "the attempt to end preempted")
        preempted_after = time.monotonic() - t0
        wait_for(lambda: slurm.job_state(job)[1] >= 1 and slurm.squeue(job), 60, "the worker job requeued")
        slurm.run("scontrol", "update", f"jobid={job}", "StartTime=now", check=False)
        wait_for(lambda: query(db, "SELECT state FROM runs")[0][0] == "succeeded", 300, "the run to finish")
    finally:
        coordinator.stop()
    assert preempted_after < 30
    assert check_preempted_then_identical(db, work, reference, "SIGTERM") <= 1


def test_the_elastic_pool_follows_the_queue_without_churn(slurm, root, monkeypatch):
    """`coordinator --slurm-pool 3` on a node with room for two one-CPU workers: nothing is submitted
    while nothing is queued; three queued runs get one array of three tasks (two run, one waits for
    Resources); once the queue is empty the waiting task is cancelled and the idle workers exit."""
    monkeypatch.setenv("SLURM_CONF", slurm.env["SLURM_CONF"])
    work = root / "pool"
    work.mkdir()
    db = work / "store.db"
    coordinator = Coordinator(db, work / "artifacts", extra=[
        "--slurm-pool", 3, "--slurm-interval", 0.5, "--slurm-idle", 3, "--gpus-per-worker", 0,
        "--cpus-per-worker", 1, "--threads", 1, "--work-dir", work / "scratch", "--log-dir", work / "logs"])
    try:
        time.sleep(3)
        assert query(db, "SELECT COUNT(*) FROM slurm_jobs")[0][0] == 0, "submitted with nothing queued"
        run_tallrec("submit", make_grid(root, "slurm", [0, 1, 2], STEPS), "--db", db)
        (job,), = wait_for(lambda: query(db, "SELECT job_id FROM slurm_jobs WHERE source = 'pool'"), 30,
                           "the pool's first submission")
        tasks = wait_for(lambda: slurm.squeue(job) if len(slurm.squeue(job)) == 3 else None, 30,
                         "the array's three tasks")
        assert sorted(s for s, _ in tasks.values()).count("RUNNING") <= 2
        wait_for(lambda: query(db, "SELECT COUNT(*) FROM runs WHERE state = 'succeeded'")[0][0] == 3, 300,
                 "the sweep to finish")
        wait_for(lambda: not slurm.squeue(job), 90, "the pool to shrink to nothing")
        time.sleep(3)
    finally:
        coordinator.stop()
    assert query(db, "SELECT tasks FROM slurm_jobs") == [(3,)], "one submission: no churn"
    submitted = coordinator.stderr.count("slurm pool: submitted")
    cancelled = coordinator.stderr.count("slurm pool: cancelled")
    assert (submitted, cancelled) in ((1, 0), (1, 1)), coordinator.stderr


def test_a_time_limit_hands_the_run_back_before_the_kill(slurm, root):
    """A worker job with --time=1 and the warning 30 s before it: Slurm's SIGUSR1 comes while the
    run trains, the trainer checkpoints, the worker hands the run back and exits 0, so the job
    ends COMPLETED, not TIMEOUT, and the next worker resumes at the step it stopped at."""
    work = root / "time-limit"
    work.mkdir()
    db = work / "store.db"
    # About 4 steps a second: 200 steps outlast the warning, which comes some 20-30 s in.
    run_tallrec("submit", make_grid(root, "slurm-long", [0], 200), "--db", db)
    coordinator = Coordinator(db, work / "artifacts", backoff_seconds=300)
    try:
        limited = submit_workers(slurm, coordinator, work, db, 1, "--time", "1", "--warn-seconds", 30)
        wait_for(lambda: query(db, "SELECT COUNT(*) FROM attempts WHERE state = 'preempted'")[0][0], 120,
                 "the warning signal to hand the run back")
        wait_for(lambda: not slurm.squeue(limited), 60, "the limited worker to exit")
        submit_workers(slurm, coordinator, work, db)
        wait_for(lambda: query(db, "SELECT state FROM runs")[0][0] == "succeeded", 400, "the run to finish")
    finally:
        coordinator.stop()
    assert slurm.job_state(limited)[0] == "COMPLETED", "the checkpoint was made before the kill"
    attempts = query(db, "SELECT id, state, reason FROM attempts ORDER BY id")
    assert [s for _, s, _ in attempts] == ["preempted", "succeeded"] and "SIGUSR1" in attempts[0][2], attempts
    (stopped,), = query(db, "SELECT body FROM events WHERE attempt_id = ? AND type = 'preempted'", attempts[0][0])
    (started,), = query(db, "SELECT body FROM events WHERE attempt_id = ? AND type = 'started'", attempts[1][0])
    assert json.loads(started)["resumed_from_step"] == json.loads(stopped)["step"] > 0
    assert query(db, "SELECT attempts FROM runs") == [(1,)]
