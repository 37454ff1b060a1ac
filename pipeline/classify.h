/* classify.h: a trained model ready to classify: the .cnk file's network, class names and preprocessing,
 * applied exactly as in training; a clip's probabilities are the mean over its segments. Used by
 * `cnnkit predict` and `cnnkit eval`. */
#ifndef CNK_CLASSIFY_H
#define CNK_CLASSIFY_H

#include <stddef.h>

#include "core/context.h"
#include "core/fsutil.h"
#include "core/npy.h"
#include "nn/modelfile.h"
#include "pipeline/dataset.h"
#include "pipeline/preprocess.h"

typedef struct cnk_classifier cnk_classifier;

/* Loads a model file. */
int cnk_classifier_load(cnk_ctx *ctx, const char *path, cnk_classifier **out);
void cnk_classifier_free(cnk_classifier *c);

int cnk_classifier_n_classes(const cnk_classifier *c);
const char *const *cnk_classifier_class_names(const cnk_classifier *c);
const cnk_preprocess *cnk_classifier_preprocess(const cnk_classifier *c);
/* The model file as read, and whether it is a late-fusion model (pipeline/fusion.h predicts for those). */
const cnk_modelfile *cnk_classifier_modelfile(const cnk_classifier *c);
int cnk_classifier_is_fusion(const cnk_classifier *c);

/* Class probabilities (n_classes doubles) of one item from its un-normalised features (as
 * cnk_preprocess_file or a CSV row gives them): every segment through the network, softmax, mean. */
int cnk_classifier_predict_features(cnk_ctx *ctx, cnk_classifier *c, const cnk_array *features, double *proba);

/* 1 if the file's extension fits the model's input (audio for mel/wavelet, images, .npy). */
int cnk_classifier_accepts_path(const cnk_classifier *c, const char *path);

/* Classifies every labelled item of ds (its classes already matched to the model's with
 * cnk_dataset_match_classes): features computed in parallel (and cached: cache_dir as for
 * cnk_featureset_compute), skipped files warned about. Results for the n items that could be classified, in
 * dataset order: items (dataset indices), y_true, y_pred, proba (n x n_classes). Caller frees the arrays. */
typedef struct cnk_classified {
    size_t n;
    int *items;
    int *y_true;
    int *y_pred;
    double *proba;
} cnk_classified;
int cnk_classifier_run_dataset(cnk_ctx *ctx, cnk_classifier *c, const cnk_dataset *ds, const char *cache_dir,
                               cnk_classified *out);
/* The same for a list of files (no labels: y_true is -1); files that fail are warned about and left out. */
int cnk_classifier_run_paths(cnk_ctx *ctx, cnk_classifier *c, const char *const *paths, size_t n_paths,
                             const char *cache_dir, cnk_classified *out);
/* CSV models: classifies every row of the CSV files (the training CSV's numeric columns; a label column may
 * be there or not and is not used). names receives one "FILE:ROW" display name per row (ROW = the row's
 * identifier column, e.g. `filename`, or "rowN" counting from 0), out->items index into names. */
int cnk_classifier_run_csv(cnk_ctx *ctx, cnk_classifier *c, const char *const *paths, size_t n_paths,
                           cnk_pathlist *names, cnk_classified *out);
void cnk_classified_release(cnk_classified *r);

#endif
