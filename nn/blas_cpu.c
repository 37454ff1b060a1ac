/* blas_cpu.c: spotting OpenBLAS's generic fallback on a CPU it does not know.
 *
 * OpenBLAS built with DYNAMIC_ARCH (Debian's) picks its kernels from the CPU's family and model numbers. A CPU
 * newer than the release is unknown to it and gets "Prescott", the SSE3 kernels: Debian 12's 0.3.21 does this on
 * an Intel Xeon of model 207 (Emerald Rapids), where its 1024^3 sgemm runs at 34 GFLOP/s instead of 216-278
 * with the AVX-512 kernels and cnnkit trains 2.1x slower. The instruction sets, unlike the model numbers, tell
 * what the CPU can run; GCC's __builtin_cpu_supports also checks that the OS saves the AVX and AVX-512 state. */
#include "nn/blas_cpu.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

const char *cnk_blas_core(void)
{
    const char *name = openblas_get_corename();
    return name ? name : "unknown";
}

/* The fastest of OpenBLAS's x86-64 kernel sets this CPU can execute (every DYNAMIC_ARCH build has these three). */
static const char *best_core_for_this_cpu(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512cd"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
    if (__builtin_cpu_supports("avx")) return "SandyBridge";
#endif
    return NULL;
}

const char *cnk_blas_better_core(void)
{
    if (getenv("OPENBLAS_CORETYPE")) return NULL; /* the user's choice, or ours in the restarted process */
    /* Any other name means OpenBLAS knew the CPU (or a CPU without AVX): its own choice stands. */
    if (strcmp(cnk_blas_core(), "Prescott") != 0) return NULL;
    return best_core_for_this_cpu();
}
