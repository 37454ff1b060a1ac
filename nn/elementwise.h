/* elementwise.h: the layers that join branches: add (residual connections) and concat along channels,
 * forward and backward over NCHW batches. */
#ifndef CNK_ELEMENTWISE_H
#define CNK_ELEMENTWISE_H

#include <stddef.h>

/* out = sum of n_inputs arrays of count floats each. */
void cnk_add_forward(float *out, const float *const *inputs, int n_inputs, size_t count, int threads);
/* dinp[i] += dout for each i with dinp[i] != NULL. */
void cnk_add_backward(float *const *dinp, int n_inputs, const float *dout, size_t count, int threads);

/* out[n] = the channels of inputs[0][n], then inputs[1][n], ...; input i has channels[i] channels of
 * spatial values each. */
void cnk_concat_forward(float *out, const float *const *inputs, const int *channels, int n_inputs, int batch,
                        int spatial);
/* dinp[i] += its slice of dout (NULL entries are skipped). */
void cnk_concat_backward(float *const *dinp, const int *channels, int n_inputs, const float *dout, int batch,
                         int spatial);

#endif
