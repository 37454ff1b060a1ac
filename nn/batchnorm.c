#include "nn/batchnorm.h"

#include <math.h>
#include <stddef.h>

/* Mean and biased variance of one channel over the batch in one pass: sums of x - shift and its square, per
 * plane in float, across planes in double. shift is the mean of the first sample's plane (1/batch of an extra
 * pass), close to the batch mean in units of the spread, so sum(d^2) - sum(d)^2 / n cancels little even for a
 * channel whose values sit far from zero. */
static void channel_stats(const float *in, int c, const cnk_bn_shape *s, double *mean, double *var)
{
    size_t plane = (size_t)s->spatial, count = (size_t)s->batch * plane;
    const float *first = in + (size_t)c * plane;
    float first_sum = 0.0f;
#pragma omp simd reduction(+ : first_sum)
    for (size_t p = 0; p < plane; p++) first_sum += first[p];
    float shift = first_sum / (float)plane;
    double sum = 0.0, sq = 0.0;
    for (int n = 0; n < s->batch; n++) {
        const float *x = in + ((size_t)n * s->channels + c) * plane;
        float part = 0.0f, part_sq = 0.0f;
#pragma omp simd reduction(+ : part, part_sq)
        for (size_t p = 0; p < plane; p++) {
            float d = x[p] - shift;
            part += d;
            part_sq += d * d;
        }
        sum += part;
        sq += part_sq;
    }
    double m = sum / (double)count, v = sq / (double)count - m * m;
    *mean = m + shift;
    *var = v > 0.0 ? v : 0.0;
}

/* The affine map of normalisation, one expression for forward and backward so that the backward's
 * recomputed clip mask is the forward's bit for bit. */
static inline float bn_affine(float x, float scale, float shift) { return x * scale + shift; }

static void normalise_channel(float *out, const float *in, int c, float mean, float rstd, float gamma, float beta,
                              const cnk_bn_shape *s)
{
    float scale = gamma * rstd, shift = beta - mean * scale, lo = s->clip_min, hi = s->clip_max;
    for (int n = 0; n < s->batch; n++) {
        size_t base = ((size_t)n * s->channels + c) * (size_t)s->spatial;
        for (int p = 0; p < s->spatial; p++) {
            float y = bn_affine(in[base + p], scale, shift);
            y = y < lo ? lo : y;
            out[base + p] = y > hi ? hi : y;
        }
    }
}

void cnk_bn_forward_train(float *out, const float *in, const float *gamma, const float *beta, float *running_mean,
                          float *running_var, float *save_mean, float *save_rstd, const cnk_bn_shape *s)
{
    size_t count = (size_t)s->batch * s->spatial;
#pragma omp parallel for num_threads(s->threads) schedule(static) if (count * s->channels > 32768)
    for (int c = 0; c < s->channels; c++) {
        double mean, var;
        channel_stats(in, c, s, &mean, &var);
        float rstd = (float)(1.0 / sqrt(var + s->eps));
        save_mean[c] = (float)mean;
        save_rstd[c] = rstd;
        double unbiased = count > 1 ? var * (double)count / (double)(count - 1) : var;
        running_mean[c] = (1.0f - s->momentum) * running_mean[c] + s->momentum * (float)mean;
        running_var[c] = (1.0f - s->momentum) * running_var[c] + s->momentum * (float)unbiased;
        normalise_channel(out, in, c, (float)mean, rstd, gamma[c], beta[c], s);
    }
}

void cnk_bn_forward_infer(float *out, const float *in, const float *gamma, const float *beta,
                          const float *running_mean, const float *running_var, float *save_mean, float *save_rstd,
                          const cnk_bn_shape *s)
{
    size_t count = (size_t)s->batch * s->spatial;
#pragma omp parallel for num_threads(s->threads) schedule(static) if (count * s->channels > 32768)
    for (int c = 0; c < s->channels; c++) {
        float rstd = (float)(1.0 / sqrt((double)running_var[c] + s->eps));
        if (save_mean) save_mean[c] = running_mean[c];
        if (save_rstd) save_rstd[c] = rstd;
        normalise_channel(out, in, c, running_mean[c], rstd, gamma[c], beta[c], s);
    }
}

/* With batch statistics: dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = dy * gamma. */
/* The per-channel constants of one backward. dy is dout masked to zero where the forward's output sat on a clip
 * bound (the fused relu/relu6 derivative); the mask is recomputed from in (scale, shift: the forward's affine
 * map), which saves reading the forward's output. */
