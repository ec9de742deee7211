"""The `tallrec` and `tallrec-train` binaries as a user meets them: help, exit codes, errors that
name file and line, no partial output, and what each binary may link."""
import json
import pathlib
import subprocess
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "oracle"))
from conftest import BUILD_DIR, SHARED_DIR, TOKENIZER, run_tallrec  # noqa: E402


def ldd(binary):
    return subprocess.run(["ldd", str(BUILD_DIR / binary)], capture_output=True, text=True, check=True).stdout


def test_tallrec_links_no_libtorch_and_trainer_no_sentencepiece():
    assert "libtorch" not in ldd("tallrec")
    assert "libsentencepiece" in ldd("tallrec")
    trainer = ldd("tallrec-train")
    assert "libtorch_cpu" in trainer
    assert "libsentencepiece" not in trainer and "libcurl" not in trainer and "libzmq" not in trainer


def test_trainer_resolves_libstdcxx_before_libtorch():
    # PyPI's libtorch.so exports broken copies of std::filesystem functions; libstdc++ must come
    # before libtorch among the NEEDED libraries of every binary that links it
    # (jobs/train/CMakeLists.txt).
    for binary in ("tallrec-train", "tests/tallrec_train_tests"):
        dynamic = subprocess.run(["readelf", "-d", str(BUILD_DIR / binary)], capture_output=True, text=True,
                                 check=True).stdout
        needed = [line.split("[")[1].rstrip("]") for line in dynamic.splitlines() if "(NEEDED)" in line]
        # Before every libtorch library (tallrec-train names jemalloc first, which exports no
        # C++ symbols: test_train_options checks it allocates with it).
        torch_libraries = [i for i, name in enumerate(needed) if name.startswith(("libtorch", "libc10"))]
        assert "libstdc++.so.6" in needed and needed.index("libstdc++.so.6") < min(torch_libraries), (binary, needed)


