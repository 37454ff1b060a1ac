#include "nn/init.h"

#include <math.h>

#include "core/rng.h"

void cnk_init_he_normal(float *w, size_t n, int fan_in, uint64_t seed, uint64_t stream)
{
    cnk_rng rng;
    cnk_rng_seed(&rng, seed, stream);
    double std = sqrt(2.0 / (fan_in > 0 ? fan_in : 1));
    for (size_t i = 0; i < n; i++) w[i] = (float)(std * cnk_rng_normal(&rng));
}

void cnk_init_glorot_uniform(float *w, size_t n, int fan_in, int fan_out, uint64_t seed, uint64_t stream)
{
    cnk_rng rng;
    cnk_rng_seed(&rng, seed, stream);
    int fans = fan_in + fan_out;
    double limit = sqrt(6.0 / (fans > 0 ? fans : 1));
    for (size_t i = 0; i < n; i++) w[i] = (float)(limit * (2.0 * cnk_rng_uniform(&rng) - 1.0));
}

void cnk_init_fill(float *w, size_t n, float value)
{
    for (size_t i = 0; i < n; i++) w[i] = value;
}
