/* features.c: cnnkit/features.h over features/extract.h and features/audio.h. */
#include "core/context.h"
#include "core/npy.h"
#include "features/audio.h"
#include "features/extract.h"

#include <stdlib.h>
#include <string.h>

#include "cnnkit/features.h"

void cnk_feature_options_init(cnk_feature_options *opts)
{
    cnk_extract_params p;
    cnk_extract_params_default(&p);
    memset(opts, 0, sizeof *opts);
    opts->kind = "mel";
    opts->sample_rate = p.sample_rate;
    opts->n_fft = p.n_fft;
    opts->hop_length = p.hop_length;
    opts->n_mels = p.n_mels;
    opts->n_scales = p.n_scales;
    opts->fmin = p.fmin;
    opts->fmax = p.fmax;
    opts->db = p.db;
}

static int to_extract_params(cnk_ctx *ctx, const cnk_feature_options *opts, cnk_extract_params *p)
{
    cnk_extract_params_default(p);
    if (!opts) return CNK_OK;
    if (opts->kind && cnk_feature_kind_parse(opts->kind, &p->kind) != 0)
        return cnk_fail(ctx, CNK_ERR_ARG, "features: unknown kind '%s' (mel, stft or wavelet)", opts->kind);
    p->sample_rate = opts->sample_rate;
    p->n_fft = opts->n_fft;
    p->hop_length = opts->hop_length;
    p->n_mels = opts->n_mels;
    p->n_scales = opts->n_scales;
    p->fmin = opts->fmin;
    p->fmax = opts->fmax;
    p->db = opts->db != 0;
    return CNK_OK;
}

/* Hands a computed (rows, frames) array to the caller. */
static void give_array(cnk_array *a, float **out, size_t *rows, size_t *frames)
{
    *out = a->data;
    *rows = a->shape[0];
    *frames = a->shape[1];
    memset(a, 0, sizeof *a);
}

static int check_outputs(cnk_ctx *ctx, float **out, size_t *rows, size_t *frames)
{
    if (!out || !rows || !frames) return cnk_fail(ctx, CNK_ERR_ARG, "features: NULL output pointer");
    *out = NULL;
    *rows = *frames = 0;
    return CNK_OK;
}

int cnk_features_of_samples(cnk_ctx *ctx, const cnk_feature_options *opts, const float *samples, size_t n_samples,
                            int sample_rate, float **out, size_t *rows, size_t *frames)
{
    int rc = check_outputs(ctx, out, rows, frames);
    if (rc) return rc;
    if (!samples || n_samples == 0) return cnk_fail(ctx, CNK_ERR_ARG, "features: no samples");
    if (sample_rate < 1 || sample_rate > CNK_AUDIO_MAX_RATE)
        return cnk_fail(ctx, CNK_ERR_ARG, "features: bad sample rate %d", sample_rate);
    cnk_extract_params p;
    rc = to_extract_params(ctx, opts, &p);
    if (rc) return rc;
    /* Resample exactly as decoding a file does, so buffers and files give the same numbers. */
    float *resampled = NULL;
    size_t n = n_samples;
    int rate = sample_rate;
    if (p.sample_rate > 0 && p.sample_rate != sample_rate) {
        rc = cnk_audio_resample(ctx, samples, n_samples, sample_rate, p.sample_rate, &resampled, &n);
        if (rc) return rc;
        samples = resampled;
        rate = p.sample_rate;
    }
    cnk_extractor *ex = NULL;
    cnk_array a = {0};
    rc = cnk_extractor_create(ctx, &p, &ex);
    if (!rc) rc = cnk_extract_samples(ctx, ex, samples, n, rate, &a);
    if (!rc) give_array(&a, out, rows, frames);
    cnk_extractor_free(ex);
    free(resampled);
    return rc;
}

int cnk_features_of_file(cnk_ctx *ctx, const cnk_feature_options *opts, const char *path, float **out, size_t *rows,
                         size_t *frames)
{
    int rc = check_outputs(ctx, out, rows, frames);
    if (rc) return rc;
    if (!path) return cnk_fail(ctx, CNK_ERR_ARG, "features: NULL path");
    cnk_extract_params p;
    rc = to_extract_params(ctx, opts, &p);
    if (rc) return rc;
    cnk_extractor *ex = NULL;
    cnk_array a = {0};
    rc = cnk_extractor_create(ctx, &p, &ex);
    if (!rc) rc = cnk_extract_file(ctx, ex, path, &a);
    if (!rc) give_array(&a, out, rows, frames);
    cnk_extractor_free(ex);
    return rc;
}

int cnk_audio_decode(cnk_ctx *ctx, const char *path, int target_rate, float **samples, size_t *n_samples,
                     int *sample_rate)
{
    if (!path || !samples || !n_samples) return cnk_fail(ctx, CNK_ERR_ARG, "audio: NULL argument");
    *samples = NULL;
    *n_samples = 0;
    cnk_audio audio;
    int rc = cnk_audio_load(ctx, path, target_rate, &audio);
    if (rc) return rc;
    *samples = audio.samples;
    *n_samples = audio.n_samples;
    if (sample_rate) *sample_rate = audio.sample_rate;
    return CNK_OK;
}

int cnk_features_write_npy(cnk_ctx *ctx, const char *path, const float *data, size_t rows, size_t cols)
{
    if (!path || (!data && rows && cols)) return cnk_fail(ctx, CNK_ERR_ARG, "npy: NULL argument");
    size_t shape[2] = {rows, cols};
    return cnk_npy_write(ctx, path, data, 2, shape);
}
