// zlib for the gzip reader and writer of InternData (system library: zlib1g-dev on Debian, built into macOS).
#include <zlib.h>
