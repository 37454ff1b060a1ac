#include "nn/activation.h"

#include <math.h>

static void act_elementwise(float *x, size_t n, cnk_act_kind kind, float alpha, int threads)
{
    switch (kind) {
    case CNK_ACT_LINEAR: break;
    case CNK_ACT_STEP:
#pragma omp parallel for num_threads(threads) schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) x[i] = x[i] > 0.0f ? 1.0f : 0.0f;
        break;
    case CNK_ACT_SIGMOID:
#pragma omp parallel for num_threads(threads) schedule(static) if (n > 16384)
        for (size_t i = 0; i < n; i++) x[i] = 1.0f / (1.0f + expf(-x[i]));
        break;
    case CNK_ACT_TANH:
#pragma omp parallel for num_threads(threads) schedule(static) if (n > 16384)
        for (size_t i = 0; i < n; i++) x[i] = tanhf(x[i]);
        break;
    case CNK_ACT_RELU:
#pragma omp parallel for num_threads(threads) schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
        break;
    case CNK_ACT_RELU6:
#pragma omp parallel for num_threads(threads) schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) x[i] = x[i] < 0.0f ? 0.0f : (x[i] > 6.0f ? 6.0f : x[i]);
        break;
    case CNK_ACT_LEAKY_RELU:
#pragma omp parallel for num_threads(threads) schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) x[i] = x[i] > 0.0f ? x[i] : alpha * x[i];
        break;
    case CNK_ACT_ELU:
#pragma omp parallel for num_threads(threads) schedule(static) if (n > 16384)
        for (size_t i = 0; i < n; i++) x[i] = x[i] > 0.0f ? x[i] : alpha * expm1f(x[i]);
        break;
    default: break;
    }
}

/* Softmax over channels at each (n, position): max-subtracted so large logits cannot overflow. */
static void softmax_channels(float *x, int batch, int channels, int spatial)
{
    for (int n = 0; n < batch; n++) {
        float *xn = x + (size_t)n * channels * spatial;
        for (int p = 0; p < spatial; p++) {
            float max = -INFINITY;
            for (int c = 0; c < channels; c++) max = fmaxf(max, xn[(size_t)c * spatial + p]);
            double sum = 0.0;
            for (int c = 0; c < channels; c++) {
                float e = expf(xn[(size_t)c * spatial + p] - max);
                xn[(size_t)c * spatial + p] = e;
                sum += e;
            }
            float inv = (float)(1.0 / sum);
            for (int c = 0; c < channels; c++) xn[(size_t)c * spatial + p] *= inv;
        }
    }
}

void cnk_act_forward(float *x, cnk_act_kind kind, float alpha, int batch, int channels, int spatial, int threads)
{
    if (kind == CNK_ACT_SOFTMAX) {
        softmax_channels(x, batch, channels, spatial);
        return;
    }
    act_elementwise(x, (size_t)batch * channels * spatial, kind, alpha, threads);
}

static void softmax_backward(float *dout, const float *y, int batch, int channels, int spatial)
{
    for (int n = 0; n < batch; n++) {
        float *dn = dout + (size_t)n * channels * spatial;
        const float *yn = y + (size_t)n * channels * spatial;
        for (int p = 0; p < spatial; p++) {
            double dot = 0.0;
            for (int c = 0; c < channels; c++) dot += (double)dn[(size_t)c * spatial + p] * yn[(size_t)c * spatial + p];
            for (int c = 0; c < channels; c++) {
                size_t i = (size_t)c * spatial + p;
                dn[i] = yn[i] * (dn[i] - (float)dot);
            }
        }
    }
}

void cnk_act_backward(float *dout, const float *y, cnk_act_kind kind, float alpha, int batch, int channels, int spatial,
                      int threads)
{
    size_t n = (size_t)batch * channels * spatial;
    switch (kind) {
    case CNK_ACT_LINEAR: break;
    case CNK_ACT_STEP:
        for (size_t i = 0; i < n; i++) dout[i] = 0.0f;
        break;
    case CNK_ACT_SIGMOID:
#pragma omp parallel for num_threads(threads) schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) dout[i] *= y[i] * (1.0f - y[i]);
        break;
    case CNK_ACT_TANH:
#pragma omp parallel for num_threads(threads) schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) dout[i] *= 1.0f - y[i] * y[i];
        break;
    case CNK_ACT_RELU:
#pragma omp parallel for num_threads(threads) schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) dout[i] = y[i] > 0.0f ? dout[i] : 0.0f;
        break;
    case CNK_ACT_RELU6:
#pragma omp parallel for num_threads(threads) schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) dout[i] = (y[i] > 0.0f && y[i] < 6.0f) ? dout[i] : 0.0f;
        break;
    case CNK_ACT_LEAKY_RELU:
#pragma omp parallel for num_threads(threads) schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) dout[i] = y[i] > 0.0f ? dout[i] : alpha * dout[i];
        break;
    case CNK_ACT_ELU:
        /* For x <= 0, y = alpha*(e^x - 1) so dy/dx = alpha*e^x = y + alpha. */
#pragma omp parallel for num_threads(threads) schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) dout[i] = y[i] > 0.0f ? dout[i] : dout[i] * (y[i] + alpha);
        break;
    case CNK_ACT_SOFTMAX: softmax_backward(dout, y, batch, channels, spatial); break;
    default: break;
    }
}
