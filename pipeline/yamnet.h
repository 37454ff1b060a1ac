/* yamnet.h: YAMNet on audio: its log-mel front end computed in C (features/spectrogram), cut into 0.96 s
 * patches every 0.48 s, the imported CNN (nn/import.h) run on each, sigmoid scores and 1024-d embeddings. */
#ifndef CNK_YAMNET_H
#define CNK_YAMNET_H

#include <stddef.h>

#include "core/context.h"

#define CNK_YAMNET_SAMPLE_RATE 16000
#define CNK_YAMNET_PATCH_FRAMES 96   /* 0.96 s of 10 ms frames */
#define CNK_YAMNET_PATCH_HOP 48      /* a new patch every 0.48 s */
#define CNK_YAMNET_N_MELS 64
#define CNK_YAMNET_MIN_SAMPLES 15600 /* one patch: 95 hops of 160 + a 400-sample window */
#define CNK_YAMNET_EMBEDDING 1024

typedef struct cnk_yamnet cnk_yamnet;

/* Loads YAMNet from a .tflite file (imported on the fly) or a .cnk written by `cnnkit import yamnet.tflite`.
 * Class names come from the .cnk, or yamnet_class_map.csv beside the .tflite. One cnk_yamnet runs in one
 * thread at a time (it owns the model's activations); create one per worker. */
int cnk_yamnet_create(cnk_ctx *ctx, const char *model_path, cnk_yamnet **out);
void cnk_yamnet_free(cnk_yamnet *y);
int cnk_yamnet_n_classes(const cnk_yamnet *y);
const char *cnk_yamnet_class_name(const cnk_yamnet *y, int index);

/* The log-mel spectrogram of a 16 kHz mono waveform, as YAMNet's front end computes it: *out is malloc'd,
 * n_frames x 64 (row = one 10 ms frame, column 0 = lowest band), log(mel magnitude + 0.001). Clips shorter
 * than CNK_YAMNET_MIN_SAMPLES are zero-padded to it (as YAMNet does). */
int cnk_yamnet_log_mel(cnk_ctx *ctx, const float *samples, size_t n_samples, float **out, size_t *n_frames);

/* Runs YAMNet on a 16 kHz mono waveform: one patch per 0.48 s (at least one). *scores (n_patches x
 * n_classes, sigmoid) and *embeddings (n_patches x 1024, the average-pooled features) are malloc'd; either
 * pointer may be NULL if not wanted. */
int cnk_yamnet_run(cnk_ctx *ctx, cnk_yamnet *y, const float *samples, size_t n_samples, float **scores,
                   float **embeddings, size_t *n_patches);

/* Decodes an audio file (any rate, resampled to 16 kHz) and writes the clip's mean scores over its patches
 * into mean_scores (n_classes floats) and, if not NULL, the mean embedding (1024 floats). */
int cnk_yamnet_classify_file(cnk_ctx *ctx, cnk_yamnet *y, const char *path, float *mean_scores,
                             float *mean_embedding);

#endif
