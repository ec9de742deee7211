"""Table 1's baseline rows, measured: examples/table1-baselines.json (GRU4Rec, Caser, SASRec and
DROS on MovieLens at 16/64/256 samples over five seeds) through a real coordinator and worker in a
scratch folder, printed beside the paper's rows. A cell is marked where the paper's figure lies
outside our mean +- one seed std (*) or two (**). About 1.5 minutes on 2 cores.

    /opt/tallrec-venv/bin/python bench/table1_baselines.py [--work DIR] [--grid FILE]

Book-Crossing needs its prompt files with their interactions (`tallrec data prepare bookcrossing`
on the raw dump); give a grid that names them with --grid."""
import argparse
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
BUILD = ROOT / "build"
SHARED = ROOT.parent / "shared"
# AUC x 100, TALLRec's Table 1 (arXiv 2305.00447).
PAPER = {
    "GRU4Rec": {"movie": [49.07, 49.87, 52.89], "book": [48.95, 49.64, 49.86]},
    "Caser": {"movie": [49.68, 51.06, 54.20], "book": [49.84, 49.72, 49.57]},
    "SASRec": {"movie": [50.43, 50.48, 52.25], "book": [49.48, 50.06, 50.20]},
    "DROS": {"movie": [50.76, 51.54, 54.07], "book": [49.28, 49.13, 49.13]},
    "TALLRec": {"movie": [67.24, 67.48, 71.98], "book": [56.36, 60.39, 64.38]},
}
SAMPLES = [16, 64, 256]


def tallrec(*args, **kw):
    return subprocess.run([str(BUILD / "tallrec"), *map(str, args)], check=True, text=True, capture_output=True, **kw)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default=str(ROOT / "out" / "table1-baselines"))
    ap.add_argument("--grid", default=str(ROOT / "examples" / "table1-baselines.json"))
    args = ap.parse_args()
    work = pathlib.Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    movie = ROOT / "out" / "data" / "movie"  # where the example grid's relative paths point
    if not (movie / "train.interactions.jsonl").exists():
        tallrec("data", "prepare", "movielens", "--raw", SHARED / "data" / "ml-100k", "--out", movie)
    db = work / "sweeps.db"
    name = json.loads(pathlib.Path(args.grid).read_text())["name"]
    tallrec("submit", args.grid, "--db", db)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        endpoint = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    coordinator = subprocess.Popen([str(BUILD / "tallrec"), "coordinator", "--db", str(db), "--listen", endpoint,
                                    "--http", "off"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    start = time.monotonic()
    try:
        time.sleep(0.5)
        slots = str(max(1, os.cpu_count() or 1))
        with open(work / "worker.log", "w") as log:
            subprocess.run([str(BUILD / "tallrec"), "worker", "--coordinator", endpoint, "--work-dir", str(work / "w"),
                            "--slots", slots, "--gpus", "none", "--exit-when-idle"], check=True, stdout=log,
                           stderr=subprocess.STDOUT)
    finally:
        coordinator.terminate()
        coordinator.wait()
    seconds = time.monotonic() - start
    table = json.loads(tallrec("results", name, "--db", db, "--json").stdout)
    print(f"{name}: {seconds:.0f} s on {os.cpu_count()} cores; AUC x 100, ours mean +- std over seeds (n) | paper")
    for row, cells in zip(table["rows"], table["cells"]):
        label = row["setting"] or "TALLRec"
        paper = PAPER.get(label, {}).get(row["test"])
        parts = []
        for k, cell in enumerate(cells):
            sample = table["samples"][k]
            if cell["mean"] is None:
                parts.append(f"{sample}: -")
                continue
            mean, std = 100 * cell["mean"], 100 * (cell["std"] or 0)
            text = f"{sample}: {mean:5.1f} +- {std:3.1f} (n={cell['succeeded']})"
            if paper and sample in SAMPLES:
                ref = paper[SAMPLES.index(sample)]
                mark = "" if abs(ref - mean) <= std else "*" if abs(ref - mean) <= 2 * std else "**"
                text += f" | {ref:5.2f}{mark}"
            parts.append(text)
        print(f"{label:8} {row['train']} -> {row['test']}   " + "   ".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
