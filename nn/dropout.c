#include "nn/dropout.h"

#include <stddef.h>

#include "core/rng.h"

/* keep[i] for one sample: its own random stream, so samples can be done in any order. */
static float mask_value(cnk_rng *rng, float rate, float scale)
{
    return cnk_rng_uniform(rng) < (double)rate ? 0.0f : scale;
}

void cnk_dropout_forward(float *out, const float *in, int batch, int per_sample, float rate, uint64_t seed,
                         int threads)
{
    float scale = 1.0f / (1.0f - rate);
#pragma omp parallel for num_threads(threads) schedule(static) if ((size_t)batch * per_sample > 65536)
    for (int n = 0; n < batch; n++) {
        cnk_rng rng;
        cnk_rng_seed(&rng, seed, (uint64_t)n);
        size_t base = (size_t)n * per_sample;
        for (int i = 0; i < per_sample; i++) out[base + i] = in[base + i] * mask_value(&rng, rate, scale);
    }
}

void cnk_dropout_backward(float *dinp, const float *dout, int batch, int per_sample, float rate, uint64_t seed,
                          int threads)
{
    float scale = 1.0f / (1.0f - rate);
#pragma omp parallel for num_threads(threads) schedule(static) if ((size_t)batch * per_sample > 65536)
    for (int n = 0; n < batch; n++) {
        cnk_rng rng;
        cnk_rng_seed(&rng, seed, (uint64_t)n);
        size_t base = (size_t)n * per_sample;
        for (int i = 0; i < per_sample; i++) dinp[base + i] += dout[base + i] * mask_value(&rng, rate, scale);
    }
}
