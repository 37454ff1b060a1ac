/* batchnorm.h: per-channel batch normalisation over NCHW batches in three modes: train (batch statistics,
 * running averages updated), infer (running statistics) and frozen (running statistics even when training). */
#ifndef CNK_BATCHNORM_H
#define CNK_BATCHNORM_H

typedef struct cnk_bn_shape {
    int batch, channels, spatial; /* spatial = H*W */
    float eps;
    float momentum; /* running = (1 - momentum) * running + momentum * batch (unbiased variance), PyTorch's */
    int threads;
    float clip_min, clip_max; /* forward output clamped to [clip_min, clip_max]: a fused relu (0, INFINITY) or
                               * relu6 (0, 6); -INFINITY, INFINITY for none */
} cnk_bn_shape;

/* Train mode: normalises with the batch mean/variance (biased), saves mean and 1/sqrt(var + eps) per channel
 * in save_mean / save_rstd for backward, and updates running_mean / running_var. */
void cnk_bn_forward_train(float *out, const float *in, const float *gamma, const float *beta, float *running_mean,
                          float *running_var, float *save_mean, float *save_rstd, const cnk_bn_shape *s);
/* Infer / frozen mode: normalises with the running statistics; also fills save_mean / save_rstd (may be
 * NULL) with them so the frozen backward can use them. */
void cnk_bn_forward_infer(float *out, const float *in, const float *gamma, const float *beta,
                          const float *running_mean, const float *running_var, float *save_mean, float *save_rstd,
                          const cnk_bn_shape *s);
/* Accumulates dinp (NULL = not needed), dgamma and dbeta (NULL = frozen). batch_stats = 1 after a train
 * forward (the statistics depend on the input), 0 after an infer/frozen forward (they are constants).
 * With a clip (s->clip_min / clip_max finite: a fused relu/relu6) the gradient is taken as zero where the
 * forward's output sat on a bound; that output is recomputed from in, gamma, beta and the saved statistics,
 * so dout is the gradient w.r.t. the clamped output. overwrite = 1 stores into dinp instead of adding (its old
 * contents are ignored: no need to zero it). */
void cnk_bn_backward(float *dinp, float *dgamma, float *dbeta, const float *dout, const float *in, const float *gamma,
                     const float *beta, const float *save_mean, const float *save_rstd, int batch_stats, int overwrite,
                     const cnk_bn_shape *s);

#endif
