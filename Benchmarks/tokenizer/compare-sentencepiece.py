#!/usr/bin/env python3
"""Tokenizer throughput: InternKit `intern bench tokenizer` vs. sentencepiece (Python).

Run from the repo root:
    swift build -c release            # builds .build/release/intern
    python3 Benchmarks/tokenizer/compare-sentencepiece.py [--intern PATH] [--corpus FILE]

Corpus (built if missing, default .cache/bench/tokenizer-corpus.txt, git-ignored):
  >= 10,000,000 UTF-8 bytes, about one third each of English (Paul Graham essays,
  /work/shared/data/eval/paul_graham_essays/*.txt sorted, LICENSE skipped), Chinese
  (/work/shared/data/web/web_zh.jsonl.gz "text" fields, file order) and code (top-level
  *.py files of this Python's standard library, sorted). Interleaving is deterministic:
  the next document always comes from the source with the fewest bytes written so far
  (ties: english, chinese, code), each source cycling through its documents in order.
  Each document is written followed by "\n". "\r\n" and "\r" are turned into "\n" and
  U+0000 is removed (sentencepiece versions disagree on it), so the file has no CR
  and no NUL. Because the code third comes from the local Python, corpora built on
  different machines differ; compare tools on the same file only.

Unit of encoding: one line. Lines = the file split on "\n" (0x0A) only, with the final
"\n" ending the last line (no extra empty line). Empty lines are kept and encode to [].
Each line is encoded with plain sp.encode (no BOS/EOS).

InternKit side: `<intern> bench tokenizer --tokenizer Assets/internlm2/tokenizer.model
--corpus FILE --json` must print one JSON object
  {"bytes": N, "lines": N, "tokens": N, "seconds": S, "mb_per_s": X, "ids_fnv1a": "hex"}
where ids_fnv1a = 64-bit FNV-1a over all ids of all lines in order, each id as 4
little-endian bytes (int32), offset basis 0xcbf29ce484222325, prime 0x100000001b3,
and seconds = best of 3 runs of encoding only. Here bytes = file size in bytes (newlines
included) and MB = 10^6 bytes.

The script checks that token count and hash are equal. It prints MATCH, or MISMATCH and
exits 1. If the intern binary is missing it exits 2. It then prints a table: tool, MB/s,
tokens/s, and the ratio InternKit / sentencepiece.
"""

import argparse
import glob
import gzip
import json
import os
import platform
import subprocess
import sys
import time

import sentencepiece as spm

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.environ.get("INTERNKIT_SHARED_DATA", "/work/shared/data")
MODEL = "Assets/internlm2/tokenizer.model"
DEFAULT_CORPUS = ".cache/bench/tokenizer-corpus.txt"
TARGET_BYTES = 10_000_000
RUNS = 3


def fnv1a_ids(id_lists):
    # Vectorised over bytes with int.from_bytes is not possible for FNV; use a tight loop.
    h = 0xCBF29CE484222325
    p = 0x100000001B3
    m = 0xFFFFFFFFFFFFFFFF
    for ids in id_lists:
        for i in ids:
            i &= 0xFFFFFFFF
            h = ((h ^ (i & 0xFF)) * p) & m
            h = ((h ^ ((i >> 8) & 0xFF)) * p) & m
            h = ((h ^ ((i >> 16) & 0xFF)) * p) & m
            h = ((h ^ (i >> 24)) * p) & m
    return "%016x" % h


def clean(t):
    return t.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")


def load_docs():
    en = []
    for p in sorted(glob.glob(os.path.join(DATA, "eval", "paul_graham_essays", "*.txt"))):
        with open(p, encoding="utf-8", newline="") as f:
            en.append(clean(f.read()))
    zh = []
    with gzip.open(os.path.join(DATA, "web", "web_zh.jsonl.gz"), "rt", encoding="utf-8", newline="") as f:
        for line in f:
            zh.append(clean(json.loads(line)["text"]))
    code = []
    for p in sorted(glob.glob(os.path.join(os.path.dirname(os.__file__), "*.py"))):
        try:
            with open(p, encoding="utf-8", newline="") as f:
                code.append(clean(f.read()))
        except (UnicodeDecodeError, OSError):
            pass
    return [("english", [d for d in en if d]), ("chinese", [d for d in zh if d]),
            ("code", [d for d in code if d])]


def build_corpus(path):
    sources = load_docs()
    for name, docs in sources:
        if not docs:
            sys.exit(f"no {name} documents found (data dir {DATA})")
    written = [0] * len(sources)
    nexti = [0] * len(sources)
    out = []
    total = 0
    while total < TARGET_BYTES:
        k = min(range(len(sources)), key=lambda j: (written[j], j))
        docs = sources[k][1]
        d = docs[nexti[k] % len(docs)] + "\n"
        nexti[k] += 1
        b = len(d.encode("utf-8"))
        written[k] += b
        total += b
        out.append(d)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write("".join(out))
    os.replace(tmp, path)
    print(f"built corpus {path}: {total} bytes; " +
          ", ".join(f"{n} {w} bytes ({nexti[j]} docs)" for j, ((n, _), w) in enumerate(zip(sources, written))))


