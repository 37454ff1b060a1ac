/* fuzz_modelfile.c: libFuzzer harness for the .cnk model loader (nn/modelfile.h cnk_modelfile_read_mem, then a forward pass).
 * The work is in fuzz/targets.c, shared with tests/test_fuzz_regressions.c; a contract violation crashes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "fuzz/targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (cnk_fuzz_modelfile(data, size) < 0) abort();
    return 0;
}
