/* transfer_internal.h: the state of one transfer-learning run, shared by transfer.c (backbone, data, the head
 * phase and the fine-tuning phase) and transfer_ckpt.c (the resumable checkpoint of either phase). Not a
 * public API. */
#ifndef CNK_TRANSFER_INTERNAL_H
#define CNK_TRANSFER_INTERNAL_H

#include <stddef.h>

#include "core/npy.h"
#include "nn/arch.h"
#include "nn/model.h"
#include "nn/modelfile.h"
#include "nn/optim.h"
#include "pipeline/dataset.h"
#include "pipeline/mel_image.h"
#include "pipeline/preprocess.h"
#include "pipeline/transfer.h"
#include "pipeline/yamnet.h"

enum { XFER_HIST_SERIES = 4 }; /* train loss, train accuracy, val loss, val accuracy */

typedef struct xfer_run {
    cnk_ctx *ctx;
    const cnk_transfer_options *o;
    const cnk_train_options *t;
    cnk_transfer_result *res;
    cnk_dataset ds;
    int n_classes;
    /* the pretrained network */
    cnk_modelfile from;
    cnk_arch arch;
    int feature_layer, feat_dim, is_yamnet;
    cnk_shape in;
    size_t in_size;
    cnk_model *backbone;
    cnk_yamnet *yamnet;
    char backbone_key[256];
    char backbone_hex[33]; /* the backbone's identity (architecture and weights), kept in checkpoints */
    /* data -> backbone input */
    cnk_preprocess prep;
    cnk_mel_image mel_image;
    int frozen_layers; /* -1 = backbone */
    /* per item: backbone outputs of its segments (n_seg x feat_dim), NULL when skipped */
    float **feats;
    int *n_seg;
    /* hyper-parameters of phase one, and the plan of phase two (finetune_epochs 0: none) */
    int epochs, batch, patience;
    double lr, weight_decay;
    int finetune_epochs, trainable_from;
    double finetune_lr;
    /* the head and the assembled network */
    float *head_params; /* best: dense weight [classes, F] then bias [classes] */
    cnk_arch full;
    float *full_params, *full_buffers;
    /* history (phase one, then phase two appended) */
    double *hist[XFER_HIST_SERIES];
    int n_hist, hist_cap;
    /* the running phase's early-stopping state: the kept epoch's score (val loss, or -epoch without
     * validation), that epoch (of the phase, from 1; 0 = none yet), epochs since it */
    double best_score;
    int best_epoch, bad_epochs;
    /* resuming (--resume): the checkpoint, its optimiser file, its phase (0: a fresh run), the epochs done in
     * that phase and in both */
    cnk_modelfile ck;
    cnk_array ck_state;
    int resume_phase, start_epoch, resume_done;
    int run_epochs; /* epochs run by this process, both phases (for --stop-after) */
} xfer_run;

/* Phase one: the head trained on the cached backbone outputs. */
typedef struct head_trainer {
    cnk_model *model;
    cnk_optim *opt;
    int *order;          /* shuffled sample indices */
    int *s_item, *s_seg; /* training samples: (item, segment) */
    size_t n_samples;
    float *x, *dlogits, *probs;
    int *y;
} head_trainer;

/* Phase two: the whole network fine-tuned on decoded inputs. */
typedef struct tuner {
    cnk_model *model;
    cnk_optim *opt;
    float *x, *scratch, *dlogits, *probs, *best_params, *best_buffers;
    int *y;
} tuner;

/* transfer.c: the saved model's preprocessing text (the backbone's input recipe, arch_name, backbone). */
int cnk_transfer_model_text(xfer_run *r, char **out);
/* transfer.c: appends an epoch to the history. */
int cnk_transfer_push_history(xfer_run *r, double tl, double ta, double vl, double va);

/* transfer_ckpt.c. Reads the checkpoint r->t->resume into r->ck and its optimiser file into r->ck_state, and
 * refuses one of another kind (plain, fusion), another backbone, other classes or other input settings, or a
 * missing or damaged optimiser file; then takes its phase, the epochs done and the schedule (r->epochs or the
 * fine-tuning plan, batch, rates, patience, weight decay). After load_backbone, open_data and choose_inputs,
 * before the backbone outputs are computed. */
int cnk_transfer_ckpt_open(xfer_run *r);
/* The rest of a phase-one checkpoint once the head trainer exists: head weights, optimiser state, the kept
 * head, early-stopping state and history. */
int cnk_transfer_ckpt_load_head(xfer_run *r, head_trainer *h);
/* The same for a phase-two checkpoint once the tuner exists: network weights, optimiser state, the kept
 * network, phase one's numbers and history. */
int cnk_transfer_ckpt_load_tuner(xfer_run *r, tuner *t);
/* After each epoch: "<model>.ckpt", a model file of the current weights (phase one: the head network on
 * backbone outputs; phase two: the whole network) whose text carries the run's state, and its optimiser
 * file "<model>.ckpt.optim-<epochs of both phases>.npy", each atomic, the optimiser file first; then the
 * previous epoch's optimiser file is removed. */
int cnk_transfer_ckpt_save_head(xfer_run *r, head_trainer *h, int epochs_done);
int cnk_transfer_ckpt_save_tuner(xfer_run *r, tuner *t, int epochs_done);

#endif
