/* fuzz_spectrogram.c: libFuzzer harness for the STFT / mel / dB and wavelet plans (features/spectrogram.h,
 * features/wavelet.h) with fuzzed parameters and clips.
 * The work is in fuzz/targets.c, shared with tests/test_fuzz_regressions.c; a contract violation crashes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "fuzz/targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (cnk_fuzz_spectrogram(data, size) < 0) abort();
    return 0;
}
