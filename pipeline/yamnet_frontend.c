/* yamnet_frontend.c: YAMNet's log-mel front end computed with FFTW through features/spectrogram, where the
 * .tflite file does it with int8 DFT and mel matrices. API in pipeline/yamnet.h. */
#include <stdlib.h>
#include <string.h>

#include "features/spectrogram.h"
#include "pipeline/yamnet.h"

#define YAMNET_LOG_OFFSET 0.001f

int cnk_yamnet_log_mel(cnk_ctx *ctx, const float *samples, size_t n_samples, float **out, size_t *n_frames)
{
    *out = NULL;
    *n_frames = 0;
    /* Short clips get zeros after them, so every clip gives at least one patch. */
    size_t n = n_samples < CNK_YAMNET_MIN_SAMPLES ? CNK_YAMNET_MIN_SAMPLES : n_samples;
    float *padded = NULL;
    if (n != n_samples) {
        if (!(padded = calloc(n, sizeof *padded))) return cnk_fail(ctx, CNK_ERR_NOMEM, "yamnet: out of memory");
        if (n_samples) memcpy(padded, samples, n_samples * sizeof *padded);
        samples = padded;
    }
    cnk_spec_params params;
    cnk_spec_params_yamnet(&params);
    cnk_spec *spec;
    int rc = cnk_spec_create(ctx, &params, &spec);
    if (rc) {
        free(padded);
        return rc;
    }
    size_t frames = cnk_spec_n_frames(spec, n), rows = cnk_spec_n_rows(spec);
    float *mel = malloc(rows * frames * sizeof *mel), *t = malloc(rows * frames * sizeof *t);
    if (!mel || !t) rc = cnk_fail(ctx, CNK_ERR_NOMEM, "yamnet: out of memory for %zu frames", frames);
    if (!rc) rc = cnk_spec_compute(spec, samples, n, mel);
    if (!rc) {
        cnk_log_offset(mel, rows * frames, YAMNET_LOG_OFFSET);
        /* features/ gives bands x frames; YAMNet's patch is frames x bands. */
        for (size_t r = 0; r < rows; r++)
            for (size_t f = 0; f < frames; f++) t[f * rows + r] = mel[r * frames + f];
    }
    cnk_spec_free(spec);
    free(mel);
    free(padded);
    if (rc) {
        free(t);
        return rc;
    }
    *out = t;
    *n_frames = frames;
    return CNK_OK;
}
