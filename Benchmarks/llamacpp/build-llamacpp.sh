#!/usr/bin/env bash
# Builds llama.cpp's llama-bench, llama-quantize and llama-perplexity from the llama.cpp vendored in the
# llama-cpp-python PyPI source distribution, into a cache folder (default .cache/llamacpp), once.
# Also leaves a Python venv there with cmake, ninja and gguf-py's needs for convert_hf_to_gguf.py.
# With --server it builds llama-server instead (tools/server, for Benchmarks/compare-server.sh), in a
# build folder of its own (build-server-VERSION: LLAMA_BUILD_SERVER=ON).
# Usage: Benchmarks/llamacpp/build-llamacpp.sh [--server]  (prints the folder with bin/ on success)
set -euo pipefail
SERVER=0
[ "${1:-}" = "--server" ] && SERVER=1
VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
CACHE="${LLAMACPP_CACHE:-$ROOT/.cache/llamacpp}"
SRC="$CACHE/src-$VERSION"
BUILD="$CACHE/build-$VERSION"
mkdir -p "$CACHE"
if [ ! -x "$CACHE/venv/bin/python" ]; then
    # System site packages: convert_hf_to_gguf.py needs torch, numpy, sentencepiece, safetensors and
    # transformers; install them into the system Python (or this venv) if missing.
    python3 -m venv --system-site-packages "$CACHE/venv"
    "$CACHE/venv/bin/pip" install -q cmake ninja scikit-build-core
fi
if [ ! -f "$SRC/CMakeLists.txt" ]; then
    # The sdist only (no build isolation: pip would otherwise build cmake from source for its metadata).
    "$CACHE/venv/bin/pip" install -q scikit-build-core
    "$CACHE/venv/bin/pip" download -q "llama-cpp-python==$VERSION" --no-deps --no-binary llama-cpp-python \
        --no-build-isolation -d "$CACHE/sdist"
    rm -rf "$CACHE/unpack" && mkdir -p "$CACHE/unpack"
    tar -xzf "$CACHE/sdist/llama_cpp_python-$VERSION.tar.gz" -C "$CACHE/unpack"
    rm -rf "$SRC" && mv "$CACHE/unpack/llama_cpp_python-$VERSION/vendor/llama.cpp" "$SRC"
    rm -rf "$CACHE/unpack"
fi
if [ "$SERVER" = 1 ]; then
    BUILD="$CACHE/build-server-$VERSION"
    if [ ! -x "$BUILD/bin/llama-server" ]; then
        PATH="$CACHE/venv/bin:$PATH"
        cmake -S "$SRC" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON \
            -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_CURL=OFF -DGGML_NATIVE=ON -DBUILD_SHARED_LIBS=OFF >&2
        nice cmake --build "$BUILD" --target llama-server -j "$(nproc)" >&2
    fi
    echo "$BUILD/bin"
    exit 0
fi
if [ ! -x "$BUILD/bin/llama-bench" ] || [ ! -x "$BUILD/bin/llama-quantize" ] || [ ! -x "$BUILD/bin/llama-perplexity" ]; then
    PATH="$CACHE/venv/bin:$PATH"
    cmake -S "$SRC" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLLAMA_BUILD_TOOLS=ON \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_CURL=OFF \
        -DGGML_NATIVE=ON -DBUILD_SHARED_LIBS=OFF >&2
    nice cmake --build "$BUILD" --target llama-bench llama-quantize llama-perplexity -j "$(nproc)" >&2
fi
echo "$BUILD/bin"
