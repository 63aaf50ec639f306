#!/usr/bin/env bash
# Side-by-side CPU inference benchmark: InternKit (`intern bench`) against llama.cpp (`llama-bench`), on the
# very same weights, same thread count, interleaved, in one run. See BENCHMARKS.md, "CPU inference".
#
#   Benchmarks/compare-llamacpp.sh [--shapes "small 1_8b"] [--types "bf16 q8_0 q4_0"] [--threads 2]
#                                  [--prompt 512] [--gen 128] [--depth 0] [--rounds 3] [--gguf FILE]...
#
# 1. Builds llama-bench, llama-quantize, llama-perplexity from the llama-cpp-python PyPI sdist (cached in
#    .cache/llamacpp; Benchmarks/llamacpp/build-llamacpp.sh).
# 2. Makes random-weight checkpoints with `intern init --preset SHAPE --dtype bf16` (cached in .cache/bench),
#    converts each with llama.cpp's convert_hf_to_gguf.py (--outtype bf16) and llama-quantize (Q8_0, Q4_0).
# 3. For each model, ROUNDS rounds (medians reported), each: the machine's read bandwidth (N threads streaming
#    1 GiB at once), then `llama-bench -p P -n G -d D -t N -r 1` and `intern bench --prompt-tokens P
#    --gen-tokens G --depth D --threads N --repetitions 1 --json`, which of the two goes first alternating by
#    round (D: tokens already in the cache when each measurement starts). InternKit runs the bf16 checkpoint
#    directory (its native format; the same values as the bf16 GGUF) and the q8_0/q4_0 GGUF files themselves
#    (identical weights for both tools). On CPUs with AVX512-BF16 the bf16 checkpoint runs twice: the default
#    (prefill rounds activations to bf16, as llama.cpp does) and exact (INTERNKIT_ACTIVATIONS=f32).
# 4. Prints a Markdown table: tokens/s of both, ratios, load seconds, and decode as a fraction of the
#    bandwidth limit (bytes of weights read per decode token / measured read bandwidth; at a depth the
#    cache's bytes come on top and are not counted).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
SHAPES="small 1_8b"
TYPES="bf16 q8_0 q4_0"
THREADS=2
PROMPT=512
GEN=128
DEPTH=0
ROUNDS=3
EXTRA=()
while [ $# -gt 0 ]; do
    case "$1" in
        --shapes) SHAPES="$2"; shift 2 ;;
        --types) TYPES="$2"; shift 2 ;;
        --threads) THREADS="$2"; shift 2 ;;
        --prompt) PROMPT="$2"; shift 2 ;;
        --gen) GEN="$2"; shift 2 ;;
        --depth) DEPTH="$2"; shift 2 ;;
        --rounds) ROUNDS="$2"; shift 2 ;;
        --gguf) EXTRA+=("$2"); shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
case "$ROUNDS" in '' | *[!0-9]* | 0) echo "--rounds must be a positive integer, got '$ROUNDS'" >&2; exit 2 ;; esac
CACHE="$ROOT/.cache/bench"
BF16_ACTIVATIONS=0
if grep -q -m1 'avx512_bf16' /proc/cpuinfo 2>/dev/null; then BF16_ACTIVATIONS=1; fi
mkdir -p "$CACHE"
BIN="$(Benchmarks/llamacpp/build-llamacpp.sh | tail -1)"
SRC="$(dirname "$(dirname "$BIN")")/src-${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
PY="$ROOT/.cache/llamacpp/venv/bin/python"
swift build -c release --product intern >&2
INTERN="$ROOT/.build/release/intern"

echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') ($(nproc) logical), load average: $(cut -d' ' -f1-3 /proc/loadavg)"

# Read bandwidth: THREADS threads stream one 1 GiB buffer at once (Benchmarks/read-bandwidth). Measured again
# right before each model's runs, since a VM's bandwidth drifts by tens of percent within minutes.
PROBE="$ROOT/.build/read-bandwidth"
"${CC:-cc}" -O2 -march=native -pthread Benchmarks/read-bandwidth/read-bandwidth.c -o "$PROBE"

# Bytes a decode step reads: every tensor of the GGUF except the token embedding (one row of it is read).
decode_bytes() {
    PYTHONPATH="$SRC/gguf-py" "$PY" - "$1" <<'PY'
import sys
from gguf import GGUFReader
r = GGUFReader(sys.argv[1])
print(sum(int(t.n_bytes) for t in r.tensors if t.name != "token_embd.weight" or not any(x.name == "output.weight" for x in r.tensors)))
PY
}

llama_run() {  # prints "prefill decode": one timed repetition (llama-bench warms up first)
    "$BIN/llama-bench" -m "$1" -p "$PROMPT" -n "$GEN" -d "$DEPTH" -t "$THREADS" -r 1 -o json 2>/dev/null | "$PY" -c '
import json, sys
rows = json.load(sys.stdin)
pp = [r["avg_ts"] for r in rows if r["n_prompt"] > 0 and r["n_gen"] == 0]
tg = [r["avg_ts"] for r in rows if r["n_gen"] > 0 and r["n_prompt"] == 0]
print(pp[0] if pp else 0, tg[0] if tg else 0)'
}

