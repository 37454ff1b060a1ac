/* audio.h: decode any file libsndfile reads (WAV, AU, AIFF, FLAC, OGG, MP3) into mono float samples,
 * optionally resampled with libsoxr (high quality). Errors name the file and what is wrong with it. */
#ifndef CNK_AUDIO_H
#define CNK_AUDIO_H

#include <stddef.h>

#include "core/context.h"

/* Limits that turn absurd headers into clear errors instead of huge allocations. */
#define CNK_AUDIO_MAX_CHANNELS 256
#define CNK_AUDIO_MAX_RATE 1536000
#define CNK_AUDIO_MAX_SAMPLES ((size_t)1 << 30) /* frames x channels decoded at once (4 GiB of floats) */

typedef struct cnk_audio {
    float *samples;   /* malloc'd, mono */
    size_t n_samples;
    int sample_rate;
} cnk_audio;

/* Decodes path to mono (mean of the channels) and resamples to target_sr (0 = keep the file's rate).
 * Fails with CNK_ERR_IO (cannot open), CNK_ERR_INPUT (not audio, truncated, empty, NaN/Inf samples, absurd
 * channel count or rate). out is zeroed on failure. */
int cnk_audio_load(cnk_ctx *ctx, const char *path, int target_sr, cnk_audio *out);
void cnk_audio_release(cnk_audio *a);

/* Resamples n mono samples from from_sr to to_sr with libsoxr's high-quality filter. *out is malloc'd
 * (caller frees) and holds round(n * to_sr / from_sr) samples. from_sr == to_sr copies. */
int cnk_audio_resample(cnk_ctx *ctx, const float *in, size_t n, int from_sr, int to_sr, float **out, size_t *n_out);

/* 1 if the path's extension is one `cnnkit features` picks from folders (wav au aiff aif flac ogg mp3). */
int cnk_audio_is_audio_path(const char *path);

#endif
