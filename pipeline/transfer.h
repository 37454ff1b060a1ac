/* transfer.h: transfer learning: a pretrained network (an imported MobileNet, YAMNet) becomes the backbone of
 * a classifier for new data: a new head for its classes, trained on backbone outputs computed once per file and
 * cached, then optionally the top blocks fine-tuned; the saved model is the whole network with its input recipe.
 *
 * Backbones and data:
 *   image network (.cnk from `cnnkit import`) + image folders: the network's own image preprocessing;
 *   image network + audio clips: mel-spectrogram segments shown as pictures (pipeline/mel_image.h);
 *   YAMNet (the .cnk of `cnnkit import yamnet.tflite`) + audio clips: the clip's 1024-d embedding, the mean
 *   over its 0.96 s patches (pipeline/yamnet.h); the saved model is YAMNet with the new head on top. */
#ifndef CNK_TRANSFER_H
#define CNK_TRANSFER_H

#include <stddef.h>

#include "core/context.h"
#include "nn/arch.h"
#include "nn/modelfile.h"
#include "pipeline/train.h"

typedef struct cnk_transfer_options {
    /* The run's common options: data, split, -o, --report, --cache, --epochs, --batch-size, --lr,
     * --weight-decay, --patience, --seed (ctx), on_epoch, --resume (a checkpoint of either phase,
     * pipeline/transfer_ckpt.c) and max_epochs_this_run (--stop-after, counted over both phases); from = the
     * pretrained .cnk; freeze = "backbone" (default), "none", or N (the first N layers stay frozen in the
     * second phase). --ema, --label-smoothing, --mixup, --tta and optimisers other than Adam are refused. */
    const cnk_train_options *train;
    int finetune_epochs; /* second phase (whole network); < 0 = default: 0 with --freeze backbone, else the
                          * phase-one epochs */
    int unfreeze;        /* --freeze backbone: top blocks trained in the second phase (0 = default 1) */
    double finetune_lr;  /* 0 = lr / 10 */
} cnk_transfer_options;

void cnk_transfer_options_init(cnk_transfer_options *opts, const cnk_train_options *train);

typedef struct cnk_transfer_result {
    cnk_train_result train;   /* the usual numbers (test accuracy of the final model, ...) */
    char backbone[64];        /* "mobilenet_v2", "yamnet", ... */
    int feature_dim;          /* backbone output per segment (1280 for MobileNetV2) */
    size_t n_backbone_cached; /* files whose backbone outputs came from the cache */
    size_t n_backbone_computed;
    double seconds_backbone;  /* extracting (or loading) the backbone outputs */
    double seconds_head;      /* training the head on them */
    double seconds_finetune;
    double head_test_accuracy; /* after phase one (NAN without a test split) */
    int finetune_epochs_run;
} cnk_transfer_result;

/* The whole run; writes the model (and split file, report) as `cnnkit train` does. */
int cnk_transfer_run(cnk_ctx *ctx, const cnk_transfer_options *opts, cnk_transfer_result *result);

/* The dense layer that produces the main output (walking back through softmax, activation, dropout and
 * flatten layers), or -1. */
int cnk_transfer_head_layer(const cnk_arch *arch);
/* The first layer of the top n blocks below the head: a block is a maximal run of consecutive layers whose
 * names share the text before the first '_' ("block16_expand", "block16_dw" ...). Returns the layer index
 * from which layers should be trainable (the head's feature layer + 1 when n = 0). */
int cnk_transfer_unfreeze_from(const cnk_arch *arch, int n_blocks);
/* Parses --freeze: "backbone" -> -1, "none" -> 0, "N" -> N (layers frozen); returns 0 or -1 if malformed. */
int cnk_transfer_parse_freeze(const char *text, int *frozen_layers);

/* 1 if a model file is a transfer model on a YAMNet backbone (its input is YAMNet's log-mel front end). */
int cnk_transfer_is_yamnet_model(const cnk_modelfile *mf);
/* Class probabilities of audio files under such a model (read from model_path): each file's mean YAMNet
 * embedding through the head, softmax. proba is n x n_classes; ok[i] = 0 for a file that could not be
 * decoded (warned about). For `cnnkit predict` / `eval` (pipeline/classify.h). */
int cnk_transfer_predict_files(cnk_ctx *ctx, const cnk_modelfile *mf, const char *model_path,
                               const char *const *paths, size_t n, double *proba, int *ok);

#endif
