"""datatrove's Gopher (quality + repetition), C4 and FineWeb quality filters over a JSON Lines file, timed from
reading the file to the last decision; prints MB/s and removals per filter. The counterpart of
`intern data clean` in the cleaning benchmark (the rules are alike, not identical: datatrove's C4 filter also
rewrites lines, and it has no Chinese handling).
Usage: python datatrove_clean.py IN.jsonl"""
import json, sys, time
from collections import Counter
from datatrove.data import Document
from datatrove.pipeline.filters import C4QualityFilter, FineWebQualityFilter, GopherQualityFilter, GopherRepetitionFilter

filters = [("gopher_repetition", GopherRepetitionFilter()), ("gopher_quality", GopherQualityFilter()),
           ("c4", C4QualityFilter(filter_no_terminal_punct=False)), ("fineweb", FineWebQualityFilter())]
start = time.perf_counter()
size = kept = docs = 0
removed = Counter()
with open(sys.argv[1], "rb") as f:
    for line in f:
        size += len(line)
        d = json.loads(line)
        doc = Document(text=d["text"], id=str(d.get("id", docs)))
        docs += 1
        for name, flt in filters:
            result = flt.filter(doc)
            ok = result[0] if isinstance(result, tuple) else result
            if not ok:
                removed[name] += 1
                break
        else:
            kept += 1
elapsed = time.perf_counter() - start
print(json.dumps({"tool": "datatrove", "seconds": round(elapsed, 2), "mb_per_s": round(size / 1e6 / elapsed, 3),
                  "documents": docs, "kept": kept, "removed": dict(removed)}))
