/* init.h: seeded weight initialisation (He normal for relu-family layers, Glorot uniform otherwise),
 * deterministic for a seed whatever the thread count. */
#ifndef CNK_INIT_H
#define CNK_INIT_H

#include <stddef.h>
#include <stdint.h>

/* w[i] ~ N(0, 2 / fan_in), drawn from stream `stream` of seed. */
void cnk_init_he_normal(float *w, size_t n, int fan_in, uint64_t seed, uint64_t stream);
/* w[i] ~ U(-a, a), a = sqrt(6 / (fan_in + fan_out)). */
void cnk_init_glorot_uniform(float *w, size_t n, int fan_in, int fan_out, uint64_t seed, uint64_t stream);
void cnk_init_fill(float *w, size_t n, float value);

#endif
