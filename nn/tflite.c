/* tflite.c: a bounds-checked reader of TensorFlow Lite flatbuffers (schema v3), written for cnnkit.
 * A flatbuffer is a tree of tables reached through little-endian offsets; each table starts with a signed
 * offset to its vtable, which lists where each field sits (0 = absent, take the schema default). */
#include "nn/tflite.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/atomic_file.h"

#define TFL_MAX_FILE_SIZE ((size_t)1 << 31)   /* flatbuffers address at most 2 GB */
#define TFL_MAX_TENSOR_COUNT ((size_t)1 << 28) /* 1 GB of float32 per tensor */
#define TFL_MAX_NAME 4096

/* ---- flatbuffer access -------------------------------------------------------------------------------- */

typedef struct fb_reader {
    cnk_ctx *ctx;
    const char *name;
    const unsigned char *buf;
    size_t size;
} fb_reader;

typedef struct fb_table {
    size_t pos;       /* the table's first byte */
    size_t vtable;    /* its vtable's first byte */
    size_t n_fields;  /* slots in the vtable */
} fb_table;

static int fb_corrupt(const fb_reader *r, const char *what, size_t at)
{
    return cnk_fail(r->ctx, CNK_ERR_INPUT, "%s: truncated or corrupt TensorFlow Lite file (%s at byte %zu)",
                    r->name, what, at);
}

/* 1 if [pos, pos+len) lies inside the buffer. */
static int fb_inside(const fb_reader *r, size_t pos, size_t len)
{
    return pos <= r->size && len <= r->size - pos;
}

