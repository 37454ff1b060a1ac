/* loss.h: training losses, each returning the mean loss over the batch and writing the gradient w.r.t. its
 * input (already divided by the batch, so model backward can take it as is). */
#ifndef CNK_LOSS_H
#define CNK_LOSS_H

#include <stddef.h>

/* Softmax + categorical cross-entropy, fused (log-sum-exp with the max subtracted, so it never overflows).
 * logits [batch, classes]; labels [batch] class indices in [0, classes) (a label < 0 is ignored: it adds no
 * loss and gets a zero gradient, and the mean is over the remaining samples). probs (may be NULL) receives
 * the softmax; dlogits (may be NULL) receives d(mean loss)/d(logits). Returns the mean loss. */
double cnk_loss_softmax_ce(const float *logits, const int *labels, int batch, int classes, float *probs,
                           float *dlogits);

/* The same with label smoothing (PyTorch's CrossEntropyLoss(label_smoothing=smoothing)): the target of a
 * sample is 1 - smoothing + smoothing / classes for its label and smoothing / classes for every other class,
 * so the network is not pushed towards ever larger logits (less overconfident probabilities). smoothing in
 * [0, 1); 0 gives cnk_loss_softmax_ce exactly. Labels < 0 are ignored as there. Returns the mean smoothed loss. */
double cnk_loss_softmax_ce_smooth(const float *logits, const int *labels, int batch, int classes, double smoothing,
                                  float *probs, float *dlogits);

/* Cross-entropy against probability targets (PyTorch's CrossEntropyLoss with class-probability targets and
 * label_smoothing=smoothing: each target row t becomes (1 - smoothing) t + smoothing / classes): mixup's
 * blended labels. targets [batch, classes], rows summing to 1. probs, dlogits as above (d(mean)/d(logits) =
 * (p - t') / batch). Returns the mean loss over the batch. */
double cnk_loss_softmax_ce_soft(const float *logits, const float *targets, int batch, int classes, double smoothing,
                                float *probs, float *dlogits);

/* Binary cross-entropy on logits (sigmoid folded in, stable for any logit): n values, targets in [0, 1].
 * dlogits (may be NULL) receives d(mean loss)/d(logits). Returns the mean over all n values. */
double cnk_loss_bce_logits(const float *logits, const float *targets, size_t n, float *dlogits);

/* Mean squared error over n values; dpred (may be NULL) receives d(mean)/d(pred) = 2 (pred - target) / n. */
double cnk_loss_mse(const float *pred, const float *targets, size_t n, float *dpred);

#endif
