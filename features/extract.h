/* extract.h: one call from an audio file (or samples) to the feature array `cnnkit features` writes:
 * decode, resample, mel / STFT / wavelet, dB. Keeps its plans between files of the same sample rate. */
#ifndef CNK_EXTRACT_H
#define CNK_EXTRACT_H

#include <stddef.h>

#include "core/context.h"
#include "core/npy.h"

typedef enum cnk_feature_kind { CNK_FEATURE_MEL = 0, CNK_FEATURE_STFT = 1, CNK_FEATURE_WAVELET = 2 } cnk_feature_kind;

typedef struct cnk_extract_params {
    cnk_feature_kind kind;
    int sample_rate;  /* resample to this first; 0 = keep each file's rate */
    int n_fft;
    int hop_length;
    int n_mels;
    double fmin;      /* < 0 = the kind's default: 0 Hz (mel), 32 Hz (wavelet) */
    double fmax;      /* <= 0 = sample_rate / 2 */
    int n_scales;     /* wavelet rows */
    int db;           /* 1: power_to_db(ref 1, amin 1e-10, top_db 80); 0: power */
} cnk_extract_params;

/* The CLI defaults: mel, 22050 Hz, n_fft 2048, hop 512, 128 mels, 64 scales, dB. */
void cnk_extract_params_default(cnk_extract_params *p);
/* Parses "mel", "stft", "wavelet"; -1 for anything else. */
int cnk_feature_kind_parse(const char *name, cnk_feature_kind *out);

typedef struct cnk_extractor cnk_extractor;

/* Checks the parameters (CNK_ERR_ARG with a message for bad combinations at a known sample rate). */
int cnk_extractor_create(cnk_ctx *ctx, const cnk_extract_params *params, cnk_extractor **out);
void cnk_extractor_free(cnk_extractor *ex);

/* Features of samples at sample_rate (already resampled) as a (rows, frames) array (caller releases). */
int cnk_extract_samples(cnk_ctx *ctx, cnk_extractor *ex, const float *samples, size_t n_samples, int sample_rate,
                        cnk_array *out);
/* Decodes path, resamples as the params say, and computes its features. */
int cnk_extract_file(cnk_ctx *ctx, cnk_extractor *ex, const char *path, cnk_array *out);

#endif
