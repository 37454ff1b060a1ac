#include "pipeline/idx.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "core/atomic_file.h"
#include "core/fsutil.h"

static size_t element_size(int type)
{
    switch (type) {
    case CNK_IDX_U8:
    case CNK_IDX_I8: return 1;
    case CNK_IDX_I16: return 2;
    case CNK_IDX_I32:
    case CNK_IDX_F32: return 4;
    case CNK_IDX_F64: return 8;
    default: return 0;
    }
}

/* Reads exactly size bytes; 0 on success, else -1 (end of data or a zlib error). */
static int read_exact(gzFile gz, void *buf, size_t size)
{
    unsigned char *p = buf;
    while (size) {
        unsigned chunk = size > (1u << 30) ? (1u << 30) : (unsigned)size;
        int got = gzread(gz, p, chunk);
        if (got <= 0) return -1;
        p += got;
        size -= (size_t)got;
    }
    return 0;
}

static const char *gz_problem(gzFile gz)
{
    int errnum = Z_OK;
    const char *msg = gzerror(gz, &errnum);
    return errnum == Z_OK || errnum == Z_BUF_ERROR ? "unexpected end of file" : msg;
}

static int read_header(cnk_ctx *ctx, cnk_idx_reader *r)
{
    unsigned char magic[4];
    if (read_exact(r->gz, magic, 4) != 0)
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: not an IDX file (no 4-byte header)", r->path);
    r->type = magic[2];
    r->ndim = magic[3];
    r->elem_size = element_size(r->type);
    if (magic[0] || magic[1] || !r->elem_size)
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: not an IDX file (magic %02x %02x %02x %02x)", r->path, magic[0],
                        magic[1], magic[2], magic[3]);
    if (r->ndim < 1 || r->ndim > CNK_IDX_MAX_DIMS)
        return cnk_fail(ctx, CNK_ERR_UNSUPPORTED, "%s: IDX file with %d dimensions (1..%d supported)", r->path,
                        r->ndim, CNK_IDX_MAX_DIMS);
    size_t total = r->elem_size;
    for (int d = 0; d < r->ndim; d++) {
        unsigned char b[4];
        if (read_exact(r->gz, b, 4) != 0) return cnk_fail(ctx, CNK_ERR_INPUT, "%s: truncated IDX header", r->path);
        r->dims[d] = (size_t)b[0] << 24 | (size_t)b[1] << 16 | (size_t)b[2] << 8 | b[3];
        if (r->dims[d] == 0) return cnk_fail(ctx, CNK_ERR_INPUT, "%s: IDX dimension %d is 0", r->path, d);
        if (r->dims[d] > CNK_IDX_MAX_BYTES / total)
            return cnk_fail(ctx, CNK_ERR_INPUT, "%s: IDX header promises more than %zu bytes", r->path,
                            CNK_IDX_MAX_BYTES);
        total *= r->dims[d];
    }
    r->n_records = r->dims[0];
    r->record_values = 1;
    for (int d = 1; d < r->ndim; d++) r->record_values *= r->dims[d];
    return CNK_OK;
}