def test_help_everywhere():
    for args in (["--help"], ["data", "--help"], ["data", "prepare", "movielens", "--help"],
                 ["data", "prepare", "bookcrossing", "--help"], ["data", "tokenize", "--help"],
                 ["data", "subset", "--help"], ["data", "fetch", "movielens-100k", "--help"], ["demo", "--help"]):
        proc = run_tallrec(*args)
        assert "Usage:" in proc.stdout, args
    proc = subprocess.run([str(BUILD_DIR / "tallrec-train"), "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "inspect-tokens" in proc.stdout


def test_usage_error_exits_2():
    proc = run_tallrec("data", "prepare", "movielens", "--raw", "x", check=False)
    assert proc.returncode == 2 and "--out" in proc.stderr


def test_bad_prompt_json_names_file_and_line_and_writes_nothing(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('[\n  {"instruction": "i", "input": "x", "output": "Yes."},\n  {"instruction": 3}\n]')
    proc = run_tallrec("data", "tokenize", "--records", bad, "--tokenizer", TOKENIZER, "--out", tmp_path / "t", check=False)
    assert proc.returncode == 2
    assert "bad.json: record 1: field \"instruction\" must be a string" in proc.stderr
    bad.write_text('[\n  {"instruction": "i",\n   "input": "x" "output": "Yes."}\n]')
    proc = run_tallrec("data", "tokenize", "--records", bad, "--tokenizer", TOKENIZER, "--out", tmp_path / "t", check=False)
    assert proc.returncode == 2 and "bad.json:3: malformed JSON" in proc.stderr
    bad.write_bytes(b'[{"instruction": "caf\xe9", "input": "", "output": "No."}]')
    proc = run_tallrec("data", "tokenize", "--records", bad, "--tokenizer", TOKENIZER, "--out", tmp_path / "t", check=False)
    assert proc.returncode == 2 and "bad.json:1: bad encoding" in proc.stderr
    assert not (tmp_path / "t").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json"]


def test_missing_raw_file_is_named(tmp_path):
    proc = run_tallrec("data", "prepare", "movielens", "--raw", tmp_path, "--out", tmp_path / "o", check=False)
    assert proc.returncode == 2 and "u.item: no such file" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_trainer_reads_tokens_and_builds_left_padded_batches(tmp_path):
    src = SHARED_DIR / "data" / "book-crossing" / "valid.json"
    run_tallrec("data", "tokenize", "--records", src, "--tokenizer", TOKENIZER, "--out", tmp_path / "t",
                "--sample", 64, "--seed", 42)
    proc = subprocess.run([str(BUILD_DIR / "tallrec-train"), "inspect-tokens", str(tmp_path / "t"), "--verify",
                           "--micro-batch", "4"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "64 records" in proc.stdout and "few-shot subset: sample 64, seed 42" in proc.stdout
    assert "answer ids yes=8241 no=3782" in proc.stdout
    meta = json.loads((tmp_path / "t" / "meta.json").read_text())
    assert meta["subset"] == {"sample": 64, "seed": 42}
    # A flipped byte is caught by --verify, and the trainer says which file is bad.
    blob = bytearray((tmp_path / "t" / "tokens.bin").read_bytes())
    blob[-1] ^= 1
    (tmp_path / "t" / "tokens.bin").write_bytes(bytes(blob))
    proc = subprocess.run([str(BUILD_DIR / "tallrec-train"), "inspect-tokens", str(tmp_path / "t"), "--verify"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "tokens.bin: SHA-256 differs" in proc.stderr
    (tmp_path / "t" / "tokens.bin").write_bytes(bytes(blob[:-9]))
    proc = subprocess.run([str(BUILD_DIR / "tallrec-train"), "inspect-tokens", str(tmp_path / "t")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "tokens.bin: size is" in proc.stderr


def test_demo_runs_a_grid_through_the_store(tmp_path):
    proc = run_tallrec("demo", "--data", SHARED_DIR / "data", "--tokenizer", TOKENIZER, "--work-dir", tmp_path,
                       "--samples", 16, "--seeds", 0, "--train-steps", 2, "--no-wait", "--http", "127.0.0.1:0")
    assert "train   8000 records  yes ratio 0.5571" in proc.stdout
    assert "1 runs submitted" in proc.stdout and "2 workers" in proc.stdout and "dashboard: http://127.0.0.1:" in proc.stdout
    assert "movie-s16-seed0      best val AUC" in proc.stdout
    assert "movie -> movie" in proc.stdout and "movie -> book" in proc.stdout
    assert "answer ids: yes=8241 no=3782" in proc.stdout
    assert len(list(tmp_path.glob("worker-*/runs/*/adapter/adapter_model.safetensors"))) == 1
    # The store holds the sweep and its result; `tallrec results` reads the same table.
    status = json.loads(run_tallrec("status", "--db", tmp_path / "tallrec.db", "--json").stdout)
    assert status[0]["by_state"]["succeeded"] == 1
    table = run_tallrec("results", "demo", "--db", tmp_path / "tallrec.db").stdout
    assert table.splitlines()[2] in proc.stdout
    layout = json.loads(run_tallrec("results", "demo", "--db", tmp_path / "tallrec.db", "--tallrec-json").stdout)
    assert set(layout["movie"]) == {"movie", "book"} and "16" in layout["movie"]["movie"]["model-tiny"]["0"]
    # Running the demo again reuses the stored result: nothing is retrained, the same table comes out.
    again = run_tallrec("demo", "--data", SHARED_DIR / "data", "--tokenizer", TOKENIZER, "--work-dir", tmp_path,
                        "--samples", 16, "--seeds", 0, "--train-steps", 2, "--no-wait", "--http", "127.0.0.1:0")
    assert "0 runs submitted (1 already in the store)" in again.stdout
    assert len(list(tmp_path.glob("worker-*/runs/*/adapter"))) == 1
    assert table.splitlines()[2] in again.stdout


def test_labels_other_than_yes_or_no_are_refused_unless_allowed(tmp_path):
    record = {"instruction": "Given the user's preference, answer \"Yes.\" or \"No.\".", "input": "User likes A."}
    records = [dict(record, output="Yes."), dict(record, output="No."), dict(record, output="yes"), dict(record, output="Maybe.")]
    (tmp_path / "r.json").write_text(json.dumps(records))
    proc = run_tallrec("data", "tokenize", "--records", tmp_path / "r.json", "--tokenizer", TOKENIZER,
                       "--out", tmp_path / "t", check=False)
    assert proc.returncode == 2 and 'r.json: record 2: output "yes" is neither "Yes." nor "No."' in proc.stderr, proc.stderr
    assert not (tmp_path / "t").exists()
    run_tallrec("data", "tokenize", "--records", tmp_path / "r.json", "--tokenizer", TOKENIZER, "--out", tmp_path / "t",
                "--allow-unlabeled")
    assert (tmp_path / "t" / "tokens.bin").exists()


def test_decapoda_special_ids_reproduce_tallrecs_pinned_tokenizer(tmp_path):
    record = {"instruction": "Given the user's preference, answer \"Yes.\" or \"No.\".", "input": "User likes A.", "output": "Yes."}
    (tmp_path / "r.json").write_text(json.dumps([record]))
    for ids in ("llama", "decapoda"):
        run_tallrec("data", "tokenize", "--records", tmp_path / "r.json", "--tokenizer", TOKENIZER, "--out", tmp_path / ids,
                    "--special-ids", ids)
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "oracle"))
    from conftest import read_tokens
    llama_meta, llama = read_tokens(tmp_path / "llama")
    deca_meta, deca = read_tokens(tmp_path / "decapoda")
    assert (llama["train_ids"][0][0], llama["train_ids"][0][-1]) == (1, 2)
    assert (deca["train_ids"][0][0], deca["train_ids"][0][-1]) == (0, 0)  # BOS and EOS both <unk>, as 4.28 + decapoda
    assert deca["train_ids"][0][1:-1] == llama["train_ids"][0][1:-1]
    assert deca_meta["special_ids"]["bos"] == 0 and deca_meta["special_ids"]["eos"] == 0
    proc = run_tallrec("data", "tokenize", "--records", tmp_path / "r.json", "--tokenizer", TOKENIZER, "--out", tmp_path / "x",
                       "--special-ids", "hf5", check=False)
    assert proc.returncode == 2 and 'special ids "hf5"' in proc.stderr


def test_special_ids_overrides_set_bos_eos_and_pad(tmp_path):
    """A grid or --special-ids may override each special id (issue 20): no BOS, another EOS, another
    pad; ids outside the vocabulary and malformed items are refused by name."""
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "oracle"))
    from conftest import read_tokens
    record = {"instruction": "Given the user's preference, answer \"Yes.\" or \"No.\".", "input": "User likes A.", "output": "Yes."}
    (tmp_path / "r.json").write_text(json.dumps([record]))
    run_tallrec("data", "tokenize", "--records", tmp_path / "r.json", "--tokenizer", TOKENIZER, "--out", tmp_path / "d")
    run_tallrec("data", "tokenize", "--records", tmp_path / "r.json", "--tokenizer", TOKENIZER, "--out", tmp_path / "o",
                "--special-ids", "llama,bos=none,eos=13,pad=3")
    _, default = read_tokens(tmp_path / "d")
    meta, over = read_tokens(tmp_path / "o")
    assert meta["special_ids"] == {"bos": -1, "eos": 13, "pad": 3}
    assert over["train_ids"][0] == default["train_ids"][0][1:-1] + [13]  # no BOS, EOS 13
    assert over["eval_ids"][0] == default["eval_ids"][0][1:]
    for bad, named in [("llama,pad=32000", "pad 32000 is not in the tokenizer's vocabulary of 32000"),
                       ("llama,eos=none", '"eos=none"'), ("pad=1,llama", '"llama" must come first'),
                       ("llama,pad=1,pad=2", "a second time"), ("llama,bos=-1", '"bos=-1" is not a token id'),
                       ("llama,cls=1", "names no special token")]:
        proc = run_tallrec("data", "tokenize", "--records", tmp_path / "r.json", "--tokenizer", TOKENIZER, "--out",
                           tmp_path / "x", "--special-ids", bad, check=False)
        assert proc.returncode == 2 and named in proc.stderr, (bad, proc.stderr)
        assert not (tmp_path / "x").exists()
