"""Writes the seed corpora of the model-file fuzz targets: small GGUF files made by the `gguf`
package (each tensor type the reader dequantizes, a llama-style metadata block with a byte-level
BPE vocabulary) and tokenizer.json files of each kind the oracle test builds, made by HF
`tokenizers` itself, each followed by a text to encode (the fuzz_files.h two-file layout).
Run from the repository root with the test virtualenv's Python:
    /opt/tallrec-venv/bin/python tests/fuzz/make_model_file_seeds.py
"""
import pathlib
import struct
import sys
import tempfile

import gguf
import numpy as np

root = pathlib.Path(__file__).resolve().parents[2]
corpus = root / "tests" / "fuzz" / "corpus"
sys.path.insert(0, str(root / "tests" / "oracle"))
from test_tokenizer_json_vs_hf import build  # noqa: E402  (the oracle test's tokenizer kinds)

TEXTS = ["Given the user's preference and unpreference, identify whether the user will like the target movie",
         "User Preference: \"Star Wars (1977)\", \"Fargo (1996)\" User Unpreference: \"Heat (1995)\"",
         "### Response:\nYes.", "### Response:\nNo.", "123456 7.89 don't I'LL 中文 👍🏽 e\u0301"] * 4


def put(target, name, data):
    (corpus / target).mkdir(parents=True, exist_ok=True)
    (corpus / target / name).write_bytes(data)


def gguf_file(path, types):
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(1)
    w.add_embedding_length(32)
    w.add_head_count(4)
    w.add_head_count_kv(2)
    w.add_context_length(64)
    w.add_feed_forward_length(64)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(["a", "b", "ab", "<|endoftext|>"])
    w.add_token_types([1, 1, 1, 3])
    w.add_token_merges(["a b"])
    w.add_eos_token_id(3)
    rng = np.random.default_rng(0)
    for i, t in enumerate(types):
        values = rng.standard_normal((1, 256)).astype(np.float32)
        if t in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16):
            data = values.astype(np.float16 if t == gguf.GGMLQuantizationType.F16 else np.float32)
            w.add_tensor(f"blk.0.t{i}.weight", data)
        elif t == gguf.GGMLQuantizationType.Q6_K:  # the package cannot quantize it: raw blocks
            block = gguf.GGML_QUANT_SIZES[t][1]
            w.add_tensor(f"blk.0.t{i}.weight", rng.integers(0, 256, (1, block), dtype=np.uint8), raw_dtype=t)
        else:
            w.add_tensor(f"blk.0.t{i}.weight", gguf.quants.quantize(values, t), raw_dtype=t)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    T = gguf.GGMLQuantizationType
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        for name, types in {"all-types": [T.F32, T.F16, T.BF16, T.Q8_0, T.Q4_0, T.Q4_1],
                            "q4_1-only": [T.Q4_1], "k-quant": [T.Q8_0, T.Q6_K]}.items():
            try:
                gguf_file(tmp / f"{name}.gguf", types)
            except Exception as e:  # a gguf package without that quantizer: leave the seed out
                print(f"gguf seed {name} left out: {e}")
                continue
            put("gguf", f"{name}.gguf", (tmp / f"{name}.gguf").read_bytes())
        for kind in ("gpt2", "llama3", "qwen2", "metaspace", "legacy"):
            build(kind, TEXTS, tmp / kind)
            doc = (tmp / kind / "tokenizer.json").read_bytes()
            text = "### Instruction:\nUser Preference: \"Fargo (1996)\" 12345 👍🏽\n### Response:\nYes.".encode()
            put("tokenizer_json", kind, struct.pack("<I", len(doc)) + doc + text)
    for target in ("gguf", "tokenizer_json"):
        for f in sorted((corpus / target).iterdir()):
            print(f"{f.relative_to(root)}: {f.stat().st_size} bytes")


if __name__ == "__main__":
    main()
