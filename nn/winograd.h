/* winograd.h: 3x3 stride-1 convolutions by Winograd's minimal filtering F(4x4, 3x3): 36 multiplies per 4x4
 * output tile instead of 144, as batched sgemms per tile position; used for conv2d forward and both gradients. */
#ifndef CNK_WINOGRAD_H
#define CNK_WINOGRAD_H

#include <stddef.h>

#include "nn/conv2d.h"

/* 1 if s (3x3, stride 1, no dilation, enough channels for the sgemms to pay, output maps of at least one
 * whole 4x4 tile) runs through Winograd. */
int cnk_winograd_applies(const cnk_conv2d_shape *s);

/* Floats of scratch the two functions below need for s->threads threads (the transformed weights and a
 * slice per thread). */
size_t cnk_winograd_workspace_size(const cnk_conv2d_shape *s);

/* out[N, out_c, out_h, out_w] = conv(in, weight) (no bias), overwriting out. Bitwise the same for every
 * thread count: tiles are cut into chunks independent of s->threads. */
void cnk_winograd_forward(float *out, const float *in, const float *weight, const cnk_conv2d_shape *s,
                          float *workspace);

/* dinp += the gradient w.r.t. the input of conv(in, weight) given dout (the transposed convolution, itself
 * a 3x3 stride-1 convolution of dout with the flipped kernel); overwrite = 1 stores instead (every element of
 * dinp is written, so it need not be zeroed first). */
void cnk_winograd_backward_data(float *dinp, const float *dout, const float *weight, const cnk_conv2d_shape *s,
                                int overwrite, float *workspace);

/* dweight += the gradient w.r.t. the weights: in the Winograd domain a sum over tiles of the transformed
 * input times the transformed output gradient (one sgemm per position), mapped back by G^T . G. Deterministic
 * for a given thread count (per-thread partials summed in thread order; with fewer than two chunks of tiles
 * per thread the chunks are summed in order, as with one thread). */
void cnk_winograd_backward_weight(float *dweight, const float *dout, const float *in, const cnk_conv2d_shape *s,
                                  float *workspace);

#endif
