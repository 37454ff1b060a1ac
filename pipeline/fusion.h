/* fusion.h: late-fusion models on two views of the same audio segment (mel spectrogram and wavelet
 * scalogram): each branch has its own classifier head, fused by averaging probabilities, a learned weighted
 * average, or a shared head on the concatenated pooled features; training runs and per-branch reports.
 *
 * The network is nn/builtin.h's `fusion` (inputs mel, wavelet; outputs logits (the concat head), mel_logits,
 * wavelet_logits). Every mode trains both branch heads (so each branch's own accuracy is known); the mode
 * decides what the prediction is and which extra loss term is added:
 *   mean      p = (softmax(mel) + softmax(wavelet)) / 2;  loss CE(mel) + CE(wavelet)
 *   weighted  p = a softmax(mel) + (1 - a) softmax(wavelet), a = sigmoid(w) learned;
 *             loss -log p[y] + CE(mel) + CE(wavelet)
 *   concat    p = softmax(logits);  loss CE(logits) + CE(mel) + CE(wavelet)
 * The mode and w travel in the model file's preprocessing text ("fusion=", "fusion_weight="). */
#ifndef CNK_FUSION_H
#define CNK_FUSION_H

#include <stddef.h>

#include "core/context.h"
#include "core/npy.h"
#include "nn/modelfile.h"
#include "pipeline/preprocess.h"
#include "pipeline/train.h"

typedef enum cnk_fusion_mode { CNK_FUSION_MEAN = 0, CNK_FUSION_WEIGHTED, CNK_FUSION_CONCAT } cnk_fusion_mode;

/* The mode `cnnkit train --arch fusion` uses unless told: concat had the lowest validation loss of the three
 * modes with both seeds on FSDD's validation speaker, and gained 2.4 points over the basic CNN on two whole
 * validation speakers (datasets/README.md). Model files without a fusion mode key are read as mean (the
 * default they were trained with). */
#define CNK_FUSION_DEFAULT CNK_FUSION_CONCAT

enum { CNK_FUSION_OUT_FUSED = 0, CNK_FUSION_OUT_MEL = 1, CNK_FUSION_OUT_WAVELET = 2 };

const char *cnk_fusion_mode_name(cnk_fusion_mode mode);
int cnk_fusion_mode_parse(const char *name, cnk_fusion_mode *mode); /* 0, or -1 if unknown */

/* Fused probabilities of a batch (batch x classes) from the three outputs' logits; branch_probs (may be NULL,
 * or either entry NULL) receive each branch's softmax. weight is w (a = sigmoid(w)); ignored unless weighted. */
void cnk_fusion_probs(cnk_fusion_mode mode, float weight, const float *const logits[3], int batch, int classes,
                      float *proba, float *const branch_probs[2]);

/* The training loss (mean over the batch, as above) and its gradients: dlogits[i] (batch x classes) for each
 * output (zeros for the concat head unless mode is concat), *dweight for w (0 unless weighted). proba (may be
 * NULL) receives the fused probabilities. Labels < 0 are not allowed. */
double cnk_fusion_loss(cnk_fusion_mode mode, float weight, const float *const logits[3], const int *labels,
                       int batch, int classes, float *const dlogits[3], float *dweight, float *proba);

/* Reads "fusion=" and "fusion_weight=" from a model's preprocessing text; *is_fusion = 0 when absent. */
int cnk_fusion_from_text(cnk_ctx *ctx, const char *text, const char *source, int *is_fusion, cnk_fusion_mode *mode,
                         float *weight);

typedef struct cnk_fusion_result {
    cnk_train_result train;     /* test_accuracy = the fused model's */
    double mel_test_accuracy;   /* each branch alone (its own head), NAN without a test split */
    double wavelet_test_accuracy;
    float weight;               /* weighted mode: a = sigmoid(w) is the mel branch's share */
} cnk_fusion_result;

/* `cnnkit train DATA --input mel+wavelet --arch fusion --fusion MODE`: audio clips in class folders, the
 * options of opts (split, epochs, batch, lr, segment, sr, cache, report, -o) as in cnk_train_run. The report
 * holds the fused model first and each branch beside it. */
int cnk_fusion_run(cnk_ctx *ctx, const cnk_train_options *opts, cnk_fusion_mode mode, cnk_fusion_result *result);

/* Class probabilities of files under a fusion model file (mf, read from source): both views of every file
 * (features computed in parallel, cached as cnk_featureset_compute does), every segment through the network,
 * fused as the model says, mean over each file's segments. proba is n x n_classes; ok[i] = 0 for a file that
 * could not be decoded (warned about), 1 otherwise. For `cnnkit predict` / `eval` (pipeline/classify.h). */
int cnk_fusion_predict_files(cnk_ctx *ctx, const cnk_modelfile *mf, const char *source, const char *const *paths,
                             size_t n, const char *cache_dir, double *proba, int *ok);

/* A fusion model loaded once to classify clips whose two views are already computed (the C API's sample
 * buffers): create from the model file mf (read from source), then classify each clip's mel and wavelet
 * features as cnk_preprocess_file or cnk_preprocess_finish_db give them (un-normalised); proba receives the
 * mean fused probabilities over the clip's segments, as cnk_fusion_predict_files computes them. */
typedef struct cnk_fusion_predictor cnk_fusion_predictor;
int cnk_fusion_predictor_create(cnk_ctx *ctx, const cnk_modelfile *mf, const char *source, cnk_fusion_predictor **out);
void cnk_fusion_predictor_free(cnk_fusion_predictor *fp);
/* The preprocessing of view 0 (mel) or 1 (wavelet): sample rate, spectrogram parameters, clean-up, segments. */
const cnk_preprocess *cnk_fusion_predictor_view(const cnk_fusion_predictor *fp, int view);
int cnk_fusion_predictor_classify(cnk_ctx *ctx, cnk_fusion_predictor *fp, const cnk_array *mel,
                                  const cnk_array *wavelet, double *proba);

#endif
