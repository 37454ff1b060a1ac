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
/* dout masked where the clamped output sits on a clip bound (derivative 0 there, as relu/relu6). */
static inline float masked(const float *dout, const float *out, size_t i, float lo, float hi)
{
    if (!out) return dout[i];
    return out[i] > lo && out[i] < hi ? dout[i] : 0.0f;
}

void cnk_bn_backward(float *dinp, float *dgamma, float *dbeta, const float *dout, const float *in, const float *out,
                     const float *gamma, const float *save_mean, const float *save_rstd, int batch_stats,
                     const cnk_bn_shape *s)
{
    size_t plane = (size_t)s->spatial, count = (size_t)s->batch * plane;
    float lo = s->clip_min, hi = s->clip_max;
#pragma omp parallel for num_threads(s->threads) schedule(static) if (count * s->channels > 32768)
    for (int c = 0; c < s->channels; c++) {
        float mean = save_mean[c], rstd = save_rstd[c];
        double sum_dy = 0.0, sum_dy_xhat = 0.0;
        for (int n = 0; n < s->batch; n++) {
            size_t base = ((size_t)n * s->channels + c) * plane;
            float a = 0.0f, b = 0.0f;
#pragma omp simd reduction(+ : a, b)
            for (size_t p = 0; p < plane; p++) {
                float dy = masked(dout, out, base + p, lo, hi);
                a += dy;
                b += dy * (in[base + p] - mean) * rstd;
            }
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
            for (size_t p = 0; p < plane; p++) {
                float xhat = (in[base + p] - mean) * rstd;
                dinp[base + p] += g * (masked(dout, out, base + p, lo, hi) - mean_dy - xhat * mean_dy_xhat);
            }
        }
    }
}
