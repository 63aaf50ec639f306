"""Compares the clusters of `intern data dedup` and datasketch on the benchmark corpus: agreement of their
duplicate pairs (pairs of documents in one cluster), and each tool's precision and recall against true Jaccard
similarity >= threshold of the documents' shingle sets (tokens.py). Candidate true pairs: all pairs within a
planted group, and every pair either tool reports.
Usage: python compare.py CORPUS.jsonl INTERN_CLUSTERS.jsonl DATASKETCH_CLUSTERS.jsonl [THRESHOLD=0.8] [NGRAM=5]"""
import itertools, json, sys
from tokens import shingles

corpus, intern_path, ds_path = sys.argv[1:4]
threshold = float(sys.argv[4]) if len(sys.argv) > 4 else 0.8
ngram = int(sys.argv[5]) if len(sys.argv) > 5 else 5

index, groups, sets = {}, [], []
with open(corpus, encoding="utf-8") as f:
    for k, line in enumerate(f):
        d = json.loads(line)
        index[d["id"]] = k
        groups.append(d["meta"]["group"])
        sets.append(frozenset(shingles(d["text"], ngram)))

def cluster_pairs(path):
    members = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            members.setdefault(d["cluster"], []).append(index[d["id"]])
    return {(min(a, b), max(a, b)) for m in members.values() for a, b in itertools.combinations(m, 2)}

def jaccard(a, b):
    x, y = sets[a], sets[b]
    return len(x & y) / len(x | y) if (x or y) else 1.0

intern, ds = cluster_pairs(intern_path), cluster_pairs(ds_path)
by_group = {}
for k, g in enumerate(groups):
    by_group.setdefault(g, []).append(k)
candidates = {p for m in by_group.values() for p in itertools.combinations(m, 2)} | intern | ds
truth = {p for p in candidates if jaccard(*p) >= threshold}
def pr(found):
    hits = len(found & truth)
    return {"precision": round(hits / max(1, len(found)), 4), "recall": round(hits / max(1, len(truth)), 4)}
print(json.dumps({
    "duplicate_pairs": {"intern": len(intern), "datasketch": len(ds), "both": len(intern & ds)},
    "pair_agreement": round(len(intern & ds) / max(1, len(intern | ds)), 4),
    "true_pairs": len(truth),
    "intern": pr(intern),
    "datasketch": pr(ds),
}, indent=1))
