#include "nn/loss.h"

#include <math.h>

/* log(sum_k e^z_k) with the max subtracted first, so it never overflows. */
static double log_sum_exp(const float *z, int classes)
{
    float max = z[0];
    for (int k = 1; k < classes; k++) max = fmaxf(max, z[k]);
    double sum = 0.0;
    for (int k = 0; k < classes; k++) sum += exp((double)z[k] - max);
    return log(sum) + max;
}

/* Samples with a label in [0, classes): the ones the mean loss is over. */
static int count_labelled(const int *labels, int batch, int classes)
{
    int counted = 0;
    for (int n = 0; n < batch; n++)
        if (labels[n] >= 0 && labels[n] < classes) counted++;
    return counted;
}

double cnk_loss_softmax_ce(const float *logits, const int *labels, int batch, int classes, float *probs,
                           float *dlogits)
{
    int counted = count_labelled(labels, batch, classes);
    double total = 0.0, inv = counted > 0 ? 1.0 / counted : 0.0;
    for (int n = 0; n < batch; n++) {
        const float *z = logits + (size_t)n * classes;
        double log_sum = log_sum_exp(z, classes);
        int label = labels[n];
        int valid = label >= 0 && label < classes;
        if (valid) total += log_sum - z[label];
        for (int k = 0; k < classes; k++) {
            double p = exp((double)z[k] - log_sum);
            if (probs) probs[(size_t)n * classes + k] = (float)p;
            if (dlogits) dlogits[(size_t)n * classes + k] = valid ? (float)((p - (k == label)) * inv) : 0.0f;
        }
    }
    return total * inv;
}

double cnk_loss_softmax_ce_smooth(const float *logits, const int *labels, int batch, int classes, double smoothing,
                                  float *probs, float *dlogits)
{
    if (!(smoothing > 0)) return cnk_loss_softmax_ce(logits, labels, batch, classes, probs, dlogits);
    int counted = count_labelled(labels, batch, classes);
    double total = 0.0, inv = counted > 0 ? 1.0 / counted : 0.0;
    double off = smoothing / classes, on = 1.0 - smoothing + off; /* the smoothed target's two values */
    for (int n = 0; n < batch; n++) {
        const float *z = logits + (size_t)n * classes;
        double log_sum = log_sum_exp(z, classes);
        int label = labels[n];
        int valid = label >= 0 && label < classes;
        for (int k = 0; k < classes; k++) {
            double target = k == label ? on : off;
            double p = exp((double)z[k] - log_sum);
            if (valid) total += target * (log_sum - z[k]); /* -target * log p */
            if (probs) probs[(size_t)n * classes + k] = (float)p;
            if (dlogits) dlogits[(size_t)n * classes + k] = valid ? (float)((p - target) * inv) : 0.0f;
        }
    }
    return total * inv;
}

double cnk_loss_softmax_ce_soft(const float *logits, const float *targets, int batch, int classes, double smoothing,
                                float *probs, float *dlogits)
{
    double total = 0.0, inv = batch > 0 ? 1.0 / batch : 0.0, off = smoothing / classes;
    for (int n = 0; n < batch; n++) {
        const float *z = logits + (size_t)n * classes, *t = targets + (size_t)n * classes;
        double log_sum = log_sum_exp(z, classes);
        for (int k = 0; k < classes; k++) {
            double target = (1.0 - smoothing) * t[k] + off;
            double p = exp((double)z[k] - log_sum);
            total += target * (log_sum - z[k]);
            if (probs) probs[(size_t)n * classes + k] = (float)p;
            if (dlogits) dlogits[(size_t)n * classes + k] = (float)((p - target) * inv);
        }
    }
    return total * inv;
}

double cnk_loss_bce_logits(const float *logits, const float *targets, size_t n, float *dlogits)
{
    double total = 0.0;
    for (size_t i = 0; i < n; i++) {
        double z = logits[i], t = targets[i];
        /* max(z, 0) - z t + log(1 + e^-|z|) never overflows */
        total += fmax(z, 0.0) - z * t + log1p(exp(-fabs(z)));
        if (dlogits) {
            double sig = z >= 0 ? 1.0 / (1.0 + exp(-z)) : exp(z) / (1.0 + exp(z));
            dlogits[i] = (float)((sig - t) / (double)n);
        }
    }
    return n ? total / (double)n : 0.0;
}

double cnk_loss_mse(const float *pred, const float *targets, size_t n, float *dpred)
{
    double total = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)pred[i] - targets[i];
        total += d * d;
        if (dpred) dpred[i] = (float)(2.0 * d / (double)n);
    }
    return n ? total / (double)n : 0.0;
}
