#!/usr/bin/env python3
"""An `internlm2` GGUF made by llama.cpp's own converter gives the same logits in InternKit as the
safetensors checkpoint it came from, and agrees with llama.cpp on it.

Steps: `intern init --preset tiny` (random weights, real InternLM2 layout and tokenizer), llama.cpp's
convert_hf_to_gguf.py to F32 and F16 GGUF (it splits the fused wqkv and permutes Q/K rows for its RoPE),
then `intern logits` on all three and llama.cpp (llama-cpp-python, logits_all) on the two GGUFs.

Needs: a release build; pip install llama-cpp-python==0.3.36 torch transformers sentencepiece protobuf numpy;
the llama.cpp source tree of the same llama-cpp-python sdist (convert_hf_to_gguf.py, conversion/, gguf-py/):
       python3 scripts/check-internlm2-gguf.py LLAMA_CPP_DIR
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INTERN = os.environ.get("INTERN", os.path.join(ROOT, ".build/release/intern"))
IDS = [1, 92543, 1008, 364, 6176, 2770, 657, 395, 11100, 17993, 281, 92542, 364, 92543, 525, 11353, 364, 918, 4131, 14018]


def main():
    import llama_cpp
    llama_dir = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = os.path.join(tmp, "tiny")
        subprocess.run([INTERN, "init", "--preset", "tiny", "--out", ckpt, "--dtype", "f32", "--seed", "3"], check=True)
        env = dict(os.environ, PYTHONPATH=os.path.join(llama_dir, "gguf-py"))
        logits = {}
        for name, model in [("safetensors", ckpt), ("gguf-f32", None), ("gguf-f16", None)]:
            if model is None:
                model = os.path.join(tmp, name + ".gguf")
                subprocess.run([sys.executable, os.path.join(llama_dir, "convert_hf_to_gguf.py"), ckpt, "--outtype",
                                name.split("-")[1], "--outfile", model], check=True, env=env, capture_output=True)
            out = os.path.join(tmp, name + ".npy")
            subprocess.run([INTERN, "logits", "--model", model, "--ids", ",".join(map(str, IDS)), "--out", out], check=True)
            logits[name] = (model, np.load(out))
        base = logits["safetensors"][1]
        ok = True
        for name in ["gguf-f32", "gguf-f16"]:
            path, ours = logits[name]
            llm = llama_cpp.Llama(model_path=path, n_ctx=64, logits_all=True, n_threads=2, verbose=False)
            llm.eval(IDS)
            ref = np.array(llm.scores[:len(IDS)], dtype=np.float32)
            d_self, d_llama = np.abs(ours - base).max(), np.abs(ours - ref).max()
            agree = (ours.argmax(-1) == ref.argmax(-1)).mean()
            limit = 1e-5 if name == "gguf-f32" else 2e-3
            ok &= d_self <= limit and d_llama <= 2e-3 and agree == 1
            print(f"{name}: max |Δ| vs safetensors {d_self:.2e} (limit {limit:.0e}); vs llama.cpp {d_llama:.2e}; "
                  f"argmax agreement with llama.cpp {agree:.0%}  (logit scale {np.abs(base).max():.2f})")
        print("PASS" if ok else "FAIL")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
