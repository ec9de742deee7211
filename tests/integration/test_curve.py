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


def test_a_worker_id_belongs_to_the_key_it_first_came_with(tmp_path):
    import json
    import time

    import zmq
    keys, allowed = tmp_path / "keys", tmp_path / "allowed"
    allowed.mkdir()
    for name in ("coordinator", "good", "other"):
        run_tallrec("keys", name, "--out", keys)
    for name in ("good", "other"):  # both are known keys: the other is a real worker, just not w1
        (allowed / f"{name}.pub").write_bytes((keys / f"{name}.pub").read_bytes())
    db = tmp_path / "store.db"
    run_tallrec("submit", make_grid(tmp_path, "bind", [0], 2), "--db", db)
    coordinator = Coordinator(db, tmp_path / "artifacts", extra=["--curve-key", keys / "coordinator.key",
                                                                 "--worker-keys", allowed])
    server = (keys / "coordinator.pub").read_text().strip().encode()

    def dealer(key_name, identity):
        pair = json.loads((keys / f"{key_name}.key").read_text())
        s = zmq.Context.instance().socket(zmq.DEALER)
        s.setsockopt(zmq.IDENTITY, identity)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.RCVTIMEO, 5000)
        s.curve_secretkey, s.curve_publickey, s.curve_serverkey = pair["secret"].encode(), pair["public"].encode(), server
        s.connect(coordinator.endpoint)
        return s

    ready = json.dumps({"worker": "w1", "host": "h", "version": "test", "slots": 1, "gpus": [], "attempts": []}).encode()
    try:
        real = dealer("good", b"w1")
        real.send_multipart([b"TRP01", b"READY", ready])
        real.send_multipart([b"TRP01", b"REQUEST", b'{"slots_free": 1}'])
        lease = real.recv_multipart()
        assert lease[1] == b"LEASE", lease
        attempt = json.loads(lease[2])["attempt"]
        real.close()
        time.sleep(0.5)  # the ROUTER lets the identity go
        impostor = dealer("other", b"w1")
        for frames in ([b"TRP01", b"HEARTBEAT", json.dumps({"attempts": [attempt]}).encode()],
                       [b"TRP01", b"EVENT", json.dumps({"attempt": attempt, "seq": 1, "event": {"type": "started"}}).encode()],
                       [b"TRP01", b"READY", ready]):
            impostor.send_multipart(frames)
            reply = impostor.recv_multipart()
            assert reply[1] == b"ERROR" and json.loads(reply[2])["code"] == "not-yours", reply
        impostor.close()
        assert query(db, "SELECT state FROM runs") == [("leased",)]
        assert query(db, "SELECT COUNT(*) FROM events")[0][0] == 0
        assert query(db, "SELECT curve_key FROM workers WHERE id = 'w1'")[0][0] == json.loads((keys / "good.key").read_text())["public"]
        time.sleep(0.5)
        back = dealer("good", b"w1")  # the real one, back: its heartbeat counts
        back.send_multipart([b"TRP01", b"HEARTBEAT", json.dumps({"attempts": [attempt]}).encode()])
        assert back.recv_multipart()[1] == b"HEARTBEAT"
        back.close()
    finally:
        coordinator.stop()


def test_off_loopback_the_coordinator_needs_curve_or_says_why(tmp_path):
    """Safe by default: a coordinator whose ZeroMQ port or HTTP API other hosts can reach refuses
    to start without CURVE (or, for HTTP, at all, since it has no TLS), exit 2, naming the flag that
    allows it on purpose, and creates no store. With CURVE, or --allow-insecure-listen, it starts."""
    import subprocess

    from cluster import BUILD_DIR, free_port

    def start(*args):
        return subprocess.Popen([str(BUILD_DIR / "tallrec"), "coordinator", "--db", str(tmp_path / "s.db"),
                                 *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def refused(*args):
        proc = start(*args)
        try:
            out, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise AssertionError(f"coordinator {' '.join(map(str, args))} kept serving")
        assert proc.returncode == 2 and "--allow-insecure-listen" in err, err
        assert not (tmp_path / "s.db").exists()
        return err

    def serves(*args):
        proc = start(*args)
        try:
            assert "listening on" in proc.stdout.readline()
        finally:
            proc.terminate()
            proc.communicate(timeout=30)

    port = free_port()
    err = refused("--listen", f"tcp://0.0.0.0:{port}", "--http", "off")
    assert "CURVE is off" in err and "--curve-key" in err
    refused("--listen", f"tcp://*:{port}", "--http", "off")
    err = refused("--listen", f"tcp://127.0.0.1:{port}", "--http", f"0.0.0.0:{free_port()}")
    assert "no TLS" in err
    keys = tmp_path / "keys"
    run_tallrec("keys", "coordinator", "--out", keys)
    run_tallrec("keys", "worker", "--out", keys)
    (tmp_path / "allowed").mkdir()
    (tmp_path / "allowed" / "worker.pub").write_bytes((keys / "worker.pub").read_bytes())
    serves("--listen", f"tcp://0.0.0.0:{port}", "--http", "off",
           "--curve-key", keys / "coordinator.key", "--worker-keys", tmp_path / "allowed")
    serves("--listen", f"tcp://0.0.0.0:{free_port()}", "--http", "off", "--allow-insecure-listen")
    serves("--listen", f"tcp://127.0.0.1:{free_port()}", "--http", f"127.0.0.1:{free_port()}")
    demo = run_tallrec("demo", "--http", f"0.0.0.0:{free_port()}", "--no-wait", "--work-dir", tmp_path / "demo",
                       check=False)
    assert demo.returncode == 2 and "reachable from other hosts" in demo.stderr, demo.stderr
    assert not (tmp_path / "demo").exists()
