#include "pipeline/augment.h"

#include <string.h>

void cnk_augment_defaults_image(cnk_augment_params *p, int width)
{
    memset(p, 0, sizeof *p);
    p->crop_pad = width / 16 > 2 ? width / 16 : 2;
    p->flip = 1;
}

void cnk_augment_defaults_spectrogram(cnk_augment_params *p, int n_rows, int n_frames, float fill)
{
    memset(p, 0, sizeof *p);
    p->max_time_shift = n_frames / 8;
    p->n_time_masks = 2;
    p->time_mask = n_frames / 10;
    p->n_freq_masks = 2;
    p->freq_mask = n_rows / 8;
    p->fill = fill;
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* A uniform integer in [-m, m]. */
static int symmetric(cnk_rng *rng, int m) { return m > 0 ? (int)cnk_rng_below(rng, (uint64_t)(2 * m + 1)) - m : 0; }

void cnk_augment_image(cnk_rng *rng, const cnk_augment_params *p, float *x, int channels, int height, int width,
                       float *scratch)
{
    /* Draw every decision first so the stream use does not depend on which ones apply. */
    int dx = symmetric(rng, p->crop_pad), dy = symmetric(rng, p->crop_pad);
    int flip = (int)cnk_rng_below(rng, 2) && p->flip;
    if (dx == 0 && dy == 0 && !flip) return;
    size_t plane = (size_t)height * width;
    memcpy(scratch, x, (size_t)channels * plane * sizeof *x);
    for (int c = 0; c < channels; c++) {
        const float *src = scratch + c * plane;
        float *dst = x + c * plane;
        for (int yy = 0; yy < height; yy++) {
            int sy = clampi(yy + dy, 0, height - 1);
            for (int xx = 0; xx < width; xx++) {
                int sx = clampi((flip ? width - 1 - xx : xx) + dx, 0, width - 1);
                dst[(size_t)yy * width + xx] = src[(size_t)sy * width + sx];
            }
        }
    }
}

static void fill_frames(float *x, int channels, int n_rows, int n_frames, int from, int count, float fill)
{
    for (int c = 0; c < channels; c++)
        for (int r = 0; r < n_rows; r++) {
            float *row = x + ((size_t)c * n_rows + r) * n_frames;
            for (int t = from; t < from + count && t < n_frames; t++) row[t] = fill;
        }
}

void cnk_augment_spectrogram(cnk_rng *rng, const cnk_augment_params *p, float *x, int channels, int n_rows,
                             int n_frames, float *scratch)
{
    int shift = symmetric(rng, p->max_time_shift);
    if (shift) {
        size_t n = (size_t)channels * n_rows * n_frames;
        memcpy(scratch, x, n * sizeof *x);
        for (size_t row = 0; row < (size_t)channels * n_rows; row++) {
            const float *src = scratch + row * n_frames;
            float *dst = x + row * n_frames;
            for (int t = 0; t < n_frames; t++) {
                int s = t - shift;
                dst[t] = (s >= 0 && s < n_frames) ? src[s] : p->fill;
            }
        }
    }
    for (int m = 0; m < p->n_time_masks; m++) {
        int width = p->time_mask > 0 ? (int)cnk_rng_below(rng, (uint64_t)p->time_mask + 1) : 0;
        int from = (int)cnk_rng_below(rng, (uint64_t)n_frames);
        fill_frames(x, channels, n_rows, n_frames, from, width, p->fill);
    }
    for (int m = 0; m < p->n_freq_masks; m++) {
        int height = p->freq_mask > 0 ? (int)cnk_rng_below(rng, (uint64_t)p->freq_mask + 1) : 0;
        int from = (int)cnk_rng_below(rng, (uint64_t)n_rows);
        for (int c = 0; c < channels; c++)
            for (int r = from; r < from + height && r < n_rows; r++) {
                float *row = x + ((size_t)c * n_rows + r) * n_frames;
                for (int t = 0; t < n_frames; t++) row[t] = p->fill;
            }
    }
}
