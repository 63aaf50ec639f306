#!/usr/bin/env bash
# Dedup benchmark: `intern data dedup` (release build) against datasketch on the same >= 50 MB corpus with
# planted near-duplicates, same threshold, permutations and shingles, in one run. Prints MB/s per core, the
# ratio, and the agreement of duplicate pairs with precision/recall against true Jaccard. Not part of `swift test`.
# Usage: Benchmarks/data/run.sh [MEGABYTES=55]   (python3; installs datasketch into .venv if missing)
set -euo pipefail
cd "$(dirname "$0")/../.."
MB=${1:-55}
WORK=${WORK:-.build/bench-data}
mkdir -p "$WORK"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -c "import datasketch" 2>/dev/null || .venv/bin/pip install -q datasketch
swift build -c release --product intern >/dev/null
BIN=.build/release/intern
[ -f "$WORK/corpus.jsonl" ] || python3 Benchmarks/data/make_corpus.py "$WORK/corpus.jsonl" "$MB"
BYTES=$(stat -c %s "$WORK/corpus.jsonl")
echo "corpus: $BYTES bytes; $(nproc) cores; $(lscpu | sed -n 's/^Model name: *//p')"
run() {  # name, extra args
  local name=$1; shift
  $BIN data dedup --input "$WORK/corpus.jsonl" --output "$WORK/$name.jsonl" --threshold 0.8 --num-perm 128 \
    --ngram 5 --clusters "$WORK/$name-clusters.jsonl" "$@" 2> "$WORK/$name.log"
  echo "intern data dedup $*:"; cat "$WORK/$name.log"
}
run intern-1 --threads 1
run intern-2 --threads 2
run intern-fast-1 --threads 1 --hash fast
DS=$(cd Benchmarks/data && ../../.venv/bin/python datasketch_dedup.py "../../$WORK/corpus.jsonl" "../../$WORK/datasketch-clusters.jsonl" 0.8 128 5)
echo "datasketch: $DS"
.venv/bin/python - "$BYTES" "$DS" "$WORK" <<'PY'
import json, re, sys
size, ds, work = int(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
secs = {n: float(re.search(r"([0-9.]+) s, ", open(f"{work}/{n}.log").read()).group(1)) for n in ("intern-1", "intern-2", "intern-fast-1")}
print(f"datasketch {size / 1e6 / ds['seconds']:.2f} MB/s (1 core)")
for n, s in secs.items():
    print(f"{n}: {size / 1e6 / s:.1f} MB/s; ratio to datasketch {ds['seconds'] / s:.1f}x" + (" (per core: 1 thread)" if n.endswith("-1") else " (2 threads)"))
PY
for name in intern-1 intern-fast-1; do
  echo "pairs of $name against datasketch:"
  (cd Benchmarks/data && ../../.venv/bin/python compare.py "../../$WORK/corpus.jsonl" "../../$WORK/$name-clusters.jsonl" "../../$WORK/datasketch-clusters.jsonl" 0.8 5)
done
