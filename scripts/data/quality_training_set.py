"""Builds the training set of the shipped quality model (Assets/quality/web-quality.ikqm) from ../shared/data:
positives are ~200-word windows of Paul Graham's essays, GSM8K problems, and sentence lines of the first half
of the Chinese web pages (lines ending in 。！？ with 10+ Han characters, grouped by 8, Chinese by 3); negatives are the
navigation/boilerplate lines of the first half of every web page (lines that are not sentences, grouped by 30).
The second half of the pages is held out of training. Standard library only.
Usage: python3 scripts/data/quality_training_set.py OUT_DIR  (writes OUT_DIR/positive.jsonl, OUT_DIR/negative.jsonl)"""
import gzip, json, pathlib, re, sys

root = pathlib.Path(__file__).resolve().parents[2]
shared = root.parent / "shared" / "data"
out = pathlib.Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
han = re.compile(r"[\u4e00-\u9fff]")

def sentence(line, zh):
    line = line.strip()
    if zh:
        return line[-1:] in "。！？…”」" and len(han.findall(line)) >= 10
    return line[-1:] in '.!?"' and len(line.split()) >= 5

pos, neg = [], []
for essay in sorted((shared / "eval/paul_graham_essays").glob("*.txt")):
    words = essay.read_text(encoding="utf-8").split()
    pos += [" ".join(words[k:k + 200]) for k in range(0, len(words) - 50, 200)]
with open(shared / "eval/gsm8k/test.jsonl", encoding="utf-8") as f:
    pos += [json.loads(l)["question"] for _, l in zip(range(300), f)]
for name, zh in (("web_en_de_fr.jsonl.gz", False), ("web_zh.jsonl.gz", True)):
    with gzip.open(shared / "web" / name, "rt", encoding="utf-8") as f:
        pages = [json.loads(l)["text"] for l in f]
    for text in pages[: len(pages) // 2]:
        lines = [l.strip() for l in text.split("\n") if l.strip()]
        good = [l for l in lines if sentence(l, zh)]
        bad = [l for l in lines if not sentence(l, zh)]
        step = 3 if zh else 8  # Chinese pages have fewer sentence lines; smaller groups balance the classes
        pos += ["\n".join(good[k:k + step]) for k in range(0, len(good), step)]
        neg += ["\n".join(bad[k:k + 30]) for k in range(0, len(bad), 30)]
for name, rows in (("positive.jsonl", pos), ("negative.jsonl", neg)):
    with open(out / name, "w", encoding="utf-8") as f:
        for k, t in enumerate(rows):
            f.write(json.dumps({"id": f"{name[:3]}-{k}", "text": t}, ensure_ascii=False) + "\n")
print(len(pos), "positive,", len(neg), "negative")
