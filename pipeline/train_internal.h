/* train_internal.h: the state of one training run, shared by train.c (setting the run up: data, split,
 * features, model) and train_loop.c (epochs, validation, checkpoints). Not a public API. */
#ifndef CNK_TRAIN_INTERNAL_H
#define CNK_TRAIN_INTERNAL_H

#include <stddef.h>

#include "nn/arch.h"
#include "nn/model.h"
#include "nn/modelfile.h"
#include "nn/optim.h"
#include "pipeline/augment.h"
#include "pipeline/dataset.h"
#include "pipeline/featureset.h"
#include "pipeline/preprocess.h"
#include "pipeline/train.h"

/* One model input: segment `segment` of item `item`. */
typedef struct sample_ref {
    int item;
    int segment;
} sample_ref;

typedef struct ref_list {
    sample_ref *refs;
    size_t n, cap;
    size_t n_items; /* distinct items (clips) */
} ref_list;

enum { HIST_TRAIN_LOSS = 0, HIST_TRAIN_ACC, HIST_VAL_LOSS, HIST_VAL_ACC, HIST_SERIES };

typedef struct train_run {
    cnk_ctx *ctx;
    const cnk_train_options *opts;
    cnk_train_result *result;
    cnk_dataset ds;
    cnk_preprocess prep;
    cnk_featureset fs;
    ref_list parts[4]; /* indexed by cnk_part; [0] unused */
    char arch_name[256];
    char optimizer[64];     /* adam, adamw or sgd (--optimizer, or the checkpoint's on --resume) */
    cnk_arch arch;
    cnk_model *model;
    cnk_optim *opt;
    int n_classes;
    int batch, epochs, patience;
    double lr, weight_decay;
    double label_smoothing; /* of the training loss */
    double ema_decay;       /* > 0: the weight average below is what is validated, kept and saved */
    float *ema_params, *ema_buffers;   /* the moving average (NULL when ema_decay is 0) */
    float *live_params, *live_buffers; /* the trained weights while the average sits in the model */
    double mixup;           /* > 0: Beta(mixup, mixup) blends of each training batch with itself reversed */
    float *soft_targets;    /* batch x classes blended labels (NULL without mixup) */
    double erase;           /* photos: random-erasing probability (0 = off) */
    int in_c, in_h, in_w;
    size_t in_size;
    float *batch_x, *dlogits, *probs, *scratch;
    int *batch_y;
    double *history[HIST_SERIES];
    int n_history;
    double best_val;
    int best_epoch, bad_epochs, start_epoch;
    float *best_params, *best_buffers;
    char *prep_text;
    char *arch_text;
    /* Photos' training source (cnk_train_options.train_width): train_prep is prep at train_h x train_w, which
     * the training part's photos are read at when train_source is 1 (the size differs from the input); their
     * crops are cut from that and resized to the input (cnk_augment_image_from). */
    cnk_preprocess train_prep;
    int train_source, train_h, train_w;
    float *source; /* one normalised training photo at the source size */
    cnk_augment_params aug;
    int augment_kind; /* 0 none, 1 image, 2 spectrogram */
} train_run;

/* train_loop.c */
int cnk_train_loop(train_run *r);
/* Clip-level evaluation of one part: y_pred / proba (n_items x n_classes) for the part's items in order
 * (items gives their dataset indices); mean segment loss. Arrays malloc'd. */
int cnk_train_evaluate(train_run *r, int part, int **items, int **y_pred, double **proba, double *loss,
                       double *accuracy);
int cnk_train_save_model(train_run *r, const char *path, const float *params, const float *buffers);
/* Resuming: the run's hyper-parameters (epochs, batch, lr, patience, arch name) from a checkpoint, before the
 * model is built; then, once it is, its weights, optimiser state, history and early-stopping state. */
int cnk_train_checkpoint_hyper(train_run *r, const cnk_modelfile *ckpt);
int cnk_train_load_checkpoint(train_run *r, const cnk_modelfile *ckpt);

#endif
