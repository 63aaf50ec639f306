"""Builds a >= 50 MB web corpus for timing `intern data run`: the 158 real pages of ../shared/data/web (WET-like
text with menus and footers) repeated with fresh edits (about 5% of lines dropped, 2% of words replaced per
copy), so every stage, dedup included, has real work. Usage: python3 make_web_corpus.py OUT.jsonl [MEGABYTES=55]"""
import gzip, json, pathlib, random, sys

root = pathlib.Path(__file__).resolve().parents[2]
web = root.parent / "shared" / "data" / "web"
out_path, target = sys.argv[1], (float(sys.argv[2]) if len(sys.argv) > 2 else 55) * 1e6
rng = random.Random(3)
pages = []
for name in ("web_en_de_fr.jsonl.gz", "web_zh.jsonl.gz"):
    with gzip.open(web / name, "rt", encoding="utf-8") as f:
        pages += [json.loads(l) for l in f]
words = [w for p in pages[:40] for w in p["text"].split()]
size = copy = 0
with open(out_path, "w", encoding="utf-8") as out:
    while size < target:
        for p in pages:
            lines = p["text"].split("\n")
            if copy:
                lines = [l for l in lines if rng.random() > 0.05]
                lines = [" ".join(rng.choice(words) if rng.random() < 0.02 else w for w in l.split(" ")) for l in lines]
            line = json.dumps({"id": f"{p['id']}-{copy}", "text": "\n".join(lines), "url": p.get("url", "")},
                              ensure_ascii=False) + "\n"
            out.write(line)
            size += len(line.encode("utf-8"))
        copy += 1
print(f"{out_path}: {size / 1e6:.1f} MB, {copy} copies of {len(pages)} pages")
