/* tflite_interp.h: a deliberately naive float32 interpreter of a cnk_tfl_graph in NHWC, for tests only.
 * It follows TensorFlow Lite's op definitions literally so it can judge the reader and the import. */
#ifndef CNK_TEST_TFLITE_INTERP_H
#define CNK_TEST_TFLITE_INTERP_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/tflite.h"

typedef struct ti_run {
    const cnk_tfl_graph *g;
    float **values; /* per tensor: constants point at the graph's data; activations are malloc'd */
    int *owned;
} ti_run;

static float ti_act(float v, int activation)
{
    switch (activation) {
    case CNK_TFL_ACT_RELU: return v > 0 ? v : 0;
    case CNK_TFL_ACT_RELU6: return v < 0 ? 0 : (v > 6 ? 6 : v);
    case CNK_TFL_ACT_RELU_N1_TO_1: return v < -1 ? -1 : (v > 1 ? 1 : v);
    case CNK_TFL_ACT_TANH: return tanhf(v);
    default: return v;
    }
}

/* TensorFlow's SAME padding puts the odd extra pixel after; VALID pads nothing. */
static int ti_pad_before(int padding, int in, int out, int stride, int k, int dilation)
{
    if (padding != CNK_TFL_PAD_SAME) return 0;
    int total = (out - 1) * stride + (k - 1) * dilation + 1 - in;
    return total > 0 ? total / 2 : 0;
}

static const cnk_tfl_tensor *ti_t(const ti_run *r, int i) { return &r->g->tensors[i]; }

static void ti_conv(ti_run *r, const cnk_tfl_op *op, float *out, int depthwise)
{
    const cnk_tfl_tensor *in = ti_t(r, op->inputs[0]), *w = ti_t(r, op->inputs[1]), *o = ti_t(r, op->outputs[0]);
    const float *x = r->values[op->inputs[0]], *wt = r->values[op->inputs[1]];
    const float *bias = op->n_inputs > 2 && op->inputs[2] >= 0 ? r->values[op->inputs[2]] : NULL;
    int H = in->shape[1], W = in->shape[2], C = in->shape[3];
    int OH = o->shape[1], OW = o->shape[2], OC = o->shape[3], KH = w->shape[1], KW = w->shape[2];
    int pt = ti_pad_before(op->padding, H, OH, op->stride_h, KH, op->dilation_h);
    int pl = ti_pad_before(op->padding, W, OW, op->stride_w, KW, op->dilation_w);
    for (int b = 0; b < in->shape[0]; b++)
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++)
                for (int oc = 0; oc < OC; oc++) {
                    double sum = bias ? bias[oc] : 0;
                    for (int ky = 0; ky < KH; ky++) {
                        int iy = oy * op->stride_h - pt + ky * op->dilation_h;
                        if (iy < 0 || iy >= H) continue;
                        for (int kx = 0; kx < KW; kx++) {
                            int ix = ox * op->stride_w - pl + kx * op->dilation_w;
                            if (ix < 0 || ix >= W) continue;
                            const float *px = x + (((size_t)b * H + iy) * W + ix) * C;
                            if (depthwise) {
                                int ic = oc / op->depth_multiplier;
                                sum += px[ic] * wt[((size_t)ky * KW + kx) * OC + oc];
                            } else {
                                const float *pw = wt + (((size_t)oc * KH + ky) * KW + kx) * C;
                                for (int ic = 0; ic < C; ic++) sum += px[ic] * pw[ic];
                            }
                        }
                    }
                    out[(((size_t)b * OH + oy) * OW + ox) * OC + oc] = ti_act((float)sum, op->activation);
                }
}

static void ti_avgpool(ti_run *r, const cnk_tfl_op *op, float *out)
{
    const cnk_tfl_tensor *in = ti_t(r, op->inputs[0]), *o = ti_t(r, op->outputs[0]);
    const float *x = r->values[op->inputs[0]];
    int H = in->shape[1], W = in->shape[2], C = in->shape[3], OH = o->shape[1], OW = o->shape[2];
    int pt = ti_pad_before(op->padding, H, OH, op->stride_h, op->filter_h, 1);
    int pl = ti_pad_before(op->padding, W, OW, op->stride_w, op->filter_w, 1);
    for (int b = 0; b < in->shape[0]; b++)
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++)
                for (int c = 0; c < C; c++) {
                    double sum = 0;
                    int n = 0; /* TFLite averages over the pixels inside the image only */
                    for (int ky = 0; ky < op->filter_h; ky++)
                        for (int kx = 0; kx < op->filter_w; kx++) {
                            int iy = oy * op->stride_h - pt + ky, ix = ox * op->stride_w - pl + kx;
                            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                            sum += x[(((size_t)b * H + iy) * W + ix) * C + c];
                            n++;
                        }
                    out[(((size_t)b * OH + oy) * OW + ox) * C + c] = ti_act((float)(sum / (n ? n : 1)), op->activation);
                }
}