static uint16_t rd_u16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd_u64(const unsigned char *p) { return (uint64_t)rd_u32(p) | (uint64_t)rd_u32(p + 4) << 32; }
static float rd_f32(const unsigned char *p)
{
    uint32_t bits = rd_u32(p);
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static int fb_open_table(const fb_reader *r, size_t pos, fb_table *t, const char *what)
{
    if (!fb_inside(r, pos, 4)) return fb_corrupt(r, what, pos);
    int64_t vtable = (int64_t)pos - (int32_t)rd_u32(r->buf + pos);
    if (vtable < 0 || !fb_inside(r, (size_t)vtable, 4)) return fb_corrupt(r, what, pos);
    size_t vt_size = rd_u16(r->buf + vtable);
    size_t table_size = rd_u16(r->buf + vtable + 2);
    if (vt_size < 4 || (vt_size & 1) || !fb_inside(r, (size_t)vtable, vt_size) || table_size < 4 ||
        !fb_inside(r, pos, table_size))
        return fb_corrupt(r, what, pos);
    t->pos = pos;
    t->vtable = (size_t)vtable;
    t->n_fields = (vt_size - 4) / 2;
    return CNK_OK;
}

/* Where field `field` of width bytes sits, or 0 if the table leaves it out. */
static int fb_field(const fb_reader *r, const fb_table *t, int field, size_t width, size_t *where)
{
    *where = 0;
    if ((size_t)field >= t->n_fields) return CNK_OK;
    size_t off = rd_u16(r->buf + t->vtable + 4 + 2 * (size_t)field);
    if (off == 0) return CNK_OK;
    size_t table_size = rd_u16(r->buf + t->vtable + 2);
    if (off + width > table_size) return fb_corrupt(r, "field outside its table", t->pos);
    *where = t->pos + off;
    return CNK_OK;
}

static int fb_int(const fb_reader *r, const fb_table *t, int field, size_t width, int64_t dflt, int64_t *out)
{
    size_t at;
    int rc = fb_field(r, t, field, width, &at);
    if (rc) return rc;
    if (!at) {
        *out = dflt;
    } else if (width == 1) {
        *out = (int8_t)r->buf[at];
    } else if (width == 4) {
        *out = (int32_t)rd_u32(r->buf + at);
    } else {
        *out = (int64_t)rd_u64(r->buf + at);
    }
    return CNK_OK;
}

/* Field values narrowed to int (all option fields of interest are small). */
static int fb_small(const fb_reader *r, const fb_table *t, int field, size_t width, int dflt, int *out)
{
    int64_t v;
    int rc = fb_int(r, t, field, width, dflt, &v);
    if (rc) return rc;
    if (v < -(1 << 30) || v > (1 << 30)) return fb_corrupt(r, "option value out of range", t->pos);
    *out = (int)v;
    return CNK_OK;
}

/* Follows the uoffset stored in field; *target = 0 if the field is absent. */
static int fb_ref(const fb_reader *r, const fb_table *t, int field, size_t *target, const char *what)
{
    size_t at;
    int rc = fb_field(r, t, field, 4, &at);
    if (rc || !at) {
        *target = 0;
        return rc;
    }
    size_t dest = at + rd_u32(r->buf + at);
    if (dest < at || !fb_inside(r, dest, 4)) return fb_corrupt(r, what, at);
    *target = dest;
    return CNK_OK;
}

/* A vector field: its elements start at *data and there are *len of elem_size bytes (0 if absent). */
static int fb_vector(const fb_reader *r, const fb_table *t, int field, size_t elem_size, size_t *data,
                     size_t *len, const char *what)
{
    size_t target;
    int rc = fb_ref(r, t, field, &target, what);
    *data = 0;
    *len = 0;
    if (rc || !target) return rc;
    size_t n = rd_u32(r->buf + target);
    if (n > (r->size - target - 4) / elem_size) return fb_corrupt(r, what, target);
    *data = target + 4;
    *len = n;
    return CNK_OK;
}

/* Element i of a vector of tables. */
static int fb_vector_table(const fb_reader *r, size_t data, size_t i, fb_table *t, const char *what)
{
    size_t at = data + 4 * i;
    size_t dest = at + rd_u32(r->buf + at);
    if (dest < at) return fb_corrupt(r, what, at);
    return fb_open_table(r, dest, t, what);
}

static int fb_table_field(const fb_reader *r, const fb_table *t, int field, fb_table *sub, int *present,
                          const char *what)
{
    size_t target;
    int rc = fb_ref(r, t, field, &target, what);
    *present = target != 0;
    if (rc || !target) return rc;
    return fb_open_table(r, target, sub, what);
}

/* A string field copied into a malloc'd NUL-terminated string ("" if absent). */
static int fb_string(const fb_reader *r, const fb_table *t, int field, char **out, const char *what)
{
    size_t data, len;
    *out = NULL;
    int rc = fb_vector(r, t, field, 1, &data, &len, what);
    if (rc) return rc;
    if (len > TFL_MAX_NAME) len = TFL_MAX_NAME; /* names are for messages only */
    char *s = malloc(len + 1);
    if (!s) return cnk_fail(r->ctx, CNK_ERR_NOMEM, "%s: out of memory reading a name", r->name);
    if (len) memcpy(s, r->buf + data, len);
    s[len] = '\0';
    for (size_t i = 0; i < len; i++)
        if (s[i] == '\0' || s[i] == '\n' || s[i] == '\r') s[i] = ' ';
    *out = s;
    return CNK_OK;
}

/* ---- schema field numbers (schema.fbs, in declaration order; a union takes two slots) ----------------- */

enum { MODEL_VERSION = 0, MODEL_OPERATOR_CODES = 1, MODEL_SUBGRAPHS = 2, MODEL_DESCRIPTION = 3, MODEL_BUFFERS = 4 };
enum { OPCODE_DEPRECATED_BUILTIN = 0, OPCODE_CUSTOM = 1, OPCODE_VERSION = 2, OPCODE_BUILTIN = 3 };
enum { SUBGRAPH_TENSORS = 0, SUBGRAPH_INPUTS = 1, SUBGRAPH_OUTPUTS = 2, SUBGRAPH_OPERATORS = 3 };
enum { TENSOR_SHAPE = 0, TENSOR_TYPE = 1, TENSOR_BUFFER = 2, TENSOR_NAME = 3, TENSOR_QUANTIZATION = 4 };
enum { QUANT_MIN = 0, QUANT_MAX = 1, QUANT_SCALE = 2, QUANT_ZERO_POINT = 3, QUANT_DETAILS_TYPE = 4,
       QUANT_DETAILS = 5, QUANT_DIMENSION = 6 };
enum { OP_OPCODE_INDEX = 0, OP_INPUTS = 1, OP_OUTPUTS = 2, OP_OPTIONS_TYPE = 3, OP_OPTIONS = 4 };
enum { BUFFER_DATA = 0, BUFFER_OFFSET = 1, BUFFER_SIZE = 2 };

/* ---- op names ------------------------------------------------------------------------------------------- */

static const char *const op_names[] = {
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "DEPTH_TO_SPACE", "DEQUANTIZE",
    "EMBEDDING_LOOKUP", "FLOOR", "FULLY_CONNECTED", "HASHTABLE_LOOKUP", "L2_NORMALIZATION", "L2_POOL_2D",
    "LOCAL_RESPONSE_NORMALIZATION", "LOGISTIC", "LSH_PROJECTION", "LSTM", "MAX_POOL_2D", "MUL", "RELU",
    "RELU_N1_TO_1", "RELU6", "RESHAPE", "RESIZE_BILINEAR", "RNN", "SOFTMAX", "SPACE_TO_DEPTH", "SVDF", "TANH",
    "CONCAT_EMBEDDINGS", "SKIP_GRAM", "CALL", "CUSTOM", "EMBEDDING_LOOKUP_SPARSE", "PAD",
    "UNIDIRECTIONAL_SEQUENCE_RNN", "GATHER", "BATCH_TO_SPACE_ND", "SPACE_TO_BATCH_ND", "TRANSPOSE", "MEAN",
    "SUB", "DIV", "SQUEEZE", "UNIDIRECTIONAL_SEQUENCE_LSTM", "STRIDED_SLICE", "BIDIRECTIONAL_SEQUENCE_RNN",
    "EXP", "TOPK_V2", "SPLIT", "LOG_SOFTMAX", "DELEGATE", "BIDIRECTIONAL_SEQUENCE_LSTM", "CAST", "PRELU",
    "MAXIMUM", "ARG_MAX", "MINIMUM", "LESS", "NEG", "PADV2", "GREATER", "GREATER_EQUAL", "LESS_EQUAL",
    "SELECT", "SLICE", "SIN", "TRANSPOSE_CONV", "SPARSE_TO_DENSE", "TILE", "EXPAND_DIMS", "EQUAL", "NOT_EQUAL",
    "LOG", "SUM", "SQRT", "RSQRT", "SHAPE", "POW", "ARG_MIN", "FAKE_QUANT", "REDUCE_PROD", "REDUCE_MAX", "PACK",
    "LOGICAL_OR", "ONE_HOT", "LOGICAL_AND", "LOGICAL_NOT", "UNPACK", "REDUCE_MIN", "FLOOR_DIV", "REDUCE_ANY",
    "SQUARE", "ZEROS_LIKE", "FILL", "FLOOR_MOD", "RANGE", "RESIZE_NEAREST_NEIGHBOR", "LEAKY_RELU",
    "SQUARED_DIFFERENCE", "MIRROR_PAD", "ABS", "SPLIT_V", "UNIQUE", "CEIL", "REVERSE_V2", "ADD_N", "GATHER_ND",
    "COS", "WHERE", "RANK", "ELU", "REVERSE_SEQUENCE", "MATRIX_DIAG", "QUANTIZE", "MATRIX_SET_DIAG", "ROUND",
    "HARD_SWISH", "IF", "WHILE", "NON_MAX_SUPPRESSION_V4", "NON_MAX_SUPPRESSION_V5", "SCATTER_ND", "SELECT_V2",
    "DENSIFY", "SEGMENT_SUM", "BATCH_MATMUL", "PLACEHOLDER_FOR_GREATER_OP_CODES", "CUMSUM", "CALL_ONCE",
    "BROADCAST_TO", "RFFT2D", "CONV_3D", "IMAG", "REAL", "COMPLEX_ABS", "HASHTABLE", "HASHTABLE_FIND",
    "HASHTABLE_IMPORT", "HASHTABLE_SIZE", "REDUCE_ALL", "CONV_3D_TRANSPOSE", "VAR_HANDLE", "READ_VARIABLE",
    "ASSIGN_VARIABLE", "BROADCAST_ARGS", "RANDOM_STANDARD_NORMAL", "BUCKETIZE", "RANDOM_UNIFORM", "MULTINOMIAL",
    "GELU", "DYNAMIC_UPDATE_SLICE", "RELU_0_TO_1", "UNSORTED_SEGMENT_PROD", "UNSORTED_SEGMENT_MAX",
    "UNSORTED_SEGMENT_SUM", "ATAN2", "UNSORTED_SEGMENT_MIN", "SIGN"};

const char *cnk_tflite_op_name(int code, char *buf, size_t cap)
{
    if (code >= 0 && code < (int)(sizeof op_names / sizeof op_names[0])) return op_names[code];
    snprintf(buf, cap, "BUILTIN_%d", code);
    return buf;
}

int cnk_tflite_op_supported(int code)
{
    switch (code) {
    case CNK_TFL_CONV_2D: case CNK_TFL_DEPTHWISE_CONV_2D: case CNK_TFL_ADD: case CNK_TFL_AVERAGE_POOL_2D:
    case CNK_TFL_MEAN: case CNK_TFL_FULLY_CONNECTED: case CNK_TFL_RESHAPE: case CNK_TFL_SQUEEZE:
    case CNK_TFL_SOFTMAX: case CNK_TFL_LOGISTIC: case CNK_TFL_PAD: case CNK_TFL_DEQUANTIZE:
    case CNK_TFL_QUANTIZE:
        return 1;
    default:
        return 0;
    }
}

int cnk_tflite_check_ops(cnk_ctx *ctx, const char *name, const cnk_tfl_graph *graph, int first, int last)
{
    for (int i = first; i < last && i < graph->n_ops; i++) {
        const cnk_tfl_op *op = &graph->ops[i];
        if (cnk_tflite_op_supported(op->code)) continue;
        const char *out = op->n_outputs > 0 && op->outputs[0] >= 0 ? graph->tensors[op->outputs[0]].name : "";
        return cnk_fail(ctx, CNK_ERR_UNSUPPORTED, "%s: unsupported op %s in layer %d (output '%s')", name,
                        op->name, i, out);
    }
    return CNK_OK;
}

int cnk_tflite_find_tensor(const cnk_tfl_graph *graph, const char *name)
{
    for (int i = 0; i < graph->n_tensors; i++)
        if (strcmp(graph->tensors[i].name, name) == 0) return i;
    return -1;
}

int cnk_tflite_producer(const cnk_tfl_graph *graph, int t)
{
    for (int i = 0; i < graph->n_ops; i++)
        for (int k = 0; k < graph->ops[i].n_outputs; k++)
            if (graph->ops[i].outputs[k] == t) return i;
    return -1;
}

/* ---- tensors ------------------------------------------------------------------------------------------ */

typedef struct tfl_quant {
    size_t scale_data, n_scales;
    size_t zero_data, n_zeros;
    int dimension;
} tfl_quant;

static int read_quantization(const fb_reader *r, const fb_table *tensor, tfl_quant *q)
{
    memset(q, 0, sizeof *q);
    fb_table qt;
    int present;
    int rc = fb_table_field(r, tensor, TENSOR_QUANTIZATION, &qt, &present, "tensor quantization");
    if (rc || !present) return rc;
    if ((rc = fb_vector(r, &qt, QUANT_SCALE, 4, &q->scale_data, &q->n_scales, "quantization scales")) ||
        (rc = fb_vector(r, &qt, QUANT_ZERO_POINT, 8, &q->zero_data, &q->n_zeros, "quantization zero points")) ||
        (rc = fb_small(r, &qt, QUANT_DIMENSION, 4, 0, &q->dimension)))
        return rc;
    return CNK_OK;
}

static size_t type_size(int type)
{
    switch (type) {
    case CNK_TFL_FLOAT32: case CNK_TFL_INT32: return 4;
    case CNK_TFL_FLOAT16: case CNK_TFL_INT16: return 2;
    case CNK_TFL_UINT8: case CNK_TFL_INT8: return 1;
    case CNK_TFL_INT64: return 8;
    default: return 0;
    }
}

static float half_to_float(uint16_t h)
{
    int exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
    float value;
    if (exponent == 0) value = ldexpf((float)mantissa, -24);
    else if (exponent == 31) value = mantissa ? NAN : INFINITY;
    else value = ldexpf((float)(mantissa | 0x400), exponent - 25);
    return (h & 0x8000) ? -value : value;
}

/* The stored value of element i as a number, before any scale is applied. */
static double raw_value(const unsigned char *p, int type, size_t i)
{
    switch (type) {
    case CNK_TFL_FLOAT32: return rd_f32(p + 4 * i);
    case CNK_TFL_FLOAT16: return half_to_float(rd_u16(p + 2 * i));
    case CNK_TFL_INT32: return (int32_t)rd_u32(p + 4 * i);
    case CNK_TFL_INT16: return (int16_t)rd_u16(p + 2 * i);
    case CNK_TFL_UINT8: return p[i];
    case CNK_TFL_INT8: return (int8_t)p[i];
    default: return (double)(int64_t)rd_u64(p + 8 * i);
    }
}

/* Dequantises bytes into t->data: real = (q - zero_point[c]) * scale[c], c the index along the quantized
 * dimension (a single scale applies to every element). Unquantised integers keep their values. */
static int dequantise(const fb_reader *r, cnk_tfl_tensor *t, const unsigned char *bytes, const tfl_quant *q)
{
    size_t inner = 1, channels = 1;
    int per_channel = q->n_scales > 1;
    if (per_channel) {
        if (q->dimension < 0 || q->dimension >= t->ndim || (size_t)t->shape[q->dimension] != q->n_scales ||
            (q->n_zeros > 1 && q->n_zeros != q->n_scales))
            return cnk_fail(r->ctx, CNK_ERR_INPUT, "%s: tensor '%s' has %zu scales for dimension %d of its shape",
                            r->name, t->name, q->n_scales, q->dimension);
        channels = q->n_scales;
        for (int d = q->dimension + 1; d < t->ndim; d++) inner *= (size_t)t->shape[d];
    }
    t->data = malloc((t->count ? t->count : 1) * sizeof(float));
    if (!t->data) return cnk_fail(r->ctx, CNK_ERR_NOMEM, "%s: out of memory for tensor '%s'", r->name, t->name);
    for (size_t i = 0; i < t->count; i++) {
        double v = raw_value(bytes, t->type, i);
        if (t->quantized && t->type != CNK_TFL_FLOAT32 && t->type != CNK_TFL_FLOAT16) {
            size_t c = per_channel ? (i / inner) % channels : 0;
            double scale = rd_f32(r->buf + q->scale_data + 4 * c);
            double zero = 0;
            if (q->n_zeros) zero = (double)(int64_t)rd_u64(r->buf + q->zero_data + 8 * (q->n_zeros > 1 ? c : 0));
            v = (v - zero) * scale;
            /* A NaN/infinite scale or a value beyond float range (converting it would be undefined) is damage. */
            if (!(fabs(v) <= FLT_MAX))
                return cnk_fail(r->ctx, CNK_ERR_INPUT, "%s: tensor '%s' has an invalid quantisation (scale %g)",
                                r->name, t->name, scale);
        }
        t->data[i] = (float)v;
    }
    return CNK_OK;
}

/* Locates buffer `index`'s bytes: inline data, or (files over 2 GB) an offset/size pair into the file. */
static int buffer_bytes(const fb_reader *r, size_t buffers, size_t n_buffers, uint32_t index,
                        const unsigned char **bytes, size_t *len)
{
    *bytes = NULL;
    *len = 0;
    if (index >= n_buffers) return fb_corrupt(r, "tensor buffer index out of range", buffers);
    fb_table bt;
    int rc = fb_vector_table(r, buffers, index, &bt, "buffer");
    if (rc) return rc;
    size_t data;
    if ((rc = fb_vector(r, &bt, BUFFER_DATA, 1, &data, len, "buffer data"))) return rc;
    if (*len) {
        *bytes = r->buf + data;
        return CNK_OK;
    }
    int64_t offset, size;
    if ((rc = fb_int(r, &bt, BUFFER_OFFSET, 8, 0, &offset)) || (rc = fb_int(r, &bt, BUFFER_SIZE, 8, 0, &size)))
        return rc;
    if (offset > 1 && size > 0) {
        if (!fb_inside(r, (size_t)offset, (size_t)size)) return fb_corrupt(r, "buffer outside the file", bt.pos);
        *bytes = r->buf + offset;
        *len = (size_t)size;
    }
    return CNK_OK;
}

static int read_shape(const fb_reader *r, const fb_table *tt, cnk_tfl_tensor *t)
{
    size_t data, n;
    int rc = fb_vector(r, tt, TENSOR_SHAPE, 4, &data, &n, "tensor shape");
    if (rc) return rc;
    if (n > CNK_TFL_MAX_DIMS)
        return cnk_fail(r->ctx, CNK_ERR_UNSUPPORTED, "%s: tensor '%s' has %zu dimensions (at most %d)", r->name,
                        t->name, n, CNK_TFL_MAX_DIMS);
    t->ndim = (int)n;
    t->count = 1;
    for (size_t d = 0; d < n; d++) {
        int32_t dim = (int32_t)rd_u32(r->buf + data + 4 * d);
        if (dim < 0 || (dim > 0 && t->count > TFL_MAX_TENSOR_COUNT / (size_t)dim))
            return cnk_fail(r->ctx, CNK_ERR_INPUT, "%s: tensor '%s' has an invalid or absurd shape", r->name,
                            t->name);
        t->shape[d] = dim;
        t->count *= (size_t)dim;
    }
    return CNK_OK;
}

static int read_tensor(const fb_reader *r, const fb_table *tt, size_t buffers, size_t n_buffers,
                       cnk_tfl_tensor *t)
{
    int rc = fb_string(r, tt, TENSOR_NAME, &t->name, "tensor name");
    if (rc) return rc;
    int64_t type, buffer;
    if ((rc = read_shape(r, tt, t)) || (rc = fb_int(r, tt, TENSOR_TYPE, 1, 0, &type)) ||
        (rc = fb_int(r, tt, TENSOR_BUFFER, 4, 0, &buffer)))
        return rc;
    t->type = (int)type;
    tfl_quant q;
    if ((rc = read_quantization(r, tt, &q))) return rc;
    t->quantized = q.n_scales > 0;
    t->n_scales = (int)q.n_scales;
    t->quantized_dimension = q.dimension;
    if (q.n_scales) t->scale = rd_f32(r->buf + q.scale_data);
    if (q.n_zeros) t->zero_point = (long)(int64_t)rd_u64(r->buf + q.zero_data);
    const unsigned char *bytes;
    size_t len;
    if ((rc = buffer_bytes(r, buffers, n_buffers, (uint32_t)buffer, &bytes, &len))) return rc;
    if (!len) return CNK_OK; /* an activation: computed at run time */
    size_t elem = type_size(t->type);
    if (!elem)
        return cnk_fail(r->ctx, CNK_ERR_UNSUPPORTED, "%s: constant tensor '%s' has unsupported type %d", r->name,
                        t->name, t->type);
    if (len != t->count * elem)
        return cnk_fail(r->ctx, CNK_ERR_INPUT, "%s: tensor '%s' holds %zu bytes, its shape needs %zu", r->name,
                        t->name, len, t->count * elem);
    return dequantise(r, t, bytes, &q);
}

/* ---- operators ---------------------------------------------------------------------------------------- */

/* BuiltinOptions union members used here (1-based union type numbers of schema.fbs). */
enum { OPT_CONV2D = 1, OPT_DEPTHWISE = 2, OPT_POOL2D = 5, OPT_FULLY_CONNECTED = 8, OPT_SOFTMAX = 9,
       OPT_ADD = 11, OPT_REDUCER = 27 };

static int read_options(const fb_reader *r, const fb_table *ot, int type, cnk_tfl_op *op)
{
    int rc = CNK_OK;
    switch (type) {
    case OPT_CONV2D:
        if ((rc = fb_small(r, ot, 0, 1, 0, &op->padding)) || (rc = fb_small(r, ot, 1, 4, 1, &op->stride_w)) ||
            (rc = fb_small(r, ot, 2, 4, 1, &op->stride_h)) || (rc = fb_small(r, ot, 3, 1, 0, &op->activation)) ||
            (rc = fb_small(r, ot, 4, 4, 1, &op->dilation_w)) || (rc = fb_small(r, ot, 5, 4, 1, &op->dilation_h)))
            return rc;
        break;
    case OPT_DEPTHWISE:
        if ((rc = fb_small(r, ot, 0, 1, 0, &op->padding)) || (rc = fb_small(r, ot, 1, 4, 1, &op->stride_w)) ||
            (rc = fb_small(r, ot, 2, 4, 1, &op->stride_h)) ||
            (rc = fb_small(r, ot, 3, 4, 1, &op->depth_multiplier)) ||
            (rc = fb_small(r, ot, 4, 1, 0, &op->activation)) || (rc = fb_small(r, ot, 5, 4, 1, &op->dilation_w)) ||
            (rc = fb_small(r, ot, 6, 4, 1, &op->dilation_h)))
            return rc;
        break;
    case OPT_POOL2D:
        if ((rc = fb_small(r, ot, 0, 1, 0, &op->padding)) || (rc = fb_small(r, ot, 1, 4, 1, &op->stride_w)) ||
            (rc = fb_small(r, ot, 2, 4, 1, &op->stride_h)) || (rc = fb_small(r, ot, 3, 4, 1, &op->filter_w)) ||
            (rc = fb_small(r, ot, 4, 4, 1, &op->filter_h)) || (rc = fb_small(r, ot, 5, 1, 0, &op->activation)))
            return rc;
        break;
    case OPT_FULLY_CONNECTED:
    case OPT_ADD:
        rc = fb_small(r, ot, 0, 1, 0, &op->activation);
        break;
    case OPT_SOFTMAX: {
        size_t at;
        if ((rc = fb_field(r, ot, 0, 4, &at))) return rc;
        op->beta = at ? rd_f32(r->buf + at) : 0.0f;
        break;
    }
    case OPT_REDUCER:
        rc = fb_small(r, ot, 0, 1, 0, &op->keep_dims);
        break;
    default:
        break;
    }
    return rc;
}

/* Reads an int vector of tensor indices; each must be a valid tensor, or -1 where allow_omitted (an omitted
 * optional operator input; outputs and graph inputs/outputs always name a tensor). */
static int read_indices(const fb_reader *r, const fb_table *t, int field, int n_tensors, int allow_omitted, int *out,
                        int *n_out, const char *what)
{
    size_t data, n;
    int rc = fb_vector(r, t, field, 4, &data, &n, what);
    if (rc) return rc;
    if (n > CNK_TFL_MAX_OP_IO)
        return cnk_fail(r->ctx, CNK_ERR_UNSUPPORTED, "%s: %s lists %zu tensors (at most %d)", r->name, what, n,
                        CNK_TFL_MAX_OP_IO);
    for (size_t i = 0; i < n; i++) {
        int32_t index = (int32_t)rd_u32(r->buf + data + 4 * i);
        if (index < (allow_omitted ? -1 : 0) || index >= n_tensors)
            return fb_corrupt(r, "tensor index out of range", data + 4 * i);
        out[i] = index;
    }
    *n_out = (int)n;
    return CNK_OK;
}

typedef struct tfl_opcode {
    int builtin;
    char custom[48];
} tfl_opcode;

static int read_opcodes(const fb_reader *r, const fb_table *model, tfl_opcode **codes, size_t *n_codes)
{
    size_t data, n;
    int rc = fb_vector(r, model, MODEL_OPERATOR_CODES, 4, &data, &n, "operator codes");
    if (rc) return rc;
    *codes = calloc(n ? n : 1, sizeof **codes);
    if (!*codes) return cnk_fail(r->ctx, CNK_ERR_NOMEM, "%s: out of memory", r->name);
    *n_codes = n;
    for (size_t i = 0; i < n; i++) {
        fb_table ct;
        int64_t deprecated, builtin;
        if ((rc = fb_vector_table(r, data, i, &ct, "operator code")) ||
            (rc = fb_int(r, &ct, OPCODE_DEPRECATED_BUILTIN, 1, 0, &deprecated)) ||
            (rc = fb_int(r, &ct, OPCODE_BUILTIN, 4, 0, &builtin)))
            return rc;
        /* Files before schema 3a only have the byte-sized code; newer ones put 127 there for codes > 126. */
        (*codes)[i].builtin = (int)(builtin > deprecated ? builtin : deprecated);
        char *custom;
        if ((rc = fb_string(r, &ct, OPCODE_CUSTOM, &custom, "custom op name"))) return rc;
        snprintf((*codes)[i].custom, sizeof (*codes)[i].custom, "%s", custom);
        free(custom);
    }
    return CNK_OK;
}

static int read_operator(const fb_reader *r, const fb_table *ot, const tfl_opcode *codes, size_t n_codes,
                         int n_tensors, cnk_tfl_op *op)
{
    int64_t opcode_index, options_type;
    int rc;
    if ((rc = fb_int(r, ot, OP_OPCODE_INDEX, 4, 0, &opcode_index))) return rc;
    if (opcode_index < 0 || (uint64_t)(uint32_t)opcode_index >= n_codes)
        return fb_corrupt(r, "operator code index out of range", ot->pos);
    const tfl_opcode *code = &codes[(uint32_t)opcode_index];
    op->code = code->builtin;
    char buf[32];
    if (op->code == CNK_TFL_CUSTOM) snprintf(op->name, sizeof op->name, "CUSTOM(%s)", code->custom);
    else snprintf(op->name, sizeof op->name, "%s", cnk_tflite_op_name(op->code, buf, sizeof buf));
    op->stride_w = op->stride_h = op->dilation_w = op->dilation_h = op->filter_w = op->filter_h = 1;
    op->depth_multiplier = 1;
    op->beta = 1.0f;
    if ((rc = read_indices(r, ot, OP_INPUTS, n_tensors, 1, op->inputs, &op->n_inputs, "operator inputs")) ||
        (rc = read_indices(r, ot, OP_OUTPUTS, n_tensors, 0, op->outputs, &op->n_outputs, "operator outputs")) ||
        (rc = fb_int(r, ot, OP_OPTIONS_TYPE, 1, 0, &options_type)))
        return rc;
    fb_table opts;
    int present;
    if ((rc = fb_table_field(r, ot, OP_OPTIONS, &opts, &present, "operator options"))) return rc;
    if (present && (rc = read_options(r, &opts, (int)(uint8_t)options_type, op))) return rc;
    /* Some converters leave depth_multiplier 0 (the runtime derives it from the shapes, which the import
     * checks); windows below 1 would divide by zero in any shape arithmetic downstream. */
    if (op->depth_multiplier < 1) op->depth_multiplier = 1;
    if (op->stride_w < 1 || op->stride_h < 1 || op->dilation_w < 1 || op->dilation_h < 1 || op->filter_w < 1 ||
        op->filter_h < 1)
        return cnk_fail(r->ctx, CNK_ERR_INPUT, "%s: operator %s has a stride, dilation or filter size below 1",
                        r->name, op->name);
    return CNK_OK;
}

/* ---- the model ---------------------------------------------------------------------------------------- */

/* A DEQUANTIZE of a constant (hybrid-quantised files) becomes a constant float tensor; the op goes. */
static int fold_constant_dequantize(cnk_ctx *ctx, const char *name, cnk_tfl_graph *g)
{
    int kept = 0;
    for (int i = 0; i < g->n_ops; i++) {
        cnk_tfl_op *op = &g->ops[i];
        if (op->code == CNK_TFL_DEQUANTIZE && op->n_inputs == 1 && op->n_outputs == 1 && op->inputs[0] >= 0 &&
            op->outputs[0] >= 0 && g->tensors[op->inputs[0]].data && !g->tensors[op->outputs[0]].data) {
            cnk_tfl_tensor *in = &g->tensors[op->inputs[0]], *out = &g->tensors[op->outputs[0]];
            if (in->count != out->count)
                return cnk_fail(ctx, CNK_ERR_INPUT, "%s: DEQUANTIZE changes the size of '%s'", name, in->name);
            out->data = malloc((in->count ? in->count : 1) * sizeof(float));
            if (!out->data) return cnk_fail(ctx, CNK_ERR_NOMEM, "%s: out of memory", name);
            memcpy(out->data, in->data, in->count * sizeof(float));
            continue;
        }
        g->ops[kept++] = *op;
    }
    g->n_ops = kept;
    return CNK_OK;
}

static int read_subgraph(const fb_reader *r, const fb_table *sg, const fb_table *model, cnk_tfl_graph *g)
{
    size_t buffers, n_buffers, tensors, n_tensors, operators, n_operators;
    int rc;
    if ((rc = fb_vector(r, model, MODEL_BUFFERS, 4, &buffers, &n_buffers, "buffers")) ||
        (rc = fb_vector(r, sg, SUBGRAPH_TENSORS, 4, &tensors, &n_tensors, "tensors")) ||
        (rc = fb_vector(r, sg, SUBGRAPH_OPERATORS, 4, &operators, &n_operators, "operators")))
        return rc;
    /* Check every buffer, referenced or not (metadata): a cut file must not pass for a whole one. */
    for (size_t i = 0; i < n_buffers; i++) {
        const unsigned char *bytes;
        size_t len;
        if ((rc = buffer_bytes(r, buffers, n_buffers, (uint32_t)i, &bytes, &len))) return rc;
    }
    g->tensors = calloc(n_tensors ? n_tensors : 1, sizeof *g->tensors);
    g->ops = calloc(n_operators ? n_operators : 1, sizeof *g->ops);
    if (!g->tensors || !g->ops) return cnk_fail(r->ctx, CNK_ERR_NOMEM, "%s: out of memory", r->name);
    for (size_t i = 0; i < n_tensors; i++) {
        fb_table tt;
        g->n_tensors = (int)i + 1; /* so release frees what was read so far */
        if ((rc = fb_vector_table(r, tensors, i, &tt, "tensor")) ||
            (rc = read_tensor(r, &tt, buffers, n_buffers, &g->tensors[i])))
            return rc;
    }
    if ((rc = read_indices(r, sg, SUBGRAPH_INPUTS, g->n_tensors, 0, g->inputs, &g->n_inputs, "graph inputs")) ||
        (rc = read_indices(r, sg, SUBGRAPH_OUTPUTS, g->n_tensors, 0, g->outputs, &g->n_outputs, "graph outputs")))
        return rc;
    tfl_opcode *codes = NULL;
    size_t n_codes = 0;
    rc = read_opcodes(r, model, &codes, &n_codes);
    for (size_t i = 0; rc == CNK_OK && i < n_operators; i++) {
        fb_table ot;
        rc = fb_vector_table(r, operators, i, &ot, "operator");
        if (!rc) rc = read_operator(r, &ot, codes, n_codes, g->n_tensors, &g->ops[i]);
        g->n_ops = (int)i + 1;
    }
    free(codes);
    return rc;
}

static int parse_model(const fb_reader *r, cnk_tfl_graph *g)
{
    if (r->size < 8) return fb_corrupt(r, "file too short", 0);
    if (memcmp(r->buf + 4, "TFL3", 4) != 0)
        return cnk_fail(r->ctx, CNK_ERR_INPUT, "%s: not a TensorFlow Lite file (no TFL3 identifier)", r->name);
    fb_table model, sg;
    int rc = fb_open_table(r, rd_u32(r->buf), &model, "model table");
    if (rc) return rc;
    int64_t version;
    if ((rc = fb_int(r, &model, MODEL_VERSION, 4, 0, &version))) return rc;
    if (version != 3)
        return cnk_fail(r->ctx, CNK_ERR_UNSUPPORTED, "%s: TensorFlow Lite schema version %lld (cnnkit reads 3)",
                        r->name, (long long)version);
    char *description;
    if ((rc = fb_string(r, &model, MODEL_DESCRIPTION, &description, "model description"))) return rc;
    snprintf(g->description, sizeof g->description, "%s", description);
    free(description);
    size_t subgraphs, n_subgraphs;
    if ((rc = fb_vector(r, &model, MODEL_SUBGRAPHS, 4, &subgraphs, &n_subgraphs, "subgraphs"))) return rc;
    if (n_subgraphs < 1) return cnk_fail(r->ctx, CNK_ERR_INPUT, "%s: the model has no subgraph", r->name);
    /* The main graph is subgraph 0; others are only reached through control-flow ops cnnkit refuses. */
    if ((rc = fb_vector_table(r, subgraphs, 0, &sg, "subgraph"))) return rc;
    if ((rc = read_subgraph(r, &sg, &model, g))) return rc;
    return fold_constant_dequantize(r->ctx, r->name, g);
}

int cnk_tflite_parse(cnk_ctx *ctx, const char *name, const unsigned char *bytes, size_t size,
                     cnk_tfl_graph *graph)
{
    memset(graph, 0, sizeof *graph);
    if (size > TFL_MAX_FILE_SIZE)
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: %zu bytes is larger than a flatbuffer can be", name, size);
    fb_reader r = {ctx, name, bytes, size};
    int rc = parse_model(&r, graph);
    if (rc) cnk_tflite_release(graph);
    return rc;
}

int cnk_tflite_read(cnk_ctx *ctx, const char *path, cnk_tfl_graph *graph)
{
    unsigned char *bytes;
    size_t size;
    memset(graph, 0, sizeof *graph);
    int rc = cnk_read_file(ctx, path, TFL_MAX_FILE_SIZE, &bytes, &size);
    if (rc) return rc;
    rc = cnk_tflite_parse(ctx, path, bytes, size, graph);
    free(bytes);
    return rc;
}

void cnk_tflite_release(cnk_tfl_graph *graph)
{
    if (graph->tensors)
        for (int i = 0; i < graph->n_tensors; i++) {
            free(graph->tensors[i].name);
            free(graph->tensors[i].data);
        }
    free(graph->tensors);
    free(graph->ops);
    memset(graph, 0, sizeof *graph);
}
