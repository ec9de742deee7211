"""`tallrec-train import-gguf` (issue 20) against the `gguf` package and transformers' own GGUF
loader. A small random Llama with a byte-level BPE tokenizer (trained here on the movie prompts,
SmolLM2's pre-tokenizer: Digits then ByteLevel) is written as GGUF with llama.cpp's layout (q/k
rows permuted) in every supported tensor type (F32, F16, BF16, Q8_0, Q4_0, Q4_1). Imported, each
tensor equals transformers' GGUF loading (the gguf package's dequantization, q/k put back) bit
for bit; `tallrec-train logits` equals transformers on a left-padded batch; the written
tokenizer.json encodes the movie prompts as the original tokenizer does. Bad bytes and
unsupported types are refused by name, exit 2, nothing written."""
import json
import subprocess

import gguf
import numpy as np
import pytest
import safetensors.torch
import torch
import transformers
from conftest import BUILD_DIR, SHARED_DIR, run_tallrec
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

transformers.logging.set_verbosity_error()
TRAIN = BUILD_DIR / "tallrec-train"
Q = gguf.GGMLQuantizationType
# Tensor name (llama.cpp's) -> the type written, so that every supported type is read somewhere.
TYPES = {"token_embd": Q.Q8_0, "attn_q": Q.Q4_0, "attn_k": Q.Q4_1, "attn_v": Q.F16, "attn_output": Q.BF16,
         "ffn_gate": Q.Q4_1, "ffn_up": Q.Q4_0, "ffn_down": Q.Q8_0, "attn_norm": Q.F32, "ffn_norm": Q.F32,
         "output_norm": Q.F32}
HF_NAMES = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
            "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
            "ffn_down": "mlp.down_proj", "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm"}
H, I, LAYERS, HEADS, KV = 64, 128, 2, 4, 2


