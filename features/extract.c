#include "features/extract.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "features/audio.h"
#include "features/spectrogram.h"
#include "features/wavelet.h"

struct cnk_extractor {
    cnk_extract_params params;
    int plan_rate;  /* sample rate the current plan was made for, 0 = none */
    cnk_spec *spec; /* mel or STFT */
    cnk_wavelet *wavelet;
};

void cnk_extract_params_default(cnk_extract_params *p)
{
    memset(p, 0, sizeof *p);
    p->kind = CNK_FEATURE_MEL;
    p->sample_rate = 22050;
    p->n_fft = 2048;
    p->hop_length = 512;
    p->n_mels = 128;
    p->fmin = -1;
    p->fmax = 0;
    p->n_scales = 64;
    p->db = 1;
}

int cnk_feature_kind_parse(const char *name, cnk_feature_kind *out)
{
    if (strcmp(name, "mel") == 0)
        *out = CNK_FEATURE_MEL;
    else if (strcmp(name, "stft") == 0)
        *out = CNK_FEATURE_STFT;
    else if (strcmp(name, "wavelet") == 0)
        *out = CNK_FEATURE_WAVELET;
    else
        return -1;
    return 0;
}

static void drop_plans(cnk_extractor *ex)
{
    cnk_spec_free(ex->spec);
    cnk_wavelet_free(ex->wavelet);
    ex->spec = NULL;
    ex->wavelet = NULL;
    ex->plan_rate = 0;
}

/* Makes the plan for this sample rate (a folder kept at its own rates may mix them). */
static int plan_for_rate(cnk_ctx *ctx, cnk_extractor *ex, int sample_rate)
{
    if (ex->plan_rate == sample_rate) return CNK_OK;
    drop_plans(ex);
    const cnk_extract_params *p = &ex->params;
    int rc;
    if (p->kind == CNK_FEATURE_WAVELET) {
        cnk_wavelet_params wp;
        cnk_wavelet_params_default(&wp, sample_rate);
        wp.n_scales = p->n_scales;
        wp.fmin = p->fmin < 0 ? 32.0 : p->fmin;
        wp.fmax = p->fmax;
        wp.hop_length = p->hop_length;
        wp.n_fft = p->n_fft;
        rc = cnk_wavelet_create(ctx, &wp, &ex->wavelet);
    } else {
        cnk_spec_params sp;
        cnk_spec_params_default(&sp, sample_rate);
        sp.kind = p->kind == CNK_FEATURE_STFT ? CNK_SPEC_STFT : CNK_SPEC_MEL;
        sp.n_fft = p->n_fft;
        sp.hop_length = p->hop_length;
        sp.n_mels = p->n_mels;
        sp.fmin = p->fmin < 0 ? 0.0 : p->fmin;
        sp.fmax = p->fmax;
        rc = cnk_spec_create(ctx, &sp, &ex->spec);
    }
    if (rc == CNK_OK) ex->plan_rate = sample_rate;
    return rc;
}

int cnk_extractor_create(cnk_ctx *ctx, const cnk_extract_params *params, cnk_extractor **out)
{
    *out = NULL;
    if (params->sample_rate < 0 || params->sample_rate > CNK_AUDIO_MAX_RATE)
        return cnk_fail(ctx, CNK_ERR_ARG, "features: bad sample rate %d", params->sample_rate);
    cnk_extractor *ex = calloc(1, sizeof *ex);
    if (!ex) return cnk_fail(ctx, CNK_ERR_NOMEM, "features: out of memory");
    ex->params = *params;
    /* With a fixed rate, bad parameters show up now (a usage error), not once per file. */
    if (params->sample_rate > 0) {
        int rc = plan_for_rate(ctx, ex, params->sample_rate);
        if (rc != CNK_OK) {
            cnk_extractor_free(ex);
            return rc;
        }
    }
    *out = ex;
    return CNK_OK;
}

void cnk_extractor_free(cnk_extractor *ex)
{
    if (!ex) return;
    drop_plans(ex);
    free(ex);
}

int cnk_extract_samples(cnk_ctx *ctx, cnk_extractor *ex, const float *samples, size_t n_samples, int sample_rate,
                        cnk_array *out)
{
    memset(out, 0, sizeof *out);
    int rc = plan_for_rate(ctx, ex, sample_rate);
    if (rc != CNK_OK) return rc;
    size_t rows = ex->wavelet ? cnk_wavelet_n_rows(ex->wavelet) : cnk_spec_n_rows(ex->spec);
    size_t frames = ex->wavelet ? cnk_wavelet_n_frames(ex->wavelet, n_samples) : cnk_spec_n_frames(ex->spec, n_samples);
    if (frames == 0) return cnk_fail(ctx, CNK_ERR_INPUT, "features: %zu samples is shorter than one frame", n_samples);
    out->data = malloc(rows * frames * sizeof *out->data);
    if (!out->data) return cnk_fail(ctx, CNK_ERR_NOMEM, "features: out of memory for %zu x %zu", rows, frames);
    out->ndim = 2;
    out->shape[0] = rows;
    out->shape[1] = frames;
    if (ex->wavelet)
        rc = cnk_wavelet_compute(ctx, ex->wavelet, samples, n_samples, out->data);
    else
        rc = cnk_spec_compute(ex->spec, samples, n_samples, out->data);
    if (rc != CNK_OK) {
        cnk_array_release(out);
        /* The wavelet says what failed; a spectrogram with frames cannot fail, so that would be a bug. */
        return ex->wavelet ? rc : cnk_fail(ctx, CNK_ERR_INTERNAL, "features: spectrogram failed with frames to do");
    }
    if (ex->params.db) cnk_power_to_db(out->data, rows * frames, 1.0f, 1e-10f, 80.0f);
    return CNK_OK;
}

int cnk_extract_file(cnk_ctx *ctx, cnk_extractor *ex, const char *path, cnk_array *out)
{
    memset(out, 0, sizeof *out);
    cnk_audio audio;
    int rc = cnk_audio_load(ctx, path, ex->params.sample_rate, &audio);
    if (rc != CNK_OK) return rc;
    rc = cnk_extract_samples(ctx, ex, audio.samples, audio.n_samples, audio.sample_rate, out);
    cnk_audio_release(&audio);
    /* Name the file in errors that came from the computation. */
    if (rc != CNK_OK && strncmp(cnk_error(ctx), path, strlen(path)) != 0) {
        char inner[sizeof ctx->message];
        snprintf(inner, sizeof inner, "%s", cnk_error(ctx));
        const char *reason = strncmp(inner, "features: ", 10) == 0 ? inner + 10 : inner;
        return cnk_fail(ctx, rc == CNK_ERR_ARG ? CNK_ERR_INPUT : rc, "%s: %s", path, reason);
    }
    return rc;
}