intern_run() {  # prints "prefill decode load rss": one timed repetition (after a warm-up like llama-bench's: the prompt once, one token)
    "$INTERN" bench --model "$1" --prompt-tokens "$PROMPT" --gen-tokens "$GEN" --depth "$DEPTH" --threads "$THREADS" --repetitions 1 --json \
        | "$PY" -c '
import json, sys
j = json.loads(sys.stdin.read())
print(j["prefill_tokens_per_s"], j["decode_tokens_per_s"], j["load_seconds"], j["peak_rss_bytes"])'
}

ROWS=()
compare() {  # label, gguf file, InternKit model path
    # ROUNDS rounds, each: the bandwidth probe, then one run of each tool, the first tool alternating; each
    # figure is the median over the rounds (a VM's speed drifts within minutes: interleaving gives both tools
    # the same minutes), and the last column shows the spread of the per-round decode ratios.
    local label="$1" gguf="$2" model="$3" samples=""
    for ((round = 0; round < ROUNDS; round++)); do
        local bandwidth; bandwidth=$("$PROBE" "$THREADS")
        if ((round % 2 == 0)); then
            read -r lpp ltg < <(llama_run "$gguf")
            read -r ipp itg iload irss < <(intern_run "$model")
        else
            read -r ipp itg iload irss < <(intern_run "$model")
            read -r lpp ltg < <(llama_run "$gguf")
        fi
        samples="$samples $bandwidth,$lpp,$ltg,$ipp,$itg,$iload,$irss"
    done
    local bytes; bytes=$(decode_bytes "$gguf")
    ROWS+=("$("$PY" -c '
import statistics, sys
label, nbytes, *rounds = sys.argv[1:]
nbytes = float(nbytes)
rounds = [list(map(float, r.split(","))) for r in rounds]
bw, lpp, ltg, ipp, itg, iload, irss = (statistics.median(column) for column in zip(*rounds))
ratios = sorted(r[4] / r[2] for r in rounds)
limit = bw * 1e9 / nbytes
print(f"| {label} | {nbytes/1e9:.2f} | {bw:.1f} | {lpp:.1f} | {ipp:.1f} | {ipp/lpp:.2f}x | {ltg:.2f} | {itg:.2f} | {itg/ltg:.2f}x | {ratios[0]:.2f}–{ratios[-1]:.2f} | {limit:.1f} | {ltg/limit:.0%} | {itg/limit:.0%} | {iload:.2f} | {irss/2**20:.0f} |")
' "$label" "$bytes" $samples)")
    echo "${ROWS[-1]}" >&2
}

for shape in $SHAPES; do
    dir="$CACHE/$shape-bf16"
    if [ ! -f "$dir/config.json" ]; then "$INTERN" init --preset "$shape" --out "$dir" --dtype bf16 >&2; fi
    bf16="$CACHE/$shape.bf16.gguf"
    if [ ! -f "$bf16" ]; then
        PYTHONPATH="$SRC/gguf-py" "$PY" "$SRC/convert_hf_to_gguf.py" "$dir" --outtype bf16 --outfile "$bf16" >&2
    fi
    for type in $TYPES; do
        case "$type" in
            bf16)
                compare "$shape bf16" "$bf16" "$dir"
                # Where the default prefill rounds activations to bf16 (llama.cpp's arithmetic), also the exact one.
                if [ "$BF16_ACTIVATIONS" = 1 ]; then INTERNKIT_ACTIVATIONS=f32 compare "$shape bf16, exact f32 activations" "$bf16" "$dir"; fi ;;
            q8_0 | q4_0)
                gguf="$CACHE/$shape.$type.gguf"
                upper=$(echo "$type" | tr a-z A-Z)
                if [ ! -f "$gguf" ]; then "$BIN/llama-quantize" "$bf16" "$gguf" "$upper" >&2; fi
                compare "$shape $type" "$gguf" "$gguf" ;;
            *) echo "unknown type $type" >&2; exit 2 ;;
        esac
    done
done
for gguf in "${EXTRA[@]}"; do compare "$(basename "$gguf" .gguf)" "$gguf" "$gguf"; done

echo
echo "threads $THREADS, pp$PROMPT / tg$GEN at depth $DEPTH, medians of $ROUNDS interleaved rounds; load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| model | GB read/token | read GB/s | llama.cpp pp t/s | InternKit pp t/s | pp ratio | llama.cpp tg t/s | InternKit tg t/s | tg ratio | rounds' tg ratios | tg limit t/s | llama.cpp % of limit | InternKit % of limit | InternKit load s | InternKit peak RSS MiB |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for row in "${ROWS[@]}"; do echo "$row"; done
