/* npy.h: NumPy .npy files (format 1.0/2.0, little-endian float32, C order) for features and fixtures.
 * Writing is atomic; reading checks the header strictly and refuses anything but '<f4' (or '<f8', converted). */
#ifndef CNK_NPY_H
#define CNK_NPY_H

#include <stddef.h>

#include "core/context.h"

#define CNK_NPY_MAX_DIMS 8

typedef struct cnk_array {
    float *data;                   /* malloc'd, C order */
    int ndim;
    size_t shape[CNK_NPY_MAX_DIMS];
} cnk_array;

size_t cnk_array_count(const cnk_array *a);
void cnk_array_release(cnk_array *a);

/* Writes data (shape[0] x ... x shape[ndim-1] floats) as a v1.0 .npy file, atomically. */
int cnk_npy_write(cnk_ctx *ctx, const char *path, const float *data, int ndim, const size_t *shape);
/* Reads a .npy file of float32 or float64 (converted) into out (caller releases). */
int cnk_npy_read(cnk_ctx *ctx, const char *path, cnk_array *out);
/* Parses an in-memory .npy image; name is used in error messages. */
int cnk_npy_parse(cnk_ctx *ctx, const char *name, const unsigned char *bytes, size_t size, cnk_array *out);

#endif
