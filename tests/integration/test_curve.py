"""CURVE between coordinator and workers (real sockets on 127.0.0.1): a worker whose public key
the coordinator holds gets work; one with an unknown key, or with no CURVE at all, never
completes the handshake, so it gets nothing and the store does not hear of it."""
import os
import stat

from cluster import Coordinator, make_grid, query, run_tallrec, start_worker


def test_only_known_worker_keys_get_work(tmp_path):
    keys, allowed = tmp_path / "keys", tmp_path / "allowed"
    for name in ("coordinator", "good", "stranger"):
        assert f"{name}.pub (public)" in run_tallrec("keys", name, "--out", keys).stdout
    assert stat.S_IMODE(os.stat(keys / "good.key").st_mode) == 0o600
    again = run_tallrec("keys", "good", "--out", keys, check=False)
    assert again.returncode == 2 and "exists already" in again.stderr
    allowed.mkdir()
    (allowed / "good.pub").write_bytes((keys / "good.pub").read_bytes())

    db = tmp_path / "store.db"
    run_tallrec("submit", make_grid(tmp_path, "curve", [0], 2), "--db", db)
    coordinator = Coordinator(db, tmp_path / "artifacts", extra=["--curve-key", keys / "coordinator.key",
                                                                 "--worker-keys", allowed])
    try:
        stranger = start_worker(coordinator.endpoint, tmp_path, "stranger", "--exit-when-idle", "--give-up-after", "3",
                                "--curve-key", keys / "stranger.key", "--coordinator-key", keys / "coordinator.pub")
        plain = start_worker(coordinator.endpoint, tmp_path, "plain", "--exit-when-idle", "--give-up-after", "3")
        assert stranger.wait(timeout=60) == 1 and plain.wait(timeout=60) == 1
        assert query(db, "SELECT COUNT(*) FROM workers")[0][0] == 0
        assert query(db, "SELECT state FROM runs") == [("queued",)]
        good = start_worker(coordinator.endpoint, tmp_path, "good", "--exit-when-idle",
                            "--curve-key", keys / "good.key", "--coordinator-key", keys / "coordinator.pub")
        assert good.wait(timeout=120) == 0
    finally:
        coordinator.stop()
    assert query(db, "SELECT state FROM runs") == [("succeeded",)]
    assert query(db, "SELECT DISTINCT worker_id FROM attempts") == [("good",)]
    assert "not a known worker key" in coordinator.stderr
    os.chmod(keys / "good.key", 0o644)
    loose = run_tallrec("worker", "--coordinator", coordinator.endpoint, "--curve-key", keys / "good.key",
                        "--coordinator-key", keys / "coordinator.pub", check=False)
    assert loose.returncode == 2 and "must not be readable by others" in loose.stderr
