"""Builds the dedup benchmark corpus from the real texts in ../shared/data: ~150-word windows (250-character
windows for Chinese pages) of the essays, web pages and GSM8K, each window once as-is and then in fresh
edited copies (random word substitutions, deletions and insertions) until the corpus reaches the target size.
Every document records its window ("group") so near-duplicate ground truth is known.
Usage: python3 make_corpus.py OUT.jsonl [MEGABYTES=55] [SEED=1]"""
import gzip, json, pathlib, random, sys

root = pathlib.Path(__file__).resolve().parents[2]
shared = root.parent / "shared" / "data"
out_path = sys.argv[1]
target = float(sys.argv[2]) * 1e6 if len(sys.argv) > 2 else 55e6
rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 1)

windows = []  # (source, units)
def add_words(source, text):
    words = text.split()
    for offset in (0, 75):
        for k in range(offset, len(words) - 100, 150):
            windows.append((source, words[k:k + 150]))

for essay in sorted((shared / "eval/paul_graham_essays").glob("*.txt")):
    add_words("essay", essay.read_text(encoding="utf-8"))
with open(shared / "eval/gsm8k/test.jsonl", encoding="utf-8") as f:
    add_words("gsm8k", " ".join(d["question"] + " " + d["answer"] for d in map(json.loads, f)))
with gzip.open(shared / "web/web_en_de_fr.jsonl.gz", "rt", encoding="utf-8") as f:
    for l in f:
        add_words("web", json.loads(l)["text"])
with gzip.open(shared / "web/web_zh.jsonl.gz", "rt", encoding="utf-8") as f:
    for l in f:
        text = "".join(json.loads(l)["text"].split())
        for offset in (0, 125):
            for k in range(offset, len(text) - 150, 250):
                windows.append(("web_zh", list(text[k:k + 250])))  # characters are the units of edits

vocabulary = [w for source, ws in windows[:2000] if source != "web_zh" for w in ws]

def replacement(unit):
    return rng.choice(vocabulary) if len(unit) > 1 or unit.isascii() else chr(0x4E00 + rng.randrange(0x5000))

def edit(units, n):
    units = list(units)
    for _ in range(n):
        op = rng.random()
        k = rng.randrange(len(units))
        if op < 0.6:
            units[k] = replacement(units[k])
        elif op < 0.8 and len(units) > 10:
            del units[k]
        else:
            units.insert(k, replacement(units[k]))
    return units

size = docs = round_ = 0
with open(out_path, "w", encoding="utf-8") as out:
    while size < target:
        for g, (source, units) in enumerate(windows):
            edits = 0 if round_ == 0 else rng.randrange(0, 13)
            text_units = units if edits == 0 else edit(units, edits)
            sep = "" if source == "web_zh" else " "
            line = json.dumps({"id": f"{g}-{round_}", "text": sep.join(text_units),
                               "meta": {"group": g, "round": round_, "edits": edits, "source": source}},
                              ensure_ascii=False) + "\n"
            out.write(line)
            size += len(line.encode("utf-8"))
            docs += 1
            if size >= target:
                break
        round_ += 1
print(f"{out_path}: {docs} documents, {size / 1e6:.1f} MB, {len(windows)} windows, {round_} rounds")
