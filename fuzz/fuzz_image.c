/* fuzz_image.c: libFuzzer harness for the image loader (features/image.h cnk_image_load_tensor on a memfd).
 * The work is in fuzz/targets.c, shared with tests/test_fuzz_regressions.c; a contract violation crashes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "fuzz/targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (cnk_fuzz_image(data, size) < 0) abort();
    return 0;
}
