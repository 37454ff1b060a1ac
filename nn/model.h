/* model.h: a runnable network built from an inferred cnk_arch: one arena for parameters, one for their
 * gradients, one for buffers (BN running statistics), activations sized for a max batch; forward, backward,
 * zero_grad, He/Glorot init, and access to any layer's output (transfer-learning feature caches).
 *
 * Typical training step (see nn/loss.h, nn/optim.h):
 *     cnk_model_forward(ctx, m, inputs, batch, CNK_MODE_TRAIN);
 *     loss = cnk_loss_softmax_ce(cnk_model_output(m, 0), labels, batch, classes, NULL, dlogits);
 *     cnk_model_zero_grad(m);
 *     const float *douts[] = {dlogits};
 *     cnk_model_backward(ctx, m, douts);
 *     cnk_optim_step(opt, cnk_model_params(m), cnk_model_grads(m), ranges, n_ranges, lr, ctx->threads);
 * where ranges/n_ranges come from cnk_model_trainable_ranges (frozen layers are left alone). */
#ifndef CNK_MODEL_H
#define CNK_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "core/context.h"
#include "nn/arch.h"
#include "nn/optim.h"

typedef enum cnk_mode {
    CNK_MODE_INFER = 0, /* BN uses running statistics, dropout is the identity */
    CNK_MODE_TRAIN = 1  /* BN uses batch statistics and updates the running ones (except frozen BN layers,
                         * i.e. trainable = 0, which always use running statistics), dropout drops */
} cnk_mode;

typedef struct cnk_model cnk_model;

/* Builds a model for arch (copied; inferred here if it was not) able to run batches of up to max_batch
 * samples with up to ctx->threads threads. Parameters are initialised with cnk_model_init_params(ctx->seed);
 * copy weights in to load a trained model. */
int cnk_model_create(cnk_ctx *ctx, const cnk_arch *arch, int max_batch, cnk_model **out);
void cnk_model_free(cnk_model *model);

/* The model's own (inferred) copy of the architecture. */
const cnk_arch *cnk_model_arch(const cnk_model *model);
int cnk_model_max_batch(const cnk_model *model);

/* The flat arrays, in arch.h's order (so .cnk files and TFLite import read/write them directly).
 * Lengths: arch->n_params for params and grads, arch->n_buffers for buffers. */
float *cnk_model_params(cnk_model *model);
float *cnk_model_grads(cnk_model *model);
float *cnk_model_buffers(cnk_model *model);

/* Weights: He normal (std sqrt(2/fan_in)) when the layer's activation is relu-family (relu, relu6, leaky
 * relu, elu) or it feeds a batchnorm, Glorot uniform otherwise; biases and BN beta 0, gamma 1, running mean 0,
 * running var 1. Deterministic for a seed. Also seeds dropout masks (stream derived from seed). */
void cnk_model_init_params(cnk_model *model, uint64_t seed);
/* Reseeds dropout only (masks are a pure function of this seed and the forward-call count). */
void cnk_model_set_seed(cnk_model *model, uint64_t seed);

/* Runs the network on batch samples (1 <= batch <= max_batch). inputs[i] is the data of the i-th input
 * layer (arch->input_layers order), batch x C x H x W floats, NCHW. ctx->threads (capped at the value it had
 * when the model was created, which sized the per-thread workspace) is the size of the one OpenMP team all
 * kernels run on; each thread calls sgemm single-threaded, so forward and backward set
 * openblas_set_num_threads(1) (two spinning thread pools on the same cores made 2 threads 4x slower than 1).
 * Results are deterministic for a given thread count. */
int cnk_model_forward(cnk_ctx *ctx, cnk_model *model, const float *const *inputs, int batch, cnk_mode mode);
/* Same, but stops after layer last_layer (its output and those before it are valid) — for feature
 * extraction; a backward pass is not allowed after a partial forward. */
int cnk_model_forward_until(cnk_ctx *ctx, cnk_model *model, const float *const *inputs, int batch,
                            cnk_mode mode, int last_layer);

/* The declared output `index` (0 = main) of the last forward: batch x units floats, units = C*H*W of that
 * layer (written to *units if not NULL). */
const float *cnk_model_output(const cnk_model *model, int index, int *units);
/* Any layer's output of the last forward (batch x C x H x W); shape (may be NULL) receives (C, H, W). */
const float *cnk_model_layer_output(const cnk_model *model, int layer, cnk_shape *shape);
/* Runs an inference forward up to layer and copies its output (batch x C*H*W floats) into out. */
int cnk_model_features(cnk_ctx *ctx, cnk_model *model, const float *const *inputs, int batch, int layer,
                       float *out);

/* Sets every gradient to zero (gradients accumulate over backward calls). */
void cnk_model_zero_grad(cnk_model *model);
/* Back-propagates from the last forward (which must have been a full forward): doutputs[i] is the gradient
 * of the loss w.r.t. declared output i (batch x units floats; NULL = that output does not contribute).
 * Accumulates into the gradient arena; frozen layers get none, and nothing below the lowest layer that
 * needs a gradient is computed. */
int cnk_model_backward(cnk_ctx *ctx, cnk_model *model, const float *const *doutputs);

/* The parameter ranges of trainable layers (for cnk_optim_step); valid until the next
 * cnk_model_set_trainable call (which recomputes them). */
const cnk_param_range *cnk_model_trainable_ranges(const cnk_model *model, int *n_ranges);
/* Freezes (0) or unfreezes (1) layer; a frozen batchnorm always uses its running statistics. */
void cnk_model_set_trainable(cnk_model *model, int layer, int trainable);

/* Forward FLOPs per sample (from the arch) and bytes of memory the model holds. */
double cnk_model_flops(const cnk_model *model);
size_t cnk_model_memory(const cnk_model *model);

#endif