static void ti_fully_connected(ti_run *r, const cnk_tfl_op *op, float *out)
{
    const cnk_tfl_tensor *in = ti_t(r, op->inputs[0]), *w = ti_t(r, op->inputs[1]);
    const float *x = r->values[op->inputs[0]], *wt = r->values[op->inputs[1]];
    const float *bias = op->n_inputs > 2 && op->inputs[2] >= 0 ? r->values[op->inputs[2]] : NULL;
    size_t units = (size_t)w->shape[0], depth = (size_t)w->shape[1], rows = in->count / depth;
    for (size_t b = 0; b < rows; b++)
        for (size_t u = 0; u < units; u++) {
            double sum = bias ? bias[u] : 0;
            for (size_t k = 0; k < depth; k++) sum += x[b * depth + k] * wt[u * depth + k];
            out[b * units + u] = ti_act((float)sum, op->activation);
        }
}

/* MEAN over the spatial axes 1 and 2 of an NHWC tensor (what these networks use). */
static int ti_mean(ti_run *r, const cnk_tfl_op *op, float *out)
{
    const cnk_tfl_tensor *in = ti_t(r, op->inputs[0]), *axes = ti_t(r, op->inputs[1]);
    if (in->ndim != 4 || axes->count != 2 || axes->data[0] != 1 || axes->data[1] != 2) return -1;
    const float *x = r->values[op->inputs[0]];
    int H = in->shape[1], W = in->shape[2], C = in->shape[3];
    for (int b = 0; b < in->shape[0]; b++)
        for (int c = 0; c < C; c++) {
            double sum = 0;
            for (int i = 0; i < H * W; i++) sum += x[((size_t)b * H * W + i) * C + c];
            out[(size_t)b * C + c] = (float)(sum / (H * W));
        }
    return 0;
}

static void ti_pad(ti_run *r, const cnk_tfl_op *op, float *out)
{
    const cnk_tfl_tensor *in = ti_t(r, op->inputs[0]), *o = ti_t(r, op->outputs[0]);
    const float *pads = r->values[op->inputs[1]], *x = r->values[op->inputs[0]];
    memset(out, 0, o->count * sizeof *out);
    int nd = in->ndim;
    for (size_t i = 0; i < in->count; i++) {
        size_t rest = i, dst = 0, stride = 1;
        for (int d = nd - 1; d >= 0; d--) {
            size_t coord = rest % (size_t)in->shape[d];
            rest /= (size_t)in->shape[d];
            dst += (coord + (size_t)pads[2 * d]) * stride;
            stride *= (size_t)o->shape[d];
        }
        out[dst] = x[i];
    }
}

static void ti_softmax(const float *x, float *out, size_t rows, size_t n, float beta)
{
    for (size_t b = 0; b < rows; b++) {
        const float *v = x + b * n;
        float mx = v[0];
        for (size_t i = 1; i < n; i++) mx = v[i] > mx ? v[i] : mx;
        double sum = 0;
        for (size_t i = 0; i < n; i++) sum += exp((double)beta * (v[i] - mx));
        for (size_t i = 0; i < n; i++) out[b * n + i] = (float)(exp((double)beta * (v[i] - mx)) / sum);
    }
}

/* YAMNet's waveform front end uses a few more ops; their codes from schema.fbs. */
enum { TI_GATHER = 36, TI_STRIDED_SLICE = 45, TI_SLICE = 65, TI_LOG = 73, TI_SQRT = 75 };

/* out[i, ...] = params[indices[i], ...] along axis 0 (what YAMNet's framing gathers use). */
static int ti_gather(ti_run *r, const cnk_tfl_op *op, float *out)
{
    const cnk_tfl_tensor *params = ti_t(r, op->inputs[0]), *idx = ti_t(r, op->inputs[1]);
    const float *x = r->values[op->inputs[0]], *indices = r->values[op->inputs[1]];
    size_t inner = params->count / (size_t)params->shape[0];
    if (ti_t(r, op->outputs[0])->count != idx->count * inner) return -1;
    for (size_t i = 0; i < idx->count; i++) {
        int row = (int)indices[i];
        if (row < 0 || row >= params->shape[0]) return -1;
        memcpy(out + i * inner, x + (size_t)row * inner, inner * sizeof *out);
    }
    return 0;
}

