#include "nn/pool.h"

#include <float.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The window's rows [*h0, *h1) and columns [*w0, *w1) clipped to the image. */
static void window_bounds(const cnk_pool_shape *s, int oh, int ow, int *h0, int *h1, int *w0, int *w1)
{
    int hs = oh * s->stride_h - s->pad_top, ws = ow * s->stride_w - s->pad_left;
    *h0 = hs < 0 ? 0 : hs;
    *w0 = ws < 0 ? 0 : ws;
    *h1 = hs + s->kernel_h > s->in_h ? s->in_h : hs + s->kernel_h;
    *w1 = ws + s->kernel_w > s->in_w ? s->in_w : ws + s->kernel_w;
}

/* Index (in the plane) of the window's first maximum; -1 if the window lies outside the image. */
static long window_argmax(const float *plane, const cnk_pool_shape *s, int oh, int ow)
{
    int h0, h1, w0, w1;
    window_bounds(s, oh, ow, &h0, &h1, &w0, &w1);
    long best = -1;
    float best_value = -FLT_MAX;
    for (int h = h0; h < h1; h++)
        for (int w = w0; w < w1; w++) {
            long i = (long)h * s->in_w + w;
            if (best < 0 || plane[i] > best_value) {
                best = i;
                best_value = plane[i];
            }
        }
    return best;
}

static float fmaxf_branchless(float a, float b) { return a > b ? a : b; }

static int is_simple2(const cnk_pool_shape *s)
{
    return s->kernel_h == 2 && s->kernel_w == 2 && s->stride_h == 2 && s->stride_w == 2 && s->pad_top == 0 &&
           s->pad_left == 0 && s->out_h * 2 <= s->in_h && s->out_w * 2 <= s->in_w;
}

int cnk_maxpool_keeps_argmax(const cnk_pool_shape *s) { return is_simple2(s); }

/* 2x2 stride 2 over one plane; argmax (may be NULL) gets the quad cell (0..3, row-major) of the first maximum,
 * the cell window_argmax would pick. */
static void maxpool2_forward_plane(float *dst, unsigned char *argmax, const float *plane, const cnk_pool_shape *s)
{
    for (int oh = 0; oh < s->out_h; oh++) {
        const float *r0 = plane + (size_t)(2 * oh) * s->in_w, *r1 = r0 + s->in_w;
        float *d = dst + (size_t)oh * s->out_w;
        if (!argmax) {
            for (int ow = 0; ow < s->out_w; ow++) {
                float a = r0[2 * ow] > r0[2 * ow + 1] ? r0[2 * ow] : r0[2 * ow + 1];
                float b = r1[2 * ow] > r1[2 * ow + 1] ? r1[2 * ow] : r1[2 * ow + 1];
                d[ow] = a > b ? a : b;
            }
            continue;
        }
        unsigned char *idx = argmax + (size_t)oh * s->out_w;
#pragma omp simd
        for (int ow = 0; ow < s->out_w; ow++) {
            float a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], e = r1[2 * ow + 1];
            float m = fmaxf_branchless(fmaxf_branchless(a, b), fmaxf_branchless(c, e));
            int not_a = a != m, not_b = b != m, not_c = c != m;
            d[ow] = m;
            idx[ow] = (unsigned char)(not_a * (1 + not_b * (1 + not_c)));
        }
    }
}

void cnk_maxpool_forward(float *out, unsigned char *argmax, const float *in, const cnk_pool_shape *s)
{
    size_t in_plane = (size_t)s->in_h * s->in_w, out_plane = (size_t)s->out_h * s->out_w;
    int tasks = s->batch * s->channels;
    /* The common 2x2 stride-2 unpadded case gets a branch-free loop. */
    int simple2 = is_simple2(s);
#pragma omp parallel for num_threads(s->threads) schedule(static) if (tasks * in_plane > 65536)
    for (int t = 0; t < tasks; t++) {
        const float *plane = in + (size_t)t * in_plane;
        float *dst = out + (size_t)t * out_plane;
        if (simple2) {
            maxpool2_forward_plane(dst, argmax ? argmax + (size_t)t * out_plane : NULL, plane, s);
            continue;
        }
        for (int oh = 0; oh < s->out_h; oh++)
            for (int ow = 0; ow < s->out_w; ow++) {
                long i = window_argmax(plane, s, oh, ow);
                dst[(size_t)oh * s->out_w + ow] = i >= 0 ? plane[i] : 0.0f;
            }
    }
}

