/* idx.h: the IDX format of MNIST, Fashion-MNIST and EMNIST (big-endian header, then N records), read through
 * zlib so gzip and plain files are the same to the caller, record by record with bounded memory. */
#ifndef CNK_IDX_H
#define CNK_IDX_H

#include <stddef.h>

#include "core/context.h"

#define CNK_IDX_MAX_DIMS 4
/* Refuse headers that promise more than this many bytes of data (a corrupt or hostile header). */
#define CNK_IDX_MAX_BYTES ((size_t)1 << 34)

/* IDX element types (the third magic byte). */
enum { CNK_IDX_U8 = 0x08, CNK_IDX_I8 = 0x09, CNK_IDX_I16 = 0x0B, CNK_IDX_I32 = 0x0C, CNK_IDX_F32 = 0x0D,
       CNK_IDX_F64 = 0x0E };

typedef struct cnk_idx_reader {
    void *gz;                      /* gzFile (opaque so zlib.h stays out of this header) */
    char path[4096];
    int type;                      /* CNK_IDX_* */
    int ndim;                      /* dims[0] = number of records */
    size_t dims[CNK_IDX_MAX_DIMS];
    size_t n_records;              /* dims[0] */
    size_t record_values;          /* product of dims[1..] (1 for a label file) */
    size_t elem_size;              /* bytes per value */
    size_t next;                   /* records read so far */
} cnk_idx_reader;

/* Opens a file (gzip detected by zlib) and checks its header. */
int cnk_idx_open(cnk_ctx *ctx, const char *path, cnk_idx_reader *r);
/* Reads the next n records' raw values as bytes (U8 / I8 files only): n * record_values bytes. Fails with
 * "PATH: truncated at record K" if the file ends early, or if fewer than n records remain. */
int cnk_idx_read_bytes(cnk_ctx *ctx, cnk_idx_reader *r, size_t n, unsigned char *out);
/* Reads the next n records converted to floats (any type; big-endian handled). */
int cnk_idx_read_floats(cnk_ctx *ctx, cnk_idx_reader *r, size_t n, float *out);
void cnk_idx_close(cnk_idx_reader *r);

/* Writes an IDX file of U8 values (gzip-compressed when gzip is 1), atomically; for tests and exports.
 * dims[0] is the number of records. */
int cnk_idx_write_u8(cnk_ctx *ctx, const char *path, const unsigned char *values, int ndim, const size_t *dims,
                     int gzip);

#endif
