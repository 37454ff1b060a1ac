/* dropout.h: inverted dropout (kept values scaled by 1/(1-rate)) whose mask is a pure function of a seed
 * and the sample index, so backward regenerates it instead of storing it, and results never depend on threads. */
#ifndef CNK_DROPOUT_H
#define CNK_DROPOUT_H

#include <stdint.h>

/* out = in * mask / (1 - rate) over batch samples of per_sample values; rate in [0, 1). */
void cnk_dropout_forward(float *out, const float *in, int batch, int per_sample, float rate, uint64_t seed,
                         int threads);
/* dinp += dout * mask / (1 - rate), the same mask as the forward with this seed. */
void cnk_dropout_backward(float *dinp, const float *dout, int batch, int per_sample, float rate, uint64_t seed,
                          int threads);

#endif
