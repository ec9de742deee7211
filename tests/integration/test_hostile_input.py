"""Bytes from outside never crash the coordinator: each request or message below killed it
before (uncaught nlohmann type_error.316 on invalid UTF-8 quoted in an error reply, or a stack
overflow in the recursive JSON parser). Each is sent to a real coordinator on 127.0.0.1, over
HTTP and over ZeroMQ (a raw DEALER, no CURVE), and afterwards the coordinator must still be
alive and serving both. Also: `tallrec submit` of a grid nested 200,000 deep is a clear exit 2."""
import json
import socket
import time

import pytest
import requests
import zmq

from cluster import Coordinator, make_grid, run_tallrec


@pytest.fixture(scope="module")
def coordinator(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    c = Coordinator(root / "store.db", root / "artifacts")
    yield c
    c.stop()


def alive(c):
    assert c.proc.poll() is None, f"the coordinator died (exit {c.proc.returncode}): {c.proc.stderr.read()[-2000:]}"
    assert requests.get(c.url.rstrip("/") + "/api/sweeps", timeout=10).status_code == 200


def raw_http(c, request: bytes):
    host, port = c.url.split("//")[1].rstrip("/").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(request)
        s.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    return reply


@pytest.mark.parametrize("target", [b"/api/runs?limit=%ff", b"/api/runs?offset=%c3%28", b"/api/runs?sweep=%ff%fe",
                                    b"/api/runs/%ff", b"/api/sweeps/%c3%28"])
def test_invalid_utf8_in_the_query_is_refused_not_fatal(coordinator, target):
    reply = raw_http(coordinator, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    status = int(reply.split(b" ", 2)[1])
    assert status < 500, reply[:300]  # refused (bad number, no such run) or an empty page; never a crash
    json.loads(reply.split(b"\r\n\r\n", 1)[1])  # still a JSON error body, its text made valid UTF-8
    alive(coordinator)


def test_invalid_utf8_and_deep_nesting_in_a_body_are_refused(coordinator):
    url, auth = coordinator.url.rstrip("/"), {"Authorization": f"Bearer {coordinator.token}"}
    r = requests.post(f"{url}/api/sweeps", data=b'{"name": "\xff\xfe"}', headers=auth, timeout=10)
    assert r.status_code == 400 and "malformed JSON" in r.json()["error"]
    r = requests.post(f"{url}/api/sweeps", data=b"[" * 400_000 + b"]" * 400_000, headers=auth, timeout=30)
    assert r.status_code in (400, 413), r.text[:300]
    r = requests.post(f"{url}/api/sweeps", data=b'{"a":' * 100_000 + b"1" + b"}" * 100_000, headers=auth, timeout=30)
    assert r.status_code == 400 and "nested deeper than 64" in r.json()["error"]
    alive(coordinator)


def dealer(c):
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.RCVTIMEO, 5000)
    s.connect(c.endpoint)
    return s


@pytest.mark.parametrize("frames", [
    [b"\xff", b"READY", b"{}"],
    [b"TRP01", b"\xc3\x28", b"{}"],
    [b"TRP01", b"READY", b"\xff"],
    [b"TRP01", b"READY", json.dumps({"host": "h", "slots": 1, "version": "x", "attempts": []}).encode()[:-1]
     + b', "gpus": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"],
    [b"TRP01", b"HEARTBEAT", b'{"attempts": [], "attempt": ' + b"[" * 400_000 + b"]" * 400_000 + b"}"],
], ids=["version-not-utf8", "type-not-utf8", "body-not-utf8", "ready-gpus-deep", "heartbeat-deep"])
def test_hostile_zeromq_messages_are_refused_and_the_coordinator_serves_on(coordinator, frames):
    s = dealer(coordinator)
    try:
        s.send_multipart(frames)
        reply = s.recv_multipart()  # an ERROR naming what was wrong
        assert reply[1] == b"ERROR", reply[:2]
        body = json.loads(reply[2])
        assert body["code"] in ("version", "bad-message", "too-large") and body["message"]
    finally:
        s.close()
    time.sleep(0.1)
    alive(coordinator)


def test_submit_of_a_deeply_nested_grid_is_exit_2(tmp_path):
    grid = tmp_path / "deep.json"
    grid.write_text("[" * 200_000 + "]" * 200_000)
    proc = run_tallrec("submit", grid, "--db", tmp_path / "s.db", check=False)
    assert proc.returncode == 2 and "nested deeper than 64" in proc.stderr, proc.stderr[-500:]


def ready(s, worker):
    s.send_multipart([b"TRP01", b"READY", json.dumps({"worker": worker, "host": "h", "version": "test", "slots": 1,
                                                      "gpus": [], "attempts": []}).encode()])


def test_a_peer_cannot_act_for_another_workers_attempt(tmp_path):
    grid = make_grid(tmp_path, "forge", [0], 2)
    run_tallrec("submit", grid, "--db", tmp_path / "store.db")
    c = Coordinator(tmp_path / "store.db", tmp_path / "artifacts")
    ctx = zmq.Context.instance()
    try:
        holder, forger = ctx.socket(zmq.DEALER), ctx.socket(zmq.DEALER)
        for s, name in ((holder, b"w-real"), (forger, b"w-forger")):
            s.setsockopt(zmq.IDENTITY, name)
            s.setsockopt(zmq.LINGER, 0)
            s.setsockopt(zmq.RCVTIMEO, 5000)
            s.connect(c.endpoint)
        ready(holder, "w-real")
        ready(forger, "w-forger")
        holder.send_multipart([b"TRP01", b"REQUEST", b'{"slots_free": 1}'])
        lease = holder.recv_multipart()
        assert lease[1] == b"LEASE", lease[:2]
        attempt = json.loads(lease[2])["attempt"]

        def refused(frames):
            forger.send_multipart(frames)
            reply = forger.recv_multipart()
            return reply[1], json.loads(reply[2])

        forger.send_multipart([b"TRP01", b"HEARTBEAT", json.dumps({"attempts": [attempt]}).encode()])
        replies = [forger.recv_multipart() for _ in range(2)]
        assert sorted(r[1] for r in replies) == [b"CANCEL", b"HEARTBEAT"]  # not renewed: "not yours, stop"
        finished = {"type": "finished", "best_step": 1, "best_val_auc": 0.999, "steps": 1, "stopped_early": False,
                    "adapter": "/forged", "test_auc": {"movie": 0.999}}
        kind, body = refused([b"TRP01", b"EVENT", json.dumps({"attempt": attempt, "seq": 1, "event": finished}).encode()])
        assert (kind, body["code"]) == (b"ERROR", "not-yours")
        kind, body = refused([b"TRP01", b"DONE", json.dumps({"attempt": attempt, "seq": 2, "exit_code": 0, "signal": None,
                                                              "stderr_tail": ""}).encode()])
        assert (kind, body["code"]) == (b"ERROR", "not-yours")
        kind, body = refused([b"TRP01", b"FETCH", json.dumps({"attempt": attempt, "transfer": "t1", "checkpoint": "step-00000001", "chunks": 4}).encode()])
        assert (kind, body["code"]) == (b"ERROR", "not-yours")
        import sqlite3
        db = sqlite3.connect(tmp_path / "store.db")
        assert db.execute("SELECT state, result FROM runs").fetchall() == [("leased", None)]
        assert db.execute("SELECT COUNT(*) FROM events").fetchone() == (0,)
        # The holder's own messages still count.
        holder.send_multipart([b"TRP01", b"HEARTBEAT", json.dumps({"attempts": [attempt]}).encode()])
        assert holder.recv_multipart()[1] == b"HEARTBEAT"
        holder.send_multipart([b"TRP01", b"EVENT", json.dumps({"attempt": attempt, "seq": 1,
                                                               "event": {"type": "started", "records": 16}}).encode()])
        assert holder.recv_multipart()[1] == b"ACK"
        assert db.execute("SELECT state FROM runs").fetchall() == [("running",)]
        holder.close()
        forger.close()
    finally:
        c.stop()
