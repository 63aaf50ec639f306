#!/usr/bin/env python3
"""Perplexity of the demo model on the Paul Graham essays, InternKit against llama.cpp, in one run.

Both sides use llama-perplexity's method: the text's tokens (the vocabulary adds no BOS) cut into windows of
512, the second half of each window scored. llama.cpp runs through llama-cpp-python (`logits_all=True`,
the same computation as `llama-perplexity -c 512`); InternKit runs `intern perplexity --json`. Files: the
Q4_1 GGUF and its F32 copy (scripts/fixtures/make_smollm_fixtures.py `f32_copy`).

Usage: pip install llama-cpp-python==0.3.36 gguf==0.19.0 numpy; swift build -c release
       python3 Benchmarks/perplexity/compare-llamacpp.py [--chunks N] [--essays DIR]
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts/fixtures"))
from make_smollm_fixtures import f32_copy, log_softmax  # noqa: E402

CTX = 512


def llama_perplexity(llama_cpp, path, tokens, chunks, threads):
    llm = llama_cpp.Llama(model_path=path, n_ctx=CTX, n_batch=CTX, n_ubatch=CTX, logits_all=True, n_threads=threads, verbose=False)
    nll, count = 0.0, 0
    start = time.time()
    for c in range(chunks):
        window = tokens[c * CTX:(c + 1) * CTX]
        llm.reset()
        llm.eval(window)
        lp = log_softmax(np.array(llm.scores[:CTX], dtype=np.float32))
        for j in range(CTX // 2, CTX - 1):
            nll -= lp[j, window[j + 1]]
            count += 1
    return float(np.exp(nll / count)), time.time() - start


def main():
    import llama_cpp
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--essays", default=os.path.join(ROOT, "../shared/data/eval/paul_graham_essays"))
    parser.add_argument("--intern", default=os.path.join(ROOT, ".build/release/intern"))
    args = parser.parse_args()
    q4_1 = subprocess.check_output([os.path.join(ROOT, "scripts/get-demo-model.sh")], text=True).strip()
    exact = f32_copy(q4_1, q4_1.replace(".Q4_1.gguf", ".F32.gguf"))
    text = "".join(open(p, encoding="utf-8").read() for p in sorted(glob.glob(os.path.join(args.essays, "*.txt"))))
    vocab = llama_cpp.Llama(model_path=q4_1, vocab_only=True, verbose=False)
    tokens = vocab.tokenize(text.encode("utf-8"), add_bos=False, special=False)
    chunks = min(args.chunks, len(tokens) // CTX)
    print(f"essays: {len(text.encode())} bytes, {len(tokens)} tokens; scoring {chunks} windows of {CTX}, {args.threads} threads")
    with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8", delete=False) as f:
        f.write(text)
        text_file = f.name
    rows = []
    for label, path in [("Q4_1", q4_1), ("F32 copy", exact)]:
        ppl_llama, t_llama = llama_perplexity(llama_cpp, path, tokens, chunks, args.threads)
        start = time.time()
        out = subprocess.run([args.intern, "perplexity", "--model", path, "--file", text_file, "--chunks", str(chunks),
                              "--threads", str(args.threads), "--json"], capture_output=True, text=True, check=True).stdout
        t_intern = time.time() - start
        ppl_intern = json.loads(out)["perplexity"]
        rows.append((label, ppl_llama, ppl_intern, t_llama, t_intern))
    os.unlink(text_file)
    print(f"\n{'file':<10} {'llama.cpp PPL':>14} {'InternKit PPL':>14} {'diff':>8} {'llama.cpp s':>12} {'InternKit s':>12}")
    for label, a, b, ta, tb in rows:
        print(f"{label:<10} {a:>14.4f} {b:>14.4f} {100 * (b - a) / a:>7.2f}% {ta:>12.1f} {tb:>12.1f}")


if __name__ == "__main__":
    main()
