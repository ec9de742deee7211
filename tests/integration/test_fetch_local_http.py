"""`tallrec data fetch movielens-100k` against a real HTTP server on 127.0.0.1 serving an
archive built here (the real one may not be redistributed, and CI has no internet)."""
import functools
import hashlib
import http.server
import io
import sys
import threading
import zipfile

import pytest

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "oracle"))
from conftest import run_tallrec  # noqa: E402


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("ml-100k/", "")
        z.writestr("ml-100k/u.data", "196\t242\t3\t881250949\n")
        z.writestr("ml-100k/u.item", "1|Toy Story (1995)|01-Jan-1995||x|0\n")
        z.writestr("ml-100k/README", "test archive\n")
    (root / "ml-100k.zip").write_bytes(buf.getvalue())
    (root / "evil.zip").write_bytes(_zip({"ml-100k/../../escape.txt": "x"}))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", hashlib.sha256(buf.getvalue()).hexdigest(), root
    httpd.shutdown()


def _zip(entries):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_downloads_verifies_and_unpacks(server, tmp_path):
    base, digest, _ = server
    proc = run_tallrec("data", "fetch", "movielens-100k", "--out", tmp_path / "data", "--url", f"{base}/ml-100k.zip",
                       "--sha256", digest)
    assert (tmp_path / "data" / "ml-100k" / "u.data").read_text() == "196\t242\t3\t881250949\n"
    assert (tmp_path / "data" / "ml-100k" / "README").exists()
    assert "verified" in proc.stderr
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["ml-100k"]


def test_checksum_mismatch_leaves_nothing(server, tmp_path):
    base, _, _ = server
    proc = run_tallrec("data", "fetch", "movielens-100k", "--out", tmp_path / "data", "--url", f"{base}/ml-100k.zip",
                       "--sha256", "0" * 64, check=False)
    assert proc.returncode == 2
    assert "checksum mismatch" in proc.stderr
    assert list((tmp_path / "data").iterdir()) == []


def test_http_error_is_a_failure_and_leaves_nothing(server, tmp_path):
    base, digest, _ = server
    proc = run_tallrec("data", "fetch", "movielens-100k", "--out", tmp_path / "data", "--url", f"{base}/missing.zip",
                       "--sha256", digest, check=False)
    assert proc.returncode == 1
    assert "404" in proc.stderr
    assert list((tmp_path / "data").iterdir()) == []


def test_path_traversal_in_the_archive_is_refused(server, tmp_path):
    base, _, root = server
    digest = hashlib.sha256((root / "evil.zip").read_bytes()).hexdigest()
    proc = run_tallrec("data", "fetch", "movielens-100k", "--out", tmp_path / "data", "--url", f"{base}/evil.zip",
                       "--sha256", digest, check=False)
    assert proc.returncode == 2
    assert "unexpected entry" in proc.stderr
    assert not (tmp_path / "escape.txt").exists()
    assert list((tmp_path / "data").iterdir()) == []


def test_default_source_is_the_official_archive():
    proc = run_tallrec("data", "fetch", "movielens-100k", "--help")
    assert "https://files.grouplens.org/datasets/movielens/ml-100k.zip" in proc.stdout
    assert "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229" in proc.stdout
