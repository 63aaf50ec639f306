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
for threads in 1 2; do
  $BIN data dedup --input "$WORK/corpus.jsonl" --output "$WORK/intern-$threads.jsonl" --threshold 0.8 --num-perm 128 \
    --ngram 5 --clusters "$WORK/intern-clusters.jsonl" --threads $threads 2> "$WORK/intern-$threads.log"
  echo "intern data dedup --threads $threads:"; cat "$WORK/intern-$threads.log"
done
DS=$(cd Benchmarks/data && ../../.venv/bin/python datasketch_dedup.py "../../$WORK/corpus.jsonl" "../../$WORK/datasketch-clusters.jsonl" 0.8 128 5)
echo "datasketch: $DS"
.venv/bin/python - "$BYTES" "$DS" "$WORK" <<'PY'
import json, re, sys
size, ds, work = int(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
one = float(re.search(r"([0-9.]+) s, ", open(f"{work}/intern-1.log").read()).group(1))
two = float(re.search(r"([0-9.]+) s, ", open(f"{work}/intern-2.log").read()).group(1))
print(f"datasketch {size / 1e6 / ds['seconds']:.2f} MB/s (1 core); intern {size / 1e6 / one:.1f} MB/s (1 thread), "
      f"{size / 1e6 / two:.1f} MB/s (2 threads); per-core ratio {ds['seconds'] / one:.1f}x")
PY
(cd Benchmarks/data && ../../.venv/bin/python compare.py "../../$WORK/corpus.jsonl" "../../$WORK/intern-clusters.jsonl" "../../$WORK/datasketch-clusters.jsonl" 0.8 5)
