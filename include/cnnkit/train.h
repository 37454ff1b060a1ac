/* cnnkit/train.h: `cnnkit train` as a call: a data set description (a class-per-subfolder folder of audio,
 * images or .npy arrays, pre-split folders, or a CSV) plus options in, a .cnk model (and a report) out. */
#ifndef CNNKIT_TRAIN_H
#define CNNKIT_TRAIN_H

#include <stddef.h>

#include "cnnkit/context.h"
#include "cnnkit/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cnk_training cnk_training;

/* Called after every epoch; val_loss and val_acc are NaN without a validation split. */
typedef void (*cnk_epoch_fn)(void *user, int epoch, int epochs, double train_loss, double train_acc,
                             double val_loss, double val_acc);

/* A training run of data (a folder or CSV file; NULL when the "train"/"test" options name pre-split folders)
 * writing model_path. Both strings are copied. NULL if out of memory. */
CNK_API cnk_training *cnk_training_create(const char *data, const char *model_path);
CNK_API void cnk_training_free(cnk_training *t);

/* Sets an option by its `cnnkit train` long name, without the dashes, value as on the command line:
 *   input arch epochs batch-size lr optimizer weight-decay patience test-fraction val-fraction group-by
 *   test-match train val test segment sr image-size report resume cache no-cache (value ignored) from freeze
 *   finetune-epochs unfreeze finetune-lr fusion label-smoothing tta eval-crop train-size ema mixup erase top-db
 *   trim-db lifter center clip-norm
 * (see `cnnkit help train` and cnnkit(1)): "from" runs transfer learning from a pretrained model, input
 * "mel+wavelet" (or arch "fusion") late fusion of a mel and a wavelet branch. The seed and the thread count
 * come from the context.
 * Fails with CNK_ERR_ARG, naming the option, on an unknown name or a bad value. */
CNK_API int cnk_training_set(cnk_ctx *ctx, cnk_training *t, const char *option, const char *value);
CNK_API void cnk_training_on_epoch(cnk_training *t, cnk_epoch_fn fn, void *user);

/* Opens the data, splits it (stratified, seeded), computes the (cached) features, trains with validation,
 * early stopping and checkpoints, evaluates the best model on the test split, writes the model (and the
 * report when the "report" option is set). Skipped inputs go to the context's warn callback. */
CNK_API int cnk_training_run(cnk_ctx *ctx, cnk_training *t);

/* After a successful run: */
CNK_API double cnk_training_test_accuracy(const cnk_training *t); /* NaN without a test split */
CNK_API int cnk_training_epochs_run(const cnk_training *t);
CNK_API int cnk_training_best_epoch(const cnk_training *t);
/* Items (files, clips or rows) per split: part is "train", "val" or "test". */
CNK_API size_t cnk_training_count(const cnk_training *t, const char *part);
/* The input kind and architecture that were used ("mel", "image", ...; "cnn", a .cfg path, ...). */
CNK_API const char *cnk_training_input_kind(const cnk_training *t);
CNK_API const char *cnk_training_arch(const cnk_training *t);

#ifdef __cplusplus
}
#endif

#endif
