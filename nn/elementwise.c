#include "nn/elementwise.h"

#include <string.h>

void cnk_add_forward(float *out, const float *const *inputs, int n_inputs, size_t count, int threads)
{
    const float *a = inputs[0];
#pragma omp parallel for num_threads(threads) schedule(static) if (count > 65536)
    for (size_t i = 0; i < count; i++) {
        float sum = a[i];
        for (int k = 1; k < n_inputs; k++) sum += inputs[k][i];
        out[i] = sum;
    }
}

void cnk_add_backward(float *const *dinp, int n_inputs, const float *dout, size_t count, int threads)
{
    for (int k = 0; k < n_inputs; k++) {
        float *d = dinp[k];
        if (!d) continue;
#pragma omp parallel for num_threads(threads) schedule(static) if (count > 65536)
        for (size_t i = 0; i < count; i++) d[i] += dout[i];
    }
}

static int total_channels(const int *channels, int n_inputs)
{
    int total = 0;
    for (int k = 0; k < n_inputs; k++) total += channels[k];
    return total;
}

void cnk_concat_forward(float *out, const float *const *inputs, const int *channels, int n_inputs, int batch,
                        int spatial)
{
    int total = total_channels(channels, n_inputs);
    for (int n = 0; n < batch; n++) {
        size_t offset = (size_t)n * total * spatial;
        for (int k = 0; k < n_inputs; k++) {
            size_t len = (size_t)channels[k] * spatial;
            memcpy(out + offset, inputs[k] + (size_t)n * len, sizeof(float) * len);
            offset += len;
        }
    }
}

void cnk_concat_backward(float *const *dinp, const int *channels, int n_inputs, const float *dout, int batch,
                         int spatial)
{
    int total = total_channels(channels, n_inputs);
    for (int n = 0; n < batch; n++) {
        size_t offset = (size_t)n * total * spatial;
        for (int k = 0; k < n_inputs; k++) {
            size_t len = (size_t)channels[k] * spatial;
            if (dinp[k]) {
                float *d = dinp[k] + (size_t)n * len;
                for (size_t i = 0; i < len; i++) d[i] += dout[offset + i];
            }
            offset += len;
        }
    }
}
