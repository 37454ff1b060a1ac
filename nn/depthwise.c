#include "nn/depthwise.h"

#include <string.h>

/* Output columns [*lo, *hi) whose tap at input column iw0 + ow*stride falls inside [0, in_w). */
static void valid_columns(int iw0, int stride, int in_w, int out_w, int *lo, int *hi)
{
    int a = iw0 >= 0 ? 0 : (-iw0 + stride - 1) / stride;
    int b = iw0 > in_w - 1 ? 0 : (in_w - 1 - iw0) / stride + 1;
    if (b > out_w) b = out_w;
    *lo = a;
    *hi = b > a ? b : a;
}

static void forward_plane(float *out, const float *in, const float *w, float bias, const cnk_conv2d_shape *s)
{
    for (int oh = 0; oh < s->out_h; oh++) {
        float *row = out + (size_t)oh * s->out_w;
        for (int ow = 0; ow < s->out_w; ow++) row[ow] = bias;
        for (int ki = 0; ki < s->kernel_h; ki++) {
            int ih = oh * s->stride_h - s->pad_top + ki * s->dilation_h;
            if (ih < 0 || ih >= s->in_h) continue;
            const float *src = in + (size_t)ih * s->in_w;
            for (int kj = 0; kj < s->kernel_w; kj++) {
                float wk = w[ki * s->kernel_w + kj];
                int iw0 = -s->pad_left + kj * s->dilation_w, lo, hi;
                valid_columns(iw0, s->stride_w, s->in_w, s->out_w, &lo, &hi);
                if (s->stride_w == 1) {
                    const float *shifted = src + iw0;
                    for (int ow = lo; ow < hi; ow++) row[ow] += wk * shifted[ow];
                } else {
                    for (int ow = lo; ow < hi; ow++) row[ow] += wk * src[iw0 + ow * s->stride_w];
                }
            }
        }
    }
}

/* 3x3, dilation 1 (every MobileNet depthwise): the nine taps are summed in registers, and the interior columns
 * (all taps inside the image) run without bounds checks so the compiler vectorises them. */
static float tap3(const float *row, int iw, int in_w) { return row && iw >= 0 && iw < in_w ? row[iw] : 0.0f; }

static void forward_plane_3x3(float *out, const float *in, const float *w, float bias, const cnk_conv2d_shape *s)
{
    int sw = s->stride_w, in_w = s->in_w;
    int lo, hi; /* output columns whose taps iw0 .. iw0+2 are all inside */
    valid_columns(-s->pad_left, sw, in_w - 2, s->out_w, &lo, &hi);
    for (int oh = 0; oh < s->out_h; oh++) {
        int ih = oh * s->stride_h - s->pad_top;
        const float *r[3];
        for (int k = 0; k < 3; k++)
            r[k] = ih + k >= 0 && ih + k < s->in_h ? in + (size_t)(ih + k) * in_w : NULL;
        float *row = out + (size_t)oh * s->out_w;
        for (int ow = 0; ow < s->out_w; ow++) {
            if (ow == lo && hi > lo && r[0] && r[1] && r[2]) {
                const float *a = r[0] - s->pad_left, *b = r[1] - s->pad_left, *c = r[2] - s->pad_left;
                for (int x = lo; x < hi; x++) {
                    int i = x * sw;
                    row[x] = bias + w[0] * a[i] + w[1] * a[i + 1] + w[2] * a[i + 2] + w[3] * b[i] + w[4] * b[i + 1] +
                             w[5] * b[i + 2] + w[6] * c[i] + w[7] * c[i + 1] + w[8] * c[i + 2];
                }
                ow = hi - 1;
                continue;
            }
            int iw = ow * sw - s->pad_left;
            float sum = bias;
            for (int k = 0; k < 3; k++)
                sum += w[3 * k] * tap3(r[k], iw, in_w) + w[3 * k + 1] * tap3(r[k], iw + 1, in_w) +
                       w[3 * k + 2] * tap3(r[k], iw + 2, in_w);
            row[ow] = sum;
        }
    }
}

