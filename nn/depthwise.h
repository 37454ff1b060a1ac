/* depthwise.h: depthwise 2-D convolution (channel multiplier 1: each channel has its own kh x kw filter),
 * direct loops that the compiler vectorises along rows; the workhorse of MobileNets. */
#ifndef CNK_DEPTHWISE_H
#define CNK_DEPTHWISE_H

#include "nn/conv2d.h"

/* s describes the layer as a conv2d with in_c == out_c; weight is [C, 1, kh, kw], bias [C] or NULL. */
void cnk_depthwise_forward(float *out, const float *in, const float *weight, const float *bias,
                           const cnk_conv2d_shape *s);
/* Accumulates (+=) dinp (NULL = not needed), dweight and dbias (NULL = frozen or absent). */
void cnk_depthwise_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *in,
                            const float *weight, const cnk_conv2d_shape *s);

#endif
