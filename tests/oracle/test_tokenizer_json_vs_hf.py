"""tokenizer.json (issue 20): `tallrec data encode` gives the ids HF tokenizers gives
(encode(text, add_special_tokens=False)), byte for byte, on every prompt of TALLRec's movie and
book sets and on hostile text, for each kind of tokenizer.json the current families use. The
files are built here with `tokenizers` itself (trained on the movie prompts), one per kind:
  gpt2      ByteLevel with GPT-2's regex and add_prefix_space, Digits (SmolLM2 on the Hub, GPT-2)
  llama3    Split with Llama-3's pattern + ByteLevel without regex, ignore_merges, BOS template
  qwen2     NFC + Split with Qwen2's pattern + ByteLevel, no BOS
  metaspace Metaspace (prepend "first") + byte fallback (Mistral, Llama-2 converted anew)
  legacy    Prepend + Replace normalizers + byte fallback (Llama-2's legacy tokenizer.json)
Unsupported parts are refused by name, and invalid UTF-8 is refused, never encoded."""
import json
import subprocess

import pytest
from conftest import BUILD_DIR, SHARED_DIR, run_tallrec
from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")

HOSTILE = [
    "", " ", "  a  b   ", "\n\n\tx", "héllo wörld", "e\u0301 combining marks a\u0308\u0301", "👍🏽 emoji 🇺🇸 👨‍👩‍👧",
    "123456789 12 3 4567.89", "x" * 5000, "a" + " " * 300 + "b", "don't I'LL we've THEY'RE", "中文字符测试",
    "١٢٣ arabic digits ⅷ", "tab\tsep\r\nline", "\u00a0nbsp\u2003emsp\u3000", "### Response:\nYes.",
    "### Response:\nNo.", "<|im_start|>user<|im_end|>", "<|begin_of_text|>x<|end_of_text|>", "<s> </s> <unk>",
    "\ufb01 ligature ＡＢＣ fullwidth", "Ω ohm sign Å angstrom", "\x00 nul \x7f del", "zero\u200bwidth",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    run_tallrec("data", "prepare", "movielens", "--raw", SHARED_DIR / "data" / "ml-100k", "--out", root / "movie")
    texts = []
    for f in [root / "movie" / "valid.json", root / "movie" / "test.json",
              SHARED_DIR / "data" / "book-crossing" / "valid.json", SHARED_DIR / "data" / "book-crossing" / "test.json"]:
        for r in json.loads(f.read_text()):
            texts += [r["instruction"], r["input"], r["output"],
                      f"{r['instruction']}\n\n### Input:\n{r['input']}\n\n### Response:\n{r['output']}"]
    return texts


def byte_fallback(tok):
    """The trained tokenizer with <0x00>..<0xFF> in its vocabulary and byte_fallback on."""
    doc = json.loads(tok.to_str())
    vocab = doc["model"]["vocab"]
    for b in range(256):
        vocab.setdefault(f"<0x{b:02X}>", len(vocab))
    doc["model"]["byte_fallback"] = True
    return Tokenizer.from_str(json.dumps(doc))


def build(kind, texts, folder):
    folder.mkdir()
    special = {"gpt2": ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
               "llama3": ["<|begin_of_text|>", "<|end_of_text|>"],
               "qwen2": ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
               "metaspace": ["<unk>", "<s>", "</s>"], "legacy": ["<unk>", "<s>", "</s>"]}[kind]
    byte_level = kind in ("gpt2", "llama3", "qwen2")
    tok = Tokenizer(models.BPE(unk_token=None if byte_level else "<unk>", ignore_merges=kind == "llama3"))
    if kind == "gpt2":
        tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                     pre_tokenizers.ByteLevel(add_prefix_space=True)])
    elif kind in ("llama3", "qwen2"):
        pattern = LLAMA3_PATTERN if kind == "llama3" else QWEN2_PATTERN
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
        if kind == "qwen2":
            tok.normalizer = normalizers.NFC()
    elif kind == "metaspace":
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    else:
        tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    alphabet = pre_tokenizers.ByteLevel.alphabet() if byte_level else []
    tok.train_from_iterator(texts[:4000], trainers.BpeTrainer(vocab_size=1500, special_tokens=special,
                                                              initial_alphabet=alphabet, show_progress=False))
    if not byte_level:
        tok = byte_fallback(tok)
    if kind == "llama3":
        tok.post_processor = processors.Sequence([
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A $B",
                                          special_tokens=[("<|begin_of_text|>", tok.token_to_id("<|begin_of_text|>"))])])
    elif kind in ("metaspace", "legacy"):
        tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A $B",
                                                           special_tokens=[("<s>", tok.token_to_id("<s>"))])
    elif kind == "qwen2":
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.save(str(folder / "tokenizer.json"))
    eos = {"gpt2": "<|im_end|>", "llama3": "<|end_of_text|>", "qwen2": "<|im_end|>"}.get(kind, "</s>")
    (folder / "tokenizer_config.json").write_text(json.dumps({"eos_token": eos}))
    return tok