void cnk_depthwise_forward(float *out, const float *in, const float *weight, const float *bias,
                           const cnk_conv2d_shape *s)
{
    size_t in_plane = (size_t)s->in_h * s->in_w, out_plane = (size_t)s->out_h * s->out_w;
    int khw = s->kernel_h * s->kernel_w, tasks = s->batch * s->in_c;
    int fast3x3 = s->kernel_h == 3 && s->kernel_w == 3 && s->dilation_h == 1 && s->dilation_w == 1 && s->in_w >= 3;
#pragma omp parallel for num_threads(s->threads) schedule(static) if (tasks * out_plane * khw > 32768)
    for (int t = 0; t < tasks; t++) {
        int c = t % s->in_c;
        if (fast3x3)
            forward_plane_3x3(out + (size_t)t * out_plane, in + (size_t)t * in_plane, weight + (size_t)c * khw,
                              bias ? bias[c] : 0.0f, s);
        else
            forward_plane(out + (size_t)t * out_plane, in + (size_t)t * in_plane, weight + (size_t)c * khw,
                          bias ? bias[c] : 0.0f, s);
    }
}

/* One (sample, channel) plane: dinp += w * dout shifted back; dw += dout * in. */
static void backward_plane(float *dinp, float *dw, const float *dout, const float *in, const float *w,
                           const cnk_conv2d_shape *s)
{
    for (int ki = 0; ki < s->kernel_h; ki++) {
        for (int kj = 0; kj < s->kernel_w; kj++) {
            int iw0 = -s->pad_left + kj * s->dilation_w, lo, hi;
            valid_columns(iw0, s->stride_w, s->in_w, s->out_w, &lo, &hi);
            float wk = w[ki * s->kernel_w + kj], dwk = 0.0f;
            for (int oh = 0; oh < s->out_h; oh++) {
                int ih = oh * s->stride_h - s->pad_top + ki * s->dilation_h;
                if (ih < 0 || ih >= s->in_h) continue;
                const float *drow = dout + (size_t)oh * s->out_w;
                size_t base = (size_t)ih * s->in_w;
                if (s->stride_w == 1) {
                    const float *src = in + base + iw0;
#pragma omp simd reduction(+ : dwk)
                    for (int ow = lo; ow < hi; ow++) dwk += drow[ow] * src[ow];
                    if (dinp) {
                        float *dst = dinp + base + iw0;
                        for (int ow = lo; ow < hi; ow++) dst[ow] += wk * drow[ow];
                    }
                } else {
                    for (int ow = lo; ow < hi; ow++) {
                        size_t i = base + (size_t)(iw0 + ow * s->stride_w);
                        dwk += drow[ow] * in[i];
                        if (dinp) dinp[i] += wk * drow[ow];
                    }
                }
            }
            if (dw) dw[ki * s->kernel_w + kj] += dwk;
        }
    }
}

void cnk_depthwise_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *in,
                            const float *weight, const cnk_conv2d_shape *s)
{
    size_t in_plane = (size_t)s->in_h * s->in_w, out_plane = (size_t)s->out_h * s->out_w;
    int khw = s->kernel_h * s->kernel_w;
    /* Threads split channels, so each channel's weight gradient sums its samples in a fixed order. */
#pragma omp parallel for num_threads(s->threads) schedule(static) if (s->batch * s->in_c * out_plane * khw > 32768)
    for (int c = 0; c < s->in_c; c++) {
        float dw_local[64 * 64];
        float *dw = dweight ? (khw <= 64 * 64 ? dw_local : NULL) : NULL;
        if (dw) memset(dw, 0, sizeof(float) * (size_t)khw);
        double dbias_sum = 0.0;
        for (int n = 0; n < s->batch; n++) {
            size_t t = (size_t)n * s->in_c + c;
            const float *dplane = dout + t * out_plane;
            if (dbias) {
                float part = 0.0f;
#pragma omp simd reduction(+ : part)
                for (size_t p = 0; p < out_plane; p++) part += dplane[p];
                dbias_sum += part;
            }
            if (dw || dinp)
                backward_plane(dinp ? dinp + t * in_plane : NULL, dw, dplane, in + t * in_plane,
                               weight + (size_t)c * khw, s);
        }
        if (dw)
            for (int k = 0; k < khw; k++) dweight[(size_t)c * khw + k] += dw[k];
        if (dbias) dbias[c] += (float)dbias_sum;
    }
}
