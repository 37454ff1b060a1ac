/* train.h: `cnnkit train` as a library call: open the data set, split it, compute (cached) features, fit the
 * normalisation, train with mini-batches, augmentation, validation, early stopping and checkpoints, then
 * evaluate the best model on the held-out test split and write the model, the split and the report. */
#ifndef CNK_TRAIN_H
#define CNK_TRAIN_H

#include <stddef.h>

#include "core/context.h"
#include "pipeline/audio_params.h"

struct cnk_dist; /* pipeline/distributed.h */

/* One epoch's numbers, reported through on_epoch and kept in the history. */
typedef struct cnk_epoch_stats {
    int epoch;          /* 1-based */
    int epochs;         /* planned */
    double train_loss, train_acc;
    double val_loss, val_acc; /* NAN when there is no validation split */
    double lr;
    double seconds;     /* this epoch's wall time */
    int improved;       /* 1 if this epoch's model became the best (and was saved) */
} cnk_epoch_stats;

typedef struct cnk_train_options {
    const char *data;        /* DATA: class folders, pre-split parent, or a CSV file (NULL with train_dir) */
    const char *train_dir, *val_dir, *test_dir; /* --train/--val/--test */
    const char *input;       /* auto|mel|wavelet|mel+wavelet|image|csv|npy (NULL = auto) */
    const char *arch;        /* built-in name or .cfg path (NULL = default for the input kind) */
    int epochs;              /* 0 = default for the kind */
    int batch_size;          /* 0 = default */
    double lr;               /* 0 = default */
    const char *optimizer;   /* adam|adamw|sgd (NULL = adam) */
    double weight_decay;     /* < 0 = default */
    double test_fraction;    /* < 0 = default (0.3) */
    double val_fraction;     /* < 0 = default (0.1) */
    const char *group_by;    /* regex or NULL */
    const char *test_match;  /* regex or NULL */
    double segment_seconds;  /* 0 = automatic from the clip lengths */
    int sample_rate;         /* 0 = automatic */
    cnk_audio_overrides audio; /* --top-db --trim-db --lifter --center --clip-norm (audio input only) */
    int image_width, image_height; /* 0 = default (96x96 photos; CSV: rows stay vectors) */
    int train_width, train_height; /* photos: the training part's photos are kept at this source size (the centre
                              * crop resized to it) and training's random-resized crops are cut from it, resized
                              * to the model's input (sharper than crops of the input-sized photo); validation,
                              * test, eval and predict read the input size as before, and the model file does not
                              * change. 0 = the input size (crops of the input-sized photo); < 0 = the default
                              * (photo folders: 4/3 of the input size, 128 for 96; other inputs: the input size;
                              * pipeline/train.c); at least the input size, at most 4 times it,
                              * with its aspect ratio */
    int patience;            /* early stopping: epochs without a better val loss; 0 = default, < 0 = off */
    double label_smoothing;  /* training loss only (validation stays plain cross-entropy): in [0, 1); < 0 =
                              * the input kind's default (pipeline/train.c: default_label_smoothing) */
    int tta_flip;            /* photos: evaluate and predict on the mean of each image's and its mirror's
                              * probabilities (stored in the model); < 0 = default, 0 = off, 1 = on */
    double eval_crop;        /* photos: the central fraction (in (0, 1]) of each centre-cropped image that evaluation
                              * on the test split, eval and predict read (stored in the model; training and its
                              * per-epoch validation keep the whole centre crop); 1 = whole; < 0 = default */
    double ema_decay;        /* > 0: validation, the kept model and the final one use an exponential moving
                              * average of the weights and batch-norm statistics, updated every step with this
                              * decay (in [0, 1)); 0 = off; < 0 = the input kind's default (default_ema_decay) */
    double mixup;            /* > 0: mixup with this Beta(a, a) parameter (in (0, 1]): every training batch is
                              * blended with itself reversed, labels alike; 0 = off; < 0 = default (0) */
    double erase;            /* photos: random erasing, with this probability per training photo one box of
                              * 2-25% of its area is set to the mean (pipeline/augment.h); 0 = off; < 0 =
                              * default (0) */
    const char *model_path;  /* -o MODEL.cnk (required) */
    const char *report_dir;  /* --report DIR or NULL */
    const char *resume;      /* --resume CHECKPOINT or NULL */
    const char *cache_dir;   /* feature cache (NULL = the default cache folder; "" = no cache) */
    const char *from;        /* --from MODEL.cnk (transfer learning: not implemented yet, must be NULL) */
    const char *freeze;      /* --freeze (with --from; must be NULL) */
    int max_epochs_this_run; /* stop (with a checkpoint) after this many epochs in this run; 0 = no limit
                              * (lets tests interrupt and --resume a run deterministically) */
    void (*on_epoch)(void *user, const cnk_epoch_stats *stats);
    void *user;
    struct cnk_dist *dist;   /* data-parallel training over MPI (pipeline/distributed.h); NULL = one process */
} cnk_train_options;

void cnk_train_options_init(cnk_train_options *opts);

/* Sets a numeric or word-valued option by its `cnnkit train` name without the dashes ("epochs", "lr",
 * "label-smoothing", "image-size" (WxH), "tta" (none|flip), "center" (off|on), "clip-norm", ...), with the
 * ranges `cnnkit train --help` documents (pipeline/train_options.c). Returns 0, -1 for a value out of range
 * or unreadable (o unchanged), 1 for a name it does not know (paths, names and the like are set directly). */
int cnk_train_option_set(cnk_train_options *o, const char *name, const char *value);

typedef struct cnk_train_result {
    char input[32];          /* the input kind used */
    char arch[256];          /* the architecture used (name or file) */
    size_t n_train, n_val, n_test;       /* clips/files/rows per split (after skipped ones) */
    size_t n_train_segments;
    int epochs_run;          /* in total, including resumed ones */
    int best_epoch;
    double best_val_loss;
    double test_accuracy;    /* NAN when there is no test split */
    double seconds_features, seconds_training;
    int stopped_early;
    int interrupted;         /* stopped by max_epochs_this_run: the checkpoint holds the state */
    size_t n_cached;         /* files whose features came from the feature cache */
} cnk_train_result;

/* The checkpoint written after every epoch: "<model_path>.ckpt" (plus the optimiser state
 * "<model_path>.ckpt.optim-<epoch>.npy"). */
void cnk_train_checkpoint_path(const char *model_path, char *out, size_t cap);
/* The split file written next to the model: "<model_path minus .cnk>.split.csv". */
void cnk_train_split_path(const char *model_path, char *out, size_t cap);

int cnk_train_run(cnk_ctx *ctx, const cnk_train_options *opts, cnk_train_result *result);

#endif
