/* cnnkit/classify.h: a trained model (.cnk, from `cnnkit train` or `cnnkit import`) ready to classify audio
 * files and sample buffers, images and pixel buffers, with exactly the preprocessing stored in the model. */
#ifndef CNNKIT_CLASSIFY_H
#define CNNKIT_CLASSIFY_H

#include <stddef.h>

#include "cnnkit/context.h"
#include "cnnkit/export.h"
#include "cnnkit/report.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A loaded model. It serves one thread at a time (load one per thread to classify in parallel). */
typedef struct cnk_predictor cnk_predictor;

/* Loads and checks a .cnk file (magic, format version, checksums, architecture). */
CNK_API int cnk_predictor_load(cnk_ctx *ctx, const char *model_path, cnk_predictor **out);
CNK_API void cnk_predictor_free(cnk_predictor *p);

CNK_API int cnk_predictor_n_classes(const cnk_predictor *p);
/* Class name of output index 0..n_classes-1 (a trained model's are its class folders' names sorted bytewise;
 * an imported model's come from its labels file), NULL out of range. Lives as long as the predictor. */
CNK_API const char *cnk_predictor_class_name(const cnk_predictor *p, int index);
/* What the model takes: "mel", "wavelet" (audio), "image", "npy", "csv" (feature rows), or "audio" for late-fusion
 * (mel + wavelet) and YAMNet-transfer models (YAMNet-transfer models classify audio files only). */
CNK_API const char *cnk_predictor_input_kind(const cnk_predictor *p);
/* "mel", "wavelet" and late-fusion models: the rate clips are resampled to before the spectrograms; 0 for other
 * models. */
CNK_API int cnk_predictor_sample_rate(const cnk_predictor *p);
/* Image models: the network's input size (images are centre-cropped to its aspect and resized). Other
 * models: 0, 0, 0. Any pointer may be NULL. */
CNK_API void cnk_predictor_image_size(const cnk_predictor *p, int *width, int *height, int *channels);

/* Each classify function writes n_classes probabilities (summing to 1) into proba. Audio is cut into the
 * model's segments and their softmax outputs averaged, as `cnnkit predict` does. */

/* An audio file (audio models), an image file (image models) or a .npy array (npy models). */
CNK_API int cnk_predictor_classify_file(cnk_ctx *ctx, cnk_predictor *p, const char *path, double *proba);
/* Mono samples at sample_rate (resampled to the model's rate here); the same result as classifying a file
 * that decodes to these samples. Mel, wavelet and late-fusion models (not YAMNet-transfer ones). */
CNK_API int cnk_predictor_classify_samples(cnk_ctx *ctx, cnk_predictor *p, const float *samples, size_t n_samples,
                                           int sample_rate, double *proba);
/* 8-bit pixels, row 0 = top, interleaved: channels 1 (grey), 3 (RGB) or 4 (RGBA, alpha ignored); converted
 * to the model's channels as image files are (grey = (77 R + 150 G + 29 B) >> 8). An image of exactly the
 * model's input size gives the same result as the same image read from a file; other sizes are centre-cropped
 * and resized with the same filter, rounded to 8 bits after resizing (within 1/255 of the file path). Models
 * with an evaluation crop (photos' `eval_crop`) give the file's result at every size. */
CNK_API int cnk_predictor_classify_pixels(cnk_ctx *ctx, cnk_predictor *p, const unsigned char *pixels, int width,
                                          int height, int channels, double *proba);
/* One row of raw numeric features (CSV models: n_features values in the training CSV's column order). */
CNK_API int cnk_predictor_classify_row(cnk_ctx *ctx, cnk_predictor *p, const float *values, size_t n_values,
                                       double *proba);

/* The index of the largest of n probabilities (the first on ties); -1 if n < 1. */
CNK_API int cnk_top_class(const double *proba, int n);

/* `cnnkit eval` as a call: classifies every file of a class-per-subfolder data folder (or the rows of a CSV
 * for CSV models), classes matched to the model's by name (others skipped with a warning), and returns the
 * evaluation (true and predicted classes, probabilities, paths) for metrics and reports. cache_dir: feature
 * cache folder, NULL for the default (~/.cache/cnnkit), "" for none. */
CNK_API int cnk_predictor_evaluate(cnk_ctx *ctx, cnk_predictor *p, const char *data, const char *cache_dir,
                                   cnk_evaluation **out);

#ifdef __cplusplus
}
#endif

#endif
