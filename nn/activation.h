/* activation.h: element-wise activations (step, linear, sigmoid, tanh, relu, relu6, leaky relu, elu) and
 * the channel softmax, applied in place; every backward needs only the activation's OUTPUT, not its input. */
#ifndef CNK_ACTIVATION_H
#define CNK_ACTIVATION_H

#include <stddef.h>

#include "nn/arch.h"

/* The kinds are cnk_act_kind from nn/arch.h. */

/* Applies the activation in place to x, laid out NCHW as batch x channels x spatial (spatial = H*W;
 * element-wise kinds ignore the layout). alpha is used by leaky relu and elu. */
void cnk_act_forward(float *x, cnk_act_kind kind, float alpha, int batch, int channels, int spatial, int threads);

/* Turns dout (the gradient w.r.t. the activation's output y) into the gradient w.r.t. its input, in
 * place, from y alone. Layout as in forward. */
void cnk_act_backward(float *dout, const float *y, cnk_act_kind kind, float alpha, int batch, int channels, int spatial,
                      int threads);


#endif