typedef struct channel_grad {
    float mean, rstd, scale, shift, lo, hi;
    int clipped;
} channel_grad;

static inline float masked_dy(const channel_grad *k, float dout, float x)
{
    float y = bn_affine(x, k->scale, k->shift);
    return y > k->lo && y < k->hi ? dout : 0.0f;
}

/* Sums of dy and dy * xhat over one (sample, channel) plane. */
static void plane_sums(const float *dout, const float *in, size_t plane, const channel_grad *k, float *sum_dy,
                       float *sum_dy_xhat)
{
    float a = 0.0f, b = 0.0f, mean = k->mean, rstd = k->rstd;
    if (k->clipped) {
#pragma omp simd reduction(+ : a, b)
        for (size_t p = 0; p < plane; p++) {
            float dy = masked_dy(k, dout[p], in[p]);
            a += dy;
            b += dy * (in[p] - mean) * rstd;
        }
    } else {
#pragma omp simd reduction(+ : a, b)
        for (size_t p = 0; p < plane; p++) {
            a += dout[p];
            b += dout[p] * (in[p] - mean) * rstd;
        }
    }
    *sum_dy = a;
    *sum_dy_xhat = b;
}

/* dinp (+)= g * (dy - mean_dy - xhat * mean_dy_xhat) over one plane. */
static void plane_dinp(float *dinp, const float *dout, const float *in, size_t plane, const channel_grad *k, float g,
                       float mean_dy, float mean_dy_xhat, int overwrite)
{
    float mean = k->mean, rstd = k->rstd;
    if (overwrite && k->clipped) {
#pragma omp simd
        for (size_t p = 0; p < plane; p++)
            dinp[p] = g * (masked_dy(k, dout[p], in[p]) - mean_dy - (in[p] - mean) * rstd * mean_dy_xhat);
    } else if (overwrite) {
#pragma omp simd
        for (size_t p = 0; p < plane; p++) dinp[p] = g * (dout[p] - mean_dy - (in[p] - mean) * rstd * mean_dy_xhat);
    } else if (k->clipped) {
#pragma omp simd
        for (size_t p = 0; p < plane; p++)
            dinp[p] += g * (masked_dy(k, dout[p], in[p]) - mean_dy - (in[p] - mean) * rstd * mean_dy_xhat);
    } else {
#pragma omp simd
        for (size_t p = 0; p < plane; p++) dinp[p] += g * (dout[p] - mean_dy - (in[p] - mean) * rstd * mean_dy_xhat);
    }
}

void cnk_bn_backward(float *dinp, float *dgamma, float *dbeta, const float *dout, const float *in, const float *gamma,
                     const float *beta, const float *save_mean, const float *save_rstd, int batch_stats, int overwrite,
                     const cnk_bn_shape *s)
{
    size_t plane = (size_t)s->spatial, count = (size_t)s->batch * plane;
    int clipped = s->clip_min > -INFINITY || s->clip_max < INFINITY;
#pragma omp parallel for num_threads(s->threads) schedule(static) if (count * s->channels > 32768)
    for (int c = 0; c < s->channels; c++) {
        float scale = gamma[c] * save_rstd[c];
        channel_grad k = {save_mean[c], save_rstd[c], scale, beta[c] - save_mean[c] * scale, s->clip_min, s->clip_max,
                          clipped};
        double sum_dy = 0.0, sum_dy_xhat = 0.0;
        for (int n = 0; n < s->batch; n++) {
            size_t base = ((size_t)n * s->channels + c) * plane;
            float a, b;
            plane_sums(dout + base, in + base, plane, &k, &a, &b);
            sum_dy += a;
            sum_dy_xhat += b;
        }
        if (dgamma) dgamma[c] += (float)sum_dy_xhat;
        if (dbeta) dbeta[c] += (float)sum_dy;
        if (!dinp) continue;
        float g = gamma[c] * k.rstd;
        float mean_dy = batch_stats ? (float)(sum_dy / (double)count) : 0.0f;
        float mean_dy_xhat = batch_stats ? (float)(sum_dy_xhat / (double)count) : 0.0f;
        for (int n = 0; n < s->batch; n++) {
            size_t base = ((size_t)n * s->channels + c) * plane;
            plane_dinp(dinp + base, dout + base, in + base, plane, &k, g, mean_dy, mean_dy_xhat, overwrite);
        }
    }
}
