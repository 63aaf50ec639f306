// zstd for .jsonl.zst input and output in InternData (system library: libzstd-dev on Debian, zstd in Homebrew).
#include <zstd.h>
