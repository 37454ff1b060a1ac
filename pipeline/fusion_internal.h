/* fusion_internal.h: the state of one late-fusion training run, shared by fusion.c (data, views, model,
 * epochs) and fusion_ckpt.c (the resumable checkpoint). Not a public API. */
#ifndef CNK_FUSION_INTERNAL_H
#define CNK_FUSION_INTERNAL_H

#include <stddef.h>

#include "nn/arch.h"
#include "nn/model.h"
#include "nn/modelfile.h"
#include "nn/optim.h"
#include "pipeline/augment.h"
#include "pipeline/dataset.h"
#include "pipeline/featureset.h"
#include "pipeline/fusion.h"
#include "pipeline/preprocess.h"

/* One training input: segment `segment` of item `item`, both views. */
typedef struct seg_ref {
    int item, segment;
} seg_ref;

enum { FUSION_HIST_SERIES = 4 }; /* train loss, train accuracy, val loss, val accuracy */

typedef struct fusion_run {
    cnk_ctx *ctx;
    const cnk_train_options *t;
    cnk_fusion_mode mode;
    cnk_fusion_result *res;
    cnk_dataset ds;
    int n_classes;
    cnk_preprocess prep[2]; /* mel, wavelet */
    cnk_featureset fs[2];
    cnk_arch arch;
    cnk_model *model;
    cnk_optim *opt, *weight_opt;
    float weight, best_weight;
    int epochs, batch, patience;
    double lr, weight_decay;
    int start_epoch;        /* epochs done before this run (--resume) */
    double best_score;      /* the kept epoch's validation loss (or -epoch without validation) */
    int bad_epochs;         /* epochs since it */
    int h[2], w;            /* rows of each view, segment frames */
    size_t in_size[2];
    float *x[2], *scratch, *dl[3], *proba, *best_params, *best_buffers;
    int *y;
    seg_ref *refs[4];
    size_t n_refs[4];
    cnk_augment_params aug;
    double *hist[FUSION_HIST_SERIES];
    int n_hist;
} fusion_run;

/* The model file's preprocessing text: both views' preprocessing, the fusion mode and `weight`. */
int cnk_fusion_model_text(fusion_run *r, float weight, char **out);

/* The hyper-parameters of the checkpoint ck (read from r->t->resume) into r: epochs (--epochs may extend the
 * run), batch, rate, patience, weight decay, epochs done; its mode must be r->mode. Before the model is made. */
int cnk_fusion_checkpoint_hyper(fusion_run *r, const cnk_modelfile *ck);
/* The rest of the state, once the model and optimisers exist: weights, optimiser states, the kept model, the
 * fusion weight, early-stopping counters and the history. */
int cnk_fusion_checkpoint_load(fusion_run *r, const cnk_modelfile *ck);
/* Writes "<model>.ckpt" (a model file of the current weights whose text carries the run's state) and its
 * optimiser file "<model>.ckpt.optim-<epochs_done>.npy", each atomically, the optimiser file first; then
 * removes the previous epoch's optimiser file. */
int cnk_fusion_checkpoint_save(fusion_run *r, int epochs_done);

#endif