def permute(w, heads):  # HF's rotate-half rows -> llama.cpp's interleaved pairs (its convert script)
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def encode_tensor(writer, name, w, qtype):
    w = np.ascontiguousarray(w, dtype=np.float32)
    if qtype == Q.F32:
        writer.add_tensor(name, w)
    elif qtype == Q.F16:
        writer.add_tensor(name, w.astype(np.float16))
    else:
        writer.add_tensor(name, gguf.quants.quantize(w, qtype), raw_dtype=qtype)  # shape from the bytes


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    w = tmp_path_factory.mktemp("gguf")
    run_tallrec("data", "prepare", "movielens", "--raw", SHARED_DIR / "data" / "ml-100k", "--out", w / "movie")
    records = json.loads((w / "movie" / "valid.json").read_text())
    texts = [f"{r['instruction']}\n\n### Input:\n{r['input']}\n\n### Response:\n{r['output']}" for r in records]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False)])
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=800, special_tokens=["<|endoftext|>", "<|im_start|>",
                                                                                     "<|im_end|>"],
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                       show_progress=False))
    vocab = tok.get_vocab_size()
    doc = json.loads(tok.to_str())
    tokens = [t for t, _ in sorted(doc["model"]["vocab"].items(), key=lambda kv: kv[1])]
    merges = [m if isinstance(m, str) else " ".join(m) for m in doc["model"]["merges"]]

    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=vocab, hidden_size=H, intermediate_size=I, num_hidden_layers=LAYERS,
                                   num_attention_heads=HEADS, num_key_value_heads=KV, rms_norm_eps=1e-5,
                                   rope_theta=100000.0, max_position_embeddings=512, tie_word_embeddings=True)
    hf = transformers.LlamaForCausalLM(cfg)
    sd = {k: v.detach().numpy() for k, v in hf.state_dict().items()}
    writer = gguf.GGUFWriter(str(w / "tiny.gguf"), "llama")
    writer.add_block_count(LAYERS)
    writer.add_context_length(512)
    writer.add_embedding_length(H)
    writer.add_feed_forward_length(I)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV)
    writer.add_rope_freq_base(100000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(H // HEADS)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("smollm")
    writer.add_token_list(tokens)
    writer.add_token_types([3 if t.startswith("<|") else 1 for t in tokens])
    writer.add_token_merges(merges)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(False)
    encode_tensor(writer, "token_embd.weight", sd["model.embed_tokens.weight"], TYPES["token_embd"])
    encode_tensor(writer, "output_norm.weight", np.random.default_rng(1).uniform(0.5, 1.5, H), Q.F32)
    for l in range(LAYERS):
        for short, hf_name in HF_NAMES.items():
            t = sd[f"model.layers.{l}.{hf_name}.weight"]
            if "norm" in short:
                t = np.random.default_rng(l + 7).uniform(0.5, 1.5, t.shape)
            if short == "attn_q":
                t = permute(t, HEADS)
            if short == "attn_k":
                t = permute(t, KV)
            encode_tensor(writer, f"blk.{l}.{short}.weight", t, TYPES[short])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tok.save(str(w / "original-tokenizer.json"))
    out = subprocess.run([str(TRAIN), "import-gguf", str(w / "tiny.gguf"), "--out", str(w / "imported")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return w, texts


def test_every_tensor_equals_transformers_gguf_loading(work):
    w, _ = work
    theirs = transformers.AutoModelForCausalLM.from_pretrained(w, gguf_file="tiny.gguf", torch_dtype=torch.float32)
    want = theirs.state_dict()
    got = safetensors.torch.load_file(w / "imported" / "model.safetensors")
    assert sorted(got) == sorted(k for k in want if k != "lm_head.weight")  # tied: no lm_head
    differ = [k for k in got if not torch.equal(got[k], want[k])]
    assert not differ, differ


def test_logits_equal_transformers_on_a_left_padded_batch(work, tmp_path):
    w, _ = work
    theirs = transformers.AutoModelForCausalLM.from_pretrained(w, gguf_file="tiny.gguf", torch_dtype=torch.float32,
                                                               attn_implementation="eager").eval()
    torch.manual_seed(3)
    ids = torch.randint(3, theirs.config.vocab_size, (2, 12))
    mask = torch.ones_like(ids)
    mask[1, :5] = 0
    ids[mask == 0] = 0
    safetensors.torch.save_file({"input_ids": ids, "attention_mask": mask}, tmp_path / "b.safetensors")
    proc = subprocess.run([str(TRAIN), "logits", "--model", str(w / "imported"), "--batch", str(tmp_path / "b.safetensors"),
                           "--out", str(tmp_path / "o.safetensors"), "--positions", "mask"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    got = safetensors.torch.load_file(tmp_path / "o.safetensors")["logits"]
    pos = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)
    with torch.no_grad():
        want = theirs(input_ids=ids, attention_mask=mask, position_ids=pos).logits
    torch.testing.assert_close(got[mask.bool()], want[mask.bool()], atol=2e-5, rtol=1e-5)


def test_the_written_tokenizer_encodes_as_the_original(work):
    w, texts = work
    original = Tokenizer.from_file(str(w / "original-tokenizer.json"))
    proc = subprocess.run([str(BUILD_DIR / "tallrec"), "data", "encode", "--tokenizer", str(w / "imported")],
                          input=json.dumps(texts + ["1995 (1995) 12345 don't"]), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    want = [original.encode(t, add_special_tokens=False).ids for t in texts + ["1995 (1995) 12345 don't"]]
    assert got["ids"] == want
    assert got["bos_id"] == -1 and got["eos_id"] == 2  # add_bos_token false; eos from the file


@pytest.mark.parametrize("damage, named", [
    (lambda b: b"GGML" + b[4:], "not a GGUF file"),
    (lambda b: b[:200], "truncated GGUF"),
    (lambda b: b[:4] + (9).to_bytes(4, "little") + b[8:], "GGUF version 9 is not supported"),
    (lambda b: b[:16] + (2**40).to_bytes(8, "little") + b[24:], "keys: more than a GGUF model may have"),
])
def test_bad_gguf_bytes_are_refused_by_name(work, tmp_path, damage, named):
    w, _ = work
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(damage((w / "tiny.gguf").read_bytes()))
    proc = subprocess.run([str(TRAIN), "import-gguf", str(bad), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and named in proc.stderr and "bad.gguf" in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.importing").exists()


def k_quant_blocks(rng, rows, cols, qtype):
    """Random K-quant super-blocks of a [rows, cols] tensor (gguf cannot quantize these), their
    f16 scales set to sane values so that every value is finite."""
    block = gguf.GGML_QUANT_SIZES[qtype][1]
    raw = rng.integers(0, 256, (rows * cols // 256, block), dtype=np.uint8)
    if qtype == Q.Q6_K:
        raw[:, 208:210] = np.frombuffer(np.float16(0.01).tobytes(), np.uint8)
    else:  # Q4_K, Q5_K: d, then dmin
        raw[:, 0:2] = np.frombuffer(np.float16(0.02).tobytes(), np.uint8)
        raw[:, 2:4] = np.frombuffer(np.float16(0.005).tobytes(), np.uint8)
    return raw.reshape(rows, cols // 256 * block)


def test_k_quants_dequantize_as_the_gguf_package_bit_for_bit(tmp_path):
    """Q4_K, Q5_K and Q6_K (what Q4_K_M / Q5_K_M files are made of): each imported tensor equals
    gguf's own dequantization exactly."""
    kH, kKV = 256, 128
    rng = np.random.default_rng(5)
    writer = gguf.GGUFWriter(str(tmp_path / "k.gguf"), "llama")
    for key, value in [("add_block_count", 1), ("add_context_length", 64), ("add_embedding_length", kH),
                       ("add_feed_forward_length", kH), ("add_head_count", 4), ("add_head_count_kv", 2),
                       ("add_rope_freq_base", 10000.0), ("add_layer_norm_rms_eps", 1e-5)]:
        getattr(writer, key)(value)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("smollm")
    writer.add_token_list(["a", "b", "ab", "<|endoftext|>"])
    writer.add_token_types([1, 1, 1, 3])
    writer.add_token_merges(["a b"])
    writer.add_eos_token_id(3)
    quantized = {"token_embd.weight": (4, kH, Q.Q6_K), "blk.0.attn_v.weight": (kKV, kH, Q.Q4_K),
                 "blk.0.attn_output.weight": (kH, kH, Q.Q5_K), "blk.0.ffn_gate.weight": (kH, kH, Q.Q4_K),
                 "blk.0.ffn_up.weight": (kH, kH, Q.Q5_K), "blk.0.ffn_down.weight": (kH, kH, Q.Q6_K)}
    want = {}
    for name, (rows, cols, qtype) in quantized.items():
        raw = k_quant_blocks(rng, rows, cols, qtype)
        want[name] = gguf.quants.dequantize(raw, qtype)
        writer.add_tensor(name, raw, raw_dtype=qtype)
    for name, shape in [("blk.0.attn_q.weight", (kH, kH)), ("blk.0.attn_k.weight", (kKV, kH)),
                        ("blk.0.attn_norm.weight", (kH,)), ("blk.0.ffn_norm.weight", (kH,)),
                        ("output_norm.weight", (kH,))]:
        writer.add_tensor(name, rng.standard_normal(shape).astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    proc = subprocess.run([str(TRAIN), "import-gguf", str(tmp_path / "k.gguf"), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Q4_K x2" in proc.stdout and "Q5_K x2" in proc.stdout and "Q6_K x2" in proc.stdout, proc.stdout
    got = safetensors.torch.load_file(tmp_path / "out" / "model.safetensors")
    hf = {"token_embd.weight": "model.embed_tokens.weight"}
    for name in quantized:
        if name.startswith("blk.0."):
            short = name.split(".")[2]
            hf[name] = f"model.layers.0.{HF_NAMES[short]}.weight"
    for name, reference in want.items():
        assert np.isfinite(reference).all()
        np.testing.assert_array_equal(got[hf[name]].numpy(), reference, err_msg=name)


def test_an_unsupported_tensor_type_is_refused_by_name(tmp_path):
    writer = gguf.GGUFWriter(str(tmp_path / "k.gguf"), "llama")
    for key, value in [("add_block_count", 1), ("add_embedding_length", 256), ("add_feed_forward_length", 256),
                       ("add_head_count", 4), ("add_context_length", 64)]:
        getattr(writer, key)(value)
    writer.add_tensor("token_embd.weight", np.zeros((8, 84), np.uint8), raw_dtype=Q.Q2_K)  # 8 x 256
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    proc = subprocess.run([str(TRAIN), "import-gguf", str(tmp_path / "k.gguf"), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "\"token_embd.weight\" is Q2_K, which is not supported" in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()
