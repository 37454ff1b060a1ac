/* blas_cpu.h: which OpenBLAS kernels this process runs, and which faster ones this CPU could run when
 * OpenBLAS did not recognise it (an OpenBLAS older than the CPU falls back to its generic SSE3 kernels). */
#ifndef CNK_BLAS_CPU_H
#define CNK_BLAS_CPU_H

/* OpenBLAS's name for the kernels it chose at load time ("SkylakeX", "Haswell", "Zen", "Prescott", ...). */
const char *cnk_blas_core(void);

/* The value of OPENBLAS_CORETYPE that would give this process faster kernels, or NULL when none would:
 * OpenBLAS recognised the CPU, the user set OPENBLAS_CORETYPE, or the CPU has nothing beyond SSE3.
 * OpenBLAS reads the variable once, when it loads, so only a new process can use the answer. */
const char *cnk_blas_better_core(void);

#endif
