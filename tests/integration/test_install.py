"""An install that can live on a shared filesystem: `cmake --install` to one prefix, the prefix
moved somewhere else, and a worker run from the new place trains a run end to end. Nothing of
the build folder or the virtualenv is on the library path: libtorch is found relative to the
binaries, `tallrec-train` beside `tallrec` or on PATH, and the installed coordinator serves its
dashboard from the prefix."""
import json
import os
import shutil
import subprocess
import urllib.request

from cluster import BUILD_DIR, free_port, make_grid, query, run_tallrec

# What a compute node has: the system's folders, nothing of ours.
BARE_ENV = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8"}


def test_an_installed_prefix_moved_elsewhere_runs_a_sweep(tmp_path):
    first = tmp_path / "first"
    subprocess.run(["cmake", "--install", str(BUILD_DIR), "--prefix", str(first)], check=True,
                   capture_output=True, timeout=600)
    prefix = tmp_path / "shared" / "tallrec"
    prefix.parent.mkdir()
    first.rename(prefix)
    bin_dir = prefix / "bin"

    # Every library tallrec-train needs resolves, and libtorch resolves inside the moved prefix.
    ldd = subprocess.run(["ldd", str(bin_dir / "tallrec-train")], env=BARE_ENV, capture_output=True, text=True,
                         check=True).stdout
    assert "not found" not in ldd, ldd
    libtorch = next(line for line in ldd.splitlines() if "libtorch_cpu.so" in line).split("=> ")[1].split(" (")[0]
    assert os.path.realpath(libtorch) == str(prefix / "lib" / "tallrec" / "torch" / "lib" / "libtorch_cpu.so"), ldd
    assert "tallrec-venv" not in ldd and str(BUILD_DIR) not in ldd, ldd

    # A `tallrec` alone elsewhere (a login node's copy, say) finds tallrec-train on PATH; with
    # neither beside it nor on PATH, a worker says so at once.
    solo = tmp_path / "solo"
    solo.mkdir()
    shutil.copy2(bin_dir / "tallrec", solo / "tallrec")
    lost = subprocess.run([str(solo / "tallrec"), "worker", "--coordinator", "tcp://127.0.0.1:1"], env=BARE_ENV,
                          capture_output=True, text=True, timeout=60)
    assert lost.returncode != 0 and "tallrec-train: not beside" in lost.stderr and "not on PATH" in lost.stderr

    # The prefix's own dashboard files are the ones served (marked, to tell them from the source tree's).
    index = prefix / "share" / "tallrec" / "web-ui-static" / "index.html"
    index.write_text(index.read_text() + "<!-- the moved prefix -->\n")

    db = tmp_path / "store.db"
    run_tallrec("submit", make_grid(tmp_path, "installed", [0], 2), "--db", db)
    endpoint, http = f"tcp://127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    coordinator = subprocess.Popen([str(bin_dir / "tallrec"), "coordinator", "--db", str(db), "--listen", endpoint,
                                    "--http", http], env=BARE_ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)
    try:
        assert "listening on" in coordinator.stdout.readline()
        page = urllib.request.urlopen(f"http://{http}/", timeout=30).read().decode()
        assert "app.js" in page and "the moved prefix" in page
        openapi = json.loads(urllib.request.urlopen(f"http://{http}/api/openapi.json", timeout=30).read())
        assert openapi["openapi"].startswith("3.")
        worker = subprocess.run([str(solo / "tallrec"), "worker", "--coordinator", endpoint, "--id", "moved",
                                 "--work-dir", str(tmp_path / "work"), "--threads", "1", "--exit-when-idle",
                                 "--gpus", "none"],
                                env={**BARE_ENV, "PATH": f"{bin_dir}:/usr/bin:/bin"}, capture_output=True, text=True,
                                timeout=300)
        assert worker.returncode == 0, worker.stdout + worker.stderr
    finally:
        coordinator.terminate()
        coordinator.communicate(timeout=30)
    assert query(db, "SELECT state FROM runs") == [("succeeded",)]
    assert query(db, "SELECT DISTINCT worker_id FROM attempts") == [("moved",)]
