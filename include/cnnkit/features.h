/* cnnkit/features.h: audio decoding and the spectrograms `cnnkit features` writes (mel, STFT, Morlet
 * wavelet scalogram, in dB or power) of a buffer of samples or of an audio file. */
#ifndef CNNKIT_FEATURES_H
#define CNNKIT_FEATURES_H

#include <stddef.h>

#include "cnnkit/context.h"
#include "cnnkit/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What to compute; cnk_feature_options_init gives the CLI defaults (mel is librosa 0.10's
 * melspectrogram + power_to_db(ref 1, amin 1e-10, top_db 80)). */
typedef struct cnk_feature_options {
    const char *kind;  /* "mel" (default), "stft" or "wavelet" */
    int sample_rate;   /* resample to this rate first (default 22050); 0 = keep the input's rate */
    int n_fft;         /* default 2048 */
    int hop_length;    /* default 512 */
    int n_mels;        /* mel rows, default 128 */
    int n_scales;      /* wavelet rows, default 64 */
    double fmin;       /* < 0 = the kind's default: 0 Hz (mel), 32 Hz (wavelet) */
    double fmax;       /* <= 0 = sample_rate / 2 */
    int db;            /* 1 (default): dB; 0: power */
} cnk_feature_options;

CNK_API void cnk_feature_options_init(cnk_feature_options *opts);

/* Features of n_samples mono samples at sample_rate: *out is a malloc'd rows x frames float array
 * (row-major, row 0 = lowest frequency; free with cnk_free). The same numbers as cnk_features_of_file on a
 * file holding these samples. */
CNK_API int cnk_features_of_samples(cnk_ctx *ctx, const cnk_feature_options *opts, const float *samples,
                                    size_t n_samples, int sample_rate, float **out, size_t *rows, size_t *frames);
/* Decodes an audio file (WAV, FLAC, OGG, MP3, AIFF, AU; channels averaged), resamples, computes features. */
CNK_API int cnk_features_of_file(cnk_ctx *ctx, const cnk_feature_options *opts, const char *path, float **out,
                                 size_t *rows, size_t *frames);

/* Decodes an audio file to mono float samples, resampled to target_rate (0 = keep the file's rate).
 * *samples is malloc'd (free with cnk_free); *sample_rate receives the resulting rate. */
CNK_API int cnk_audio_decode(cnk_ctx *ctx, const char *path, int target_rate, float **samples, size_t *n_samples,
                             int *sample_rate);

/* Writes rows x cols floats as a NumPy .npy file (float32, C order), atomically. */
CNK_API int cnk_features_write_npy(cnk_ctx *ctx, const char *path, const float *data, size_t rows, size_t cols);

#ifdef __cplusplus
}
#endif

#endif