/* SLICE (begin, size) and STRIDED_SLICE (begin, end, strides) without masks: in = begin + out * stride. */
static int ti_slice(ti_run *r, const cnk_tfl_op *op, float *out, int strided)
{
    const cnk_tfl_tensor *in = ti_t(r, op->inputs[0]), *o = ti_t(r, op->outputs[0]);
    const float *x = r->values[op->inputs[0]], *begin = r->values[op->inputs[1]];
    const float *strides = strided ? r->values[op->inputs[3]] : NULL;
    if (o->ndim != in->ndim) return -1;
    for (size_t i = 0; i < o->count; i++) {
        size_t rest = i, src = 0, stride = 1;
        for (int d = in->ndim - 1; d >= 0; d--) {
            size_t coord = rest % (size_t)o->shape[d];
            rest /= (size_t)o->shape[d];
            size_t at = (size_t)begin[d] + coord * (strides ? (size_t)strides[d] : 1);
            if (at >= (size_t)in->shape[d]) return -1;
            src += at * stride;
            stride *= (size_t)in->shape[d];
        }
        out[i] = x[src];
    }
    return 0;
}

/* Runs one op; returns -1 for an op this interpreter does not know. */
static int ti_op(ti_run *r, const cnk_tfl_op *op, float *out)
{
    const cnk_tfl_tensor *o = ti_t(r, op->outputs[0]);
    const float *x = r->values[op->inputs[0]];
    switch (op->code) {
    case CNK_TFL_CONV_2D: ti_conv(r, op, out, 0); return 0;
    case CNK_TFL_DEPTHWISE_CONV_2D: ti_conv(r, op, out, 1); return 0;
    case CNK_TFL_AVERAGE_POOL_2D: ti_avgpool(r, op, out); return 0;
    case CNK_TFL_FULLY_CONNECTED: ti_fully_connected(r, op, out); return 0;
    case CNK_TFL_MEAN: return ti_mean(r, op, out);
    case CNK_TFL_PAD: ti_pad(r, op, out); return 0;
    case CNK_TFL_ADD: {
        const float *y = r->values[op->inputs[1]];
        if (ti_t(r, op->inputs[1])->count != o->count) return -1;
        for (size_t i = 0; i < o->count; i++) out[i] = ti_act(x[i] + y[i], op->activation);
        return 0;
    }
    case CNK_TFL_RESHAPE: case CNK_TFL_SQUEEZE: case CNK_TFL_QUANTIZE: case CNK_TFL_DEQUANTIZE:
        memcpy(out, x, o->count * sizeof *out);
        return 0;
    case CNK_TFL_MUL: { /* element-wise, the second operand repeating when it is smaller ([1, N] on [M, N]) */
        const cnk_tfl_tensor *b = ti_t(r, op->inputs[1]);
        const float *y = r->values[op->inputs[1]];
        if (b->count == 0 || o->count % b->count != 0) return -1;
        for (size_t i = 0; i < o->count; i++) out[i] = ti_act(x[i] * y[i % b->count], op->activation);
        return 0;
    }
    case TI_GATHER: return ti_gather(r, op, out);
    case TI_SLICE: return ti_slice(r, op, out, 0);
    case TI_STRIDED_SLICE: return ti_slice(r, op, out, 1);
    case TI_SQRT:
        for (size_t i = 0; i < o->count; i++) out[i] = sqrtf(x[i]);
        return 0;
    case TI_LOG:
        for (size_t i = 0; i < o->count; i++) out[i] = logf(x[i]);
        return 0;
    case CNK_TFL_LOGISTIC:
        for (size_t i = 0; i < o->count; i++) out[i] = 1.0f / (1.0f + expf(-x[i]));
        return 0;
    case CNK_TFL_SOFTMAX: {
        size_t n = (size_t)o->shape[o->ndim - 1];
        ti_softmax(x, out, o->count / n, n, op->beta);
        return 0;
    }
    default:
        return -1;
    }
}

static void ti_release(ti_run *r)
{
    if (r->values)
        for (int i = 0; i < r->g->n_tensors; i++)
            if (r->owned[i]) free(r->values[i]);
    free(r->values);
    free(r->owned);
}

/* Runs ops [first, last) with `input` as the value of tensor input_tensor. Returns 0, or -1 if an op is
 * unknown or an allocation fails. Afterwards ti_value() reads any tensor. */
static int ti_run_graph(ti_run *r, const cnk_tfl_graph *g, int input_tensor, const float *input, int first,
                        int last)
{
    r->g = g;
    r->values = calloc((size_t)g->n_tensors, sizeof *r->values);
    r->owned = calloc((size_t)g->n_tensors, sizeof *r->owned);
    if (!r->values || !r->owned) return -1;
    for (int i = 0; i < g->n_tensors; i++) r->values[i] = g->tensors[i].data;
    r->values[input_tensor] = (float *)input;
    for (int i = first; i < last; i++) {
        const cnk_tfl_op *op = &g->ops[i];
        int t = op->outputs[0];
        float *out = malloc((g->tensors[t].count ? g->tensors[t].count : 1) * sizeof *out);
        if (!out) return -1;
        r->values[t] = out;
        r->owned[t] = 1;
        if (ti_op(r, op, out) != 0) return -1;
    }
    return 0;
}

#endif