/* v if cond else +0, by masking the bits: no branch on unpredictable data */
static inline float keep_if(float v, int cond)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    bits &= (uint32_t)0 - (uint32_t)(cond != 0);
    memcpy(&v, &bits, sizeof v);
    return v;
}

/* 2x2 stride 2 with the forward's argmax: the input itself is not read again. */
static void maxpool2_backward_argmax_plane(float *dst, const float *grad, const unsigned char *argmax,
                                           const cnk_pool_shape *s, int overwrite)
{
    for (int oh = 0; oh < s->out_h; oh++) {
        float *d0 = dst + (size_t)(2 * oh) * s->in_w, *d1 = d0 + s->in_w;
        const float *g = grad + (size_t)oh * s->out_w;
        const unsigned char *idx = argmax + (size_t)oh * s->out_w;
        if (overwrite) {
            for (int ow = 0; ow < s->out_w; ow++) {
                float gv = g[ow];
                int k = idx[ow];
                d0[2 * ow] = keep_if(gv, k == 0);
                d0[2 * ow + 1] = keep_if(gv, k == 1);
                d1[2 * ow] = keep_if(gv, k == 2);
                d1[2 * ow + 1] = keep_if(gv, k == 3);
            }
        } else {
            for (int ow = 0; ow < s->out_w; ow++) {
                int k = idx[ow];
                (k < 2 ? d0 : d1)[2 * ow + (k & 1)] += g[ow];
            }
        }
    }
}

/* 2x2 stride 2: the gradient goes to the first maximum of each quad, in row-major order as window_argmax;
 * branch-free (the argmax of random data is unpredictable). overwrite = store instead of add, legal when the
 * quads tile the whole plane. */
static void maxpool2_backward_plane(float *dst, const float *grad, const float *plane, const cnk_pool_shape *s,
                                    int overwrite)
{
    for (int oh = 0; oh < s->out_h; oh++) {
        const float *r0 = plane + (size_t)(2 * oh) * s->in_w, *r1 = r0 + s->in_w;
        float *d0 = dst + (size_t)(2 * oh) * s->in_w, *d1 = d0 + s->in_w;
        const float *g = grad + (size_t)oh * s->out_w;
        for (int ow = 0; ow < s->out_w; ow++) {
            float a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];
            float m = fmaxf_branchless(fmaxf_branchless(a, b), fmaxf_branchless(c, d)), gv = g[ow];
            int ta = a == m, tb = !ta && b == m, tc = !ta && !tb && c == m, td = !ta && !tb && !tc;
            float ga = ta ? gv : 0.0f, gb = tb ? gv : 0.0f, gc = tc ? gv : 0.0f, gd = td ? gv : 0.0f;
            if (overwrite) {
                d0[2 * ow] = ga, d0[2 * ow + 1] = gb, d1[2 * ow] = gc, d1[2 * ow + 1] = gd;
            } else {
                d0[2 * ow] += ga, d0[2 * ow + 1] += gb, d1[2 * ow] += gc, d1[2 * ow + 1] += gd;
            }
        }
    }
}

int cnk_maxpool_backward_overwrites(const cnk_pool_shape *s)
{
    return is_simple2(s) && s->in_h == 2 * s->out_h && s->in_w == 2 * s->out_w;
}

