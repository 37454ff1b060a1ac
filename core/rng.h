/* rng.h: a small deterministic random stream (xoshiro256** seeded through splitmix64).
 * Every random decision in cnnkit draws from a cnk_rng derived from the context seed, never from rand(). */
#ifndef CNK_RNG_H
#define CNK_RNG_H

#include <stdint.h>

typedef struct cnk_rng {
    uint64_t s[4];
} cnk_rng;

/* Seeds a stream; stream lets one seed give independent streams (e.g. per epoch, per worker). */
void cnk_rng_seed(cnk_rng *rng, uint64_t seed, uint64_t stream);
uint64_t cnk_rng_u64(cnk_rng *rng);
/* Uniform integer in [0, n), unbiased. n must be > 0. */
uint64_t cnk_rng_below(cnk_rng *rng, uint64_t n);
/* Uniform float in [0, 1). */
double cnk_rng_uniform(cnk_rng *rng);
/* Standard normal (Box-Muller, no cached spare so the stream stays a pure function of its state). */
double cnk_rng_normal(cnk_rng *rng);
/* Fisher-Yates shuffle of n indices. */
void cnk_rng_shuffle(cnk_rng *rng, int *items, int n);

#endif
