"""The shingles of `intern data dedup` (MinHasher.tokenHashes) in Python: lower-cased runs of letters and
digits, every Han/kana/Hangul character a token of its own, word n-grams over those tokens (one shingle of all
tokens when there are fewer than n)."""
import re

SINGLE = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af"
PUNCT = ("\u0000-\u002f\u003a-\u0040\u005b-\u0060\u007b-\u00a9\u00ab-\u00b4\u00b6-\u00b9\u00bb-\u00bf\u00d7\u00f7"
         "\u2000-\u2bff\u3000-\u303f\ufe30-\ufe4f\uff00-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65\ue000-\uf8ff"
         "\U0001f000-\U0010ffff")
TOKEN = re.compile(f"[{SINGLE}]|[^{SINGLE}{PUNCT}]+")

def shingles(text, ngram=5):
    tokens = TOKEN.findall(text.lower())
    if not tokens:
        return []
    n = min(ngram, len(tokens))
    return [" ".join(tokens[k:k + n]) for k in range(len(tokens) - n + 1)]
