#!/usr/bin/env bash
# How close quantized weights stay to the original, for both tools on the same files and text:
# perplexity, mean KL divergence of the token distributions against the bf16 model, and top-1 agreement,
# from llama.cpp's `llama-perplexity --kl-divergence` and `intern perplexity --reference`.
#
#   Benchmarks/perplexity/quant-kl.sh [--shape small] [--chunks 4] [--text FILE] [--threads 2]
#
# Uses the GGUF files Benchmarks/compare-llamacpp.sh leaves in .cache/bench (SHAPE.bf16.gguf and its
# llama-quantize Q8_0/Q4_0 files) and the llama.cpp tools it builds. Default text: the first 20 KB of the
# texts of ../shared/data/web/web_en_de_fr.jsonl.gz (.cache/bench/ppl-text.txt, made here if missing).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
SHAPE=small
CHUNKS=4
THREADS=2
TEXT=.cache/bench/ppl-text.txt
while [ $# -gt 0 ]; do
    case "$1" in
        --shape) SHAPE="$2"; shift 2 ;;
        --chunks) CHUNKS="$2"; shift 2 ;;
        --text) TEXT="$2"; shift 2 ;;
        --threads) THREADS="$2"; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
BIN="$(Benchmarks/llamacpp/build-llamacpp.sh | tail -1)"
INTERN="$ROOT/.build/release/intern"
if [ ! -f "$TEXT" ]; then
    python3 - "$TEXT" <<'PY'
import gzip, json, sys
texts = [json.loads(l)["text"] for l in gzip.open("../shared/data/web/web_en_de_fr.jsonl.gz", "rt", encoding="utf-8")]
open(sys.argv[1], "w", encoding="utf-8").write("\n\n".join(texts)[:20000])
PY
fi
BASE=.cache/bench/$SHAPE.bf16.gguf
KLD=.cache/bench/$SHAPE.bf16.kld
"$BIN/llama-perplexity" -m "$BASE" -f "$TEXT" -c 512 --chunks "$CHUNKS" -t "$THREADS" --kl-divergence-base "$KLD" >/dev/null 2>&1
echo "| weights | tool | PPL | mean KL vs bf16 | top-1 agreement |"
echo "|---|---|---|---|---|"
for type in q8_0 q4_0; do
    gguf=.cache/bench/$SHAPE.$type.gguf
    out=$("$BIN/llama-perplexity" -m "$gguf" -f "$TEXT" -c 512 --chunks "$CHUNKS" -t "$THREADS" \
        --kl-divergence-base "$KLD" --kl-divergence 2>&1)
    ppl=$(echo "$out" | grep -m1 "Mean PPL(Q)" | sed 's/.*: *//; s/ .*//')
    kl=$(echo "$out" | grep -m1 "Mean    KLD:" | sed 's/.*: *//; s/ .*//')
    top=$(echo "$out" | grep -m1 "Same top p:" | sed 's/.*: *//; s/ .*//')
    echo "| $type | llama.cpp | $ppl | $kl | $top% |"
    "$INTERN" perplexity --model "$gguf" --reference "$BASE" --file "$TEXT" --context 512 --chunks "$CHUNKS" \
        --threads "$THREADS" --json | python3 -c '
import json, sys
j = json.loads(sys.stdin.read())
print("| %s | InternKit | %.4f | %.6f | %.3f%% |" % (sys.argv[1], j["perplexity"], j["mean_kl_divergence"], 100 * j["top1_agreement"]))' "$type"
done
