#!/usr/bin/env bash
# Serving benchmark: InternKit's `intern serve` against llama.cpp's `llama-server` on the very same GGUF
# weights, same thread count and same number of parallel sequences, both driven by `intern bench serve`
# (LMDeploy's metric definitions) in one run. See BENCHMARKS.md, "Serving".
#
#   Benchmarks/compare-server.sh [--gguf FILE] [--levels "1 4 16"] [--input-len 128] [--output-len 64]
#                                [--threads 2] [--requests-per-stream 2] [--min-requests 4]
#                                [--llama-threads "2"]   (e.g. "2 1": llama-server once per thread count)
#
# 1. Builds llama-server from the llama.cpp vendored in the llama-cpp-python PyPI sdist (cached in
#    .cache/llamacpp; Benchmarks/llamacpp/build-llamacpp.sh --server) and `intern` in release.
# 2. Starts one server at a time on loopback, with as many sequences as the highest level N and a context
#    of CTX = IN + OUT + 64 positions per sequence:
#      intern serve --model FILE --max-batch N --ctx CTX --threads T
#      llama-server -m FILE --parallel N -c N*CTX -t T -tb T --cache-ram 0 --no-webui
# 3. For each concurrency level c, `intern bench serve --concurrency c --requests max(c*R, MIN)`:
#    random-id prompts of IN tokens, OUT tokens with ignore_eos, temperature 0, streamed; a request
#    counts only if it produced all OUT tokens.
# 4. Prints the CPU, load average, both commands and a Markdown table with the ratios (InternKit / llama.cpp;
#    above 1 is better for InternKit on tok/s, worse on latencies).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
GGUF="${GGUF:-$HOME/.cache/internkit/SmolLM2-135M-Instruct.Q4_1.gguf}"
LEVELS="1 4 16"
INPUT=128
OUTPUT=64
THREADS=2
PER_STREAM=2
MIN_REQUESTS=4
LLAMA_THREADS=""
while [ $# -gt 0 ]; do
    case "$1" in
        --gguf) GGUF="$2"; shift 2 ;;
        --levels) LEVELS="$2"; shift 2 ;;
        --input-len) INPUT="$2"; shift 2 ;;
        --output-len) OUTPUT="$2"; shift 2 ;;
        --threads) THREADS="$2"; shift 2 ;;
        --requests-per-stream) PER_STREAM="$2"; shift 2 ;;
        --min-requests) MIN_REQUESTS="$2"; shift 2 ;;
        --llama-threads) LLAMA_THREADS="$2"; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
[ -f "$GGUF" ] || { echo "no GGUF at $GGUF (scripts/get-demo-model.sh fetches SmolLM2-135M-Instruct)" >&2; exit 1; }
BIN="$(Benchmarks/llamacpp/build-llamacpp.sh --server | tail -1)"
swift build -c release --product intern >&2
INTERN="$ROOT/.build/release/intern"
PY="${PYTHON:-python3}"
MAX=0
for c in $LEVELS; do [ "$c" -gt "$MAX" ] && MAX=$c; done
LLAMA_THREADS="${LLAMA_THREADS:-$THREADS}"
CTX=$((INPUT + OUTPUT + 64))
VOCAB=$("$PY" - "$GGUF" <<'PY'
import sys
from gguf import GGUFReader
r = GGUFReader(sys.argv[1])
print(len(r.fields["tokenizer.ggml.tokens"].data))
PY
)

free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_healthy() {
    for _ in $(seq 1200); do
        curl -sf "$1/health" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "$1 did not become healthy" >&2
    return 1
}

LOGS="$(mktemp -d)"
PORT=$(free_port)
PID=""
trap '[ -n "$PID" ] && kill $PID 2>/dev/null || true' EXIT
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ //') ($(nproc) logical), load average before: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
echo "weights: $GGUF ($(wc -c <"$GGUF") B), vocabulary $VOCAB; input $INPUT, output $OUTPUT tokens; requests per level: max(c*$PER_STREAM, $MIN_REQUESTS)"
# measure NAME COMMAND...: starts the server, benchmarks every level, stops it.
measure() {
    local name="$1"
    shift
    echo "$name: $*" | sed "s|$ROOT/||g; s|$HOME|~|g"
    "$@" >"$LOGS/$name.log" 2>&1 &
    PID=$!
    wait_healthy "http://127.0.0.1:$PORT" || { tail -20 "$LOGS/$name.log" >&2; exit 1; }
    for c in $LEVELS; do
        n=$((c * PER_STREAM))
        [ "$n" -lt "$MIN_REQUESTS" ] && n=$MIN_REQUESTS
        "$INTERN" bench serve --url "http://127.0.0.1:$PORT" --concurrency "$c" --requests "$n" \
            --input-len "$INPUT" --output-len "$OUTPUT" --vocab-size "$VOCAB" --json >"$LOGS/$name-$c.json"
        echo "  c=$c $name ($(cut -d' ' -f1 /proc/loadavg 2>/dev/null)): $(cat "$LOGS/$name-$c.json")" >&2
    done
    kill -TERM $PID
    wait $PID || true
    PID=""
}
measure InternKit "$INTERN" serve --model "$GGUF" --model-name smollm2 --port "$PORT" --max-batch "$MAX" --ctx "$CTX" \
    --threads "$THREADS" --log-level warning
NAMES="InternKit"
for t in $LLAMA_THREADS; do
    measure "llama.cpp-t$t" "$BIN/llama-server" -m "$GGUF" --alias smollm2 --port "$PORT" --parallel "$MAX" -c $((MAX * CTX)) \
        -t "$t" -tb "$t" --cache-ram 0 --no-webui
    NAMES="$NAMES llama.cpp-t$t"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"

"$PY" - "$LOGS" "$NAMES" $LEVELS <<'PY'
import json, os, sys
logs, names, levels = sys.argv[1], sys.argv[2].split(), sys.argv[3:]
keys = [("output_throughput_tok_s", "out tok/s"), ("ttft_mean_ms", "TTFT mean ms"), ("ttft_p50_ms", "TTFT P50"),
        ("ttft_p99_ms", "TTFT P99"), ("tpot_p50_ms", "TPOT P50 ms"), ("tpot_p99_ms", "TPOT P99"),
        ("itl_p50_ms", "ITL P50 ms"), ("itl_p99_ms", "ITL P99")]
print()
print("| c | server | ok/failed | " + " | ".join(k[1] for k in keys) + " |")
print("|---" * (3 + len(keys)) + "|")
for c in levels:
    rows = {n: json.load(open(os.path.join(logs, f"{n}-{c}.json"))) for n in names}
    for n in names:
        r = rows[n]
        print(f"| {c} | {n} | {r['successful_requests']:.0f}/{r['failed_requests']:.0f} | " + " | ".join(f"{r[k]:.1f}" for k, _ in keys) + " |")
    for n in names[1:]:
        ratio = [f"{rows[names[0]][k] / rows[n][k]:.2f}×" if rows[n][k] else "–" for k, _ in keys]
        print(f"| {c} | ratio {names[0]} / {n} | | " + " | ".join(ratio) + " |")
PY
