#!/usr/bin/env bash
# Writes a random-weight checkpoint of the exact internlm2-1_8b shape (bf16, ~3.8 GB, two shards), loads it
# and generates from it with the release build, printing load time, speed and peak resident memory.
# Not part of `swift test` (it needs ~4 GB of disk and a minute or more). Usage: scripts/check-1_8b.sh [DIR] [TOKENS]
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="${1:-${TMPDIR:-/tmp}/internlm2-1_8b-random}"
TOKENS="${2:-32}"
swift build -c release --product intern
BIN="$(swift build -c release --show-bin-path)/intern"
if [ ! -f "$DIR/model.safetensors.index.json" ]; then
    "$BIN" init --preset 1_8b --out "$DIR" --dtype bf16 --seed 0
fi
du -sh "$DIR"
# GNU time's %M is the peak resident set in KB; the mapped weights count once they are paged in.
/usr/bin/time -f "peak RSS %M KB, wall %e s" \
    "$BIN" generate --model "$DIR" --prompt "The capital of France is" --max-tokens "$TOKENS" --temperature 0 --json