def encode(tokenizer, texts):
    proc = subprocess.run([str(BUILD_DIR / "tallrec"), "data", "encode", "--tokenizer", str(tokenizer)],
                          input=json.dumps(texts), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("kind", ["gpt2", "llama3", "qwen2", "metaspace", "legacy"])
def test_ids_equal_hf_tokenizers(kind, corpus, tmp_path):
    tok = build(kind, corpus, tmp_path / kind)
    texts = corpus + HOSTILE
    want = [tok.encode(t, add_special_tokens=False).ids for t in texts]
    got = encode(tmp_path / kind, texts)  # the folder: its tokenizer.json
    differ = [i for i in range(len(texts)) if got["ids"][i] != want[i]]
    assert not differ, [(texts[i][:60], want[i][:20], got["ids"][i][:20]) for i in differ[:3]]
    plain, with_special = (tok.encode("x", add_special_tokens=s).ids for s in (False, True))
    assert got["bos_id"] == (with_special[0] if len(with_special) == len(plain) + 1 else -1)
    assert got["eos_id"] == tok.token_to_id(json.loads((tmp_path / kind / "tokenizer_config.json").read_text())["eos_token"])
    assert got["vocab_size"] == tok.get_vocab_size(with_added_tokens=True)


def test_answer_ids_and_no_bos_tokenize_for_training(corpus, tmp_path):
    """A tokenizer.json without BOS (Qwen2's kind) tokenizes TALLRec's records: no BOS in front,
    EOS from tokenizer_config.json, Yes/No ids as the answer tokenizes after the prompt."""
    tok = build("qwen2", corpus, tmp_path / "qwen2")
    run_tallrec("data", "prepare", "movielens", "--raw", SHARED_DIR / "data" / "ml-100k", "--out", tmp_path / "movie")
    proc = run_tallrec("data", "tokenize", "--records", tmp_path / "movie" / "valid.json", "--tokenizer",
                       tmp_path / "qwen2", "--out", tmp_path / "tokens")
    yes = tok.encode("### Response:\nYes.", add_special_tokens=False).ids
    no = tok.encode("### Response:\nNo.", add_special_tokens=False).ids
    prefix = tok.encode("### Response:\n", add_special_tokens=False).ids
    assert f"answer ids yes={yes[len(prefix)]} no={no[len(prefix)]}" in proc.stdout, proc.stdout
    meta = json.loads((tmp_path / "tokens" / "meta.json").read_text())
    assert meta["special_ids"]["bos"] == -1 and meta["special_ids"]["eos"] == tok.token_to_id("<|im_end|>")


@pytest.mark.parametrize("change, named", [
    (lambda d: d["model"].update(type="WordPiece"), "model type \"WordPiece\" is not supported"),
    (lambda d: d.update(normalizer={"type": "BertNormalizer"}), "normalizer \"BertNormalizer\" is not supported"),
    (lambda d: d.update(pre_tokenizer={"type": "Whitespace"}), "pre-tokenizer \"Whitespace\" is not supported"),
    (lambda d: d.update(post_processor={"type": "RobertaProcessing"}), "post_processor \"RobertaProcessing\""),
    (lambda d: d["model"].update(dropout=0.1), "BPE dropout is not supported"),
    (lambda d: d["added_tokens"][0].update(lstrip=True), "lstrip is not supported"),
    (lambda d: d["model"]["merges"].append(["zzq", "qqz"]), "not in the vocabulary"),
    (lambda d: d.update(pre_tokenizer={"type": "Split", "pattern": {"Regex": "(unclosed"}, "behavior": "Isolated"}),
     "does not compile"),
])
def test_what_is_not_supported_is_refused_by_name(change, named, corpus, tmp_path):
    build("gpt2", corpus[:400], tmp_path / "t")
    doc = json.loads((tmp_path / "t" / "tokenizer.json").read_text())
    change(doc)
    (tmp_path / "t" / "tokenizer.json").write_text(json.dumps(doc))
    proc = subprocess.run([str(BUILD_DIR / "tallrec"), "data", "encode", "--tokenizer", str(tmp_path / "t" / "tokenizer.json")],
                          input="[\"x\"]", capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and named in proc.stderr and "tokenizer.json" in proc.stderr, proc.stderr


def test_a_regex_that_gives_up_is_refused_not_half_applied(corpus, tmp_path):
    """Catastrophic backtracking hits PCRE2's match limit; that text is refused by name (it was
    split only up to where the regex gave up, and the rest tokenized as one piece)."""
    build("gpt2", corpus[:400], tmp_path / "t")
    doc = json.loads((tmp_path / "t" / "tokenizer.json").read_text())
    doc["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": "(a+)+$"}, "behavior": "Isolated", "invert": False},
        doc["pre_tokenizer"]]}
    (tmp_path / "t" / "tokenizer.json").write_text(json.dumps(doc))
    proc = subprocess.run([str(BUILD_DIR / "tallrec"), "data", "encode", "--tokenizer", str(tmp_path / "t")],
                          input=json.dumps(["a" * 40 + "!"]), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "(a+)+$" in proc.stderr and "gave up" in proc.stderr, proc.stderr
    assert not proc.stdout


@pytest.mark.parametrize("text", [b'["ok", "bad \\udc80 lone surrogate"]', b'["ok", "bad \xff byte"]'])
def test_invalid_utf8_is_refused_not_encoded(text, corpus, tmp_path):
    build("gpt2", corpus[:400], tmp_path / "t")
    proc = subprocess.run([str(BUILD_DIR / "tallrec"), "data", "encode", "--tokenizer", str(tmp_path / "t")],
                          input=text, capture_output=True, timeout=60)
    assert proc.returncode == 2 and b"stdin" in proc.stderr and not proc.stdout, proc.stderr