def read_lines(path):
    with open(path, "rb") as f:
        data = f.read()
    text = data.decode("utf-8")
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    return len(data), lines


def bench_sentencepiece(sp, lines):
    has_threads = True
    try:
        sp.encode(["a", "b"], num_threads=1)
    except TypeError:
        has_threads = False
    best, best_cpu, ids = None, None, None
    for _ in range(RUNS):
        c0 = time.process_time()
        t0 = time.perf_counter()
        if has_threads:
            r = sp.encode(lines, num_threads=1)
        else:
            r = [sp.encode(s) for s in lines]
        dt = time.perf_counter() - t0
        dc = time.process_time() - c0
        if best is None or dt < best:
            best = dt
        if best_cpu is None or dc < best_cpu:
            best_cpu = dc
        ids = r
    return best, best_cpu, ids, ("sp.encode(list, num_threads=1)" if has_threads else "loop of sp.encode(str)")


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--intern", default=".build/release/intern", help="path of the intern binary")
    ap.add_argument("--corpus", default=DEFAULT_CORPUS)
    ap.add_argument("--rebuild-corpus", action="store_true")
    ap.add_argument("--skip-intern", action="store_true", help="only run the sentencepiece side")
    args = ap.parse_args()
    os.chdir(ROOT)

    if args.rebuild_corpus or not os.path.exists(args.corpus):
        build_corpus(args.corpus)
    nbytes, lines = read_lines(args.corpus)

    sp = spm.SentencePieceProcessor(model_file=MODEL)
    sp_sec, sp_cpu, sp_ids, sp_api = bench_sentencepiece(sp, lines)
    sp_tokens = sum(len(x) for x in sp_ids)
    sp_hash = fnv1a_ids(sp_ids)
    del sp_ids

    print(f"CPU: {cpu_model()} ({os.cpu_count()} logical CPUs)")
    print(f"python {platform.python_version()}, sentencepiece {spm.__version__} ({sp_api}, best of {RUNS})")
    print(f"corpus {args.corpus}: {nbytes} bytes, {len(lines)} lines")
    print(f"sentencepiece: {sp_tokens} tokens, ids_fnv1a {sp_hash}, {sp_sec:.3f} s wall "
          f"(best CPU time {sp_cpu:.3f} s; a large gap means the machine is busy)")

    rows = [("sentencepiece (python)", nbytes / 1e6 / sp_sec, sp_tokens / sp_sec)]
    status = 0
    if not args.skip_intern:
        if not os.path.exists(args.intern):
            print(f"\nERROR: InternKit binary not found at {args.intern}.\n"
                  f"Build it first with:  swift build -c release\n"
                  f"(or pass --intern PATH; --skip-intern runs the sentencepiece side only)",
                  file=sys.stderr)
            return 2
        cmd = [args.intern, "bench", "tokenizer", "--tokenizer", MODEL, "--corpus", args.corpus, "--json"]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            print(f"\nERROR: {' '.join(cmd)} exited {p.returncode}\n{p.stderr.strip()}", file=sys.stderr)
            return 2
        try:
            ik = json.loads(p.stdout.strip().splitlines()[-1])
        except (json.JSONDecodeError, IndexError):
            print(f"\nERROR: cannot parse JSON from intern output:\n{p.stdout[-2000:]}", file=sys.stderr)
            return 2
        ver = subprocess.run([args.intern, "--version"], capture_output=True, text=True)
        print(f"intern: {ver.stdout.strip() or ver.stderr.strip() or '(no --version)'}")
        print(f"InternKit: {ik.get('tokens')} tokens, ids_fnv1a {ik.get('ids_fnv1a')}, "
              f"{ik.get('seconds')} s, bytes {ik.get('bytes')}, lines {ik.get('lines')}")
        for key, mine in (("bytes", nbytes), ("lines", len(lines))):
            if ik.get(key) != mine:
                print(f"WARNING: InternKit {key} = {ik.get(key)}, this script counts {mine}")
        ok = ik.get("tokens") == sp_tokens and str(ik.get("ids_fnv1a", "")).lower() == sp_hash
        if ok:
            print("\n*** MATCH: token count and ids FNV-1a hash are equal ***\n")
        else:
            print(f"\n!!!!!!!! MISMATCH !!!!!!!!\n"
                  f"tokens: InternKit {ik.get('tokens')} vs sentencepiece {sp_tokens}\n"
                  f"ids_fnv1a: InternKit {ik.get('ids_fnv1a')} vs sentencepiece {sp_hash}\n")
            status = 1
        sec = float(ik["seconds"])
        rows.append(("InternKit", nbytes / 1e6 / sec, int(ik["tokens"]) / sec))

    print(f"{'tool':<24} {'MB/s':>10} {'tokens/s':>14}")
    for name, mbs, tps in rows:
        print(f"{name:<24} {mbs:>10.2f} {tps:>14,.0f}")
    if len(rows) == 2:
        print(f"{'ratio InternKit / sp':<24} {rows[1][1] / rows[0][1]:>10.2f}x")
    return status


if __name__ == "__main__":
    sys.exit(main())