int cnk_idx_open(cnk_ctx *ctx, const char *path, cnk_idx_reader *r)
{
    memset(r, 0, sizeof *r);
    if (strlen(path) >= sizeof r->path) return cnk_fail(ctx, CNK_ERR_ARG, "%s: path too long", path);
    strcpy(r->path, path);
    /* Anything but a regular file is refused before opening: a named pipe would block fopen forever. */
    if (!cnk_is_file(path))
        return cnk_fail(ctx, CNK_ERR_IO, "%s: cannot open (no such file, or not a regular file)", path);
    FILE *probe = fopen(path, "rb"); /* gzopen's errors say little: name the cause first */
    if (!probe) return cnk_fail(ctx, CNK_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    fclose(probe);
    gzFile gz = gzopen(path, "rb");
    if (!gz) return cnk_fail(ctx, CNK_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    gzbuffer(gz, 1 << 17);
    r->gz = gz;
    int rc = read_header(ctx, r);
    if (rc) cnk_idx_close(r);
    return rc;
}

/* After the last record the file must end, and for gzip the end is where zlib checks the CRC and length:
 * reading one more byte makes it do so, so a damaged or cut file is never taken as complete. */
static int check_end(cnk_ctx *ctx, cnk_idx_reader *r)
{
    unsigned char extra;
    int got = gzread(r->gz, &extra, 1);
    if (got > 0) return cnk_fail(ctx, CNK_ERR_INPUT, "%s: data after the last of %zu records", r->path, r->n_records);
    int errnum = Z_OK;
    const char *msg = gzerror(r->gz, &errnum);
    if (got < 0 || (errnum != Z_OK && errnum != Z_STREAM_END))
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: damaged or truncated after the last record (%s)", r->path,
                        errnum == Z_BUF_ERROR ? "unexpected end of file" : msg);
    return CNK_OK;
}

/* Reads n records of raw big-endian values into out (n * record_values * elem_size bytes). */
static int read_raw(cnk_ctx *ctx, cnk_idx_reader *r, size_t n, void *out)
{
    if (!r->gz) return cnk_fail(ctx, CNK_ERR_ARG, "%s: IDX reader is closed", r->path);
    if (n > r->n_records - r->next)
        return cnk_fail(ctx, CNK_ERR_ARG, "%s: asked for %zu records, %zu left", r->path, n, r->n_records - r->next);
    size_t record_bytes = r->record_values * r->elem_size;
    unsigned char *p = out;
    for (size_t i = 0; i < n; i++, p += record_bytes) {
        if (read_exact(r->gz, p, record_bytes) != 0)
            return cnk_fail(ctx, CNK_ERR_INPUT, "%s: truncated at record %zu of %zu (%s)", r->path, r->next + i,
                            r->n_records, gz_problem(r->gz));
    }
    r->next += n;
    return r->next == r->n_records ? check_end(ctx, r) : CNK_OK;
}

int cnk_idx_read_bytes(cnk_ctx *ctx, cnk_idx_reader *r, size_t n, unsigned char *out)
{
    if (r->elem_size != 1)
        return cnk_fail(ctx, CNK_ERR_UNSUPPORTED, "%s: IDX values are %zu-byte, not bytes", r->path, r->elem_size);
    return read_raw(ctx, r, n, out);
}

static uint64_t big_endian(const unsigned char *p, size_t size)
{
    uint64_t v = 0;
    for (size_t i = 0; i < size; i++) v = v << 8 | p[i];
    return v;
}

static float convert_value(int type, const unsigned char *p)
{
    switch (type) {
    case CNK_IDX_U8: return (float)p[0];
    case CNK_IDX_I8: return (float)(int8_t)p[0];
    case CNK_IDX_I16: return (float)(int16_t)(uint16_t)big_endian(p, 2);
    case CNK_IDX_I32: return (float)(int32_t)(uint32_t)big_endian(p, 4);
    case CNK_IDX_F32: {
        uint32_t bits = (uint32_t)big_endian(p, 4);
        float f;
        memcpy(&f, &bits, 4);
        return f;
    }
    default: {
        uint64_t bits = big_endian(p, 8);
        double d;
        memcpy(&d, &bits, 8);
        return (float)d;
    }
    }
}

int cnk_idx_read_floats(cnk_ctx *ctx, cnk_idx_reader *r, size_t n, float *out)
{
    /* One record at a time through a small buffer, so memory stays bounded by the caller's output. */
    size_t record_bytes = r->record_values * r->elem_size;
    unsigned char *raw = malloc(record_bytes);
    if (!raw) return cnk_fail(ctx, CNK_ERR_NOMEM, "%s: out of memory for one IDX record", r->path);
    int rc = CNK_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        rc = read_raw(ctx, r, 1, raw);
        for (size_t v = 0; v < r->record_values && !rc; v++)
            out[i * r->record_values + v] = convert_value(r->type, raw + v * r->elem_size);
    }
    free(raw);
    return rc;
}

void cnk_idx_close(cnk_idx_reader *r)
{
    if (r->gz) gzclose(r->gz);
    r->gz = NULL;
}

static int write_all(gzFile gz, FILE *fp, const void *data, size_t size)
{
    if (!gz) return fwrite(data, 1, size, fp) == size ? 0 : -1;
    const unsigned char *p = data;
    while (size) {
        unsigned chunk = size > (1u << 30) ? (1u << 30) : (unsigned)size;
        if (gzwrite(gz, p, chunk) != (int)chunk) return -1;
        p += chunk;
        size -= chunk;
    }
    return 0;
}

int cnk_idx_write_u8(cnk_ctx *ctx, const char *path, const unsigned char *values, int ndim, const size_t *dims,
                     int gzip)
{
    if (ndim < 1 || ndim > CNK_IDX_MAX_DIMS) return cnk_fail(ctx, CNK_ERR_ARG, "%s: bad IDX ndim %d", path, ndim);
    unsigned char header[4 + 4 * CNK_IDX_MAX_DIMS] = {0, 0, CNK_IDX_U8, (unsigned char)ndim};
    size_t count = 1;
    for (int d = 0; d < ndim; d++) {
        if (dims[d] > 0xffffffffu) return cnk_fail(ctx, CNK_ERR_ARG, "%s: IDX dimension too large", path);
        for (int b = 0; b < 4; b++) header[4 + 4 * d + b] = (unsigned char)(dims[d] >> (24 - 8 * b));
        count *= dims[d];
    }
    cnk_afile af;
    int rc = cnk_afile_open(ctx, &af, path);
    if (rc) return rc;
    gzFile gz = NULL;
    if (gzip) {
        fflush(af.fp);
        gz = gzdopen(dup(fileno(af.fp)), "wb");
        if (!gz) {
            cnk_afile_abort(&af);
            return cnk_fail(ctx, CNK_ERR_NOMEM, "%s: cannot start gzip stream", path);
        }
    }
    int failed = write_all(gz, af.fp, header, 4 + 4 * (size_t)ndim) || write_all(gz, af.fp, values, count);
    if (gz && gzclose(gz) != Z_OK) failed = 1;
    if (failed) {
        cnk_afile_abort(&af);
        return cnk_fail(ctx, CNK_ERR_IO, "%s: write failed", path);
    }
    return cnk_afile_commit(ctx, &af);
}
