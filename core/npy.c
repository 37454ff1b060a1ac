#include "core/npy.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/atomic_file.h"

/* The largest array we will allocate from a file's header: 2^31 elements (8 GiB of float32). */
#define NPY_MAX_ELEMENTS ((size_t)1 << 31)

size_t cnk_array_count(const cnk_array *a)
{
    size_t n = 1;
    for (int i = 0; i < a->ndim; i++) n *= a->shape[i];
    return n;
}

void cnk_array_release(cnk_array *a)
{
    free(a->data);
    memset(a, 0, sizeof *a);
}

static void format_header(char *header, size_t cap, int ndim, const size_t *shape)
{
    /* numpy's spelling: "()" for a scalar, "(3,)" for one dimension, "(2, 3)" for more. */
    char dims[256] = "";
    size_t used = 0;
    for (int i = 0; i < ndim; i++)
        used += (size_t)snprintf(dims + used, sizeof dims - used, "%s%zu", i ? ", " : "", shape[i]);
    if (ndim == 1) snprintf(dims + used, sizeof dims - used, ",");
    snprintf(header, cap, "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", dims);
}

int cnk_npy_write(cnk_ctx *ctx, const char *path, const float *data, int ndim, const size_t *shape)
{
    if (ndim < 0 || ndim > CNK_NPY_MAX_DIMS) return cnk_fail(ctx, CNK_ERR_ARG, "%s: bad ndim %d", path, ndim);
    char dict[400];
    format_header(dict, sizeof dict, ndim, shape);
    /* magic(6) + version(2) + header length(2) + dict + padding + '\n', total a multiple of 64. */
    size_t dict_len = strlen(dict);
    size_t total = 10 + dict_len + 1;
    size_t padded = (total + 63) / 64 * 64;
    unsigned char head[512];
    memcpy(head, "\x93NUMPY\x01\x00", 8);
    uint16_t hlen = (uint16_t)(padded - 10);
    head[8] = (unsigned char)(hlen & 0xff);
    head[9] = (unsigned char)(hlen >> 8);
    memcpy(head + 10, dict, dict_len);
    memset(head + 10 + dict_len, ' ', padded - total);
    head[padded - 1] = '\n';

    size_t count = 1;
    for (int i = 0; i < ndim; i++) count *= shape[i];
    cnk_afile af;
    int rc = cnk_afile_open(ctx, &af, path);
    if (rc) return rc;
    /* float32 is written as the host's bytes: cnnkit only builds on little-endian machines (CMake checks). */
    if (fwrite(head, 1, padded, af.fp) != padded || (count && fwrite(data, sizeof(float), count, af.fp) != count)) {
        cnk_afile_abort(&af);
        return cnk_fail(ctx, CNK_ERR_IO, "%s: write failed", path);
    }
    return cnk_afile_commit(ctx, &af);
}

/* Finds the value text after 'key': in the header dict. */
static const char *find_key(const char *dict, const char *key)
{
    const char *p = strstr(dict, key);
    if (!p) return NULL;
    p += strlen(key);
    while (*p == ' ' || *p == '\'' || *p == '"' || *p == ':') p++;
    return p;
}

static int parse_shape(const char *p, cnk_array *out)
{
    if (*p != '(') return -1;
    p++;
    out->ndim = 0;
    for (;;) {
        while (*p == ' ' || *p == ',') p++;
        if (*p == ')') break;
        if (*p < '0' || *p > '9' || out->ndim == CNK_NPY_MAX_DIMS) return -1;
        char *end;
        unsigned long long v = strtoull(p, &end, 10);
        if (v > NPY_MAX_ELEMENTS) return -1;
        out->shape[out->ndim++] = (size_t)v;
        p = end;
    }
    return 0;
}

int cnk_npy_parse(cnk_ctx *ctx, const char *name, const unsigned char *bytes, size_t size, cnk_array *out)
{
    memset(out, 0, sizeof *out);
    if (size < 10 || memcmp(bytes, "\x93NUMPY", 6) != 0)
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: not a .npy file (bad magic)", name);
    int major = bytes[6];
    size_t hlen, off;
    if (major == 1) {
        hlen = bytes[8] | (size_t)bytes[9] << 8;
        off = 10;
    } else if ((major == 2 || major == 3) && size >= 12) {
        hlen = bytes[8] | (size_t)bytes[9] << 8 | (size_t)bytes[10] << 16 | (size_t)bytes[11] << 24;
        off = 12;
    } else {
        return cnk_fail(ctx, CNK_ERR_UNSUPPORTED, "%s: unsupported .npy version %d", name, major);
    }
    if (hlen > size - off || hlen > 65536) return cnk_fail(ctx, CNK_ERR_INPUT, "%s: truncated .npy header", name);
    char dict[65537];
    memcpy(dict, bytes + off, hlen);
    dict[hlen] = '\0';
    const char *descr = find_key(dict, "descr");
    const char *fortran = find_key(dict, "fortran_order");
    const char *shape = find_key(dict, "shape");
    if (!descr || !fortran || !shape) return cnk_fail(ctx, CNK_ERR_INPUT, "%s: malformed .npy header", name);
    int is_f8;
    if (strncmp(descr, "<f4", 3) == 0) is_f8 = 0;
    else if (strncmp(descr, "<f8", 3) == 0) is_f8 = 1;
    else return cnk_fail(ctx, CNK_ERR_UNSUPPORTED, "%s: .npy dtype must be '<f4' or '<f8'", name);
    if (strncmp(fortran, "False", 5) != 0)
        return cnk_fail(ctx, CNK_ERR_UNSUPPORTED, "%s: Fortran-order .npy arrays are not supported", name);
    if (parse_shape(shape, out) != 0) return cnk_fail(ctx, CNK_ERR_INPUT, "%s: malformed .npy shape", name);
    size_t count = 1;
    for (int i = 0; i < out->ndim; i++) {
        if (out->shape[i] && count > NPY_MAX_ELEMENTS / out->shape[i])
            return cnk_fail(ctx, CNK_ERR_INPUT, "%s: .npy array too large", name);
        count *= out->shape[i];
    }
    size_t elem = is_f8 ? 8 : 4;
    size_t data_off = off + hlen;
    if (size - data_off < count * elem) return cnk_fail(ctx, CNK_ERR_INPUT, "%s: truncated .npy data", name);
    out->data = malloc(count ? count * sizeof(float) : 1);
    if (!out->data) return cnk_fail(ctx, CNK_ERR_NOMEM, "%s: out of memory", name);
    if (is_f8) {
        for (size_t i = 0; i < count; i++) {
            double d;
            memcpy(&d, bytes + data_off + i * 8, 8);
            out->data[i] = (float)d;
        }
    } else {
        memcpy(out->data, bytes + data_off, count * 4);
    }
    return CNK_OK;
}

int cnk_npy_read(cnk_ctx *ctx, const char *path, cnk_array *out)
{
    unsigned char *bytes;
    size_t size;
    memset(out, 0, sizeof *out);
    int rc = cnk_read_file(ctx, path, 0, &bytes, &size);
    if (rc) return rc;
    rc = cnk_npy_parse(ctx, path, bytes, size, out);
    free(bytes);
    return rc;
}