void cnk_maxpool_backward(float *dinp, const float *dout, const float *in, const unsigned char *argmax,
                          const cnk_pool_shape *s, int overwrite)
{
    size_t in_plane = (size_t)s->in_h * s->in_w, out_plane = (size_t)s->out_h * s->out_w;
    int tasks = s->batch * s->channels;
    if (is_simple2(s)) {
        int store = overwrite && cnk_maxpool_backward_overwrites(s);
#pragma omp parallel for num_threads(s->threads) schedule(static) if (tasks * in_plane > 65536)
        for (int t = 0; t < tasks; t++) {
            if (argmax)
                maxpool2_backward_argmax_plane(dinp + (size_t)t * in_plane, dout + (size_t)t * out_plane,
                                               argmax + (size_t)t * out_plane, s, store);
            else
                maxpool2_backward_plane(dinp + (size_t)t * in_plane, dout + (size_t)t * out_plane,
                                        in + (size_t)t * in_plane, s, store);
        }
        return;
    }
#pragma omp parallel for num_threads(s->threads) schedule(static) if (tasks * in_plane > 65536)
    for (int t = 0; t < tasks; t++) {
        const float *plane = in + (size_t)t * in_plane;
        const float *grad = dout + (size_t)t * out_plane;
        float *dst = dinp + (size_t)t * in_plane;
        for (int oh = 0; oh < s->out_h; oh++)
            for (int ow = 0; ow < s->out_w; ow++) {
                long i = window_argmax(plane, s, oh, ow);
                if (i >= 0) dst[i] += grad[(size_t)oh * s->out_w + ow];
            }
    }
}

void cnk_avgpool_forward(float *out, const float *in, const cnk_pool_shape *s)
{
    size_t in_plane = (size_t)s->in_h * s->in_w, out_plane = (size_t)s->out_h * s->out_w;
    int tasks = s->batch * s->channels;
#pragma omp parallel for num_threads(s->threads) schedule(static) if (tasks * in_plane > 65536)
    for (int t = 0; t < tasks; t++) {
        const float *plane = in + (size_t)t * in_plane;
        for (int oh = 0; oh < s->out_h; oh++)
            for (int ow = 0; ow < s->out_w; ow++) {
                int h0, h1, w0, w1;
                window_bounds(s, oh, ow, &h0, &h1, &w0, &w1);
                float sum = 0.0f;
                for (int h = h0; h < h1; h++)
                    for (int w = w0; w < w1; w++) sum += plane[(size_t)h * s->in_w + w];
                int count = (h1 - h0) * (w1 - w0);
                out[(size_t)t * out_plane + (size_t)oh * s->out_w + ow] = count > 0 ? sum / (float)count : 0.0f;
            }
    }
}

void cnk_avgpool_backward(float *dinp, const float *dout, const cnk_pool_shape *s)
{
    size_t in_plane = (size_t)s->in_h * s->in_w, out_plane = (size_t)s->out_h * s->out_w;
    int tasks = s->batch * s->channels;
#pragma omp parallel for num_threads(s->threads) schedule(static) if (tasks * in_plane > 65536)
    for (int t = 0; t < tasks; t++) {
        float *plane = dinp + (size_t)t * in_plane;
        for (int oh = 0; oh < s->out_h; oh++)
            for (int ow = 0; ow < s->out_w; ow++) {
                int h0, h1, w0, w1;
                window_bounds(s, oh, ow, &h0, &h1, &w0, &w1);
                int count = (h1 - h0) * (w1 - w0);
                if (count <= 0) continue;
                float g = dout[(size_t)t * out_plane + (size_t)oh * s->out_w + ow] / (float)count;
                for (int h = h0; h < h1; h++)
                    for (int w = w0; w < w1; w++) plane[(size_t)h * s->in_w + w] += g;
            }
    }
}

void cnk_global_avgpool_forward(float *out, const float *in, int batch, int channels, int spatial, int threads)
{
    int tasks = batch * channels;
#pragma omp parallel for num_threads(threads) schedule(static) if ((size_t)tasks * spatial > 65536)
    for (int t = 0; t < tasks; t++) {
        const float *plane = in + (size_t)t * spatial;
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int p = 0; p < spatial; p++) sum += plane[p];
        out[t] = sum / (float)spatial;
    }
}

void cnk_global_avgpool_backward(float *dinp, const float *dout, int batch, int channels, int spatial,
                                 int threads)
{
    int tasks = batch * channels;
#pragma omp parallel for num_threads(threads) schedule(static) if ((size_t)tasks * spatial > 65536)
    for (int t = 0; t < tasks; t++) {
        float *plane = dinp + (size_t)t * spatial;
        float g = dout[t] / (float)spatial;
        for (int p = 0; p < spatial; p++) plane[p] += g;
    }
}
