"""datasketch MinHash + MinHashLSH over a JSON Lines corpus with the shingles of `intern data dedup`
(tokens.py), the same threshold and permutations; times everything from reading the file to the clusters (its
own shingling included) and writes clusters as `intern data dedup --clusters` does.
Usage: python datasketch_dedup.py IN.jsonl CLUSTERS.jsonl [THRESHOLD=0.8] [NUM_PERM=128] [NGRAM=5]"""
import json, sys, time
from datasketch import MinHash, MinHashLSH
from tokens import shingles

inp, clusters_out = sys.argv[1], sys.argv[2]
threshold = float(sys.argv[3]) if len(sys.argv) > 3 else 0.8
num_perm = int(sys.argv[4]) if len(sys.argv) > 4 else 128
ngram = int(sys.argv[5]) if len(sys.argv) > 5 else 5

start = time.perf_counter()
lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
ids, sigs, size = [], [], 0
with open(inp, "rb") as f:
    for k, line in enumerate(f):
        size += len(line)
        doc = json.loads(line)
        sh = shingles(doc["text"], ngram)
        ids.append(doc["id"])
        if sh:
            m = MinHash(num_perm=num_perm)
            m.update_batch([s.encode("utf-8") for s in sh])
            lsh.insert(k, m, check_duplication=False)
            sigs.append(m)
        else:
            sigs.append(None)
parent = list(range(len(ids)))
def find(x):
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x
pairs = 0
for k, m in enumerate(sigs):
    if m is None:
        continue
    for j in lsh.query(m):
        if j != k:
            pairs += 1
            a, b = find(k), find(j)
            if a != b:
                parent[max(a, b)] = min(a, b)
elapsed = time.perf_counter() - start
roots = [find(k) for k in range(len(ids))]
count = {}
for r in roots:
    count[r] = count.get(r, 0) + 1
number = {}
with open(clusters_out, "w", encoding="utf-8") as out:
    for k, r in enumerate(roots):
        if count[r] > 1:
            number.setdefault(r, len(number))
            out.write(json.dumps({"id": ids[k], "cluster": number[r]}) + "\n")
print(json.dumps({"tool": "datasketch", "seconds": round(elapsed, 2), "bytes": size, "documents": len(ids),
                  "bands": lsh.b, "rows": lsh.r, "candidate_pairs": pairs // 2, "clusters": len(number)}))
