#!/usr/bin/env python3
"""End-to-end check of `intern` on the real demo model (SmolLM2-135M-Instruct, Q4_1 GGUF) against what
llama.cpp recorded for the same file (Tests/Fixtures/gguf/smollm2_reference.json, made by
scripts/fixtures/make_smollm_fixtures.py). Needs a release build (`swift build -c release`), numpy and gguf.

Checks, each printed with its numbers:
  tokenize   ids of 1,024 tokens of essay text equal llama.cpp's
  logits F32 on the F32 copy (exact in llama.cpp): mean KL ≤ 1e-4 and top-1 agreement ≥ 99.9%
  logits Q4_1 on the Q4_1 file: at least as close to the exact result as llama.cpp's own Q4_1 run
  greedy     greedy tokens of a chat prompt on the F32 copy equal llama.cpp's
  chat       a chat turn on the Q4_1 file answers "What is the capital of France?" with Paris
KL is computed over 17 bins (the exact run's 16 most likely ids, and the rest), for both runs alike.
"""
import json
import os
import random
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts/fixtures"))
from make_smollm_fixtures import binned_kl, f32_copy  # noqa: E402

INTERN = os.environ.get("INTERN", os.path.join(ROOT, ".build/release/intern"))


def intern(*args, stdin=None):
    return subprocess.run([INTERN, *args], input=stdin, capture_output=True, text=True, check=True).stdout


def main():
    ref = json.load(open(os.path.join(ROOT, "Tests/Fixtures/gguf/smollm2_reference.json")))
    q4_1 = subprocess.check_output([os.path.join(ROOT, "scripts/get-demo-model.sh")], text=True).strip()
    exact = f32_copy(q4_1, q4_1.replace(".Q4_1.gguf", ".F32.gguf"))
    failures = []

    def check(name, ok, detail):
        print(f"{'PASS' if ok else 'FAIL'}  {name:<10} {detail}")
        if not ok:
            failures.append(name)

    head = open(os.path.join(ROOT, "Tests/Fixtures/gguf/essays-head.txt"), encoding="utf-8").read()
    ids = json.loads(intern("tokenize", "--model", q4_1, "--jsonl", stdin=json.dumps({"text": head}) + "\n"))["ids"]
    check("tokenize", ids == ref["ids"], f"{len(ids)} ids, {sum(a == b for a, b in zip(ids, ref['ids']))} equal to llama.cpp's")

    top_ids = np.array(ref["exact_top"]["ids"])
    top_lp = np.array(ref["exact_top"]["logprobs"])
    id_list = ",".join(map(str, ref["ids"]))
    with tempfile.TemporaryDirectory() as tmp:
        for label, path in [("F32", exact), ("Q4_1", q4_1)]:
            out = os.path.join(tmp, f"{label}.npy")
            intern("logits", "--model", path, "--ids", id_list, "--out", out)
            logits = np.load(out)
            kl = binned_kl(top_ids, top_lp, logits)
            top1 = float((logits.argmax(-1) == top_ids[:, 0]).mean())
            if label == "F32":
                check("logits F32", kl <= 1e-4 and top1 >= 0.999, f"mean KL {kl:.2e}, top-1 {top1:.2%} vs llama.cpp exact")
            else:
                bar = ref["llama_q4_1_vs_exact"]
                check("logits Q4_1", kl <= bar["mean_kl_binned"],
                      f"mean KL {kl:.5f}, top-1 {top1:.2%}; llama.cpp's Q4_1: KL {bar['mean_kl_binned']:.5f}, top-1 {bar['top1_agreement']:.2%}")

    g = ref["greedy"]
    out = json.loads(intern("generate", "--model", exact, "--prompt-ids", ",".join(map(str, g["prompt_ids"])),
                            "--max-tokens", str(len(g["exact"])), "--temperature", "0", "--json"))
    ours = [t for t in out["ids"] if t != 2]
    check("greedy", ours == g["exact"][:len(ours)] and len(ours) >= min(len(g["exact"]), 8),
          f"{len(ours)} tokens, text {out['text']!r}")

    chat = json.loads(intern("generate", "--model", q4_1, "--chat", "--prompt", g["prompt"], "--temperature", "0",
                             "--max-tokens", "32", "--json"))
    check("chat", "Paris" in chat["text"], f"{chat['text']!r} (finish {chat['finish_reason']})")
    # The data pipeline's perplexity quality score (CCNet-style): essay paragraphs must score lower than the
    # same words shuffled, and --max-perplexity between the two groups must keep exactly the natural ones.
    head_words = head.split()
    paragraphs = [" ".join(head_words[k:k + 60]) for k in range(0, min(len(head_words) - 60, 240), 60)]
    rng = random.Random(7)
    docs = []
    for k, p in enumerate(paragraphs):
        words = p.split()
        rng.shuffle(words)
        docs += [{"id": f"natural-{k}", "text": p}, {"id": f"shuffled-{k}", "text": " ".join(words)}]
    with tempfile.TemporaryDirectory() as tmp:
        src, scored = os.path.join(tmp, "in.jsonl"), os.path.join(tmp, "scored.jsonl")
        with open(src, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(d) + "\n" for d in docs)
        intern("data", "quality", "--scorer", "perplexity", "--model", q4_1, "--max-perplexity", "1e9",
               "--max-tokens", "96", "--input", src, "--output", scored)
        ppl = {d["id"]: d["meta"]["perplexity"] for d in map(json.loads, open(scored, encoding="utf-8"))}
        natural = [v for k, v in ppl.items() if k.startswith("natural")]
        shuffled = [v for k, v in ppl.items() if k.startswith("shuffled")]
        cut = (max(natural) + min(shuffled)) / 2
        kept_path = os.path.join(tmp, "kept.jsonl")
        intern("data", "quality", "--scorer", "perplexity", "--model", q4_1, "--max-perplexity", str(cut),
               "--max-tokens", "96", "--input", src, "--output", kept_path)
        kept = sorted(d["id"] for d in map(json.loads, open(kept_path, encoding="utf-8")))
        check("data ppl", len(natural) >= 2 and max(natural) < min(shuffled) and kept == sorted(k for k in ppl if k.startswith("natural")),
              f"natural {[round(v, 1) for v in natural]}, shuffled {[round(v, 1) for v in shuffled]}, kept {kept}")

    print(f"{'all checks passed' if not failures else 'FAILED: ' + ', '.join(failures)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
