#include "nn/batchnorm.h"

#include <math.h>
#include <stddef.h>

/* Mean and biased variance of one channel over the batch, in double so large maps lose nothing. */
static void channel_stats(const float *in, int c, const cnk_bn_shape *s, double *mean, double *var)
{
    size_t plane = (size_t)s->spatial, count = (size_t)s->batch * plane;
    double sum = 0.0;
    for (int n = 0; n < s->batch; n++) {
        const float *x = in + ((size_t)n * s->channels + c) * plane;
        float part = 0.0f;
#pragma omp simd reduction(+ : part)
        for (size_t p = 0; p < plane; p++) part += x[p];
        sum += part;
    }
    double m = sum / (double)count, sq = 0.0;
    for (int n = 0; n < s->batch; n++) {
        const float *x = in + ((size_t)n * s->channels + c) * plane;
        float fm = (float)m, part = 0.0f;
#pragma omp simd reduction(+ : part)
        for (size_t p = 0; p < plane; p++) part += (x[p] - fm) * (x[p] - fm);
        sq += part;
    }
    *mean = m;
    *var = sq / (double)count;
}

static void normalise_channel(float *out, const float *in, int c, float mean, float rstd, float gamma, float beta,
                              const cnk_bn_shape *s)
{
    float scale = gamma * rstd, shift = beta - mean * scale, lo = s->clip_min, hi = s->clip_max;
    for (int n = 0; n < s->batch; n++) {
        size_t base = ((size_t)n * s->channels + c) * (size_t)s->spatial;
        for (int p = 0; p < s->spatial; p++) {
            float y = in[base + p] * scale + shift;
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
/* Sums of dy and dy * xhat over one (sample, channel) plane; dy is dout masked to zero where the clamped
 * output sits on a clip bound (the fused relu/relu6 derivative). Two loops so each one vectorises. */
static void plane_sums(const float *dout, const float *in, const float *out, size_t plane, float mean, float rstd,
                       float lo, float hi, float *sum_dy, float *sum_dy_xhat)
{
    float a = 0.0f, b = 0.0f;
    if (out) {
#pragma omp simd reduction(+ : a, b)
        for (size_t p = 0; p < plane; p++) {
            float dy = out[p] > lo && out[p] < hi ? dout[p] : 0.0f;
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

/* dinp += g * (dy - mean_dy - xhat * mean_dy_xhat) over one plane, dy masked as in plane_sums. */
static void plane_dinp(float *dinp, const float *dout, const float *in, const float *out, size_t plane, float mean,
                       float rstd, float lo, float hi, float g, float mean_dy, float mean_dy_xhat, int overwrite)
{
    if (overwrite) {
#pragma omp simd
        for (size_t p = 0; p < plane; p++) {
            float dy = !out || (out[p] > lo && out[p] < hi) ? dout[p] : 0.0f;
            dinp[p] = g * (dy - mean_dy - (in[p] - mean) * rstd * mean_dy_xhat);
        }
    } else if (out) {
#pragma omp simd
        for (size_t p = 0; p < plane; p++) {
            float dy = out[p] > lo && out[p] < hi ? dout[p] : 0.0f;
            dinp[p] += g * (dy - mean_dy - (in[p] - mean) * rstd * mean_dy_xhat);
        }
    } else {
#pragma omp simd
        for (size_t p = 0; p < plane; p++) dinp[p] += g * (dout[p] - mean_dy - (in[p] - mean) * rstd * mean_dy_xhat);
    }
}

void cnk_bn_backward(float *dinp, float *dgamma, float *dbeta, const float *dout, const float *in, const float *out,
                     const float *gamma, const float *save_mean, const float *save_rstd, int batch_stats,
                     int overwrite, const cnk_bn_shape *s)
{
    size_t plane = (size_t)s->spatial, count = (size_t)s->batch * plane;
    float lo = s->clip_min, hi = s->clip_max;
#pragma omp parallel for num_threads(s->threads) schedule(static) if (count * s->channels > 32768)
    for (int c = 0; c < s->channels; c++) {
        float mean = save_mean[c], rstd = save_rstd[c];
        double sum_dy = 0.0, sum_dy_xhat = 0.0;
        for (int n = 0; n < s->batch; n++) {
            size_t base = ((size_t)n * s->channels + c) * plane;
            float a, b;
            plane_sums(dout + base, in + base, out ? out + base : NULL, plane, mean, rstd, lo, hi, &a, &b);
            sum_dy += a;
            sum_dy_xhat += b;
        }
        if (dgamma) dgamma[c] += (float)sum_dy_xhat;
        if (dbeta) dbeta[c] += (float)sum_dy;
        if (!dinp) continue;
        float g = gamma[c] * rstd;
        float mean_dy = batch_stats ? (float)(sum_dy / (double)count) : 0.0f;
        float mean_dy_xhat = batch_stats ? (float)(sum_dy_xhat / (double)count) : 0.0f;
        for (int n = 0; n < s->batch; n++) {
            size_t base = ((size_t)n * s->channels + c) * plane;
            plane_dinp(dinp + base, dout + base, in + base, out ? out + base : NULL, plane, mean, rstd, lo, hi, g,
                       mean_dy, mean_dy_xhat, overwrite);
        }
    }
}
